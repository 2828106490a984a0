/* egress_compile.h - a KarsSandbox's egress policy as karsd's apply
 * request (docs/karsd-api.md, op "apply").
 *
 * From spec.networkPolicy: the mode (Learn -> "learn", Strict -> "strict")
 * and the allowlist. An allowlist entry that is an IPv4 or IPv6 literal is
 * a rule {"ip","port","protocol":"tcp"}; a host name (or *.domain) is an
 * fqdn {"name","port","protocol":"tcp"}, which karsd resolves and pins.
 * The hosts of the sandbox's EgressApprovals in force are added the same
 * way. The backend fills in what only it knows (cgroups, UIDs, ports); the
 * resolver and DNS caps come from the options; with fqdns and a resolver,
 * the router's DNS to it is a rule too ({"ip": resolver, "port": its port,
 * "protocol": "udp"}, each family given), after the allowlist's rules.
 * Entries are deduplicated and sorted, so the request is a pure function
 * of its inputs.
 *
 * spec.networkPolicy.allowlistRef (a signed allowlist) is not implemented:
 * -ENOTSUP, and nothing is compiled (never an empty allowlist in its place).
 */
#ifndef KARS_EGRESS_COMPILE_H
#define KARS_EGRESS_COMPILE_H

#include <jansson.h>
#include <stdint.h>

#include "err.h"

struct kars_egress_opts {
	const char *resolver_ipv4, *resolver_ipv6; /* NULL: none */
	uint16_t resolver_port;			   /* 0: 53 */
	unsigned dns_max_name_length;		   /* 0: no cap */
	unsigned dns_max_qps;			   /* 0: no cap */
};

/* approvals: the EgressApproval objects in force for this sandbox (their
 * spec.hosts are added), may be NULL. */
int kars_egress_compile(const json_t *sandbox, const json_t *approvals,
			const struct kars_egress_opts *opts, json_t **req, struct kars_err *err);

#endif
