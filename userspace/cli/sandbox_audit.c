/* sandbox_audit.c - `kars audit verify|tail NAME`: the audit chain of a
 * local sandbox's router, found through its run file (docs/cli.md). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit_cmd.h"
#include "json.h"
#include "sandbox_ops_cmd.h"
#include "sandbox_opts.h"
#include "sandbox_store.h"

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
	if (!strcmp(kars_json_str_or(r, "kind", ""), "checkpoint"))
		printf("%-6lld %-20s %-22s %-9s key %.16s...\n",
		       json_integer_value(json_object_get(r, "seq")),
		       kars_json_str_or(r, "time", "-"), "(checkpoint)", "signed",
		       kars_json_str_or(r, "key", "-"));
	else
		printf("%-6lld %-20s %-22s %-9s %-10s %-14s %s\n",
		       json_integer_value(json_object_get(r, "seq")),
		       kars_json_str_or(r, "time", "-"), kars_json_str_or(r, "action", "-"),
		       kars_json_str_or(r, "decision", "-"), kars_json_str_or(r, "principal", "-"),
		       kars_json_str_or(r, "model", "-"), kars_json_str_or(r, "reason", ""));
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
