/* yamljson.c - see yamljson.h. libyaml events in, a jansson tree out; and back. */
#include "yamljson.h"

#include <errno.h>
#include <math.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define YAML_MAX_DEPTH 64

static bool in_list(const char *s, size_t len, const char *const *list)
{
	for (; *list; list++)
		if (strlen(*list) == len && memcmp(*list, s, len) == 0)
			return true;
	return false;
}

static const char *const null_words[] = {"~", "null", "Null", "NULL", NULL};
static const char *const true_words[] = {"y",	 "Y",	 "yes", "Yes", "YES", "true",
					 "True", "TRUE", "on",	"On",  "ON",  NULL};
static const char *const false_words[] = {"n",	   "N",	    "no",  "No",  "NO",	 "false",
					  "False", "FALSE", "off", "Off", "OFF", NULL};
static const char *const special_floats[] = {".inf",  ".Inf",  ".INF",	"+.inf", "+.Inf",
					     "+.INF", "-.inf", "-.Inf", "-.INF", ".nan",
					     ".NaN",  ".NAN",  NULL};

/* A go-yaml v2 float: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static bool looks_float(const char *s)
{
	size_t i = 0, digits = 0;

	if (s[i] == '+' || s[i] == '-')
		i++;
	if (s[i] == '.') {
		for (i++; s[i] >= '0' && s[i] <= '9'; i++)
			digits++;
		if (!digits)
			return false;
	} else {
		for (; s[i] >= '0' && s[i] <= '9'; i++)
			digits++;
		if (!digits)
			return false;
		if (s[i] == '.')
			for (i++; s[i] >= '0' && s[i] <= '9'; i++)
				;
	}
	if (s[i] == 'e' || s[i] == 'E') {
		size_t exp = 0;

		i++;
		if (s[i] == '+' || s[i] == '-')
			i++;
		for (; s[i] >= '0' && s[i] <= '9'; i++)
			exp++;
		if (!exp)
			return false;
	}
	return s[i] == '\0';
}

/* strtoll with go's base-0 prefixes (0x, 0o, 0b, leading 0 = octal). */
static bool parse_int(const char *s, long long *out)
{
	const char *p = s;
	int base = 10;
	bool neg = false;
	unsigned long long v = 0;

	if (*p == '+' || *p == '-')
		neg = *p++ == '-';
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		base = 16, p += 2;
	else if (p[0] == '0' && (p[1] == 'o' || p[1] == 'O'))
		base = 8, p += 2;
	else if (p[0] == '0' && (p[1] == 'b' || p[1] == 'B'))
		base = 2, p += 2;
	else if (p[0] == '0' && p[1])
		base = 8, p += 1;
	if (!*p)
		return false;
	for (; *p; p++) {
		int d;

		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else if (*p >= 'A' && *p <= 'F')
			d = *p - 'A' + 10;
		else
			return false;
		if (d >= base)
			return false;
		if (v > (~0ull - (unsigned)d) / (unsigned)base)
			return false;
		v = v * (unsigned)base + (unsigned)d;
	}
	if (neg ? v > (unsigned long long)LLONG_MAX + 1 : v > (unsigned long long)LLONG_MAX)
		return false;
	*out = neg ? (long long)(0 - v) : (long long)v;
	return true;
}

json_t *kars_yaml_resolve_plain(const char *s, size_t len)
{
	char buf[80];
	size_t n = 0;
	long long iv;

	if (len == 0 || in_list(s, len, null_words))
		return json_null();
	if (in_list(s, len, true_words))
		return json_true();
	if (in_list(s, len, false_words))
		return json_false();
	if (memchr(s, '\0', len) || !strchr("+-.0123456789", s[0]) || len >= sizeof(buf))
		return json_stringn(s, len);
	for (size_t i = 0; i < len; i++)
		if (s[i] != '_')
			buf[n++] = s[i];
	buf[n] = '\0';
	if (parse_int(buf, &iv))
		return json_integer(iv);
	if (looks_float(buf)) {
		double d = strtod(buf, NULL);

		/* kubectl goes YAML -> float64 -> JSON, where 1000.0 is 1000. */
		if (isfinite(d) && d == floor(d) && fabs(d) < 9007199254740992.0)
			return json_integer((long long)d);
		if (isfinite(d))
			return json_real(d);
	}
	return json_stringn(s, len);
}

struct frame {
	json_t *node;
	char *key; /* a mapping's pending key, or NULL */
};

struct loader {
	struct frame stack[YAML_MAX_DEPTH];
	int depth;
	json_t *root;
	struct kars_err *err;
};

static int fail_at(struct kars_err *err, const yaml_mark_t *m, const char *what)
{
	return kars_err_set(err, EINVAL, "YAML line %zu, column %zu: %s", m->line + 1,
			    m->column + 1, what);
}

/* Adds v (stolen) to the current container, or makes it the document root. */
static int add_value(struct loader *l, json_t *v, const yaml_mark_t *m)
{
	struct frame *top;

	if (!v)
		return fail_at(l->err, m, "out of memory or not valid UTF-8");
	if (l->depth == 0) {
		l->root = v;
		return 0;
	}
	top = &l->stack[l->depth - 1];
	if (json_is_array(top->node))
		return json_array_append_new(top->node, v) ? fail_at(l->err, m, "out of memory")
							   : 0;
	if (!top->key) {
		json_decref(v);
		return fail_at(l->err, m, "a mapping key must be a scalar");
	}
	if (json_object_get(top->node, top->key)) {
		char msg[160];

		snprintf(msg, sizeof(msg), "duplicate key \"%.100s\"", top->key);
		json_decref(v);
		return fail_at(l->err, m, msg);
	}
	if (json_object_set_new(top->node, top->key, v)) {
		free(top->key);
		top->key = NULL;
		return fail_at(l->err, m, "out of memory");
	}
	free(top->key);
	top->key = NULL;
	return 0;
}

static int on_scalar(struct loader *l, const yaml_event_t *ev)
{
	const char *s = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	const char *tag = (const char *)ev->data.scalar.tag;
	struct frame *top = l->depth ? &l->stack[l->depth - 1] : NULL;
	json_t *v;

	if (top && json_is_object(top->node) && !top->key) {
		if (memchr(s, '\0', len))
			return fail_at(l->err, &ev->start_mark, "a key contains a NUL byte");
		top->key = strndup(s, len);
		return top->key ? 0 : fail_at(l->err, &ev->start_mark, "out of memory");
	}
	if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	    !(tag && strcmp(tag, YAML_STR_TAG) == 0)) {
		if (in_list(s, len, special_floats))
			return fail_at(l->err, &ev->start_mark,
				       "infinity and NaN have no JSON representation");
		v = kars_yaml_resolve_plain(s, len);
	} else {
		v = json_stringn(s, len);
	}
	return add_value(l, v, &ev->start_mark);
}

static int push(struct loader *l, json_t *node, const yaml_mark_t *m)
{
	if (l->depth >= YAML_MAX_DEPTH) {
		json_decref(node);
		return fail_at(l->err, m, "nested deeper than 64 levels");
	}
	if (!node)
		return fail_at(l->err, m, "out of memory");
	/* Linked into the parent first, so the parent owns it on any error. */
	if (add_value(l, json_incref(node), m)) {
		json_decref(node);
		return -EINVAL;
	}
	l->stack[l->depth].node = node;
	l->stack[l->depth].key = NULL;
	l->depth++;
	json_decref(node);
	return 0;
}

static void pop(struct loader *l)
{
	l->depth--;
	free(l->stack[l->depth].key);
	l->stack[l->depth].key = NULL;
}

static int append_doc(struct kars_yaml_docs *docs, json_t *v, int line)
{
	struct kars_yaml_doc *bigger = realloc(docs->docs, (docs->count + 1) * sizeof(*bigger));

	if (!bigger)
		return -ENOMEM;
	docs->docs = bigger;
	docs->docs[docs->count].value = v;
	docs->docs[docs->count].line = line;
	docs->count++;
	return 0;
}

int kars_yaml_load_all(const char *buf, size_t len, struct kars_yaml_docs *docs,
		       struct kars_err *err)
{
	struct loader l = {.err = err};
	yaml_parser_t parser;
	yaml_event_t ev;
	int ret = 0, doc_line = 1;
	bool done = false;

	docs->count = 0;
	docs->docs = NULL;
	if (!yaml_parser_initialize(&parser))
		return kars_err_set(err, ENOMEM, "YAML: out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	while (!done && !ret) {
		if (!yaml_parser_parse(&parser, &ev)) {
			ret = kars_err_set(err, EINVAL, "YAML line %zu, column %zu: %s",
					   parser.problem_mark.line + 1,
					   parser.problem_mark.column + 1,
					   parser.problem ? parser.problem : "syntax error");
			break;
		}
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			doc_line = 0;
			l.root = NULL;
			break;
		case YAML_DOCUMENT_END_EVENT:
			if (l.root && !json_is_null(l.root)) {
				if (append_doc(docs, l.root, doc_line)) {
					json_decref(l.root);
					ret = kars_err_set(err, ENOMEM, "YAML: out of memory");
				}
			} else {
				json_decref(l.root);
			}
			l.root = NULL;
			break;
		case YAML_ALIAS_EVENT:
			ret = fail_at(err, &ev.start_mark, "aliases (*name) are not supported");
			break;
		case YAML_SCALAR_EVENT:
			ret = on_scalar(&l, &ev);
			break;
		case YAML_SEQUENCE_START_EVENT:
			ret = push(&l, json_array(), &ev.start_mark);
			break;
		case YAML_MAPPING_START_EVENT:
			ret = push(&l, json_object(), &ev.start_mark);
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			pop(&l);
			break;
		default:
			break;
		}
		/* A document's line is that of its first node, past any "---". */
		if (!doc_line &&
		    (ev.type == YAML_SCALAR_EVENT || ev.type == YAML_SEQUENCE_START_EVENT ||
		     ev.type == YAML_MAPPING_START_EVENT))
			doc_line = (int)ev.start_mark.line + 1;
		yaml_event_delete(&ev);
	}
	while (l.depth)
		pop(&l);
	yaml_parser_delete(&parser);
	if (ret) {
		if (l.root)
			json_decref(l.root);
		kars_yaml_docs_free(docs);
	}
	return ret;
}

void kars_yaml_docs_free(struct kars_yaml_docs *docs)
{
	for (size_t i = 0; i < docs->count; i++)
		json_decref(docs->docs[i].value);
	free(docs->docs);
	docs->docs = NULL;
	docs->count = 0;
}

/* --- emitter ------------------------------------------------------------- */

struct out {
	char *buf;
	size_t len, cap;
	bool oom;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->oom)
		return;
	if (o->len + n + 1 > o->cap) {
		size_t cap = o->cap ? o->cap : 1024;
		char *bigger;

		while (o->len + n + 1 > cap)
			cap *= 2;
		bigger = realloc(o->buf, cap);
		if (!bigger) {
			o->oom = true;
			return;
		}
		o->buf = bigger;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

static void puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void indent(struct out *o, int n)
{
	for (int i = 0; i < n; i++)
		put(o, " ", 1);
}

/* Plain only when unambiguous and read back as the same string. */
static bool plain_ok(const char *s, size_t len)
{
	json_t *back;
	bool ok;

	if (len == 0 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') ||
			  (s[0] >= '0' && s[0] <= '9') || s[0] == '/' || s[0] == '_'))
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '/' || c == '_' || c == '.' || c == '-'))
			return false;
	}
	/* 2026-04-30 reads back as a string here, but kubectl's YAML library
	 * (go-yaml v2) makes it a timestamp: quote what could be one. */
	if (s[0] >= '0' && s[0] <= '9' && (memchr(s, '-', len) || memchr(s, ':', len)))
		return false;
	back = kars_yaml_resolve_plain(s, len);
	ok = json_is_string(back);
	json_decref(back);
	return ok;
}

static void put_string(struct out *o, const char *s, size_t len)
{
	json_t *tmp;
	char *enc;

	if (plain_ok(s, len)) {
		put(o, s, len);
		return;
	}
	/* A JSON string is a valid YAML double-quoted scalar. */
	tmp = json_stringn(s, len);
	enc = tmp ? json_dumps(tmp, JSON_ENCODE_ANY) : NULL;
	if (enc)
		puts_(o, enc);
	else
		o->oom = true;
	free(enc);
	json_decref(tmp);
}

static void put_scalar(struct out *o, const json_t *v)
{
	char num[64];

	switch (json_typeof(v)) {
	case JSON_STRING:
		put_string(o, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		puts_(o, num);
		break;
	case JSON_REAL:
		snprintf(num, sizeof(num), "%.17g", json_real_value(v));
		if (!strpbrk(num, ".eE"))
			strcat(num, ".0");
		puts_(o, num);
		break;
	case JSON_TRUE:
		puts_(o, "true");
		break;
	case JSON_FALSE:
		puts_(o, "false");
		break;
	default:
		puts_(o, "null");
		break;
	}
}

static bool is_empty_container(const json_t *v)
{
	return (json_is_object(v) && json_object_size(v) == 0) ||
	       (json_is_array(v) && json_array_size(v) == 0);
}

static void dump_node(struct out *o, const json_t *v, int ind);

/* After "key:" or "- ": a scalar or empty container stays on the line. */
static void dump_value_after(struct out *o, const json_t *v, int ind)
{
	if (json_is_object(v) && json_object_size(v)) {
		puts_(o, "\n");
		dump_node(o, v, ind + 2);
	} else if (json_is_array(v) && json_array_size(v)) {
		puts_(o, "\n");
		dump_node(o, v, ind);
	} else if (is_empty_container(v)) {
		puts_(o, json_is_object(v) ? " {}\n" : " []\n");
	} else {
		puts_(o, " ");
		put_scalar(o, v);
		puts_(o, "\n");
	}
}

static void dump_object_body(struct out *o, const json_t *v, int ind, bool first_inline)
{
	const char *key;
	json_t *val;
	bool first = true;

	json_object_foreach((json_t *)v, key, val)
	{
		if (!(first && first_inline))
			indent(o, ind);
		first = false;
		put_string(o, key, strlen(key));
		puts_(o, ":");
		dump_value_after(o, val, ind);
	}
}

static void dump_node(struct out *o, const json_t *v, int ind)
{
	size_t i;
	json_t *item;

	if (json_is_object(v)) {
		dump_object_body(o, v, ind, false);
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, item)
		{
			indent(o, ind);
			puts_(o, "-");
			if (json_is_object(item) && json_object_size(item)) {
				puts_(o, " ");
				dump_object_body(o, item, ind + 2, true);
			} else if (json_is_array(item) && json_array_size(item)) {
				puts_(o, "\n");
				dump_node(o, item, ind + 2);
			} else {
				dump_value_after(o, item, ind);
			}
		}
	} else {
		indent(o, ind);
		put_scalar(o, v);
		puts_(o, "\n");
	}
}

char *kars_yaml_dump(const json_t *v)
{
	struct out o = {};

	if (is_empty_container(v))
		puts_(&o, json_is_object(v) ? "{}\n" : "[]\n");
	else
		dump_node(&o, v, 0);
	if (o.oom) {
		free(o.buf);
		return NULL;
	}
	if (!o.buf)
		return strdup("");
	return o.buf;
}
