/* migrate_cmd.c - `kars migrate` and `kars convert` (migrate_cmd.h): the
 * converters of libkars (convert.h) on files, and the overlay/native switch
 * on the local store (store_patch.h).
 *
 * Every object is checked by the validator before it is printed or
 * written; every field that does not survive is on stderr by its path.
 */
#include "migrate_cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli_io.h"
#include "convert.h"
#include "store_patch.h"
#include "validate.h"
#include "yamljson.h"

#define EXIT_INPUT    2
#define EXIT_LOSSY    4
#define INPUT_MAX     (16u << 20)
#define DEFAULT_STATE "/var/lib/kars/state"

void kars_cli_migrate_usage(FILE *f)
{
	fprintf(
	    f,
	    "  migrate from-kagent FILE|- [--model [PROVIDER/]DEPLOYMENT] [--image IMAGE]\n"
	    "                                a kagent.dev/v1alpha2 Agent (with its ModelConfig\n"
	    "                                and RemoteMCPServers) as kars objects\n"
	    "  convert -f FILE|- --to karssandbox|upstream-sandbox|overlay\n"
	    "          [--mode native|translate|observe] [--sandbox-ref [NS/]NAME] [--model M]\n"
	    "                                agents.x-k8s.io/v1alpha1 Sandbox <-> KarsSandbox\n"
	    "    both: [--isolation standard|enhanced|confidential] [-n NS] [--allow-lossy]\n"
	    "          [--dry-run] [--out-dir DIR]; exit 0 done, 1 failed, 2 bad usage or\n"
	    "          unreadable/wrong-kind input, 4 lossy (dropped fields on stderr) without\n"
	    "          --allow-lossy\n"
	    "  migrate to-overlay NAME [--upstream-ref [NS/]NAME] | to-native NAME\n"
	    "          [-n NS] [--dry-run]        switch a stored KarsSandbox's upstream mode\n");
}

struct opts {
	struct kars_conv_opts conv;
	const char *file, *to, *out_dir, *state, *upstream_ref;
	bool allow_lossy, dry_run;
	int first_arg;
};

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option long_opts[] = {
	    {"filename", required_argument, NULL, 'f'},
	    {"namespace", required_argument, NULL, 'n'},
	    {"to", required_argument, NULL, 't'},
	    {"mode", required_argument, NULL, 'm'},
	    {"sandbox-ref", required_argument, NULL, 'r'},
	    {"upstream-ref", required_argument, NULL, 'u'},
	    {"model", required_argument, NULL, 'M'},
	    {"image", required_argument, NULL, 'i'},
	    {"isolation", required_argument, NULL, 'I'},
	    {"out-dir", required_argument, NULL, 'o'},
	    {"state", required_argument, NULL, 's'},
	    {"allow-lossy", no_argument, NULL, 'L'},
	    {"dry-run", no_argument, NULL, 'd'},
	    {NULL, 0, NULL, 0},
	};
	int ch;

	memset(o, 0, sizeof(*o));
	o->state = getenv("KARS_STATE_DIR");
	if (!o->state || !*o->state)
		o->state = DEFAULT_STATE;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "f:n:", long_opts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			o->file = optarg;
			break;
		case 'n':
			o->conv.ns = optarg;
			break;
		case 't':
			o->to = optarg;
			break;
		case 'm':
			if (strcmp(optarg, "native") == 0)
				o->conv.mode = KARS_MODE_NATIVE;
			else if (strcmp(optarg, "translate") == 0)
				o->conv.mode = KARS_MODE_TRANSLATE;
			else if (strcmp(optarg, "observe") == 0)
				o->conv.mode = KARS_MODE_OBSERVE;
			else {
				fprintf(stderr,
					"kars: --mode \"%s\": native, translate or observe\n",
					optarg);
				return EXIT_INPUT;
			}
			break;
		case 'r':
			o->conv.sandbox_ref = optarg;
			break;
		case 'u':
			o->upstream_ref = optarg;
			break;
		case 'M':
			o->conv.model = optarg;
			break;
		case 'i':
			o->conv.image = optarg;
			break;
		case 'I':
			if (strcmp(optarg, "standard") && strcmp(optarg, "enhanced") &&
			    strcmp(optarg, "confidential")) {
				fprintf(stderr,
					"kars: --isolation \"%s\": standard, enhanced or "
					"confidential\n",
					optarg);
				return EXIT_INPUT;
			}
			o->conv.isolation = optarg;
			break;
		case 'o':
			o->out_dir = optarg;
			break;
		case 's':
			o->state = optarg;
			break;
		case 'L':
			o->allow_lossy = true;
			break;
		case 'd':
			o->dry_run = true;
			break;
		default:
			return EXIT_INPUT;
		}
	}
	o->first_arg = optind;
	return 0;
}

/* The input's documents as a JSON array; exit status on failure. */
static int load(const char *file, json_t **docs)
{
	struct kars_yaml_docs yd;
	struct kars_err err = {};
	size_t len;
	char *buf = kars_cli_read(file, &len);
	int ret;

	if (!buf)
		return EXIT_INPUT;
	if (len > INPUT_MAX) {
		fprintf(stderr, "kars: %s: larger than 16 MiB (an API object is at most 1.5 MiB)\n",
			file);
		free(buf);
		return EXIT_INPUT;
	}
	ret = kars_yaml_load_all(buf, len, &yd, &err);
	free(buf);
	if (ret) {
		fprintf(stderr, "kars: %s: %s\n", file, err.msg);
		return EXIT_INPUT;
	}
	if (yd.count == 0) {
		fprintf(stderr, "kars: %s: no objects\n", file);
		return EXIT_INPUT;
	}
	*docs = json_array();
	for (size_t i = 0; i < yd.count; i++) {
		if (!json_is_object(yd.docs[i].value)) {
			fprintf(stderr, "kars: %s: document %zu (line %d): not an object\n", file,
				i + 1, yd.docs[i].line);
			json_decref(*docs);
			kars_yaml_docs_free(&yd);
			return EXIT_INPUT;
		}
		json_array_append(*docs, yd.docs[i].value);
	}
	kars_yaml_docs_free(&yd);
	return 0;
}

static void print_report(const struct kars_conv_report *r)
{
	for (size_t i = 0; i < r->count; i++) {
		const struct kars_conv_note *n = &r->v[i];

		fprintf(stderr, "%s: %s: %s%s%s\n", n->kind == KARS_CONV_LOSSY ? "lossy" : "note",
			n->doc, n->path, *n->path ? ": " : "", n->reason);
	}
}

static const char *md_str(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(json_object_get(obj, "metadata"), key));
}

static int write_atomic(const char *dir, const char *name, const char *text)
{
	char path[4096], tmp[4200];
	size_t len = strlen(text);
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len || fsync(fd) || close(fd) ||
	    rename(tmp, path)) {
		fprintf(stderr, "kars: %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			unlink(tmp);
		return 1;
	}
	return 0;
}

/* Prints or writes the objects; 0 or 1. */
static int emit(const json_t *objs, const struct opts *o)
{
	const json_t *obj;
	size_t i;
	int ret = 0;

	if (o->out_dir && !o->dry_run && mkdir(o->out_dir, 0755) && errno != EEXIST) {
		fprintf(stderr, "kars: %s: %s\n", o->out_dir, strerror(errno));
		return 1;
	}
	json_array_foreach(objs, i, obj)
	{
		char *text = kars_yaml_dump(obj), name[400], low[64];
		const char *kind = json_string_value(json_object_get(obj, "kind"));
		size_t j;

		if (!text) {
			fprintf(stderr, "kars: out of memory\n");
			return 1;
		}
		if (!o->out_dir || o->dry_run) {
			printf("%s%s", i ? "---\n" : "", text);
		} else {
			for (j = 0; kind[j] && j < sizeof(low) - 1; j++)
				low[j] = (char)(kind[j] >= 'A' && kind[j] <= 'Z' ? kind[j] + 32
										 : kind[j]);
			low[j] = '\0';
			snprintf(name, sizeof(name), "%s-%s.yaml", low, md_str(obj, "name"));
			ret = write_atomic(o->out_dir, name, text);
			if (!ret)
				printf("%s/%s\n", o->out_dir, name);
		}
		free(text);
		if (ret)
			break;
	}
	return ret;
}

/* Report, validate, emit: the exit status of a conversion. */
static int finish(json_t *objs, struct kars_conv_report *r, const struct opts *o)
{
	struct kars_err err = {};
	int ret;

	print_report(r);
	if (kars_convert_validate(objs, &err)) {
		fprintf(stderr, "kars: internal error, not emitted: the converted %s\n", err.msg);
		return 1;
	}
	if (r->lossy && !o->allow_lossy && !o->dry_run) {
		fprintf(stderr,
			"kars: %zu field%s would be lost (above); nothing emitted. Rerun with "
			"--allow-lossy to accept, or --dry-run to see the result\n",
			r->lossy, r->lossy == 1 ? "" : "s");
		return EXIT_LOSSY;
	}
	ret = emit(objs, o);
	if (ret)
		return ret;
	return r->lossy && !o->allow_lossy ? EXIT_LOSSY : 0;
}

static void today(char *buf, size_t len)
{
	const char *sde = getenv("SOURCE_DATE_EPOCH");
	time_t t = sde && *sde ? (time_t)strtoll(sde, NULL, 10) : time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d", &tm);
}

static int from_kagent(int argc, char **argv)
{
	struct kars_conv_report r = {};
	struct kars_err err = {};
	json_t *docs = NULL, *objs = NULL;
	struct opts o;
	char date[16];
	int ret = parse(argc, argv, &o);

	if (ret || o.first_arg != argc - 1 || o.file || o.to) {
		fprintf(stderr,
			"usage: kars migrate from-kagent FILE|- [--model "
			"[PROVIDER/]DEPLOYMENT] [--image IMAGE] [--isolation LEVEL] [-n NS] "
			"[--allow-lossy] [--dry-run] [--out-dir DIR]\n");
		return EXIT_INPUT;
	}
	o.file = argv[o.first_arg];
	today(date, sizeof(date));
	o.conv.date = date;
	ret = load(o.file, &docs);
	if (ret)
		return ret;
	if (kars_convert_kagent(docs, &o.conv, &objs, &r, &err)) {
		fprintf(stderr, "kars: %s: %s\n", o.file, err.msg);
		ret = EXIT_INPUT;
	} else {
		ret = finish(objs, &r, &o);
	}
	json_decref(objs);
	json_decref(docs);
	kars_conv_report_free(&r);
	return ret;
}

int kars_cli_convert(int argc, char **argv)
{
	struct kars_conv_report r = {};
	struct kars_err err = {};
	json_t *docs = NULL, *all = json_array(), *d;
	bool to_up;
	struct opts o;
	char type[300];
	size_t i;
	int ret = parse(argc, argv, &o);

	if (ret || o.first_arg != argc || !o.file || !o.to ||
	    (strcmp(o.to, "karssandbox") && strcmp(o.to, "upstream-sandbox") &&
	     strcmp(o.to, "overlay"))) {
		fprintf(stderr,
			"usage: kars convert -f FILE|- --to "
			"karssandbox|upstream-sandbox|overlay [--mode native|translate|observe] "
			"[--sandbox-ref [NS/]NAME] [--model M] [--isolation LEVEL] [-n NS] "
			"[--allow-lossy] [--dry-run] [--out-dir DIR]\n");
		json_decref(all);
		return EXIT_INPUT;
	}
	to_up = strcmp(o.to, "upstream-sandbox") == 0;
	if (strcmp(o.to, "overlay") == 0) {
		if (o.conv.mode != KARS_MODE_NATIVE) {
			fprintf(stderr, "kars: --to overlay is overlay mode; --mode is for --to "
					"karssandbox\n");
			json_decref(all);
			return EXIT_INPUT;
		}
		o.conv.mode = KARS_MODE_OVERLAY;
	}
	if (o.conv.sandbox_ref && (to_up || o.conv.mode == KARS_MODE_NATIVE)) {
		fprintf(stderr,
			"kars: --sandbox-ref names the upstream Sandbox of overlay, translate "
			"or observe mode\n");
		json_decref(all);
		return EXIT_INPUT;
	}
	ret = load(o.file, &docs);
	if (ret) {
		json_decref(all);
		return ret;
	}
	json_array_foreach(docs, i, d)
	{
		const char *want =
		    to_up ? KARS_API_VERSION "/KarsSandbox" : UPSTREAM_API_VERSION "/Sandbox";
		json_t *out = NULL;

		if (strcmp(kars_conv_type_of(d, type, sizeof(type)), want)) {
			fprintf(stderr, "kars: %s: document %zu: %s is not a %s\n", o.file, i + 1,
				type, want);
			ret = EXIT_INPUT;
			break;
		}
		if ((to_up ? kars_convert_kars_to_sandbox
			   : kars_convert_sandbox_to_kars)(d, &o.conv, &out, &r, &err)) {
			fprintf(stderr, "kars: %s: document %zu: %s\n", o.file, i + 1, err.msg);
			ret = EXIT_INPUT;
			break;
		}
		json_array_extend(all, out);
		json_decref(out);
	}
	if (!ret)
		ret = finish(all, &r, &o);
	json_decref(all);
	json_decref(docs);
	kars_conv_report_free(&r);
	return ret;
}

/* --- to-overlay / to-native ---------------------------------------------------- */

static int switch_mode(int argc, char **argv, bool overlay)
{
	const struct kars_kind *k = kars_kind_find("KarsSandbox");
	struct kars_store *s = NULL;
	struct kars_err err = {};
	json_t *patch, *out = NULL, *cur = NULL;
	const char *name, *ns, *ref;
	bool changed;
	struct opts o;
	int ret = parse(argc, argv, &o);

	if (ret || o.first_arg != argc - 1 || o.file || o.to || (!overlay && o.upstream_ref)) {
		fprintf(stderr, "usage: kars migrate %s NAME [-n NS] [--dry-run] [--state DIR]\n",
			overlay ? "to-overlay [--upstream-ref [NS/]NAME]" : "to-native");
		return EXIT_INPUT;
	}
	name = argv[o.first_arg];
	ns = o.conv.ns ? o.conv.ns : "default";
	if (kars_store_open_dir(o.state, &s, &err)) {
		fprintf(stderr, "kars: %s\n", err.msg);
		return 1;
	}
	ref = o.upstream_ref;
	if (overlay && !ref) {
		/* keep the reference the sandbox already names */
		if (kars_store_get(s, k, ns, name, &cur, &err) == 0)
			ref = json_string_value(json_object_get(
			    json_object_get(json_object_get(cur, "spec"), "upstreamCompatibility"),
			    "upstreamSandboxRef"));
		if (!ref && !err.code) {
			fprintf(stderr, "kars: migrate to-overlay: the sandbox names no upstream "
					"Sandbox; pass --upstream-ref [NS/]NAME\n");
			json_decref(cur);
			kars_store_close(s);
			return EXIT_INPUT;
		}
	}
	patch = overlay
		    ? json_pack("{s:{s:{s:s,s:s}}}", "spec", "upstreamCompatibility",
				"sigsAgentSandbox", "overlay", "upstreamSandboxRef", ref ? ref : "")
		    : json_pack("{s:{s:{s:s,s:n}}}", "spec", "upstreamCompatibility",
				"sigsAgentSandbox", "off", "upstreamSandboxRef");
	json_decref(cur);
	ret = kars_store_merge_patch(s, k, ns, name, patch, o.dry_run, &out, &changed, &err);
	json_decref(patch);
	kars_store_close(s);
	if (ret) {
		fprintf(stderr, "Error from server (%s): %s\n",
			ret == -ENOENT	 ? "NotFound"
			: ret == -ESTALE ? "Conflict"
			: ret == -EINVAL ? "Invalid"
					 : "Failed",
			err.msg);
		return 1;
	}
	if (o.dry_run) {
		char *text = kars_yaml_dump(out);

		printf("%s", text ? text : "");
		free(text);
	} else {
		printf("karssandbox.%s/%s %s (%s)\n", KARS_GROUP, name,
		       changed ? "patched" : "unchanged", overlay ? "overlay" : "native");
	}
	json_decref(out);
	return 0;
}

int kars_cli_migrate(int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : "";

	if (strcmp(sub, "from-kagent") == 0)
		return from_kagent(argc - 1, argv + 1);
	if (strcmp(sub, "to-overlay") == 0)
		return switch_mode(argc - 1, argv + 1, true);
	if (strcmp(sub, "to-native") == 0)
		return switch_mode(argc - 1, argv + 1, false);
	fprintf(stderr, "usage:\n");
	kars_cli_migrate_usage(stderr);
	return EXIT_INPUT;
}
