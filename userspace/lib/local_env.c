/* local_env.c - the agent's environment, built from nothing (local_env.h). */
#include "local_env.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static const char *const contract[] = {
    "OPENAI_BASE_URL=" KARS_LOCAL_ROUTER_URL "/v1",
    "OPENAI_API_BASE=" KARS_LOCAL_ROUTER_URL "/v1",
    "AZURE_OPENAI_ENDPOINT=" KARS_LOCAL_ROUTER_URL,
    "ANTHROPIC_BASE_URL=" KARS_LOCAL_ROUTER_URL,
    "KARS_ROUTER_URL=" KARS_LOCAL_ROUTER_URL,
    "PATH=/usr/local/bin:/usr/bin:/bin",
    "HOME=/sandbox",
    "TMPDIR=/tmp",
    "LANG=C.UTF-8",
};
#define N_CONTRACT (sizeof(contract) / sizeof(contract[0]))

static bool has_word(const char *up, const char *w)
{
	return strstr(up, w) != NULL;
}

int kars_local_env_is_credential(const char *name)
{
	static const char *const words[] = {"KEY",     "TOKEN",	     "SECRET", "PASSWORD",
					    "PASSWD",  "CREDENTIAL", "AUTH",   "COOKIE",
					    "SESSION", "PRIVATE",    "CERT"};
	static const char *const prefixes[] = {
	    "AWS_", "AZURE_CLIENT", "AZURE_TENANT", "GOOGLE_APPLICATION", "GH_", "GITHUB_"};
	char up[256];
	size_t n = strcspn(name, "=");

	if (n >= sizeof(up))
		n = sizeof(up) - 1;
	for (size_t i = 0; i < n; i++)
		up[i] = (char)toupper((unsigned char)name[i]);
	up[n] = '\0';
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (has_word(up, words[i]))
			return 1;
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (strncmp(up, prefixes[i], strlen(prefixes[i])) == 0)
			return 1;
	return 0;
}

void kars_local_env_free(char **env)
{
	if (!env)
		return;
	for (char **e = env; *e; e++)
		free(*e);
	free(env);
}

int kars_local_env_build(const char *const *plan, char ***out, struct kars_err *err)
{
	size_t n_plan = 0, k = 0;
	char **env;

	*out = NULL;
	while (plan && plan[n_plan])
		n_plan++;
	env = calloc(N_CONTRACT + n_plan + 1, sizeof(*env));
	if (!env)
		return kars_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < N_CONTRACT; i++)
		if (!(env[k++] = strdup(contract[i])))
			goto nomem;
	for (size_t i = 0; i < n_plan; i++) {
		const char *v = plan[i], *eq = strchr(v, '=');
		size_t len = eq ? (size_t)(eq - v) : 0;

		if (!eq || len == 0) {
			kars_local_env_free(env);
			return kars_err_set(err, EINVAL, "env[%zu]: \"%.64s\" is not NAME=VALUE", i,
					    v);
		}
		for (size_t j = 0; j < N_CONTRACT; j++)
			if (strncmp(contract[j], v, len + 1) == 0) {
				kars_local_env_free(env);
				return kars_err_set(err, EINVAL,
						    "env[%zu]: %.*s is set by kars and cannot be "
						    "overridden",
						    i, (int)len, v);
			}
		if (kars_local_env_is_credential(v)) {
			kars_local_env_free(env);
			return kars_err_set(err, EPERM,
					    "env[%zu]: %.*s looks like a credential; credentials "
					    "belong to the router, never the agent",
					    i, (int)len, v);
		}
		if (!(env[k++] = strdup(v)))
			goto nomem;
	}
	*out = env;
	return 0;
nomem:
	kars_local_env_free(env);
	return kars_err_set(err, ENOMEM, "out of memory");
}
