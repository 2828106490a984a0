/* deliver.h - how the controller hands compiled bytes to a sandbox's
 * enforcers (router, karsd): a file in the sandbox's configuration
 * directory, replaced atomically and only when its bytes change.
 *
 * "Atomically": write a temporary file next to it, fsync, rename over the
 * old one, so a reader polling or watching the path (IN_MOVED_TO) sees the
 * old bytes or the new ones, never a torn file. "Only when they change": a
 * pass that compiles the same bytes leaves the file (and its inode and
 * mtime) alone, so a reconcile loop does not make the router reload.
 */
#ifndef KARS_DELIVER_H
#define KARS_DELIVER_H

#include <stddef.h>

#include "err.h"

/* mkdir -p with mode 0755. 0 or -errno. */
int kars_mkdir_p(const char *path);

/* Writes len bytes to path (creating its directories) unless it already
 * holds exactly them. 1 written, 0 unchanged, -errno with err set. */
int kars_deliver_file(const char *path, const void *bytes, size_t len, struct kars_err *err);

/* Reads the whole file (at most max bytes) into a new NUL-terminated
 * buffer. 0, or -errno (-EFBIG above max). */
int kars_read_file(const char *path, size_t max, char **out, size_t *len);

#endif
