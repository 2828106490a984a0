/* validate.h - the kars validator: every schema rule and CEL rule of
 * schema.h checked in C, with problems worded as kubectl prints them
 * ("spec.runtime.byo.contractVersion: Required value").
 *
 * It does what the API server does to a custom resource on create/update:
 * apply the schema's defaults, check types, required fields, enums,
 * patterns, formats, bounds and list uniqueness, then run each CEL rule on
 * the nodes that passed. Unlike the API server it refuses unknown fields
 * instead of pruning them: a misspelt field must not silently weaken a
 * policy.
 */
#ifndef KARS_VALIDATE_H
#define KARS_VALIDATE_H

#include <jansson.h>
#include <stddef.h>
#include <time.h>

#include "schema.h"

#define KARS_PROBLEMS_MAX 32

struct kars_problems {
	size_t count;	/* recorded in msg[] */
	size_t dropped; /* found beyond KARS_PROBLEMS_MAX */
	char msg[KARS_PROBLEMS_MAX][400];
};

/* Checks apiVersion and kind; returns the kind or NULL (with a problem). */
const struct kars_kind *kars_object_kind(const json_t *obj, struct kars_problems *p);

/* Sets every missing field that has a default, below fields that are
 * present, in spec and status, as the API server does before validation. */
void kars_apply_defaults(const struct kars_kind *k, json_t *obj);

/* Validates obj against k (defaults applied first by the caller). Checks
 * metadata, spec and, if present, status. Returns the number of problems. */
size_t kars_validate(const struct kars_kind *k, const json_t *obj, struct kars_problems *p);

/* kars_object_kind + kars_apply_defaults + kars_validate. 0 when valid,
 * -EINVAL otherwise; *kind is set when the kind was recognised. */
int kars_validate_object(json_t *obj, const struct kars_kind **kind, struct kars_problems *p);

/* RFC 3339 date-time, as format: date-time accepts it. */
bool kars_is_date_time(const char *s);

/* The instant of an RFC 3339 date-time (offset applied, fraction dropped):
 * 0, or -EINVAL if kars_is_date_time refuses it. */
int kars_date_time_parse(const char *s, time_t *out);

/* All problems joined by "\n" into buf. */
const char *kars_problems_join(const struct kars_problems *p, char *buf, size_t len);

#endif
