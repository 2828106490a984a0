/* harness.c - main() of build/tests/bpf_selftests: registry, assertions,
 * per-test environment, child processes.
 *
 *	bpf_selftests --karsd build/bin/karsd [-t NAME_GLOB]... [-v] [-l]
 *
 * Every selected test runs in its own netns and cgroup subtree against one
 * karsd of the run; the last line is "bpf: N passed, N failed, N skipped" and
 * the exit status is non-zero when anything failed. The environment is
 * undone after each test even when the test failed halfway, and a run that
 * cannot set up at all (not root, no karsd) fails every test rather than
 * passing vacuously.
 */
#include "harness.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <getopt.h>
#include <grp.h>
#include <mntent.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup_helpers.h"
#include "karsd_proc.h"
#include "netns.h"

/* Counts shared with every child of the running test. */
struct kst_shared {
	int fails;
	int asserts;
	int skipped;
	char skip_reason[256];
	char scratch[KST_SCRATCH_SIZE];
};

extern struct kst_test *__start_kst_tests[];
extern struct kst_test *__stop_kst_tests[];

static struct {
	bool verbose;
	bool list;
	bool expect_lsm;
	const char *karsd;
	const char *socket_cgroup;
	const char *globs[32];
	int n_globs;
	char cgroup2[PATH_MAX];
	const char *current;
	pid_t runner;
} opts;

static struct kst_shared *shared;

bool kst_verbose(void)
{
	return opts.verbose;
}

bool kst_expect_lsm(void)
{
	return opts.expect_lsm;
}

bool kst_skipped(void)
{
	return shared->skipped;
}

const char *kst_cgroup2(void)
{
	return opts.cgroup2;
}

uint64_t kst_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void kst_msleep(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

int kst_fmt(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

const char *kst_errno_name(int e)
{
	static __thread char buf[32];
	const char *name;

	if (e == 0)
		return "0 (success)";
	name = strerrorname_np(e);
	if (name)
		return name;
	snprintf(buf, sizeof(buf), "errno %d", e);
	return buf;
}

static const char *who(char *buf, size_t len)
{
	if (getpid() == opts.runner)
		return "";
	snprintf(buf, len, " [pid %d uid %d]", (int)getpid(), (int)getuid());
	return buf;
}

bool kst_check(bool ok, const char *file, int line, const char *tag, const char *fmt, ...)
{
	const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
	char msg[768], w[48];
	va_list ap;

	__atomic_fetch_add(&shared->asserts, 1, __ATOMIC_RELAXED);
	if (ok) {
		if (opts.verbose)
			printf("  %s:%d: PASS %s%s\n", base, line, tag, who(w, sizeof(w)));
		return true;
	}
	__atomic_fetch_add(&shared->fails, 1, __ATOMIC_RELAXED);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	printf("  %s:%d: FAIL %s: %s%s\n", base, line, tag, msg, who(w, sizeof(w)));
	return false;
}

void kst_note(const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	printf("  NOTE: %s\n", msg);
}

void kst_log(const char *fmt, ...)
{
	char msg[1024], w[48];
	va_list ap;

	if (!opts.verbose)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	printf("  %s%s\n", msg, who(w, sizeof(w)));
}

void kst_skip(const char *fmt, ...)
{
	va_list ap;

	shared->skipped = 1;
	va_start(ap, fmt);
	vsnprintf(shared->skip_reason, sizeof(shared->skip_reason), fmt, ap);
	va_end(ap);
}

/* --- processes ------------------------------------------------------------- */

const char *kst_role_cgroup(const struct kst_env *env, enum kst_role role)
{
	switch (role) {
	case KST_AGENT:
		return env->cg_agent;
	case KST_ROUTER:
		return env->cg_router;
	case KST_OUTSIDE:
		return env->cg_outside;
	default:
		return NULL;
	}
}

static const char *role_name(enum kst_role role)
{
	static const char *const names[] = {"host", "agent", "router", "outside"};

	return names[role];
}

pid_t kst_spawn_cg(struct kst_env *env, const char *cgroup, uid_t uid, const char *comm,
		   kst_child_fn fn, void *arg)
{
	pid_t pid;

	if (env->n_pids == KST_MAX_PIDS)
		return -E2BIG;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int ret;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		if (comm)
			prctl(PR_SET_NAME, comm);
		/* Cgroup first: every socket this process creates must be born
		 * in the role's cgroup. */
		if (cgroup && !ASSERT_OK(kst_cgroup_join(cgroup), "join cgroup"))
			_exit(100);
		if (!ASSERT_OK(kst_netns_enter(env->netns), "enter netns"))
			_exit(101);
		if (uid != KST_ROOT) {
			if (!ASSERT_OK(setgroups(0, NULL) ? -errno : 0, "setgroups") ||
			    !ASSERT_OK(setresgid(uid, uid, uid) ? -errno : 0, "setresgid") ||
			    !ASSERT_OK(setresuid(uid, uid, uid) ? -errno : 0, "setresuid"))
				_exit(102);
		}
		ret = fn(env, arg);
		fflush(stdout);
		/* _exit: never run the runner's atexit handlers in a child. */
		_exit(ret ? 1 : 0);
	}
	env->pids[env->n_pids++] = pid;
	return pid;
}

pid_t kst_spawn(struct kst_env *env, enum kst_role role, uid_t uid, const char *comm,
		kst_child_fn fn, void *arg)
{
	char name[16];

	if (!comm) {
		snprintf(name, sizeof(name), "kst-%s", role_name(role));
		comm = name;
	}
	return kst_spawn_cg(env, kst_role_cgroup(env, role), uid, comm, fn, arg);
}

int kst_track_fd(struct kst_env *env, int fd)
{
	if (fd >= 0 && env->n_fds < KST_MAX_FDS)
		env->fds[env->n_fds++] = fd;
	return fd;
}

static void forget_pid(struct kst_env *env, pid_t pid)
{
	for (int i = 0; i < env->n_pids; i++) {
		if (env->pids[i] == pid) {
			env->pids[i] = env->pids[--env->n_pids];
			return;
		}
	}
}

int kst_wait(struct kst_env *env, pid_t pid, int timeout_ms)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	int status, ret;

	if (pid <= 0)
		return -ESRCH;
	if (pidfd >= 0) {
		struct pollfd p = {.fd = pidfd, .events = POLLIN};

		ret = poll(&p, 1, timeout_ms);
		close(pidfd);
		if (ret == 0) {
			printf("  child %d still running after %d ms: killed\n", (int)pid,
			       timeout_ms);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			forget_pid(env, pid);
			return -ETIMEDOUT;
		}
	}
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	forget_pid(env, pid);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	printf("  child %d killed by signal %d\n", (int)pid, WTERMSIG(status));
	return -EINTR;
}

int kst_run(struct kst_env *env, enum kst_role role, uid_t uid, kst_child_fn fn, void *arg)
{
	pid_t pid = kst_spawn(env, role, uid, NULL, fn, arg);

	if (pid < 0)
		return pid;
	return kst_wait(env, pid, 20000);
}

/* --- per-test environment -------------------------------------------------- */

static int env_setup(struct kst_env *env)
{
	int ret;

	snprintf(env->netns, sizeof(env->netns), "kst-%d-%d", (int)getpid(), env->num);
	snprintf(env->ns_name, sizeof(env->ns_name), "kst-%d-%d", (int)getpid(), env->num);
	snprintf(env->sandbox, sizeof(env->sandbox), "%s/main", env->ns_name);
	snprintf(env->cg_rel, sizeof(env->cg_rel), "kars-selftest-%d-%d", (int)getpid(), env->num);
	ret = kst_fmt(env->cg_base, sizeof(env->cg_base), "%s/%s", opts.cgroup2, env->cg_rel);
	if (ret)
		return ret;
	ret = kst_cgroup_create(env, NULL, env->cg_base, sizeof(env->cg_base));
	if (!ret)
		ret = kst_cgroup_create(env, "agent", env->cg_agent, sizeof(env->cg_agent));
	if (!ret)
		ret = kst_cgroup_create(env, "router", env->cg_router, sizeof(env->cg_router));
	if (!ret)
		ret = kst_cgroup_create(env, "outside", env->cg_outside, sizeof(env->cg_outside));
	if (ret) {
		printf("  setup: cgroups under %s: %s\n", env->cg_base, strerror(-ret));
		return ret;
	}
	ret = kst_netns_create(env);
	if (ret) {
		printf("  setup: netns %s: %s\n", env->netns, strerror(-ret));
		return ret;
	}
	return 0;
}

/* Undoes the environment: children, processes left in the cgroups, the
 * sandboxes (whose removal is checked: it is part of the API), cgroups,
 * namespace. */
static void env_teardown(struct kst_env *env)
{
	for (int i = 0; i < env->n_pids; i++) {
		int status;

		kill(env->pids[i], SIGKILL);
		waitpid(env->pids[i], &status, 0);
	}
	env->n_pids = 0;
	for (int i = 0; i < env->n_fds; i++)
		close(env->fds[i]);
	env->n_fds = 0;
	for (int i = env->n_cgroups - 1; i >= 0; i--)
		kst_cgroup_kill(env->cgroups[i]);
	for (int i = 0; i < env->n_sandboxes; i++) {
		char err[512];
		int ret = kst_remove(env->sandboxes[i], err, sizeof(err));

		/* A test may have removed it itself. */
		if (ret && !strstr(err, "not found"))
			ASSERT_OK(ret, "teardown: remove sandbox");
		if (ret && !strstr(err, "not found"))
			printf("  remove %s: %s\n", env->sandboxes[i], err);
	}
	env->n_sandboxes = 0;
	kst_cgroup_destroy_all(env);
	kst_netns_destroy(env);
}

/* --- main ---------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f, "usage: bpf_selftests --karsd PATH [--socket-cgroup MODE] [--expect-lsm] "
		   "[-t NAME_GLOB]... [-v] [-l]\n"
		   "  --karsd PATH   the karsd binary to test (started once per run)\n"
		   "  --socket-cgroup auto|socket|stamp  passed to karsd: which build of the\n"
		   "                 verdict hooks to test (stamp: the one for pre-6.2 kernels)\n"
		   "  --expect-lsm   karsd must enforce at level full (BPF LSM): the LSM tests\n"
		   "                 fail instead of skipping below it (make vmtest)\n"
		   "  -t GLOB        run only tests whose name matches (repeatable)\n"
		   "  -v             print every assertion and karsd's log tail on failure\n"
		   "  -l             list the tests and exit\n");
}

/* Link order of the files, source order within each. */
static int cmp_tests(const void *a, const void *b)
{
	const struct kst_test *x = *(struct kst_test *const *)a, *y = *(struct kst_test *const *)b;
	int c = strcmp(x->file, y->file);

	return c ? c : x->line - y->line;
}

static bool selected(const struct kst_test *t)
{
	if (!opts.n_globs)
		return true;
	for (int i = 0; i < opts.n_globs; i++)
		if (fnmatch(opts.globs[i], t->name, 0) == 0)
			return true;
	return false;
}

/* Mounts bpffs at /sys/fs/bpf unless one is there: mounting over an existing
 * one would hide every pin on the node. */
static int bpffs_ensure(void)
{
	struct mntent *m;
	bool found = false;
	FILE *f = setmntent("/proc/mounts", "r");

	if (!f)
		return -errno;
	while ((m = getmntent(f)))
		found |= strcmp(m->mnt_dir, "/sys/fs/bpf") == 0 && strcmp(m->mnt_type, "bpf") == 0;
	endmntent(f);
	if (found)
		return 0;
	return mount("bpf", "/sys/fs/bpf", "bpf", 0, NULL) ? -errno : 0;
}

static int global_setup(char *why, size_t len)
{
	int ret;

	if (geteuid() != 0) {
		snprintf(why, len, "needs root (netns, cgroups, BPF)");
		return -EPERM;
	}
	ret = kst_cgroup2_find(opts.cgroup2, sizeof(opts.cgroup2));
	if (ret) {
		snprintf(why, len, "no cgroup v2 mount in /proc/mounts");
		return ret;
	}
	ret = bpffs_ensure();
	if (ret) {
		snprintf(why, len, "no bpffs at /sys/fs/bpf and mounting one failed: %s",
			 strerror(-ret));
		return ret;
	}
	if (!opts.karsd) {
		snprintf(why, len, "--karsd not given");
		return -EINVAL;
	}
	ret = kst_karsd_setup(opts.karsd);
	if (ret) {
		snprintf(why, len, "karsd binary %s: %s", opts.karsd, strerror(-ret));
		return ret;
	}
	ret = kst_karsd_start();
	if (ret) {
		snprintf(why, len, "karsd did not start (%s); log: %s", strerror(-ret),
			 kst_karsd_log());
		kst_karsd_print_log_tail(30);
		return ret;
	}
	return 0;
}

static volatile sig_atomic_t interrupted;

/* SIGINT/SIGTERM: finish the running test (every wait is bounded), undo its
 * environment, stop. */
static void on_interrupt(int sig)
{
	interrupted = sig;
}

static void on_alarm(int sig)
{
	static const char msg[] = "watchdog: a test ran for 300 s; aborting the run\n";

	if (write(STDOUT_FILENO, msg, sizeof(msg) - 1) < 0) {
		/* nothing left to do */
	}
	_exit(3);
}

int main(int argc, char **argv)
{
	static const struct option long_opts[] = {
	    {"karsd", required_argument, NULL, 'k'},
	    {"socket-cgroup", required_argument, NULL, 'c'},
	    {"expect-lsm", no_argument, NULL, 'e'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int passed = 0, failed = 0, skipped = 0, num = 0, opt;
	size_t n_tests;
	bool setup_ok;
	char why[512] = "";

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt_long(argc, argv, "t:vlh", long_opts, NULL)) != -1) {
		switch (opt) {
		case 'k':
			opts.karsd = optarg;
			break;
		case 'c':
			opts.socket_cgroup = optarg;
			kst_karsd_set_socket_cgroup(optarg);
			break;
		case 'e':
			opts.expect_lsm = true;
			break;
		case 't':
			if (opts.n_globs < 32)
				opts.globs[opts.n_globs++] = optarg;
			break;
		case 'v':
			opts.verbose = true;
			break;
		case 'l':
			opts.list = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	n_tests = (size_t)(__stop_kst_tests - __start_kst_tests);
	qsort(__start_kst_tests, n_tests, sizeof(*__start_kst_tests), cmp_tests);
	if (opts.list) {
		for (size_t i = 0; i < n_tests; i++)
			if (selected(__start_kst_tests[i]))
				printf("%s\n", __start_kst_tests[i]->name);
		return 0;
	}
	opts.runner = getpid();
	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, on_alarm);
	{
		struct sigaction sa = {.sa_handler = on_interrupt, .sa_flags = SA_RESTART};

		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
	}
	shared =
	    mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED) {
		perror("mmap");
		return 1;
	}

	setup_ok = global_setup(why, sizeof(why)) == 0;
	if (!setup_ok)
		printf("setup failed: %s\n", why);

	for (struct kst_test **tp = __start_kst_tests; tp < __stop_kst_tests; tp++) {
		const struct kst_test *t = *tp;
		struct kst_env env = {.num = ++num, .name = t->name};

		if (!selected(t))
			continue;
		if (interrupted) {
			printf("#%d %s:FAIL (run interrupted by signal %d)\n", num, t->name,
			       (int)interrupted);
			failed++;
			continue;
		}
		memset(shared, 0, sizeof(*shared));
		opts.current = t->name;
		if (!setup_ok) {
			printf("#%d %s:FAIL (%s)\n", num, t->name, why);
			failed++;
			continue;
		}
		env.scratch = shared->scratch;
		alarm(300);
		if (!kst_karsd_running()) {
			/* A previous test left it dead: start it again (a stale
			 * socket from a SIGKILL is karsd's to replace). */
			int ret = kst_karsd_start();

			if (!ASSERT_OK(ret, "karsd (re)start before the test"))
				kst_karsd_print_log_tail(30);
		}
		if (shared->fails == 0 && env_setup(&env) == 0)
			t->fn(&env);
		else
			shared->fails++;
		env_teardown(&env);
		alarm(0);
		if (shared->fails) {
			printf("#%d %s:FAIL\n", num, t->name);
			if (opts.verbose)
				kst_karsd_print_log_tail(20);
			failed++;
		} else if (shared->skipped) {
			printf("#%d %s:SKIP (%s)\n", num, t->name, shared->skip_reason);
			skipped++;
		} else {
			printf("#%d %s:OK\n", num, t->name);
			passed++;
		}
	}
	if (setup_ok) {
		kst_karsd_teardown(failed > 0);
		if (failed)
			printf("karsd log kept: %s\n", kst_karsd_log());
	}
	printf("bpf%s%s%s: %d passed, %d failed, %d skipped\n", opts.socket_cgroup ? "[" : "",
	       opts.socket_cgroup ? opts.socket_cgroup : "", opts.socket_cgroup ? "]" : "", passed,
	       failed, skipped);
	return failed ? 1 : 0;
}
