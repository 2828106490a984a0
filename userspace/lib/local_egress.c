/* local_egress.c - the router's egressProxy object from karsd's egress
 * request (local_egress.h). One source for both: a name karsd pins is the
 * name the proxy allows. */
#include "local_egress.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int add_allow(json_t *allow, const json_t *f, size_t i, struct kars_err *err)
{
	const char *name = json_string_value(json_object_get(f, "name"));
	const char *proto = json_string_value(json_object_get(f, "protocol"));
	json_t *port = json_object_get(f, "port"), *ports = json_object_get(f, "ports"), *e;

	if (proto && strcmp(proto, "tcp"))
		return 0; /* the proxy carries TCP only; karsd keeps the rest */
	if (!name || (!json_is_integer(port) && !json_is_string(ports)))
		return kars_err_set(err, EINVAL, "egress.fqdns[%zu]: needs name and port", i);
	e = json_pack("{s:s}", "name", name);
	if (!e || json_object_set(e, port ? "port" : "ports", port ? port : ports) ||
	    json_array_append_new(allow, e))
		return kars_err_set(err, ENOMEM, "egressProxy: out of memory");
	return 0;
}

int kars_local_egress_proxy(const json_t *egress, unsigned proxy_port, bool ipv6,
			    const char *resolver4, const char *karsd_socket, json_t **out,
			    struct kars_err *err)
{
	const char *mode = json_string_value(json_object_get(egress, "mode"));
	const json_t *res = json_object_get(egress, "resolver"), *f;
	const char *r4 = res ? json_string_value(json_object_get(res, "ipv4")) : resolver4;
	const char *r6 = json_string_value(json_object_get(res, "ipv6"));
	json_int_t rport = json_integer_value(json_object_get(res, "port")) ?: 53;
	char v4[32], v6[32], resolver[80];
	json_t *o, *allow;
	size_t i;
	int ret = 0;

	*out = NULL;
	if (!proxy_port || proxy_port > 65535)
		return kars_err_set(err, EINVAL, "egressProxy: proxy port %u out of range",
				    proxy_port);
	if (mode && strcmp(mode, "strict") && strcmp(mode, "learn"))
		return kars_err_set(err, EINVAL, "egress.mode: \"%s\" is not strict or learn",
				    mode);
	snprintf(v4, sizeof(v4), "127.0.0.1:%u", proxy_port);
	snprintf(v6, sizeof(v6), "[::1]:%u", proxy_port);
	allow = json_array();
	o = json_pack("{s:[s],s:s,s:o}", "listen", v4, "mode", mode ?: "strict", "allow", allow);
	if (!o)
		return kars_err_set(err, ENOMEM, "egressProxy: out of memory");
	if (ipv6)
		json_array_append_new(json_object_get(o, "listen"), json_string(v6));
	json_array_foreach(json_object_get(egress, "fqdns"), i, f) if (!ret) ret =
	    add_allow(allow, f, i, err);
	if (!ret && (r4 || r6)) {
		snprintf(resolver, sizeof(resolver), r4 ? "%s:%lld" : "[%s]:%lld", r4 ?: r6,
			 (long long)rport);
		json_object_set_new(o, "resolver", json_string(resolver));
	}
	if (!ret && karsd_socket)
		json_object_set_new(o, "karsdSocket", json_string(karsd_socket));
	if (ret)
		json_decref(o);
	else
		*out = o;
	return ret;
}
