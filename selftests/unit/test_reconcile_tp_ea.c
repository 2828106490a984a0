/* test_reconcile_tp_ea.c - the ToolPolicy and EgressApproval reconcilers
 * (reconcile_policy.h) against a real local store.
 *
 * Golden: fixed objects compile to exact bytes and digests computed
 * independently (Python hashlib over the documented framing). ToolPolicy:
 * the compiled profile is what the governance library loads and it
 * enforces the compiled rate limit; delivered to the sandboxes that use it
 * and taken back from one that switched away or turned governance off;
 * what is not compiled yet is Degraded, not dropped; a profile the loader
 * refuses is Degraded with the loader's message. EgressApproval: the window
 * is recorded and clamped, Pending until the enforcer reports the digest,
 * Active then, Expired with its file removed when the window ends.
 */
#include "unit.h"
#include "store_fixture.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "conditions.h"
#include "deliver.h"
#include "governance.h"
#include "reconcile_policy.h"
#include "tool_policy_file.h"

#define TP_PROFILE                                                                                 \
	"{\"agent\":\"bot\",\"policies\":[{\"denied_actions\":[\"shell:rm\"],\"name\":\"no-rm\","  \
	"\"type\":\"capability\"},{\"actions\":[\"tool.invoke:web_search\"],\"max_calls\":300,"    \
	"\"name\":\"kars-rate-limit\",\"type\":\"rate_limit\",\"window\":\"60s\"}],"               \
	"\"version\":\"1.0\"}"
#define TP_BYTES                                                                                             \
	"{\"kind\":\"ToolPolicy\",\"name\":\"bot-tools\",\"namespace\":\"kars-bot\",\"profile\":" TP_PROFILE \
	",\"schemaVersion\":1}"
/* computed with Python's hashlib over be64(len(name)) name be64(len) bytes */
#define TP_DIGEST "sha256:2518dd2baf230e539cc03424e545d316558fb0dd0e2d0cacdd4377608bea37f4"
#define EA_BYTES                                                                                   \
	"{\"effectiveAt\":\"2026-01-01T00:00:00Z\",\"expiresAt\":\"2026-01-01T02:00:00Z\","        \
	"\"hosts\":[{\"host\":\"api.github.com\",\"port\":443},{\"host\":"                         \
	"\"*.githubusercontent.com\",\"port\":8443}],\"kind\":\"EgressApproval\",\"name\":\"gh\"," \
	"\"namespace\":\"kars-bot\",\"sandbox\":\"bot\",\"schemaVersion\":1}"
#define EA_DIGEST "sha256:8339ac1713543fde4860fac578ecd89d0a31366fa066eb9bce1a30b4aa146c90"

static const char *reported; /* what the fake enforcer reports */
static char asked_kind[32], asked_name[64];

static const char *loaded(void *ctx, const char *kind, const char *ns, const char *sandbox,
			  const char *name, char *why, size_t why_len)
{
	snprintf(asked_kind, sizeof(asked_kind), "%s", kind);
	snprintf(asked_name, sizeof(asked_name), "%s", name);
	return reported;
}

static int setup(void **state)
{
	reported = NULL;
	return fx_setup("tpea");
}

static json_t *get(struct kars_store *s, const char *kind, const char *name)
{
	struct kars_err err = {};
	json_t *o = NULL;

	MUST(kars_store_get(s, kars_kind_find(kind), "kars-bot", name, &o, &err));
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

static bool file_is(const char *path, const char *want)
{
	char *buf = NULL;
	size_t len = 0;
	bool same = kars_read_file(path, 1 << 20, &buf, &len) == 0 && len == strlen(want) &&
		    !memcmp(buf, want, len);

	free(buf);
	return same;
}

#define TP_OBJ(extra)                                                                              \
	"{\"apiVersion\":\"kars.azure.com/v1alpha1\",\"kind\":\"ToolPolicy\",\"metadata\":"        \
	"{\"name\":\"bot-tools\",\"namespace\":\"kars-bot\"},\"spec\":{\"appliesTo\":{\"tool\":"   \
	"\"web_search\",\"sandboxMatchLabels\":{\"app\":\"bot\"}},\"rateLimit\":{\"rps\":5,"       \
	"\"window\":\"PT1M\"},\"agtProfile\":{\"inline\":{\"version\":\"1.0\",\"agent\":\"bot\","  \
	"\"policies\":[{\"name\":\"no-rm\",\"type\":\"capability\",\"denied_actions\":"            \
	"[\"shell:rm\"]}]}}" extra "}}"

#define SANDBOX(name, gov) SANDBOX_L(name, "{\"app\":\"bot\",\"team\":\"x\"}", gov)
#define SANDBOX_L(name, labels, gov)                                                               \
	"{\"apiVersion\":\"kars.azure.com/v1alpha1\",\"kind\":\"KarsSandbox\",\"metadata\":"       \
	"{\"name\":\"" name "\",\"namespace\":\"kars-bot\",\"labels\":" labels                     \
	"},\"spec\":{\"runtime\":{\"kind\":"                                                       \
	"\"OpenClaw\"},\"sandbox\":{},\"inferenceRef\":{\"name\":\"x\"},\"governance\":" gov "}}"

static void test_toolpolicy_golden_and_enforced_by_the_library(void **state)
{
	struct kars_store *s = NULL;
	struct kars_err err = {};
	struct kars_compiled c;
	struct kars_gov_profile *p = NULL;
	struct kars_gov_decision d;
	struct kars_gov_request req = {.action = "tool.invoke:web_search", .now_ns = 1};
	struct kars_tool_policy_file f;
	char path[160];
	json_t *o;
	int allowed = 0;

	MUST(kars_store_open_dir(fx.state, &s, &err));
	o = fx_create_text(s, TP_OBJ(""));
	MUST(kars_toolpolicy_compile(o, &c, &err));
	assert_int_equal(c.len, strlen(TP_BYTES));
	assert_memory_equal(c.bytes, TP_BYTES, c.len);
	assert_string_equal(c.digest, TP_DIGEST);
	/* the router's reader takes the profile out and computes the same
	 * digest; the library loads that profile and enforces both rules */
	snprintf(path, sizeof(path), "%s/tool-policy.json", fx.dir);
	MUST(kars_deliver_file(path, c.bytes, c.len, &err) < 0);
	MUST(kars_tool_policy_file_read(path, "kars-bot/a", &f, &err));
	assert_string_equal(f.digest, TP_DIGEST);
	assert_string_equal(f.name, "kars-bot/bot-tools");
	assert_int_equal(f.profile_len, strlen(TP_PROFILE));
	assert_memory_equal(f.profile, TP_PROFILE, f.profile_len);
	MUST(kars_gov_profile_load_buf(f.profile, f.profile_len, path, NULL, &p, NULL, &err));
	kars_tool_policy_file_free(&f);
	/* a router of another namespace refuses it (delivered to the wrong one) */
	assert_int_equal(kars_tool_policy_file_read(path, "other/a", &f, &err), -EINVAL);
	assert_err_contains(&err, "namespace: the ToolPolicy is of namespace \"kars-bot\"");
	kars_err_clear(&err);
	for (int i = 0; i < 400; i++) {
		kars_gov_profile_evaluate(p, &req, &d);
		allowed += d.verdict == KARS_GOV_ALLOW;
	}
	assert_int_equal(allowed, 300); /* 5 rps over a 60 s window */
	req.action = "shell:rm";
	kars_gov_profile_evaluate(p, &req, &d);
	assert_int_equal(d.verdict, KARS_GOV_DENY);
	assert_string_equal(d.rule, "no-rm");
	kars_gov_profile_free(p);
	kars_compiled_free(&c);

	/* a profile the library would refuse is refused here, with its words */
	json_object_set_new(
	    json_array_get(
		json_object_get(
		    json_object_get(json_object_get(json_object_get(o, "spec"), "agtProfile"),
				    "inline"),
		    "policies"),
		0),
	    "denied_action", json_string("typo"));
	assert_int_equal(kars_toolpolicy_compile(o, &c, &err), -EINVAL);
	assert_err_contains(&err, "denied_action");
	json_decref(o);
	kars_store_close(s);
}

static void test_toolpolicy_delivery_and_refusals(void **state)
{
	struct kars_store *s = NULL;
	struct kars_err err = {};
	struct kars_reconcile_result r;
	struct kars_policy_env env = {
	    .out_dir = fx.out, .loaded_digest = loaded, .now = "2026-01-01T00:00:00Z"};
	char a[256], b[256], c[256];
	json_t *o;

	MUST(kars_store_open_dir(fx.state, &s, &err));
	env.store = s;
	json_decref(fx_create_text(s, TP_OBJ("")));
	json_decref(
	    fx_create_text(s, SANDBOX("a", "{\"toolPolicyRef\":{\"name\":\"bot-tools\"}}")));
	json_decref(fx_create_text(s, SANDBOX("b", "{\"enabled\":false,\"toolPolicyRef\":"
						   "{\"name\":\"bot-tools\"}}")));
	/* names the policy, but lacks a label of appliesTo.sandboxMatchLabels */
	json_decref(fx_create_text(s, SANDBOX_L("c", "{\"app\":\"other\",\"team\":\"x\"}",
						"{\"toolPolicyRef\":{\"name\":\"bot-tools\"}}")));
	MUST(kars_reconcile_policy(&kars_policy_toolpolicy, &env, "kars-bot", "bot-tools", &r,
				   &err));
	snprintf(a, sizeof(a), "%s/kars-bot/a/tool-policy.json", fx.out);
	snprintf(b, sizeof(b), "%s/kars-bot/b/tool-policy.json", fx.out);
	assert_true(file_is(a, TP_BYTES));
	assert_int_equal(access(b, F_OK), -1); /* governance off: not delivered */
	snprintf(c, sizeof(c), "%s/kars-bot/c/tool-policy.json", fx.out);
	assert_int_equal(access(c, F_OK), -1); /* labels do not match: not delivered */
	assert_string_equal(asked_kind, "ToolPolicy");
	assert_string_equal(asked_name, "kars-bot/bot-tools");
	o = get(s, "tp", "bot-tools");
	assert_string_equal(status_str(o, "phase"), "Compiled");
	assert_string_equal(cond(o, "Ready", "reason"), "AwaitingRouterEnforcement");
	json_decref(o);
	reported = TP_DIGEST;
	MUST(kars_reconcile_policy(&kars_policy_toolpolicy, &env, "kars-bot", "bot-tools", &r,
				   &err));
	o = get(s, "tp", "bot-tools");
	assert_string_equal(status_str(o, "phase"), "Ready");
	assert_string_equal(status_str(o, "loadedDigest"), TP_DIGEST);
	json_decref(o);

	/* sandbox a switches to another policy: the old profile is taken back
	 * (one file per sandbox: it must not keep the old policy) */
	o = get(s, "cs", "a");
	json_object_set_new(
	    json_object_get(json_object_get(json_object_get(o, "spec"), "governance"),
			    "toolPolicyRef"),
	    "name", json_string("other"));
	{
		json_t *u = NULL;

		MUST(kars_store_update(s, o, &u, &err));
		json_decref(u);
	}
	json_decref(o);
	MUST(kars_reconcile_policy(&kars_policy_toolpolicy, &env, "kars-bot", "bot-tools", &r,
				   &err));
	assert_int_equal(r.files_removed, 1);
	assert_int_equal(access(a, F_OK), -1);
	/* the file the new policy delivers there is not ours to take back */
	MUST(kars_deliver_file(a, "{\"kind\":\"ToolPolicy\",\"name\":\"other\"}", 36, &err) < 0);
	MUST(kars_reconcile_policy(&kars_policy_toolpolicy, &env, "kars-bot", "bot-tools", &r,
				   &err));
	assert_int_equal(r.files_removed, 0);
	assert_int_equal(access(a, F_OK), 0);
	o = get(s, "tp", "bot-tools");
	assert_string_equal(cond(o, "Ready", "reason"), "NoSandboxesReferencing");
	json_decref(o);
	kars_store_close(s);
}

static void test_toolpolicy_not_compiled_yet_is_degraded(void **state)
{
	static const char *const cases[][2] = {
	    {",\"approval\":{\"mode\":\"always\"}", "spec.approval.mode"},
	    {",\"commerce\":{\"dailyCap\":\"USD 10.00\"}", "spec.commerce"},
	};
	struct kars_err err = {};

	for (size_t i = 0; i < 2; i++) {
		struct kars_store *s = NULL;
		struct kars_reconcile_result r;
		struct kars_policy_env env = {.out_dir = fx.out};
		char text[2048];
		json_t *o;

		snprintf(text, sizeof(text),
			 "{\"apiVersion\":\"kars.azure.com/v1alpha1\",\"kind\":\"ToolPolicy\","
			 "\"metadata\":{\"name\":\"t%zu\",\"namespace\":\"kars-bot\"},\"spec\":{"
			 "\"appliesTo\":{\"sandboxMatchLabels\":{\"a\":\"b\"}},\"agtProfile\":"
			 "{\"inline\":{\"version\":\"1.0\",\"agent\":\"x\",\"policies\":[]}}%s}}",
			 i, cases[i][0]);
		MUST(kars_store_open_dir(fx.state, &s, &err));
		env.store = s;
		json_decref(fx_create_text(s, text));
		snprintf(text, sizeof(text), "t%zu", i);
		MUST(kars_reconcile_policy(&kars_policy_toolpolicy, &env, "kars-bot", text, &r,
					   &err));
		o = get(s, "tp", text);
		assert_string_equal(status_str(o, "phase"), "Degraded");
		assert_string_equal(cond(o, "Degraded", "reason"), "NotSupported");
		assert_non_null(strstr(cond(o, "Degraded", "message"), cases[i][1]));
		assert_null(status_str(o, "compiledDigest"));
		json_decref(o);
		kars_store_close(s);
	}
}

#define EA_OBJ(ttl)                                                                                \
	"{\"apiVersion\":\"kars.azure.com/v1alpha1\",\"kind\":\"EgressApproval\",\"metadata\":"    \
	"{\"name\":\"gh\",\"namespace\":\"kars-bot\"},\"spec\":{\"sandbox\":\"bot\",\"hosts\":"    \
	"[{\"host\":\"api.github.com\"},{\"host\":\"*.githubusercontent.com\",\"port\":8443}],"    \
	"\"reason\":\"release\",\"ttl\":\"" ttl "\"}}"

static void test_egressapproval_window(void **state)
{
	struct kars_store *s = NULL;
	struct kars_err err = {};
	struct kars_reconcile_result r;
	struct kars_policy_env env = {
	    .out_dir = fx.out, .loaded_digest = loaded, .now = "2026-01-01T00:00:00Z"};
	char path[256];
	json_t *o;

	MUST(kars_store_open_dir(fx.state, &s, &err));
	env.store = s;
	json_decref(fx_create_text(s, EA_OBJ("PT2H")));
	json_decref(fx_create_text(s, SANDBOX("bot", "{}")));
	MUST(kars_reconcile_policy(&kars_policy_egressapproval, &env, "kars-bot", "gh", &r, &err));
	snprintf(path, sizeof(path), "%s/kars-bot/bot/egress-approvals/gh.json", fx.out);
	assert_true(file_is(path, EA_BYTES));
	assert_int_equal(r.requeue_after_ms, 15000);
	o = get(s, "eappr", "gh");
	assert_string_equal(status_str(o, "phase"), "Pending");
	assert_string_equal(status_str(o, "compiledDigest"), EA_DIGEST);
	assert_string_equal(status_str(o, "effectiveAt"), "2026-01-01T00:00:00Z");
	assert_string_equal(status_str(o, "expiresAt"), "2026-01-01T02:00:00Z");
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(o, "status"), "hostCount")), 2);
	json_decref(o);

	/* enforced; an hour later the window has not moved, the bytes neither */
	reported = EA_DIGEST;
	env.now = "2026-01-01T01:00:00Z";
	MUST(kars_reconcile_policy(&kars_policy_egressapproval, &env, "kars-bot", "gh", &r, &err));
	assert_int_equal(r.files_written, 0);
	o = get(s, "eappr", "gh");
	assert_string_equal(status_str(o, "phase"), "Active");
	assert_string_equal(cond(o, "Ready", "status"), "True");
	json_decref(o);
	env.now = "2026-01-01T01:59:00Z";
	MUST(kars_reconcile_policy(&kars_policy_egressapproval, &env, "kars-bot", "gh", &r, &err));
	assert_int_equal(r.requeue_after_ms, 60000); /* looks again when it expires */

	/* expired: taken back, and it stays so */
	env.now = "2026-01-01T02:00:00Z";
	MUST(kars_reconcile_policy(&kars_policy_egressapproval, &env, "kars-bot", "gh", &r, &err));
	assert_int_equal(r.files_removed, 1);
	assert_int_equal(access(path, F_OK), -1);
	o = get(s, "eappr", "gh");
	assert_string_equal(status_str(o, "phase"), "Expired");
	assert_string_equal(cond(o, "Ready", "status"), "False");
	json_decref(o);
	env.now = "2026-01-01T03:00:00Z";
	MUST(kars_reconcile_policy(&kars_policy_egressapproval, &env, "kars-bot", "gh", &r, &err));
	assert_false(r.status_written);
	assert_int_equal(access(path, F_OK), -1);
	kars_store_close(s);
}

static void test_egressapproval_ttl_is_clamped(void **state)
{
	struct kars_store *s = NULL;
	struct kars_err err = {};
	struct kars_reconcile_result r;
	struct kars_policy_env env = {.out_dir = fx.out, .now = "2026-01-01T00:00:00Z"};
	json_t *o;
	uint64_t secs = 0;

	assert_int_equal(kars_iso_duration_s("P1DT2H3M4S", &secs), 0);
	assert_int_equal(secs, 93784);
	assert_int_equal(kars_iso_duration_s("P1M", &secs), -EINVAL); /* months: no */
	assert_int_equal(kars_iso_duration_s("PT1H2D", &secs), -EINVAL);
	MUST(kars_store_open_dir(fx.state, &s, &err));
	env.store = s;
	json_decref(fx_create_text(s, EA_OBJ("P7D")));
	MUST(kars_reconcile_policy(&kars_policy_egressapproval, &env, "kars-bot", "gh", &r, &err));
	o = get(s, "eappr", "gh");
	assert_string_equal(status_str(o, "expiresAt"), "2026-01-02T00:00:00Z");
	json_decref(o);
	kars_store_close(s);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_toolpolicy_golden_and_enforced_by_the_library, setup,
				    fx_teardown),
    cmocka_unit_test_setup_teardown(test_toolpolicy_delivery_and_refusals, setup, fx_teardown),
    cmocka_unit_test_setup_teardown(test_toolpolicy_not_compiled_yet_is_degraded, setup,
				    fx_teardown),
    cmocka_unit_test_setup_teardown(test_egressapproval_window, setup, fx_teardown),
    cmocka_unit_test_setup_teardown(test_egressapproval_ttl_is_clamped, setup, fx_teardown),
};

KARS_UNIT_MAIN(tests)
