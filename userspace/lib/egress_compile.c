/* egress_compile.c - see egress_compile.h. */
#include "egress_compile.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dest {
	const char *host;
	json_int_t port;
};

static int cmp_dest(const void *a, const void *b)
{
	const struct dest *x = a, *y = b;
	int c = strcmp(x->host, y->host);

	return c ? c : (x->port > y->port) - (x->port < y->port);
}

static bool is_ip(const char *host)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* Appends {host, port} entries of list (objects with "host" and "port"). */
static int collect(const json_t *list, struct dest **d, size_t *n, size_t *cap)
{
	const json_t *e;
	size_t i;

	json_array_foreach(list, i, e)
	{
		const char *host = json_string_value(json_object_get(e, "host"));

		if (!host)
			continue;
		if (*n == *cap) {
			size_t ncap = *cap ? *cap * 2 : 32;
			struct dest *grown = realloc(*d, ncap * sizeof(**d));

			if (!grown)
				return -ENOMEM;
			*d = grown;
			*cap = ncap;
		}
		(*d)[(*n)++] = (struct dest){host, json_integer_value(json_object_get(e, "port"))
						       ?: (json_int_t)443};
	}
	return 0;
}

/* {"ip": resolver, "port": port (0: 53), "protocol": "udp"}; none for NULL. */
static void add_resolver_rule(json_t *rules, const char *ip, uint16_t port)
{
	if (ip)
		json_array_append_new(rules, json_pack("{s:s,s:i,s:s}", "ip", ip, "port",
						       port ? port : 53, "protocol", "udp"));
}

int kars_egress_compile(const json_t *sandbox, const json_t *approvals,
			const struct kars_egress_opts *opts, json_t **req, struct kars_err *err)
{
	const json_t *md = json_object_get(sandbox, "metadata");
	const json_t *np = json_object_get(json_object_get(sandbox, "spec"), "networkPolicy");
	const char *ns = json_string_value(json_object_get(md, "namespace"));
	const char *name = json_string_value(json_object_get(md, "name"));
	const char *mode = json_string_value(json_object_get(np, "egressMode"));
	struct dest *d = NULL;
	size_t n = 0, cap = 0, i;
	json_t *rules, *fqdns, *a;
	char id[320];
	int ret;

	*req = NULL;
	if (!ns || !name)
		return kars_err_set(err, EINVAL, "KarsSandbox without namespace or name");
	if (json_object_get(np, "allowlistRef"))
		return kars_err_set(err, ENOTSUP,
				    "spec.networkPolicy.allowlistRef: signed allowlists are not "
				    "implemented yet; nothing compiled");
	ret = collect(json_object_get(np, "allowedEndpoints"), &d, &n, &cap);
	json_array_foreach(approvals, i, a) if (!ret) ret =
	    collect(json_object_get(json_object_get(a, "spec"), "hosts"), &d, &n, &cap);
	if (ret) {
		free(d);
		return kars_err_set(err, -ret, "egress: out of memory");
	}
	if (n)
		qsort(d, n, sizeof(*d), cmp_dest);
	rules = json_array();
	fqdns = json_array();
	for (i = 0; i < n; i++) {
		if (i && !cmp_dest(&d[i], &d[i - 1]))
			continue;
		json_array_append_new(is_ip(d[i].host) ? rules : fqdns,
				      json_pack("{s:s,s:I,s:s}", is_ip(d[i].host) ? "ip" : "name",
						d[i].host, "port", d[i].port, "protocol", "tcp"));
	}
	free(d);
	snprintf(id, sizeof(id), "%s/%s", ns, name);
	*req = json_pack("{s:s,s:s,s:s,s:o,s:o}", "op", "apply", "sandbox", id, "mode",
			 mode && !strcmp(mode, "Strict") ? "strict" : "learn", "rules", rules,
			 "fqdns", fqdns);
	if (*req && opts && (opts->resolver_ipv4 || opts->resolver_ipv6)) {
		json_t *r =
		    json_pack("{s:i}", "port", opts->resolver_port ? opts->resolver_port : 53);

		if (opts->resolver_ipv4)
			json_object_set_new(r, "ipv4", json_string(opts->resolver_ipv4));
		if (opts->resolver_ipv6)
			json_object_set_new(r, "ipv6", json_string(opts->resolver_ipv6));
		json_object_set_new(*req, "resolver", r);
		/* fqdns are learned from the router's own queries to the
		 * resolver, which it may send only by an explicit rule. */
		if (json_array_size(fqdns)) {
			add_resolver_rule(rules, opts->resolver_ipv4, opts->resolver_port);
			add_resolver_rule(rules, opts->resolver_ipv6, opts->resolver_port);
		}
	}
	if (*req && opts && (opts->dns_max_name_length || opts->dns_max_qps)) {
		json_t *dns = json_object();

		if (opts->dns_max_name_length)
			json_object_set_new(dns, "maxNameLength",
					    json_integer(opts->dns_max_name_length));
		if (opts->dns_max_qps)
			json_object_set_new(dns, "maxQueriesPerSecond",
					    json_integer(opts->dns_max_qps));
		json_object_set_new(*req, "dns", dns);
	}
	return *req ? 0 : kars_err_set(err, ENOMEM, "egress: out of memory");
}
