/* schema.h - the one schema of the twelve kars.azure.com/v1alpha1 kinds.
 *
 * Everything about a kind's shape lives in a table compiled into libkars
 * (schema_*.c): fields, types, defaults, enums, patterns, bounds, printer
 * columns, short names, phases, and each CEL rule written twice, as the CEL
 * text the API server runs and as the C function kars runs. From this table
 * come the CRD YAML under deploy/crds/ (crd.c, `kars crds`), the validator
 * (validate.c, `kars validate`) and `kars explain`. Nothing else describes
 * a kind, so the CRDs and the code cannot drift apart: a field the code
 * knows is a field the API server keeps.
 */
#ifndef KARS_SCHEMA_H
#define KARS_SCHEMA_H

#include <jansson.h>
#include <stdbool.h>

#define KARS_GROUP	 "kars.azure.com"
#define KARS_VERSION	 "v1alpha1"
#define KARS_API_VERSION KARS_GROUP "/" KARS_VERSION

enum kars_type {
	KT_OBJECT = 1, /* props */
	KT_STRING,
	KT_INTEGER,
	KT_BOOLEAN,
	KT_ARRAY,    /* items */
	KT_MAP,	     /* string keys, values described by items */
	KT_FREEFORM, /* any object, kept as is (x-kubernetes-preserve-unknown-fields) */
	KT_INT_OR_STRING,
};

enum {
	KF_REQUIRED = 1 << 0,
	KF_MIN = 1 << 1, /* min is set */
	KF_MAX = 1 << 2, /* max is set */
	KF_SET = 1 << 3, /* array of scalars with unique items (listType set) */
};

/* One CEL rule. self is the JSON node the rule sits on. */
struct kars_rule {
	const char *cel;	/* x-kubernetes-validations rule, verbatim */
	const char *message;	/* what the user reads when it fails */
	const char *field_path; /* optional fieldPath, relative: ".toolPolicyRef" */
	bool (*ok)(const json_t *self);
};

struct kars_field {
	const char *name;
	enum kars_type type;
	unsigned flags;
	const char *desc;
	const struct kars_field *props; /* KT_OBJECT: {0}-terminated */
	const struct kars_field *items; /* KT_ARRAY items, KT_MAP values */
	const char *const *enums;	/* NULL-terminated */
	const char *dflt;		/* default as JSON text */
	const char *pattern;		/* valid as POSIX ERE and as RE2 */
	const char *format;		/* "date-time" */
	long long min, max;		/* with KF_MIN / KF_MAX */
	unsigned min_len, max_len;	/* strings; 0 = no bound */
	unsigned min_items, max_items;	/* arrays and maps; 0 = no bound */
	const char *list_map_key;	/* array of objects unique by this key */
	const struct kars_rule *rules;	/* {0}-terminated */
};

struct kars_column {
	const char *name, *type, *json_path, *desc;
	int priority;
};

struct kars_kind {
	const char *kind, *plural, *singular;
	const char *const *short_names;
	bool cluster_scoped;
	const char *desc;
	const struct kars_field *spec;	    /* the "spec" field */
	const struct kars_field *status;    /* the "status" field */
	const struct kars_rule *root_rules; /* rules on the whole object */
	const struct kars_column *columns;
	const char *const *phases;     /* status.phase values, closed */
	const char *const *conditions; /* condition types it may set */
};

/* The twelve kinds, NULL-terminated, in a fixed order. */
extern const struct kars_kind *const kars_kinds[];

/* By Kind, plural, singular or short name, case-insensitive; NULL if none. */
const struct kars_kind *kars_kind_find(const char *name);

/* The field at a dotted path below the object root ("spec.runtime.byo"),
 * descending through array items and map values; "spec" and "status" are
 * the kind's own. NULL if there is no such field. */
const struct kars_field *kars_field_find(const struct kars_kind *k, const char *path);

/* "object", "string", ... as OpenAPI names the type. */
const char *kars_type_name(enum kars_type t);

#endif
