/* store_patch.c - see store_patch.h. */
#include "store_patch.h"

#include <errno.h>

#include "convert.h"
#include "validate.h"

int kars_store_merge_patch(struct kars_store *s, const struct kars_kind *k, const char *ns,
			   const char *name, const json_t *patch, bool dry_run, json_t **out,
			   bool *changed, struct kars_err *err)
{
	int ret = -ESTALE;

	*out = NULL;
	*changed = false;
	for (int attempt = 0; attempt < KARS_PATCH_ATTEMPTS && ret == -ESTALE; attempt++) {
		json_t *cur = NULL, *next;

		kars_err_clear(err);
		ret = kars_store_get(s, k, ns, name, &cur, err);
		if (ret)
			break;
		next = kars_json_merge_patch(cur, patch);
		*changed =
		    !json_equal(json_object_get(cur, "spec"), json_object_get(next, "spec")) ||
		    !json_equal(json_object_get(cur, "metadata"),
				json_object_get(next, "metadata"));
		if (dry_run) {
			struct kars_problems p = {};
			const struct kars_kind *kk;

			ret = kars_validate_object(next, &kk, &p);
			if (ret)
				kars_err_set(err, EINVAL, "%s \"%s\" is invalid: %s", k->kind, name,
					     p.count ? p.msg[0] : "");
			else
				*out = json_incref(next);
		} else {
			ret = kars_store_update(s, next, out, err);
		}
		json_decref(next);
		json_decref(cur);
	}
	return ret;
}
