/* control.c - the router's control endpoints, under /kars/v1/.
 *
 *   GET  /kars/v1/policy-status  the policy in force (digest, source, load
 *                                time, last reload error), model override,
 *                                budget usage: how the controller confirms
 *                                enforcement
 *   PUT  /kars/v1/model          {"model": "name"} use this model instead of
 *                                the policy's primary (it must be allowed by
 *                                the policy); {"model": null} stops
 *   POST /kars/v1/budget/reset   start the day's and month's usage at zero
 *   /kars/v1/egress...           the egress proxy's (egress_control.c)
 *
 * They share the agent's port, so the caller is identified the way a unix
 * socket's SO_PEERCRED would: the kernel's sock_diag reports the UID owning
 * the other end of the TCP connection. The agent's UID is refused on every
 * control endpoint whatever its address; others must be listed in
 * control.allowedUids (default: root). A caller that cannot be identified
 * (not on this host, sock_diag failing) is refused. Mutations are audited,
 * refused or not.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "egress_proxy.h"
#include "http_server.h"
#include "json.h"
#include "log.h"
#include "router.h"
#include "sock_diag.h"

void kars_router_reply_json(struct kars_hreq *req, int status, json_t *doc)
{
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;

	if (!text)
		kars_router_send_error(req, 500, "server_error", "out_of_memory", "out of memory");
	else
		kars_router_reply_line(req, status, "application/json", text);
	json_decref(doc);
}

static void audit_control(struct kars_router *r, uint32_t uid, const char *action,
			  const char *decision, const char *reason, const char *model)
{
	struct kars_audit_record rec = {0};
	char principal[32];

	snprintf(principal, sizeof(principal), "uid:%u", uid);
	rec.sandbox = r->cfg.sandbox;
	rec.principal = principal;
	rec.action = action;
	rec.decision = decision;
	rec.reason = reason;
	rec.model = model;
	kars_router_audit(r, &rec);
}

void kars_router_audit_control(struct kars_router *r, uint32_t uid, const char *action,
			       const char *decision, const char *reason)
{
	audit_control(r, uid, action, decision, reason, NULL);
}

int kars_router_authorise(struct kars_router *r, struct kars_hreq *req, const char *action,
			  bool mutation, bool agent_ok, uint32_t *uid)
{
	int fd = kars_hreq_fd(req);
	struct kars_sock_peer peer;
	struct kars_err err = {0};
	char reason[256];

	if (fd < 0 || kars_sock_peer_lookup(fd, &peer, &err)) {
		log_warn("control %s: caller not identified: %s", action, err.msg);
		kars_router_send_error(req, 403, "permission_denied", "caller_unknown",
				       "the caller could not be identified: %s",
				       err.msg[0] ? err.msg : "no connection");
		return -1;
	}
	*uid = peer.uid;
	if (peer.uid == r->cfg.agent_uid && agent_ok)
		return 0;
	if (peer.uid == r->cfg.agent_uid) {
		snprintf(reason, sizeof(reason), "uid %u is the sandbox's agent", peer.uid);
	} else {
		for (size_t i = 0; i < r->cfg.n_control_uids; i++)
			if (r->cfg.control_uids[i] == peer.uid)
				return 0;
		snprintf(reason, sizeof(reason), "uid %u is not in control.allowedUids", peer.uid);
	}
	log_warn("control %s refused: %s", action, reason);
	if (mutation)
		audit_control(r, peer.uid, action, "deny", reason, NULL);
	kars_router_send_error(req, 403, "permission_denied", "control_forbidden", "%s", reason);
	return -1;
}

static void policy_status(struct kars_router *r, struct kars_hreq *req)
{
	const struct kars_inference_policy *p = r->policy;
	int loaded = 0;
	json_t *entries = kars_router_policy_entries(r, &loaded);

	kars_router_reply_json(
	    req, 200,
	    json_pack("{s:i,s:s,s:i,s:o,s:s?,s:{s:s,s:I,s:I,s:s,s:I,s:I}}", "schemaVersion", 1,
		      "sandbox", r->cfg.sandbox, "count", loaded, "entries", entries,
		      "modelOverride", r->model_override[0] ? r->model_override : NULL, "budget",
		      "day", r->budget.day, "dailyUsed", (json_int_t)r->budget.daily_used,
		      "dailyLimit", (json_int_t)(p ? p->daily_tokens : 0), "month", r->budget.month,
		      "monthlyUsed", (json_int_t)r->budget.monthly_used, "monthlyLimit",
		      (json_int_t)(p ? p->monthly_tokens : 0)));
}

static void set_model(struct kars_router *r, struct kars_hreq *req, uint32_t uid)
{
	static const char *const keys[] = {"model", NULL};
	size_t len;
	const char *in = kars_hreq_body(req, &len);
	struct kars_err err = {0};
	const json_t *model;
	const char *name;
	json_t *body;

	body = kars_json_parse(in, len, &err);
	if (!body || !json_is_object(body) || kars_json_only_keys(body, "", keys, &err) ||
	    !(model = json_object_get(body, "model")) ||
	    (!json_is_null(model) && !json_is_string(model))) {
		kars_router_send_error(req, 400, "invalid_request_error", "invalid_value",
				       "expected {\"model\": \"name\"} or {\"model\": null}%s%s",
				       err.msg[0] ? ": " : "", err.msg);
		json_decref(body);
		return;
	}
	name = json_string_value(model);
	if (name && (!r->policy || !kars_inference_policy_allows_model(r->policy, name) ||
		     strlen(name) >= sizeof(r->model_override))) {
		char reason[512];

		snprintf(reason, sizeof(reason),
			 "model \"%.64s\" is not allowed by the InferencePolicy in force", name);
		audit_control(r, uid, "control.model", "deny", reason, name);
		kars_router_send_error(req, 403, "policy_violation", "model_not_allowed", "%s",
				       reason);
		json_decref(body);
		return;
	}
	snprintf(r->model_override, sizeof(r->model_override), "%s", name ? name : "");
	log_info("model override %s by uid %u", name ? name : "cleared", uid);
	audit_control(r, uid, "control.model", "allow",
		      name ? "model override set" : "model override cleared", name);
	kars_router_reply_json(req, 200, json_pack("{s:s?}", "modelOverride", name));
	json_decref(body);
}

static void reset_budget(struct kars_router *r, struct kars_hreq *req, uint32_t uid)
{
	char reason[160];
	struct kars_err err = {0};

	snprintf(reason, sizeof(reason), "budget reset (daily was %llu, monthly %llu)",
		 (unsigned long long)r->budget.daily_used,
		 (unsigned long long)r->budget.monthly_used);
	kars_budget_reset(&r->budget);
	if (kars_budget_persist(&r->budget, &err))
		log_error("%s", err.msg);
	log_info("%s by uid %u", reason, uid);
	audit_control(r, uid, "control.budget.reset", "allow", reason, NULL);
	kars_router_reply_json(
	    req, 200,
	    json_pack("{s:I,s:I}", "dailyUsed", (json_int_t)0, "monthlyUsed", (json_int_t)0));
}

void kars_router_control(struct kars_router *r, struct kars_hreq *req, const char *path)
{
	enum kars_http_method method = kars_hreq_method(req);
	uint32_t uid;

	if (strcmp(path, "egress") == 0 || strncmp(path, "egress/", 7) == 0) {
		kars_egress_control(r, req, path);
	} else if (strcmp(path, "policy-status") == 0 && method == KARS_HTTP_GET) {
		if (kars_router_authorise(r, req, "control.policy-status", false, false, &uid) == 0)
			policy_status(r, req);
	} else if (strcmp(path, "model") == 0 && method == KARS_HTTP_PUT) {
		if (kars_router_authorise(r, req, "control.model", true, false, &uid) == 0)
			set_model(r, req, uid);
	} else if (strcmp(path, "budget/reset") == 0 && method == KARS_HTTP_POST) {
		if (kars_router_authorise(r, req, "control.budget.reset", true, false, &uid) == 0)
			reset_budget(r, req, uid);
	} else {
		kars_router_send_error(req, 404, "invalid_request_error", "unknown_url",
				       "no control endpoint %s /kars/v1/%s (served: GET "
				       "policy-status, PUT model, POST budget/reset)",
				       method == KARS_HTTP_GET	  ? "GET"
				       : method == KARS_HTTP_PUT  ? "PUT"
				       : method == KARS_HTTP_POST ? "POST"
								  : "?",
				       path);
	}
}
