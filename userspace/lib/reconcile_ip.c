/* reconcile_ip.c - see reconcile_ip.h. */
#include "reconcile_ip.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *str_at(const json_t *o, const char *a, const char *b, const char *c)
{
	return json_string_value(json_object_get(json_object_get(json_object_get(o, a), b), c));
}

/* The sandbox names the policy as its inferenceRef, and the policy's
 * appliesTo admits the sandbox (the router refuses a policy whose
 * sandboxName is another sandbox, so it is not delivered there). */
static bool ip_uses(const json_t *policy, const json_t *sandbox)
{
	const char *ref = str_at(sandbox, "spec", "inferenceRef", "name");
	const char *name =
	    json_string_value(json_object_get(json_object_get(policy, "metadata"), "name"));
	const char *sbname =
	    json_string_value(json_object_get(json_object_get(sandbox, "metadata"), "name"));
	const json_t *applies = json_object_get(json_object_get(policy, "spec"), "appliesTo");
	const char *want = json_string_value(json_object_get(applies, "sandboxName"));
	const json_t *labels = json_object_get(json_object_get(sandbox, "metadata"), "labels");
	const json_t *v;
	const char *k;

	if (!ref || !name || !sbname || strcmp(ref, name) || (want && strcmp(want, sbname)))
		return false;
	json_object_foreach((json_t *)json_object_get(applies, "sandboxMatchLabels"), k,
			    v) if (!json_equal(json_object_get(labels, k), v)) return false;
	return true;
}

static void ip_file(const json_t *policy, char *buf, size_t len)
{
	snprintf(buf, len, "%s", KARS_IP_FILE);
}

/* One file per sandbox, whichever policy it uses: ours if it names us. */
static bool ip_owns(const char *path, const json_t *policy)
{
	json_t *doc = json_load_file(path, 0, NULL);
	const char *name =
	    json_string_value(json_object_get(json_object_get(policy, "metadata"), "name"));
	bool ours =
	    doc && name && !strcmp(json_string_value(json_object_get(doc, "name")) ?: "", name);

	json_decref(doc);
	return ours;
}

const struct kars_policy_kind kars_policy_inferencepolicy = {
    .kind = "InferencePolicy",
    .finalizer = KARS_IP_FINALIZER,
    .ready_phase = "Ready",
    .waiting_phase = "Compiled",
    .degraded_phase = "Degraded",
    .version_hash = true,
    .compile = kars_inferencepolicy_compile,
    .uses = ip_uses,
    .file = ip_file,
    .owns = ip_owns,
};

int kars_reconcile_inferencepolicy(const struct kars_policy_env *env, const char *ns,
				   const char *name, struct kars_reconcile_result *res,
				   struct kars_err *err)
{
	return kars_reconcile_policy(&kars_policy_inferencepolicy, env, ns, name, res, err);
}
