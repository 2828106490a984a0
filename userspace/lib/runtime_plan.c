/* runtime_plan.c - see runtime_plan.h. */
#include "runtime_plan.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* kind, its settings block, the adapter the backend runs ("" = none built),
 * the default language */
static const struct runtime {
	const char *kind, *block, *adapter, *language;
} runtimes[] = {
    {"OpenClaw", "openclaw", "openclaw", "node"},
    {"Hermes", "hermes", "hermes", "python"},
    {"OpenAIAgents", "openaiAgents", "openai-agents", "python"},
    {"MicrosoftAgentFramework", "microsoftAgentFramework", "maf-python", "python"},
    {"SemanticKernel", "semanticKernel", "", "python"},
    {"LangGraph", "langGraph", "langgraph", "python"},
    {"Anthropic", "anthropic", "anthropic", "python"},
    {"PydanticAi", "pydanticAi", "pydantic-ai", "python"},
    {"BYO", "byo", "byo", NULL},
};

static const char *const reserved_prefixes[] = {"AGT_",	 "FOUNDRY_AGENT_", "AZURE_",
						"IMDS_", "KARS_",	   NULL};

const char *kars_plan_status_reason(enum kars_plan_status s)
{
	switch (s) {
	case KARS_PLAN_OK:
		return "Planned";
	case KARS_PLAN_ADAPTER_MISSING:
		return "AdapterMissing";
	case KARS_PLAN_SHAPE_INVALID:
		return "ShapeInvalid";
	}
	return "ShapeInvalid";
}

static bool reserved(const char *name)
{
	for (const char *const *p = reserved_prefixes; *p; p++)
		if (!strncmp(name, *p, strlen(*p)))
			return true;
	return false;
}

/* The environment: extraEnv (or BYO's env list) without reserved names,
 * then the contract's own variables, which nothing overrides. */
static json_t *plan_env(const struct runtime *rt, const json_t *settings, const char *name,
			const char *model)
{
	json_t *env = json_object(), *v;
	const char *k;
	size_t i;

	json_object_foreach((json_t *)json_object_get(settings, "extraEnv"), k,
			    v) if (!reserved(k) && json_is_string(v)) json_object_set(env, k, v);
	json_array_foreach(json_object_get(settings, "env"), i, v)
	{
		const char *n = json_string_value(json_object_get(v, "name"));

		if (n && !reserved(n))
			json_object_set_new(
			    env, n,
			    json_string(json_string_value(json_object_get(v, "value")) ?: ""));
	}
	json_object_set_new(env, "KARS_RUNTIME_KIND", json_string(rt->kind));
	json_object_set_new(env, "KARS_RUNTIME_CONTRACT_VERSION", json_string("v1"));
	json_object_set_new(env, "SANDBOX_NAME", json_string(name));
	if (model)
		json_object_set_new(env, "KARS_MODEL", json_string(model));
	return env;
}

enum kars_plan_status kars_runtime_plan(const json_t *sandbox, const char *model, json_t **plan,
					struct kars_err *err)
{
	const json_t *runtime = json_object_get(json_object_get(sandbox, "spec"), "runtime");
	const char *kind = json_string_value(json_object_get(runtime, "kind"));
	const char *name =
	    json_string_value(json_object_get(json_object_get(sandbox, "metadata"), "name"));
	const struct runtime *rt = NULL;
	const json_t *settings;
	const char *lang;
	static const char *const passed[] = {"agentCode", "entrypoint", "pythonVersion", "config",
					     "version",	  "command",	"args",		 NULL};

	*plan = NULL;
	for (size_t i = 0; i < sizeof(runtimes) / sizeof(runtimes[0]) && kind; i++)
		if (!strcmp(runtimes[i].kind, kind))
			rt = &runtimes[i];
	if (!rt || !name) {
		kars_err_set(err, EINVAL, "spec.runtime.kind: Unsupported value \"%s\"",
			     kind ? kind : "");
		return KARS_PLAN_SHAPE_INVALID;
	}
	for (size_t i = 0; i < sizeof(runtimes) / sizeof(runtimes[0]); i++) {
		if (&runtimes[i] != rt && json_object_get(runtime, runtimes[i].block)) {
			kars_err_set(err, EINVAL,
				     "spec.runtime.%s: only allowed when runtime.kind is %s",
				     runtimes[i].block, runtimes[i].kind);
			return KARS_PLAN_SHAPE_INVALID;
		}
	}
	settings = json_object_get(runtime, rt->block);
	if (!rt->adapter[0]) {
		kars_err_set(err, ENOTSUP,
			     "spec.runtime.kind: %s has no adapter (not built); nothing to run",
			     rt->kind);
		return KARS_PLAN_ADAPTER_MISSING;
	}
	lang = json_string_value(json_object_get(settings, "language")) ?: rt->language;
	if (!strcmp(rt->kind, "MicrosoftAgentFramework") && strcmp(lang, "python")) {
		kars_err_set(err, ENOTSUP,
			     "spec.runtime.microsoftAgentFramework.language: \"%s\": only the "
			     "python adapter exists",
			     lang);
		return KARS_PLAN_SHAPE_INVALID;
	}
	if (!strcmp(rt->kind, "BYO") &&
	    (!json_string_value(json_object_get(settings, "image")) ||
	     !json_string_value(json_object_get(settings, "contractVersion")))) {
		kars_err_set(err, EINVAL,
			     "spec.runtime.byo: image and contractVersion are required for BYO");
		return KARS_PLAN_SHAPE_INVALID;
	}
	*plan =
	    json_pack("{s:s,s:s,s:s?}", "kind", rt->kind, "adapter",
		      !strcmp(rt->kind, "LangGraph") && !strcmp(lang, "typescript") ? "langgraph-ts"
										    : rt->adapter,
		      "language", lang);
	if (!*plan) {
		kars_err_set(err, ENOMEM, "plan: out of memory");
		return KARS_PLAN_SHAPE_INVALID;
	}
	if (json_object_get(settings, "image"))
		json_object_set(*plan, "image", json_object_get(settings, "image"));
	for (const char *const *p = passed; *p; p++)
		if (json_object_get(settings, *p))
			json_object_set(*plan, *p, json_object_get(settings, *p));
	json_object_set_new(*plan, "env", plan_env(rt, settings, name, model));
	return KARS_PLAN_OK;
}
