/* conditions.c - see conditions.h. */
#include "conditions.h"

#include <string.h>
#include <time.h>

const json_t *kars_condition_get(const json_t *status, const char *type)
{
	const json_t *c;
	size_t i;

	json_array_foreach(json_object_get(status, "conditions"), i, c)
	{
		const char *t = json_string_value(json_object_get(c, "type"));

		if (t && !strcmp(t, type))
			return c;
	}
	return NULL;
}

static bool set_str(json_t *o, const char *key, const char *value)
{
	const char *cur = json_string_value(json_object_get(o, key));

	if (!value) {
		if (!json_object_get(o, key))
			return false;
		json_object_del(o, key);
		return true;
	}
	if (cur && !strcmp(cur, value))
		return false;
	json_object_set_new(o, key, json_string(value));
	return true;
}

bool kars_condition_set(json_t *status, const char *type, const char *status_value,
			const char *reason, const char *message, long long generation,
			const char *now)
{
	json_t *conds = json_object_get(status, "conditions");
	json_t *c = (json_t *)kars_condition_get(status, type);
	bool changed = false;

	if (!json_is_array(conds)) {
		conds = json_array();
		json_object_set_new(status, "conditions", conds);
		changed = true;
	}
	if (!c) {
		c = json_pack("{s:s}", "type", type);
		json_array_append_new(conds, c);
		changed = true;
	}
	if (set_str(c, "status", status_value)) {
		json_object_set_new(c, "lastTransitionTime", json_string(now));
		changed = true;
	}
	if (!json_object_get(c, "lastTransitionTime")) {
		json_object_set_new(c, "lastTransitionTime", json_string(now));
		changed = true;
	}
	changed |= set_str(c, "reason", reason);
	changed |= set_str(c, "message", message);
	if (json_integer_value(json_object_get(c, "observedGeneration")) != generation ||
	    !json_object_get(c, "observedGeneration")) {
		json_object_set_new(c, "observedGeneration", json_integer(generation));
		changed = true;
	}
	return changed;
}

bool kars_phase_set(const struct kars_kind *k, json_t *status, const char *phase)
{
	for (const char *const *p = k->phases; p && *p; p++)
		if (!strcmp(*p, phase))
			return set_str(status, "phase", phase), true;
	return false;
}

void kars_now_rfc3339(char *buf, size_t len)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
