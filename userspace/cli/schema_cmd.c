/* schema_cmd.c - `kars crds`, `kars validate`, `kars explain`: the schema
 * (userspace/lib/schema_*.c) as CRD YAML, as a validator, as documentation. */
#include "schema_cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_io.h"
#include "crd.h"
#include "validate.h"
#include "yamljson.h"

void kars_cli_schema_usage(FILE *f)
{
	fprintf(f, "  crds [--out DIR]              CustomResourceDefinitions of the 12 kinds\n"
		   "  validate -f FILE|-            check manifests (multi-document YAML) as the\n"
		   "                                API server would; errors name the field\n"
		   "  explain KIND[.FIELD...] [--recursive]\n"
		   "                                describe a kind or one of its fields\n");
}

static int write_file(const char *dir, const char *name, const char *text)
{
	char path[4096], tmp[4200];
	size_t len = strlen(text);
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len || close(fd) || rename(tmp, path)) {
		fprintf(stderr, "kars: crds: %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			unlink(tmp);
		return 1;
	}
	return 0;
}

int kars_cli_crds(int argc, char **argv)
{
	const char *out = NULL;
	int ret = 0;

	if (argc == 3 && strcmp(argv[1], "--out") == 0) {
		out = argv[2];
	} else if (argc != 1) {
		fprintf(stderr, "usage: kars crds [--out DIR]\n");
		return 2;
	}
	if (out && mkdir(out, 0755) && errno != EEXIST) {
		fprintf(stderr, "kars: crds: %s: %s\n", out, strerror(errno));
		return 1;
	}
	for (size_t i = 0; kars_kinds[i] && !ret; i++) {
		char *text = kars_crd_render(kars_kinds[i]);
		char name[128];

		if (!text) {
			fprintf(stderr, "kars: crds: out of memory\n");
			return 1;
		}
		if (out) {
			kars_crd_file_name(kars_kinds[i], name, sizeof(name));
			ret = write_file(out, name, text);
		} else {
			printf("%s%s", i ? "---\n" : "", text);
		}
		free(text);
	}
	return ret;
}

static const char *meta_str(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(json_object_get(obj, "metadata"), key));
}

int kars_cli_validate(int argc, char **argv)
{
	struct kars_yaml_docs docs;
	struct kars_err err = {};
	size_t len, bad = 0;
	char *buf;

	if (argc != 3 || strcmp(argv[1], "-f")) {
		fprintf(stderr, "usage: kars validate -f FILE|-\n");
		return 2;
	}
	buf = kars_cli_read(argv[2], &len);
	if (!buf)
		return 1;
	if (kars_yaml_load_all(buf, len, &docs, &err)) {
		fprintf(stderr, "kars: %s: %s\n", argv[2], err.msg);
		free(buf);
		return 1;
	}
	free(buf);
	for (size_t i = 0; i < docs.count; i++) {
		struct kars_problems p = {};
		const struct kars_kind *k = NULL;
		json_t *obj = docs.docs[i].value;
		const char *name = meta_str(obj, "name");

		if (kars_validate_object(obj, &k, &p) == 0) {
			printf("%s/%s valid\n", k->singular, name);
			continue;
		}
		bad++;
		if (!k) {
			fprintf(stderr, "%s:%d: %s\n", argv[2], docs.docs[i].line, p.msg[0]);
			continue;
		}
		fprintf(stderr, "%s:%d: The %s \"%s\" is invalid:", argv[2], docs.docs[i].line,
			k->kind, name ? name : "");
		if (p.count == 1 && !p.dropped) {
			fprintf(stderr, " %s\n", p.msg[0]);
			continue;
		}
		fprintf(stderr, "\n");
		for (size_t j = 0; j < p.count; j++)
			fprintf(stderr, "* %s\n", p.msg[j]);
		if (p.dropped)
			fprintf(stderr, "* (and %zu more)\n", p.dropped);
	}
	if (docs.count == 0) {
		fprintf(stderr, "kars: %s: no objects\n", argv[2]);
		bad = 1;
	}
	kars_yaml_docs_free(&docs);
	return bad ? 1 : 0;
}

/* --- explain ------------------------------------------------------------------ */

static const char *type_word(const struct kars_field *f)
{
	switch (f->type) {
	case KT_OBJECT:
		return "Object";
	case KT_MAP:
		return f->items->type == KT_INT_OR_STRING ? "map[string]IntOrString"
							  : "map[string]string";
	case KT_FREEFORM:
		return "Object (any fields)";
	case KT_ARRAY:
		return f->items->type == KT_OBJECT ? "[]Object" : "[]string";
	case KT_INT_OR_STRING:
		return "IntOrString";
	default:
		return kars_type_name(f->type);
	}
}

static void print_wrapped(const char *text, int indent)
{
	int col = 0;
	const char *p = text;

	printf("%*s", indent, "");
	while (*p) {
		size_t word = strcspn(p, " ");

		if (col && col + (int)word > 76 - indent) {
			printf("\n%*s", indent, "");
			col = 0;
		}
		printf("%.*s", (int)word, p);
		col += (int)word;
		p += word;
		if (*p == ' ') {
			if (col)
				putchar(' '), col++;
			p++;
		}
	}
	putchar('\n');
}

static void print_constraints(const struct kars_field *f, int indent)
{
	char line[1024] = "";
	size_t n = 0;

	if (f->enums) {
		n += (size_t)snprintf(line + n, sizeof(line) - n, "enum:");
		for (const char *const *e = f->enums; *e; e++)
			n += (size_t)snprintf(line + n, sizeof(line) - n, "%s %s",
					      e == f->enums ? "" : ",", *e);
		n += (size_t)snprintf(line + n, sizeof(line) - n, ". ");
	}
	if (f->dflt)
		n += (size_t)snprintf(line + n, sizeof(line) - n, "default: %s. ", f->dflt);
	if ((f->flags & KF_MIN) && (f->flags & KF_MAX))
		n += (size_t)snprintf(line + n, sizeof(line) - n, "range: %lld to %lld. ", f->min,
				      f->max);
	if (f->max_len)
		n += (size_t)snprintf(line + n, sizeof(line) - n, "max length: %u. ", f->max_len);
	if (f->max_items)
		n += (size_t)snprintf(line + n, sizeof(line) - n, "max items: %u. ", f->max_items);
	if (f->pattern)
		n += (size_t)snprintf(line + n, sizeof(line) - n, "pattern: %s. ", f->pattern);
	if (f->format)
		n += (size_t)snprintf(line + n, sizeof(line) - n, "format: %s. ", f->format);
	if (n)
		print_wrapped(line, indent);
}

static void print_recursive(const struct kars_field *f, int indent)
{
	while (f && (f->type == KT_ARRAY || f->type == KT_MAP))
		f = f->items;
	if (!f || f->type != KT_OBJECT)
		return;
	for (const struct kars_field *c = f->props; c && c->name; c++) {
		printf("%*s%s\t<%s>%s\n", indent, "", c->name, type_word(c),
		       c->flags & KF_REQUIRED ? " -required-" : "");
		print_recursive(c, indent + 2);
	}
}

int kars_cli_explain(int argc, char **argv)
{
	const struct kars_kind *k;
	const struct kars_field *f = NULL, *list;
	struct kars_field root = {.type = KT_OBJECT}, root_props[3] = {};
	bool recursive = false;
	const char *arg = NULL;
	char kind[64];
	size_t klen;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--recursive") == 0)
			recursive = true;
		else if (!arg && argv[i][0] != '-')
			arg = argv[i];
		else
			arg = NULL, i = argc;
	}
	if (!arg) {
		fprintf(stderr, "usage: kars explain KIND[.FIELD...] [--recursive]\n");
		return 2;
	}
	klen = strcspn(arg, ".");
	snprintf(kind, sizeof(kind), "%.*s", (int)(klen < 63 ? klen : 63), arg);
	k = kars_kind_find(kind);
	if (!k) {
		fprintf(stderr, "kars: explain: the server doesn't have a resource type \"%s\"\n",
			kind);
		return 1;
	}
	if (arg[klen]) {
		f = kars_field_find(k, arg + klen + 1);
		if (!f) {
			fprintf(stderr, "kars: explain: field \"%s\" does not exist in %s\n",
				arg + klen + 1, k->kind);
			return 1;
		}
	}
	printf("GROUP:      %s\nKIND:       %s\nVERSION:    %s\n\n", KARS_GROUP, k->kind,
	       KARS_VERSION);
	if (f) {
		const char *leaf = strrchr(arg, '.') + 1;

		printf("FIELD: %s <%s>%s\n\nDESCRIPTION:\n", leaf, type_word(f),
		       f->flags & KF_REQUIRED ? " -required-" : "");
		print_wrapped(f->desc ? f->desc : "", 4);
		print_constraints(f, 4);
		for (const struct kars_rule *r = f->rules; r && r->cel; r++) {
			if (r == f->rules)
				printf("\nRULES:\n");
			print_wrapped(r->message, 4);
			printf("      CEL: %s\n", r->cel);
		}
		list = f;
	} else {
		printf("DESCRIPTION:\n");
		print_wrapped(k->desc, 4);
		printf("    Scope: %s. Short names:", k->cluster_scoped ? "Cluster" : "Namespaced");
		for (const char *const *s = k->short_names; s && *s; s++)
			printf(" %s", *s);
		printf(". Phases:");
		for (const char *const *s = k->phases; s && *s; s++)
			printf(" %s", *s);
		printf(".\n");
		root_props[0] = *k->spec;
		root_props[1] = *k->status;
		root.props = root_props;
		list = &root;
	}
	while (list && (list->type == KT_ARRAY || list->type == KT_MAP))
		list = list->items;
	if (!list || list->type != KT_OBJECT)
		return 0;
	printf("\nFIELDS:\n");
	if (recursive) {
		print_recursive(list, 2);
		return 0;
	}
	for (const struct kars_field *c = list->props; c && c->name; c++) {
		printf("  %s\t<%s>%s\n", c->name, type_word(c),
		       c->flags & KF_REQUIRED ? " -required-" : "");
		print_wrapped(c->desc ? c->desc : "", 4);
		print_constraints(c, 4);
		printf("\n");
	}
	return 0;
}
