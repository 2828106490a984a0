/* test_http_server.c - unit tests for kars-router's agent-facing HTTP/1.1
 * server (userspace/router/http_server.h) and its request parser
 * (http_request.h).
 *
 * The parser cases feed heads and chunked bodies straight in. The server
 * cases run it as the router does, on a real loopback socket: the test is
 * the agent, writes raw request bytes (several requests at once, to check
 * pipelining) and reads the raw answers from the same event loop.
 */
#include "unit.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_request.h"
#include "http_server.h"

/* ---- the parser ---- */

/* Scans and parses head; returns the status of a refusal, or 0. */
static int parse(const char *head, struct kars_http_head *h)
{
	char buf[8192];
	size_t len = strlen(head), scan = 0;
	struct kars_err err = {0};
	int status = 0, rc;

	assert_true(len < sizeof(buf));
	memcpy(buf, head, len + 1);
	rc = kars_http_scan_head(buf, len, &scan, 4096, &status, &err);
	if (rc < 0)
		return status;
	assert_int_equal(rc, 1);
	if (kars_http_parse_head(buf, scan, h, &status, &err))
		return status;
	return 0;
}

static void test_parse_good(void **state)
{
	static char buf[] = "POST /v1/chat?x=1 HTTP/1.1\r\nHost: r\r\nX-A:\tb c \r\n"
			    "Content-Length: 12\r\nConnection: keep-alive\r\n\r\nrest";
	struct kars_http_head h;
	struct kars_err err = {0};
	size_t scan = 0;
	int status = 0;

	assert_int_equal(kars_http_scan_head(buf, strlen(buf), &scan, 4096, &status, &err), 1);
	assert_int_equal(scan, strlen(buf) - 4);
	assert_int_equal(kars_http_parse_head(buf, scan, &h, &status, &err), 0);
	assert_int_equal(h.method, KARS_HTTP_POST);
	assert_string_equal(buf + h.path, "/v1/chat");
	assert_string_equal(buf + h.query, "x=1");
	assert_int_equal(h.minor, 1);
	assert_true(h.has_length);
	assert_int_equal(h.content_length, 12);
	assert_true(h.keep_alive);
	assert_int_equal(h.n_fields, 4);
	assert_string_equal(kars_http_head_field(buf, &h, "x-a"), "b c");
	assert_null(kars_http_head_field(buf, &h, "Authorization"));
}

/* Bytes arriving one at a time find the same end of head. */
static void test_scan_incremental(void **state)
{
	const char *req = "GET / HTTP/1.1\r\nHost: r\r\n\r\n";
	struct kars_err err = {0};
	size_t scan = 0, len;
	int status = 0, rc = 0;

	for (len = 1; len <= strlen(req); len++) {
		rc = kars_http_scan_head(req, len, &scan, 4096, &status, &err);
		if (rc)
			break;
	}
	assert_int_equal(rc, 1);
	assert_int_equal(len, strlen(req));
	assert_int_equal(scan, strlen(req));
}

static void test_parse_refused(void **state)
{
	struct kars_http_head h;
	char big[6000];

	assert_int_equal(parse("GET / HTTP/1.1\nHost: r\r\n\r\n", &h), 400); /* bare LF */
	assert_int_equal(parse("GET / HTTP/1.1\rHost: r\r\n\r\n", &h), 400); /* bare CR */
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: r\r\n X: y\r\n\r\n", &h), 400); /* fold */
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: r\r\nX: a\001b\r\n\r\n", &h), 400);
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: r\r\nX y: z\r\n\r\n", &h), 400);
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: r\r\nX : z\r\n\r\n", &h), 400);
	assert_int_equal(parse("POST / HTTP/1.1\r\nHost: r\r\nContent-Length: 1\r\n"
			       "Content-Length: 1\r\n\r\n",
			       &h),
			 400);
	assert_int_equal(parse("POST / HTTP/1.1\r\nHost: r\r\nContent-Length: 1\r\n"
			       "Transfer-Encoding: chunked\r\n\r\n",
			       &h),
			 400);
	assert_int_equal(parse("POST / HTTP/1.1\r\nHost: r\r\nContent-Length: -1\r\n\r\n", &h),
			 400);
	assert_int_equal(parse("POST / HTTP/1.1\r\nHost: r\r\nContent-Length: 1 2\r\n\r\n", &h),
			 400);
	assert_int_equal(parse("POST / HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: gzip\r\n\r\n", &h),
			 501);
	assert_int_equal(parse("GET / HTTP/1.1\r\n\r\n", &h), 400); /* no Host */
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", &h), 400);
	assert_int_equal(parse("GET / HTTP/2.0\r\nHost: r\r\n\r\n", &h), 505);
	assert_int_equal(parse("GET / HTTP/1.2\r\nHost: r\r\n\r\n", &h), 505);
	assert_int_equal(parse("GET http://a/ HTTP/1.1\r\nHost: r\r\n\r\n", &h), 400);
	assert_int_equal(parse("GET  / HTTP/1.1\r\nHost: r\r\n\r\n", &h), 400);
	assert_int_equal(parse("\r\nGET / HTTP/1.1\r\nHost: r\r\n\r\n", &h), 400);
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: r\r\nExpect: 200-ok\r\n\r\n", &h), 417);
	/* a head past the limit */
	snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: r\r\nX: %5000d\r\n\r\n", 1);
	assert_int_equal(parse(big, &h), 431);
	/* more fields than the parser holds */
	big[0] = '\0';
	strcat(big, "GET / HTTP/1.1\r\nHost: r\r\n");
	for (int i = 0; i < KARS_HTTP_MAX_FIELDS; i++)
		strcat(big, "X: y\r\n");
	strcat(big, "\r\n");
	assert_int_equal(parse(big, &h), 431);
	/* and the same without the last one is fine */
	assert_int_equal(parse("GET / HTTP/1.0\r\n\r\n", &h), 0);
	assert_false(h.keep_alive);
}

static int dechunk(const char *raw, char *out, size_t *out_len, uint64_t max)
{
	char buf[1024];
	struct kars_http_chunked c = {0};
	struct kars_err err = {0};
	size_t len = strlen(raw);
	int status = 0, rc;

	memcpy(buf, raw, len);
	/* fed in two pieces, as a socket might deliver it */
	rc = kars_http_chunked_feed(&c, buf, len / 2, max, &status, &err);
	if (rc == 0)
		rc = kars_http_chunked_feed(&c, buf, len, max, &status, &err);
	if (rc < 0)
		return status;
	if (rc == 0)
		return -1;
	assert_int_equal(c.raw, len);
	memcpy(out, buf, c.out);
	*out_len = c.out;
	return 0;
}

static void test_chunked(void **state)
{
	char out[1024];
	size_t n = 0;

	assert_int_equal(dechunk("5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\n"
				 "Trailer: x\r\n\r\n",
				 out, &n, 100),
			 0);
	assert_int_equal(n, 16);
	assert_memory_equal(out, "hello 0123456789", 16);
	assert_int_equal(dechunk("0\r\n\r\n", out, &n, 100), 0);
	assert_int_equal(n, 0);
	assert_int_equal(dechunk("5\r\nhelloX\r\n0\r\n\r\n", out, &n, 100), 400);
	assert_int_equal(dechunk("5\nhello\r\n0\r\n\r\n", out, &n, 100), 400);
	assert_int_equal(dechunk("g\r\n", out, &n, 100), 400);
	assert_int_equal(dechunk(" 5\r\nhello\r\n0\r\n\r\n", out, &n, 100), 400);
	assert_int_equal(dechunk("ffffffffffffffff0\r\n", out, &n, 100), 400);
	assert_int_equal(dechunk("65\r\n", out, &n, 100), 413); /* 101 > 100 */
	assert_int_equal(dechunk("0\r\n X: folded\r\n\r\n", out, &n, 100), 400);
	assert_int_equal(dechunk("5\r\nhello\r\n", out, &n, 100), -1); /* not ended yet */
}

/* ---- the server, over loopback ---- */

struct fixture {
	struct event_base *base;
	struct kars_hsrv *srv;
	struct kars_hreq *held; /* a request answered later */
	bool hold;		/* the handler keeps the request instead of answering */
	bool stream;
	int handled;
	char got[65536]; /* what the agent side read */
	size_t got_len;
	bool eof;
	const char *until; /* stop reading once got holds it this many times */
	int until_n;
};

static int count(const char *hay, size_t len, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = memmem(p, len - (size_t)(p - hay), needle, strlen(needle)));
	     p++)
		n++;
	return n;
}

/* Echoes "METHOD PATH QUERY BODY END\n" (BODY as it was decoded). */
static void handler(struct kars_hreq *q, void *arg)
{
	struct fixture *f = arg;
	char text[4096];
	const char *body;
	size_t len;
	int n;

	f->handled++;
	if (f->hold) {
		f->held = q;
		return;
	}
	body = kars_hreq_body(q, &len);
	n = snprintf(text, sizeof(text), "%s %s %s %.*s END\n", kars_hreq_method_name(q),
		     kars_hreq_path(q), kars_hreq_query(q), (int)len, body);
	assert_int_equal(kars_hreq_add_header(q, "X-Bad", "a\r\nInjected: 1"), -1);
	assert_int_equal(kars_hreq_add_header(q, "Content-Type", "text/plain"), 0);
	if (f->stream) {
		kars_hreq_reply_start(q, 200);
		kars_hreq_reply_chunk(q, text, (size_t)n);
		kars_hreq_reply_chunk(q, "more END\n", 9);
		kars_hreq_reply_end(q);
	} else {
		kars_hreq_reply(q, 200, text, (size_t)n);
	}
}

static void on_agent_read(evutil_socket_t fd, short what, void *arg)
{
	struct fixture *f = arg;
	ssize_t n;

	if (what & EV_TIMEOUT) {
		event_base_loopbreak(f->base); /* a hang guard: the case fails on what it got */
		return;
	}
	n = recv(fd, f->got + f->got_len, sizeof(f->got) - 1 - f->got_len, MSG_DONTWAIT);
	if (n > 0) {
		f->got_len += (size_t)n;
		f->got[f->got_len] = '\0';
	} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
		f->eof = true;
	}
	if (f->eof || (f->until && count(f->got, f->got_len, f->until) >= f->until_n))
		event_base_loopbreak(f->base);
}

static void setup_server(struct fixture *f, uint64_t max_body)
{
	struct kars_hsrv_config cfg = {
	    .max_head = 4096, .max_body = max_body, .timeout_s = 30, .handler = handler, .arg = f};
	struct kars_err err = {0};

	memset(f, 0, sizeof(*f));
	f->base = event_base_new();
	assert_non_null(f->base);
	f->srv = kars_hsrv_new(f->base, &cfg, &err);
	assert_non_null(f->srv);
	assert_int_equal(kars_hsrv_listen(f->srv, "127.0.0.1", 0, &err), 0);
	assert_true(kars_hsrv_port(f->srv) > 0);
}

static int agent_connect(struct fixture *f)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(kars_hsrv_port(f->srv))};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void write_all(int fd, const char *s)
{
	assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

/* Writes wire and runs the loop until the agent has read `until` n times
 * (or the end of the connection). */
static void agent_send(struct fixture *f, int fd, const char *wire, const char *until, int n)
{
	struct timeval guard = {.tv_sec = 10};
	struct event *ev = event_new(f->base, fd, EV_READ | EV_PERSIST, on_agent_read, f);

	f->until = until;
	f->until_n = n;
	if (wire)
		write_all(fd, wire);
	assert_non_null(ev);
	event_add(ev, &guard);
	if (!(f->eof || (until && count(f->got, f->got_len, until) >= n)))
		event_base_dispatch(f->base);
	event_free(ev);
}

static void teardown_server(struct fixture *f)
{
	kars_hsrv_free(f->srv);
	event_base_free(f->base);
}

static void test_keep_alive_and_pipelining(void **state)
{
	struct fixture f;
	struct kars_hsrv_stats st;
	int fd;

	setup_server(&f, 1024);
	fd = agent_connect(&f);
	agent_send(&f, fd, "GET /healthz HTTP/1.1\r\nHost: r\r\n\r\n", "END\n", 1);
	assert_non_null(strstr(f.got, "HTTP/1.1 200 OK\r\n"));
	assert_non_null(strstr(f.got, "Content-Length: 19\r\n"));
	assert_null(strstr(f.got, "Injected"));
	assert_non_null(strstr(f.got, "\r\n\r\nGET /healthz   END\n"));
	/* three at once, answered in order on the same connection */
	f.got_len = 0;
	agent_send(&f, fd,
		   "POST /a?q=1 HTTP/1.1\r\nHost: r\r\nContent-Length: 3\r\n\r\nabc"
		   "POST /b HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: chunked\r\n\r\n"
		   "2\r\nxy\r\n1\r\nz\r\n0\r\n\r\n"
		   "GET /c HTTP/1.1\r\nHost: r\r\n\r\n",
		   "END\n", 3);
	assert_false(f.eof);
	assert_int_equal(count(f.got, f.got_len, "HTTP/1.1 200 OK"), 3);
	assert_non_null(strstr(f.got, "POST /a q=1 abc END\n"));
	assert_non_null(strstr(f.got, "POST /b  xyz END\n"));
	assert_non_null(strstr(f.got, "GET /c   END\n"));
	assert_true(strstr(f.got, "/a q=1") < strstr(f.got, "/b ") &&
		    strstr(f.got, "/b ") < strstr(f.got, "/c "));
	kars_hsrv_get_stats(f.srv, &st);
	assert_int_equal(st.accepted, 1);
	assert_int_equal(st.requests, 4);
	close(fd);
	teardown_server(&f);
}

/* A refused head is answered, and the connection closed: where the next
 * request would start is not known. The request after it is never served. */
static void test_refused_closes(void **state)
{
	static const char *const bad[] = {
	    "GET / HTTP/1.1\r\nHost: r\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
	    "POST / HTTP/1.1\r\nHost: r\r\nContent-Length: 2\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: r\r\nX: a\nGET /smuggled HTTP/1.1\r\n\r\n",
	    "POST / HTTP/1.1\r\nHost: r\r\nContent-Length: 2000\r\n\r\n",
	    "POST / HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n",
	    "BREW / HTTP/1.1\r\nHost: r\r\n\r\n",
	};
	static const char *const status[] = {"400", "400", "400", "413", "413", "501"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct fixture f;
		char line[32];
		int fd;

		setup_server(&f, 1024);
		fd = agent_connect(&f);
		agent_send(&f, fd, bad[i], NULL, 0);
		snprintf(line, sizeof(line), "HTTP/1.1 %s ", status[i]);
		if (strncmp(f.got, line, strlen(line)))
			fail_msg("case %zu: got \"%.80s\", expected %s", i, f.got, status[i]);
		assert_true(f.eof);
		assert_non_null(strstr(f.got, "Connection: close\r\n"));
		assert_non_null(strstr(f.got, "\"type\":\"invalid_request_error\""));
		assert_int_equal(f.handled, 0);
		close(fd);
		teardown_server(&f);
	}
}

/* A body far over the limit, sent at once with its head: refused from the
 * Content-Length, before the body is read, and the connection ends after
 * the 413 (through C_LINGER, which drops the rest of the body). */
static void test_refused_big_body(void **state)
{
	static char wire[200000];
	struct fixture f;
	int fd, n;

	setup_server(&f, 1024);
	n = snprintf(wire, sizeof(wire),
		     "POST / HTTP/1.1\r\nHost: r\r\nContent-Length: 100000\r\n\r\n");
	memset(wire + n, 'x', 100000);
	wire[n + 100000] = '\0';
	fd = agent_connect(&f);
	agent_send(&f, fd, wire, NULL, 0);
	assert_true(f.eof);
	assert_int_equal(strncmp(f.got, "HTTP/1.1 413 ", 13), 0);
	assert_non_null(strstr(f.got, "larger than 1024 bytes"));
	close(fd);
	teardown_server(&f);
}

/* A chunked body small once decoded but huge with its framing (long chunk
 * extensions): refused when the framing passes its limit, not read on. */
static void test_chunked_framing_limit(void **state)
{
	static char wire[100000];
	struct fixture f;
	size_t n;
	int fd;

	setup_server(&f, 1024);
	n = (size_t)snprintf(wire, sizeof(wire),
			     "POST / HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: chunked\r\n\r\n");
	for (int i = 0; i < 20; i++) {
		memcpy(wire + n, "1;", 2);
		memset(wire + n + 2, 'e', 4000);
		memcpy(wire + n + 4002, "\r\nX\r\n", 5);
		n += 4007;
	}
	wire[n] = '\0';
	fd = agent_connect(&f);
	agent_send(&f, fd, wire, NULL, 0);
	assert_true(f.eof);
	assert_int_equal(strncmp(f.got, "HTTP/1.1 413 ", 13), 0);
	assert_int_equal(f.handled, 0);
	close(fd);
	teardown_server(&f);
}

/* A streamed answer is chunked, and the connection stays usable. */
static void test_streamed(void **state)
{
	struct fixture f;
	int fd;

	setup_server(&f, 1024);
	f.stream = true;
	fd = agent_connect(&f);
	agent_send(&f, fd, "GET /s HTTP/1.1\r\nHost: r\r\n\r\n", "0\r\n\r\n", 1);
	assert_non_null(strstr(f.got, "Transfer-Encoding: chunked\r\n"));
	assert_null(strstr(f.got, "Content-Length"));
	assert_non_null(
	    strstr(f.got, "\r\n\r\nd\r\nGET /s   END\n\r\n9\r\nmore END\n\r\n0\r\n\r\n"));
	f.got_len = 0;
	agent_send(&f, fd, "GET /t HTTP/1.1\r\nHost: r\r\n\r\n", "0\r\n\r\n", 1);
	assert_non_null(strstr(f.got, "GET /t   END"));
	close(fd);
	/* HTTP/1.0: no chunks; the end of the connection ends the body */
	f.got_len = 0;
	fd = agent_connect(&f);
	agent_send(&f, fd, "GET /u HTTP/1.0\r\n\r\n", NULL, 0);
	assert_true(f.eof);
	assert_non_null(strstr(f.got, "Connection: close\r\n\r\nGET /u   END\nmore END\n"));
	close(fd);
	teardown_server(&f);
}

/* Expect: 100-continue gets its interim answer before the body is sent. */
static void test_continue(void **state)
{
	struct fixture f;
	int fd;

	setup_server(&f, 1024);
	fd = agent_connect(&f);
	agent_send(
	    &f, fd,
	    "POST /e HTTP/1.1\r\nHost: r\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n",
	    "100 Continue\r\n\r\n", 1);
	assert_int_equal(f.handled, 0);
	agent_send(&f, fd, "body", "END\n", 1);
	assert_non_null(strstr(f.got, "POST /e  body END\n"));
	close(fd);
	teardown_server(&f);
}

/* The agent hangs up while its request is held: the request stays valid,
 * says it is no longer connected, and answering it frees it. */
static void test_agent_gone(void **state)
{
	struct fixture f;
	char buf[64];
	int fd;

	setup_server(&f, 1024);
	f.hold = true;
	fd = agent_connect(&f);
	write_all(fd, "GET /h HTTP/1.1\r\nHost: r\r\n\r\n");
	while (!f.held)
		assert_int_equal(event_base_loop(f.base, EVLOOP_ONCE), 0);
	assert_true(kars_hreq_connected(f.held));
	assert_true(kars_hreq_fd(f.held) >= 0);
	assert_string_equal(kars_hreq_path(f.held), "/h");
	close(fd);
	while (kars_hreq_connected(f.held))
		assert_int_equal(event_base_loop(f.base, EVLOOP_ONCE), 0);
	assert_int_equal(kars_hreq_fd(f.held), -1);
	assert_string_equal(kars_hreq_path(f.held), "/h");
	kars_hreq_reply_start(f.held, 200);
	kars_hreq_reply_chunk(f.held, "x", 1);
	assert_int_equal(kars_hreq_unsent(f.held), 0);
	kars_hreq_reply_end(f.held);
	/* the query parameter decoder, on a held request of its own */
	f.held = NULL;
	fd = agent_connect(&f);
	write_all(fd, "GET /q?a=1&agent=b%2Fc+d&z HTTP/1.1\r\nHost: r\r\n\r\n");
	while (!f.held)
		assert_int_equal(event_base_loop(f.base, EVLOOP_ONCE), 0);
	assert_string_equal(kars_hreq_query_param(f.held, "agent", buf, sizeof(buf)), "b/c d");
	assert_string_equal(kars_hreq_query_param(f.held, "a", buf, sizeof(buf)), "1");
	assert_null(kars_hreq_query_param(f.held, "z", buf, sizeof(buf)));
	assert_null(kars_hreq_query_param(f.held, "agen", buf, sizeof(buf)));
	kars_hreq_cut(f.held);
	f.got_len = 0;
	agent_send(&f, fd, NULL, NULL, 0);
	assert_true(f.eof);
	assert_int_equal(f.got_len, 0);
	close(fd);
	teardown_server(&f);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_refused_closes),
    cmocka_unit_test(test_refused_big_body),
    cmocka_unit_test(test_chunked_framing_limit),
    cmocka_unit_test(test_streamed),
    cmocka_unit_test(test_continue),
    cmocka_unit_test(test_agent_gone),
    cmocka_unit_test(test_parse_good),
    cmocka_unit_test(test_scan_incremental),
    cmocka_unit_test(test_parse_refused),
    cmocka_unit_test(test_chunked),
    cmocka_unit_test(test_keep_alive_and_pipelining),
};

KARS_UNIT_MAIN(tests)
