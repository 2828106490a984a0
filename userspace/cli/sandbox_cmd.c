/* sandbox_cmd.c - kars add / list / status / logs / delete (sandbox_cmd.h).
 *
 * add writes objects to the store (after the validator passed every one of
 * them: nothing is written otherwise); the controller's local backend does
 * the rest. status and list read the object's status and the backend's
 * contract file <state>/sandboxes/<ns>/<name>/run/router.json.
 */
#include "sandbox_cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "deliver.h"
#include "names.h"
#include "schema.h"
#include "store.h"
#include "up_cmd.h"
#include "validate.h"
#include "yamljson.h"

#define MAX_ALLOW	 64
#define DELETE_WAIT_S	 60
#define DEFAULT_MODEL	 "gpt-4o-mini"
#define CREATED_BY_LABEL "kars.azure.com/created-by"

struct common {
	const char *dir, *ns, *output;
	char store[PATH_MAX];
};

enum {
	OPT_STATE_DIR = 0x100,
	OPT_RUNTIME,
	OPT_COMMAND,
	OPT_MODEL,
	OPT_BUDGET,
	OPT_LEARN,
	OPT_ALLOW,
	OPT_DRY_RUN,
	OPT_NO_WAIT,
	OPT_ROLE,
};

#define COMMON_OPTIONS                                                                             \
	{"state-dir", required_argument, NULL, OPT_STATE_DIR},                                     \
	    {"namespace", required_argument, NULL, 'n'}, {"output", required_argument, NULL, 'o'}, \
	{                                                                                          \
		"help", no_argument, NULL, 'h'                                                     \
	}

void kars_cli_sandbox_usage(FILE *f)
{
	fprintf(f,
		"  add NAME --command CMD [-- ARG...] [--runtime byo] [--model [PROVIDER/]M]\n"
		"      [--token-budget-daily N] [--learn-egress] [--allow HOST[:PORT]]...\n"
		"      [--dry-run [-o yaml|json]]\n"
		"                                a sandbox running CMD (split on spaces) on this\n"
		"                                host: a KarsSandbox and its InferencePolicy in\n"
		"                                the store; egress Strict unless --learn-egress\n"
		"  list [-A]                     sandboxes, their phase and router port\n"
		"  status NAME [-o json|yaml]    phase, conditions, processes, ports (exit 3:\n"
		"                                not Running)\n"
		"  logs NAME [-f] [--role agent|router]\n"
		"                                the agent's and the router's logs\n"
		"  delete NAME [--no-wait]       delete a sandbox: its processes, cgroups, UIDs\n"
		"                                and data-plane policy go; waits until they are\n"
		"                                gone\n"
		"    sandbox verbs: [-n NS] (default \"default\") [--state-dir DIR] (kars up's,\n"
		"    $KARS_LOCAL_DIR or " KARS_LOCAL_STATE_DIR
		"); exit 0 done, 1 failed, 2 bad usage\n");
}

static int usage_error(const char *verb, const char *fmt, const char *arg)
{
	fprintf(stderr, "kars: %s: ", verb);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (kars %s --help)\n", verb);
	return 2;
}

static int common_opt(struct common *c, int opt, const char *verb)
{
	switch (opt) {
	case OPT_STATE_DIR:
		c->dir = optarg;
		return 0;
	case 'n':
		c->ns = optarg;
		return 0;
	case 'o':
		if (strcmp(optarg, "json") && strcmp(optarg, "yaml"))
			return usage_error(verb, "-o: \"%s\": expected json or yaml", optarg);
		c->output = optarg;
		return 0;
	case 'h':
		kars_cli_sandbox_usage(stdout);
		return -1;
	default:
		return 2;
	}
}

static void common_init(struct common *c)
{
	memset(c, 0, sizeof(*c));
	c->dir = getenv("KARS_LOCAL_DIR") ?: KARS_LOCAL_STATE_DIR;
	c->ns = "default";
	optind = 1;
}

static int common_done(struct common *c, const char *verb, int argc, char **argv, const char **name)
{
	struct kars_err err = {0};
	char id[320];

	if (name) {
		if (optind != argc - 1)
			return usage_error(
			    verb, "%s", optind >= argc ? "NAME is required" : "exactly one NAME");
		*name = argv[optind];
		snprintf(id, sizeof(id), "%s/%s", c->ns, *name);
		if (kars_sandbox_name_check(id, "NAME", &err)) {
			fprintf(stderr, "kars: %s: %s\n", verb, err.msg);
			return 2;
		}
	} else if (optind != argc) {
		return usage_error(verb, "unexpected argument \"%s\"", argv[optind]);
	}
	snprintf(c->store, sizeof(c->store), "%s/state", c->dir);
	return 0;
}

static struct kars_store *open_store(const struct common *c)
{
	struct kars_store *s = NULL;
	struct kars_err err = {0};

	if (kars_store_open_dir(c->store, &s, &err)) {
		fprintf(stderr, "kars: %s: %s\n", c->store, err.msg);
		return NULL;
	}
	return s;
}

static bool made_by_add(const json_t *obj)
{
	const json_t *labels = json_object_get(json_object_get(obj, "metadata"), "labels");

	return !strcmp(json_string_value(json_object_get(labels, CREATED_BY_LABEL)) ?: "",
		       "kars-add");
}

/* HOST[:PORT], [V6]:PORT. */
static json_t *endpoint(const char *arg)
{
	char host[256];
	const char *colon = NULL;
	unsigned long port = 443;
	size_t n;

	if (arg[0] == '[') {
		const char *end = strchr(arg, ']');

		if (!end || (end[1] && end[1] != ':'))
			return NULL;
		n = (size_t)(end - arg - 1);
		memcpy(host, arg + 1, n < sizeof(host) ? n : 0);
		colon = end[1] ? end + 1 : NULL;
	} else {
		colon = strchr(arg, ':');
		n = colon ? (size_t)(colon - arg) : strlen(arg);
		if (colon && strchr(colon + 1, ':'))
			return NULL; /* a bare IPv6 address needs brackets */
		if (n < sizeof(host))
			memcpy(host, arg, n);
	}
	if (!n || n >= sizeof(host))
		return NULL;
	host[n] = '\0';
	if (colon) {
		char *end;

		port = strtoul(colon + 1, &end, 10);
		if (!colon[1] || *end || port < 1 || port > 65535)
			return NULL;
	}
	return json_pack("{s:s,s:I}", "host", host, "port", (json_int_t)port);
}

static json_t *split_words(const char *s)
{
	json_t *a = json_array();
	char *copy = strdup(s), *save = NULL;

	for (char *w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save))
		json_array_append_new(a, json_string(w));
	free(copy);
	return a;
}

static int validate_all(json_t *docs[], int n)
{
	int bad = 0;

	for (int i = 0; i < n; i++) {
		struct kars_problems p = {0};
		const struct kars_kind *k = NULL;

		if (kars_validate_object(docs[i], &k, &p)) {
			const char *name = json_string_value(
			    json_object_get(json_object_get(docs[i], "metadata"), "name"));

			for (size_t j = 0; j < p.count; j++)
				fprintf(stderr, "kars: add: the %s \"%s\" is invalid: %s\n",
					k ? k->kind : "object", name ? name : "", p.msg[j]);
			bad = 1;
		}
	}
	return bad;
}

int kars_cli_sandbox_add(int argc, char **argv)
{
	static const struct option opts[] = {
	    COMMON_OPTIONS,
	    {"runtime", required_argument, NULL, OPT_RUNTIME},
	    {"command", required_argument, NULL, OPT_COMMAND},
	    {"model", required_argument, NULL, OPT_MODEL},
	    {"token-budget-daily", required_argument, NULL, OPT_BUDGET},
	    {"learn-egress", no_argument, NULL, OPT_LEARN},
	    {"allow", required_argument, NULL, OPT_ALLOW},
	    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
	    {NULL, 0, NULL, 0},
	};
	const char *name = NULL, *command = NULL, *model = DEFAULT_MODEL, *budget = NULL;
	json_t *allow = json_array(), *docs[2] = {NULL, NULL}, *cmd, *args, *cur = NULL, *out;
	bool learn = false, dry = false, dashdash = false;
	struct kars_store *s = NULL;
	struct kars_err err = {0};
	char provider[64] = "openai";
	struct common c;
	int opt, ret = 2;

	common_init(&c);
	/* Options stop at "--"; what follows are the command's arguments. */
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--")) {
			dashdash = true;
			break;
		}
	while ((opt = getopt_long(argc, argv, "n:o:h", opts, NULL)) != -1) {
		json_t *ep;

		switch (opt) {
		case OPT_RUNTIME:
			if (strcmp(optarg, "byo") && strcmp(optarg, "BYO")) {
				ret = usage_error(
				    "add",
				    "--runtime: \"%s\": local mode runs byo only (a command "
				    "on this host)",
				    optarg);
				goto out;
			}
			break;
		case OPT_COMMAND:
			command = optarg;
			break;
		case OPT_MODEL: {
			const char *slash = strchr(optarg, '/');

			if (slash) {
				snprintf(provider, sizeof(provider), "%.*s", (int)(slash - optarg),
					 optarg);
				model = slash + 1;
			} else {
				model = optarg;
			}
			break;
		}
		case OPT_BUDGET: {
			char *end;

			strtoull(optarg, &end, 10);
			if (*optarg < '1' || *optarg > '9' || *end) {
				ret = usage_error(
				    "add", "--token-budget-daily: \"%s\" is not a positive number",
				    optarg);
				goto out;
			}
			budget = optarg;
			break;
		}
		case OPT_LEARN:
			learn = true;
			break;
		case OPT_ALLOW:
			ep = endpoint(optarg);
			if (!ep || json_array_size(allow) == MAX_ALLOW) {
				ret =
				    usage_error("add",
						ep ? "--allow: more than 64 endpoints (at \"%s\")"
						   : "--allow: \"%s\": expected HOST, HOST:PORT or "
						     "[IPv6]:PORT",
						optarg);
				json_decref(ep);
				goto out;
			}
			json_array_append_new(allow, ep);
			break;
		case OPT_DRY_RUN:
			dry = true;
			break;
		default:
			if ((ret = common_opt(&c, opt, "add")) == -1)
				ret = 0;
			if (ret || opt == 'h')
				goto out;
		}
	}
	if (optind >= argc) {
		ret = usage_error("add", "%s", "NAME is required");
		goto out;
	}
	name = argv[optind++];
	if (optind < argc && !dashdash) {
		ret = usage_error("add",
				  "unexpected argument \"%s\" (the command's arguments go "
				  "after --)",
				  argv[optind]);
		goto out;
	}
	if (!command) {
		ret = usage_error("add", "%s",
				  "--command CMD is required (what the sandbox runs, e.g. "
				  "--command demo/sample-agent)");
		goto out;
	}
	if (c.output && !dry) {
		ret = usage_error("add", "%s", "-o goes with --dry-run");
		goto out;
	}
	if ((ret = common_done(&c, "add", optind, argv, NULL)))
		goto out;
	ret = 1;
	cmd = split_words(command);
	args = json_array();
	for (int i = optind; i < argc; i++)
		json_array_append_new(args, json_string(argv[i]));
	if (!json_array_size(cmd)) {
		json_decref(cmd);
		json_decref(args);
		ret = usage_error("add", "%s", "--command: empty");
		goto out;
	}
	/* Local mode runs the command on this host: the image is a label. */
	docs[0] = json_pack(
	    "{s:s,s:s,s:{s:s,s:s,s:{s:s}},s:{s:{s:s,s:{s:s,s:s,s:o,s:o}},s:{s:s},"
	    "s:{s:s},s:{s:s,s:O}}}",
	    "apiVersion", KARS_GROUP "/" KARS_VERSION, "kind", "KarsSandbox", "metadata", "name",
	    name, "namespace", c.ns, "labels", CREATED_BY_LABEL, "kars-add", "spec", "runtime",
	    "kind", "BYO", "byo", "image", "local:byo", "contractVersion", "v1", "command", cmd,
	    "args", args, "sandbox", "isolation", "enhanced", "inferenceRef", "name", name,
	    "networkPolicy", "egressMode", learn ? "Learn" : "Strict", "allowedEndpoints", allow);
	docs[1] = json_pack("{s:s,s:s,s:{s:s,s:s,s:{s:s}},s:{s:{s:s},s:{s:{s:s,s:s}}}}",
			    "apiVersion", KARS_GROUP "/" KARS_VERSION, "kind", "InferencePolicy",
			    "metadata", "name", name, "namespace", c.ns, "labels", CREATED_BY_LABEL,
			    "kars-add", "spec", "appliesTo", "action", "*", "modelPreference",
			    "primary", "provider", provider, "deployment", model);
	if (!docs[0] || !docs[1]) {
		fprintf(stderr, "kars: add: out of memory\n");
		goto out;
	}
	if (budget)
		json_object_set_new(
		    json_object_get(docs[1], "spec"), "tokenBudget",
		    json_pack("{s:I}", "dailyTokens", (json_int_t)strtoll(budget, NULL, 10)));
	if (validate_all(docs, 2))
		goto out;
	if (dry) {
		for (int i = 0; i < 2; i++) {
			char *text = c.output && !strcmp(c.output, "json")
					 ? json_dumps(docs[i], JSON_INDENT(2) | JSON_PRESERVE_ORDER)
					 : kars_yaml_dump(docs[i]);

			printf("%s%s%s",
			       i && (!c.output || strcmp(c.output, "json")) ? "---\n" : "",
			       text ? text : "", c.output && !strcmp(c.output, "json") ? "\n" : "");
			free(text);
		}
		ret = 0;
		goto out;
	}
	if (!(s = open_store(&c)))
		goto out;
	if (kars_store_get(s, kars_kind_find("KarsSandbox"), c.ns, name, &cur, &err) != -ENOENT) {
		fprintf(stderr, "kars: add: sandbox %s/%s already exists (kars delete %s first)\n",
			c.ns, name, name);
		goto out;
	}
	kars_err_clear(&err);
	/* The policy first: the sandbox never waits on a missing reference. */
	for (int i = 1; i >= 0; i--) {
		json_t *old = NULL;
		const struct kars_kind *k = kars_kind_find(i ? "InferencePolicy" : "KarsSandbox");

		if (i && !kars_store_get(s, k, c.ns, name, &old, &err)) {
			if (!made_by_add(old)) {
				fprintf(stderr,
					"kars: add: InferencePolicy %s/%s exists and was not made "
					"by kars add: left alone, nothing written (pick another "
					"NAME)\n",
					c.ns, name);
				json_decref(old);
				ret = 1;
				goto out;
			}
			json_object_set(
			    json_object_get(docs[i], "metadata"), "resourceVersion",
			    json_object_get(json_object_get(old, "metadata"), "resourceVersion"));
			json_decref(old);
			ret = kars_store_update(s, docs[i], &out, &err);
		} else {
			kars_err_clear(&err);
			ret = kars_store_create(s, docs[i], &out, &err);
		}
		if (ret) {
			fprintf(stderr, "kars: add: %s: %s\n", k->kind, err.msg);
			ret = 1;
			goto out;
		}
		json_decref(out);
	}
	printf("sandbox %s/%s added; kars status %s shows when it runs\n", c.ns, name, name);
	ret = 0;
out:
	json_decref(allow);
	json_decref(docs[0]);
	json_decref(docs[1]);
	json_decref(cur);
	if (s)
		kars_store_close(s);
	return ret;
}

/* The backend's contract file of ns/name, or NULL. */
static json_t *contract(const struct common *c, const char *ns, const char *name)
{
	char path[PATH_MAX * 2];

	snprintf(path, sizeof(path), "%s/sandboxes/%s/%s/run/router.json", c->dir, ns, name);
	return json_load_file(path, 0, NULL);
}

static const char *condition(const json_t *obj, const char *type, const char *field)
{
	const json_t *cond;
	size_t i;

	json_array_foreach(json_object_get(json_object_get(obj, "status"), "conditions"), i, cond)
	{
		if (!strcmp(json_string_value(json_object_get(cond, "type")) ?: "", type))
			return json_string_value(json_object_get(cond, field));
	}
	return NULL;
}

static const char *md(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(json_object_get(obj, "metadata"), key)) ?: "";
}

int kars_cli_sandbox_list(int argc, char **argv)
{
	static const struct option opts[] = {
	    COMMON_OPTIONS,
	    {"all-namespaces", no_argument, NULL, 'A'},
	    {NULL, 0, NULL, 0},
	};
	struct kars_store *s;
	struct kars_err err = {0};
	json_t *items = NULL, *obj;
	bool all = false;
	struct common c;
	uint64_t rv;
	size_t i;
	int opt, ret;

	common_init(&c);
	while ((opt = getopt_long(argc, argv, "n:o:hA", opts, NULL)) != -1) {
		if (opt == 'A') {
			all = true;
		} else if ((ret = common_opt(&c, opt, "list"))) {
			return ret < 0 ? 0 : ret;
		}
	}
	if ((ret = common_done(&c, "list", argc, argv, NULL)))
		return ret;
	if (!(s = open_store(&c)))
		return 1;
	if (kars_store_list(s, kars_kind_find("KarsSandbox"), all ? NULL : c.ns, &items, &rv,
			    &err)) {
		fprintf(stderr, "kars: list: %s\n", err.msg);
		kars_store_close(s);
		return 1;
	}
	printf("%-16s %-24s %-10s %-6s %-24s %6s %8s\n", "NAMESPACE", "NAME", "PHASE", "READY",
	       "REASON", "ROUTER", "AGENT");
	json_array_foreach(items, i, obj)
	{
		json_t *k = contract(&c, md(obj, "namespace"), md(obj, "name"));
		const char *phase =
		    json_string_value(json_object_get(json_object_get(obj, "status"), "phase"));

		printf("%-16s %-24s %-10s %-6s %-24s %6lld %8lld\n", md(obj, "namespace"),
		       md(obj, "name"),
		       json_object_get(json_object_get(obj, "metadata"), "deletionTimestamp")
			   ? "Deleting"
		       : phase ? phase
			       : "-",
		       condition(obj, "Ready", "status") ?: "-",
		       condition(obj, "Ready", "reason") ?: "-",
		       json_integer_value(json_object_get(k, "routerPort")),
		       json_integer_value(json_object_get(k, "agentPid")));
		json_decref(k);
	}
	json_decref(items);
	kars_store_close(s);
	return 0;
}

static int get_sandbox(const struct common *c, const char *verb, const char *name, json_t **obj)
{
	struct kars_store *s = NULL;
	struct kars_err err = {0};
	int ret;

	if (access(c->store, F_OK)) {
		fprintf(stderr,
			"kars: %s: no sandbox %s/%s: no store at %s (kars up --local makes it)\n",
			verb, c->ns, name, c->store);
		return 1;
	}
	if (!(s = open_store(c)))
		return 1;
	ret = kars_store_get(s, kars_kind_find("KarsSandbox"), c->ns, name, obj, &err);
	kars_store_close(s);
	if (ret == -ENOENT) {
		fprintf(stderr, "kars: %s: no sandbox %s/%s (kars list shows them)\n", verb, c->ns,
			name);
		return 1;
	}
	if (ret) {
		fprintf(stderr, "kars: %s: %s\n", verb, err.msg);
		return 1;
	}
	return 0;
}

int kars_cli_sandbox_status(int argc, char **argv)
{
	static const struct option opts[] = {COMMON_OPTIONS, {NULL, 0, NULL, 0}};
	const char *name, *phase;
	json_t *obj = NULL, *k, *out, *cond;
	struct common c;
	size_t i;
	int opt, ret;

	common_init(&c);
	while ((opt = getopt_long(argc, argv, "n:o:h", opts, NULL)) != -1)
		if ((ret = common_opt(&c, opt, "status")))
			return ret < 0 ? 0 : ret;
	if ((ret = common_done(&c, "status", argc, argv, &name)))
		return ret;
	if (get_sandbox(&c, "status", name, &obj))
		return 1;
	k = contract(&c, c.ns, name);
	phase = json_string_value(json_object_get(json_object_get(obj, "status"), "phase")) ?: "-";
	if (c.output) {
		char *text;

		out = json_pack("{s:s,s:s,s:s,s:O?,s:O?}", "namespace", c.ns, "name", name, "phase",
				phase, "conditions",
				json_object_get(json_object_get(obj, "status"), "conditions"),
				"local", k);
		text = !strcmp(c.output, "yaml")
			   ? kars_yaml_dump(out)
			   : json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		printf("%s%s", text ? text : "", strcmp(c.output, "yaml") ? "\n" : "");
		free(text);
		json_decref(out);
	} else {
		printf("Sandbox:    %s/%s\nPhase:      %s\n", c.ns, name, phase);
		if (k)
			printf("Router:     127.0.0.1:%lld (uid %lld, pid %lld), egress proxy port "
			       "%lld\nAgent:      uid %lld, pid %lld\n",
			       json_integer_value(json_object_get(k, "routerPort")),
			       json_integer_value(json_object_get(k, "routerUid")),
			       json_integer_value(json_object_get(k, "routerPid")),
			       json_integer_value(json_object_get(k, "proxyPort")),
			       json_integer_value(json_object_get(k, "agentUid")),
			       json_integer_value(json_object_get(k, "agentPid")));
		printf("Conditions:\n");
		json_array_foreach(json_object_get(json_object_get(obj, "status"), "conditions"), i,
				   cond)
		{
			printf("  %-13s %-6s %-24s %s\n",
			       json_string_value(json_object_get(cond, "type")) ?: "",
			       json_string_value(json_object_get(cond, "status")) ?: "",
			       json_string_value(json_object_get(cond, "reason")) ?: "",
			       json_string_value(json_object_get(cond, "message")) ?: "");
		}
	}
	ret = strcmp(phase, "Running") ? 3 : 0;
	json_decref(k);
	json_decref(obj);
	return ret;
}

/* Copies what is new in each log since *off; the line prefix names it. */
static void drain_log(const char *path, const char *prefix, off_t *off)
{
	char buf[8192];
	bool bol = *off == 0;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	while ((n = pread(fd, buf, sizeof(buf), *off)) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			if (bol)
				fputs(prefix, stdout);
			putchar(buf[i]);
			bol = buf[i] == '\n';
		}
		*off += n;
	}
	close(fd);
	fflush(stdout);
}

int kars_cli_sandbox_logs(int argc, char **argv)
{
	static const struct option opts[] = {
	    COMMON_OPTIONS,
	    {"follow", no_argument, NULL, 'f'},
	    {"role", required_argument, NULL, OPT_ROLE},
	    {NULL, 0, NULL, 0},
	};
	const char *name, *role = NULL;
	char paths[2][PATH_MAX * 2];
	off_t off[2] = {0, 0};
	bool follow = false;
	json_t *obj = NULL;
	struct common c;
	int opt, ret;

	common_init(&c);
	while ((opt = getopt_long(argc, argv, "n:hf", opts, NULL)) != -1) {
		if (opt == 'f') {
			follow = true;
		} else if (opt == OPT_ROLE) {
			if (strcmp(optarg, "agent") && strcmp(optarg, "router"))
				return usage_error(
				    "logs", "--role: \"%s\": expected agent or router", optarg);
			role = optarg;
		} else if (opt == 'o') {
			return usage_error("logs", "%s", "-o: logs are text");
		} else if ((ret = common_opt(&c, opt, "logs"))) {
			return ret < 0 ? 0 : ret;
		}
	}
	if ((ret = common_done(&c, "logs", argc, argv, &name)))
		return ret;
	if (get_sandbox(&c, "logs", name, &obj))
		return 1;
	json_decref(obj);
	for (int i = 0; i < 2; i++)
		snprintf(paths[i], sizeof(paths[i]), "%s/sandboxes/%s/%s/logs/%s.log", c.dir, c.ns,
			 name, i ? "router" : "agent");
	if (access(paths[0], R_OK) && access(paths[1], R_OK)) {
		fprintf(stderr, "kars: logs: no logs of %s/%s under %s/sandboxes yet (%s)\n", c.ns,
			name, c.dir, strerror(errno));
		return 1;
	}
	for (;;) {
		for (int i = 0; i < 2; i++)
			if (!role || !strcmp(role, i ? "router" : "agent"))
				drain_log(paths[i],
					  role ? ""
					  : i  ? "router | "
					       : "agent  | ",
					  &off[i]);
		if (!follow)
			return 0;
		nanosleep(&(struct timespec){0, 200 * 1000 * 1000}, NULL);
	}
}

bool kars_cli_sandbox_is_delete(int argc, char **argv)
{
	int names = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-f") || !strncmp(argv[i], "--filename", 10))
			return false;
		if (!strcmp(argv[i], "-n") || !strcmp(argv[i], "--namespace") ||
		    !strcmp(argv[i], "--state-dir") || !strcmp(argv[i], "--state")) {
			i++;
			continue;
		}
		if (argv[i][0] != '-')
			names++;
	}
	return names == 1;
}

int kars_cli_sandbox_delete(int argc, char **argv)
{
	static const struct option opts[] = {
	    COMMON_OPTIONS,
	    {"no-wait", no_argument, NULL, OPT_NO_WAIT},
	    {NULL, 0, NULL, 0},
	};
	struct kars_store *s;
	struct kars_err err = {0};
	const struct kars_kind *sk = kars_kind_find("KarsSandbox");
	const struct kars_kind *ik = kars_kind_find("InferencePolicy");
	json_t *obj = NULL, *ip = NULL, *gone = NULL;
	bool wait = true;
	const char *name;
	struct common c;
	int opt, ret;

	common_init(&c);
	while ((opt = getopt_long(argc, argv, "n:h", opts, NULL)) != -1) {
		if (opt == OPT_NO_WAIT)
			wait = false;
		else if ((ret = common_opt(&c, opt, "delete")))
			return ret < 0 ? 0 : ret;
	}
	if ((ret = common_done(&c, "delete", argc, argv, &name)))
		return ret;
	if (get_sandbox(&c, "delete", name, &obj))
		return 1;
	if (!(s = open_store(&c))) {
		json_decref(obj);
		return 1;
	}
	ret = kars_store_delete(s, sk, c.ns, name, &gone, &err);
	json_decref(gone);
	gone = NULL;
	/* The InferencePolicy kars add made with it goes too. */
	if (!ret && !kars_store_get(s, ik, c.ns, name, &ip, &err) && made_by_add(ip))
		kars_store_delete(s, ik, c.ns, name, &gone, &err);
	json_decref(gone);
	kars_err_clear(&err);
	json_decref(ip);
	json_decref(obj);
	if (ret && ret != -EINPROGRESS) {
		fprintf(stderr, "kars: delete: %s\n", err.msg);
		kars_store_close(s);
		return 1;
	}
	for (int i = 0; wait && i < DELETE_WAIT_S * 10; i++) {
		obj = NULL;
		ret = kars_store_get(s, sk, c.ns, name, &obj, &err);
		json_decref(obj);
		if (ret == -ENOENT) {
			printf("sandbox %s/%s deleted\n", c.ns, name);
			kars_store_close(s);
			return 0;
		}
		nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
	}
	kars_store_close(s);
	if (!wait) {
		printf("sandbox %s/%s marked for deletion\n", c.ns, name);
		return 0;
	}
	fprintf(stderr,
		"kars: delete: %s/%s is still there after %d s: is the controller running (kars "
		"up --local)? kars status %s shows why\n",
		c.ns, name, DELETE_WAIT_S, name);
	return 1;
}
