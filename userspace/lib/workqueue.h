/* workqueue.h - the controller's work queue, as client-go's rate-limited
 * queue behaves:
 *
 *   - de-duplication: a key is queued at most once; a key added while it is
 *     being processed is queued again when processing is done, never handed
 *     to two workers at once;
 *   - delayed adds (requeue after N ms), keeping the earliest due time;
 *   - rate-limited requeue after a failure: base * 2^failures, capped, with
 *     +-jitter so that many failing objects do not retry in lockstep;
 *     forget() resets a key's failures after a success.
 *
 * Time is passed in (now_ms, any monotonic clock), so the queue is a pure
 * data structure: the controller loop asks next_due_ms() how long it may
 * sleep. Linear in the number of keys, which is fine for a node's objects.
 */
#ifndef KARS_WORKQUEUE_H
#define KARS_WORKQUEUE_H

#include <stddef.h>
#include <stdint.h>

struct kars_workqueue;

/* jitter_pct: 20 means each rate-limited delay is scaled by [0.8, 1.2]. */
struct kars_workqueue *kars_wq_new(uint64_t base_ms, uint64_t max_ms, unsigned jitter_pct,
				   uint64_t seed);
void kars_wq_free(struct kars_workqueue *q);

void kars_wq_add(struct kars_workqueue *q, const char *key, uint64_t now_ms);
void kars_wq_add_after(struct kars_workqueue *q, const char *key, uint64_t delay_ms,
		       uint64_t now_ms);
/* Requeues after the key's backoff and counts a failure; returns the delay. */
uint64_t kars_wq_add_rate_limited(struct kars_workqueue *q, const char *key, uint64_t now_ms);
void kars_wq_forget(struct kars_workqueue *q, const char *key);
unsigned kars_wq_failures(const struct kars_workqueue *q, const char *key);

/* The next key that is due (the caller now processes it), or NULL. The
 * pointer stays valid until kars_wq_done for that key. */
const char *kars_wq_get(struct kars_workqueue *q, uint64_t now_ms);
void kars_wq_done(struct kars_workqueue *q, const char *key, uint64_t now_ms);

/* -1: nothing queued; 0: a key is due now; else ms until the next one. */
int64_t kars_wq_next_due_ms(const struct kars_workqueue *q, uint64_t now_ms);
/* Keys queued (due or delayed), not counting those being processed. */
size_t kars_wq_len(const struct kars_workqueue *q);

#endif
