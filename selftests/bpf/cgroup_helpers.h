/* cgroup_helpers.h - the cgroup v2 subtree each test runs in.
 *
 * <cgroup2>/kars-selftest-<pid>-<n>/{agent,router,outside}: agent and router
 * are the sandbox's role cgroups, outside is a cgroup of the same test that
 * no sandbox owns (for fd passing). The cgroup v2 mount is found in
 * /proc/mounts, never assumed: /sys/fs/cgroup on most hosts,
 * /sys/fs/cgroup/unified on hybrid ones.
 */
#ifndef KST_CGROUP_HELPERS_H
#define KST_CGROUP_HELPERS_H

#include <bpf/bpf.h>
#include <stddef.h>
#include <stdint.h>

struct kst_env;

int kst_cgroup2_find(char *out, size_t len);
/* Creates <base>/<leaf> (leaf NULL: the base itself), tracked for removal. */
int kst_cgroup_create(struct kst_env *env, const char *leaf, char *abs, size_t len);
/* Moves the calling process into the cgroup. */
int kst_cgroup_join(const char *abs);
/* The calling process's cgroup v2, as an absolute path. */
int kst_cgroup_self(char *abs, size_t len);
/* Runs make(arg) with the calling process moved into cgroup for the call, so
 * that the sockets it creates belong to that cgroup; moves back after.
 * Returns what make returned, or -errno of the moves. */
int kst_in_cgroup(const char *cgroup, int (*make)(void *arg), void *arg);
/* Kills every process in the cgroup (cgroup.kill) and waits, bounded, until
 * it is empty. */
int kst_cgroup_kill(const char *abs);
/* Empties and removes every cgroup the test created, deepest first. */
void kst_cgroup_destroy_all(struct kst_env *env);
/* Programs attached directly to the cgroup for one attach type, or -errno. */
int kst_cgroup_prog_count(const char *abs, enum bpf_attach_type type);

#endif
