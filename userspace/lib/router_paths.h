/* router_paths.h - where the controller delivers a sandbox's compiled
 * policies, and the router configuration keys that must name them.
 *
 * The KarsSandbox reconciler hands the router directory to the backend
 * (sandbox_backend.h); the backend writes the router's config file and calls
 * kars_router_config_set_policy_files() on it, so the router loads exactly
 * the files the InferencePolicy and ToolPolicy reconcilers write there:
 *
 *   policy.file               <router_dir>/inference-policy.json
 *   governance.profileFile    <router_dir>/tool-policy.json
 *
 * Other keys of cfg (listen, upstream, credentials...) are left alone.
 */
#ifndef KARS_ROUTER_PATHS_H
#define KARS_ROUTER_PATHS_H

#include <jansson.h>

#include "err.h"

#define KARS_IP_FILE "inference-policy.json"
#define KARS_TP_FILE "tool-policy.json"

/* Sets both keys in cfg (a router config object), creating "policy" and
 * "governance" when absent. 0, or -errno (a key of the wrong type, a path
 * too long for the router's config). */
int kars_router_config_set_policy_files(json_t *cfg, const char *router_dir, struct kars_err *err);

#endif
