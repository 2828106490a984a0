/* upstream_file.h - keeping a local sandbox's upstream.json in step with
 * `kars credentials update`.
 *
 * The local backend reads ROOT/sandboxes/NS/NAME/upstream.json (root's, the
 * router's `upstream` block) on every reconcile and copies the file its
 * apiKeyFile names into the router's directory. A key installed by `kars
 * credentials update` would be replaced by that older copy at the next
 * reconcile, so after installing one the CLI points apiKeyFile at the
 * router's own key file, which the backend then leaves alone.
 */
#ifndef KARS_CLI_UPSTREAM_FILE_H
#define KARS_CLI_UPSTREAM_FILE_H

#include <stddef.h>

#include "err.h"
#include "sandbox_ref.h"

/* 0: upstream.json now names key_file (rewritten atomically when it named
 * another file); 1: the sandbox has no upstream.json (its router has no
 * upstream: the key is held but unused); <0: error naming the file. */
int kars_upstream_follow_key(const struct kars_sbref *ref, const char *key_file,
			     struct kars_err *err);

#endif
