/* audit_record.c - one audit record as bytes: its JSON line, the input of its
 * hash, and the message a checkpoint signs.
 *
 * The line is for people and tools (jq, grep); the hash input is for the
 * chain. They are separate on purpose: the hash covers the decoded field
 * values, length-prefixed in a fixed order, so no choice of JSON escaping,
 * spacing or key order can make two different records hash alike, and a file
 * reformatted by jq still verifies. docs/audit-chain.md has both layouts.
 */
#include "audit_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char hexdigits[] = "0123456789abcdef";

void kars_audit_hex(const uint8_t *in, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hexdigits[in[i] >> 4];
		out[2 * i + 1] = hexdigits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

int audit_utf8_check(const char *s, size_t len, size_t *bad)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		unsigned char c = u[i];
		size_t n;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 2;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 3;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 4;
			cp = c & 0x07;
		} else {
			goto bad;
		}
		if (len - i < n)
			goto bad;
		for (size_t k = 1; k < n; k++) {
			if ((u[i + k] & 0xc0) != 0x80)
				goto bad;
			cp = (cp << 6) | (u[i + k] & 0x3f);
		}
		/* overlong forms, UTF-16 surrogates, beyond U+10FFFF */
		if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			goto bad;
		i += n;
	}
	return 0;
bad:
	*bad = i;
	return -1;
}

int audit_hasher_init(struct audit_hasher *h, struct kars_err *err)
{
	memset(h, 0, sizeof(*h));
	h->ctx = EVP_MD_CTX_new();
	h->md = EVP_MD_fetch(NULL, "SHA256", NULL);
	h->scratch = malloc(AUDIT_HASH_INPUT_MAX);
	if (!h->ctx || !h->md || !h->scratch) {
		audit_hasher_free(h);
		return kars_err_set(err, ENOMEM, "cannot set up SHA-256 (OpenSSL)");
	}
	return 0;
}

void audit_hasher_free(struct audit_hasher *h)
{
	EVP_MD_CTX_free(h->ctx);
	EVP_MD_free(h->md);
	free(h->scratch);
	memset(h, 0, sizeof(*h));
}

static uint8_t *put_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
	return p + 4;
}

static uint8_t *put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--)
		*p++ = v >> (8 * i);
	return p;
}

/* One field of the hash input: u32 big-endian length, then the bytes. */
static uint8_t *field(uint8_t *p, const void *b, size_t n)
{
	p = put_be32(p, (uint32_t)n);
	memcpy(p, b, n);
	return p + n;
}

static uint8_t *field_str(uint8_t *p, struct audit_str s)
{
	return field(p, s.p, s.len);
}

/* Integers are 8 bytes big-endian, length-prefixed like everything else. */
static uint8_t *field_u64(uint8_t *p, uint64_t v)
{
	return put_be64(put_be32(p, 8), v);
}

static const char *kind_name(enum audit_kind kind)
{
	return kind == AUDIT_CHECKPOINT ? "checkpoint" : "entry";
}

size_t audit_hash_input(const struct audit_fields *f, uint8_t *out)
{
	const char *kind = kind_name(f->kind);
	uint8_t *p = out;

	memcpy(p, AUDIT_HASH_TAG, AUDIT_HASH_TAG_LEN);
	p += AUDIT_HASH_TAG_LEN;
	p = field_u64(p, f->seq);
	p = field(p, kind, strlen(kind));
	p = field_u64(p, f->time_ns);
	if (f->kind == AUDIT_CHECKPOINT) {
		p = field_u64(p, f->every);
		p = field(p, f->key, sizeof(f->key));
		p = field(p, f->sig, sizeof(f->sig));
	} else {
		p = field_str(p, f->sandbox);
		p = field_str(p, f->principal);
		p = field_str(p, f->action);
		p = field_str(p, f->decision);
		p = field_str(p, f->reason);
		p = field_str(p, f->model);
		p = field_u64(p, f->tokens_in);
		p = field_u64(p, f->tokens_out);
		p = field_u64(p, f->latency_ns);
		p = field(p, f->payload, f->has_payload ? sizeof(f->payload) : 0);
	}
	p = field(p, f->prev, sizeof(f->prev));
	return (size_t)(p - out);
}

int audit_hash(struct audit_hasher *h, const struct audit_fields *f,
	       uint8_t out[KARS_AUDIT_HASH_LEN])
{
	size_t n = audit_hash_input(f, h->scratch);
	unsigned int outlen = 0;

	if (!EVP_DigestInit_ex2(h->ctx, h->md, NULL) || !EVP_DigestUpdate(h->ctx, h->scratch, n) ||
	    !EVP_DigestFinal_ex(h->ctx, out, &outlen) || outlen != KARS_AUDIT_HASH_LEN)
		return -EIO;
	return 0;
}

void audit_sign_msg(const struct audit_fields *f, uint8_t out[AUDIT_SIGN_MSG_LEN])
{
	uint8_t *p = out;

	memcpy(p, AUDIT_SIGN_TAG, AUDIT_SIGN_TAG_LEN);
	p += AUDIT_SIGN_TAG_LEN;
	p = put_be64(p, f->seq);
	p = put_be64(p, f->time_ns);
	p = put_be64(p, f->every);
	memcpy(p, f->key, sizeof(f->key));
	p += sizeof(f->key);
	memcpy(p, f->prev, sizeof(f->prev));
}

/* --- time: RFC 3339, UTC, nanoseconds ------------------------------------------ */

/* Days since 1970-01-01 of a proleptic Gregorian date, and back (H. Hinnant's
 * algorithms): no time zone, no libc state, exact over the whole range. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t era;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* v in exactly width decimal digits, leading zeros kept. */
static char *put_fixed(char *p, uint64_t v, int width, char after)
{
	for (int i = width - 1; i >= 0; i--) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
	p[width] = after;
	return p + width + 1;
}

size_t audit_time_format(uint64_t ns, char out[AUDIT_TIME_LEN + 1])
{
	uint64_t secs = ns / 1000000000ull;
	unsigned m, d;
	int64_t y;
	char *p = out;

	/* ns <= 2^63-1, so the year is at most 2262: four digits */
	civil_from_days((int64_t)(secs / 86400), &y, &m, &d);
	secs %= 86400;
	p = put_fixed(p, (uint64_t)y, 4, '-');
	p = put_fixed(p, m, 2, '-');
	p = put_fixed(p, d, 2, 'T');
	p = put_fixed(p, secs / 3600, 2, ':');
	p = put_fixed(p, secs / 60 % 60, 2, ':');
	p = put_fixed(p, secs % 60, 2, '.');
	p = put_fixed(p, ns % 1000000000ull, 9, 'Z');
	*p = '\0';
	return AUDIT_TIME_LEN;
}

static bool digits(const char *s, size_t n, unsigned *out)
{
	*out = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		*out = *out * 10 + (unsigned)(s[i] - '0');
	}
	return true;
}

int audit_time_parse(const char *s, size_t len, uint64_t *ns)
{
	static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	unsigned y, mo, d, h, mi, se, frac;
	uint64_t secs;

	if (len != AUDIT_TIME_LEN || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
	    s[16] != ':' || s[19] != '.' || s[29] != 'Z' || !digits(s, 4, &y) ||
	    !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) || !digits(s + 11, 2, &h) ||
	    !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &se) || !digits(s + 20, 9, &frac))
		return -1;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 ||
	    se > 59)
		return -1;
	if (mo == 2 && d == 29 && (y % 4 || (y % 100 == 0 && y % 400)))
		return -1;
	secs = (uint64_t)days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
	if (secs > (uint64_t)INT64_MAX / 1000000000ull ||
	    secs * 1000000000ull > (uint64_t)INT64_MAX - frac)
		return -1;
	*ns = secs * 1000000000ull + frac;
	return 0;
}

/* --- the JSON line ---------------------------------------------------------- */

size_t audit_line_bound(const struct audit_fields *f)
{
	/* Keys, punctuation, 6 numbers of up to 20 digits and the hex fields fit
	 * in 1 KiB; a string byte takes at most 6 ("\u001f"). */
	size_t strings = f->sandbox.len + f->principal.len + f->action.len + f->decision.len +
			 f->reason.len + f->model.len;

	return 1024 + 6 * strings;
}

static char *put(char *p, const char *s)
{
	size_t n = strlen(s);

	memcpy(p, s, n);
	return p + n;
}

static char *put_u64(char *p, uint64_t v)
{
	char tmp[20];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*p++ = tmp[--n];
	return p;
}

static char *put_hex(char *p, const uint8_t *b, size_t n)
{
	*p++ = '"';
	kars_audit_hex(b, n, p);
	p += 2 * n;
	*p++ = '"';
	return p;
}

/* A JSON string: quotes, backslashes and control characters escaped, all
 * other bytes (valid UTF-8, checked by the caller) as they are. */
static char *put_json_str(char *p, struct audit_str s)
{
	*p++ = '"';
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.p[i];

		if (c >= 0x20 && c != '"' && c != '\\') {
			*p++ = (char)c;
			continue;
		}
		*p++ = '\\';
		switch (c) {
		case '"':
		case '\\':
			*p++ = (char)c;
			break;
		case '\n':
			*p++ = 'n';
			break;
		case '\r':
			*p++ = 'r';
			break;
		case '\t':
			*p++ = 't';
			break;
		default:
			*p++ = 'u';
			*p++ = '0';
			*p++ = '0';
			*p++ = hexdigits[c >> 4];
			*p++ = hexdigits[c & 15];
		}
	}
	*p++ = '"';
	return p;
}

size_t audit_encode(const struct audit_fields *f, char *out)
{
	char *p = out;

	p = put(p, "{\"seq\":");
	p = put_u64(p, f->seq);
	p = put(p, ",\"kind\":\"");
	p = put(p, kind_name(f->kind));
	p = put(p, "\",\"time\":\"");
	p += audit_time_format(f->time_ns, p);
	p = put(p, "\"");
	if (f->kind == AUDIT_CHECKPOINT) {
		p = put(p, ",\"checkpointEvery\":");
		p = put_u64(p, f->every);
		p = put(p, ",\"key\":");
		p = put_hex(p, f->key, sizeof(f->key));
		p = put(p, ",\"sig\":");
		p = put_hex(p, f->sig, sizeof(f->sig));
	} else {
		p = put(p, ",\"sandbox\":");
		p = put_json_str(p, f->sandbox);
		p = put(p, ",\"principal\":");
		p = put_json_str(p, f->principal);
		p = put(p, ",\"action\":");
		p = put_json_str(p, f->action);
		p = put(p, ",\"decision\":");
		p = put_json_str(p, f->decision);
		p = put(p, ",\"reason\":");
		p = put_json_str(p, f->reason);
		p = put(p, ",\"model\":");
		p = put_json_str(p, f->model);
		p = put(p, ",\"tokensIn\":");
		p = put_u64(p, f->tokens_in);
		p = put(p, ",\"tokensOut\":");
		p = put_u64(p, f->tokens_out);
		p = put(p, ",\"latencyNs\":");
		p = put_u64(p, f->latency_ns);
		p = put(p, ",\"payloadSha256\":");
		p = put_hex(p, f->payload, f->has_payload ? sizeof(f->payload) : 0);
	}
	p = put(p, ",\"prevHash\":");
	p = put_hex(p, f->prev, sizeof(f->prev));
	p = put(p, ",\"hash\":");
	p = put_hex(p, f->hash, sizeof(f->hash));
	p = put(p, "}\n");
	return (size_t)(p - out);
}
