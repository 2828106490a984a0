/* gov_agt.c - the router's /agt/ endpoints: ask before a tool call, trust.
 *
 *   POST /agt/evaluate  {"action": "tool.invoke:web_search",
 *                        "context": {"environment": "production"}}
 *        -> {"allowed", "decision", "matched_rule", "reason", "why",
 *            "retry_after_ms", "min_approvals"}   (200 whatever the decision)
 *   POST /agt/outcome   {"action": ..., "ok": false}  how a call ended, for
 *                       the monitor's failure streak
 *   GET  /agt/status    the profile in force, limiter and monitor counters
 *   GET  /agt/trust[?agent=ID]   every agent's score, or one
 *   POST /agt/trust     {"agent": ID, "change": "reward"|"penalty"|"set",
 *                        "score": N, "reason": "..."}
 *
 * Callers are identified by sock_diag like the /kars/v1/ endpoints
 * (control.c). The agent's UID may evaluate, report outcomes and read;
 * it may never change a trust score (AGT's "no self-updates", by UID rather
 * than by a token). Other UIDs must be in control.allowedUids. The agent is
 * the principal "agent" for the rate limits and the monitor, whatever its
 * body claims; another caller is "uid:N". Every evaluation is audited, and
 * every trust change (by the trust manager) and refused change.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "gov_gate.h"
#include "gov_limits.h"
#include "gov_trust.h"
#include "governance.h"
#include "http_server.h"
#include "json.h"
#include "log.h"

#define CONTEXT_MAX 32

static void principal_of(const struct kars_router *r, uint32_t uid, char *buf, size_t len)
{
	if (uid == r->cfg.agent_uid)
		snprintf(buf, len, "agent");
	else
		snprintf(buf, len, "uid:%u", uid);
}

/* The request body as a JSON object, or NULL after a 400. */
static json_t *body_object(struct kars_hreq *req)
{
	size_t len;
	const char *in = kars_hreq_body(req, &len);
	struct kars_err err = {0};
	json_t *body = kars_json_parse(in, len, &err);

	if (!json_is_object(body)) {
		kars_router_send_error(req, 400, "invalid_request_error", "invalid_json",
				       "the request body must be a JSON object%s%s",
				       err.msg[0] ? ": " : "", err.msg);
		json_decref(body);
		return NULL;
	}
	return body;
}

static void bad_request(struct kars_hreq *req, const struct kars_err *err)
{
	kars_router_send_error(req, 400, "invalid_request_error", "invalid_value", "%s", err->msg);
}

static void evaluate(struct kars_gov_gate *g, struct kars_hreq *req, uint32_t uid)
{
	static const char *const keys[] = {"action", "context", "agent", NULL};
	struct kars_router *r = g->r;
	struct kars_gov_kv kv[CONTEXT_MAX];
	struct kars_gov_request q = {0};
	struct kars_gov_decision d;
	struct kars_audit_record rec = {0};
	struct kars_err err = {0};
	char principal[32], reason[1024];
	const char *action = NULL, *agent = NULL, *key;
	const json_t *ctx, *v;
	size_t n = 0;
	json_t *body = body_object(req);
	int ret;

	if (!body)
		return;
	ret = kars_json_only_keys(body, "", keys, &err);
	if (!ret)
		ret = kars_json_get_string(body, "", "action", true, &action, &err);
	if (!ret)
		ret = kars_json_get_string(body, "", "agent", false, &agent, &err);
	ctx = ret ? NULL : kars_json_get_object(body, "", "context", false, &ret, &err);
	if (!ret && json_object_size(ctx) > CONTEXT_MAX)
		ret = kars_err_set(&err, EINVAL, "context: at most %d keys", CONTEXT_MAX);
	json_object_foreach((json_t *)ctx, key, v)
	{
		if (ret)
			break;
		if (!json_is_string(v)) {
			ret = kars_err_set(&err, EINVAL, "context.%.64s: expected a string", key);
			break;
		}
		kv[n].key = key;
		kv[n++].value = json_string_value(v);
	}
	if (ret) {
		bad_request(req, &err);
		goto out;
	}
	q.action = action;
	q.action_len = json_string_length(json_object_get(body, "action"));
	q.context = kv;
	q.n_context = n;
	principal_of(r, uid, principal, sizeof(principal));
	kars_gov_evaluate_as(g->reader, g->limiter, principal, &q, &d);
	g->evaluations++;
	snprintf(reason, sizeof(reason), "%s%s%s%s (%s)%s%.128s", d.rule[0] ? "rule \"" : "",
		 d.rule, d.rule[0] ? "\": " : "", d.reason, kars_gov_why_name(d.why),
		 agent ? "; agent claims to be " : "", agent ? agent : "");
	rec.sandbox = r->cfg.sandbox;
	rec.principal = principal;
	/* a bad action is not written raw */
	rec.action = d.why == KARS_GOV_WHY_BAD_ACTION ? "agt.evaluate" : action;
	rec.decision = kars_gov_verdict_name(d.verdict);
	rec.reason = reason;
	kars_router_audit(r, &rec);
	kars_router_reply_json(
	    req, 200,
	    json_pack("{s:b,s:s,s:s?,s:s,s:s,s:I,s:I}", "allowed", d.verdict == KARS_GOV_ALLOW,
		      "decision", kars_gov_verdict_name(d.verdict), "matched_rule",
		      d.rule[0] ? d.rule : NULL, "reason", d.reason, "why",
		      kars_gov_why_name(d.why), "retry_after_ms", (json_int_t)d.retry_after_ms,
		      "min_approvals", (json_int_t)d.min_approvals));
out:
	json_decref(body);
}

static void outcome(struct kars_gov_gate *g, struct kars_hreq *req, uint32_t uid)
{
	static const char *const keys[] = {"action", "ok", NULL};
	struct kars_err err = {0};
	const char *action = NULL;
	char principal[32];
	bool ok = true;
	json_t *body = body_object(req);
	int ret;

	if (!body)
		return;
	ret = kars_json_only_keys(body, "", keys, &err);
	if (!ret)
		ret = kars_json_get_string(body, "", "action", false, &action, &err);
	if (!ret)
		ret = kars_json_get_bool(body, "", "ok", true, &ok, &err);
	if (ret) {
		bad_request(req, &err);
	} else {
		principal_of(g->r, uid, principal, sizeof(principal));
		kars_gov_limiter_note_outcome(g->limiter, principal, strlen(principal), 0, ok);
		kars_router_reply_json(req, 200, json_pack("{s:b}", "recorded", true));
	}
	json_decref(body);
}

static void status(struct kars_gov_gate *g, struct kars_hreq *req, uint32_t uid)
{
	struct kars_gov_principal_state ps;
	struct kars_gov_limiter_stats st;
	char principal[32];

	principal_of(g->r, uid, principal, sizeof(principal));
	kars_gov_limiter_stats(g->limiter, &st);
	kars_gov_limiter_principal(g->limiter, principal, strlen(principal), 0, &ps);
	kars_router_reply_json(
	    req, 200,
	    json_pack("{s:{s:s?,s:b,s:s?,s:I,s:I,s:I,s:I,s:s?},"
		      "s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I},"
		      "s:{s:s,s:f,s:I,s:I,s:I,s:I,s:s?},s:I,s:I,s:I}",
		      "profile", "source", g->is_default ? NULL : g->r->cfg.gov_profile_file,
		      "default", g->is_default, "agent", kars_gov_profile_agent(g->cur), "rules",
		      (json_int_t)kars_gov_profile_rule_count(g->cur), "generation",
		      (json_int_t)kars_gov_engine_generation(g->engine), "reloads",
		      (json_int_t)g->reloads, "reloadErrors", (json_int_t)g->reload_errors,
		      "lastError", g->error[0] ? g->error : NULL, "limiter", "principals",
		      (json_int_t)st.in_use, "capacity", (json_int_t)st.capacity, "admitted",
		      (json_int_t)st.admitted, "globalLimited", (json_int_t)st.global_limited,
		      "principalLimited", (json_int_t)st.principal_limited, "blocked",
		      (json_int_t)st.blocked, "evictions", (json_int_t)st.evictions, "overflows",
		      (json_int_t)st.overflows, "burstAnomalies", (json_int_t)st.anomalies_burst,
		      "failureAnomalies", (json_int_t)st.anomalies_failures, "denialAnomalies",
		      (json_int_t)st.anomalies_denials, "caller", "principal", principal, "tokens",
		      ps.tokens, "calls", (json_int_t)ps.calls, "denials", (json_int_t)ps.denials,
		      "failureStreak", (json_int_t)ps.failure_streak, "blockedMs",
		      (json_int_t)ps.blocked_ms, "blockedWhy",
		      ps.blocked_ms ? kars_gov_why_name(ps.blocked_why) : NULL, "denied",
		      (json_int_t)g->denied, "toolsStripped", (json_int_t)g->tools_stripped,
		      "evaluations", (json_int_t)g->evaluations));
}

static json_t *score_json(const struct kars_trust_score *s)
{
	return json_pack("{s:s,s:i,s:s,s:b,s:I}", "agent", s->agent, "score", (int)s->score, "tier",
			 s->tier, "known", s->known, "updatedMs", (json_int_t)s->updated_ms);
}

static int add_score(const struct kars_trust_score *s, void *arg)
{
	return json_array_append_new(arg, score_json(s));
}

static void trust_get(struct kars_gov_gate *g, struct kars_hreq *req)
{
	char buf[256];
	const char *agent = kars_hreq_query_param(req, "agent", buf, sizeof(buf));
	struct kars_trust_score s;
	struct kars_err err = {0};
	json_t *all;

	if (agent) {
		if (kars_trust_get(g->trust, agent, 0, &s, &err))
			bad_request(req, &err);
		else
			kars_router_reply_json(req, 200, score_json(&s));
	} else {
		all = json_array();
		if (all && kars_trust_each(g->trust, 0, add_score, all)) {
			json_decref(all);
			all = NULL;
		}
		kars_router_reply_json(req, 200,
				       all ? json_pack("{s:I,s:o}", "count",
						       (json_int_t)json_array_size(all), "agents",
						       all)
					   : NULL);
	}
}

static void trust_post(struct kars_gov_gate *g, struct kars_hreq *req, uint32_t uid)
{
	static const char *const keys[] = {"agent", "change", "score", "reason", NULL};
	const char *agent = NULL, *change = NULL, *why = NULL;
	enum kars_trust_change what = KARS_TRUST_SET;
	struct kars_trust_score s;
	struct kars_err err = {0};
	uint64_t score = 0;
	char by[32];
	json_t *body = body_object(req);
	int ret;

	if (!body)
		return;
	ret = kars_json_only_keys(body, "", keys, &err);
	if (!ret)
		ret = kars_json_get_string(body, "", "agent", true, &agent, &err);
	if (!ret)
		ret = kars_json_get_string(body, "", "change", true, &change, &err);
	if (!ret)
		ret = kars_json_get_string(body, "", "reason", false, &why, &err);
	if (!ret && strcmp(change, "reward") == 0)
		what = KARS_TRUST_REWARD;
	else if (!ret && strcmp(change, "penalty") == 0)
		what = KARS_TRUST_PENALTY;
	else if (!ret && strcmp(change, "set") != 0)
		ret = kars_err_set(&err, EINVAL,
				   "change: Unsupported value \"%.64s\": supported values: "
				   "\"reward\", \"penalty\", \"set\"",
				   change);
	if (!ret)
		ret = kars_json_get_uint(body, "", "score", what == KARS_TRUST_SET, 0,
					 KARS_TRUST_MAX, &score, &err);
	if (!ret && what != KARS_TRUST_SET && json_object_get(body, "score"))
		ret = kars_err_set(&err, EINVAL, "score: Forbidden: only with \"change\": \"set\"");
	if (ret) {
		bad_request(req, &err);
		goto out;
	}
	snprintf(by, sizeof(by), "uid:%u", uid);
	ret = kars_trust_change(g->trust, agent, what, (uint32_t)score, by, why, 0, &s, &err);
	kars_router_wake(g->r); /* the trust manager appended to the audit chain */
	if (ret == -EINVAL)
		bad_request(req, &err);
	else if (ret == -ENOSPC)
		kars_router_send_error(req, 409, "invalid_request_error", "trust_table_full", "%s",
				       err.msg);
	else if (ret)
		kars_router_send_error(req, 500, "server_error", "trust_not_saved", "%s", err.msg);
	else
		kars_router_reply_json(req, 200, score_json(&s));
out:
	json_decref(body);
}

void kars_gov_gate_http(struct kars_router *r, struct kars_hreq *req, const char *path)
{
	enum kars_http_method method = kars_hreq_method(req);
	struct kars_gov_gate *g = r->gov;
	uint32_t uid;

	if (!g) {
		kars_router_send_error(req, 503, "server_error", "governance_unavailable",
				       "governance is not running");
	} else if (strcmp(path, "evaluate") == 0 && method == KARS_HTTP_POST) {
		if (kars_router_authorise(r, req, "agt.evaluate", false, true, &uid) == 0)
			evaluate(g, req, uid);
	} else if (strcmp(path, "outcome") == 0 && method == KARS_HTTP_POST) {
		if (kars_router_authorise(r, req, "agt.outcome", false, true, &uid) == 0)
			outcome(g, req, uid);
	} else if (strcmp(path, "status") == 0 && method == KARS_HTTP_GET) {
		if (kars_router_authorise(r, req, "agt.status", false, true, &uid) == 0)
			status(g, req, uid);
	} else if (strcmp(path, "trust") == 0 && method == KARS_HTTP_GET) {
		if (kars_router_authorise(r, req, "agt.trust", false, true, &uid) == 0)
			trust_get(g, req);
	} else if (strcmp(path, "trust") == 0 && method == KARS_HTTP_POST) {
		if (kars_router_authorise(r, req, "trust.update", true, false, &uid) == 0)
			trust_post(g, req, uid);
	} else {
		kars_router_send_error(req, 404, "invalid_request_error", "unknown_url",
				       "no endpoint %s /agt/%.200s (served: POST evaluate, POST "
				       "outcome, GET status, GET and POST trust)",
				       method == KARS_HTTP_GET	  ? "GET"
				       : method == KARS_HTTP_POST ? "POST"
								  : "?",
				       path);
	}
}
