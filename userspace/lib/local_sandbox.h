/* local_sandbox.h - what one local sandbox is made of on this host, and the
 * specs its two processes are launched from.
 *
 *	<state>/sandboxes/<ns>/<name>/sandbox   the agent's /sandbox (agent UID, 0700)
 *	<state>/sandboxes/<ns>/<name>/router    the router's config and state
 *	                                        (router UID, 0700)
 *	<state>/sandboxes/<ns>/<name>/run       pid files, the view roots
 *	<state>/sandboxes/<ns>/<name>/logs      agent.log, router.log
 *	<cgroup2>/kars/<ns>/<name>/{agent,router}
 *
 * The agent's view hides the whole state directory (an empty read-only
 * tmpfs over it) and gets its sandbox directory at /sandbox; the router's
 * view hides the state directory too except its own directory, writable at
 * the same path. Both see the rest of the host read-only.
 */
#ifndef KARS_LOCAL_SANDBOX_H
#define KARS_LOCAL_SANDBOX_H

#include <limits.h>
#include <sys/types.h>

#include "err.h"
#include "local_launch.h"
#include "local_uid.h"

struct kars_local_sandbox {
	char owner[160]; /* "<ns>/<name>" */
	char state_dir[PATH_MAX];
	char dir[PATH_MAX];
	char sandbox_dir[PATH_MAX];
	char router_dir[PATH_MAX];
	char run_dir[PATH_MAX];
	char log_dir[PATH_MAX];
	char agent_root[PATH_MAX]; /* empty directories the views are built on */
	char router_root[PATH_MAX];
	char cgroup[PATH_MAX];
	char cg_agent[PATH_MAX];
	char cg_router[PATH_MAX];
	uid_t agent_uid;
	uid_t router_uid;
};

/* Allocates the UIDs, creates the directories and the cgroups. Undoes what
 * it did when a step fails. */
int kars_local_sandbox_create(const char *state_dir, const struct kars_uid_range *range,
			      const char *ns, const char *name, struct kars_local_sandbox *sb,
			      struct kars_err *err);
/* Kills what runs in the cgroups, removes them, the sandbox's directories
 * (its /sandbox data included) and frees the UIDs. */
int kars_local_sandbox_remove(struct kars_local_sandbox *sb, struct kars_err *err);

/* The agent's launch spec (kars-strict when prog is set). */
void kars_local_agent_spec(const struct kars_local_sandbox *sb, char *const *argv,
			   char *const *envp, const struct sock_fprog *prog, int log_fd,
			   struct kars_local_spec *out);
void kars_local_router_spec(const struct kars_local_sandbox *sb, char *const *argv,
			    char *const *envp, int log_fd, struct kars_local_spec *out);

#endif
