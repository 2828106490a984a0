/* tls_sni.c - see tls_sni.h. RFC 8446 §4.1.2 (ClientHello), RFC 6066 §3
 * (server_name), draft-ietf-tls-esni (encrypted_client_hello). */
#include "tls_sni.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#define REC_HANDSHAKE	22
#define REC_MAX		16384 /* 2^14: the largest plaintext record */
#define HS_CLIENT_HELLO 1
#define EXT_SERVER_NAME 0x0000
#define EXT_ECH		0xfe0d /* encrypted_client_hello */
#define EXT_ECH_OUTER	0xfd00 /* ech_outer_extensions: only ever inside ECH */
#define EXT_ESNI	0xffce /* encrypted_server_name, ESNI drafts */
#define SNI_HOST_NAME	0

/* A read cursor over the ClientHello message; off counts from its first byte. */
struct cur {
	const uint8_t *p;
	size_t off, end;
	struct kars_err *err;
};

static enum kars_sni_result bad(struct cur *c, const char *what)
{
	kars_err_set(c->err, EINVAL, "ClientHello byte %zu: %s", c->off, what);
	return KARS_SNI_BAD;
}

static bool take(struct cur *c, size_t n, const uint8_t **out)
{
	if (c->end - c->off < n)
		return false;
	if (out)
		*out = c->p + c->off;
	c->off += n;
	return true;
}

static bool u8(struct cur *c, unsigned *v)
{
	const uint8_t *b;

	if (!take(c, 1, &b))
		return false;
	*v = b[0];
	return true;
}

static bool u16(struct cur *c, unsigned *v)
{
	const uint8_t *b;

	if (!take(c, 2, &b))
		return false;
	*v = (unsigned)b[0] << 8 | b[1];
	return true;
}

/* A sub-cursor over the next n bytes of c. */
static bool sub(struct cur *c, size_t n, struct cur *s)
{
	if (c->end - c->off < n)
		return false;
	*s = (struct cur){.p = c->p, .off = c->off, .end = c->off + n, .err = c->err};
	c->off += n;
	return true;
}

static bool host_char_ok(uint8_t ch)
{
	/* Letters, digits, '-', '_', '.': anything else (NUL, space, '/', '%',
	 * bytes >= 0x80 instead of punycode) is not a DNS host name. */
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '-' || ch == '_' || ch == '.';
}

static enum kars_sni_result server_name(struct cur *e, char *sni, bool *found)
{
	struct cur list;
	unsigned list_len, type, name_len;
	const uint8_t *name;

	if (!u16(e, &list_len) || !sub(e, list_len, &list) || e->off != e->end)
		return bad(e, "server_name list length disagrees with the extension length");
	if (list_len == 0)
		return bad(e, "server_name list is empty");
	while (list.off < list.end) {
		if (!u8(&list, &type) || !u16(&list, &name_len) || !take(&list, name_len, &name))
			return bad(&list, "server_name entry runs past its list");
		if (type != SNI_HOST_NAME)
			return bad(&list, "server_name entry of a type other than host_name");
		if (*found)
			return bad(&list, "more than one host_name in server_name");
		if (name_len == 0 || name_len >= KARS_TLS_SNI_BUF)
			return bad(&list, "host_name is empty or longer than 253 characters");
		for (unsigned i = 0; i < name_len; i++) {
			if (!host_char_ok(name[i])) {
				list.off -= name_len - i;
				return bad(&list, "host_name holds a byte that is not a letter, "
						  "digit, '-', '_' or '.'");
			}
		}
		memcpy(sni, name, name_len);
		sni[name_len] = '\0';
		*found = true;
	}
	return KARS_SNI_OK;
}

/* A bit per extension type seen, for the duplicate check (RFC 8446 §4.2). */
struct seen {
	uint64_t bits[1024];
};

static enum kars_sni_result hello_body(struct cur *c, char *sni)
{
	static __thread struct seen seen;
	struct cur exts, e;
	unsigned v, n, type, len;
	bool found = false;
	enum kars_sni_result r;

	if (!u16(c, &v) || (v >> 8) != 3)
		return bad(c, "legacy_version is not 3.x");
	if (!take(c, 32, NULL))
		return bad(c, "ClientHello ends inside random");
	if (!u8(c, &n) || n > 32 || !take(c, n, NULL))
		return bad(c, "legacy_session_id longer than 32 bytes or past the end");
	if (!u16(c, &n) || n == 0 || n % 2 || !take(c, n, NULL))
		return bad(c, "cipher_suites length is zero, odd or past the end");
	if (!u8(c, &n) || n == 0 || !take(c, n, NULL))
		return bad(c, "legacy_compression_methods length is zero or past the end");
	if (c->off == c->end)
		return kars_err_set(c->err, ENOENT, "ClientHello has no extensions"), KARS_SNI_NONE;
	if (!u16(c, &n) || !sub(c, n, &exts) || c->off != c->end)
		return bad(c, "extensions length disagrees with the ClientHello length");
	memset(&seen, 0, sizeof(seen));
	while (exts.off < exts.end) {
		if (!u16(&exts, &type) || !u16(&exts, &len) || !sub(&exts, len, &e))
			return bad(&exts, "extension runs past the extensions block");
		if (seen.bits[type / 64] & (1ull << (type % 64)))
			return bad(&exts, "extension appears twice");
		seen.bits[type / 64] |= 1ull << (type % 64);
		if (type == EXT_ECH || type == EXT_ECH_OUTER || type == EXT_ESNI) {
			kars_err_set(c->err, EPROTO,
				     "ClientHello byte %zu: encrypted ClientHello extension 0x%04x "
				     "hides the server name",
				     e.off - 4, type);
			return KARS_SNI_ECH;
		}
		if (type == EXT_SERVER_NAME) {
			r = server_name(&e, sni, &found);
			if (r != KARS_SNI_OK)
				return r;
		}
	}
	if (!found) {
		kars_err_set(c->err, ENOENT, "ClientHello has no server_name host_name");
		return KARS_SNI_NONE;
	}
	return KARS_SNI_OK;
}

enum kars_sni_result kars_tls_sni_parse(const uint8_t *buf, size_t len, char sni[KARS_TLS_SNI_BUF],
					size_t *need, struct kars_err *err)
{
	static __thread uint8_t msg[KARS_TLS_HELLO_MAX];
	size_t off = 0, have = 0, want = 0; /* want: message length with its header */
	struct cur c;

	sni[0] = '\0';
	for (;;) {
		size_t rec_len, frag;

		if (len - off < 5) {
			*need = off + 5;
			return KARS_SNI_MORE;
		}
		if (buf[off] != REC_HANDSHAKE) {
			kars_err_set(err, EINVAL, "byte %zu: record type %u is not handshake (22)",
				     off, buf[off]);
			return KARS_SNI_BAD;
		}
		if (buf[off + 1] != 3) {
			kars_err_set(err, EINVAL, "byte %zu: record version %u.%u is not TLS",
				     off + 1, buf[off + 1], buf[off + 2]);
			return KARS_SNI_BAD;
		}
		rec_len = (size_t)buf[off + 3] << 8 | buf[off + 4];
		if (rec_len == 0 || rec_len > REC_MAX) {
			kars_err_set(err, EINVAL, "byte %zu: record length %zu is not 1..16384",
				     off + 3, rec_len);
			return KARS_SNI_BAD;
		}
		if (len - off - 5 < rec_len) {
			*need = off + 5 + rec_len;
			return KARS_SNI_MORE;
		}
		frag = rec_len;
		if (want && have + frag > want) {
			kars_err_set(
			    err, EINVAL,
			    "byte %zu: handshake data follows the ClientHello in its record",
			    off + 5 + (want - have));
			return KARS_SNI_BAD;
		}
		if (have + frag > sizeof(msg))
			frag = sizeof(msg) - have; /* the length check below refuses it */
		memcpy(msg + have, buf + off + 5, frag);
		have += frag;
		off += 5 + rec_len;
		if (!want && have >= 4) {
			if (msg[0] != HS_CLIENT_HELLO) {
				kars_err_set(err, EINVAL,
					     "byte 5: handshake type %u is not ClientHello (1)",
					     msg[0]);
				return KARS_SNI_BAD;
			}
			want = 4 + ((size_t)msg[1] << 16 | (size_t)msg[2] << 8 | msg[3]);
			if (want > sizeof(msg)) {
				kars_err_set(err, E2BIG,
					     "ClientHello of %zu bytes is longer than %d", want,
					     KARS_TLS_HELLO_MAX);
				return KARS_SNI_BAD;
			}
			if (have > want) {
				kars_err_set(err, EINVAL,
					     "byte %zu: handshake data follows the ClientHello in "
					     "its record",
					     off - (have - want));
				return KARS_SNI_BAD;
			}
		}
		if (want && have == want)
			break;
	}
	c = (struct cur){.p = msg, .off = 4, .end = want, .err = err};
	return hello_body(&c, sni);
}

const char *kars_sni_result_str(enum kars_sni_result r)
{
	switch (r) {
	case KARS_SNI_OK:
		return "ok";
	case KARS_SNI_MORE:
		return "incomplete";
	case KARS_SNI_BAD:
		return "malformed_client_hello";
	case KARS_SNI_NONE:
		return "no_sni";
	case KARS_SNI_ECH:
		return "ech";
	}
	return "unknown";
}
