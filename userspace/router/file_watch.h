/* file_watch.h - call back when a file the controller writes may have changed.
 *
 * The controller rewrites a file (the InferencePolicy, the governance
 * profile); on Kubernetes the kubelet swaps a ConfigMap volume's "..data"
 * symlink. Either way the watch calls check(arg): on inotify events in the
 * file's directory (any create, rename, write or delete there, debounced by
 * 20 ms) and on a stat() poll every poll_ms as the fallback. check compares
 * the file's identity itself, with kars_file_sig_changed().
 */
#ifndef KARS_ROUTER_FILE_WATCH_H
#define KARS_ROUTER_FILE_WATCH_H

#include <stdbool.h>
#include <sys/stat.h>

struct event_base;
struct kars_file_watch;

struct kars_file_watch *kars_file_watch_new(struct event_base *base, const char *path, long poll_ms,
					    void (*check)(void *arg), void *arg);
void kars_file_watch_free(struct kars_file_watch *w);

/* The identity of a file through symlinks: device, inode, size, mtime,
 * ctime. Returns true (and remembers st in *sig, *seen = true) when st is
 * not what *sig holds. */
bool kars_file_sig_changed(const struct stat *st, struct stat *sig, bool *seen);

#endif
