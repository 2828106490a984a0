/* reconcile_policy.h - the reconciler every compiled policy kind shares
 * (InferencePolicy, ToolPolicy, EgressApproval): compile, deliver to the
 * sandboxes that use the policy, Ready only on the router's echo.
 *
 * One pass for one object, as the controller's work queue calls it:
 *
 *   1. gone: nothing to do. Being deleted: remove every delivered file, then
 *      the kind's finalizer.
 *   2. add the finalizer if missing;
 *   3. time-bound kinds (EgressApproval): no longer in force -> remove the
 *      files, write the status (Expired), done;
 *   4. compile the object to canonical bytes and digest (policy_compile.h);
 *      a spec the compiler refuses is Degraded (SpecInvalid / NotSupported)
 *      and nothing is delivered;
 *   5. deliver the bytes to <out_dir>/<namespace>/<sandbox>/<file> of every
 *      KarsSandbox of the namespace that uses the policy (deliver.h), and
 *      remove the file from every other sandbox directory of the namespace
 *      (a sandbox that switched policies must not keep the old one);
 *   6. status: the ready phase with Ready=True RouterEnforcing only when
 *      every using sandbox's router reports the compiled digest; until then
 *      the waiting phase with Ready=False AwaitingRouterEnforcement, or
 *      NoSandboxesReferencing; conditions carry observedGeneration; status
 *      is written only when it changed.
 *
 * The result says when to look again: while waiting for routers, with
 * backoff up to 15 s (res->waiting); 300 s otherwise (sooner when an
 * approval expires). Errors (a Conflict,
 * a full disk) are for the caller to requeue with backoff.
 */
#ifndef KARS_RECONCILE_POLICY_H
#define KARS_RECONCILE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "policy_compile.h"
#include "store.h"

#define KARS_REQUEUE_WAITING_MS 15000
#define KARS_REQUEUE_STEADY_MS	300000

struct kars_policy_env {
	struct kars_store *store;
	const char *out_dir;
	/* The digest the router of sandbox ns/sandbox reports loaded for the
	 * policy `kind` named "<ns>/<name>", or NULL if none or unreachable,
	 * with why (why_len bytes) saying which. ctx is passed through. */
	const char *(*loaded_digest)(void *ctx, const char *kind, const char *ns,
				     const char *sandbox, const char *name, char *why,
				     size_t why_len);
	void *ctx;
	const char *now; /* RFC 3339 for lastTransitionTime; NULL: the clock */
};

struct kars_reconcile_result {
	uint64_t requeue_after_ms; /* 0: nothing scheduled */
	bool status_written;
	bool waiting; /* for a router: requeue with backoff, at most requeue_after_ms */
	unsigned files_written, files_removed;
};

/* What differs between the compiled kinds. */
struct kars_policy_kind {
	const char *kind; /* "InferencePolicy" */
	const char *finalizer;
	const char *ready_phase, *waiting_phase, *degraded_phase, *inactive_phase;
	bool version_hash; /* status.versionHash (InferencePolicy) */
	int (*compile)(const json_t *obj, struct kars_compiled *out, struct kars_err *err);
	/* Does this KarsSandbox (same namespace) use the policy? */
	bool (*uses)(const json_t *policy, const json_t *sandbox);
	/* The delivered file, relative to the sandbox's directory. */
	void (*file)(const json_t *policy, char *buf, size_t len);
	/* Was the file at path delivered by this policy? NULL: yes. */
	bool (*owns)(const char *path, const json_t *policy);
	/* Time-bound kinds: records the validity window in status and says
	 * whether the policy is in force at now (RFC 3339). *requeue_ms is
	 * lowered to when that changes. NULL: always in force. */
	bool (*in_force)(const json_t *obj, json_t *status, const char *now, uint64_t *requeue_ms);
};

extern const struct kars_policy_kind kars_policy_inferencepolicy;
extern const struct kars_policy_kind kars_policy_toolpolicy;
extern const struct kars_policy_kind kars_policy_egressapproval;

/* The compiled kinds, NULL-terminated. */
extern const struct kars_policy_kind *const kars_policy_kinds[];

int kars_reconcile_policy(const struct kars_policy_kind *pk, const struct kars_policy_env *env,
			  const char *ns, const char *name, struct kars_reconcile_result *res,
			  struct kars_err *err);

#endif
