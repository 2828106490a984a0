/* budget.h - the sandbox's daily and monthly token usage, kept across
 * restarts.
 *
 * Budgets belong to the sandbox the router serves, named in its own
 * configuration: nothing in a request can choose whose budget is charged (the
 * original keyed them on a header the agent sets). Days and months are UTC
 * calendar days and months; usage rolls over at the first charge or check
 * after midnight UTC.
 *
 * Usage is checked before a request is forwarded and charged when its answer
 * ends, so requests running at the same time can each pass the check and
 * together overshoot by at most their own usage (bounded per request by the
 * policy's perRequestTokens).
 *
 * Persistence: one small JSON file, replaced atomically (write a temporary
 * file, fsync it, rename it over, fsync the directory). Charges mark the
 * state dirty and kars_budget_persist() writes it; the router calls it on a
 * timer (budget.persistIntervalMs) and at exit, so a crash loses at most that
 * interval's charges, and a torn file is impossible.
 */
#ifndef KARS_ROUTER_BUDGET_H
#define KARS_ROUTER_BUDGET_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "err.h"

struct kars_budget {
	char path[4096];
	char sandbox[320];
	char day[16];  /* "YYYY-MM-DD" (UTC) the daily figure is for */
	char month[8]; /* "YYYY-MM" */
	uint64_t daily_used;
	uint64_t monthly_used;
	bool dirty;
};

/* Loads path if it exists (it must be this sandbox's), else starts at zero.
 * path NULL keeps the budget in memory only (tests). */
int kars_budget_open(struct kars_budget *b, const char *path, const char *sandbox, time_t now,
		     struct kars_err *err);

/* Which limit a request runs into (limits of 0 are unlimited). */
enum kars_budget_verdict {
	KARS_BUDGET_OK = 0,
	KARS_BUDGET_DAILY_EXCEEDED,
	KARS_BUDGET_MONTHLY_EXCEEDED,
};

enum kars_budget_verdict kars_budget_check(struct kars_budget *b, uint64_t daily_limit,
					   uint64_t monthly_limit, time_t now);
/* Seconds from now until the budget that ran out starts afresh. */
long kars_budget_retry_after(enum kars_budget_verdict v, time_t now);
void kars_budget_charge(struct kars_budget *b, uint64_t tokens, time_t now);
void kars_budget_reset(struct kars_budget *b);
/* Writes the state if it changed since the last write. */
int kars_budget_persist(struct kars_budget *b, struct kars_err *err);

#endif
