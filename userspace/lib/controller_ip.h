/* controller_ip.h - the InferencePolicy controller: store watches feeding
 * the work queue, the work queue feeding the reconciler (reconcile_ip.h).
 *
 * It lists nothing itself: the watches start at resourceVersion 0, so the
 * log replays every object once (the informer's initial list), then follow
 * live. An InferencePolicy event queues that policy; a KarsSandbox event
 * queues the policy its spec.inferenceRef names (so a new sandbox gets its
 * policy delivered). A reconcile error requeues with jittered exponential
 * backoff; a success forgets the failures and requeues after what the
 * reconciler asked. Single-threaded: the caller polls kars_ipc_fds() and
 * calls kars_ipc_step() with a monotonic clock.
 */
#ifndef KARS_CONTROLLER_IP_H
#define KARS_CONTROLLER_IP_H

#include <stdint.h>

#include "reconcile_ip.h"
#include "workqueue.h"

struct kars_ipc;

/* env is borrowed for the controller's lifetime. */
int kars_ipc_new(const struct kars_ip_env *env, uint64_t seed, struct kars_ipc **out,
		 struct kars_err *err);
void kars_ipc_free(struct kars_ipc *c);

/* Takes in pending watch events, then reconciles every key due at now_ms.
 * Returns ms until the next due key (-1: none, wait for events). */
int64_t kars_ipc_step(struct kars_ipc *c, uint64_t now_ms);

/* The two watch fds, readable when events are pending. */
void kars_ipc_fds(const struct kars_ipc *c, int fds[2]);

/* The queue, for inspection (tests, metrics). */
struct kars_workqueue *kars_ipc_queue(struct kars_ipc *c);

/* The last reconcile error, "" if the last reconcile succeeded. */
const char *kars_ipc_last_error(const struct kars_ipc *c);

#endif
