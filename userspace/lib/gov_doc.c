/* gov_doc.c - YAML (and JSON) bytes to a small tree that keeps line numbers.
 *
 * AGT profiles are YAML in the wild (agt-profile.yaml, ToolPolicy
 * agtProfile.inline) and JSON in some tools (profile.json). JSON is YAML's
 * flow style, so one libyaml event parser reads both, and every node keeps
 * the line it started on: a loader error can then say "file:12: field".
 *
 * What YAML can do that a policy has no use for is refused rather than
 * interpreted: aliases and anchors (a billion-laughs document costs nothing to
 * refuse), tags, several documents, keys that are not scalars, duplicate keys
 * (the last would silently win), and nesting deeper than a profile has.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "gov_priv.h"

#define DOC_DEPTH_MAX 32
#define DOC_NODES_MAX (4u << 20)

struct builder {
	const char *name;
	struct gov_node *stack[DOC_DEPTH_MAX + 1];
	size_t depth;
	struct gov_node *root;
	size_t nodes;
	struct kars_err *err;
};

void gov_doc_free(struct gov_node *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++)
		gov_doc_free(n->items[i]);
	free(n->items);
	free(n->text);
	free(n);
}

static int fail(struct builder *b, size_t line, int code, const char *what)
{
	return kars_err_set(b->err, code, "%s:%zu: %s", b->name, line, what);
}

static int append(struct builder *b, struct gov_node *parent, struct gov_node *child)
{
	if ((parent->n & (parent->n - 1)) == 0) { /* grow at 0, 1, 2, 4, 8, ... */
		size_t cap = parent->n ? parent->n * 2 : 1;
		struct gov_node **items = realloc(parent->items, cap * sizeof(*items));

		if (!items)
			return fail(b, child->line, ENOMEM, "out of memory");
		parent->items = items;
	}
	parent->items[parent->n++] = child;
	return 0;
}

/* A new key of a map must not repeat an earlier one. */
static int check_duplicate_key(struct builder *b, const struct gov_node *map,
			       const struct gov_node *key)
{
	for (size_t i = 0; i < map->n; i += 2) {
		const struct gov_node *k = map->items[i];

		if (k->len == key->len && memcmp(k->text, key->text, k->len) == 0)
			return kars_err_set(b->err, EINVAL,
					    "%s:%zu: duplicate key \"%s\" (first at line %zu)",
					    b->name, key->line, key->text, k->line);
	}
	return 0;
}

/* Places a finished node in its parent, or makes it the root. */
static int place(struct builder *b, struct gov_node *node)
{
	struct gov_node *parent;
	int ret;

	if (b->depth == 0) {
		b->root = node;
		return 0;
	}
	parent = b->stack[b->depth - 1];
	if (parent->kind == GOV_MAP && parent->n % 2 == 0) {
		if (node->kind != GOV_SCALAR) {
			ret = fail(b, node->line, EINVAL, "a mapping key must be a plain string");
			gov_doc_free(node);
			return ret;
		}
		ret = check_duplicate_key(b, parent, node);
		if (ret) {
			gov_doc_free(node);
			return ret;
		}
	}
	ret = append(b, parent, node);
	if (ret)
		gov_doc_free(node);
	return ret;
}

static struct gov_node *new_node(struct builder *b, enum gov_node_kind kind, size_t line)
{
	struct gov_node *n;

	if (++b->nodes > DOC_NODES_MAX) {
		fail(b, line, E2BIG, "too many values in one document");
		return NULL;
	}
	n = calloc(1, sizeof(*n));
	if (!n) {
		fail(b, line, ENOMEM, "out of memory");
		return NULL;
	}
	n->kind = kind;
	n->line = line;
	return n;
}

static int on_scalar(struct builder *b, const yaml_event_t *ev, size_t line)
{
	struct gov_node *n;

	if (ev->data.scalar.tag && !ev->data.scalar.plain_implicit &&
	    !ev->data.scalar.quoted_implicit)
		return fail(b, line, EINVAL, "YAML tags are not supported");
	if (memchr(ev->data.scalar.value, '\0', ev->data.scalar.length))
		return fail(b, line, EINVAL, "a string holds a NUL byte");
	n = new_node(b, GOV_SCALAR, line);
	if (!n)
		return -b->err->code;
	n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	n->len = ev->data.scalar.length;
	n->text = malloc(n->len + 1);
	if (!n->text) {
		free(n);
		return fail(b, line, ENOMEM, "out of memory");
	}
	memcpy(n->text, ev->data.scalar.value, n->len);
	n->text[n->len] = '\0';
	return place(b, n);
}

static int on_start(struct builder *b, enum gov_node_kind kind, const yaml_char_t *anchor,
		    const yaml_char_t *tag, int implicit, size_t line)
{
	struct gov_node *n;

	if (anchor)
		return fail(b, line, EINVAL, "YAML anchors are not supported");
	if (tag && !implicit)
		return fail(b, line, EINVAL, "YAML tags are not supported");
	if (b->depth >= DOC_DEPTH_MAX)
		return fail(b, line, EINVAL, "nested too deeply");
	n = new_node(b, kind, line);
	if (!n)
		return -b->err->code;
	b->stack[b->depth++] = n;
	return 0;
}

static int on_end(struct builder *b)
{
	struct gov_node *n = b->stack[--b->depth];

	return place(b, n);
}

static int on_event(struct builder *b, const yaml_event_t *ev, int *docs)
{
	size_t line = ev->start_mark.line + 1;

	switch (ev->type) {
	case YAML_STREAM_START_EVENT:
	case YAML_STREAM_END_EVENT:
	case YAML_DOCUMENT_END_EVENT:
		return 0;
	case YAML_DOCUMENT_START_EVENT:
		if (++*docs > 1)
			return fail(b, line, EINVAL, "only one YAML document per file");
		return 0;
	case YAML_ALIAS_EVENT:
		return fail(b, line, EINVAL, "YAML aliases are not supported");
	case YAML_SCALAR_EVENT:
		if (ev->data.scalar.anchor)
			return fail(b, line, EINVAL, "YAML anchors are not supported");
		return on_scalar(b, ev, line);
	case YAML_SEQUENCE_START_EVENT:
		return on_start(b, GOV_SEQ, ev->data.sequence_start.anchor,
				ev->data.sequence_start.tag, ev->data.sequence_start.implicit,
				line);
	case YAML_MAPPING_START_EVENT:
		return on_start(b, GOV_MAP, ev->data.mapping_start.anchor,
				ev->data.mapping_start.tag, ev->data.mapping_start.implicit, line);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		return on_end(b);
	default:
		return fail(b, line, EINVAL, "unexpected YAML event");
	}
}

struct gov_node *gov_doc_parse(const char *buf, size_t len, const char *name, struct kars_err *err)
{
	struct builder b = {.name = name ? name : "profile", .err = err};
	struct kars_err local;
	yaml_parser_t parser;
	bool done = false;
	int docs = 0, ret = 0;

	if (!err) {
		kars_err_clear(&local);
		b.err = err = &local;
	}
	if (len > KARS_GOV_PROFILE_MAX) {
		kars_err_set(err, EFBIG, "%s: larger than %u bytes", b.name, KARS_GOV_PROFILE_MAX);
		return NULL;
	}
	if (!yaml_parser_initialize(&parser)) {
		kars_err_set(err, ENOMEM, "%s: out of memory", b.name);
		return NULL;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	while (!done && ret == 0) {
		yaml_event_t ev;

		if (!yaml_parser_parse(&parser, &ev)) {
			ret = kars_err_set(err, EINVAL, "%s:%zu:%zu: invalid YAML: %s", b.name,
					   parser.problem_mark.line + 1,
					   parser.problem_mark.column + 1,
					   parser.problem ? parser.problem : "parse error");
			break;
		}
		ret = on_event(&b, &ev, &docs);
		done = ev.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	while (b.depth > 0)
		gov_doc_free(b.stack[--b.depth]);
	if (ret == 0 && !b.root)
		ret = kars_err_set(err, EINVAL, "%s: empty document", b.name);
	if (ret) {
		gov_doc_free(b.root);
		return NULL;
	}
	return b.root;
}

const struct gov_node *gov_doc_get(const struct gov_node *map, const char *key)
{
	if (!map || map->kind != GOV_MAP)
		return NULL;
	for (size_t i = 0; i + 1 < map->n; i += 2) {
		if (strcmp(map->items[i]->text, key) == 0)
			return map->items[i + 1];
	}
	return NULL;
}

bool gov_doc_is_null(const struct gov_node *n)
{
	if (n->kind != GOV_SCALAR || !n->plain)
		return false;
	return n->len == 0 || strcmp(n->text, "~") == 0 || strcmp(n->text, "null") == 0 ||
	       strcmp(n->text, "Null") == 0 || strcmp(n->text, "NULL") == 0;
}
