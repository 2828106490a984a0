/* convert_report.c - the accounting every converter shares (convert_priv.h):
 * fields are taken out of a copy of the input as they are mapped, with
 * their types checked, and whatever is left is reported by path with a
 * reason, so no field is ever dropped without a line on stderr.
 */
#include "convert_priv.h"

#include <errno.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void kars_conv_report_free(struct kars_conv_report *r)
{
	for (size_t i = 0; i < r->count; i++) {
		free(r->v[i].doc);
		free(r->v[i].path);
		free(r->v[i].reason);
	}
	free(r->v);
	memset(r, 0, sizeof(*r));
}

void kc_init(struct kc *c, struct kars_conv_report *r, struct kars_err *err, const char *doc)
{
	memset(c, 0, sizeof(*c));
	c->r = r;
	c->err = err;
	c->doc = doc;
	c->dropped = KARS_CONV_LOSSY;
	c->dflt = "kars has no field for it";
	c->keep = json_array();
}

void kc_done(struct kc *c)
{
	json_decref(c->keep);
	c->keep = NULL;
}

int kc_fail(struct kc *c, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!c->ret)
		kars_err_set(c->err, EINVAL, "%s: %s", c->doc, msg);
	c->ret = -EINVAL;
	return -EINVAL;
}

void kc_add(struct kc *c, enum kars_conv_kind kind, const char *path, const char *fmt, ...)
{
	struct kars_conv_note *bigger;
	char reason[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	bigger = realloc(c->r->v, (c->r->count + 1) * sizeof(*bigger));
	if (!bigger) {
		kc_fail(c, "out of memory");
		return;
	}
	c->r->v = bigger;
	bigger[c->r->count].kind = kind;
	bigger[c->r->count].doc = strdup(c->doc);
	bigger[c->r->count].path = strdup(path);
	bigger[c->r->count].reason = strdup(reason);
	if (!bigger[c->r->count].doc || !bigger[c->r->count].path || !bigger[c->r->count].reason)
		kc_fail(c, "out of memory");
	c->r->count++;
	if (kind == KARS_CONV_LOSSY)
		c->r->lossy++;
}

json_t *kc_take(struct kc *c, json_t *obj, const char *key)
{
	json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;

	if (!v)
		return NULL;
	json_array_append(c->keep, v);
	json_object_del(obj, key);
	return v;
}

const char *kc_path(char *buf, size_t len, const char *path, const char *key)
{
	snprintf(buf, len, "%s%s%s", path, *path ? "." : "", key);
	return buf;
}

const char *kc_index(char *buf, size_t len, const char *path, size_t i)
{
	snprintf(buf, len, "%s[%zu]", path, i);
	return buf;
}

static json_t *take_typed(struct kc *c, json_t *obj, const char *path, const char *key,
			  json_type want, const char *what)
{
	json_t *v = kc_take(c, obj, key);
	char p[512];

	if (!v || json_is_null(v))
		return NULL;
	if (json_typeof(v) != want) {
		kc_fail(c, "%s: expected %s", kc_path(p, sizeof(p), path, key), what);
		return NULL;
	}
	return v;
}

const char *kc_take_str(struct kc *c, json_t *obj, const char *path, const char *key)
{
	json_t *v = take_typed(c, obj, path, key, JSON_STRING, "a string");
	char p[512];

	if (v && strlen(json_string_value(v)) != json_string_length(v)) {
		kc_fail(c, "%s: contains a NUL byte", kc_path(p, sizeof(p), path, key));
		return NULL;
	}
	return v ? json_string_value(v) : NULL;
}

json_t *kc_take_obj(struct kc *c, json_t *obj, const char *path, const char *key)
{
	return take_typed(c, obj, path, key, JSON_OBJECT, "an object");
}

json_t *kc_take_arr(struct kc *c, json_t *obj, const char *path, const char *key)
{
	return take_typed(c, obj, path, key, JSON_ARRAY, "a list");
}

int kc_take_bool(struct kc *c, json_t *obj, const char *path, const char *key)
{
	json_t *v = kc_take(c, obj, key);
	char p[512];

	if (!v || json_is_null(v))
		return -1;
	if (!json_is_boolean(v)) {
		kc_fail(c, "%s: expected true or false", kc_path(p, sizeof(p), path, key));
		return -1;
	}
	return json_is_true(v);
}

/* "a[3].b[0]" -> "a[].b[]" */
static void pattern_of(const char *path, char *out, size_t len)
{
	size_t n = 0;

	for (const char *p = path; *p && n + 1 < len; p++) {
		out[n++] = *p;
		if (*p == '[')
			while (p[1] && p[1] != ']')
				p++;
	}
	out[n] = '\0';
}

static const char *reason_for(const struct kc *c, const char *path)
{
	char pat[512];

	if (c->all)
		return c->all;
	pattern_of(path, pat, sizeof(pat));
	for (const struct kc_reason *r = c->reasons; r && r->path; r++)
		if (strcmp(r->path, pat) == 0)
			return r->reason;
	/* ".x.y" entries match any path ending so (shared shapes) */
	for (const struct kc_reason *r = kc_shared_reasons; r->path; r++) {
		size_t n = strlen(r->path), m = strlen(pat);

		if (m >= n && strcmp(pat + m - n, r->path) == 0)
			return r->reason;
	}
	return NULL;
}

/* null, or containers holding only such (affinity: {nodeAffinity: {}}) */
static bool carries_nothing(const json_t *v)
{
	const char *k;
	json_t *e;
	size_t i;

	if (!v || json_is_null(v))
		return true;
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, e)
		{
			if (!carries_nothing(e))
				return false;
		}
		return true;
	}
	if (json_is_array(v)) {
		json_array_foreach(v, i, e)
		{
			if (!carries_nothing(e))
				return false;
		}
		return true;
	}
	return false;
}

static void leftover(struct kc *c, const json_t *v, const char *path)
{
	const char *why;

	if (carries_nothing(v))
		return;
	why = reason_for(c, path);
	if (why)
		kc_add(c, c->dropped, path, "%s", why);
	else if (json_is_object(v) || json_is_array(v))
		kc_leftovers(c, v, path);
	else
		kc_add(c, c->dropped, path, "%s", c->dflt);
}

void kc_leftovers(struct kc *c, const json_t *rest, const char *path)
{
	const char *key;
	json_t *v;
	size_t i;
	char p[512];

	if (json_is_object(rest)) {
		json_object_foreach((json_t *)rest, key, v)
		    leftover(c, v, kc_path(p, sizeof(p), path, key));
	} else if (json_is_array(rest)) {
		json_array_foreach(rest, i, v) leftover(c, v, kc_index(p, sizeof(p), path, i));
	} else {
		leftover(c, rest, path);
	}
}

bool kc_is_dns_label(const char *s, size_t max)
{
	size_t len = strlen(s);

	if (len == 0 || len > max || s[0] == '-' || s[len - 1] == '-')
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

void kc_dns_name(char *out, size_t len, const char *base, const char *key)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	char clean[64];
	size_t n = 0;

	SHA256((const unsigned char *)key, strlen(key), md);
	for (const char *p = base; *p && n < 56; p++) {
		char ch = *p >= 'A' && *p <= 'Z' ? (char)(*p - 'A' + 'a') : *p;

		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')))
			ch = '-';
		if (ch == '-' && (n == 0 || clean[n - 1] == '-'))
			continue;
		clean[n++] = ch;
	}
	while (n && clean[n - 1] == '-')
		n--;
	clean[n] = '\0';
	snprintf(out, len, "%s%s%02x%02x%02x", clean, n ? "-" : "x", md[0], md[1], md[2]);
}

/* Fields of ObjectMeta the API server writes: not user data. */
static const char *const server_fields[] = {"uid",
					    "resourceVersion",
					    "generation",
					    "creationTimestamp",
					    "managedFields",
					    "selfLink",
					    "deletionTimestamp",
					    "deletionGracePeriodSeconds",
					    NULL};

static int copy_string_map(struct kc *c, json_t *from, const char *path, json_t *to)
{
	const char *k;
	json_t *v;
	char p[512];

	json_object_foreach(from, k, v)
	{
		if (!json_is_string(v))
			return kc_fail(c, "%s: expected a string", kc_path(p, sizeof(p), path, k));
		json_object_set(to, k, v);
	}
	return 0;
}

json_t *kc_metadata(struct kc *c, json_t *rest, const char *ns_override, size_t max)
{
	json_t *md = kc_take_obj(c, rest, "", "metadata"), *out = json_object(), *m;
	const char *name, *ns;

	if (!md) {
		if (!c->ret)
			kc_fail(c, "metadata: Required value");
		return out;
	}
	name = kc_take_str(c, md, "metadata", "name");
	ns = kc_take_str(c, md, "metadata", "namespace");
	if (!c->ret && !name)
		kc_fail(c, "metadata.name: Required value");
	else if (name && !kc_is_dns_label(name, max))
		kc_fail(c,
			"metadata.name \"%.80s\": a kars name must be a DNS label of at most %zu "
			"characters",
			name, max);
	if (name)
		json_object_set_new(out, "name", json_string(name));
	if (ns_override && ns && strcmp(ns, ns_override))
		kc_add(c, KARS_CONV_NOTE, "metadata.namespace", "\"%s\" replaced by -n %s", ns,
		       ns_override);
	if (ns_override || ns) {
		const char *use = ns_override ? ns_override : ns;

		if (!kc_is_dns_label(use, 63))
			kc_fail(c,
				"%s \"%.80s\": a namespace is a DNS label of at most 63 characters",
				ns_override ? "-n" : "metadata.namespace", use);
		json_object_set_new(out, "namespace", json_string(use));
	}
	m = kc_take_obj(c, md, "metadata", "labels");
	if (m && json_object_size(m)) {
		json_object_set_new(out, "labels", json_object());
		copy_string_map(c, m, "metadata.labels", json_object_get(out, "labels"));
	}
	m = kc_take_obj(c, md, "metadata", "annotations");
	if (m) {
		json_object_del(m, "kubectl.kubernetes.io/last-applied-configuration");
		if (json_object_size(m)) {
			json_object_set_new(out, "annotations", json_object());
			copy_string_map(c, m, "metadata.annotations",
					json_object_get(out, "annotations"));
		}
	}
	for (const char *const *f = server_fields; *f; f++)
		json_object_del(md, *f);
	kc_leftovers(c, md, "metadata");
	return out;
}

json_t *kars_json_merge_patch(const json_t *target, const json_t *patch)
{
	const char *key;
	json_t *v, *out;

	if (!json_is_object(patch))
		return json_deep_copy(patch);
	out = json_is_object(target) ? json_deep_copy(target) : json_object();
	json_object_foreach((json_t *)patch, key, v)
	{
		if (json_is_null(v))
			json_object_del(out, key);
		else
			json_object_set_new(out, key,
					    kars_json_merge_patch(json_object_get(out, key), v));
	}
	return out;
}

const char *kars_conv_type_of(const json_t *doc, char *buf, size_t len)
{
	const char *av = json_string_value(json_object_get(doc, "apiVersion"));
	const char *kind = json_string_value(json_object_get(doc, "kind"));

	snprintf(buf, len, "%s/%s", av ? av : "(no apiVersion)", kind ? kind : "(no kind)");
	return buf;
}
