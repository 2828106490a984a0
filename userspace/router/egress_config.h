/* egress_config.h - the "egressProxy" object of kars-router's config.
 *
 *   "egressProxy": {"listen": ["127.0.0.1:8444", "[::1]:8444"],
 *                   "mode": "strict",
 *                   "allow": [{"name": "api.example.com", "port": 443},
 *                             {"name": "*.example.com", "ports": "443-444"}],
 *                   "blocklistFile": "/etc/kars/blocklist.txt",
 *                   "resolver": "10.96.0.10:53",
 *                   "karsdSocket": "/run/kars/karsd.sock",
 *                   "maxTunnels": 256, "connectTimeoutMs": 10000,
 *                   "idleTimeoutSeconds": 300, "maxLifetimeSeconds": 3600,
 *                   "learnMax": 1024}
 *
 * Absent: the router runs no egress proxy (a redirected connection finds
 * nothing listening and fails). docs/egress-proxy.md.
 */
#ifndef KARS_EGRESS_CONFIG_H
#define KARS_EGRESS_CONFIG_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "egress_policy.h"
#include "err.h"

#define KARS_EGRESS_MAX_LISTEN 4

struct kars_egress_config {
	bool enabled;
	struct sockaddr_storage listen[KARS_EGRESS_MAX_LISTEN];
	socklen_t listen_len[KARS_EGRESS_MAX_LISTEN];
	char listen_text[KARS_EGRESS_MAX_LISTEN][64];
	unsigned n_listen;
	struct kars_egress_policy policy; /* mode, allow, blocklist */
	char resolver[64];		  /* "ADDR[:PORT]"; "" = /etc/resolv.conf */
	char karsd_socket[108];		  /* where orig_dst is asked */
	uint32_t max_tunnels;
	long connect_timeout_ms;
	long idle_timeout_s;
	long max_lifetime_s;
	uint32_t learn_max;
};

struct json_t;
/* Reads root's optional "egressProxy" into c (c->enabled when present). */
int kars_egress_config_parse(const struct json_t *root, struct kars_egress_config *c,
			     struct kars_err *err);

/* "127.0.0.1:8444" or "[::1]:8444" into a socket address. */
int kars_egress_parse_hostport(const char *s, struct sockaddr_storage *ss, socklen_t *len,
			       const char *path, struct kars_err *err);

#endif
