/* test_dns_blocklist.c - unit tests for the DNS blocklist's userspace half:
 * name normalisation (dns_name.h), the hash the BPF walk must reproduce, the
 * two-choice table (dns_table.h) and the line formats (blocklist_parse.h).
 *
 * The hash is checked against libsodium's SipHash-2-4 (crypto_shorthash),
 * an implementation that shares nothing with ours.
 */
#include "unit.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>

#include "blocklist_parse.h"
#include "dns_name.h"
#include "dns_table.h"

static void test_siphash_matches_libsodium(void **state)
{
	uint8_t key[16], data[300];
	uint64_t k[2], ours;
	unsigned char theirs[8];

	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)(i * 7 + 3);
	memcpy(k, key, 16); /* little-endian host: k0, k1 as crypto_shorthash reads them */
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 13 + 1);
	for (size_t len = 0; len <= sizeof(data); len++) {
		uint64_t t;

		crypto_shorthash(theirs, data, len, key);
		memcpy(&t, theirs, 8);
		ours = kars_dns_siphash(k, data, len);
		assert_true(ours == (t ? t : 1));
	}
}

static int norm(const char *in, size_t len, char *out, struct kars_err *err)
{
	kars_err_clear(err);
	return kars_dns_name_normalize(in, len, out, err);
}

static void test_normalize(void **state)
{
	struct kars_err err = {0};
	char out[KARS_DNS_NAME_BUF];

	assert_int_equal(norm(" Example.COM. ", 14, out, &err), 0);
	assert_string_equal(out, "example.com");
	assert_int_equal(norm("bücher.example", strlen("bücher.example"), out, &err), 0);
	assert_string_equal(out, "xn--bcher-kva.example");
	assert_int_equal(norm("BÜCHER.example", strlen("BÜCHER.example"), out, &err), 0);
	assert_string_equal(out, "xn--bcher-kva.example");
	assert_int_equal(norm("_dmarc.example.com", 18, out, &err), 0);
	assert_int_not_equal(norm("a..b", 4, out, &err), 0);
	assert_err_contains(&err, "label 2 is empty");
	assert_int_not_equal(norm("a b.c", 5, out, &err), 0);
	assert_err_contains(&err, "byte 2");
	assert_int_not_equal(norm(".", 1, out, &err), 0);
	assert_err_contains(&err, "empty name");
	{
		char l64[80];

		memset(l64, 'a', 64);
		strcpy(l64 + 64, ".com");
		assert_int_not_equal(norm(l64, strlen(l64), out, &err), 0);
		assert_err_contains(&err, "longer than 63");
	}
	{
		char big[300];

		for (int i = 0; i < 4; i++) {
			memset(big + i * 64, 'a', 63);
			big[i * 64 + 63] = '.';
		}
		strcpy(big + 256, "com");
		assert_int_not_equal(norm(big, strlen(big), out, &err), 0);
		assert_err_contains(&err, "more than 253");
	}
}

static void test_suffix_hashes_are_name_hashes(void **state)
{
	const uint64_t key[2] = {0x0123456789abcdefULL, 0xfedcba9876543210ULL};
	uint64_t h[KARS_DNS_MAX_WIRE];
	size_t starts[KARS_DNS_MAX_WIRE];
	size_t n = kars_dns_suffix_hashes(key, "a.example.com", h, starts);

	assert_int_equal(n, 3);
	assert_true(h[0] == kars_dns_name_hash(key, "com"));
	assert_true(h[1] == kars_dns_name_hash(key, "example.com"));
	assert_true(h[2] == kars_dns_name_hash(key, "a.example.com"));
	assert_int_equal(starts[1], 2);
	/* Another key, another hash. */
	{
		const uint64_t other[2] = {1, 2};

		assert_true(kars_dns_name_hash(other, "com") != h[0]);
	}
}

static void test_table_finds_everything(void **state)
{
	struct kars_err err = {0};
	struct kars_dns_table t;
	size_t n = 100000;
	uint64_t *h = malloc(n * sizeof(*h)), *copy = malloc(n * sizeof(*h));
	uint64_t x = 88172645463325252ULL;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		h[i] = copy[i] = x | 1;
	}
	h[1] = copy[1] = h[0]; /* a duplicate */
	assert_int_equal(kars_dns_table_build(h, n, &t, &err), 0);
	assert_int_equal(t.entries, n - 1);
	assert_true(t.n_buckets >= (n - 1) / 4);
	for (size_t i = 0; i < n; i++)
		assert_true(kars_dns_table_has(&t, copy[i]));
	assert_false(kars_dns_table_has(&t, 2)); /* even: never inserted */
	kars_dns_table_free(&t);
	free(h);
	free(copy);
}

struct collected {
	char names[8][KARS_DNS_NAME_BUF];
	int n;
};

static int collect(void *arg, const char *name)
{
	struct collected *c = arg;

	snprintf(c->names[c->n++], KARS_DNS_NAME_BUF, "%s", name);
	return 0;
}

static int parse(const char *line, struct collected *c, struct kars_err *err)
{
	memset(c, 0, sizeof(*c));
	kars_err_clear(err);
	return kars_blocklist_parse_line(line, strlen(line), collect, c, err);
}

static void test_line_formats(void **state)
{
	struct kars_err err = {0};
	struct collected c;

	assert_int_equal(parse("*.Ads.Example", &c, &err), 1);
	assert_string_equal(c.names[0], "ads.example");
	assert_int_equal(parse("tracker.example.", &c, &err), 1);
	assert_string_equal(c.names[0], "tracker.example");
	assert_int_equal(parse("0.0.0.0 a.example b.example # two", &c, &err), 2);
	assert_string_equal(c.names[1], "b.example");
	assert_int_equal(parse("127.0.0.1\tc.example\r", &c, &err), 1);
	assert_int_equal(parse(":: d.example", &c, &err), 1);
	assert_int_equal(parse("127.0.0.1 localhost", &c, &err), 0);
	assert_int_equal(parse("0.0.0.0 0.0.0.0", &c, &err), 0);
	assert_int_equal(parse("# a comment", &c, &err), 0);
	assert_int_equal(parse("! adblock header", &c, &err), 0);
	assert_int_equal(parse("   ", &c, &err), 0);
	assert_int_equal(parse("", &c, &err), 0);
	assert_int_equal(parse("bücher.example", &c, &err), 1);
	assert_string_equal(c.names[0], "xn--bcher-kva.example");
}

static void test_line_errors(void **state)
{
	struct kars_err err = {0};
	struct collected c;

	assert_true(parse("a.*.example", &c, &err) < 0);
	assert_err_contains(&err, "leading \"*.\"");
	assert_true(parse("||ads.example^", &c, &err) < 0);
	assert_err_contains(&err, "adblock");
	assert_true(parse("10.1.2.3 intranet.example", &c, &err) < 0);
	assert_err_contains(&err, "not to a block address");
	assert_true(parse("a.example b.example", &c, &err) < 0);
	assert_err_contains(&err, "expected one name");
	assert_true(parse("192.0.2.1", &c, &err) < 0 || c.n == 0);
	assert_true(parse("bad_name!.example", &c, &err) < 0);
	assert_err_contains(&err, "bad_name!.example");
	assert_true(parse("0.0.0.0 ok.example bad..example", &c, &err) < 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_siphash_matches_libsodium),
    cmocka_unit_test(test_normalize),
    cmocka_unit_test(test_suffix_hashes_are_name_hashes),
    cmocka_unit_test(test_table_finds_everything),
    cmocka_unit_test(test_line_formats),
    cmocka_unit_test(test_line_errors),
};

KARS_UNIT_MAIN(tests)
