/* reconcile_ip.h - the InferencePolicy reconciler.
 *
 * One pass for one object, as the controller's work queue calls it:
 *
 *   1. gone: nothing to do. Being deleted: remove what was delivered, then
 *      the finalizer kars.azure.com/inferencepolicy-cleanup.
 *   2. add that finalizer if missing;
 *   3. compile the spec to canonical bytes and digest (policy_compile.h);
 *   4. deliver the bytes to every KarsSandbox of the namespace whose
 *      spec.inferenceRef names the policy:
 *      <out_dir>/<namespace>/<sandbox>/inference-policy.json, written
 *      atomically and only when different;
 *   5. status: Ready only when every such sandbox's router reports the
 *      compiled digest loaded (Ready=True RouterEnforcing); until then phase
 *      Compiled with Ready=False AwaitingRouterEnforcement, or
 *      NoSandboxesReferencing; conditions carry observedGeneration; status is
 *      written only when it changed.
 *
 * The result says when to look again: 15 s while waiting for routers,
 * 300 s otherwise. Errors (e.g. a Conflict) are for the caller to requeue
 * with backoff.
 */
#ifndef KARS_RECONCILE_IP_H
#define KARS_RECONCILE_IP_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "store.h"

#define KARS_IP_FINALIZER "kars.azure.com/inferencepolicy-cleanup"
#define KARS_IP_FILE	  "inference-policy.json"

struct kars_ip_env {
	struct kars_store *store;
	const char *out_dir;
	/* The digest a sandbox's router reports loaded, or NULL if none or
	 * unreachable. ctx is passed through. */
	const char *(*loaded_digest)(void *ctx, const char *ns, const char *sandbox);
	void *ctx;
	const char *now; /* RFC 3339 for lastTransitionTime; NULL: the clock */
};

struct kars_reconcile_result {
	uint64_t requeue_after_ms; /* 0: nothing scheduled */
	bool status_written;
	unsigned files_written, files_removed;
};

int kars_reconcile_inferencepolicy(const struct kars_ip_env *env, const char *ns, const char *name,
				   struct kars_reconcile_result *res, struct kars_err *err);

#endif
