/* json.c - see json.h. */
#include "json.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Line and column of byte pos, counted as jansson counts them (1-based,
 * columns in characters), so that every parse error has the same form. */
static void line_column(const char *buf, size_t pos, int *line, int *column)
{
	*line = 1;
	*column = 0;
	for (size_t i = 0; i <= pos; i++) {
		if (buf[i] == '\n') {
			(*line)++;
			*column = 0;
		} else if (((unsigned char)buf[i] & 0xc0) != 0x80) {
			(*column)++;
		}
	}
}

json_t *kars_json_parse(const char *buf, size_t len, struct kars_err *err)
{
	json_error_t jerr;
	json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK, &jerr);

	if (!root) {
		kars_err_set(err, EINVAL, "invalid JSON at line %d, column %d (byte %d): %s",
			     jerr.line, jerr.column, jerr.position, jerr.text);
		return NULL;
	}
	/* JSON_DISABLE_EOF_CHECK stops at the value's end; allow only whitespace after. */
	for (size_t i = jerr.position; i < len; i++) {
		if (buf[i] != ' ' && buf[i] != '\n' && buf[i] != '\r' && buf[i] != '\t') {
			int line, column;

			line_column(buf, i, &line, &column);
			kars_err_set(
			    err, EINVAL,
			    "invalid JSON at line %d, column %d (byte %zu): trailing data after the value",
			    line, column, i);
			json_decref(root);
			return NULL;
		}
	}
	return root;
}

const char *kars_json_path(char *buf, size_t len, const char *path, const char *key)
{
	if (path && *path)
		snprintf(buf, len, "%s.%s", path, key);
	else
		snprintf(buf, len, "%s", key);
	return buf;
}

const char *kars_json_path_index(char *buf, size_t len, const char *path, size_t index)
{
	snprintf(buf, len, "%s[%zu]", path, index);
	return buf;
}

int kars_json_only_keys(const json_t *obj, const char *path, const char *const allowed[],
			struct kars_err *err)
{
	const char *key;
	json_t *value;
	char where[256];

	if (!json_is_object(obj))
		return kars_err_set(err, EINVAL, "%s: expected an object", *path ? path : "(root)");
	json_object_foreach((json_t *)obj, key, value)
	{
		bool known = false;

		(void)value;
		for (size_t i = 0; allowed[i]; i++)
			known = known || strcmp(key, allowed[i]) == 0;
		if (!known)
			return kars_err_set(err, EINVAL, "%s: unknown field",
					    kars_json_path(where, sizeof(where), path, key));
	}
	return 0;
}

static const json_t *lookup(const json_t *obj, const char *path, const char *key, bool required,
			    int *ret, struct kars_err *err)
{
	char where[256];
	const json_t *v = json_object_get(obj, key);

	*ret = 0;
	if (!v && required)
		*ret = kars_err_set(err, EINVAL, "%s: Required value",
				    kars_json_path(where, sizeof(where), path, key));
	return v;
}

int kars_json_get_string(const json_t *obj, const char *path, const char *key, bool required,
			 const char **out, struct kars_err *err)
{
	char where[256];
	int ret;
	const json_t *v = lookup(obj, path, key, required, &ret, err);

	if (!v)
		return ret;
	if (!json_is_string(v))
		return kars_err_set(err, EINVAL, "%s: expected a string",
				    kars_json_path(where, sizeof(where), path, key));
	if (strlen(json_string_value(v)) != json_string_length(v))
		return kars_err_set(err, EINVAL, "%s: NUL byte in string",
				    kars_json_path(where, sizeof(where), path, key));
	*out = json_string_value(v);
	return 0;
}

int kars_json_get_uint(const json_t *obj, const char *path, const char *key, bool required,
		       uint64_t min, uint64_t max, uint64_t *out, struct kars_err *err)
{
	char where[256];
	int ret;
	const json_t *v = lookup(obj, path, key, required, &ret, err);
	json_int_t n;

	if (!v)
		return ret;
	n = json_is_integer(v) ? json_integer_value(v) : -1;
	if (!json_is_integer(v) || n < 0 || (uint64_t)n < min || (uint64_t)n > max)
		return kars_err_set(err, EINVAL, "%s: expected an integer in [%llu, %llu]",
				    kars_json_path(where, sizeof(where), path, key),
				    (unsigned long long)min, (unsigned long long)max);
	*out = (uint64_t)n;
	return 0;
}

int kars_json_get_bool(const json_t *obj, const char *path, const char *key, bool required,
		       bool *out, struct kars_err *err)
{
	char where[256];
	int ret;
	const json_t *v = lookup(obj, path, key, required, &ret, err);

	if (!v)
		return ret;
	if (!json_is_boolean(v))
		return kars_err_set(err, EINVAL, "%s: expected true or false",
				    kars_json_path(where, sizeof(where), path, key));
	*out = json_is_true(v);
	return 0;
}

static const json_t *get_typed(const json_t *obj, const char *path, const char *key, bool required,
			       int *ret, struct kars_err *err, json_type type,
			       const char *type_name)
{
	char where[256];
	const json_t *v = lookup(obj, path, key, required, ret, err);

	if (v && json_typeof(v) != type) {
		*ret = kars_err_set(err, EINVAL, "%s: expected %s",
				    kars_json_path(where, sizeof(where), path, key), type_name);
		return NULL;
	}
	return v;
}

const json_t *kars_json_get_array(const json_t *obj, const char *path, const char *key,
				  bool required, int *ret, struct kars_err *err)
{
	return get_typed(obj, path, key, required, ret, err, JSON_ARRAY, "an array");
}

const json_t *kars_json_get_object(const json_t *obj, const char *path, const char *key,
				   bool required, int *ret, struct kars_err *err)
{
	return get_typed(obj, path, key, required, ret, err, JSON_OBJECT, "an object");
}
