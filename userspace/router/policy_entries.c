/* policy_entries.c - the entries[] of GET /kars/v1/policy-status: one per
 * kind of compiled policy the router loads, each with the digest it
 * computed over the bytes it read. kars-controller marks a policy Ready only
 * when the entry of its kind and "<namespace>/<name>" carries its digest
 * (docs/compiled-policy.md).
 *
 *   InferencePolicy  policy.file (inference_policy.c)
 *   ToolPolicy       governance.profileFile (gov_gate.c), when it is the
 *                    controller's compiled form; a hand-written or the
 *                    default profile is listed without name and digest
 *
 * EgressApproval has no entry: the router does not enforce egress (karsd
 * does), so it has nothing to report (docs/compiled-policy.md).
 */
#include <stdio.h>
#include <time.h>

#include "gov_gate.h"
#include "inference_policy.h"
#include "router.h"

static void rfc3339(uint64_t ns, char *buf, size_t len)
{
	time_t secs = (time_t)(ns / 1000000000ull);
	struct tm tm;

	gmtime_r(&secs, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *tool_policy_entry(const struct kars_router *r)
{
	const struct kars_gov_gate *g = r->gov;
	bool compiled = g && g->digest[0];
	char loaded[32] = "";

	if (!g)
		return NULL;
	if (compiled)
		rfc3339(g->loaded_at_ns, loaded, sizeof(loaded));
	return json_pack("{s:s,s:s?,s:s?,s:s?,s:s?,s:b,s:s?}", "kind", "ToolPolicy", "name",
			 compiled ? g->policy_name : NULL, "digest", compiled ? g->digest : NULL,
			 "sourcePath", r->cfg.gov_profile_file[0] ? r->cfg.gov_profile_file : NULL,
			 "loadedAt", compiled ? loaded : NULL, "default", g->is_default,
			 "lastError", g->error[0] ? g->error : NULL);
}

json_t *kars_router_policy_entries(const struct kars_router *r, int *loaded)
{
	const struct kars_inference_policy *p = r->policy;
	json_t *entries = json_array(), *tp = tool_policy_entry(r);
	char when[32] = "";

	*loaded = 0;
	if (!entries)
		return NULL;
	if (p)
		rfc3339(p->loaded_at_ns, when, sizeof(when));
	json_array_append_new(
	    entries, json_pack("{s:s,s:s?,s:s?,s:s,s:s?,s:s?}", "kind", "InferencePolicy", "name",
			       p ? p->name : NULL, "digest", p ? p->digest : NULL, "sourcePath",
			       r->cfg.policy_file, "loadedAt", p ? when : NULL, "lastError",
			       r->policy_error[0] ? r->policy_error : NULL));
	*loaded += p ? 1 : 0;
	if (tp) {
		*loaded += json_string_value(json_object_get(tp, "digest")) ? 1 : 0;
		json_array_append_new(entries, tp);
	}
	return entries;
}
