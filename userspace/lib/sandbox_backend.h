/* sandbox_backend.h - what runs a KarsSandbox: the interface between the
 * KarsSandbox reconciler and a backend (local processes, cgroups and UIDs;
 * later Kubernetes).
 *
 * The reconciler computes the desired sandbox (the runtime plan, karsd's
 * egress apply request, where the router's configuration is delivered) and
 * hands it over; the backend makes it so and reports what it observes. Ready
 * is the backend's observation (the workload runs and its router answers),
 * never "applied". The local backend (userspace/controller/local_backend.h)
 * runs sandboxes as processes on this host; without a backend the controller
 * says so in every KarsSandbox's status (NoBackend).
 */
#ifndef KARS_SANDBOX_BACKEND_H
#define KARS_SANDBOX_BACKEND_H

#include <jansson.h>
#include <stdbool.h>

#include "err.h"

struct kars_sandbox_desired {
	const char *ns, *name;
	long long generation;
	const json_t *plan;	/* runtime_plan.h */
	const json_t *egress;	/* karsd's apply request (egress_compile.h) */
	const char *router_dir; /* where compiled policies are delivered */
};

struct kars_sandbox_observed {
	bool running;	     /* the agent's workload is up */
	bool router_answers; /* its router answers /healthz */
	char message[256];   /* what is wrong, when something is */
};

struct kars_sandbox_backend_ops {
	const char *name;
	/* Create or update to match d; idempotent. */
	int (*apply)(void *ctx, const struct kars_sandbox_desired *d, struct kars_err *err);
	/* Stop and remove everything of ns/name; 0 when there is nothing. */
	int (*remove)(void *ctx, const char *ns, const char *name, struct kars_err *err);
	int (*observe)(void *ctx, const char *ns, const char *name,
		       struct kars_sandbox_observed *out, struct kars_err *err);
};

struct kars_sandbox_backend {
	const struct kars_sandbox_backend_ops *ops;
	void *ctx;
};

#endif
