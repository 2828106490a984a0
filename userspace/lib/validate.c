/* validate.c - see validate.h. */
#include "validate.h"

#include <errno.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((format(printf, 2, 3))) static void problem(struct kars_problems *p, const char *fmt,
							  ...)
{
	va_list ap;

	if (p->count >= KARS_PROBLEMS_MAX) {
		p->dropped++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(p->msg[p->count++], sizeof(p->msg[0]), fmt, ap);
	va_end(ap);
}

static size_t total(const struct kars_problems *p)
{
	return p->count + p->dropped;
}

static const char *json_type_word(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "object";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
		return "integer";
	case JSON_REAL:
		return "number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "boolean";
	default:
		return "null";
	}
}

/* A value as kubectl quotes it in "Invalid value: ...". */
static void value_text(const json_t *v, char *buf, size_t len)
{
	char *s;

	if (json_is_string(v) || json_is_number(v) || json_is_boolean(v)) {
		s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
		snprintf(buf, len, "%.120s%s", s ? s : "?", s && strlen(s) > 120 ? "..." : "");
		free(s);
	} else {
		snprintf(buf, len, "\"%s\"", json_type_word(v));
	}
}

static void join(char *buf, size_t len, const char *path, const char *key)
{
	if (*path)
		snprintf(buf, len, "%s.%s", path, key);
	else
		snprintf(buf, len, "%s", key);
}

static bool type_ok(enum kars_type t, const json_t *v)
{
	switch (t) {
	case KT_OBJECT:
	case KT_MAP:
	case KT_FREEFORM:
		return json_is_object(v);
	case KT_STRING:
		return json_is_string(v);
	case KT_INTEGER:
		return json_is_integer(v);
	case KT_BOOLEAN:
		return json_is_boolean(v);
	case KT_ARRAY:
		return json_is_array(v);
	case KT_INT_OR_STRING:
		return json_is_integer(v) || json_is_string(v);
	}
	return false;
}

static size_t utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

static bool matches(const char *pattern, const char *s, size_t len)
{
	regex_t re;
	bool ok;

	if (memchr(s, '\0', len))
		return false; /* regexec stops at NUL: never let one hide a tail */
	if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB))
		return false;
	ok = regexec(&re, s, 0, NULL, 0) == 0;
	regfree(&re);
	return ok;
}

static bool digits(const char *s, int n)
{
	for (int i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static int num(const char *s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

bool kars_is_date_time(const char *s)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int month, day;

	/* YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM) */
	if (!digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' || !digits(s + 8, 2) ||
	    (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2) || s[13] != ':' ||
	    !digits(s + 14, 2) || s[16] != ':' || !digits(s + 17, 2))
		return false;
	month = num(s + 5, 2);
	day = num(s + 8, 2);
	if (month < 1 || month > 12 || day < 1 || day > mdays[month - 1] || num(s + 11, 2) > 23 ||
	    num(s + 14, 2) > 59 || num(s + 17, 2) > 60)
		return false;
	s += 19;
	if (*s == '.') {
		if (!digits(++s, 1))
			return false;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	if ((*s == 'Z' || *s == 'z') && s[1] == '\0')
		return true;
	return (*s == '+' || *s == '-') && digits(s + 1, 2) && s[3] == ':' && digits(s + 4, 2) &&
	       s[6] == '\0' && num(s + 1, 2) <= 23 && num(s + 4, 2) <= 59;
}

int kars_date_time_parse(const char *s, time_t *out)
{
	struct tm tm = {0};
	const char *zone;
	long off = 0;

	if (!s || !kars_is_date_time(s))
		return -EINVAL;
	tm.tm_year = num(s, 4) - 1900;
	tm.tm_mon = num(s + 5, 2) - 1;
	tm.tm_mday = num(s + 8, 2);
	tm.tm_hour = num(s + 11, 2);
	tm.tm_min = num(s + 14, 2);
	tm.tm_sec = num(s + 17, 2);
	for (zone = s + 19; *zone == '.' || (*zone >= '0' && *zone <= '9'); zone++)
		;
	if (*zone == '+' || *zone == '-')
		off = (*zone == '-' ? -1 : 1) * (num(zone + 1, 2) * 3600L + num(zone + 4, 2) * 60L);
	*out = timegm(&tm) - off;
	return 0;
}

static void check_field(const struct kars_field *f, const json_t *v, const char *path,
			struct kars_problems *p);

static void check_rules(const struct kars_rule *rules, const json_t *v, const char *path,
			struct kars_problems *p)
{
	char at[512];

	for (const struct kars_rule *r = rules; r && r->cel; r++) {
		if (r->ok(v))
			continue;
		snprintf(at, sizeof(at), "%s%s", path, r->field_path ? r->field_path : "");
		if (at[0] == '.')
			memmove(at, at + 1, strlen(at));
		if (*at)
			problem(p, "%s: Invalid value: \"object\": %s", at, r->message);
		else
			problem(p, "Invalid value: \"object\": %s", r->message);
	}
}

static void check_object(const struct kars_field *f, const json_t *v, const char *path,
			 struct kars_problems *p)
{
	const char *key;
	json_t *val;
	char sub[512];

	for (const struct kars_field *c = f->props; c && c->name; c++) {
		if ((c->flags & KF_REQUIRED) && !json_object_get(v, c->name)) {
			join(sub, sizeof(sub), path, c->name);
			problem(p, "%s: Required value", sub);
		}
	}
	json_object_foreach((json_t *)v, key, val)
	{
		const struct kars_field *c = f->props;

		while (c && c->name && strcmp(c->name, key))
			c++;
		join(sub, sizeof(sub), path, key);
		if (!c || !c->name) {
			problem(p, "unknown field \"%s\"", sub);
			continue;
		}
		check_field(c, val, sub, p);
	}
}

static void check_array(const struct kars_field *f, const json_t *v, const char *path,
			struct kars_problems *p)
{
	size_t n = json_array_size(v), i, j;
	char sub[512];
	json_t *item;

	if (f->min_items && n < f->min_items)
		problem(p, "%s: Invalid value: %zu: %s in body should have at least %u items", path,
			n, path, f->min_items);
	if (f->max_items && n > f->max_items)
		problem(p, "%s: Too many: %zu: must have at most %u items", path, n, f->max_items);
	json_array_foreach(v, i, item)
	{
		snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
		check_field(f->items, item, sub, p);
	}
	for (i = 1; i < n; i++) {
		for (j = 0; j < i; j++) {
			const json_t *a = json_array_get(v, i), *b = json_array_get(v, j);
			char text[160];

			if (f->flags & KF_SET) {
				if (!json_equal((json_t *)a, (json_t *)b))
					continue;
				value_text(a, text, sizeof(text));
			} else if (f->list_map_key) {
				const json_t *ka = json_object_get(a, f->list_map_key);
				const json_t *kb = json_object_get(b, f->list_map_key);
				char kt[140];

				if (!ka || !kb || !json_equal((json_t *)ka, (json_t *)kb))
					continue;
				value_text(ka, kt, sizeof(kt));
				snprintf(text, sizeof(text), "{\"%s\":%s}", f->list_map_key, kt);
			} else {
				break;
			}
			problem(p, "%s[%zu]: Duplicate value: %s", path, i, text);
			break;
		}
	}
}

static void check_string(const struct kars_field *f, const json_t *v, const char *path,
			 struct kars_problems *p)
{
	const char *s = json_string_value(v);
	size_t chars = utf8_chars(s);
	char text[160];

	value_text(v, text, sizeof(text));
	if (f->enums) {
		char list[512] = "";
		bool found = false;

		for (const char *const *e = f->enums; *e; e++) {
			found |= strcmp(*e, s) == 0 && strlen(s) == json_string_length(v);
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s\"%s\"",
				 e == f->enums ? "" : ", ", *e);
		}
		if (!found)
			problem(p, "%s: Unsupported value: %s: supported values: %s", path, text,
				list);
	}
	if (f->max_len && chars > f->max_len)
		problem(p, "%s: Too long: may not be longer than %u", path, f->max_len);
	if (f->min_len && chars < f->min_len)
		problem(p, "%s: Invalid value: %s: %s in body should be at least %u chars long",
			path, text, path, f->min_len);
	if (f->pattern && !matches(f->pattern, s, json_string_length(v)))
		problem(p, "%s: Invalid value: %s: %s in body should match '%s'", path, text, path,
			f->pattern);
	if (f->format && strcmp(f->format, "date-time") == 0 && !kars_is_date_time(s))
		problem(p, "%s: Invalid value: %s: %s in body must be of type date-time: %s", path,
			text, path, text);
}

static void check_field(const struct kars_field *f, const json_t *v, const char *path,
			struct kars_problems *p)
{
	size_t before = total(p);
	const char *key;
	json_t *val;
	char sub[512], text[160];

	if (!type_ok(f->type, v)) {
		value_text(v, text, sizeof(text));
		problem(p, "%s: Invalid value: \"%s\": %s in body must be of type %s: \"%s\"", path,
			json_type_word(v), path, kars_type_name(f->type), json_type_word(v));
		return;
	}
	switch (f->type) {
	case KT_OBJECT:
		check_object(f, v, path, p);
		break;
	case KT_ARRAY:
		check_array(f, v, path, p);
		break;
	case KT_MAP:
		if (f->max_items && json_object_size(v) > f->max_items)
			problem(p, "%s: Too many: %zu: must have at most %u items", path,
				json_object_size(v), f->max_items);
		json_object_foreach((json_t *)v, key, val)
		{
			join(sub, sizeof(sub), path, key);
			check_field(f->items, val, sub, p);
		}
		break;
	case KT_STRING:
		check_string(f, v, path, p);
		break;
	case KT_INTEGER:
		value_text(v, text, sizeof(text));
		if ((f->flags & KF_MIN) && json_integer_value(v) < f->min)
			problem(p,
				"%s: Invalid value: %s: %s in body should be greater than or equal "
				"to %lld",
				path, text, path, f->min);
		if ((f->flags & KF_MAX) && json_integer_value(v) > f->max)
			problem(p,
				"%s: Invalid value: %s: %s in body should be less than or equal to "
				"%lld",
				path, text, path, f->max);
		break;
	case KT_INT_OR_STRING:
		if (json_is_string(v))
			check_string(f, v, path, p);
		break;
	default:
		break;
	}
	/* CEL rules run on nodes whose own shape is valid, as in the API server. */
	if (f->rules && total(p) == before)
		check_rules(f->rules, v, path, p);
}

static const char *const metadata_keys[] = {
    "name",
    "namespace",
    "labels",
    "annotations",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "finalizers",
    "generateName",
    "ownerReferences",
    "managedFields",
    NULL,
};

static void check_string_map(const json_t *m, const char *path, struct kars_problems *p)
{
	const char *key;
	json_t *val;
	char sub[512];

	if (!json_is_object(m)) {
		problem(p, "%s: Invalid value: \"%s\": must be a map of strings", path,
			json_type_word(m));
		return;
	}
	json_object_foreach((json_t *)m, key, val)
	{
		join(sub, sizeof(sub), path, key);
		if (!json_is_string(val))
			problem(p, "%s: Invalid value: \"%s\": must be a string", sub,
				json_type_word(val));
	}
}

static void check_metadata(const struct kars_kind *k, const json_t *md, struct kars_problems *p)
{
	const char *key, *name, *ns;
	json_t *val;

	if (!md) {
		problem(p, "metadata.name: Required value");
		return;
	}
	if (!json_is_object(md)) {
		problem(p, "metadata: Invalid value: \"%s\": must be an object",
			json_type_word(md));
		return;
	}
	json_object_foreach((json_t *)md, key, val)
	{
		const char *const *m = metadata_keys;

		while (*m && strcmp(*m, key))
			m++;
		if (!*m)
			problem(p, "unknown field \"metadata.%s\"", key);
	}
	name = json_string_value(json_object_get(md, "name"));
	if (!json_object_get(md, "name"))
		problem(p, "metadata.name: Required value");
	else if (!name || strlen(name) > 253 ||
		 !matches("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
			  name, json_string_length(json_object_get(md, "name"))))
		problem(p,
			"metadata.name: Invalid value: \"%.253s\": a lowercase RFC 1123 subdomain "
			"must consist of lower case alphanumeric characters, '-' or '.', and must "
			"start and end with an alphanumeric character",
			name ? name : json_type_word(json_object_get(md, "name")));
	val = json_object_get(md, "namespace");
	ns = json_string_value(val);
	if (val && k->cluster_scoped)
		problem(p,
			"metadata.namespace: Forbidden: not allowed on this type (%s is "
			"cluster-scoped)",
			k->kind);
	else if (val && (!ns || strlen(ns) > 63 ||
			 !matches("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", ns, json_string_length(val))))
		problem(p,
			"metadata.namespace: Invalid value: \"%.63s\": a lowercase RFC 1123 "
			"label must consist of lower case alphanumeric characters or '-'",
			ns ? ns : json_type_word(val));
	if ((val = json_object_get(md, "labels")))
		check_string_map(val, "metadata.labels", p);
	if ((val = json_object_get(md, "annotations")))
		check_string_map(val, "metadata.annotations", p);
	if ((val = json_object_get(md, "finalizers")) && !json_is_array(val))
		problem(p, "metadata.finalizers: Invalid value: \"%s\": must be a list of strings",
			json_type_word(val));
}

const struct kars_kind *kars_object_kind(const json_t *obj, struct kars_problems *p)
{
	const char *api = json_string_value(json_object_get(obj, "apiVersion"));
	const char *kind = json_string_value(json_object_get(obj, "kind"));
	const struct kars_kind *k;

	if (!json_is_object(obj)) {
		problem(p, "Invalid value: \"%s\": a manifest must be an object",
			json_type_word(obj));
		return NULL;
	}
	if (!kind) {
		problem(p, "kind: Required value");
		return NULL;
	}
	if (!api) {
		problem(p, "apiVersion: Required value");
		return NULL;
	}
	k = kars_kind_find(kind);
	if (strcmp(api, KARS_API_VERSION) != 0 || !k || strcmp(k->kind, kind) != 0) {
		problem(p, "no kind \"%s\" is registered for version \"%s\" (kars knows %s kinds)",
			kind, api, KARS_API_VERSION);
		return NULL;
	}
	return k;
}

static void defaults(const struct kars_field *f, json_t *v)
{
	const char *key;
	json_t *val;
	size_t i;

	if (f->type == KT_OBJECT && json_is_object(v)) {
		for (const struct kars_field *c = f->props; c && c->name; c++) {
			json_t *have = json_object_get(v, c->name);

			if (!have && c->dflt)
				json_object_set_new(v, c->name,
						    json_loads(c->dflt, JSON_DECODE_ANY, NULL));
			else if (have)
				defaults(c, have);
		}
	} else if (f->type == KT_ARRAY && json_is_array(v)) {
		json_array_foreach(v, i, val) defaults(f->items, val);
	} else if (f->type == KT_MAP && json_is_object(v)) {
		json_object_foreach(v, key, val) defaults(f->items, val);
	}
}

void kars_apply_defaults(const struct kars_kind *k, json_t *obj)
{
	json_t *v;

	if ((v = json_object_get(obj, "spec")))
		defaults(k->spec, v);
	if ((v = json_object_get(obj, "status")))
		defaults(k->status, v);
}

size_t kars_validate(const struct kars_kind *k, const json_t *obj, struct kars_problems *p)
{
	size_t before = total(p);
	const char *key;
	json_t *val;

	json_object_foreach((json_t *)obj, key, val)
	{
		if (strcmp(key, "apiVersion") && strcmp(key, "kind") && strcmp(key, "metadata") &&
		    strcmp(key, "spec") && strcmp(key, "status"))
			problem(p, "unknown field \"%s\"", key);
	}
	check_metadata(k, json_object_get(obj, "metadata"), p);
	if (!json_object_get(obj, "spec"))
		problem(p, "spec: Required value");
	else
		check_field(k->spec, json_object_get(obj, "spec"), "spec", p);
	if (json_object_get(obj, "status"))
		check_field(k->status, json_object_get(obj, "status"), "status", p);
	if (k->root_rules && total(p) == before)
		check_rules(k->root_rules, obj, "", p);
	return total(p) - before;
}

int kars_validate_object(json_t *obj, const struct kars_kind **kind, struct kars_problems *p)
{
	const struct kars_kind *k = kars_object_kind(obj, p);

	if (kind)
		*kind = k;
	if (!k)
		return -EINVAL;
	kars_apply_defaults(k, obj);
	return kars_validate(k, obj, p) ? -EINVAL : 0;
}

const char *kars_problems_join(const struct kars_problems *p, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < p->count && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? "\n" : "", p->msg[i]);
	if (p->dropped && off < len)
		snprintf(buf + off, len - off, "\n(and %zu more)", p->dropped);
	return buf;
}
