/* fuzz_json_project.c - libFuzzer target for kars_json_project (json_project.h).
 *
 * The projection skips most of an upstream's answer without building it, so
 * it must never disagree with jansson about what it keeps. For every input
 * jansson accepts as an object, the projection is either NULL (the caller
 * then parses it whole) or equal (json_equal) to the same keys picked out of
 * jansson's own tree. The projection may accept input jansson refuses (it
 * does not check UTF-8 or number ranges in what it skips) but then must
 * still be an object. Then the usage parser, which uses the projection for
 * chat bodies, must give the same answer as the usage parser run on
 * jansson's tree.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json_project.h"
#include "sse_usage.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

static const struct kars_json_keep inner[] = {{"d", NULL}, {"e", NULL}, {NULL, NULL}};
static const struct kars_json_keep middle[] = {{"c", inner}, {"a", NULL}, {NULL, NULL}};
static const struct kars_json_keep top[] = {
    {"a", NULL}, {"b", middle}, {"usage", NULL}, {"choices", middle}, {NULL, NULL}};

static json_t *ref_object(const json_t *obj, const struct kars_json_keep *keep);

static json_t *ref_value(json_t *v, const struct kars_json_keep *sub)
{
	if (sub && json_is_object(v))
		return ref_object(v, sub);
	if (sub && json_is_array(v)) {
		json_t *arr = json_array();
		size_t i;
		json_t *e;

		json_array_foreach(v, i, e)
		{
			json_array_append_new(arr, json_is_object(e) ? ref_object(e, sub)
								     : json_incref(e));
		}
		return arr;
	}
	return json_incref(v);
}

/* The keys of keep, picked out of jansson's tree. */
static json_t *ref_object(const json_t *obj, const struct kars_json_keep *keep)
{
	json_t *out = json_object();

	for (; keep->key; keep++) {
		json_t *v = json_object_get(obj, keep->key);

		if (v)
			json_object_set_new(out, keep->key, ref_value(v, keep->sub));
	}
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	json_t *full = json_loadb(buf, size, 0, NULL);
	json_t *proj = kars_json_project(buf, size, top);

	if (proj)
		CHECK(json_is_object(proj));
	if (proj && json_is_object(full)) {
		json_t *ref = ref_object(full, top);

		CHECK(json_equal(ref, proj));
		json_decref(ref);
	}
	if (json_is_object(full)) {
		static const enum kars_openai_route routes[] = {
		    KARS_OPENAI_CHAT_COMPLETIONS, KARS_OPENAI_COMPLETIONS, KARS_OPENAI_EMBEDDINGS};

		for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
			struct kars_usage a, b;
			struct kars_err ea = {0}, eb = {0};
			int ra = kars_openai_usage_from_body(routes[i], data, size, &a, &ea);
			int rb = kars_openai_usage_from_json(routes[i], full, &b, &eb);

			CHECK(ra == rb);
			CHECK(strcmp(ea.msg, eb.msg) == 0);
			CHECK(a.has_usage == b.has_usage && a.prompt_tokens == b.prompt_tokens &&
			      a.completion_tokens == b.completion_tokens &&
			      a.total_tokens == b.total_tokens &&
			      a.cached_tokens == b.cached_tokens &&
			      a.reasoning_tokens == b.reasoning_tokens &&
			      strcmp(a.model, b.model) == 0 &&
			      memcmp(&a.filter, &b.filter, sizeof(a.filter)) == 0);
		}
	}
	{
		json_t *strict = json_loadb(buf, size, JSON_REJECT_DUPLICATES, NULL);
		json_t *built = kars_json_build(buf, size);

		if (built)
			CHECK(json_is_object(built) || json_is_array(built));
		if (built && strict)
			CHECK(json_equal(built, strict));
		/* It refuses duplicates as jansson does: never a tree where
		 * jansson sees the document is not one. */
		if (built && full && !strict)
			abort();
		json_decref(built);
		json_decref(strict);
	}
	json_decref(proj);
	json_decref(full);
	return 0;
}
