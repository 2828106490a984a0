/* sandbox_trace.c - `kars trace NAME --network [-o json]`: karsd's event
 * stream for one sandbox, with Hubble-like columns
 *
 *   TIME SANDBOX ROLE PID/COMM DESTINATION VERDICT REASON
 *
 * The destination carries its name when one is known: from the event
 * itself (qname, on verdicts a learned FQDN entry took part in), from the
 * sandbox's learned FQDN entries read at start, and from the DNS answers
 * (dns_ingress events) seen while tracing. -o json prints each event as
 * karsd sent it plus "dstName" when known. Without NAME, kars.c's trace
 * shows every sandbox as before.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "control_client.h"
#include "sandbox_ops_cmd.h"
#include "sandbox_opts.h"

static const char *str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "-";
}

/* The learned FQDN entries at start: address -> name. */
static int load_names(const char *socket_path, const struct kars_sbref *ref, json_t *names)
{
	struct kars_err err = {};
	json_t *req = json_pack("{s:s,s:s}", "op", "fqdn_entries", "sandbox", ref->owner);
	json_t *resp = NULL, *e;
	size_t i;
	int ret = kars_control_call(socket_path, req, &resp, &err);

	json_decref(req);
	if (ret) {
		if (ret == -EPROTO)
			fprintf(stderr,
				"kars: trace: sandbox %s has no data-plane policy in karsd (%s): "
				"is it running? (kars status %s)\n",
				ref->owner, err.msg, ref->owner);
		else
			fprintf(stderr, "kars: trace: %s\n", err.msg);
		json_decref(resp);
		return -1;
	}
	json_array_foreach(json_object_get(resp, "entries"), i, e)
	{
		if (json_is_string(json_object_get(e, "name")))
			json_object_set(names, str(e, "ip"), json_object_get(e, "name"));
	}
	json_decref(resp);
	return 0;
}

static void print_row(const json_t *e, const char *name)
{
	char when[16] = "-", proc[64], dst[320];
	time_t now = time(NULL);
	struct tm tm;
	long long dport = json_integer_value(json_object_get(e, "dport"));
	long long ndport = json_integer_value(json_object_get(e, "newDport"));
	const char *d = str(e, "dst"), *nd = str(e, "newDst");

	if (localtime_r(&now, &tm))
		strftime(when, sizeof(when), "%H:%M:%S", &tm);
	if (json_object_get(e, "tgid"))
		snprintf(proc, sizeof(proc), "%lld/%s",
			 json_integer_value(json_object_get(e, "tgid")), str(e, "comm"));
	else
		snprintf(proc, sizeof(proc), "-");
	if (!json_object_get(e, "dst"))
		/* LSM refusals have no destination: the family says what. */
		snprintf(dst, sizeof(dst), "%s/%s (%s)", str(e, "family"), str(e, "protocol"),
			 str(e, "hook"));
	else if (strcmp(d, nd) || dport != ndport)
		snprintf(dst, sizeof(dst), "%s%s%s%s:%lld -> %s:%lld %s", name ? name : "",
			 name ? " (" : "", d, name ? ")" : "", dport, nd, ndport,
			 str(e, "protocol"));
	else
		snprintf(dst, sizeof(dst), "%s%s%s%s:%lld %s", name ? name : "", name ? " (" : "",
			 d, name ? ")" : "", dport, str(e, "protocol"));
	printf("%-8s %-24s %-6s %-22s %-44s %-8s %s\n", when, str(e, "sandbox"), str(e, "role"),
	       proc, dst, str(e, "verdict"), str(e, "reason"));
}

static int stream(const char *socket_path, const struct kars_sbref *ref, json_t *names,
		  bool as_json)
{
	struct kars_err err = {};
	json_t *line = NULL;
	int fd = kars_control_subscribe(socket_path, &err);

	if (fd < 0) {
		fprintf(stderr, "kars: trace: %s\n", err.msg);
		return 1;
	}
	if (!as_json)
		printf("%-8s %-24s %-6s %-22s %-44s %-8s %s\n", "TIME", "SANDBOX", "ROLE",
		       "PID/COMM", "DESTINATION", "VERDICT", "REASON");
	fflush(stdout);
	while (kars_control_recv(fd, -1, &line, &err) == 0) {
		const char *name;

		if (strcmp(str(line, "sandbox"), ref->owner)) {
			json_decref(line);
			continue;
		}
		if (json_is_string(json_object_get(line, "qname")) &&
		    !strcmp(str(line, "hook"), "dns_ingress"))
			json_object_set(names, str(line, "dst"), json_object_get(line, "qname"));
		name = json_string_value(json_object_get(line, "qname"));
		if (!name)
			name = json_string_value(json_object_get(names, str(line, "dst")));
		if (as_json) {
			char *s;

			if (name)
				json_object_set_new(line, "dstName", json_string(name));
			s = json_dumps(line, JSON_COMPACT);
			printf("%s\n", s ? s : "{}");
			free(s);
		} else {
			print_row(line, name);
		}
		fflush(stdout);
		json_decref(line);
	}
	close(fd);
	fprintf(stderr, "kars: trace: event stream ended: %s\n", err.msg);
	return 1;
}

int kars_cli_trace_sandbox(const char *socket_path, int argc, char **argv)
{
	struct sbref_cmd cmd = {"trace", "NAME --network [-o json]", SBOPT_NETWORK | SBOPT_OUTPUT};
	struct kars_sbref ref;
	struct sbopts o;
	json_t *names;
	int ret;

	if ((ret = sbopts_parse(&cmd, argc, argv, &o)) != 0)
		return ret == -1 ? 0 : ret;
	if (!o.network)
		return sbopts_usage_error(&cmd, "only --network is implemented");
	if (o.nargs != 1)
		return sbopts_usage_error(&cmd, "expected one NAME");
	if (o.output && strcmp(o.output, "json"))
		return sbopts_usage_error(&cmd, "-o: only json (one event per line)");
	if (sbopts_resolve(&cmd, &o, o.args[0], &ref))
		return 1;
	names = json_object();
	if (!names || load_names(socket_path, &ref, names)) {
		json_decref(names);
		return 1;
	}
	ret = stream(socket_path, &ref, names, o.output != NULL);
	json_decref(names);
	return ret;
}
