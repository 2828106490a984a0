/* json.h - jansson helpers that name the offending field.
 *
 * Every request that reaches a kars daemon is JSON. These helpers read one
 * field each and, on error, write a message with the field's full path as
 * kubectl prints it ("rules[3].port: expected an integer in [1, 65535]").
 * Unknown fields are rejected: a typo must not silently weaken a policy.
 */
#ifndef KARS_JSON_H
#define KARS_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"

/* Parses exactly one JSON value from buf; errors name line, column and byte. */
json_t *kars_json_parse(const char *buf, size_t len, struct kars_err *err);

/* Rejects any key of obj not in allowed (NULL-terminated). path names obj. */
int kars_json_only_keys(const json_t *obj, const char *path, const char *const allowed[],
			struct kars_err *err);

/* Each getter: a missing key is an error when required, else leaves *out as is
 * and returns 0; present with the wrong type or range is always an error. */
int kars_json_get_string(const json_t *obj, const char *path, const char *key, bool required,
			 const char **out, struct kars_err *err);
int kars_json_get_uint(const json_t *obj, const char *path, const char *key, bool required,
		       uint64_t min, uint64_t max, uint64_t *out, struct kars_err *err);
int kars_json_get_bool(const json_t *obj, const char *path, const char *key, bool required,
		       bool *out, struct kars_err *err);
/* Returns the array (borrowed) or NULL; *ret tells error from absence. */
const json_t *kars_json_get_array(const json_t *obj, const char *path, const char *key,
				  bool required, int *ret, struct kars_err *err);
const json_t *kars_json_get_object(const json_t *obj, const char *path, const char *key,
				   bool required, int *ret, struct kars_err *err);

/* Builds "path.key" or "key" into buf (path may be ""). */
const char *kars_json_path(char *buf, size_t len, const char *path, const char *key);
/* Builds "path[index]" into buf. */
const char *kars_json_path_index(char *buf, size_t len, const char *path, size_t index);

#endif
