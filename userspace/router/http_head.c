/* http_head.c - see http_head.h. RFC 9112 (message syntax), RFC 9110 §7.2
 * (Host), RFC 9112 §3.2 (request targets). */
#include "http_head.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Parse state: the buffer, the current line (1-based) for messages. */
struct ps {
	const char *buf;
	unsigned line;
	struct kars_err *err;
};

static enum kars_http_result bad(struct ps *s, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum kars_http_result bad(struct ps *s, size_t off, const char *fmt, ...)
{
	char what[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	kars_err_set(s->err, EINVAL, "request head line %u (byte %zu): %s", s->line, off + 1, what);
	return KARS_HTTP_BAD;
}

static bool tchar(unsigned char c)
{
	return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool host_char(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '.' || c == '_';
}

/* The byte-level checks over the whole head: CRLF only, no control bytes.
 * Returns the head length (0 if no blank line yet) or -1 with err set. */
static long scan(struct ps *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s->buf[i];

		if (c == '\r') {
			if (i + 1 < len && s->buf[i + 1] != '\n')
				return bad(s, i, "bare CR (not followed by LF)"), -1;
			continue;
		}
		if (c == '\n') {
			if (i == 0 || s->buf[i - 1] != '\r')
				return bad(s, i, "bare LF (not preceded by CR)"), -1;
			if (i >= 3 && s->buf[i - 2] == '\n')
				return (long)(i + 1);
			s->line++;
			continue;
		}
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return bad(s, i, "control byte 0x%02x", c), -1;
	}
	return 0;
}

/* Parses an authority "host[:port]" of n bytes at off. */
static enum kars_http_result authority(struct ps *s, size_t off, size_t n, bool port_required,
				       uint16_t default_port, char host[KARS_HTTP_HOST_BUF],
				       bool *ip6, uint16_t *port)
{
	const char *a = s->buf + off, *hend, *colon = NULL;
	size_t hlen;
	unsigned long p = 0;

	*ip6 = false;
	if (n == 0)
		return bad(s, off, "empty host");
	if (a[0] == '[') {
		struct in6_addr tmp;

		hend = memchr(a, ']', n);
		if (!hend)
			return bad(s, off, "IPv6 literal without ']'");
		hlen = (size_t)(hend - a - 1);
		if (hlen == 0 || hlen >= KARS_HTTP_HOST_BUF)
			return bad(s, off, "IPv6 literal is empty or too long");
		memcpy(host, a + 1, hlen);
		host[hlen] = '\0';
		if (inet_pton(AF_INET6, host, &tmp) != 1)
			return bad(s, off, "\"%s\" is not an IPv6 address", host);
		*ip6 = true;
		hend++;
		if (hend < a + n && *hend != ':')
			return bad(s, off + (size_t)(hend - a), "junk after the IPv6 literal");
		colon = hend < a + n ? hend : NULL;
	} else {
		colon = memchr(a, ':', n);
		hend = colon ? colon : a + n;
		hlen = (size_t)(hend - a);
		if (hlen && a[hlen - 1] == '.')
			hlen--; /* "example.com." is example.com */
		if (hlen == 0 || hlen >= KARS_HTTP_HOST_BUF)
			return bad(s, off, "host is empty or longer than 253 characters");
		for (size_t i = 0; i < hlen; i++) {
			if (!host_char((unsigned char)a[i]))
				return bad(s, off + i,
					   "host holds a byte that is not a letter, digit, '-', "
					   "'_' or '.'");
			host[i] = (char)tolower((unsigned char)a[i]);
		}
		host[hlen] = '\0';
	}
	if (!colon) {
		if (port_required)
			return bad(s, off, "CONNECT target has no port");
		*port = default_port;
		return KARS_HTTP_OK;
	}
	if (colon + 1 == a + n || a + n - colon - 1 > 5)
		return bad(s, off, "port is empty or longer than 5 digits");
	for (const char *q = colon + 1; q < a + n; q++) {
		if (!isdigit((unsigned char)*q))
			return bad(s, off + (size_t)(q - a), "port is not a number");
		p = p * 10 + (unsigned long)(*q - '0');
	}
	if (p == 0 || p > 65535)
		return bad(s, off, "port is not 1..65535");
	*port = (uint16_t)p;
	return KARS_HTTP_OK;
}

/* The request line "METHOD SP target SP HTTP/1.x", n bytes without CRLF. */
static enum kars_http_result request_line(struct ps *s, size_t n, struct kars_http_head *h,
					  size_t *t_off, size_t *t_len)
{
	const char *b = s->buf;
	size_t i = 0, t;

	while (i < n && tchar((unsigned char)b[i]))
		i++;
	if (i == 0 || i > 16 || i == n || b[i] != ' ')
		return bad(s, i, "method is not a token of 1..16 characters followed by a space");
	h->method = (struct kars_http_span){0, (uint16_t)i};
	t = ++i;
	while (i < n && b[i] != ' ')
		i++;
	if (i == t || i == n)
		return bad(s, t, "no request target followed by a space");
	*t_off = t;
	*t_len = i - t;
	for (size_t j = t; j < i; j++) {
		if ((unsigned char)b[j] <= 0x20 || (unsigned char)b[j] >= 0x7f || b[j] == '#')
			return bad(s, j, "request target holds a blank, '#' or a non-ASCII byte");
	}
	i++;
	if (n - i != 8 || memcmp(b + i, "HTTP/1.", 7) || (b[i + 7] != '0' && b[i + 7] != '1'))
		return bad(s, i, "version is not HTTP/1.0 or HTTP/1.1");
	h->http10 = b[i + 7] == '0';
	h->connect = h->method.len == 7 && memcmp(b, "CONNECT", 7) == 0;
	return KARS_HTTP_OK;
}

static enum kars_http_result target(struct ps *s, size_t t, size_t n, struct kars_http_head *h,
				    bool *has_authority)
{
	const char *b = s->buf + t;
	size_t a_len;

	*has_authority = false;
	if (h->connect) {
		*has_authority = true;
		return authority(s, t, n, true, 0, h->host, &h->host_is_ip6, &h->port);
	}
	if (b[0] == '/') {
		h->path = (struct kars_http_span){(uint16_t)t, (uint16_t)n};
		return KARS_HTTP_OK;
	}
	if (n >= 8 && strncasecmp(b, "https://", 8) == 0)
		return bad(s, t, "an https:// target is sent with CONNECT, not as a request");
	if (n < 7 || strncasecmp(b, "http://", 7) != 0)
		return bad(s, t, "target is not /path, http://host/path or CONNECT host:port");
	b += 7;
	t += 7;
	n -= 7;
	a_len = strcspn(b, "/?");
	if (a_len > n)
		a_len = n;
	if (memchr(b, '@', a_len))
		return bad(s, t, "user information ('@') in the URI");
	*has_authority = true;
	if (authority(s, t, a_len, false, 80, h->host, &h->host_is_ip6, &h->port))
		return KARS_HTTP_BAD;
	h->path = (struct kars_http_span){(uint16_t)(t + a_len), (uint16_t)(n - a_len)};
	return KARS_HTTP_OK;
}

static bool span_is(const char *buf, struct kars_http_span sp, const char *name)
{
	return strlen(name) == sp.len && strncasecmp(buf + sp.off, name, sp.len) == 0;
}

bool kars_http_header_is(const char *buf, const struct kars_http_header *hd, const char *name)
{
	return span_is(buf, hd->name, name);
}

static enum kars_http_result content_length(struct ps *s, struct kars_http_span v,
					    struct kars_http_head *h)
{
	uint64_t n = 0;

	if (h->has_content_length)
		return bad(s, v.off, "more than one Content-Length");
	if (v.len == 0 || v.len > 18)
		return bad(s, v.off, "Content-Length is not 1..18 digits");
	for (unsigned i = 0; i < v.len; i++) {
		char c = s->buf[v.off + i];

		if (c < '0' || c > '9')
			return bad(s, v.off + i, "Content-Length is not a number");
		n = n * 10 + (uint64_t)(c - '0');
	}
	h->has_content_length = true;
	h->content_length = n;
	return KARS_HTTP_OK;
}

enum kars_http_result kars_http_head_parse(const char *buf, size_t len, uint16_t default_port,
					   struct kars_http_head *h, struct kars_err *err)
{
	struct ps s = {.buf = buf, .line = 1, .err = err};
	size_t off, eol, t_off = 0, t_len = 0, host_line_off = 0;
	bool has_authority, has_host = false, host_ip6;
	char host[KARS_HTTP_HOST_BUF];
	uint16_t host_port = 0;
	long end;

	memset(h, 0, sizeof(*h));
	end = scan(&s, len < KARS_HTTP_HEAD_MAX ? len : KARS_HTTP_HEAD_MAX);
	if (end < 0)
		return KARS_HTTP_BAD;
	if (end == 0) {
		if (len < KARS_HTTP_HEAD_MAX)
			return KARS_HTTP_MORE;
		kars_err_set(err, E2BIG, "request head is longer than %d bytes",
			     KARS_HTTP_HEAD_MAX);
		return KARS_HTTP_TOO_BIG;
	}
	s.line = 1;
	eol = (size_t)((const char *)memchr(buf, '\r', (size_t)end) - buf);
	if (eol == 0)
		return bad(&s, 0, "empty request line");
	if (request_line(&s, eol, h, &t_off, &t_len))
		return KARS_HTTP_BAD;

	for (off = eol + 2; off < (size_t)end - 2; off = eol + 2) {
		struct kars_http_header *hd;
		size_t colon, v, ve;

		s.line++;
		eol = off + (size_t)((const char *)memchr(buf + off, '\r', (size_t)end - off) -
				     (buf + off));
		if (buf[off] == ' ' || buf[off] == '\t')
			return bad(&s, off, "folded header line (starts with a blank)");
		for (colon = off; colon < eol && tchar((unsigned char)buf[colon]); colon++)
			;
		if (colon == off || colon == eol || buf[colon] != ':')
			return bad(&s, colon,
				   "header name is not a token followed directly by ':'");
		if (h->nheaders == KARS_HTTP_MAX_HEADERS)
			return bad(&s, off, "more than 100 header lines");
		for (v = colon + 1; v < eol && (buf[v] == ' ' || buf[v] == '\t'); v++)
			;
		for (ve = eol; ve > v && (buf[ve - 1] == ' ' || buf[ve - 1] == '\t'); ve--)
			;
		hd = &h->headers[h->nheaders++];
		hd->name = (struct kars_http_span){(uint16_t)off, (uint16_t)(colon - off)};
		hd->value = (struct kars_http_span){(uint16_t)v, (uint16_t)(ve - v)};
		if (span_is(buf, hd->name, "host")) {
			if (has_host)
				return bad(&s, off, "more than one Host header");
			has_host = true;
			host_line_off = v;
			if (authority(&s, v, ve - v, false, h->connect ? 0 : default_port, host,
				      &host_ip6, &host_port))
				return KARS_HTTP_BAD;
		} else if (span_is(buf, hd->name, "content-length")) {
			if (content_length(&s, hd->value, h))
				return KARS_HTTP_BAD;
		} else if (span_is(buf, hd->name, "transfer-encoding")) {
			h->has_transfer_encoding = true;
		}
	}
	s.line = 1;
	if (target(&s, t_off, t_len, h, &has_authority))
		return KARS_HTTP_BAD;
	if (h->has_content_length && h->has_transfer_encoding)
		return bad(&s, 0, "both Content-Length and Transfer-Encoding");
	if (h->connect && (h->has_transfer_encoding || h->content_length))
		return bad(&s, 0, "CONNECT with a body");
	if (!has_authority && !has_host)
		return bad(&s, t_off, "origin-form target without a Host header");
	if (!has_authority) {
		memcpy(h->host, host, sizeof(host));
		h->host_is_ip6 = host_ip6;
		h->port = host_port;
	} else if (has_host) {
		/* A Host without a port means the scheme's: 80 for http://, the
		 * CONNECT port for CONNECT (curl writes "Host: h:443" anyway). */
		uint16_t want = host_port ? host_port : h->port;

		if (strcmp(host, h->host) || want != h->port) {
			kars_err_set(err, EACCES,
				     "Host header \"%.*s\" names another host or port than the "
				     "request target",
				     (int)(strcspn(buf + host_line_off, "\r")),
				     buf + host_line_off);
			return KARS_HTTP_BAD;
		}
	}
	h->head_len = (size_t)end;
	return KARS_HTTP_OK;
}
