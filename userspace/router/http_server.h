/* http_server.h - kars-router's agent-facing HTTP/1.1 server.
 *
 * It replaced libevent's evhttp, which cost the router about as much CPU per
 * request as all of nginx (bench/README.md: per request three epoll_ctl, two
 * FIONREAD, evbuffer and header-list allocations). Here a connection is one
 * socket registered once with the event loop, edge-triggered for reading and
 * writing (no epoll_ctl after the accept), with its input and output buffers
 * kept from one request to the next: a warm keep-alive connection serves a
 * request with a read(), the handler and a write(), and no allocation of the
 * server's own.
 *
 * One request at a time per connection: pipelined requests wait in the
 * input buffer and are served in order once the previous answer is out.
 * Bodies come with Content-Length or chunked (decoded before the handler
 * runs), within the body limit (413), after a 100 Continue when asked; heads
 * are parsed strictly (http_request.h; 400, 431, 501, 505) and the
 * connection is closed after such a refusal.
 *
 * A handler answers at once (kars_hreq_reply) or later from another
 * callback: the request stays valid until it is answered, even when the
 * agent has gone meanwhile (kars_hreq_connected() is false then and what
 * is sent is dropped). Streamed answers are chunked; the handler sees how
 * much is still unsent and is called back when all of it has been written,
 * so that it can hold its source back (backpressure).
 */
#ifndef KARS_ROUTER_HTTP_SERVER_H
#define KARS_ROUTER_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "http_request.h"

struct event_base;
struct kars_hsrv;
struct kars_hreq;

typedef void (*kars_hsrv_handler)(struct kars_hreq *req, void *arg);

struct kars_hsrv_config {
	size_t max_head;   /* bytes of a request head (431 past it) */
	uint64_t max_body; /* bytes of a request body (413 past it) */
	long timeout_s;	   /* reading a request, or a stalled write */
	kars_hsrv_handler handler;
	void *arg;
};

struct kars_hsrv *kars_hsrv_new(struct event_base *base, const struct kars_hsrv_config *cfg,
				struct kars_err *err);
/* Listens on addr:port (TCP_NODELAY on every connection). */
int kars_hsrv_listen(struct kars_hsrv *s, const char *addr, uint16_t port, struct kars_err *err);
/* The port listened on (after port 0), or 0. */
uint16_t kars_hsrv_port(const struct kars_hsrv *s);
/* Closes the listening socket; connections go on. */
void kars_hsrv_stop_listening(struct kars_hsrv *s);
/* Closes every connection; a request not yet answered must not be used
 * after it. */
void kars_hsrv_free(struct kars_hsrv *s);

struct kars_hsrv_stats {
	uint64_t accepted, requests, refused, open;
};
void kars_hsrv_get_stats(const struct kars_hsrv *s, struct kars_hsrv_stats *st);

/* The request. Strings live in the connection's buffer until the answer. */
enum kars_http_method kars_hreq_method(const struct kars_hreq *q);
const char *kars_hreq_method_name(const struct kars_hreq *q);
const char *kars_hreq_path(const struct kars_hreq *q);	/* as sent, not decoded */
const char *kars_hreq_query(const struct kars_hreq *q); /* "" when none */
const char *kars_hreq_header(const struct kars_hreq *q, const char *name);
size_t kars_hreq_header_count(const struct kars_hreq *q);
void kars_hreq_header_at(const struct kars_hreq *q, size_t i, const char **name,
			 const char **value);
/* The body (decoded when chunked); len 0 when none. */
const char *kars_hreq_body(const struct kars_hreq *q, size_t *len);
/* The value of name in the query (decoded: %XX, '+'), copied into buf;
 * NULL when absent, malformed or too long. */
const char *kars_hreq_query_param(const struct kars_hreq *q, const char *name, char *buf,
				  size_t len);
/* The connection's socket (-1 when the agent has gone): for SO_PEERCRED
 * and sock_diag. */
int kars_hreq_fd(const struct kars_hreq *q);
bool kars_hreq_connected(const struct kars_hreq *q);

/* The answer. A header with a CR, LF or NUL is refused (-1): no handler
 * can split the answer. Content-Length, Transfer-Encoding, Connection and
 * Date are the server's. */
int kars_hreq_add_header(struct kars_hreq *q, const char *name, const char *value);
/* Closes the connection after this answer. */
void kars_hreq_close_after(struct kars_hreq *q);
/* A whole answer; the request is gone after it. */
void kars_hreq_reply(struct kars_hreq *q, int status, const void *body, size_t len);
/* A streamed (chunked) answer: start, chunks, end (the request is gone
 * after kars_hreq_reply_end). */
void kars_hreq_reply_start(struct kars_hreq *q, int status);
void kars_hreq_reply_chunk(struct kars_hreq *q, const void *data, size_t len);
void kars_hreq_reply_end(struct kars_hreq *q);
/* Ends a streamed answer without its last chunk: what is queued is written,
 * then the connection closes, so the agent sees a cut stream. The request
 * is gone after it. */
void kars_hreq_cut(struct kars_hreq *q);
/* Bytes queued for the agent and not yet written. */
size_t kars_hreq_unsent(const struct kars_hreq *q);
/* cb(arg) once, when everything queued has been written or the agent has
 * gone; NULL cancels. */
void kars_hreq_on_drained(struct kars_hreq *q, void (*cb)(void *arg), void *arg);

/* The reason phrase of status ("Unknown" for one it does not know). */
const char *kars_http_reason(int status);

#endif
