/* test_convert.c - unit tests for the converters (userspace/lib/convert.h)
 * and the store's merge patch (store_patch.h).
 *
 * Inputs are the fixtures in selftests/convert/, written from kagent's and
 * agent-sandbox's published Go types. Every output must pass the validator;
 * the round trip Sandbox -> KarsSandbox -> Sandbox must change exactly the
 * fields reported lossy; a kagent Agent without a model must be refused,
 * not turned into an invalid InferencePolicy.
 */
#include "unit.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "convert.h"
#include "store_patch.h"
#include "validate.h"
#include "yamljson.h"

static json_t *load_file(const char *path)
{
	struct kars_yaml_docs docs;
	struct kars_err err = {};
	json_t *arr = json_array();
	FILE *f = fopen(path, "r");
	char buf[65536];
	size_t len;

	if (!f)
		fail_msg("%s: cannot open", path);
	len = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	if (kars_yaml_load_all(buf, len, &docs, &err))
		fail_msg("%s: %s", path, err.msg);
	for (size_t i = 0; i < docs.count; i++)
		json_array_append(arr, docs.docs[i].value);
	kars_yaml_docs_free(&docs);
	return arr;
}

static json_t *load_yaml(const char *text)
{
	struct kars_yaml_docs docs;
	struct kars_err err = {};
	json_t *arr = json_array();

	if (kars_yaml_load_all(text, strlen(text), &docs, &err))
		fail_msg("%s", err.msg);
	for (size_t i = 0; i < docs.count; i++)
		json_array_append(arr, docs.docs[i].value);
	kars_yaml_docs_free(&docs);
	return arr;
}

static void assert_valid(const json_t *objs)
{
	struct kars_err err = {};

	if (kars_convert_validate(objs, &err))
		fail_msg("output does not validate: %s", err.msg);
}

static const struct kars_conv_note *note_at(const struct kars_conv_report *r, const char *path)
{
	for (size_t i = 0; i < r->count; i++)
		if (strcmp(r->v[i].path, path) == 0)
			return &r->v[i];
	return NULL;
}

static json_t *find_obj(const json_t *objs, const char *kind, const char *name)
{
	const json_t *o;
	size_t i;

	json_array_foreach(objs, i, o)
	{
		const char *n =
		    json_string_value(json_object_get(json_object_get(o, "metadata"), "name"));

		if (strcmp(json_string_value(json_object_get(o, "kind")), kind) == 0 &&
		    (!name || strcmp(n, name) == 0))
			return (json_t *)o;
	}
	return NULL;
}

static size_t count_kind(const json_t *objs, const char *kind)
{
	const json_t *o;
	size_t i, n = 0;

	json_array_foreach(objs, i, o)
	{
		n += strcmp(json_string_value(json_object_get(o, "kind")), kind) == 0;
	}
	return n;
}

static void test_kagent_declarative(void **state)
{
	json_t *docs = load_file("selftests/convert/kagent-declarative.yaml"), *out = NULL, *o, *tp;
	struct kars_conv_opts opts = {.date = "2026-04-30"};
	struct kars_conv_report r = {};
	struct kars_err err = {};
	size_t i, always = 0;

	assert_int_equal(kars_convert_kagent(docs, &opts, &out, &r, &err), 0);
	assert_valid(out);
	assert_string_equal(json_string_value(json_object_get(json_array_get(out, 0), "kind")),
			    "KarsSandbox");
	/* the model comes from the ModelConfig in the same input */
	o = find_obj(out, "InferencePolicy", "k8s-agent-inference");
	assert_non_null(o);
	assert_string_equal(
	    json_string_value(json_object_get(
		json_object_get(json_object_get(json_object_get(o, "spec"), "modelPreference"),
				"primary"),
		"deployment")),
	    "gpt-4o-prod");
	/* the remote MCP server in the input becomes an McpServer; the other not */
	assert_non_null(find_obj(out, "McpServer", "kagent-tool-server"));
	assert_int_equal(count_kind(out, "McpServer"), 1);
	/* one ToolPolicy per tool reference: 3 named + 1 "*" */
	assert_int_equal(count_kind(out, "ToolPolicy"), 4);
	json_array_foreach(out, i, tp)
	{
		const json_t *spec = json_object_get(tp, "spec");
		const char *tool =
		    json_string_value(json_object_get(json_object_get(spec, "appliesTo"), "tool"));
		const char *mode =
		    json_string_value(json_object_get(json_object_get(spec, "approval"), "mode"));

		if (strcmp(json_string_value(json_object_get(tp, "kind")), "ToolPolicy"))
			continue;
		if (mode && strcmp(mode, "always") == 0) {
			always++;
			assert_true(strcmp(tool, "k8s_delete_resource") == 0 ||
				    strcmp(tool, "k8s_apply_manifest") == 0);
		}
	}
	assert_int_equal(always, 2);
	/* the system message is carried, the rest reported by path */
	o = find_obj(out, "KarsSandbox", "k8s-agent");
	assert_non_null(
	    json_object_get(json_object_get(json_object_get(o, "spec"), "agent"), "instructions"));
	assert_null(note_at(&r, "spec.declarative.systemMessage"));
	assert_int_equal(note_at(&r, "spec.skills")->kind, KARS_CONV_LOSSY);
	assert_int_equal(note_at(&r, "spec.declarative.stream")->kind, KARS_CONV_LOSSY);
	assert_int_equal(note_at(&r, "spec.declarative.tools[2]")->kind, KARS_CONV_LOSSY);
	assert_int_equal(note_at(&r, "spec.declarative.deployment.env[1]")->kind, KARS_CONV_LOSSY);
	assert_non_null(note_at(&r, "metadata.finalizers[0]"));
	/* server-written fields and status are not user data */
	assert_null(note_at(&r, "metadata.uid"));
	assert_null(note_at(&r, "status"));
	assert_string_equal(json_string_value(json_object_get(
				json_object_get(json_object_get(o, "metadata"), "annotations"),
				KARS_ANN_MIGRATED_FROM)),
			    "kagent.dev/v1alpha2/Agent");
	json_decref(out);
	json_decref(docs);
	kars_conv_report_free(&r);
}

#define AGENT_NO_MODEL                                                                             \
	"apiVersion: kagent.dev/v1alpha2\nkind: Agent\nmetadata: {name: a, namespace: ns}\n"       \
	"spec: {type: Declarative, declarative: {modelConfig: missing, systemMessage: hi}}\n"

static void test_kagent_model_required(void **state)
{
	json_t *docs = load_yaml(AGENT_NO_MODEL), *out = NULL;
	struct kars_conv_opts opts = {};
	struct kars_conv_report r = {};
	struct kars_err err = {};

	assert_int_equal(kars_convert_kagent(docs, &opts, &out, &r, &err), -EINVAL);
	assert_null(out);
	assert_err_contains(&err, "no model: ModelConfig \"missing\" is not in the input");
	assert_err_contains(&err, "--model");
	kars_conv_report_free(&r);
	kars_err_clear(&err);
	opts.model = "openai/gpt-4o-mini";
	assert_int_equal(kars_convert_kagent(docs, &opts, &out, &r, &err), 0);
	assert_valid(out);
	assert_string_equal(
	    json_string_value(json_object_get(
		json_object_get(
		    json_object_get(json_object_get(find_obj(out, "InferencePolicy", NULL), "spec"),
				    "modelPreference"),
		    "primary"),
		"provider")),
	    "openai");
	json_decref(out);
	kars_conv_report_free(&r);
	kars_err_clear(&err);
	opts.model = "Bad Provider/x";
	assert_int_equal(kars_convert_kagent(docs, &opts, &out, &r, &err), -EINVAL);
	assert_err_contains(&err, "provider must be a DNS label");
	json_decref(docs);
	kars_conv_report_free(&r);
}

static void expect_kagent_error(const char *yaml, const char *needle)
{
	json_t *docs = load_yaml(yaml), *out = NULL;
	struct kars_conv_opts opts = {.model = "m"};
	struct kars_conv_report r = {};
	struct kars_err err = {};

	if (kars_convert_kagent(docs, &opts, &out, &r, &err) == 0)
		fail_msg("accepted: %s", yaml);
	assert_null(out);
	assert_err_contains(&err, needle);
	json_decref(docs);
	kars_conv_report_free(&r);
}

#define AGENT_HEAD "apiVersion: kagent.dev/v1alpha2\nkind: Agent\nmetadata: {name: a}\n"

static void test_kagent_bad_input(void **state)
{
	expect_kagent_error(AGENT_HEAD "spec: {type: Declarative, declarative: {tools: oops}}\n",
			    "spec.declarative.tools: expected a list");
	expect_kagent_error(AGENT_HEAD "spec: {type: Declarative, declarative: {tools: [{type: "
				       "McpServer, mcpServer: {name: s, toolNames: [a], "
				       "requireApproval: [b]}}]}}\n",
			    "requireApproval[0] \"b\": must also be in toolNames");
	expect_kagent_error(AGENT_HEAD "spec: {type: Workflow}\n",
			    "spec.type \"Workflow\": expected Declarative or BYO");
	expect_kagent_error(AGENT_HEAD "spec: {type: BYO, byo: {deployment: {image: repo/img}}}\n",
			    "never an implicit :latest");
	expect_kagent_error(AGENT_HEAD "spec: {type: Declarative, declarative: {deployment: {env: "
				       "[{name: 7}]}}}\n",
			    "spec.declarative.deployment.env[0].name: expected a string");
	expect_kagent_error("apiVersion: kagent.dev/v1alpha2\nkind: Agent\nmetadata: {name: "
			    "a-name-that-is-far-too-long-for-a-kars-sandbox-namespace-xyz}\nspec: "
			    "{type: BYO}\n",
			    "at most 58 characters");
	expect_kagent_error("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
			    "document 1: v1/ConfigMap is not a kagent.dev/v1alpha2 Agent");
	expect_kagent_error(AGENT_HEAD "spec: {type: Declarative, declarative: {deployment: "
				       "{resources: {limits: {cpu: [1]}}}}}\n",
			    "limits.cpu: expected a quantity");
}

#define TOOLS_AGENT                                                                                \
	AGENT_HEAD "spec:\n  type: Declarative\n  declarative:\n    tools:\n"                      \
		   "    - {type: McpServer, mcpServer: {name: srv, toolNames: [read_file, "        \
		   "read.file, Read-File, "                                                        \
		   "a_tool_name_that_is_very_long_and_goes_on_and_on_and_on_past_the_limit]}}\n"

static void test_tool_policy_names(void **state)
{
	json_t *docs = load_yaml(TOOLS_AGENT), *a = NULL, *b = NULL, *o;
	struct kars_conv_opts opts = {.model = "m"};
	struct kars_conv_report r = {};
	struct kars_err err = {};
	const char *names[8];
	size_t i, n = 0;

	assert_int_equal(kars_convert_kagent(docs, &opts, &a, &r, &err), 0);
	assert_int_equal(kars_convert_kagent(docs, &opts, &b, &r, &err), 0);
	assert_true(json_equal(a, b)); /* deterministic */
	assert_valid(a);
	json_array_foreach(a, i, o)
	{
		const char *name =
		    json_string_value(json_object_get(json_object_get(o, "metadata"), "name"));

		if (strcmp(json_string_value(json_object_get(o, "kind")), "ToolPolicy"))
			continue;
		assert_true(strlen(name) <= 63);
		for (const char *p = name; *p; p++)
			assert_true((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
				    *p == '-');
		for (size_t j = 0; j < n; j++)
			assert_string_not_equal(names[j], name); /* distinct though alike */
		names[n++] = name;
	}
	assert_int_equal(n, 4);
	assert_true(strncmp(names[0], "a-read-file-", 12) == 0);
	json_decref(a);
	json_decref(b);
	json_decref(docs);
	kars_conv_report_free(&r);
}

/* --- Sandbox <-> KarsSandbox ---------------------------------------------- */

struct paths {
	size_t n;
	char v[256][256];
};

/* Leaf paths where a and b differ. */
static void diff(const json_t *a, const json_t *b, const char *path, struct paths *out)
{
	char p[256];

	if (json_is_object(a) && json_is_object(b)) {
		const char *k;
		json_t *v;

		json_object_foreach((json_t *)a, k, v)
		{
			snprintf(p, sizeof(p), "%s%s%s", path, *path ? "." : "", k);
			diff(v, json_object_get(b, k), p, out);
		}
		json_object_foreach((json_t *)b, k, v)
		{
			snprintf(p, sizeof(p), "%s%s%s", path, *path ? "." : "", k);
			if (!json_object_get(a, k))
				diff(NULL, v, p, out);
		}
		return;
	}
	if (json_is_array(a) && json_is_array(b) && json_array_size(a) == json_array_size(b)) {
		for (size_t i = 0; i < json_array_size(a); i++) {
			snprintf(p, sizeof(p), "%s[%zu]", path, i);
			diff(json_array_get(a, i), json_array_get(b, i), p, out);
		}
		return;
	}
	if (json_is_array(a) && json_is_array(b) && json_array_size(a) > json_array_size(b)) {
		/* elements lost at the end */
		for (size_t i = 0; i < json_array_size(a); i++) {
			snprintf(p, sizeof(p), "%s[%zu]", path, i);
			diff(json_array_get(a, i), json_array_get(b, i), p, out);
		}
		return;
	}
	if (json_is_object(a) != json_is_object(b) && (!a || !b)) {
		/* an object on one side only: each of its leaves changed */
		const json_t *o = a ? a : b;
		const char *k;
		json_t *v;

		json_object_foreach((json_t *)o, k, v)
		{
			snprintf(p, sizeof(p), "%s%s%s", path, *path ? "." : "", k);
			diff(a ? v : NULL, a ? NULL : v, p, out);
		}
		return;
	}
	if ((a || b) && !(a && b && json_equal(a, b)) && out->n < 256)
		snprintf(out->v[out->n++], sizeof(out->v[0]), "%s", path);
}

static bool under(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);

	return strncmp(path, prefix, n) == 0 &&
	       (path[n] == '\0' || path[n] == '.' || path[n] == '[');
}

static void test_sandbox_round_trip(void **state)
{
	json_t *docs = load_file("selftests/convert/sandbox-full.yaml"), *ks = NULL, *back = NULL;
	json_t *s0 = json_deep_copy(json_array_get(docs, 0));
	struct kars_conv_opts opts = {};
	struct kars_conv_report r1 = {}, r2 = {};
	struct kars_err err = {};
	struct paths d = {};
	size_t i, j;

	assert_int_equal(kars_convert_sandbox_to_kars(s0, &opts, &ks, &r1, &err), 0);
	assert_valid(ks);
	assert_true(r1.lossy > 10);
	assert_int_equal(
	    kars_convert_kars_to_sandbox(json_array_get(ks, 0), &opts, &back, &r2, &err), 0);
	assert_valid(back);
	/* the way back loses exactly the kars-only field the way in added */
	assert_int_equal(r2.lossy, 1);
	assert_string_equal(r2.v[0].path, "spec.inferenceRef");
	/* every field that changed was reported, and every reported field changed */
	json_object_del(s0, "status"); /* observed state, not converted */
	diff(s0, json_array_get(back, 0), "", &d);
	for (i = 0; i < d.n; i++) {
		bool found = false;

		for (j = 0; j < r1.count && !found; j++)
			found = under(d.v[i], r1.v[j].path); /* lost, or noted as moved */
		if (!found)
			fail_msg("%s changed in the round trip but was not reported", d.v[i]);
	}
	for (j = 0; j < r1.count; j++) {
		bool found = false;

		if (r1.v[j].kind != KARS_CONV_LOSSY)
			continue;
		for (i = 0; i < d.n && !found; i++)
			found = under(d.v[i], r1.v[j].path);
		if (!found)
			fail_msg("%s was reported lossy but survived the round trip", r1.v[j].path);
	}
	json_decref(ks);
	json_decref(back);
	json_decref(s0);
	json_decref(docs);
	kars_conv_report_free(&r1);
	kars_conv_report_free(&r2);
}

static void test_sandbox_modes(void **state)
{
	static const enum kars_conv_mode modes[] = {KARS_MODE_NATIVE, KARS_MODE_TRANSLATE,
						    KARS_MODE_OBSERVE, KARS_MODE_OVERLAY};
	static const char *const words[] = {NULL, "translate", "observe", "overlay"};
	json_t *docs = load_file("selftests/convert/sandbox-full.yaml");

	for (size_t m = 0; m < 4; m++) {
		struct kars_conv_opts opts = {.mode = modes[m], .model = "azure-openai/gpt-4o"};
		struct kars_conv_report r = {};
		struct kars_err err = {};
		json_t *out = NULL, *up;

		if (modes[m] == KARS_MODE_OVERLAY)
			opts.sandbox_ref = "prod/web-agent";
		assert_int_equal(
		    kars_convert_sandbox_to_kars(json_array_get(docs, 0), &opts, &out, &r, &err),
		    0);
		assert_valid(out);
		assert_int_equal(json_array_size(out), 2); /* with --model: the InferencePolicy */
		up = json_object_get(json_object_get(json_array_get(out, 0), "spec"),
				     "upstreamCompatibility");
		if (!words[m]) {
			assert_null(up);
		} else {
			assert_string_equal(
			    json_string_value(json_object_get(up, "sigsAgentSandbox")), words[m]);
			assert_string_equal(
			    json_string_value(json_object_get(up, "upstreamSandboxRef")),
			    "prod/web-agent");
		}
		/* the upstream Sandbox keeps the pod in observe and overlay mode */
		if (modes[m] == KARS_MODE_OBSERVE || modes[m] == KARS_MODE_OVERLAY)
			assert_int_equal(r.lossy, 0);
		else
			assert_true(r.lossy > 0);
		json_decref(out);
		kars_conv_report_free(&r);
	}
	json_decref(docs);
}

static void test_kars_to_sandbox(void **state)
{
	json_t *docs = load_file("selftests/convert/karssandbox.yaml"), *out = NULL, *ctr;
	struct kars_conv_opts opts = {};
	struct kars_conv_report r = {};
	struct kars_err err = {};

	assert_int_equal(
	    kars_convert_kars_to_sandbox(json_array_get(docs, 0), &opts, &out, &r, &err), 0);
	assert_valid(out);
	assert_non_null(note_at(&r, "spec.governance"));
	assert_non_null(note_at(&r, "spec.networkPolicy"));
	assert_non_null(note_at(&r, "spec.inferenceRef"));
	assert_int_equal(r.lossy, 3);
	/* suspended is replicas 0; standard isolation is RuntimeDefault seccomp */
	assert_int_equal(json_integer_value(json_object_get(
			     json_object_get(json_array_get(out, 0), "spec"), "replicas")),
			 0);
	ctr = json_array_get(
	    json_object_get(
		json_object_get(
		    json_object_get(json_object_get(json_array_get(out, 0), "spec"), "podTemplate"),
		    "spec"),
		"containers"),
	    0);
	assert_string_equal(
	    json_string_value(json_object_get(
		json_object_get(json_object_get(ctr, "securityContext"), "seccompProfile"),
		"type")),
	    "RuntimeDefault");
	/* kars's hardened defaults are explicit in the pod */
	assert_true(json_is_true(
	    json_object_get(json_object_get(ctr, "securityContext"), "readOnlyRootFilesystem")));
	json_decref(out);
	kars_conv_report_free(&r);
	/* a runtime with no plain image cannot be a Sandbox */
	json_object_set_new(
	    json_object_get(json_object_get(json_array_get(docs, 0), "spec"), "runtime"), "kind",
	    json_string("LangGraph"));
	json_object_del(
	    json_object_get(json_object_get(json_array_get(docs, 0), "spec"), "runtime"),
	    "openclaw");
	assert_int_equal(
	    kars_convert_kars_to_sandbox(json_array_get(docs, 0), &opts, &out, &r, &err), -EINVAL);
	assert_err_contains(&err, "only OpenClaw and BYO");
	json_decref(docs);
	kars_conv_report_free(&r);
}

/* Fields of an unknown shape are reported, never dropped in silence. */
static void test_unknown_fields_reported(void **state)
{
	json_t *docs = load_yaml("apiVersion: agents.x-k8s.io/v1alpha1\nkind: Sandbox\nmetadata: "
				 "{name: s}\nspec:\n  futureField: {x: 1}\n  podTemplate:\n    "
				 "spec:\n      containers: [{image: 'a:1', newKnob: true}]\n");
	struct kars_conv_opts opts = {};
	struct kars_conv_report r = {};
	struct kars_err err = {};
	json_t *out = NULL;

	assert_int_equal(
	    kars_convert_sandbox_to_kars(json_array_get(docs, 0), &opts, &out, &r, &err), 0);
	assert_non_null(note_at(&r, "spec.futureField.x"));
	assert_non_null(note_at(&r, "spec.podTemplate.spec.containers[0].newKnob"));
	assert_int_equal(r.lossy, 2);
	json_decref(out);
	json_decref(docs);
	kars_conv_report_free(&r);
}

static void test_long_strings(void **state)
{
	size_t n = 70000;
	char *big = malloc(n + 1), *yaml = malloc(n * 2 + 512);
	json_t *docs, *out = NULL;
	struct kars_conv_opts opts = {.model = "m"};
	struct kars_conv_report r = {};
	struct kars_err err = {};

	memset(big, 'x', n);
	big[n] = '\0';
	sprintf(yaml,
		AGENT_HEAD "spec:\n  type: Declarative\n  description: %s\n  declarative:\n    "
			   "systemMessage: %s\n",
		big, big);
	docs = load_yaml(yaml);
	assert_int_equal(kars_convert_kagent(docs, &opts, &out, &r, &err), 0);
	assert_valid(out);
	assert_int_equal(note_at(&r, "spec.description")->kind, KARS_CONV_LOSSY);
	assert_int_equal(note_at(&r, "spec.declarative.systemMessage")->kind, KARS_CONV_LOSSY);
	json_decref(out);
	json_decref(docs);
	kars_conv_report_free(&r);
	free(big);
	free(yaml);
}

static void expect_patch(const char *target, const char *patch, const char *want)
{
	json_t *t = json_loads(target, JSON_DECODE_ANY, NULL),
	       *p = json_loads(patch, JSON_DECODE_ANY, NULL);
	json_t *w = json_loads(want, JSON_DECODE_ANY, NULL), *got = kars_json_merge_patch(t, p);

	if (!json_equal(got, w)) {
		char *g = json_dumps(got, JSON_ENCODE_ANY);

		fail_msg("%s + %s = %s, want %s", target, patch, g, want);
	}
	json_decref(t);
	json_decref(p);
	json_decref(w);
	json_decref(got);
}

/* RFC 7386 appendix A */
static void test_merge_patch(void **state)
{
	expect_patch("{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}");
	expect_patch("{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}");
	expect_patch("{\"a\":\"b\"}", "{\"a\":null}", "{}");
	expect_patch("{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}");
	expect_patch("{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}");
	expect_patch("{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}");
	expect_patch("{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}",
		     "{\"a\":{\"b\":\"d\"}}");
	expect_patch("{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}");
	expect_patch("[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]");
	expect_patch("{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]");
	expect_patch("{\"a\":\"foo\"}", "null", "null");
	expect_patch("{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}");
	expect_patch("[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}");
	expect_patch("{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}");
}

/* A store whose first update is preceded by another writer's update: the
 * patch must see the Conflict, read again and still apply. */
struct racing {
	struct kars_store base;
	struct kars_store *real;
	const struct kars_store_ops *real_ops;
	int races;
};

static struct racing *racer;

static int r_get(struct kars_store *s, const struct kars_kind *k, const char *ns, const char *n,
		 json_t **out, struct kars_err *err)
{
	return kars_store_get(racer->real, k, ns, n, out, err);
}

static int r_update(struct kars_store *s, const json_t *obj, json_t **out, struct kars_err *err)
{
	if (racer->races > 0) {
		const json_t *md = json_object_get(obj, "metadata");
		json_t *other = NULL, *stored = NULL;

		racer->races--;
		/* another writer changes something else in between */
		assert_int_equal(kars_store_get(racer->real, kars_kind_find("KarsSandbox"),
						json_string_value(json_object_get(md, "namespace")),
						json_string_value(json_object_get(md, "name")),
						&other, err),
				 0);
		json_object_set_new(json_object_get(json_object_get(other, "spec"), "sandbox"),
				    "isolation",
				    json_string(racer->races % 2 ? "enhanced" : "standard"));
		assert_int_equal(kars_store_update(racer->real, other, &stored, err), 0);
		json_decref(stored);
		json_decref(other);
	}
	return kars_store_update(racer->real, obj, out, err);
}

static const struct kars_store_ops racing_ops = {.get = r_get, .update = r_update};

static void test_store_patch_conflict(void **state)
{
	char dir[] = "/tmp/kars-test-patch.XXXXXX";
	json_t *docs = load_file("selftests/schema/spec-examples/03-worker.yaml"), *out = NULL;
	json_t *patch =
	    json_pack("{s:{s:{s:s,s:s}}}", "spec", "upstreamCompatibility", "sigsAgentSandbox",
		      "overlay", "upstreamSandboxRef", "prod/worker");
	const struct kars_kind *k = kars_kind_find("KarsSandbox");
	struct racing rs = {.base.ops = &racing_ops, .races = 1};
	struct kars_err err = {};
	const char *ns;
	bool changed;

	assert_non_null(mkdtemp(dir));
	assert_int_equal(kars_store_open_dir(dir, &rs.real, &err), 0);
	racer = &rs;
	ns = json_string_value(
	    json_object_get(json_object_get(json_array_get(docs, 0), "metadata"), "namespace"));
	assert_int_equal(kars_store_create(rs.real, json_array_get(docs, 0), &out, &err), 0);
	json_decref(out);
	/* the racing writer wins the first round; the patch still lands, on top */
	assert_int_equal(
	    kars_store_merge_patch(&rs.base, k, ns, "worker", patch, false, &out, &changed, &err),
	    0);
	assert_true(changed);
	assert_int_equal(rs.races, 0);
	assert_string_equal(
	    json_string_value(json_object_get(
		json_object_get(json_object_get(out, "spec"), "upstreamCompatibility"),
		"sigsAgentSandbox")),
	    "overlay");
	assert_string_equal(
	    json_string_value(json_object_get(
		json_object_get(json_object_get(out, "spec"), "sandbox"), "isolation")),
	    "standard");
	json_decref(out);
	/* conflicts every time: gives up with Conflict after the bounded attempts */
	rs.races = 100;
	assert_int_equal(
	    kars_store_merge_patch(&rs.base, k, ns, "worker", patch, false, &out, &changed, &err),
	    -ESTALE);
	assert_int_equal(rs.races, 100 - KARS_PATCH_ATTEMPTS);
	/* an invalid result is refused, in dry run too, naming the field */
	json_decref(patch);
	patch = json_pack("{s:{s:{s:s,s:n}}}", "spec", "upstreamCompatibility", "sigsAgentSandbox",
			  "overlay", "upstreamSandboxRef");
	rs.races = 0;
	kars_err_clear(&err);
	assert_int_equal(
	    kars_store_merge_patch(&rs.base, k, ns, "worker", patch, true, &out, &changed, &err),
	    -EINVAL);
	assert_err_contains(&err, "upstreamSandboxRef is required in overlay mode");
	assert_int_equal(
	    kars_store_merge_patch(&rs.base, k, ns, "nope", patch, false, &out, &changed, &err),
	    -ENOENT);
	kars_store_close(rs.real);
	json_decref(patch);
	json_decref(docs);
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		assert_int_equal(system(cmd), 0);
	}
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_kagent_declarative),	 cmocka_unit_test(test_kagent_model_required),
    cmocka_unit_test(test_kagent_bad_input),	 cmocka_unit_test(test_tool_policy_names),
    cmocka_unit_test(test_sandbox_round_trip),	 cmocka_unit_test(test_sandbox_modes),
    cmocka_unit_test(test_kars_to_sandbox),	 cmocka_unit_test(test_unknown_fields_reported),
    cmocka_unit_test(test_long_strings),	 cmocka_unit_test(test_merge_patch),
    cmocka_unit_test(test_store_patch_conflict),
};

KARS_UNIT_MAIN(tests)
