/* egress_transparent.c - the egress proxy's transparent path: TLS that
 * the data plane's connect4/6 redirected to it (docs/dataplane.md, "The
 * redirected connection's original destination"). The ClientHello is read
 * whole and kept; the agent socket's cookie (sock_diag, at accept) is sent
 * to karsd as orig_dst; the SNI is decided with the original port, resolved
 * afresh, and the original address must be one of the answers. */
#include "egress_tunnel.h"

#include <event2/buffer.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "router.h"

/* The transparent path dials where the agent was going, and only if the
 * name the agent sent (SNI) resolves to that address now. */
void egress_transparent_dial(struct tunnel *t, struct evutil_addrinfo *res)
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
	egress_deny(t, 0, "orig_dst_mismatch", "the name does not resolve to the address dialled");
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
	egress_dial(t, (struct sockaddr *)&ss, len);
}

/* --- the transparent path: TLS the data plane redirected ---------------- */

/* karsd's answer to {"op":"orig_dst"}: where the agent was connecting. */
static void on_karsd_read(struct bufferevent *bev, void *arg)
{
	struct tunnel *t = arg;
	char *line = evbuffer_readln(bufferevent_get_input(bev), NULL, EVBUFFER_EOL_LF);
	const char *ip = NULL, *error = NULL, *sandbox = NULL;
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
	    json_unpack(doc, "{s:b,s?s,s?s,s?I,s?s}", "ok", &ok, "ip", &ip, "error", &error, "port",
			&port, "sandbox", &sandbox) ||
	    !ok || !ip || port < 1 || port > 65535 ||
	    /* karsd answers a router UID about its own sandbox only; check anyway */
	    (sandbox && strcmp(sandbox, t->p->r->cfg.sandbox)) ||
	    kars_addr_parse(ip, &t->orig, "orig_dst.ip", &err)) {
		egress_deny(t, 0, "orig_dst_unavailable",
			    error ? error : "karsd gave no original destination");
		json_decref(doc);
		return;
	}
	kars_addr_str(&t->orig, t->dst, sizeof(t->dst));
	json_decref(doc);
	egress_decide(t, t->host, (uint16_t)port);
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
		egress_deny(t, 0, "orig_dst_unavailable",
			    "cannot ask karsd (egressProxy.karsdSocket)");
}

static void ask_orig_dst(struct tunnel *t)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};

	t->phase = P_ORIG;
	bufferevent_disable(t->client, EV_READ);
	egress_arm(t->idle, t->p->cfg->connect_timeout_ms);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", t->p->cfg->karsd_socket);
	t->karsd =
	    bufferevent_socket_new(bufferevent_get_base(t->client), -1, BEV_OPT_CLOSE_ON_FREE);
	if (!t->karsd)
		return egress_deny(t, 0, "orig_dst_unavailable", "out of memory");
	bufferevent_setcb(t->karsd, on_karsd_read, NULL, on_karsd_event, t);
	bufferevent_enable(t->karsd, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(t->karsd, (struct sockaddr *)&sun, sizeof(sun)))
		egress_deny(t, 0, "orig_dst_unavailable", "cannot connect to karsd");
}

/* The ClientHello, whole, is the only thing read; it stays buffered and is
 * forwarded as it came. */
void egress_read_client_hello(struct tunnel *t)
{
	char sni[KARS_TLS_SNI_BUF];

	if (!egress_client_sni(t, sni))
		return;
	snprintf(t->host, sizeof(t->host), "%s", sni);
	ask_orig_dst(t);
}
