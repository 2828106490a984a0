/* upstream_http.h - the router's HTTP/1.1 client for the model upstream.
 *
 * Inference requests go to one upstream (upstream.baseUrl), so the client
 * is small: one target, a pool of idle keep-alive connections to it, a
 * request written in one piece, the answer parsed as it arrives (status,
 * headers, a body framed by Content-Length, chunked or the end of the
 * connection) and handed over piece by piece. https upstreams go through
 * OpenSSL (bufferevent_openssl) with the peer's certificate verified against
 * the system's roots (or upstream.caFile) and its name checked against the
 * host. Reading can be paused, so that a slow agent holds the upstream back
 * instead of filling the router's memory.
 *
 * It replaced libcurl on this path: per transfer libcurl re-armed its
 * sockets (epoll_ctl), checked pooled connections and allocated heavily,
 * which bench-router measured at half of nginx's rate. The token service
 * calls of credentials.c still use libcurl (upstream.c): they are rare.
 */
#ifndef KARS_ROUTER_UPSTREAM_HTTP_H
#define KARS_ROUTER_UPSTREAM_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct event_base;
struct kars_uhttp;
struct kars_uhttp_req;

enum kars_uhttp_result {
	KARS_UHTTP_OK = 0,
	KARS_UHTTP_RESOLVE,  /* the host name did not resolve */
	KARS_UHTTP_CONNECT,  /* no connection */
	KARS_UHTTP_TLS,	     /* handshake or certificate verification failed */
	KARS_UHTTP_TIMEOUT,  /* connect timeout, or silent for the idle timeout */
	KARS_UHTTP_CLOSED,   /* the connection ended before the answer did */
	KARS_UHTTP_PROTOCOL, /* not an HTTP/1.x answer we can read */
	KARS_UHTTP_ABORTED,  /* on_body asked to stop */
	KARS_UHTTP_NOMEM,
};

struct kars_uhttp_callbacks {
	/* Each header of the final (non-1xx) answer, then on_head once. */
	void (*on_header)(void *arg, const char *name, const char *value);
	void (*on_head)(void *arg, int status);
	/* A piece of the body (chunked framing removed). false: stop (the
	 * request ends with KARS_UHTTP_ABORTED). */
	bool (*on_body)(void *arg, const char *data, size_t len);
	/* Once, at the end; the request is gone after it. */
	void (*on_done)(void *arg, enum kars_uhttp_result result, const char *detail);
};

struct kars_uhttp_config {
	const char *base_url; /* http[s]://host[:port][/prefix] */
	const char *ca_file;  /* NULL or "": the system's roots */
	long connect_timeout_ms;
	long idle_timeout_s;
};

struct kars_uhttp *kars_uhttp_new(struct event_base *base, const struct kars_uhttp_config *cfg,
				  struct kars_err *err);
void kars_uhttp_free(struct kars_uhttp *c);

/* Starts METHOD {prefix}{path}. headers: whole lines, each ending in CRLF
 * (Host and Content-Length are the client's). body: NULL for none. Returns
 * NULL when it cannot start (no callback then). */
struct kars_uhttp_req *kars_uhttp_start(struct kars_uhttp *c, const char *method, const char *path,
					const char *headers, const char *body, size_t body_len,
					const struct kars_uhttp_callbacks *cb, void *arg);
/* Stops a request; no callback follows. Its connection is closed. */
void kars_uhttp_cancel(struct kars_uhttp_req *q);
/* Stops (true) or resumes (false) reading the answer. */
void kars_uhttp_pause(struct kars_uhttp_req *q, bool pause);

const char *kars_uhttp_strerror(enum kars_uhttp_result r);

struct kars_uhttp_stats {
	uint64_t connects, reuses, idle;
};
void kars_uhttp_get_stats(const struct kars_uhttp *c, struct kars_uhttp_stats *s);

#endif
