/* router_status.h - what each sandbox's kars-router says it has loaded.
 *
 * The controller calls a policy Ready only when the router of every
 * sandbox using it reports the compiled digest. It asks
 * GET <url>/kars/v1/policy-status (docs/router.md); the router
 * authenticates the caller by the UID that owns the connection (root is
 * allowed by default), so there is no token to hold. Answers are capped at
 * 1 MiB and 2 s; one that names another sandbox is not believed.
 *
 * The URL of a sandbox's router is given on the command line (--router
 * NS/NAME=URL), else, under the local backend, read from its contract file
 * <local dir>/sandboxes/<ns>/<name>/run/router.json (routerPort).
 */
#ifndef KARS_CONTROLLER_ROUTER_STATUS_H
#define KARS_CONTROLLER_ROUTER_STATUS_H

#include <stddef.h>

#include "err.h"
#include "policy_compile.h"

struct kars_routers;

struct kars_routers *kars_routers_new(void);
void kars_routers_free(struct kars_routers *r);

/* Routers not given with --router are looked up in the local backend's
 * layout under dir (NULL: not). */
void kars_routers_set_local(struct kars_routers *r, const char *dir);

/* "team-a/bot=http://127.0.0.1:8443". -EINVAL with err naming what is wrong. */
int kars_routers_add(struct kars_routers *r, const char *spec, struct kars_err *err);

/* kars_policy_env.loaded_digest: ctx is a struct kars_routers. The digest
 * stays valid until the next call for the same sandbox. */
const char *kars_routers_loaded(void *ctx, const char *kind, const char *ns, const char *sandbox,
				const char *name, char *why, size_t why_len);

#endif
