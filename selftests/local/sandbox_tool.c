/* sandbox_tool.c - one local sandbox made with the local library, for the
 * e2e tests of the per-sandbox CLI verbs until the local backend starts
 * sandboxes itself:
 *
 *   sandbox_tool STATE NS NAME FIRST_UID INFO_FILE -- AGENT_ARGV...
 *
 * creates the sandbox (kars_local_sandbox_create, UIDs from FIRST_UID, a
 * range of 100), launches the agent with the kars-strict profile
 * (kars_local_agent_spec), writes INFO_FILE (JSON: agentUid, routerUid,
 * agentPid, routerDir, sandboxDir, cgAgent, cgRouter) and waits. SIGTERM or
 * SIGINT: the sandbox is removed (processes, cgroups, directories, UIDs).
 */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "local_env.h"
#include "local_sandbox.h"
#include "local_seccomp.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

int main(int argc, char **argv)
{
	struct kars_local_sandbox sb;
	struct kars_local_spec spec;
	struct kars_uid_range r = {0};
	struct sock_fprog prog = {0};
	struct kars_err err = {0};
	struct sigaction sa = {0};
	char **env = NULL, tmp[4200];
	int ret = 1, created = 0;
	json_t *info = NULL;
	pid_t pid = 0;

	if (argc < 8 || strcmp(argv[6], "--")) {
		fprintf(stderr,
			"usage: sandbox_tool STATE NS NAME FIRST_UID INFO_FILE -- ARGV...\n");
		return 2;
	}
	r.first = (uid_t)strtoul(argv[4], NULL, 10);
	r.last = r.first + 99;
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if (kars_seccomp_compile(&prog, &err) || kars_local_env_build(NULL, &env, &err) ||
	    kars_local_sandbox_create(argv[1], &r, argv[2], argv[3], &sb, &err))
		goto cleanup;
	created = 1;
	kars_local_agent_spec(&sb, argv + 7, env, &prog, -1, &spec);
	if (kars_local_launch(&spec, &pid, &err))
		goto cleanup;
	info = json_pack("{s:i,s:i,s:i,s:s,s:s,s:s,s:s}", "agentUid", (int)sb.agent_uid,
			 "routerUid", (int)sb.router_uid, "agentPid", (int)pid, "routerDir",
			 sb.router_dir, "sandboxDir", sb.sandbox_dir, "cgAgent", sb.cg_agent,
			 "cgRouter", sb.cg_router);
	snprintf(tmp, sizeof(tmp), "%s.tmp", argv[5]);
	if (!info || json_dump_file(info, tmp, JSON_COMPACT) || rename(tmp, argv[5])) {
		kars_err_set(&err, errno, "%s: %s", argv[5], strerror(errno));
		goto cleanup;
	}
	while (!stop)
		pause();
	ret = 0;
cleanup:
	if (err.msg[0])
		fprintf(stderr, "sandbox_tool: %s\n", err.msg);
	if (created && kars_local_sandbox_remove(&sb, &err)) {
		fprintf(stderr, "sandbox_tool: remove: %s\n", err.msg);
		ret = 1;
	}
	if (pid > 0)
		waitpid(pid, NULL, 0);
	json_decref(info);
	kars_local_env_free(env);
	free(prog.filter);
	return ret;
}
