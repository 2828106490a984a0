/* upstream_http.c - see upstream_http.h.
 *
 * One connection carries one request at a time (no pipelining). A pooled
 * connection the upstream has closed meanwhile shows up as an end of file
 * before the first byte of the answer: the request is then sent again, once,
 * on a new connection, which is what every HTTP/1.1 client does.
 */
#include "upstream_http.h"

#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_LINE    (64u << 10) /* a status, header or chunk-size line */
#define MAX_HEADERS (256u << 10)
#define MAX_IDLE    256
#define IDLE_KEEP_S 60 /* an unused pooled connection is closed after this */

enum state {
	ST_STATUS = 0,
	ST_HEADERS,
	ST_BODY_LENGTH,
	ST_BODY_CLOSE, /* until the upstream closes */
	ST_CHUNK_SIZE,
	ST_CHUNK_DATA,
	ST_CHUNK_END, /* the CRLF after a chunk */
	ST_TRAILERS,
	ST_DONE,
};

struct conn;

struct kars_uhttp_req {
	struct kars_uhttp *c;
	struct conn *conn;
	const struct kars_uhttp_callbacks *cb;
	void *arg;
	struct evbuffer *wire; /* the request, kept for one resend */
	bool resent;
	bool reused;	/* sent on a pooled connection */
	bool got_bytes; /* of the answer */
	bool paused;
	bool eof;	 /* the upstream closed its side */
	bool starting;	 /* in conn_send: errors are conn_send's to report */
	bool sync_error; /* one came while starting */
	enum state st;
	int status;
	bool chunked, has_length, close_after;
	uint64_t remaining; /* of the body or the chunk */
	size_t header_bytes;
};

struct conn {
	struct kars_uhttp *c;
	struct bufferevent *bev;
	struct kars_uhttp_req *req; /* NULL: idle */
	bool pooled;		    /* in c->idle */
	bool connected;
	TAILQ_ENTRY(conn) next;
};

TAILQ_HEAD(conn_list, conn);

struct kars_uhttp {
	struct event_base *base;
	struct evdns_base *dns;
	SSL_CTX *ssl;
	bool tls, host_is_ip;
	char host[256];
	char host_header[300];
	uint16_t port;
	char prefix[1024];
	struct timeval connect_tv, idle_tv, keep_tv;
	struct conn_list idle;
	size_t n_idle;
	struct kars_uhttp_stats stats;
};

const char *kars_uhttp_strerror(enum kars_uhttp_result r)
{
	switch (r) {
	case KARS_UHTTP_OK:
		return "ok";
	case KARS_UHTTP_RESOLVE:
		return "could not resolve the upstream's host";
	case KARS_UHTTP_CONNECT:
		return "could not connect to the upstream";
	case KARS_UHTTP_TLS:
		return "TLS with the upstream failed";
	case KARS_UHTTP_TIMEOUT:
		return "timeout";
	case KARS_UHTTP_CLOSED:
		return "the upstream closed the connection before the answer ended";
	case KARS_UHTTP_PROTOCOL:
		return "the upstream's answer is not valid HTTP/1.1";
	case KARS_UHTTP_ABORTED:
		return "stopped";
	case KARS_UHTTP_NOMEM:
		return "out of memory";
	}
	return "unknown error";
}

static int parse_base_url(struct kars_uhttp *c, const char *url, struct kars_err *err)
{
	const char *p, *host, *host_end, *slash;
	unsigned long port;
	size_t n;

	if (!strncmp(url, "https://", 8)) {
		c->tls = true;
		p = url + 8;
		c->port = 443;
	} else if (!strncmp(url, "http://", 7)) {
		p = url + 7;
		c->port = 80;
	} else {
		return kars_err_set(err, EINVAL, "upstream.baseUrl: \"%s\" is not http(s)://", url);
	}
	slash = strchr(p, '/');
	if (!slash)
		slash = p + strlen(p);
	host = p;
	if (*host == '[') {
		host_end = memchr(host, ']', (size_t)(slash - host));
		if (!host_end)
			return kars_err_set(err, EINVAL, "upstream.baseUrl: unterminated [");
		host++;
		p = host_end + 1;
	} else {
		host_end = memchr(host, ':', (size_t)(slash - host));
		if (!host_end)
			host_end = slash;
		p = host_end;
	}
	n = (size_t)(host_end - host);
	if (!n || n >= sizeof(c->host) || memchr(host, '@', n))
		return kars_err_set(err, EINVAL, "upstream.baseUrl: bad host in \"%s\"", url);
	memcpy(c->host, host, n);
	c->host[n] = '\0';
	if (*p == ':') {
		char *end;

		port = strtoul(p + 1, &end, 10);
		if (end == p + 1 || end != slash || !port || port > 65535)
			return kars_err_set(err, EINVAL, "upstream.baseUrl: bad port in \"%s\"",
					    url);
		c->port = (uint16_t)port;
	} else if (p != slash) {
		return kars_err_set(err, EINVAL, "upstream.baseUrl: bad host in \"%s\"", url);
	}
	if (strlen(slash) >= sizeof(c->prefix))
		return kars_err_set(err, EINVAL, "upstream.baseUrl: path too long");
	snprintf(c->prefix, sizeof(c->prefix), "%s", slash);
	{
		struct in6_addr a;

		c->host_is_ip =
		    inet_pton(AF_INET, c->host, &a) == 1 || inet_pton(AF_INET6, c->host, &a) == 1;
	}
	if ((c->tls && c->port == 443) || (!c->tls && c->port == 80))
		snprintf(c->host_header, sizeof(c->host_header),
			 strchr(c->host, ':') ? "[%s]" : "%s", c->host);
	else
		snprintf(c->host_header, sizeof(c->host_header),
			 strchr(c->host, ':') ? "[%s]:%u" : "%s:%u", c->host, c->port);
	return 0;
}

static int setup_tls(struct kars_uhttp *c, const char *ca_file, struct kars_err *err)
{
	c->ssl = SSL_CTX_new(TLS_client_method());
	if (!c->ssl)
		return kars_err_set(err, ENOMEM, "TLS: cannot create a context");
	SSL_CTX_set_min_proto_version(c->ssl, TLS1_2_VERSION);
	SSL_CTX_set_verify(c->ssl, SSL_VERIFY_PEER, NULL);
	if (ca_file && *ca_file) {
		if (SSL_CTX_load_verify_locations(c->ssl, ca_file, NULL) != 1)
			return kars_err_set(err, EINVAL, "upstream.caFile: cannot load %s: %s",
					    ca_file, ERR_reason_error_string(ERR_get_error()));
	} else if (SSL_CTX_set_default_verify_paths(c->ssl) != 1) {
		return kars_err_set(err, EINVAL, "TLS: cannot load the system's roots");
	}
	return 0;
}

struct kars_uhttp *kars_uhttp_new(struct event_base *base, const struct kars_uhttp_config *cfg,
				  struct kars_err *err)
{
	struct kars_uhttp *c = calloc(1, sizeof(*c));

	if (!c) {
		kars_err_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	c->base = base;
	TAILQ_INIT(&c->idle);
	c->connect_tv.tv_sec = cfg->connect_timeout_ms / 1000;
	c->connect_tv.tv_usec = (cfg->connect_timeout_ms % 1000) * 1000;
	c->idle_tv.tv_sec = cfg->idle_timeout_s;
	c->keep_tv.tv_sec = IDLE_KEEP_S;
	if (parse_base_url(c, cfg->base_url, err) || (c->tls && setup_tls(c, cfg->ca_file, err)))
		goto fail;
	if (!c->host_is_ip) {
		/* Asynchronous resolution (resolv.conf, /etc/hosts): the loop
		 * never blocks on DNS. */
		c->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
						  EVDNS_BASE_NAMESERVERS_NO_DEFAULT);
		if (!c->dns) {
			kars_err_set(err, EINVAL, "upstream: cannot set up DNS resolution");
			goto fail;
		}
	}
	return c;
fail:
	kars_uhttp_free(c);
	return NULL;
}

static void conn_free(struct conn *k)
{
	if (k->pooled) {
		TAILQ_REMOVE(&k->c->idle, k, next);
		k->c->n_idle--;
	}
	if (k->req)
		k->req->conn = NULL;
	if (k->bev)
		bufferevent_free(k->bev); /* closes the socket, frees the SSL */
	free(k);
}

void kars_uhttp_free(struct kars_uhttp *c)
{
	struct conn *k;

	if (!c)
		return;
	while ((k = TAILQ_FIRST(&c->idle)))
		conn_free(k);
	if (c->dns)
		evdns_base_free(c->dns, 0);
	if (c->ssl)
		SSL_CTX_free(c->ssl);
	free(c);
}

void kars_uhttp_get_stats(const struct kars_uhttp *c, struct kars_uhttp_stats *s)
{
	*s = c->stats;
	s->idle = c->n_idle;
}

static void req_free(struct kars_uhttp_req *q)
{
	if (q->wire) {
		/* It holds the credential header. */
		size_t n = evbuffer_get_length(q->wire);
		unsigned char *p = n ? evbuffer_pullup(q->wire, -1) : NULL;

		if (p)
			explicit_bzero(p, n);
		evbuffer_free(q->wire);
	}
	free(q);
}

static int conn_send(struct kars_uhttp_req *q, struct conn *k);

/* Ends q: its connection goes back to the pool when the answer left it
 * reusable, else it is closed; then the callback. */
static void finish(struct kars_uhttp_req *q, enum kars_uhttp_result res, const char *detail)
{
	struct conn *k = q->conn;
	struct kars_uhttp *c = q->c;

	if (k) {
		k->req = NULL;
		q->conn = NULL;
		/* Reused only when nothing is left either way (an upstream may
		 * answer before it has read all of the request). */
		if (res == KARS_UHTTP_OK && !q->close_after && c->n_idle < MAX_IDLE &&
		    !evbuffer_get_length(bufferevent_get_input(k->bev)) &&
		    !evbuffer_get_length(bufferevent_get_output(k->bev))) {
			/* Idle: any byte or end of file from the upstream now
			 * closes it; so does a minute without use. */
			TAILQ_INSERT_HEAD(&c->idle, k, next);
			c->n_idle++;
			k->pooled = true;
			bufferevent_set_timeouts(k->bev, &c->keep_tv, NULL);
			bufferevent_enable(k->bev, EV_READ);
		} else {
			conn_free(k);
		}
	}
	q->cb->on_done(q->arg, res, detail);
	req_free(q);
}

/* A request on a pooled connection the upstream had closed: once more, on
 * a new one. Returns true when it was resent. */
static bool resend(struct kars_uhttp_req *q)
{
	struct conn *k = q->conn;

	if (q->resent || !q->reused || q->got_bytes || !k)
		return false;
	q->resent = true;
	conn_free(k);
	return conn_send(q, NULL) == 0;
}

/* The next CRLF- (or LF-) ended line, or NULL when it is not all here. */
static char *read_line(struct kars_uhttp_req *q, struct evbuffer *in, size_t *len, bool *too_long)
{
	char *line = evbuffer_readln(in, len, EVBUFFER_EOL_CRLF);

	*too_long = !line && evbuffer_get_length(in) > MAX_LINE;
	if (line)
		q->header_bytes += *len + 2;
	return line;
}

static bool no_body(int status)
{
	return status == 204 || status == 304 || (status >= 100 && status < 200);
}

static int parse_status(struct kars_uhttp_req *q, const char *line)
{
	int status;

	/* HTTP/1.x, a space, three digits, then a space or the end. */
	if (strncmp(line, "HTTP/1.", 7) || (line[7] != '0' && line[7] != '1') || line[8] != ' ' ||
	    !isdigit((unsigned char)line[9]) || !isdigit((unsigned char)line[10]) ||
	    !isdigit((unsigned char)line[11]) || (line[12] && line[12] != ' '))
		return -1;
	status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
	if (status < 100 || status > 599)
		return -1;
	q->status = status;
	q->close_after = line[7] == '0';
	q->chunked = q->has_length = false;
	return 0;
}

/* A header name is an RFC 9110 token. */
static bool is_token_char(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* A header value: visible bytes, spaces and tabs; no bare CR, NUL or other
 * control byte (RFC 9112 5.5), which could split the header where the
 * router passes it on. */
static bool is_value_char(unsigned char ch)
{
	return ch == '\t' || (ch >= 0x20 && ch != 0x7f);
}

static int parse_header(struct kars_uhttp_req *q, char *line, size_t len)
{
	char *colon = memchr(line, ':', len), *value, *end;

	if (!colon || colon == line)
		return -1;
	for (const char *p = line; p < colon; p++)
		if (!is_token_char((unsigned char)*p))
			return -1;
	for (const char *p = colon + 1; p < line + len; p++)
		if (!is_value_char((unsigned char)*p))
			return -1;
	*colon = '\0';
	for (value = colon + 1; *value == ' ' || *value == '\t'; value++)
		;
	end = value + strlen(value);
	while (end > value && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	if (!strcasecmp(line, "Content-Length")) {
		char *e;
		unsigned long long n;

		if (*value < '0' || *value > '9')
			return -1;
		errno = 0;
		n = strtoull(value, &e, 10);
		if (*e || errno || (q->has_length && n != q->remaining))
			return -1; /* two different lengths: smuggling, refuse */
		q->has_length = true;
		q->remaining = n;
	} else if (!strcasecmp(line, "Transfer-Encoding")) {
		if (strcasecmp(value, "chunked"))
			return -1; /* no other coding is asked for or read */
		q->chunked = true;
	} else if (!strcasecmp(line, "Connection")) {
		if (strcasestr(value, "close"))
			q->close_after = true;
	}
	if (q->status >= 200)
		q->cb->on_header(q->arg, line, value);
	return 0;
}

/* Hands body bytes to the caller, as they lie in the input buffer. */
static bool deliver(struct kars_uhttp_req *q, struct evbuffer *in, size_t max, size_t *taken)
{
	struct evbuffer_iovec v[8];
	int n = evbuffer_peek(in, (ev_ssize_t)max, NULL, v, 8);
	size_t sum = 0;
	bool go = true;

	for (int i = 0; i < n && i < 8 && sum < max && go && !q->paused; i++) {
		size_t len = v[i].iov_len < max - sum ? v[i].iov_len : max - sum;

		go = q->cb->on_body(q->arg, v[i].iov_base, len);
		sum += len;
	}
	evbuffer_drain(in, sum);
	*taken = sum;
	return go;
}

/* Runs the parser over what has arrived. Returns false when q has ended
 * (and is gone). */
static bool process(struct kars_uhttp_req *q)
{
	struct bufferevent *bev = q->conn->bev;
	struct evbuffer *in = bufferevent_get_input(bev);
	bool too_long;
	char *line;
	size_t n, line_len = 0;

	if (evbuffer_get_length(in))
		q->got_bytes = true;
	while (!q->paused && q->st != ST_DONE) {
		switch (q->st) {
		case ST_STATUS:
		case ST_HEADERS:
		case ST_CHUNK_SIZE:
		case ST_CHUNK_END:
		case ST_TRAILERS:
			line = read_line(q, in, &line_len, &too_long);
			if (!line) {
				if (too_long)
					goto bad;
				goto more;
			}
			if (q->header_bytes > MAX_HEADERS && q->st != ST_CHUNK_SIZE &&
			    q->st != ST_CHUNK_END) {
				free(line);
				goto bad;
			}
			break;
		default:
			line = NULL;
			break;
		}
		switch (q->st) {
		case ST_STATUS:
			if (parse_status(q, line)) {
				free(line);
				goto bad;
			}
			q->st = ST_HEADERS;
			break;
		case ST_HEADERS:
			if (*line) {
				int bad = parse_header(q, line, line_len);

				free(line);
				if (bad)
					goto bad;
				continue;
			}
			if (q->status < 200) { /* 100 Continue and the like */
				q->st = ST_STATUS;
				break;
			}
			q->header_bytes = 0;
			q->cb->on_head(q->arg, q->status);
			if (no_body(q->status))
				q->st = ST_DONE;
			else if (q->chunked)
				q->st = ST_CHUNK_SIZE;
			else if (q->has_length)
				q->st = q->remaining ? ST_BODY_LENGTH : ST_DONE;
			else
				q->st = ST_BODY_CLOSE, q->close_after = true;
			break;
		case ST_CHUNK_SIZE: {
			char *e;

			errno = 0;
			q->remaining = strtoull(line, &e, 16);
			if (e == line || errno || (*e && *e != ';' && *e != ' ')) {
				free(line);
				goto bad;
			}
			q->st = q->remaining ? ST_CHUNK_DATA : ST_TRAILERS;
			break;
		}
		case ST_CHUNK_END:
			if (*line) {
				free(line);
				goto bad;
			}
			q->st = ST_CHUNK_SIZE;
			break;
		case ST_TRAILERS:
			if (!*line)
				q->st = ST_DONE;
			break;
		case ST_BODY_LENGTH:
		case ST_CHUNK_DATA:
		case ST_BODY_CLOSE: {
			size_t max = evbuffer_get_length(in);

			if (q->st != ST_BODY_CLOSE && q->remaining < max)
				max = (size_t)q->remaining;
			if (!max && q->st == ST_BODY_CLOSE && q->eof) {
				q->st = ST_DONE;
				break;
			}
			if (!max)
				goto more;
			if (!deliver(q, in, max, &n)) {
				finish(q, KARS_UHTTP_ABORTED, NULL);
				return false;
			}
			if (q->st == ST_BODY_CLOSE)
				break;
			q->remaining -= n;
			if (!q->remaining)
				q->st = q->st == ST_CHUNK_DATA ? ST_CHUNK_END : ST_DONE;
			break;
		}
		case ST_DONE:
			break;
		}
		free(line);
	}
	if (q->st == ST_DONE) {
		finish(q, KARS_UHTTP_OK, NULL);
		return false;
	}
more:
	/* Paused, or waiting for more; at the end of the connection only a
	 * paused request still has something to read. */
	if (q->eof && !q->paused) {
		if (resend(q))
			return true;
		q->close_after = true;
		finish(q, KARS_UHTTP_CLOSED, NULL);
		return false;
	}
	return true;
bad:
	q->close_after = true;
	finish(q, KARS_UHTTP_PROTOCOL, NULL);
	return false;
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct conn *k = arg;

	if (!k->req) { /* idle: the upstream is not meant to talk now */
		conn_free(k);
		return;
	}
	(void)process(k->req);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *k = arg;
	struct kars_uhttp_req *q = k->req;
	char detail[512] = "";
	enum kars_uhttp_result res;
	unsigned long e;

	if (what & BEV_EVENT_CONNECTED) {
		int one = 1;

		/* A request goes out in one piece; nothing is gained waiting
		 * to coalesce it (curl sets it too). */
		setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		k->connected = true;
		bufferevent_set_timeouts(bev, &k->c->idle_tv, &k->c->idle_tv);
		return;
	}
	if (!q) {
		conn_free(k);
		return;
	}
	if (q->starting) {
		q->sync_error = true;
		return;
	}
	if (k->connected && (what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
		/* What is left is parsed first: it may end the answer. */
		q->eof = true;
		(void)process(q);
		return;
	}
	if (k->connected && (what & BEV_EVENT_ERROR) && resend(q))
		return;
	q->close_after = true;
	e = k->c->tls ? bufferevent_get_openssl_error(bev) : 0;
	if (what & BEV_EVENT_TIMEOUT) {
		res = KARS_UHTTP_TIMEOUT;
		snprintf(detail, sizeof(detail), "%s", k->connected ? "idle" : "connect");
	} else if (!k->connected && (what & BEV_EVENT_ERROR) &&
		   bufferevent_socket_get_dns_error(bev)) {
		res = KARS_UHTTP_RESOLVE;
		snprintf(detail, sizeof(detail), "%s: %s", k->c->host,
			 evutil_gai_strerror(bufferevent_socket_get_dns_error(bev)));
	} else if (e) {
		res = KARS_UHTTP_TLS;
		snprintf(detail, sizeof(detail), "%s", ERR_reason_error_string(e));
		if (ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
			SSL *ssl = bufferevent_openssl_get_ssl(bev);
			long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;

			snprintf(detail, sizeof(detail), "certificate verify failed: %s",
				 X509_verify_cert_error_string(v));
		}
	} else if (!k->connected) {
		res = KARS_UHTTP_CONNECT;
		snprintf(detail, sizeof(detail), "%s:%u: %s", k->c->host, k->c->port,
			 strerror(EVUTIL_SOCKET_ERROR() ? EVUTIL_SOCKET_ERROR() : ECONNREFUSED));
	} else {
		res = KARS_UHTTP_CLOSED;
	}
	finish(q, res, detail[0] ? detail : NULL);
}

static struct conn *conn_open(struct kars_uhttp *c)
{
	struct conn *k = calloc(1, sizeof(*k));
	SSL *ssl = NULL;

	if (!k)
		return NULL;
	k->c = c;
	if (c->tls) {
		ssl = SSL_new(c->ssl);
		if (!ssl)
			goto fail;
		if (c->host_is_ip) {
			X509_VERIFY_PARAM *param = SSL_get0_param(ssl);

			if (X509_VERIFY_PARAM_set1_ip_asc(param, c->host) != 1)
				goto fail;
		} else if (SSL_set_tlsext_host_name(ssl, c->host) != 1 ||
			   SSL_set1_host(ssl, c->host) != 1) {
			goto fail;
		}
		k->bev = bufferevent_openssl_socket_new(
		    c->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
		if (!k->bev)
			goto fail;
		ssl = NULL; /* the bufferevent's now */
		/* Servers often end without close_notify; bodies are framed by
		 * length or chunks, so a cut one is still detected. */
		bufferevent_openssl_set_allow_dirty_shutdown(k->bev, 1);
	} else {
		k->bev = bufferevent_socket_new(c->base, -1, BEV_OPT_CLOSE_ON_FREE);
		if (!k->bev)
			goto fail;
	}
	bufferevent_setcb(k->bev, on_read, NULL, on_event, k);
	bufferevent_set_timeouts(k->bev, &c->connect_tv, &c->connect_tv);
	c->stats.connects++;
	return k;
fail:
	if (ssl)
		SSL_free(ssl);
	free(k);
	return NULL;
}

/* A pooled plain-TCP connection: the request goes out at once, with one
 * send(); only what the socket does not take waits for a write event. That
 * saves two epoll_ctl and a loop turn per request (bench-router). A failed
 * send leaves it all to the bufferevent, whose error then resends. */
static int send_now(struct conn *k, struct evbuffer *wire)
{
	size_t len = evbuffer_get_length(wire);
	const char *p = (const char *)evbuffer_pullup(wire, -1);
	ssize_t n;

	if (!p)
		return -1;
	n = send(bufferevent_getfd(k->bev), p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n < 0)
		n = 0;
	if ((size_t)n == len)
		return 0;
	/* The rest by reference, not copied: q->wire (which holds the
	 * credential, wiped in req_free) outlives the connection's use of it,
	 * since every path frees the connection before the request. */
	if (evbuffer_add_reference(bufferevent_get_output(k->bev), p + n, len - (size_t)n, NULL,
				   NULL))
		return -1;
	return bufferevent_enable(k->bev, EV_WRITE);
}

/* Sends q on k (NULL: a pooled connection or a new one). */
static int conn_send(struct kars_uhttp_req *q, struct conn *k)
{
	struct kars_uhttp *c = q->c;
	bool fresh = false;

	q->reused = false;
	q->eof = false;
	if (!k && (k = TAILQ_FIRST(&c->idle))) {
		TAILQ_REMOVE(&c->idle, k, next);
		c->n_idle--;
		k->pooled = false;
		q->reused = true;
		c->stats.reuses++;
		bufferevent_set_timeouts(k->bev, &c->idle_tv, &c->idle_tv);
	} else if (!k) {
		k = conn_open(c);
		if (!k)
			return -1;
		fresh = true;
	}
	k->req = q;
	q->conn = k;
	q->st = ST_STATUS;
	q->got_bytes = false;
	q->header_bytes = 0;
	if (!fresh && !c->tls) {
		bufferevent_enable(k->bev, EV_READ);
		if (send_now(k, q->wire))
			goto fail;
		return 0;
	}
	/* The copy stays for a resend. */
	if (evbuffer_add_buffer_reference(bufferevent_get_output(k->bev), q->wire))
		goto fail;
	bufferevent_enable(k->bev, EV_READ | EV_WRITE);
	if (fresh) {
		int rc;

		/* A failure it reports at once comes through on_event too:
		 * q->starting makes it ours to report. */
		q->starting = true;
		q->sync_error = false;
		rc = bufferevent_socket_connect_hostname(k->bev, c->dns, AF_UNSPEC, c->host,
							 c->port);
		q->starting = false;
		if (rc || q->sync_error)
			goto fail;
	}
	return 0;
fail:
	conn_free(k);
	return -1;
}

struct kars_uhttp_req *kars_uhttp_start(struct kars_uhttp *c, const char *method, const char *path,
					const char *headers, const char *body, size_t body_len,
					const struct kars_uhttp_callbacks *cb, void *arg)
{
	struct kars_uhttp_req *q = calloc(1, sizeof(*q));
	int rc;

	if (!q)
		return NULL;
	q->c = c;
	q->cb = cb;
	q->arg = arg;
	q->wire = evbuffer_new();
	if (!q->wire)
		goto fail;
	rc = evbuffer_add_printf(q->wire, "%s %s%s HTTP/1.1\r\nHost: %s\r\n%s", method, c->prefix,
				 path, c->host_header, headers);
	if (rc >= 0 && body)
		rc = evbuffer_add_printf(q->wire, "Content-Length: %zu\r\n\r\n", body_len);
	else if (rc >= 0)
		rc = evbuffer_add(q->wire, "\r\n", 2);
	if (rc < 0 || (body && evbuffer_add(q->wire, body, body_len)))
		goto fail;
	if (conn_send(q, NULL))
		goto fail;
	return q;
fail:
	req_free(q);
	return NULL;
}

void kars_uhttp_cancel(struct kars_uhttp_req *q)
{
	struct conn *k = q->conn;

	if (k)
		conn_free(k);
	req_free(q);
}

void kars_uhttp_pause(struct kars_uhttp_req *q, bool pause)
{
	struct conn *k = q->conn;

	if (q->paused == pause)
		return;
	q->paused = pause;
	if (!k)
		return;
	if (pause) {
		bufferevent_disable(k->bev, EV_READ);
		return;
	}
	bufferevent_enable(k->bev, EV_READ);
	/* What was read before the pause (or its end) is parsed now, not at the
	 * next read. */
	if (q->eof || evbuffer_get_length(bufferevent_get_input(k->bev)))
		bufferevent_trigger(k->bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
}
