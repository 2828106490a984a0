/* egress_proxy.c - see egress_proxy.h: accept, the request head, CONNECT
 * and its ClientHello, resolve, dial, set-up and metrics. The phases of a
 * tunnel are described in egress_tunnel.h. */
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "addr.h"
#include "addr_class.h"
#include "audit.h"
#include "egress_learned.h"
#include "egress_tunnel.h"
#include "http_head.h"
#include "log.h"
#include "router.h"
#include "sock_diag.h"
#include "tls_sni.h"

/* --- the CONNECT tunnel's ClientHello ------------------------------------ */

/* The SNI of the ClientHello at the start of the client's input. False
 * when more bytes are needed, or when the connection was refused (closed). */
bool egress_client_sni(struct tunnel *t, char sni[KARS_TLS_SNI_BUF])
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
		egress_deny(t, 0, "other", "out of memory");
		return false;
	}
	switch (kars_tls_sni_parse(buf, len, sni, &need, &err)) {
	case KARS_SNI_OK:
		return true;
	case KARS_SNI_MORE:
		if (len == max)
			egress_deny(t, 0, "bad_client_hello",
				    "the ClientHello is spread over too many records");
		return false;
	case KARS_SNI_NONE:
		egress_deny(t, 0, "sni_missing", err.msg);
		return false;
	case KARS_SNI_ECH:
		egress_deny(t, 0, "ech", err.msg);
		return false;
	case KARS_SNI_BAD:
		egress_deny(t, 0, buf[0] == 0x16 ? "bad_client_hello" : "not_tls", err.msg);
		return false;
	}
	return false;
}

static void check_hello(struct tunnel *t)
{
	char sni[KARS_TLS_SNI_BUF], norm[KARS_DNS_NAME_BUF];
	struct kars_err err = {0};

	if (!egress_client_sni(t, sni))
		return;
	if (kars_dns_name_normalize(sni, strlen(sni), norm, &err))
		return egress_deny(t, 0, "sni_mismatch", err.msg);
	if (t->host_is_ip) {
		struct kars_egress_decision d;

		/* A tunnel to an address (learn mode): the name must pass too. */
		kars_egress_decide(t->p->policy, norm, t->port, &d);
		if (!d.allow)
			return egress_deny(t, 0, d.reason, norm);
	} else if (strcmp(norm, t->host)) {
		return egress_deny(t, 0, "sni_mismatch", norm);
	}
	egress_start_relay(t);
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
		egress_deny(t, 502, "connect_failed",
			    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		return;
	}
	if (t->kind == K_CONNECT) {
		evbuffer_drain(in, t->head.head_len);
		evbuffer_add_printf(bufferevent_get_output(t->client),
				    "HTTP/1.1 200 Connection established\r\n\r\n");
		t->phase = P_HELLO;
		bufferevent_setcb(t->server, NULL, NULL, egress_on_side_event, t);
		bufferevent_setcb(t->client, egress_on_client_read, NULL, egress_on_side_event, t);
		bufferevent_enable(t->client, EV_READ);
		egress_arm(t->idle, t->p->cfg->idle_timeout_s * 1000);
		check_hello(t);
		return;
	}
	if (t->kind == K_TLS) {
		egress_start_relay(t); /* the ClientHello is still in the client's input */
		return;
	}
	write_http_head(t, (const char *)evbuffer_pullup(in, (ssize_t)t->head.head_len));
	evbuffer_drain(in, t->head.head_len);
	t->body_left = t->head.content_length;
	egress_start_relay(t);
}

void egress_dial(struct tunnel *t, const struct sockaddr *sa, socklen_t len)
{
	int one = 1;

	t->phase = P_CONNECT;
	t->server =
	    bufferevent_socket_new(bufferevent_get_base(t->client), -1, BEV_OPT_CLOSE_ON_FREE);
	if (!t->server)
		return egress_deny(t, 502, "connect_failed", "out of memory");
	bufferevent_setcb(t->server, NULL, NULL, on_connect_event, t);
	if (bufferevent_socket_connect(t->server, sa, (int)len)) {
		/* libevent 2.1 runs no callback when it fails here. */
		bufferevent_free(t->server);
		t->server = NULL;
		return egress_deny(t, 502, "connect_failed", strerror(errno));
	}
	setsockopt(bufferevent_getfd(t->server), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Every address must be dialable; the first is dialled. */
static void on_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
	struct tunnel *t = arg;
	struct evutil_addrinfo *ai;

	if (result == EVUTIL_EAI_CANCEL)
		return; /* egress_tunnel_free() is cancelling */
	t->dns_req = NULL;
	if (result) {
		egress_deny(t, 502, "resolve_failed", evutil_gai_strerror(result));
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
			egress_deny(t, 403, "refused_address", why);
			return;
		}
	}
	if (t->kind == K_TLS) {
		egress_transparent_dial(t, res);
		evutil_freeaddrinfo(res);
		return;
	}
	for (ai = res; ai; ai = ai->ai_next)
		if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6)
			break;
	if (!ai) {
		evutil_freeaddrinfo(res);
		egress_deny(t, 502, "resolve_failed", "no address");
		return;
	}
	((struct sockaddr_in *)ai->ai_addr)->sin_port = htons(t->port); /* same offset in v6 */
	evutil_inet_ntop(ai->ai_family,
			 ai->ai_family == AF_INET
			     ? (void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
			     : (void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr,
			 t->dst, sizeof(t->dst));
	egress_dial(t, ai->ai_addr, (socklen_t)ai->ai_addrlen);
	evutil_freeaddrinfo(res);
}

static void resolve(struct tunnel *t)
{
	struct evutil_addrinfo hints = {
	    .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_protocol = IPPROTO_TCP};
	struct evdns_getaddrinfo_request *q;

	t->phase = P_RESOLVE;
	bufferevent_disable(t->client, EV_READ);
	egress_arm(t->idle, t->p->cfg->connect_timeout_ms);
	if (t->host_is_ip)
		hints.ai_flags = EVUTIL_AI_NUMERICHOST;
	q = evdns_getaddrinfo(t->p->dns, t->host, NULL, &hints, on_resolved, t);
	/* NULL: answered (or failed) already, the callback has run and t
	 * may be gone. */
	if (q)
		t->dns_req = q;
}

/* --- the request head --------------------------------------------------- */

void egress_decide(struct tunnel *t, const char *host, uint16_t port)
{
	struct kars_egress_proxy *p = t->p;
	struct kars_egress_decision d;

	kars_egress_decide(p->policy, host, port, &d);
	snprintf(t->host, sizeof(t->host), "%s", d.host);
	t->port = port;
	t->host_is_ip = strcmp(d.reason, "ip_literal") == 0;
	if (!d.allow) {
		egress_deny(t, 403, d.reason, NULL);
		return;
	}
	if (d.learn) {
		p->learned_allows++;
		kars_egress_learned_record(&p->learned, d.host, port, time(NULL));
		egress_audit(t, "learn", d.reason, NULL);
	} else {
		p->allowed++;
		egress_audit(t, "allow", d.reason, NULL);
	}
	resolve(t);
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
		return egress_deny(t, 0, "other", "out of memory");
	if ((uint8_t)buf[0] == 0x16) {
		t->kind = K_TLS;
		return egress_read_client_hello(t);
	}
	switch (kars_http_head_parse(buf, len, 80, &t->head, &err)) {
	case KARS_HTTP_MORE:
		return;
	case KARS_HTTP_BAD:
		return egress_deny(t, 400, "bad_request", err.msg);
	case KARS_HTTP_TOO_BIG:
		return egress_deny(t, 431, "bad_request", err.msg);
	case KARS_HTTP_OK:
		break;
	}
	t->kind = t->head.connect ? K_CONNECT : K_HTTP;
	if (t->kind == K_HTTP && t->head.has_transfer_encoding) {
		snprintf(t->host, sizeof(t->host), "%.253s", t->head.host);
		t->port = t->head.port;
		return egress_deny(t, 501, "transfer_encoding",
				   "request bodies with Transfer-Encoding are not supported; send "
				   "Content-Length");
	}
	egress_decide(t, t->head.host, t->head.port);
}

void egress_on_client_read(struct bufferevent *bev, void *arg)
{
	struct tunnel *t = arg;

	egress_arm(t->idle, t->p->cfg->idle_timeout_s * 1000);
	switch (t->phase) {
	case P_HEAD:
		if (t->kind == K_TLS)
			egress_read_client_hello(t);
		else
			read_head(t);
		break;
	case P_HELLO:
		check_hello(t);
		break;
	case P_RELAY:
		egress_client_to_server(t);
		break;
	default:
		break;
	}
}

static void on_head_event(struct bufferevent *bev, short what, void *arg)
{
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		egress_tunnel_free(arg);
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
	t->idle = evtimer_new(base, egress_on_idle, t);
	t->life = evtimer_new(base, egress_on_lifetime, t);
	if (!t->client || !t->idle || !t->life) {
		if (!t->client)
			evutil_closesocket(fd);
		egress_tunnel_free(t);
		return;
	}
	bufferevent_setcb(t->client, egress_on_client_read, NULL, on_head_event, t);
	/* The agent's proxy: another local UID may not borrow the router's way out. */
	if (kars_sock_peer_lookup(fd, &peer, &err)) {
		egress_deny(t, 403, "not_the_agent", err.msg);
		return;
	}
	t->cookie = peer.cookie;
	if (peer.uid != p->r->cfg.agent_uid) {
		snprintf(err.msg, sizeof(err.msg), "uid %u is not the agent's", peer.uid);
		egress_deny(t, 403, "not_the_agent", err.msg);
		return;
	}
	egress_arm(t->idle, p->cfg->idle_timeout_s * 1000);
	egress_arm(t->life, p->cfg->max_lifetime_s * 1000);
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
	for (size_t i = 0; i < EGRESS_N_DENY; i++)
		if (p->denied[i])
			evbuffer_add_printf(out,
					    "kars_router_egress_denied_total{sandbox=\"%s\","
					    "reason=\"%s\"} %llu\n",
					    sb, egress_deny_reasons[i],
					    (unsigned long long)p->denied[i]);
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
