/* conditions.h - status.conditions and status.phase as the API conventions
 * want them: one condition per type; lastTransitionTime changes only when
 * the condition's status flips; observedGeneration says which spec it was
 * computed from; phases come from the kind's closed list.
 */
#ifndef KARS_CONDITIONS_H
#define KARS_CONDITIONS_H

#include <jansson.h>
#include <stdbool.h>

#include "schema.h"

/* Sets condition `type` in status (a JSON object; conditions created if
 * missing). status_value is "True", "False" or "Unknown"; now is RFC 3339.
 * Returns true if anything in status changed. */
bool kars_condition_set(json_t *status, const char *type, const char *status_value,
			const char *reason, const char *message, long long generation,
			const char *now);

/* The condition of that type (borrowed), or NULL. */
const json_t *kars_condition_get(const json_t *status, const char *type);

/* Sets status.phase if phase is in k's closed list; false (and no change)
 * otherwise. */
bool kars_phase_set(const struct kars_kind *k, json_t *status, const char *phase);

/* The current time as RFC 3339 UTC seconds. */
void kars_now_rfc3339(char *buf, size_t len);

#endif
