/* egress_proxy.h - the router's egress proxy: the agent's only way out by
 * name, on 127.0.0.1:8444 and [::1]:8444 (egressProxy.listen).
 *
 * Three entry paths: "CONNECT host:port" (HTTPS_PROXY), whose tunnel must
 * start with a TLS ClientHello naming the same host; plain HTTP (an
 * absolute URI or a Host header), one request per connection; and TLS the
 * data plane redirected (egress_transparent.c: SNI, karsd's orig_dst, the
 * original address must be one the name resolves to). Each (host, port)
 * is decided by egress_policy.c; an allowed name is resolved
 * once, refused if any of its addresses is of a refused class
 * (addr_class.h), and the connection goes to the first address, from the
 * router's own cgroup, so the kernel's router-role policy applies too.
 * Every decision is an audit record. Only the agent's UID is served.
 * Files: egress_tunnel.h says which part lives where. docs/egress-proxy.md.
 */
#ifndef KARS_EGRESS_PROXY_H
#define KARS_EGRESS_PROXY_H

#include <stdint.h>

#include "err.h"

struct evbuffer;
struct kars_router;
struct kars_egress_proxy;

/* Binds every egressProxy.listen address; NULL with err on failure. */
struct kars_egress_proxy *kars_egress_proxy_new(struct kars_router *r, struct kars_err *err);
/* Stops listening (drain); tunnels go on. */
void kars_egress_proxy_stop_listening(struct kars_egress_proxy *p);
void kars_egress_proxy_free(struct kars_egress_proxy *p);

/* The destinations learned (learn mode), for the control endpoints. */
struct kars_egress_learned *kars_egress_proxy_learned(struct kars_egress_proxy *p);

/* /kars/v1/egress... (egress_control.c); path is below /kars/v1/. */
struct kars_hreq;
void kars_egress_control(struct kars_router *r, struct kars_hreq *req, const char *path);

/* The kars_router_egress_* lines of /metrics. */
void kars_egress_proxy_metrics(struct kars_egress_proxy *p, struct evbuffer *out);

#endif
