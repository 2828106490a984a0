/* sandbox_connect.c - `kars connect NAME [-- COMMAND [ARG...]]`: a shell (or
 * COMMAND) as the agent, inside the agent's running sandbox.
 *
 * It joins the running agent rather than building a look-alike: setns()
 * through a pidfd of the agent's pid 1 into its mount and PID namespaces (the
 * same /sandbox, the same private /tmp, the same /proc: the agent's processes
 * are visible, nothing of the host's), clone3() straight into the agent's
 * cgroup (karsd enforces on it: the shell's connections are the agent's),
 * then the agent's drop: no supplementary groups, the agent UID and GID,
 * no_new_privs, the kars-strict seccomp profile, the agent's base
 * environment (local_env.h, plus TERM). A separately launched copy
 * (local_launch) would have its own /tmp and PID namespace, so what one
 * tried by hand would not be what the agent sees.
 *
 * The pid is checked against the agent cgroup after the pidfd is opened, so
 * a recycled pid cannot send the shell somewhere else. The shell never holds
 * the caller's terminal: it runs in a new session on a pseudo-terminal this
 * process relays (TIOCSTI and the like reach only that pty), or, when stdin
 * is not a terminal, with the caller's stdin/stdout/stderr and no
 * controlling terminal at all.
 *
 * Exit status: the command's (128+N for signal N); 1 when connect fails
 * before it runs (the reason on stderr); 2 bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "cgroup2.h"
#include "local_env.h"
#include "local_seccomp.h"
#include "sandbox_ops_cmd.h"
#include "sandbox_opts.h"

struct connect_ctx {
	int pidfd, cgfd, err_fd, tty_fd; /* tty_fd: the pty's slave, or -1 */
	uid_t uid;
	struct sock_fprog prog;
	char **argv, **envp;
};

static void __attribute__((noreturn)) die(int fd, const char *fmt, ...)
{
	char msg[384];
	int e = errno, n;
	va_list ap;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n > 0 && (size_t)n < sizeof(msg))
		snprintf(msg + n, sizeof(msg) - n, ": %s", strerror(e));
	if (write(fd, msg, strlen(msg)) < 0)
		_exit(126);
	_exit(126);
}

/* In the agent's PID namespace and cgroup: become the agent, run argv. */
static void __attribute__((noreturn)) shell_main(const struct connect_ctx *c)
{
	signal(SIGINT, SIG_DFL);
	signal(SIGQUIT, SIG_DFL);
	signal(SIGTSTP, SIG_DFL);
	if (setsid() < 0)
		die(c->err_fd, "setsid");
	if (c->tty_fd >= 0 && (ioctl(c->tty_fd, TIOCSCTTY, 0) || dup2(c->tty_fd, 0) < 0 ||
			       dup2(c->tty_fd, 1) < 0 || dup2(c->tty_fd, 2) < 0))
		die(c->err_fd, "the terminal");
	if (chdir("/sandbox"))
		die(c->err_fd, "chdir /sandbox");
	if (setgroups(0, NULL) || setresgid(c->uid, c->uid, c->uid) ||
	    setresuid(c->uid, c->uid, c->uid))
		die(c->err_fd, "dropping to uid %u", (unsigned)c->uid);
	if ((errno = -kars_seccomp_install(&c->prog)))
		die(c->err_fd, "seccomp");
	if (syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC))
		die(c->err_fd, "close_range");
	execve(c->argv[0], c->argv, c->envp);
	die(c->err_fd, "exec %s", c->argv[0]);
}

/* Joins the namespaces, then clones the shell into the cgroup (a setns'd
 * PID namespace holds only the children made after it). */
static void __attribute__((noreturn)) join_main(const struct connect_ctx *c)
{
	struct clone_args args = {0};
	pid_t pid;
	int st;

	if (setns(c->pidfd, CLONE_NEWNS | CLONE_NEWPID))
		die(c->err_fd, "joining the agent's namespaces");
	args.flags = CLONE_INTO_CGROUP;
	args.exit_signal = SIGCHLD;
	args.cgroup = (uint64_t)c->cgfd;
	pid = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
	if (pid < 0)
		die(c->err_fd, "clone3 into the agent cgroup");
	if (pid == 0)
		shell_main(c);
	close(c->err_fd);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			_exit(126);
	_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}

static volatile sig_atomic_t winch;

static void on_winch(int sig)
{
	winch = 1;
}

/* Copies the caller's terminal to the pty's master and back until the
 * shell side hangs up. */
static void relay(int master)
{
	struct pollfd p[2] = {{.fd = 0, .events = POLLIN}, {.fd = master, .events = POLLIN}};
	struct winsize ws;
	char buf[4096];
	ssize_t n;

	for (;;) {
		if (winch) {
			winch = 0;
			if (ioctl(0, TIOCGWINSZ, &ws) == 0)
				ioctl(master, TIOCSWINSZ, &ws);
		}
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			n = read(master, buf, sizeof(buf));
			if (n <= 0)
				return; /* EIO: the last holder of the slave is gone */
			if (write(1, buf, n) != n)
				return;
		}
		if (p[0].revents & (POLLIN | POLLHUP)) {
			n = read(0, buf, sizeof(buf));
			if (n <= 0)
				p[0].fd = -1; /* caller's end closed: keep showing output */
			else if (write(master, buf, n) != n)
				return;
		}
	}
}

static int open_pty(int *master, int *slave)
{
	struct winsize ws;

	*master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (*master < 0 || grantpt(*master) || unlockpt(*master))
		return -1;
	*slave = open(ptsname(*master), O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (*slave < 0)
		return -1;
	if (ioctl(0, TIOCGWINSZ, &ws) == 0)
		ioctl(*master, TIOCSWINSZ, &ws);
	return 0;
}

/* The agent's pid 1, opened as a pidfd and checked to be in its cgroup. */
static int agent_pidfd(const struct kars_sbref *ref, const struct kars_sbrun *run)
{
	int fd;

	if (run->agent_pid <= 0) {
		fprintf(stderr,
			"kars: connect: sandbox %s: agent not running now (agentPid 0 or absent in "
			"its run file; kars status %s)\n",
			ref->owner, ref->owner);
		return -1;
	}
	fd = (int)syscall(SYS_pidfd_open, run->agent_pid, 0);
	if (fd < 0) {
		fprintf(stderr, "kars: connect: sandbox %s: agent pid %d: %s (kars status %s)\n",
			ref->owner, (int)run->agent_pid, strerror(errno), ref->owner);
		return -1;
	}
	if (kars_cgroup_has_pid(ref->cg_agent, run->agent_pid) != 1) {
		fprintf(stderr,
			"kars: connect: sandbox %s: pid %d is not in the agent cgroup %s: the "
			"agent is not running (kars status %s)\n",
			ref->owner, (int)run->agent_pid, ref->cg_agent, ref->owner);
		close(fd);
		return -1;
	}
	return fd;
}

static int run_connect(const struct kars_sbref *ref, const struct kars_sbrun *run, char **argv)
{
	struct connect_ctx c = {.pidfd = -1, .cgfd = -1, .err_fd = -1, .tty_fd = -1};
	const char *term = getenv("TERM");
	char termvar[128], *plan[2] = {NULL, NULL}, msg[400];
	int pipefd[2] = {-1, -1}, master = -1, ret = 1, st;
	struct termios saved, raw;
	bool tty = isatty(0), raw_set = false;
	struct kars_err err = {};
	struct sigaction sa = {};
	ssize_t n;
	pid_t pid;

	c.uid = run->agent_uid;
	c.argv = argv;
	if ((c.pidfd = agent_pidfd(ref, run)) < 0)
		return 1;
	c.cgfd = open(ref->cg_agent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c.cgfd < 0) {
		fprintf(stderr, "kars: connect: %s: %s\n", ref->cg_agent, strerror(errno));
		goto cleanup;
	}
	if (term && strlen(term) < 64 && !strchr(term, '\n')) {
		snprintf(termvar, sizeof(termvar), "TERM=%s", term);
		plan[0] = termvar;
	}
	if (kars_seccomp_compile(&c.prog, &err) ||
	    kars_local_env_build((const char *const *)plan, &c.envp, &err)) {
		fprintf(stderr, "kars: connect: %s\n", err.msg);
		goto cleanup;
	}
	if (tty && open_pty(&master, &c.tty_fd)) {
		fprintf(stderr, "kars: connect: a pseudo-terminal: %s\n", strerror(errno));
		goto cleanup;
	}
	if (pipe2(pipefd, O_CLOEXEC)) {
		fprintf(stderr, "kars: connect: pipe: %s\n", strerror(errno));
		goto cleanup;
	}
	c.err_fd = pipefd[1];
	/* ^C, ^\ and ^Z are the shell's, not ours. */
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	signal(SIGTSTP, SIG_IGN);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "kars: connect: fork: %s\n", strerror(errno));
		goto cleanup;
	}
	if (pid == 0)
		join_main(&c);
	close(pipefd[1]);
	pipefd[1] = -1;
	if (c.tty_fd >= 0) {
		close(c.tty_fd);
		c.tty_fd = -1;
	}
	if (tty) {
		sa.sa_handler = on_winch;
		sigaction(SIGWINCH, &sa, NULL);
		if (tcgetattr(0, &saved) == 0) {
			raw = saved;
			cfmakeraw(&raw);
			raw_set = tcsetattr(0, TCSANOW, &raw) == 0;
		}
		relay(master);
	}
	do
		n = read(pipefd[0], msg, sizeof(msg) - 1);
	while (n < 0 && errno == EINTR);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (raw_set)
		tcsetattr(0, TCSANOW, &saved);
	if (n > 0) {
		msg[n] = '\0';
		fprintf(stderr, "kars: connect: sandbox %s: %s\n", ref->owner, msg);
		ret = 1;
	} else {
		ret = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	}
cleanup:
	for (int *fd = (int[]){c.pidfd, c.cgfd, pipefd[0], pipefd[1], master, c.tty_fd, -2};
	     *fd != -2; fd++)
		if (*fd >= 0)
			close(*fd);
	free(c.prog.filter);
	kars_local_env_free(c.envp);
	return ret;
}

int kars_cli_connect(int argc, char **argv)
{
	struct sbref_cmd cmd = {"connect", "NAME [-- COMMAND [ARG...]]", 0};
	/* +m: no job control. The agent's profile has no getpgrp(), which an
	 * interactive shell's job control asks for in a loop until it works. */
	static char *shell[] = {"/bin/sh", "+m", NULL};
	struct kars_err err = {};
	struct kars_sbref ref;
	struct kars_sbrun run;
	struct sbopts o;
	int ret;

	if ((ret = sbopts_parse(&cmd, argc, argv, &o)) != 0)
		return ret == -1 ? 0 : ret;
	if (o.nargs != 1)
		return sbopts_usage_error(&cmd, "expected one NAME");
	if (o.command && (o.ncommand == 0 || o.command[0][0] != '/'))
		return sbopts_usage_error(&cmd, "COMMAND after -- must be an absolute path "
						"(as the agent's view has it, e.g. /bin/ls)");
	if (sbopts_resolve(&cmd, &o, o.args[0], &ref))
		return 1;
	if (kars_sbref_run(&ref, &run, &err)) {
		fprintf(stderr, "kars: connect: %s\n", err.msg);
		return 1;
	}
	return run_connect(&ref, &run, o.command ? o.command : shell);
}
