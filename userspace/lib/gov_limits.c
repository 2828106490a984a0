/* gov_limits.c - token buckets and the behaviour monitor in a bounded table.
 *
 * See gov_limits.h for the contract. Here:
 *
 * GCRA. A bucket of rate r and burst b is one number, tat (the theoretical
 * arrival time): a call at now is admitted iff max(tat, now) + T - now <= b*T
 * with T = 1/r, and then tat = max(tat, now) + T. That admits exactly b calls
 * at once from a full bucket and r per second after, like a token bucket of
 * size b refilled continuously, and the bucket is full iff tat <= now.
 *
 * The table. 2^k sets of 8 slots and one overflow slot per set; a principal
 * is its 128-bit keyed SipHash (crypto_shorthash_siphashx24, key from
 * randombytes_buf), never its bytes, so a slot is fixed-size and a 2^-128
 * collision is the only way two principals could share one. The set is the
 * hash's low bits. A slot whose bucket is full and which runs no block may
 * be reused for a new principal (see weight()): first one that holds nothing
 * else, then one that holds only monitor counts, least recently used first.
 * Counts use fixed windows aligned to the clock (now / window), as the
 * profile's rate_limit rules do.
 */
#include <errno.h>
#include <math.h> /* isfinite, a macro: no libm */
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gov_limits.h"
#include "gov_priv.h"

#define WAYS		  8
#define DEFAULT_WINDOW_NS (60ull * 1000000000ull)
#define SEC_NS		  1000000000ull

struct pslot {
	uint64_t k0, k1; /* keyed hash; k1 == 0: empty */
	uint64_t tat;	 /* principal bucket */
	uint64_t last_ns;
	uint64_t blocked_until;
	uint32_t calls_win, calls; /* window index (low 32 bits), count */
	uint32_t denials_win, denials;
	uint64_t last_failure;
	uint32_t streak;
	uint8_t blocked_why;
};

struct pset {
	atomic_flag lock;
	struct pslot way[WAYS];
	struct pslot overflow;
};

struct gcra {
	uint64_t interval_ns; /* 0: off */
	uint64_t tolerance_ns;
};

struct kars_gov_limiter {
	struct kars_gov_limits lim;
	struct gcra global, principal;
	_Atomic uint64_t global_tat;
	uint8_t key[crypto_shorthash_siphashx24_KEYBYTES];
	struct pset *sets;
	uint64_t set_mask;
	size_t bytes;
	_Atomic uint64_t admitted, global_limited, principal_limited, blocked, evictions, overflows,
	    anomalies_burst, anomalies_failures, anomalies_denials;
};

static uint64_t clock_ns(uint64_t now)
{
	struct timespec ts;

	if (now)
		return now;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * SEC_NS + (uint64_t)ts.tv_nsec;
}

static int gcra_init(struct gcra *g, double rate, uint32_t *burst, const char *field,
		     struct kars_err *err)
{
	g->interval_ns = 0;
	g->tolerance_ns = 0;
	if (!isfinite(rate) || rate < 0 || rate > 1e9)
		return kars_err_set(err, EINVAL,
				    "limits.%s_rate: %g is not a rate in 0..1e9 per "
				    "second",
				    field, rate);
	if (rate == 0)
		return 0;
	if (*burst == 0) {
		*burst = (uint32_t)(rate * 2);
		if ((double)*burst < rate * 2)
			(*burst)++;
	}
	g->interval_ns = (uint64_t)(1e9 / rate);
	if (g->interval_ns == 0)
		g->interval_ns = 1;
	g->tolerance_ns = (uint64_t)*burst * g->interval_ns;
	return 0;
}

/* The tat after one more call, or 0 when the bucket is empty (retry set). */
static uint64_t gcra_next(const struct gcra *g, uint64_t tat, uint64_t now, uint64_t *retry_ns)
{
	uint64_t base = tat > now ? tat : now, next = base + g->interval_ns;

	if (next - now > g->tolerance_ns) {
		*retry_ns = next - now - g->tolerance_ns;
		return 0;
	}
	return next;
}

static int check_window(uint64_t *ns, const char *field, struct kars_err *err)
{
	if (*ns == 0)
		*ns = DEFAULT_WINDOW_NS;
	if (*ns < 1000000ull || *ns > (uint64_t)KARS_GOV_WINDOW_MAX_S * SEC_NS)
		return kars_err_set(err, EINVAL, "limits.%s: %llu ns is outside 1 ms .. 31 days",
				    field, (unsigned long long)*ns);
	return 0;
}

int kars_gov_limiter_new(const struct kars_gov_limits *lim, struct kars_gov_limiter **out,
			 struct kars_err *err)
{
	struct kars_gov_limiter *l;
	uint64_t sets = 1;
	int ret;

	*out = NULL;
	if (sodium_init() < 0)
		return kars_err_set(err, EIO, "libsodium did not initialise");
	l = calloc(1, sizeof(*l));
	if (!l)
		return kars_err_set(err, ENOMEM, "out of memory");
	l->lim = *lim;
	ret = gcra_init(&l->global, l->lim.global_rate, &l->lim.global_burst, "global", err);
	if (!ret)
		ret = gcra_init(&l->principal, l->lim.principal_rate, &l->lim.principal_burst,
				"principal", err);
	if (!ret)
		ret = check_window(&l->lim.burst_window_ns, "burst_window", err);
	if (!ret)
		ret = check_window(&l->lim.denials_window_ns, "denials_window", err);
	if (!ret)
		ret = check_window(&l->lim.block_ns, "block", err);
	if (ret)
		goto fail;
	if (l->lim.principals_max == 0)
		l->lim.principals_max = KARS_GOV_PRINCIPALS_DEFAULT;
	if (l->lim.principals_max > KARS_GOV_PRINCIPALS_MAX) {
		ret = kars_err_set(err, EINVAL, "limits.principals_max: %u is more than %u",
				   l->lim.principals_max, KARS_GOV_PRINCIPALS_MAX);
		goto fail;
	}
	while (sets * WAYS < l->lim.principals_max)
		sets <<= 1;
	l->lim.principals_max = (uint32_t)(sets * WAYS);
	l->set_mask = sets - 1;
	l->bytes = sizeof(*l) + sets * sizeof(struct pset);
	l->sets = calloc(sets, sizeof(struct pset));
	if (!l->sets) {
		ret = kars_err_set(err, ENOMEM, "out of memory for %llu principal slots",
				   (unsigned long long)(sets * WAYS));
		goto fail;
	}
	for (uint64_t i = 0; i < sets; i++)
		atomic_flag_clear(&l->sets[i].lock);
	randombytes_buf(l->key, sizeof(l->key));
	atomic_init(&l->global_tat, 0);
	*out = l;
	return 0;
fail:
	free(l);
	return ret;
}

void kars_gov_limiter_free(struct kars_gov_limiter *l)
{
	if (!l)
		return;
	sodium_memzero(l->key, sizeof(l->key));
	free(l->sets);
	free(l);
}

void kars_gov_limiter_limits(const struct kars_gov_limiter *l, struct kars_gov_limits *out)
{
	*out = l->lim;
}

static void bump(_Atomic uint64_t *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static struct pset *lock_set(struct kars_gov_limiter *l, const char *principal, size_t len,
			     uint64_t k[2])
{
	uint8_t h[crypto_shorthash_siphashx24_BYTES];
	struct pset *s;

	if (!principal || len > KARS_GOV_PRINCIPAL_MAX)
		len = 0;
	crypto_shorthash_siphashx24(h, (const unsigned char *)(len ? principal : ""), len, l->key);
	memcpy(&k[0], h, 8);
	memcpy(&k[1], h + 8, 8);
	k[1] |= 1; /* 0 marks an empty slot */
	s = &l->sets[k[0] & l->set_mask];
	while (atomic_flag_test_and_set_explicit(&s->lock, memory_order_acquire))
		;
	return s;
}

static void unlock_set(struct pset *s)
{
	atomic_flag_clear_explicit(&s->lock, memory_order_release);
}

/* 0: the slot holds nothing a new principal would not start with; 1: only
 * monitor counts (soft: losing them under a flood is the price of a bounded
 * table); 2: debt in its bucket or a running block (hard: never evicted, or
 * a flood of new names would reset a known principal's limit). */
static int weight(const struct kars_gov_limiter *l, const struct pslot *p, uint64_t now)
{
	if (p->tat > now || p->blocked_until > now)
		return 2;
	if (p->calls && p->calls_win == (uint32_t)(now / l->lim.burst_window_ns))
		return 1;
	if (p->denials && p->denials_win == (uint32_t)(now / l->lim.denials_window_ns))
		return 1;
	/* a streak is forgotten one denials window after its last failure */
	if (p->streak && now - p->last_failure < l->lim.denials_window_ns)
		return 1;
	return 0;
}

/* The slot of k in s: its own, a reused one, or the overflow. NULL with
 * create false when it has none. The set is locked. A new principal takes an
 * empty slot, else the least recently used of the lightest weight below 2. */
static struct pslot *find_slot(struct kars_gov_limiter *l, struct pset *s, const uint64_t k[2],
			       uint64_t now, bool create)
{
	struct pslot *victim = NULL;
	int best = 2;

	for (int i = 0; i < WAYS; i++) {
		struct pslot *p = &s->way[i];

		if (p->k1 == k[1] && p->k0 == k[0])
			return p;
	}
	if (!create)
		return NULL;
	for (int i = 0; i < WAYS; i++) {
		struct pslot *p = &s->way[i];
		int w;

		if (p->k1 == 0) {
			victim = p;
			break;
		}
		w = weight(l, p, now);
		if (w < best || (w == best && w < 2 && p->last_ns < victim->last_ns)) {
			victim = p;
			best = w;
		}
	}
	if (!victim) {
		bump(&l->overflows);
		return &s->overflow;
	}
	if (victim->k1)
		bump(&l->evictions);
	memset(victim, 0, sizeof(*victim));
	victim->k0 = k[0];
	victim->k1 = k[1];
	return victim;
}

static void refuse(struct kars_gov_decision *out, enum kars_gov_verdict v, enum kars_gov_why why,
		   uint64_t retry_ns)
{
	out->verdict = v;
	out->why = why;
	out->reason = gov_why_reason(why);
	out->rule[0] = '\0';
	out->min_approvals = 0;
	out->retry_after_ms = (retry_ns + 999999) / 1000000;
}

static void block(struct kars_gov_limiter *l, struct pslot *p, uint64_t now, enum kars_gov_why why)
{
	bump(why == KARS_GOV_WHY_MONITOR_BURST	   ? &l->anomalies_burst
	     : why == KARS_GOV_WHY_MONITOR_DENIALS ? &l->anomalies_denials
						   : &l->anomalies_failures);
	if (l->lim.escalate && p->blocked_until <= now) {
		p->blocked_until = now + l->lim.block_ns;
		p->blocked_why = (uint8_t)why;
	}
}

bool kars_gov_limiter_admit(struct kars_gov_limiter *l, const char *principal, size_t len,
			    uint64_t now_ns, struct kars_gov_decision *out)
{
	uint64_t now = clock_ns(now_ns), k[2], retry = 0, ptat = 0;
	struct pset *s = lock_set(l, principal, len, k);
	struct pslot *p = find_slot(l, s, k, now, true);
	uint32_t win;

	p->last_ns = now;
	if (p->blocked_until > now) {
		retry = p->blocked_until - now;
		refuse(out, KARS_GOV_DENY, (enum kars_gov_why)p->blocked_why, retry);
		unlock_set(s);
		bump(&l->blocked);
		return false;
	}
	if (l->principal.interval_ns) {
		ptat = gcra_next(&l->principal, p->tat, now, &retry);
		if (!ptat) {
			unlock_set(s);
			refuse(out, KARS_GOV_RATE_LIMITED, KARS_GOV_WHY_PRINCIPAL_RATE_LIMIT,
			       retry);
			bump(&l->principal_limited);
			return false;
		}
	}
	if (l->global.interval_ns) {
		uint64_t cur = atomic_load_explicit(&l->global_tat, memory_order_relaxed), next;

		do {
			next = gcra_next(&l->global, cur, now, &retry);
			if (!next) {
				unlock_set(s);
				refuse(out, KARS_GOV_RATE_LIMITED, KARS_GOV_WHY_GLOBAL_RATE_LIMIT,
				       retry);
				bump(&l->global_limited);
				return false;
			}
		} while (!atomic_compare_exchange_weak_explicit(
		    &l->global_tat, &cur, next, memory_order_relaxed, memory_order_relaxed));
	}
	if (ptat)
		p->tat = ptat;
	if (l->lim.burst_calls) {
		win = (uint32_t)(now / l->lim.burst_window_ns);
		if (p->calls_win != win) {
			p->calls_win = win;
			p->calls = 0;
		}
		if (++p->calls == l->lim.burst_calls + 1)
			block(l, p, now, KARS_GOV_WHY_MONITOR_BURST);
	}
	unlock_set(s);
	bump(&l->admitted);
	return true;
}

void kars_gov_limiter_note_verdict(struct kars_gov_limiter *l, const char *principal, size_t len,
				   uint64_t now_ns, enum kars_gov_verdict v)
{
	uint64_t now, k[2];
	struct pset *s;
	struct pslot *p;
	uint32_t win;

	if (v != KARS_GOV_DENY || !l->lim.denials)
		return;
	now = clock_ns(now_ns);
	s = lock_set(l, principal, len, k);
	p = find_slot(l, s, k, now, true);
	win = (uint32_t)(now / l->lim.denials_window_ns);
	if (p->denials_win != win) {
		p->denials_win = win;
		p->denials = 0;
	}
	if (++p->denials == l->lim.denials + 1)
		block(l, p, now, KARS_GOV_WHY_MONITOR_DENIALS);
	p->last_ns = now;
	unlock_set(s);
}

void kars_gov_limiter_note_outcome(struct kars_gov_limiter *l, const char *principal, size_t len,
				   uint64_t now_ns, bool ok)
{
	uint64_t now, k[2];
	struct pset *s;
	struct pslot *p;

	if (!l->lim.failure_streak)
		return;
	now = clock_ns(now_ns);
	s = lock_set(l, principal, len, k);
	/* a success of a principal without a slot has nothing to reset */
	p = find_slot(l, s, k, now, !ok);
	if (p && ok) {
		p->streak = 0;
	} else if (p) {
		if (p->streak && now - p->last_failure >= l->lim.denials_window_ns)
			p->streak = 0;
		p->last_failure = now;
		if (++p->streak == l->lim.failure_streak)
			block(l, p, now, KARS_GOV_WHY_MONITOR_FAILURES);
		p->last_ns = now;
	}
	unlock_set(s);
}

void kars_gov_evaluate_as(struct kars_gov_reader *r, struct kars_gov_limiter *l,
			  const char *principal, const struct kars_gov_request *req,
			  struct kars_gov_decision *out)
{
	size_t len = principal ? strlen(principal) : 0;
	uint64_t now = clock_ns(req->now_ns);
	struct kars_gov_request q = *req;

	if (l && !kars_gov_limiter_admit(l, principal, len, now, out))
		return;
	q.now_ns = now;
	kars_gov_evaluate(r, &q, out);
	if (l)
		kars_gov_limiter_note_verdict(l, principal, len, now, out->verdict);
}

void kars_gov_limiter_principal(struct kars_gov_limiter *l, const char *principal, size_t len,
				uint64_t now_ns, struct kars_gov_principal_state *st)
{
	uint64_t now = clock_ns(now_ns), k[2];
	struct pset *s = lock_set(l, principal, len, k);
	struct pslot *p = find_slot(l, s, k, now, false);

	memset(st, 0, sizeof(*st));
	st->tokens = l->lim.principal_burst;
	if (p) {
		st->known = true;
		if (l->principal.interval_ns && p->tat > now)
			st->tokens = (double)(l->principal.tolerance_ns - (p->tat - now)) /
				     (double)l->principal.interval_ns;
		if (p->calls_win == (uint32_t)(now / l->lim.burst_window_ns))
			st->calls = p->calls;
		if (p->denials_win == (uint32_t)(now / l->lim.denials_window_ns))
			st->denials = p->denials;
		st->failure_streak = p->streak;
		if (p->blocked_until > now) {
			st->blocked_ms = (p->blocked_until - now + 999999) / 1000000;
			st->blocked_why = (enum kars_gov_why)p->blocked_why;
		}
	}
	unlock_set(s);
}

void kars_gov_limiter_stats(struct kars_gov_limiter *l, struct kars_gov_limiter_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->capacity = l->lim.principals_max;
	st->bytes = l->bytes;
	for (uint64_t i = 0; i <= l->set_mask; i++) {
		struct pset *s = &l->sets[i];

		while (atomic_flag_test_and_set_explicit(&s->lock, memory_order_acquire))
			;
		for (int w = 0; w < WAYS; w++)
			st->in_use += s->way[w].k1 != 0;
		unlock_set(s);
	}
	st->admitted = atomic_load(&l->admitted);
	st->global_limited = atomic_load(&l->global_limited);
	st->principal_limited = atomic_load(&l->principal_limited);
	st->blocked = atomic_load(&l->blocked);
	st->evictions = atomic_load(&l->evictions);
	st->overflows = atomic_load(&l->overflows);
	st->anomalies_burst = atomic_load(&l->anomalies_burst);
	st->anomalies_failures = atomic_load(&l->anomalies_failures);
	st->anomalies_denials = atomic_load(&l->anomalies_denials);
}
