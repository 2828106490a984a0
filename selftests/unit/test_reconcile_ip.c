/* test_reconcile_ip.c - the InferencePolicy compiler and reconciler
 * (policy_compile.h, reconcile_ip.h) against a real local store.
 *
 * Golden: a fixed policy compiles to exact bytes and a digest computed
 * independently (Python hashlib over the documented framing). Reconcile:
 * finalizer added; compiled bytes delivered to each referencing sandbox;
 * Compiled/AwaitingRouterEnforcement until the router reports the digest,
 * then Ready/RouterEnforcing; a second pass writes nothing (idempotent, no
 * status write); a spec change gives a new digest, observedGeneration and a
 * Ready flip; deletion removes the delivered files, then the object.
 */
#include "unit.h"
#include "store_fixture.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conditions.h"
#include "inference_policy.h"
#include "policy_compile.h"
#include "reconcile_ip.h"
#include "validate.h"

#define GOLDEN_BYTES                                                                               \
	"{\"appliesTo\":{\"action\":\"*\",\"sandboxName\":\"bot\"},\"contentSafety\":{\"hate\":"   \
	"\"Medium\",\"requirePromptShields\":true},\"kind\":\"InferencePolicy\","                  \
	"\"modelPreference\":{\"primary\":{\"deployment\":\"gpt-4.1\",\"provider\":"               \
	"\"azure-openai\"}},\"name\":\"bot-inference\",\"namespace\":\"kars-bot\","                \
	"\"schemaVersion\":1,\"tokenBudget\":{\"dailyTokens\":100000,\"monthlyTokens\":2000000}}"
#define GOLDEN_DIGEST "sha256:c8cbbd54104c5166c11b49b73667d8b9b86a808b4f25afa51a6f84f5f06e79fa"

/* allowedModels, onDisallowedModel and displayName (digest: Python hashlib) */
#define MODELS_BYTES                                                                               \
	"{\"allowedModels\":[\"o4-mini\",\"text-embedding-3-small\"],\"appliesTo\":{\"action\":"   \
	"\"chat\",\"sandboxName\":\"bot\"},\"displayName\":\"Bot models\",\"kind\":"               \
	"\"InferencePolicy\",\"modelPreference\":{\"primary\":{\"deployment\":\"gpt-4o\","         \
	"\"provider\":\"openai\"}},\"name\":\"bot-models\",\"namespace\":\"kars-bot\","            \
	"\"onDisallowedModel\":\"override\",\"schemaVersion\":1}"
#define MODELS_DIGEST "sha256:78f30636cbef0adc19d11c8eac5618fd0269f9a423a9e38596b504dc2c8a52f5"

static const char *router_digest; /* what the fake router "reports" */

static const char *loaded(void *ctx, const char *kind, const char *ns, const char *sandbox,
			  const char *name, char *why, size_t why_len)
{
	(*(int *)ctx)++;
	return router_digest;
}

static int setup(void **state)
{
	router_digest = NULL;
	return fx_setup("ip");
}

static json_t *policy(long long daily)
{
	return json_pack(
	    "{s:s,s:s,s:{s:s,s:s},s:{s:{s:s},s:{s:{s:s,s:s}},s:{s:I,s:I},s:{s:s,s:b}}}",
	    "apiVersion", "kars.azure.com/v1alpha1", "kind", "InferencePolicy", "metadata", "name",
	    "bot-inference", "namespace", "kars-bot", "spec", "appliesTo", "sandboxName", "bot",
	    "modelPreference", "primary", "provider", "azure-openai", "deployment", "gpt-4.1",
	    "tokenBudget", "dailyTokens", (json_int_t)daily, "monthlyTokens", (json_int_t)2000000,
	    "contentSafety", "hate", "Medium", "requirePromptShields", 1);
}

static json_t *sandbox(const char *name)
{
	return json_pack("{s:s,s:s,s:{s:s,s:s},s:{s:{s:s},s:{},s:{s:s}}}", "apiVersion",
			 "kars.azure.com/v1alpha1", "kind", "KarsSandbox", "metadata", "name", name,
			 "namespace", "kars-bot", "spec", "runtime", "kind", "OpenClaw", "sandbox",
			 "inferenceRef", "name", "bot-inference");
}

static void test_golden_compile(void **state)
{
	struct kars_store *s = NULL;
	struct kars_err err = {};
	struct kars_compiled c;
	json_t *in = policy(100000), *stored = NULL;

	/* compile what the store keeps: defaults (action "*") applied */
	MUST(kars_store_open_dir(fx.state, &s, &err));
	MUST(kars_store_create(s, in, &stored, &err));
	MUST(kars_inferencepolicy_compile(stored, &c, &err));
	assert_int_equal(c.len, strlen(GOLDEN_BYTES));
	assert_memory_equal(c.bytes, GOLDEN_BYTES, c.len);
	assert_string_equal(c.digest, GOLDEN_DIGEST);
	assert_string_equal(c.name, "kars-bot/bot-inference");
	kars_compiled_free(&c);
	/* the digest frames name and bytes: moving a byte across changes it */
	{
		char a[KARS_DIGEST_LEN], b[KARS_DIGEST_LEN];

		kars_policy_digest("ab", "c", 1, a);
		kars_policy_digest("a", "bc", 2, b);
		assert_string_not_equal(a, b);
	}
	json_object_set_new(json_object_get(stored, "spec"), "bundleRef", json_object());
	assert_int_equal(kars_inferencepolicy_compile(stored, &c, &err), -ENOTSUP);
	assert_err_contains(&err, "spec.bundleRef");
	json_decref(in);
	json_decref(stored);
	kars_store_close(s);
}

/* The CRD's model fields compile to what the router reads: the router's own
 * parser accepts the bytes, with the same models and mode, and computes the
 * same digest. */
static void test_golden_models_router_agrees(void **state)
{
	struct kars_store *s = NULL;
	struct kars_err err = {};
	struct kars_compiled c;
	struct kars_inference_policy *p;
	json_t *in = json_pack(
	    "{s:s,s:s,s:{s:s,s:s},s:{s:{s:s,s:s},s:{s:{s:s,s:s}},s:[s,s],s:s,s:s}}", "apiVersion",
	    "kars.azure.com/v1alpha1", "kind", "InferencePolicy", "metadata", "name", "bot-models",
	    "namespace", "kars-bot", "spec", "appliesTo", "sandboxName", "bot", "action", "chat",
	    "modelPreference", "primary", "provider", "openai", "deployment", "gpt-4o",
	    "allowedModels", "o4-mini", "text-embedding-3-small", "onDisallowedModel", "override",
	    "displayName", "Bot models");
	json_t *stored = NULL;

	MUST(kars_store_open_dir(fx.state, &s, &err));
	MUST(kars_store_create(s, in, &stored, &err));
	MUST(kars_inferencepolicy_compile(stored, &c, &err));
	assert_int_equal(c.len, strlen(MODELS_BYTES));
	assert_memory_equal(c.bytes, MODELS_BYTES, c.len);
	assert_string_equal(c.digest, MODELS_DIGEST);
	p = kars_inference_policy_parse(c.bytes, c.len, "inference-policy.json", "openai",
					"kars-bot/bot", &err);
	if (!p)
		fail_msg("the router refused the compiled policy: %s", err.msg);
	assert_string_equal(p->digest, MODELS_DIGEST);
	assert_int_equal(p->n_allowed, 2);
	assert_string_equal(p->allowed[1], "text-embedding-3-small");
	assert_true(p->override_disallowed);
	assert_string_equal(p->display_name, "Bot models");
	assert_true(kars_inference_policy_allows_model(p, "o4-mini"));
	assert_false(kars_inference_policy_allows_model(p, "gpt-5-pro"));
	kars_inference_policy_unref(p);
	kars_compiled_free(&c);

	/* "deny" is what an absent onDisallowedModel means on both sides */
	json_object_del(json_object_get(stored, "spec"), "onDisallowedModel");
	MUST(kars_inferencepolicy_compile(stored, &c, &err));
	assert_null(strstr(c.bytes, "onDisallowedModel"));
	p = kars_inference_policy_parse(c.bytes, c.len, "inference-policy.json", "openai",
					"kars-bot/bot", &err);
	assert_non_null(p);
	assert_false(p->override_disallowed);
	kars_inference_policy_unref(p);
	kars_compiled_free(&c);

	/* appliesTo.action: one value, the same set on both sides. Every value
	 * the CRD accepts is compiled and read by the router as exactly that
	 * route (completions included: the router serves the legacy route);
	 * one the router does not know is refused by the CRD too */
	{
		static const char *const actions[] = {"chat",  "responses",  "completions",
						      "image", "embeddings", "*"};
		const struct kars_kind *k = kars_kind_find("ip");
		json_t *applies = json_object_get(json_object_get(stored, "spec"), "appliesTo");
		struct kars_problems probs;

		for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
			json_object_set_new(applies, "action", json_string(actions[i]));
			memset(&probs, 0, sizeof(probs));
			assert_int_equal(kars_validate(k, stored, &probs), 0);
			MUST(kars_inferencepolicy_compile(stored, &c, &err));
			p = kars_inference_policy_parse(c.bytes, c.len, "inference-policy.json",
							"openai", "kars-bot/bot", &err);
			if (!p)
				fail_msg("the router refused action %s: %s", actions[i], err.msg);
			for (int a = 0; a < KARS_ACTION__COUNT; a++)
				assert_int_equal(
				    kars_inference_policy_covers(p, a),
				    !strcmp(actions[i], "*") ||
					!strcmp(actions[i], kars_policy_action_name(a)));
			kars_inference_policy_unref(p);
			kars_compiled_free(&c);
		}
		json_object_set_new(applies, "action", json_string("images"));
		memset(&probs, 0, sizeof(probs));
		assert_int_equal(kars_validate(k, stored, &probs), 1);
		assert_non_null(strstr(probs.msg[0], "spec.appliesTo.action: Unsupported value"));
	}
	json_decref(in);
	json_decref(stored);
	kars_store_close(s);
}

static json_t *get_ip(struct kars_store *s)
{
	struct kars_err err = {};
	json_t *o = NULL;

	MUST(kars_store_get(s, kars_kind_find("ip"), "kars-bot", "bot-inference", &o, &err));
	return o;
}

static const char *cond(const json_t *o, const char *type, const char *field)
{
	return json_string_value(
	    json_object_get(kars_condition_get(json_object_get(o, "status"), type), field));
}

static const char *status_str(const json_t *o, const char *field)
{
	return json_string_value(json_object_get(json_object_get(o, "status"), field));
}

static void test_reconcile_lifecycle(void **state)
{
	struct kars_store *s = NULL;
	struct kars_err err = {};
	struct kars_reconcile_result r;
	int calls = 0;
	struct kars_policy_env env = {.out_dir = fx.out,
				      .loaded_digest = loaded,
				      .ctx = &calls,
				      .now = "2026-01-01T00:00:00Z"};
	json_t *ip = policy(100000), *sb = sandbox("bot"), *o = NULL;
	char path[256], *bytes;
	uint64_t rv;
	struct stat st1, st2;
	size_t len;

	MUST(kars_store_open_dir(fx.state, &s, &err));
	env.store = s;
	MUST(kars_store_create(s, ip, &o, &err));
	json_decref(o);

	/* no sandbox yet */
	MUST(kars_reconcile_inferencepolicy(&env, "kars-bot", "bot-inference", &r, &err));
	o = get_ip(s);
	assert_string_equal(status_str(o, "phase"), "Compiled");
	assert_string_equal(cond(o, "Ready", "reason"), "NoSandboxesReferencing");
	assert_string_equal(status_str(o, "compiledDigest"), GOLDEN_DIGEST);
	assert_string_equal(json_string_value(json_array_get(
				json_object_get(json_object_get(o, "metadata"), "finalizers"), 0)),
			    KARS_IP_FINALIZER);
	assert_int_equal(r.requeue_after_ms, 300000);
	json_decref(o);

	/* a sandbox refers to it: delivered, awaiting the router */
	MUST(kars_store_create(s, sb, &o, &err));
	json_decref(o);
	env.now = "2026-01-01T00:01:00Z";
	MUST(kars_reconcile_inferencepolicy(&env, "kars-bot", "bot-inference", &r, &err));
	assert_int_equal(r.files_written, 1);
	assert_int_equal(r.requeue_after_ms, 15000);
	snprintf(path, sizeof(path), "%s/kars-bot/bot/%s", fx.out, KARS_IP_FILE);
	{
		FILE *f = fopen(path, "r");

		assert_non_null(f);
		bytes = calloc(1, 4096);
		len = fread(bytes, 1, 4095, f);
		fclose(f);
		assert_int_equal(len, strlen(GOLDEN_BYTES));
		assert_memory_equal(bytes, GOLDEN_BYTES, len);
		free(bytes);
	}
	o = get_ip(s);
	assert_string_equal(status_str(o, "phase"), "Compiled");
	assert_string_equal(cond(o, "Ready", "reason"), "AwaitingRouterEnforcement");
	assert_string_equal(cond(o, "Progressing", "status"), "True");
	rv = kars_object_rv(o);
	json_decref(o);
	assert_int_equal(stat(path, &st1), 0);

	/* again, nothing new: no file write, no status write */
	env.now = "2026-01-01T00:02:00Z";
	MUST(kars_reconcile_inferencepolicy(&env, "kars-bot", "bot-inference", &r, &err));
	assert_int_equal(r.files_written, 0);
	assert_false(r.status_written);
	o = get_ip(s);
	assert_int_equal(kars_object_rv(o), rv);
	json_decref(o);
	assert_int_equal(stat(path, &st2), 0);
	assert_int_equal(st1.st_ino, st2.st_ino);

	/* the router reports a different digest: still not Ready */
	router_digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
	MUST(kars_reconcile_inferencepolicy(&env, "kars-bot", "bot-inference", &r, &err));
	o = get_ip(s);
	assert_string_equal(cond(o, "Ready", "status"), "False");
	json_decref(o);

	/* the router reports the compiled digest: Ready */
	router_digest = GOLDEN_DIGEST;
	env.now = "2026-01-01T00:03:00Z";
	MUST(kars_reconcile_inferencepolicy(&env, "kars-bot", "bot-inference", &r, &err));
	o = get_ip(s);
	assert_string_equal(status_str(o, "phase"), "Ready");
	assert_string_equal(cond(o, "Ready", "status"), "True");
	assert_string_equal(cond(o, "Ready", "reason"), "RouterEnforcing");
	assert_string_equal(cond(o, "Ready", "lastTransitionTime"), "2026-01-01T00:03:00Z");
	assert_string_equal(status_str(o, "loadedDigest"), GOLDEN_DIGEST);
	assert_int_equal(r.requeue_after_ms, 300000);
	json_decref(o);

	/* a spec change: new digest, generation 2, Ready flips back */
	o = get_ip(s);
	json_object_set_new(json_object_get(json_object_get(o, "spec"), "tokenBudget"),
			    "dailyTokens", json_integer(50000));
	{
		json_t *u = NULL;

		MUST(kars_store_update(s, o, &u, &err));
		json_decref(u);
	}
	json_decref(o);
	env.now = "2026-01-01T00:04:00Z";
	MUST(kars_reconcile_inferencepolicy(&env, "kars-bot", "bot-inference", &r, &err));
	assert_int_equal(r.files_written, 1);
	o = get_ip(s);
	assert_string_not_equal(status_str(o, "compiledDigest"), GOLDEN_DIGEST);
	assert_int_equal(
	    json_integer_value(json_object_get(
		kars_condition_get(json_object_get(o, "status"), "Ready"), "observedGeneration")),
	    2);
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(o, "status"), "observedGeneration")),
	    2);
	assert_string_equal(cond(o, "Ready", "status"), "False");
	assert_string_equal(cond(o, "Ready", "lastTransitionTime"), "2026-01-01T00:04:00Z");
	assert_string_equal(status_str(o, "lastCompiledAt"), "2026-01-01T00:04:00Z");
	json_decref(o);

	/* deletion: the finalizer holds it until the delivered file is gone */
	o = NULL;
	MUST(kars_store_delete(s, kars_kind_find("ip"), "kars-bot", "bot-inference", &o, &err));
	json_decref(o);
	MUST(kars_reconcile_inferencepolicy(&env, "kars-bot", "bot-inference", &r, &err));
	assert_int_equal(r.files_removed, 1);
	assert_int_equal(access(path, F_OK), -1);
	o = NULL;
	assert_int_equal(
	    kars_store_get(s, kars_kind_find("ip"), "kars-bot", "bot-inference", &o, &err),
	    -ENOENT);
	/* and a pass on a gone object is a no-op */
	kars_err_clear(&err);
	MUST(kars_reconcile_inferencepolicy(&env, "kars-bot", "bot-inference", &r, &err));
	assert_int_equal(r.requeue_after_ms, 0);
	assert_true(calls > 0);
	json_decref(ip);
	json_decref(sb);
	kars_store_close(s);
}

static void test_bundle_ref_is_degraded_not_silent(void **state)
{
	struct kars_store *s = NULL;
	struct kars_err err = {};
	struct kars_reconcile_result r;
	struct kars_policy_env env = {.out_dir = fx.out};
	json_t *ip =
	    json_pack("{s:s,s:s,s:{s:s,s:s},s:{s:{s:s},s:{s:s,s:s,s:s}}}", "apiVersion",
		      "kars.azure.com/v1alpha1", "kind", "InferencePolicy", "metadata", "name",
		      "bot-inference", "namespace", "kars-bot", "spec", "appliesTo", "sandboxName",
		      "bot", "bundleRef", "registry", "r", "repository", "x", "digest",
		      "sha256:0000000000000000000000000000000000000000000000000000000000000000");
	json_t *o = NULL;

	MUST(kars_store_open_dir(fx.state, &s, &err));
	env.store = s;
	MUST(kars_store_create(s, ip, &o, &err));
	json_decref(o);
	MUST(kars_reconcile_inferencepolicy(&env, "kars-bot", "bot-inference", &r, &err));
	o = get_ip(s);
	assert_string_equal(status_str(o, "phase"), "Degraded");
	assert_string_equal(cond(o, "Degraded", "reason"), "NotSupported");
	assert_null(status_str(o, "compiledDigest"));
	json_decref(o);
	json_decref(ip);
	kars_store_close(s);
}

/* appliesTo selects among the sandboxes that name the policy: a sandbox the
 * router would refuse it for does not get it, and does not count. */
static void test_applies_to_selects_sandboxes(void **state)
{
	struct kars_store *s = NULL;
	struct kars_err err = {};
	struct kars_reconcile_result r;
	struct kars_policy_env env = {.out_dir = fx.out, .now = "2026-01-01T00:00:00Z"};
	json_t *o = NULL, *sb;
	char path[256];

	MUST(kars_store_open_dir(fx.state, &s, &err));
	env.store = s;
	o = policy(100000); /* appliesTo.sandboxName: bot */
	MUST(kars_store_create(s, o, &sb, &err));
	json_decref(sb);
	json_decref(o);
	sb = sandbox("other");
	MUST(kars_store_create(s, sb, &o, &err));
	json_decref(o);
	json_decref(sb);
	MUST(kars_reconcile_inferencepolicy(&env, "kars-bot", "bot-inference", &r, &err));
	snprintf(path, sizeof(path), "%s/kars-bot/other/%s", fx.out, KARS_IP_FILE);
	assert_int_equal(access(path, F_OK), -1);
	o = get_ip(s);
	assert_string_equal(cond(o, "Ready", "reason"), "NoSandboxesReferencing");
	json_decref(o);

	/* by labels instead: only the sandbox carrying them */
	o = get_ip(s);
	json_object_set_new(json_object_get(o, "spec"), "appliesTo",
			    json_pack("{s:{s:s}}", "sandboxMatchLabels", "team", "a"));
	MUST(kars_store_update(s, o, &sb, &err));
	json_decref(sb);
	json_decref(o);
	sb = sandbox("labelled");
	json_object_set_new(json_object_get(sb, "metadata"), "labels",
			    json_pack("{s:s,s:s}", "team", "a", "x", "y"));
	MUST(kars_store_create(s, sb, &o, &err));
	json_decref(o);
	json_decref(sb);
	MUST(kars_reconcile_inferencepolicy(&env, "kars-bot", "bot-inference", &r, &err));
	assert_int_equal(r.files_written, 1);
	snprintf(path, sizeof(path), "%s/kars-bot/labelled/%s", fx.out, KARS_IP_FILE);
	assert_int_equal(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/kars-bot/other/%s", fx.out, KARS_IP_FILE);
	assert_int_equal(access(path, F_OK), -1);
	kars_store_close(s);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_applies_to_selects_sandboxes, setup, fx_teardown),
    cmocka_unit_test_setup_teardown(test_golden_compile, setup, fx_teardown),
    cmocka_unit_test_setup_teardown(test_golden_models_router_agrees, setup, fx_teardown),
    cmocka_unit_test_setup_teardown(test_reconcile_lifecycle, setup, fx_teardown),
    cmocka_unit_test_setup_teardown(test_bundle_ref_is_degraded_not_silent, setup, fx_teardown),
};

KARS_UNIT_MAIN(tests)
