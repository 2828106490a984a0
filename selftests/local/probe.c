/* probe.c - what a local sandbox's agent tries, run inside the sandbox by
 * selftests/unit/test_local_sandbox.c (build/tests/local_probe).
 *
 *	local_probe CHECK [ARG...]
 *
 * Exits 0 when every attempt of CHECK was refused the way it must be (and
 * the positive controls worked), 1 otherwise, printing one line per attempt
 * that went wrong. Built without sanitizers: it runs under kars-strict.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

extern char **environ;
static int bad;

static void expect(const char *what, long ret, int want_errno)
{
	int e = errno;

	if (want_errno == 0 && ret < 0) {
		printf("FAIL %s: %s (wanted success)\n", what, strerror(e));
		bad = 1;
	} else if (want_errno && (ret >= 0 || e != want_errno)) {
		printf("FAIL %s: %s (wanted %s)\n", what, ret >= 0 ? "succeeded" : strerror(e),
		       strerror(want_errno));
		bad = 1;
	}
	if (ret >= 0 && want_errno == 0 && strncmp(what, "socket", 6) == 0)
		close((int)ret);
}

static void check_sockets(void)
{
	errno = 0;
	expect("socket AF_PACKET", socket(AF_PACKET, SOCK_RAW, 0), EPERM);
	expect("socket AF_INET SOCK_RAW", socket(AF_INET, SOCK_RAW, IPPROTO_ICMP), EPERM);
	expect("socket AF_INET6 SOCK_RAW", socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, 58), EPERM);
	expect("socket AF_NETLINK SOCK_DIAG", socket(AF_NETLINK, SOCK_RAW, NETLINK_SOCK_DIAG),
	       EPERM);
	expect("socket AF_NETLINK AUDIT", socket(AF_NETLINK, SOCK_RAW, NETLINK_AUDIT), EPERM);
	expect("socket AF_VSOCK", socket(AF_VSOCK, SOCK_STREAM, 0), EPERM);
	expect("socket AF_INET SOCK_PACKET", socket(AF_INET, SOCK_PACKET, 0), EPERM);
	/* Positive controls: what an agent needs. */
	expect("socket AF_INET SOCK_STREAM", socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), 0);
	expect("socket AF_INET6 SOCK_DGRAM", socket(AF_INET6, SOCK_DGRAM, 0), 0);
	expect("socket AF_UNIX", socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), 0);
	expect("socket NETLINK_ROUTE", socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE), 0);
}

static void check_escapes(void)
{
	struct clone_args ca = {.flags = CLONE_NEWUSER, .exit_signal = SIGCHLD};
	long r;

	expect("unshare CLONE_NEWUSER", unshare(CLONE_NEWUSER), EPERM);
	expect("unshare CLONE_NEWNET", unshare(CLONE_NEWNET), EPERM);
	r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
	if (r == 0)
		_exit(0);
	expect("clone CLONE_NEWUSER", r, EPERM);
	r = syscall(SYS_clone3, &ca, sizeof(ca));
	if (r == 0)
		_exit(0);
	expect("clone3", r, ENOSYS);
	expect("setns", setns(open("/proc/self/ns/net", O_RDONLY), 0), EPERM);
	expect("mount tmpfs", mount("tmpfs", "/tmp", "tmpfs", 0, NULL), EPERM);
	expect("ptrace TRACEME", ptrace(PTRACE_TRACEME, 0, 0, 0), EPERM);
	expect("bpf", syscall(SYS_bpf, 0, NULL, 0), EPERM);
	expect("io_uring_setup", syscall(SYS_io_uring_setup, 1, NULL), EPERM);
	expect("keyctl", syscall(SYS_keyctl, 0, 0, 0, 0, 0), EPERM);
	expect("perf_event_open", syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0), EPERM);
	expect("setuid 0", syscall(SYS_setuid, 0), EPERM);
	/* Positive control: a plain fork. */
	r = fork();
	if (r == 0)
		_exit(0);
	expect("fork", r, 0);
}

static void check_status(void)
{
	char line[256];
	int nnp = -1, sc = -1;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof(line), f)) {
		sscanf(line, "NoNewPrivs: %d", &nnp);
		sscanf(line, "Seccomp: %d", &sc);
	}
	if (f)
		fclose(f);
	if (nnp != 1 || sc != 2) {
		printf("FAIL NoNewPrivs %d Seccomp %d (wanted 1 and 2)\n", nnp, sc);
		bad = 1;
	}
}

/* argv: hidden paths (must not exist nor open). */
static void check_hidden(int argc, char **argv)
{
	struct stat st;

	for (int i = 0; i < argc; i++) {
		errno = 0;
		if (stat(argv[i], &st) == 0 || open(argv[i], O_RDONLY) >= 0) {
			printf("FAIL %s is visible\n", argv[i]);
			bad = 1;
		}
	}
}

/* argv[0]: a file of the host's /tmp that must not be seen. */
static void check_fs(const char *host_tmp_file)
{
	int fd;

	fd = open("/sandbox/probe-write", O_WRONLY | O_CREAT | O_TRUNC, 0600);
	expect("write /sandbox", fd >= 0 ? write(fd, "x", 1) : -1, 0);
	expect("create /etc file", open("/etc/kars-probe", O_WRONLY | O_CREAT, 0600), EROFS);
	expect("mkdir /usr/x", mkdir("/usr/kars-probe", 0700), EROFS);
	expect("create / file", open("/kars-probe", O_WRONLY | O_CREAT, 0600), EROFS);
	expect("create /tmp file", open("/tmp/probe", O_WRONLY | O_CREAT, 0600), 0);
	expect("host /tmp file", access(host_tmp_file, F_OK), ENOENT);
	expect("write /dev/null", (fd = open("/dev/null", O_WRONLY)) >= 0 ? write(fd, "x", 1) : -1,
	       0);
}

/* argv: the router's own directory (writable), then paths it must not see. */
static void check_router(int argc, char **argv)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/probe-state", argv[0]);
	expect("write own dir", open(path, O_WRONLY | O_CREAT, 0600), 0);
	expect("create /etc file", open("/etc/kars-probe", O_WRONLY | O_CREAT, 0600), EROFS);
	expect("create /var/tmp file", open("/var/tmp/kars-probe", O_WRONLY | O_CREAT, 0600),
	       EROFS);
	check_hidden(argc - 1, argv + 1);
}

/* argv: NAME=VALUE pairs that must be exactly the environment. */
static void check_env(int argc, char **argv)
{
	int n = 0;

	for (char **e = environ; *e; e++, n++) {
		bool found = false;

		for (int i = 0; i < argc && !found; i++)
			found = strcmp(*e, argv[i]) == 0;
		if (!found) {
			printf("FAIL unexpected environment entry %s\n", *e);
			bad = 1;
		}
	}
	if (n != argc) {
		printf("FAIL %d environment entries, wanted %d\n", n, argc);
		bad = 1;
	}
}

/* argv: uid gid cgroup-path-relative-to-the-cgroup2-root host-pid */
static void check_identity(char **argv)
{
	char line[4200], want[4200];
	struct dirent *de;
	int found = 0, n;
	DIR *d;
	FILE *f;

	if (getuid() != (uid_t)atoi(argv[0]) || geteuid() != (uid_t)atoi(argv[0]) ||
	    getgid() != (gid_t)atoi(argv[1]) || getgroups(0, NULL) != 0) {
		printf("FAIL uid %u gid %u groups %d\n", getuid(), getgid(), getgroups(0, NULL));
		bad = 1;
	}
	snprintf(want, sizeof(want), "0::%s\n", argv[2]);
	f = fopen("/proc/self/cgroup", "r");
	while (f && fgets(line, sizeof(line), f))
		found |= strcmp(line, want) == 0;
	if (f)
		fclose(f);
	if (!found) {
		printf("FAIL not in cgroup %s\n", argv[2]);
		bad = 1;
	}
	if (getpid() != 2) {
		printf("FAIL pid %d in its namespace, wanted 2 (pid 1 is the reaper)\n", getpid());
		bad = 1;
	}
	expect("kill host pid", kill(atoi(argv[3]), 0), ESRCH);
	expect("kill the reaper", kill(1, 0), 0);
	n = 0;
	if ((d = opendir("/proc"))) {
		while ((de = readdir(d)))
			n += de->d_name[0] >= '1' && de->d_name[0] <= '9';
		closedir(d);
	}
	/* The reaper is not dumpable (it changed UID), so hidepid=invisible
	 * leaves the probe alone in /proc. */
	if (n != 1) {
		printf("FAIL %d processes in /proc, wanted 1 (the probe)\n", n);
		bad = 1;
	}
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2)
		return 2;
	if (strcmp(argv[1], "sockets") == 0)
		check_sockets();
	else if (strcmp(argv[1], "escapes") == 0)
		check_escapes();
	else if (strcmp(argv[1], "status") == 0)
		check_status();
	else if (strcmp(argv[1], "hidden") == 0)
		check_hidden(argc - 2, argv + 2);
	else if (strcmp(argv[1], "fs") == 0 && argc == 3)
		check_fs(argv[2]);
	else if (strcmp(argv[1], "router") == 0 && argc >= 3)
		check_router(argc - 2, argv + 2);
	else if (strcmp(argv[1], "env") == 0)
		check_env(argc - 2, argv + 2);
	else if (strcmp(argv[1], "identity") == 0 && argc == 6)
		check_identity(argv + 2);
	else if (strcmp(argv[1], "exit") == 0 && argc == 3)
		return atoi(argv[2]);
	else if (strcmp(argv[1], "sleep") == 0)
		for (;;)
			sleep(1000);
	else
		return 2;
	return bad;
}
