/* gov_gate.h - ToolPolicy in kars-router: inference and tools, /agt/ endpoints.
 *
 * The router holds one governance engine (libkars governance.h) loaded from
 * the AGT profile file the controller writes (config governance.profileFile,
 * hot-reloaded like the InferencePolicy file), a rate limiter and behaviour
 * monitor (gov_limits.h) and a trust manager (gov_trust.h). The request path
 * calls two functions:
 *
 *   kars_gov_gate_inference()  before every inference: the principal's and
 *       the global rate limit, then "inference:<route>:<model>"; then each
 *       tool the request advertises ("tool.invoke:<name>"): denied tools are
 *       removed from the body, in one audit record.
 *   kars_gov_gate_http()       the /agt/ endpoints: evaluate, outcome,
 *       status, trust.
 *
 * Profile file: missing -> the default profile (no rules, unmatched as
 * configured, allow by default: a sandbox without a ToolPolicy); present
 * and valid -> it; present and invalid -> the previous profile stays, or,
 * when there is none, nothing is allowed (fail closed) and /readyz says so
 * until a good one arrives. Every load, refusal and fall-back is audited.
 *
 * A tool_choice or function_call forcing a denied tool, or requiring a
 * tool call when every advertised tool was removed, is refused (403), not
 * dropped: the request could not be served as written.
 */
#ifndef KARS_ROUTER_GOV_GATE_H
#define KARS_ROUTER_GOV_GATE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "err.h"
#include "router.h"

struct json_t;
struct kars_file_watch;
struct kars_gov_engine;
struct kars_gov_limiter;
struct kars_gov_profile;
struct kars_gov_reader;
struct kars_trust;

/* Shared by gov_gate.c (load, reload, the inference gate) and gov_agt.c
 * (the /agt/ endpoints). Used from the event loop's thread only. */
struct kars_gov_gate {
	struct kars_router *r;
	struct kars_gov_engine *engine;
	struct kars_gov_reader *reader;
	struct kars_gov_limiter *limiter;
	struct kars_trust *trust;
	struct kars_file_watch *watch;
	const struct kars_gov_profile *cur; /* as published (NULL: none, all denied) */
	bool is_default;		    /* cur is the built-in default */
	bool seen;			    /* sig is of a file we looked at */
	struct stat sig;
	char error[512]; /* the last refused load, "" when the last one loaded */
	/* The compiled ToolPolicy in force (tool_policy_file.h): "" when the
	 * profile in force is the default or a hand-written one. */
	char policy_name[256];
	char digest[80];
	uint64_t loaded_at_ns;
	uint64_t reloads, reload_errors;
	uint64_t denied, tools_stripped, evaluations;
};

/* Opens the engine, the limiter and the trust state (a torn or corrupt
 * trust file is an error: the router does not start), loads the profile and
 * starts watching it. Needs r->base, r->cfg and r->audit. */
struct kars_gov_gate *kars_gov_gate_new(struct kars_router *r, struct kars_err *err);
void kars_gov_gate_free(struct kars_gov_gate *g);

/* Before forwarding an inference of route to models[0] (the model the
 * router settled on), then models[1..] (the fallbacks: denied ones leave the
 * chain, *n_models shrinks). 0: go on (body may have lost tools: then
 * *body_changed is set, so the edited body is what goes upstream); -1:
 * refused, answered and audited (403 policy_denied / approval_required /
 * monitor_*, or 429 rate_limit_exceeded with Retry-After). */
int kars_gov_gate_inference(struct kars_router *r, struct kars_hreq *req, enum kars_route route,
			    struct json_t *body, const char **models, size_t *n_models,
			    bool *body_changed);

/* Why governance keeps the router from being ready, or NULL when a profile
 * is in force: a first profile the loader refused leaves none, and every
 * governed action is denied until a good one arrives. */
const char *kars_gov_gate_unready(const struct kars_router *r);

/* The kars_router_governance_* lines of /metrics. */
struct evbuffer;
void kars_gov_gate_metrics(struct kars_router *r, struct evbuffer *out);

/* /agt/<path>. */
void kars_gov_gate_http(struct kars_router *r, struct kars_hreq *req, const char *path);

#endif
