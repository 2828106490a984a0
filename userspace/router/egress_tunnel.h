/* egress_tunnel.h - the egress proxy's insides, shared by its files:
 * egress_proxy.c (accept, the request head, CONNECT, resolve, dial, set-up,
 * metrics), egress_tunnel.c (a tunnel's life: denials, audit, timers, the
 * relay with backpressure and half-close) and egress_transparent.c (TLS the
 * data plane redirected: SNI, karsd's orig_dst, the address check).
 *
 * One struct tunnel per accepted connection, moving through phases:
 *   HEAD     reading the request head (CONNECT or plain HTTP) or, on the
 *            transparent path, the ClientHello
 *   ORIG     the transparent path: asking karsd for the original destination
 *   RESOLVE  the allowed name is being resolved (evdns, once)
 *   CONNECT  connecting to the address chosen
 *   HELLO    a CONNECT tunnel: waiting for the ClientHello to check its SNI
 *   RELAY    bytes both ways; reading one side stops while the other side's
 *            output holds RELAY_HIGH bytes (backpressure), and resumes when
 *            it has drained to half
 * Timers: one "idle" event re-armed on every read (the connect timeout
 * while asking, resolving and connecting), one for the tunnel's lifetime.
 */
#ifndef KARS_EGRESS_TUNNEL_H
#define KARS_EGRESS_TUNNEL_H

#include <arpa/inet.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
#include "egress_config.h"
#include "egress_learned.h"
#include "http_head.h"
#include "tls_sni.h"

struct kars_router;

#define RELAY_HIGH  (256 * 1024)
#define RELAY_CHUNK (128 * 1024)

enum phase { P_HEAD, P_ORIG, P_RESOLVE, P_CONNECT, P_HELLO, P_RELAY, P_CLOSING };
enum kind { K_UNKNOWN, K_CONNECT, K_HTTP, K_TLS };

/* Denial reasons counted in /metrics (egress_tunnel.c); anything else
 * counts as the last, "other". */
#define EGRESS_N_DENY 19
extern const char *const egress_deny_reasons[EGRESS_N_DENY];

struct kars_egress_proxy {
	struct kars_router *r;
	const struct kars_egress_config *cfg;
	struct kars_egress_policy *policy; /* cfg's, mutable by the control endpoints */
	struct evconnlistener *listeners[KARS_EGRESS_MAX_LISTEN];
	struct evdns_base *dns;
	struct kars_egress_learned learned;
	uint64_t tunnels, accepted, refused_full;
	uint64_t allowed, learned_allows, denied[EGRESS_N_DENY];
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

/* egress_tunnel.c */
void egress_audit(struct tunnel *t, const char *decision, const char *reason, const char *detail);
/* A refusal: the HTTP answer (status 0, or any status on the TLS paths and
 * inside a tunnel: none), the count, the audit record, the close. */
void egress_deny(struct tunnel *t, int status, const char *reason, const char *detail);
void egress_tunnel_free(struct tunnel *t);
void egress_arm(struct event *ev, long ms);
void egress_on_idle(evutil_socket_t fd, short what, void *arg);
void egress_on_lifetime(evutil_socket_t fd, short what, void *arg);
void egress_start_relay(struct tunnel *t);
void egress_client_to_server(struct tunnel *t);
void egress_on_side_event(struct bufferevent *bev, short what, void *arg);

/* egress_proxy.c */
void egress_on_client_read(struct bufferevent *bev, void *arg);
void egress_decide(struct tunnel *t, const char *host, uint16_t port);
void egress_dial(struct tunnel *t, const struct sockaddr *sa, socklen_t len);
bool egress_client_sni(struct tunnel *t, char sni[KARS_TLS_SNI_BUF]);

/* egress_transparent.c */
void egress_read_client_hello(struct tunnel *t);
void egress_transparent_dial(struct tunnel *t, struct evutil_addrinfo *res);

#endif
