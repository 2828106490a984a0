/* http_request.c - see http_request.h. */
#include "http_request.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MAX_CHUNK_LINE 4096 /* a chunk-size line with its extensions, a trailer */

enum chunk_state {
	CH_SIZE = 0, /* hex digits */
	CH_EXT,	     /* ";..." up to the CR */
	CH_SIZE_LF,
	CH_DATA,
	CH_DATA_CR,
	CH_DATA_LF,
	CH_TRAILER, /* a trailer line, or the final empty one */
	CH_TRAILER_LF,
};

/* A header name or method is an RFC 9110 token. */
static bool is_token_char(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* A header value byte: visible, space or tab (the line's CR and LF are
 * checked by the scanner). */
static bool is_value_char(unsigned char ch)
{
	return ch == '\t' || (ch >= 0x20 && ch != 0x7f);
}

/* A request-target byte (origin-form): visible ASCII, no space. */
static bool is_target_char(unsigned char ch)
{
	return ch > 0x20 && ch < 0x7f;
}

static int refuse(int *status, int code, struct kars_err *err, const char *what, size_t at)
{
	*status = code;
	return kars_err_set(err, EINVAL, "%s (byte %zu of the request head)", what, at);
}

int kars_http_scan_head(const char *buf, size_t len, size_t *scan, size_t max_head, int *status,
			struct kars_err *err)
{
	size_t i = *scan;

	for (; i < len; i++) {
		if (i >= max_head)
			return refuse(status, 431, err, "request head too large", i);
		if (buf[i] == '\r') {
			if (i + 1 == len)
				break; /* its LF has not come yet */
			if (buf[i + 1] != '\n')
				return refuse(status, 400, err, "bare CR", i);
			i++;
			/* An empty line ends the head; leading empty lines
			 * before a request line are refused too (no robustness
			 * guesses). */
			if (i == 1 || (i >= 3 && buf[i - 2] == '\n')) {
				if (i == 1)
					return refuse(status, 400, err, "empty request line", 0);
				if (i + 1 > max_head)
					return refuse(status, 431, err, "request head too large",
						      i);
				*scan = i + 1;
				return 1;
			}
		} else if (buf[i] == '\n') {
			return refuse(status, 400, err, "bare LF", i);
		} else if (buf[i] == '\0') {
			return refuse(status, 400, err, "NUL byte", i);
		}
	}
	*scan = i;
	return 0;
}

static enum kars_http_method method_of(const char *m, size_t n)
{
	static const struct {
		const char *name;
		enum kars_http_method method;
	} known[] = {{"GET", KARS_HTTP_GET},
		     {"HEAD", KARS_HTTP_HEAD},
		     {"POST", KARS_HTTP_POST},
		     {"PUT", KARS_HTTP_PUT},
		     {"DELETE", KARS_HTTP_DELETE}};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strlen(known[i].name) == n && !memcmp(known[i].name, m, n))
			return known[i].method;
	return KARS_HTTP_OTHER;
}

/* The request line, buf[0..end) (without its CRLF). */
static int parse_request_line(char *buf, size_t end, struct kars_http_head *h, int *status,
			      struct kars_err *err)
{
	size_t i = 0, target;

	while (i < end && is_token_char((unsigned char)buf[i]))
		i++;
	if (i == 0 || i == end || buf[i] != ' ')
		return refuse(status, 400, err, "malformed method", i);
	h->method = method_of(buf, i);
	h->method_name = 0;
	buf[i++] = '\0';
	target = i;
	while (i < end && is_target_char((unsigned char)buf[i]))
		i++;
	if (i == target || i == end || buf[i] != ' ')
		return refuse(status, 400, err, "malformed request target", i);
	if (buf[target] != '/')
		return refuse(status, 400, err, "request target is not a path (origin-form)",
			      target);
	buf[i++] = '\0';
	h->path = (uint32_t)target;
	h->query = (uint32_t)(i - 1); /* the NUL: "" */
	for (size_t q = target; q < i - 1; q++) {
		if (buf[q] == '?') {
			buf[q] = '\0';
			h->query = (uint32_t)(q + 1);
			break;
		}
	}
	if (end - i != 8 || memcmp(buf + i, "HTTP/1.", 7))
		return refuse(status, end - i == 8 && !memcmp(buf + i, "HTTP/", 5) ? 505 : 400, err,
			      "malformed HTTP version", i);
	if (buf[i + 7] != '0' && buf[i + 7] != '1')
		return refuse(status, 505, err, "HTTP version not supported", i + 7);
	h->minor = buf[i + 7] - '0';
	return 0;
}

static bool list_has(const char *value, const char *token)
{
	size_t n = strlen(token);

	for (const char *p = value; *p;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (!strncasecmp(p, token, n) &&
		    (p[n] == '\0' || p[n] == ',' || p[n] == ' ' || p[n] == '\t'))
			return true;
		while (*p && *p != ',')
			p++;
	}
	return false;
}

/* One header line buf[start..end) (no CRLF); at: its offset for errors. */
static int parse_field(char *buf, size_t start, size_t end, struct kars_http_head *h, bool *host,
		       int *status, struct kars_err *err)
{
	size_t i = start, v, e;
	const char *name, *value;

	if (buf[i] == ' ' || buf[i] == '\t')
		return refuse(status, 400, err, "obs-fold (a header line starting with a space)",
			      i);
	while (i < end && is_token_char((unsigned char)buf[i]))
		i++;
	if (i == start || i == end || buf[i] != ':')
		return refuse(status, 400, err, "malformed header name", i);
	for (v = i + 1; v < end; v++)
		if (!is_value_char((unsigned char)buf[v]))
			return refuse(status, 400, err, "control byte in a header value", v);
	if (h->n_fields == KARS_HTTP_MAX_FIELDS)
		return refuse(status, 431, err, "too many header fields", start);
	buf[i] = '\0';
	for (v = i + 1; v < end && (buf[v] == ' ' || buf[v] == '\t'); v++)
		;
	for (e = end; e > v && (buf[e - 1] == ' ' || buf[e - 1] == '\t'); e--)
		;
	buf[e] = '\0'; /* a space, a tab or the line's CR */
	h->fields[h->n_fields].name = (uint32_t)start;
	h->fields[h->n_fields].value = (uint32_t)v;
	h->n_fields++;
	name = buf + start;
	value = buf + v;

	if (!strcasecmp(name, "Content-Length")) {
		uint64_t n = 0;

		if (h->has_length)
			return refuse(status, 400, err, "more than one Content-Length", start);
		if (!*value)
			return refuse(status, 400, err, "empty Content-Length", v);
		for (const char *p = value; *p; p++) {
			if (*p < '0' || *p > '9' || n > (UINT64_MAX - 9) / 10)
				return refuse(status, 400, err, "malformed Content-Length",
					      v + (size_t)(p - value));
			n = n * 10 + (uint64_t)(*p - '0');
		}
		h->has_length = true;
		h->content_length = n;
	} else if (!strcasecmp(name, "Transfer-Encoding")) {
		if (h->chunked)
			return refuse(status, 400, err, "more than one Transfer-Encoding", start);
		if (strcasecmp(value, "chunked"))
			return refuse(status, 501, err, "Transfer-Encoding other than chunked", v);
		h->chunked = true;
	} else if (!strcasecmp(name, "Host")) {
		if (*host)
			return refuse(status, 400, err, "more than one Host", start);
		*host = true;
	} else if (!strcasecmp(name, "Connection")) {
		if (list_has(value, "close"))
			h->keep_alive = false;
		else if (list_has(value, "keep-alive"))
			h->keep_alive = true;
	} else if (!strcasecmp(name, "Expect")) {
		if (strcasecmp(value, "100-continue"))
			return refuse(status, 417, err, "Expect other than 100-continue", v);
		h->expect_continue = true;
	}
	return 0;
}

int kars_http_parse_head(char *buf, size_t head_len, struct kars_http_head *h, int *status,
			 struct kars_err *err)
{
	bool host = false;
	size_t start, end;

	memset(h, 0, offsetof(struct kars_http_head, fields));
	h->head_len = head_len;
	/* The scanner checked that every line ends in CRLF. */
	end = (size_t)((char *)memchr(buf, '\r', head_len) - buf);
	if (parse_request_line(buf, end, h, status, err))
		return -1;
	h->keep_alive = h->minor == 1;
	for (start = end + 2; start + 2 < head_len; start = end + 2) {
		end = (size_t)((char *)memchr(buf + start, '\r', head_len - start) - buf);
		if (parse_field(buf, start, end, h, &host, status, err))
			return -1;
	}
	if (h->minor == 1 && !host)
		return refuse(status, 400, err, "no Host header (HTTP/1.1)", head_len);
	if (h->chunked && h->has_length)
		return refuse(status, 400, err, "both Content-Length and Transfer-Encoding",
			      head_len);
	if (h->chunked && h->minor == 0)
		return refuse(status, 400, err, "Transfer-Encoding in an HTTP/1.0 request",
			      head_len);
	return 0;
}

const char *kars_http_head_field(const char *buf, const struct kars_http_head *h, const char *name)
{
	for (size_t i = 0; i < h->n_fields; i++)
		if (!strcasecmp(buf + h->fields[i].name, name))
			return buf + h->fields[i].value;
	return NULL;
}

static int hex_value(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static int bad_chunk(int *status, struct kars_err *err, const char *what, size_t at)
{
	*status = 400;
	return kars_err_set(err, EINVAL, "chunked body: %s (byte %zu of the body)", what, at);
}

int kars_http_chunked_feed(struct kars_http_chunked *c, char *body, size_t len, uint64_t max,
			   int *status, struct kars_err *err)
{
	while (c->raw < len) {
		char ch = body[c->raw];

		switch (c->state) {
		case CH_SIZE:
			if (hex_value(ch) >= 0) {
				if (++c->digits > 15)
					return bad_chunk(status, err, "chunk size too large",
							 c->raw);
				c->remaining = c->remaining * 16 + (uint64_t)hex_value(ch);
				c->raw++;
				break;
			}
			if (!c->digits)
				return bad_chunk(status, err, "no chunk size", c->raw);
			if (ch == ';') {
				c->state = CH_EXT;
			} else if (ch == '\r') {
				c->state = CH_SIZE_LF;
			} else {
				return bad_chunk(status, err, "malformed chunk size", c->raw);
			}
			c->raw++;
			break;
		case CH_EXT:
			if (++c->line > MAX_CHUNK_LINE)
				return bad_chunk(status, err, "chunk extension too long", c->raw);
			if (ch == '\r')
				c->state = CH_SIZE_LF;
			else if (!is_value_char((unsigned char)ch))
				return bad_chunk(status, err, "control byte in a chunk extension",
						 c->raw);
			c->raw++;
			break;
		case CH_SIZE_LF:
			if (ch != '\n')
				return bad_chunk(status, err, "bare CR", c->raw);
			c->raw++;
			c->digits = 0;
			c->line = 0;
			if (c->remaining > max || c->out + c->remaining > max) {
				*status = 413;
				return kars_err_set(err, EFBIG,
						    "request body larger than %llu bytes",
						    (unsigned long long)max);
			}
			c->state = c->remaining ? CH_DATA : CH_TRAILER;
			break;
		case CH_DATA: {
			size_t n = len - c->raw;

			if (n > c->remaining)
				n = (size_t)c->remaining;
			memmove(body + c->out, body + c->raw, n);
			c->out += n;
			c->raw += n;
			c->remaining -= n;
			if (!c->remaining)
				c->state = CH_DATA_CR;
			break;
		}
		case CH_DATA_CR:
			if (ch != '\r')
				return bad_chunk(status, err, "chunk data longer than its size",
						 c->raw);
			c->raw++;
			c->state = CH_DATA_LF;
			break;
		case CH_DATA_LF:
			if (ch != '\n')
				return bad_chunk(status, err, "bare CR", c->raw);
			c->raw++;
			c->state = CH_SIZE;
			break;
		case CH_TRAILER:
			/* Trailers are read and dropped: none is acted on. */
			if (ch == '\r') {
				c->state = CH_TRAILER_LF;
			} else if (ch == '\n') {
				return bad_chunk(status, err, "bare LF", c->raw);
			} else if (!is_value_char((unsigned char)ch) ||
				   (c->line == 0 && (ch == ' ' || ch == '\t'))) {
				return bad_chunk(status, err, "malformed trailer", c->raw);
			} else if (++c->line > MAX_CHUNK_LINE) {
				return bad_chunk(status, err, "trailer too long", c->raw);
			}
			c->raw++;
			break;
		case CH_TRAILER_LF:
			if (ch != '\n')
				return bad_chunk(status, err, "bare CR", c->raw);
			c->raw++;
			if (c->line == 0)
				return 1;
			c->line = 0;
			c->state = CH_TRAILER;
			break;
		}
	}
	return 0;
}
