/* controller.h - the controller loop: store watches feeding the work
 * queue, the work queue feeding the reconcilers (reconcile_policy.h for
 * InferencePolicy, ToolPolicy and EgressApproval; a KarsSandbox reconciler
 * when one is given).
 *
 * As an informer does: it lists each kind (every object is queued once),
 * then watches from the list's resourceVersion, so a restarted controller
 * sees the current state without replaying the store's history and misses
 * no write made while it was down. A policy event queues that policy ("Kind/namespace/name"); a
 * KarsSandbox event queues every policy of its namespace (so a new sandbox
 * gets its policies delivered and one that switched policies loses the old
 * ones) and the sandbox itself; an InferencePolicy or EgressApproval event
 * also queues the namespace's sandboxes (which depend on them). A reconcile error requeues with
 * jittered exponential backoff; a success forgets the failures and requeues after what the
 * reconciler asked. Single-threaded: the caller polls kars_ctl_fds() and calls kars_ctl_step() with
 * a monotonic clock.
 */
#ifndef KARS_CONTROLLER_H
#define KARS_CONTROLLER_H

#include <stdint.h>

#include "reconcile_policy.h"
#include "workqueue.h"

#define KARS_CTL_MAX_FDS 8

struct kars_controller;

/* The KarsSandbox reconciler, if any: one pass for ns/name. */
typedef int (*kars_sandbox_reconcile_fn)(void *ctx, const char *ns, const char *name,
					 struct kars_reconcile_result *res, struct kars_err *err);

struct kars_ctl_opts {
	const struct kars_policy_env *env; /* borrowed for the controller's lifetime */
	kars_sandbox_reconcile_fn reconcile_sandbox;
	void *sandbox_ctx;
	uint64_t seed; /* of the backoff jitter */
};

int kars_ctl_new(const struct kars_ctl_opts *opts, struct kars_controller **out,
		 struct kars_err *err);
void kars_ctl_free(struct kars_controller *c);

/* Takes in pending watch events, then reconciles every key due at now_ms.
 * Returns ms until the next due key (-1: none, wait for events). */
int64_t kars_ctl_step(struct kars_controller *c, uint64_t now_ms);

/* The watch fds, readable when events are pending; returns how many. */
size_t kars_ctl_fds(const struct kars_controller *c, int fds[KARS_CTL_MAX_FDS]);

/* The highest resourceVersion listed or seen in an event so far. */
uint64_t kars_ctl_last_rv(const struct kars_controller *c);

/* The queue, for inspection (tests, metrics). */
struct kars_workqueue *kars_ctl_queue(struct kars_controller *c);

/* The last reconcile error, "" if the last reconcile succeeded. */
const char *kars_ctl_last_error(const struct kars_controller *c);

#endif
