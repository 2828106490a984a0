/* test_addr.c - unit tests for addresses and CIDRs (userspace/lib/addr.h).
 *
 * The data plane keys one map on 16-byte addresses with IPv4 in v4-mapped
 * form, so "192.0.2.1" and "::ffff:192.0.2.1" must parse to the same bytes and
 * an IPv4 /8 must become a /104 on the 128-bit scale.
 */
#include "unit.h"

#include <arpa/inet.h>
#include <errno.h>

#include "addr.h"

static const uint8_t mapped_192_0_2_1[16] = {0, 0, 0,	 0,    0,   0, 0, 0,
					     0, 0, 0xff, 0xff, 192, 0, 2, 1};

static void test_ipv4_is_v4_mapped(void **state)
{
	struct kars_err err = {0};
	struct kars_addr a;

	memset(&a, 0xaa, sizeof(a));
	assert_int_equal(kars_addr_parse("192.0.2.1", &a, "ip", &err), 0);
	assert_memory_equal(a.bytes, mapped_192_0_2_1, 16);
	assert_true(kars_addr_is_v4(&a));
}

static void test_mapped_equals_ipv4(void **state)
{
	struct kars_err err = {0};
	struct kars_addr a, b;

	assert_int_equal(kars_addr_parse("::ffff:192.0.2.1", &a, "ip", &err), 0);
	assert_int_equal(kars_addr_parse("192.0.2.1", &b, "ip", &err), 0);
	assert_memory_equal(a.bytes, b.bytes, 16);
	assert_true(kars_addr_is_v4(&a));
}

static void test_from_v4(void **state)
{
	struct kars_addr a;

	kars_addr_from_v4(&a, htonl(0xc0000201)); /* 192.0.2.1 */
	assert_memory_equal(a.bytes, mapped_192_0_2_1, 16);
}

static void test_ipv6(void **state)
{
	static const uint8_t want[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
					 0,    0,    0,	   0,	 0, 0, 0, 1};
	struct kars_err err = {0};
	struct kars_addr a;

	assert_int_equal(kars_addr_parse("2001:db8::1", &a, "ip", &err), 0);
	assert_memory_equal(a.bytes, want, 16);
	assert_false(kars_addr_is_v4(&a));
	/* IPv4-compatible (deprecated) and NAT64 forms are not v4-mapped */
	assert_int_equal(kars_addr_parse("::192.0.2.1", &a, "ip", &err), 0);
	assert_false(kars_addr_is_v4(&a));
	assert_int_equal(kars_addr_parse("64:ff9b::192.0.2.1", &a, "ip", &err), 0);
	assert_false(kars_addr_is_v4(&a));
}

static void test_bad_address_rejected(void **state)
{
	static const char *const bad[] = {
	    "",		  "192.0.2",	 "192.0.2.256",	 "192.0.2.1 ",	" 192.0.2.1",
	    "192.0.2.01", "2001:db8::g", "2001:db8:::1", "example.com", "192.0.2.1/32",
	    "1",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct kars_err err = {0};
		struct kars_addr a;

		if (kars_addr_parse(bad[i], &a, "rules[2].ip", &err) != -EINVAL)
			fail_msg("\"%s\" was accepted", bad[i]);
		assert_int_equal(err.code, EINVAL);
		assert_err_contains(&err, "rules[2].ip: ");
	}
}

static void test_cidr_v4_prefix_scaled(void **state)
{
	static const uint8_t want[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 0};
	struct kars_err err = {0};
	struct kars_addr a;
	uint8_t prefix = 0;

	assert_int_equal(kars_cidr_parse("10.0.0.0/8", &a, &prefix, "cidr", &err), 0);
	assert_int_equal(prefix, 104);
	assert_memory_equal(a.bytes, want, 16);
	assert_int_equal(kars_cidr_parse("0.0.0.0/0", &a, &prefix, "cidr", &err), 0);
	assert_int_equal(prefix, 96);
	assert_int_equal(kars_cidr_parse("192.0.2.1/32", &a, &prefix, "cidr", &err), 0);
	assert_int_equal(prefix, 128);
	assert_memory_equal(a.bytes, mapped_192_0_2_1, 16);
}

static void test_cidr_v6(void **state)
{
	static const uint8_t want[16] = {0x20, 0x01, 0x0d, 0xb8};
	struct kars_err err = {0};
	struct kars_addr a;
	uint8_t prefix = 0;

	assert_int_equal(kars_cidr_parse("2001:db8::/32", &a, &prefix, "cidr", &err), 0);
	assert_int_equal(prefix, 32);
	assert_memory_equal(a.bytes, want, 16);
	assert_int_equal(kars_cidr_parse("::/0", &a, &prefix, "cidr", &err), 0);
	assert_int_equal(prefix, 0);
	assert_int_equal(kars_cidr_parse("2001:db8::1/128", &a, &prefix, "cidr", &err), 0);
	assert_int_equal(prefix, 128);
	/* written in IPv6 form, a mapped prefix is already on the 128-bit scale */
	assert_int_equal(kars_cidr_parse("::ffff:10.0.0.0/104", &a, &prefix, "cidr", &err), 0);
	assert_int_equal(prefix, 104);
	assert_true(kars_addr_is_v4(&a));
}

static void test_cidr_host_bits_rejected(void **state)
{
	static const char *const bad[] = {"10.0.0.1/8", "192.0.2.128/24", "2001:db8::1/64",
					  "10.128.0.0/8", "::1/127"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct kars_err err = {0};
		struct kars_addr a;
		uint8_t prefix = 77;

		if (kars_cidr_parse(bad[i], &a, &prefix, "rules[0].cidr", &err) != -EINVAL)
			fail_msg("\"%s\" was accepted", bad[i]);
		assert_err_contains(&err, "rules[0].cidr: ");
		assert_err_contains(&err, "host bits");
		assert_int_equal(prefix, 77);
	}
}

static void test_cidr_bad_input_rejected(void **state)
{
	static const char *const bad[] = {
	    "10.0.0.0",
	    "10.0.0.0/",
	    "10.0.0.0/33",
	    "10.0.0.0/-1",
	    "10.0.0.0/08",
	    "10.0.0.0/8 ",
	    "/8",
	    "2001:db8::/129",
	    "10.0.0/8",
	    "10.0.0.0/8/8",
	    "",
	    "x/8",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct kars_err err = {0};
		struct kars_addr a;
		uint8_t prefix = 77;

		if (kars_cidr_parse(bad[i], &a, &prefix, "rules[1].cidr", &err) >= 0)
			fail_msg("\"%s\" was accepted", bad[i]);
		assert_err_contains(&err, "rules[1].cidr: ");
		assert_int_equal(prefix, 77);
	}
}

static void test_cidr_long_input_rejected(void **state)
{
	struct kars_err err = {0};
	struct kars_addr a;
	uint8_t prefix = 77;
	char buf[200];

	memset(buf, '1', sizeof(buf));
	strcpy(buf + sizeof(buf) - 3, "/8");
	assert_int_equal(kars_cidr_parse(buf, &a, &prefix, "cidr", &err), -EINVAL);
	assert_err_contains(&err, "cidr: ");
}

static void test_addr_str_round_trip(void **state)
{
	static const char *const in[] = {
	    "192.0.2.1", "0.0.0.0", "255.255.255.255", "2001:db8::1", "::1", "fd00::10", "::"};
	char buf[64];

	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		struct kars_err err = {0};
		struct kars_addr a, b;

		assert_int_equal(kars_addr_parse(in[i], &a, "ip", &err), 0);
		assert_string_equal(kars_addr_str(&a, buf, sizeof(buf)), in[i]);
		assert_int_equal(kars_addr_parse(buf, &b, "ip", &err), 0);
		assert_memory_equal(a.bytes, b.bytes, 16);
	}
}

static void test_addr_str_mapped_prints_ipv4(void **state)
{
	struct kars_err err = {0};
	struct kars_addr a;
	char buf[46];

	assert_int_equal(kars_addr_parse("::ffff:198.51.100.7", &a, "ip", &err), 0);
	assert_string_equal(kars_addr_str(&a, buf, sizeof(buf)), "198.51.100.7");
	/* the longest IPv6 text fits the documented 46 bytes */
	assert_int_equal(
	    kars_addr_parse("ffff:ffff:ffff:ffff:ffff:fffe:255.255.255.255", &a, "ip", &err), 0);
	assert_non_null(kars_addr_str(&a, buf, sizeof(buf)));
	/* a buffer too short fails instead of truncating */
	assert_null(kars_addr_str(&a, buf, 8));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_ipv4_is_v4_mapped),
    cmocka_unit_test(test_mapped_equals_ipv4),
    cmocka_unit_test(test_from_v4),
    cmocka_unit_test(test_ipv6),
    cmocka_unit_test(test_bad_address_rejected),
    cmocka_unit_test(test_cidr_v4_prefix_scaled),
    cmocka_unit_test(test_cidr_v6),
    cmocka_unit_test(test_cidr_host_bits_rejected),
    cmocka_unit_test(test_cidr_bad_input_rejected),
    cmocka_unit_test(test_cidr_long_input_rejected),
    cmocka_unit_test(test_addr_str_round_trip),
    cmocka_unit_test(test_addr_str_mapped_prints_ipv4),
};

KARS_UNIT_MAIN(tests)
