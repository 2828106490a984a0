/* http_server.c - see http_server.h.
 *
 * A connection (struct kars_hreq: one request at a time, so the request is
 * the connection) goes HEAD -> BODY -> HANDLER -> HEAD ... or to CLOSING.
 * Its socket is registered once, EV_READ|EV_WRITE|EV_ET: readable and
 * writable are remembered as flags (a read shorter than asked, or EAGAIN,
 * clears them; the next edge sets them), so nothing is re-armed per request.
 * The input buffer holds the request being served at its start; pipelined
 * bytes after it wait there, and the buffer is compacted when the answer is
 * out. While a handler runs the socket is still read (up to the head limit)
 * so that an agent hanging up is seen at once.
 */
#include "http_server.h"

#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define IN_INITIAL	16384
#define IN_KEEP		(256u << 10) /* larger input buffers shrink after their request */
#define OUT_KEEP	(1u << 20)
#define ACCEPTS_AT_ONCE 64

enum conn_state {
	C_HEAD = 0,
	C_BODY,
	C_HANDLER, /* the handler has the request */
	C_CLOSING, /* writing what is left, then closing */
	C_LINGER,  /* after a refusal: written, reading and dropping what the agent still sends */
};

/* How long a refused agent may go on sending before the close: closing with
 * its bytes unread would reset the connection, and with it the answer. */
#define LINGER_S 2

struct kars_hreq {
	struct kars_hsrv *s;
	LIST_ENTRY(kars_hreq) link;
	int fd;
	struct event *ev, *timer;
	enum conn_state state;
	bool readable, writable;
	bool dead;	 /* the socket is closed; the handler still has the request */
	bool in_process; /* process() is on the stack: freeing waits for it */
	bool zombie;	 /* to be freed when process() returns */
	bool close_after, streaming, head_only;
	bool linger; /* close through C_LINGER */

	char *in;
	size_t in_len, in_cap, scan;
	struct kars_http_head head;
	struct kars_http_chunked chunked;
	size_t body_len, req_end;

	char *hdrs; /* the answer's header lines, as the handler adds them */
	size_t hdrs_len, hdrs_cap;
	char *out;
	size_t out_len, out_off, out_cap;
	void (*drained)(void *arg);
	void *drained_arg;
};

struct kars_hsrv {
	struct event_base *base;
	struct kars_hsrv_config cfg;
	int lfd;
	uint16_t port;
	struct event *accept_ev;
	LIST_HEAD(, kars_hreq) conns;
	struct kars_hsrv_stats stats;
};

static void process(struct kars_hreq *q);
static void flush(struct kars_hreq *q);

const char *kars_http_reason(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 204:
		return "No Content";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 413:
		return "Content Too Large";
	case 417:
		return "Expectation Failed";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Unknown";
	}
}

static int reserve(char **p, size_t *cap, size_t need)
{
	size_t n = *cap ? *cap : 1024;
	char *np;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	np = realloc(*p, n);
	if (!np)
		return -1;
	*p = np;
	*cap = n;
	return 0;
}

static void shrink(char **p, size_t *cap, size_t keep, size_t to)
{
	char *np;

	if (*cap <= keep)
		return;
	np = realloc(*p, to);
	if (np) {
		*p = np;
		*cap = to;
	}
}

/* ---- connections ---- */

static void conn_free(struct kars_hreq *q)
{
	if (q->ev)
		event_free(q->ev);
	if (q->timer)
		event_free(q->timer);
	if (q->fd >= 0)
		close(q->fd);
	LIST_REMOVE(q, link);
	q->s->stats.open--;
	free(q->in);
	free(q->hdrs);
	free(q->out);
	free(q);
}

/* Frees the connection, or marks it to be freed when process() returns. */
static void conn_close(struct kars_hreq *q)
{
	if (q->in_process) {
		q->zombie = true;
		return;
	}
	conn_free(q);
}

/* The agent has gone (end of file, an error, a stalled write). A request the
 * handler still has keeps its struct until it is answered. */
static void conn_gone(struct kars_hreq *q)
{
	void (*cb)(void *) = q->drained;

	if (q->state != C_HANDLER) {
		conn_close(q);
		return;
	}
	if (q->dead)
		return;
	q->dead = true;
	event_free(q->ev);
	q->ev = NULL;
	evtimer_del(q->timer);
	close(q->fd);
	q->fd = -1;
	q->out_len = q->out_off = 0;
	q->drained = NULL;
	if (cb)
		cb(q->drained_arg);
}

static void arm_timer(struct kars_hreq *q)
{
	struct timeval tv = {.tv_sec = q->state == C_LINGER ? LINGER_S : q->s->cfg.timeout_s};

	evtimer_add(q->timer, &tv);
}

/* The most raw bytes of a chunked body (its framing included). */
static size_t chunked_raw_limit(const struct kars_hsrv_config *cfg)
{
	return 2 * cfg->max_body + 65536;
}

/* Reads what the socket holds, as far as the buffer may grow in this state.
 * Returns true when it read something and the connection is still there. */
static bool conn_read(struct kars_hreq *q)
{
	const struct kars_hsrv_config *cfg = &q->s->cfg;
	bool progress = false;

	while (q->readable) {
		size_t limit, room;
		ssize_t n;

		if (q->state == C_LINGER)
			q->in_len = 0; /* dropped */
		if (q->state == C_HEAD)
			limit = cfg->max_head + 1;
		else if (q->state == C_BODY)
			limit = q->head.head_len +
				(q->head.chunked ? chunked_raw_limit(cfg) : q->head.content_length);
		else
			limit = q->req_end + cfg->max_head; /* pipelined, or an EOF to see */
		if (limit < IN_INITIAL)
			limit = IN_INITIAL;
		if (q->in_len >= limit)
			return progress; /* the rest waits in the socket */
		if (q->in_len == q->in_cap &&
		    reserve(&q->in, &q->in_cap, q->in_cap ? q->in_cap * 2 : IN_INITIAL))
			return progress;
		room = q->in_cap - q->in_len;
		if (room > limit - q->in_len)
			room = limit - q->in_len;
		n = read(q->fd, q->in + q->in_len, room);
		if (n > 0) {
			q->in_len += (size_t)n;
			if ((size_t)n < room)
				q->readable = false; /* drained; the next edge tells */
			if (q->state != C_HANDLER && q->state != C_LINGER)
				arm_timer(q);
			progress = true;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			q->readable = false;
			return progress;
		}
		conn_gone(q); /* end of file or an error */
		return false;
	}
	return progress;
}

static int out_add(struct kars_hreq *q, const void *data, size_t len)
{
	if (q->dead || !len)
		return 0;
	if (q->out_off && q->out_off == q->out_len)
		q->out_off = q->out_len = 0;
	if (reserve(&q->out, &q->out_cap, q->out_len + len))
		return -1;
	memcpy(q->out + q->out_len, data, len);
	q->out_len += len;
	return 0;
}

/* Writes what is queued; an answer done writing ends a closing connection. */
static void flush(struct kars_hreq *q)
{
	while (!q->dead && q->writable && q->out_off < q->out_len) {
		size_t len = q->out_len - q->out_off;
		ssize_t n = write(q->fd, q->out + q->out_off, len);

		if (n > 0) {
			q->out_off += (size_t)n;
			if ((size_t)n < len)
				q->writable = false;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && errno == EAGAIN) {
			q->writable = false;
		} else {
			conn_gone(q);
			return;
		}
	}
	if (q->dead)
		return;
	if (q->out_off < q->out_len) {
		arm_timer(q); /* a stalled agent is cut after the timeout */
		return;
	}
	q->out_off = q->out_len = 0;
	if (q->state == C_CLOSING && q->linger) {
		shutdown(q->fd, SHUT_WR);
		q->state = C_LINGER;
		arm_timer(q);
		q->readable = true;
		conn_read(q); /* to the end of the connection, or the timer */
		return;
	}
	if (q->state == C_CLOSING) {
		conn_close(q);
		return;
	}
	if (q->state == C_HANDLER)
		evtimer_del(q->timer);
	if (q->drained) {
		void (*cb)(void *) = q->drained;

		q->drained = NULL;
		cb(q->drained_arg);
	}
}

static void on_conn_event(evutil_socket_t fd, short what, void *arg)
{
	struct kars_hreq *q = arg;

	q->in_process = true;
	if (what & EV_WRITE) {
		q->writable = true;
		flush(q);
	}
	if ((what & EV_READ) && !q->zombie && !q->dead) {
		q->readable = true;
		conn_read(q);
	}
	q->in_process = false;
	if (q->zombie)
		conn_free(q);
	else if (!q->dead)
		process(q);
}

static void on_conn_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct kars_hreq *q = arg;

	if (q->state == C_HANDLER)
		log_debug("http: the agent stopped reading for %ld s: closing",
			  q->s->cfg.timeout_s);
	conn_gone(q);
}

/* ---- answers ---- */

static const char *http_date(void)
{
	static char date[40];
	static time_t at;
	time_t now = time(NULL);
	struct tm tm;

	if (now != at && gmtime_r(&now, &tm)) {
		strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		at = now;
	}
	return date;
}

static bool keeps_alive(const struct kars_hreq *q)
{
	return q->head.keep_alive && !q->close_after;
}

/* The status line and the headers; framing: "length", "chunked" or
 * "close" (the end of the connection ends the body). */
static int put_head(struct kars_hreq *q, int status, const char *framing, size_t len)
{
	char line[160];
	int n;

	if (!strcmp(framing, "close"))
		q->close_after = true;
	n = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\nDate: %s\r\n", status,
		     kars_http_reason(status), http_date());
	if (out_add(q, line, (size_t)n) || out_add(q, q->hdrs, q->hdrs_len))
		return -1;
	if (!strcmp(framing, "length"))
		n = snprintf(line, sizeof(line), "Content-Length: %zu\r\n", len);
	else if (!strcmp(framing, "chunked"))
		n = snprintf(line, sizeof(line), "Transfer-Encoding: chunked\r\n");
	else
		n = 0;
	if (n && out_add(q, line, (size_t)n))
		return -1;
	if (!keeps_alive(q))
		n = snprintf(line, sizeof(line), "Connection: close\r\n\r\n");
	else if (q->head.minor == 0)
		n = snprintf(line, sizeof(line), "Connection: keep-alive\r\n\r\n");
	else
		n = snprintf(line, sizeof(line), "\r\n");
	return out_add(q, line, (size_t)n);
}

/* The request is answered: the next one, or the close. */
static void finish(struct kars_hreq *q)
{
	if (q->dead) {
		conn_close(q);
		return;
	}
	q->drained = NULL;
	if (!keeps_alive(q)) {
		q->state = C_CLOSING;
		flush(q);
		return;
	}
	memmove(q->in, q->in + q->req_end, q->in_len - q->req_end);
	q->in_len -= q->req_end;
	q->req_end = q->scan = q->body_len = 0;
	q->hdrs_len = 0;
	q->streaming = q->head_only = false;
	q->state = C_HEAD;
	shrink(&q->in, &q->in_cap, IN_KEEP, q->in_len > IN_INITIAL ? q->in_len : IN_INITIAL);
	if (!q->out_len)
		shrink(&q->out, &q->out_cap, OUT_KEEP, 4096);
	arm_timer(q);
	/* Pipelined bytes, or a socket not read to its end: served from the
	 * loop, not from inside the handler's call. */
	if (!q->in_process && (q->in_len || q->readable) && q->ev)
		event_active(q->ev, EV_READ, 0);
}

int kars_hreq_add_header(struct kars_hreq *q, const char *name, const char *value)
{
	size_t nl = strlen(name), vl = strlen(value);

	if (strpbrk(name, "\r\n: ") || strpbrk(value, "\r\n") || !nl)
		return -1;
	if (reserve(&q->hdrs, &q->hdrs_cap, q->hdrs_len + nl + vl + 4))
		return -1;
	memcpy(q->hdrs + q->hdrs_len, name, nl);
	memcpy(q->hdrs + q->hdrs_len + nl, ": ", 2);
	memcpy(q->hdrs + q->hdrs_len + nl + 2, value, vl);
	memcpy(q->hdrs + q->hdrs_len + nl + 2 + vl, "\r\n", 2);
	q->hdrs_len += nl + vl + 4;
	return 0;
}

void kars_hreq_close_after(struct kars_hreq *q)
{
	q->close_after = true;
}

void kars_hreq_reply(struct kars_hreq *q, int status, const void *body, size_t len)
{
	if (put_head(q, status, "length", len) || (!q->head_only && len && out_add(q, body, len))) {
		log_error("http: out of memory for an answer: closing the connection");
		q->close_after = true;
		q->out_len = q->out_off = 0;
	}
	flush(q);
	finish(q);
}

void kars_hreq_reply_start(struct kars_hreq *q, int status)
{
	q->streaming = true;
	if (put_head(q, status, q->head.minor == 1 ? "chunked" : "close", 0))
		q->close_after = true;
	flush(q);
}

void kars_hreq_reply_chunk(struct kars_hreq *q, const void *data, size_t len)
{
	char size[24];
	int n;

	if (!len || q->head_only)
		return;
	if (q->head.minor == 1) {
		n = snprintf(size, sizeof(size), "%zx\r\n", len);
		if (out_add(q, size, (size_t)n) || out_add(q, data, len) || out_add(q, "\r\n", 2))
			q->close_after = true;
	} else if (out_add(q, data, len)) {
		q->close_after = true;
	}
	flush(q);
}

void kars_hreq_reply_end(struct kars_hreq *q)
{
	if (q->head.minor == 1 && !q->head_only && out_add(q, "0\r\n\r\n", 5))
		q->close_after = true;
	flush(q);
	finish(q);
}

void kars_hreq_cut(struct kars_hreq *q)
{
	q->close_after = true;
	finish(q);
}

size_t kars_hreq_unsent(const struct kars_hreq *q)
{
	return q->out_len - q->out_off;
}

void kars_hreq_on_drained(struct kars_hreq *q, void (*cb)(void *arg), void *arg)
{
	q->drained = cb;
	q->drained_arg = arg;
}

/* ---- requests ---- */

enum kars_http_method kars_hreq_method(const struct kars_hreq *q)
{
	return q->head.method;
}

const char *kars_hreq_method_name(const struct kars_hreq *q)
{
	return q->in + q->head.method_name;
}

const char *kars_hreq_path(const struct kars_hreq *q)
{
	return q->in + q->head.path;
}

const char *kars_hreq_query(const struct kars_hreq *q)
{
	return q->in + q->head.query;
}

const char *kars_hreq_header(const struct kars_hreq *q, const char *name)
{
	return kars_http_head_field(q->in, &q->head, name);
}

size_t kars_hreq_header_count(const struct kars_hreq *q)
{
	return q->head.n_fields;
}

void kars_hreq_header_at(const struct kars_hreq *q, size_t i, const char **name, const char **value)
{
	*name = q->in + q->head.fields[i].name;
	*value = q->in + q->head.fields[i].value;
}

const char *kars_hreq_body(const struct kars_hreq *q, size_t *len)
{
	*len = q->body_len;
	return q->in + q->head.head_len;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

const char *kars_hreq_query_param(const struct kars_hreq *q, const char *name, char *buf,
				  size_t len)
{
	size_t nl = strlen(name);

	for (const char *p = kars_hreq_query(q); *p;) {
		const char *end = p + strcspn(p, "&");

		if ((size_t)(end - p) > nl && !strncmp(p, name, nl) && p[nl] == '=') {
			size_t o = 0;

			for (const char *v = p + nl + 1; v < end; v++) {
				int c = (unsigned char)*v;

				if (c == '+') {
					c = ' ';
				} else if (c == '%') {
					if (end - v < 3 || hex_digit(v[1]) < 0 ||
					    hex_digit(v[2]) < 0)
						return NULL;
					c = hex_digit(v[1]) * 16 + hex_digit(v[2]);
					v += 2;
				}
				if (!c || o + 1 >= len)
					return NULL;
				buf[o++] = (char)c;
			}
			buf[o] = '\0';
			return buf;
		}
		p = *end ? end + 1 : end;
	}
	return NULL;
}

int kars_hreq_fd(const struct kars_hreq *q)
{
	return q->fd;
}

bool kars_hreq_connected(const struct kars_hreq *q)
{
	return !q->dead;
}

/* A request refused before any handler: an error in the OpenAI shape
 * (err.msg is the parser's own text, never the agent's bytes), then the
 * connection closes, since where the next request starts is not known. */
static void refuse(struct kars_hreq *q, int status, const struct kars_err *err)
{
	char body[768];
	int n;

	q->s->stats.refused++;
	log_debug("http: refused with %d: %s", status, err->msg);
	n = snprintf(body, sizeof(body),
		     "{\"error\":{\"message\":\"%s\",\"type\":\"invalid_request_error\","
		     "\"code\":\"http_%d\",\"param\":null}}\n",
		     err->msg, status);
	q->hdrs_len = 0;
	q->close_after = true;
	q->linger = true;
	q->state = C_HANDLER;
	kars_hreq_add_header(q, "Content-Type", "application/json");
	kars_hreq_reply(q, status, body, (size_t)n);
}

static void dispatch(struct kars_hreq *q)
{
	q->state = C_HANDLER;
	q->head_only = q->head.method == KARS_HTTP_HEAD;
	q->s->stats.requests++;
	evtimer_del(q->timer);
	q->s->cfg.handler(q, q->s->cfg.arg);
}

/* Moves the connection on as far as the bytes at hand allow. */
static void process(struct kars_hreq *q)
{
	const struct kars_hsrv_config *cfg = &q->s->cfg;
	struct kars_err err = {0};
	int status = 400, rc;

	q->in_process = true;
	while (!q->zombie && !q->dead && (q->state == C_HEAD || q->state == C_BODY)) {
		kars_err_clear(&err);
		if (q->state == C_HEAD) {
			rc = kars_http_scan_head(q->in, q->in_len, &q->scan, cfg->max_head, &status,
						 &err);
			if (rc == 0 && q->readable && conn_read(q))
				continue;
			if (rc == 0)
				break;
			if (rc < 0 ||
			    kars_http_parse_head(q->in, q->scan, &q->head, &status, &err)) {
				refuse(q, status, &err);
				break;
			}
			if (q->head.method == KARS_HTTP_OTHER) {
				kars_err_set(&err, EINVAL, "method not implemented");
				refuse(q, 501, &err);
				break;
			}
			if (q->head.has_length && q->head.content_length > cfg->max_body) {
				kars_err_set(&err, EFBIG, "request body larger than %llu bytes",
					     (unsigned long long)cfg->max_body);
				refuse(q, 413, &err);
				break;
			}
			memset(&q->chunked, 0, sizeof(q->chunked));
			q->state = C_BODY;
			if (q->head.expect_continue &&
			    (q->head.chunked || q->head.content_length) &&
			    q->in_len == q->head.head_len) {
				static const char go[] = "HTTP/1.1 100 Continue\r\n\r\n";

				out_add(q, go, sizeof(go) - 1);
				flush(q);
			}
		}
		if (q->head.chunked) {
			rc = kars_http_chunked_feed(&q->chunked, q->in + q->head.head_len,
						    q->in_len - q->head.head_len, cfg->max_body,
						    &status, &err);
			if (rc < 0) {
				refuse(q, status, &err);
				break;
			}
			if (rc == 0 && q->in_len - q->head.head_len >= chunked_raw_limit(cfg)) {
				kars_err_set(&err, EFBIG,
					     "chunked body: more than %zu bytes with its framing",
					     chunked_raw_limit(cfg));
				refuse(q, 413, &err);
				break;
			}
			if (rc == 0 && q->readable && conn_read(q))
				continue;
			if (rc == 0)
				break;
			q->body_len = q->chunked.out;
			q->req_end = q->head.head_len + q->chunked.raw;
		} else {
			size_t need = q->head.head_len + (size_t)q->head.content_length;

			if (q->in_len < need && q->readable && conn_read(q))
				continue;
			if (q->in_len < need)
				break;
			q->body_len = (size_t)q->head.content_length;
			q->req_end = need;
		}
		dispatch(q);
	}
	q->in_process = false;
	if (q->zombie)
		conn_free(q);
}

/* ---- the listener ---- */

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct kars_hsrv *s = arg;

	for (int i = 0; i < ACCEPTS_AT_ONCE; i++) {
		int fd = accept4((int)lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct kars_hreq *q;

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warn("http: accept: %s", strerror(errno));
			return;
		}
		q = calloc(1, sizeof(*q));
		if (q) {
			q->s = s;
			q->fd = fd;
			q->writable = true;
			q->ev = event_new(s->base, fd, EV_READ | EV_WRITE | EV_ET | EV_PERSIST,
					  on_conn_event, q);
			q->timer = evtimer_new(s->base, on_conn_timeout, q);
		}
		if (!q || !q->ev || !q->timer || event_add(q->ev, NULL)) {
			log_error("http: out of memory for a connection");
			if (q && q->ev)
				event_free(q->ev);
			if (q && q->timer)
				event_free(q->timer);
			free(q);
			close(fd);
			continue;
		}
		LIST_INSERT_HEAD(&s->conns, q, link);
		s->stats.accepted++;
		s->stats.open++;
		arm_timer(q);
	}
}

struct kars_hsrv *kars_hsrv_new(struct event_base *base, const struct kars_hsrv_config *cfg,
				struct kars_err *err)
{
	struct kars_hsrv *s = calloc(1, sizeof(*s));

	if (!s) {
		kars_err_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	s->base = base;
	s->cfg = *cfg;
	s->lfd = -1;
	LIST_INIT(&s->conns);
	return s;
}

int kars_hsrv_listen(struct kars_hsrv *s, const char *addr, uint16_t port, struct kars_err *err)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
	struct addrinfo *ai = NULL;
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);
	char service[8];
	int one = 1, fd = -1, rc;

	snprintf(service, sizeof(service), "%u", port);
	rc = getaddrinfo(addr, service, &hints, &ai);
	if (rc)
		return kars_err_set(err, EINVAL, "listen: %s: %s", addr, gai_strerror(rc));
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		kars_err_set(err, errno, "listen: socket: %s", strerror(errno));
		goto cleanup;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* Accepted connections inherit it: an SSE event goes out when it is
	 * relayed, not when the previous one has been acked. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, SOMAXCONN) ||
	    getsockname(fd, (struct sockaddr *)&sa, &len)) {
		kars_err_set(err, errno, "listen: cannot bind %s:%u: %s", addr, port,
			     strerror(errno));
		goto cleanup;
	}
	s->accept_ev = event_new(s->base, fd, EV_READ | EV_PERSIST, on_accept, s);
	if (!s->accept_ev || event_add(s->accept_ev, NULL)) {
		kars_err_set(err, ENOMEM, "listen: out of memory");
		goto cleanup;
	}
	s->lfd = fd;
	fd = -1;
	s->port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
						 : ((struct sockaddr_in *)&sa)->sin_port);
cleanup:
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	return s->lfd >= 0 ? 0 : -1;
}

uint16_t kars_hsrv_port(const struct kars_hsrv *s)
{
	return s->port;
}

void kars_hsrv_stop_listening(struct kars_hsrv *s)
{
	if (s->accept_ev)
		event_free(s->accept_ev);
	s->accept_ev = NULL;
	if (s->lfd >= 0)
		close(s->lfd);
	s->lfd = -1;
}

void kars_hsrv_get_stats(const struct kars_hsrv *s, struct kars_hsrv_stats *st)
{
	*st = s->stats;
}

void kars_hsrv_free(struct kars_hsrv *s)
{
	struct kars_hreq *q;

	if (!s)
		return;
	kars_hsrv_stop_listening(s);
	while ((q = LIST_FIRST(&s->conns)))
		conn_free(q);
	free(s);
}
