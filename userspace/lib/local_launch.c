/* local_launch.c - clone3 into the cgroup, the mount and PID namespaces, the
 * privilege drop and the reaper of a local sandbox process (local_launch.h).
 *
 * Between clone3() and exec the child only makes system calls on memory the
 * parent prepared (the host's top-level entries are listed before the
 * clone, the seccomp program is compiled before it): no allocation, so a
 * lock held by another thread of the parent cannot deadlock it.
 */
#include "local_launch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/mount.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "local_seccomp.h"

#define MAX_TOP 64

struct top_entry {
	char name[NAME_MAX + 1];
	char link[PATH_MAX]; /* symlink target, "" for a directory */
};

struct child_ctx {
	const struct kars_local_spec *spec;
	struct top_entry *top;
	int n_top;
	int err_fd;
};

/* Host top-level entries the view does not take from the host. */
static bool skipped(const char *name)
{
	static const char *const skip[] = {".", "..", "proc", "tmp", "sandbox", "lost+found"};

	for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
		if (strcmp(name, skip[i]) == 0)
			return true;
	return false;
}

static int list_top(struct top_entry **out, int *n, struct kars_err *err)
{
	struct top_entry *t = calloc(MAX_TOP, sizeof(*t));
	struct dirent *de;
	DIR *d;

	*n = 0;
	if (!t || !(d = opendir("/"))) {
		free(t);
		return kars_err_set(err, errno ? errno : ENOMEM, "listing /: %s", strerror(errno));
	}
	while ((de = readdir(d)) && *n < MAX_TOP) {
		char path[PATH_MAX];
		struct stat st;
		ssize_t l;

		if (skipped(de->d_name) || strlen(de->d_name) > NAME_MAX)
			continue;
		snprintf(path, sizeof(path), "/%s", de->d_name);
		if (lstat(path, &st))
			continue;
		if (S_ISLNK(st.st_mode)) {
			l = readlink(path, t[*n].link, sizeof(t[*n].link) - 1);
			if (l <= 0)
				continue;
			t[*n].link[l] = '\0';
		} else if (!S_ISDIR(st.st_mode)) {
			continue;
		}
		strcpy(t[*n].name, de->d_name);
		(*n)++;
	}
	closedir(d);
	*out = t;
	return 0;
}

/* The child's error: "step: strerror" into the pipe, then exit. */
static void __attribute__((noreturn)) die(int fd, const char *fmt, ...)
{
	char buf[512];
	int e = errno, n;
	va_list ap;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 64, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if (n > (int)sizeof(buf) - 64)
		n = (int)sizeof(buf) - 64;
	n += snprintf(buf + n, sizeof(buf) - (size_t)n, ": %s", strerror(e));
	if (write(fd, buf, (size_t)n) < 0)
		_exit(125);
	_exit(126);
}

static int mkdir_p(char *path, mode_t mode)
{
	for (char *p = path + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		int r = mkdir(path, mode);
		*p = c;
		if (r && errno != EEXIST)
			return -1;
		if (!c)
			return 0;
	}
}

static int set_ro(const char *path)
{
	struct mount_attr attr = {
	    .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID,
	};

	return (int)syscall(SYS_mount_setattr, AT_FDCWD, path, AT_RECURSIVE, &attr, sizeof(attr));
}

static volatile pid_t reaped_child;

static void forward(int sig)
{
	if (reaped_child > 0)
		kill(reaped_child, sig);
}

/* pid 1 of the new PID namespace: view, privileges, then fork + exec. */
static void __attribute__((noreturn)) child_main(const struct child_ctx *c)
{
	const struct kars_local_spec *s = c->spec;
	char path[PATH_MAX];
	int fd = c->err_fd, null, st;
	struct sigaction sa = {0};
	sigset_t none;
	pid_t pid, w;

	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0 || dup2(null, 0) < 0 || dup2(s->log_fd >= 0 ? s->log_fd : null, 1) < 0 ||
	    dup2(s->log_fd >= 0 ? s->log_fd : null, 2) < 0)
		die(fd, "stdio");
	if (setsid() < 0)
		die(fd, "setsid");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		die(fd, "making / private");
	if (mount("tmpfs", s->root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m"))
		die(fd, "tmpfs root at %s", s->root);
	for (int i = 0; i < c->n_top; i++) {
		snprintf(path, sizeof(path), "%s/%s", s->root, c->top[i].name);
		if (c->top[i].link[0]) {
			if (symlink(c->top[i].link, path))
				die(fd, "symlink %s", path);
			continue;
		}
		char src[NAME_MAX + 2];

		snprintf(src, sizeof(src), "/%s", c->top[i].name);
		if (mkdir(path, 0755) || mount(src, path, NULL, MS_BIND | MS_REC, NULL) ||
		    set_ro(path))
			die(fd, "read-only bind of %s", src);
	}
	snprintf(path, sizeof(path), "%s/proc", s->root);
	if (mkdir(path, 0555) ||
	    mount("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=invisible"))
		die(fd, "new /proc");
	snprintf(path, sizeof(path), "%s/tmp", s->root);
	if (mkdir(path, 01777) ||
	    mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=256m"))
		die(fd, "private /tmp");
	for (int i = 0; i < s->n_mounts; i++) {
		const struct kars_local_mount *m = &s->mounts[i];

		snprintf(path, sizeof(path), "%s%s", s->root, m->dst);
		if (mkdir_p(path, 0755))
			die(fd, "mount point %s", m->dst);
		if (m->kind == KARS_MNT_RW) {
			if (mount(m->src, path, NULL, MS_BIND, NULL) ||
			    mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV,
				  NULL))
				die(fd, "writable bind of %s at %s", m->src, m->dst);
		} else if (m->kind == KARS_MNT_RO) {
			if (mount(m->src, path, NULL, MS_BIND, NULL) || set_ro(path))
				die(fd, "read-only bind of %s at %s", m->src, m->dst);
		} else if (mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV,
				 m->kind == KARS_MNT_HIDE ? "mode=0755,size=64k"
							  : "mode=0700,size=64m")) {
			die(fd, "tmpfs at %s", m->dst);
		}
	}
	/* HIDE tmpfs read-only only now: RW binds may have needed mount points in them. */
	for (int i = 0; i < s->n_mounts; i++) {
		if (s->mounts[i].kind != KARS_MNT_HIDE)
			continue;
		snprintf(path, sizeof(path), "%s%s", s->root, s->mounts[i].dst);
		if (mount(NULL, path, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV,
			  "mode=0755,size=64k"))
			die(fd, "read-only %s", s->mounts[i].dst);
	}
	if (chdir(s->root) || syscall(SYS_pivot_root, ".", ".") || umount2(".", MNT_DETACH) ||
	    chdir("/"))
		die(fd, "pivot_root to %s", s->root);
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "mode=0755"))
		die(fd, "read-only /");
	if (chdir(s->cwd ? s->cwd : "/"))
		die(fd, "chdir %s", s->cwd ? s->cwd : "/");
	if (setgroups(0, NULL) || setresgid(s->gid, s->gid, s->gid) ||
	    setresuid(s->uid, s->uid, s->uid))
		die(fd, "dropping to uid %u", (unsigned)s->uid);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		die(fd, "no_new_privs");
	if (s->seccomp && (errno = -kars_seccomp_install(s->seccomp)))
		die(fd, "seccomp");
	/* Only the error pipe and stdio stay open, and none of them past exec. */
	if (syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC))
		die(fd, "close_range");

	sa.sa_handler = forward;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	/* A supervisor blocks SIGTERM, SIGINT and SIGCHLD to wait for them:
	 * the mask is inherited, and would keep the reaper from forwarding and
	 * the program from ever seeing SIGTERM. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	pid = fork();
	if (pid < 0)
		die(fd, "fork");
	if (pid == 0) {
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		execve(s->argv[0], s->argv, s->envp);
		die(fd, "exec %s", s->argv[0]);
	}
	reaped_child = pid;
	close(fd);
	for (;;) {
		w = wait(&st);
		if (w == pid)
			_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
		if (w < 0 && errno != EINTR)
			_exit(125);
	}
}

int kars_local_launch(const struct kars_local_spec *s, pid_t *out, struct kars_err *err)
{
	struct clone_args args = {0};
	struct child_ctx c = {.spec = s};
	int pipefd[2] = {-1, -1}, cgfd = -1, ret, st;
	char msg[512];
	ssize_t n;
	pid_t pid;

	if (!s->argv || !s->argv[0] || s->argv[0][0] != '/' || !s->envp || !s->root || !s->cgroup)
		return kars_err_set(err, EINVAL,
				    "%s: argv[0] must be an absolute path, and "
				    "envp, root and cgroup set",
				    s->name);
	if (s->uid == 0 || s->gid == 0)
		return kars_err_set(err, EINVAL, "%s: refusing to run as uid or gid 0", s->name);
	for (int i = 0; i < s->n_mounts; i++)
		if (!s->mounts[i].dst || s->mounts[i].dst[0] != '/' ||
		    ((s->mounts[i].kind == KARS_MNT_RW || s->mounts[i].kind == KARS_MNT_RO) &&
		     !s->mounts[i].src))
			return kars_err_set(
			    err, EINVAL, "%s: mount %d needs an absolute dst%s", s->name, i,
			    s->mounts[i].kind == KARS_MNT_RW || s->mounts[i].kind == KARS_MNT_RO
				? " and a src"
				: "");
	ret = list_top(&c.top, &c.n_top, err);
	if (ret)
		return ret;
	cgfd = open(s->cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cgfd < 0) {
		ret = kars_err_set(err, errno, "%s: cgroup %s: %s", s->name, s->cgroup,
				   strerror(errno));
		goto cleanup;
	}
	if (pipe2(pipefd, O_CLOEXEC)) {
		ret = kars_err_set(err, errno, "pipe: %s", strerror(errno));
		goto cleanup;
	}
	c.err_fd = pipefd[1];
	args.flags = CLONE_INTO_CGROUP | CLONE_NEWNS | CLONE_NEWPID;
	args.exit_signal = SIGCHLD;
	args.cgroup = (uint64_t)cgfd;
	pid = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
	if (pid < 0) {
		ret = kars_err_set(err, errno, "%s: clone3 into %s: %s", s->name, s->cgroup,
				   strerror(errno));
		goto cleanup;
	}
	if (pid == 0)
		child_main(&c);
	close(pipefd[1]);
	pipefd[1] = -1;
	do
		n = read(pipefd[0], msg, sizeof(msg) - 1);
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		msg[n] = '\0';
		waitpid(pid, &st, 0);
		ret = kars_err_set(err, EPERM, "%s: %s", s->name, msg);
		goto cleanup;
	}
	*out = pid;
	ret = 0;
cleanup:
	if (pipefd[0] >= 0)
		close(pipefd[0]);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	if (cgfd >= 0)
		close(cgfd);
	free(c.top);
	return ret;
}
