/* test_tls_sni.c - unit tests for the egress proxy's ClientHello parser
 * (userspace/router/tls_sni.c): crafted ClientHellos built field by field,
 * and one real one (curl's, captured into the fuzz seed corpus). Every
 * malformed length, ECH, a missing SNI and a hello cut at every byte. */
#include "unit.h"

#include <errno.h>
#include <stdlib.h>

#include "tls_sni.h"

struct hb {
	uint8_t b[20000];
	size_t n;
};

static void put(struct hb *h, const void *p, size_t n)
{
	memcpy(h->b + h->n, p, n);
	h->n += n;
}

static void put8(struct hb *h, unsigned v)
{
	h->b[h->n++] = (uint8_t)v;
}

static void put16(struct hb *h, unsigned v)
{
	put8(h, v >> 8);
	put8(h, v & 0xff);
}

/* An extension of type with len bytes of data. */
static void ext(struct hb *e, unsigned type, const void *data, size_t len)
{
	put16(e, type);
	put16(e, (unsigned)len);
	put(e, data, len);
}

/* A server_name extension with one host_name. */
static void ext_sni(struct hb *e, const char *name)
{
	size_t n = strlen(name);

	put16(e, 0);
	put16(e, (unsigned)(n + 5));
	put16(e, (unsigned)(n + 3));
	put8(e, 0);
	put16(e, (unsigned)n);
	put(e, name, n);
}

/* The ClientHello message (handshake header included) around exts. */
static void hello_msg(struct hb *m, const struct hb *exts)
{
	size_t body = 2 + 32 + 1 + 32 + 2 + 4 + 2 + 2 + exts->n;

	put8(m, 1);
	put8(m, (unsigned)(body >> 16));
	put16(m, (unsigned)(body & 0xffff));
	put16(m, 0x0303);
	for (int i = 0; i < 32; i++)
		put8(m, 0xaa); /* random */
	put8(m, 32);
	for (int i = 0; i < 32; i++)
		put8(m, 0x55); /* session id */
	put16(m, 4);
	put16(m, 0x1301);
	put16(m, 0x1302);
	put8(m, 1);
	put8(m, 0);
	put16(m, (unsigned)exts->n);
	put(m, exts->b, exts->n);
}

/* msg in records of at most rec bytes each. */
static void records(struct hb *out, const struct hb *msg, size_t rec)
{
	for (size_t off = 0; off < msg->n; off += rec) {
		size_t n = msg->n - off < rec ? msg->n - off : rec;

		put8(out, 22);
		put16(out, 0x0301);
		put16(out, (unsigned)n);
		put(out, msg->b + off, n);
	}
}

static struct hb *hello_with(const struct hb *exts)
{
	struct hb *m = calloc(1, sizeof(*m)), *r = calloc(1, sizeof(*r));

	hello_msg(m, exts);
	records(r, m, 16384);
	free(m);
	return r;
}

static enum kars_sni_result parse(const struct hb *h, char *sni, struct kars_err *err)
{
	size_t need = 0;

	kars_err_clear(err);
	return kars_tls_sni_parse(h->b, h->n, sni, &need, err);
}

static void test_sni_found(void **state)
{
	struct hb e = {0}, *h;
	char sni[KARS_TLS_SNI_BUF];
	struct kars_err err = {0};
	uint8_t groups[] = {0, 2, 0, 0x1d};

	ext(&e, 10, groups, sizeof(groups));
	ext_sni(&e, "API.Example.com");
	ext(&e, 43, "\x02\x03\x04", 3);
	h = hello_with(&e);
	assert_int_equal(parse(h, sni, &err), KARS_SNI_OK);
	assert_string_equal(sni, "API.Example.com");
	free(h);
}

static void test_real_curl_hello(void **state)
{
	FILE *f = fopen("selftests/fuzz/corpus/tls_sni/curl_client_hello", "rb");
	struct hb h = {0};
	char sni[KARS_TLS_SNI_BUF];
	struct kars_err err = {0};

	assert_non_null(f); /* run from the repository's top directory */
	h.n = fread(h.b, 1, sizeof(h.b), f);
	fclose(f);
	assert_true(h.n > 100);
	assert_int_equal(parse(&h, sni, &err), KARS_SNI_OK);
	assert_string_equal(sni, "www.example.org");
}

/* Every prefix asks for more, and never for more than the whole hello. */
static void test_every_prefix_asks_for_more(void **state)
{
	struct hb e = {0}, m = {0}, h = {0};
	char sni[KARS_TLS_SNI_BUF];
	struct kars_err err = {0};
	size_t need;

	ext_sni(&e, "a.example");
	hello_msg(&m, &e);
	records(&h, &m, 50); /* several records, so prefixes cut inside each */
	for (size_t len = 0; len < h.n; len++) {
		need = 0;
		assert_int_equal(kars_tls_sni_parse(h.b, len, sni, &need, &err), KARS_SNI_MORE);
		assert_true(need > len && need <= h.n);
	}
	assert_int_equal(kars_tls_sni_parse(h.b, h.n, sni, &need, &err), KARS_SNI_OK);
	assert_string_equal(sni, "a.example");
}

static void test_hello_in_one_byte_records(void **state)
{
	struct hb e = {0}, m = {0}, h = {0};
	char sni[KARS_TLS_SNI_BUF];
	struct kars_err err = {0};

	ext_sni(&e, "split.example");
	hello_msg(&m, &e);
	records(&h, &m, 1);
	assert_int_equal(parse(&h, sni, &err), KARS_SNI_OK);
	assert_string_equal(sni, "split.example");
}

static void test_early_data_after_hello_is_fine(void **state)
{
	struct hb e = {0}, *h;
	char sni[KARS_TLS_SNI_BUF];
	struct kars_err err = {0};

	ext_sni(&e, "a.example");
	h = hello_with(&e);
	put(h, "\x17\x03\x03\x00\x02zz", 7); /* a 0-RTT application_data record */
	assert_int_equal(parse(h, sni, &err), KARS_SNI_OK);
	free(h);
}

static void test_ech_refused(void **state)
{
	static const unsigned types[] = {0xfe0d, 0xffce, 0xfd00};
	char sni[KARS_TLS_SNI_BUF];
	struct kars_err err = {0};

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		struct hb e = {0}, *h;

		ext_sni(&e, "public.example"); /* the outer, public name */
		ext(&e, types[i], "\x00\x01\x02\x03", 4);
		h = hello_with(&e);
		assert_int_equal(parse(h, sni, &err), KARS_SNI_ECH);
		assert_err_contains(&err, "encrypted ClientHello");
		free(h);
	}
}

static void test_no_sni(void **state)
{
	struct hb e = {0}, *h, m = {0}, r = {0};
	char sni[KARS_TLS_SNI_BUF];
	struct kars_err err = {0};

	ext(&e, 43, "\x02\x03\x04", 3);
	h = hello_with(&e);
	assert_int_equal(parse(h, sni, &err), KARS_SNI_NONE);
	assert_string_equal(sni, "");
	free(h);

	/* No extensions block at all (a TLS 1.0-style hello). */
	hello_msg(&m, &(struct hb){0});
	m.n -= 2; /* drop the empty extensions length */
	m.b[3] -= 2;
	records(&r, &m, 16384);
	assert_int_equal(parse(&r, sni, &err), KARS_SNI_NONE);
}

/* Builds a hello, lets mutate break it, and expects KARS_SNI_BAD naming want. */
static void expect_bad(void (*mutate)(struct hb *), const char *want)
{
	struct hb e = {0}, *h;
	char sni[KARS_TLS_SNI_BUF];
	struct kars_err err = {0};

	ext(&e, 10, "\x00\x02\x00\x1d", 4);
	ext_sni(&e, "a.example");
	h = hello_with(&e);
	mutate(h);
	if (parse(h, sni, &err) != KARS_SNI_BAD)
		fail_msg("not refused; want \"%s\"", want);
	assert_err_contains(&err, want);
	free(h);
}

/* Offsets into hello_with()'s bytes: 5 record, 4 handshake header, 2 version,
 * 32 random, 1+32 session id, 2+4 suites, 1+1 compression, 2 extensions. */
#define OFF_MSG	     5
#define OFF_SID	     (OFF_MSG + 4 + 2 + 32)
#define OFF_SUITES   (OFF_SID + 33)
#define OFF_EXTS     (OFF_SUITES + 6 + 2)
#define OFF_EXT1     (OFF_EXTS + 2) /* supported_groups: 2+2+4 */
#define OFF_SNI	     (OFF_EXT1 + 8) /* server_name: type, len, list len, ... */
#define OFF_SNI_NAME (OFF_SNI + 2 + 2 + 2 + 1 + 2)

static void m_record_type(struct hb *h)
{
	h->b[0] = 23;
}
static void m_record_version(struct hb *h)
{
	h->b[1] = 2;
}
static void m_record_len_zero(struct hb *h)
{
	h->b[3] = 0;
	h->b[4] = 0;
}
static void m_record_len_big(struct hb *h)
{
	h->b[3] = 0x40;
	h->b[4] = 0x01;
}
static void m_hs_type(struct hb *h)
{
	h->b[OFF_MSG] = 2;
}
static void m_hs_too_long(struct hb *h)
{
	h->b[OFF_MSG + 1] = 1; /* 65 KiB and more */
}
static void m_hs_shorter_than_record(struct hb *h)
{
	h->b[OFF_MSG + 3] -= 1;
}
static void m_version(struct hb *h)
{
	h->b[OFF_MSG + 4] = 2;
}
static void m_sid_long(struct hb *h)
{
	h->b[OFF_SID] = 33;
}
static void m_suites_odd(struct hb *h)
{
	h->b[OFF_SUITES + 1] = 3;
}
static void m_suites_zero(struct hb *h)
{
	h->b[OFF_SUITES + 1] = 0;
}
static void m_exts_len(struct hb *h)
{
	h->b[OFF_EXTS + 1] += 1;
}
static void m_ext_len_past(struct hb *h)
{
	h->b[OFF_EXT1 + 3] = 0x7f;
}
static void m_dup_ext(struct hb *h)
{
	h->b[OFF_SNI + 1] = 10; /* server_name becomes a second supported_groups */
}
static void m_sni_list_len(struct hb *h)
{
	h->b[OFF_SNI + 5] -= 1;
}
static void m_sni_type(struct hb *h)
{
	h->b[OFF_SNI + 6] = 1;
}
static void m_sni_name_len(struct hb *h)
{
	h->b[OFF_SNI + 8] += 1;
}
static void m_sni_nul(struct hb *h)
{
	h->b[OFF_SNI_NAME + 1] = 0; /* "a\0example" */
}
static void m_sni_slash(struct hb *h)
{
	h->b[OFF_SNI_NAME + 1] = '/';
}
static void m_sni_high_byte(struct hb *h)
{
	h->b[OFF_SNI_NAME] = 0xc3;
}
static void m_trailing_handshake(struct hb *h)
{
	/* One more byte in the record than the ClientHello holds. */
	h->b[4] += 1;
	h->b[h->n++] = 0;
}

static void test_malformed(void **state)
{
	expect_bad(m_record_type, "is not handshake");
	expect_bad(m_record_version, "is not TLS");
	expect_bad(m_record_len_zero, "is not 1..16384");
	expect_bad(m_record_len_big, "is not 1..16384");
	expect_bad(m_hs_type, "is not ClientHello");
	expect_bad(m_hs_too_long, "longer than 16384");
	expect_bad(m_hs_shorter_than_record, "handshake data follows");
	expect_bad(m_version, "legacy_version");
	expect_bad(m_sid_long, "legacy_session_id");
	expect_bad(m_suites_odd, "cipher_suites");
	expect_bad(m_suites_zero, "cipher_suites");
	expect_bad(m_exts_len, "extensions length");
	expect_bad(m_ext_len_past, "runs past");
	expect_bad(m_dup_ext, "appears twice");
	expect_bad(m_sni_list_len, "server_name list length");
	expect_bad(m_sni_type, "other than host_name");
	expect_bad(m_sni_name_len, "runs past its list");
	expect_bad(m_sni_nul, "not a letter");
	expect_bad(m_sni_slash, "not a letter");
	expect_bad(m_sni_high_byte, "not a letter");
	expect_bad(m_trailing_handshake, "handshake data follows");
}

static void test_two_host_names_refused(void **state)
{
	struct hb e = {0}, *h;
	char sni[KARS_TLS_SNI_BUF];
	struct kars_err err = {0};
	static const char list[] = "\x00\x0e"
				   "\x00\x00\x04"
				   "a.ex"
				   "\x00\x00\x04"
				   "b.ex";

	ext(&e, 0, list, sizeof(list) - 1);
	h = hello_with(&e);
	assert_int_equal(parse(h, sni, &err), KARS_SNI_BAD);
	assert_err_contains(&err, "more than one host_name");
	free(h);
}

static void test_long_name(void **state)
{
	struct hb e = {0}, *h;
	char sni[KARS_TLS_SNI_BUF], name[300];
	struct kars_err err = {0};

	memset(name, 'a', 253);
	name[253] = '\0';
	ext_sni(&e, name);
	h = hello_with(&e);
	assert_int_equal(parse(h, sni, &err), KARS_SNI_OK);
	assert_string_equal(sni, name);
	free(h);

	memset(&e, 0, sizeof(e));
	name[253] = 'a';
	name[254] = '\0';
	ext_sni(&e, name);
	h = hello_with(&e);
	assert_int_equal(parse(h, sni, &err), KARS_SNI_BAD);
	assert_err_contains(&err, "longer than 253");
	free(h);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_sni_found),
    cmocka_unit_test(test_real_curl_hello),
    cmocka_unit_test(test_every_prefix_asks_for_more),
    cmocka_unit_test(test_hello_in_one_byte_records),
    cmocka_unit_test(test_early_data_after_hello_is_fine),
    cmocka_unit_test(test_ech_refused),
    cmocka_unit_test(test_no_sni),
    cmocka_unit_test(test_malformed),
    cmocka_unit_test(test_two_host_names_refused),
    cmocka_unit_test(test_long_name),
};

KARS_UNIT_MAIN(tests)
