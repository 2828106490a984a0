/* json_project.c - see json_project.h. */
#include "json_project.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* jansson's JSON_PARSER_MAX_DEPTH: deeper documents are its to refuse. */
#define MAX_DEPTH 2048

struct scan {
	const char *p, *end;
	int depth;
	bool no_duplicates; /* a key twice: refused (JSON_REJECT_DUPLICATES) */
};

static void ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static bool hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* At '"': past the closing quote. *escaped: it had a backslash. */
static int skip_string(struct scan *s, bool *escaped)
{
	s->p++;
	*escaped = false;
	while (s->p < s->end) {
		unsigned char c = (unsigned char)*s->p++;

		if (c == '"')
			return 0;
		if (c < 0x20)
			return -1;
		if (c != '\\')
			continue;
		*escaped = true;
		if (s->p >= s->end)
			return -1;
		c = (unsigned char)*s->p++;
		if (c == 'u') {
			if (s->end - s->p < 4 || !hex(s->p[0]) || !hex(s->p[1]) || !hex(s->p[2]) ||
			    !hex(s->p[3]))
				return -1;
			s->p += 4;
		} else if (!c || !strchr("\"\\/bfnrt", c)) {
			return -1;
		}
	}
	return -1;
}

static bool digit(const struct scan *s)
{
	return s->p < s->end && *s->p >= '0' && *s->p <= '9';
}

static int skip_number(struct scan *s)
{
	if (s->p < s->end && *s->p == '-')
		s->p++;
	if (!digit(s))
		return -1;
	if (*s->p == '0')
		s->p++;
	else
		while (digit(s))
			s->p++;
	if (s->p < s->end && *s->p == '.') {
		s->p++;
		if (!digit(s))
			return -1;
		while (digit(s))
			s->p++;
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		if (!digit(s))
			return -1;
		while (digit(s))
			s->p++;
	}
	return 0;
}

static int skip_word(struct scan *s, const char *w)
{
	size_t n = strlen(w);

	if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n))
		return -1;
	s->p += n;
	return 0;
}

static int skip_value(struct scan *s);

/* At '{' or '[': past the matching close. */
static int skip_container(struct scan *s)
{
	char close = *s->p == '{' ? '}' : ']';
	bool object = close == '}', escaped;

	if (++s->depth > MAX_DEPTH)
		return -1;
	s->p++;
	ws(s);
	if (s->p < s->end && *s->p == close) {
		s->p++;
		s->depth--;
		return 0;
	}
	for (;;) {
		if (object) {
			if (s->p >= s->end || *s->p != '"' || skip_string(s, &escaped))
				return -1;
			ws(s);
			if (s->p >= s->end || *s->p != ':')
				return -1;
			s->p++;
		}
		if (skip_value(s))
			return -1;
		ws(s);
		if (s->p >= s->end)
			return -1;
		if (*s->p == close) {
			s->p++;
			s->depth--;
			return 0;
		}
		if (*s->p != ',')
			return -1;
		s->p++;
		ws(s);
	}
}

/* Skips whitespace and one value. */
static int skip_value(struct scan *s)
{
	bool escaped;

	ws(s);
	if (s->p >= s->end)
		return -1;
	switch (*s->p) {
	case '{':
	case '[':
		return skip_container(s);
	case '"':
		return skip_string(s, &escaped);
	case 't':
		return skip_word(s, "true");
	case 'f':
		return skip_word(s, "false");
	case 'n':
		return skip_word(s, "null");
	default:
		return skip_number(s);
	}
}

/* The value in [start, end) as jansson builds it. */
static json_t *parse_span(const char *start, const char *end)
{
	return json_loadb(start, (size_t)(end - start), JSON_DECODE_ANY, NULL);
}

static json_t *build_value(struct scan *s);

/* A kept value, built here for the common cases (jansson's own parser costs
 * ~170 instructions a byte): strings without escapes, integers, literals,
 * and objects and arrays of those; anything else (escapes, reals) goes to
 * jansson, span by span. NULL: malformed, or refused by jansson. */
static json_t *build_container(struct scan *s)
{
	bool object = *s->p == '{', escaped;
	json_t *v = object ? json_object() : json_array();
	char close = object ? '}' : ']';

	if (!v || ++s->depth > MAX_DEPTH)
		goto bad;
	s->p++;
	ws(s);
	if (s->p < s->end && *s->p == close) {
		s->p++;
		s->depth--;
		return v;
	}
	for (;;) {
		json_t *key = NULL, *e;

		if (object) {
			const char *kstart = s->p;

			if (s->p >= s->end || *s->p != '"' || skip_string(s, &escaped))
				goto bad;
			key = escaped ? parse_span(kstart, s->p)
				      : json_stringn(kstart + 1, (size_t)(s->p - kstart - 2));
			if (!json_is_string(key) ||
			    memchr(json_string_value(key), '\0', json_string_length(key))) {
				json_decref(key);
				goto bad;
			}
			ws(s);
			if (s->p >= s->end || *s->p != ':') {
				json_decref(key);
				goto bad;
			}
			s->p++;
		}
		e = build_value(s);
		if (e && object && s->no_duplicates && json_object_get(v, json_string_value(key))) {
			json_decref(e);
			e = NULL;
		}
		if (!e || (object ? json_object_set_new(v, json_string_value(key), e)
				  : json_array_append_new(v, e))) {
			json_decref(key);
			goto bad;
		}
		json_decref(key);
		ws(s);
		if (s->p < s->end && *s->p == close) {
			s->p++;
			s->depth--;
			return v;
		}
		if (s->p >= s->end || *s->p != ',')
			goto bad;
		s->p++;
		ws(s);
	}
bad:
	json_decref(v);
	return NULL;
}

static json_t *build_value(struct scan *s)
{
	const char *start;
	bool escaped;

	ws(s);
	start = s->p;
	if (s->p >= s->end)
		return NULL;
	switch (*s->p) {
	case '{':
	case '[':
		return build_container(s);
	case '"':
		if (skip_string(s, &escaped))
			return NULL;
		/* json_stringn checks UTF-8 as jansson's parser does. */
		return escaped ? parse_span(start, s->p)
			       : json_stringn(start + 1, (size_t)(s->p - start - 2));
	case 't':
		return skip_word(s, "true") ? NULL : json_true();
	case 'f':
		return skip_word(s, "false") ? NULL : json_false();
	case 'n':
		return skip_word(s, "null") ? NULL : json_null();
	default: {
		char num[32];
		size_t n;

		if (skip_number(s))
			return NULL;
		n = (size_t)(s->p - start);
		if (n >= sizeof(num) || memchr(start, '.', n) || memchr(start, 'e', n) ||
		    memchr(start, 'E', n))
			return parse_span(start, s->p); /* reals, long numbers */
		memcpy(num, start, n);
		num[n] = '\0';
		errno = 0;
		{
			long long ll = strtoll(num, NULL, 10);

			/* jansson refuses what does not fit ("too big integer") */
			return errno ? NULL : json_integer((json_int_t)ll);
		}
	}
	}
}

static int project_object(struct scan *s, const struct kars_json_keep *keep, json_t **out);

/* Ws and one value, kept (into *out) by sub's rules. */
static int project_value(struct scan *s, const struct kars_json_keep *sub, json_t **out)
{
	const char *start;

	ws(s);
	start = s->p;
	if (sub && s->p < s->end && *s->p == '{')
		return project_object(s, sub, out);
	if (sub && s->p < s->end && *s->p == '[') {
		json_t *arr = json_array();

		if (!arr || ++s->depth > MAX_DEPTH)
			goto bad_array;
		s->p++;
		ws(s);
		if (s->p < s->end && *s->p == ']') {
			s->p++;
			s->depth--;
			*out = arr;
			return 0;
		}
		for (;;) {
			json_t *v = NULL;

			if (project_value(s, sub, &v) || json_array_append_new(arr, v))
				goto bad_array;
			ws(s);
			if (s->p < s->end && *s->p == ']') {
				s->p++;
				s->depth--;
				*out = arr;
				return 0;
			}
			if (s->p >= s->end || *s->p != ',')
				goto bad_array;
			s->p++;
		}
	bad_array:
		json_decref(arr);
		return -1;
	}
	(void)start;
	*out = build_value(s);
	return *out ? 0 : -1;
}

static const struct kars_json_keep *find_key(const struct kars_json_keep *keep, const char *key,
					     size_t len, bool *found)
{
	for (; keep->key; keep++) {
		if (strlen(keep->key) == len && !memcmp(keep->key, key, len)) {
			*found = true;
			return keep->sub;
		}
	}
	*found = false;
	return NULL;
}

/* At '{': the kept keys into a new object *out. */
static int project_object(struct scan *s, const struct kars_json_keep *keep, json_t **out)
{
	json_t *obj = json_object();

	if (!obj || ++s->depth > MAX_DEPTH)
		goto bad;
	s->p++;
	ws(s);
	if (s->p < s->end && *s->p == '}') {
		s->p++;
		goto done;
	}
	for (;;) {
		const char *kstart = s->p, *key;
		const struct kars_json_keep *sub;
		json_t *decoded = NULL;
		bool escaped, found;
		size_t klen;

		if (s->p >= s->end || *s->p != '"' || skip_string(s, &escaped))
			goto bad;
		key = kstart + 1;
		klen = (size_t)(s->p - kstart - 2);
		if (escaped) {
			/* jansson decodes it (and refuses what it refuses). */
			decoded = parse_span(kstart, s->p);
			if (!json_is_string(decoded) ||
			    memchr(json_string_value(decoded), '\0', json_string_length(decoded))) {
				json_decref(decoded);
				goto bad;
			}
			key = json_string_value(decoded);
			klen = json_string_length(decoded);
		}
		sub = find_key(keep, key, klen, &found);
		ws(s);
		if (s->p >= s->end || *s->p != ':') {
			json_decref(decoded);
			goto bad;
		}
		s->p++;
		if (found) {
			json_t *v = NULL;
			char name[64];

			if (klen >= sizeof(name) || project_value(s, sub, &v)) {
				json_decref(decoded);
				goto bad;
			}
			memcpy(name, key, klen);
			name[klen] = '\0';
			json_decref(decoded);
			if (json_object_set_new(obj, name, v)) /* the last one wins */
				goto bad;
		} else {
			json_decref(decoded);
			if (skip_value(s))
				goto bad;
		}
		ws(s);
		if (s->p < s->end && *s->p == '}') {
			s->p++;
			goto done;
		}
		if (s->p >= s->end || *s->p != ',')
			goto bad;
		s->p++;
		ws(s);
	}
done:
	s->depth--;
	*out = obj;
	return 0;
bad:
	json_decref(obj);
	return -1;
}

json_t *kars_json_project(const char *buf, size_t len, const struct kars_json_keep *keep)
{
	struct scan s = {.p = buf, .end = buf + len};
	json_t *out = NULL;

	ws(&s);
	if (s.p >= s.end || *s.p != '{' || project_object(&s, keep, &out))
		return NULL;
	ws(&s);
	if (s.p != s.end) { /* jansson refuses what follows the value */
		json_decref(out);
		return NULL;
	}
	return out;
}

json_t *kars_json_build(const char *buf, size_t len)
{
	struct scan s = {.p = buf, .end = buf + len, .no_duplicates = true};
	json_t *out;

	ws(&s);
	if (s.p >= s.end || (*s.p != '{' && *s.p != '['))
		return NULL;
	out = build_value(&s);
	ws(&s);
	if (out && s.p != s.end) {
		json_decref(out);
		return NULL;
	}
	return out;
}
