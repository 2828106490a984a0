/* policy_watch.h - hot reload of the InferencePolicy file.
 *
 * The controller rewrites the policy file; on Kubernetes the kubelet swaps a
 * ConfigMap volume's "..data" symlink. The router notices either way: inotify
 * on the file's directory (any create, rename, write or delete there) and a
 * stat() poll as the fallback (policy.pollMs), both comparing the file's
 * identity through symlinks (device, inode, size, mtime, ctime). A changed
 * file is parsed into a new snapshot and swapped in; requests in flight keep
 * the snapshot they started with. A file that does not parse leaves the
 * policy in force as it was, and the error is logged, audited, counted and
 * shown by /kars/v1/policy-status. A file that is gone clears the policy:
 * with no policy the router refuses inference (fail closed). Every load,
 * refusal and clearing is an audit record.
 */
#ifndef KARS_ROUTER_POLICY_WATCH_H
#define KARS_ROUTER_POLICY_WATCH_H

struct kars_router;
struct kars_policy_watch;

/* Loads the policy once (a missing or bad file is reported, not fatal: the
 * router then refuses inference until a good one arrives) and starts
 * watching. NULL only when out of memory or the event loop refuses. */
struct kars_policy_watch *kars_policy_watch_new(struct kars_router *r);
void kars_policy_watch_free(struct kars_policy_watch *w);
/* Looks at the file now (tests; the watch does this itself). */
void kars_policy_watch_check(struct kars_policy_watch *w);

#endif
