/* reconcile_ea.c - EgressApproval: an operator's time-bounded allowance of
 * extra destinations for one sandbox, compiled to canonical JSON and
 * delivered as <out_dir>/<namespace>/<sandbox>/egress-approvals/<name>.json
 * to the KarsSandbox spec.sandbox names.
 *
 * The window: effectiveAt is when the controller first saw the approval
 * (kept in status, so a restart does not extend it), expiresAt is
 * effectiveAt + spec.ttl, clamped to KARS_EA_MAX_TTL_S. Both are in the
 * compiled bytes, so an enforcer can expire the hosts on its own clock even
 * when the controller is down. Phases: Pending (compiled, not yet reported
 * enforced), Active (enforced), Expired (files removed, never again).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "reconcile_policy.h"

#define EA_FINALIZER	  "kars.azure.com/egressapproval-cleanup"
#define KARS_EA_MAX_TTL_S (24 * 3600) /* the cluster ceiling (Helm maxTtlSeconds) */

static const char *name_of(const json_t *o)
{
	return json_string_value(json_object_get(json_object_get(o, "metadata"), "name"));
}

static int parse_time(const char *s, time_t *out)
{
	struct tm tm = {0};
	const char *end = s ? strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm) : NULL;

	if (!end || *end)
		return -EINVAL;
	*out = timegm(&tm);
	return 0;
}

static void format_time(time_t t, char buf[32])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static bool ea_in_force(const json_t *obj, json_t *status, const char *now, uint64_t *requeue_ms)
{
	const json_t *spec = json_object_get(obj, "spec");
	const char *eff = json_string_value(json_object_get(status, "effectiveAt"));
	uint64_t ttl = 0;
	time_t t_now, t_eff;
	char buf[32];

	if (parse_time(now, &t_now))
		return false;
	if (!eff || parse_time(eff, &t_eff)) {
		t_eff = t_now;
		json_object_set_new(status, "effectiveAt", json_string(now));
	}
	/* the schema's pattern and CEL rule make ttl parse; fail closed if not */
	if (kars_iso_duration_s(json_string_value(json_object_get(spec, "ttl")) ?: "", &ttl))
		ttl = 0;
	if (ttl > KARS_EA_MAX_TTL_S)
		ttl = KARS_EA_MAX_TTL_S;
	format_time(t_eff + (time_t)ttl, buf);
	json_object_set_new(status, "expiresAt", json_string(buf));
	json_object_set_new(
	    status, "hostCount",
	    json_integer((json_int_t)json_array_size(json_object_get(spec, "hosts"))));
	if (t_now >= t_eff + (time_t)ttl)
		return false;
	if ((uint64_t)(t_eff + (time_t)ttl - t_now) * 1000 < *requeue_ms)
		*requeue_ms = (uint64_t)(t_eff + (time_t)ttl - t_now) * 1000;
	return true;
}

int kars_egressapproval_compile(const json_t *obj, struct kars_compiled *out, struct kars_err *err)
{
	const json_t *md = json_object_get(obj, "metadata"), *spec = json_object_get(obj, "spec");
	const json_t *status = json_object_get(obj, "status"), *h;
	const char *ns = json_string_value(json_object_get(md, "namespace"));
	const char *eff = json_string_value(json_object_get(status, "effectiveAt"));
	const char *exp = json_string_value(json_object_get(status, "expiresAt"));
	json_t *hosts = json_array();
	size_t i;

	memset(out, 0, sizeof(*out));
	if (!ns || !name_of(obj) || !json_is_object(spec) || !eff || !exp) {
		json_decref(hosts);
		return kars_err_set(err, EINVAL,
				    "EgressApproval without namespace, name, spec or window");
	}
	json_array_foreach(json_object_get(spec, "hosts"), i, h) json_array_append_new(
	    hosts, json_pack("{s:O,s:I}", "host", json_object_get(h, "host"), "port",
			     json_integer_value(json_object_get(h, "port")) ?: (json_int_t)443));
	return kars_compiled_set(out,
				 json_pack("{s:i,s:s,s:s,s:s,s:O,s:o,s:s,s:s}", "schemaVersion",
					   KARS_COMPILED_SCHEMA_VERSION, "kind", "EgressApproval",
					   "namespace", ns, "name", name_of(obj), "sandbox",
					   json_object_get(spec, "sandbox"), "hosts", hosts,
					   "effectiveAt", eff, "expiresAt", exp),
				 ns, name_of(obj), err);
}

static bool ea_uses(const json_t *approval, const json_t *sandbox)
{
	const char *want =
	    json_string_value(json_object_get(json_object_get(approval, "spec"), "sandbox"));

	return want && !strcmp(want, name_of(sandbox));
}

static void ea_file(const json_t *approval, char *buf, size_t len)
{
	snprintf(buf, len, "egress-approvals/%s.json", name_of(approval));
}

const struct kars_policy_kind kars_policy_egressapproval = {
    .kind = "EgressApproval",
    .finalizer = EA_FINALIZER,
    .ready_phase = "Active",
    .waiting_phase = "Pending",
    .degraded_phase = "Pending",
    .inactive_phase = "Expired",
    .compile = kars_egressapproval_compile,
    .uses = ea_uses,
    .file = ea_file,
    .in_force = ea_in_force,
};
