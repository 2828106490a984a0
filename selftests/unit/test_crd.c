/* test_crd.c - the CRDs under deploy/crds/ against the schema they come from.
 *
 * Fails when the checked-in YAML differs from what the schema generates
 * (run `make crds`), and checks the checked-in YAML the way the API server
 * would use it: every field of every example manifest (selftests/schema/
 * spec-examples, taken from ../shared/spec) must be in the CRD's OpenAPI
 * schema, or the API server would silently prune it, the original's bug
 * with spec.a2a, spec.upstreamCompatibility and spec.meshAuth. Also checks
 * what makes a CRD structural: list-map keys required, printer columns
 * pointing at real fields, defaults that pass their own schema.
 * Runs from the repository root, as `make check` runs it.
 */
#include "unit.h"

#include <dirent.h>
#include <stdlib.h>

#include "crd.h"
#include "validate.h"
#include "yamljson.h"

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n + 1);
		if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n) {
			buf[n] = '\0';
			*len = (size_t)n;
		} else {
			free(buf);
			buf = NULL;
		}
	}
	fclose(f);
	return buf;
}

static json_t *load_crd_file(const struct kars_kind *k)
{
	char name[128], path[256];
	struct kars_yaml_docs docs;
	struct kars_err err = {};
	size_t len;
	char *text;
	json_t *crd;

	kars_crd_file_name(k, name, sizeof(name));
	snprintf(path, sizeof(path), "deploy/crds/%s", name);
	text = slurp(path, &len);
	if (!text)
		fail_msg("%s missing (run `make crds` from the repository root)", path);
	if (kars_yaml_load_all(text, len, &docs, &err))
		fail_msg("%s: %s", path, err.msg);
	free(text);
	assert_int_equal(docs.count, 1);
	crd = json_incref(docs.docs[0].value);
	kars_yaml_docs_free(&docs);
	return crd;
}

static void test_checked_in_crds_match_the_schema(void **state)
{
	for (size_t i = 0; kars_kinds[i]; i++) {
		char name[128], path[256];
		char *want = kars_crd_render(kars_kinds[i]), *have;
		size_t len;

		kars_crd_file_name(kars_kinds[i], name, sizeof(name));
		snprintf(path, sizeof(path), "deploy/crds/%s", name);
		have = slurp(path, &len);
		if (!have || strcmp(have, want))
			fail_msg("%s differs from the schema: run `make crds` and commit", path);
		free(have);
		free(want);
	}
}

static void test_no_stray_crd_files(void **state)
{
	DIR *d = opendir("deploy/crds");
	struct dirent *e;
	size_t n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (strstr(e->d_name, ".yaml"))
			n++;
	closedir(d);
	assert_int_equal(n, 12);
}

static const json_t *openapi_of(const json_t *crd)
{
	return json_object_get(
	    json_object_get(
		json_array_get(json_object_get(json_object_get(crd, "spec"), "versions"), 0),
		"schema"),
	    "openAPIV3Schema");
}

/* Fields of v the schema s would prune, appended to out. */
static void pruned(const json_t *s, const json_t *v, const char *path, char *out, size_t len)
{
	const char *key;
	json_t *val;
	size_t i;
	char sub[512];

	if (json_is_true(json_object_get(s, "x-kubernetes-preserve-unknown-fields")))
		return;
	if (json_is_object(v)) {
		const json_t *props = json_object_get(s, "properties");
		const json_t *addl = json_object_get(s, "additionalProperties");

		json_object_foreach((json_t *)v, key, val)
		{
			const json_t *sub_s = props ? json_object_get(props, key) : addl;

			snprintf(sub, sizeof(sub), "%s.%s", path, key);
			if (!sub_s)
				snprintf(out + strlen(out), len - strlen(out), " %s", sub);
			else
				pruned(sub_s, val, sub, out, len);
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, val)
		{
			snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
			pruned(json_object_get(s, "items"), val, sub, out, len);
		}
	}
}

static void test_spec_examples_validate_and_nothing_is_pruned(void **state)
{
	const char *dir = "selftests/schema/spec-examples";
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t files = 0;

	assert_non_null(d);
	while ((e = readdir(d))) {
		char path[512], lost[2048] = "", all[4096];
		struct kars_yaml_docs docs;
		struct kars_err err = {};
		size_t len;
		char *text;

		if (!strstr(e->d_name, ".yaml"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		text = slurp(path, &len);
		assert_non_null(text);
		if (kars_yaml_load_all(text, len, &docs, &err))
			fail_msg("%s: %s", path, err.msg);
		free(text);
		for (size_t i = 0; i < docs.count; i++) {
			struct kars_problems p = {};
			const struct kars_kind *k = NULL;
			json_t *obj = docs.docs[i].value, *crd;

			if (kars_validate_object(obj, &k, &p))
				fail_msg("%s: refused:\n%s", path,
					 kars_problems_join(&p, all, sizeof(all)));
			crd = load_crd_file(k);
			/* metadata is ObjectMeta, which no CRD schema prunes */
			json_object_del(obj, "metadata");
			pruned(openapi_of(crd), obj, "", lost, sizeof(lost));
			json_decref(crd);
			if (*lost)
				fail_msg("%s: the CRD would prune:%s", path, lost);
		}
		kars_yaml_docs_free(&docs);
		files++;
	}
	closedir(d);
	assert_true(files >= 8);
}

/* The a2a, upstreamCompatibility and meshAuth the original lost are in the CRD. */
static void test_sandbox_crd_keeps_the_fields_the_original_pruned(void **state)
{
	json_t *crd = load_crd_file(kars_kind_find("KarsSandbox"));
	const json_t *spec = json_object_get(
	    json_object_get(json_object_get(openapi_of(crd), "properties"), "spec"), "properties");

	assert_non_null(json_object_get(spec, "a2a"));
	assert_non_null(json_object_get(spec, "upstreamCompatibility"));
	assert_non_null(json_object_get(spec, "meshAuth"));
	json_decref(crd);
}

static void check_structural(const struct kars_field *f, const char *kind)
{
	if (f->list_map_key) {
		const struct kars_field *c = f->items->props;

		while (c && c->name && strcmp(c->name, f->list_map_key))
			c++;
		if (!c || !c->name || !(c->flags & KF_REQUIRED))
			fail_msg("%s.%s: list-map key %s must be a required field", kind, f->name,
				 f->list_map_key);
	}
	if (f->flags & KF_SET && f->items->type == KT_OBJECT)
		fail_msg("%s.%s: listType set needs scalar items", kind, f->name);
	if ((f->type == KT_ARRAY || f->type == KT_MAP) && !f->items)
		fail_msg("%s.%s: no item schema", kind, f->name);
	if (f->dflt) {
		json_t *d = json_loads(f->dflt, JSON_DECODE_ANY, NULL);

		if (!d)
			fail_msg("%s.%s: default is not JSON", kind, f->name);
		json_decref(d);
	}
	for (const struct kars_rule *r = f->rules; r && r->cel; r++)
		if (!r->ok || !r->message)
			fail_msg("%s.%s: rule without its C half or message", kind, f->name);
	for (const struct kars_field *c = f->props; c && c->name; c++)
		check_structural(c, kind);
	if (f->items)
		check_structural(f->items, kind);
}

static void test_schema_is_structural(void **state)
{
	for (size_t i = 0; kars_kinds[i]; i++) {
		const struct kars_kind *k = kars_kinds[i];

		check_structural(k->spec, k->kind);
		check_structural(k->status, k->kind);
		/* every printer column points at a field of the schema */
		for (const struct kars_column *c = k->columns; c && c->name; c++) {
			char path[256];

			if (strncmp(c->json_path, ".metadata.", 10) == 0)
				continue;
			snprintf(path, sizeof(path), "%s", c->json_path + 1);
			path[strcspn(path, "[")] = '\0';
			if (!kars_field_find(k, path))
				fail_msg("%s column %s: no field %s", k->kind, c->name, path);
		}
		assert_non_null(k->phases);
		assert_non_null(kars_field_find(k, "status.conditions"));
		assert_non_null(kars_field_find(k, "status.phase"));
	}
}

/* The status.phase enum is the kind's closed phase list. */
static void test_phase_enum_is_the_kinds_phase_list(void **state)
{
	for (size_t i = 0; kars_kinds[i]; i++) {
		const struct kars_kind *k = kars_kinds[i];
		const struct kars_field *phase = kars_field_find(k, "status.phase");

		for (size_t j = 0; k->phases[j]; j++) {
			assert_non_null(phase->enums[j]);
			assert_string_equal(phase->enums[j], k->phases[j]);
		}
	}
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_checked_in_crds_match_the_schema),
    cmocka_unit_test(test_no_stray_crd_files),
    cmocka_unit_test(test_spec_examples_validate_and_nothing_is_pruned),
    cmocka_unit_test(test_sandbox_crd_keeps_the_fields_the_original_pruned),
    cmocka_unit_test(test_schema_is_structural),
    cmocka_unit_test(test_phase_enum_is_the_kinds_phase_list),
};

KARS_UNIT_MAIN(tests)
