/* egress_policy.h - the egress proxy's decision on (host, port).
 *
 * The allowlist has the entries of karsd's "fqdns" (docs/dns.md) with the
 * same meaning: "api.example.com" is that name only, "*.example.com" every
 * name below example.com at any depth but not example.com itself, each with
 * a port or a port range. Names are compared in the DNS blocklist's normal
 * form (lower case, no trailing dot, punycode: dns_name.h), so the proxy and
 * the kernel agree on what a name is. The blocklist (blocklist_parse.h
 * formats; an entry blocks the name and every name below it) is checked on
 * every path and in every mode. Learn mode turns "not on the allowlist" into
 * an allow that the proxy records; strict mode denies.
 */
#ifndef KARS_EGRESS_POLICY_H
#define KARS_EGRESS_POLICY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns_name.h"
#include "err.h"

enum kars_egress_mode { KARS_EGRESS_STRICT = 0, KARS_EGRESS_LEARN };

struct kars_egress_allow {
	char name[KARS_DNS_NAME_BUF]; /* normalised, without "*." */
	bool wildcard;
	uint16_t port_lo, port_hi;
};

struct kars_egress_policy {
	enum kars_egress_mode mode;
	struct kars_egress_allow *allow;
	size_t nallow;
	char **blocked; /* normalised names, sorted */
	size_t nblocked;
};

struct kars_egress_decision {
	bool allow;
	bool learn;	    /* allowed only because the mode is learn */
	const char *reason; /* "allowed", or why not: "blocklisted", "bad_name", "ip_literal",
			       "not_allowed", "port_not_allowed" (also set when learn) */
	char host[KARS_DNS_NAME_BUF]; /* the normalised name (the input if bad_name) */
};

/* Parses "allow": [{"name", "port" | "ports": "lo-hi", "protocol": "tcp"}]
 * (path names the array in errors) into p->allow. */
int kars_egress_policy_parse_allow(const json_t *arr, const char *path,
				   struct kars_egress_policy *p, struct kars_err *err);
/* Reads a blocklist file into p->blocked; errors name file:line. */
int kars_egress_policy_load_blocklist(struct kars_egress_policy *p, const char *file,
				      struct kars_err *err);
/* Adds one normalised host to the allowlist (approve), exact, one port. */
int kars_egress_policy_add(struct kars_egress_policy *p, const char *host, uint16_t port);
void kars_egress_policy_free(struct kars_egress_policy *p);

/* Decides on host (as the agent wrote it: SNI, CONNECT target, Host) and
 * port. Never resolves: the addresses are checked after resolution with
 * kars_addr_refused_class(). */
void kars_egress_decide(const struct kars_egress_policy *p, const char *host, uint16_t port,
			struct kars_egress_decision *d);

#endif
