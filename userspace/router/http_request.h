/* http_request.h - the strict HTTP/1.1 request parser of kars-router's
 * agent-facing server (http_server.c).
 *
 * The agent's bytes are untrusted, and the router relays some of its
 * headers upstream: what one parser reads differently from the next is a
 * smuggling channel. So the parser refuses rather than guesses (RFC 9112):
 * every line ends in CRLF (a bare CR or LF is a 400), no control bytes in
 * the request line or a header value, no obs-fold, a header name is a token,
 * one Host for HTTP/1.1, one Content-Length (a second one, even equal, is a
 * 400), Content-Length with Transfer-Encoding is a 400, a coding other than
 * "chunked" is a 501, a head beyond its limit a 431.
 *
 * It works in place on the connection's buffer, without allocating: names,
 * values, the path and the query are NUL-terminated where they lie and
 * named by offsets, so the buffer may be moved (realloc) afterwards.
 */
#ifndef KARS_ROUTER_HTTP_REQUEST_H
#define KARS_ROUTER_HTTP_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define KARS_HTTP_MAX_FIELDS 64

enum kars_http_method {
	KARS_HTTP_OTHER = 0, /* a token we do not serve */
	KARS_HTTP_GET,
	KARS_HTTP_HEAD,
	KARS_HTTP_POST,
	KARS_HTTP_PUT,
	KARS_HTTP_DELETE,
};

/* Offsets into the buffer the head was parsed in; each string is
 * NUL-terminated there. */
struct kars_http_field {
	uint32_t name, value;
};

struct kars_http_head {
	enum kars_http_method method;
	uint32_t method_name; /* offset of the method token */
	uint32_t path;	      /* the request target up to '?' */
	uint32_t query;	      /* after '?' ("" when none) */
	int minor;	      /* HTTP/1.<minor>: 0 or 1 */
	bool has_length, chunked, keep_alive, expect_continue;
	uint64_t content_length;
	size_t head_len; /* bytes of the head, its blank line included */
	size_t n_fields;
	struct kars_http_field fields[KARS_HTTP_MAX_FIELDS]; /* last: not cleared */
};

/* Scans buf[0..len) for the end of a head, checking line endings as it
 * goes; *scan keeps the position between calls (0 at the start). Returns
 * 1 when buf holds a whole head (then parse it), 0 when more bytes are
 * needed, -1 on a refused byte or a head longer than max_head (*status 400
 * or 431, err says which byte). */
int kars_http_scan_head(const char *buf, size_t len, size_t *scan, size_t max_head, int *status,
			struct kars_err *err);

/* Parses the whole head kars_http_scan_head() found (its length in
 * *scan). Returns 0, or -1 with *status (400, 431, 501, 505) and err. */
int kars_http_parse_head(char *buf, size_t head_len, struct kars_http_head *h, int *status,
			 struct kars_err *err);

/* The value of the first field called name (case-insensitive), or NULL. */
const char *kars_http_head_field(const char *buf, const struct kars_http_head *h, const char *name);

/* A chunked body, decoded in place: the decoded bytes are moved down to
 * the start of the body as they are read (never ahead of the raw ones). */
struct kars_http_chunked {
	int state;
	uint64_t remaining; /* of the current chunk */
	size_t raw;	    /* raw bytes consumed, from the body's start */
	size_t out;	    /* decoded bytes, at the body's start */
	size_t line;	    /* bytes of the current size or trailer line */
	int digits;
};

/* Feeds body[0..len) (the raw bytes from the body's start; len grows
 * between calls). Returns 1 at the end of the body (c->raw is its raw
 * length, c->out the decoded one), 0 when more bytes are needed, -1 when
 * malformed (*status 400) or past max decoded bytes (*status 413). */
int kars_http_chunked_feed(struct kars_http_chunked *c, char *body, size_t len, uint64_t max,
			   int *status, struct kars_err *err);

#endif
