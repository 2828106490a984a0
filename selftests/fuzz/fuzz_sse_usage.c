/* fuzz_sse_usage.c - libFuzzer target for the token-usage parsers (sse_usage.h).
 *
 * Every byte of an upstream model response reaches kars-router's usage parser,
 * in whatever pieces TCP delivers. Its contract is that the pieces do not
 * matter: the input is parsed whole, in chunks whose sizes come from the input
 * itself, and (when short) one byte at a time, and the three results, errors
 * and error messages included, must be identical. Each piece is fed from its
 * own heap copy that is freed right after, so ASan catches any pointer the
 * parser keeps into a piece. Memory stays under the event limit, which the
 * input also picks (small, to reach the over-size path). The same bytes then
 * go through the whole-body parser for every route and, if they are a JSON
 * object, through the include_usage injection.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sse_usage.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

struct run {
	int ret;
	struct kars_err err;
	struct kars_usage u;
};

static uint64_t hash(const uint8_t *d, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ d[i]) * 0x100000001b3ull;
	return h;
}

static uint64_t next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* chunk 0: whole; 1: one byte at a time; else sizes from the seed. */
static void parse(const uint8_t *d, size_t n, size_t max_event, int mode, uint64_t seed,
		  struct run *r)
{
	struct kars_sse_usage p;
	size_t at = 0;

	memset(r, 0, sizeof(*r));
	CHECK(kars_sse_usage_init(&p, max_event) == 0);
	while (!r->ret && at < n) {
		size_t k = mode == 0 ? n : mode == 1 ? 1 : 1 + next(&seed) % 97;
		uint8_t *piece;

		if (k > n - at)
			k = n - at;
		piece = malloc(k);
		CHECK(piece);
		memcpy(piece, d + at, k);
		r->ret = kars_sse_usage_feed(&p, piece, k, &r->err);
		free(piece);
		at += k;
		CHECK(p.cap <= p.max_event);
		CHECK(p.offset == at);
	}
	if (!r->ret)
		r->ret = kars_sse_usage_finish(&p, &r->err);
	if (r->ret) {
		CHECK(r->ret == -EINVAL || r->ret == -EMSGSIZE || r->ret == -ENOMEM);
		CHECK(r->err.code == -r->ret && r->err.msg[0]);
		/* an error is final */
		CHECK(kars_sse_usage_feed(&p, "\n\n", 2, NULL) == r->ret);
	} else {
		CHECK(!r->err.code);
	}
	r->u = p.usage;
	kars_sse_usage_release(&p);
}

static void same(const struct run *a, const struct run *b)
{
	const struct kars_usage *x = &a->u, *y = &b->u;
	const struct kars_content_filter *f = &x->filter, *g = &y->filter;

	CHECK(a->ret == b->ret && a->err.code == b->err.code);
	CHECK(strcmp(a->err.msg, b->err.msg) == 0);
	CHECK(x->has_usage == y->has_usage && x->prompt_tokens == y->prompt_tokens &&
	      x->completion_tokens == y->completion_tokens && x->total_tokens == y->total_tokens &&
	      x->cached_tokens == y->cached_tokens && x->reasoning_tokens == y->reasoning_tokens);
	CHECK(strcmp(x->model, y->model) == 0);
	CHECK(x->done == y->done && x->truncated == y->truncated && x->events == y->events);
	CHECK(f->annotated == g->annotated && f->filtered == g->filtered &&
	      f->prompt == g->prompt && f->severity == g->severity && f->detected == g->detected);
	CHECK(strcmp(f->category, g->category) == 0);
	CHECK(memcmp(f->max_severity, g->max_severity, sizeof(f->max_severity)) == 0);
	CHECK(x->error.present == y->error.present);
	CHECK(strcmp(x->error.type, y->error.type) == 0 &&
	      strcmp(x->error.code, y->error.code) == 0 &&
	      strcmp(x->error.message, y->error.message) == 0);
}

static void check_usage(const struct kars_usage *u)
{
	CHECK(strlen(u->model) < sizeof(u->model));
	CHECK(strlen(u->filter.category) < sizeof(u->filter.category));
	CHECK(strlen(u->error.message) < sizeof(u->error.message));
	CHECK(!u->filter.category[0] || u->filter.filtered);
	for (int c = 0; c < KARS_CF__COUNT; c++)
		CHECK(u->filter.max_severity[c] <= KARS_CF_SEVERITY_HIGH);
}

static void fuzz_bodies(const uint8_t *data, size_t size)
{
	static const enum kars_openai_route routes[] = {
	    KARS_OPENAI_CHAT_COMPLETIONS, KARS_OPENAI_COMPLETIONS, KARS_OPENAI_EMBEDDINGS,
	    KARS_OPENAI_RESPONSES};
	json_error_t jerr;
	json_t *j;

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		struct kars_err err = {0};
		struct kars_usage u;

		if (kars_openai_usage_from_body(routes[i], data, size, &u, &err) == 0) {
			CHECK(!err.code);
			check_usage(&u);
		} else {
			CHECK(err.code && err.msg[0]);
		}
	}
	j = json_loadb((const char *)data, size, 0, &jerr);
	if (j) {
		struct kars_err err = {0};
		int ret = kars_openai_inject_include_usage(j, &err);

		if (ret > KARS_INCLUDE_USAGE_NO_STREAM)
			CHECK(json_is_true(json_object_get(json_object_get(j, "stream_options"),
							   "include_usage")));
		else if (ret < 0)
			CHECK(err.code == -ret && err.msg[0]);
		json_decref(j);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t h = hash(data, size) | 1;
	size_t max_event = (h >> 8) & 1 ? 0 : 8 + (h >> 16) % 2048;
	struct run whole, chunked, bytes;

	parse(data, size, max_event, 0, h, &whole);
	check_usage(&whole.u);
	parse(data, size, max_event, 2, h, &chunked);
	same(&whole, &chunked);
	if (size <= 4096) {
		parse(data, size, max_event, 1, h, &bytes);
		same(&whole, &bytes);
	}
	fuzz_bodies(data, size);
	return 0;
}
