/* policy.h - a sandbox's data-plane policy as karsd receives it.
 *
 * The "apply" request of the control API is parsed into this struct in full
 * before any map is touched, so a malformed request is refused with an error
 * naming the field and the policy in force stays as it was.
 * docs/karsd-api.md describes the JSON.
 */
#ifndef KARS_POLICY_H
#define KARS_POLICY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
#include "err.h"
#include "kars_dataplane.h"
#include "kars_dns.h"
#include "names.h"

#define KARS_MAX_RULES_PER_SANDBOX 200000
#define KARS_MAX_CIDRS_PER_SANDBOX 1024

struct kars_role_spec {
	bool present;
	char cgroup[4096]; /* path under the cgroup v2 mount, or absolute */
	uint32_t uid;	   /* KARS_UID_ANY when not given */
};

struct kars_exact_rule {
	struct kars_addr addr;
	uint16_t port;
	uint8_t proto;
};

struct kars_cidr_rule {
	struct kars_addr addr;
	uint8_t prefix128;
	uint8_t proto;
	uint16_t port_lo;
	uint16_t port_hi;
};

/* One entry of "fqdns": a name the router may reach once the sandbox
 * resolver has answered for it (docs/dns.md). */
struct kars_fqdn_spec {
	char name[KARS_DNS_MAX_TEXT + 1]; /* normalised, without the "*." */
	bool wildcard;			  /* "*.name": any depth below name, not name */
	uint8_t proto;
	uint16_t port_lo, port_hi;
};

struct kars_policy {
	char sandbox[KARS_SANDBOX_NAME_MAX + 1];
	uint8_t mode;
	struct kars_role_spec agent;
	struct kars_role_spec router;
	uint16_t router_port;
	uint16_t proxy_port;
	bool has_resolver4, has_resolver6;
	struct kars_addr resolver4, resolver6;
	uint16_t resolver_port;
	uint32_t learn_max;
	uint32_t dns_max_name_len; /* "dns": tunnelling caps, 0 = none (docs/dns.md) */
	uint32_t dns_max_qps;
	struct kars_exact_rule *exact;
	size_t n_exact;
	struct kars_cidr_rule *cidr;
	size_t n_cidr;
	struct kars_fqdn_spec *fqdns; /* "fqdns", "fqdnTtl" (fqdn_policy.c) */
	size_t n_fqdns;
	uint32_t fqdn_min_ttl, fqdn_max_ttl, fqdn_grace; /* seconds */
	uint32_t fqdn_max_entries;			 /* "fqdnMaxEntries": the quota */
};

/* Parses an "apply" request object. On error returns -errno, fills err with
 * the field path, and leaves *out empty (nothing to free). */
int kars_policy_parse(const json_t *req, struct kars_policy *out, struct kars_err *err);
void kars_policy_free(struct kars_policy *p);
/* Parses "fqdns", "fqdnTtl" and "fqdnMaxEntries" into p (fqdn_policy.c). */
int kars_fqdn_policy_parse(const json_t *req, struct kars_policy *p, struct kars_err *err);
/* "protocol" of obj (default tcp), and a "443" or "443-444" port range. */
int kars_policy_parse_proto(const json_t *obj, const char *path, uint8_t *out,
			    struct kars_err *err);
int kars_policy_parse_ports(const char *s, uint16_t *lo, uint16_t *hi, const char *path,
			    struct kars_err *err);

const char *kars_mode_name(uint8_t mode);
const char *kars_proto_name(uint8_t proto);
const char *kars_verdict_name(uint8_t verdict);
const char *kars_reason_name(uint8_t reason);
const char *kars_role_name(uint8_t role);
const char *kars_hook_name(uint8_t hook);

#endif
