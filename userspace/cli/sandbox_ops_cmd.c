/* sandbox_ops_cmd.c - the usage of the per-sandbox verbs, `kars model set`
 * and `kars credentials update` (sandbox_ops_cmd.h). */
#include "sandbox_ops_cmd.h"

#include <string.h>

#include "key_install.h"
#include "sandbox_opts.h"
#include "sandbox_store.h"
#include "upstream_file.h"

void kars_cli_sandbox_ops_usage(FILE *f)
{
	fprintf(
	    f,
	    "\n"
	    "Per-sandbox commands (local mode; NAME or NS/NAME, -n NS, docs/cli.md):\n"
	    "  egress NAME --learned [-o json|yaml]   destinations karsd recorded in learn mode\n"
	    "  egress NAME --approve HOST[:PORT]      add to the sandbox's allowlist (port 443)\n"
	    "  egress NAME --deny HOST[:PORT]         take it off the allowlist\n"
	    "  egress NAME --enforce                  egress mode Learn -> Strict\n"
	    "  model set NAME MODEL                   the primary model of its InferencePolicy\n"
	    "  credentials update NAME --api-key-file FILE\n"
	    "                                         replace the router's upstream key\n"
	    "  trace NAME --network [-o json]         live verdicts of this sandbox\n"
	    "  audit verify NAME [--pubkey FILE]      check the router's audit chain\n"
	    "  audit tail NAME [--lines N] [-f] [-o json]\n"
	    "                                         its last records (-f: follow)\n"
	    "  connect NAME [-- COMMAND [ARG...]]     a shell as the agent, inside its sandbox\n"
	    "  (--state-dir DIR: kars up --local's directory, $KARS_LOCAL_DIR or the store's\n"
	    "   parent; --state DIR: the store, DIR/state, $KARS_STATE_DIR or\n"
	    "   " KARS_CLI_DEFAULT_STORE ")\n");
}

/* --- model ------------------------------------------------------------------------ */

struct model_edit {
	const char *model;
	char was[256];
	char policy[254];
};

static int sandbox_policy(json_t *sb, void *arg)
{
	struct model_edit *m = arg;
	const char *ip = json_string_value(
	    json_object_get(json_object_get(json_object_get(sb, "spec"), "inferenceRef"), "name"));

	if (!ip) {
		fprintf(stderr,
			"kars: model: the sandbox has no InferencePolicy (spec.inferenceRef): "
			"create one (kars add NAME --model M, or kars apply -f)\n");
		return -1;
	}
	snprintf(m->policy, sizeof(m->policy), "%s", ip);
	return 1; /* read only */
}

static int model_apply(json_t *ip, void *arg)
{
	struct model_edit *m = arg;
	json_t *spec = json_object_get(ip, "spec"), *pref, *primary;
	const char *cur;

	if (json_object_get(spec, "bundleRef")) {
		fprintf(stderr,
			"kars: model: InferencePolicy %s comes from a signed bundle "
			"(spec.bundleRef): change the bundle instead\n",
			m->policy);
		return -1;
	}
	pref = json_object_get(spec, "modelPreference");
	if (!pref) {
		pref = json_object();
		json_object_set_new(spec, "modelPreference", pref);
	}
	primary = json_object_get(pref, "primary");
	if (!primary) {
		primary = json_object();
		json_object_set_new(pref, "primary", primary);
	}
	if (!json_is_object(primary)) {
		fprintf(stderr, "kars: model: %s: modelPreference.primary is not an object\n",
			m->policy);
		return -1;
	}
	cur = json_string_value(json_object_get(primary, "deployment"));
	snprintf(m->was, sizeof(m->was), "%s", cur ? cur : "none");
	if (cur && !strcmp(cur, m->model))
		return 1;
	json_object_set_new(primary, "deployment", json_string(m->model));
	return 0;
}

int kars_cli_model(int argc, char **argv)
{
	struct sbref_cmd cmd = {"model", "set NAME MODEL", 0};
	struct model_edit m = {};
	struct kars_sbref ref;
	struct sbopts o;
	json_t *out = NULL;
	int ret;

	if ((ret = sbopts_parse(&cmd, argc, argv, &o)) != 0)
		return ret == -1 ? 0 : ret;
	if (o.nargs != 3 || strcmp(o.args[0], "set"))
		return sbopts_usage_error(&cmd, "expected: set NAME MODEL");
	m.model = o.args[2];
	if (!*m.model)
		return sbopts_usage_error(&cmd, "MODEL is empty");
	if (sbopts_resolve(&cmd, &o, o.args[1], &ref))
		return 1;
	if (kars_sbstore_edit(&ref, "KarsSandbox", ref.name, sandbox_policy, &m, &out) < 0)
		return 1;
	json_decref(out);
	ret = kars_sbstore_edit(&ref, "InferencePolicy", m.policy, model_apply, &m, &out);
	if (ret >= 0 &&
	    strcmp(kars_json_str_or(json_object_get(json_object_get(out, "spec"), "appliesTo"),
				    "sandboxName", ""),
		   ref.name))
		fprintf(stderr,
			"kars: model: note: InferencePolicy %s/%s is not for %s alone "
			"(spec.appliesTo): every sandbox it applies to gets the model\n",
			ref.ns, m.policy, ref.name);
	json_decref(out);
	if (ret < 0)
		return 1;
	if (ret == 1)
		printf("inferencepolicy %s/%s: the model is already %s\n", ref.ns, m.policy,
		       m.model);
	else
		printf("inferencepolicy %s/%s: model %s (was %s); the controller delivers it to "
		       "the router, which loads it without a restart\n",
		       ref.ns, m.policy, m.model, m.was);
	return 0;
}

/* --- credentials --------------------------------------------------------------------- */

int kars_cli_credentials(int argc, char **argv)
{
	struct sbref_cmd cmd = {"credentials", "update NAME --api-key-file FILE",
				SBOPT_API_KEY_FILE};
	struct kars_err err = {};
	struct kars_sbref ref;
	struct kars_sbrun run;
	struct sbopts o;
	int ret;

	if ((ret = sbopts_parse(&cmd, argc, argv, &o)) != 0)
		return ret == -1 ? 0 : ret;
	if (o.nargs != 2 || strcmp(o.args[0], "update"))
		return sbopts_usage_error(&cmd, "expected: update NAME --api-key-file FILE");
	if (!o.api_key_file)
		return sbopts_usage_error(&cmd, "--api-key-file FILE is required");
	if (sbopts_resolve(&cmd, &o, o.args[1], &ref))
		return 1;
	if (kars_sbref_run(&ref, &run, &err) ||
	    kars_key_install(o.api_key_file, &ref, &run, &err)) {
		fprintf(stderr, "kars: credentials: %s\n", err.msg);
		return 1;
	}
	printf("sandbox %s: upstream key replaced in %s (mode 0600, uid %u); the router uses "
	       "it from its next request\n",
	       ref.owner, run.api_key_file, (unsigned)run.router_uid);
	ret = kars_upstream_follow_key(&ref, run.api_key_file, &err);
	if (ret < 0) {
		fprintf(stderr, "kars: credentials: the key is installed, but: %s\n", err.msg);
		return 1;
	}
	if (ret == 1)
		fprintf(stderr,
			"kars: credentials: note: sandbox %s has no upstream (%s/upstream.json): "
			"its router holds the key but refuses inference until one is configured "
			"(docs/local-mode.md)\n",
			ref.owner, ref.dir);
	return 0;
}
