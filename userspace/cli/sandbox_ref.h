/* sandbox_ref.h - which local sandbox a per-sandbox command (kars egress,
 * model, credentials, trace, audit, connect) is about, and where its pieces
 * are on this host.
 *
 * NAME or NS/NAME (namespace "default", or -n NS). Two directories:
 *   the local root  --state-dir DIR, else $KARS_LOCAL_DIR (as kars up
 *                   --local and kars add take them), else the store's
 *                   parent directory (/var/lib/kars);
 *   the store       --state DIR, else ROOT/state when the root was given
 *                   (the layout kars up --local makes), else $KARS_STATE_DIR,
 *                   else /var/lib/kars/state (as kars apply/get/delete).
 * The sandbox's files follow local_sandbox.h: ROOT/sandboxes/NS/NAME/
 * {router,run,logs,sandbox}, cgroups <cgroup2>/kars/NS/NAME/{agent,router}.
 *
 * The local backend writes ROOT/sandboxes/NS/NAME/run/router.json while the
 * sandbox runs: {"routerPort","proxyPort","routerUid","agentUid",
 * "routerPid","agentPid"} (a pid is 0 while that process is not running,
 * e.g. in its restart backoff), optionally "auditFile" and "apiKeyFile" when the
 * router's config puts them elsewhere than router/audit.jsonl and
 * router/api-key.
 */
#ifndef KARS_CLI_SANDBOX_REF_H
#define KARS_CLI_SANDBOX_REF_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

#include "err.h"

#define KARS_CLI_DEFAULT_STORE "/var/lib/kars/state"

struct kars_sbref {
	char ns[64];
	char name[254];
	char owner[320]; /* "ns/name" */
	char store[PATH_MAX];
	char root[PATH_MAX];
	char dir[PATH_MAX];
	char router_dir[PATH_MAX];
	char run_dir[PATH_MAX];
	char cg_agent[PATH_MAX];
	char cg_router[PATH_MAX];
};

struct kars_sbrun {
	int router_port, proxy_port;
	uid_t router_uid, agent_uid;
	pid_t router_pid, agent_pid; /* 0 when not given */
	char audit_file[PATH_MAX];
	char api_key_file[PATH_MAX];
};

/* arg: NAME or NS/NAME; ns: -n (NULL: "default"); store, root: the options
 * (NULL: the defaults above). Checks the name as Kubernetes would. */
int kars_sbref_resolve(const char *arg, const char *ns, const char *store, const char *root,
		       struct kars_sbref *ref, struct kars_err *err);

/* Reads run/router.json. A missing file: -ENOENT, "sandbox NS/NAME is not
 * running locally: ..."; a malformed one names the file and the field. */
int kars_sbref_run(const struct kars_sbref *ref, struct kars_sbrun *run, struct kars_err *err);
/* The same on bytes (file names them in errors); fuzz/run_file. */
int kars_sbrun_parse(const char *buf, size_t len, const char *file, const struct kars_sbref *ref,
		     struct kars_sbrun *run, struct kars_err *err);

#endif
