/* test_parse.c - unit tests for strict number parsing (userspace/lib/parse.h).
 *
 * A policy value must be exactly one decimal number in range: anything atoi()
 * or strtoul() would quietly accept ("+1", " 1", "0x10", "01") is refused, and
 * the message names the field and the offending byte.
 */
#include "unit.h"

#include <errno.h>

#include "parse.h"

/* Parses s as u64 in [min, max], expecting failure with errno code; checks the
 * message names "what" and contains needle; *out must stay untouched. */
static void expect_u64_error(const char *s, uint64_t min, uint64_t max, int code,
			     const char *needle)
{
	struct kars_err err = {0};
	uint64_t out = 7777;

	assert_int_equal(kars_parse_u64(s, min, max, &out, "spec.port", &err), -code);
	assert_int_equal(err.code, code);
	assert_int_equal(out, 7777);
	assert_err_contains(&err, "spec.port: ");
	assert_err_contains(&err, needle);
}

static void test_accepts_plain_decimal(void **state)
{
	struct kars_err err = {0};
	uint64_t v = 1;
	uint32_t v32 = 1;
	uint16_t port = 0;

	assert_int_equal(kars_parse_u64("0", 0, 10, &v, "x", &err), 0);
	assert_int_equal(v, 0);
	assert_int_equal(kars_parse_u64("65535", 0, 65535, &v, "x", &err), 0);
	assert_int_equal(v, 65535);
	assert_int_equal(kars_parse_u64("18446744073709551615", 0, UINT64_MAX, &v, "x", &err), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(kars_parse_u32("4294967295", 0, UINT32_MAX, &v32, "x", &err), 0);
	assert_true(v32 == UINT32_MAX);
	assert_int_equal(kars_parse_port("65535", &port, "x", &err), 0);
	assert_int_equal(port, 65535);
	assert_int_equal(kars_parse_port("1", &port, "x", &err), 0);
	assert_int_equal(port, 1);
	assert_int_equal(err.code, 0);
	assert_string_equal(err.msg, "");
}

static void test_rejects_empty(void **state)
{
	struct kars_err err = {0};
	uint64_t v = 5;

	expect_u64_error("", 0, 10, EINVAL, "empty");
	assert_int_equal(kars_parse_u64(NULL, 0, 10, &v, "spec.port", &err), -EINVAL);
	assert_int_equal(v, 5);
	assert_err_contains(&err, "spec.port: ");
}

static void test_rejects_sign(void **state)
{
	expect_u64_error("+1", 0, 10, EINVAL, "at byte 0");
	expect_u64_error("-1", 0, 10, EINVAL, "at byte 0");
}

static void test_rejects_space(void **state)
{
	expect_u64_error(" 1", 0, 10, EINVAL, "at byte 0");
	expect_u64_error("1 ", 0, 10, EINVAL, "at byte 1");
	expect_u64_error("1\n", 0, 10, EINVAL, "at byte 1");
}

static void test_rejects_hex_and_junk(void **state)
{
	expect_u64_error("0x10", 0, 100, EINVAL, "at byte 1");
	expect_u64_error("12a", 0, 1000, EINVAL, "at byte 2");
	expect_u64_error("1.5", 0, 10, EINVAL, "at byte 1");
}

static void test_rejects_leading_zero(void **state)
{
	expect_u64_error("01", 0, 10, EINVAL, "leading zero");
	expect_u64_error("00", 0, 10, EINVAL, "leading zero");
}

static void test_rejects_u64_overflow(void **state)
{
	expect_u64_error("18446744073709551616", 0, UINT64_MAX, ERANGE, "too large");
	expect_u64_error("99999999999999999999999", 0, UINT64_MAX, ERANGE, "too large");
}

static void test_rejects_out_of_range(void **state)
{
	struct kars_err err = {0};
	uint32_t v32 = 9;
	uint16_t port = 9;

	expect_u64_error("11", 0, 10, ERANGE, "11");
	expect_u64_error("4", 5, 10, ERANGE, "4");
	/* u32: a value past UINT32_MAX must not wrap into range */
	assert_int_equal(kars_parse_u32("4294967296", 0, UINT32_MAX, &v32, "spec.uid", &err),
			 -ERANGE);
	assert_int_equal(v32, 9);
	assert_err_contains(&err, "spec.uid: ");

	kars_err_clear(&err);
	assert_int_equal(kars_parse_port("0", &port, "--port", &err), -ERANGE);
	assert_err_contains(&err, "--port: ");
	kars_err_clear(&err);
	assert_int_equal(kars_parse_port("65536", &port, "--port", &err), -ERANGE);
	assert_err_contains(&err, "--port: ");
	assert_int_equal(port, 9);
}

static void test_first_error_kept(void **state)
{
	struct kars_err err = {0};
	uint64_t v;

	assert_int_equal(kars_parse_u64("x", 0, 10, &v, "first", &err), -EINVAL);
	assert_int_equal(kars_parse_u64("y", 0, 10, &v, "second", &err), -EINVAL);
	assert_err_contains(&err, "first: ");
	assert_null(strstr(err.msg, "second"));
	/* a NULL err is allowed */
	assert_int_equal(kars_parse_u64("y", 0, 10, &v, "second", NULL), -EINVAL);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_accepts_plain_decimal), cmocka_unit_test(test_rejects_empty),
    cmocka_unit_test(test_rejects_sign),	  cmocka_unit_test(test_rejects_space),
    cmocka_unit_test(test_rejects_hex_and_junk),  cmocka_unit_test(test_rejects_leading_zero),
    cmocka_unit_test(test_rejects_u64_overflow),  cmocka_unit_test(test_rejects_out_of_range),
    cmocka_unit_test(test_first_error_kept),
};

KARS_UNIT_MAIN(tests)
