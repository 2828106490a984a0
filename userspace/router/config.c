/* config.c - see config.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "parse.h"
#include "policy.h"

static int copy_field(char *dst, size_t len, const char *src, const char *path,
		      struct kars_err *err)
{
	if (strlen(src) >= len)
		return kars_err_set(err, EINVAL, "%s: longer than %zu characters", path, len - 1);
	strcpy(dst, src);
	return 0;
}

static int parse_listen(const char *s, struct kars_router_config *c, struct kars_err *err)
{
	const char *colon = strrchr(s, ':');

	if (!colon || colon == s || (size_t)(colon - s) >= sizeof(c->listen_addr))
		return kars_err_set(err, EINVAL, "listen: \"%s\" is not ADDRESS:PORT", s);
	memcpy(c->listen_addr, s, (size_t)(colon - s));
	c->listen_addr[colon - s] = '\0';
	return kars_parse_port(colon + 1, &c->listen_port, "listen", err);
}

static int parse_upstream(const json_t *root, struct kars_router_config *c, struct kars_err *err)
{
	static const char *const keys[] = {
	    "kind",   "baseUrl", "apiKeyFile", "auth", "connectTimeoutMs", "idleTimeoutSeconds",
	    "caFile", NULL};
	const char *kind = "openai", *base = NULL, *key_file = NULL, *ca_file = "";
	const json_t *auth;
	uint64_t connect_ms = 10000, idle_s = 120;
	size_t n;
	int ret;
	const json_t *up = kars_json_get_object(root, "", "upstream", true, &ret, err);

	if (!up)
		return ret;
	ret = kars_json_only_keys(up, "upstream", keys, err);
	if (!ret)
		ret = kars_json_get_string(up, "upstream", "kind", false, &kind, err);
	if (!ret)
		ret = kars_json_get_string(up, "upstream", "baseUrl", true, &base, err);
	if (!ret)
		ret = kars_json_get_string(up, "upstream", "apiKeyFile", false, &key_file, err);
	if (!ret)
		ret = kars_json_get_string(up, "upstream", "caFile", false, &ca_file, err);
	if (!ret)
		ret = copy_field(c->ca_file, sizeof(c->ca_file), ca_file, "upstream.caFile", err);
	if (!ret)
		ret = kars_json_get_uint(up, "upstream", "connectTimeoutMs", false, 1, 600000,
					 &connect_ms, err);
	if (!ret)
		ret = kars_json_get_uint(up, "upstream", "idleTimeoutSeconds", false, 1, 86400,
					 &idle_s, err);
	if (ret)
		return ret;
	if (strcmp(kind, "openai") == 0)
		c->kind = KARS_UPSTREAM_OPENAI;
	else if (strcmp(kind, "azure") == 0)
		c->kind = KARS_UPSTREAM_AZURE;
	else
		return kars_err_set(err, EINVAL,
				    "upstream.kind: Unsupported value \"%s\": supported values: "
				    "\"openai\", \"azure\"",
				    kind);
	if (strncmp(base, "https://", 8) && strncmp(base, "http://", 7))
		return kars_err_set(err, EINVAL,
				    "upstream.baseUrl: \"%s\" must start with https:// or http://",
				    base);
	if (strpbrk(base, " \t\r\n?#"))
		return kars_err_set(
		    err, EINVAL,
		    "upstream.baseUrl: must not contain spaces, a query or a fragment");
	ret = copy_field(c->base_url, sizeof(c->base_url), base, "upstream.baseUrl", err);
	if (ret)
		return ret;
	n = strlen(c->base_url);
	while (n && c->base_url[n - 1] == '/')
		c->base_url[--n] = '\0';
	c->connect_timeout_ms = (long)connect_ms;
	c->idle_timeout_s = (long)idle_s;
	auth = kars_json_get_object(up, "upstream", "auth", false, &ret, err);
	/* One credential: the key file shorthand or an auth object. */
	if (!ret && auth && key_file)
		ret = kars_err_set(err, EINVAL,
				   "upstream.auth: Forbidden: apiKeyFile and auth are mutually "
				   "exclusive");
	else if (!ret && auth)
		ret = kars_credential_config_parse(auth, "upstream.auth", &c->auth, c->agent_uid,
						   err);
	else if (!ret && key_file)
		ret = kars_credential_config_api_key_file(key_file, "upstream.apiKeyFile",
							  c->agent_uid, &c->auth, err);
	else if (!ret)
		ret = kars_err_set(err, EINVAL,
				   "upstream.apiKeyFile: Required value: the upstream needs a "
				   "credential (apiKeyFile or auth)");
	return ret;
}

static int parse_policy(const json_t *root, struct kars_router_config *c, struct kars_err *err)
{
	static const char *const keys[] = {"file", "pollMs", NULL};
	const char *file = NULL;
	uint64_t poll_ms = 5000;
	int ret;
	const json_t *p = kars_json_get_object(root, "", "policy", true, &ret, err);

	if (!p)
		return ret;
	ret = kars_json_only_keys(p, "policy", keys, err);
	if (!ret)
		ret = kars_json_get_string(p, "policy", "file", true, &file, err);
	if (!ret)
		ret = kars_json_get_uint(p, "policy", "pollMs", false, 100, 3600000, &poll_ms, err);
	if (!ret)
		ret = copy_field(c->policy_file, sizeof(c->policy_file), file, "policy.file", err);
	c->policy_poll_ms = (long)poll_ms;
	return ret;
}

static int parse_budget(const json_t *root, struct kars_router_config *c, struct kars_err *err)
{
	static const char *const keys[] = {"file", "persistIntervalMs", NULL};
	const char *file = NULL;
	uint64_t interval = 1000;
	int ret;
	const json_t *b = kars_json_get_object(root, "", "budget", true, &ret, err);

	if (!b)
		return ret;
	ret = kars_json_only_keys(b, "budget", keys, err);
	if (!ret)
		ret = kars_json_get_string(b, "budget", "file", true, &file, err);
	if (!ret)
		ret = kars_json_get_uint(b, "budget", "persistIntervalMs", false, 10, 60000,
					 &interval, err);
	if (!ret)
		ret = copy_field(c->budget_file, sizeof(c->budget_file), file, "budget.file", err);
	c->budget_persist_ms = (long)interval;
	return ret;
}

static int parse_audit(const json_t *root, struct kars_router_config *c, struct kars_err *err)
{
	static const char *const keys[] = {"file", "keyFile", "flushIntervalMs", "checkpointEvery",
					   NULL};
	const char *file = NULL, *key = NULL;
	uint64_t flush_ms = 10, every = 1024;
	int ret;
	const json_t *a = kars_json_get_object(root, "", "audit", true, &ret, err);

	if (!a)
		return ret;
	ret = kars_json_only_keys(a, "audit", keys, err);
	if (!ret)
		ret = kars_json_get_string(a, "audit", "file", true, &file, err);
	if (!ret)
		ret = kars_json_get_string(a, "audit", "keyFile", true, &key, err);
	if (!ret)
		ret = kars_json_get_uint(a, "audit", "flushIntervalMs", false, 1, 10000, &flush_ms,
					 err);
	if (!ret)
		ret = kars_json_get_uint(a, "audit", "checkpointEvery", false, 1, 1u << 20, &every,
					 err);
	if (!ret)
		ret = copy_field(c->audit_file, sizeof(c->audit_file), file, "audit.file", err);
	if (!ret)
		ret = copy_field(c->audit_key_file, sizeof(c->audit_key_file), key, "audit.keyFile",
				 err);
	c->audit_flush_ms = (long)flush_ms;
	c->checkpoint_every = (uint32_t)every;
	return ret;
}

/* control.allowedUids: who may call /kars/v1/ (default root only). The
 * agent's UID can never be one of them, whatever the file says. */
static int parse_control(const json_t *root, struct kars_router_config *c, struct kars_err *err)
{
	static const char *const keys[] = {"allowedUids", NULL};
	const json_t *ctl, *uids;
	char path[64];
	int ret;

	c->control_uids[0] = 0;
	c->n_control_uids = 1;
	ctl = kars_json_get_object(root, "", "control", false, &ret, err);
	if (!ctl)
		return ret;
	ret = kars_json_only_keys(ctl, "control", keys, err);
	uids = ret ? NULL : kars_json_get_array(ctl, "control", "allowedUids", false, &ret, err);
	if (!uids)
		return ret;
	if (json_array_size(uids) > sizeof(c->control_uids) / sizeof(c->control_uids[0]))
		return kars_err_set(err, EINVAL, "control.allowedUids: at most %zu entries",
				    sizeof(c->control_uids) / sizeof(c->control_uids[0]));
	c->n_control_uids = 0;
	for (size_t i = 0; i < json_array_size(uids); i++) {
		const json_t *v = json_array_get(uids, i);

		kars_json_path_index(path, sizeof(path), "control.allowedUids", i);
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) >= UINT32_MAX)
			return kars_err_set(err, EINVAL, "%s: expected a UID", path);
		if ((uid_t)json_integer_value(v) == c->agent_uid)
			return kars_err_set(err, EINVAL,
					    "%s: Forbidden: %u is agentUid; the agent may never "
					    "use the control endpoints",
					    path, (unsigned)c->agent_uid);
		c->control_uids[c->n_control_uids++] = (uid_t)json_integer_value(v);
	}
	return 0;
}

int kars_router_config_load(const char *path, struct kars_router_config *out, struct kars_err *err)
{
	static const char *const keys[] = {
	    "sandbox", "listen",  "agentUid",	"upstream",	  "policy",	 "budget",
	    "audit",   "control", "governance", "drainTimeoutMs", "egressProxy", NULL};
	const char *sandbox = NULL, *listen = "127.0.0.1:8443";
	uint64_t agent_uid, drain_ms = 30000;
	json_error_t jerr;
	json_t *root;
	int ret;

	memset(out, 0, sizeof(*out));
	root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return kars_err_set(err, EINVAL, "%s: line %d, column %d: %s", path, jerr.line,
				    jerr.column, jerr.text);
	ret = kars_json_only_keys(root, "", keys, err);
	if (!ret)
		ret = kars_json_get_string(root, "", "sandbox", true, &sandbox, err);
	if (!ret)
		ret = kars_sandbox_name_check(sandbox, "sandbox", err);
	if (!ret)
		ret = copy_field(out->sandbox, sizeof(out->sandbox), sandbox, "sandbox", err);
	if (!ret)
		ret = kars_json_get_string(root, "", "listen", false, &listen, err);
	if (!ret)
		ret = parse_listen(listen, out, err);
	if (!ret)
		ret = kars_json_get_uint(root, "", "agentUid", true, 0, UINT32_MAX - 1, &agent_uid,
					 err);
	if (!ret)
		out->agent_uid = (uid_t)agent_uid;
	if (!ret && out->agent_uid == 0)
		ret = kars_err_set(err, EINVAL,
				   "agentUid: Invalid value: 0: the agent must not run as root");
	if (!ret)
		ret = kars_json_get_uint(root, "", "drainTimeoutMs", false, 0, 3600000, &drain_ms,
					 err);
	if (!ret)
		out->drain_timeout_ms = (long)drain_ms;
	if (!ret)
		ret = parse_upstream(root, out, err);
	if (!ret)
		ret = parse_policy(root, out, err);
	if (!ret)
		ret = parse_budget(root, out, err);
	if (!ret)
		ret = parse_audit(root, out, err);
	if (!ret)
		ret = parse_control(root, out, err);
	if (!ret)
		ret = kars_router_gov_config_parse(root, out, err);
	if (!ret)
		ret = kars_egress_config_parse(root, &out->egress, err);
	json_decref(root);
	return ret;
}
