/* config.h - kars-router's configuration file, parsed strictly.
 *
 * One JSON file (--config), written by the controller:
 *   {"sandbox": "team-a/research-bot", "listen": "127.0.0.1:8443",
 *    "agentUid": 1000,
 *    "upstream": {"kind": "openai", "baseUrl": "https://api.openai.com/v1",
 *                 "apiKeyFile": "/etc/kars/secrets/api-key",
 *                 "connectTimeoutMs": 10000, "idleTimeoutSeconds": 120}}
 * kind "azure" takes the resource endpoint as baseUrl and calls
 * {baseUrl}/openai/v1/{path} with an api-key header. The policy, budget,
 * audit and control fields are described in docs/router.md.
 */
#ifndef KARS_ROUTER_CONFIG_H
#define KARS_ROUTER_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "credentials.h"
#include "egress_config.h"
#include "err.h"
#include "gov_limits.h"

enum kars_upstream_kind {
	KARS_UPSTREAM_OPENAI = 0, /* Authorization: Bearer, {baseUrl}/{path} */
	KARS_UPSTREAM_AZURE = 1,  /* api-key, {baseUrl}/openai/v1/{path} */
};

struct kars_router_config {
	char sandbox[320];
	char listen_addr[64];
	uint16_t listen_port;
	uid_t agent_uid;
	enum kars_upstream_kind kind;
	char base_url[1024];		    /* without a trailing slash */
	struct kars_credential_config auth; /* upstream.auth or upstream.apiKeyFile */
	char ca_file[1024]; /* upstream.caFile: roots for an https upstream ("" system) */
	long connect_timeout_ms;
	long idle_timeout_s;

	char policy_file[1024];	   /* the compiled InferencePolicy */
	long policy_poll_ms;	   /* stat fallback beside inotify */
	char budget_file[1024];	   /* token usage, persisted */
	long budget_persist_ms;	   /* how often dirty usage is written */
	char audit_file[1024];	   /* the audit chain */
	char audit_key_file[1024]; /* its Ed25519 signing key */
	long audit_flush_ms;	   /* group commit interval */
	uint32_t checkpoint_every; /* records between signed checkpoints */
	long drain_timeout_ms;	   /* SIGTERM: how long in-flight requests may finish */
	uid_t control_uids[16];	   /* who may use /kars/v1/ (never agentUid) */
	size_t n_control_uids;

	/* "governance" (gov_config.c, docs/router.md): the AGT profile file the
	 * controller writes ("" = none: the default profile), its poll, the
	 * unmatched default, rate limits and monitor, the trust state file */
	char gov_profile_file[1024];
	long gov_poll_ms;
	int gov_unmatched; /* enum kars_gov_unmatched */
	struct kars_gov_limits gov_limits;
	char trust_file[1024]; /* "" = in memory only */
	uint32_t trust_agents_max, trust_reward, trust_penalty;
	double trust_decay_per_hour;

	/* "egressProxy" (egress_config.c, docs/egress-proxy.md) */
	struct kars_egress_config egress;
};

/* Reads the optional "governance" object of the config (gov_config.c). */
struct json_t;
int kars_router_gov_config_parse(const struct json_t *root, struct kars_router_config *c,
				 struct kars_err *err);

int kars_router_config_load(const char *path, struct kars_router_config *out, struct kars_err *err);

#endif
