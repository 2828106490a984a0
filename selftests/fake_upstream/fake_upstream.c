/* fake_upstream.c - a model server speaking the OpenAI and Azure OpenAI wire
 * formats, for testing kars-router without a cloud account.
 *
 * The router's job is to sit between an unmodified agent SDK and a real model
 * endpoint, so its tests need an endpoint whose bytes are those of the real
 * API: the same JSON shapes and field order, SSE framing, usage only in the
 * last chunk when stream_options.include_usage asks for it, "data: [DONE]",
 * the Responses API's typed events, Azure's content-filter annotations and
 * error bodies. selftests/e2e/openai_client.sh proves that by driving it with
 * the real `openai` npm client. Content is deterministic (see "Tokens"), and
 * request headers (or flags, as defaults) make it misbehave on purpose:
 *
 *   x-fake-status: N          answer N (400-599) with the real error body
 *   x-fake-content-filter: M  none | annotate (Azure annotations, all safe;
 *                             the default on /openai/v1/) | completion (output
 *                             filtered half-way) | prompt (400 content_filter)
 *   x-fake-delay-ms: N        wait N ms before each write
 *   x-fake-chunk-bytes: N     write the SSE body N bytes at a time
 *   x-fake-drop-after: N      hang up after N SSE events (0: before any reply)
 *   x-fake-stream-error: N    after N SSE events send an error event and end
 *   x-fake-omit-usage: 1      no usage, even when include_usage asked for it
 *   x-fake-reply: TEXT        the assistant's text
 *   x-fake-only-models: LIST  the failure knobs above (status, drop-after,
 *                             stream-error, content-filter) apply only to
 *                             requests whose "model" is in this comma-separated
 *                             list; others are answered normally (failover)
 * Each may also come as a string in the request body's "metadata" object
 * (same key), for tests that go through kars-router, which drops unknown
 * request headers.
 *
 * The last request (method, URI, headers in order, body) is kept for tests to
 * check what the router forwarded: GET /_fake/last-request, and --record FILE.
 * It listens only on the address it is given and connects nowhere.
 *
 * Tokens: a token is a run of letters, digits and non-ASCII bytes, or any
 * other single character, each with the spaces before it. prompt_tokens of a
 * chat request is 3 + the sum over messages of (3 + tokens of its text);
 * completion_tokens is the number of tokens of the reply, streamed one token
 * per chunk.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "err.h"
#include "parse.h"

#define DEFAULT_REPLY	   "Hello! This is kars fake-upstream."
#define FINGERPRINT	   "fp_6b68a8204b"
#define AZURE_FINGERPRINT  "fp_ee1d74bde0"
#define MAX_BODY	   (16 << 20)
#define MAX_TOKENS	   4096
#define DEFAULT_DIMENSIONS 1536

enum cf_mode { CF_DEFAULT = 0, CF_NONE, CF_ANNOTATE, CF_COMPLETION, CF_PROMPT };

struct knobs {
	int status;
	enum cf_mode cf;
	unsigned delay_ms;
	long drop_after;   /* -1: never */
	long stream_error; /* -1: never */
	size_t chunk_bytes;
	bool omit_usage;
	const char *reply;
};

static struct {
	struct event_base *base;
	const char *record_path;
	const char *api_key;
	struct knobs defaults;
	long long created; /* -1: the clock */
	json_t *last;
	uint64_t requests;
	uint64_t ids;
	bool verbose;
} fake;

/* One request being answered: the context the handlers build into. */
struct call {
	struct evhttp_request *req;
	struct knobs k;
	bool azure;
	const char *path; /* without /openai */
	json_t *body;
	long long created;
};

/* --- small helpers ------------------------------------------------------------- */

static long long now_created(void)
{
	return fake.created >= 0 ? fake.created : (long long)time(NULL);
}

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* prefix + n characters from alphabet, deterministic per process. */
static void make_id(char *out, size_t cap, const char *prefix, size_t n, const char *alphabet)
{
	uint64_t x = ++fake.ids * 0x2545f4914f6cdd1dull, r = 0;
	size_t len = strlen(prefix), k = strlen(alphabet);

	snprintf(out, cap, "%s", prefix);
	for (size_t i = 0; i < n && len + i + 1 < cap; i++) {
		if (i % 8 == 0)
			r = splitmix(&x);
		out[len + i] = alphabet[r % k];
		r /= k;
		out[len + i + 1] = '\0';
	}
}

static const char base62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
static const char hex[] = "0123456789abcdef";

struct toks {
	size_t n;
	size_t off[MAX_TOKENS], len[MAX_TOKENS];
};

static bool word_byte(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       c >= 0x80;
}

/* Splits s into tokens (into t if not NULL, up to MAX_TOKENS); returns the count. */
static size_t tokenize(const char *s, size_t n, struct toks *t)
{
	size_t i = 0, count = 0;

	while (i < n) {
		size_t start = i;

		while (i < n && s[i] == ' ')
			i++;
		if (i < n && word_byte((unsigned char)s[i])) {
			while (i < n && word_byte((unsigned char)s[i]))
				i++;
		} else if (i < n) {
			i++;
		}
		if (t && count < MAX_TOKENS) {
			t->off[count] = start;
			t->len[count] = i - start;
		}
		count++;
	}
	if (t)
		t->n = count < MAX_TOKENS ? count : MAX_TOKENS;
	return count;
}

static size_t tokens_of(const char *s)
{
	return s ? tokenize(s, strlen(s), NULL) : 0;
}

/* Tokens of a message's "content": a string, or parts with "text". */
static size_t content_tokens(const json_t *content)
{
	size_t i, n = 0;
	json_t *part;

	if (json_is_string(content))
		return tokens_of(json_string_value(content));
	json_array_foreach(content, i, part)
	{
		n += tokens_of(json_string_value(json_object_get(part, "text")));
	}
	return n;
}

/* 3 + sum of (3 + tokens) over messages (chat) or input items (responses). */
static size_t prompt_tokens(const json_t *messages, const char *instructions)
{
	size_t i, n = 3;
	json_t *m;

	if (instructions)
		n += 3 + tokens_of(instructions);
	if (json_is_string(messages))
		return n + 3 + tokens_of(json_string_value(messages));
	json_array_foreach(messages, i, m)
	{
		n += 3 + content_tokens(json_object_get(m, "content"));
	}
	return n;
}

/* Tokens of a Completions "prompt" or Embeddings "input" entry. */
static size_t input_tokens(const json_t *v)
{
	if (json_is_string(v))
		return tokens_of(json_string_value(v));
	if (json_is_array(v))
		return json_array_size(v);
	return 0;
}

static const char *header(struct evhttp_request *req, const char *name)
{
	return evhttp_find_header(evhttp_request_get_input_headers(req), name);
}

static void add_header(struct evhttp_request *req, const char *name, const char *value)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), name, value);
}

/* Headers every response of the real API carries. */
static void common_headers(struct call *c, const char *content_type)
{
	char id[64];

	add_header(c->req, "Content-Type", content_type);
	if (c->azure) {
		make_id(id, sizeof(id), "", 32, hex);
		add_header(c->req, "apim-request-id", id);
		add_header(c->req, "x-ms-region", "Sweden Central");
		add_header(c->req, "x-request-id", id);
	} else {
		make_id(id, sizeof(id), "req_", 32, hex);
		add_header(c->req, "openai-version", "2020-10-01");
		add_header(c->req, "openai-processing-ms", "7");
		add_header(c->req, "x-request-id", id);
		add_header(c->req, "x-ratelimit-limit-requests", "10000");
		add_header(c->req, "x-ratelimit-remaining-requests", "9999");
		add_header(c->req, "x-ratelimit-limit-tokens", "200000");
		add_header(c->req, "x-ratelimit-remaining-tokens", "199990");
	}
}

static int write_file(const char *path, const char *data, size_t len)
{
	char tmp[4096];
	FILE *f;
	int ok;

	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	ok = fwrite(data, 1, len, f) == len;
	ok = (fclose(f) == 0) && ok;
	if (!ok || rename(tmp, path)) {
		unlink(tmp);
		return -EIO;
	}
	return 0;
}

/* The status line's words as the real services send them. */
static const char *reason(int code)
{
	switch (code) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 429:
		return "Too Many Requests";
	case 500:
		return "Internal Server Error";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	default:
		return code < 500 ? "Client Error" : "Server Error";
	}
}

/* --- replies ---------------------------------------------------------------------- */

/* A reply sent later or in pieces: SSE bodies, delays, hang-ups. */
struct reply {
	struct evhttp_request *req;
	struct evhttp_connection *evcon;
	struct event *timer;
	int code;
	bool sse;    /* chunked, piece by piece; else one body */
	char *bytes; /* the whole body */
	size_t len;
	size_t *ends; /* end offsets of the pieces, ascending, last is len */
	size_t nends;
	size_t next;	/* next piece */
	size_t sent;	/* bytes written */
	size_t drop_at; /* hang up after this many bytes; SIZE_MAX: never */
	unsigned delay_ms;
	bool started;
};

static void reply_free(struct reply *r)
{
	if (r->timer)
		event_free(r->timer);
	free(r->bytes);
	free(r->ends);
	free(r);
}

/* The connection is being freed under the reply. If the client went away,
 * libevent has detached the unfinished request, and finishing it frees it;
 * if we are shutting down, the connection frees the request itself. */
static void reply_on_close(struct evhttp_connection *evcon, void *arg)
{
	struct reply *r = arg;

	if (fake.verbose)
		fprintf(stderr, "fake-upstream: connection closed after %zu bytes\n", r->sent);
	if (!evhttp_request_get_connection(r->req))
		evhttp_send_reply_end(r->req);
	reply_free(r);
}

static void reply_drop(struct reply *r)
{
	struct evhttp_connection *evcon = r->evcon;

	evhttp_connection_set_closecb(evcon, NULL, NULL);
	reply_free(r);
	evhttp_connection_free(evcon); /* and the request with it */
}

static void reply_schedule(struct reply *r);

static void reply_on_flushed(struct evhttp_connection *evcon, void *arg)
{
	reply_schedule(arg);
}

static void reply_step(evutil_socket_t fd, short what, void *arg)
{
	struct reply *r = arg;
	struct evbuffer *buf;
	size_t end;

	if (r->sent >= r->drop_at) {
		reply_drop(r);
		return;
	}
	if (!r->sse) {
		buf = evbuffer_new();
		evbuffer_add(buf, r->bytes, r->len);
		evhttp_connection_set_closecb(r->evcon, NULL, NULL);
		evhttp_send_reply(r->req, r->code, reason(r->code), buf);
		evbuffer_free(buf);
		reply_free(r);
		return;
	}
	if (!r->started) {
		r->started = true;
		evhttp_send_reply_start(r->req, r->code, reason(r->code));
	}
	if (r->sent == r->len) {
		evhttp_connection_set_closecb(r->evcon, NULL, NULL);
		evhttp_send_reply_end(r->req);
		reply_free(r);
		return;
	}
	while (r->next < r->nends && r->ends[r->next] <= r->sent)
		r->next++;
	end = r->next < r->nends ? r->ends[r->next] : r->len;
	if (end > r->drop_at)
		end = r->drop_at;
	buf = evbuffer_new();
	evbuffer_add(buf, r->bytes + r->sent, end - r->sent);
	r->sent = end;
	evhttp_send_reply_chunk_with_cb(r->req, buf, reply_on_flushed, r);
	evbuffer_free(buf);
}

static void reply_schedule(struct reply *r)
{
	struct timeval tv = {r->delay_ms / 1000, (r->delay_ms % 1000) * 1000};

	evtimer_add(r->timer, &tv);
}

/* Takes over bytes (malloc'd) and ends (malloc'd or NULL). */
static void reply_later(struct call *c, int code, bool sse, char *bytes, size_t len, size_t *ends,
			size_t nends, size_t drop_at)
{
	struct reply *r = calloc(1, sizeof(*r));

	if (!r || !(r->timer = evtimer_new(fake.base, reply_step, r))) {
		free(r);
		free(bytes);
		free(ends);
		evhttp_send_error(c->req, 500, NULL);
		return;
	}
	r->req = c->req;
	r->evcon = evhttp_request_get_connection(c->req);
	r->code = code;
	r->sse = sse;
	r->bytes = bytes;
	r->len = len;
	r->ends = ends;
	r->nends = nends;
	r->drop_at = drop_at;
	r->delay_ms = c->k.delay_ms;
	evhttp_connection_set_closecb(r->evcon, reply_on_close, r);
	reply_schedule(r);
}

/* A whole JSON body: pretty as OpenAI prints it, compact with sorted keys
 * as Azure does. Steals body. */
static void reply_json(struct call *c, int code, json_t *body)
{
	size_t flags = c->azure ? JSON_COMPACT | JSON_SORT_KEYS : JSON_INDENT(2);
	char *s = json_dumps(body, flags | JSON_REAL_PRECISION(9));
	struct evbuffer *buf;
	size_t len;

	json_decref(body);
	if (!s) {
		evhttp_send_error(c->req, 500, NULL);
		return;
	}
	len = strlen(s);
	if (!c->azure) { /* the real API ends its pretty bodies with a newline */
		char *t = realloc(s, len + 2);

		if (t) {
			s = t;
			s[len++] = '\n';
			s[len] = '\0';
		}
	}
	common_headers(c, "application/json");
	if (c->k.delay_ms || c->k.drop_after == 0) {
		reply_later(c, code, false, s, len, NULL, 0, c->k.drop_after == 0 ? 0 : SIZE_MAX);
		return;
	}
	buf = evbuffer_new();
	evbuffer_add(buf, s, len);
	evhttp_send_reply(c->req, code, reason(code), buf);
	evbuffer_free(buf);
	free(s);
}

/* The OpenAI error envelope. */
static void reply_error(struct call *c, int code, const char *message, const char *type,
			const char *param, const char *err_code)
{
	json_t *e = json_pack("{s:{s:s, s:s?, s:s?, s:s?}}", "error", "message", message, "type",
			      type, "param", param, "code", err_code);

	if (code == 429) {
		add_header(c->req, "retry-after", "1");
		add_header(c->req, "x-ratelimit-reset-requests", "1s");
	}
	reply_json(c, code, e);
}

static void reply_status(struct call *c, int code)
{
	char msg[256];

	switch (code) {
	case 400:
		reply_error(c, 400, "Invalid request (x-fake-status).", "invalid_request_error",
			    NULL, NULL);
		break;
	case 401:
		reply_error(
		    c, 401,
		    "Incorrect API key provided: sk-fake****. You can find your API key at https://platform.openai.com/account/api-keys.",
		    "invalid_request_error", NULL, "invalid_api_key");
		break;
	case 404:
		reply_error(c, 404, "The model does not exist or you do not have access to it.",
			    "invalid_request_error", NULL, "model_not_found");
		break;
	case 429:
		reply_error(c, 429, "Rate limit reached for requests. Please try again in 1s.",
			    "requests", NULL, "rate_limit_exceeded");
		break;
	case 500:
		reply_error(
		    c, 500,
		    "The server had an error while processing your request. Sorry about that!",
		    "server_error", NULL, NULL);
		break;
	case 503:
		reply_error(c, 503, "The engine is currently overloaded, please try again later.",
			    "server_error", NULL, NULL);
		break;
	default:
		snprintf(msg, sizeof(msg), "Upstream answered %d (x-fake-status).", code);
		reply_error(c, code, msg, code < 500 ? "invalid_request_error" : "server_error",
			    NULL, NULL);
	}
}

/* --- SSE bodies ------------------------------------------------------------------ */

struct sse {
	long fail_at;	/* x-fake-stream-error: -1, or the event to fail at */
	bool responses; /* the Responses API's error event, else chat's */
	bool stopped;	/* the error event was sent: nothing more */
	char *bytes;
	size_t len, cap;
	size_t *ends;
	size_t nends, ends_cap;
	size_t events;
	bool failed;
};

static void sse_raw(struct sse *s, const char *p, size_t n)
{
	if (s->failed)
		return;
	if (s->len + n + 1 > s->cap) {
		size_t cap = (s->len + n + 1) * 2;
		char *b = realloc(s->bytes, cap);

		if (!b) {
			s->failed = true;
			return;
		}
		s->bytes = b;
		s->cap = cap;
	}
	memcpy(s->bytes + s->len, p, n);
	s->len += n;
}

static void sse_end_event(struct sse *s)
{
	if (s->failed)
		return;
	if (s->nends == s->ends_cap) {
		size_t cap = s->ends_cap ? s->ends_cap * 2 : 32;
		size_t *e = realloc(s->ends, cap * sizeof(*e));

		if (!e) {
			s->failed = true;
			return;
		}
		s->ends = e;
		s->ends_cap = cap;
	}
	s->ends[s->nends++] = s->len;
	s->events++;
}

static void sse_event(struct sse *s, const char *name, json_t *data, bool sorted);

/* What the real API sends when it fails mid-stream; the stream ends there,
 * without an end marker. */
static void sse_error_event(struct sse *s)
{
	static const char msg[] =
	    "The server had an error while processing your request. Sorry about that!";

	s->fail_at = -1;
	if (s->responses)
		sse_event(s, "error",
			  json_pack("{s:s, s:s, s:s, s:n, s:I}", "type", "error", "code",
				    "server_error", "message", msg, "param", "sequence_number",
				    (json_int_t)s->events),
			  false);
	else
		sse_event(s, NULL,
			  json_pack("{s:{s:s, s:s, s:n, s:n}}", "error", "message", msg, "type",
				    "server_error", "param", "code"),
			  false);
	s->stopped = true;
}

/* "event: name\n" (if name) "data: <json>\n\n"; steals data. */
static void sse_event(struct sse *s, const char *name, json_t *data, bool sorted)
{
	char *j;

	if (s->fail_at >= 0 && s->events == (size_t)s->fail_at)
		sse_error_event(s);
	if (s->stopped) {
		json_decref(data);
		return;
	}
	j = data ? json_dumps(data,
			      JSON_COMPACT | (sorted ? JSON_SORT_KEYS : 0) | JSON_REAL_PRECISION(9))
		 : NULL;
	json_decref(data);
	if (!j) {
		s->failed = true;
		return;
	}
	if (name) {
		sse_raw(s, "event: ", 7);
		sse_raw(s, name, strlen(name));
		sse_raw(s, "\n", 1);
	}
	sse_raw(s, "data: ", 6);
	sse_raw(s, j, strlen(j));
	sse_raw(s, "\n\n", 2);
	free(j);
	sse_end_event(s);
}

static void sse_done(struct sse *s)
{
	if (s->fail_at >= 0 && s->events == (size_t)s->fail_at)
		sse_error_event(s);
	if (s->stopped)
		return;
	sse_raw(s, "data: [DONE]\n\n", 14);
	sse_end_event(s);
}

/* Sends the stream with the call's knobs; frees s's buffers. */
static void reply_sse(struct call *c, struct sse *s)
{
	size_t *ends = s->ends, nends = s->nends, drop_at = SIZE_MAX;

	if (s->failed) {
		free(s->bytes);
		free(s->ends);
		evhttp_send_error(c->req, 500, NULL);
		return;
	}
	if (c->k.drop_after >= 0)
		drop_at = (size_t)c->k.drop_after < nends
			      ? (c->k.drop_after ? ends[c->k.drop_after - 1] : 0)
			      : SIZE_MAX;
	if (c->k.chunk_bytes) {
		nends = (s->len + c->k.chunk_bytes - 1) / c->k.chunk_bytes;
		ends = calloc(nends ? nends : 1, sizeof(*ends));
		if (!ends) {
			free(s->bytes);
			free(s->ends);
			evhttp_send_error(c->req, 500, NULL);
			return;
		}
		for (size_t i = 0; i < nends; i++)
			ends[i] = (i + 1) * c->k.chunk_bytes < s->len ? (i + 1) * c->k.chunk_bytes
								      : s->len;
		free(s->ends);
	}
	common_headers(c, "text/event-stream; charset=utf-8");
	add_header(c->req, "Cache-Control", "no-cache");
	reply_later(c, 200, true, s->bytes, s->len, ends, nends, drop_at);
}

/* --- content filter annotations --------------------------------------------------- */

static bool annotate(const struct call *c)
{
	return c->k.cf == CF_ANNOTATE || c->k.cf == CF_COMPLETION ||
	       (c->k.cf == CF_DEFAULT && c->azure);
}

static json_t *cf_severity(const char *severity, bool filtered)
{
	return json_pack("{s:b, s:s}", "filtered", filtered, "severity", severity);
}

static json_t *cf_detect(void)
{
	return json_pack("{s:b, s:b}", "filtered", 0, "detected", 0);
}

/* Azure's annotations of a prompt (with jailbreak) or of output. */
static json_t *cf_results(bool prompt, const char *sexual, bool sexual_filtered)
{
	json_t *r = json_object();

	json_object_set_new(r, "hate", cf_severity("safe", false));
	if (prompt)
		json_object_set_new(r, "jailbreak", cf_detect());
	json_object_set_new(r, "self_harm", cf_severity("safe", false));
	json_object_set_new(r, "sexual", cf_severity(sexual, sexual_filtered));
	json_object_set_new(r, "violence", cf_severity("safe", false));
	return r;
}

static json_t *prompt_filter_results(void)
{
	return json_pack("[{s:i, s:o}]", "prompt_index", 0, "content_filter_results",
			 cf_results(true, "safe", false));
}

/* Azure's 400 for a prompt its filter refused. */
static void reply_prompt_filtered(struct call *c)
{
	json_t *inner = json_pack("{s:s, s:o}", "code", "ResponsibleAIPolicyViolation",
				  "content_filter_result", cf_results(true, "high", true));
	json_t *e = json_pack(
	    "{s:{s:s, s:n, s:s, s:s, s:i, s:o}}", "error", "message",
	    "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry. To learn more about our content filtering policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766",
	    "type", "param", "prompt", "code", "content_filter", "status", 400, "innererror",
	    inner);

	reply_json(c, 400, e);
}

/* --- the reply text ------------------------------------------------------------------ */

struct answer {
	const char *text;
	struct toks t;
	size_t n;		   /* tokens sent */
	const char *finish_reason; /* stop | length | content_filter */
	size_t prompt;
};

/* Cuts the reply at max (if > 0) and at a completion filter. */
static void answer_init(struct call *c, struct answer *a, const json_t *max_v, size_t prompt)
{
	json_int_t max = json_is_integer(max_v) ? json_integer_value(max_v) : 0;

	a->text = c->k.reply;
	tokenize(a->text, strlen(a->text), &a->t);
	a->n = a->t.n;
	a->finish_reason = "stop";
	a->prompt = prompt;
	if (c->k.cf == CF_COMPLETION) {
		a->n /= 2;
		a->finish_reason = "content_filter";
	}
	if (max > 0 && (size_t)max < a->n) {
		a->n = (size_t)max;
		a->finish_reason = "length";
	}
}

/* The first n tokens' text. Caller frees. */
static char *answer_text(const struct answer *a)
{
	size_t end = a->n ? a->t.off[a->n - 1] + a->t.len[a->n - 1] : 0;

	return strndup(a->text, end);
}

static json_t *token_string(const struct answer *a, size_t i)
{
	return json_stringn(a->text + a->t.off[i], a->t.len[i]);
}

static json_t *chat_usage(const struct answer *a, bool details)
{
	json_t *u = json_pack("{s:I, s:I, s:I}", "prompt_tokens", (json_int_t)a->prompt,
			      "completion_tokens", (json_int_t)a->n, "total_tokens",
			      (json_int_t)(a->prompt + a->n));

	if (details) {
		json_object_set_new(u, "prompt_tokens_details",
				    json_pack("{s:i, s:i}", "cached_tokens", 0, "audio_tokens", 0));
		json_object_set_new(u, "completion_tokens_details",
				    json_pack("{s:i, s:i, s:i, s:i}", "reasoning_tokens", 0,
					      "audio_tokens", 0, "accepted_prediction_tokens", 0,
					      "rejected_prediction_tokens", 0));
	}
	return u;
}

static bool wants_usage(struct call *c)
{
	const json_t *opts = json_object_get(c->body, "stream_options");

	return !c->k.omit_usage && json_is_true(json_object_get(opts, "include_usage"));
}

static const char *model_of(struct call *c)
{
	return json_string_value(json_object_get(c->body, "model"));
}

/* --- /v1/chat/completions ------------------------------------------------------------ */

static json_t *chat_choice_filter(struct call *c, const char *sexual, bool filtered)
{
	return annotate(c) ? cf_results(false, sexual, filtered) : NULL;
}

static void chat_body(struct call *c, struct answer *a, const char *id)
{
	char *text = answer_text(a);
	json_t *msg = json_pack("{s:s, s:s?, s:n, s:[]}", "role", "assistant", "content", text,
				"refusal", "annotations");
	json_t *choice = json_pack("{s:i, s:o, s:n, s:s}", "index", 0, "message", msg, "logprobs",
				   "finish_reason", a->finish_reason);
	json_t *body;

	free(text);
	if (annotate(c))
		json_object_set_new(choice, "content_filter_results",
				    c->k.cf == CF_COMPLETION ? cf_results(false, "medium", true)
							     : cf_results(false, "safe", false));
	body =
	    json_pack("{s:s, s:s, s:I, s:s, s:[o]}", "id", id, "object", "chat.completion",
		      "created", (json_int_t)c->created, "model", model_of(c), "choices", choice);
	if (annotate(c))
		json_object_set_new(body, "prompt_filter_results", prompt_filter_results());
	if (!c->k.omit_usage)
		json_object_set_new(body, "usage", chat_usage(a, true));
	if (!c->azure)
		json_object_set_new(body, "service_tier", json_string("default"));
	json_object_set_new(body, "system_fingerprint",
			    json_string(c->azure ? AZURE_FINGERPRINT : FINGERPRINT));
	reply_json(c, 200, body);
}

/* One chat.completion.chunk; steals choices. */
static json_t *chat_chunk(struct call *c, const char *id, json_t *choices, bool usage_null)
{
	json_t *j = json_pack("{s:s, s:s, s:I, s:s}", "id", id, "object", "chat.completion.chunk",
			      "created", (json_int_t)c->created, "model", model_of(c));

	if (!c->azure)
		json_object_set_new(j, "service_tier", json_string("default"));
	json_object_set_new(j, "system_fingerprint",
			    json_string(c->azure ? AZURE_FINGERPRINT : FINGERPRINT));
	json_object_set_new(j, "choices", choices);
	if (usage_null)
		json_object_set_new(j, "usage", json_null());
	return j;
}

static json_t *chat_delta_choice(struct call *c, json_t *delta, const char *finish, json_t *filter)
{
	json_t *ch = json_pack("{s:i, s:o, s:n, s:s?}", "index", 0, "delta", delta, "logprobs",
			       "finish_reason", finish);

	if (filter)
		json_object_set_new(ch, "content_filter_results", filter);
	return ch;
}

static void chat_stream(struct call *c, struct answer *a, const char *id)
{
	bool usage = wants_usage(c), az = c->azure;
	struct sse s = {.fail_at = c->k.stream_error};
	json_t *delta;

	if (annotate(c))
		sse_event(&s, NULL,
			  json_pack("{s:[], s:i, s:s, s:s, s:s, s:o}", "choices", "created", 0,
				    "id", "", "model", "", "object", "", "prompt_filter_results",
				    prompt_filter_results()),
			  az);
	delta = json_pack("{s:s, s:s, s:n}", "role", "assistant", "content", "", "refusal");
	sse_event(
	    &s, NULL,
	    chat_chunk(c, id,
		       json_pack("[o]", chat_delta_choice(c, delta, NULL,
							  annotate(c) ? json_object() : NULL)),
		       usage),
	    az);
	for (size_t i = 0; i < a->n; i++) {
		delta = json_pack("{s:o}", "content", token_string(a, i));
		sse_event(&s, NULL,
			  chat_chunk(c, id,
				     json_pack("[o]", chat_delta_choice(
							  c, delta, NULL,
							  chat_choice_filter(c, "safe", false))),
				     usage),
			  az);
	}
	sse_event(&s, NULL,
		  chat_chunk(c, id,
			     json_pack("[o]", chat_delta_choice(
						  c, json_object(), a->finish_reason,
						  c->k.cf == CF_COMPLETION
						      ? chat_choice_filter(c, "medium", true)
						      : (annotate(c) ? json_object() : NULL))),
			     usage),
		  az);
	if (usage) {
		json_t *j = chat_chunk(c, id, json_array(), false);

		json_object_set_new(j, "usage", chat_usage(a, true));
		sse_event(&s, NULL, j, az);
	}
	sse_done(&s);
	reply_sse(c, &s);
}

static void handle_chat(struct call *c)
{
	const json_t *messages = json_object_get(c->body, "messages");
	const json_t *max = json_object_get(c->body, "max_completion_tokens");
	struct answer *a;
	char id[64];

	if (!json_is_array(messages) || !json_array_size(messages)) {
		reply_error(c, 400, "Missing required parameter: 'messages'.",
			    "invalid_request_error", "messages", "missing_required_parameter");
		return;
	}
	a = malloc(sizeof(*a));
	if (!a) {
		evhttp_send_error(c->req, 500, NULL);
		return;
	}
	if (!json_is_integer(max))
		max = json_object_get(c->body, "max_tokens");
	answer_init(c, a, max, prompt_tokens(messages, NULL));
	make_id(id, sizeof(id), "chatcmpl-", 29, base62);
	if (json_is_true(json_object_get(c->body, "stream")))
		chat_stream(c, a, id);
	else
		chat_body(c, a, id);
	free(a);
}

/* --- /v1/completions (legacy) ---------------------------------------------------------- */

static json_t *completion_choice(const char *text, size_t len, const char *finish)
{
	return json_pack("{s:s%, s:i, s:n, s:s?}", "text", text, len, "index", 0, "logprobs",
			 "finish_reason", finish);
}

static json_t *completion_obj(struct call *c, const char *id, json_t *choices)
{
	return json_pack("{s:s, s:s, s:I, s:s, s:o}", "id", id, "object", "text_completion",
			 "created", (json_int_t)c->created, "model", model_of(c), "choices",
			 choices);
}

static void handle_completions(struct call *c)
{
	const json_t *prompt = json_object_get(c->body, "prompt");
	struct answer *a = malloc(sizeof(*a));
	size_t ptoks = 0, i;
	json_t *v;
	char id[64];

	if (!a) {
		evhttp_send_error(c->req, 500, NULL);
		return;
	}
	if (json_is_array(prompt) && json_array_size(prompt) &&
	    !json_is_integer(json_array_get(prompt, 0))) {
		json_array_foreach(prompt, i, v)
		{
			ptoks += input_tokens(v);
		}
	} else {
		ptoks = input_tokens(prompt);
	}
	answer_init(c, a, json_object_get(c->body, "max_tokens"), ptoks);
	make_id(id, sizeof(id), "cmpl-", 29, base62);
	if (json_is_true(json_object_get(c->body, "stream"))) {
		struct sse s = {.fail_at = c->k.stream_error};

		for (size_t t = 0; t < a->n; t++) {
			sse_event(
			    &s, NULL,
			    completion_obj(c, id,
					   json_pack("[o]", completion_choice(a->text + a->t.off[t],
									      a->t.len[t], NULL))),
			    c->azure);
		}
		sse_event(&s, NULL,
			  completion_obj(
			      c, id, json_pack("[o]", completion_choice("", 0, a->finish_reason))),
			  c->azure);
		if (wants_usage(c)) {
			json_t *j = completion_obj(c, id, json_array());

			json_object_set_new(j, "usage", chat_usage(a, false));
			sse_event(&s, NULL, j, c->azure);
		}
		sse_done(&s);
		reply_sse(c, &s);
	} else {
		char *text = answer_text(a);
		json_t *body = completion_obj(
		    c, id,
		    json_pack("[o]", completion_choice(text, strlen(text), a->finish_reason)));

		free(text);
		if (!c->k.omit_usage)
			json_object_set_new(body, "usage", chat_usage(a, false));
		reply_json(c, 200, body);
	}
	free(a);
}

/* --- /v1/responses ------------------------------------------------------------------ */

static json_t *or_default(struct call *c, const char *key, json_t *def)
{
	json_t *v = json_object_get(c->body, key);

	if (v) {
		json_decref(def);
		return json_incref(v);
	}
	return def;
}

static json_t *resp_text_part(const char *text)
{
	return json_pack("{s:s, s:[], s:[], s:s}", "type", "output_text", "annotations", "logprobs",
			 "text", text);
}

static json_t *resp_message(const char *msg_id, const char *status, json_t *content)
{
	return json_pack("{s:s, s:s, s:s, s:o, s:s}", "id", msg_id, "type", "message", "status",
			 status, "content", content, "role", "assistant");
}

/* The response object; steals output and usage (NULL: null). */
static json_t *resp_object(struct call *c, const char *id, const char *status,
			   const char *incomplete, json_t *output, json_t *usage)
{
	json_t *r = json_pack("{s:s, s:s, s:I, s:s, s:b, s:n}", "id", id, "object", "response",
			      "created_at", (json_int_t)c->created, "status", status, "background",
			      0, "error");

	json_object_set_new(r, "incomplete_details",
			    incomplete ? json_pack("{s:s}", "reason", incomplete) : json_null());
	json_object_set_new(r, "instructions", or_default(c, "instructions", json_null()));
	json_object_set_new(r, "max_output_tokens",
			    or_default(c, "max_output_tokens", json_null()));
	json_object_set_new(r, "max_tool_calls", or_default(c, "max_tool_calls", json_null()));
	json_object_set_new(r, "model", json_string(model_of(c)));
	json_object_set_new(r, "output", output);
	json_object_set_new(r, "parallel_tool_calls",
			    or_default(c, "parallel_tool_calls", json_true()));
	json_object_set_new(r, "previous_response_id",
			    or_default(c, "previous_response_id", json_null()));
	json_object_set_new(r, "prompt_cache_key", or_default(c, "prompt_cache_key", json_null()));
	json_object_set_new(
	    r, "reasoning",
	    or_default(c, "reasoning", json_pack("{s:n, s:n}", "effort", "summary")));
	json_object_set_new(r, "safety_identifier",
			    or_default(c, "safety_identifier", json_null()));
	json_object_set_new(r, "service_tier", json_string("default"));
	json_object_set_new(r, "store", or_default(c, "store", json_true()));
	json_object_set_new(r, "temperature", or_default(c, "temperature", json_real(1.0)));
	json_object_set_new(r, "text",
			    or_default(c, "text",
				       json_pack("{s:{s:s}, s:s}", "format", "type", "text",
						 "verbosity", "medium")));
	json_object_set_new(r, "tool_choice", or_default(c, "tool_choice", json_string("auto")));
	json_object_set_new(r, "tools", or_default(c, "tools", json_array()));
	json_object_set_new(r, "top_logprobs", or_default(c, "top_logprobs", json_integer(0)));
	json_object_set_new(r, "top_p", or_default(c, "top_p", json_real(1.0)));
	json_object_set_new(r, "truncation", or_default(c, "truncation", json_string("disabled")));
	json_object_set_new(r, "usage", usage ? usage : json_null());
	json_object_set_new(r, "user", or_default(c, "user", json_null()));
	json_object_set_new(r, "metadata", or_default(c, "metadata", json_object()));
	return r;
}

static json_t *resp_usage(const struct answer *a)
{
	return json_pack("{s:I, s:{s:i}, s:I, s:{s:i}, s:I}", "input_tokens", (json_int_t)a->prompt,
			 "input_tokens_details", "cached_tokens", 0, "output_tokens",
			 (json_int_t)a->n, "output_tokens_details", "reasoning_tokens", 0,
			 "total_tokens", (json_int_t)(a->prompt + a->n));
}

/* "type" first, then "sequence_number", then the rest. Steals rest. */
static json_t *resp_event(const char *type, size_t seq, json_t *rest)
{
	json_t *e = json_pack("{s:s, s:I}", "type", type, "sequence_number", (json_int_t)seq);

	json_object_update(e, rest);
	json_decref(rest);
	return e;
}

static void handle_responses(struct call *c)
{
	const char *instructions = json_string_value(json_object_get(c->body, "instructions"));
	struct answer *a = malloc(sizeof(*a));
	const char *status, *item_status, *incomplete = NULL;
	char id[64], msg_id[64], *text;

	if (!a) {
		evhttp_send_error(c->req, 500, NULL);
		return;
	}
	answer_init(c, a, json_object_get(c->body, "max_output_tokens"),
		    prompt_tokens(json_object_get(c->body, "input"), instructions));
	if (strcmp(a->finish_reason, "stop") == 0) {
		status = "completed";
	} else {
		status = "incomplete";
		incomplete = strcmp(a->finish_reason, "length") == 0 ? "max_output_tokens"
								     : "content_filter";
	}
	item_status = incomplete ? "incomplete" : "completed";
	make_id(id, sizeof(id), "resp_", 48, hex);
	make_id(msg_id, sizeof(msg_id), "msg_", 48, hex);
	text = answer_text(a);
	if (json_is_true(json_object_get(c->body, "stream"))) {
		struct sse s = {.fail_at = c->k.stream_error, .responses = true};
		const char *done_type = incomplete ? "response.incomplete" : "response.completed";

#define EVENT(type, rest) sse_event(&s, type, resp_event(type, s.events, rest), false)
		EVENT("response.created",
		      json_pack("{s:o}", "response",
				resp_object(c, id, "in_progress", NULL, json_array(), NULL)));
		EVENT("response.in_progress",
		      json_pack("{s:o}", "response",
				resp_object(c, id, "in_progress", NULL, json_array(), NULL)));
		EVENT("response.output_item.added",
		      json_pack("{s:i, s:o}", "output_index", 0, "item",
				resp_message(msg_id, "in_progress", json_array())));
		EVENT("response.content_part.added",
		      json_pack("{s:s, s:i, s:i, s:o}", "item_id", msg_id, "output_index", 0,
				"content_index", 0, "part", resp_text_part("")));
		for (size_t i = 0; i < a->n; i++) {
			EVENT("response.output_text.delta",
			      json_pack("{s:s, s:i, s:i, s:o, s:[]}", "item_id", msg_id,
					"output_index", 0, "content_index", 0, "delta",
					token_string(a, i), "logprobs"));
		}
		EVENT("response.output_text.done",
		      json_pack("{s:s, s:i, s:i, s:s, s:[]}", "item_id", msg_id, "output_index", 0,
				"content_index", 0, "text", text, "logprobs"));
		EVENT("response.content_part.done",
		      json_pack("{s:s, s:i, s:i, s:o}", "item_id", msg_id, "output_index", 0,
				"content_index", 0, "part", resp_text_part(text)));
		EVENT("response.output_item.done",
		      json_pack("{s:i, s:o}", "output_index", 0, "item",
				resp_message(msg_id, item_status,
					     json_pack("[o]", resp_text_part(text)))));
		EVENT(done_type,
		      json_pack("{s:o}", "response",
				resp_object(
				    c, id, status, incomplete,
				    json_pack("[o]",
					      resp_message(msg_id, item_status,
							   json_pack("[o]", resp_text_part(text)))),
				    c->k.omit_usage ? NULL : resp_usage(a))));
#undef EVENT
		reply_sse(c, &s);
	} else {
		json_t *output =
		    json_pack("[o]", resp_message(msg_id, item_status,
						  json_pack("[o]", resp_text_part(text))));

		reply_json(c, 200,
			   resp_object(c, id, status, incomplete, output,
				       c->k.omit_usage ? NULL : resp_usage(a)));
	}
	free(text);
	free(a);
}

/* --- /v1/embeddings --------------------------------------------------------------- */

static json_t *embedding(const json_t *input, size_t dims, bool base64)
{
	char *key = json_dumps(input, JSON_ENCODE_ANY | JSON_COMPACT);
	uint64_t x = 0xcbf29ce484222325ull;
	float *v = calloc(dims, sizeof(*v));
	double norm = 0;
	json_t *out = NULL;

	if (!key || !v)
		goto cleanup;
	for (const char *p = key; *p; p++)
		x = (x ^ (unsigned char)*p) * 0x100000001b3ull;
	for (size_t i = 0; i < dims; i++) {
		v[i] = (float)((int64_t)(splitmix(&x) >> 11) - (1ll << 52)) / (float)(1ll << 52);
		norm += (double)v[i] * v[i];
	}
	norm = norm > 0 ? 1.0 / sqrt(norm) : 1;
	for (size_t i = 0; i < dims; i++)
		v[i] = (float)(v[i] * norm);
	if (base64) { /* float32, little-endian, as the real API sends them */
		size_t n = dims * sizeof(float);
		unsigned char *b = malloc(4 * ((n + 2) / 3) + 1);

		if (!b)
			goto cleanup;
		EVP_EncodeBlock(b, (const unsigned char *)v, (int)n);
		out = json_string((const char *)b);
		free(b);
	} else {
		out = json_array();
		for (size_t i = 0; out && i < dims; i++)
			json_array_append_new(out, json_real(v[i]));
	}
cleanup:
	free(key);
	free(v);
	return out;
}

static void handle_embeddings(struct call *c)
{
	const json_t *input = json_object_get(c->body, "input");
	const json_t *dims_v = json_object_get(c->body, "dimensions");
	const char *format = json_string_value(json_object_get(c->body, "encoding_format"));
	const char *model = model_of(c);
	size_t dims = strstr(model, "large") ? 3072 : DEFAULT_DIMENSIONS, ntok = 0, i;
	bool base64 = format && strcmp(format, "base64") == 0;
	json_t *data = json_array(), *v, *body;
	bool list;

	if (!input || json_is_null(input) ||
	    (json_is_string(input) && !*json_string_value(input))) {
		json_decref(data);
		reply_error(
		    c, 400,
		    "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
		    "invalid_request_error", NULL, NULL);
		return;
	}
	if (json_is_integer(dims_v) && json_integer_value(dims_v) >= 1 &&
	    json_integer_value(dims_v) <= 3072)
		dims = (size_t)json_integer_value(dims_v);
	/* a list of strings or of token lists is several inputs */
	list = json_is_array(input) && json_array_size(input) &&
	       !json_is_integer(json_array_get(input, 0));
	for (i = 0; i < (list ? json_array_size(input) : 1); i++) {
		v = list ? json_array_get(input, i) : (json_t *)input;
		ntok += input_tokens(v);
		json_array_append_new(data, json_pack("{s:s, s:I, s:o}", "object", "embedding",
						      "index", (json_int_t)i, "embedding",
						      embedding(v, dims, base64)));
	}
	body = json_pack("{s:s, s:o, s:s, s:{s:I, s:I}}", "object", "list", "data", data, "model",
			 model, "usage", "prompt_tokens", (json_int_t)ntok, "total_tokens",
			 (json_int_t)ntok);
	reply_json(c, 200, body);
}

/* --- /v1/models ------------------------------------------------------------------------- */

static const struct {
	const char *id;
	long long created;
	const char *owned_by;
} models[] = {
    {"gpt-4o-mini", 1721172741, "system"},
    {"gpt-4o", 1715367049, "system"},
    {"gpt-4.1", 1744316542, "system"},
    {"o4-mini", 1744225351, "system"},
    {"gpt-3.5-turbo-instruct", 1692901427, "system"},
    {"text-embedding-3-small", 1705948997, "system"},
    {"text-embedding-3-large", 1705953180, "system"},
};

static json_t *model_obj(size_t i)
{
	return json_pack("{s:s, s:s, s:I, s:s}", "id", models[i].id, "object", "model", "created",
			 (json_int_t)models[i].created, "owned_by", models[i].owned_by);
}

static void handle_models(struct call *c, const char *one)
{
	json_t *data;
	char msg[256];

	for (size_t i = 0; one && i < sizeof(models) / sizeof(models[0]); i++) {
		if (strcmp(one, models[i].id) == 0) {
			reply_json(c, 200, model_obj(i));
			return;
		}
	}
	if (one) {
		snprintf(msg, sizeof(msg), "The model '%.128s' does not exist", one);
		reply_error(c, 404, msg, "invalid_request_error", "model", "model_not_found");
		return;
	}
	data = json_array();
	for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++)
		json_array_append_new(data, model_obj(i));
	reply_json(c, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
}

/* --- requests ------------------------------------------------------------------------- */

static const char *method_name(enum evhttp_cmd_type m)
{
	switch (m) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	case EVHTTP_REQ_HEAD:
		return "HEAD";
	case EVHTTP_REQ_PATCH:
		return "PATCH";
	case EVHTTP_REQ_OPTIONS:
		return "OPTIONS";
	default:
		return "OTHER";
	}
}

/* Keeps the request as JSON for /_fake/last-request and --record. */
static void record(struct evhttp_request *req, const char *body, size_t len)
{
	struct evkeyvalq *hdrs = evhttp_request_get_input_headers(req);
	json_t *rec, *headers = json_array(), *b;
	struct evkeyval *h;
	char *s;

	TAILQ_FOREACH(h, hdrs, next)
	{
		json_array_append_new(headers, json_pack("[s, s]", h->key, h->value));
	}
	b = json_stringn(body, len);
	rec = json_pack("{s:I, s:s, s:s, s:o}", "seq", (json_int_t)++fake.requests, "method",
			method_name(evhttp_request_get_command(req)), "uri",
			evhttp_request_get_uri(req), "headers", headers);
	if (!rec) {
		json_decref(b);
		return;
	}
	if (b) {
		json_object_set_new(rec, "body", b);
	} else { /* not UTF-8: keep it as base64 */
		unsigned char *enc = malloc(4 * ((len + 2) / 3) + 1);

		if (enc) {
			EVP_EncodeBlock(enc, (const unsigned char *)body, (int)len);
			json_object_set_new(rec, "body_base64", json_string((const char *)enc));
			free(enc);
		}
	}
	json_decref(fake.last);
	fake.last = rec;
	if (fake.record_path && (s = json_dumps(rec, JSON_INDENT(2)))) {
		if (write_file(fake.record_path, s, strlen(s)))
			fprintf(stderr, "fake-upstream: cannot write %s\n", fake.record_path);
		free(s);
	}
}

static int parse_cf(const char *s, enum cf_mode *out)
{
	static const char *const names[] = {[CF_NONE] = "none",
					    [CF_ANNOTATE] = "annotate",
					    [CF_COMPLETION] = "completion",
					    [CF_PROMPT] = "prompt"};

	for (int i = CF_NONE; i <= CF_PROMPT; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = i;
			return 0;
		}
	}
	return -EINVAL;
}

/* A knob's value: the x-fake-* request header, or else the same key in the
 * body's "metadata" object. Clients send metadata as it is and a router
 * forwards bodies untouched, while it rightly drops unknown headers: so a
 * test through kars-router sets its knobs in metadata. */
static const char *knob(struct call *c, const json_t *meta, const char *name)
{
	const char *v = header(c->req, name);

	return v ? v : json_string_value(json_object_get(meta, name));
}

/* Is name one of the comma-separated entries of list? */
static bool listed(const char *list, const char *name)
{
	size_t n = name ? strlen(name) : 0;

	for (const char *p = list; name && *p;) {
		size_t len = strcspn(p, ",");

		if (len == n && strncmp(p, name, n) == 0)
			return true;
		p += len;
		p += *p == ',';
	}
	return false;
}

/* The call's knobs: the flags, overridden by x-fake-* headers or metadata. */
static int read_knobs(struct call *c, const json_t *meta, const char *model, struct kars_err *err)
{
	const char *v;
	uint64_t n;
	int ret = 0;

	c->k = fake.defaults;
	if ((v = knob(c, meta, "x-fake-status")) &&
	    !(ret = kars_parse_u64(v, 400, 599, &n, "x-fake-status", err)))
		c->k.status = (int)n;
	if (!ret && (v = knob(c, meta, "x-fake-content-filter")) && parse_cf(v, &c->k.cf))
		ret = kars_err_set(
		    err, EINVAL,
		    "x-fake-content-filter: expected none, annotate, completion or prompt");
	if (!ret && (v = knob(c, meta, "x-fake-delay-ms")) &&
	    !(ret = kars_parse_u64(v, 0, 60000, &n, "x-fake-delay-ms", err)))
		c->k.delay_ms = (unsigned)n;
	if (!ret && (v = knob(c, meta, "x-fake-chunk-bytes")) &&
	    !(ret = kars_parse_u64(v, 1, 1 << 20, &n, "x-fake-chunk-bytes", err)))
		c->k.chunk_bytes = n;
	if (!ret && (v = knob(c, meta, "x-fake-drop-after")) &&
	    !(ret = kars_parse_u64(v, 0, 1 << 20, &n, "x-fake-drop-after", err)))
		c->k.drop_after = (long)n;
	if (!ret && (v = knob(c, meta, "x-fake-stream-error")) &&
	    !(ret = kars_parse_u64(v, 0, 1 << 20, &n, "x-fake-stream-error", err)))
		c->k.stream_error = (long)n;
	if (!ret && (v = knob(c, meta, "x-fake-omit-usage")))
		c->k.omit_usage = strcmp(v, "0") != 0;
	if (!ret && (v = knob(c, meta, "x-fake-reply")))
		c->k.reply = v;
	if (!ret && strlen(c->k.reply) > 16384)
		ret = kars_err_set(err, EINVAL, "x-fake-reply: longer than 16384 bytes");
	if (!ret && (v = knob(c, meta, "x-fake-only-models")) && !listed(v, model)) {
		c->k.status = fake.defaults.status;
		c->k.drop_after = fake.defaults.drop_after;
		c->k.stream_error = fake.defaults.stream_error;
		c->k.cf = fake.defaults.cf;
	}
	return ret;
}

/* With --api-key, the key is required as the real services want it. */
static bool authorised(struct call *c)
{
	const char *auth = header(c->req, "authorization"), *key = header(c->req, "api-key");
	size_t n = fake.api_key ? strlen(fake.api_key) : 0;

	if (!fake.api_key)
		return true;
	if (auth && strncmp(auth, "Bearer ", 7) == 0 && strlen(auth + 7) == n &&
	    memcmp(auth + 7, fake.api_key, n) == 0)
		return true;
	if (c->azure && key && strcmp(key, fake.api_key) == 0)
		return true;
	if (c->azure) {
		reply_json(
		    c, 401,
		    json_pack(
			"{s:{s:s, s:s}}", "error", "code", "401", "message",
			"Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."));
	} else if (!auth) {
		reply_error(
		    c, 401,
		    "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.",
		    "invalid_request_error", NULL, NULL);
	} else {
		reply_status(c, 401);
	}
	return false;
}

static void handle(struct evhttp_request *req, void *arg)
{
	enum evhttp_cmd_type method = evhttp_request_get_command(req);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *raw = len ? (const char *)evbuffer_pullup(in, -1) : "";
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	struct call c = {.req = req, .created = now_created()};
	struct kars_err err = {0};
	json_t *body_json;
	int ret;
	json_error_t jerr;
	char msg[512];

	if (!path)
		path = "/";
	if (strcmp(path, "/_fake/last-request") == 0 && method == EVHTTP_REQ_GET) {
		c.k = fake.defaults;
		c.k.delay_ms = 0;
		c.k.drop_after = -1;
		if (!fake.last)
			reply_error(&c, 404, "No request yet.", "invalid_request_error", NULL,
				    NULL);
		else
			reply_json(&c, 200, json_incref(fake.last));
		return;
	}
	record(req, raw, len);
	if (fake.verbose)
		fprintf(stderr, "fake-upstream: %s %s\n", method_name(method),
			evhttp_request_get_uri(req));
	c.azure = strncmp(path, "/openai/v1/", 11) == 0;
	c.path = c.azure ? path + 7 : path;
	body_json = len ? json_loadb(raw, len, 0, NULL) : NULL;
	ret = read_knobs(&c, json_object_get(body_json, "metadata"),
			 json_string_value(json_object_get(body_json, "model")), &err);
	/* body_json stays until the end: knobs from metadata point into it. */
	if (ret) {
		c.k = fake.defaults;
		c.k.delay_ms = 0;
		c.k.drop_after = -1;
		reply_error(&c, 400, err.msg, "invalid_request_error", NULL, NULL);
		goto cleanup;
	}
	if (!authorised(&c))
		goto cleanup;
	if (method == EVHTTP_REQ_GET && strcmp(c.path, "/v1/models") == 0) {
		handle_models(&c, NULL);
		goto cleanup;
	}
	if (method == EVHTTP_REQ_GET && strncmp(c.path, "/v1/models/", 11) == 0) {
		handle_models(&c, c.path + 11);
		goto cleanup;
	}
	if (method != EVHTTP_REQ_POST ||
	    (strcmp(c.path, "/v1/chat/completions") && strcmp(c.path, "/v1/completions") &&
	     strcmp(c.path, "/v1/responses") && strcmp(c.path, "/v1/embeddings"))) {
		snprintf(msg, sizeof(msg), "Invalid URL (%s %.400s)", method_name(method), path);
		reply_error(&c, 404, msg, "invalid_request_error", NULL, NULL);
		goto cleanup;
	}
	if (c.k.status) {
		reply_status(&c, c.k.status);
		goto cleanup;
	}
	c.body = json_loadb(raw, len, 0, &jerr);
	if (!json_is_object(c.body)) {
		reply_error(
		    &c, 400,
		    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)",
		    "invalid_request_error", NULL, NULL);
		goto cleanup;
	}
	if (!json_is_string(json_object_get(c.body, "model"))) {
		reply_error(&c, 400, "you must provide a model parameter", "invalid_request_error",
			    NULL, NULL);
		goto cleanup;
	}
	if (c.k.cf == CF_PROMPT) {
		reply_prompt_filtered(&c);
		goto cleanup;
	}
	if (strcmp(c.path, "/v1/chat/completions") == 0)
		handle_chat(&c);
	else if (strcmp(c.path, "/v1/completions") == 0)
		handle_completions(&c);
	else if (strcmp(c.path, "/v1/responses") == 0)
		handle_responses(&c);
	else
		handle_embeddings(&c);
cleanup:
	json_decref(c.body);
	json_decref(body_json);
}

/* --- main ------------------------------------------------------------------------------ */

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	event_base_loopexit(fake.base, NULL);
}

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: fake-upstream --listen ADDR:PORT [--port-file FILE] [--record FILE]\n"
	    "                     [--api-key KEY] [--status N] [--content-filter MODE]\n"
	    "                     [--delay-ms N] [--chunk-bytes N] [--drop-after N]\n"
	    "                     [--stream-error N] [--reply TEXT] [--created EPOCH] [--verbose]\n"
	    "Serves /v1/{chat/completions,completions,responses,embeddings,models} and\n"
	    "/openai/v1/... in the real wire format. PORT 0 picks a free port; --port-file\n"
	    "receives it. Flags set defaults for the x-fake-* request headers.\n");
}

/* "127.0.0.1:8080", "[::1]:0" -> host (in buf) and port. */
static int parse_listen(const char *s, char *host, size_t cap, uint16_t *port, struct kars_err *err)
{
	const char *colon = strrchr(s, ':');
	size_t n;

	if (!colon || colon == s)
		return kars_err_set(err, EINVAL, "--listen: expected ADDR:PORT, got \"%s\"", s);
	n = (size_t)(colon - s);
	if (s[0] == '[' && n >= 2 && s[n - 1] == ']') {
		s++;
		n -= 2;
	}
	if (n >= cap)
		return kars_err_set(err, EINVAL, "--listen: address too long");
	memcpy(host, s, n);
	host[n] = '\0';
	if (!strcmp(colon + 1, "0")) {
		*port = 0;
		return 0;
	}
	return kars_parse_port(colon + 1, port, "--listen port", err);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"port-file", required_argument, NULL, 'p'},
	    {"record", required_argument, NULL, 'r'},
	    {"api-key", required_argument, NULL, 'k'},
	    {"status", required_argument, NULL, 's'},
	    {"content-filter", required_argument, NULL, 'f'},
	    {"delay-ms", required_argument, NULL, 'd'},
	    {"chunk-bytes", required_argument, NULL, 'c'},
	    {"drop-after", required_argument, NULL, 'x'},
	    {"stream-error", required_argument, NULL, 'e'},
	    {"reply", required_argument, NULL, 'R'},
	    {"created", required_argument, NULL, 'C'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	const char *listen = NULL, *port_file = NULL;
	struct evhttp_bound_socket *bound;
	struct event *sigterm = NULL, *sigint = NULL;
	struct evhttp *http = NULL;
	struct kars_err err = {0};
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	char host[256], portbuf[16];
	uint16_t port = 0, bound_port;
	uint64_t n;
	int opt, ret = 1;

	fake.created = -1;
	fake.defaults.reply = DEFAULT_REPLY;
	fake.defaults.drop_after = -1;
	fake.defaults.stream_error = -1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			listen = optarg;
			break;
		case 'p':
			port_file = optarg;
			break;
		case 'r':
			fake.record_path = optarg;
			break;
		case 'k':
			fake.api_key = optarg;
			break;
		case 's':
			if (!kars_parse_u64(optarg, 400, 599, &n, "--status", &err))
				fake.defaults.status = (int)n;
			break;
		case 'f':
			if (parse_cf(optarg, &fake.defaults.cf))
				kars_err_set(
				    &err, EINVAL,
				    "--content-filter: expected none, annotate, completion or prompt");
			break;
		case 'd':
			if (!kars_parse_u64(optarg, 0, 60000, &n, "--delay-ms", &err))
				fake.defaults.delay_ms = (unsigned)n;
			break;
		case 'c':
			if (!kars_parse_u64(optarg, 1, 1 << 20, &n, "--chunk-bytes", &err))
				fake.defaults.chunk_bytes = n;
			break;
		case 'x':
			if (!kars_parse_u64(optarg, 0, 1 << 20, &n, "--drop-after", &err))
				fake.defaults.drop_after = (long)n;
			break;
		case 'e':
			if (!kars_parse_u64(optarg, 0, 1 << 20, &n, "--stream-error", &err))
				fake.defaults.stream_error = (long)n;
			break;
		case 'R':
			fake.defaults.reply = optarg;
			break;
		case 'C':
			if (!kars_parse_u64(optarg, 0, INT64_MAX, &n, "--created", &err))
				fake.created = (long long)n;
			break;
		case 'v':
			fake.verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!err.code && (!listen || optind != argc))
		kars_err_set(&err, EINVAL, "--listen ADDR:PORT is required, and nothing else");
	if (!err.code)
		parse_listen(listen, host, sizeof(host), &port, &err);
	if (err.code) {
		fprintf(stderr, "fake-upstream: %s\n", err.msg);
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	fake.base = event_base_new();
	http = fake.base ? evhttp_new(fake.base) : NULL;
	if (!http) {
		fprintf(stderr, "fake-upstream: cannot create the event loop\n");
		goto cleanup;
	}
	evhttp_set_max_body_size(http, MAX_BODY);
	evhttp_set_timeout(http, 120);
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
					     EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH);
	evhttp_set_gencb(http, handle, NULL);
	bound = evhttp_bind_socket_with_handle(http, host, port);
	if (!bound) {
		fprintf(stderr, "fake-upstream: cannot listen on %s: %s\n", listen,
			strerror(errno));
		goto cleanup;
	}
	if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&ss, &sslen)) {
		fprintf(stderr, "fake-upstream: getsockname: %s\n", strerror(errno));
		goto cleanup;
	}
	bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						    : ((struct sockaddr_in *)&ss)->sin_port);
	snprintf(portbuf, sizeof(portbuf), "%u\n", bound_port);
	if (port_file && write_file(port_file, portbuf, strlen(portbuf))) {
		fprintf(stderr, "fake-upstream: cannot write %s\n", port_file);
		goto cleanup;
	}
	fprintf(stderr, "fake-upstream: listening on %s port %u\n", host, bound_port);
	sigterm = evsignal_new(fake.base, SIGTERM, on_signal, NULL);
	sigint = evsignal_new(fake.base, SIGINT, on_signal, NULL);
	if (!sigterm || !sigint || evsignal_add(sigterm, NULL) || evsignal_add(sigint, NULL)) {
		fprintf(stderr, "fake-upstream: cannot handle signals\n");
		goto cleanup;
	}
	ret = event_base_dispatch(fake.base) < 0;
cleanup:
	if (sigterm)
		event_free(sigterm);
	if (sigint)
		event_free(sigint);
	if (http)
		evhttp_free(http);
	if (fake.base)
		event_base_free(fake.base);
	json_decref(fake.last);
	return ret;
}
