/* test_gov_limits.c - token buckets, the bounded principal table, the monitor.
 *
 * Time is passed in (now_ns), so every count below is exact: a bucket
 * admits its burst and then its rate, a flood of a million new principals
 * leaves memory and a known principal's limit as they were, the monitor
 * counts anomalies and blocks only when told to escalate, and four threads
 * racing on one global bucket get exactly its burst between them.
 */
#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "gov_limits.h"
#include "governance.h"
#include "unit.h"

#define T0  (1000ull * 1000000000ull) /* an arbitrary monotonic "now" */
#define MS  1000000ull
#define SEC 1000000000ull

static struct kars_gov_limiter *limiter(const struct kars_gov_limits *lim)
{
	struct kars_gov_limiter *l = NULL;
	struct kars_err err = {0};

	if (kars_gov_limiter_new(lim, &l, &err))
		fail_msg("limiter: %s", err.msg);
	return l;
}

static bool admit(struct kars_gov_limiter *l, const char *who, uint64_t now,
		  struct kars_gov_decision *d)
{
	return kars_gov_limiter_admit(l, who, strlen(who), now, d);
}

static void test_principal_bucket(void **state)
{
	struct kars_gov_limits lim = {.principal_rate = 10, .principal_burst = 5};
	struct kars_gov_limiter *l = limiter(&lim);
	struct kars_gov_decision d;

	for (int i = 0; i < 5; i++)
		assert_true(admit(l, "agent-a", T0, &d));
	assert_false(admit(l, "agent-a", T0, &d));
	assert_int_equal(d.verdict, KARS_GOV_RATE_LIMITED);
	assert_int_equal(d.why, KARS_GOV_WHY_PRINCIPAL_RATE_LIMIT);
	assert_string_equal(kars_gov_why_name(d.why), "principal_rate_limit");
	assert_int_equal(d.retry_after_ms, 100);
	/* refused calls are not charged: still one token after 100 ms */
	assert_false(admit(l, "agent-a", T0 + 99 * MS, &d));
	assert_true(admit(l, "agent-a", T0 + 100 * MS, &d));
	assert_false(admit(l, "agent-a", T0 + 100 * MS, &d));
	/* another principal has its own bucket */
	for (int i = 0; i < 5; i++)
		assert_true(admit(l, "agent-b", T0, &d));
	assert_false(admit(l, "agent-b", T0, &d));
	/* a full refill after burst / rate, never more than the burst */
	for (int i = 0; i < 5; i++)
		assert_true(admit(l, "agent-a", T0 + 10 * SEC, &d));
	assert_false(admit(l, "agent-a", T0 + 10 * SEC, &d));
	kars_gov_limiter_free(l);
}

static void test_global_bucket(void **state)
{
	struct kars_gov_limits lim = {
	    .global_rate = 1, .global_burst = 3, .principal_rate = 1, .principal_burst = 1};
	struct kars_gov_limiter *l = limiter(&lim);
	struct kars_gov_limiter_stats st;
	struct kars_gov_decision d;

	assert_true(admit(l, "a", T0, &d));
	/* a over its own limit: refused without taking a global token */
	for (int i = 0; i < 10; i++) {
		assert_false(admit(l, "a", T0, &d));
		assert_int_equal(d.why, KARS_GOV_WHY_PRINCIPAL_RATE_LIMIT);
	}
	assert_true(admit(l, "b", T0, &d));
	assert_true(admit(l, "c", T0, &d));
	assert_false(admit(l, "d", T0, &d));
	assert_int_equal(d.verdict, KARS_GOV_RATE_LIMITED);
	assert_int_equal(d.why, KARS_GOV_WHY_GLOBAL_RATE_LIMIT);
	assert_int_equal(d.retry_after_ms, 1000);
	/* d's refusal by the global bucket did not charge d's own bucket */
	assert_true(admit(l, "d", T0 + SEC, &d));
	kars_gov_limiter_stats(l, &st);
	assert_int_equal(st.admitted, 4);
	assert_int_equal(st.principal_limited, 10);
	assert_int_equal(st.global_limited, 1);
	kars_gov_limiter_free(l);
}

static void test_defaults_and_bad_limits(void **state)
{
	struct kars_gov_limits agt = KARS_GOV_LIMITS_AGT, got;
	struct kars_gov_limiter *l = NULL;
	struct kars_err err = {0};
	struct kars_gov_limits bad[] = {
	    {.global_rate = -1},
	    {.principal_rate = NAN},
	    {.principals_max = KARS_GOV_PRINCIPALS_MAX + 1},
	    {.burst_window_ns = 1000},
	};
	const char *field[] = {"limits.global_rate", "limits.principal_rate",
			       "limits.principals_max", "limits.burst_window"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		kars_err_clear(&err);
		assert_int_equal(kars_gov_limiter_new(&bad[i], &l, &err), -EINVAL);
		assert_null(l);
		assert_err_contains(&err, field[i]);
	}
	l = limiter(&agt);
	kars_gov_limiter_limits(l, &got);
	assert_int_equal(got.principals_max, KARS_GOV_PRINCIPALS_DEFAULT);
	assert_int_equal(got.burst_window_ns, 60 * SEC);
	kars_gov_limiter_free(l);
	/* a burst of 0 is twice the rate */
	l = limiter(&(struct kars_gov_limits){.principal_rate = 2.5, .principals_max = 9});
	kars_gov_limiter_limits(l, &got);
	assert_int_equal(got.principal_burst, 5);
	assert_int_equal(got.principals_max, 16); /* 8 x a power of two */
	kars_gov_limiter_free(l);
}

static size_t heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

/* Two million distinct principals, each calling once: a million at one
 * instant (every slot they get stays in debt, so the sets fill), then a
 * million spread over a second (their slots come to rest and are reused).
 * The table does not grow, the heap does not grow, and the known principal
 * that used up its bucket just before keeps exactly its state: refused while
 * time stands still, refilled only at its rate after, and its whole burst
 * (no more) once full. A principal the monitor blocked stays blocked. */
static void test_flood_of_principals(void **state)
{
	const uint64_t tf = T0 + 31 * SEC; /* the flood starts */
	struct kars_gov_limits lim = {.principal_rate = 50,
				      .principal_burst = 100,
				      .principals_max = 4096,
				      .burst_calls = 1000,
				      .escalate = true};
	struct kars_gov_limiter *l = limiter(&lim);
	struct kars_gov_limiter_stats st0, st;
	struct kars_gov_principal_state ps;
	struct kars_gov_decision d;
	char name[64];
	size_t heap0;
	int n = 0;

	/* "noisy": 100 + 50/s admitted, past 1000 in its 60 s window: blocked */
	for (int i = 0; i < 3000; i++)
		kars_gov_limiter_admit(l, "noisy", 5, T0 + (uint64_t)i * 10 * MS, &d);
	assert_false(admit(l, "noisy", tf, &d));
	assert_int_equal(d.why, KARS_GOV_WHY_MONITOR_BURST);
	for (int i = 0; i < 100; i++)
		assert_true(admit(l, "known", tf, &d));
	assert_false(admit(l, "known", tf, &d));
	kars_gov_limiter_stats(l, &st0);
	heap0 = heap_in_use();

	for (int i = 0; i < 1000000; i++) {
		snprintf(name, sizeof(name), "attacker-%d", i);
		n += admit(l, name, tf, &d);
		if (i % 100000 == 0) {
			assert_false(admit(l, "known", tf, &d));
			assert_int_equal(d.why, KARS_GOV_WHY_PRINCIPAL_RATE_LIMIT);
		}
	}
	kars_gov_limiter_stats(l, &st);
	assert_int_equal(st.evictions, st0.evictions); /* nothing was at rest */
	assert_true(st.overflows > 900000);
	for (int i = 0; i < 1000000; i++) {
		uint64_t now = tf + (uint64_t)i * 1000; /* 1 us apart */

		snprintf(name, sizeof(name), "attacker2-%d", i);
		n += admit(l, name, now, &d);
		if (i % 100000 == 99999) {
			double want = 50.0 * (double)(now - tf) / (double)SEC;

			kars_gov_limiter_principal(l, "known", 5, now, &ps);
			assert_true(ps.known);
			if (fabs(ps.tokens - want) > 0.01)
				fail_msg("known has %.3f tokens at +%llu us, want %.3f", ps.tokens,
					 (unsigned long long)((now - tf) / 1000), want);
		}
	}
	kars_gov_limiter_stats(l, &st);
	assert_int_equal(st.capacity, 4096);
	assert_true(st.in_use <= st.capacity);
	assert_int_equal(st.bytes, st0.bytes);
	assert_true(heap_in_use() <= heap0); /* not one byte more */
	if (st.evictions < st0.evictions + 100000)
		fail_msg("evictions %llu overflows %llu in_use %llu",
			 (unsigned long long)st.evictions, (unsigned long long)st.overflows,
			 (unsigned long long)st.in_use);
	assert_true(n > 0);
	assert_false(admit(l, "noisy", tf + 2 * SEC, &d));
	assert_int_equal(d.why, KARS_GOV_WHY_MONITOR_BURST);
	for (int i = 0; i < 100; i++)
		assert_true(admit(l, "known", tf + 10 * SEC, &d));
	assert_false(admit(l, "known", tf + 10 * SEC, &d));
	kars_gov_limiter_free(l);
}

/* A principal at rest is forgotten, with nothing lost: after it is evicted
 * it starts as it would have anyway. One that carries debt is never evicted,
 * and a newcomer to a full set shares the set's overflow slot. */
static void test_eviction_only_at_rest(void **state)
{
	struct kars_gov_limits lim = {
	    .principal_rate = 1, .principal_burst = 2, .principals_max = 8}; /* one set */
	struct kars_gov_limiter *l = limiter(&lim);
	struct kars_gov_principal_state ps;
	struct kars_gov_limiter_stats st;
	struct kars_gov_decision d;
	char name[16];

	for (int i = 0; i < 8; i++) {
		snprintf(name, sizeof(name), "p%d", i);
		assert_true(admit(l, name, T0, &d)); /* each owes 1 s */
	}
	/* set full of debt: two newcomers share the overflow slot's 2 tokens */
	assert_true(admit(l, "new1", T0, &d));
	assert_true(admit(l, "new2", T0, &d));
	assert_false(admit(l, "new3", T0, &d));
	kars_gov_limiter_principal(l, "new1", 4, T0, &ps);
	assert_false(ps.known);
	kars_gov_limiter_principal(l, "p3", 2, T0, &ps);
	assert_true(ps.known);
	assert_true(fabs(ps.tokens - 1.0) < 1e-6);
	kars_gov_limiter_stats(l, &st);
	assert_int_equal(st.in_use, 8);
	assert_int_equal(st.overflows, 3);
	assert_int_equal(st.evictions, 0);
	/* one second on, every slot is at rest: a newcomer takes the oldest */
	assert_true(admit(l, "p5", T0 + SEC / 2, &d)); /* p5 used last */
	assert_true(admit(l, "new4", T0 + 2 * SEC, &d));
	kars_gov_limiter_principal(l, "new4", 4, T0 + 2 * SEC, &ps);
	assert_true(ps.known);
	kars_gov_limiter_principal(l, "p5", 2, T0 + 2 * SEC, &ps);
	assert_true(ps.known);
	kars_gov_limiter_stats(l, &st);
	assert_int_equal(st.evictions, 1);
	kars_gov_limiter_free(l);
}

static void test_monitor_counts_without_escalation(void **state)
{
	struct kars_gov_limits lim = {.burst_calls = 5, .failure_streak = 3, .denials = 2};
	struct kars_gov_limiter *l = limiter(&lim);
	struct kars_gov_principal_state ps;
	struct kars_gov_limiter_stats st;
	struct kars_gov_decision d;

	for (int i = 0; i < 20; i++)
		assert_true(admit(l, "a", T0, &d));
	for (int i = 0; i < 5; i++) {
		kars_gov_limiter_note_outcome(l, "a", 1, T0, false);
		kars_gov_limiter_note_verdict(l, "a", 1, T0, KARS_GOV_DENY);
	}
	assert_true(admit(l, "a", T0, &d));
	kars_gov_limiter_stats(l, &st);
	assert_int_equal(st.anomalies_burst, 1); /* counted once per window */
	assert_int_equal(st.anomalies_failures, 1);
	assert_int_equal(st.anomalies_denials, 1);
	assert_int_equal(st.blocked, 0);
	kars_gov_limiter_principal(l, "a", 1, T0, &ps);
	assert_int_equal(ps.calls, 21);
	assert_int_equal(ps.denials, 5);
	assert_int_equal(ps.failure_streak, 5);
	assert_int_equal(ps.blocked_ms, 0);
	kars_gov_limiter_free(l);
}

static void test_monitor_escalates(void **state)
{
	struct kars_gov_limits lim = {.burst_calls = 5,
				      .burst_window_ns = 10 * SEC,
				      .failure_streak = 3,
				      .denials = 2,
				      .escalate = true,
				      .block_ns = 30 * SEC};
	struct kars_gov_limiter *l = limiter(&lim);
	struct kars_gov_principal_state ps;
	struct kars_gov_decision d;

	/* burst: the 6th call in a 10 s window is admitted and starts the block */
	for (int i = 0; i < 6; i++)
		assert_true(admit(l, "bursty", T0, &d));
	assert_false(admit(l, "bursty", T0 + SEC, &d));
	assert_int_equal(d.verdict, KARS_GOV_DENY);
	assert_int_equal(d.why, KARS_GOV_WHY_MONITOR_BURST);
	assert_int_equal(d.retry_after_ms, 29000);
	assert_true(admit(l, "calm", T0 + SEC, &d));
	assert_true(admit(l, "bursty", T0 + 30 * SEC, &d));

	/* failures: a success resets the streak; three in a row block */
	kars_gov_limiter_note_outcome(l, "flaky", 5, T0, false);
	kars_gov_limiter_note_outcome(l, "flaky", 5, T0, false);
	kars_gov_limiter_note_outcome(l, "flaky", 5, T0, true);
	kars_gov_limiter_note_outcome(l, "flaky", 5, T0, false);
	kars_gov_limiter_note_outcome(l, "flaky", 5, T0, false);
	assert_true(admit(l, "flaky", T0, &d));
	kars_gov_limiter_note_outcome(l, "flaky", 5, T0, false);
	assert_false(admit(l, "flaky", T0, &d));
	assert_int_equal(d.why, KARS_GOV_WHY_MONITOR_FAILURES);
	kars_gov_limiter_principal(l, "flaky", 5, T0, &ps);
	assert_int_equal(ps.blocked_ms, 30000);
	assert_int_equal(ps.blocked_why, KARS_GOV_WHY_MONITOR_FAILURES);

	/* denials: the third in one window blocks; other verdicts do not count */
	kars_gov_limiter_note_verdict(l, "prober", 6, T0, KARS_GOV_DENY);
	kars_gov_limiter_note_verdict(l, "prober", 6, T0, KARS_GOV_DENY);
	kars_gov_limiter_note_verdict(l, "prober", 6, T0, KARS_GOV_REQUIRES_APPROVAL);
	kars_gov_limiter_note_verdict(l, "prober", 6, T0, KARS_GOV_ALLOW);
	assert_true(admit(l, "prober", T0, &d));
	kars_gov_limiter_note_verdict(l, "prober", 6, T0, KARS_GOV_DENY);
	assert_false(admit(l, "prober", T0, &d));
	assert_int_equal(d.why, KARS_GOV_WHY_MONITOR_DENIALS);
	kars_gov_limiter_free(l);
}

/* The whole gate: the profile's denials feed the monitor, which then denies
 * what the profile would allow. */
static void test_evaluate_as(void **state)
{
	static const char yaml[] =
	    "version: \"1.0\"\nagent: t\npolicies:\n"
	    "  - {name: no-rm, type: capability, denied_actions: [\"shell:rm\"]}\n";
	struct kars_gov_limits lim = {.denials = 3, .escalate = true};
	struct kars_gov_limiter *l = limiter(&lim);
	struct kars_gov_engine *e = kars_gov_engine_new();
	struct kars_gov_profile *p = NULL;
	struct kars_gov_reader *r = NULL;
	struct kars_err err = {0};
	struct kars_gov_decision d;
	struct kars_gov_request rm = {.action = "shell:rm", .now_ns = T0};
	struct kars_gov_request ls = {.action = "shell:ls", .now_ns = T0};

	assert_int_equal(kars_gov_profile_load_buf(yaml, strlen(yaml), "t", NULL, &p, NULL, &err),
			 0);
	kars_gov_engine_publish(e, p);
	assert_int_equal(kars_gov_reader_open(e, &r), 0);
	for (int i = 0; i < 4; i++) {
		kars_gov_evaluate_as(r, l, "agent", &rm, &d);
		assert_int_equal(d.verdict, KARS_GOV_DENY);
		assert_string_equal(d.rule, "no-rm");
	}
	kars_gov_evaluate_as(r, l, "agent", &ls, &d);
	assert_int_equal(d.verdict, KARS_GOV_DENY);
	assert_int_equal(d.why, KARS_GOV_WHY_MONITOR_DENIALS);
	kars_gov_evaluate_as(r, l, "other", &ls, &d);
	assert_int_equal(d.verdict, KARS_GOV_ALLOW);
	kars_gov_evaluate_as(r, NULL, "agent", &ls, &d);
	assert_int_equal(d.verdict, KARS_GOV_ALLOW);
	kars_gov_reader_close(r);
	kars_gov_engine_free(e);
	kars_gov_limiter_free(l);
}

struct racer {
	struct kars_gov_limiter *l;
	int id;
	atomic_int *go;
	int admitted;
};

static void *race(void *arg)
{
	struct racer *rc = arg;
	struct kars_gov_decision d;
	char name[16];

	while (!atomic_load(rc->go))
		;
	for (int i = 0; i < 20000; i++) {
		snprintf(name, sizeof(name), "t%d-%d", rc->id, i % 50);
		rc->admitted += kars_gov_limiter_admit(rc->l, name, strlen(name), T0, &d);
	}
	return NULL;
}

/* Four threads on one instant: the global bucket admits exactly its burst. */
static void test_concurrent_global(void **state)
{
	struct kars_gov_limits lim = {.global_rate = 1, .global_burst = 1000};
	struct kars_gov_limiter *l = limiter(&lim);
	struct racer rc[4];
	pthread_t th[4];
	atomic_int go = 0;
	int total = 0;

	for (int i = 0; i < 4; i++) {
		rc[i] = (struct racer){.l = l, .id = i, .go = &go};
		assert_int_equal(pthread_create(&th[i], NULL, race, &rc[i]), 0);
	}
	atomic_store(&go, 1);
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		total += rc[i].admitted;
	}
	assert_int_equal(total, 1000);
	kars_gov_limiter_free(l);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_principal_bucket),
    cmocka_unit_test(test_global_bucket),
    cmocka_unit_test(test_defaults_and_bad_limits),
    cmocka_unit_test(test_flood_of_principals),
    cmocka_unit_test(test_eviction_only_at_rest),
    cmocka_unit_test(test_monitor_counts_without_escalation),
    cmocka_unit_test(test_monitor_escalates),
    cmocka_unit_test(test_evaluate_as),
    cmocka_unit_test(test_concurrent_global),
};

KARS_UNIT_MAIN(tests)
