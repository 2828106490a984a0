/* test_local_sandbox.c - a local sandbox's agent, as a real process with a
 * real UID on this host, tries what it must not be able to do.
 *
 * Each test launches build/tests/local_probe through the same spec the local
 * backend uses (kars_local_agent_spec), with the kars-strict profile, and
 * the probe exits 0 only when every attempt was refused the expected way
 * (and its positive controls worked). Root only (cgroups, namespaces, UID
 * changes): CI runs as root; elsewhere the tests are skipped, not passed.
 * Also the parts that need no root: the UID allocator, the environment, the
 * seccomp table and its JSON (deploy/seccomp/kars-strict.json must be what
 * the table renders: run `build/tests/unit/test_local_sandbox --write-seccomp
 * deploy/seccomp/kars-strict.json` after changing the table).
 */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <sched.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup2.h"
#include "local_env.h"
#include "local_launch.h"
#include "local_sandbox.h"
#include "local_seccomp.h"
#include "local_supervise.h"
#include "local_uid.h"

static char probe[PATH_MAX + 16];
static char host_tmp[64];
/* A supervisor a test forked: teardown kills it when the test failed before
 * stopping it, so no orphan keeps running (and holding the runner's pipe). */
static pid_t sup_pid;
static struct sock_fprog strict;

struct fixture {
	char state[64];
	struct kars_local_sandbox sb;
	char **env;
	char log[PATH_MAX + 16];
};

static void unlink_probe(void)
{
	unlink(probe);
}

/* The probe is build/tests/local_probe, copied to /var/tmp: the sandbox's view
 * has a private /tmp, so from a checkout under /tmp the agent could not see
 * the build tree's copy. */
static void find_probe(void)
{
	char exe[PATH_MAX], src[PATH_MAX + 16], buf[65536];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	int in, out;

	if (probe[0])
		return;
	assert_true(n > 0);
	exe[n] = '\0';
	*strrchr(exe, '/') = '\0'; /* .../tests/unit */
	*strrchr(exe, '/') = '\0'; /* .../tests */
	/* The ASan build's probe is the same program, built without ASan. */
	snprintf(src, sizeof(src), "%s/local_probe", exe);
	snprintf(probe, sizeof(probe), "/var/tmp/kars-local-probe-%d", (int)getpid());
	in = open(src, O_RDONLY | O_CLOEXEC);
	assert_true(in >= 0);
	out = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	assert_true(out >= 0);
	atexit(unlink_probe);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(out, buf, (size_t)n), n);
	assert_int_equal(n, 0);
	close(in);
	assert_int_equal(close(out), 0);
	assert_int_equal(access(probe, X_OK), 0);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct kars_uid_range r = {KARS_UID_FIRST, KARS_UID_LAST, NULL, NULL};
	struct kars_err err = {0};
	char ns[32], secret[PATH_MAX + 16];
	int fd;

	if (geteuid() != 0)
		skip();
	find_probe();
	if (!strict.filter)
		assert_int_equal(kars_seccomp_compile(&strict, &err), 0);
	snprintf(f->state, sizeof(f->state), "/var/tmp/kars-local-test-XXXXXX");
	assert_non_null(mkdtemp(f->state));
	chmod(f->state, 0711);
	snprintf(ns, sizeof(ns), "test-%d", (int)getpid());
	if (kars_local_sandbox_create(f->state, &r, ns, "sbx", &f->sb, &err))
		fail_msg("create: %s", err.msg);
	/* A router secret and a world-readable kars state file. */
	snprintf(secret, sizeof(secret), "%s/secret", f->sb.router_dir);
	fd = open(secret, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "sk-router", 9), 9);
	assert_int_equal(fchown(fd, f->sb.router_uid, f->sb.router_uid), 0);
	close(fd);
	chmod(f->state, 0755);
	snprintf(host_tmp, sizeof(host_tmp), "/tmp/kars-host-marker-%d", (int)getpid());
	fd = open(host_tmp, O_WRONLY | O_CREAT, 0644);
	close(fd);
	assert_int_equal(kars_local_env_build(NULL, &f->env, &err), 0);
	snprintf(f->log, sizeof(f->log), "%s/agent.log", f->sb.log_dir);
	*state = f;
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void rm_rf(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	struct kars_err err = {0};

	if (!f)
		return 0;
	if (sup_pid > 0) {
		kill(sup_pid, SIGKILL);
		waitpid(sup_pid, NULL, 0);
		sup_pid = 0;
	}
	if (kars_local_sandbox_remove(&f->sb, &err))
		fprintf(stderr, "remove: %s\n", err.msg);
	kars_local_env_free(f->env);
	unlink(host_tmp);
	rm_rf(f->state);
	free(f);
	return 0;
}

static void dump_log(const char *path)
{
	char buf[4096];
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, (size_t)n, stderr);
	close(fd);
}

/* Runs the probe as the agent; its exit status. */
static int run_agent(struct fixture *f, const struct sock_fprog *prog, char **args)
{
	struct kars_local_spec spec;
	struct kars_err err = {0};
	char *argv[16] = {probe};
	int fd, st, i;
	pid_t pid;

	for (i = 0; args[i] && i < 14; i++)
		argv[i + 1] = args[i];
	fd = open(f->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	kars_local_agent_spec(&f->sb, argv, f->env, prog, fd, &spec);
	if (kars_local_launch(&spec, &pid, &err))
		fail_msg("launch: %s", err.msg);
	close(fd);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (prog && (!WIFEXITED(st) || WEXITSTATUS(st) != 0))
		dump_log(f->log);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

#define RUN(f, ...) run_agent(f, &strict, (char *[]){__VA_ARGS__, NULL})

static void test_sockets_denied(void **state)
{
	assert_int_equal(RUN(*state, "sockets"), 0);
}

/* Without the profile the same probe fails: the test sees the protection. */
static void test_sockets_need_the_profile(void **state)
{
	assert_int_not_equal(run_agent(*state, NULL, (char *[]){"sockets", NULL}), 0);
}

static void test_escapes_denied(void **state)
{
	assert_int_equal(RUN(*state, "escapes"), 0);
	assert_int_not_equal(run_agent(*state, NULL, (char *[]){"escapes", NULL}), 0);
}

static void test_no_new_privs_and_seccomp(void **state)
{
	assert_int_equal(RUN(*state, "status"), 0);
}

static void test_state_and_secrets_hidden(void **state)
{
	struct fixture *f = *state;
	char secret[PATH_MAX + 16], uids[PATH_MAX];

	snprintf(secret, sizeof(secret), "%s/secret", f->sb.router_dir);
	snprintf(uids, sizeof(uids), "%s/uids", f->state);
	/* The probe itself sees them when they are there (outside a view). */
	assert_int_equal(access(uids, R_OK), 0);
	assert_int_equal(RUN(f, "hidden", secret, uids, f->sb.router_dir, f->sb.run_dir), 0);
}

static void test_filesystem_view(void **state)
{
	struct fixture *f = *state;
	char written[PATH_MAX + 32];

	assert_int_equal(RUN(f, "fs", host_tmp), 0);
	/* What the agent wrote to /sandbox is in its host directory. */
	snprintf(written, sizeof(written), "%s/probe-write", f->sb.sandbox_dir);
	assert_int_equal(access(written, F_OK), 0);
}

static void test_environment(void **state)
{
	struct fixture *f = *state;
	char *args[24] = {"env"};
	int n = 1;

	setenv("OPENAI_API_KEY", "sk-from-the-supervisor", 1);
	for (char **e = f->env; *e && n < 22; e++)
		args[n++] = *e;
	args[n] = NULL;
	assert_int_equal(run_agent(f, &strict, args), 0);
	unsetenv("OPENAI_API_KEY");
	for (char **e = f->env; *e; e++)
		assert_false(kars_local_env_is_credential(*e));
}

static void test_identity_cgroup_pidns(void **state)
{
	struct fixture *f = *state;
	char uid[16], gid[16], host_pid[16], cg2[PATH_MAX];
	struct kars_err err = {0};

	assert_int_equal(kars_cgroup2_find(cg2, sizeof(cg2), &err), 0);
	snprintf(uid, sizeof(uid), "%u", (unsigned)f->sb.agent_uid);
	snprintf(gid, sizeof(gid), "%u", (unsigned)f->sb.agent_uid);
	snprintf(host_pid, sizeof(host_pid), "%d", (int)getpid());
	assert_int_equal(RUN(f, "identity", uid, gid, f->sb.cg_agent + strlen(cg2), host_pid), 0);
}

/* The router writes its own directory, sees the rest read-only, and does
 * not see the agent's /sandbox data or the rest of kars' state. */
static void test_router_view(void **state)
{
	struct fixture *f = *state;
	struct kars_local_spec spec;
	struct kars_err err = {0};
	char uids[PATH_MAX], written[PATH_MAX + 32];
	char *argv[] = {probe, "router", f->sb.router_dir, f->sb.sandbox_dir, uids, NULL};
	int fd, st;
	pid_t pid;
	struct stat sb;

	snprintf(uids, sizeof(uids), "%s/uids", f->state);
	fd = open(f->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	kars_local_router_spec(&f->sb, argv, f->env, fd, &spec);
	if (kars_local_launch(&spec, &pid, &err))
		fail_msg("launch: %s", err.msg);
	close(fd);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		dump_log(f->log);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	snprintf(written, sizeof(written), "%s/probe-state", f->sb.router_dir);
	assert_int_equal(stat(written, &sb), 0);
	assert_int_equal(sb.st_uid, f->sb.router_uid);
	/* Its directory is closed to every other UID (the agent's included). */
	assert_int_equal(stat(f->sb.router_dir, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	assert_int_equal(sb.st_uid, f->sb.router_uid);
	assert_int_not_equal(f->sb.router_uid, f->sb.agent_uid);
}

/* A failing step fails the launch, and nothing is left running. */
static void test_launch_fails_closed(void **state)
{
	struct fixture *f = *state;
	struct kars_local_spec spec;
	struct kars_err err = {0};
	char *argv[] = {"/nonexistent/agent", NULL};
	pid_t pid = 0;

	kars_local_agent_spec(&f->sb, argv, f->env, &strict, -1, &spec);
	assert_int_not_equal(kars_local_launch(&spec, &pid, &err), 0);
	assert_err_contains(&err, "exec /nonexistent/agent");
	spec.argv = (char *[]){probe, "sleep", NULL};
	spec.mounts[spec.n_mounts++] =
	    (struct kars_local_mount){KARS_MNT_RW, "/nonexistent-src", "/x"};
	assert_int_not_equal(kars_local_launch(&spec, &pid, &err), 0);
	assert_int_equal(kars_cgroup_kill(f->sb.cg_agent, &err), 0);
	spec.uid = 0;
	kars_err_clear(&err);
	assert_int_equal(kars_local_launch(&spec, &pid, &err), -EINVAL);
	assert_err_contains(&err, "uid or gid 0");
}

/* Removal leaves no cgroup, process, directory or UID behind. */
static void test_removal(void **state)
{
	struct fixture *f = *state;
	struct kars_local_spec spec;
	struct kars_err err = {0};
	char *argv[] = {probe, "sleep", NULL};
	uid_t uid;
	pid_t pid;

	kars_local_agent_spec(&f->sb, argv, f->env, &strict, -1, &spec);
	if (kars_local_launch(&spec, &pid, &err))
		fail_msg("launch: %s", err.msg);
	assert_int_equal(kars_cgroup_has_pid(f->sb.cg_agent, pid), 1);
	if (kars_local_sandbox_remove(&f->sb, &err))
		fail_msg("remove: %s", err.msg);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	assert_int_equal(access(f->sb.cgroup, F_OK), -1);
	assert_int_equal(access(f->sb.dir, F_OK), -1);
	assert_int_equal(kars_uid_lookup(f->state, f->sb.owner, &uid, NULL), -ENOENT);
}

/* --- supervisor ---------------------------------------------------------- */

static void sup_child(struct fixture *f, struct kars_sup_child *c, char **argv)
{
	memset(c, 0, sizeof(*c));
	kars_local_agent_spec(&f->sb, argv, f->env, &strict, -1, &c->spec);
	snprintf(c->pid_file, sizeof(c->pid_file), "%s/agent.pid", f->sb.run_dir);
	snprintf(c->log_file, sizeof(c->log_file), "%s/agent.log", f->sb.log_dir);
}

/* Waits for the child to exit and reports it at virtual time now. */
static void reap(struct kars_sup *s, double now)
{
	int st;
	pid_t pid = waitpid(s->child[0]->pid, &st, 0);

	assert_true(kars_sup_exited(s, pid, st, now));
}

/* A crashing agent is restarted after 1 s, then 2 s, 4 s ... 30 s at most,
 * and after a stable minute after 1 s again; driven on a virtual clock. */
static void test_restart_backoff(void **state)
{
	struct fixture *f = *state;
	struct kars_sup_child c;
	struct kars_sup s = {{&c}, 1};
	struct kars_err err = {0};
	char *argv[] = {probe, "exit", "3", NULL};
	double next, t = 100;
	unsigned delays[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000};

	sup_child(f, &c, argv);
	assert_int_equal(kars_sup_start(&c, t, &err), 0);
	assert_int_equal(access(c.pid_file, F_OK), 0);
	for (size_t i = 0; i < sizeof(delays) / sizeof(delays[0]); i++) {
		reap(&s, t);
		assert_int_equal(WEXITSTATUS(c.last_status), 3);
		assert_int_equal(c.backoff_ms, delays[i]);
		assert_int_equal(access(c.pid_file, F_OK), -1); /* not running: no pid file */
		/* Just before the delay: not started. */
		assert_int_equal(kars_sup_tick(&s, t + delays[i] / 1000.0 - 0.01, &next, &err), 0);
		assert_int_equal(c.pid, 0);
		assert_true(next > 0 && next <= 0.011);
		t += delays[i] / 1000.0;
		assert_int_equal(kars_sup_tick(&s, t, &next, &err), 0);
		assert_true(c.pid > 0);
		assert_int_equal(c.restarts, i + 1);
	}
	/* A run of a stable minute resets the delay. */
	reap(&s, t + KARS_BACKOFF_STABLE_S);
	assert_int_equal(c.backoff_ms, KARS_BACKOFF_FIRST_MS);
	/* The log file got the child's output (the probe prints nothing on
	 * exit 3, so check it exists and belongs to root, not the agent). */
	struct stat st;
	assert_int_equal(stat(c.log_file, &st), 0);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_mode & 0777, 0600);
}

/* SIGTERM to the supervisor stops its children and leaves no process and
 * no pid file. */
static void test_supervisor_sigterm(void **state)
{
	struct fixture *f = *state;
	struct kars_sup_child *c =
	    mmap(NULL, sizeof(*c), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	char *argv[] = {probe, "sleep", NULL};
	int st, running = 0;
	pid_t sup, agent;

	assert_true(c != MAP_FAILED);
	sup_child(f, c, argv);
	sup = fork();
	if (sup == 0) {
		struct kars_sup s = {{c}, 1};
		struct kars_err err = {0};

		_exit(kars_sup_run(&s, 2.0, &err) == 0 ? 0 : 1);
	}
	sup_pid = sup;
	/* Until the agent runs: its pid file appears (bounded wait). */
	for (int i = 0; i < 1500 && !running; i++) {
		running = access(c->pid_file, F_OK) == 0 &&
			  kars_cgroup_has_pid(f->sb.cg_agent, c->pid) == 1;
		if (!running)
			usleep(10000);
	}
	assert_true(running);
	agent = c->pid;
	assert_int_equal(kill(sup, SIGTERM), 0);
	assert_int_equal(waitpid(sup, &st, 0), sup);
	sup_pid = 0;
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(access(c->pid_file, F_OK), -1);
	/* SIGTERM reached the program (the supervisor's blocked signals are
	 * not inherited), before the grace period's SIGKILL. */
	assert_true(WIFEXITED(c->last_status));
	assert_int_equal(WEXITSTATUS(c->last_status), 128 + SIGTERM);
	/* The cgroup is empty: no agent survived its supervisor. */
	assert_int_equal(kars_cgroup_kill(f->sb.cg_agent, NULL), 0);
	assert_int_equal(c->pid, 0);
	assert_int_equal(kill(agent, 0), -1);
	munmap(c, sizeof(*c));
}

/* --- no root needed ------------------------------------------------------- */

static void test_uid_alloc(void **state)
{
	char dir[] = "/tmp/kars-uid-test-XXXXXX", passwd[64], group[64];
	struct kars_uid_range r = {60000, 60009, passwd, group};
	struct kars_err err = {0};
	uid_t a, b, a2, b2;
	FILE *fp;

	assert_non_null(mkdtemp(dir));
	snprintf(passwd, sizeof(passwd), "%s/passwd", dir);
	snprintf(group, sizeof(group), "%s/group", dir);
	fp = fopen(passwd, "w");
	fprintf(fp, "root:x:0:0::/root:/bin/sh\nsvc:x:60001:100::/:/bin/false\n");
	fclose(fp);
	fp = fopen(group, "w");
	fprintf(fp, "grp:x:60004:\n");
	fclose(fp);
	/* 60000-60001 collides with svc's UID, 60004 with grp's GID. */
	assert_int_equal(kars_uid_alloc(dir, &r, "ns/a", &a, &b, &err), 0);
	assert_int_equal(a, 60002);
	assert_int_equal(b, 60003);
	assert_int_equal(kars_uid_alloc(dir, &r, "ns/b", &a2, &b2, &err), 0);
	assert_int_equal(a2, 60006);
	/* Idempotent, and kept across "restarts" (the file). */
	assert_int_equal(kars_uid_alloc(dir, &r, "ns/a", &a2, &b2, &err), 0);
	assert_int_equal(a2, 60002);
	assert_int_equal(kars_uid_alloc(dir, &r, "ns/c", &a2, &b2, &err), 0);
	assert_int_equal(a2, 60008);
	kars_err_clear(&err);
	assert_int_equal(kars_uid_alloc(dir, &r, "ns/d", &a2, &b2, &err), -ENOSPC);
	assert_err_contains(&err, "exhausted");
	/* Freed pairs are reused only once free. */
	kars_err_clear(&err);
	assert_int_equal(kars_uid_release(dir, "ns/b", &err), 0);
	assert_int_equal(kars_uid_alloc(dir, &r, "ns/d", &a2, &b2, &err), 0);
	assert_int_equal(a2, 60006);
	assert_int_equal(kars_uid_alloc(dir, &r, "bad owner", &a2, &b2, &err), -EINVAL);
	/* A corrupt file is an error naming the line, never a fresh start. */
	snprintf(passwd, sizeof(passwd), "%s/uids", dir);
	fp = fopen(passwd, "a");
	fprintf(fp, "garbage\n");
	fclose(fp);
	kars_err_clear(&err);
	assert_int_equal(kars_uid_alloc(dir, &r, "ns/e", &a2, &b2, &err), -EINVAL);
	assert_err_contains(&err, "uids:4");
	(void)state;
	rm_rf(dir);
	assert_int_equal(access(dir, F_OK), -1);
}

static void test_env_build(void **state)
{
	const char *plan[] = {"MODEL=gpt-4o", "DEBUG=1", NULL};
	const char *bad[] = {"GITHUB_TOKEN=ghp_x", NULL};
	const char *override[] = {"OPENAI_BASE_URL=https://api.openai.com/v1", NULL};
	struct kars_err err = {0};
	char **env;
	bool found = false;

	assert_int_equal(kars_local_env_build(plan, &env, &err), 0);
	for (char **e = env; *e; e++)
		found |= strcmp(*e, "OPENAI_BASE_URL=http://127.0.0.1:8443/v1") == 0;
	assert_true(found);
	kars_local_env_free(env);
	assert_int_equal(kars_local_env_build(bad, &env, &err), -EPERM);
	assert_err_contains(&err, "GITHUB_TOKEN looks like a credential");
	kars_err_clear(&err);
	assert_int_equal(kars_local_env_build(override, &env, &err), -EINVAL);
	assert_err_contains(&err, "OPENAI_BASE_URL is set by kars");
	assert_true(kars_local_env_is_credential("AZURE_OPENAI_API_KEY=x"));
	assert_true(kars_local_env_is_credential("aws_secret_access_key"));
	assert_false(kars_local_env_is_credential("MODEL=x"));
	(void)state;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = calloc(1, (size_t)n + 1)) && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

static void test_seccomp_table(void **state)
{
	char *json = kars_seccomp_json(), *disk = slurp("deploy/seccomp/kars-strict.json");

	/* The original's counts: 175 allowed, 41 explicitly denied. */
	assert_int_equal(kars_seccomp_count(KARS_SC_ALLOW), 175);
	assert_int_equal(kars_seccomp_count(KARS_SC_DENY), 41);
	for (size_t i = 0; i < kars_seccomp_table_len; i++)
		for (size_t j = i + 1; j < kars_seccomp_table_len; j++)
			if (strcmp(kars_seccomp_table[i].name, kars_seccomp_table[j].name) == 0)
				fail_msg("%s listed twice", kars_seccomp_table[i].name);
	assert_non_null(json);
	if (!disk || strcmp(json, disk) != 0)
		fail_msg("deploy/seccomp/kars-strict.json differs from the table: run "
			 "build/tests/unit/test_local_sandbox --write-seccomp "
			 "deploy/seccomp/kars-strict.json");
	free(json);
	free(disk);
	(void)state;
}

/* The filter itself, in a root child (which has every capability): the
 * profile, not the missing capability, is what refuses. */
static void test_seccomp_refuses_root(void **state)
{
	struct kars_err err = {0};
	int st;
	pid_t pid;

	if (geteuid() != 0)
		skip();
	if (!strict.filter)
		assert_int_equal(kars_seccomp_compile(&strict, &err), 0);
	pid = fork();
	if (pid == 0) {
		int bad = kars_seccomp_install(&strict) != 0;

		errno = 0;
		bad |= socket(AF_PACKET, SOCK_RAW, 0) >= 0 || errno != EPERM;
		bad |= socket(AF_INET, SOCK_RAW, 1) >= 0 || errno != EPERM;
		bad |= unshare(CLONE_NEWNET) == 0 || errno != EPERM;
		bad |= socket(AF_INET, SOCK_STREAM, 0) < 0;
		_exit(bad);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	(void)state;
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_uid_alloc),
    cmocka_unit_test(test_env_build),
    cmocka_unit_test(test_seccomp_table),
    cmocka_unit_test(test_seccomp_refuses_root),
    cmocka_unit_test_setup_teardown(test_sockets_denied, setup, teardown),
    cmocka_unit_test_setup_teardown(test_sockets_need_the_profile, setup, teardown),
    cmocka_unit_test_setup_teardown(test_escapes_denied, setup, teardown),
    cmocka_unit_test_setup_teardown(test_no_new_privs_and_seccomp, setup, teardown),
    cmocka_unit_test_setup_teardown(test_state_and_secrets_hidden, setup, teardown),
    cmocka_unit_test_setup_teardown(test_filesystem_view, setup, teardown),
    cmocka_unit_test_setup_teardown(test_environment, setup, teardown),
    cmocka_unit_test_setup_teardown(test_identity_cgroup_pidns, setup, teardown),
    cmocka_unit_test_setup_teardown(test_router_view, setup, teardown),
    cmocka_unit_test_setup_teardown(test_launch_fails_closed, setup, teardown),
    cmocka_unit_test_setup_teardown(test_removal, setup, teardown),
    cmocka_unit_test_setup_teardown(test_restart_backoff, setup, teardown),
    cmocka_unit_test_setup_teardown(test_supervisor_sigterm, setup, teardown),
};

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--write-seccomp") == 0) {
		char *json = kars_seccomp_json();
		FILE *f = fopen(argv[2], "w");

		if (!json || !f || fputs(json, f) < 0 || fclose(f)) {
			perror(argv[2]);
			return 1;
		}
		free(json);
		return 0;
	}
	return kars_unit_main(__FILE__, tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
