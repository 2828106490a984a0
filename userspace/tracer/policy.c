/* policy.c - parses and checks the "apply" request. See policy.h. */
#include "policy.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "kars_dns.h"
#include "parse.h"

int kars_policy_parse_proto(const json_t *obj, const char *path, uint8_t *out, struct kars_err *err)
{
	const char *name = "tcp";
	char where[256];
	int ret = kars_json_get_string(obj, path, "protocol", false, &name, err);

	if (ret)
		return ret;
	if (strcmp(name, "tcp") == 0)
		*out = IPPROTO_TCP;
	else if (strcmp(name, "udp") == 0)
		*out = IPPROTO_UDP;
	else
		return kars_err_set(
		    err, EINVAL, "%s: Unsupported value \"%s\": supported values: \"tcp\", \"udp\"",
		    kars_json_path(where, sizeof(where), path, "protocol"), name);
	return 0;
}

static int parse_role(const json_t *req, const char *key, struct kars_role_spec *out,
		      struct kars_err *err)
{
	static const char *const keys[] = {"cgroup", "uid", NULL};
	const char *cgroup = NULL;
	uint64_t uid = KARS_UID_ANY;
	char where[256];
	int ret;
	const json_t *obj = kars_json_get_object(req, "", key, false, &ret, err);

	if (!obj)
		return ret;
	ret = kars_json_only_keys(obj, key, keys, err);
	if (!ret)
		ret = kars_json_get_string(obj, key, "cgroup", true, &cgroup, err);
	if (!ret)
		ret = kars_json_get_uint(obj, key, "uid", false, 0, KARS_UID_ANY - 1, &uid, err);
	if (ret)
		return ret;
	if (!*cgroup || strlen(cgroup) >= sizeof(out->cgroup) || strstr(cgroup, ".."))
		return kars_err_set(err, EINVAL, "%s: must be a non-empty cgroup path without '..'",
				    kars_json_path(where, sizeof(where), key, "cgroup"));
	out->present = true;
	strcpy(out->cgroup, cgroup);
	out->uid = (uint32_t)uid;
	return 0;
}

static int parse_resolver(const json_t *req, struct kars_policy *p, struct kars_err *err)
{
	static const char *const keys[] = {"ipv4", "ipv6", "port", NULL};
	const char *v4 = NULL, *v6 = NULL;
	uint64_t port = KARS_DNS_PORT;
	int ret;
	const json_t *obj = kars_json_get_object(req, "", "resolver", false, &ret, err);

	if (!obj)
		return ret;
	ret = kars_json_only_keys(obj, "resolver", keys, err);
	if (!ret)
		ret = kars_json_get_string(obj, "resolver", "ipv4", false, &v4, err);
	if (!ret)
		ret = kars_json_get_string(obj, "resolver", "ipv6", false, &v6, err);
	if (!ret)
		ret = kars_json_get_uint(obj, "resolver", "port", false, 1, 65535, &port, err);
	if (ret)
		return ret;
	if (v4) {
		ret = kars_addr_parse(v4, &p->resolver4, "resolver.ipv4", err);
		if (ret)
			return ret;
		if (!kars_addr_is_v4(&p->resolver4))
			return kars_err_set(err, EINVAL, "resolver.ipv4: \"%s\" is not IPv4", v4);
		p->has_resolver4 = true;
	}
	if (v6) {
		ret = kars_addr_parse(v6, &p->resolver6, "resolver.ipv6", err);
		if (ret)
			return ret;
		if (kars_addr_is_v4(&p->resolver6))
			return kars_err_set(err, EINVAL, "resolver.ipv6: \"%s\" is not IPv6", v6);
		p->has_resolver6 = true;
	}
	p->resolver_port = (uint16_t)port;
	return 0;
}

/* "443" or "1024-65535" */
int kars_policy_parse_ports(const char *s, uint16_t *lo, uint16_t *hi, const char *path,
			    struct kars_err *err)
{
	char buf[16];
	const char *dash = strchr(s, '-');
	int ret;

	if (!dash) {
		ret = kars_parse_port(s, lo, path, err);
		*hi = *lo;
		return ret;
	}
	if ((size_t)(dash - s) >= sizeof(buf))
		return kars_err_set(err, EINVAL, "%s: \"%s\" is not a port or port range", path, s);
	memcpy(buf, s, (size_t)(dash - s));
	buf[dash - s] = '\0';
	ret = kars_parse_port(buf, lo, path, err);
	if (!ret)
		ret = kars_parse_port(dash + 1, hi, path, err);
	if (!ret && *lo > *hi)
		return kars_err_set(err, EINVAL, "%s: range \"%s\" is reversed", path, s);
	return ret;
}

static int parse_rule(const json_t *rule, const char *path, struct kars_policy *p,
		      struct kars_err *err)
{
	static const char *const keys[] = {"ip", "cidr", "port", "ports", "protocol", NULL};
	const char *ip = NULL, *cidr = NULL, *ports = NULL;
	uint64_t port = 0;
	uint8_t proto = IPPROTO_TCP; /* set by parse_proto; gcc -O2 cannot tell */
	char where[256];
	int ret;

	ret = kars_json_only_keys(rule, path, keys, err);
	if (!ret)
		ret = kars_json_get_string(rule, path, "ip", false, &ip, err);
	if (!ret)
		ret = kars_json_get_string(rule, path, "cidr", false, &cidr, err);
	if (!ret)
		ret = kars_json_get_uint(rule, path, "port", false, 1, 65535, &port, err);
	if (!ret)
		ret = kars_json_get_string(rule, path, "ports", false, &ports, err);
	if (!ret)
		ret = kars_policy_parse_proto(rule, path, &proto, err);
	if (ret)
		return ret;
	if (!ip == !cidr)
		return kars_err_set(err, EINVAL, "%s: exactly one of ip, cidr is required", path);
	if (ip) {
		struct kars_exact_rule *r = &p->exact[p->n_exact];

		if (ports || !port)
			return kars_err_set(
			    err, EINVAL,
			    "%s: an ip rule needs one \"port\" (use cidr with \"ports\" for ranges)",
			    kars_json_path(where, sizeof(where), path, "port"));
		ret = kars_addr_parse(ip, &r->addr,
				      kars_json_path(where, sizeof(where), path, "ip"), err);
		if (ret)
			return ret;
		r->port = (uint16_t)port;
		r->proto = proto;
		p->n_exact++;
		return 0;
	}
	if (p->n_cidr >= KARS_MAX_CIDRS_PER_SANDBOX)
		return kars_err_set(err, E2BIG, "%s: more than %d cidr rules", path,
				    KARS_MAX_CIDRS_PER_SANDBOX);
	{
		struct kars_cidr_rule *r = &p->cidr[p->n_cidr];

		if (!port == !ports)
			return kars_err_set(err, EINVAL,
					    "%s: exactly one of port, ports is required", path);
		ret = kars_cidr_parse(cidr, &r->addr, &r->prefix128,
				      kars_json_path(where, sizeof(where), path, "cidr"), err);
		if (ret)
			return ret;
		if (ports) {
			ret = kars_policy_parse_ports(
			    ports, &r->port_lo, &r->port_hi,
			    kars_json_path(where, sizeof(where), path, "ports"), err);
			if (ret)
				return ret;
		} else {
			r->port_lo = r->port_hi = (uint16_t)port;
		}
		r->proto = proto;
		p->n_cidr++;
	}
	return 0;
}

static int parse_rules(const json_t *req, struct kars_policy *p, struct kars_err *err)
{
	size_t i, n;
	char where[64];
	int ret;
	const json_t *rules = kars_json_get_array(req, "", "rules", false, &ret, err);

	if (!rules)
		return ret;
	n = json_array_size(rules);
	if (n > KARS_MAX_RULES_PER_SANDBOX)
		return kars_err_set(err, E2BIG, "rules: %zu rules, at most %d", n,
				    KARS_MAX_RULES_PER_SANDBOX);
	p->exact = calloc(n ? n : 1, sizeof(*p->exact));
	p->cidr = calloc(KARS_MAX_CIDRS_PER_SANDBOX, sizeof(*p->cidr));
	if (!p->exact || !p->cidr)
		return kars_err_set(err, ENOMEM, "rules: out of memory");
	for (i = 0; i < n; i++) {
		kars_json_path_index(where, sizeof(where), "rules", i);
		ret = parse_rule(json_array_get(rules, i), where, p, err);
		if (ret)
			return ret;
	}
	return 0;
}

/* "dns": {"maxNameLength": 1-253, "maxQueriesPerSecond": 1-1000000}. */
static int parse_dns_caps(const json_t *req, struct kars_policy *p, struct kars_err *err)
{
	static const char *const keys[] = {"maxNameLength", "maxQueriesPerSecond", NULL};
	uint64_t len = 0, qps = 0;
	int ret = 0;
	const json_t *obj = kars_json_get_object(req, "", "dns", false, &ret, err);

	if (ret || !obj)
		return ret;
	ret = kars_json_only_keys(obj, "dns", keys, err);
	if (!ret)
		ret = kars_json_get_uint(obj, "dns", "maxNameLength", false, 1, KARS_DNS_MAX_TEXT,
					 &len, err);
	if (!ret)
		ret = kars_json_get_uint(obj, "dns", "maxQueriesPerSecond", false, 1, 1000000, &qps,
					 err);
	p->dns_max_name_len = (uint32_t)len;
	p->dns_max_qps = (uint32_t)qps;
	return ret;
}

int kars_policy_parse(const json_t *req, struct kars_policy *out, struct kars_err *err)
{
	static const char *const keys[] = {"op",      "sandbox",	"mode",	     "agent",
					   "router",  "routerPort",	"proxyPort", "resolver",
					   "rules",   "learnMax",	"dns",	     "fqdns",
					   "fqdnTtl", "fqdnMaxEntries", NULL};
	const char *sandbox = NULL, *mode = "strict";
	uint64_t router_port = KARS_CONTRACT_ROUTER_PORT, proxy_port = KARS_CONTRACT_PROXY_PORT;
	uint64_t learn_max = KARS_DEFAULT_LEARN_MAX;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = kars_json_only_keys(req, "", keys, err);
	if (!ret)
		ret = kars_json_get_string(req, "", "sandbox", true, &sandbox, err);
	if (!ret)
		ret = kars_sandbox_name_check(sandbox, "sandbox", err);
	if (!ret)
		ret = kars_json_get_string(req, "", "mode", false, &mode, err);
	if (!ret && strcmp(mode, "strict") && strcmp(mode, "learn"))
		ret = kars_err_set(
		    err, EINVAL,
		    "mode: Unsupported value \"%s\": supported values: \"strict\", \"learn\"",
		    mode);
	if (!ret)
		ret = parse_role(req, "agent", &out->agent, err);
	if (!ret)
		ret = parse_role(req, "router", &out->router, err);
	if (!ret && !out->agent.present && !out->router.present)
		ret = kars_err_set(err, EINVAL,
				   "agent: Required value (or router): a policy needs a cgroup");
	if (!ret && out->agent.present && out->router.present &&
	    strcmp(out->agent.cgroup, out->router.cgroup) == 0)
		ret = kars_err_set(err, EINVAL, "router.cgroup: must differ from agent.cgroup");
	if (!ret)
		ret = kars_json_get_uint(req, "", "routerPort", false, 1, 65535, &router_port, err);
	if (!ret)
		ret = kars_json_get_uint(req, "", "proxyPort", false, 1, 65535, &proxy_port, err);
	if (!ret && router_port == proxy_port)
		ret = kars_err_set(err, EINVAL, "proxyPort: must differ from routerPort");
	if (!ret)
		ret = kars_json_get_uint(req, "", "learnMax", false, 0, KARS_MAX_LEARNED,
					 &learn_max, err);
	if (!ret)
		ret = parse_resolver(req, out, err);
	if (!ret)
		ret = parse_rules(req, out, err);
	if (!ret)
		ret = parse_dns_caps(req, out, err);
	if (!ret)
		ret = kars_fqdn_policy_parse(req, out, err);
	if (ret) {
		kars_policy_free(out);
		return ret;
	}
	strcpy(out->sandbox, sandbox);
	out->mode = strcmp(mode, "learn") == 0 ? KARS_MODE_LEARN : KARS_MODE_STRICT;
	out->router_port = (uint16_t)router_port;
	out->proxy_port = (uint16_t)proxy_port;
	out->learn_max = (uint32_t)learn_max;
	if (!out->resolver_port)
		out->resolver_port = KARS_DNS_PORT;
	return 0;
}

void kars_policy_free(struct kars_policy *p)
{
	free(p->fqdns);
	free(p->exact);
	free(p->cidr);
	memset(p, 0, sizeof(*p));
}

#define NAME_OF(table, i)                                                                          \
	((i) < sizeof(table) / sizeof(table[0]) && table[i] ? table[i] : "unknown")

const char *kars_mode_name(uint8_t mode)
{
	return mode == KARS_MODE_LEARN ? "learn" : "strict";
}

const char *kars_proto_name(uint8_t proto)
{
	switch (proto) {
	case IPPROTO_TCP:
		return "tcp";
	case IPPROTO_UDP:
		return "udp";
	case IPPROTO_ICMP:
		return "icmp";
	case IPPROTO_ICMPV6:
		return "icmpv6";
	case IPPROTO_RAW:
		return "raw";
	default:
		return "other";
	}
}

const char *kars_verdict_name(uint8_t verdict)
{
	static const char *const names[] = {"allow", "rewrite", "redirect", "deny", "learn"};

	return NAME_OF(names, verdict);
}

const char *kars_reason_name(uint8_t reason)
{
	static const char *const names[] = {
	    [KARS_REASON_NONE] = "none",
	    [KARS_REASON_RULE_EXACT] = "rule_exact",
	    [KARS_REASON_RULE_CIDR] = "rule_cidr",
	    [KARS_REASON_ROUTER_PORT] = "router_port",
	    [KARS_REASON_PROXY_PORT] = "proxy_port",
	    [KARS_REASON_DNS] = "dns_resolver",
	    [KARS_REASON_HTTP_REDIRECT] = "http_redirect",
	    [KARS_REASON_NOT_ALLOWED] = "not_allowed",
	    [KARS_REASON_LOOPBACK_PORT] = "loopback_port",
	    [KARS_REASON_UID_MISMATCH] = "uid_mismatch",
	    [KARS_REASON_UNKNOWN_CGROUP] = "unknown_cgroup",
	    [KARS_REASON_NO_RESOLVER] = "no_resolver",
	    [KARS_REASON_PROTOCOL] = "protocol",
	    [KARS_REASON_FRAGMENT] = "fragment",
	    [KARS_REASON_DNS_BLOCKED] = "dns_blocked",
	    [KARS_REASON_DNS_MALFORMED] = "dns_malformed",
	    [KARS_REASON_DNS_TOO_LONG] = "dns_too_long",
	    [KARS_REASON_DNS_TOO_DEEP] = "dns_too_deep",
	    [KARS_REASON_DNS_RATE] = "dns_rate",
	    [KARS_REASON_SOCKET_FAMILY] = "socket_family",
	    [KARS_REASON_FOREIGN_SOCKET] = "foreign_socket",
	    [KARS_REASON_PROTECTED_FILE] = "protected_file",
	    [KARS_REASON_RULE_FQDN] = "rule_fqdn",
	    [KARS_REASON_FQDN_EXPIRED] = "fqdn_expired",
	    [KARS_REASON_FQDN_LEARNED] = "fqdn_learned",
	    [KARS_REASON_FQDN_QUOTA] = "fqdn_quota",
	};

	return NAME_OF(names, reason);
}

const char *kars_role_name(uint8_t role)
{
	static const char *const names[] = {"none", "agent", "router"};

	return NAME_OF(names, role);
}

const char *kars_hook_name(uint8_t hook)
{
	static const char *const names[] = {
	    [KARS_HOOK_CONNECT4] = "connect4",
	    [KARS_HOOK_CONNECT6] = "connect6",
	    [KARS_HOOK_SENDMSG4] = "sendmsg4",
	    [KARS_HOOK_SENDMSG6] = "sendmsg6",
	    [KARS_HOOK_SKB_EGRESS] = "skb_egress",
	    [KARS_HOOK_SOCK_CREATE] = "sock_create",
	    [KARS_HOOK_DNS_EGRESS] = "dns_egress",
	    [KARS_HOOK_LSM_SOCKET_CREATE] = "lsm_socket_create",
	    [KARS_HOOK_LSM_CONNECT] = "lsm_socket_connect",
	    [KARS_HOOK_LSM_SENDMSG] = "lsm_socket_sendmsg",
	    [KARS_HOOK_LSM_UNIX] = "lsm_unix",
	    [KARS_HOOK_LSM_FILE_OPEN] = "lsm_file_open",
	    [KARS_HOOK_LSM_RECVMSG] = "lsm_socket_recvmsg",
	    [KARS_HOOK_LSM_FILE_LINK] = "lsm_file_link",
	    [KARS_HOOK_DNS_INGRESS] = "dns_ingress",
	};

	return NAME_OF(names, hook);
}
