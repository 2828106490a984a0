/* test_workqueue.c - the controller's work queue (workqueue.h) and status
 * conditions (conditions.h).
 *
 * Queue: a key is never queued twice nor handed out while being processed;
 * an add during processing comes back after done; delayed adds keep the
 * earliest time; failures back off exponentially up to a cap, each delay
 * within the jitter band, and forget() resets. Time is passed in, so no test
 * waits. Conditions: lastTransitionTime moves only when the status flips,
 * observedGeneration follows the spec's generation, phases are closed.
 */
#include "unit.h"

#include <stdlib.h>

#include "conditions.h"
#include "workqueue.h"

static void test_dedup_and_fifo(void **state)
{
	struct kars_workqueue *q = kars_wq_new(100, 10000, 0, 1);

	kars_wq_add(q, "a", 0);
	kars_wq_add(q, "b", 0);
	kars_wq_add(q, "a", 0);
	assert_int_equal(kars_wq_len(q), 2);
	assert_string_equal(kars_wq_get(q, 0), "a");
	assert_string_equal(kars_wq_get(q, 0), "b");
	assert_null(kars_wq_get(q, 0));
	kars_wq_done(q, "a", 0);
	kars_wq_done(q, "b", 0);
	assert_int_equal(kars_wq_next_due_ms(q, 0), -1);
	kars_wq_free(q);
}

static void test_add_while_processing_comes_back_after_done(void **state)
{
	struct kars_workqueue *q = kars_wq_new(100, 10000, 0, 1);

	kars_wq_add(q, "a", 0);
	assert_string_equal(kars_wq_get(q, 0), "a");
	kars_wq_add(q, "a", 0); /* an event while a worker has it */
	kars_wq_add(q, "a", 0);
	assert_null(kars_wq_get(q, 0)); /* never twice at once */
	kars_wq_done(q, "a", 0);
	assert_int_equal(kars_wq_len(q), 1);
	assert_string_equal(kars_wq_get(q, 0), "a");
	kars_wq_done(q, "a", 0);
	assert_null(kars_wq_get(q, 0));
	kars_wq_free(q);
}

static void test_delayed_keeps_earliest(void **state)
{
	struct kars_workqueue *q = kars_wq_new(100, 10000, 0, 1);

	kars_wq_add_after(q, "a", 5000, 1000);
	kars_wq_add_after(q, "a", 300000, 1000); /* later: ignored */
	assert_int_equal(kars_wq_next_due_ms(q, 1000), 5000);
	kars_wq_add_after(q, "a", 15000 - 14000, 1000); /* earlier: wins */
	assert_int_equal(kars_wq_next_due_ms(q, 1000), 1000);
	assert_null(kars_wq_get(q, 1999));
	assert_string_equal(kars_wq_get(q, 2000), "a");
	kars_wq_done(q, "a", 2000);
	/* add() of a delayed key makes it due now */
	kars_wq_add_after(q, "b", 60000, 2000);
	kars_wq_add(q, "b", 2000);
	assert_int_equal(kars_wq_next_due_ms(q, 2000), 0);
	kars_wq_free(q);
}

static void test_rate_limited_backoff(void **state)
{
	struct kars_workqueue *q = kars_wq_new(100, 5000, 0, 1);
	uint64_t want[] = {100, 200, 400, 800, 1600, 3200, 5000, 5000};

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		uint64_t d = kars_wq_add_rate_limited(q, "a", 0);

		assert_int_equal(d, want[i]);
		assert_string_equal(kars_wq_get(q, d), "a");
		kars_wq_done(q, "a", d);
	}
	assert_int_equal(kars_wq_failures(q, "a"), 8);
	kars_wq_forget(q, "a");
	assert_int_equal(kars_wq_add_rate_limited(q, "a", 0), 100);
	kars_wq_free(q);
}

static void test_jitter_stays_in_band_and_spreads(void **state)
{
	struct kars_workqueue *q = kars_wq_new(1000, 1000, 20, 42);
	uint64_t lo = ~0ull, hi = 0;

	for (int i = 0; i < 2000; i++) {
		char key[16];
		uint64_t d;

		snprintf(key, sizeof(key), "k%d", i);
		d = kars_wq_add_rate_limited(q, key, 0);
		assert_true(d >= 800 && d <= 1200);
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
	}
	/* not in lockstep: the delays use the band */
	assert_true(lo < 850);
	assert_true(hi > 1150);
	kars_wq_free(q);
}

static void test_condition_transition_time(void **state)
{
	json_t *st = json_object();
	const json_t *c;

	assert_true(kars_condition_set(st, "Ready", "False", "AwaitingRouterEnforcement", NULL, 1,
				       "2026-01-01T00:00:00Z"));
	/* same status later: time kept, nothing changed */
	assert_false(kars_condition_set(st, "Ready", "False", "AwaitingRouterEnforcement", NULL, 1,
					"2026-01-01T00:05:00Z"));
	c = kars_condition_get(st, "Ready");
	assert_string_equal(json_string_value(json_object_get(c, "lastTransitionTime")),
			    "2026-01-01T00:00:00Z");
	/* a new reason or generation without a flip: changed, time kept */
	assert_true(
	    kars_condition_set(st, "Ready", "False", "Other", NULL, 2, "2026-01-01T00:06:00Z"));
	assert_string_equal(json_string_value(json_object_get(c, "lastTransitionTime")),
			    "2026-01-01T00:00:00Z");
	assert_int_equal(json_integer_value(json_object_get(c, "observedGeneration")), 2);
	/* a flip: new time */
	assert_true(kars_condition_set(st, "Ready", "True", "RouterEnforcing", NULL, 2,
				       "2026-01-01T00:07:00Z"));
	assert_string_equal(json_string_value(json_object_get(c, "lastTransitionTime")),
			    "2026-01-01T00:07:00Z");
	assert_int_equal(json_array_size(json_object_get(st, "conditions")), 1);
	json_decref(st);
}

static void test_phase_is_closed(void **state)
{
	json_t *st = json_object();
	const struct kars_kind *ip = kars_kind_find("InferencePolicy");

	assert_true(kars_phase_set(ip, st, "Compiled"));
	assert_false(kars_phase_set(ip, st, "Running")); /* a sandbox phase, not a policy's */
	assert_string_equal(json_string_value(json_object_get(st, "phase")), "Compiled");
	json_decref(st);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_dedup_and_fifo),
    cmocka_unit_test(test_add_while_processing_comes_back_after_done),
    cmocka_unit_test(test_delayed_keeps_earliest),
    cmocka_unit_test(test_rate_limited_backoff),
    cmocka_unit_test(test_jitter_stays_in_band_and_spreads),
    cmocka_unit_test(test_condition_transition_time),
    cmocka_unit_test(test_phase_is_closed),
};

KARS_UNIT_MAIN(tests)
