/* gov_config.c - the router config's "governance" object, parsed strictly.
 *
 *   "governance": {
 *     "profileFile": "/etc/kars/agt/agt-profile.yaml", "pollMs": 5000,
 *     "unmatched": "allow",
 *     "rateLimit": {"globalPerSecond": 500, "globalBurst": 1000,
 *                   "principalPerSecond": 50, "principalBurst": 100,
 *                   "principals": 4096},
 *     "monitor": {"burstCalls": 100, "burstWindowSeconds": 60,
 *                 "failureStreak": 20, "denials": 10, "denialsWindowSeconds": 60,
 *                 "escalate": false, "blockSeconds": 60},
 *     "trust": {"file": "/var/lib/kars/trust.json", "agents": 1024,
 *               "reward": 10, "penalty": 50, "decayPerHour": 0.95}}
 *
 * Every field is optional; the values above are the defaults (AGT's rate
 * limits and monitor thresholds; a monitor that only counts). A rate of 0
 * turns that bucket off, a monitor threshold of 0 that check.
 */
#include <errno.h>
#include <string.h>

#include "config.h"
#include "governance.h"
#include "json.h"

static int get_u32(const json_t *o, const char *path, const char *key, uint64_t max, uint32_t *out,
		   struct kars_err *err)
{
	uint64_t v = *out;
	int ret = kars_json_get_uint(o, path, key, false, 0, max, &v, err);

	*out = (uint32_t)v;
	return ret;
}

static int get_secs(const json_t *o, const char *path, const char *key, uint64_t *ns,
		    struct kars_err *err)
{
	uint64_t v = *ns / 1000000000ull;
	int ret = kars_json_get_uint(o, path, key, false, 1, KARS_GOV_WINDOW_MAX_S, &v, err);

	*ns = v * 1000000000ull;
	return ret;
}

static int parse_rate(const json_t *g, struct kars_router_config *c, struct kars_err *err)
{
	static const char *const keys[] = {"globalPerSecond", "globalBurst", "principalPerSecond",
					   "principalBurst",  "principals",  NULL};
	struct kars_gov_limits *l = &c->gov_limits;
	uint32_t gr = (uint32_t)l->global_rate, pr = (uint32_t)l->principal_rate;
	const char *path = "governance.rateLimit";
	int ret;
	const json_t *o = kars_json_get_object(g, "governance", "rateLimit", false, &ret, err);

	if (!o)
		return ret;
	ret = kars_json_only_keys(o, path, keys, err);
	if (!ret)
		ret = get_u32(o, path, "globalPerSecond", 1000000, &gr, err);
	if (!ret)
		ret = get_u32(o, path, "globalBurst", 100000000, &l->global_burst, err);
	if (!ret)
		ret = get_u32(o, path, "principalPerSecond", 1000000, &pr, err);
	if (!ret)
		ret = get_u32(o, path, "principalBurst", 100000000, &l->principal_burst, err);
	if (!ret)
		ret = get_u32(o, path, "principals", KARS_GOV_PRINCIPALS_MAX, &l->principals_max,
			      err);
	l->global_rate = gr;
	l->principal_rate = pr;
	return ret;
}

static int parse_monitor(const json_t *g, struct kars_router_config *c, struct kars_err *err)
{
	static const char *const keys[] = {
	    "burstCalls",	    "burstWindowSeconds", "failureStreak", "denials",
	    "denialsWindowSeconds", "escalate",		  "blockSeconds",  NULL};
	struct kars_gov_limits *l = &c->gov_limits;
	const char *path = "governance.monitor";
	int ret;
	const json_t *o = kars_json_get_object(g, "governance", "monitor", false, &ret, err);

	if (!o)
		return ret;
	ret = kars_json_only_keys(o, path, keys, err);
	if (!ret)
		ret = get_u32(o, path, "burstCalls", UINT32_MAX - 1, &l->burst_calls, err);
	if (!ret)
		ret = get_secs(o, path, "burstWindowSeconds", &l->burst_window_ns, err);
	if (!ret)
		ret = get_u32(o, path, "failureStreak", UINT32_MAX - 1, &l->failure_streak, err);
	if (!ret)
		ret = get_u32(o, path, "denials", UINT32_MAX - 1, &l->denials, err);
	if (!ret)
		ret = get_secs(o, path, "denialsWindowSeconds", &l->denials_window_ns, err);
	if (!ret)
		ret = kars_json_get_bool(o, path, "escalate", false, &l->escalate, err);
	if (!ret)
		ret = get_secs(o, path, "blockSeconds", &l->block_ns, err);
	return ret;
}

static int parse_trust(const json_t *g, struct kars_router_config *c, struct kars_err *err)
{
	static const char *const keys[] = {"file",    "agents",	      "reward",
					   "penalty", "decayPerHour", NULL};
	const char *path = "governance.trust", *file = NULL;
	const json_t *decay;
	int ret;
	const json_t *o = kars_json_get_object(g, "governance", "trust", false, &ret, err);

	if (!o)
		return ret;
	ret = kars_json_only_keys(o, path, keys, err);
	if (!ret)
		ret = kars_json_get_string(o, path, "file", false, &file, err);
	if (!ret && file && strlen(file) >= sizeof(c->trust_file))
		ret = kars_err_set(err, EINVAL, "%s.file: longer than %zu characters", path,
				   sizeof(c->trust_file) - 1);
	if (!ret && file)
		strcpy(c->trust_file, file);
	if (!ret)
		ret = get_u32(o, path, "agents", 65536, &c->trust_agents_max, err);
	if (!ret)
		ret = get_u32(o, path, "reward", 1000, &c->trust_reward, err);
	if (!ret)
		ret = get_u32(o, path, "penalty", 1000, &c->trust_penalty, err);
	decay = json_object_get(o, "decayPerHour");
	if (!ret && decay) {
		double d = json_number_value(decay);

		if (!json_is_number(decay) || !(d > 0 && d <= 1))
			return kars_err_set(err, EINVAL,
					    "%s.decayPerHour: expected a number in (0, 1]", path);
		c->trust_decay_per_hour = d;
	}
	return ret;
}

int kars_router_gov_config_parse(const json_t *root, struct kars_router_config *c,
				 struct kars_err *err)
{
	static const char *const keys[] = {"profileFile", "pollMs", "unmatched", "rateLimit",
					   "monitor",	  "trust",  NULL};
	struct kars_gov_limits agt = KARS_GOV_LIMITS_AGT;
	const char *file = NULL, *unmatched = "allow";
	uint64_t poll_ms = 5000;
	const json_t *g;
	int ret;

	c->gov_limits = agt;
	c->gov_poll_ms = (long)poll_ms;
	c->gov_unmatched = KARS_GOV_UNMATCHED_ALLOW;
	g = kars_json_get_object(root, "", "governance", false, &ret, err);
	if (!g)
		return ret;
	ret = kars_json_only_keys(g, "governance", keys, err);
	if (!ret)
		ret = kars_json_get_string(g, "governance", "profileFile", false, &file, err);
	if (!ret && file && (!*file || strlen(file) >= sizeof(c->gov_profile_file)))
		ret = kars_err_set(err, EINVAL, "governance.profileFile: 1 to %zu characters",
				   sizeof(c->gov_profile_file) - 1);
	if (!ret && file)
		strcpy(c->gov_profile_file, file);
	if (!ret)
		ret = kars_json_get_uint(g, "governance", "pollMs", false, 100, 3600000, &poll_ms,
					 err);
	c->gov_poll_ms = (long)poll_ms;
	if (!ret)
		ret = kars_json_get_string(g, "governance", "unmatched", false, &unmatched, err);
	if (!ret && strcmp(unmatched, "allow") && strcmp(unmatched, "deny"))
		ret = kars_err_set(err, EINVAL,
				   "governance.unmatched: Unsupported value \"%s\": supported "
				   "values: \"allow\", \"deny\"",
				   unmatched);
	if (!ret && strcmp(unmatched, "deny") == 0)
		c->gov_unmatched = KARS_GOV_UNMATCHED_DENY;
	if (!ret)
		ret = parse_rate(g, c, err);
	if (!ret)
		ret = parse_monitor(g, c, err);
	if (!ret)
		ret = parse_trust(g, c, err);
	return ret;
}
