/* gov_limits.h - rate limits and the behaviour monitor, per principal and global.
 *
 * A kars_gov_limiter sits in front of profile evaluation. Each call names a
 * principal (who asks: an agent id, a peer) and is admitted or refused before
 * the profile is read:
 *
 *   1. the behaviour monitor: a principal it has blocked is denied until the
 *      block ends (only when escalation is configured; otherwise anomalies
 *      are only counted, as in AGT, whose monitor never blocked);
 *   2. the principal's token bucket (rate per second, burst);
 *   3. the global token bucket, shared by every principal.
 *
 * A principal over its own limit does not drain the global bucket. Buckets
 * are GCRA (one "theoretical arrival time" per bucket): exactly a token
 * bucket, held in one 64-bit word, so the global bucket is one CAS.
 *
 * Principals live in a table of fixed capacity allocated once: sets of 8
 * slots, indexed by a keyed 128-bit SipHash of the principal (key random per
 * limiter), so attacker-chosen names can neither grow memory nor aim at one
 * set. A principal whose bucket is full again and that is not blocked holds
 * nothing a limit needs, so its slot may be reused: first slots that hold
 * nothing at all, then slots holding only monitor counts (which a flood can
 * thus make the monitor forget, least recently used first). A slot with debt
 * in its bucket or a running block is never evicted; a new principal whose
 * set is full of those is charged to the set's shared overflow slot instead,
 * which is stricter than its own. So a flood of new names cannot reset a
 * known principal's limit or lift a block.
 *
 * Threads: every function is safe from any number of threads; a set is
 * locked (a spin flag) only for a few dozen instructions, the global bucket
 * is lock-free. Nothing allocates after kars_gov_limiter_new().
 */
#ifndef KARS_GOV_LIMITS_H
#define KARS_GOV_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "governance.h"

#define KARS_GOV_PRINCIPALS_MAX	    (1u << 24) /* capacity limit of one table */
#define KARS_GOV_PRINCIPALS_DEFAULT 4096
#define KARS_GOV_PRINCIPAL_MAX	    256 /* bytes of a principal name */

/* A rate of 0 turns that bucket off; a burst of 0 with a rate is twice the
 * rate (at least 1). Zero windows take the default. KARS_GOV_LIMITS_AGT is
 * what the original router used. */
struct kars_gov_limits {
	double global_rate; /* tokens per second (AGT: 500) */
	uint32_t global_burst;
	double principal_rate; /* per principal (AGT: 50 per agent) */
	uint32_t principal_burst;
	uint32_t principals_max; /* table capacity, rounded up to 8 x a power of two */

	/* behaviour monitor; a threshold of 0 turns that check off */
	uint32_t burst_calls;	    /* more admitted calls than this in one window... */
	uint64_t burst_window_ns;   /* ...(default 60 s) is a burst anomaly */
	uint32_t failure_streak;    /* this many failures in a row (reset by a success) */
	uint32_t denials;	    /* more denials than this in one window */
	uint64_t denials_window_ns; /* (default 60 s) */
	bool escalate;		    /* an anomaly blocks the principal... */
	uint64_t block_ns;	    /* ...for this long (default 60 s) */
};

#define KARS_GOV_LIMITS_AGT                                                                        \
	{                                                                                          \
		.global_rate = 500, .global_burst = 1000, .principal_rate = 50,                    \
		.principal_burst = 100, .burst_calls = 100, .failure_streak = 20, .denials = 10    \
	}

struct kars_gov_limiter_stats {
	uint64_t capacity; /* slots, overflow slots not included */
	uint64_t in_use;   /* slots holding a principal */
	size_t bytes;	   /* allocated at creation, never more */
	uint64_t admitted, global_limited, principal_limited, blocked;
	uint64_t evictions; /* slots reused for a new principal */
	uint64_t overflows; /* calls charged to a set's shared overflow slot */
	uint64_t anomalies_burst, anomalies_failures, anomalies_denials;
};

/* What the monitor knows of one principal now (a status endpoint). */
struct kars_gov_principal_state {
	bool known;    /* it holds a slot (not the overflow) */
	double tokens; /* left in its bucket */
	uint32_t calls, denials, failure_streak;
	uint64_t blocked_ms; /* left of a block, 0 = none */
	enum kars_gov_why blocked_why;
};

struct kars_gov_limiter;

/* Validates lim (rates finite and >= 0, bursts >= 1 where a rate is set,
 * windows <= KARS_GOV_WINDOW_MAX_S, capacity <= KARS_GOV_PRINCIPALS_MAX) and
 * allocates the table. Returns 0 or -errno with err naming the field. */
int kars_gov_limiter_new(const struct kars_gov_limits *lim, struct kars_gov_limiter **out,
			 struct kars_err *err);
void kars_gov_limiter_free(struct kars_gov_limiter *l);

/* Steps 1-3 above for one call of principal at now_ns (CLOCK_MONOTONIC; 0 =
 * read the clock). true: go on and evaluate. false: out is the refusal
 * (RATE_LIMITED with retry_after_ms, or DENY by the monitor). An empty or
 * oversized principal is "" (one shared slot). */
bool kars_gov_limiter_admit(struct kars_gov_limiter *l, const char *principal, size_t len,
			    uint64_t now_ns, struct kars_gov_decision *out);
/* Tells the monitor a decision was a denial (call after evaluating an
 * admitted call; anything but DENY is ignored). */
void kars_gov_limiter_note_verdict(struct kars_gov_limiter *l, const char *principal, size_t len,
				   uint64_t now_ns, enum kars_gov_verdict v);
/* Tells the monitor how an allowed call ended (a runtime reports it). */
void kars_gov_limiter_note_outcome(struct kars_gov_limiter *l, const char *principal, size_t len,
				   uint64_t now_ns, bool ok);

/* admit, then kars_gov_evaluate(), then note_verdict: the whole gate.
 * l may be NULL (no limits, no monitor). */
void kars_gov_evaluate_as(struct kars_gov_reader *r, struct kars_gov_limiter *l,
			  const char *principal, const struct kars_gov_request *req,
			  struct kars_gov_decision *out);

void kars_gov_limiter_principal(struct kars_gov_limiter *l, const char *principal, size_t len,
				uint64_t now_ns, struct kars_gov_principal_state *st);
void kars_gov_limiter_stats(struct kars_gov_limiter *l, struct kars_gov_limiter_stats *st);
/* The limits in force, defaults filled in. */
void kars_gov_limiter_limits(const struct kars_gov_limiter *l, struct kars_gov_limits *out);

#endif
