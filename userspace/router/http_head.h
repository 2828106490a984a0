/* http_head.h - the request head an agent sends to the egress proxy.
 *
 * Two forms reach the proxy: "CONNECT host:port HTTP/1.1" (HTTPS_PROXY) and
 * a plain HTTP request with an absolute URI ("GET http://host/path") or, for
 * a redirected port-80 connection, an origin-form target and a Host header.
 * The parser is strict because the bytes are the agent's and a lenient
 * reading is how proxies get fooled: lines end in CRLF only (a bare CR or LF
 * is refused), control bytes are refused, header lines may not be folded,
 * there is at most one Host, Content-Length and Transfer-Encoding may not
 * both appear, and the URI's authority, the CONNECT target and the Host
 * header must name the same host and port (no domain fronting). A head
 * longer than KARS_HTTP_HEAD_MAX is refused.
 */
#ifndef KARS_HTTP_HEAD_H
#define KARS_HTTP_HEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define KARS_HTTP_HEAD_MAX    16384
#define KARS_HTTP_MAX_HEADERS 100
/* A host as written: a name of up to 253 characters or an IPv6 literal. */
#define KARS_HTTP_HOST_BUF 256

struct kars_http_span {
	uint16_t off, len; /* into the parsed buffer */
};

struct kars_http_header {
	struct kars_http_span name, value; /* value without surrounding blanks */
};

struct kars_http_head {
	struct kars_http_span method;
	struct kars_http_span path; /* origin-form target ("/x?y"); empty for CONNECT */
	bool connect;
	bool http10;
	char host[KARS_HTTP_HOST_BUF]; /* lower-cased, IPv6 without brackets */
	bool host_is_ip6;	       /* host was a bracketed IPv6 literal */
	uint16_t port;
	bool has_content_length;
	uint64_t content_length;
	bool has_transfer_encoding;
	unsigned nheaders;
	struct kars_http_header headers[KARS_HTTP_MAX_HEADERS];
	size_t head_len; /* bytes of the head, the blank line included */
};

enum kars_http_result {
	KARS_HTTP_OK = 0, /* h is filled in */
	KARS_HTTP_MORE,	  /* no blank line yet and fewer than KARS_HTTP_HEAD_MAX bytes */
	KARS_HTTP_BAD,	  /* refused; err names the line and byte */
	KARS_HTTP_TOO_BIG /* no end of head within KARS_HTTP_HEAD_MAX bytes */
};

/* default_port is the port of an origin-form request without a port in Host
 * (80 for the proxy's plain path). */
enum kars_http_result kars_http_head_parse(const char *buf, size_t len, uint16_t default_port,
					   struct kars_http_head *h, struct kars_err *err);

/* True if the header's name is name (case-insensitive). */
bool kars_http_header_is(const char *buf, const struct kars_http_header *hd, const char *name);

#endif
