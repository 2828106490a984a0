/* gov_engine.c - the current profile, read lock-free, replaced on reload.
 *
 * Readers and a publisher share one atomic pointer to the current compiled
 * profile. Reclamation uses hazard slots: each reader thread owns a slot
 * (cache-line sized) and, for the length of one evaluation, announces there
 * the profile it reads:
 *
 *	reader:    p = cur; do { slot = p; q = cur; } while (q != p && (p = q));
 *	           evaluate(p); slot = NULL;
 *	publisher: old = exchange(cur, new); for each slot: wait while slot == old;
 *	           free(old);
 *
 * All four accesses to cur and the slots are sequentially consistent, so
 * either the publisher's scan sees a reader's announcement (and waits for it
 * to end), or the reader's re-read of cur comes after the exchange, sees the
 * new profile and never touches the old one. A reader costs one store, one
 * load and one release store; it never waits. The publisher waits at most
 * one evaluation per reader (tens of nanoseconds), yielding the CPU.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>

#include "gov_priv.h"

struct gov_slot {
	_Atomic(const struct kars_gov_profile *) hazard;
	atomic_bool used;
	char pad[64 - sizeof(void *) - sizeof(atomic_bool)];
} __attribute__((aligned(64)));

struct kars_gov_engine {
	_Atomic(struct kars_gov_profile *) cur;
	_Atomic uint64_t generation;
	struct gov_slot slots[KARS_GOV_READERS_MAX];
};

struct kars_gov_reader {
	struct kars_gov_engine *engine;
	struct gov_slot *slot;
};

struct kars_gov_engine *kars_gov_engine_new(void)
{
	struct kars_gov_engine *e = aligned_alloc(64, sizeof(*e));

	if (!e)
		return NULL;
	atomic_init(&e->cur, NULL);
	atomic_init(&e->generation, 0);
	for (size_t i = 0; i < KARS_GOV_READERS_MAX; i++) {
		atomic_init(&e->slots[i].hazard, NULL);
		atomic_init(&e->slots[i].used, false);
	}
	return e;
}

void kars_gov_engine_free(struct kars_gov_engine *e)
{
	if (!e)
		return;
	kars_gov_profile_free(atomic_load(&e->cur));
	free(e);
}

void kars_gov_engine_publish(struct kars_gov_engine *e, struct kars_gov_profile *p)
{
	struct kars_gov_profile *old = atomic_exchange(&e->cur, p);

	atomic_fetch_add(&e->generation, 1);
	if (!old)
		return;
	for (size_t i = 0; i < KARS_GOV_READERS_MAX; i++) {
		while (atomic_load(&e->slots[i].hazard) == old)
			sched_yield();
	}
	kars_gov_profile_free(old);
}

uint64_t kars_gov_engine_generation(const struct kars_gov_engine *e)
{
	return atomic_load(&((struct kars_gov_engine *)e)->generation);
}

int kars_gov_reader_open(struct kars_gov_engine *e, struct kars_gov_reader **out)
{
	struct kars_gov_reader *r;

	*out = NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	for (size_t i = 0; i < KARS_GOV_READERS_MAX; i++) {
		bool expected = false;

		if (atomic_compare_exchange_strong(&e->slots[i].used, &expected, true)) {
			r->engine = e;
			r->slot = &e->slots[i];
			*out = r;
			return 0;
		}
	}
	free(r);
	return -EBUSY;
}

void kars_gov_reader_close(struct kars_gov_reader *r)
{
	if (!r)
		return;
	atomic_store(&r->slot->hazard, NULL);
	atomic_store(&r->slot->used, false);
	free(r);
}

void kars_gov_evaluate(struct kars_gov_reader *r, const struct kars_gov_request *req,
		       struct kars_gov_decision *out)
{
	struct kars_gov_engine *e = r->engine;
	const struct kars_gov_profile *p = atomic_load(&e->cur), *q;

	for (;;) {
		atomic_store(&r->slot->hazard, p);
		q = atomic_load(&e->cur);
		if (q == p)
			break;
		p = q;
	}
	kars_gov_profile_evaluate(p, req, out);
	atomic_store_explicit(&r->slot->hazard, NULL, memory_order_release);
}
