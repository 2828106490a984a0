/* workqueue.c - see workqueue.h. One entry per key ever seen: its state,
 * due time and failure count, in a flat array. */
#include "workqueue.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum { IDLE, QUEUED, PROCESSING };

struct entry {
	char *key;
	int state;
	bool dirty;   /* added again while PROCESSING */
	uint64_t due; /* when QUEUED (or, if dirty, when to queue after done) */
	uint64_t seq; /* FIFO order among keys due at the same time */
	unsigned failures;
};

struct kars_workqueue {
	struct entry *e;
	size_t n, cap;
	uint64_t base, max, rng, seq;
	unsigned jitter;
};

struct kars_workqueue *kars_wq_new(uint64_t base_ms, uint64_t max_ms, unsigned jitter_pct,
				   uint64_t seed)
{
	struct kars_workqueue *q = calloc(1, sizeof(*q));

	if (!q)
		return NULL;
	q->base = base_ms ? base_ms : 1;
	q->max = max_ms < q->base ? q->base : max_ms;
	q->jitter = jitter_pct > 100 ? 100 : jitter_pct;
	q->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
	return q;
}

void kars_wq_free(struct kars_workqueue *q)
{
	if (!q)
		return;
	for (size_t i = 0; i < q->n; i++)
		free(q->e[i].key);
	free(q->e);
	free(q);
}

static struct entry *find(const struct kars_workqueue *q, const char *key)
{
	for (size_t i = 0; i < q->n; i++)
		if (!strcmp(q->e[i].key, key))
			return &q->e[i];
	return NULL;
}

static struct entry *find_or_add(struct kars_workqueue *q, const char *key)
{
	struct entry *e = find(q, key);

	if (e)
		return e;
	if (q->n == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 16;
		struct entry *bigger = realloc(q->e, cap * sizeof(*bigger));

		if (!bigger)
			return NULL;
		q->e = bigger;
		q->cap = cap;
	}
	e = &q->e[q->n];
	memset(e, 0, sizeof(*e));
	e->key = strdup(key);
	if (!e->key)
		return NULL;
	q->n++;
	return e;
}

void kars_wq_add_after(struct kars_workqueue *q, const char *key, uint64_t delay_ms,
		       uint64_t now_ms)
{
	struct entry *e = find_or_add(q, key);
	uint64_t due = now_ms + delay_ms;

	if (!e)
		return;
	switch (e->state) {
	case IDLE:
		e->state = QUEUED;
		e->due = due;
		e->seq = q->seq++;
		break;
	case QUEUED:
		if (due < e->due) { /* the earliest wins */
			e->due = due;
			e->seq = q->seq++;
		}
		break;
	case PROCESSING:
		if (!e->dirty || due < e->due)
			e->due = due;
		e->dirty = true;
		break;
	}
}

void kars_wq_add(struct kars_workqueue *q, const char *key, uint64_t now_ms)
{
	kars_wq_add_after(q, key, 0, now_ms);
}

static uint64_t next_random(struct kars_workqueue *q)
{
	/* xorshift64* */
	q->rng ^= q->rng >> 12;
	q->rng ^= q->rng << 25;
	q->rng ^= q->rng >> 27;
	return q->rng * 2685821657736338717ull;
}

uint64_t kars_wq_add_rate_limited(struct kars_workqueue *q, const char *key, uint64_t now_ms)
{
	struct entry *e = find_or_add(q, key);
	uint64_t delay = q->base;
	int64_t span, offset;

	if (!e)
		return 0;
	for (unsigned i = 0; i < e->failures && delay < q->max; i++)
		delay *= 2;
	if (delay > q->max)
		delay = q->max;
	e->failures++;
	span = (int64_t)(delay * q->jitter / 100);
	if (span) {
		offset = (int64_t)(next_random(q) % (uint64_t)(2 * span + 1)) - span;
		delay = (uint64_t)((int64_t)delay + offset);
	}
	kars_wq_add_after(q, key, delay, now_ms);
	return delay;
}

void kars_wq_forget(struct kars_workqueue *q, const char *key)
{
	struct entry *e = find(q, key);

	if (e)
		e->failures = 0;
}

unsigned kars_wq_failures(const struct kars_workqueue *q, const char *key)
{
	const struct entry *e = find(q, key);

	return e ? e->failures : 0;
}

const char *kars_wq_get(struct kars_workqueue *q, uint64_t now_ms)
{
	struct entry *best = NULL;

	for (size_t i = 0; i < q->n; i++) {
		struct entry *e = &q->e[i];

		if (e->state != QUEUED || e->due > now_ms)
			continue;
		if (!best || e->due < best->due || (e->due == best->due && e->seq < best->seq))
			best = e;
	}
	if (!best)
		return NULL;
	best->state = PROCESSING;
	best->dirty = false;
	return best->key;
}

void kars_wq_done(struct kars_workqueue *q, const char *key, uint64_t now_ms)
{
	struct entry *e = find(q, key);

	if (!e || e->state != PROCESSING)
		return;
	e->state = IDLE;
	if (e->dirty) {
		uint64_t due = e->due;

		e->dirty = false;
		kars_wq_add_after(q, key, due > now_ms ? due - now_ms : 0, now_ms);
	}
}

int64_t kars_wq_next_due_ms(const struct kars_workqueue *q, uint64_t now_ms)
{
	int64_t best = -1;

	for (size_t i = 0; i < q->n; i++) {
		const struct entry *e = &q->e[i];
		int64_t wait;

		if (e->state != QUEUED)
			continue;
		wait = e->due > now_ms ? (int64_t)(e->due - now_ms) : 0;
		if (best < 0 || wait < best)
			best = wait;
	}
	return best;
}

size_t kars_wq_len(const struct kars_workqueue *q)
{
	size_t n = 0;

	for (size_t i = 0; i < q->n; i++)
		n += q->e[i].state == QUEUED;
	return n;
}
