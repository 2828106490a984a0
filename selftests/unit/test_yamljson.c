/* test_yamljson.c - unit tests for YAML in and out (userspace/lib/yamljson.h).
 *
 * Manifests reach kars as YAML; the loader must read them exactly as kubectl
 * does (YAML 1.1 scalars: an unquoted off is a boolean), refuse what could
 * hide or blow up content (aliases, duplicate keys, deep nesting), name the
 * line of every error, and the emitter's output must read back to the same
 * tree, whatever the strings hold.
 */
#include "unit.h"

#include <errno.h>
#include <stdlib.h>

#include "yamljson.h"

static json_t *load_one(const char *s)
{
	struct kars_yaml_docs docs;
	struct kars_err err = {};
	json_t *v;

	if (kars_yaml_load_all(s, strlen(s), &docs, &err))
		fail_msg("\"%s\" was refused: %s", s, err.msg);
	assert_int_equal(docs.count, 1);
	v = json_incref(docs.docs[0].value);
	kars_yaml_docs_free(&docs);
	return v;
}

static void expect_error(const char *s, const char *needle)
{
	struct kars_yaml_docs docs;
	struct kars_err err = {};

	if (kars_yaml_load_all(s, strlen(s), &docs, &err) == 0)
		fail_msg("\"%s\" was accepted", s);
	assert_int_equal(docs.count, 0);
	assert_err_contains(&err, needle);
}

static void expect_scalar(const char *text, const char *json)
{
	json_t *want = json_loads(json, JSON_DECODE_ANY, NULL);
	json_t *got = kars_yaml_resolve_plain(text, strlen(text));

	if (!json_equal(want, got)) {
		char *g = json_dumps(got, JSON_ENCODE_ANY);

		fail_msg("plain \"%s\" resolved to %s, want %s", text, g, json);
	}
	json_decref(want);
	json_decref(got);
}

static void test_plain_scalars_as_kubectl(void **state)
{
	expect_scalar("", "null");
	expect_scalar("~", "null");
	expect_scalar("null", "null");
	expect_scalar("off", "false");
	expect_scalar("On", "true");
	expect_scalar("yes", "true");
	expect_scalar("n", "false");
	expect_scalar("y", "true"); /* go-yaml v2, so kubectl, reads y as true */
	expect_scalar("true", "true");
	expect_scalar("42", "42");
	expect_scalar("-7", "-7");
	expect_scalar("0x1F", "31");
	expect_scalar("017", "15");
	expect_scalar("1_000", "1000");
	expect_scalar("1e3", "1000");
	expect_scalar("2.5", "2.5");
	expect_scalar("3.12", "3.12");
	expect_scalar("1.2.3", "\"1.2.3\"");
	expect_scalar("v1", "\"v1\"");
	expect_scalar("08", "8"); /* go-yaml: not octal, but a float */
	expect_scalar("99999999999999999999", "1e20");
	expect_scalar("sha256:abc", "\"sha256:abc\"");
}

static void test_quoted_is_string(void **state)
{
	json_t *v = load_one("a: \"off\"\nb: 'true'\nc: !!str 12\nd: off\n");

	assert_string_equal(json_string_value(json_object_get(v, "a")), "off");
	assert_string_equal(json_string_value(json_object_get(v, "b")), "true");
	assert_string_equal(json_string_value(json_object_get(v, "c")), "12");
	assert_true(json_is_false(json_object_get(v, "d")));
	json_decref(v);
}

static void test_multi_document_lines(void **state)
{
	const char *s = "# c\na: 1\n---\n---\nb: [x, z]\n...\n---\nc: {d: e}\n";
	struct kars_yaml_docs docs;
	struct kars_err err = {};

	assert_int_equal(kars_yaml_load_all(s, strlen(s), &docs, &err), 0);
	assert_int_equal(docs.count, 3); /* the empty document is skipped */
	assert_int_equal(docs.docs[0].line, 2);
	assert_int_equal(docs.docs[1].line, 5);
	assert_int_equal(docs.docs[2].line, 8);
	assert_string_equal(
	    json_string_value(json_array_get(json_object_get(docs.docs[1].value, "b"), 1)), "z");
	kars_yaml_docs_free(&docs);
}

static void test_refusals_name_the_line(void **state)
{
	expect_error("a: 1\nb: &x [1]\nc: *x\n", "line 3");
	expect_error("a: 1\nb: &x [1]\nc: *x\n", "aliases");
	expect_error("a: 1\nb: 2\na: 3\n", "duplicate key \"a\"");
	expect_error("a: 1\nb: 2\na: 3\n", "line 3");
	expect_error("a: [1, 2\n", "line");
	expect_error("? [a]\n: 1\n", "a mapping key must be a scalar");
	expect_error("a: .inf\n", "no JSON representation");
	expect_error("a: \"\\0\"\n\"b\\0\": 1\n", "NUL");
}

static void test_depth_limit(void **state)
{
	char deep[400] = "";

	for (int i = 0; i < 100; i++)
		strcat(deep, "[");
	expect_error(deep, "nested deeper than 64");
}

static void test_dump_round_trip(void **state)
{
	const char *json =
	    "{\"a\":\"off\",\"b\":\"3.12\",\"c\":\"\",\"d\":\"x: y\",\"e\":\"- z\","
	    "\"f\":[1,2.5,true,null,{\"g\":[]},{},[[\"h\"]]],\"i\":\"line\\nnext\","
	    "\"j\":\"#not a comment\",\"k\":\"\\u00e9t\\u00e9\",\"l\":\"0x10\","
	    "\"m\":{\"n\":{\"o\":\"sha256:ab\"}},\"p\":\"  lead\",\"q\":\"a\\u0000b\"}";
	json_t *want = json_loads(json, JSON_ALLOW_NUL, NULL);
	char *yaml = kars_yaml_dump(want);
	struct kars_yaml_docs docs;
	struct kars_err err = {};

	assert_non_null(yaml);
	if (kars_yaml_load_all(yaml, strlen(yaml), &docs, &err))
		fail_msg("dump does not load back: %s\n%s", err.msg, yaml);
	assert_int_equal(docs.count, 1);
	if (!json_equal(want, docs.docs[0].value))
		fail_msg("round trip changed the tree:\n%s", yaml);
	/* kubectl style: block mappings, list items at the key's indentation */
	assert_non_null(strstr(yaml, "\nf:\n- 1\n"));
	assert_non_null(strstr(yaml, "a: \"off\"\n"));
	kars_yaml_docs_free(&docs);
	json_decref(want);
	free(yaml);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_plain_scalars_as_kubectl),
    cmocka_unit_test(test_quoted_is_string),
    cmocka_unit_test(test_multi_document_lines),
    cmocka_unit_test(test_refusals_name_the_line),
    cmocka_unit_test(test_depth_limit),
    cmocka_unit_test(test_dump_round_trip),
};

KARS_UNIT_MAIN(tests)
