/* policy_status.c - see policy_status.h. */
#include "policy_status.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static bool digest_ok(const char *d)
{
	if (!d || strncmp(d, "sha256:", 7) || strlen(d) != 71)
		return false;
	for (const char *p = d + 7; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

static const char *str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key)) ?: "";
}

int kars_policy_status_digest(const char *buf, size_t len, const char *sandbox, const char *kind,
			      const char *name, char digest[KARS_DIGEST_LEN], char *why,
			      size_t why_len)
{
	json_t *doc = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);
	const json_t *entry, *entries;
	size_t i;
	int ret = -ENOENT;

	digest[0] = '\0';
	if (!json_is_object(doc)) {
		snprintf(why, why_len, "the answer is not a JSON object");
		json_decref(doc);
		return -EINVAL;
	}
	if (!json_is_integer(json_object_get(doc, "schemaVersion")) ||
	    json_integer_value(json_object_get(doc, "schemaVersion")) != 1 ||
	    strcmp(str(doc, "sandbox"), sandbox)) {
		snprintf(why, why_len, "reports schemaVersion %lld for sandbox %.64s, not 1 for %s",
			 json_integer_value(json_object_get(doc, "schemaVersion")),
			 json_is_string(json_object_get(doc, "sandbox")) ? str(doc, "sandbox")
									 : "(none)",
			 sandbox);
		json_decref(doc);
		return -EINVAL;
	}
	entries = json_object_get(doc, "entries");
	snprintf(why, why_len, "reports no %s %s loaded", kind, name);
	json_array_foreach(entries, i, entry)
	{
		const char *last = json_string_value(json_object_get(entry, "lastError"));

		if (strcmp(str(entry, "kind"), kind))
			continue;
		if (!strcmp(str(entry, "name"), name) && digest_ok(str(entry, "digest"))) {
			snprintf(digest, KARS_DIGEST_LEN, "%s", str(entry, "digest"));
			why[0] = '\0';
			ret = 0;
			break;
		}
		if (last && strlen(why) + 16 < why_len)
			snprintf(why + strlen(why), why_len - strlen(why), " (last error: %.200s)",
				 last);
	}
	json_decref(doc);
	return ret;
}
