/* local_launch.h - starting one process of a local sandbox (its agent or its
 * router) as a confined process on this host.
 *
 * The process is created by clone3() directly into its cgroup
 * (CLONE_INTO_CGROUP: it never runs a single instruction outside it), in a
 * new mount namespace and a new PID namespace. Its pid 1 is a small reaper
 * that builds the file system view, drops to the sandbox UID/GID (no
 * supplementary groups, no capabilities, no_new_privs), installs the seccomp
 * profile when asked, then forks the real program and forwards SIGTERM,
 * SIGINT and SIGHUP to it; it exits with the program's status, which ends
 * the namespace.
 *
 * The view: a fresh read-only tmpfs root holding read-only, nosuid,
 * recursive binds of the host's top-level directories (symlinks such as
 * /bin -> usr/bin recreated), a new /proc of the PID namespace, a private
 * /tmp tmpfs, then the spec's mounts in order (HIDE: an empty read-only
 * tmpfs over a host path; RW: a writable bind of a host directory; TMPFS: an
 * empty writable tmpfs).
 *
 * Every step that fails fails the launch: the error comes back through a
 * close-on-exec pipe and kars_local_launch() returns it, after the child is
 * gone. Nothing runs half-confined.
 */
#ifndef KARS_LOCAL_LAUNCH_H
#define KARS_LOCAL_LAUNCH_H

#include <linux/filter.h>
#include <stdbool.h>
#include <sys/types.h>

#include "err.h"

enum kars_mount_kind {
	KARS_MNT_HIDE,
	KARS_MNT_RW,
	KARS_MNT_TMPFS,
	KARS_MNT_RO, /* a host directory, read-only: one the private /tmp would hide */
};

struct kars_local_mount {
	enum kars_mount_kind kind;
	const char *src; /* host directory, for KARS_MNT_RW and KARS_MNT_RO */
	const char *dst; /* absolute path inside the view */
};

#define KARS_LOCAL_MAX_MOUNTS 8

struct kars_local_spec {
	const char *name; /* "agent", "router": for messages */
	uid_t uid;
	gid_t gid;
	const char *cgroup; /* absolute cgroup v2 directory */
	const char *root;   /* an empty host directory the view is built on */
	char *const *argv;  /* argv[0]: a path inside the view */
	char *const *envp;  /* the whole environment: nothing is inherited */
	const char *cwd;    /* inside the view */
	int log_fd;	    /* stdout and stderr; -1 for /dev/null */
	struct kars_local_mount mounts[KARS_LOCAL_MAX_MOUNTS];
	int n_mounts;
	const struct sock_fprog *seccomp; /* NULL: no_new_privs only */
};

/* Starts the process; *pid is its pid 1 (the reaper), in this PID namespace. */
int kars_local_launch(const struct kars_local_spec *spec, pid_t *pid, struct kars_err *err);

#endif
