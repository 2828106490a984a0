/* inference_policy.h - the InferencePolicy a router enforces, as compiled by
 * the controller.
 *
 * The controller compiles the sandbox's InferencePolicy resource to one JSON
 * document (docs/compiled-policy.md) and writes it where the router's
 * configuration says (policy.file). The router parses it
 * strictly (an unknown field or a bad value rejects the whole document, and
 * the previous policy stays), and answers every inference request from one
 * immutable snapshot of it: a reload swaps the snapshot, and requests in
 * flight keep the one they started with.
 *
 * What a policy decides:
 *   - which routes it covers (appliesTo.action); the others are refused;
 *   - which models may be called, and what happens to a request naming
 *     another one (refused, or sent to the policy's own model instead);
 *   - the model chain: primary, then fallbacks in order, walked on 429, 5xx
 *     and transport errors before the agent has received a byte;
 *   - a per-request output token cap, and daily / monthly token budgets;
 *   - a content-safety ceiling per Azure category, checked against the
 *     upstream's own filter annotations.
 */
#ifndef KARS_ROUTER_INFERENCE_POLICY_H
#define KARS_ROUTER_INFERENCE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "policy_compile.h"
#include "sse_usage.h"

#define KARS_POLICY_MAX_MODELS	  64
#define KARS_POLICY_MAX_FALLBACKS 8
#define KARS_POLICY_MODEL_LEN	  257 /* 256 bytes and a NUL */

/* The routes a policy can cover (bit per value). */
enum kars_policy_action {
	KARS_ACTION_CHAT = 0, /* /v1/chat/completions */
	KARS_ACTION_RESPONSES,
	KARS_ACTION_COMPLETIONS,
	KARS_ACTION_EMBEDDINGS,
	KARS_ACTION_IMAGE, /* accepted for compatibility; no image route is served */
	KARS_ACTION__COUNT,
};

/* The four Azure harm categories a ceiling can be set for. */
enum kars_policy_harm {
	KARS_HARM_HATE = 0,
	KARS_HARM_SELF_HARM,
	KARS_HARM_SEXUAL,
	KARS_HARM_VIOLENCE,
	KARS_HARM__COUNT,
};

struct kars_model_ref {
	char provider[32]; /* "" when the policy did not say */
	char deployment[KARS_POLICY_MODEL_LEN];
};

struct kars_inference_policy {
	int refs;
	char name[320]; /* "namespace/name" of the InferencePolicy */
	char display_name[256];
	char source[4096]; /* the file it was read from */
	char digest[KARS_DIGEST_LEN];
	uint64_t loaded_at_ns; /* CLOCK_REALTIME */

	uint32_t actions; /* bit per enum kars_policy_action */

	/* modelPreference: chain[0] is the primary; chain_len 0 = none. */
	struct kars_model_ref chain[1 + KARS_POLICY_MAX_FALLBACKS];
	size_t chain_len;
	/* allowedModels, as listed; the chain's models are allowed too. */
	char allowed[KARS_POLICY_MAX_MODELS][KARS_POLICY_MODEL_LEN];
	size_t n_allowed;
	bool override_disallowed; /* onDisallowedModel "override" (else "deny") */

	uint64_t per_request_tokens; /* 0 = no cap */
	uint64_t daily_tokens;	     /* 0 = unlimited */
	uint64_t monthly_tokens;     /* 0 = unlimited */

	/* contentSafety: the worst severity allowed per category, NONE = any. */
	enum kars_cf_severity ceiling[KARS_HARM__COUNT];
	bool require_prompt_shields;
};

/* Parses a compiled policy document (buf need not be NUL-terminated); its
 * digest is over "namespace/name" and buf, as the controller computes it.
 * source names it in errors ("inference-policy.json: modelPreference.primary: ...").
 * provider is the router's upstream kind ("openai" / "azure"): a policy naming
 * another provider is refused. sandbox is "namespace/name": a policy whose
 * appliesTo.sandboxName is another sandbox is refused. Returns a new snapshot
 * (refs 1) or NULL with err set. */
struct kars_inference_policy *kars_inference_policy_parse(const char *buf, size_t len,
							  const char *source, const char *provider,
							  const char *sandbox,
							  struct kars_err *err);
/* Reads and parses path (following symlinks, as Kubernetes mounts them). */
struct kars_inference_policy *kars_inference_policy_load(const char *path, const char *provider,
							 const char *sandbox, struct kars_err *err);

struct kars_inference_policy *kars_inference_policy_ref(struct kars_inference_policy *p);
void kars_inference_policy_unref(struct kars_inference_policy *p);

bool kars_inference_policy_covers(const struct kars_inference_policy *p,
				  enum kars_policy_action action);
bool kars_inference_policy_allows_model(const struct kars_inference_policy *p, const char *model);

/* The models to try for a request of action that named requested (NULL or ""
 * when it named none), in order, into out[] (pointers into p or requested).
 * Returns the count (>= 1), or 0 with reason set when the request must be
 * refused: -EPERM-worthy ("model_not_allowed") or a missing model. *code gets
 * the OpenAI error code to answer with. */
size_t kars_inference_policy_models(const struct kars_inference_policy *p,
				    enum kars_policy_action action, const char *requested,
				    const char *out[1 + KARS_POLICY_MAX_FALLBACKS],
				    const char **code, char *reason, size_t reason_len);

/* Checks a response's content-filter annotations against the ceilings.
 * Returns true (with reason) when the policy blocks it. */
bool kars_inference_policy_blocks_content(const struct kars_inference_policy *p,
					  const struct kars_content_filter *f, char *reason,
					  size_t reason_len);

const char *kars_policy_action_name(enum kars_policy_action a);
/* A model or deployment name: 1-256 of letters, digits, - _ . : (nothing that
 * needs escaping in a URL path or a log line). */
bool kars_model_name_ok(const char *name);

#endif
