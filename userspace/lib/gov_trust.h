/* gov_trust.h - trust scores of agents: bounded, decaying, persisted, audited.
 *
 * Each agent a sandbox deals with (a mesh peer, a handoff partner) has a
 * score from 0 to 1000. A new one starts at 500; a good interaction rewards
 * it (+10), a bad one penalises it (-50), an operator may set it; the result
 * is clamped to 0..1000. With time, a score decays toward the start: its
 * distance from 500 shrinks by the factor decay_per_hour each hour (0.95, as
 * AGT), computed on read from the time of the last change, so an old grudge
 * or an old favour fades. Tiers name ranges of the score:
 *
 *	sovereign >= 800, verified >= 600, known >= 400, observed >= 200,
 *	anonymous below 200.
 *
 * The table holds at most agents_max agents. An agent whose score has decayed
 * back to the start (rounded) is worth no more than an absent one and is
 * dropped to make room; when none has, a new agent is refused (-ENOSPC)
 * rather than forgetting a penalty.
 *
 * Every change is written to the state file before it is acknowledged: the
 * whole table to "<path>.tmp", fsync, rename over path, fsync of the
 * directory. The file carries a SHA-256 of its contents, so a torn or edited
 * file is refused at open with an error naming what is wrong (the daemon then
 * refuses to start: a reset of every penalty is not a safe fallback). Every
 * change is appended to the audit chain, when one is given.
 *
 * Threads: every function takes the manager's mutex. Persisting and auditing
 * happen under it, so use it from the control path, not per request.
 */
#ifndef KARS_GOV_TRUST_H
#define KARS_GOV_TRUST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define KARS_TRUST_MAX	      1000
#define KARS_TRUST_START      500
#define KARS_TRUST_AGENT_MAX  128 /* bytes of an agent id */
#define KARS_TRUST_AGENTS_MAX 65536
#define KARS_TRUST_FORMAT     "kars-trust/1"

struct kars_audit;

struct kars_trust_opts {
	const char *path;	  /* the state file; NULL keeps scores in memory only */
	uint32_t reward;	  /* default 10 */
	uint32_t penalty;	  /* default 50 */
	double decay_per_hour;	  /* in (0, 1]; default 0.95; 1 = no decay */
	uint32_t agents_max;	  /* default 1024 */
	struct kars_audit *audit; /* optional; used from the caller's thread */
	const char *sandbox;	  /* for the audit records */
};

struct kars_trust_score {
	char agent[KARS_TRUST_AGENT_MAX + 1];
	uint32_t score; /* 0..1000, decayed to now, rounded */
	const char *tier;
	bool known;	     /* the table has it (else: the start score) */
	uint64_t updated_ms; /* CLOCK_REALTIME of its last change, 0 if unknown */
};

enum kars_trust_change {
	KARS_TRUST_REWARD,
	KARS_TRUST_PENALTY,
	KARS_TRUST_SET,
};

struct kars_trust;

/* Loads path if it exists (a missing file is an empty table; a torn,
 * corrupt or foreign one is -EBADMSG with err naming the byte or field),
 * checks opts. Returns 0 or -errno; *out only on success. */
int kars_trust_open(struct kars_trust **out, const struct kars_trust_opts *opts,
		    struct kars_err *err);
void kars_trust_close(struct kars_trust *t);

/* The agent's score now (now_ms: CLOCK_REALTIME in ms, 0 = the clock). An
 * unknown agent gets the start score and is not added. -EINVAL for a bad id. */
int kars_trust_get(struct kars_trust *t, const char *agent, uint64_t now_ms,
		   struct kars_trust_score *out, struct kars_err *err);

/* Applies one change: reward, penalty, or set to value (0..1000). by names
 * who made it (audited), why is free text (may be NULL). The new score is
 * on disk and in the audit chain when this returns 0; on any failure nothing
 * changed. */
int kars_trust_change(struct kars_trust *t, const char *agent, enum kars_trust_change what,
		      uint32_t value, const char *by, const char *why, uint64_t now_ms,
		      struct kars_trust_score *out, struct kars_err *err);

/* The agents in the table, in no particular order: calls fn for each,
 * stopping when fn returns non-zero (returned). */
int kars_trust_each(struct kars_trust *t, uint64_t now_ms,
		    int (*fn)(const struct kars_trust_score *s, void *arg), void *arg);
size_t kars_trust_count(struct kars_trust *t);

/* "sovereign", "verified", "known", "observed", "anonymous". */
const char *kars_trust_tier(uint32_t score);
const char *kars_trust_change_name(enum kars_trust_change c);

#endif
