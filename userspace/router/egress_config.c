/* egress_config.c - see egress_config.h. */
#include "egress_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "control_client.h"
#include "json.h"
#include "parse.h"

int kars_egress_parse_hostport(const char *s, struct sockaddr_storage *ss, socklen_t *len,
			       const char *path, struct kars_err *err)
{
	char host[64];
	const char *port;
	uint16_t p;
	size_t n;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		const char *end = strchr(s, ']');

		if (!end || end[1] != ':')
			return kars_err_set(err, EINVAL, "%s: \"%s\" is not [IPV6]:PORT", path, s);
		n = (size_t)(end - s - 1);
		port = end + 2;
		s++;
	} else {
		const char *colon = strrchr(s, ':');

		if (!colon || strchr(s, ':') != colon)
			return kars_err_set(err, EINVAL,
					    "%s: \"%s\" is not IPV4:PORT or [IPV6]:PORT", path, s);
		n = (size_t)(colon - s);
		port = colon + 1;
	}
	if (n == 0 || n >= sizeof(host))
		return kars_err_set(err, EINVAL, "%s: bad address", path);
	memcpy(host, s, n);
	host[n] = '\0';
	if (kars_parse_port(port, &p, path, err))
		return -EINVAL;
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(p);
		*len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(p);
		*len = sizeof(*sin6);
		return 0;
	}
	return kars_err_set(err, EINVAL, "%s: \"%s\" is not an IP address", path, host);
}

static int parse_listen(const json_t *obj, struct kars_egress_config *c, struct kars_err *err)
{
	static const char *const defaults[] = {"127.0.0.1:8444", "[::1]:8444"};
	char path[64];
	int ret = 0;
	const json_t *arr = kars_json_get_array(obj, "egressProxy", "listen", false, &ret, err);
	size_t n = arr ? json_array_size(arr) : 2;

	if (ret)
		return ret;
	if (n == 0 || n > KARS_EGRESS_MAX_LISTEN)
		return kars_err_set(err, EINVAL, "egressProxy.listen: 1 to %d addresses",
				    KARS_EGRESS_MAX_LISTEN);
	for (size_t i = 0; i < n; i++) {
		const char *s = arr ? json_string_value(json_array_get(arr, i)) : defaults[i];

		kars_json_path_index(path, sizeof(path), "egressProxy.listen", i);
		if (!s)
			return kars_err_set(err, EINVAL, "%s: expected a string", path);
		ret = kars_egress_parse_hostport(s, &c->listen[i], &c->listen_len[i], path, err);
		if (ret)
			return ret;
		snprintf(c->listen_text[i], sizeof(c->listen_text[i]), "%s", s);
	}
	c->n_listen = (unsigned)n;
	return 0;
}

int kars_egress_config_parse(const json_t *root, struct kars_egress_config *c, struct kars_err *err)
{
	static const char *const keys[] = {"listen",
					   "mode",
					   "allow",
					   "blocklistFile",
					   "resolver",
					   "maxTunnels",
					   "connectTimeoutMs",
					   "idleTimeoutSeconds",
					   "maxLifetimeSeconds",
					   "learnMax",
					   "karsdSocket",
					   NULL};
	const char *mode = "strict", *blocklist = NULL, *resolver = "",
		   *karsd = KARSD_DEFAULT_SOCKET;
	uint64_t max_tunnels = 256, connect_ms = 10000, idle_s = 300, life_s = 3600,
		 learn_max = 1024;
	const json_t *allow;
	int ret = 0;
	const json_t *obj = kars_json_get_object(root, "", "egressProxy", false, &ret, err);

	if (!obj)
		return ret;
	c->enabled = true;
	ret = kars_json_only_keys(obj, "egressProxy", keys, err);
	if (!ret)
		ret = parse_listen(obj, c, err);
	if (!ret)
		ret = kars_json_get_string(obj, "egressProxy", "mode", false, &mode, err);
	if (!ret && strcmp(mode, "strict") && strcmp(mode, "learn"))
		ret = kars_err_set(err, EINVAL,
				   "egressProxy.mode: Unsupported value \"%s\": supported values: "
				   "\"strict\", \"learn\"",
				   mode);
	c->policy.mode = strcmp(mode, "learn") == 0 ? KARS_EGRESS_LEARN : KARS_EGRESS_STRICT;
	allow = ret ? NULL : kars_json_get_array(obj, "egressProxy", "allow", false, &ret, err);
	if (!ret && allow)
		ret = kars_egress_policy_parse_allow(allow, "egressProxy.allow", &c->policy, err);
	if (!ret)
		ret = kars_json_get_string(obj, "egressProxy", "blocklistFile", false, &blocklist,
					   err);
	if (!ret && blocklist)
		ret = kars_egress_policy_load_blocklist(&c->policy, blocklist, err);
	if (!ret)
		ret = kars_json_get_string(obj, "egressProxy", "resolver", false, &resolver, err);
	if (!ret && strlen(resolver) >= sizeof(c->resolver))
		ret = kars_err_set(err, EINVAL, "egressProxy.resolver: too long");
	if (!ret)
		snprintf(c->resolver, sizeof(c->resolver), "%s", resolver);
	if (!ret)
		ret = kars_json_get_string(obj, "egressProxy", "karsdSocket", false, &karsd, err);
	if (!ret && (karsd[0] != '/' || strlen(karsd) >= sizeof(c->karsd_socket)))
		ret = kars_err_set(err, EINVAL,
				   "egressProxy.karsdSocket: an absolute path of at most %zu "
				   "characters",
				   sizeof(c->karsd_socket) - 1);
	if (!ret)
		snprintf(c->karsd_socket, sizeof(c->karsd_socket), "%s", karsd);
	if (!ret)
		ret = kars_json_get_uint(obj, "egressProxy", "maxTunnels", false, 1, 65536,
					 &max_tunnels, err);
	if (!ret)
		ret = kars_json_get_uint(obj, "egressProxy", "connectTimeoutMs", false, 1, 600000,
					 &connect_ms, err);
	if (!ret)
		ret = kars_json_get_uint(obj, "egressProxy", "idleTimeoutSeconds", false, 1, 86400,
					 &idle_s, err);
	if (!ret)
		ret = kars_json_get_uint(obj, "egressProxy", "maxLifetimeSeconds", false, 1,
					 7 * 86400, &life_s, err);
	if (!ret)
		ret = kars_json_get_uint(obj, "egressProxy", "learnMax", false, 0, 1u << 20,
					 &learn_max, err);
	c->max_tunnels = (uint32_t)max_tunnels;
	c->connect_timeout_ms = (long)connect_ms;
	c->idle_timeout_s = (long)idle_s;
	c->max_lifetime_s = (long)life_s;
	c->learn_max = (uint32_t)learn_max;
	return ret;
}
