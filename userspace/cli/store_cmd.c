/* store_cmd.c - `kars apply`, `kars get`, `kars delete` (store_cmd.h). */
#include "store_cmd.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_io.h"
#include "store.h"
#include "validate.h"
#include "yamljson.h"

#define DEFAULT_STATE "/var/lib/kars/state"

void kars_cli_store_usage(FILE *f)
{
	fprintf(f, "  apply -f FILE|-               create or update objects in the local store\n"
		   "  get KIND [NAME] [-n NS|-A] [-o yaml|json|wide] [-w [--resource-version RV]]\n"
		   "                                show objects; -w: the current ones, then\n"
		   "                                their changes (--resource-version RV: only\n"
		   "                                the changes after RV)\n"
		   "  delete KIND NAME [-n NS] | delete -f FILE|-\n"
		   "                                delete objects (finalizers are honoured)\n"
		   "  (the local store is --state DIR, $KARS_STATE_DIR or " DEFAULT_STATE ")\n");
}

struct opts {
	const char *state, *ns, *file, *output;
	bool all_ns, watch, from_set; /* from_set: --resource-version given */
	unsigned long long from;
	int first_arg; /* index of the first positional argument */
};

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option long_opts[] = {
	    {"state", required_argument, NULL, 's'},
	    {"namespace", required_argument, NULL, 'n'},
	    {"all-namespaces", no_argument, NULL, 'A'},
	    {"filename", required_argument, NULL, 'f'},
	    {"output", required_argument, NULL, 'o'},
	    {"watch", no_argument, NULL, 'w'},
	    {"resource-version", required_argument, NULL, 'r'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->state = getenv("KARS_STATE_DIR");
	if (!o->state || !*o->state)
		o->state = DEFAULT_STATE;
	optind = 1;
	while ((c = getopt_long(argc, argv, "n:Af:o:w", long_opts, NULL)) != -1) {
		char *end;

		switch (c) {
		case 's':
			o->state = optarg;
			break;
		case 'n':
			o->ns = optarg;
			break;
		case 'A':
			o->all_ns = true;
			break;
		case 'f':
			o->file = optarg;
			break;
		case 'o':
			if (strcmp(optarg, "yaml") && strcmp(optarg, "json") &&
			    strcmp(optarg, "wide")) {
				fprintf(stderr, "kars: -o: \"%s\" is not yaml, json or wide\n",
					optarg);
				return 2;
			}
			o->output = optarg;
			break;
		case 'w':
			o->watch = true;
			break;
		case 'r':
			errno = 0;
			o->from = strtoull(optarg, &end, 10);
			o->from_set = true;
			if (errno || *end || !*optarg) {
				fprintf(stderr,
					"kars: --resource-version: \"%s\" is not a number\n",
					optarg);
				return 2;
			}
			break;
		default:
			return 2;
		}
	}
	o->first_arg = optind;
	return 0;
}

static struct kars_store *open_state(const struct opts *o)
{
	struct kars_store *s = NULL;
	struct kars_err err = {};

	if (kars_store_open_dir(o->state, &s, &err)) {
		fprintf(stderr, "kars: %s\n", err.msg);
		return NULL;
	}
	return s;
}

static const char *md_str(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(json_object_get(obj, "metadata"), key));
}

/* "Error from server (NotFound): ..." as kubectl words store errors. */
static void print_store_error(const char *where, int ret, const struct kars_err *err)
{
	const char *reason = ret == -ENOENT   ? "NotFound"
			     : ret == -EEXIST ? "AlreadyExists"
			     : ret == -ESTALE ? "Conflict"
			     : ret == -EINVAL ? "Invalid"
					      : NULL;

	if (reason)
		fprintf(stderr, "%s%sError from server (%s): %s\n", where ? where : "",
			where ? ": " : "", reason, err->msg);
	else
		fprintf(stderr, "%s%skars: %s\n", where ? where : "", where ? ": " : "", err->msg);
}

static int apply_one(struct kars_store *s, json_t *obj, const char *where)
{
	struct kars_problems p = {};
	struct kars_err err = {};
	const struct kars_kind *k = kars_object_kind(obj, &p);
	json_t *cur = NULL, *out = NULL, *next;
	int ret;

	if (!k) {
		fprintf(stderr, "%s: %s\n", where, p.msg[0]);
		return 1;
	}
	ret = kars_store_get(s, k, md_str(obj, "namespace"), md_str(obj, "name") ?: "", &cur, &err);
	if (ret == -ENOENT) {
		kars_err_clear(&err);
		ret = kars_store_create(s, obj, &out, &err);
		if (!ret)
			printf("%s.%s/%s created\n", k->singular, KARS_GROUP, md_str(out, "name"));
	} else if (ret == 0) {
		/* spec, labels and annotations from the file; finalizers and
		 * owner references stay as the controllers set them */
		const json_t *cur_md = json_object_get(cur, "metadata");
		json_t *md;

		next = json_deep_copy(obj);
		md = json_object_get(next, "metadata");
		json_object_set(md, "resourceVersion", json_object_get(cur_md, "resourceVersion"));
		for (const char *const *key =
			 (const char *const[]){"finalizers", "ownerReferences", NULL};
		     *key; key++) {
			if (json_object_get(cur_md, *key))
				json_object_set(md, *key, json_object_get(cur_md, *key));
			else
				json_object_del(md, *key);
		}
		ret = kars_store_update(s, next, &out, &err);
		json_decref(next);
		if (!ret)
			printf("%s.%s/%s %s\n", k->singular, KARS_GROUP, md_str(out, "name"),
			       kars_object_rv(out) == kars_object_rv(cur) ? "unchanged"
									  : "configured");
	}
	if (ret)
		print_store_error(where, ret, &err);
	json_decref(cur);
	json_decref(out);
	return ret ? 1 : 0;
}

/* Loads FILE's documents; prints the error and returns -1 on failure. */
static int load_docs(const char *file, struct kars_yaml_docs *docs)
{
	struct kars_err err = {};
	size_t len;
	char *buf = kars_cli_read(file, &len);
	int ret;

	if (!buf)
		return -1;
	ret = kars_yaml_load_all(buf, len, docs, &err);
	free(buf);
	if (ret) {
		fprintf(stderr, "kars: %s: %s\n", file, err.msg);
		return -1;
	}
	if (docs->count == 0) {
		fprintf(stderr, "kars: %s: no objects\n", file);
		return -1;
	}
	return 0;
}

int kars_cli_apply(int argc, char **argv)
{
	struct kars_yaml_docs docs;
	struct kars_store *s;
	struct opts o;
	int bad = 0;

	if (parse_opts(argc, argv, &o) || !o.file || o.first_arg != argc) {
		fprintf(stderr, "usage: kars apply -f FILE|- [--state DIR]\n");
		return 2;
	}
	if (load_docs(o.file, &docs))
		return 1;
	s = open_state(&o);
	for (size_t i = 0; s && i < docs.count; i++) {
		char where[512];

		if (o.ns && !md_str(docs.docs[i].value, "namespace"))
			json_object_set_new(json_object_get(docs.docs[i].value, "metadata"),
					    "namespace", json_string(o.ns));
		snprintf(where, sizeof(where), "%s:%d", o.file, docs.docs[i].line);
		bad |= apply_one(s, docs.docs[i].value, where);
	}
	kars_yaml_docs_free(&docs);
	kars_store_close(s);
	return !s || bad ? 1 : 0;
}

/* --- get -------------------------------------------------------------------- */

/* kubectl's HumanDuration. */
static void age(const char *ts, char *buf, size_t len)
{
	struct tm tm = {};
	long long d, m, h, days;

	if (!ts || !strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm)) {
		snprintf(buf, len, "<unknown>");
		return;
	}
	d = (long long)(time(NULL) - timegm(&tm));
	if (d < 0)
		d = 0;
	m = d / 60, h = d / 3600, days = d / 86400;
	if (d < 120)
		snprintf(buf, len, "%llds", d);
	else if (m < 10)
		snprintf(buf, len, d % 60 ? "%lldm%llds" : "%lldm", m, d % 60);
	else if (h < 3)
		snprintf(buf, len, "%lldm", m);
	else if (h < 8)
		snprintf(buf, len, m % 60 ? "%lldh%lldm" : "%lldh", h, m % 60);
	else if (h < 48)
		snprintf(buf, len, "%lldh", h);
	else if (h < 192)
		snprintf(buf, len, h % 24 ? "%lldd%lldh" : "%lldd", days, h % 24);
	else
		snprintf(buf, len, "%lldd", days);
}

/* A printer column's value: ".a.b.c" or ".a.list[?(@.k=="v")].f". */
static void column_value(const json_t *obj, const struct kars_column *c, char *buf, size_t len)
{
	const json_t *v = obj;
	const char *p = c->json_path;

	while (v && *p == '.') {
		size_t n;
		char key[128];

		p++;
		n = strcspn(p, ".[");
		snprintf(key, sizeof(key), "%.*s", (int)n, p);
		v = json_object_get(v, key);
		p += n;
		if (*p == '[') {
			/* [?(@.field=="value")] */
			char field[64] = "", want[128] = "";
			const json_t *item, *found = NULL;
			size_t i;

			if (sscanf(p, "[?(@.%63[^=]==\"%127[^\"]\")]", field, want) != 2)
				break;
			json_array_foreach(v, i, item)
			{
				if (!found &&
				    !strcmp(json_string_value(json_object_get(item, field)) ?: "",
					    want))
					found = item;
			}
			v = found;
			p = strchr(p, ']') + 1;
		}
	}
	if (!v || json_is_null(v)) {
		snprintf(buf, len, "%s", strcmp(c->type, "date") ? "" : "<unknown>");
		return;
	}
	if (!strcmp(c->type, "date")) {
		age(json_string_value(v), buf, len);
	} else if (json_is_string(v)) {
		snprintf(buf, len, "%s", json_string_value(v));
	} else {
		char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);

		snprintf(buf, len, "%s", s ? s : "");
		free(s);
	}
}

#define MAX_COLS 10

static void print_table(const struct kars_kind *k, const json_t *items, bool show_ns, bool wide,
			bool header)
{
	const struct kars_column *cols[MAX_COLS];
	size_t ncols = 0, i, j;
	int width[MAX_COLS + 2] = {0};
	char cell[64][MAX_COLS + 2][128];

	for (const struct kars_column *c = k->columns; c && c->name && ncols < MAX_COLS; c++)
		if (wide || c->priority == 0)
			cols[ncols++] = c;
	/* in pages of 64 rows, each page aligned on its own */
	for (size_t base = 0; base < json_array_size(items); base += 64) {
		size_t rows =
		    json_array_size(items) - base < 64 ? json_array_size(items) - base : 64;

		memset(width, 0, sizeof(width));
		for (i = 0; i < rows; i++) {
			const json_t *o = json_array_get(items, base + i);

			snprintf(cell[i][0], 128, "%s", md_str(o, "namespace") ?: "");
			snprintf(cell[i][1], 128, "%s", md_str(o, "name") ?: "");
			for (j = 0; j < ncols; j++)
				column_value(o, cols[j], cell[i][j + 2], 128);
		}
		width[0] = 9;
		width[1] = 4;
		for (j = 0; j < ncols; j++)
			width[j + 2] = (int)strlen(cols[j]->name);
		for (i = 0; i < rows; i++)
			for (j = 0; j < ncols + 2; j++)
				if ((int)strlen(cell[i][j]) > width[j])
					width[j] = (int)strlen(cell[i][j]);
		if (header && base == 0) {
			if (show_ns)
				printf("%-*s   ", width[0], "NAMESPACE");
			printf("%-*s", width[1], "NAME");
			for (j = 0; j < ncols; j++) {
				char up[64];
				size_t l;

				for (l = 0; cols[j]->name[l] && l < sizeof(up) - 1; l++)
					up[l] = (char)(cols[j]->name[l] >= 'a' &&
							       cols[j]->name[l] <= 'z'
							   ? cols[j]->name[l] - 32
							   : cols[j]->name[l]);
				up[l] = '\0';
				printf("   %-*s", j + 1 < ncols ? width[j + 2] : 0, up);
			}
			printf("\n");
		}
		for (i = 0; i < rows; i++) {
			if (show_ns)
				printf("%-*s   ", width[0], cell[i][0]);
			printf("%-*s", width[1], cell[i][1]);
			for (j = 0; j < ncols; j++)
				printf("   %-*s", j + 1 < ncols ? width[j + 2] : 0, cell[i][j + 2]);
			printf("\n");
		}
	}
}

static void print_doc(const json_t *v, const char *output)
{
	char *text = !strcmp(output, "yaml") ? kars_yaml_dump(v)
					     : json_dumps(v, JSON_INDENT(4) | JSON_PRESERVE_ORDER);

	if (text)
		printf("%s%s", text, strcmp(output, "yaml") ? "\n" : "");
	free(text);
}

static void print_event(const struct kars_kind *k, const char *ns, const char *type,
			const json_t *obj, const struct opts *o, bool *first)
{
	if (o->output && !strcmp(o->output, "json")) {
		json_t *line = json_pack("{s:s,s:O}", "type", type, "object", obj);
		char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);

		printf("%s\n", text ? text : "{}");
		free(text);
		json_decref(line);
	} else {
		json_t *one = json_pack("[O]", obj);

		print_table(k, one, !ns && !k->cluster_scoped, o->output != NULL, *first);
		*first = false;
		json_decref(one);
	}
}

/* Like kubectl: without --resource-version, the current objects first (as
 * ADDED), then the changes after that list; with it, the changes after RV
 * (0: whatever the store's log still holds). name: only that object. */
static int watch_kind(struct kars_store *s, const struct kars_kind *k, const char *ns,
		      const char *name, const struct opts *o)
{
	struct kars_watch *w = NULL;
	struct kars_err err = {};
	struct kars_event ev;
	json_t *items = NULL, *it;
	uint64_t from = o->from;
	bool first = true;
	size_t i;
	int ret;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!o->from_set) {
		ret = kars_store_list(s, k, ns, &items, &from, &err);
		if (ret) {
			print_store_error(NULL, ret, &err);
			return 1;
		}
		json_array_foreach(items, i, it)
		{
			if (!name || !strcmp(md_str(it, "name") ?: "", name))
				print_event(k, ns, "ADDED", it, o, &first);
		}
		json_decref(items);
	}
	ret = kars_store_watch(s, k, ns, from, &w, &err);
	if (ret) {
		print_store_error(NULL, ret, &err);
		return 1;
	}
	while ((ret = kars_watch_next(w, -1, &ev, &err)) == 0) {
		if (!name || !strcmp(md_str(ev.object, "name") ?: "", name))
			print_event(k, ns,
				    ev.type == KARS_ADDED      ? "ADDED"
				    : ev.type == KARS_MODIFIED ? "MODIFIED"
							       : "DELETED",
				    ev.object, o, &first);
		json_decref(ev.object);
	}
	kars_watch_close(w);
	print_store_error(NULL, ret, &err);
	return 1;
}

int kars_cli_get(int argc, char **argv)
{
	const struct kars_kind *k;
	struct kars_store *s;
	struct kars_err err = {};
	const char *name, *ns;
	json_t *items = NULL, *one = NULL;
	uint64_t rv = 0;
	struct opts o;
	int ret;

	if (parse_opts(argc, argv, &o) || o.first_arg >= argc || argc - o.first_arg > 2) {
		fprintf(stderr, "usage: kars get KIND [NAME] [-n NS|-A] [-o yaml|json|wide] "
				"[-w [--resource-version RV]] [--state DIR]\n");
		return 2;
	}
	k = kars_kind_find(argv[o.first_arg]);
	if (!k) {
		fprintf(stderr, "error: the server doesn't have a resource type \"%s\"\n",
			argv[o.first_arg]);
		return 1;
	}
	name = argc - o.first_arg == 2 ? argv[o.first_arg + 1] : NULL;
	ns = o.all_ns ? NULL : o.ns ? o.ns : "default";
	s = open_state(&o);
	if (!s)
		return 1;
	if (o.watch) {
		ret = watch_kind(s, k, ns, name, &o);
		kars_store_close(s);
		return ret;
	}
	if (name) {
		ret = kars_store_get(s, k, ns, name, &one, &err);
		kars_store_close(s);
		if (ret) {
			print_store_error(NULL, ret, &err);
			return 1;
		}
		if (o.output && strcmp(o.output, "wide"))
			print_doc(one, o.output);
		else {
			items = json_pack("[O]", one);
			print_table(k, items, false, o.output != NULL, true);
		}
		json_decref(one);
		json_decref(items);
		return 0;
	}
	ret = kars_store_list(s, k, ns, &items, &rv, &err);
	kars_store_close(s);
	if (ret) {
		print_store_error(NULL, ret, &err);
		return 1;
	}
	if (o.output && strcmp(o.output, "wide")) {
		char rvs[32];
		json_t *list;

		snprintf(rvs, sizeof(rvs), "%llu", (unsigned long long)rv);
		list = json_pack("{s:s,s:O,s:s,s:{s:s}}", "apiVersion", "v1", "items", items,
				 "kind", "List", "metadata", "resourceVersion", rvs);
		print_doc(list, o.output);
		json_decref(list);
	} else if (json_array_size(items) == 0) {
		if (ns && !k->cluster_scoped)
			fprintf(stderr, "No resources found in %s namespace.\n", ns);
		else
			fprintf(stderr, "No resources found\n");
	} else {
		print_table(k, items, !ns && !k->cluster_scoped, o.output != NULL, true);
	}
	json_decref(items);
	return 0;
}

/* --- delete ----------------------------------------------------------------- */

static int delete_one(struct kars_store *s, const struct kars_kind *k, const char *ns,
		      const char *name, const char *where)
{
	struct kars_err err = {};
	json_t *out = NULL;
	int ret = kars_store_delete(s, k, ns, name, &out, &err);

	if (ret) {
		print_store_error(where, ret, &err);
		return 1;
	}
	if (json_object_get(json_object_get(out, "metadata"), "deletionTimestamp") &&
	    json_array_size(json_object_get(json_object_get(out, "metadata"), "finalizers"))) {
		char *fin = json_dumps(
		    json_object_get(json_object_get(out, "metadata"), "finalizers"), JSON_COMPACT);

		printf("%s.%s \"%s\" marked for deletion (waiting for finalizers %s)\n",
		       k->singular, KARS_GROUP, name, fin ? fin : "");
		free(fin);
	} else {
		printf("%s.%s \"%s\" deleted\n", k->singular, KARS_GROUP, name);
	}
	json_decref(out);
	return 0;
}

int kars_cli_delete(int argc, char **argv)
{
	struct kars_store *s;
	struct opts o;
	int bad = 0;

	if (parse_opts(argc, argv, &o) ||
	    (o.file ? o.first_arg != argc : argc - o.first_arg != 2)) {
		fprintf(stderr, "usage: kars delete KIND NAME [-n NS] | kars delete -f FILE|- "
				"[--state DIR]\n");
		return 2;
	}
	if (!o.file) {
		const struct kars_kind *k = kars_kind_find(argv[o.first_arg]);

		if (!k) {
			fprintf(stderr, "error: the server doesn't have a resource type \"%s\"\n",
				argv[o.first_arg]);
			return 1;
		}
		s = open_state(&o);
		if (!s)
			return 1;
		bad = delete_one(s, k, o.ns, argv[o.first_arg + 1], NULL);
		kars_store_close(s);
		return bad;
	} else {
		struct kars_yaml_docs docs;

		if (load_docs(o.file, &docs))
			return 1;
		s = open_state(&o);
		for (size_t i = 0; s && i < docs.count; i++) {
			struct kars_problems p = {};
			const json_t *obj = docs.docs[i].value;
			const struct kars_kind *k = kars_object_kind(obj, &p);
			char where[512];

			snprintf(where, sizeof(where), "%s:%d", o.file, docs.docs[i].line);
			if (!k) {
				fprintf(stderr, "%s: %s\n", where, p.msg[0]);
				bad = 1;
				continue;
			}
			bad |= delete_one(s, k, md_str(obj, "namespace") ?: o.ns,
					  md_str(obj, "name") ?: "", where);
		}
		kars_yaml_docs_free(&docs);
		kars_store_close(s);
		return !s || bad ? 1 : 0;
	}
}
