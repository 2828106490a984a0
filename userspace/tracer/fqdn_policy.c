/* fqdn_policy.c - the "fqdns", "fqdnTtl" and "fqdnMaxEntries" fields of an
 * apply request.
 *
 * "fqdns": [{"name": "api.example.com", "port": 443, "protocol": "tcp"},
 *           {"name": "*.example.com", "ports": "443-444"}]
 * "fqdnTtl": {"minSeconds": 60, "maxSeconds": 86400, "graceSeconds": 30}
 * "fqdnMaxEntries": 4096 (learned addresses the sandbox may hold at once)
 *
 * Names are normalised as the blocklist's are (lower case, no trailing dot,
 * punycode); "*." in front, and only there, makes a wildcard. Answers are
 * learned only from the sandbox resolver, so fqdns need one, and a router.
 * docs/karsd-api.md, docs/dns.md.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "dns_name.h"
#include "json.h"
#include "kars_fqdn.h"
#include "policy.h"

static int parse_name(const char *in, struct kars_fqdn_spec *f, const char *path,
		      struct kars_err *err)
{
	char norm[KARS_DNS_NAME_BUF];
	struct kars_err nerr = {};

	f->wildcard = strncmp(in, "*.", 2) == 0;
	if (f->wildcard)
		in += 2;
	if (strchr(in, '*'))
		return kars_err_set(err, EINVAL,
				    "%s: a wildcard is allowed only as a leading \"*.\" "
				    "(\"*.example.com\")",
				    path);
	if (kars_dns_name_normalize(in, strlen(in), norm, &nerr))
		return kars_err_set(err, EINVAL, "%s: %s", path, nerr.msg);
	strcpy(f->name, norm);
	return 0;
}

static int parse_fqdn(const json_t *obj, const char *path, struct kars_fqdn_spec *f,
		      struct kars_err *err)
{
	static const char *const keys[] = {"name", "port", "ports", "protocol", NULL};
	const char *name = NULL, *ports = NULL;
	uint64_t port = 0;
	char where[256];
	int ret;

	if (!json_is_object(obj))
		return kars_err_set(err, EINVAL, "%s: expected an object", path);
	ret = kars_json_only_keys(obj, path, keys, err);
	if (!ret)
		ret = kars_json_get_string(obj, path, "name", true, &name, err);
	if (!ret)
		ret = kars_json_get_uint(obj, path, "port", false, 1, 65535, &port, err);
	if (!ret)
		ret = kars_json_get_string(obj, path, "ports", false, &ports, err);
	if (!ret)
		ret = kars_policy_parse_proto(obj, path, &f->proto, err);
	if (!ret)
		ret = parse_name(name, f, kars_json_path(where, sizeof(where), path, "name"), err);
	if (ret)
		return ret;
	if (!port == !ports)
		return kars_err_set(err, EINVAL, "%s: exactly one of port, ports is required",
				    path);
	if (ports)
		return kars_policy_parse_ports(ports, &f->port_lo, &f->port_hi,
					       kars_json_path(where, sizeof(where), path, "ports"),
					       err);
	f->port_lo = f->port_hi = (uint16_t)port;
	return 0;
}

static int parse_ttl(const json_t *req, struct kars_policy *p, struct kars_err *err)
{
	static const char *const keys[] = {"minSeconds", "maxSeconds", "graceSeconds", NULL};
	uint64_t min = KARS_FQDN_DEFAULT_MIN_TTL, max = KARS_FQDN_DEFAULT_MAX_TTL;
	uint64_t grace = KARS_FQDN_DEFAULT_GRACE;
	int ret = 0;
	const json_t *obj = kars_json_get_object(req, "", "fqdnTtl", false, &ret, err);

	if (!ret && obj)
		ret = kars_json_only_keys(obj, "fqdnTtl", keys, err);
	if (!ret && obj)
		ret = kars_json_get_uint(obj, "fqdnTtl", "minSeconds", false, 0, 86400, &min, err);
	if (!ret && obj)
		ret = kars_json_get_uint(obj, "fqdnTtl", "maxSeconds", false, 1, 604800, &max, err);
	if (!ret && obj)
		ret =
		    kars_json_get_uint(obj, "fqdnTtl", "graceSeconds", false, 0, 3600, &grace, err);
	if (!ret && min > max)
		ret = kars_err_set(err, EINVAL, "fqdnTtl.maxSeconds: %llu is below minSeconds %llu",
				   (unsigned long long)max, (unsigned long long)min);
	p->fqdn_min_ttl = (uint32_t)min;
	p->fqdn_max_ttl = (uint32_t)max;
	p->fqdn_grace = (uint32_t)grace;
	return ret;
}

int kars_fqdn_policy_parse(const json_t *req, struct kars_policy *p, struct kars_err *err)
{
	char where[64];
	size_t n;
	int ret = 0;
	const json_t *arr = kars_json_get_array(req, "", "fqdns", false, &ret, err);

	if (ret)
		return ret;
	ret = parse_ttl(req, p, err);
	if (!ret) {
		uint64_t max = KARS_FQDN_DEFAULT_MAX_ENTRIES;

		ret = kars_json_get_uint(req, "", "fqdnMaxEntries", false, 1, KARS_FQDN_MAX_ENTRIES,
					 &max, err);
		p->fqdn_max_entries = (uint32_t)max;
	}
	if (ret || !arr)
		return ret;
	n = json_array_size(arr);
	if (n > KARS_FQDN_MAX_RULES_PER_SANDBOX)
		return kars_err_set(err, E2BIG, "fqdns: %zu names, at most %d", n,
				    KARS_FQDN_MAX_RULES_PER_SANDBOX);
	if (n && !p->router.present)
		return kars_err_set(
		    err, EINVAL, "fqdns: need a router role (they allow the router's connections)");
	if (n && !p->has_resolver4 && !p->has_resolver6)
		return kars_err_set(err, EINVAL,
				    "fqdns: need resolver.ipv4 or resolver.ipv6 (answers are "
				    "learned only from the sandbox resolver)");
	p->fqdns = calloc(n ? n : 1, sizeof(*p->fqdns));
	if (!p->fqdns)
		return kars_err_set(err, ENOMEM, "fqdns: out of memory");
	for (size_t i = 0; i < n; i++) {
		kars_json_path_index(where, sizeof(where), "fqdns", i);
		ret = parse_fqdn(json_array_get(arr, i), where, &p->fqdns[i], err);
		if (ret)
			return ret;
		p->n_fqdns++;
	}
	return 0;
}
