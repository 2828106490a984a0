/* runtime_plan.h - what a KarsSandbox's spec.runtime means to run.
 *
 * One plan per runtime kind: the adapter (which runtime image the backend
 * runs), its language, the image when the spec names one (OpenClaw, BYO),
 * the command, the agent's code, and the environment of the runtime
 * contract (KARS_RUNTIME_KIND, KARS_RUNTIME_CONTRACT_VERSION=v1,
 * SANDBOX_NAME, KARS_MODEL) plus extraEnv without the reserved prefixes.
 * The plan is canonical JSON, a pure function of the spec.
 *
 * Kinds with no adapter are refused, not approximated: SemanticKernel
 * (AdapterMissing), MicrosoftAgentFramework with language dotnet
 * (ShapeInvalid: the adapter exists for python only). A spec whose shape
 * the schema should have refused (a settings block of another kind, BYO
 * without its block) is ShapeInvalid too: the store may have been written
 * by something that did not validate.
 */
#ifndef KARS_RUNTIME_PLAN_H
#define KARS_RUNTIME_PLAN_H

#include <jansson.h>

#include "err.h"

enum kars_plan_status {
	KARS_PLAN_OK = 0,
	KARS_PLAN_ADAPTER_MISSING,
	KARS_PLAN_SHAPE_INVALID,
};

/* sandbox is the KarsSandbox as stored; model is the primary deployment of
 * its InferencePolicy (NULL: none). On KARS_PLAN_OK *plan is a new object;
 * otherwise err says why. */
enum kars_plan_status kars_runtime_plan(const json_t *sandbox, const char *model, json_t **plan,
					struct kars_err *err);

const char *kars_plan_status_reason(enum kars_plan_status s); /* "AdapterMissing", ... */

#endif
