/* egress_tunnel.c - a tunnel's life: denials, audit records, timers, and
 * the relay with backpressure and half-close (egress_tunnel.h). */
#include "egress_tunnel.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "audit.h"
#include "log.h"
#include "router.h"

const char *const egress_deny_reasons[EGRESS_N_DENY] = {
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

	for (i = 0; i < EGRESS_N_DENY - 1; i++)
		if (strcmp(reason, egress_deny_reasons[i]) == 0)
			break;
	p->denied[i]++;
}

/* One audit record per decision, and a log line. */
void egress_audit(struct tunnel *t, const char *decision, const char *reason, const char *detail)
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

void egress_tunnel_free(struct tunnel *t)
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
		egress_tunnel_free(t);
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
		egress_tunnel_free(t);
		return;
	}
	bufferevent_setwatermark(t->client, EV_WRITE, 0, 0);
	bufferevent_setcb(t->client, NULL, on_client_flushed, NULL, t);
	bufferevent_enable(t->client, EV_WRITE);
}

/* A refusal: 403 (or 400, 431, 501, 502) with the reason, for the HTTP
 * paths; inside a tunnel the connection is just closed. */
void egress_deny(struct tunnel *t, int status, const char *reason, const char *detail)
{
	static const char *const texts[] = {[400] = "Bad Request",
					    [403] = "Forbidden",
					    [431] = "Request Header Fields Too Large",
					    [501] = "Not Implemented",
					    [502] = "Bad Gateway"};

	count_deny(t->p, reason);
	egress_audit(t, "deny", reason, detail);
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

void egress_arm(struct event *ev, long ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

	event_add(ev, &tv);
}

void egress_on_idle(evutil_socket_t fd, short what, void *arg)
{
	struct tunnel *t = arg;

	if (t->phase == P_ORIG || t->phase == P_RESOLVE || t->phase == P_CONNECT) {
		t->p->connect_timeouts++;
		egress_deny(t, 502, "connect_failed", "connect timeout");
		return;
	}
	t->p->idle_timeouts++;
	egress_audit(t, "close", "idle_timeout", NULL);
	egress_tunnel_free(t);
}

void egress_on_lifetime(evutil_socket_t fd, short what, void *arg)
{
	struct tunnel *t = arg;

	t->p->lifetime_timeouts++;
	egress_audit(t, "close", "lifetime", NULL);
	egress_tunnel_free(t);
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

void egress_client_to_server(struct tunnel *t)
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

static void on_server_read(struct bufferevent *bev, void *arg)
{
	struct tunnel *t = arg;

	egress_arm(t->idle, t->p->cfg->idle_timeout_s * 1000);
	relay(t, t->server, t->client, &t->p->bytes_down, UINT64_MAX);
}

void egress_start_relay(struct tunnel *t)
{
	t->phase = P_RELAY;
	/* Up to 128 KiB per read and write instead of libevent's 16 KiB:
	 * fewer system calls per byte relayed. */
	bufferevent_set_max_single_read(t->client, RELAY_CHUNK);
	bufferevent_set_max_single_read(t->server, RELAY_CHUNK);
	bufferevent_set_max_single_write(t->client, RELAY_CHUNK);
	bufferevent_set_max_single_write(t->server, RELAY_CHUNK);
	bufferevent_setcb(t->client, egress_on_client_read, on_relay_write, egress_on_side_event,
			  t);
	bufferevent_setcb(t->server, on_server_read, on_relay_write, egress_on_side_event, t);
	bufferevent_enable(t->client, EV_READ | EV_WRITE);
	bufferevent_enable(t->server, EV_READ | EV_WRITE);
	egress_arm(t->idle, t->p->cfg->idle_timeout_s * 1000);
	egress_client_to_server(t);
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
			egress_tunnel_free(t);
		return;
	}
	if (t->client_eof && server_flushed && !t->server_shut) {
		t->server_shut = true;
		if (t->kind != K_HTTP)
			shutdown(bufferevent_getfd(t->server), SHUT_WR);
	}
}

void egress_on_side_event(struct bufferevent *bev, short what, void *arg)
{
	struct tunnel *t = arg;

	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	if (t->phase != P_RELAY || (what & BEV_EVENT_ERROR)) {
		egress_tunnel_free(t);
		return;
	}
	if (bev == t->client) {
		egress_client_to_server(t);
		t->client_eof = true;
	} else {
		relay(t, t->server, t->client, &t->p->bytes_down, UINT64_MAX);
		t->server_eof = true;
	}
	bufferevent_disable(bev, EV_READ);
	maybe_finish(t);
}
