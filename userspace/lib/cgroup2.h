/* cgroup2.h - the cgroup v2 hierarchy: where it is mounted, and the
 * create/kill/remove of the subtrees kars owns (karsd's probe and the local
 * sandbox backend share these).
 */
#ifndef KARS_CGROUP2_H
#define KARS_CGROUP2_H

#include <stddef.h>
#include <sys/types.h>

#include "err.h"

/* Finds the cgroup v2 mount in /proc/mounts (/sys/fs/cgroup on most hosts,
 * /sys/fs/cgroup/unified on hybrid ones). */
int kars_cgroup2_find(char *out, size_t len, struct kars_err *err);
/* mkdir -p of an absolute cgroup path (existing directories are fine). */
int kars_cgroup_mkdir(const char *abs, struct kars_err *err);
/* Kills every process below abs (cgroup.kill, or SIGKILL to each pid of
 * cgroup.procs where the kernel has no cgroup.kill) and waits, bounded by
 * about two seconds, until the subtree is empty. */
int kars_cgroup_kill(const char *abs, struct kars_err *err);
/* The same without cgroup.kill (SIGKILL per pid, repeated), for a cgroup
 * that takes new processes afterwards. After a cgroup.kill of a cgroup, this
 * kernel (6.18) SIGKILLs at birth every child that clone3(CLONE_INTO_CGROUP)
 * puts there from a parent in another cgroup: the fork path compares the
 * parent's cgroup's kill count with the target's. A supervisor restarting its
 * child in the same cgroup must therefore never use cgroup.kill on it. */
int kars_cgroup_empty(const char *abs, struct kars_err *err);
/* Kills what is left and removes abs and every cgroup below it, deepest
 * first. A missing abs is not an error. */
int kars_cgroup_remove(const char *abs, struct kars_err *err);
/* Moves pid into the cgroup. */
int kars_cgroup_attach(const char *abs, pid_t pid, struct kars_err *err);
/* Whether pid is a member of the cgroup abs (from /proc/PID/cgroup);
 * 1 yes, 0 no, -errno. */
int kars_cgroup_has_pid(const char *abs, pid_t pid);

#endif
