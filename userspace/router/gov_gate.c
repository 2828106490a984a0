/* gov_gate.c - the ToolPolicy gate on inference and on advertised tools.
 *
 * See gov_gate.h for the contract. Principal: the agent ("agent"), the only
 * caller of the inference port; one rate-limit token per request, however
 * many tools it advertises (the original charged one per tool, so a request
 * with many tools drained the bucket and later tools were silently
 * stripped). Tools are evaluated against the profile without the limiter,
 * without feeding the monitor's denial count and without charging the
 * profile's rate_limit windows (a peek: a tool whose window real calls have
 * used up is stripped until it refills): advertising a tool is not calling
 * it.
 *
 * Tool names: chat completions' {"type":"function","function":{"name":N}}
 * and the older "functions":[{"name":N}]; the Responses API's
 * {"type":"function","name":N}; a built-in tool without a name by its type
 * ("web_search", "file_search", "code_interpreter", ...), an "mcp" tool as
 * "mcp:<server_label>". An entry with none of these is removed as well: what
 * cannot be named cannot be allowed.
 */
#include "gov_gate.h"

#include <errno.h>
#include <event2/buffer.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "file_watch.h"
#include "gov_limits.h"
#include "gov_trust.h"
#include "governance.h"
#include "http_server.h"
#include "log.h"
#include "tool_policy_file.h"

static const char *const route_action[KARS_ROUTE__COUNT] = {
    [KARS_ROUTE_CHAT] = "chat_completions",   [KARS_ROUTE_RESPONSES] = "responses",
    [KARS_ROUTE_COMPLETIONS] = "completions", [KARS_ROUTE_EMBEDDINGS] = "embeddings",
    [KARS_ROUTE_MODELS] = "models",
};

static void audit(struct kars_router *r, const char *principal, const char *action,
		  const char *decision, const char *reason, const char *model)
{
	struct kars_audit_record rec = {0};

	rec.sandbox = r->cfg.sandbox;
	rec.principal = principal;
	rec.action = action;
	rec.decision = decision;
	rec.reason = reason;
	rec.model = model;
	kars_router_audit(r, &rec);
}

static void publish(struct kars_gov_gate *g, struct kars_gov_profile *p, bool is_default)
{
	kars_gov_profile_carry_windows(p, g->cur);
	kars_gov_engine_publish(g->engine, p);
	g->cur = p;
	g->is_default = is_default;
}

static int default_profile(struct kars_gov_gate *g, struct kars_gov_profile **out,
			   struct kars_err *err)
{
	static const char yaml[] = "version: \"1.0\"\nagent: default\npolicies: []\n";
	struct kars_gov_load_opts opts = {.unmatched = g->r->cfg.gov_unmatched};

	return kars_gov_profile_load_buf(yaml, sizeof(yaml) - 1, "default", &opts, out, NULL, err);
}

/* What policy-status reports: the compiled ToolPolicy in force, if any. */
static void set_loaded(struct kars_gov_gate *g, const char *name, const char *digest)
{
	struct timespec now;

	snprintf(g->policy_name, sizeof(g->policy_name), "%s", name);
	snprintf(g->digest, sizeof(g->digest), "%s", digest);
	clock_gettime(CLOCK_REALTIME, &now);
	g->loaded_at_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
}

static void check(void *arg)
{
	struct kars_gov_gate *g = arg;
	struct kars_router *r = g->r;
	const char *path = r->cfg.gov_profile_file;
	struct kars_gov_load_opts opts = {.unmatched = r->cfg.gov_unmatched};
	struct kars_gov_load_notes notes = {0};
	struct kars_tool_policy_file tpf = {0};
	struct kars_gov_profile *p = NULL;
	struct kars_err err = {0};
	char reason[1024];
	struct stat st;

	if (stat(path, &st)) {
		int e = errno;

		g->seen = false;
		if (g->is_default)
			return;
		if (default_profile(g, &p, &err)) {
			log_error("governance: the default profile did not load: %s", err.msg);
			return;
		}
		snprintf(reason, sizeof(reason),
			 "%.400s: %s: the default profile (no rules, unmatched %s) is in force",
			 path, strerror(e),
			 r->cfg.gov_unmatched == KARS_GOV_UNMATCHED_DENY ? "deny" : "allow");
		log_info("governance: %s", reason);
		publish(g, p, true);
		set_loaded(g, "", "");
		g->error[0] = '\0';
		audit(r, "controller", "governance.reload", "default", reason, NULL);
		return;
	}
	if (!kars_file_sig_changed(&st, &g->sig, &g->seen))
		return;
	if (kars_tool_policy_file_read(path, r->cfg.sandbox, &tpf, &err) == 0)
		kars_gov_profile_load_buf(tpf.profile, tpf.profile_len, path, &opts, &p, &notes,
					  &err);
	kars_tool_policy_file_free(&tpf);
	if (!p) {
		g->reload_errors++;
		snprintf(g->error, sizeof(g->error), "%s", err.msg);
		log_error("governance: profile not loaded, %s: %s",
			  g->cur ? "the previous one stays in force"
				 : "every governed action is denied until a valid one arrives",
			  err.msg);
		snprintf(reason, sizeof(reason), "refused (%s in force): %s",
			 g->cur ? (g->is_default ? "the default profile" : "the previous profile")
				: "no profile",
			 err.msg);
		audit(r, "controller", "governance.reload", "deny", reason, NULL);
		return;
	}
	if (notes.reordered_by_priority)
		log_warn("governance: %s: rule priorities reorder the file (first moved: %s); AGT "
			 "would have run them in file order",
			 path, notes.first_moved_rule);
	g->reloads++;
	g->error[0] = '\0';
	snprintf(reason, sizeof(reason), "%.600s: agent %.128s, %zu rules", path,
		 kars_gov_profile_agent(p), kars_gov_profile_rule_count(p));
	log_info("governance: profile loaded from %s%s%s", reason, tpf.digest[0] ? ", " : "",
		 tpf.digest);
	publish(g, p, false);
	set_loaded(g, tpf.name, tpf.digest);
	audit(r, "controller", "governance.reload", "allow", reason, NULL);
}

struct kars_gov_gate *kars_gov_gate_new(struct kars_router *r, struct kars_err *err)
{
	struct kars_gov_gate *g = calloc(1, sizeof(*g));
	struct kars_trust_opts to = {
	    .path = r->cfg.trust_file[0] ? r->cfg.trust_file : NULL,
	    .reward = r->cfg.trust_reward,
	    .penalty = r->cfg.trust_penalty,
	    .decay_per_hour = r->cfg.trust_decay_per_hour,
	    .agents_max = r->cfg.trust_agents_max,
	    .audit = r->audit,
	    .sandbox = r->cfg.sandbox,
	};
	struct kars_gov_profile *p = NULL;

	if (!g) {
		kars_err_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	g->r = r;
	g->engine = kars_gov_engine_new();
	if (!g->engine || kars_gov_reader_open(g->engine, &g->reader)) {
		kars_err_set(err, ENOMEM, "governance: out of memory");
		goto fail;
	}
	if (kars_gov_limiter_new(&r->cfg.gov_limits, &g->limiter, err) ||
	    kars_trust_open(&g->trust, &to, err))
		goto fail;
	log_info("governance: rate limits per principal %.0f/s (burst %u), router-wide %.0f/s "
		 "(burst %u)%s",
		 r->cfg.gov_limits.principal_rate, r->cfg.gov_limits.principal_burst,
		 r->cfg.gov_limits.global_rate, r->cfg.gov_limits.global_burst,
		 r->cfg.gov_limits.principal_rate && r->cfg.gov_limits.global_rate
		     ? ""
		     : " (a rate of 0: that bucket is off)");
	if (!r->cfg.gov_profile_file[0]) {
		if (default_profile(g, &p, err))
			goto fail;
		publish(g, p, true);
		return g;
	}
	g->watch =
	    kars_file_watch_new(r->base, r->cfg.gov_profile_file, r->cfg.gov_poll_ms, check, g);
	if (!g->watch) {
		kars_err_set(err, ENOMEM, "governance: cannot watch %s", r->cfg.gov_profile_file);
		goto fail;
	}
	check(g);
	return g;
fail:
	kars_gov_gate_free(g);
	return NULL;
}

void kars_gov_gate_free(struct kars_gov_gate *g)
{
	if (!g)
		return;
	kars_file_watch_free(g->watch);
	kars_trust_close(g->trust);
	kars_gov_limiter_free(g->limiter);
	kars_gov_reader_close(g->reader);
	kars_gov_engine_free(g->engine);
	free(g);
}

/* The refusal of an inference: status, headers, the OpenAI error, audit. */
static void refuse(struct kars_router *r, struct kars_hreq *req, enum kars_route route,
		   const char *action, const char *model, const struct kars_gov_decision *d)
{
	bool limited = d->verdict == KARS_GOV_RATE_LIMITED;
	int status = limited ? 429 : 403;
	const char *code = limited				      ? "rate_limit_exceeded"
			   : d->verdict == KARS_GOV_REQUIRES_APPROVAL ? "approval_required"
			   : d->why >= KARS_GOV_WHY_MONITOR_BURST     ? kars_gov_why_name(d->why)
								      : "policy_denied";
	char reason[1024], audit_action[64];

	snprintf(reason, sizeof(reason), "ToolPolicy: %.600s: %s%s%s%s (%s)", action,
		 d->rule[0] ? "rule \"" : "", d->rule, d->rule[0] ? "\": " : "", d->reason,
		 kars_gov_why_name(d->why));
	r->denied++;
	r->gov->denied++;
	r->requests[route][status / 100]++;
	if (limited) {
		char secs[32];

		snprintf(
		    secs, sizeof(secs), "%llu",
		    (unsigned long long)(d->retry_after_ms ? (d->retry_after_ms + 999) / 1000 : 1));
		kars_hreq_add_header(req, "Retry-After", secs);
	}
	kars_hreq_add_header(req, "x-kars-decision", limited ? "rate_limited" : "blocked");
	kars_hreq_add_header(req, "x-kars-decision-by", "ToolPolicy");
	if (d->rule[0])
		kars_hreq_add_header(req, "x-kars-rule", d->rule);
	kars_router_send_error(req, status, limited ? "requests" : "policy_violation", code, "%s",
			       reason);
	snprintf(audit_action, sizeof(audit_action), "inference.%s",
		 kars_router_routes[route].name);
	audit(r, "agent", audit_action, kars_gov_verdict_name(d->verdict), reason, model);
}

/* The name a tool entry is governed by, into buf; false when it has none. */
static bool tool_name(const json_t *t, char *buf, size_t len)
{
	const json_t *fn = json_object_get(t, "function");
	const char *type = json_string_value(json_object_get(t, "type"));
	const char *name = json_string_value(json_object_get(fn, "name"));

	if (!json_is_object(t))
		return false;
	if (!name)
		name = json_string_value(json_object_get(t, "name"));
	if (!name && type && strcmp(type, "mcp") == 0) {
		const char *label = json_string_value(json_object_get(t, "server_label"));

		if (!label)
			return false;
		return (size_t)snprintf(buf, len, "mcp:%s", label) < len;
	}
	if (!name && type && strcmp(type, "function") != 0)
		name = type; /* a built-in tool; a function must have its name */
	return name && *name && (size_t)snprintf(buf, len, "%s", name) < len;
}

/* Evaluates each entry of the array at key, removes the denied ones and
 * lists them into list. Returns how many were removed. */
static size_t strip(struct kars_gov_gate *g, json_t *body, const char *key, char *list,
		    size_t list_len, size_t *used)
{
	json_t *arr = json_object_get(body, key);
	size_t n = 0, i = 0;

	if (!json_is_array(arr))
		return 0;
	while (i < json_array_size(arr)) {
		char name[KARS_GOV_ACTION_MAX], action[KARS_GOV_ACTION_MAX + 16];
		struct kars_gov_decision d;
		struct kars_gov_request q = {.action = action, .peek = true};
		bool named = tool_name(json_array_get(arr, i), name, sizeof(name));
		int w;

		if (named) {
			snprintf(action, sizeof(action), "tool.invoke:%s", name);
			kars_gov_evaluate(g->reader, &q, &d);
			if (d.verdict == KARS_GOV_ALLOW) {
				i++;
				continue;
			}
		}
		w = snprintf(list + *used, list_len - *used, "%s%s (%s%s%s)", *used ? ", " : "",
			     named ? action : "an unnamed tool", named ? d.rule : "",
			     named && d.rule[0] ? ": " : "",
			     named ? kars_gov_why_name(d.why) : "no name");
		if (w > 0)
			*used = *used + (size_t)w < list_len ? *used + (size_t)w : list_len - 1;
		json_array_remove(arr, i);
		n++;
	}
	if (json_array_size(arr) == 0)
		json_object_del(body, key);
	return n;
}

/* Whether the agent may be forced to call the tool t names: peeked as
 * tool.invoke:<name>; false with *d and action when refused. A choice that
 * names no tool is refused (what cannot be named cannot be allowed). */
static bool named_allowed(struct kars_gov_gate *g, const json_t *t, char *action, size_t len,
			  struct kars_gov_decision *d)
{
	static const struct kars_gov_decision unnamed = {.verdict = KARS_GOV_DENY,
							 .why = KARS_GOV_WHY_BAD_ACTION,
							 .reason = "tool_choice names no tool"};
	char name[KARS_GOV_ACTION_MAX - 16];

	if (!tool_name(t, name, sizeof(name))) {
		snprintf(action, len, "tool_choice");
		*d = unnamed;
		return false;
	}
	snprintf(action, len, "tool.invoke:%s", name);
	kars_gov_evaluate(g->reader, &(struct kars_gov_request){.action = action, .peek = true}, d);
	return d->verdict == KARS_GOV_ALLOW;
}

/* The same for a tool_choice or function_call: a string ("auto", "none",
 * "required") forces nothing; allowed_tools: each tool of its list (one
 * level: an allowed_tools inside is judged by its type, like any tool). */
static bool forced_allowed(struct kars_gov_gate *g, const json_t *tc, char *action, size_t len,
			   struct kars_gov_decision *d)
{
	const char *type = json_string_value(json_object_get(tc, "type"));
	const json_t *t;
	size_t i;

	if (!json_is_object(tc))
		return true;
	if (!type || strcmp(type, "allowed_tools") != 0)
		return named_allowed(g, tc, action, len, d);
	json_array_foreach(json_object_get(tc, "tools"), i, t)
	{
		if (!named_allowed(g, t, action, len, d))
			return false;
	}
	return true;
}

static bool requires_a_tool(const json_t *tc)
{
	const char *mode = json_string_value(json_object_get(tc, "mode"));

	return json_is_object(tc) ? mode && strcmp(mode, "required") == 0
				  : strcmp(json_string_value(tc) ?: "", "required") == 0;
}

/* tool_choice and function_call after the strip. A choice forcing a tool the
 * ToolPolicy denies, or requiring a tool call when every advertised tool was
 * removed, cannot be served as asked: refused (-1, with *d and action, the
 * tool named), never quietly turned into a request that does something
 * else. Otherwise, when the strip left no tool, tool_choice, function_call
 * and parallel_tool_calls go (the upstream refuses them without tools). */
static int check_tool_choice(struct kars_gov_gate *g, json_t *body, size_t removed,
			     const char *list, char *action, size_t len,
			     struct kars_gov_decision *d, bool *changed)
{
	static const char *const keys[] = {"tool_choice", "function_call", "parallel_tool_calls"};

	for (size_t k = 0; k < 2; k++) {
		const json_t *tc = json_object_get(body, keys[k]);

		if (!forced_allowed(g, tc, action, len, d))
			return -1;
		if (removed && requires_a_tool(tc) && !json_object_get(body, "tools") &&
		    !json_object_get(body, "functions")) {
			*d = (struct kars_gov_decision){
			    .verdict = KARS_GOV_DENY,
			    .why = KARS_GOV_WHY_DENIED_ACTION,
			    .reason = "tool_choice requires a tool call and every advertised tool "
				      "was removed"};
			snprintf(action, len, "%.*s", (int)len - 1, list);
			return -1;
		}
	}
	if (removed && !json_object_get(body, "tools") && !json_object_get(body, "functions")) {
		for (size_t k = 0; k < 3; k++) {
			if (json_object_get(body, keys[k])) {
				json_object_del(body, keys[k]);
				*changed = true;
			}
		}
	}
	return 0;
}

/* The fallbacks of the chain, each peeked (a fallback is not a call until
 * the router fails over to it): the denied ones leave the chain. */
static void filter_fallbacks(struct kars_router *r, enum kars_route route, const char **models,
			     size_t *n_models)
{
	char action[KARS_GOV_ACTION_MAX + 1], list[2048];
	size_t kept = 1, used = 0;

	list[0] = '\0';
	for (size_t i = 1; i < *n_models; i++) {
		struct kars_gov_request q = {.action = action, .peek = true};
		struct kars_gov_decision d;
		int w;

		snprintf(action, sizeof(action), "inference:%s:%s", route_action[route], models[i]);
		kars_gov_evaluate(r->gov->reader, &q, &d);
		if (d.verdict == KARS_GOV_ALLOW) {
			models[kept++] = models[i];
			continue;
		}
		w = snprintf(list + used, sizeof(list) - used, "%s%.200s (%s%s%s)",
			     used ? ", " : "", action, d.rule, d.rule[0] ? ": " : "",
			     kars_gov_why_name(d.why));
		if (w > 0)
			used =
			    used + (size_t)w < sizeof(list) ? used + (size_t)w : sizeof(list) - 1;
	}
	if (kept < *n_models) {
		char reason[2100];

		snprintf(reason, sizeof(reason), "fallbacks removed from the chain: %s", list);
		log_info("governance: %s", reason);
		audit(r, "agent", "inference.fallback", "deny", reason, models[0]);
		*n_models = kept;
	}
}

int kars_gov_gate_inference(struct kars_router *r, struct kars_hreq *req, enum kars_route route,
			    json_t *body, const char **models, size_t *n_models, bool *body_changed)
{
	struct kars_gov_gate *g = r->gov;
	char action[KARS_GOV_ACTION_MAX + 1], list[3072];
	struct kars_gov_request q = {.action = action};
	const char *model = *n_models ? models[0] : NULL;
	struct kars_gov_decision d;
	size_t used = 0, n;

	if (!g)
		return 0;
	snprintf(action, sizeof(action), "inference:%s:%s", route_action[route],
		 model ? model : "");
	kars_gov_evaluate_as(g->reader, g->limiter, "agent", &q, &d);
	if (d.verdict != KARS_GOV_ALLOW) {
		refuse(r, req, route, action, model, &d);
		return -1;
	}
	filter_fallbacks(r, route, models, n_models);
	list[0] = '\0';
	n = strip(g, body, "tools", list, sizeof(list), &used);
	n += strip(g, body, "functions", list, sizeof(list), &used);
	if (check_tool_choice(g, body, n, list, action, sizeof(action), &d, body_changed)) {
		refuse(r, req, route, action, model, &d);
		return -1;
	}
	if (n) {
		char reason[3200];

		*body_changed = true;
		g->tools_stripped += n;
		snprintf(reason, sizeof(reason), "removed from the request: %s", list);
		log_info("governance: %s", reason);
		audit(r, "agent", "tool.invoke", "deny", reason, model);
	}
	return 0;
}

const char *kars_gov_gate_unready(const struct kars_router *r)
{
	const struct kars_gov_gate *g = r->gov;

	if (!g || g->cur)
		return NULL;
	return g->error[0] ? g->error : "no governance profile loaded";
}

struct gov_metric {
	const char *name, *type, *help;
};

static const struct gov_metric gov_metrics[] = {
    {"denied_total", "counter", "Inferences refused by the ToolPolicy gate."},
    {"tools_stripped_total", "counter", "Advertised tools removed from requests."},
    {"evaluations_total", "counter", "Calls of /agt/evaluate."},
    {"rate_limited_total", "counter", "Calls refused by a principal or the global bucket."},
    {"monitor_blocked_total", "counter", "Calls refused by a behaviour-monitor block."},
    {"monitor_anomalies_total", "counter", "Bursts, failure streaks and denial runs seen."},
    {"principals", "gauge", "Slots of the principal table in use."},
    {"profile_reload_errors_total", "counter",
     "Profile files refused (the previous profile stayed)."},
    {"trust_agents", "gauge", "Agents with a trust score."},
};

void kars_gov_gate_metrics(struct kars_router *r, struct evbuffer *out)
{
	struct kars_gov_gate *g = r->gov;
	struct kars_gov_limiter_stats st;
	uint64_t v[sizeof(gov_metrics) / sizeof(gov_metrics[0])];

	if (!g)
		return;
	kars_gov_limiter_stats(g->limiter, &st);
	v[0] = g->denied;
	v[1] = g->tools_stripped;
	v[2] = g->evaluations;
	v[3] = st.global_limited + st.principal_limited;
	v[4] = st.blocked;
	v[5] = st.anomalies_burst + st.anomalies_failures + st.anomalies_denials;
	v[6] = st.in_use;
	v[7] = g->reload_errors;
	v[8] = kars_trust_count(g->trust);
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		const struct gov_metric *m = &gov_metrics[i];

		evbuffer_add_printf(out,
				    "# HELP kars_router_governance_%s %s\n# TYPE "
				    "kars_router_governance_%s %s\n"
				    "kars_router_governance_%s{sandbox=\"%s\"} %llu\n",
				    m->name, m->help, m->name, m->type, m->name, r->cfg.sandbox,
				    (unsigned long long)v[i]);
	}
}
