/* reconcile_ip.h - the InferencePolicy reconciler: reconcile_policy.h with
 * the InferencePolicy compiler (policy_compile.h), delivered as
 * <out_dir>/<namespace>/<sandbox>/inference-policy.json to every KarsSandbox
 * whose spec.inferenceRef names the policy. Phases Compiled / Ready /
 * Degraded; finalizer kars.azure.com/inferencepolicy-cleanup.
 */
#ifndef KARS_RECONCILE_IP_H
#define KARS_RECONCILE_IP_H

#include "reconcile_policy.h"
#include "router_paths.h"

#define KARS_IP_FINALIZER "kars.azure.com/inferencepolicy-cleanup"

int kars_reconcile_inferencepolicy(const struct kars_policy_env *env, const char *ns,
				   const char *name, struct kars_reconcile_result *res,
				   struct kars_err *err);

#endif
