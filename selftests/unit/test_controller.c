/* test_controller.c - the controller loop (controller.h): watches feed the queue, the queue feeds
 * the reconciler.
 *
 * Objects that exist before the controller starts are reconciled (replay
 * from resourceVersion 0); a new sandbox queues the policy it names; a burst
 * of updates is one queued key; a failing reconcile backs off exponentially
 * with jitter and recovers; waiting for the router requeues at 15 s and
 * turns Ready when the router reports the digest. The clock is passed in:
 * nothing sleeps.
 */
#include "unit.h"
#include "store_fixture.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conditions.h"
#include "controller.h"

static const char *router_digest;

static const char *loaded(void *ctx, const char *kind, const char *ns, const char *sandbox,
			  const char *name, char *why, size_t why_len)
{
	return router_digest;
}

static int setup(void **state)
{
	router_digest = NULL;
	return fx_setup("ipc");
}

static json_t *policy(const char *name)
{
	return json_pack("{s:s,s:s,s:{s:s,s:s},s:{s:{s:s},s:{s:{s:s}}}}", "apiVersion",
			 "kars.azure.com/v1alpha1", "kind", "InferencePolicy", "metadata", "name",
			 name, "namespace", "kars-bot", "spec", "appliesTo", "action", "chat",
			 "modelPreference", "primary", "deployment", "gpt-4.1");
}

static json_t *sandbox(const char *name, const char *policy_name)
{
	return json_pack("{s:s,s:s,s:{s:s,s:s},s:{s:{s:s},s:{},s:{s:s}}}", "apiVersion",
			 "kars.azure.com/v1alpha1", "kind", "KarsSandbox", "metadata", "name", name,
			 "namespace", "kars-bot", "spec", "runtime", "kind", "OpenClaw", "sandbox",
			 "inferenceRef", "name", policy_name);
}

static json_t *get_policy(struct kars_store *s, const char *name)
{
	struct kars_err err = {};
	json_t *o = NULL;

	MUST(kars_store_get(s, kars_kind_find("ip"), "kars-bot", name, &o, &err));
	return o;
}

static const char *ready_reason(struct kars_store *s, const char *name)
{
	static char buf[64];
	json_t *o = get_policy(s, name);

	snprintf(buf, sizeof(buf), "%s",
		 json_string_value(json_object_get(
		     kars_condition_get(json_object_get(o, "status"), "Ready"), "reason"))
		     ?: "-");
	json_decref(o);
	return buf;
}

static void test_replay_new_sandbox_and_readiness(void **state)
{
	struct kars_store *s = NULL;
	struct kars_err err = {};
	struct kars_policy_env env = {.out_dir = fx.out, .loaded_digest = loaded};
	struct kars_ctl_opts opts = {.env = &env, .seed = 7};
	struct kars_controller *c = NULL;
	json_t *o;
	char path[256];
	uint64_t rv, now;
	int64_t d, last = 0;

	MUST(kars_store_open_dir(fx.state, &s, &err));
	env.store = s;
	json_decref(fx_create(s, policy("p"))); /* exists before the controller starts */
	MUST(kars_ctl_new(&opts, &c, &err));
	assert_int_equal(kars_ctl_step(c, 1000), 300000); /* reconciled: no sandbox, 300 s */
	assert_string_equal(ready_reason(s, "p"), "NoSandboxesReferencing");

	json_decref(
	    fx_create(s, sandbox("bot", "p"))); /* a new sandbox queues the policy it names */
	d = kars_ctl_step(c, 2000);
	assert_true(d >= 800 && d <= 1200); /* waiting for the router: 1 s first */
	assert_string_equal(ready_reason(s, "p"), "AwaitingRouterEnforcement");
	/* the controller's own status write comes back as a watch event: one
	 * more pass, which writes nothing, and then it is quiet (no hot loop) */
	o = get_policy(s, "p");
	rv = kars_object_rv(o);
	json_decref(o);
	for (int i = 0; i < 3; i++) {
		d = kars_ctl_step(c, 2000);
		assert_true(d > 0 && d <= 15000);
	}
	o = get_policy(s, "p");
	assert_int_equal(kars_object_rv(o), rv);
	json_decref(o);
	snprintf(path, sizeof(path), "%s/kars-bot/bot/inference-policy.json", fx.out);
	assert_int_equal(access(path, R_OK), 0);

	/* the router does not confirm: looks again with backoff, capped at 15 s */
	now = 2000;
	for (int i = 0; i < 8; i++) {
		now += (uint64_t)d;
		last = d;
		d = kars_ctl_step(c, now);
		assert_true(d > 0 && d <= 15000);
	}
	assert_true(last >= 12000); /* 16 s +-20 %, capped */
	/* then the router has loaded it */
	o = get_policy(s, "p");
	router_digest = strdup(
	    json_string_value(json_object_get(json_object_get(o, "status"), "compiledDigest")));
	json_decref(o);
	assert_int_equal(kars_ctl_step(c, now + (uint64_t)d), 300000);
	assert_string_equal(ready_reason(s, "p"), "RouterEnforcing");
	free((char *)router_digest);
	router_digest = NULL;
	kars_ctl_free(c);
	kars_store_close(s);
}

static void test_burst_is_one_key(void **state)
{
	struct kars_store *s = NULL;
	struct kars_err err = {};
	struct kars_policy_env env = {.out_dir = fx.out, .loaded_digest = loaded};
	struct kars_ctl_opts opts = {.env = &env, .seed = 7};
	struct kars_controller *c = NULL;
	int64_t d;

	MUST(kars_store_open_dir(fx.state, &s, &err));
	env.store = s;
	MUST(kars_ctl_new(&opts, &c, &err));
	json_decref(fx_create(s, policy("p")));
	for (int i = 0; i < 5; i++) {
		char name[16];

		snprintf(name, sizeof(name), "sb%d", i);
		json_decref(fx_create(s, sandbox(name, "p")));
	}
	/* six events, one key, reconciled once for all five sandboxes */
	d = kars_ctl_step(c, 0);
	assert_true(d >= 800 && d <= 1200);
	assert_int_equal(kars_wq_len(kars_ctl_queue(c)), 1); /* the requeue only */
	for (int i = 0; i < 5; i++) {
		char path[256];

		snprintf(path, sizeof(path), "%s/kars-bot/sb%d/inference-policy.json", fx.out, i);
		assert_int_equal(access(path, R_OK), 0);
	}
	kars_ctl_free(c);
	kars_store_close(s);
}

static void test_failure_backs_off_then_recovers(void **state)
{
	struct kars_store *s = NULL;
	struct kars_err err = {};
	struct kars_policy_env env = {.out_dir = fx.out, .loaded_digest = loaded};
	struct kars_ctl_opts opts = {.env = &env, .seed = 7};
	struct kars_controller *c = NULL;
	int64_t d1, d2, d3;
	uint64_t now = 0;

	MUST(kars_store_open_dir(fx.state, &s, &err));
	env.store = s;
	json_decref(fx_create(s, policy("p")));
	json_decref(fx_create(s, sandbox("bot", "p")));
	/* delivery cannot succeed: the output directory is a file */
	{
		FILE *f = fopen(fx.out, "w");

		fclose(f);
	}
	MUST(kars_ctl_new(&opts, &c, &err));
	d1 = kars_ctl_step(c, now);
	assert_non_null(strstr(kars_ctl_last_error(c), "InferencePolicy/kars-bot/p: deliver"));
	now += (uint64_t)d1;
	d2 = kars_ctl_step(c, now);
	now += (uint64_t)d2;
	d3 = kars_ctl_step(c, now);
	/* 1 s, 2 s, 4 s, each within +-20 % */
	assert_true(d1 >= 800 && d1 <= 1200);
	assert_true(d2 >= 1600 && d2 <= 2400);
	assert_true(d3 >= 3200 && d3 <= 4800);
	assert_int_equal(kars_wq_failures(kars_ctl_queue(c), "InferencePolicy/kars-bot/p"), 3);
	/* fixed: the next attempt succeeds (then waits for the router, at
	 * most 15 s apart); once the router confirms, the failures are forgotten */
	unlink(fx.out);
	now += (uint64_t)d3;
	d1 = kars_ctl_step(c, now);
	assert_true(d1 > 0 && d1 <= 15000);
	assert_string_equal(kars_ctl_last_error(c), "");
	{
		json_t *o = get_policy(s, "p");

		router_digest = strdup(json_string_value(
		    json_object_get(json_object_get(o, "status"), "compiledDigest")));
		json_decref(o);
	}
	assert_int_equal(kars_ctl_step(c, now + (uint64_t)d1), 300000);
	assert_int_equal(kars_wq_failures(kars_ctl_queue(c), "InferencePolicy/kars-bot/p"), 0);
	free((char *)router_digest);
	router_digest = NULL;
	kars_ctl_free(c);
	kars_store_close(s);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_replay_new_sandbox_and_readiness, setup, fx_teardown),
    cmocka_unit_test_setup_teardown(test_burst_is_one_key, setup, fx_teardown),
    cmocka_unit_test_setup_teardown(test_failure_backs_off_then_recovers, setup, fx_teardown),
};

KARS_UNIT_MAIN(tests)
