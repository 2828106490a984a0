/* proxy.c - kars-router's HTTP routes and the gates every inference passes.
 *
 * An inference request (chat, responses, completions, embeddings; streamed
 * or not, the same gates) is checked against one snapshot of the policy, in
 * this order, and refused at the first gate it fails:
 *
 *   1. a policy is loaded                        503 policy_not_loaded
 *   2. the policy covers the route               403 route_not_allowed
 *   3. the daily and monthly budgets have room   429 daily/monthly_budget_exceeded
 *   4. the output token cap (the request's max_*_tokens; set to the cap when
 *      the request has none)                     403 per_request_tokens_exceeded
 *   5. the model: allowed, overridden, or refused 403 model_not_allowed
 *
 * and then relayed (exchange.c), where the content floor is the last gate.
 * A gate that edits the parsed body must set xr.body_changed: without it the
 * agent's bytes go upstream as they came (only the model may differ, and
 * exchange.c compares that itself).
 * Every refusal is written to the audit chain like every answer. Request
 * headers pass through an allowlist: the agent's Authorization, api-key,
 * cookies and organisation headers never leave. Errors are in the OpenAI
 * shape.
 */
#include <sys/queue.h>
#include <errno.h>
#include <event2/buffer.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "credentials.h"
#include "egress_proxy.h"
#include "exchange.h"
#include "gov_gate.h"
#include "http_server.h"
#include "json.h"
#include "json_project.h"
#include "log.h"
#include "router.h"
#include "upstream_http.h"

#define MAX_REQUEST_BODY (16u << 20)
#define MAX_REQUEST_HEAD (64u << 10)

const struct kars_router_route kars_router_routes[KARS_ROUTE__COUNT] = {
    [KARS_ROUTE_CHAT] = {"/v1/chat/completions", KARS_HTTP_POST, "/chat/completions", "chat",
			 KARS_ACTION_CHAT, KARS_OPENAI_CHAT_COMPLETIONS},
    [KARS_ROUTE_RESPONSES] = {"/v1/responses", KARS_HTTP_POST, "/responses", "responses",
			      KARS_ACTION_RESPONSES, KARS_OPENAI_RESPONSES},
    [KARS_ROUTE_COMPLETIONS] = {"/v1/completions", KARS_HTTP_POST, "/completions", "completions",
				KARS_ACTION_COMPLETIONS, KARS_OPENAI_COMPLETIONS},
    [KARS_ROUTE_EMBEDDINGS] = {"/v1/embeddings", KARS_HTTP_POST, "/embeddings", "embeddings",
			       KARS_ACTION_EMBEDDINGS, KARS_OPENAI_EMBEDDINGS},
    [KARS_ROUTE_MODELS] = {"/v1/models", KARS_HTTP_GET, "/models", "models", KARS_ACTION__COUNT,
			   KARS_OPENAI_UNKNOWN},
};

void kars_router_send_error(struct kars_hreq *req, int status, const char *type, const char *code,
			    const char *fmt, ...)
{
	char msg[768];
	json_t *body;
	char *text;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	body = json_pack("{s:{s:s,s:s,s:s,s:n}}", "error", "message", msg, "type", type, "code",
			 code, "param");
	text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	kars_router_reply_line(req, status, "application/json", text);
	json_decref(body);
}

void kars_router_reply_line(struct kars_hreq *req, int status, const char *type, char *text)
{
	size_t n = text ? strlen(text) : 0;
	char *line = text ? realloc(text, n + 2) : NULL;

	if (line) {
		line[n++] = '\n';
		text = line;
	}
	kars_hreq_add_header(req, "Content-Type", type);
	kars_hreq_reply(req, status, text, text ? n : 0);
	free(text);
}

void kars_router_audit(struct kars_router *r, const struct kars_audit_record *rec)
{
	struct kars_err err = {0};

	if (!r->audit)
		return;
	if (kars_audit_append(r->audit, rec, &err)) {
		r->audit_errors++;
		log_error("audit: %s", err.msg);
	}
	kars_router_wake(r);
}

/* A request refused by a gate: the answer, the count, the audit record. */
struct refusal {
	int status;
	const char *type, *code;
	const char *model;
	const uint8_t *payload_sha256;
	long retry_after; /* seconds, or 0 */
};

__attribute__((format(printf, 5, 6))) static void
refuse(struct kars_router *r, struct kars_hreq *req, enum kars_route route, const struct refusal *f,
       const char *fmt, ...)
{
	struct kars_audit_record rec = {0};
	char reason[512], action[64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	r->denied++;
	r->requests[route][f->status / 100]++;
	if (f->retry_after) {
		char secs[32];

		snprintf(secs, sizeof(secs), "%ld", f->retry_after);
		kars_hreq_add_header(req, "Retry-After", secs);
		/* The openai SDKs retry 429s; a spent budget will not be back
		 * in a few seconds. */
		kars_hreq_add_header(req, "x-should-retry", "false");
	}
	if (f->status == 403) {
		kars_hreq_add_header(req, "x-kars-decision", "blocked");
		kars_hreq_add_header(req, "x-kars-decision-by", "InferencePolicy");
	}
	kars_router_send_error(req, f->status, f->type, f->code, "%s", reason);

	snprintf(action, sizeof(action), "inference.%s", kars_router_routes[route].name);
	rec.sandbox = r->cfg.sandbox;
	rec.principal = "agent";
	rec.action = action;
	rec.decision = "deny";
	rec.reason = reason;
	rec.model = f->model;
	rec.payload_sha256 = f->payload_sha256;
	kars_router_audit(r, &rec);
}

/* The body, whole, as a NUL-terminated copy. */
static char *take_body(struct kars_hreq *req, size_t *len)
{
	const char *in = kars_hreq_body(req, len);
	char *body = malloc(*len + 1);

	if (!body)
		return NULL;
	memcpy(body, in, *len);
	body[*len] = '\0';
	return body;
}

/* The request's output token limit field for route ("" if it has none). */
static const char *cap_field(enum kars_route route, const json_t *body)
{
	switch (route) {
	case KARS_ROUTE_CHAT:
		/* max_tokens is the older name; a request may carry either. */
		return json_object_get(body, "max_completion_tokens") ||
			       !json_object_get(body, "max_tokens")
			   ? "max_completion_tokens"
			   : "max_tokens";
	case KARS_ROUTE_RESPONSES:
		return "max_output_tokens";
	case KARS_ROUTE_COMPLETIONS:
		return "max_tokens";
	default:
		return "";
	}
}

/* Gate 4. Returns 0 (*changed when it set the cap), or -1 after refusing. */
static int apply_token_cap(struct kars_router *r, struct kars_hreq *req, enum kars_route id,
			   json_t *body, const struct kars_inference_policy *p, struct refusal *f,
			   bool *changed)
{
	const char *field = cap_field(id, body);
	const json_t *v;

	if (!*field || !p->per_request_tokens)
		return 0;
	v = json_object_get(body, field);
	if (!v || json_is_null(v)) {
		*changed = true;
		return json_object_set_new(body, field,
					   json_integer((json_int_t)p->per_request_tokens))
			   ? -1
			   : 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		f->status = 400;
		f->type = "invalid_request_error";
		f->code = "invalid_value";
		refuse(r, req, id, f, "%s: expected a non-negative integer", field);
		return -1;
	}
	if ((uint64_t)json_integer_value(v) > p->per_request_tokens) {
		f->status = 403;
		f->type = "policy_violation";
		f->code = "per_request_tokens_exceeded";
		refuse(r, req, id, f,
		       "%s %lld is above InferencePolicy %s's perRequestTokens (%llu)", field,
		       (long long)json_integer_value(v), p->name,
		       (unsigned long long)p->per_request_tokens);
		return -1;
	}
	return 0;
}

/* Gates 1-5 for an inference request, then the exchange (which takes raw
 * and body). */
static void handle_inference(struct kars_router *r, struct kars_hreq *req, enum kars_route id,
			     char *raw, size_t raw_len, json_t *body)
{
	const struct kars_router_route *route = &kars_router_routes[id];
	struct kars_inference_policy *p = r->policy;
	struct kars_exchange_request xr = {.route = id};
	uint8_t sha[crypto_hash_sha256_BYTES];
	struct refusal f = {.payload_sha256 = sha};
	const char *requested = NULL, *code = "";
	enum kars_budget_verdict budget;
	struct kars_err err = {0};
	char reason[512];
	const json_t *model;
	int usage;

	crypto_hash_sha256(sha, (const unsigned char *)raw, raw_len);
	model = json_object_get(body, "model");
	if (model && !json_is_string(model)) {
		f.status = 400, f.type = "invalid_request_error", f.code = "invalid_value";
		refuse(r, req, id, &f, "model: expected a string");
		goto out;
	}
	requested = json_string_value(model);
	f.model = requested;
	if (!p) {
		f.status = 503, f.type = "server_error", f.code = "policy_not_loaded";
		refuse(r, req, id, &f, "no InferencePolicy is loaded (%s)",
		       r->policy_error[0] ? r->policy_error : "none delivered yet");
		goto out;
	}
	if (!kars_inference_policy_covers(p, route->action)) {
		f.status = 403, f.type = "policy_violation", f.code = "route_not_allowed";
		refuse(r, req, id, &f, "InferencePolicy %s does not cover %s (appliesTo.action)",
		       p->name, kars_policy_action_name(route->action));
		goto out;
	}
	budget = kars_budget_check(&r->budget, p->daily_tokens, p->monthly_tokens, time(NULL));
	if (budget != KARS_BUDGET_OK) {
		bool daily = budget == KARS_BUDGET_DAILY_EXCEEDED;

		f.status = 429, f.type = "insufficient_quota";
		f.code = daily ? "daily_budget_exceeded" : "monthly_budget_exceeded";
		f.retry_after = kars_budget_retry_after(budget, time(NULL));
		refuse(r, req, id, &f, "the sandbox's %s token budget (%llu) is spent: %llu used",
		       daily ? "daily" : "monthly",
		       (unsigned long long)(daily ? p->daily_tokens : p->monthly_tokens),
		       (unsigned long long)(daily ? r->budget.daily_used : r->budget.monthly_used));
		goto out;
	}
	if (apply_token_cap(r, req, id, body, p, &f, &xr.body_changed))
		goto out;
	/* A runtime override (PUT /kars/v1/model) stands in for the primary. */
	if (r->model_override[0] &&
	    (!requested || (p->chain_len && !strcmp(requested, p->chain[0].deployment))))
		requested = r->model_override;
	xr.n_models = kars_inference_policy_models(p, route->action, requested, xr.models, &code,
						   reason, sizeof(reason));
	if (!xr.n_models) {
		bool missing = strcmp(code, "model_required") == 0;

		f.status = missing ? 400 : 403;
		f.type = missing ? "invalid_request_error" : "policy_violation";
		f.code = code;
		refuse(r, req, id, &f, "%s", reason);
		goto out;
	}
	/* ToolPolicy: inference:<route>:<model>, then the advertised tools */
	if (kars_gov_gate_inference(r, req, id, body, xr.models, &xr.n_models, &xr.body_changed))
		goto out;
	xr.stream = json_is_true(json_object_get(body, "stream"));
	if (id == KARS_ROUTE_CHAT || id == KARS_ROUTE_COMPLETIONS) {
		usage = kars_openai_inject_include_usage(body, &err);
		if (usage < 0) {
			f.status = 400, f.type = "invalid_request_error", f.code = "invalid_value";
			refuse(r, req, id, &f, "%s", err.msg);
			goto out;
		}
		/* The agent gets the stream it asked for: the usage chunk the
		 * router added for its own accounting is not part of it. */
		xr.withhold_usage =
		    usage == KARS_INCLUDE_USAGE_INJECTED || usage == KARS_INCLUDE_USAGE_FORCED;
		xr.body_changed |= xr.withhold_usage;
	}
	xr.body = body;
	xr.raw = raw;
	xr.raw_len = raw_len;
	xr.policy = p;
	xr.payload_sha256 = sha;
	kars_exchange_start(r, req, &xr);
	return;
out:
	json_decref(body);
	free(raw);
}

/* item: the model id of GET /v1/models/{id}, else NULL. */
static void handle_route(struct kars_router *r, struct kars_hreq *req, enum kars_route id,
			 const char *item)
{
	const struct kars_router_route *route = &kars_router_routes[id];
	struct kars_exchange_request xr = {.route = id, .item = item};
	struct kars_err err = {0};
	size_t len;
	json_t *body;
	char *raw;

	if (kars_hreq_method(req) != (enum kars_http_method)route->method) {
		r->rejected++;
		kars_router_send_error(req, 405, "invalid_request_error", "method_not_allowed",
				       "%s takes %s only", route->path,
				       route->method == KARS_HTTP_POST ? "POST" : "GET");
		return;
	}
	if (item && !kars_model_name_ok(item)) {
		r->rejected++;
		kars_router_send_error(req, 400, "invalid_request_error", "invalid_model_id",
				       "model id: only letters, digits and - _ . : are allowed");
		return;
	}
	if (route->method != KARS_HTTP_POST) {
		kars_exchange_start(r, req, &xr);
		return;
	}
	raw = take_body(req, &len);
	if (!raw) {
		kars_router_send_error(req, 500, "server_error", "out_of_memory", "out of memory");
		return;
	}
	/* The fast builder first; what it does not take on, jansson parses and
	 * names the error of (json_project.h). */
	body = kars_json_build(raw, len);
	if (!body)
		body = kars_json_parse(raw, len, &err);
	if (!json_is_object(body)) {
		r->rejected++;
		kars_router_send_error(req, 400, "invalid_request_error", "invalid_json",
				       "the request body must be a JSON object: %s",
				       body ? "got another JSON value" : err.msg);
		json_decref(body);
		free(raw);
	} else {
		handle_inference(r, req, id, raw, len, body);
	}
}

static void reply_text(struct kars_hreq *req, int status, const char *type, const char *text)
{
	kars_hreq_add_header(req, "Content-Type", type);
	kars_hreq_reply(req, status, text, strlen(text));
}

static void metric(struct evbuffer *out, const char *sandbox, const char *name, const char *type,
		   const char *help, uint64_t value)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s{sandbox=\"%s\"} %llu\n", name,
			    help, name, type, name, sandbox, (unsigned long long)value);
}

void kars_router_metric(struct evbuffer *out, const char *sandbox, const char *name,
			const char *type, const char *help, uint64_t value)
{
	metric(out, sandbox, name, type, help, value);
}

static void handle_metrics(struct kars_router *r, struct kars_hreq *req)
{
	static const char *const classes[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
	struct evbuffer *out = evbuffer_new();
	const char *sb = r->cfg.sandbox;

	if (!out) {
		kars_router_send_error(req, 500, "server_error", "out_of_memory", "out of memory");
		return;
	}
	evbuffer_add_printf(out, "# HELP kars_router_requests_total Inference requests by route "
				 "and status class.\n# TYPE kars_router_requests_total counter\n");
	for (int i = 0; i < KARS_ROUTE__COUNT; i++)
		for (int c = 0; c < 6; c++)
			if (r->requests[i][c])
				evbuffer_add_printf(out,
						    "kars_router_requests_total{sandbox=\"%s\","
						    "route=\"%s\",status=\"%s\"} %llu\n",
						    sb, kars_router_routes[i].name, classes[c],
						    (unsigned long long)r->requests[i][c]);
	metric(out, sb, "kars_router_upstream_errors_total", "counter",
	       "Upstream transport failures and failed-over answers.", r->upstream_errors);
	metric(out, sb, "kars_router_rejected_total", "counter",
	       "Malformed requests refused before any policy.", r->rejected);
	metric(out, sb, "kars_router_denied_total", "counter",
	       "Requests refused by the InferencePolicy.", r->denied);
	metric(out, sb, "kars_router_failovers_total", "counter",
	       "Attempts moved on to the next model.", r->failovers);
	metric(out, sb, "kars_router_prompt_tokens_total", "counter",
	       "Prompt (input) tokens the upstream reported.", r->tokens_in);
	metric(out, sb, "kars_router_completion_tokens_total", "counter",
	       "Completion (output) tokens the upstream reported.", r->tokens_out);
	metric(out, sb, "kars_router_budget_daily_used_tokens", "gauge",
	       "Tokens charged today (UTC).", r->budget.daily_used);
	metric(out, sb, "kars_router_budget_monthly_used_tokens", "gauge",
	       "Tokens charged this month (UTC).", r->budget.monthly_used);
	metric(out, sb, "kars_router_policy_loaded", "gauge",
	       "1 when an InferencePolicy is in force.", r->policy != NULL);
	metric(out, sb, "kars_router_policy_reload_errors_total", "counter",
	       "Policy files that were refused (the previous policy stayed).",
	       r->policy_reload_errors);
	metric(out, sb, "kars_router_audit_errors_total", "counter",
	       "Audit records that could not be appended.", r->audit_errors);
	kars_gov_gate_metrics(r, out);
	if (r->egress)
		kars_egress_proxy_metrics(r->egress, out);
	if (r->http_upstream) {
		struct kars_uhttp_stats us;

		kars_uhttp_get_stats(r->http_upstream, &us);
		metric(out, sb, "kars_router_upstream_connects_total", "counter",
		       "Connections opened to the model upstream.", us.connects);
		metric(out, sb, "kars_router_upstream_reuses_total", "counter",
		       "Requests sent on a kept-alive upstream connection.", us.reuses);
		metric(out, sb, "kars_router_upstream_idle_connections", "gauge",
		       "Upstream connections kept alive, unused.", us.idle);
	}
	kars_hreq_add_header(req, "Content-Type", "text/plain; version=0.0.4");
	kars_hreq_reply(req, 200, evbuffer_pullup(out, -1), evbuffer_get_length(out));
	evbuffer_free(out);
}

/* Ready means serving as configured: without an InferencePolicy, a
 * governance profile or a usable upstream credential every inference is
 * refused, so the router is not ready. 503 names every reason. */
static void handle_readyz(struct kars_router *r, struct kars_hreq *req)
{
	json_t *reasons = json_array(), *doc;
	struct kars_credential_stats cs = {.valid = true};
	const char *gov = kars_gov_gate_unready(r);
	char *text;

	if (!reasons) {
		reply_text(req, 503, "application/json", "{\"ready\":false}"); /* fail closed */
		return;
	}
	if (!r->policy)
		json_array_append_new(reasons, json_string("no InferencePolicy loaded"));
	if (gov)
		json_array_append_new(reasons,
				      json_sprintf("governance denies every action: %s", gov));
	if (r->credential)
		kars_credential_get_stats(r->credential, &cs);
	if (!cs.valid)
		json_array_append_new(reasons,
				      json_sprintf("no valid upstream credential%s%s",
						   cs.last_error[0] ? ": " : "", cs.last_error));
	doc = json_array_size(reasons) ? json_pack("{s:b,s:O,s:o}", "ready", 0, "reason",
						   json_array_get(reasons, 0), "reasons", reasons)
				       : json_pack("{s:b}", "ready", 1);
	if (!json_array_size(reasons))
		json_decref(reasons);
	text = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	reply_text(req, doc && json_is_true(json_object_get(doc, "ready")) ? 200 : 503,
		   "application/json", text ? text : "{\"ready\":false}");
	free(text);
	json_decref(doc);
}

static void on_request(struct kars_hreq *req, void *arg)
{
	struct kars_router *r = arg;
	const char *path = kars_hreq_path(req);

	if (r->draining) {
		/* Stopping: what is in flight finishes, nothing new starts. */
		kars_hreq_close_after(req);
		kars_router_send_error(req, 503, "server_error", "shutting_down",
				       "kars-router is shutting down");
		return;
	}
	for (int i = 0; i < KARS_ROUTE__COUNT; i++) {
		if (strcmp(path, kars_router_routes[i].path) == 0) {
			handle_route(r, req, (enum kars_route)i, NULL);
			return;
		}
	}
	if (strncmp(path, "/v1/models/", 11) == 0) {
		handle_route(r, req, KARS_ROUTE_MODELS, path + 11);
	} else if (strncmp(path, "/kars/v1/", 9) == 0) {
		kars_router_control(r, req, path + 9);
	} else if (strncmp(path, "/agt/", 5) == 0) {
		kars_gov_gate_http(r, req, path + 5);
	} else if (strcmp(path, "/healthz") == 0) {
		reply_text(req, 200, "text/plain", "ok\n");
	} else if (strcmp(path, "/readyz") == 0) {
		handle_readyz(r, req);
	} else if (strcmp(path, "/metrics") == 0) {
		handle_metrics(r, req);
	} else {
		r->rejected++;
		kars_router_send_error(
		    req, 404, "invalid_request_error", "unknown_url",
		    "kars-router does not serve %s (served: /v1/chat/completions, "
		    "/v1/responses, /v1/completions, /v1/embeddings, /v1/models)",
		    path);
	}
}

int kars_router_routes_init(struct kars_router *r, struct kars_err *err)
{
	/* The server's timeout (reading a request, an agent not reading its
	 * answer) also runs while a reply streams; a stream may be quiet as
	 * long as the upstream idle timeout. */
	struct kars_hsrv_config cfg = {
	    .max_head = MAX_REQUEST_HEAD,
	    .max_body = MAX_REQUEST_BODY,
	    .timeout_s = r->cfg.idle_timeout_s + 5,
	    .handler = on_request,
	    .arg = r,
	};

	r->http = kars_hsrv_new(r->base, &cfg, err);
	return r->http ? 0 : -1;
}
