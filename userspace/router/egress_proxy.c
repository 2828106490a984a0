/* egress_proxy.c - see egress_proxy.h.
 *
 * One struct tunnel per accepted connection, moving through phases:
 *   HEAD     reading the request head (CONNECT or plain HTTP)
 *   RESOLVE  the allowed name is being resolved (evdns, once)
 *   CONNECT  connecting to the address chosen
 *   HELLO    a CONNECT tunnel: waiting for the ClientHello to check its SNI
 *   RELAY    bytes both ways; reading one side stops while the other side's
 *            output holds RELAY_HIGH bytes (backpressure), and resumes when
 *            it has drained to half
 * Timers: one "idle" event re-armed on every read (the connect timeout
 * while resolving and connecting), one for the tunnel's whole lifetime.
 */
#include "egress_proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/un.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "addr.h"
#include "addr_class.h"
#include "audit.h"
#include "egress_learned.h"
#include "http_head.h"
#include "log.h"
#include "router.h"
#include "sock_diag.h"
#include "tls_sni.h"

#define RELAY_HIGH  (256 * 1024)
#define RELAY_CHUNK (128 * 1024)

enum phase { P_HEAD, P_ORIG, P_RESOLVE, P_CONNECT, P_HELLO, P_RELAY, P_CLOSING };
enum kind { K_UNKNOWN, K_CONNECT, K_HTTP, K_TLS };

/* Denial reasons counted in /metrics; anything else counts as "other". */
static const char *const deny_reasons[] = {
    "not_allowed",
    "port_not_allowed",
    "blocklisted",
    "ip_literal",
    "bad_name",
    "bad_request",
    "refused_address",
    "resolve_failed",
    "connect_failed",
    "sni_mismatch",
    "sni_missing",
    "ech",
    "bad_client_hello",
    "not_tls",
    "not_the_agent",
    "transfer_encoding",
    "orig_dst_unavailable",
    "orig_dst_mismatch",
    "other",
};
#define N_DENY (sizeof(deny_reasons) / sizeof(deny_reasons[0]))

struct kars_egress_proxy {
	struct kars_router *r;
	const struct kars_egress_config *cfg;
	struct kars_egress_policy *policy; /* cfg's, mutable by the control endpoints */
	struct evconnlistener *listeners[KARS_EGRESS_MAX_LISTEN];
	struct evdns_base *dns;
	struct kars_egress_learned learned;
	uint64_t tunnels, accepted, refused_full;
	uint64_t allowed, learned_allows, denied[N_DENY];
	uint64_t idle_timeouts, lifetime_timeouts, connect_timeouts;
	uint64_t bytes_up, bytes_down;
};

struct tunnel {
	struct kars_egress_proxy *p;
	struct bufferevent *client, *server;
	enum phase phase;
	enum kind kind;
	char host[KARS_DNS_NAME_BUF]; /* normalised (or the IP literal) */
	uint16_t port;
	bool host_is_ip;
	struct kars_http_head head;
	struct evdns_getaddrinfo_request *dns_req;
	struct event *idle, *life;
	uint64_t body_left; /* plain HTTP: request body bytes still to forward */
	char dst[INET6_ADDRSTRLEN];
	/* the transparent path: the agent socket's cookie, karsd's answer */
	uint64_t cookie;
	struct bufferevent *karsd;
	struct kars_addr orig;
	bool client_eof, server_eof, server_shut;
};

static const char *kind_action(const struct tunnel *t)
{
	return t->kind == K_CONNECT ? "egress.connect"
	       : t->kind == K_HTTP  ? "egress.http"
	       : t->kind == K_TLS   ? "egress.tls"
				    : "egress";
}

static void count_deny(struct kars_egress_proxy *p, const char *reason)
{
	size_t i;

	for (i = 0; i < N_DENY - 1; i++)
		if (strcmp(reason, deny_reasons[i]) == 0)
			break;
	p->denied[i]++;
}

/* One audit record per decision, and a log line. */
static void audit(struct tunnel *t, const char *decision, const char *reason, const char *detail)
{
	struct kars_router *r = t->p->r;
	struct kars_audit_record rec = {0};
	char text[640];

	snprintf(text, sizeof(text), "%s %s:%u%s%s%s%s", reason, t->host[0] ? t->host : "-",
		 t->port, t->dst[0] ? " " : "", t->dst, detail ? ": " : "", detail ? detail : "");
	rec.sandbox = r->cfg.sandbox;
	rec.principal = "agent";
	rec.action = kind_action(t);
	rec.decision = decision;
	rec.reason = text;
	kars_router_audit(r, &rec);
	if (strcmp(decision, "deny") == 0)
		log_info("egress: %s deny %s", kind_action(t), text);
	else
		log_debug("egress: %s %s %s", kind_action(t), decision, text);
}

static void tunnel_free(struct tunnel *t)
{
	struct evdns_getaddrinfo_request *q = t->dns_req;

	t->phase = P_CLOSING;
	t->dns_req = NULL;
	if (q)
		evdns_getaddrinfo_cancel(q); /* its callback sees EVUTIL_EAI_CANCEL */
	if (t->client)
		bufferevent_free(t->client);
	if (t->server)
		bufferevent_free(t->server);
	if (t->karsd)
		bufferevent_free(t->karsd);
	if (t->idle)
		event_free(t->idle);
	if (t->life)
		event_free(t->life);
	t->p->tunnels--;
	free(t);
}

/* Frees the tunnel once the client has been sent what is in its output. */
static void on_client_flushed(struct bufferevent *bev, void *arg)
{
	struct tunnel *t = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		tunnel_free(t);
}

static void close_after_flush(struct tunnel *t)
{
	t->phase = P_CLOSING;
	if (t->server) {
		bufferevent_free(t->server);
		t->server = NULL;
	}
	bufferevent_disable(t->client, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(t->client)) == 0) {
		tunnel_free(t);
		return;
	}
	bufferevent_setwatermark(t->client, EV_WRITE, 0, 0);
	bufferevent_setcb(t->client, NULL, on_client_flushed, NULL, t);
	bufferevent_enable(t->client, EV_WRITE);
}

/* A refusal: 403 (or 400, 431, 501, 502) with the reason, for the HTTP
 * paths; inside a tunnel the connection is just closed. */
static void deny(struct tunnel *t, int status, const char *reason, const char *detail)
{
	static const char *const texts[] = {[400] = "Bad Request",
					    [403] = "Forbidden",
					    [431] = "Request Header Fields Too Large",
					    [501] = "Not Implemented",
					    [502] = "Bad Gateway"};

	count_deny(t->p, reason);
	audit(t, "deny", reason, detail);
	if (status && t->kind != K_TLS && t->phase != P_HELLO && t->phase != P_RELAY) {
		struct evbuffer *out = bufferevent_get_output(t->client);
		char body[512];
		int n = snprintf(body, sizeof(body), "kars egress proxy: %s: %s:%u%s%s\n", reason,
				 t->host[0] ? t->host : "-", t->port, detail ? ": " : "",
				 detail ? detail : "");

		evbuffer_add_printf(out,
				    "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
				    "X-Kars-Reason: %s\r\nConnection: close\r\n"
				    "Content-Length: %d\r\n\r\n%s",
				    status, texts[status], reason, n, body);
	}
	close_after_flush(t);
}

static void arm(struct event *ev, long ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

	event_add(ev, &tv);
}

static void on_idle(evutil_socket_t fd, short what, void *arg)
{
	struct tunnel *t = arg;

	if (t->phase == P_ORIG || t->phase == P_RESOLVE || t->phase == P_CONNECT) {
		t->p->connect_timeouts++;
		deny(t, 502, "connect_failed", "connect timeout");
		return;
	}
	t->p->idle_timeouts++;
	audit(t, "close", "idle_timeout", NULL);
	tunnel_free(t);
}

static void on_lifetime(evutil_socket_t fd, short what, void *arg)
{
	struct tunnel *t = arg;

	t->p->lifetime_timeouts++;
	audit(t, "close", "lifetime", NULL);
	tunnel_free(t);
}

/* --- relay ---------------------------------------------------------------- */

static void relay(struct tunnel *t, struct bufferevent *from, struct bufferevent *to,
		  uint64_t *counter, uint64_t limit)
{
	struct evbuffer *in = bufferevent_get_input(from), *out = bufferevent_get_output(to);
	size_t n = evbuffer_get_length(in);

	if (n > limit)
		n = (size_t)limit;
	if (n) {
		evbuffer_remove_buffer(in, out, n);
		*counter += n;
	}
	if (evbuffer_get_length(out) >= RELAY_HIGH) {
		bufferevent_disable(from, EV_READ);
		bufferevent_setwatermark(to, EV_WRITE, RELAY_HIGH / 2, 0);
	}
}

static void maybe_finish(struct tunnel *t);

static void on_relay_write(struct bufferevent *bev, void *arg)
{
	struct tunnel *t = arg;
	struct bufferevent *other = bev == t->client ? t->server : t->client;
	bool other_eof = bev == t->client ? t->server_eof : t->client_eof;

	if (!other_eof && evbuffer_get_length(bufferevent_get_output(bev)) < RELAY_HIGH / 2)
		bufferevent_enable(other, EV_READ);
	maybe_finish(t);
}

static void client_to_server(struct tunnel *t)
{
	if (t->kind == K_HTTP) {
		/* Only the one request's body; what follows is not forwarded. */
		struct evbuffer *in = bufferevent_get_input(t->client);
		size_t before = evbuffer_get_length(in);

		relay(t, t->client, t->server, &t->p->bytes_up, t->body_left);
		t->body_left -= before - evbuffer_get_length(in);
		if (!t->body_left)
			evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	relay(t, t->client, t->server, &t->p->bytes_up, UINT64_MAX);
}

static void on_side_event(struct bufferevent *bev, short what, void *arg);
static void on_client_read(struct bufferevent *bev, void *arg);

static void on_server_read(struct bufferevent *bev, void *arg)
{
	struct tunnel *t = arg;

	arm(t->idle, t->p->cfg->idle_timeout_s * 1000);
	relay(t, t->server, t->client, &t->p->bytes_down, UINT64_MAX);
}

static void start_relay(struct tunnel *t)
{
	t->phase = P_RELAY;
	/* Up to 128 KiB per read and write instead of libevent's 16 KiB:
	 * fewer system calls per byte relayed. */
	bufferevent_set_max_single_read(t->client, RELAY_CHUNK);
	bufferevent_set_max_single_read(t->server, RELAY_CHUNK);
	bufferevent_set_max_single_write(t->client, RELAY_CHUNK);
	bufferevent_set_max_single_write(t->server, RELAY_CHUNK);
	bufferevent_setcb(t->client, on_client_read, on_relay_write, on_side_event, t);
	bufferevent_setcb(t->server, on_server_read, on_relay_write, on_side_event, t);
	bufferevent_enable(t->client, EV_READ | EV_WRITE);
	bufferevent_enable(t->server, EV_READ | EV_WRITE);
	arm(t->idle, t->p->cfg->idle_timeout_s * 1000);
	client_to_server(t);
}

/* The end of a relay. The server's end ends the tunnel once the client has
 * everything it sent. The client's end is passed on as a half-close once
 * the server has everything the client sent (a client may shut its sending
 * side and wait for the answer), except for plain HTTP, whose request is
 * framed and whose server answers and closes. */
static void maybe_finish(struct tunnel *t)
{
	bool client_flushed = evbuffer_get_length(bufferevent_get_output(t->client)) == 0;
	bool server_flushed = evbuffer_get_length(bufferevent_get_output(t->server)) == 0;

	if (t->server_eof) {
		if (client_flushed)
			tunnel_free(t);
		return;
	}
	if (t->client_eof && server_flushed && !t->server_shut) {
		t->server_shut = true;
		if (t->kind != K_HTTP)
			shutdown(bufferevent_getfd(t->server), SHUT_WR);
	}
}

static void on_side_event(struct bufferevent *bev, short what, void *arg)
{
	struct tunnel *t = arg;

	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	if (t->phase != P_RELAY || (what & BEV_EVENT_ERROR)) {
		tunnel_free(t);
		return;
	}
	if (bev == t->client) {
		client_to_server(t);
		t->client_eof = true;
	} else {
		relay(t, t->server, t->client, &t->p->bytes_down, UINT64_MAX);
		t->server_eof = true;
	}
	bufferevent_disable(bev, EV_READ);
	maybe_finish(t);
}

/* --- the CONNECT tunnel's ClientHello ------------------------------------ */

/* The SNI of the ClientHello at the start of the client's input. False
 * when more bytes are needed, or when the connection was refused (closed). */
static bool client_sni(struct tunnel *t, char sni[KARS_TLS_SNI_BUF])
{
	/* A ClientHello of KARS_TLS_HELLO_MAX bytes in 1-byte records. */
	const size_t max = 6 * KARS_TLS_HELLO_MAX;
	struct evbuffer *in = bufferevent_get_input(t->client);
	size_t len = evbuffer_get_length(in), need = 0;
	struct kars_err err = {0};
	const uint8_t *buf;

	if (len == 0)
		return false;
	if (len > max)
		len = max;
	buf = evbuffer_pullup(in, (ssize_t)len);
	if (!buf) {
		deny(t, 0, "other", "out of memory");
		return false;
	}
	switch (kars_tls_sni_parse(buf, len, sni, &need, &err)) {
	case KARS_SNI_OK:
		return true;
	case KARS_SNI_MORE:
		if (len == max)
			deny(t, 0, "bad_client_hello",
			     "the ClientHello is spread over too many records");
		return false;
	case KARS_SNI_NONE:
		deny(t, 0, "sni_missing", err.msg);
		return false;
	case KARS_SNI_ECH:
		deny(t, 0, "ech", err.msg);
		return false;
	case KARS_SNI_BAD:
		deny(t, 0, buf[0] == 0x16 ? "bad_client_hello" : "not_tls", err.msg);
		return false;
	}
	return false;
}

static void check_hello(struct tunnel *t)
{
	char sni[KARS_TLS_SNI_BUF], norm[KARS_DNS_NAME_BUF];
	struct kars_err err = {0};

	if (!client_sni(t, sni))
		return;
	if (kars_dns_name_normalize(sni, strlen(sni), norm, &err))
		return deny(t, 0, "sni_mismatch", err.msg);
	if (t->host_is_ip) {
		struct kars_egress_decision d;

		/* A tunnel to an address (learn mode): the name must pass too. */
		kars_egress_decide(t->p->policy, norm, t->port, &d);
		if (!d.allow)
			return deny(t, 0, d.reason, norm);
	} else if (strcmp(norm, t->host)) {
		return deny(t, 0, "sni_mismatch", norm);
	}
	start_relay(t);
}

/* --- connect ---------------------------------------------------------------- */

/* The plain HTTP request as it goes upstream: origin-form target, the
 * agent's headers without the hop-by-hop and proxy ones, Connection: close. */
static void write_http_head(struct tunnel *t, const char *buf)
{
	static const char *const drop[] = {"connection",
					   "proxy-connection",
					   "proxy-authorization",
					   "keep-alive",
					   "te",
					   "upgrade",
					   "trailer",
					   NULL};
	const struct kars_http_head *h = &t->head;
	struct evbuffer *out = bufferevent_get_output(t->server);
	bool has_host = false;

	evbuffer_add_printf(out, "%.*s %s%.*s HTTP/1.1\r\n", h->method.len, buf + h->method.off,
			    h->path.len && buf[h->path.off] == '/' ? "" : "/", h->path.len,
			    buf + h->path.off);
	for (unsigned i = 0; i < h->nheaders; i++) {
		const struct kars_http_header *hd = &h->headers[i];
		bool skip = false;

		for (const char *const *d = drop; *d; d++)
			skip = skip || kars_http_header_is(buf, hd, *d);
		if (skip)
			continue;
		has_host = has_host || kars_http_header_is(buf, hd, "host");
		evbuffer_add_printf(out, "%.*s: %.*s\r\n", hd->name.len, buf + hd->name.off,
				    hd->value.len, buf + hd->value.off);
	}
	if (!has_host)
		evbuffer_add_printf(out, h->host_is_ip6 ? "Host: [%s]:%u\r\n" : "Host: %s:%u\r\n",
				    h->host, t->port);
	evbuffer_add_printf(out, "Connection: close\r\n\r\n");
}

static void on_connect_event(struct bufferevent *bev, short what, void *arg)
{
	struct tunnel *t = arg;
	struct evbuffer *in = bufferevent_get_input(t->client);

	if (!(what & BEV_EVENT_CONNECTED)) {
		deny(t, 502, "connect_failed",
		     evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		return;
	}
	if (t->kind == K_CONNECT) {
		evbuffer_drain(in, t->head.head_len);
		evbuffer_add_printf(bufferevent_get_output(t->client),
				    "HTTP/1.1 200 Connection established\r\n\r\n");
		t->phase = P_HELLO;
		bufferevent_setcb(t->server, NULL, NULL, on_side_event, t);
		bufferevent_setcb(t->client, on_client_read, NULL, on_side_event, t);
		bufferevent_enable(t->client, EV_READ);
		arm(t->idle, t->p->cfg->idle_timeout_s * 1000);
		check_hello(t);
		return;
	}
	if (t->kind == K_TLS) {
		start_relay(t); /* the ClientHello is still in the client's input */
		return;
	}
	write_http_head(t, (const char *)evbuffer_pullup(in, (ssize_t)t->head.head_len));
	evbuffer_drain(in, t->head.head_len);
	t->body_left = t->head.content_length;
	start_relay(t);
}

static void dial(struct tunnel *t, const struct sockaddr *sa, socklen_t len)
{
	int one = 1;

	t->phase = P_CONNECT;
	t->server =
	    bufferevent_socket_new(bufferevent_get_base(t->client), -1, BEV_OPT_CLOSE_ON_FREE);
	if (!t->server)
		return deny(t, 502, "connect_failed", "out of memory");
	bufferevent_setcb(t->server, NULL, NULL, on_connect_event, t);
	if (bufferevent_socket_connect(t->server, sa, (int)len)) {
		/* The callback may have run and freed nothing: the error is ours. */
		bufferevent_free(t->server);
		t->server = NULL;
		return deny(t, 502, "connect_failed", strerror(errno));
	}
	setsockopt(bufferevent_getfd(t->server), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* The transparent path dials where the agent was going, and only if the
 * name the agent sent (SNI) resolves to that address now. */
static void transparent_dial(struct tunnel *t, struct evutil_addrinfo *res)
{
	struct sockaddr_storage ss = {0};
	socklen_t len;

	for (struct evutil_addrinfo *ai = res; ai; ai = ai->ai_next) {
		struct kars_addr a;

		if (ai->ai_family == AF_INET)
			kars_addr_from_v4(&a, ((struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr);
		else if (ai->ai_family == AF_INET6)
			memcpy(a.bytes, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, 16);
		else
			continue;
		if (memcmp(&a, &t->orig, sizeof(a)) == 0)
			goto found;
	}
	deny(t, 0, "orig_dst_mismatch", "the name does not resolve to the address dialled");
	return;
found:
	if (kars_addr_is_v4(&t->orig)) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, t->orig.bytes + 12, 4);
		sin->sin_port = htons(t->port);
		len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, t->orig.bytes, 16);
		sin6->sin6_port = htons(t->port);
		len = sizeof(*sin6);
	}
	dial(t, (struct sockaddr *)&ss, len);
}

/* Every address must be dialable; the first is dialled. */
static void on_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
	struct tunnel *t = arg;
	struct evutil_addrinfo *ai;

	if (result == EVUTIL_EAI_CANCEL)
		return; /* tunnel_free() is cancelling */
	t->dns_req = NULL;
	if (result) {
		deny(t, 502, "resolve_failed", evutil_gai_strerror(result));
		return;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		struct kars_addr a;
		const char *cls;
		char text[INET6_ADDRSTRLEN], why[96];

		if (ai->ai_family == AF_INET)
			kars_addr_from_v4(&a, ((struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr);
		else if (ai->ai_family == AF_INET6)
			memcpy(a.bytes, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, 16);
		else
			continue;
		cls = kars_addr_refused_class(&a);
		if (cls) {
			kars_addr_str(&a, text, sizeof(text));
			snprintf(why, sizeof(why), "%s is %s", text, cls);
			evutil_freeaddrinfo(res);
			deny(t, 403, "refused_address", why);
			return;
		}
	}
	if (t->kind == K_TLS) {
		transparent_dial(t, res);
		evutil_freeaddrinfo(res);
		return;
	}
	for (ai = res; ai; ai = ai->ai_next)
		if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6)
			break;
	if (!ai) {
		evutil_freeaddrinfo(res);
		deny(t, 502, "resolve_failed", "no address");
		return;
	}
	((struct sockaddr_in *)ai->ai_addr)->sin_port = htons(t->port); /* same offset in v6 */
	evutil_inet_ntop(ai->ai_family,
			 ai->ai_family == AF_INET
			     ? (void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
			     : (void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr,
			 t->dst, sizeof(t->dst));
	dial(t, ai->ai_addr, (socklen_t)ai->ai_addrlen);
	evutil_freeaddrinfo(res);
}

static void resolve(struct tunnel *t)
{
	struct evutil_addrinfo hints = {
	    .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_protocol = IPPROTO_TCP};
	struct evdns_getaddrinfo_request *q;

	t->phase = P_RESOLVE;
	bufferevent_disable(t->client, EV_READ);
	arm(t->idle, t->p->cfg->connect_timeout_ms);
	if (t->host_is_ip)
		hints.ai_flags = EVUTIL_AI_NUMERICHOST;
	q = evdns_getaddrinfo(t->p->dns, t->host, NULL, &hints, on_resolved, t);
	/* NULL: answered (or failed) already, the callback has run and t
	 * may be gone. */
	if (q)
		t->dns_req = q;
}

/* --- the request head --------------------------------------------------- */

static void decide(struct tunnel *t, const char *host, uint16_t port)
{
	struct kars_egress_proxy *p = t->p;
	struct kars_egress_decision d;

	kars_egress_decide(p->policy, host, port, &d);
	snprintf(t->host, sizeof(t->host), "%s", d.host);
	t->port = port;
	t->host_is_ip = strcmp(d.reason, "ip_literal") == 0;
	if (!d.allow) {
		deny(t, 403, d.reason, NULL);
		return;
	}
	if (d.learn) {
		p->learned_allows++;
		kars_egress_learned_record(&p->learned, d.host, port, time(NULL));
		audit(t, "learn", d.reason, NULL);
	} else {
		p->allowed++;
		audit(t, "allow", d.reason, NULL);
	}
	resolve(t);
}

/* --- the transparent path: TLS the data plane redirected ---------------- */

/* karsd's answer to {"op":"orig_dst"}: where the agent was connecting. */
static void on_karsd_read(struct bufferevent *bev, void *arg)
{
	struct tunnel *t = arg;
	char *line = evbuffer_readln(bufferevent_get_input(bev), NULL, EVBUFFER_EOL_LF);
	const char *ip = NULL, *error = NULL;
	struct kars_err err = {0};
	json_t *doc;
	int ok = 0;
	json_int_t port = 0;

	if (!line)
		return;
	doc = json_loads(line, 0, NULL);
	free(line);
	bufferevent_free(t->karsd);
	t->karsd = NULL;
	if (!doc ||
	    json_unpack(doc, "{s:b,s?s,s?s,s?I}", "ok", &ok, "ip", &ip, "error", &error, "port",
			&port) ||
	    !ok || !ip || port < 1 || port > 65535 ||
	    kars_addr_parse(ip, &t->orig, "orig_dst.ip", &err)) {
		deny(t, 0, "orig_dst_unavailable",
		     error ? error : "karsd gave no original destination");
		json_decref(doc);
		return;
	}
	kars_addr_str(&t->orig, t->dst, sizeof(t->dst));
	json_decref(doc);
	decide(t, t->host, (uint16_t)port);
}

static void on_karsd_event(struct bufferevent *bev, short what, void *arg)
{
	struct tunnel *t = arg;

	if (what & BEV_EVENT_CONNECTED) {
		evbuffer_add_printf(bufferevent_get_output(bev),
				    "{\"op\":\"orig_dst\",\"cookie\":%llu}\n",
				    (unsigned long long)t->cookie);
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		deny(t, 0, "orig_dst_unavailable", "cannot ask karsd (egressProxy.karsdSocket)");
}

static void ask_orig_dst(struct tunnel *t)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};

	t->phase = P_ORIG;
	bufferevent_disable(t->client, EV_READ);
	arm(t->idle, t->p->cfg->connect_timeout_ms);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", t->p->cfg->karsd_socket);
	t->karsd =
	    bufferevent_socket_new(bufferevent_get_base(t->client), -1, BEV_OPT_CLOSE_ON_FREE);
	if (!t->karsd)
		return deny(t, 0, "orig_dst_unavailable", "out of memory");
	bufferevent_setcb(t->karsd, on_karsd_read, NULL, on_karsd_event, t);
	bufferevent_enable(t->karsd, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(t->karsd, (struct sockaddr *)&sun, sizeof(sun)))
		deny(t, 0, "orig_dst_unavailable", "cannot connect to karsd");
}

/* The ClientHello, whole, is the only thing read; it stays buffered and is
 * forwarded as it came. */
static void read_client_hello(struct tunnel *t)
{
	char sni[KARS_TLS_SNI_BUF];

	if (!client_sni(t, sni))
		return;
	snprintf(t->host, sizeof(t->host), "%s", sni);
	ask_orig_dst(t);
}

static void read_head(struct tunnel *t)
{
	struct evbuffer *in = bufferevent_get_input(t->client);
	size_t len = evbuffer_get_length(in);
	struct kars_err err = {0};
	const char *buf;

	if (len == 0)
		return;
	if (len > KARS_HTTP_HEAD_MAX)
		len = KARS_HTTP_HEAD_MAX;
	buf = (const char *)evbuffer_pullup(in, (ssize_t)len);
	if (!buf)
		return deny(t, 0, "other", "out of memory");
	if ((uint8_t)buf[0] == 0x16) {
		t->kind = K_TLS;
		return read_client_hello(t);
	}
	switch (kars_http_head_parse(buf, len, 80, &t->head, &err)) {
	case KARS_HTTP_MORE:
		return;
	case KARS_HTTP_BAD:
		return deny(t, 400, "bad_request", err.msg);
	case KARS_HTTP_TOO_BIG:
		return deny(t, 431, "bad_request", err.msg);
	case KARS_HTTP_OK:
		break;
	}
	t->kind = t->head.connect ? K_CONNECT : K_HTTP;
	if (t->kind == K_HTTP && t->head.has_transfer_encoding) {
		snprintf(t->host, sizeof(t->host), "%.253s", t->head.host);
		t->port = t->head.port;
		return deny(t, 501, "transfer_encoding",
			    "request bodies with Transfer-Encoding are not supported; send "
			    "Content-Length");
	}
	decide(t, t->head.host, t->head.port);
}

static void on_client_read(struct bufferevent *bev, void *arg)
{
	struct tunnel *t = arg;

	arm(t->idle, t->p->cfg->idle_timeout_s * 1000);
	switch (t->phase) {
	case P_HEAD:
		if (t->kind == K_TLS)
			read_client_hello(t);
		else
			read_head(t);
		break;
	case P_HELLO:
		check_hello(t);
		break;
	case P_RELAY:
		client_to_server(t);
		break;
	default:
		break;
	}
}

static void on_head_event(struct bufferevent *bev, short what, void *arg)
{
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		tunnel_free(arg);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
		      void *arg)
{
	struct kars_egress_proxy *p = arg;
	struct event_base *base = evconnlistener_get_base(l);
	struct kars_sock_peer peer;
	struct kars_err err = {0};
	struct tunnel *t;
	int one = 1;

	p->accepted++;
	if (p->tunnels >= p->cfg->max_tunnels) {
		p->refused_full++;
		evutil_closesocket(fd);
		return;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		evutil_closesocket(fd);
		return;
	}
	p->tunnels++;
	t->p = p;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	t->client = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	t->idle = evtimer_new(base, on_idle, t);
	t->life = evtimer_new(base, on_lifetime, t);
	if (!t->client || !t->idle || !t->life) {
		if (!t->client)
			evutil_closesocket(fd);
		tunnel_free(t);
		return;
	}
	bufferevent_setcb(t->client, on_client_read, NULL, on_head_event, t);
	/* The agent's proxy: another local UID may not borrow the router's way out. */
	if (kars_sock_peer_lookup(fd, &peer, &err)) {
		deny(t, 403, "not_the_agent", err.msg);
		return;
	}
	t->cookie = peer.cookie;
	if (peer.uid != p->r->cfg.agent_uid) {
		snprintf(err.msg, sizeof(err.msg), "uid %u is not the agent's", peer.uid);
		deny(t, 403, "not_the_agent", err.msg);
		return;
	}
	arm(t->idle, p->cfg->idle_timeout_s * 1000);
	arm(t->life, p->cfg->max_lifetime_s * 1000);
	bufferevent_enable(t->client, EV_READ | EV_WRITE);
}

/* --- set-up ----------------------------------------------------------------- */

struct kars_egress_proxy *kars_egress_proxy_new(struct kars_router *r, struct kars_err *err)
{
	struct kars_egress_proxy *p = calloc(1, sizeof(*p));
	const struct kars_egress_config *c = &r->cfg.egress;

	if (!p) {
		kars_err_set(err, ENOMEM, "egressProxy: out of memory");
		return NULL;
	}
	p->r = r;
	p->cfg = c;
	p->policy = &r->cfg.egress.policy;
	kars_egress_learned_init(&p->learned, c->learn_max);
	if (c->resolver[0]) {
		p->dns = evdns_base_new(r->base, 0);
		if (p->dns && evdns_base_nameserver_ip_add(p->dns, c->resolver)) {
			kars_err_set(err, EINVAL, "egressProxy.resolver: \"%s\" is not ADDR[:PORT]",
				     c->resolver);
			goto fail;
		}
	} else {
		p->dns = evdns_base_new(r->base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
	}
	if (!p->dns) {
		kars_err_set(err, EIO,
			     "egressProxy: cannot set up the resolver (/etc/resolv.conf)");
		goto fail;
	}
	for (unsigned i = 0; i < c->n_listen; i++) {
		p->listeners[i] = evconnlistener_new_bind(
		    r->base, on_accept, p,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE, 128,
		    (const struct sockaddr *)&c->listen[i], (int)c->listen_len[i]);
		if (!p->listeners[i]) {
			kars_err_set(err, errno, "egressProxy.listen: cannot bind %s: %s",
				     c->listen_text[i], strerror(errno));
			goto fail;
		}
	}
	return p;
fail:
	kars_egress_proxy_free(p);
	return NULL;
}

void kars_egress_proxy_stop_listening(struct kars_egress_proxy *p)
{
	if (!p)
		return;
	for (unsigned i = 0; i < KARS_EGRESS_MAX_LISTEN; i++) {
		if (p->listeners[i])
			evconnlistener_free(p->listeners[i]);
		p->listeners[i] = NULL;
	}
}

void kars_egress_proxy_free(struct kars_egress_proxy *p)
{
	if (!p)
		return;
	kars_egress_proxy_stop_listening(p);
	if (p->dns)
		evdns_base_free(p->dns, 1);
	kars_egress_learned_free(&p->learned);
	free(p);
}

struct kars_egress_learned *kars_egress_proxy_learned(struct kars_egress_proxy *p)
{
	return &p->learned;
}

void kars_egress_proxy_metrics(struct kars_egress_proxy *p, struct evbuffer *out)
{
	const char *sb = p->r->cfg.sandbox;

	kars_router_metric(out, sb, "kars_router_egress_tunnels", "gauge",
			   "Egress proxy connections open.", p->tunnels);
	kars_router_metric(out, sb, "kars_router_egress_tunnels_max", "gauge",
			   "egressProxy.maxTunnels: connections past it are closed at once.",
			   p->cfg->max_tunnels);
	kars_router_metric(out, sb, "kars_router_egress_connect_timeout_ms", "gauge",
			   "egressProxy.connectTimeoutMs.", (uint64_t)p->cfg->connect_timeout_ms);
	kars_router_metric(out, sb, "kars_router_egress_idle_timeout_seconds", "gauge",
			   "egressProxy.idleTimeoutSeconds.", (uint64_t)p->cfg->idle_timeout_s);
	kars_router_metric(out, sb, "kars_router_egress_max_lifetime_seconds", "gauge",
			   "egressProxy.maxLifetimeSeconds.", (uint64_t)p->cfg->max_lifetime_s);
	kars_router_metric(out, sb, "kars_router_egress_learn_mode", "gauge",
			   "1 in learn mode, 0 in strict.", p->policy->mode == KARS_EGRESS_LEARN);
	kars_router_metric(out, sb, "kars_router_egress_accepted_total", "counter",
			   "Connections accepted by the egress proxy.", p->accepted);
	kars_router_metric(out, sb, "kars_router_egress_refused_full_total", "counter",
			   "Connections closed because maxTunnels were open.", p->refused_full);
	kars_router_metric(out, sb, "kars_router_egress_allowed_total", "counter",
			   "Destinations allowed by the allowlist.", p->allowed);
	kars_router_metric(out, sb, "kars_router_egress_learned_total", "counter",
			   "Destinations allowed only because the mode is learn.",
			   p->learned_allows);
	evbuffer_add_printf(out, "# HELP kars_router_egress_denied_total Egress proxy refusals by "
				 "reason.\n# TYPE kars_router_egress_denied_total counter\n");
	for (size_t i = 0; i < N_DENY; i++)
		if (p->denied[i])
			evbuffer_add_printf(out,
					    "kars_router_egress_denied_total{sandbox=\"%s\","
					    "reason=\"%s\"} %llu\n",
					    sb, deny_reasons[i], (unsigned long long)p->denied[i]);
	evbuffer_add_printf(out,
			    "# HELP kars_router_egress_timeouts_total Egress proxy connections "
			    "ended by a limit.\n# TYPE kars_router_egress_timeouts_total counter\n"
			    "kars_router_egress_timeouts_total{sandbox=\"%s\",kind=\"connect\"} "
			    "%llu\n"
			    "kars_router_egress_timeouts_total{sandbox=\"%s\",kind=\"idle\"} %llu\n"
			    "kars_router_egress_timeouts_total{sandbox=\"%s\",kind=\"lifetime\"} "
			    "%llu\n",
			    sb, (unsigned long long)p->connect_timeouts, sb,
			    (unsigned long long)p->idle_timeouts, sb,
			    (unsigned long long)p->lifetime_timeouts);
	evbuffer_add_printf(out,
			    "# HELP kars_router_egress_bytes_total Bytes relayed by the egress "
			    "proxy.\n# TYPE kars_router_egress_bytes_total counter\n"
			    "kars_router_egress_bytes_total{sandbox=\"%s\",direction=\"up\"} %llu\n"
			    "kars_router_egress_bytes_total{sandbox=\"%s\",direction=\"down\"} "
			    "%llu\n",
			    sb, (unsigned long long)p->bytes_up, sb,
			    (unsigned long long)p->bytes_down);
}
