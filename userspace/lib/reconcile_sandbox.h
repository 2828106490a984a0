/* reconcile_sandbox.h - the KarsSandbox reconciler.
 *
 * One pass for one object:
 *
 *   1. gone: nothing. Being deleted: the backend removes what it runs, then
 *      the finalizer kars.azure.com/sandbox-cleanup goes.
 *   2. add that finalizer if missing;
 *   3. spec.a2a.expiresAt at most 30 days after status.a2aWindowStart (when
 *      this generation was first seen; a2a_window.h), else Degraded,
 *      SpecInvalid, naming the field, and nothing is handed over;
 *   4. the runtime plan (runtime_plan.h): AdapterMissing / ShapeInvalid are
 *      Degraded with RuntimeReady=False, and nothing is handed over;
 *   5. spec.inferenceRef must name an InferencePolicy of the namespace
 *      (else Degraded, InferencePolicyNotFound, looked at again in 60 s);
 *   6. the egress policy compiled for karsd (egress_compile.h), with the
 *      hosts of the sandbox's EgressApprovals in force (phase not Expired,
 *      expiresAt in the future);
 *   7. the desired sandbox handed to the backend (sandbox_backend.h), whose
 *      observation decides: Running with Ready=True only when the workload
 *      runs and its router answers; Pending and Ready=False with the
 *      backend's message otherwise (requeued with backoff). Without a
 *      backend: Pending, RuntimeReady=False and Ready=False, reason
 *      NoBackend; the object is planned, not run, and its status says so.
 */
#ifndef KARS_RECONCILE_SANDBOX_H
#define KARS_RECONCILE_SANDBOX_H

#include "egress_compile.h"
#include "reconcile_policy.h"
#include "sandbox_backend.h"

#define KARS_SANDBOX_FINALIZER "kars.azure.com/sandbox-cleanup"

struct kars_sandbox_env {
	struct kars_store *store;
	const struct kars_sandbox_backend *backend; /* NULL: none (NoBackend) */
	const char *out_dir;			    /* the routers' directories */
	struct kars_egress_opts egress;
	const char *now; /* RFC 3339; NULL: the clock */
};

int kars_reconcile_sandbox(const struct kars_sandbox_env *env, const char *ns, const char *name,
			   struct kars_reconcile_result *res, struct kars_err *err);

/* The same, as controller.h's kars_sandbox_reconcile_fn (ctx: the env). */
int kars_reconcile_sandbox_fn(void *ctx, const char *ns, const char *name,
			      struct kars_reconcile_result *res, struct kars_err *err);

#endif
