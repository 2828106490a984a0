/* test_json.c - unit tests for the JSON helpers (userspace/lib/json.h).
 *
 * Every control request is JSON read through these helpers: a request must be
 * exactly one value, a typo'd field must be refused rather than ignored, and
 * each error must name where it is (line/column/byte, or a kubectl-style
 * field path such as "rules[3].port").
 */
#include "unit.h"

#include <errno.h>

#include "json.h"

/* Parses the NUL-terminated s, expecting an error containing each needle. */
static void expect_parse_error(const char *s, const char *needle1, const char *needle2)
{
	struct kars_err err = {0};
	json_t *j = kars_json_parse(s, strlen(s), &err);

	if (j) {
		json_decref(j);
		fail_msg("\"%s\" was accepted", s);
	}
	assert_int_equal(err.code, EINVAL);
	assert_err_contains(&err, needle1);
	assert_err_contains(&err, needle2);
}

static json_t *parse_ok(const char *s)
{
	struct kars_err err = {0};
	json_t *j = kars_json_parse(s, strlen(s), &err);

	if (!j)
		fail_msg("\"%s\" was refused: %s", s, err.msg);
	return j;
}

static void test_parse_one_value(void **state)
{
	json_t *j = parse_ok(" {\"a\": [1, 2], \"b\": \"x\"}\r\n\t \n");

	assert_true(json_is_object(j));
	assert_int_equal(json_integer_value(json_array_get(json_object_get(j, "a"), 1)), 2);
	json_decref(j);
	j = parse_ok("[]");
	assert_true(json_is_array(j));
	json_decref(j);
}

static void test_parse_uses_len(void **state)
{
	struct kars_err err = {0};
	/* only the first 8 bytes are the request */
	json_t *j = kars_json_parse("{\"a\":1}\n{garbage", 8, &err);

	assert_non_null(j);
	json_decref(j);
}

static void test_parse_rejects_trailing_data(void **state)
{
	expect_parse_error("{\"a\":1} x", "byte 8", "line 1, column 9");
	expect_parse_error("{\"a\":1}{}", "byte 7", "line 1, column 8");
	expect_parse_error("{\"a\":1}\n\n  ]", "byte 11", "line 3, column 3");
	expect_parse_error("[1]/", "byte 3", "line 1");
}

static void test_parse_rejects_nul_after_value(void **state)
{
	static const char buf[] = "{\"a\":1}\0";
	struct kars_err err = {0};
	json_t *j = kars_json_parse(buf, sizeof(buf) - 1, &err);

	assert_null(j);
	assert_err_contains(&err, "byte 7");
}

static void test_parse_rejects_duplicate_keys(void **state)
{
	expect_parse_error("{\"a\": 1,\n \"a\": 2}", "duplicate", "line 2");
	/* also inside nested objects */
	expect_parse_error("{\"r\": [{\"port\": 1, \"port\": 2}]}", "duplicate", "line 1");
}

static void test_parse_syntax_error_located(void **state)
{
	expect_parse_error("{\n  \"a\": 1,\n}", "line 3", "byte");
	expect_parse_error("", "line", "byte 0");
	expect_parse_error("{\"a\": 01}", "line 1", "byte");
	expect_parse_error("{\"a\": \"\xff\"}", "line 1", "byte");
	/* a request is an object or array, never a bare scalar */
	expect_parse_error("\"str\"", "line 1", "byte");
	expect_parse_error("42", "line 1", "byte");
}

static void test_parse_rejects_nul_in_string(void **state)
{
	static const char raw[] = "{\"a\": \"x\0y\"}";
	struct kars_err err = {0};
	json_t *j;

	expect_parse_error("{\"a\": \"x\\u0000y\"}", "line 1", "byte");
	j = kars_json_parse(raw, sizeof(raw) - 1, &err);
	assert_null(j);
	assert_err_contains(&err, "byte");
}

static void test_only_keys(void **state)
{
	static const char *const allowed[] = {"ip", "port", NULL};
	json_t *j = parse_ok("{\"ip\": \"192.0.2.1\", \"prot\": 1}");
	struct kars_err err = {0};

	assert_int_equal(kars_json_only_keys(j, "rules[3]", allowed, &err), -EINVAL);
	assert_string_equal(err.msg, "rules[3].prot: unknown field");
	kars_err_clear(&err);
	assert_int_equal(kars_json_only_keys(j, "", allowed, &err), -EINVAL);
	assert_string_equal(err.msg, "prot: unknown field");
	json_decref(j);

	j = parse_ok("{\"ip\": \"192.0.2.1\", \"port\": 1}");
	kars_err_clear(&err);
	assert_int_equal(kars_json_only_keys(j, "rules[3]", allowed, &err), 0);
	assert_int_equal(err.code, 0);
	json_decref(j);
}

static void test_only_keys_needs_object(void **state)
{
	static const char *const allowed[] = {"a", NULL};
	json_t *j = parse_ok("[1]");
	struct kars_err err = {0};

	assert_int_equal(kars_json_only_keys(j, "agent", allowed, &err), -EINVAL);
	assert_err_contains(&err, "agent: ");
	kars_err_clear(&err);
	assert_int_equal(kars_json_only_keys(j, "", allowed, &err), -EINVAL);
	assert_err_contains(&err, "(root)");
	json_decref(j);
}

static void test_get_uint(void **state)
{
	static const char *const bad[] = {"zero", "big", "neg", "real", "str"};
	json_t *j = parse_ok("{\"port\": 443, \"zero\": 0, \"big\": 65536, \"neg\": -1,"
			     " \"real\": 443.0, \"str\": \"443\", \"max\": 9223372036854775807}");
	struct kars_err err = {0};
	uint64_t v = 7;

	assert_int_equal(kars_json_get_uint(j, "rules[3]", "port", true, 1, 65535, &v, &err), 0);
	assert_int_equal(v, 443);
	assert_int_equal(kars_json_get_uint(j, "", "max", true, 0, UINT64_MAX, &v, &err), 0);
	assert_true(v == INT64_MAX);
	/* a negative number is not a huge unsigned one */
	assert_int_equal(kars_json_get_uint(j, "", "neg", true, 0, UINT64_MAX, &v, &err), -EINVAL);
	assert_string_equal(err.msg, "neg: expected an integer in [0, 18446744073709551615]");
	assert_true(v == INT64_MAX);

	/* optional and absent: untouched, no error */
	kars_err_clear(&err);
	v = 7;
	assert_int_equal(kars_json_get_uint(j, "rules[3]", "nope", false, 1, 65535, &v, &err), 0);
	assert_int_equal(v, 7);
	assert_int_equal(err.code, 0);

	/* required and absent */
	assert_int_equal(kars_json_get_uint(j, "rules[3]", "nope", true, 1, 65535, &v, &err),
			 -EINVAL);
	assert_string_equal(err.msg, "rules[3].nope: Required value");

	/* present but wrong: type, range, sign, real */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char want[128];

		kars_err_clear(&err);
		v = 7;
		if (kars_json_get_uint(j, "rules[3]", bad[i], false, 1, 65535, &v, &err) != -EINVAL)
			fail_msg("\"%s\" was accepted", bad[i]);
		snprintf(want, sizeof(want), "rules[3].%s: expected an integer in [1, 65535]",
			 bad[i]);
		assert_string_equal(err.msg, want);
		assert_int_equal(v, 7);
	}
	json_decref(j);
}

static void test_get_string(void **state)
{
	json_t *j = parse_ok("{\"sandbox\": \"a/b\", \"n\": 1, \"nul\": null}");
	struct kars_err err = {0};
	const char *s = "unset";

	assert_int_equal(kars_json_get_string(j, "", "sandbox", true, &s, &err), 0);
	assert_string_equal(s, "a/b");
	s = "unset";
	assert_int_equal(kars_json_get_string(j, "", "mode", false, &s, &err), 0);
	assert_string_equal(s, "unset");
	assert_int_equal(kars_json_get_string(j, "agent", "cgroup", true, &s, &err), -EINVAL);
	assert_string_equal(err.msg, "agent.cgroup: Required value");
	kars_err_clear(&err);
	assert_int_equal(kars_json_get_string(j, "", "n", false, &s, &err), -EINVAL);
	assert_string_equal(err.msg, "n: expected a string");
	kars_err_clear(&err);
	/* null is not a way to say "absent" */
	assert_int_equal(kars_json_get_string(j, "", "nul", false, &s, &err), -EINVAL);
	assert_string_equal(err.msg, "nul: expected a string");
	assert_string_equal(s, "unset");
	json_decref(j);
}

static void test_get_string_rejects_nul(void **state)
{
	/* jansson can hold a NUL inside a string (built in code, or JSON_ALLOW_NUL);
	 * C code would see a shorter name, so the getter refuses it. */
	json_t *j = json_object();
	struct kars_err err = {0};
	const char *s = "unset";

	json_object_set_new(j, "cgroup", json_stringn("kars/a\0/../../x", 15));
	assert_int_equal(kars_json_get_string(j, "agent", "cgroup", true, &s, &err), -EINVAL);
	assert_string_equal(err.msg, "agent.cgroup: NUL byte in string");
	assert_string_equal(s, "unset");
	json_decref(j);
}

static void test_get_bool(void **state)
{
	json_t *j = parse_ok("{\"t\": true, \"f\": false, \"s\": \"true\", \"i\": 1}");
	struct kars_err err = {0};
	bool b = false;

	assert_int_equal(kars_json_get_bool(j, "x", "t", true, &b, &err), 0);
	assert_true(b);
	assert_int_equal(kars_json_get_bool(j, "x", "f", true, &b, &err), 0);
	assert_false(b);
	b = true;
	assert_int_equal(kars_json_get_bool(j, "x", "absent", false, &b, &err), 0);
	assert_true(b);
	assert_int_equal(kars_json_get_bool(j, "x", "s", false, &b, &err), -EINVAL);
	assert_string_equal(err.msg, "x.s: expected true or false");
	kars_err_clear(&err);
	assert_int_equal(kars_json_get_bool(j, "x", "i", false, &b, &err), -EINVAL);
	assert_string_equal(err.msg, "x.i: expected true or false");
	kars_err_clear(&err);
	assert_int_equal(kars_json_get_bool(j, "x", "absent", true, &b, &err), -EINVAL);
	assert_string_equal(err.msg, "x.absent: Required value");
	json_decref(j);
}

static void test_get_array_and_object(void **state)
{
	json_t *j = parse_ok("{\"rules\": [], \"agent\": {}, \"s\": \"x\"}");
	struct kars_err err = {0};
	int ret = 99;

	assert_ptr_equal(kars_json_get_array(j, "", "rules", true, &ret, &err),
			 json_object_get(j, "rules"));
	assert_int_equal(ret, 0);
	assert_ptr_equal(kars_json_get_object(j, "", "agent", true, &ret, &err),
			 json_object_get(j, "agent"));
	assert_int_equal(ret, 0);

	/* absent and optional: NULL with ret 0 */
	ret = 99;
	assert_null(kars_json_get_array(j, "", "nope", false, &ret, &err));
	assert_int_equal(ret, 0);
	assert_int_equal(err.code, 0);

	/* absent and required */
	assert_null(kars_json_get_object(j, "spec", "nope", true, &ret, &err));
	assert_int_equal(ret, -EINVAL);
	assert_string_equal(err.msg, "spec.nope: Required value");

	/* wrong type: NULL with an error, even when optional */
	kars_err_clear(&err);
	assert_null(kars_json_get_array(j, "", "agent", false, &ret, &err));
	assert_int_equal(ret, -EINVAL);
	assert_string_equal(err.msg, "agent: expected an array");
	kars_err_clear(&err);
	assert_null(kars_json_get_object(j, "", "s", false, &ret, &err));
	assert_int_equal(ret, -EINVAL);
	assert_string_equal(err.msg, "s: expected an object");
	json_decref(j);
}

static void test_paths(void **state)
{
	char buf[32];
	char tiny[6];

	assert_string_equal(kars_json_path(buf, sizeof(buf), "", "port"), "port");
	assert_string_equal(kars_json_path(buf, sizeof(buf), NULL, "port"), "port");
	assert_string_equal(kars_json_path(buf, sizeof(buf), "rules[3]", "port"), "rules[3].port");
	assert_string_equal(kars_json_path_index(buf, sizeof(buf), "rules", 3), "rules[3]");
	/* truncated, never overflowing */
	assert_string_equal(kars_json_path(tiny, sizeof(tiny), "rules", "port"), "rules");
	assert_string_equal(kars_json_path_index(tiny, sizeof(tiny), "rules", 12), "rules");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_parse_one_value),
    cmocka_unit_test(test_parse_uses_len),
    cmocka_unit_test(test_parse_rejects_trailing_data),
    cmocka_unit_test(test_parse_rejects_nul_after_value),
    cmocka_unit_test(test_parse_rejects_duplicate_keys),
    cmocka_unit_test(test_parse_syntax_error_located),
    cmocka_unit_test(test_parse_rejects_nul_in_string),
    cmocka_unit_test(test_only_keys),
    cmocka_unit_test(test_only_keys_needs_object),
    cmocka_unit_test(test_get_uint),
    cmocka_unit_test(test_get_string),
    cmocka_unit_test(test_get_string_rejects_nul),
    cmocka_unit_test(test_get_bool),
    cmocka_unit_test(test_get_array_and_object),
    cmocka_unit_test(test_paths),
};

KARS_UNIT_MAIN(tests)
