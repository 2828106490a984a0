/* netns.h - the network namespace each test's workloads live in.
 *
 * One namespace per test, named kst-<pid>-<n> (so `ip netns` shows it while
 * the test runs): lo up, a veth pair kst0/kst1, and on kst0 the "remote"
 * addresses peers listen on (192.0.2.1, 192.0.2.2, the resolver 192.0.2.53,
 * 198.51.100.7 and .200, 2001:db8::1, ::2 and ::53). Addresses on a local
 * device are local, so traffic between them never leaves the namespace, yet
 * to the data plane they are not loopback: they stand for the internet.
 * karsd runs in the root namespace; cgroup hooks do not care.
 */
#ifndef KST_NETNS_H
#define KST_NETNS_H

#include <stdbool.h>

struct kst_env;

/* Runs a shell command quietly (its output only with -v); returns the exit
 * status, or -1 when it could not run. */
int kst_sys(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

int kst_netns_create(struct kst_env *env);
void kst_netns_destroy(struct kst_env *env);
/* setns() of the calling thread into the named namespace; 0 or -errno. */
int kst_netns_enter(const char *name);
/* Writes a /proc/sys/ value inside the namespace (path below /proc/sys/). */
int kst_netns_sysctl(const char *name, const char *path, const char *value);

#endif
