/* key_install.h - `kars credentials update`: putting an upstream API key
 * into a local sandbox's router directory, and nowhere else.
 *
 * The source file must be a regular file of one non-empty line (at most 16
 * KiB, no control bytes) readable by its owner only (mode 0600 or 0400): a
 * key that group or others could read is refused, since it has already been
 * exposed and should be rotated, and copying it would hide that. The copy
 * is written next to the target under a fresh name (O_EXCL, mode 0600, owned
 * by the router UID), fsynced, renamed over the target and the directory
 * fsynced: the router (which watches the file) sees the old key or the new
 * one, never part of one. The router directory must be owned by the router
 * UID and the target must be in it. The key is never printed and the buffer
 * is wiped.
 */
#ifndef KARS_CLI_KEY_INSTALL_H
#define KARS_CLI_KEY_INSTALL_H

#include "err.h"
#include "sandbox_ref.h"

int kars_key_install(const char *src, const struct kars_sbref *ref, const struct kars_sbrun *run,
		     struct kars_err *err);

#endif
