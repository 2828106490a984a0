/* test_reconcile_sandbox.c - the KarsSandbox reconciler
 * (reconcile_sandbox.h), its runtime plans (runtime_plan.h) and its egress
 * request for karsd (egress_compile.h), against a real local store and a
 * recording backend (the real local backend is issue 5).
 *
 * Plans: every kind's adapter and language; SemanticKernel AdapterMissing,
 * MAF dotnet ShapeInvalid, a block of another kind ShapeInvalid; the
 * contract env, reserved prefixes dropped. Egress: golden request bytes
 * (rules for IP literals, fqdns for names and wildcards, deduplicated and
 * sorted, approvals in force merged, expired ones not), allowlistRef
 * refused. Reconcile: no backend is NoBackend, never Running; the backend
 * gets the desired sandbox and Ready follows its observation only; a
 * refused plan hands nothing over; deletion goes through the backend
 * before the finalizer is removed.
 */
#include "unit.h"
#include "store_fixture.h"

#include <errno.h>
#include <stdlib.h>

#include "conditions.h"
#include "reconcile_sandbox.h"
#include "runtime_plan.h"

static int setup(void **state)
{
	return fx_setup("sb");
}

static json_t *sandbox_with(const char *runtime, const char *network)
{
	char text[4096];
	json_t *o;

	snprintf(
	    text, sizeof(text),
	    "{\"apiVersion\":\"kars.azure.com/v1alpha1\",\"kind\":\"KarsSandbox\","
	    "\"metadata\":{\"name\":\"bot\",\"namespace\":\"team-a\"},\"spec\":{"
	    "\"runtime\":%s,\"sandbox\":{},\"inferenceRef\":{\"name\":\"bot-inference\"}%s%s}}",
	    runtime, network ? ",\"networkPolicy\":" : "", network ? network : "");
	o = json_loads(text, 0, NULL);
	assert_non_null(o);
	return o;
}

static void test_runtime_plans(void **state)
{
	static const struct {
		const char *runtime, *adapter, *language;
		enum kars_plan_status want;
	} cases[] = {
	    {"{\"kind\":\"OpenClaw\"}", "openclaw", "node", KARS_PLAN_OK},
	    {"{\"kind\":\"OpenAIAgents\"}", "openai-agents", "python", KARS_PLAN_OK},
	    {"{\"kind\":\"MicrosoftAgentFramework\"}", "maf-python", "python", KARS_PLAN_OK},
	    {"{\"kind\":\"MicrosoftAgentFramework\",\"microsoftAgentFramework\":{\"language\":"
	     "\"dotnet\"}}",
	     NULL, NULL, KARS_PLAN_SHAPE_INVALID},
	    {"{\"kind\":\"LangGraph\"}", "langgraph", "python", KARS_PLAN_OK},
	    {"{\"kind\":\"LangGraph\",\"langGraph\":{\"language\":\"typescript\"}}", "langgraph-ts",
	     "typescript", KARS_PLAN_OK},
	    {"{\"kind\":\"Anthropic\"}", "anthropic", "python", KARS_PLAN_OK},
	    {"{\"kind\":\"PydanticAi\"}", "pydantic-ai", "python", KARS_PLAN_OK},
	    {"{\"kind\":\"Hermes\"}", "hermes", "python", KARS_PLAN_OK},
	    {"{\"kind\":\"BYO\",\"byo\":{\"image\":\"r.io/agent:1.2\",\"contractVersion\":\"v1\","
	     "\"command\":[\"/agent\"]}}",
	     "byo", NULL, KARS_PLAN_OK},
	    {"{\"kind\":\"SemanticKernel\"}", NULL, NULL, KARS_PLAN_ADAPTER_MISSING},
	    {"{\"kind\":\"BYO\"}", NULL, NULL, KARS_PLAN_SHAPE_INVALID},
	    {"{\"kind\":\"OpenClaw\",\"anthropic\":{}}", NULL, NULL, KARS_PLAN_SHAPE_INVALID},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kars_err err = {};
		json_t *sb = sandbox_with(cases[i].runtime, NULL), *plan = NULL;
		enum kars_plan_status st = kars_runtime_plan(sb, "gpt-4o", &plan, &err);

		if (st != cases[i].want)
			fail_msg("case %zu (%s): %s, want %s (%s)", i, cases[i].runtime,
				 kars_plan_status_reason(st),
				 kars_plan_status_reason(cases[i].want), err.msg);
		if (st == KARS_PLAN_OK) {
			const json_t *env = json_object_get(plan, "env");

			assert_string_equal(json_string_value(json_object_get(plan, "adapter")),
					    cases[i].adapter);
			if (cases[i].language)
				assert_string_equal(
				    json_string_value(json_object_get(plan, "language")),
				    cases[i].language);
			assert_string_equal(json_string_value(json_object_get(
						env, "KARS_RUNTIME_CONTRACT_VERSION")),
					    "v1");
			assert_string_equal(json_string_value(json_object_get(env, "SANDBOX_NAME")),
					    "bot");
			assert_string_equal(json_string_value(json_object_get(env, "KARS_MODEL")),
					    "gpt-4o");
		} else {
			assert_null(plan);
			assert_true(err.msg[0] != '\0');
		}
		json_decref(plan);
		json_decref(sb);
	}
}

static void test_plan_env_and_byo(void **state)
{
	struct kars_err err = {};
	json_t *sb = sandbox_with(
	    "{\"kind\":\"OpenAIAgents\",\"openaiAgents\":{\"extraEnv\":{\"MY_FLAG\":\"1\","
	    "\"KARS_MODEL\":\"evil\",\"AZURE_CLIENT_ID\":\"x\",\"AGT_SKIP\":\"1\"}}}",
	    NULL);
	json_t *plan = NULL;
	const json_t *env;

	assert_int_equal(kars_runtime_plan(sb, "gpt-4o", &plan, &err), KARS_PLAN_OK);
	env = json_object_get(plan, "env");
	assert_string_equal(json_string_value(json_object_get(env, "MY_FLAG")), "1");
	assert_string_equal(json_string_value(json_object_get(env, "KARS_MODEL")), "gpt-4o");
	assert_null(json_object_get(env, "AZURE_CLIENT_ID"));
	assert_null(json_object_get(env, "AGT_SKIP"));
	assert_string_equal(json_string_value(json_object_get(env, "KARS_RUNTIME_KIND")),
			    "OpenAIAgents");
	json_decref(plan);
	json_decref(sb);

	sb = sandbox_with("{\"kind\":\"BYO\",\"byo\":{\"image\":\"r.io/a@sha256:"
			  "0000000000000000000000000000000000000000000000000000000000000000\","
			  "\"contractVersion\":\"v1\",\"args\":[\"--x\"],\"env\":[{\"name\":"
			  "\"KARS_RUNTIME_KIND\",\"value\":\"OpenClaw\"},{\"name\":\"A\",\"value\":"
			  "\"b\"}]}}",
			  NULL);
	assert_int_equal(kars_runtime_plan(sb, NULL, &plan, &err), KARS_PLAN_OK);
	assert_non_null(strstr(json_string_value(json_object_get(plan, "image")), "@sha256:"));
	assert_string_equal(json_string_value(json_array_get(json_object_get(plan, "args"), 0)),
			    "--x");
	env = json_object_get(plan, "env");
	assert_string_equal(json_string_value(json_object_get(env, "KARS_RUNTIME_KIND")), "BYO");
	assert_string_equal(json_string_value(json_object_get(env, "A")), "b");
	assert_null(json_object_get(env, "KARS_MODEL"));
	json_decref(plan);
	json_decref(sb);
}

#define EGRESS_GOLDEN                                                                              \
	"{\"dns\":{\"maxNameLength\":64,\"maxQueriesPerSecond\":50},\"fqdns\":[{\"name\":"         \
	"\"*.example.com\",\"port\":443,\"protocol\":\"tcp\"},{\"name\":\"api.github.com\","       \
	"\"port\":443,\"protocol\":\"tcp\"},{\"name\":\"api.github.com\",\"port\":8443,"           \
	"\"protocol\":\"tcp\"},{\"name\":\"uploads.github.com\",\"port\":443,\"protocol\":"        \
	"\"tcp\"}],\"mode\":\"strict\",\"op\":\"apply\",\"resolver\":{\"ipv4\":\"10.0.0.10\","     \
	"\"port\":53},\"rules\":[{\"ip\":\"192.0.2.10\",\"port\":443,\"protocol\":\"tcp\"},"       \
	"{\"ip\":\"10.0.0.10\",\"port\":53,\"protocol\":\"udp\"}],\"sandbox\":\"team-a/bot\"}"

static void test_egress_golden(void **state)
{
	struct kars_err err = {};
	struct kars_egress_opts opts = {
	    .resolver_ipv4 = "10.0.0.10", .dns_max_name_length = 64, .dns_max_qps = 50};
	json_t *sb = sandbox_with(
	    "{\"kind\":\"OpenClaw\"}",
	    "{\"egressMode\":\"Strict\",\"allowedEndpoints\":[{\"host\":\"api.github.com\"},"
	    "{\"host\":\"*.example.com\",\"port\":443},{\"host\":\"192.0.2.10\"},"
	    "{\"host\":\"api.github.com\",\"port\":443},{\"host\":\"api.github.com\",\"port\":8443}]}");
	json_t *approvals = json_loads(
	    "[{\"spec\":{\"sandbox\":\"bot\",\"hosts\":[{\"host\":\"uploads.github.com\"}]}}]", 0,
	    NULL);
	json_t *req = NULL;
	char *text;

	MUST(kars_egress_compile(sb, approvals, &opts, &req, &err));
	text = json_dumps(req, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(text, EGRESS_GOLDEN);
	free(text);
	json_decref(req);

	/* both families and a port: a resolver rule for each, after the allowlist */
	opts.resolver_ipv6 = "fd00::53";
	opts.resolver_port = 5353;
	MUST(kars_egress_compile(sb, approvals, &opts, &req, &err));
	text = json_dumps(json_object_get(req, "rules"), JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(text, "[{\"ip\":\"192.0.2.10\",\"port\":443,\"protocol\":\"tcp\"},"
				  "{\"ip\":\"10.0.0.10\",\"port\":5353,\"protocol\":\"udp\"},"
				  "{\"ip\":\"fd00::53\",\"port\":5353,\"protocol\":\"udp\"}]");
	free(text);
	json_decref(req);

	/* no fqdns: the router resolves nothing, so no resolver rule */
	json_object_set_new(json_object_get(json_object_get(sb, "spec"), "networkPolicy"),
			    "allowedEndpoints", json_pack("[{s:s}]", "host", "192.0.2.10"));
	MUST(kars_egress_compile(sb, NULL, &opts, &req, &err));
	text = json_dumps(json_object_get(req, "rules"), JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(text, "[{\"ip\":\"192.0.2.10\",\"port\":443,\"protocol\":\"tcp\"}]");
	assert_non_null(json_object_get(req, "resolver"));
	free(text);
	json_decref(req);

	/* no allowlist, Learn: an empty allowlist in learn mode, no resolver */
	json_object_del(json_object_get(sb, "spec"), "networkPolicy");
	MUST(kars_egress_compile(sb, NULL, NULL, &req, &err));
	text = json_dumps(req, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(text, "{\"fqdns\":[],\"mode\":\"learn\",\"op\":\"apply\",\"rules\":[],"
				  "\"sandbox\":\"team-a/bot\"}");
	free(text);
	json_decref(req);

	/* a signed allowlist is not implemented: refused, not emptied */
	json_object_set_new(json_object_get(sb, "spec"), "networkPolicy",
			    json_pack("{s:{s:s}}", "allowlistRef", "registry", "r"));
	assert_int_equal(kars_egress_compile(sb, NULL, NULL, &req, &err), -ENOTSUP);
	assert_null(req);
	assert_err_contains(&err, "allowlistRef");
	json_decref(approvals);
	json_decref(sb);
}

/* --- the reconciler, with a recording backend ------------------------------ */

struct recorder {
	int applies, removes, observes;
	json_t *plan, *egress;
	char router_dir[256];
	struct kars_sandbox_observed seen;
};

static int rec_apply(void *ctx, const struct kars_sandbox_desired *d, struct kars_err *err)
{
	struct recorder *r = ctx;

	r->applies++;
	json_decref(r->plan);
	json_decref(r->egress);
	r->plan = json_deep_copy(d->plan);
	r->egress = json_deep_copy(d->egress);
	snprintf(r->router_dir, sizeof(r->router_dir), "%s", d->router_dir);
	return 0;
}

static int rec_remove(void *ctx, const char *ns, const char *name, struct kars_err *err)
{
	((struct recorder *)ctx)->removes++;
	return 0;
}

static int rec_observe(void *ctx, const char *ns, const char *name,
		       struct kars_sandbox_observed *out, struct kars_err *err)
{
	struct recorder *r = ctx;

	r->observes++;
	*out = r->seen;
	return 0;
}

static const struct kars_sandbox_backend_ops rec_ops = {
    .name = "recorder", .apply = rec_apply, .remove = rec_remove, .observe = rec_observe};

static const char *cond_of(struct kars_store *s, const char *type, const char *field)
{
	static char buf[512];
	struct kars_err err = {};
	json_t *o = NULL;

	MUST(kars_store_get(s, kars_kind_find("cs"), "team-a", "bot", &o, &err));
	snprintf(buf, sizeof(buf), "%s",
		 json_string_value(
		     json_object_get(kars_condition_get(json_object_get(o, "status"), type), field))
		     ?: "-");
	json_decref(o);
	return buf;
}

static const char *phase_of(struct kars_store *s)
{
	static char buf[32];
	struct kars_err err = {};
	json_t *o = NULL;

	MUST(kars_store_get(s, kars_kind_find("cs"), "team-a", "bot", &o, &err));
	snprintf(buf, sizeof(buf), "%s",
		 json_string_value(json_object_get(json_object_get(o, "status"), "phase")) ?: "-");
	json_decref(o);
	return buf;
}

#define IP_TEXT                                                                                    \
	"{\"apiVersion\":\"kars.azure.com/v1alpha1\",\"kind\":\"InferencePolicy\",\"metadata\":"   \
	"{\"name\":\"bot-inference\",\"namespace\":\"team-a\"},\"spec\":{\"appliesTo\":"           \
	"{\"sandboxName\":\"bot\"},\"modelPreference\":{\"primary\":{\"deployment\":"              \
	"\"gpt-4o\"}}}}"

static void test_reconcile_with_and_without_backend(void **state)
{
	struct kars_store *s = NULL;
	struct kars_err err = {};
	struct kars_reconcile_result r;
	struct recorder rec = {0};
	struct kars_sandbox_backend backend = {.ops = &rec_ops, .ctx = &rec};
	struct kars_sandbox_env env = {.out_dir = "/run/kars/sandboxes",
				       .now = "2026-01-01T00:00:00Z"};

	MUST(kars_store_open_dir(fx.state, &s, &err));
	env.store = s;
	json_decref(fx_create(s, sandbox_with("{\"kind\":\"OpenAIAgents\"}",
					      "{\"egressMode\":\"Strict\",\"allowedEndpoints\":"
					      "[{\"host\":\"api.github.com\"}]}")));

	/* its InferencePolicy does not exist yet */
	MUST(kars_reconcile_sandbox(&env, "team-a", "bot", &r, &err));
	assert_string_equal(phase_of(s), "Degraded");
	assert_string_equal(cond_of(s, "Ready", "reason"), "InferencePolicyNotFound");
	assert_int_equal(r.requeue_after_ms, 60000);

	/* no backend: planned, not run, and the status says so */
	json_decref(fx_create_text(s, IP_TEXT));
	MUST(kars_reconcile_sandbox(&env, "team-a", "bot", &r, &err));
	assert_string_equal(phase_of(s), "Pending");
	assert_string_equal(cond_of(s, "RuntimeReady", "reason"), "NoBackend");
	assert_string_equal(cond_of(s, "Ready", "status"), "False");
	assert_non_null(strstr(cond_of(s, "Ready", "message"), "not run"));
	MUST(kars_reconcile_sandbox(&env, "team-a", "bot", &r, &err));
	assert_false(r.status_written); /* idempotent */

	/* a backend whose workload is not up yet: handed over, not Ready */
	env.backend = &backend;
	MUST(kars_reconcile_sandbox(&env, "team-a", "bot", &r, &err));
	assert_int_equal(rec.applies, 1);
	assert_string_equal(json_string_value(json_object_get(rec.plan, "adapter")),
			    "openai-agents");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(rec.plan, "env"), "KARS_MODEL")),
	    "gpt-4o");
	assert_string_equal(json_string_value(json_object_get(rec.egress, "mode")), "strict");
	assert_string_equal(json_string_value(json_object_get(
				json_array_get(json_object_get(rec.egress, "fqdns"), 0), "name")),
			    "api.github.com");
	assert_string_equal(rec.router_dir, "/run/kars/sandboxes/team-a/bot");
	assert_string_equal(phase_of(s), "Pending");
	assert_string_equal(cond_of(s, "Ready", "reason"), "WorkloadNotRunning");
	assert_true(r.waiting);

	/* running, router silent: still not Ready */
	rec.seen.running = true;
	snprintf(rec.seen.message, sizeof(rec.seen.message), "router: connection refused");
	MUST(kars_reconcile_sandbox(&env, "team-a", "bot", &r, &err));
	assert_string_equal(cond_of(s, "Ready", "reason"), "RouterNotAnswering");
	assert_string_equal(cond_of(s, "Ready", "message"), "router: connection refused");
	assert_string_equal(cond_of(s, "RuntimeReady", "status"), "True");

	/* running and answering: Running, Ready */
	rec.seen.router_answers = true;
	MUST(kars_reconcile_sandbox(&env, "team-a", "bot", &r, &err));
	assert_string_equal(phase_of(s), "Running");
	assert_string_equal(cond_of(s, "Ready", "status"), "True");
	assert_false(r.waiting);

	/* an approval in force adds its hosts to the egress request */
	json_decref(fx_create_text(
	    s, "{\"apiVersion\":\"kars.azure.com/v1alpha1\",\"kind\":\"EgressApproval\","
	       "\"metadata\":{\"name\":\"up\",\"namespace\":\"team-a\"},\"spec\":{"
	       "\"sandbox\":\"bot\",\"hosts\":[{\"host\":\"uploads.github.com\"}],"
	       "\"reason\":\"r\",\"ttl\":\"PT1H\"}}"));
	{
		struct kars_policy_env penv = {
		    .store = s, .out_dir = fx.dir, .now = "2026-01-01T00:00:00Z"};

		MUST(kars_reconcile_policy(&kars_policy_egressapproval, &penv, "team-a", "up", &r,
					   &err));
	}
	MUST(kars_reconcile_sandbox(&env, "team-a", "bot", &r, &err));
	assert_int_equal(json_array_size(json_object_get(rec.egress, "fqdns")), 2);
	/* ... and not once it has expired */
	env.now = "2026-01-01T01:00:00Z";
	MUST(kars_reconcile_sandbox(&env, "team-a", "bot", &r, &err));
	assert_int_equal(json_array_size(json_object_get(rec.egress, "fqdns")), 1);

	/* deletion: the backend removes it before the finalizer goes */
	{
		json_t *o = NULL;

		MUST(kars_store_delete(s, kars_kind_find("cs"), "team-a", "bot", &o, &err));
		json_decref(o);
	}
	MUST(kars_reconcile_sandbox(&env, "team-a", "bot", &r, &err));
	assert_int_equal(rec.removes, 1);
	{
		json_t *o = NULL;

		assert_int_equal(kars_store_get(s, kars_kind_find("cs"), "team-a", "bot", &o, &err),
				 -ENOENT);
	}
	json_decref(rec.plan);
	json_decref(rec.egress);
	kars_store_close(s);
}

static void test_refused_plan_hands_nothing_over(void **state)
{
	struct kars_store *s = NULL;
	struct kars_err err = {};
	struct kars_reconcile_result r;
	struct recorder rec = {.seen = {.running = true, .router_answers = true}};
	struct kars_sandbox_backend backend = {.ops = &rec_ops, .ctx = &rec};
	struct kars_sandbox_env env = {.backend = &backend, .now = "2026-01-01T00:00:00Z"};

	MUST(kars_store_open_dir(fx.state, &s, &err));
	env.store = s;
	json_decref(fx_create_text(s, IP_TEXT));
	json_decref(fx_create(s, sandbox_with("{\"kind\":\"SemanticKernel\"}", NULL)));
	MUST(kars_reconcile_sandbox(&env, "team-a", "bot", &r, &err));
	assert_int_equal(rec.applies, 0);
	assert_string_equal(phase_of(s), "Degraded");
	assert_string_equal(cond_of(s, "RuntimeReady", "reason"), "AdapterMissing");
	assert_string_equal(cond_of(s, "Ready", "status"), "False");
	kars_store_close(s);
}

/* A new generation of team-a/bot with spec.a2a.expiresAt = at. */
static void set_expiry(struct kars_store *s, const char *at)
{
	struct kars_err err = {};
	json_t *o = NULL, *out = NULL;

	MUST(kars_store_get(s, kars_kind_find("cs"), "team-a", "bot", &o, &err));
	json_object_set_new(json_object_get(json_object_get(o, "spec"), "a2a"), "expiresAt",
			    json_string(at));
	MUST(kars_store_update(s, o, &out, &err));
	json_decref(o);
	json_decref(out);
}

/* spec.a2a.expiresAt within 30 days of when the generation was first seen */
static void test_a2a_expiry_cap(void **state)
{
	struct kars_store *s = NULL;
	struct kars_err err = {};
	struct kars_reconcile_result r;
	struct recorder rec = {.seen = {.running = true, .router_answers = true}};
	struct kars_sandbox_backend backend = {.ops = &rec_ops, .ctx = &rec};
	struct kars_sandbox_env env = {.backend = &backend, .now = "2026-01-01T00:00:00Z"};
	json_t *sb = sandbox_with("{\"kind\":\"OpenClaw\"}", NULL);

	MUST(kars_store_open_dir(fx.state, &s, &err));
	env.store = s;
	json_decref(fx_create_text(s, IP_TEXT));
	/* exactly 30 days, written with an offset: accepted */
	json_object_set_new(
	    json_object_get(sb, "spec"), "a2a",
	    json_pack("{s:b,s:s}", "enabled", 1, "expiresAt", "2026-01-31T01:00:00+01:00"));
	json_decref(fx_create(s, sb));
	MUST(kars_reconcile_sandbox(&env, "team-a", "bot", &r, &err));
	assert_string_equal(phase_of(s), "Running");
	assert_int_equal(rec.applies, 1);

	/* a new generation one second over 30 days, seen on Jan 20: refused */
	env.now = "2026-01-20T00:00:00Z";
	set_expiry(s, "2026-02-19T00:00:01Z");
	MUST(kars_reconcile_sandbox(&env, "team-a", "bot", &r, &err));
	assert_string_equal(phase_of(s), "Degraded");
	assert_string_equal(cond_of(s, "Ready", "reason"), "SpecInvalid");
	assert_non_null(strstr(cond_of(s, "Ready", "message"), "spec.a2a.expiresAt"));
	assert_int_equal(rec.applies, 1); /* nothing handed over */

	/* the window is measured from when the generation was first seen: later
	 * passes do not let it in as the clock moves on */
	env.now = "2026-01-25T00:00:00Z";
	MUST(kars_reconcile_sandbox(&env, "team-a", "bot", &r, &err));
	assert_string_equal(phase_of(s), "Degraded");
	assert_int_equal(rec.applies, 1);

	/* a new generation exactly 30 days after Jan 25: accepted again */
	set_expiry(s, "2026-02-24T00:00:00Z");
	MUST(kars_reconcile_sandbox(&env, "team-a", "bot", &r, &err));
	assert_string_equal(phase_of(s), "Running");
	assert_int_equal(rec.applies, 2);
	json_decref(rec.plan);
	json_decref(rec.egress);
	kars_store_close(s);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_runtime_plans),
    cmocka_unit_test(test_plan_env_and_byo),
    cmocka_unit_test(test_egress_golden),
    cmocka_unit_test_setup_teardown(test_reconcile_with_and_without_backend, setup, fx_teardown),
    cmocka_unit_test_setup_teardown(test_refused_plan_hands_nothing_over, setup, fx_teardown),
    cmocka_unit_test_setup_teardown(test_a2a_expiry_cap, setup, fx_teardown),
};

KARS_UNIT_MAIN(tests)
