/* local_egress.h - a local sandbox's router "egressProxy" object, made from
 * the same egress request karsd gets (egress_compile.h), so the proxy's
 * name allowlist and karsd's can never say different things.
 *
 *   {"op":"apply","mode":"strict","fqdns":[{"name":"a.example","port":443,
 *    "protocol":"tcp"}],"rules":[...],"resolver":{"ipv4":"10.0.0.2","port":53}}
 *   -> {"listen":["127.0.0.1:P","[::1]:P"],"mode":"strict",
 *       "allow":[{"name":"a.example","port":443}],
 *       "resolver":"10.0.0.2:53","karsdSocket":"/run/kars/karsd.sock"}
 *
 * Only TCP fqdns become allow entries: the proxy decides by name, and an IP
 * literal is refused there (`ip_literal`), so "rules" are karsd's alone. The
 * resolver is the sandbox's: the router's data plane only lets it ask that
 * one, and learns the allowed names' addresses from its answers. Limits stay
 * at the router's defaults; no blocklist file is written.
 */
#ifndef KARS_LOCAL_EGRESS_H
#define KARS_LOCAL_EGRESS_H

#include <jansson.h>
#include <stdbool.h>

#include "err.h"

/* egress: karsd's apply request (mode, fqdns, optional resolver: its ipv4,
 * else its ipv6); resolver4: the one used when egress has no resolver, as
 * karsd is given (NULL: the proxy reads /etc/resolv.conf); ipv6: also listen
 * on [::1] (false on a host without IPv6 loopback, where the router could not
 * bind it, and no IPv6 connection is made to redirect). *out is a new object. */
int kars_local_egress_proxy(const json_t *egress, unsigned proxy_port, bool ipv6,
			    const char *resolver4, const char *karsd_socket, json_t **out,
			    struct kars_err *err);

#endif
