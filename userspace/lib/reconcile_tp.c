/* reconcile_tp.c - ToolPolicy: compiled to the AGT profile the router's
 * governance library loads (docs/governance.md), wrapped with its identity,
 * and delivered as <out_dir>/<namespace>/<sandbox>/tool-policy.json (the
 * router's governance.profileFile, router_config.h) to every KarsSandbox
 * that uses it: spec.governance enabled, governance.toolPolicyRef naming it
 * (a sandbox without a ref uses "kars-default"), and every
 * appliesTo.sandboxMatchLabels entry one of the sandbox's labels.
 *
 *   {"kind":"ToolPolicy","name":N,"namespace":NS,"profile":{...},
 *    "schemaVersion":1}
 *
 * The router takes the profile out, loads it, and reports the digest over
 * "<namespace>/<name>" and the file's bytes (router/tool_policy_file.c),
 * like the InferencePolicy's: one file per sandbox, whichever policy it
 * uses, so a switch replaces it and the old policy takes back only a file
 * that still names it.
 *
 * What is compiled: agtProfile.inline as written (the loader checks it, so
 * a profile the router would refuse is Degraded here, with the loader's
 * message), and spec.rateLimit as a rate_limit rule on the governed tool.
 * What is not yet, and is refused rather than dropped (a dropped limit
 * would be a silent weakening): agtProfile.bundleRef, approval modes other
 * than "never" (no approval channel exists), and commerce caps.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "governance.h"
#include "reconcile_policy.h"
#include "router_paths.h"

#define TP_FINALIZER	  "kars.azure.com/toolpolicy-cleanup"
#define TP_DEFAULT_POLICY "kars-default"

static const char *name_of(const json_t *o)
{
	return json_string_value(json_object_get(json_object_get(o, "metadata"), "name"));
}

/* spec.rateLimit as {"name":"kars-rate-limit","type":"rate_limit",...}:
 * rps calls per window (1 s unless spec.rateLimit.window says). burst is
 * not compiled: fixed windows allow no burst above the rate, which is the
 * stricter reading. */
static int rate_limit_rule(const json_t *spec, json_t **rule, struct kars_err *err)
{
	const json_t *rl = json_object_get(spec, "rateLimit");
	const char *tool =
	    json_string_value(json_object_get(json_object_get(spec, "appliesTo"), "tool")) ?: "*";
	json_int_t rps = json_integer_value(json_object_get(rl, "rps"));
	const char *window = json_string_value(json_object_get(rl, "window"));
	uint64_t secs = 1;
	char action[KARS_GOV_ACTION_MAX + 16], win[32];

	*rule = NULL;
	if (!rl || rps <= 0)
		return 0;
	if (window &&
	    (kars_iso_duration_s(window, &secs) || secs == 0 || secs > KARS_GOV_WINDOW_MAX_S))
		return kars_err_set(err, EINVAL,
				    "spec.rateLimit.window: Invalid value: \"%s\": must be 1 s to "
				    "31 days",
				    window);
	snprintf(action, sizeof(action), "tool.invoke:%s", tool);
	snprintf(win, sizeof(win), "%llus", (unsigned long long)secs);
	*rule = json_pack("{s:s,s:s,s:[s],s:I,s:s}", "name", "kars-rate-limit", "type",
			  "rate_limit", "actions", action, "max_calls",
			  (json_int_t)((uint64_t)rps * secs), "window", win);
	return *rule ? 0 : kars_err_set(err, ENOMEM, "compile: out of memory");
}

int kars_toolpolicy_compile(const json_t *policy, struct kars_compiled *out, struct kars_err *err)
{
	const json_t *md = json_object_get(policy, "metadata");
	const json_t *spec = json_object_get(policy, "spec");
	const json_t *prof = json_object_get(spec, "agtProfile");
	const char *ns = json_string_value(json_object_get(md, "namespace"));
	const char *name = json_string_value(json_object_get(md, "name"));
	const char *mode =
	    json_string_value(json_object_get(json_object_get(spec, "approval"), "mode"));
	struct kars_gov_profile *gp = NULL;
	json_t *doc, *rule = NULL;
	char *text;
	int ret;

	memset(out, 0, sizeof(*out));
	if (!ns || !name || !json_is_object(spec))
		return kars_err_set(err, EINVAL, "ToolPolicy without namespace, name or spec");
	if (json_object_get(prof, "bundleRef"))
		return kars_err_set(err, ENOTSUP,
				    "spec.agtProfile.bundleRef: signed profile bundles are not "
				    "implemented yet");
	if (mode && strcmp(mode, "never"))
		return kars_err_set(err, ENOTSUP,
				    "spec.approval.mode: \"%s\" is not compiled yet (no approval "
				    "channel exists); refused rather than ignored",
				    mode);
	if (json_object_get(spec, "commerce"))
		return kars_err_set(err, ENOTSUP,
				    "spec.commerce: spending caps are not enforced yet; refused "
				    "rather than ignored");
	if (!json_is_object(json_object_get(prof, "inline")))
		return kars_err_set(err, EINVAL, "spec.agtProfile.inline: Required value");
	ret = rate_limit_rule(spec, &rule, err);
	if (ret)
		return ret;
	doc = json_deep_copy(json_object_get(prof, "inline"));
	if (rule) {
		json_t *rules = json_object_get(doc, "policies");

		if (!json_is_array(rules)) {
			json_decref(rule);
			json_decref(doc);
			return kars_err_set(err, EINVAL,
					    "spec.agtProfile.inline.policies: Required value (a "
					    "list of rules; [] for none)");
		}
		json_array_append_new(rules, rule);
	}
	text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	ret = text ? kars_gov_profile_load_buf(text, strlen(text), "spec.agtProfile.inline", NULL,
					       &gp, NULL, err)
		   : kars_err_set(err, ENOMEM, "compile: out of memory");
	free(text);
	kars_gov_profile_free(gp);
	if (ret) {
		json_decref(doc);
		return ret < 0 ? ret : -EINVAL;
	}
	doc = json_pack("{s:i,s:s,s:s,s:s,s:o}", "schemaVersion", KARS_COMPILED_SCHEMA_VERSION,
			"kind", "ToolPolicy", "namespace", ns, "name", name, "profile", doc);
	if (!doc)
		return kars_err_set(err, ENOMEM, "compile: out of memory");
	ret = kars_compiled_set(out, doc, ns, name, err);
	if (ret) {
		kars_compiled_free(out);
		return ret < 0 ? ret : -EINVAL;
	}
	return 0;
}

static bool tp_uses(const json_t *policy, const json_t *sandbox)
{
	const json_t *gov = json_object_get(json_object_get(sandbox, "spec"), "governance");
	const char *ref =
	    json_string_value(json_object_get(json_object_get(gov, "toolPolicyRef"), "name"));
	const json_t *labels = json_object_get(json_object_get(sandbox, "metadata"), "labels");
	const json_t *want = json_object_get(
	    json_object_get(json_object_get(policy, "spec"), "appliesTo"), "sandboxMatchLabels");
	const json_t *v;
	const char *k;

	if (json_is_false(json_object_get(gov, "enabled")) ||
	    strcmp(ref ? ref : TP_DEFAULT_POLICY, name_of(policy)))
		return false;
	json_object_foreach((json_t *)want, k,
			    v) if (!json_equal(json_object_get(labels, k), v)) return false;
	return true;
}

static void tp_file(const json_t *policy, char *buf, size_t len)
{
	snprintf(buf, len, "%s", KARS_TP_FILE);
}

/* One file per sandbox, whichever policy it uses: ours if it names us. */
static bool tp_owns(const char *path, const json_t *policy)
{
	json_t *doc = json_load_file(path, 0, NULL);
	const char *name = name_of(policy);
	bool ours =
	    doc && name && !strcmp(json_string_value(json_object_get(doc, "name")) ?: "", name);

	json_decref(doc);
	return ours;
}

const struct kars_policy_kind kars_policy_toolpolicy = {
    .kind = "ToolPolicy",
    .finalizer = TP_FINALIZER,
    .ready_phase = "Ready",
    .waiting_phase = "Compiled",
    .degraded_phase = "Degraded",
    .compile = kars_toolpolicy_compile,
    .uses = tp_uses,
    .file = tp_file,
    .owns = tp_owns,
};
