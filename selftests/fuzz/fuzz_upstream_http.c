/* fuzz_upstream_http.c - libFuzzer target for the answer parser of
 * kars-router's upstream HTTP/1.1 client (userspace/router/upstream_http.c).
 *
 * The model upstream's answer reaches the router from the network. The
 * client is driven as the router drives it, over a real loopback TCP
 * connection: the target listens on 127.0.0.1, the client connects and sends
 * a request, the target writes the fuzz input as the answer (in two pieces,
 * split where the first input byte says, so that every parser state can be
 * cut in the middle) and closes its side. Byte 2's low bit makes on_body
 * refuse the first piece of body. Whatever the bytes: no crash or leak, the
 * request ends with exactly one on_done, on_head comes at most once and
 * before any body, no body piece is empty, and an OK answer with a status
 * in 200..599 had its head.
 */
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../userspace/router/upstream_http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

struct run {
	int heads, dones, status;
	bool abort_body;
	size_t body_bytes;
	enum kars_uhttp_result result;
};

static void on_header(void *arg, const char *name, const char *value)
{
	struct run *r = arg;

	CHECK(r->heads == 0 && name && *name && value);
	CHECK(!strpbrk(name, ":\r\n") && !strpbrk(value, "\r\n"));
}

static void on_head(void *arg, int status)
{
	struct run *r = arg;

	CHECK(r->heads == 0 && r->body_bytes == 0);
	CHECK(status >= 200 && status <= 599);
	r->heads++;
	r->status = status;
}

static bool on_body(void *arg, const char *data, size_t len)
{
	struct run *r = arg;

	CHECK(r->heads == 1 && data && len > 0);
	r->body_bytes += len;
	return !r->abort_body;
}

static void on_done(void *arg, enum kars_uhttp_result result, const char *detail)
{
	struct run *r = arg;

	r->dones++;
	r->result = result;
}

static const struct kars_uhttp_callbacks callbacks = {
    .on_header = on_header, .on_head = on_head, .on_body = on_body, .on_done = on_done};

static struct event_base *base;
static int listener = -1;
static char base_url[64];

static void setup(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof(a);

	base = event_base_new();
	listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(base && listener >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(bind(listener, (struct sockaddr *)&a, sizeof(a)) == 0);
	CHECK(listen(listener, 16) == 0);
	CHECK(getsockname(listener, (struct sockaddr *)&a, &alen) == 0);
	snprintf(base_url, sizeof(base_url), "http://127.0.0.1:%u/v1", ntohs(a.sin_port));
}

static void write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		CHECK(w > 0);
		p += w;
		n -= (size_t)w;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kars_uhttp_config cfg = {.connect_timeout_ms = 5000, .idle_timeout_s = 5};
	struct kars_err err = {0};
	struct kars_uhttp *c;
	struct kars_uhttp_req *q;
	struct run r = {0};
	size_t split;
	int peer;

	if (size < 2)
		return 0;
	if (!base)
		setup();
	split = data[0] % (size - 1);
	r.abort_body = data[1] & 1;
	data += 2;
	size -= 2;

	cfg.base_url = base_url;
	c = kars_uhttp_new(base, &cfg, &err);
	CHECK(c);
	q = kars_uhttp_start(c, "POST", "/chat/completions",
			     "Authorization: Bearer fuzz\r\nContent-Type: application/json\r\n",
			     "{}", 2, &callbacks, &r);
	CHECK(q);
	/* A loopback connect is complete once connect() returns. */
	peer = accept(listener, NULL, NULL);
	CHECK(peer >= 0);
	write_all(peer, data, split);
	event_base_loop(base, EVLOOP_NONBLOCK);
	if (!r.dones)
		write_all(peer, data + split, size - split);
	shutdown(peer, SHUT_WR);
	while (!r.dones)
		CHECK(event_base_loop(base, EVLOOP_ONCE) == 0);

	CHECK(r.dones == 1);
	if (r.result == KARS_UHTTP_OK)
		CHECK(r.heads == 1);
	if (r.result == KARS_UHTTP_ABORTED)
		CHECK(r.abort_body && r.body_bytes > 0);
	kars_uhttp_free(c);
	close(peer);
	/* Nothing of this input is left for the next one. */
	event_base_loop(base, EVLOOP_NONBLOCK);
	CHECK(r.dones == 1);
	return 0;
}
