/* fuzz_http_head.c - libFuzzer target for the egress proxy's request head
 * parser (userspace/router/http_head.c).
 *
 * The agent writes these bytes. Whatever they are: no crash, and on success
 * a head that the proxy can use without looking again: head_len within the
 * input and ending in a blank line, a non-empty lower-case host of host-name
 * bytes (or an IPv6 literal), a port, every span inside the head, no CR or
 * LF inside a header name or value, and a CONNECT without a path. A prefix
 * that ends before the blank line never gives OK.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../userspace/router/http_head.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

static void check_span(const char *buf, const struct kars_http_head *h, struct kars_http_span s)
{
	CHECK((size_t)s.off + s.len <= h->head_len);
	CHECK(!memchr(buf + s.off, '\r', s.len) && !memchr(buf + s.off, '\n', s.len));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct kars_http_head h;
	const char *buf = (const char *)data;
	struct kars_err err = {0};
	enum kars_http_result r;

	r = kars_http_head_parse(buf, size, 80, &h, &err);
	CHECK(r >= KARS_HTTP_OK && r <= KARS_HTTP_TOO_BIG);
	if (r == KARS_HTTP_MORE)
		CHECK(size < KARS_HTTP_HEAD_MAX);
	if (r != KARS_HTTP_OK) {
		if (r != KARS_HTTP_MORE)
			CHECK(err.msg[0]);
		return 0;
	}
	CHECK(h.head_len >= 4 && h.head_len <= size && h.head_len <= KARS_HTTP_HEAD_MAX);
	CHECK(memcmp(buf + h.head_len - 4, "\r\n\r\n", 4) == 0);
	CHECK(h.host[0] && h.port > 0);
	for (const char *p = h.host; *p; p++)
		CHECK(h.host_is_ip6 ? (isxdigit((unsigned char)*p) || *p == ':' || *p == '.')
				    : (islower((unsigned char)*p) || isdigit((unsigned char)*p) ||
				       strchr("-_.", *p)));
	check_span(buf, &h, h.method);
	check_span(buf, &h, h.path);
	CHECK(!h.connect || h.path.len == 0);
	CHECK(h.nheaders <= KARS_HTTP_MAX_HEADERS);
	for (unsigned i = 0; i < h.nheaders; i++) {
		check_span(buf, &h, h.headers[i].name);
		check_span(buf, &h, h.headers[i].value);
		CHECK(h.headers[i].name.len > 0);
	}
	CHECK(!(h.has_content_length && h.has_transfer_encoding));
	/* The head cut before its last byte is incomplete. */
	CHECK(kars_http_head_parse(buf, h.head_len - 1, 80, &h, &err) == KARS_HTTP_MORE);
	return 0;
}
