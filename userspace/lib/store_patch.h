/* store_patch.h - a JSON merge patch (RFC 7386) applied to a stored object
 * through the store's update, as `kubectl patch --type merge` does: get,
 * patch, update with the resourceVersion that was read, and on a Conflict
 * (someone wrote in between) read again and re-apply, a bounded number of
 * times. `kars migrate to-overlay|to-native` use it.
 */
#ifndef KARS_STORE_PATCH_H
#define KARS_STORE_PATCH_H

#include <stdbool.h>

#include "store.h"

#define KARS_PATCH_ATTEMPTS 5

/* *out: the object as stored afterwards (or as it would be, with dry_run:
 * validated, nothing written). *changed tells whether the patch changed it.
 * Store errors as store.h; -ESTALE after KARS_PATCH_ATTEMPTS conflicts. */
int kars_store_merge_patch(struct kars_store *s, const struct kars_kind *k, const char *ns,
			   const char *name, const json_t *patch, bool dry_run, json_t **out,
			   bool *changed, struct kars_err *err);

#endif
