/* sse_usage.c - see sse_usage.h.
 *
 * The stream parser is a byte-run state machine: at each state it scans to
 * the next byte that matters (':' or a line end) and handles the run between
 * as one piece, so the cost per byte is a comparison and per event one JSON
 * parse. Only the data of the current event is kept; the field name, the
 * event name and the rest of a line need no buffer.
 */
#include "sse_usage.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_project.h"

enum {
	ST_LINE_START = 0, /* at the first byte of a line */
	ST_FIELD,	   /* in the field name */
	ST_AFTER_COLON,	   /* just after ':'; one space may follow */
	ST_VALUE,	   /* in the value of a data or event field */
	ST_SKIP,	   /* in a comment or an ignored field; to the line end */
};

enum { FK_DATA = 1, FK_EVENT, FK_OTHER };

static const unsigned char bom[3] = {0xef, 0xbb, 0xbf};

/* --- routes, names ---------------------------------------------------------- */

enum kars_openai_route kars_openai_route_from_path(const char *path)
{
	static const struct {
		const char *name;
		enum kars_openai_route route;
	} routes[] = {
	    {"chat/completions", KARS_OPENAI_CHAT_COMPLETIONS},
	    {"completions", KARS_OPENAI_COMPLETIONS},
	    {"embeddings", KARS_OPENAI_EMBEDDINGS},
	    {"responses", KARS_OPENAI_RESPONSES},
	};
	size_t n;

	if (!path)
		return KARS_OPENAI_UNKNOWN;
	if (strncmp(path, "/openai/v1/", 11) == 0)
		path += 7;
	if (strncmp(path, "/v1/", 4) != 0)
		return KARS_OPENAI_UNKNOWN;
	path += 4;
	n = strcspn(path, "?");
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (strlen(routes[i].name) == n && memcmp(routes[i].name, path, n) == 0)
			return routes[i].route;
	}
	return KARS_OPENAI_UNKNOWN;
}

const char *kars_openai_route_name(enum kars_openai_route route)
{
	switch (route) {
	case KARS_OPENAI_CHAT_COMPLETIONS:
		return "chat/completions";
	case KARS_OPENAI_COMPLETIONS:
		return "completions";
	case KARS_OPENAI_EMBEDDINGS:
		return "embeddings";
	case KARS_OPENAI_RESPONSES:
		return "responses";
	default:
		return "unknown";
	}
}

static const char *const category_names[KARS_CF__COUNT] = {
    [KARS_CF_HATE] = "hate",
    [KARS_CF_SELF_HARM] = "self_harm",
    [KARS_CF_SEXUAL] = "sexual",
    [KARS_CF_VIOLENCE] = "violence",
    [KARS_CF_JAILBREAK] = "jailbreak",
    [KARS_CF_INDIRECT_ATTACK] = "indirect_attack",
    [KARS_CF_PROTECTED_MATERIAL_TEXT] = "protected_material_text",
    [KARS_CF_PROTECTED_MATERIAL_CODE] = "protected_material_code",
    [KARS_CF_PROFANITY] = "profanity",
    [KARS_CF_CUSTOM_BLOCKLISTS] = "custom_blocklists",
    [KARS_CF_OTHER] = "other",
};

static const char *const severity_names[] = {
    [KARS_CF_SEVERITY_NONE] = "none", [KARS_CF_SEVERITY_SAFE] = "safe",
    [KARS_CF_SEVERITY_LOW] = "low",   [KARS_CF_SEVERITY_MEDIUM] = "medium",
    [KARS_CF_SEVERITY_HIGH] = "high",
};

const char *kars_cf_category_name(enum kars_cf_category c)
{
	return (unsigned)c < KARS_CF__COUNT ? category_names[c] : "other";
}

const char *kars_cf_severity_name(enum kars_cf_severity s)
{
	return (unsigned)s <= KARS_CF_SEVERITY_HIGH ? severity_names[s] : "none";
}

static enum kars_cf_category category_of(const char *name)
{
	for (int c = 0; c < KARS_CF_OTHER; c++) {
		if (strcmp(name, category_names[c]) == 0)
			return c;
	}
	return KARS_CF_OTHER;
}

static enum kars_cf_severity severity_of(const json_t *v)
{
	const char *s = json_string_value(v);

	for (int i = KARS_CF_SEVERITY_SAFE; s && i <= KARS_CF_SEVERITY_HIGH; i++) {
		if (strcmp(s, severity_names[i]) == 0)
			return i;
	}
	return KARS_CF_SEVERITY_NONE;
}

/* --- what one response object says -------------------------------------------- */

/* Copies s into dst[cap], cut at a UTF-8 character boundary if too long. */
static void copy_utf8(char *dst, size_t cap, const char *s)
{
	size_t n = strlen(s);

	if (n >= cap) {
		n = cap - 1;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(dst, s, n);
	dst[n] = '\0';
}

static void note_model(struct kars_usage *u, const json_t *model)
{
	const char *s = json_string_value(model);

	if (!u->model[0] && s && *s)
		copy_utf8(u->model, sizeof(u->model), s);
}

/* Records the first error the upstream reported; e is its object. */
static void note_error(struct kars_usage *u, const json_t *e, const char *default_type)
{
	struct kars_upstream_error *ue = &u->error;
	const json_t *v;

	if (ue->present || !json_is_object(e))
		return;
	ue->present = true;
	v = json_object_get(e, "type");
	copy_utf8(ue->type, sizeof(ue->type),
		  json_is_string(v) ? json_string_value(v) : default_type);
	v = json_object_get(e, "code");
	if (json_is_string(v))
		copy_utf8(ue->code, sizeof(ue->code), json_string_value(v));
	else if (json_is_integer(v))
		snprintf(ue->code, sizeof(ue->code), "%" JSON_INTEGER_FORMAT,
			 json_integer_value(v));
	v = json_object_get(e, "message");
	if (json_is_string(v))
		copy_utf8(ue->message, sizeof(ue->message), json_string_value(v));
}

/* One content_filter_results object: {"<category>": {"filtered": bool,
 * "severity"?: "...", "detected"?: bool, ...}, ...}. Annotations are read
 * leniently: a malformed one is skipped rather than failing the count. */
static void note_filter_results(struct kars_content_filter *f, const json_t *cfr, bool prompt)
{
	const char *key;
	json_t *v;

	if (!json_is_object(cfr))
		return;
	json_object_foreach((json_t *)cfr, key, v)
	{
		const json_t *filtered = json_object_get(v, "filtered");
		enum kars_cf_category c;
		enum kars_cf_severity s;

		if (!json_is_boolean(filtered))
			continue;
		f->annotated = true;
		c = category_of(key);
		s = severity_of(json_object_get(v, "severity"));
		if (s > f->max_severity[c])
			f->max_severity[c] = s;
		if (json_is_true(json_object_get(v, "detected")))
			f->detected |= 1u << c;
		if (json_is_true(filtered)) {
			if (!f->category[0]) {
				copy_utf8(f->category, sizeof(f->category), key);
				f->severity = s;
				f->prompt = prompt;
			}
			f->filtered = true;
		}
	}
}

static void note_prompt_filters(struct kars_content_filter *f, const json_t *arr)
{
	size_t i;
	json_t *v;

	if (!json_is_array(arr))
		return;
	json_array_foreach(arr, i, v)
	{
		note_filter_results(f, json_object_get(v, "content_filter_results"), true);
	}
}

/* A token count: absent or null is 0, else a non-negative integer. */
static int get_count(const json_t *usage, const char *where, const char *path, const char *key,
		     uint64_t *out, struct kars_err *err)
{
	const json_t *v = json_object_get(usage, key);

	*out = 0;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return kars_err_set(err, EINVAL, "%s%s.%s: expected a non-negative integer", where,
				    path, key);
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

/* A detail count is informative only: read if well-formed, else 0. */
static uint64_t get_detail(const json_t *usage, const char *details, const char *key)
{
	const json_t *v = json_object_get(json_object_get(usage, details), key);

	return json_is_integer(v) && json_integer_value(v) >= 0 ? (uint64_t)json_integer_value(v)
								: 0;
}

/* usage (Chat Completions names, or the Responses API's if responses) at
 * path; null or absent is no usage. where prefixes error messages. */
static int note_usage(struct kars_usage *u, const json_t *usage, const char *path, bool responses,
		      const char *where, struct kars_err *err)
{
	const json_t *total_v = json_object_get(usage, "total_tokens");
	uint64_t prompt, completion, total;
	int ret;

	if (!usage || json_is_null(usage))
		return 0;
	if (!json_is_object(usage))
		return kars_err_set(err, EINVAL, "%s%s: expected an object or null", where, path);
	ret = get_count(usage, where, path, responses ? "input_tokens" : "prompt_tokens", &prompt,
			err);
	if (!ret)
		ret =
		    get_count(usage, where, path, responses ? "output_tokens" : "completion_tokens",
			      &completion, err);
	if (!ret)
		ret = get_count(usage, where, path, "total_tokens", &total, err);
	if (ret)
		return ret;
	if (!total_v || json_is_null(total_v))
		total = prompt + completion < prompt ? UINT64_MAX : prompt + completion;
	u->has_usage = true;
	u->prompt_tokens = prompt;
	u->completion_tokens = completion;
	u->total_tokens = total;
	u->cached_tokens = get_detail(
	    usage, responses ? "input_tokens_details" : "prompt_tokens_details", "cached_tokens");
	u->reasoning_tokens =
	    get_detail(usage, responses ? "output_tokens_details" : "completion_tokens_details",
		       "reasoning_tokens");
	return 0;
}

/* Chat Completions, Completions and Embeddings bodies and chunks, and the
 * OpenAI error envelope {"error": {...}}. */
static int note_chat(struct kars_usage *u, const json_t *root, const char *where,
		     struct kars_err *err)
{
	const json_t *choices = json_object_get(root, "choices");
	const json_t *e = json_object_get(root, "error");
	size_t i;
	json_t *c;

	note_model(u, json_object_get(root, "model"));
	note_prompt_filters(&u->filter, json_object_get(root, "prompt_filter_results"));
	note_prompt_filters(&u->filter, json_object_get(root, "prompt_annotations"));
	if (json_is_array(choices)) {
		json_array_foreach(choices, i, c)
		{
			const char *reason = json_string_value(json_object_get(c, "finish_reason"));

			note_filter_results(&u->filter,
					    json_object_get(c, "content_filter_results"), false);
			if (reason && strcmp(reason, "content_filter") == 0)
				u->filter.filtered = true;
		}
	}
	if (json_is_object(e)) {
		const json_t *inner = json_object_get(e, "innererror");

		note_filter_results(&u->filter, json_object_get(inner, "content_filter_result"),
				    true);
		note_filter_results(&u->filter, json_object_get(inner, "content_filter_results"),
				    true);
		note_error(u, e, "error");
	}
	return note_usage(u, json_object_get(root, "usage"), "usage", false, where, err);
}

/* A Responses API response object (a body, or the "response" of an event at
 * path); with_usage is false for events that carry a partial response. */
static int note_response(struct kars_usage *u, const json_t *resp, const char *path,
			 bool with_usage, const char *where, struct kars_err *err)
{
	const json_t *incomplete = json_object_get(resp, "incomplete_details");
	const char *reason = json_string_value(json_object_get(incomplete, "reason"));
	char upath[64];

	if (!json_is_object(resp))
		return kars_err_set(err, EINVAL, "%s%s: expected an object", where,
				    *path ? path : "response body");
	note_model(u, json_object_get(resp, "model"));
	if (reason && strcmp(reason, "content_filter") == 0)
		u->filter.filtered = true;
	note_error(u, json_object_get(resp, "error"), "response.failed");
	if (!with_usage)
		return 0;
	snprintf(upath, sizeof(upath), "%s%susage", path, *path ? "." : "");
	return note_usage(u, json_object_get(resp, "usage"), upath, true, where, err);
}

static bool is_terminal_response_event(const char *type)
{
	return strcmp(type, "response.completed") == 0 ||
	       strcmp(type, "response.incomplete") == 0 || strcmp(type, "response.failed") == 0;
}

/* One SSE event's parsed data; name is the "event:" field ("" if none). */
static int note_event(struct kars_usage *u, const json_t *root, const char *name, const char *where,
		      struct kars_err *err)
{
	const char *type = json_string_value(json_object_get(root, "type"));

	if (!json_is_object(root))
		return kars_err_set(err, EINVAL, "%sexpected a JSON object", where);
	if (!type)
		type = name;
	if (strcmp(type, "error") == 0) {
		const json_t *e = json_object_get(root, "error");

		u->done = true;
		note_error(u, json_is_object(e) ? e : root, "error");
		return 0;
	}
	if (strncmp(type, "response.", 9) == 0) {
		const json_t *resp = json_object_get(root, "response");
		bool terminal = is_terminal_response_event(type);

		if (terminal)
			u->done = true;
		if (!resp && !terminal)
			return 0;
		return note_response(u, resp, "response", terminal, where, err);
	}
	if (json_is_object(json_object_get(root, "error")))
		u->done = true;
	return note_chat(u, root, where, err);
}

/* --- whole bodies ------------------------------------------------------------ */

int kars_openai_usage_from_json(enum kars_openai_route route, const json_t *root,
				struct kars_usage *out, struct kars_err *err)
{
	memset(out, 0, sizeof(*out));
	if (!json_is_object(root))
		return kars_err_set(err, EINVAL, "response body: expected a JSON object");
	switch (route) {
	case KARS_OPENAI_CHAT_COMPLETIONS:
	case KARS_OPENAI_COMPLETIONS:
	case KARS_OPENAI_EMBEDDINGS:
		return note_chat(out, root, "", err);
	case KARS_OPENAI_RESPONSES:
		/* an error status carries the OpenAI error envelope instead */
		if (!json_object_get(root, "object") &&
		    json_is_object(json_object_get(root, "error")))
			return note_chat(out, root, "", err);
		return note_response(out, root, "", true, "", err);
	default:
		return kars_err_set(err, EINVAL, "no usage is known for this route");
	}
}

/* What note_chat reads of a body: the rest (the text, an embedding's
 * numbers) is checked and skipped, not built (json_project.h). */
static const struct kars_json_keep chat_choice_keys[] = {
    {"finish_reason", NULL},
    {"content_filter_results", NULL},
    {NULL, NULL},
};
static const struct kars_json_keep chat_body_keys[] = {
    {"model", NULL},
    {"prompt_filter_results", NULL},
    {"prompt_annotations", NULL},
    {"choices", chat_choice_keys},
    {"error", NULL},
    {"usage", NULL},
    {NULL, NULL},
};

int kars_openai_usage_from_body(enum kars_openai_route route, const void *body, size_t len,
				struct kars_usage *out, struct kars_err *err)
{
	json_error_t jerr;
	json_t *root = NULL;
	int ret;

	memset(out, 0, sizeof(*out));
	if (route == KARS_OPENAI_CHAT_COMPLETIONS || route == KARS_OPENAI_COMPLETIONS ||
	    route == KARS_OPENAI_EMBEDDINGS)
		root = kars_json_project(body, len, chat_body_keys);
	/* Anything the projection does not take on: the whole parse, as ever. */
	if (!root)
		root = json_loadb(body, len, 0, &jerr);
	if (!root)
		return kars_err_set(err, EINVAL, "response body: invalid JSON at byte %d: %s",
				    jerr.position, jerr.text);
	ret = kars_openai_usage_from_json(route, root, out, err);
	json_decref(root);
	return ret;
}

/* --- the request side ----------------------------------------------------------- */

int kars_openai_inject_include_usage(json_t *body, struct kars_err *err)
{
	json_t *stream, *opts, *inc;
	int ret = KARS_INCLUDE_USAGE_INJECTED;

	if (!json_is_object(body))
		return kars_err_set(err, EINVAL, "request body: expected a JSON object");
	stream = json_object_get(body, "stream");
	if (!stream || json_is_null(stream) || json_is_false(stream))
		return KARS_INCLUDE_USAGE_NO_STREAM;
	if (!json_is_true(stream))
		return kars_err_set(err, EINVAL, "stream: expected true or false");
	opts = json_object_get(body, "stream_options");
	if (opts && !json_is_null(opts) && !json_is_object(opts))
		return kars_err_set(err, EINVAL, "stream_options: expected an object or null");
	if (!json_is_object(opts)) {
		opts = json_object();
		if (!opts || json_object_set_new(body, "stream_options", opts))
			return kars_err_set(err, ENOMEM, "out of memory adding stream_options");
	}
	inc = json_object_get(opts, "include_usage");
	if (json_is_true(inc))
		return KARS_INCLUDE_USAGE_ASKED;
	if (json_is_false(inc))
		ret = KARS_INCLUDE_USAGE_FORCED;
	else if (inc && !json_is_null(inc))
		return kars_err_set(err, EINVAL,
				    "stream_options.include_usage: expected true, false or null");
	if (json_object_set_new(opts, "include_usage", json_true()))
		return kars_err_set(err, ENOMEM, "out of memory setting include_usage");
	return ret;
}

/* --- the stream parser ------------------------------------------------------------- */

int kars_sse_usage_init(struct kars_sse_usage *p, size_t max_event)
{
	memset(p, 0, sizeof(*p));
	p->max_event = max_event ? max_event : KARS_SSE_MAX_EVENT_DEFAULT;
	p->state = ST_LINE_START;
	return 0;
}

void kars_sse_usage_release(struct kars_sse_usage *p)
{
	free(p->buf);
	p->buf = NULL;
	p->len = p->cap = 0;
	p->span = NULL;
}

static int fail(struct kars_sse_usage *p, int ret)
{
	p->error = -ret;
	p->span = NULL;
	return ret;
}

/* Makes room for need bytes of data in buf; need <= max_event. */
static int reserve(struct kars_sse_usage *p, size_t need)
{
	size_t cap = p->cap ? p->cap : 256;
	char *nbuf;

	if (need <= p->cap)
		return 0;
	while (cap < need)
		cap = cap > p->max_event / 2 ? p->max_event : cap * 2;
	if (cap > p->max_event)
		cap = p->max_event;
	nbuf = realloc(p->buf, cap);
	if (!nbuf)
		return fail(p, kars_err_set(&p->err, ENOMEM,
					    "out of memory for a %zu-byte SSE event", need));
	p->buf = nbuf;
	p->cap = cap;
	return 0;
}

/* Moves in-place data into buf, before the piece it points into goes away. */
static int materialise(struct kars_sse_usage *p)
{
	const char *span = p->span;
	int ret;

	if (!span)
		return 0;
	p->span = NULL;
	ret = reserve(p, p->len);
	if (ret)
		return ret;
	memcpy(p->buf, span, p->len);
	return 0;
}

/* Appends k bytes of event data found at stream offset off. The first piece
 * of an event is only pointed at; it is copied if more follows or when the
 * fed piece ends. While p->span is set, p->len is the span's length. */
static int data_append(struct kars_sse_usage *p, const char *s, size_t k, uint64_t off)
{
	size_t len = p->len;
	int ret;

	if (k > p->max_event - len)
		return fail(p,
			    kars_err_set(&p->err, EMSGSIZE,
					 "SSE event at byte %" PRIu64
					 " has more than %zu bytes of data (byte %" PRIu64 ")",
					 p->event_start, p->max_event, off + (p->max_event - len)));
	if (!k)
		return 0;
	if (!len) {
		p->span = s;
		p->len = k;
		return 0;
	}
	ret = materialise(p);
	if (!ret)
		ret = reserve(p, len + k);
	if (ret)
		return ret;
	memcpy(p->buf + len, s, k);
	p->len = len + k;
	return 0;
}

static void reset_event(struct kars_sse_usage *p)
{
	p->len = 0;
	p->span = NULL;
	p->data_lines = 0;
	p->type_len = 0;
	p->type_long = false;
}

/* A blank line: the event is complete. */
static int dispatch(struct kars_sse_usage *p)
{
	const char *data = p->span ? p->span : p->buf;
	size_t len = p->len;
	char where[96], name[sizeof(p->type)];
	json_error_t jerr;
	json_t *root;
	int ret = 0;

	/* No data, or only empty data lines: per the SSE rules (WHATWG) such
	 * an event is not dispatched. */
	if (!p->data_lines || len == 0) {
		reset_event(p);
		return 0;
	}
	p->usage.events++;
	if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
		p->usage.done = true;
		reset_event(p);
		return 0;
	}
	root = json_loadb(data, len, 0, &jerr);
	if (!root) {
		if (p->data_lines == 1)
			return fail(p, kars_err_set(&p->err, EINVAL,
						    "SSE event data at byte %" PRIu64
						    ": invalid JSON at byte %" PRIu64 ": %s",
						    p->event_start,
						    p->event_start + (uint64_t)jerr.position,
						    jerr.text));
		return fail(
		    p, kars_err_set(&p->err, EINVAL,
				    "SSE event data at byte %" PRIu64
				    ": invalid JSON at byte %d of its %zu data lines joined: %s",
				    p->event_start, jerr.position, p->data_lines, jerr.text));
	}
	/* an over-long event name matches no known type */
	snprintf(name, sizeof(name), "%.*s", p->type_long ? 0 : (int)p->type_len, p->type);
	snprintf(where, sizeof(where), "SSE event data at byte %" PRIu64 ": ", p->event_start);
	ret = note_event(&p->usage, root, name, where, &p->err);
	json_decref(root);
	if (ret)
		return fail(p, ret);
	reset_event(p);
	return 0;
}

/* The start of a field's value (after ':' and its one optional space, or at
 * the line end if there was no ':'); off is its stream offset. */
static int begin_value(struct kars_sse_usage *p, uint64_t off)
{
	if (p->field_kind == FK_EVENT) {
		p->type_len = 0;
		p->type_long = false;
	} else if (p->field_kind == FK_DATA) {
		if (!p->data_lines)
			p->event_start = off;
		if (p->data_lines++)
			return data_append(p, "\n", 1, off);
	}
	return 0;
}

static void type_append(struct kars_sse_usage *p, const char *s, size_t k)
{
	if (k > sizeof(p->type) - 1 - p->type_len) {
		p->type_long = true;
		return;
	}
	memcpy(p->type + p->type_len, s, k);
	p->type_len += k;
}

static size_t to_line_end(const char *s, size_t i, size_t n)
{
	while (i < n && s[i] != '\n' && s[i] != '\r')
		i++;
	return i;
}

/* Runs n bytes at stream offset base through the state machine. */
static int process(struct kars_sse_usage *p, const char *s, size_t n, uint64_t base)
{
	size_t i = 0, j;
	int ret;

	while (i < n) {
		if (p->skip_lf) {
			p->skip_lf = false;
			if (s[i] == '\n') {
				i++;
				continue;
			}
		}
		switch (p->state) {
		case ST_LINE_START:
			if (s[i] == '\n' || s[i] == '\r') {
				p->skip_lf = s[i] == '\r';
				i++;
				ret = dispatch(p);
				if (ret)
					return ret;
			} else if (s[i] == ':') {
				p->state = ST_SKIP;
				i++;
			} else {
				p->field_len = 0;
				p->state = ST_FIELD;
			}
			break;
		case ST_FIELD:
			for (j = i; j < n && s[j] != ':' && s[j] != '\n' && s[j] != '\r'; j++)
				;
			if (j - i > sizeof(p->field) - p->field_len) {
				p->field_len = sizeof(p->field); /* too long for any we know */
			} else {
				memcpy(p->field + p->field_len, s + i, j - i);
				p->field_len += j - i;
			}
			i = j;
			if (i == n)
				break;
			if (p->field_len == 4 && memcmp(p->field, "data", 4) == 0)
				p->field_kind = FK_DATA;
			else if (p->field_len == 5 && memcmp(p->field, "event", 5) == 0)
				p->field_kind = FK_EVENT;
			else
				p->field_kind = FK_OTHER;
			if (s[i] == ':') {
				i++;
				p->state = p->field_kind == FK_OTHER ? ST_SKIP : ST_AFTER_COLON;
			} else if (p->field_kind == FK_OTHER) {
				p->state = ST_SKIP;
			} else {
				ret = begin_value(p, base + i);
				if (ret)
					return ret;
				p->state = ST_VALUE;
			}
			break;
		case ST_AFTER_COLON:
			if (s[i] == ' ')
				i++;
			ret = begin_value(p, base + i);
			if (ret)
				return ret;
			p->state = ST_VALUE;
			break;
		case ST_VALUE:
			j = to_line_end(s, i, n);
			if (p->field_kind == FK_DATA)
				ret = data_append(p, s + i, j - i, base + i);
			else
				type_append(p, s + i, j - i), ret = 0;
			if (ret)
				return ret;
			i = j;
			if (i < n) {
				p->skip_lf = s[i] == '\r';
				i++;
				p->state = ST_LINE_START;
			}
			break;
		case ST_SKIP:
			i = to_line_end(s, i, n);
			if (i < n) {
				p->skip_lf = s[i] == '\r';
				i++;
				p->state = ST_LINE_START;
			}
			break;
		}
	}
	return 0;
}

static int stored_error(struct kars_sse_usage *p, struct kars_err *err)
{
	if (err && !err->code)
		*err = p->err;
	return -p->error;
}

int kars_sse_usage_feed(struct kars_sse_usage *p, const void *buf, size_t len, struct kars_err *err)
{
	const char *s = buf;
	uint64_t base = p->offset;
	size_t i = 0;
	int ret = 0;

	if (p->error)
		return stored_error(p, err);
	/* A leading BOM is dropped; a partial match is replayed as data. */
	while (p->bom < 3 && i < len) {
		if ((unsigned char)s[i] == bom[p->bom]) {
			p->bom++;
			i++;
			continue;
		}
		ret = process(p, (const char *)bom, p->bom, 0);
		p->bom = 3;
	}
	if (!ret)
		ret = process(p, s + i, len - i, base + i);
	if (!ret)
		ret = materialise(p);
	p->offset = base + len;
	return ret ? stored_error(p, err) : 0;
}

int kars_sse_usage_finish(struct kars_sse_usage *p, struct kars_err *err)
{
	int ret = 0;

	if (p->error)
		return stored_error(p, err);
	if (p->bom < 3) {
		ret = process(p, (const char *)bom, p->bom, 0);
		p->bom = 3;
		if (!ret)
			ret = materialise(p);
		if (ret)
			return stored_error(p, err);
	}
	if (p->state != ST_LINE_START || p->data_lines || p->type_len || p->type_long)
		p->usage.truncated = true;
	return 0;
}
