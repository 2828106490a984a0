/* test_http_head.c - unit tests for the egress proxy's request head parser
 * (userspace/router/http_head.c): the three forms it accepts, a head cut at
 * every byte, and a table of heads it must refuse (the ways a lenient parser
 * is fooled: bare CR/LF, control bytes, folding, two Hosts, CL+TE, fronting
 * between the target and Host). */
#include "unit.h"

#include <errno.h>
#include <stdlib.h>

#include "http_head.h"

static enum kars_http_result parse(const char *s, struct kars_http_head *h, struct kars_err *err)
{
	kars_err_clear(err);
	return kars_http_head_parse(s, strlen(s), 80, h, err);
}

static void test_connect(void **state)
{
	static const char req[] = "CONNECT API.Example.com:443 HTTP/1.1\r\n"
				  "Host: api.example.com:443\r\n"
				  "User-Agent: curl/7.88.1\r\n"
				  "Proxy-Connection: Keep-Alive\r\n\r\n";
	struct kars_http_head h;
	struct kars_err err = {0};

	assert_int_equal(parse(req, &h, &err), KARS_HTTP_OK);
	assert_true(h.connect);
	assert_string_equal(h.host, "api.example.com");
	assert_int_equal(h.port, 443);
	assert_int_equal(h.head_len, strlen(req));
	assert_int_equal(h.nheaders, 3);
	assert_true(kars_http_header_is(req, &h.headers[2], "proxy-connection"));
	assert_int_equal(h.headers[2].value.len, strlen("Keep-Alive"));
	assert_memory_equal(req + h.headers[2].value.off, "Keep-Alive", 10);
}

static void test_connect_without_host_and_ipv6(void **state)
{
	struct kars_http_head h;
	struct kars_err err = {0};

	assert_int_equal(parse("CONNECT [2001:DB8::1]:8443 HTTP/1.1\r\n\r\n", &h, &err),
			 KARS_HTTP_OK);
	assert_true(h.host_is_ip6);
	assert_string_equal(h.host, "2001:DB8::1");
	assert_int_equal(h.port, 8443);
	assert_int_equal(parse("CONNECT 192.0.2.1:443 HTTP/1.0\r\n\r\n", &h, &err), KARS_HTTP_OK);
	assert_true(h.http10);
	assert_string_equal(h.host, "192.0.2.1");
}

static void test_absolute_uri(void **state)
{
	static const char req[] = "GET http://Example.COM./a/b?c=d HTTP/1.1\r\n"
				  "Host: example.com\r\n"
				  "Content-Length: 5\r\n\r\nhello";
	struct kars_http_head h;
	struct kars_err err = {0};

	assert_int_equal(parse(req, &h, &err), KARS_HTTP_OK);
	assert_false(h.connect);
	assert_string_equal(h.host, "example.com");
	assert_int_equal(h.port, 80);
	assert_int_equal(h.path.len, strlen("/a/b?c=d"));
	assert_memory_equal(req + h.path.off, "/a/b?c=d", h.path.len);
	assert_true(h.has_content_length);
	assert_int_equal(h.content_length, 5);
	assert_int_equal(h.head_len, strlen(req) - 5);

	/* No path at all: the proxy sends "/". */
	assert_int_equal(parse("GET http://example.com:8080 HTTP/1.1\r\n\r\n", &h, &err),
			 KARS_HTTP_OK);
	assert_int_equal(h.port, 8080);
	assert_int_equal(h.path.len, 0);
}

static void test_origin_form_uses_host(void **state)
{
	static const char req[] = "POST /v1/x HTTP/1.1\r\nhost:  a.example:8080 \r\n\r\n";
	struct kars_http_head h;
	struct kars_err err = {0};

	assert_int_equal(parse(req, &h, &err), KARS_HTTP_OK);
	assert_string_equal(h.host, "a.example");
	assert_int_equal(h.port, 8080);
	assert_memory_equal(req + h.path.off, "/v1/x", 5);
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: b.example\r\n\r\n", &h, &err),
			 KARS_HTTP_OK);
	assert_int_equal(h.port, 80);
}

static void test_every_prefix_asks_for_more(void **state)
{
	static const char req[] = "GET http://a.example/ HTTP/1.1\r\nHost: a.example\r\n"
				  "Accept: */*\r\n\r\n";
	struct kars_http_head h;
	struct kars_err err = {0};

	for (size_t len = 0; len < strlen(req); len++)
		assert_int_equal(kars_http_head_parse(req, len, 80, &h, &err), KARS_HTTP_MORE);
	assert_int_equal(kars_http_head_parse(req, strlen(req), 80, &h, &err), KARS_HTTP_OK);
}

static void test_oversized(void **state)
{
	size_t n = KARS_HTTP_HEAD_MAX + 10;
	char *big = malloc(n);
	struct kars_http_head h;
	struct kars_err err = {0};

	assert_non_null(big);
	memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
	memset(big + 19, 'a', n - 19);
	assert_int_equal(kars_http_head_parse(big, KARS_HTTP_HEAD_MAX - 1, 80, &h, &err),
			 KARS_HTTP_MORE);
	assert_int_equal(kars_http_head_parse(big, n, 80, &h, &err), KARS_HTTP_TOO_BIG);
	assert_err_contains(&err, "longer than 16384");
	free(big);
}

static void test_refused(void **state)
{
	static const struct {
		const char *req, *want;
	} cases[] = {
	    {"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", "bare CR"},
	    {"GET / HTTP/1.1\nHost: a\r\n\r\n", "bare LF"},
	    {"GET / HTTP/1.1\r\nHost: a\r\n\n", "bare LF"},
	    {"GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n", "control byte 0x01"},
	    {"GET / HTTP/1.1\r\nHost: a\r\nX: \x7f\r\n\r\n", "control byte 0x7f"},
	    {"GET / HTTP/1.1\r\nHost: a\x00z\r\n\r\n", "control byte 0x00"},
	    {"GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n", "more than one Host"},
	    {"GET / HTTP/1.1\r\nHost: a.example\r\nhOST: a.example\r\n\r\n", "more than one Host"},
	    {"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n", "folded"},
	    {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", "followed directly by ':'"},
	    {"GET / HTTP/1.1\r\nX-No-Colon\r\n\r\n", "followed directly by ':'"},
	    {"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", "without a Host"},
	    {"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", "empty request line"},
	    {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", "HTTP/1.0 or HTTP/1.1"},
	    {"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", "HTTP/1.0 or HTTP/1.1"},
	    {"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", "no request target"},
	    {"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", "method"},
	    {"GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", "non-ASCII"},
	    {"GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", "'#'"},
	    {"GET https://a.example/ HTTP/1.1\r\n\r\n", "sent with CONNECT"},
	    {"GET ftp://a.example/ HTTP/1.1\r\n\r\n", "target is not"},
	    {"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", "target is not"},
	    {"GET http://user@a.example/ HTTP/1.1\r\n\r\n", "user information"},
	    {"GET http://a.example%2eevil/ HTTP/1.1\r\n\r\n", "not a letter"},
	    {"GET http:///x HTTP/1.1\r\n\r\n", "empty"},
	    {"CONNECT a.example HTTP/1.1\r\n\r\n", "has no port"},
	    {"CONNECT a.example: HTTP/1.1\r\n\r\n", "port is empty"},
	    {"CONNECT a.example:0 HTTP/1.1\r\n\r\n", "1..65535"},
	    {"CONNECT a.example:65536 HTTP/1.1\r\n\r\n", "1..65535"},
	    {"CONNECT a.example:44x HTTP/1.1\r\n\r\n", "not a number"},
	    {"CONNECT a.example:+443 HTTP/1.1\r\n\r\n", "not a number"},
	    {"CONNECT [2001:db8::1 HTTP/1.1\r\n\r\n", "without ']'"},
	    {"CONNECT [fe80::1%eth0]:443 HTTP/1.1\r\n\r\n", "not an IPv6 address"},
	    {"CONNECT [::1]x:443 HTTP/1.1\r\n\r\n", "junk after"},
	    {"CONNECT a.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n", "another host"},
	    {"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:8443\r\n\r\n", "another host"},
	    {"GET http://a.example/ HTTP/1.1\r\nHost: evil.example\r\n\r\n", "another host"},
	    {"GET http://a.example/ HTTP/1.1\r\nHost: a.example:8080\r\n\r\n", "another host"},
	    {"CONNECT a.example:443 HTTP/1.1\r\nContent-Length: 4\r\n\r\n", "CONNECT with a body"},
	    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
	     "both Content-Length and Transfer-Encoding"},
	    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\n",
	     "more than one Content-Length"},
	    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -4\r\n\r\n", "not a number"},
	    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4 4\r\n\r\n", "not a number"},
	};
	struct kars_http_head h;
	struct kars_err err = {0};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* The NUL case is written with an explicit length. */
		size_t len = strlen(cases[i].req);

		if (strstr(cases[i].want, "0x00"))
			len = sizeof("GET / HTTP/1.1\r\nHost: a\x00z\r\n\r\n") - 1;
		kars_err_clear(&err);
		if (kars_http_head_parse(cases[i].req, len, 80, &h, &err) != KARS_HTTP_BAD)
			fail_msg("case %zu not refused: %s", i, cases[i].req);
		if (!strstr(err.msg, cases[i].want))
			fail_msg("case %zu: error \"%s\" does not contain \"%s\"", i, err.msg,
				 cases[i].want);
	}
}

static void test_too_many_headers(void **state)
{
	char buf[8192];
	size_t n = 0;
	struct kars_http_head h;
	struct kars_err err = {0};

	n += (size_t)sprintf(buf + n, "GET / HTTP/1.1\r\nHost: a\r\n");
	for (int i = 0; i < KARS_HTTP_MAX_HEADERS; i++)
		n += (size_t)sprintf(buf + n, "X-%d: v\r\n", i);
	n += (size_t)sprintf(buf + n, "\r\n");
	assert_int_equal(kars_http_head_parse(buf, n, 80, &h, &err), KARS_HTTP_BAD);
	assert_err_contains(&err, "more than 100 header lines");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_connect),
    cmocka_unit_test(test_connect_without_host_and_ipv6),
    cmocka_unit_test(test_absolute_uri),
    cmocka_unit_test(test_origin_form_uses_host),
    cmocka_unit_test(test_every_prefix_asks_for_more),
    cmocka_unit_test(test_oversized),
    cmocka_unit_test(test_refused),
    cmocka_unit_test(test_too_many_headers),
};

KARS_UNIT_MAIN(tests)
