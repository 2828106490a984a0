/* events.h - data-plane events as JSON, the form `subscribe` streams. */
#ifndef KARS_EVENTS_H
#define KARS_EVENTS_H

#include <jansson.h>

#include "kars_dataplane.h"
#include "sandboxes.h"

/* One event as a JSON object (see docs/karsd-api.md, "subscribe"). */
json_t *kars_event_json(const struct kars_event *e, const struct kars_sandboxes *s);

#endif
