/* test_upstream_http.c - unit tests for the answer parser of kars-router's
 * upstream HTTP/1.1 client (userspace/router/upstream_http.h).
 *
 * The model upstream's bytes are untrusted: what the parser accepts is
 * relayed to the agent and billed. Each case runs the client as the router
 * does, over a real loopback TCP connection: the test listens on 127.0.0.1,
 * the client sends a request, the test writes a canned answer and closes its
 * side, and the case checks the result, the status, the headers and the
 * body the client handed over.
 */
#include "unit.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "upstream_http.h"

struct answer {
	enum kars_uhttp_result result;
	int status, dones;
	char headers[1024];
	char body[1024];
	size_t body_len;
};

static void on_header(void *arg, const char *name, const char *value)
{
	struct answer *a = arg;
	size_t n = strlen(a->headers);

	snprintf(a->headers + n, sizeof(a->headers) - n, "%s=%s;", name, value);
}

static void on_head(void *arg, int status)
{
	((struct answer *)arg)->status = status;
}

static bool on_body(void *arg, const char *data, size_t len)
{
	struct answer *a = arg;

	assert_true(a->body_len + len < sizeof(a->body));
	memcpy(a->body + a->body_len, data, len);
	a->body_len += len;
	return true;
}

static void on_done(void *arg, enum kars_uhttp_result result, const char *detail)
{
	struct answer *a = arg;

	a->result = result;
	a->dones++;
}

static const struct kars_uhttp_callbacks callbacks = {
    .on_header = on_header, .on_head = on_head, .on_body = on_body, .on_done = on_done};

/* Sends one request through a new client and answers it with wire. */
static void exchange(const char *wire, struct answer *a)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct kars_uhttp_config cfg = {.connect_timeout_ms = 5000, .idle_timeout_s = 5};
	socklen_t alen = sizeof(sa);
	struct kars_err err = {0};
	struct event_base *base = event_base_new();
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), peer;
	char url[64], request[4096];
	struct kars_uhttp *c;
	ssize_t n;

	memset(a, 0, sizeof(*a));
	assert_non_null(base);
	assert_true(lfd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &alen), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1", ntohs(sa.sin_port));
	cfg.base_url = url;
	c = kars_uhttp_new(base, &cfg, &err);
	assert_non_null(c);
	assert_non_null(kars_uhttp_start(c, "POST", "/chat/completions",
					 "Authorization: Bearer k\r\n", "{}", 2, &callbacks, a));
	peer = accept(lfd, NULL, NULL);
	assert_true(peer >= 0);
	/* The request as it went out. */
	while (event_base_loop(base, EVLOOP_NONBLOCK) == 0 && !a->dones) {
		n = recv(peer, request, sizeof(request) - 1, MSG_DONTWAIT | MSG_PEEK);
		if (n > 0 && memmem(request, (size_t)n, "\r\n\r\n{}", 6))
			break;
	}
	n = recv(peer, request, sizeof(request) - 1, 0);
	assert_true(n > 0);
	request[n] = '\0';
	assert_non_null(strstr(request, "POST /v1/chat/completions HTTP/1.1\r\n"));
	assert_non_null(strstr(request, "Content-Length: 2\r\n"));
	assert_int_equal(write(peer, wire, strlen(wire)), (ssize_t)strlen(wire));
	shutdown(peer, SHUT_WR);
	while (!a->dones)
		assert_int_equal(event_base_loop(base, EVLOOP_ONCE), 0);
	assert_int_equal(a->dones, 1);
	kars_uhttp_free(c);
	close(peer);
	close(lfd);
	event_base_free(base);
}

static void test_length_body(void **state)
{
	struct answer a;

	exchange("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n"
		 "{\"a\":1}",
		 &a);
	assert_int_equal(a.result, KARS_UHTTP_OK);
	assert_int_equal(a.status, 200);
	assert_string_equal(a.headers, "Content-Type=application/json;Content-Length=7;");
	assert_int_equal(a.body_len, 7);
	assert_memory_equal(a.body, "{\"a\":1}", 7);
}

/* "Name:value" without a space is valid HTTP (RFC 9112 5). */
static void test_header_without_space(void **state)
{
	struct answer a;

	exchange("HTTP/1.1 200\r\nContent-Length:2\r\nX-A:\tb \r\n\r\nok", &a);
	assert_int_equal(a.result, KARS_UHTTP_OK);
	assert_string_equal(a.headers, "Content-Length=2;X-A=b;");
	assert_int_equal(a.body_len, 2);
}

static void test_chunked_body(void **state)
{
	struct answer a;

	exchange("HTTP/1.1 100 Continue\r\n\r\n"
		 "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
		 "3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n",
		 &a);
	assert_int_equal(a.result, KARS_UHTTP_OK);
	assert_int_equal(a.status, 201);
	assert_int_equal(a.body_len, 5);
	assert_memory_equal(a.body, "abcde", 5);
}

static void test_body_until_close(void **state)
{
	struct answer a;

	exchange("HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: x\n\n", &a);
	assert_int_equal(a.result, KARS_UHTTP_OK);
	assert_int_equal(a.body_len, 9);
}

/* Each of these must end in KARS_UHTTP_PROTOCOL, with nothing of the body
 * handed over. */
static void test_refused(void **state)
{
	static const char *const bad[] = {
	    /* a bare CR inside a value could split the header downstream */
	    "HTTP/1.1 200 OK\r\nX-A: a\rSet-Cookie: s=1\r\nContent-Length: 2\r\n\r\nok",
	    /* NUL and other control bytes */
	    "HTTP/1.1 200 OK\r\nX-A: a\x01"
	    "b\r\nContent-Length: 2\r\n\r\nok",
	    /* a space or other non-token byte in the name (smuggling) */
	    "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok",
	    "HTTP/1.1 200 OK\r\nX\"A: 1\r\nContent-Length: 2\r\n\r\nok",
	    "HTTP/1.1 200 OK\r\n: 1\r\nContent-Length: 2\r\n\r\nok",
	    "HTTP/1.1 200 OK\r\nno colon\r\nContent-Length: 2\r\n\r\nok",
	    /* two different lengths */
	    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
	    "HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\nok",
	    "HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nok",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nok",
	    /* the status line */
	    "HTTP/1.1 20 OK\r\nContent-Length: 2\r\n\r\nok",
	    "HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok",
	    "HTTP/1.1  200 OK\r\nContent-Length: 2\r\n\r\nok",
	    "HTTP/1.1 +200 OK\r\nContent-Length: 2\r\n\r\nok",
	    "HTTP/1.1 600 OK\r\nContent-Length: 2\r\n\r\nok",
	    "HTTP/2 200 OK\r\nContent-Length: 2\r\n\r\nok",
	    /* chunk framing */
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX\r\n0\r\n\r\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct answer a;

		exchange(bad[i], &a);
		if (a.result != KARS_UHTTP_PROTOCOL)
			fail_msg("answer %zu: result %d, not KARS_UHTTP_PROTOCOL", i, a.result);
		if (i < 16 && a.body_len)
			fail_msg("answer %zu: body handed over", i);
	}
}

/* Cut before the end of what it announced: not OK. */
static void test_truncated(void **state)
{
	struct answer a;

	exchange("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", &a);
	assert_int_equal(a.result, KARS_UHTTP_CLOSED);
	exchange("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", &a);
	assert_int_equal(a.result, KARS_UHTTP_CLOSED);
	exchange("HTTP/1.1 200 OK\r\nContent-", &a);
	assert_int_equal(a.result, KARS_UHTTP_CLOSED);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_length_body),	 cmocka_unit_test(test_header_without_space),
    cmocka_unit_test(test_chunked_body), cmocka_unit_test(test_body_until_close),
    cmocka_unit_test(test_refused),	 cmocka_unit_test(test_truncated),
};

KARS_UNIT_MAIN(tests)
