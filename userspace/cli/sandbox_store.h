/* sandbox_store.h - the per-sandbox verbs' edits of the store: one object
 * read, changed and written back (a Conflict retried on the new version), so
 * the controller, the only writer of router and karsd configuration, takes
 * the change from there. */
#ifndef KARS_CLI_SANDBOX_STORE_H
#define KARS_CLI_SANDBOX_STORE_H

#include <jansson.h>

#include "sandbox_ref.h"

/* fn changes obj and returns 0, or 1 when there is nothing to change
 * (nothing is written), or -1 after printing why. */
typedef int (*edit_fn)(json_t *obj, void *arg);

/* Edits object KIND NAME of ref's namespace in ref's store. Returns 0
 * written, 1 unchanged, -1 refused or failed (printed; a missing store is
 * not created). *out: the object as stored, or as read when unchanged. */
int kars_sbstore_edit(const struct kars_sbref *ref, const char *kind, const char *name, edit_fn fn,
		      void *arg, json_t **out);

/* Prints o as output ("json" or "yaml"); 0, or 1 out of memory. */
int kars_cli_print_data(json_t *o, const char *output);

/* The string at key, or dflt. */
const char *kars_json_str_or(const json_t *o, const char *key, const char *dflt);

#endif
