/* state.c - the router's durable state: the audit chain and the budget
 * file, opened at start and written by group commit.
 *
 * Audit records and budget charges accumulate in memory; one timer, armed
 * only while something waits, writes them (the audit chain at most
 * audit.flushIntervalMs after its oldest record, the budget file at most
 * budget.persistIntervalMs after a charge), so a busy router pays one fsync
 * per interval rather than one per request, and an idle router sleeps.
 */
#include <event2/event.h>
#include <stdint.h>
#include <time.h>

#include "audit.h"
#include "log.h"
#include "router.h"

uint64_t kars_router_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Group commit of the audit chain and the budget file: one timer, armed
 * only while something waits, so an idle router sleeps. Each is written
 * when its own deadline has come, not whenever the timer fires for the
 * other. */
void kars_router_on_tick(int fd, short what, void *arg)
{
	struct kars_router *r = arg;
	struct kars_err err = {0};
	uint64_t now = kars_router_mono_ns();

	if (r->audit && kars_audit_tick(r->audit, now, &err))
		log_error("audit: %s", err.msg);
	if (r->budget.dirty && now >= r->budget_due) {
		r->budget_due = 0; /* a failed write is tried again an interval later */
		if (kars_budget_persist(&r->budget, &err))
			log_error("%s", err.msg);
	}
	kars_router_wake(r);
}

void kars_router_wake(struct kars_router *r)
{
	uint64_t now, deadline = r->audit ? kars_audit_deadline(r->audit) : UINT64_MAX, wait;
	struct timeval tv;

	if (!r->tick)
		return;
	now = kars_router_mono_ns();
	if (r->budget.dirty) {
		if (!r->budget_due)
			r->budget_due = now + (uint64_t)r->cfg.budget_persist_ms * 1000000ull;
		if (r->budget_due < deadline)
			deadline = r->budget_due;
	}
	if (deadline == UINT64_MAX)
		return;
	wait = deadline > now ? deadline - now : 0;
	/* An armed timer stays unless this wake is due earlier: the budget's
	 * second-long wait must not hold back an audit record's flush. */
	if (evtimer_pending(r->tick, NULL) && r->tick_at <= now + wait)
		return;
	r->tick_at = now + wait;
	tv.tv_sec = (time_t)(wait / 1000000000ull);
	tv.tv_usec = (suseconds_t)(wait % 1000000000ull / 1000);
	evtimer_add(r->tick, &tv);
}

int kars_router_open_state(struct kars_router *r, struct kars_err *err)
{
	struct kars_audit_opts opts = {
	    .key_path = r->cfg.audit_key_file,
	    .checkpoint_every = r->cfg.checkpoint_every,
	    .flush_interval_ns = (uint64_t)r->cfg.audit_flush_ms * 1000000ull,
	    .principal = "kars-router",
	    .sandbox = r->cfg.sandbox,
	};
	int ret = kars_budget_open(&r->budget, r->cfg.budget_file, r->cfg.sandbox, time(NULL), err);

	return ret ? ret : kars_audit_open(&r->audit, r->cfg.audit_file, &opts, err);
}

void kars_router_exchange_done(struct kars_router *r)
{
	r->inflight--;
	if (r->draining && !r->inflight) {
		log_info("drained: the last request in flight has finished");
		event_base_loopbreak(r->base);
	}
}
