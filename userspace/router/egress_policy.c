/* egress_policy.c - see egress_policy.h. */
#include "egress_policy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blocklist_parse.h"
#include "json.h"
#include "parse.h"

static int parse_ports(const char *s, uint16_t *lo, uint16_t *hi, const char *path,
		       struct kars_err *err)
{
	char buf[16];
	const char *dash = strchr(s, '-');
	int ret;

	if (!dash)
		return kars_parse_port(s, lo, path, err) ?: (*hi = *lo, 0);
	if ((size_t)(dash - s) >= sizeof(buf))
		return kars_err_set(err, EINVAL, "%s: \"%s\" is not a port or lo-hi range", path,
				    s);
	memcpy(buf, s, (size_t)(dash - s));
	buf[dash - s] = '\0';
	ret = kars_parse_port(buf, lo, path, err);
	if (!ret)
		ret = kars_parse_port(dash + 1, hi, path, err);
	if (!ret && *lo > *hi)
		ret = kars_err_set(err, EINVAL, "%s: range \"%s\" ends below its start", path, s);
	return ret;
}

static int parse_entry(const json_t *obj, const char *path, struct kars_egress_allow *a,
		       struct kars_err *err)
{
	static const char *const keys[] = {"name", "port", "ports", "protocol", NULL};
	const char *name = NULL, *ports = NULL, *proto = "tcp";
	struct kars_err nerr = {0};
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
		ret = kars_json_get_string(obj, path, "protocol", false, &proto, err);
	if (ret)
		return ret;
	if (strcmp(proto, "tcp"))
		return kars_err_set(err, EINVAL, "%s.protocol: the egress proxy carries tcp only",
				    path);
	if (!port == !ports)
		return kars_err_set(err, EINVAL, "%s: exactly one of port, ports is required",
				    path);
	a->wildcard = strncmp(name, "*.", 2) == 0;
	if (a->wildcard)
		name += 2;
	if (strchr(name, '*'))
		return kars_err_set(
		    err, EINVAL, "%s.name: a wildcard is allowed only as a leading \"*.\"", path);
	if (kars_dns_name_normalize(name, strlen(name), a->name, &nerr))
		return kars_err_set(err, EINVAL, "%s.name: %s", path, nerr.msg);
	if (ports)
		return parse_ports(ports, &a->port_lo, &a->port_hi,
				   kars_json_path(where, sizeof(where), path, "ports"), err);
	a->port_lo = a->port_hi = (uint16_t)port;
	return 0;
}

int kars_egress_policy_parse_allow(const json_t *arr, const char *path,
				   struct kars_egress_policy *p, struct kars_err *err)
{
	size_t n = json_array_size(arr);
	char where[256];
	int ret;

	if (!json_is_array(arr))
		return kars_err_set(err, EINVAL, "%s: expected an array", path);
	free(p->allow);
	p->nallow = 0;
	p->allow = calloc(n ? n : 1, sizeof(*p->allow));
	if (!p->allow)
		return kars_err_set(err, ENOMEM, "%s: out of memory", path);
	for (size_t i = 0; i < n; i++) {
		ret = parse_entry(json_array_get(arr, i),
				  kars_json_path_index(where, sizeof(where), path, i), &p->allow[i],
				  err);
		if (ret)
			return ret;
		p->nallow++;
	}
	return 0;
}

int kars_egress_policy_add(struct kars_egress_policy *p, const char *host, uint16_t port)
{
	struct kars_egress_allow *n = realloc(p->allow, (p->nallow + 1) * sizeof(*n));

	if (!n)
		return -ENOMEM;
	p->allow = n;
	memset(&n[p->nallow], 0, sizeof(*n));
	snprintf(n[p->nallow].name, sizeof(n->name), "%s", host);
	n[p->nallow].port_lo = n[p->nallow].port_hi = port;
	p->nallow++;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct load {
	struct kars_egress_policy *p;
	size_t cap;
};

static int emit_blocked(void *arg, const char *name)
{
	struct load *l = arg;
	char *dup;

	if (l->p->nblocked == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		char **n = realloc(l->p->blocked, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		l->p->blocked = n;
		l->cap = cap;
	}
	dup = strdup(name);
	if (!dup)
		return -ENOMEM;
	l->p->blocked[l->p->nblocked++] = dup;
	return 0;
}

int kars_egress_policy_load_blocklist(struct kars_egress_policy *p, const char *file,
				      struct kars_err *err)
{
	struct load l = {.p = p, .cap = p->nblocked};
	struct kars_err lerr = {0};
	FILE *f = fopen(file, "r");
	char *line = NULL;
	size_t cap = 0;
	unsigned lineno = 0;
	ssize_t n;
	int ret = 0;

	if (!f)
		return kars_err_set(err, errno, "%s: %s", file, strerror(errno));
	while ((n = getline(&line, &cap, f)) >= 0) {
		lineno++;
		ret = kars_blocklist_parse_line(line, (size_t)n, emit_blocked, &l, &lerr);
		if (ret < 0) {
			ret = kars_err_set(err, -ret, "%s:%u: %s", file, lineno,
					   lerr.msg[0] ? lerr.msg : strerror(-ret));
			goto cleanup;
		}
		ret = 0;
	}
	qsort(p->blocked, p->nblocked, sizeof(*p->blocked), cmp_str);
cleanup:
	free(line);
	fclose(f);
	return ret;
}

void kars_egress_policy_free(struct kars_egress_policy *p)
{
	for (size_t i = 0; i < p->nblocked; i++)
		free(p->blocked[i]);
	free(p->blocked);
	free(p->allow);
	memset(p, 0, sizeof(*p));
}

/* Is name, or a name above it, on the blocklist? */
static bool blocked(const struct kars_egress_policy *p, const char *name)
{
	for (const char *s = name; s; s = strchr(s, '.') ? strchr(s, '.') + 1 : NULL) {
		const char *key = s;

		if (p->nblocked &&
		    bsearch(&key, p->blocked, p->nblocked, sizeof(*p->blocked), cmp_str))
			return true;
	}
	return false;
}

static bool name_matches(const struct kars_egress_allow *a, const char *name)
{
	size_t n = strlen(name), m = strlen(a->name);

	if (!a->wildcard)
		return strcmp(name, a->name) == 0;
	return n > m + 1 && name[n - m - 1] == '.' && strcmp(name + n - m, a->name) == 0;
}

/* What getaddrinfo() would read as an address: inet_pton's forms and
 * inet_aton's ("127.1", "0x7f000001", "2130706433"). */
static bool ip_literal(const char *host)
{
	struct in_addr v4;
	struct in6_addr v6;

	return inet_aton(host, &v4) || inet_pton(AF_INET6, host, &v6) == 1;
}

void kars_egress_decide(const struct kars_egress_policy *p, const char *host, uint16_t port,
			struct kars_egress_decision *d)
{
	struct kars_err err = {0};
	bool name_seen = false;

	memset(d, 0, sizeof(*d));
	if (ip_literal(host)) {
		snprintf(d->host, sizeof(d->host), "%s", host);
		d->reason = "ip_literal";
		goto not_allowed;
	}
	if (kars_dns_name_normalize(host, strlen(host), d->host, &err)) {
		snprintf(d->host, sizeof(d->host), "%s", host);
		d->reason = "bad_name";
		return;
	}
	if (blocked(p, d->host)) {
		d->reason = "blocklisted";
		return;
	}
	for (size_t i = 0; i < p->nallow; i++) {
		if (!name_matches(&p->allow[i], d->host))
			continue;
		name_seen = true;
		if (port >= p->allow[i].port_lo && port <= p->allow[i].port_hi) {
			d->allow = true;
			d->reason = "allowed";
			return;
		}
	}
	d->reason = name_seen ? "port_not_allowed" : "not_allowed";
not_allowed:
	if (p->mode == KARS_EGRESS_LEARN) {
		d->allow = true;
		d->learn = true;
	}
}
