/* sandbox_store.c - editing a sandbox's objects in the store, and printing
 * data as -o json|yaml asks (sandbox_store.h). */
#include "sandbox_store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store.h"
#include "validate.h"
#include "yamljson.h"

/* A Conflict (someone else wrote the object between our read and our write)
 * is retried on the new version, five times. */
int kars_sbstore_edit(const struct kars_sbref *ref, const char *kind, const char *name, edit_fn fn,
		      void *arg, json_t **out)
{
	const struct kars_kind *k = kars_kind_find(kind);
	struct kars_store *s = NULL;
	struct kars_err err = {};
	json_t *obj = NULL;
	struct stat st;
	int ret = -1, r;

	*out = NULL;
	if (stat(ref->store, &st) || !S_ISDIR(st.st_mode)) {
		/* opening would create an empty store: say where we looked instead */
		fprintf(stderr,
			"kars: no store at %s (kars up --local creates it; or --state DIR)\n",
			ref->store);
		return -1;
	}
	if (kars_store_open_dir(ref->store, &s, &err)) {
		fprintf(stderr, "kars: %s\n", err.msg);
		return -1;
	}
	for (int attempt = 0; attempt < 5; attempt++) {
		kars_err_clear(&err);
		r = kars_store_get(s, k, ref->ns, name, &obj, &err);
		if (r == -ENOENT) {
			fprintf(stderr,
				"kars: %s %s/%s not found in the store %s (kars get %s -n %s)\n",
				k->kind, ref->ns, name, ref->store, k->plural, ref->ns);
			goto cleanup;
		}
		if (r) {
			fprintf(stderr, "kars: %s\n", err.msg);
			goto cleanup;
		}
		r = fn(obj, arg);
		if (r < 0)
			goto cleanup;
		if (r == 1) {
			*out = obj;
			obj = NULL;
			ret = 1;
			goto cleanup;
		}
		r = kars_store_update(s, obj, out, &err);
		json_decref(obj);
		obj = NULL;
		if (r == 0) {
			ret = 0;
			goto cleanup;
		}
		if (r != -ESTALE) {
			fprintf(stderr, "kars: %s %s/%s not changed: %s\n", k->kind, ref->ns, name,
				err.msg);
			goto cleanup;
		}
	}
	fprintf(stderr, "kars: %s %s/%s: kept changing while we wrote it; try again\n", k->kind,
		ref->ns, name);
cleanup:
	json_decref(obj);
	kars_store_close(s);
	return ret;
}

int kars_cli_print_data(json_t *o, const char *output)
{
	char *text = !strcmp(output, "yaml") ? kars_yaml_dump(o)
					     : json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	if (!text) {
		fprintf(stderr, "kars: out of memory\n");
		return 1;
	}
	printf("%s%s", text, strcmp(output, "yaml") ? "\n" : "");
	free(text);
	return 0;
}

const char *kars_json_str_or(const json_t *o, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : dflt;
}
