/* convert_priv.h - what the converters (convert_*.c) share: the context a
 * conversion runs in, taking fields out of the copy of the input with their
 * types checked, and reporting whatever is left (convert_report.c).
 */
#ifndef KARS_CONVERT_PRIV_H
#define KARS_CONVERT_PRIV_H

#include "convert.h"
#include "schema.h"

/* Why a field that is left over is not carried. path is a pattern: "[]"
 * stands for any array index ("spec.podTemplate.spec.containers[].ports"). */
struct kc_reason {
	const char *path;
	const char *reason;
};

/* Reasons for fields of the Kubernetes shapes several inputs share
 * (securityContext, env, resources): path suffixes (convert_pod.c). */
extern const struct kc_reason kc_shared_reasons[];

struct kc {
	struct kars_conv_report *r;
	struct kars_err *err;
	const char *doc;	     /* "Sandbox default/web" */
	enum kars_conv_kind dropped; /* LOSSY, or NOTE when the source keeps the field */
	const struct kc_reason *reasons;
	const char *dflt; /* reason for a field the table does not name */
	const char *all;  /* when set, the reason for every leftover (the source keeps them) */
	json_t *keep;	  /* what kc_take handed out, alive until kc_done */
	int ret;	  /* first error */
};

void kc_init(struct kc *c, struct kars_conv_report *r, struct kars_err *err, const char *doc);
void kc_done(struct kc *c);

/* The value of key, removed from obj (borrowed, valid until kc_done);
 * NULL when obj is not an object or has no such key. */
json_t *kc_take(struct kc *c, json_t *obj, const char *key);
/* The same with its type checked: a value of another type is an error
 * ("PATH.KEY: expected a string"), recorded in c and returned as NULL. */
const char *kc_take_str(struct kc *c, json_t *obj, const char *path, const char *key);
json_t *kc_take_obj(struct kc *c, json_t *obj, const char *path, const char *key);
json_t *kc_take_arr(struct kc *c, json_t *obj, const char *path, const char *key);
/* -1 absent (or error), 0 false, 1 true. */
int kc_take_bool(struct kc *c, json_t *obj, const char *path, const char *key);

/* Records an input error (first one wins); returns -EINVAL. */
int kc_fail(struct kc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void kc_add(struct kc *c, enum kars_conv_kind kind, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Reports every field left in rest, which sits at path, with the reason
 * the table gives (or c->dflt), as c->dropped. Descends into objects and
 * arrays the table does not name; empty containers carry nothing. */
void kc_leftovers(struct kc *c, const json_t *rest, const char *path);

/* "a.b" + "c" -> "a.b.c"; "" + "c" -> "c"; into buf. */
const char *kc_path(char *buf, size_t len, const char *path, const char *key);
const char *kc_index(char *buf, size_t len, const char *path, size_t i);

/* metadata of the input: name (required DNS label of at most max chars),
 * namespace, labels and annotations copied (user data), the fields the API
 * server writes ignored, the rest reported. Returns the new metadata. */
json_t *kc_metadata(struct kc *c, json_t *rest, const char *ns_override, size_t max);

/* A container securityContext (and the pod's) -> KarsSandbox spec.sandbox
 * fields set in sb; Sandbox and kagent deployments share it. */
void kc_posture(struct kc *c, json_t *sc, const char *sc_path, json_t *psc, const char *psc_path,
		json_t *sb);
/* EnvVar list -> extraEnv map (valueFrom entries reported). */
json_t *kc_env_map(struct kc *c, json_t *env, const char *path);
/* ResourceRequirements -> spec.resources (claims reported); NULL if empty. */
json_t *kc_resources(struct kc *c, json_t *res, const char *path);

/* DNS-1123 label of at most 63 characters: lower-cased, other characters
 * as '-', and a 6-hex sha256 suffix of key so that names that sanitise
 * alike stay distinct. */
void kc_dns_name(char *out, size_t len, const char *base, const char *key);

bool kc_is_dns_label(const char *s, size_t max);

#endif
