/* router.h - the state of one kars-router process.
 *
 * kars-router is the sandbox's only way to a model: the agent calls it at
 * 127.0.0.1:8443 as it would call the OpenAI API, and it forwards to the
 * configured upstream with the sandbox's credential, which the agent never
 * sees. Every inference request passes the sandbox's InferencePolicy (routes,
 * models, token cap, budgets, content floor), is counted, and leaves a record
 * in the audit chain.
 *
 * Files: proxy.c (HTTP routes, the gates before the upstream), exchange.c
 * (one request's upstream attempts, failover, relaying and accounting),
 * control.c (the /kars/v1/ control endpoints), policy_watch.c (hot reload),
 * gov_gate.c (ToolPolicy on inference and tools, the /agt/ endpoints),
 * inference_policy.c, budget.c, config.c, http_server.c (the agent-facing
 * HTTP/1.1 server), upstream_http.c (the HTTP/1.1 client for the model
 * upstream), upstream.c (libcurl on libevent, for the token services),
 * egress_*.c (the egress proxy on 127.0.0.1:8444, egress_proxy.h).
 */
#ifndef KARS_ROUTER_H
#define KARS_ROUTER_H

#include <stdbool.h>
#include <stdint.h>

#include "budget.h"
#include "config.h"
#include "inference_policy.h"

struct event;
struct event_base;
struct kars_audit;
struct kars_credential;
struct kars_egress_proxy;
struct kars_gov_gate;
struct kars_hreq;
struct kars_hsrv;
struct kars_upstream;
struct kars_uhttp;

enum kars_route {
	KARS_ROUTE_CHAT = 0,
	KARS_ROUTE_RESPONSES,
	KARS_ROUTE_COMPLETIONS,
	KARS_ROUTE_EMBEDDINGS,
	KARS_ROUTE_MODELS,
	KARS_ROUTE__COUNT,
};

struct kars_router_route {
	const char *path;
	int method; /* enum kars_http_method */
	const char *upstream_path;
	const char *name;
	enum kars_policy_action action; /* KARS_ACTION__COUNT: not an inference */
	enum kars_openai_route openai;
};

extern const struct kars_router_route kars_router_routes[KARS_ROUTE__COUNT];

struct kars_router {
	struct event_base *base;
	struct kars_hsrv *http;		  /* the agent-facing server (http_server.c) */
	struct kars_upstream *upstream;	  /* libcurl: the token services */
	struct kars_uhttp *http_upstream; /* the model upstream (upstream_http.c) */
	struct kars_router_config cfg;
	struct kars_credential *credential; /* the upstream's key or token */

	/* the policy in force (NULL: none loaded, inference refused) and the
	 * last reload's error, "" when it loaded */
	struct kars_inference_policy *policy;
	char policy_error[512];
	uint64_t policy_reloads, policy_reload_errors;
	/* PUT /kars/v1/model: a model to use instead of the policy's primary;
	 * it must stay allowed by the policy in force ("" = none) */
	char model_override[KARS_POLICY_MODEL_LEN];

	/* exchanges in progress; after SIGTERM (draining) no new connection is
	 * accepted, new requests get 503, and the loop ends when the last one
	 * finishes or at cfg.drain_timeout_ms */
	uint64_t inflight;
	bool draining;
	struct event *drain_timer;

	struct kars_budget budget;
	struct kars_audit *audit;
	struct event *tick;  /* audit group commit, budget persistence */
	uint64_t tick_at;    /* when it is due (CLOCK_MONOTONIC ns) */
	uint64_t budget_due; /* when the dirty budget is written (0: not dirty) */
	struct kars_policy_watch *watch;
	struct kars_gov_gate *gov;	  /* ToolPolicy, rate limits, trust (gov_gate.c) */
	struct kars_egress_proxy *egress; /* egressProxy (egress_proxy.c); NULL: none */

	/* metrics: requests by route and status class (1xx..5xx), upstream errors */
	uint64_t requests[KARS_ROUTE__COUNT][6];
	uint64_t upstream_errors;
	uint64_t rejected;
	uint64_t denied;    /* refused by policy (403 / 429) */
	uint64_t failovers; /* attempts moved to the next model */
	uint64_t tokens_in, tokens_out;
	uint64_t audit_errors;
};

/* Creates r->http, the server of the routes (not listening yet). */
int kars_router_routes_init(struct kars_router *r, struct kars_err *err);

/* An error in the OpenAI shape {"error":{"message","type","code","param"}}. */
void kars_router_send_error(struct kars_hreq *req, int status, const char *type, const char *code,
			    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Answers with text (malloc'd, taken; NULL: an empty body) and a newline. */
void kars_router_reply_line(struct kars_hreq *req, int status, const char *type, char *text);

/* One /metrics sample with its HELP and TYPE lines, labelled by sandbox. */
struct evbuffer;
void kars_router_metric(struct evbuffer *out, const char *sandbox, const char *name,
			const char *type, const char *help, uint64_t value);

/* One audit record for a decision; failures are logged and counted, never
 * fatal to the request (the audit file's own errors say why). */
struct kars_audit_record;
void kars_router_audit(struct kars_router *r, const struct kars_audit_record *rec);

/* state.c: opens the budget file and the audit chain; the timer callback
 * (r->tick) that flushes them; kars_router_wake() arms it after an append
 * or a charge. */
int kars_router_open_state(struct kars_router *r, struct kars_err *err);
void kars_router_on_tick(int fd, short what, void *arg);
void kars_router_wake(struct kars_router *r);
/* CLOCK_MONOTONIC in ns: latencies and the group-commit timer. */
uint64_t kars_router_mono_ns(void);

/* main.c: the first SIGTERM or SIGINT starts draining, a second one (or
 * the deadline) ends the loop; kars_router_exchange_done() counts an
 * exchange out and ends the loop when draining and it was the last. */
void kars_router_exchange_done(struct kars_router *r);

/* Control endpoints, under /kars/v1/. */
void kars_router_control(struct kars_router *r, struct kars_hreq *req, const char *path);
/* Who is calling (sock_diag): 0 with *uid set when allowed (a UID of
 * control.allowedUids, or the agent's when agent_ok); otherwise the 403 is
 * sent (and audited for mutations) and -1 returned. */
int kars_router_authorise(struct kars_router *r, struct kars_hreq *req, const char *action,
			  bool mutation, bool agent_ok, uint32_t *uid);
/* The audit record of a control request by uid (principal "uid:N"). */
void kars_router_audit_control(struct kars_router *r, uint32_t uid, const char *action,
			       const char *decision, const char *reason);
/* Sends doc (taken) as the JSON body; a NULL doc is a 500. */
struct json_t;
void kars_router_reply_json(struct kars_hreq *req, int status, struct json_t *doc);

/* entries[] of /kars/v1/policy-status (policy_entries.c): one per policy
 * kind the router loads; *loaded counts those with a digest. */
struct json_t *kars_router_policy_entries(const struct kars_router *r, int *loaded);

#endif
