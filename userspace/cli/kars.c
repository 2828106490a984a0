/* kars.c - the kars command line, for what exists so far: the data plane.
 *
 *   kars dataplane status|list|metrics
 *   kars dataplane apply -f FILE|-      kars dataplane remove NAMESPACE/NAME
 *   kars dataplane learned NAMESPACE/NAME
 *   kars dataplane fqdn NAMESPACE/NAME   (the router's learned FQDN entries)
 *   kars trace --network [--sandbox NAMESPACE/NAME] [-o json]
 *   kars audit verify FILE [--pubkey FILE]           (audit_cmd.c)
 *   kars crds | validate | explain                   (schema_cmd.c)
 *   kars apply | get | delete                        (store_cmd.c)
 *   kars blocklist load FILE...|check NAME|status   (blocklist_cmd.c)
 *   kars migrate | convert                           (migrate_cmd.c)
 *   kars up --local | down                           (up_cmd.c)
 *   kars add | list | status | logs | delete NAME    (sandbox_cmd.c)
 *   kars egress | model | credentials | connect NAME, trace NAME --network,
 *   audit verify|tail NAME                           (sandbox_ops_cmd.c)
 *
 * The data-plane commands speak karsd's control API (docs/karsd-api.md);
 * audit verify reads a file. Exit status: 0 done,
 * 1 refused or failed (the reason on stderr), 2 bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit_cmd.h"
#include "blocklist_cmd.h"
#include "control_client.h"
#include "migrate_cmd.h"
#include "sandbox_ops_cmd.h"
#include "schema_cmd.h"
#include "store_cmd.h"
#include "json.h"
/* local mode: up/down and the sandbox lifecycle (issue 5) */
#include "sandbox_cmd.h"
#include "up_cmd.h"

static const char *socket_path = KARSD_DEFAULT_SOCKET;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: kars [--socket PATH] COMMAND\n"
		"\n"
		"  dataplane status              enforcement level and kernel features\n"
		"  dataplane list                sandboxes with a data-plane policy\n"
		"  dataplane apply -f FILE|-     apply a policy (JSON, docs/karsd-api.md)\n"
		"  dataplane remove NS/NAME      remove a sandbox's policy\n"
		"  dataplane learned NS/NAME     destinations recorded in learn mode\n"
		"  dataplane fqdn NS/NAME        addresses the router learned for its fqdns\n"
		"  dataplane metrics             Prometheus metrics\n"
		"  trace --network [--sandbox NS/NAME] [-o json]\n"
		"                                stream data-plane verdicts as they happen\n"
		"  audit verify FILE [--pubkey FILE]\n"
		"                                check an audit log: chain, hashes, signatures\n");
	kars_cli_blocklist_usage(f);
	fprintf(f, "\n");
	kars_cli_schema_usage(f);
	kars_cli_store_usage(f);
	kars_cli_migrate_usage(f);
	/* local mode: up/down and the sandbox lifecycle (issue 5) */
	fprintf(f, "\n");
	kars_cli_up_usage(f);
	kars_cli_sandbox_usage(f);
	kars_cli_sandbox_ops_usage(f);
	fprintf(f, "\n"
		   "The socket defaults to " KARSD_DEFAULT_SOCKET " (or $KARSD_SOCKET).\n"
		   "Exit codes and more: docs/cli.md.\n");
}

static int fail(const char *what, const struct kars_err *err)
{
	fprintf(stderr, "kars: %s%s%s\n", what, *what ? ": " : "", err->msg);
	return 1;
}

static int call(json_t *req, json_t **resp)
{
	struct kars_err err = {};
	int ret = kars_control_call(socket_path, req, resp, &err);

	json_decref(req);
	if (ret) {
		json_decref(*resp);
		*resp = NULL;
		return fail("", &err);
	}
	return 0;
}

static int print_json(json_t *o)
{
	char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	if (s)
		printf("%s\n", s);
	free(s);
	json_decref(o);
	return 0;
}

static const char *str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "-";
}

static int cmd_list(void)
{
	json_t *resp, *sb;
	size_t i;

	if (call(json_pack("{s:s}", "op", "list"), &resp))
		return 1;
	printf("%-32s %4s %6s %-7s %6s %5s %5s %7s  %s\n", "SANDBOX", "ID", "GEN", "MODE", "EXACT",
	       "CIDR", "FQDNS", "LEARNED", "CGROUPS");
	json_array_foreach(json_object_get(resp, "sandboxes"), i, sb)
	{
		const json_t *agent = json_object_get(sb, "agent");
		const json_t *router = json_object_get(sb, "router");

		printf("%-32s %4lld %6lld %-7s %6lld %5lld %5lld %7lld  agent=%s router=%s\n",
		       str(sb, "sandbox"), json_integer_value(json_object_get(sb, "sandboxId")),
		       json_integer_value(json_object_get(sb, "generation")), str(sb, "mode"),
		       json_integer_value(json_object_get(sb, "exactRules")),
		       json_integer_value(json_object_get(sb, "cidrRules")),
		       json_integer_value(json_object_get(sb, "fqdnRules")),
		       json_integer_value(json_object_get(sb, "fqdnEntries")),
		       json_is_object(agent) ? str(agent, "cgroup") : "-",
		       json_is_object(router) ? str(router, "cgroup") : "-");
	}
	json_decref(resp);
	return 0;
}

static int cmd_learned(const char *name)
{
	json_t *resp, *e;
	size_t i;

	if (call(json_pack("{s:s,s:s}", "op", "learned", "sandbox", name), &resp))
		return 1;
	printf("%-7s %-5s %-40s %5s %8s\n", "ROLE", "PROTO", "DESTINATION", "PORT", "COUNT");
	json_array_foreach(json_object_get(resp, "learned"), i, e)
	{
		printf("%-7s %-5s %-40s %5lld %8lld\n", str(e, "role"), str(e, "protocol"),
		       str(e, "ip"), json_integer_value(json_object_get(e, "port")),
		       json_integer_value(json_object_get(e, "count")));
	}
	json_decref(resp);
	return 0;
}

/* One line per learned address and port range, with what is left of it. */
static int cmd_fqdn(const char *name)
{
	json_t *resp, *e, *p;
	size_t i, j;

	if (call(json_pack("{s:s,s:s}", "op", "fqdn_entries", "sandbox", name), &resp))
		return 1;
	printf("%-40s %-5s %-11s %7s %10s  %s\n", "ADDRESS", "PROTO", "PORTS", "TTL", "EXPIRES",
	       "NAME");
	json_array_foreach(json_object_get(resp, "entries"), i, e)
	{
		json_array_foreach(json_object_get(e, "ports"), j, p)
		{
			printf("%-40s %-5s %-11s %6llds %9.1fs  %s\n", str(e, "ip"),
			       str(p, "protocol"), str(p, "ports"),
			       (long long)json_integer_value(json_object_get(p, "ttl")),
			       (double)json_integer_value(json_object_get(p, "expiresInMs")) / 1000,
			       str(e, "name"));
		}
	}
	json_decref(resp);
	return 0;
}

static char *read_all(FILE *f, size_t *len)
{
	size_t cap = 1 << 16;
	char *buf = malloc(cap);

	*len = 0;
	while (buf) {
		size_t n = fread(buf + *len, 1, cap - *len, f);

		*len += n;
		if (n == 0)
			break;
		if (*len == cap) {
			char *bigger = cap >= (64u << 20) ? NULL : realloc(buf, cap * 2);

			if (!bigger) {
				free(buf);
				return NULL;
			}
			buf = bigger;
			cap *= 2;
		}
	}
	return buf;
}

static int cmd_apply(const char *file)
{
	struct kars_err err = {};
	FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
	json_t *req, *resp;
	size_t len;
	char *buf;

	if (!f) {
		fprintf(stderr, "kars: %s: %s\n", file, strerror(errno));
		return 1;
	}
	buf = read_all(f, &len);
	if (f != stdin)
		fclose(f);
	if (!buf) {
		fprintf(stderr, "kars: %s: unreadable or larger than 64 MiB\n", file);
		return 1;
	}
	req = kars_json_parse(buf, len, &err);
	free(buf);
	if (!req)
		return fail(file, &err);
	if (!json_is_object(req)) {
		json_decref(req);
		fprintf(stderr, "kars: %s: expected a JSON object\n", file);
		return 1;
	}
	json_object_set_new(req, "op", json_string("apply"));
	if (call(req, &resp))
		return 1;
	printf("sandbox %s applied (id %lld, generation %lld)\n", str(resp, "sandbox"),
	       json_integer_value(json_object_get(resp, "sandboxId")),
	       json_integer_value(json_object_get(resp, "generation")));
	json_decref(resp);
	return 0;
}

static void print_event(const json_t *e)
{
	char when[32] = "";
	time_t now = time(NULL);
	struct tm tm;
	const char *dst = str(e, "dst"), *ndst = str(e, "newDst");
	long long dport = json_integer_value(json_object_get(e, "dport"));
	long long ndport = json_integer_value(json_object_get(e, "newDport"));
	char to[96] = "";

	if (localtime_r(&now, &tm))
		strftime(when, sizeof(when), "%H:%M:%S", &tm);
	if (strncmp(str(e, "hook"), "lsm_", 4) == 0) {
		/* BPF LSM refusals have no destination: the family says what. */
		printf("%s %-24s %-6s %-8s %-14s %s/%s (%s) %s[%lld] uid=%lld\n", when,
		       *str(e, "sandbox") ? str(e, "sandbox") : "(unknown cgroup)", str(e, "role"),
		       str(e, "verdict"), str(e, "reason"), str(e, "family"), str(e, "protocol"),
		       str(e, "hook"), str(e, "comm"),
		       json_integer_value(json_object_get(e, "tgid")),
		       json_integer_value(json_object_get(e, "uid")));
		fflush(stdout);
		return;
	}
	if (strcmp(dst, ndst) || dport != ndport)
		snprintf(to, sizeof(to), " -> %s:%lld", ndst, ndport);
	printf("%s %-24s %-6s %-8s %-14s %-4s %s:%lld%s %s[%lld] uid=%lld%s%s\n", when,
	       *str(e, "sandbox") ? str(e, "sandbox") : "(unknown cgroup)", str(e, "role"),
	       str(e, "verdict"), str(e, "reason"), str(e, "protocol"), dst, dport, to,
	       str(e, "comm"), json_integer_value(json_object_get(e, "tgid")),
	       json_integer_value(json_object_get(e, "uid")),
	       json_object_get(e, "qname") ? " qname=" : "", /* DNS drops (docs/dns.md) */
	       json_object_get(e, "qname") ? str(e, "qname") : "");
	fflush(stdout);
}

static int cmd_trace(const char *sandbox, bool as_json)
{
	struct kars_err err = {};
	json_t *line = NULL;
	int fd = kars_control_subscribe(socket_path, &err), ret;

	if (fd < 0)
		return fail("", &err);
	if (!as_json)
		printf("%-8s %-24s %-6s %-8s %-14s %-4s %s\n", "TIME", "SANDBOX", "ROLE", "VERDICT",
		       "REASON", "PROTO", "DESTINATION  PROCESS");
	fflush(stdout);
	for (;;) {
		ret = kars_control_recv(fd, -1, &line, &err);
		if (ret)
			break;
		if (!sandbox || strcmp(str(line, "sandbox"), sandbox) == 0) {
			if (as_json) {
				char *s = json_dumps(line, JSON_COMPACT);

				printf("%s\n", s ? s : "{}");
				fflush(stdout);
				free(s);
			} else {
				print_event(line);
			}
		}
		json_decref(line);
	}
	close(fd);
	return fail("event stream ended", &err);
}

static int dataplane(int argc, char **argv)
{
	const char *sub = argc > 0 ? argv[0] : "";
	json_t *resp;

	if (strcmp(sub, "status") == 0 && argc == 1) {
		if (call(json_pack("{s:s}", "op", "status"), &resp))
			return 1;
		json_object_del(resp, "ok");
		return print_json(resp);
	}
	if (strcmp(sub, "list") == 0 && argc == 1)
		return cmd_list();
	if (strcmp(sub, "metrics") == 0 && argc == 1) {
		if (call(json_pack("{s:s}", "op", "metrics"), &resp))
			return 1;
		fputs(str(resp, "text"), stdout);
		json_decref(resp);
		return 0;
	}
	if (strcmp(sub, "apply") == 0 && argc == 3 && strcmp(argv[1], "-f") == 0)
		return cmd_apply(argv[2]);
	if (strcmp(sub, "remove") == 0 && argc == 2) {
		if (call(json_pack("{s:s,s:s}", "op", "remove", "sandbox", argv[1]), &resp))
			return 1;
		printf("sandbox %s removed\n", argv[1]);
		json_decref(resp);
		return 0;
	}
	if (strcmp(sub, "learned") == 0 && argc == 2)
		return cmd_learned(argv[1]);
	if (strcmp(sub, "fqdn") == 0 && argc == 2)
		return cmd_fqdn(argv[1]);
	fprintf(stderr, "kars: dataplane: unknown or incomplete command\n");
	usage(stderr);
	return 2;
}

static int trace(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"network", no_argument, NULL, 'n'},
	    {"sandbox", required_argument, NULL, 's'},
	    {"output", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *sandbox = NULL;
	bool network = false, as_json = false;
	int opt;

	/* kars trace NAME ...: the per-sandbox view, with its own options
	 * (-n NS, --state-dir); a word that is no option's value is NAME. */
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--sandbox") || !strcmp(argv[i], "-o") ||
		    !strcmp(argv[i], "--output") || !strcmp(argv[i], "-n") ||
		    !strcmp(argv[i], "--namespace") || !strcmp(argv[i], "--state") ||
		    !strcmp(argv[i], "--state-dir"))
			i++;
		else if (argv[i][0] != '-')
			return kars_cli_trace_sandbox(socket_path, argc, argv);
	}
	optind = 1;
	while ((opt = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			network = true;
			break;
		case 's':
			sandbox = optarg;
			break;
		case 'h':
			printf("usage: kars trace --network [--sandbox NS/NAME] [-o json|wide]\n"
			       "       kars trace NAME --network [-o json]   (one local sandbox, "
			       "docs/cli.md)\n");
			return 0;
		case 'o':
			if (strcmp(optarg, "json") && strcmp(optarg, "wide")) {
				fprintf(stderr, "kars: trace: -o: \"%s\" is not json or wide\n",
					optarg);
				return 2;
			}
			as_json = strcmp(optarg, "json") == 0;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!network || optind != argc) {
		fprintf(stderr, "kars: trace: only --network is implemented\n");
		return 2;
	}
	return cmd_trace(sandbox, as_json);
}

int main(int argc, char **argv)
{
	const char *env = getenv("KARSD_SOCKET");
	int i = 1;

	if (env && *env)
		socket_path = env;
	if (argc > 2 && strcmp(argv[1], "--socket") == 0) {
		socket_path = argv[2];
		i = 3;
	}
	if (i >= argc || strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
		usage(i >= argc ? stderr : stdout);
		return i >= argc ? 2 : 0;
	}
	/* local mode: up/down and the sandbox lifecycle (issue 5) */
	if (strcmp(argv[i], "up") == 0)
		return kars_cli_up(socket_path, argc - i, argv + i);
	if (strcmp(argv[i], "down") == 0)
		return kars_cli_down(argc - i, argv + i);
	if (strcmp(argv[i], "add") == 0)
		return kars_cli_sandbox_add(argc - i, argv + i);
	if (strcmp(argv[i], "list") == 0)
		return kars_cli_sandbox_list(argc - i, argv + i);
	if (strcmp(argv[i], "status") == 0)
		return kars_cli_sandbox_status(argc - i, argv + i);
	if (strcmp(argv[i], "logs") == 0)
		return kars_cli_sandbox_logs(argc - i, argv + i);
	if (strcmp(argv[i], "delete") == 0 && kars_cli_sandbox_is_delete(argc - i, argv + i))
		return kars_cli_sandbox_delete(argc - i, argv + i);
	if (strcmp(argv[i], "dataplane") == 0)
		return dataplane(argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "trace") == 0)
		return trace(argc - i, argv + i);
	if (strcmp(argv[i], "audit") == 0)
		return kars_cli_audit(argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "crds") == 0)
		return kars_cli_crds(argc - i, argv + i);
	if (strcmp(argv[i], "validate") == 0)
		return kars_cli_validate(argc - i, argv + i);
	if (strcmp(argv[i], "explain") == 0)
		return kars_cli_explain(argc - i, argv + i);
	if (strcmp(argv[i], "apply") == 0)
		return kars_cli_apply(argc - i, argv + i);
	if (strcmp(argv[i], "get") == 0)
		return kars_cli_get(argc - i, argv + i);
	if (strcmp(argv[i], "delete") == 0)
		return kars_cli_delete(argc - i, argv + i);
	if (strcmp(argv[i], "migrate") == 0)
		return kars_cli_migrate(argc - i, argv + i);
	if (strcmp(argv[i], "convert") == 0)
		return kars_cli_convert(argc - i, argv + i);
	if (strcmp(argv[i], "blocklist") == 0)
		return kars_cli_blocklist(socket_path, argc - i - 1, argv + i + 1);
	/* per-sandbox verbs of local mode (sandbox_ops_cmd.c) */
	if (strcmp(argv[i], "egress") == 0)
		return kars_cli_egress(socket_path, argc - i, argv + i);
	if (strcmp(argv[i], "model") == 0)
		return kars_cli_model(argc - i, argv + i);
	if (strcmp(argv[i], "credentials") == 0)
		return kars_cli_credentials(argc - i, argv + i);
	if (strcmp(argv[i], "connect") == 0)
		return kars_cli_connect(argc - i, argv + i);
	fprintf(stderr, "kars: unknown command \"%s\"\n", argv[i]);
	usage(stderr);
	return 2;
}
