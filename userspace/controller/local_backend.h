/* local_backend.h - the controller's local sandbox backend: each KarsSandbox
 * as processes on this host (sandbox_backend.h, docs/local-mode.md).
 *
 * apply, in this order, and never the agent before its policy:
 *   1. the sandbox's cgroups, directories and UIDs (local_sandbox.h);
 *   2. its router port pair, a function of its persisted UID pair;
 *   3. the router's config in its directory (router UID, 0600), its policy
 *      files pointed at the directory the controller delivers them to;
 *   4. the router, under its own supervisor; then its /healthz;
 *   5. the data-plane policy in karsd (apply with both cgroups, routerPort,
 *      proxyPort, and the resolver the router's DNS needs);
 *   6. the agent (BYO command of the plan, kars-strict seccomp), under its
 *      own supervisor;
 *   7. <state>/sandboxes/<ns>/<name>/run/router.json, atomically: the
 *      contract the CLI's sandbox verbs read.
 *
 * The supervisors (local_supervise.h, one per role) are detached processes
 * in <cgroup2>/kars/<ns>/<name>/supervisor: a controller restart leaves them
 * and their sandbox running, and the next apply finds them by pid file.
 */
#ifndef KARS_LOCAL_BACKEND_H
#define KARS_LOCAL_BACKEND_H

#include <stdint.h>

#include "local_uid.h"
#include "sandbox_backend.h"

#define KARS_LOCAL_PORT_BASE 18000 /* router ports: base + (agent UID - first UID) */
/* The upstream of a sandbox that has none configured: a name that never
 * resolves (RFC 6761), so the router refuses inference saying so. */
#define KARS_LOCAL_NO_UPSTREAM "http://upstream-not-configured.invalid/v1"

struct kars_local_backend_opts {
	const char *state_dir;	  /* the local layout (sandboxes/, uids) */
	const char *karsd_socket; /* karsd's control socket */
	const char *router_bin;	  /* kars-router */
	struct kars_uid_range uids;
	uint16_t port_base;
	double health_wait_s; /* how long apply waits for a new router's /healthz */
};

int kars_local_backend_new(const struct kars_local_backend_opts *o,
			   struct kars_sandbox_backend *out, struct kars_err *err);
void kars_local_backend_free(struct kars_sandbox_backend *b);

#endif
