/* sandbox_egress.c - `kars egress NAME --learned | --approve HOST[:PORT] |
 * --deny HOST[:PORT] | --enforce` (docs/cli.md): the allowlist and mode of
 * the KarsSandbox in the store, and karsd's learned list. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control_client.h"
#include "sandbox_ops_cmd.h"
#include "sandbox_opts.h"
#include "sandbox_store.h"

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
	const char *mode;
	size_t i;

	if (!np) {
		fprintf(stderr, "kars: egress: %s: spec.networkPolicy is not an object\n",
			e->ref->owner);
		return -1;
	}
	if (signed_allowlist(e->ref, np))
		return -1;
	mode = json_string_value(json_object_get(np, "egressMode"));
	snprintf(e->was, sizeof(e->was), "%s", mode ? mode : "Learn");
	if (e->action == 'e') {
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
			if (!strcmp(kars_json_str_or(f, "ip", ""), kars_json_str_or(e, "ip", "-")))
				json_object_set(e, "name", json_object_get(f, "name"));
		}
	}
	json_decref(fq);
	if (output) {
		json_t *o = json_pack("{s:s,s:O}", "sandbox", ref->owner, "learned",
				      json_object_get(resp, "learned"));

		ret = kars_cli_print_data(o, output);
		json_decref(o);
		json_decref(resp);
		return ret;
	}
	printf("%-7s %-5s %-40s %5s %8s  %s\n", "ROLE", "PROTO", "DESTINATION", "PORT", "COUNT",
	       "NAME");
	json_array_foreach(json_object_get(resp, "learned"), i, e)
	{
		printf("%-7s %-5s %-40s %5lld %8lld  %s\n", kars_json_str_or(e, "role", "-"),
		       kars_json_str_or(e, "protocol", "-"), kars_json_str_or(e, "ip", "-"),
		       json_integer_value(json_object_get(e, "port")),
		       json_integer_value(json_object_get(e, "count")),
		       kars_json_str_or(e, "name", "-"));
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
	ret = kars_sbstore_edit(&ref, "KarsSandbox", ref.name, egress_apply, &e, &out);
	json_decref(out);
	if (ret < 0)
		return 1;
	if (e.action == 'e' && ret == 1)
		printf("karssandbox %s: egress mode is already Strict\n", ref.owner);
	else if (e.action == 'e')
		printf("karssandbox %s: egress mode Strict (was %s)\n", ref.owner, e.was);
	else if (e.action == 'a')
		printf("karssandbox %s: %s:%ld %s\n", ref.owner, ep.host, ep.port,
		       ret == 1 ? "is already allowed" : "allowed");
	else
		printf("karssandbox %s: %s%s%.0ld denied (%d allowlist entr%s removed)%s\n",
		       ref.owner, ep.host, ep.port ? ":" : "", ep.port, e.removed,
		       e.removed == 1 ? "y" : "ies",
		       strcmp(e.was, "Strict") ? "; in Learn mode it is still let through and "
						 "recorded: --enforce refuses it"
					       : "");
	if (ret == 0)
		printf("the controller applies it in karsd (kars get karssandbox %s -n %s)\n",
		       ref.name, ref.ns);
	return 0;
}
