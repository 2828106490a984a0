/* exchange.c - see exchange.h. */
#include "exchange.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "credentials.h"
#include "http_server.h"
#include "log.h"
#include "upstream_http.h"

#define MAX_RESPONSE_BODY (64u << 20)
#define MAX_EVENT_BYTES	  KARS_SSE_MAX_EVENT_DEFAULT
/* Backpressure: above this many bytes waiting for a slow agent the router
 * stops reading the upstream; it reads again once the agent has taken them
 * all (the low-water mark is 0: kars_hreq_on_drained). */
#define AGENT_HIGH_WATER (256u << 10)

/* A byte buffer, kept for the exchange. */
struct bytes {
	char *p;
	size_t len, cap;
};

/* Appends to *p (len, cap), growing it from first bytes by doubling. */
static int append(char **p, size_t *len, size_t *cap, size_t first, const void *data, size_t n)
{
	if (*len + n > *cap) {
		size_t c = *cap ? *cap : first;
		char *np;

		while (c < *len + n)
			c *= 2;
		np = realloc(*p, c);
		if (!np)
			return -1;
		*p = np;
		*cap = c;
	}
	memcpy(*p + *len, data, n);
	*len += n;
	return 0;
}

static int bytes_add(struct bytes *b, const void *data, size_t len)
{
	return append(&b->p, &b->len, &b->cap, 4096, data, len);
}

static int bytes_str(struct bytes *b, const char *s)
{
	return bytes_add(b, s, strlen(s));
}

enum relay_mode {
	RELAY_UNDECIDED = 0,
	RELAY_WHOLE,   /* read it all, then answer */
	RELAY_EVENTS,  /* SSE, event by event */
	RELAY_DISCARD, /* a failure we will fail over from */
};

struct exchange {
	struct kars_router *r;
	struct kars_hreq *req;
	enum kars_route route;
	struct kars_inference_policy *policy;
	json_t *body;
	char *raw; /* the agent's body as it came */
	size_t raw_len;
	bool body_changed;		       /* by a gate: raw is not what is sent */
	char raw_model[KARS_POLICY_MODEL_LEN]; /* the body's model ("" none) */
	uint8_t payload_sha256[32];
	bool has_payload;
	char item[KARS_POLICY_MODEL_LEN];
	char models[1 + KARS_POLICY_MAX_FALLBACKS][KARS_POLICY_MODEL_LEN];
	size_t n_models, attempt;
	bool stream, withhold_usage;
	uint64_t start_ns;
	char failures[256]; /* "gpt-4o: 503; gpt-4o-mini: timeout" */

	/* the attempt in progress */
	struct kars_credential_wait cred_wait;
	struct kars_uhttp_req *up;
	struct bytes headers; /* the request's header lines */
	char *wire;	      /* the body sent when a gate changed it */
	long status;
	enum relay_mode mode;
	bool started;		       /* the agent has the status line */
	struct bytes response_headers; /* "name\0value\0" pairs to forward */
	char content_type[128];
	struct bytes out;   /* bytes for the agent */
	struct bytes whole; /* RELAY_WHOLE */
	char *event;	    /* RELAY_EVENTS: bytes of events not yet whole */
	size_t event_len, event_cap, scan;
	bool scan_cr, scan_line_empty; /* scanner state at event[scan] */
	struct kars_sse_usage sse;
	bool sse_ready;
	bool paused;  /* the upstream is held back for a slow agent */
	bool blocked; /* the content floor stopped it */
	bool too_big;
	char reason[512];
};

/* The header lines hold the credential: wiped, not just freed. */
static void wipe_headers(struct exchange *x)
{
	if (x->headers.cap)
		explicit_bzero(x->headers.p, x->headers.cap);
	x->headers.len = 0;
}

static void attempt_reset(struct exchange *x)
{
	if (x->up)
		kars_uhttp_cancel(x->up);
	x->up = NULL;
	wipe_headers(x);
	free(x->wire);
	x->wire = NULL;
	x->response_headers.len = 0;
	x->content_type[0] = '\0';
	x->status = 0;
	x->mode = RELAY_UNDECIDED;
	x->whole.len = 0;
	x->event_len = x->scan = 0;
	x->scan_cr = false;
	x->scan_line_empty = true;
	if (x->sse_ready)
		kars_sse_usage_release(&x->sse);
	x->sse_ready = false;
	x->too_big = false;
}

static void exchange_free(struct exchange *x)
{
	struct kars_router *r = x->r;

	kars_credential_cancel(x->r->credential, &x->cred_wait);
	attempt_reset(x);
	free(x->headers.p);
	free(x->response_headers.p);
	free(x->out.p);
	free(x->whole.p);
	free(x->event);
	free(x->raw);
	json_decref(x->body);
	kars_inference_policy_unref(x->policy);
	free(x);
	kars_router_exchange_done(r);
}

static int status_class(long status)
{
	return status >= 100 && status < 600 ? (int)(status / 100) : 0;
}

static bool agent_connected(struct exchange *x)
{
	return kars_hreq_connected(x->req);
}

/* Response headers the agent gets back. */
static bool forward_response_header(const char *name)
{
	return !strcasecmp(name, "Content-Type") || !strcasecmp(name, "x-request-id") ||
	       !strcasecmp(name, "openai-processing-ms") || !strcasecmp(name, "Retry-After") ||
	       !strncasecmp(name, "x-ratelimit-", 12) || !strcasecmp(name, "apim-request-id");
}

static void on_header(void *arg, const char *name, const char *value)
{
	struct exchange *x = arg;

	if (!strcasecmp(name, "Content-Type"))
		snprintf(x->content_type, sizeof(x->content_type), "%s", value);
	if (forward_response_header(name) &&
	    (bytes_add(&x->response_headers, name, strlen(name) + 1) ||
	     bytes_add(&x->response_headers, value, strlen(value) + 1)))
		log_warn("out of memory for the upstream's %s header", name);
}

/* The upstream's headers the agent gets, on its answer. */
static void add_response_headers(struct exchange *x)
{
	const char *h = x->response_headers.p, *end = h + x->response_headers.len;

	while (h && h < end) {
		const char *value = h + strlen(h) + 1;

		kars_hreq_add_header(x->req, h, value);
		h = value + strlen(value) + 1;
	}
}

static void start_reply(struct exchange *x)
{
	add_response_headers(x);
	kars_hreq_reply_start(x->req, (int)x->status);
	x->started = true;
}

static bool retryable(long status)
{
	return status == 429 || status >= 500;
}

static bool can_fail_over(struct exchange *x)
{
	return x->attempt + 1 < x->n_models && !x->started && agent_connected(x);
}

static void decide_mode(struct exchange *x)
{
	if (retryable(x->status) && can_fail_over(x)) {
		x->mode = RELAY_DISCARD;
	} else if (x->status / 100 == 2 && x->stream &&
		   strncasecmp(x->content_type, "text/event-stream", 17) == 0) {
		x->mode = RELAY_EVENTS;
		kars_sse_usage_init(&x->sse, MAX_EVENT_BYTES);
		x->sse_ready = true;
	} else {
		x->mode = RELAY_WHOLE;
	}
}

/* Was this event the usage-only chunk ("choices": [] with "usage") that the
 * router asked for and the agent did not? */
static bool usage_only_chunk(const char *ev, size_t len)
{
	const char *data = memmem(ev, len, "data:", 5);
	bool only = false;
	json_t *root;

	if (!data)
		return false;
	data += 5;
	root = json_loadb(data, len - (size_t)(data - ev), JSON_DISABLE_EOF_CHECK, NULL);
	if (root) {
		const json_t *choices = json_object_get(root, "choices");

		only = json_is_array(choices) && json_array_size(choices) == 0 &&
		       json_is_object(json_object_get(root, "usage"));
	}
	json_decref(root);
	return only;
}

/* Handles one whole event (its bytes and the blank line after it). Returns
 * false when the stream must stop. */
static bool relay_event(struct exchange *x, const char *ev, size_t len)
{
	struct kars_err err = {0};
	bool had_usage = x->sse.usage.has_usage;

	if (kars_sse_usage_feed(&x->sse, ev, len, &err)) {
		/* What cannot be counted is not relayed. */
		snprintf(x->reason, sizeof(x->reason), "the upstream's stream is malformed: %.400s",
			 err.msg);
		x->blocked = true;
		return false;
	}
	if (x->policy && kars_inference_policy_blocks_content(x->policy, &x->sse.usage.filter,
							      x->reason, sizeof(x->reason))) {
		x->blocked = true;
		return false;
	}
	if (x->withhold_usage && !had_usage && x->sse.usage.has_usage && usage_only_chunk(ev, len))
		return true;
	if (!x->started)
		start_reply(x);
	if (bytes_add(&x->out, ev, len)) {
		snprintf(x->reason, sizeof(x->reason), "out of memory relaying the stream");
		return false;
	}
	return true;
}

static void resume_upstream(struct exchange *x)
{
	if (!x->paused)
		return;
	x->paused = false;
	kars_hreq_on_drained(x->req, NULL, NULL);
	if (x->up)
		kars_uhttp_pause(x->up, false);
}

/* The agent took everything queued for it, or hung up while the upstream
 * was held back: reading resumes (and then the next piece finds the agent
 * gone and stops the upstream too). */
static void on_agent_drained(void *arg)
{
	resume_upstream(arg);
}

/* Sends what is queued in x->out; past the high-water mark the upstream
 * waits until the agent has read it. */
static void flush_to_agent(struct exchange *x)
{
	if (!x->out.len)
		return;
	kars_hreq_reply_chunk(x->req, x->out.p, x->out.len);
	x->out.len = 0;
	if (kars_hreq_unsent(x->req) > AGENT_HIGH_WATER && !x->paused && x->up) {
		x->paused = true;
		kars_hreq_on_drained(x->req, on_agent_drained, x);
		kars_uhttp_pause(x->up, true);
	}
}

/* Cuts x->event into whole events (each ended by an empty line; lines end
 * with LF, CRLF or CR) and relays them. Returns false when the stream must
 * stop. */
static bool relay_events(struct exchange *x)
{
	size_t start = 0;

	for (size_t i = x->scan; i < x->event_len; i++) {
		char c = x->event[i];

		if (c == '\n' && x->scan_cr) {
			x->scan_cr = false; /* the LF of a CRLF: same line end */
			continue;
		}
		x->scan_cr = c == '\r';
		if (c != '\n' && c != '\r') {
			x->scan_line_empty = false;
			continue;
		}
		if (!x->scan_line_empty) {
			x->scan_line_empty = true;
			continue;
		}
		/* An empty line: the event ends here, with a CRLF's LF if it is
		 * already here (else it starts the next piece, harmlessly). */
		if (c == '\r' && i + 1 < x->event_len && x->event[i + 1] == '\n') {
			i++;
			x->scan_cr = false;
		}
		if (!relay_event(x, x->event + start, i + 1 - start))
			return false;
		start = i + 1;
	}
	memmove(x->event, x->event + start, x->event_len - start);
	x->event_len -= start;
	x->scan = x->event_len;
	if (x->event_len > MAX_EVENT_BYTES) {
		snprintf(x->reason, sizeof(x->reason),
			 "the upstream sent an event of more than %u bytes", MAX_EVENT_BYTES);
		x->blocked = true;
		return false;
	}
	flush_to_agent(x);
	return true;
}

static int append_event_bytes(struct exchange *x, const char *data, size_t len)
{
	return append(&x->event, &x->event_len, &x->event_cap, 16384, data, len);
}

static void on_head(void *arg, int status)
{
	struct exchange *x = arg;

	x->status = status;
	decide_mode(x);
}

static bool on_body(void *arg, const char *data, size_t len)
{
	struct exchange *x = arg;

	/* The agent went away: stop the upstream transfer too. */
	if (!agent_connected(x))
		return false;
	switch (x->mode) {
	case RELAY_DISCARD:
		return true;
	case RELAY_WHOLE:
		if (x->whole.len + len > MAX_RESPONSE_BODY) {
			x->too_big = true;
			return false;
		}
		return bytes_add(&x->whole, data, len) == 0;
	case RELAY_EVENTS:
		if (append_event_bytes(x, data, len))
			return false;
		return relay_events(x);
	case RELAY_UNDECIDED:
		break;
	}
	return false;
}

/* Request headers the agent may pass on; everything else is dropped. */
static bool forward_request_header(const char *name)
{
	return !strcasecmp(name, "Content-Type") || !strcasecmp(name, "Accept") ||
	       !strcasecmp(name, "OpenAI-Beta") || !strcasecmp(name, "User-Agent") ||
	       !strncasecmp(name, "X-Stainless-", 12);
}

static void on_done(void *arg, enum kars_uhttp_result result, const char *detail);

static const struct kars_uhttp_callbacks upstream_callbacks = {
    .on_header = on_header,
    .on_head = on_head,
    .on_body = on_body,
    .on_done = on_done,
};

/* The body this attempt sends: the agent's own bytes when no gate changed
 * them and the model is the one it named, else the edited JSON. */
static int attempt_body(struct exchange *x, const char **body, size_t *len)
{
	const char *model = x->n_models ? x->models[x->attempt] : NULL;

	*body = NULL;
	*len = 0;
	if (!x->body)
		return 0;
	if (!x->body_changed && (!model || !strcmp(model, x->raw_model))) {
		*body = x->raw;
		*len = x->raw_len;
		return 0;
	}
	if (model && json_object_set_new(x->body, "model", json_string(model)))
		return -1;
	x->wire = json_dumps(x->body, JSON_COMPACT);
	if (!x->wire)
		return -1;
	*body = x->wire;
	*len = strlen(x->wire);
	return 0;
}

static int build_transfer(struct exchange *x, const char *credential)
{
	const struct kars_router_route *route = &kars_router_routes[x->route];
	size_t n_headers = kars_hreq_header_count(x->req), len, need;
	const char *body, *name, *value;
	char path[1024];
	int rc = 0;

	snprintf(path, sizeof(path), "%s%s%s%s",
		 x->r->cfg.kind == KARS_UPSTREAM_AZURE ? "/openai/v1" : "", route->upstream_path,
		 x->item[0] ? "/" : "", x->item);
	if (attempt_body(x, &body, &len))
		return -1;
	/* Sized first, so that the credential is never left in a block that
	 * realloc() freed without wiping. */
	need = strlen(credential) + 3;
	for (size_t i = 0; i < n_headers; i++) {
		kars_hreq_header_at(x->req, i, &name, &value);
		if (forward_request_header(name))
			need += strlen(name) + strlen(value) + 4;
	}
	if (need > x->headers.cap) {
		wipe_headers(x);
		free(x->headers.p);
		x->headers.p = malloc(need);
		x->headers.cap = x->headers.p ? need : 0;
	}
	for (size_t i = 0; i < n_headers; i++) {
		/* The parser refused folded lines and control bytes; the check
		 * stays, so that no CR or LF can start a header of the agent's
		 * own upstream. */
		kars_hreq_header_at(x->req, i, &name, &value);
		if (forward_request_header(name) && !strpbrk(value, "\r\n"))
			rc |= bytes_str(&x->headers, name) || bytes_str(&x->headers, ": ") ||
			      bytes_str(&x->headers, value) || bytes_str(&x->headers, "\r\n");
	}
	/* a C string, with its NUL */
	rc |= bytes_str(&x->headers, credential) || bytes_add(&x->headers, "\r\n", 3);
	if (rc)
		return -1;
	x->up = kars_uhttp_start(x->r->http_upstream, x->body ? "POST" : "GET", path, x->headers.p,
				 body, len, &upstream_callbacks, x);
	return x->up ? 0 : -1;
}

static void account(struct exchange *x, enum kars_uhttp_result result,
		    const struct kars_usage *usage);

/* The attempt starts once the credential is at hand (at once when a key or a
 * valid token is held; after the one refresh in flight otherwise). */
static void on_credential(const char *header, const char *error, void *arg)
{
	struct exchange *x = arg;
	struct kars_usage none = {0};

	if (!header) {
		/* The token service's text can name tenants and client ids: it
		 * goes to the log and the audit chain, not to the agent. */
		log_error("no upstream credential: %s", error);
		snprintf(x->reason, sizeof(x->reason), "no upstream credential: %.400s", error);
		x->status = 502;
		x->r->upstream_errors++;
		kars_router_send_error(
		    x->req, 502, "upstream_error", "upstream_credential_unavailable",
		    "the router holds no valid credential for the model upstream");
		account(x, KARS_UHTTP_OK, &none);
		exchange_free(x);
		return;
	}
	if (build_transfer(x, header)) {
		x->status = 500;
		kars_router_send_error(x->req, 500, "server_error", "internal_error",
				       "could not start the upstream request");
		account(x, KARS_UHTTP_OK, &none);
		exchange_free(x);
	}
}

static void start_attempt(struct exchange *x)
{
	kars_credential_get(x->r->credential, &x->cred_wait, on_credential, x);
}

static void note_failure(struct exchange *x, const char *what)
{
	size_t n = strlen(x->failures);

	snprintf(x->failures + n, sizeof(x->failures) - n, "%s%s: %s", n ? "; " : "",
		 x->n_models ? x->models[x->attempt] : "upstream", what);
}

static void add_decision_headers(struct kars_hreq *req, const char *reason)
{
	kars_hreq_add_header(req, "x-kars-decision", "blocked");
	kars_hreq_add_header(req, "x-kars-decision-by", "InferencePolicy");
	kars_hreq_add_header(req, "x-kars-decision-reason", reason);
}

/* The floor stopped a stream the agent is already reading: it gets an error
 * event in the API's own shape, then the end of the stream. */
static void end_blocked_stream(struct exchange *x)
{
	json_t *ev = json_pack("{s:{s:s,s:s,s:s,s:n}}", "error", "message", x->reason, "type",
			       "content_filter", "code", "content_policy_violation", "param");
	char *text = ev ? json_dumps(ev, JSON_COMPACT) : NULL;

	if (text && (bytes_str(&x->out, "data: ") || bytes_str(&x->out, text) ||
		     bytes_str(&x->out, "\n\n")))
		x->out.len = 0;
	if (x->route != KARS_ROUTE_RESPONSES && bytes_str(&x->out, "data: [DONE]\n\n"))
		x->out.len = 0;
	kars_hreq_reply_chunk(x->req, x->out.p, x->out.len);
	kars_hreq_reply_end(x->req);
	free(text);
	json_decref(ev);
}

/* Answers with a whole (non-streamed) reply; x->status is its status. */
static void finish_whole(struct exchange *x, struct kars_usage *usage)
{
	const struct kars_router_route *route = &kars_router_routes[x->route];
	size_t len = x->whole.len;
	struct kars_err err = {0};

	if (route->openai != KARS_OPENAI_UNKNOWN && len &&
	    kars_openai_usage_from_body(route->openai, x->whole.p, len, usage, &err))
		log_debug("usage of a %s answer: %s", route->name, err.msg);
	if (x->policy && x->status / 100 == 2 &&
	    kars_inference_policy_blocks_content(x->policy, &usage->filter, x->reason,
						 sizeof(x->reason))) {
		x->blocked = true;
		add_decision_headers(x->req, x->reason);
		kars_router_send_error(x->req, 403, "content_filter", "content_policy_violation",
				       "%s", x->reason);
		return;
	}
	add_response_headers(x);
	kars_hreq_reply(x->req, (int)x->status, x->whole.p, len);
}

/* The end of a streamed reply: what is left is an unfinished event, relayed
 * as it is (the agent's parser discards it as the router's did). */
static void finish_events(struct exchange *x, struct kars_usage *usage)
{
	struct kars_err err = {0};

	if (x->sse_ready) {
		kars_sse_usage_finish(&x->sse, &err);
		*usage = x->sse.usage;
	}
	if (!x->started)
		start_reply(x);
	kars_hreq_reply_chunk(x->req, x->out.p, x->out.len);
	kars_hreq_reply_chunk(x->req, x->event, x->event_len);
	kars_hreq_reply_end(x->req);
}

static const char *decision_of(struct exchange *x, enum kars_uhttp_result result)
{
	if (x->blocked)
		return "deny";
	if (result != KARS_UHTTP_OK || x->status / 100 == 5 || x->status == 0)
		return "error";
	return x->status / 100 == 2 ? "allow" : "upstream-refused";
}

/* Charges the budget, counts, and writes the decision to the audit chain. */
static void account(struct exchange *x, enum kars_uhttp_result result,
		    const struct kars_usage *usage)
{
	struct kars_router *r = x->r;
	const struct kars_router_route *route = &kars_router_routes[x->route];
	uint64_t tokens = usage->total_tokens ? usage->total_tokens
					      : usage->prompt_tokens + usage->completion_tokens;
	char action[64], reason[1024];
	struct kars_audit_record rec = {0};

	r->requests[x->route][status_class(x->blocked ? 403 : x->status)]++;
	if (!x->policy)
		return; /* not an inference (GET /v1/models) */
	/* Tokens the upstream did not report are charged at the per-request cap:
	 * an answer without usage must not be free. */
	if (!usage->has_usage && x->status / 100 == 2 && x->policy->per_request_tokens) {
		log_warn("%s answer without usage: charging the per-request cap (%llu)",
			 route->name, (unsigned long long)x->policy->per_request_tokens);
		tokens = x->policy->per_request_tokens;
	}
	kars_budget_charge(&r->budget, tokens, time(NULL));
	kars_router_wake(r);
	r->tokens_in += usage->prompt_tokens;
	r->tokens_out += usage->completion_tokens;
	if (x->blocked)
		r->denied++;

	snprintf(action, sizeof(action), "inference.%s", route->name);
	snprintf(reason, sizeof(reason), "%s%s%s%s", x->reason[0] ? x->reason : "",
		 x->reason[0] && x->failures[0] ? "; " : "", x->failures[0] ? "failed over: " : "",
		 x->failures);
	if (!reason[0] && result != KARS_UHTTP_OK)
		snprintf(reason, sizeof(reason), "%s", kars_uhttp_strerror(result));
	if (!reason[0])
		snprintf(reason, sizeof(reason), "status %ld", x->status);
	rec.sandbox = r->cfg.sandbox;
	rec.principal = "agent";
	rec.action = action;
	rec.decision = decision_of(x, result);
	rec.reason = reason;
	rec.model = x->n_models ? x->models[x->attempt] : NULL;
	rec.tokens_in = usage->prompt_tokens;
	rec.tokens_out = usage->completion_tokens;
	rec.latency_ns = kars_router_mono_ns() - x->start_ns;
	rec.payload_sha256 = x->has_payload ? x->payload_sha256 : NULL;
	kars_router_audit(r, &rec);
}

static void on_done(void *arg, enum kars_uhttp_result result, const char *detail)
{
	struct exchange *x = arg;
	struct kars_router *r = x->r;
	const struct kars_router_route *route = &kars_router_routes[x->route];
	struct kars_usage usage = {0};
	char error[320];

	x->up = NULL;	    /* the client's request ends with this call */
	resume_upstream(x); /* nothing of the agent's connection calls back into x */
	snprintf(error, sizeof(error), "%s%s%s%s", kars_uhttp_strerror(result), detail ? " (" : "",
		 detail ? detail : "", detail ? ")" : "");
	if (!x->blocked && can_fail_over(x) &&
	    (x->mode == RELAY_DISCARD || (result != KARS_UHTTP_OK && !x->too_big))) {
		char what[sizeof(error)];

		if (x->mode == RELAY_DISCARD)
			snprintf(what, sizeof(what), "%ld", x->status);
		else
			snprintf(what, sizeof(what), "%s", error);
		log_warn("upstream %s, model %s: %s; failing over to %s", route->name,
			 x->models[x->attempt], what, x->models[x->attempt + 1]);
		note_failure(x, what);
		r->failovers++;
		r->upstream_errors++;
		attempt_reset(x);
		x->attempt++;
		start_attempt(x);
		return;
	}

	if (x->blocked && x->started) {
		log_warn("%s stream stopped: %s", route->name, x->reason);
		end_blocked_stream(x);
		if (x->sse_ready)
			usage = x->sse.usage;
	} else if (x->blocked) {
		add_decision_headers(x->req, x->reason);
		kars_router_send_error(x->req, 403, "content_filter", "content_policy_violation",
				       "%s", x->reason);
		if (x->sse_ready)
			usage = x->sse.usage;
	} else if (result != KARS_UHTTP_OK && !x->started) {
		r->upstream_errors++;
		if (x->too_big) {
			snprintf(x->reason, sizeof(x->reason),
				 "the upstream's answer is larger than %u bytes",
				 MAX_RESPONSE_BODY);
			x->status = 502;
			kars_router_send_error(x->req, 502, "upstream_error", "upstream_too_large",
					       "%s", x->reason);
		} else {
			note_failure(x, error);
			log_warn("upstream %s: %s", route->name, error);
			x->status = 502;
			kars_router_send_error(
			    x->req, 502, "upstream_error", "upstream_unavailable",
			    "the model upstream could not be reached: %s", error);
		}
	} else if (result != KARS_UHTTP_OK) {
		/* The upstream broke off mid-answer: so does the agent's
		 * connection, without the last chunk, so that the agent sees a
		 * cut stream, not a complete one. */
		r->upstream_errors++;
		if (x->sse_ready)
			usage = x->sse.usage;
		if (agent_connected(x))
			log_warn("upstream %s: %s after the reply started; cutting the agent's "
				 "stream too",
				 route->name, error);
		kars_hreq_cut(x->req);
	} else if (x->mode == RELAY_EVENTS) {
		finish_events(x, &usage);
	} else {
		finish_whole(x, &usage);
	}
	account(x, result, &usage);
	exchange_free(x);
}

void kars_exchange_start(struct kars_router *r, struct kars_hreq *req,
			 const struct kars_exchange_request *xr)
{
	struct exchange *x = calloc(1, sizeof(*x));

	if (!x) {
		json_decref(xr->body);
		free(xr->raw);
		kars_router_send_error(req, 500, "server_error", "out_of_memory", "out of memory");
		return;
	}
	x->r = r;
	r->inflight++;
	x->req = req;
	x->route = xr->route;
	x->body = xr->body;
	x->raw = xr->raw;
	x->raw_len = xr->raw_len;
	x->body_changed = xr->body_changed;
	if (x->body) {
		const char *m = json_string_value(json_object_get(x->body, "model"));

		/* A name too long to compare is never sent as it came. */
		if (m && strlen(m) >= sizeof(x->raw_model))
			x->body_changed = true;
		else
			snprintf(x->raw_model, sizeof(x->raw_model), "%s", m ? m : "");
	}
	x->policy = kars_inference_policy_ref(xr->policy);
	x->stream = xr->stream;
	x->withhold_usage = xr->withhold_usage;
	x->start_ns = kars_router_mono_ns();
	x->scan_line_empty = true;
	if (xr->payload_sha256) {
		memcpy(x->payload_sha256, xr->payload_sha256, sizeof(x->payload_sha256));
		x->has_payload = true;
	}
	snprintf(x->item, sizeof(x->item), "%s", xr->item ? xr->item : "");
	for (size_t i = 0; i < xr->n_models; i++)
		snprintf(x->models[i], sizeof(x->models[i]), "%s", xr->models[i]);
	x->n_models = xr->n_models;
	start_attempt(x);
}
