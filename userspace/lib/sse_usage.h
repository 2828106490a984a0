/* sse_usage.h - token usage, content-filter flags and errors from OpenAI-shaped
 * responses, streamed (text/event-stream) or whole.
 *
 * kars-router counts the tokens of every request it forwards, for budgets and
 * metrics, without changing the bytes the agent receives. A streamed response
 * reaches the router in TCP-sized pieces that split lines, fields and UTF-8
 * characters anywhere, so the stream parser here is incremental: feed it each
 * piece as it arrives and read the results at any time. It follows the SSE
 * rules of the WHATWG HTML standard (LF, CRLF or CR line ends, "data:" lines
 * joined with LF, ":" comments, "event:" names, a leading BOM dropped, an
 * unfinished event at the end discarded) and understands:
 *
 *   Chat Completions / Completions  the chunk carrying "usage" (sent when the
 *                                   request had stream_options.include_usage),
 *                                   "data: [DONE]", {"error": {...}} chunks;
 *   Responses                       "response.completed", "response.incomplete"
 *                                   and "response.failed" with response.usage,
 *                                   "error" events;
 *   Azure content filtering         prompt_filter_results[] and per-choice
 *                                   content_filter_results, finish_reason
 *                                   "content_filter", error.innererror.
 *
 * Memory is bounded: one buffer for the data of the event being read, never
 * larger than max_event bytes; an event with more data is an error naming the
 * byte. An event that lies whole inside one fed piece is parsed in place,
 * without being copied. Any error is final: later feeds return it again.
 */
#ifndef KARS_SSE_USAGE_H
#define KARS_SSE_USAGE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define KARS_SSE_MAX_EVENT_DEFAULT (1u << 20)

enum kars_openai_route {
	KARS_OPENAI_UNKNOWN = 0,
	KARS_OPENAI_CHAT_COMPLETIONS, /* /v1/chat/completions */
	KARS_OPENAI_COMPLETIONS,      /* /v1/completions */
	KARS_OPENAI_EMBEDDINGS,	      /* /v1/embeddings */
	KARS_OPENAI_RESPONSES,	      /* /v1/responses */
};

/* The route of "/v1/<p>" or Azure's "/openai/v1/<p>"; a query string is
 * ignored. Anything else is KARS_OPENAI_UNKNOWN. */
enum kars_openai_route kars_openai_route_from_path(const char *path);
const char *kars_openai_route_name(enum kars_openai_route route);

/* Azure severities, in order; NONE is "no annotation with a severity". */
enum kars_cf_severity {
	KARS_CF_SEVERITY_NONE = 0,
	KARS_CF_SEVERITY_SAFE,
	KARS_CF_SEVERITY_LOW,
	KARS_CF_SEVERITY_MEDIUM,
	KARS_CF_SEVERITY_HIGH,
};

/* Azure content-filter categories; names as sent ("self_harm", ...). */
enum kars_cf_category {
	KARS_CF_HATE = 0,
	KARS_CF_SELF_HARM,
	KARS_CF_SEXUAL,
	KARS_CF_VIOLENCE,
	KARS_CF_JAILBREAK,
	KARS_CF_INDIRECT_ATTACK,
	KARS_CF_PROTECTED_MATERIAL_TEXT,
	KARS_CF_PROTECTED_MATERIAL_CODE,
	KARS_CF_PROFANITY,
	KARS_CF_CUSTOM_BLOCKLISTS,
	KARS_CF_OTHER, /* a name not listed above */
	KARS_CF__COUNT,
};

const char *kars_cf_category_name(enum kars_cf_category c);
const char *kars_cf_severity_name(enum kars_cf_severity s);

struct kars_content_filter {
	bool annotated;	   /* any content_filter_results was seen */
	bool filtered;	   /* something was filtered (an annotation with "filtered": true,
			    * finish_reason or incomplete_details.reason "content_filter") */
	bool prompt;	   /* the first filtered annotation was on the prompt */
	char category[32]; /* first filtered category as sent; "" if only a
			    * finish_reason said so */
	enum kars_cf_severity severity;	      /* its severity (NONE for detection types) */
	uint8_t max_severity[KARS_CF__COUNT]; /* worst enum kars_cf_severity seen, per category */
	uint32_t detected;		      /* bit per category with "detected": true */
};

/* An error the upstream reported in the response (not a parse error). */
struct kars_upstream_error {
	bool present;
	char type[64];	   /* error.type, or the event type ("error", "response.failed") */
	char code[64];	   /* error.code as text ("" when null) */
	char message[256]; /* error.message, cut at a UTF-8 character boundary */
};

/* What a response said about itself. Token names follow Chat Completions;
 * the Responses API's input/output tokens land in prompt/completion. */
struct kars_usage {
	bool has_usage; /* a usage object was seen (the last one wins) */
	uint64_t prompt_tokens;
	uint64_t completion_tokens;
	uint64_t total_tokens;	   /* as sent; prompt + completion if absent */
	uint64_t cached_tokens;	   /* prompt/input_tokens_details.cached_tokens */
	uint64_t reasoning_tokens; /* completion/output_tokens_details.reasoning_tokens */
	char model[128];	   /* first non-empty "model" (the upstream's name for it) */
	bool done;		   /* the stream's own end: "data: [DONE]", or a terminal response.*
				    * or error event */
	bool truncated;		   /* finish() found an unfinished event (the upstream hung up) */
	uint64_t events;	   /* events with data, [DONE] included */
	struct kars_content_filter filter;
	struct kars_upstream_error error;
};

/* Incremental parser state; embed it, init, feed, finish, release. Fields
 * other than `usage` are private. */
struct kars_sse_usage {
	struct kars_usage usage;

	size_t max_event; /* cap on one event's data */
	uint64_t offset;  /* stream bytes consumed */
	int error;	  /* positive errno once failed */
	struct kars_err err;

	/* the event being read */
	char *buf; /* its data, joined with LF, when not in place */
	size_t len, cap;
	const char *span; /* its data in place, inside the piece being fed */
	size_t data_lines;
	uint64_t event_start;
	char type[64]; /* "event:" value */
	size_t type_len;
	bool type_long;

	/* the line being read */
	int state;
	char field[8];
	size_t field_len;
	int field_kind;
	bool skip_lf; /* the previous line ended with CR */
	unsigned bom; /* bytes of a leading BOM matched so far */
};

/* max_event 0 means KARS_SSE_MAX_EVENT_DEFAULT. Allocates nothing yet. */
int kars_sse_usage_init(struct kars_sse_usage *p, size_t max_event);
/* Consumes len bytes (len may be 0). Returns 0, or -EINVAL (an event whose
 * data is not JSON or [DONE], or a malformed usage object), -EMSGSIZE (event
 * over max_event) or -ENOMEM, with err naming the stream byte. */
int kars_sse_usage_feed(struct kars_sse_usage *p, const void *buf, size_t len,
			struct kars_err *err);
/* End of stream: sets usage.truncated if an event was left unfinished (it is
 * discarded, as the SSE rules say). Returns the stored error, if any. */
int kars_sse_usage_finish(struct kars_sse_usage *p, struct kars_err *err);
void kars_sse_usage_release(struct kars_sse_usage *p);

/* The same results from a whole (non-streamed) response body of route, 2xx
 * or error. *out is reset first. Returns 0, -EINVAL with err naming the byte
 * or field, or -ENOMEM. */
int kars_openai_usage_from_body(enum kars_openai_route route, const void *body, size_t len,
				struct kars_usage *out, struct kars_err *err);
int kars_openai_usage_from_json(enum kars_openai_route route, const json_t *root,
				struct kars_usage *out, struct kars_err *err);

/* What kars_openai_inject_include_usage did to a request body. */
enum kars_include_usage {
	KARS_INCLUDE_USAGE_NO_STREAM = 0, /* not a streamed request: nothing to do */
	KARS_INCLUDE_USAGE_ASKED,	  /* the agent asked for it: body unchanged */
	KARS_INCLUDE_USAGE_INJECTED,	  /* it was absent (or null): now true */
	KARS_INCLUDE_USAGE_FORCED,	  /* the agent said false: now true; the router
					   * should withhold the usage-only chunk */
};

/* For /v1/chat/completions and /v1/completions request bodies: when "stream"
 * is true, makes stream_options.include_usage true so that the upstream sends
 * the usage the router must count. An explicit false is overridden too, since
 * an agent must not be able to opt out of accounting; FORCED tells the caller
 * to drop the extra chunk ("choices": [] with "usage") so the agent still gets
 * the stream it asked for. Returns an enum kars_include_usage, -EINVAL for a
 * body that is not an object or has "stream", "stream_options" or
 * "include_usage" of the wrong type, or -ENOMEM. */
int kars_openai_inject_include_usage(json_t *body, struct kars_err *err);

#endif
