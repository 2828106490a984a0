/* a2a_window.h - the 30-day cap on a KarsSandbox's A2A exposure.
 *
 * The spec caps spec.a2a.expiresAt at 30 days. Kubernetes CEL has no clock,
 * so no CRD rule can say it; the KarsSandbox reconciler does, measuring from
 * when it first saw the object's current generation (status.a2aWindowStart,
 * kept so a restart or a later pass never moves it). A longer window is
 * refused, not clamped: the spec says admission rejects it, and a clamped
 * grant would not be the one its author wrote.
 */
#ifndef KARS_A2A_WINDOW_H
#define KARS_A2A_WINDOW_H

#include <jansson.h>

#include "err.h"

#define KARS_A2A_MAX_WINDOW_S (30LL * 24 * 3600)

/* 0 if spec has no a2a.expiresAt or it is at most KARS_A2A_MAX_WINDOW_S
 * after start (RFC 3339); -EINVAL naming spec.a2a.expiresAt otherwise. */
int kars_a2a_window_check(const json_t *spec, const char *start, struct kars_err *err);

#endif
