/* harness.h - the runner of the BPF data-plane selftests, in the style of the
 * kernel's tools/testing/selftests/bpf/test_progs.
 *
 * Tests register with KST_TEST(name) and get a fresh struct kst_env: their own
 * network namespace, their own cgroup subtree and a karsd shared by the whole
 * run. Assertions print and return bool, so a test reads
 *
 *	if (!ASSERT_OK(kst_apply_default(env), "apply"))
 *		goto cleanup;
 *
 * and has one cleanup path. Assertions also work in forked children (the
 * workloads run as real processes): failures are counted in memory shared
 * with every child, so a failed assertion anywhere fails the test. The
 * harness itself undoes what the environment holds (children, sandboxes,
 * cgroups, namespace) after every test, whatever the test did.
 */
#ifndef KST_HARNESS_H
#define KST_HARNESS_H

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

/* The sandbox every test gets: ports and addresses of docs/dataplane-tests.md. */
#define KST_AGENT_UID	  1000
#define KST_ROUTER_UID	  1001
#define KST_OTHER_UID	  1002
#define KST_ROUTER_PORT	  18443 /* non-default, so 8443 -> 18443 is visible */
#define KST_PROXY_PORT	  18444
#define KST_RESOLVER_PORT 5353 /* non-default, so 53 -> 5353 is visible */
#define KST_RESOLVER4	  "192.0.2.53"
#define KST_RESOLVER6	  "2001:db8::53"
#define KST_REMOTE4	  "192.0.2.1"
#define KST_REMOTE4_B	  "192.0.2.2"
#define KST_REMOTE6	  "2001:db8::1"
#define KST_DNS4	  "192.0.2.77"	 /* a server the agent believes in; not assigned */
#define KST_DNS6	  "2001:db8::77" /* same, IPv6 */
#define KST_NET_B	  "198.51.100"	 /* second prefix, for CIDR rules */

#define KST_SCRATCH_SIZE  (64 * 1024)
#define KST_MAX_PIDS	  64
#define KST_MAX_FDS	  64
#define KST_MAX_SANDBOXES 4
#define KST_MAX_CGROUPS	  8

/* Where a child process runs. */
enum kst_role {
	KST_HOST = 0, /* the runner's own cgroup: no kars program applies */
	KST_AGENT,    /* <base>/agent */
	KST_ROUTER,   /* <base>/router */
	KST_OUTSIDE,  /* <base>/outside: a non-sandbox cgroup of the test */
};

/* uid argument of the spawn helpers: stay root. */
#define KST_ROOT 0

struct kst_env {
	int num;
	const char *name;
	char netns[64];		 /* kst-<pid>-<n> */
	char cg_rel[128];	 /* kars-selftest-<pid>-<n>, below the cgroup2 mount */
	char cg_base[PATH_MAX];	 /* absolute */
	char cg_agent[PATH_MAX]; /* absolute paths of the role cgroups */
	char cg_router[PATH_MAX];
	char cg_outside[PATH_MAX];
	char ns_name[64];  /* sandbox namespace part: kst-<pid>-<n> */
	char sandbox[128]; /* the main sandbox: kst-<pid>-<n>/main */
	void *scratch;	   /* KST_SCRATCH_SIZE bytes shared with children */

	/* What the harness undoes after the test. */
	pid_t pids[KST_MAX_PIDS];
	int n_pids;
	char sandboxes[KST_MAX_SANDBOXES][128];
	int n_sandboxes;
	char cgroups[KST_MAX_CGROUPS][PATH_MAX]; /* created, in order */
	int n_cgroups;
	int fds[KST_MAX_FDS]; /* closed after the test */
	int n_fds;
};

typedef void (*kst_test_fn)(struct kst_env *env);

struct kst_test {
	const char *name;
	const char *file;
	int line;
	kst_test_fn fn;
};

/* Registers a test; pointers land in section kst_tests, walked by main(). */
#define KST_TEST(tname)                                                                            \
	static void test_##tname(struct kst_env *env);                                             \
	static struct kst_test kst_def_##tname = {#tname, __FILE__, __LINE__, test_##tname};       \
	static struct kst_test *kst_ptr_##tname __attribute__((used, section("kst_tests"))) =      \
	    &kst_def_##tname;                                                                      \
	static void test_##tname(struct kst_env *env)

/* --- assertions ------------------------------------------------------------ */

bool kst_check(bool ok, const char *file, int line, const char *tag, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* "EPERM", "0", ... for messages. */
const char *kst_errno_name(int e);

#define ASSERT_TRUE(cond, tag)                                                                     \
	({                                                                                         \
		bool ___ok = !!(cond);                                                             \
		kst_check(___ok, __FILE__, __LINE__, tag, "unexpected false: %s", #cond);          \
	})

#define ASSERT_FALSE(cond, tag)                                                                    \
	({                                                                                         \
		bool ___ok = !(cond);                                                              \
		kst_check(___ok, __FILE__, __LINE__, tag, "unexpected true: %s", #cond);           \
	})

#define ASSERT_EQ(actual, expected, tag)                                                           \
	({                                                                                         \
		long long ___a = (long long)(actual), ___e = (long long)(expected);                \
		kst_check(___a == ___e, __FILE__, __LINE__, tag, "%s = %lld, expected %lld",       \
			  #actual, ___a, ___e);                                                    \
	})

#define ASSERT_NEQ(actual, expected, tag)                                                          \
	({                                                                                         \
		long long ___a = (long long)(actual), ___e = (long long)(expected);                \
		kst_check(___a != ___e, __FILE__, __LINE__, tag, "%s = %lld, expected != %lld",    \
			  #actual, ___a, ___e);                                                    \
	})

#define ASSERT_GE(actual, expected, tag)                                                           \
	({                                                                                         \
		long long ___a = (long long)(actual), ___e = (long long)(expected);                \
		kst_check(___a >= ___e, __FILE__, __LINE__, tag, "%s = %lld, expected >= %lld",    \
			  #actual, ___a, ___e);                                                    \
	})

#define ASSERT_GT(actual, expected, tag)                                                           \
	({                                                                                         \
		long long ___a = (long long)(actual), ___e = (long long)(expected);                \
		kst_check(___a > ___e, __FILE__, __LINE__, tag, "%s = %lld, expected > %lld",      \
			  #actual, ___a, ___e);                                                    \
	})

/* res is 0 or a negative errno (the libbpf / libkars convention). */
#define ASSERT_OK(res, tag)                                                                        \
	({                                                                                         \
		long long ___r = (long long)(res);                                                 \
		kst_check(___r == 0, __FILE__, __LINE__, tag, "unexpected error: %lld (%s)", ___r, \
			  ___r < 0 ? kst_errno_name((int)-___r) : "not an errno");                 \
	})

/* got and want are positive errno values, 0 for success: the form every
 * socket helper of net_helpers.h returns. */
#define ASSERT_ERRNO(got, want, tag)                                                               \
	({                                                                                         \
		int ___g = (got), ___w = (want);                                                   \
		kst_check(___g == ___w, __FILE__, __LINE__, tag, "got %s, expected %s",            \
			  kst_errno_name(___g), kst_errno_name(___w));                             \
	})

#define ASSERT_OK_FD(fd, tag)                                                                      \
	({                                                                                         \
		int ___fd = (fd);                                                                  \
		kst_check(___fd >= 0, __FILE__, __LINE__, tag, "invalid fd %d: %s", ___fd,         \
			  kst_errno_name(errno));                                                  \
	})

#define ASSERT_OK_PTR(ptr, tag)                                                                    \
	({                                                                                         \
		const void *___p = (ptr);                                                          \
		kst_check(___p != NULL, __FILE__, __LINE__, tag, "unexpected NULL: %s", #ptr);     \
	})

#define ASSERT_STREQ(actual, expected, tag)                                                        \
	({                                                                                         \
		const char *___a = (actual), *___e = (expected);                                   \
		bool ___ok = ___a && ___e && strcmp(___a, ___e) == 0;                              \
		kst_check(___ok, __FILE__, __LINE__, tag, "%s = \"%s\", expected \"%s\"", #actual, \
			  ___a ? ___a : "(null)", ___e ? ___e : "(null)");                         \
	})

#define ASSERT_STRSTR(haystack, needle, tag)                                                       \
	({                                                                                         \
		const char *___h = (haystack), *___n = (needle);                                   \
		bool ___ok = ___h && ___n && strstr(___h, ___n);                                   \
		kst_check(___ok, __FILE__, __LINE__, tag,                                          \
			  "%s = \"%s\", expected to contain \"%s\"", #haystack,                    \
			  ___h ? ___h : "(null)", ___n ? ___n : "(null)");                         \
	})

/* Always printed: what a reader of the log must know (documented gaps). */
void kst_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Verbose-only progress lines. */
void kst_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Marks the running test skipped (with why); the test should return. */
void kst_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool kst_verbose(void);
/* --expect-lsm: this kernel has BPF LSM active (the VM), so enforcement
 * below "full" is a failure, not a reason to skip. */
bool kst_expect_lsm(void);
/* Whether kst_skip() was called in this test (by any process). */
bool kst_skipped(void);

/* --- processes ------------------------------------------------------------- */

/* A child body: runs in its cgroup and netns, with its UID. Returns 0 for
 * success; assertions inside it count for the test either way. */
typedef int (*kst_child_fn)(struct kst_env *env, void *arg);

/* Forks a child that joins the role's cgroup (before it creates any socket),
 * enters the test netns, and drops to uid (gid = uid, no supplementary
 * groups) unless uid is KST_ROOT. comm names it (NULL: "kst-<role>").
 * Returns the pid (tracked: killed after the test) or -errno. */
pid_t kst_spawn(struct kst_env *env, enum kst_role role, uid_t uid, const char *comm,
		kst_child_fn fn, void *arg);
/* The same with an explicit cgroup (absolute path; NULL: the runner's). */
pid_t kst_spawn_cg(struct kst_env *env, const char *cgroup, uid_t uid, const char *comm,
		   kst_child_fn fn, void *arg);
/* Waits at most timeout_ms: 0 when the child exited 0, its exit status when
 * positive, -ETIMEDOUT (the child is then killed) or -errno. */
int kst_wait(struct kst_env *env, pid_t pid, int timeout_ms);
/* spawn + wait (20 s). */
int kst_run(struct kst_env *env, enum kst_role role, uid_t uid, kst_child_fn fn, void *arg);
const char *kst_role_cgroup(const struct kst_env *env, enum kst_role role);
/* Closes fd after the test (peers' report pipes, socketpairs). Returns fd. */
int kst_track_fd(struct kst_env *env, int fd);

/* snprintf that says when it truncated: 0 or -ENAMETOOLONG. */
int kst_fmt(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Sleeps ms milliseconds (bounded waits and polling loops only). */
void kst_msleep(int ms);
uint64_t kst_now_ms(void);

/* The run's settings. */
const char *kst_cgroup2(void);

#endif
