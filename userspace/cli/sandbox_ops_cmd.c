/* sandbox_ops_cmd.c - kars egress, model, credentials and audit for one
 * local sandbox, and the options all the per-sandbox verbs share
 * (sandbox_ops_cmd.h). */
#include "sandbox_ops_cmd.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit_cmd.h"
#include "control_client.h"
#include "json.h"
#include "key_install.h"
#include "sandbox_opts.h"
#include "sandbox_ref.h"
#include "store.h"
#include "validate.h"
#include "yamljson.h"

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
	    "  (the store: --state DIR, $KARS_STATE_DIR or " KARS_CLI_DEFAULT_STORE
	    "; the sandboxes:\n"
	    "   --state-dir DIR, else the store's parent directory)\n");
}

/* --- the store --------------------------------------------------------------- */

/* Edits one object: fn changes obj and returns 0, or 1 when there is
 * nothing to change (nothing is written), or -1 after printing why. A
 * Conflict (someone else wrote it between our read and our write) is retried
 * on the new version. *out: the object as stored (or as read when
 * unchanged). */
typedef int (*edit_fn)(json_t *obj, void *arg);

static int edit_object(const struct kars_sbref *ref, const char *kind, const char *name, edit_fn fn,
		       void *arg, json_t **out)
{
	const struct kars_kind *k = kars_kind_find(kind);
	struct kars_store *s = NULL;
	struct kars_err err = {};
	json_t *obj = NULL;
	struct stat st;
	int ret = -1, r;

	*out = NULL;
	if (stat(ref->store, &st) || !S_ISDIR(st.st_mode)) {
		/* opening would create an empty store: say where we looked instead */
		fprintf(stderr,
			"kars: no store at %s (kars up --local creates it; or --state DIR)\n",
			ref->store);
		return -1;
	}
	if (kars_store_open_dir(ref->store, &s, &err)) {
		fprintf(stderr, "kars: %s\n", err.msg);
		return -1;
	}
	for (int attempt = 0; attempt < 5; attempt++) {
		kars_err_clear(&err);
		r = kars_store_get(s, k, ref->ns, name, &obj, &err);
		if (r == -ENOENT) {
			fprintf(stderr,
				"kars: %s %s/%s not found in the store %s (kars get %s -n %s)\n",
				k->kind, ref->ns, name, ref->store, k->plural, ref->ns);
			goto cleanup;
		}
		if (r) {
			fprintf(stderr, "kars: %s\n", err.msg);
			goto cleanup;
		}
		r = fn(obj, arg);
		if (r < 0)
			goto cleanup;
		if (r == 1) {
			*out = obj;
			obj = NULL;
			ret = 1;
			goto cleanup;
		}
		r = kars_store_update(s, obj, out, &err);
		json_decref(obj);
		obj = NULL;
		if (r == 0) {
			ret = 0;
			goto cleanup;
		}
		if (r != -ESTALE) {
			fprintf(stderr, "kars: %s %s/%s not changed: %s\n", k->kind, ref->ns, name,
				err.msg);
			goto cleanup;
		}
	}
	fprintf(stderr, "kars: %s %s/%s: kept changing while we wrote it; try again\n", k->kind,
		ref->ns, name);
cleanup:
	json_decref(obj);
	kars_store_close(s);
	return ret;
}

static int print_data(json_t *o, const char *output)
{
	char *text = !strcmp(output, "yaml") ? kars_yaml_dump(o)
					     : json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	if (!text) {
		fprintf(stderr, "kars: out of memory\n");
		return 1;
	}
	printf("%s%s", text, strcmp(output, "yaml") ? "\n" : "");
	free(text);
	return 0;
}

/* --- egress -------------------------------------------------------------------- */

struct endpoint {
	char host[254];
	long port; /* 0: every port (--deny HOST) */
};

static int parse_endpoint(const char *arg, const char *flag, long dflt, struct endpoint *ep)
{
	const char *colon = strrchr(arg, ':');
	size_t n = colon ? (size_t)(colon - arg) : strlen(arg);
	char *end;

	ep->port = dflt;
	if (colon) {
		errno = 0;
		ep->port = strtol(colon + 1, &end, 10);
		if (errno || *end || !colon[1] || ep->port < 1 || ep->port > 65535) {
			fprintf(stderr, "kars: egress: %s %s: the port must be 1 to 65535\n", flag,
				arg);
			return 2;
		}
	}
	if (n == 0 || n >= sizeof(ep->host)) {
		fprintf(stderr, "kars: egress: %s: expected HOST[:PORT], got \"%s\"\n", flag, arg);
		return 2;
	}
	snprintf(ep->host, sizeof(ep->host), "%.*s", (int)n, arg);
	return 0;
}

static json_t *network_policy(json_t *sb)
{
	json_t *spec = json_object_get(sb, "spec"), *np;

	if (!json_is_object(spec))
		return NULL;
	np = json_object_get(spec, "networkPolicy");
	if (!np) {
		np = json_object();
		json_object_set_new(spec, "networkPolicy", np);
	}
	return json_is_object(np) ? np : NULL;
}

static bool signed_allowlist(const struct kars_sbref *ref, const json_t *np)
{
	if (!json_object_get(np, "allowlistRef"))
		return false;
	fprintf(stderr,
		"kars: egress: sandbox %s takes its egress from a signed allowlist "
		"(spec.networkPolicy.allowlistRef): change that allowlist instead\n",
		ref->owner);
	return true;
}

struct egress_edit {
	const struct kars_sbref *ref;
	const struct endpoint *ep;
	int action; /* 'a', 'd', 'e' */
	int removed;
	char was[16];
};

static int egress_apply(json_t *sb, void *arg)
{
	struct egress_edit *e = arg;
	json_t *np = network_policy(sb), *list, *item;
	size_t i;

	if (!np) {
		fprintf(stderr, "kars: egress: %s: spec.networkPolicy is not an object\n",
			e->ref->owner);
		return -1;
	}
	if (signed_allowlist(e->ref, np))
		return -1;
	if (e->action == 'e') {
		const char *mode = json_string_value(json_object_get(np, "egressMode"));

		snprintf(e->was, sizeof(e->was), "%s", mode ? mode : "Learn");
		if (mode && !strcmp(mode, "Strict"))
			return 1;
		json_object_set_new(np, "egressMode", json_string("Strict"));
		return 0;
	}
	list = json_object_get(np, "allowedEndpoints");
	if (!list) {
		list = json_array();
		json_object_set_new(np, "allowedEndpoints", list);
	}
	if (!json_is_array(list)) {
		fprintf(stderr, "kars: egress: %s: allowedEndpoints is not a list\n",
			e->ref->owner);
		return -1;
	}
	for (i = 0; i < json_array_size(list);) {
		const char *host;
		json_int_t port;

		item = json_array_get(list, i);
		host = json_string_value(json_object_get(item, "host"));
		port = json_object_get(item, "port")
			   ? json_integer_value(json_object_get(item, "port"))
			   : 443;
		if (host && !strcasecmp(host, e->ep->host) &&
		    (!e->ep->port || port == e->ep->port)) {
			if (e->action == 'a')
				return 1; /* already there */
			json_array_remove(list, i);
			e->removed++;
			continue;
		}
		i++;
	}
	if (e->action == 'd') {
		if (e->removed)
			return 0;
		fprintf(stderr,
			"kars: egress: %s%s%.0ld is not in the allowlist of %s; nothing changed "
			"(kars get karssandbox %s -n %s -o yaml shows it)\n",
			e->ep->host, e->ep->port ? ":" : "", e->ep->port, e->ref->owner,
			e->ref->name, e->ref->ns);
		return -1;
	}
	json_array_append_new(
	    list, json_pack("{s:s,s:I}", "host", e->ep->host, "port", (json_int_t)e->ep->port));
	return 0;
}

static const char *str_or(const json_t *o, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : dflt;
}

/* karsd's learned list, each address named when a learned FQDN entry holds
 * it (the router resolved that name to it). */
static int egress_learned(const char *socket_path, const struct kars_sbref *ref, const char *output)
{
	struct kars_err err = {};
	json_t *req, *resp = NULL, *fq = NULL, *e, *f;
	size_t i, j;
	int ret;

	req = json_pack("{s:s,s:s}", "op", "learned", "sandbox", ref->owner);
	ret = kars_control_call(socket_path, req, &resp, &err);
	json_decref(req);
	if (ret) {
		fprintf(stderr, "kars: egress: %s%s\n", err.msg,
			ret == -EPROTO ? " (is the sandbox running? kars status NAME)" : "");
		json_decref(resp);
		return 1;
	}
	req = json_pack("{s:s,s:s}", "op", "fqdn_entries", "sandbox", ref->owner);
	kars_err_clear(&err);
	if (kars_control_call(socket_path, req, &fq, &err)) {
		json_decref(fq);
		fq = NULL;
	}
	json_decref(req);
	json_array_foreach(json_object_get(resp, "learned"), i, e)
	{
		json_array_foreach(json_object_get(fq, "entries"), j, f)
		{
			if (!strcmp(str_or(f, "ip", ""), str_or(e, "ip", "-")))
				json_object_set(e, "name", json_object_get(f, "name"));
		}
	}
	json_decref(fq);
	if (output) {
		json_t *o = json_pack("{s:s,s:O}", "sandbox", ref->owner, "learned",
				      json_object_get(resp, "learned"));

		ret = print_data(o, output);
		json_decref(o);
		json_decref(resp);
		return ret;
	}
	printf("%-7s %-5s %-40s %5s %8s  %s\n", "ROLE", "PROTO", "DESTINATION", "PORT", "COUNT",
	       "NAME");
	json_array_foreach(json_object_get(resp, "learned"), i, e)
	{
		printf("%-7s %-5s %-40s %5lld %8lld  %s\n", str_or(e, "role", "-"),
		       str_or(e, "protocol", "-"), str_or(e, "ip", "-"),
		       json_integer_value(json_object_get(e, "port")),
		       json_integer_value(json_object_get(e, "count")), str_or(e, "name", "-"));
	}
	json_decref(resp);
	return 0;
}

int kars_cli_egress(const char *socket_path, int argc, char **argv)
{
	struct sbopts o;
	struct sbref_cmd cmd = {"egress",
				"NAME --learned | --approve HOST[:PORT] | "
				"--deny HOST[:PORT] | --enforce",
				SBOPT_LEARNED | SBOPT_APPROVE | SBOPT_DENY | SBOPT_ENFORCE |
				    SBOPT_OUTPUT};
	struct kars_sbref ref;
	struct endpoint ep = {};
	struct egress_edit e = {.ref = &ref, .ep = &ep};
	json_t *out = NULL;
	int n, ret;

	if ((ret = sbopts_parse(&cmd, argc, argv, &o)) != 0)
		return ret == -1 ? 0 : ret;
	n = o.learned + !!o.approve + !!o.deny + o.enforce;
	if (n != 1 || o.nargs != 1)
		return sbopts_usage_error(&cmd, n != 1 ? "give exactly one of --learned, "
							 "--approve, --deny, --enforce"
						       : "expected one NAME");
	if (o.output && !o.learned)
		return sbopts_usage_error(&cmd, "-o goes with --learned");
	if (o.approve && (ret = parse_endpoint(o.approve, "--approve", 443, &ep)))
		return ret;
	if (o.deny && (ret = parse_endpoint(o.deny, "--deny", 0, &ep)))
		return ret;
	if (sbopts_resolve(&cmd, &o, o.args[0], &ref))
		return 1;
	if (o.learned)
		return egress_learned(socket_path, &ref, o.output);
	e.action = o.approve ? 'a' : o.deny ? 'd' : 'e';
	ret = edit_object(&ref, "KarsSandbox", ref.name, egress_apply, &e, &out);
	json_decref(out);
	if (ret < 0)
		return 1;
	if (e.action == 'e')
		printf("karssandbox %s: egress mode %s%s\n", ref.owner,
		       ret == 1 ? "is already Strict" : "Strict (was ",
		       ret == 1			 ? ""
		       : strcmp(e.was, "Strict") ? "Learn)"
						 : "Strict)");
	else if (e.action == 'a')
		printf("karssandbox %s: %s:%ld %s\n", ref.owner, ep.host, ep.port,
		       ret == 1 ? "is already allowed" : "allowed");
	else
		printf("karssandbox %s: %s%s%.0ld denied (%d allowlist entr%s removed)\n",
		       ref.owner, ep.host, ep.port ? ":" : "", ep.port, e.removed,
		       e.removed == 1 ? "y" : "ies");
	if (ret == 0)
		printf("the controller applies it in karsd (kars get karssandbox %s -n %s)\n",
		       ref.name, ref.ns);
	return 0;
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
	if (edit_object(&ref, "KarsSandbox", ref.name, sandbox_policy, &m, &out) < 0)
		return 1;
	json_decref(out);
	ret = edit_object(&ref, "InferencePolicy", m.policy, model_apply, &m, &out);
	if (ret >= 0 && strcmp(str_or(json_object_get(json_object_get(out, "spec"), "appliesTo"),
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
	return 0;
}

/* --- audit ------------------------------------------------------------------------- */

/* The log: from the run file, or where the backend puts it when the sandbox
 * is stopped (its directories stay until it is deleted). */
static int audit_file(const struct kars_sbref *ref, char *out, size_t len)
{
	struct kars_err err = {};
	struct kars_sbrun run;
	int ret = kars_sbref_run(ref, &run, &err);

	if (ret == 0) {
		snprintf(out, len, "%s", run.audit_file);
		return 0;
	}
	if (snprintf(out, len, "%s/audit.jsonl", ref->router_dir) >= (int)len) {
		fprintf(stderr, "kars: audit: %s: path too long\n", ref->router_dir);
		return -1;
	}
	if (ret == -ENOENT && access(out, F_OK) == 0)
		return 0;
	if (ret == -ENOENT)
		fprintf(stderr,
			"kars: audit: no audit log for sandbox %s: %s does not exist "
			"(kars list shows the sandboxes of this host; a log FILE is taken when it "
			"exists)\n",
			ref->owner, out);
	else
		fprintf(stderr, "kars: audit: %s\n", err.msg);
	return -1;
}

/* One record: as written (-o json), or SEQ TIME ACTION DECISION PRINCIPAL
 * MODEL REASON. */
static void print_audit(const char *line, bool raw)
{
	struct kars_err err = {};
	json_t *r;

	if (raw) {
		fputs(line, stdout);
		return;
	}
	r = kars_json_parse(line, strlen(line), &err);
	if (!r) {
		printf("(unreadable record: %s)\n", err.msg);
		return;
	}
	if (!strcmp(str_or(r, "kind", ""), "checkpoint"))
		printf("%-6lld %-20s %-22s %-9s key %.16s...\n",
		       json_integer_value(json_object_get(r, "seq")), str_or(r, "time", "-"),
		       "(checkpoint)", "signed", str_or(r, "key", "-"));
	else
		printf("%-6lld %-20s %-22s %-9s %-10s %-14s %s\n",
		       json_integer_value(json_object_get(r, "seq")), str_or(r, "time", "-"),
		       str_or(r, "action", "-"), str_or(r, "decision", "-"),
		       str_or(r, "principal", "-"), str_or(r, "model", "-"),
		       str_or(r, "reason", ""));
	json_decref(r);
}

static int audit_tail(const struct sbopts *o, const char *file)
{
	long lines = o->lines > 0 ? o->lines : 10;
	char **ring = calloc(lines, sizeof(*ring)), *line = NULL;
	size_t cap = 0, n = 0;
	FILE *f = fopen(file, "r");
	ssize_t got;

	if (!f || !ring) {
		fprintf(stderr, "kars: audit: %s: %s\n", file, strerror(errno));
		free(ring);
		if (f)
			fclose(f);
		return 1;
	}
	while ((got = getline(&line, &cap, f)) > 0) {
		free(ring[n % lines]);
		ring[n % lines] = strdup(line);
		n++;
	}
	for (size_t i = n > (size_t)lines ? n - lines : 0; i < n; i++) {
		print_audit(ring[i % lines], o->output != NULL);
		free(ring[i % lines]);
		ring[i % lines] = NULL;
	}
	free(ring);
	fflush(stdout);
	while (o->follow) {
		clearerr(f);
		got = getline(&line, &cap, f);
		if (got > 0 && line[got - 1] == '\n') {
			print_audit(line, o->output != NULL);
			fflush(stdout);
			continue;
		}
		if (got > 0)
			fseek(f, -got, SEEK_CUR); /* a record still being written */
		usleep(200 * 1000);
	}
	free(line);
	fclose(f);
	return 0;
}

int kars_cli_audit_sandbox(int argc, char **argv)
{
	struct sbref_cmd cmd = {"audit",
				"verify NAME [--pubkey FILE] | tail NAME [--lines N] "
				"[-f] [-o json]",
				SBOPT_PUBKEY | SBOPT_LINES | SBOPT_FOLLOW | SBOPT_OUTPUT};
	char file[PATH_MAX], pub[PATH_MAX + 16];
	struct kars_sbref ref;
	struct sbopts o;
	int ret;

	if ((ret = sbopts_parse(&cmd, argc, argv, &o)) != 0)
		return ret == -1 ? 0 : ret;
	if (o.nargs != 2 || (strcmp(o.args[0], "verify") && strcmp(o.args[0], "tail")))
		return sbopts_usage_error(&cmd, "expected: verify NAME or tail NAME");
	if (!strcmp(o.args[0], "verify") && (o.lines || o.follow || o.output))
		return sbopts_usage_error(&cmd, "--lines, -f and -o go with tail");
	if (!strcmp(o.args[0], "tail") && o.pubkey)
		return sbopts_usage_error(&cmd, "--pubkey goes with verify");
	if (o.output && strcmp(o.output, "json"))
		return sbopts_usage_error(&cmd, "tail -o: only json (the records as written)");
	if (sbopts_resolve(&cmd, &o, o.args[1], &ref) || audit_file(&ref, file, sizeof(file)))
		return 1;
	if (!strcmp(o.args[0], "tail"))
		return audit_tail(&o, file);
	/* The key the router wrote beside its signing key, unless one is given:
	 * then the chain is checked against who should have signed it. */
	snprintf(pub, sizeof(pub), "%s/audit.key.pub", ref.router_dir);
	if (!o.pubkey && access(pub, R_OK) == 0)
		o.pubkey = pub;
	return kars_cli_audit_verify_file(file, o.pubkey);
}
