/* local_env.h - the environment of a local sandbox's agent.
 *
 * Built from nothing (the supervisor's own environment never reaches the
 * agent): the contract variables that point the agent's SDKs at its router
 * (OPENAI_BASE_URL=http://127.0.0.1:8443/v1 and friends), a minimal PATH,
 * HOME=/sandbox, TMPDIR=/tmp, then the plan's own variables. A plan
 * variable whose name looks like a credential (..._KEY, ...TOKEN...,
 * ...SECRET..., ...PASSWORD..., AWS_/AZURE_/GOOGLE_ credentials) or that
 * overrides a contract variable is refused, naming it: credentials live in
 * the router.
 */
#ifndef KARS_LOCAL_ENV_H
#define KARS_LOCAL_ENV_H

#include "err.h"

#define KARS_LOCAL_ROUTER_URL "http://127.0.0.1:8443"

/* plan: NULL-terminated "NAME=VALUE" strings (may be NULL). *out is a
 * NULL-terminated array, freed with kars_local_env_free(). */
int kars_local_env_build(const char *const *plan, char ***out, struct kars_err *err);
void kars_local_env_free(char **env);
/* 1 when NAME (up to '=' or the end) looks like a credential. */
int kars_local_env_is_credential(const char *name);

#endif
