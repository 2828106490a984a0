/* schema_common.h - shorthand for writing the schema tables (schema_*.c).
 *
 * Private to the schema files. F() is one field, FIELDS()/ENUM()/RULES()
 * make the terminated arrays the table points at (file-scope compound
 * literals, so the whole schema is static data). The fragments below are
 * shapes several kinds share; the j_*() helpers are what the C halves of the
 * CEL rules are written with, each mirroring one CEL construct.
 */
#ifndef KARS_SCHEMA_COMMON_H
#define KARS_SCHEMA_COMMON_H

#include <string.h>

#include "schema.h"

#define F(n, t, ...)                                                                               \
	{                                                                                          \
		.name = n, .type = t, __VA_ARGS__                                                  \
	}
#define FIELDS(...)	  ((const struct kars_field[]){__VA_ARGS__, {0}})
#define ITEMS(...)	  ((const struct kars_field[]){{.name = "", __VA_ARGS__}})
#define ENUM(...)	  ((const char *const[]){__VA_ARGS__, NULL})
#define RULES(...)	  ((const struct kars_rule[]){__VA_ARGS__, {0}})
#define COLUMNS(...)	  ((const struct kars_column[]){__VA_ARGS__, {0}})
#define RANGE(lo, hi)	  .flags = KF_MIN | KF_MAX, .min = (lo), .max = (hi)
#define RANGE_REQ(lo, hi) .flags = KF_REQUIRED | KF_MIN | KF_MAX, .min = (lo), .max = (hi)

#define DNS_LABEL     "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
#define DNS_SUBDOMAIN "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
#define HOST_PATTERN  "^(\\*\\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
#define SHA256_DIGEST "^sha256:[0-9a-f]{64}$"
#define B64URL_32     "^[A-Za-z0-9_-]{43}$"

/* A same-namespace reference by name. */
#define REF(n, fl, d)                                                                              \
	F(n, KT_OBJECT, .flags = (fl), .desc = d,                                                  \
	  .props = FIELDS(F("name", KT_STRING, .flags = KF_REQUIRED,                               \
			    .desc = "Name of the object, in the same namespace.",                  \
			    .pattern = DNS_SUBDOMAIN, .max_len = 253)))

/* A signed OCI artifact, pulled by digest (the same shape everywhere). */
#define OCI_REF(n, d)                                                                              \
	F(n, KT_OBJECT, .desc = d,                                                                 \
	  .props =                                                                                 \
	      FIELDS(F("registry", KT_STRING, .flags = KF_REQUIRED, .max_len = 253,                \
		       .desc = "Registry host, e.g. karsacr.azurecr.io."),                         \
		     F("repository", KT_STRING, .flags = KF_REQUIRED, .max_len = 255,              \
		       .desc = "Repository path inside the registry."),                            \
		     F("digest", KT_STRING, .flags = KF_REQUIRED, .pattern = SHA256_DIGEST,        \
		       .desc = "Content digest the artifact is pulled by (sha256:<64 hex>)."),     \
		     F("artifactType", KT_STRING, .max_len = 255,                                  \
		       .desc = "Expected OCI artifactType; a different one is refused.")))

/* status.conditions[], as metav1.Condition. */
#define CONDITIONS                                                                                 \
	F("conditions", KT_ARRAY, .list_map_key = "type", .max_items = 32,                         \
	  .desc = "Latest observations of the object's state, one per type.",                      \
	  .items = ITEMS(.type = KT_OBJECT,                                                        \
			 .props = FIELDS(                                                          \
			     F("type", KT_STRING, .flags = KF_REQUIRED, .max_len = 316,            \
			       .desc = "Condition type, e.g. Ready."),                             \
			     F("status", KT_STRING, .flags = KF_REQUIRED,                          \
			       .enums = ENUM("True", "False", "Unknown"),                          \
			       .desc = "True, False or Unknown."),                                 \
			     F("reason", KT_STRING, .max_len = 1024,                               \
			       .desc = "One CamelCase word saying why."),                          \
			     F("message", KT_STRING, .max_len = 32768,                             \
			       .desc = "What a human needs to know."),                             \
			     F("lastTransitionTime", KT_STRING, .format = "date-time",             \
			       .desc = "When status last changed (kept when it does not)."),       \
			     F("observedGeneration", KT_INTEGER, .flags = KF_MIN, .min = 0,        \
			       .desc = "metadata.generation this condition was computed from."))))

#define PHASE(...)                                                                                 \
	F("phase", KT_STRING, .enums = ENUM(__VA_ARGS__),                                          \
	  .desc = "Summary of the object's state; one word of a closed set.")

#define OBSERVED_GENERATION                                                                        \
	F("observedGeneration", KT_INTEGER, .flags = KF_MIN, .min = 0,                             \
	  .desc = "metadata.generation the controller last acted on.")

#define AGE_COLUMN                                                                                 \
	{                                                                                          \
		"Age", "date", ".metadata.creationTimestamp", "Time since creation.", 0            \
	}
#define PHASE_COLUMN                                                                               \
	{                                                                                          \
		"Phase", "string", ".status.phase", "Summary of the state.", 0                     \
	}

/* --- C halves of CEL rules ------------------------------------------------ */

/* has(self.key) */
static inline bool j_has(const json_t *o, const char *key)
{
	return json_object_get(o, key) != NULL;
}

/* self.key == want (false when absent or not a string) */
static inline bool j_str_is(const json_t *o, const char *key, const char *want)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s && strcmp(s, want) == 0;
}

/* self.key, "" when absent */
static inline const char *j_str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/* self.key as a boolean, dflt when absent */
static inline bool j_bool(const json_t *o, const char *key, bool dflt)
{
	const json_t *v = json_object_get(o, key);

	return json_is_boolean(v) ? json_is_true(v) : dflt;
}

#endif
