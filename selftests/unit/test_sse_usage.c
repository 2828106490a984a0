/* test_sse_usage.c - unit tests for the token-usage parsers (userspace/lib/sse_usage.h).
 *
 * kars-router bills and budgets every request from what these parsers find, so
 * a usage chunk missed because TCP split it differently would be tokens spent
 * for free. The fixtures below have the shapes of the public OpenAI and Azure
 * OpenAI wire formats (chat.completion.chunk streams with include_usage, Azure's
 * content-filter annotations, the Responses API's typed events), and every
 * stream is fed whole, split at every byte, in chunks of every small size and
 * in random chunks, with LF, CRLF and CR line ends: the results must not
 * change. Errors must name the stream byte.
 */
#include "unit.h"

#include <errno.h>
#include <stdlib.h>

#include "sse_usage.h"

/* --- fixtures ---------------------------------------------------------------- */

#define CHAT_ID                                                                                    \
	"\"id\":\"chatcmpl-BqXkJ7d9Ls3pWfZ2uYcR8nTgVh1Ea\",\"object\":\"chat.completion.chunk\""
#define CHAT_HDR                                                                                   \
	CHAT_ID                                                                                    \
	",\"created\":1751980800,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_34a54ae93c\""

/* POST /v1/chat/completions {"stream": true, "stream_options": {"include_usage": true}} */
static const char chat_stream[] =
    "data: {" CHAT_HDR
    ",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n"
    "\n"
    "data: {" CHAT_HDR
    ",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Bonjour\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n"
    "\n"
    "data: {" CHAT_HDR
    ",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" \xc3\xa0 vous \xe2\x9c\x93 \xf0\x9f\x91\x8b\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n"
    "\n"
    "data: {" CHAT_HDR
    ",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":null}\n"
    "\n"
    "data: {" CHAT_HDR
    ",\"choices\":[],\"usage\":{\"prompt_tokens\":1337,\"completion_tokens\":7,\"total_tokens\":1344,\"prompt_tokens_details\":{\"cached_tokens\":1024,\"audio_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}}\n"
    "\n"
    "data: [DONE]\n"
    "\n";

/* The same request without include_usage: no usage anywhere. */
static const char chat_stream_no_usage[] =
    "data: {" CHAT_HDR
    ",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}]}\n"
    "\n"
    "data: {" CHAT_HDR
    ",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"logprobs\":null,\"finish_reason\":null}]}\n"
    "\n"
    "data: {" CHAT_HDR
    ",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}]}\n"
    "\n"
    "data: [DONE]\n"
    "\n";

#define AZ_SAFE(c)  "\"" c "\":{\"filtered\":false,\"severity\":\"safe\"}"
#define AZ_CLEAN(c) "\"" c "\":{\"filtered\":false,\"detected\":false}"
#define AZ_HDR                                                                                     \
	"\"created\":1751980801,\"id\":\"chatcmpl-BqXkLmN0pQrStUvWxYz123456789A\",\"model\":\"gpt-4o-2024-11-20\",\"object\":\"chat.completion.chunk\",\"system_fingerprint\":\"fp_ee1d74bde0\""

/* Azure OpenAI, POST /openai/v1/chat/completions, output filtered mid-way:
 * the prompt annotations come first with "choices": [], keys sorted. */
static const char azure_stream[] =
    "data: {\"choices\":[],\"created\":0,\"id\":\"\",\"model\":\"\",\"object\":\"\",\"prompt_filter_results\":[{\"prompt_index\":0,\"content_filter_results\":{" AZ_SAFE("hate") "," AZ_CLEAN("jailbreak") "," AZ_SAFE("self_harm") "," AZ_SAFE(
	"sexual") "," AZ_SAFE("violence") "}}]}\n"
					  "\n"
					  "data: {\"choices\":[{\"content_filter_results\":{},\"delta\":{\"content\":\"\",\"refusal\":null,\"role\":\"assistant\"},\"finish_reason\":null,\"index\":0,\"logprobs\":null}]," AZ_HDR
					  ",\"usage\":null}\n"
					  "\n"
					  "data: {\"choices\":[{\"content_filter_results\":{" AZ_SAFE("hate") "," AZ_SAFE("self_harm") ",\"sexual\":{\"filtered\":false,\"severity\":\"low\"}," AZ_SAFE(
					      "violence") "},\"delta\":{\"content\":\"Once upon\"},\"finish_reason\":null,\"index\":0,\"logprobs\":null}]," AZ_HDR
							  ",\"usage\":null}\n"
							  "\n"
							  "data: {\"choices\":[{\"content_filter_results\":{" AZ_SAFE(
							      "hate") "," AZ_SAFE("self_harm") ",\"sexual\":{\"filtered\":true,\"severity\":\"medium\"},\"violence\":{\"filtered\":false,\"severity\":\"low\"}},\"delta\":{},\"finish_reason\":\"content_filter\",\"index\":0,\"logprobs\":null}]," AZ_HDR
											       ",\"usage\":null}\n"
											       "\n"
											       "data: {\"choices\":[]," AZ_HDR
											       ",\"usage\":{\"completion_tokens\":3,\"completion_tokens_details\":{\"accepted_prediction_tokens\":0,\"audio_tokens\":0,\"reasoning_tokens\":0,\"rejected_prediction_tokens\":0},\"prompt_tokens\":24,\"prompt_tokens_details\":{\"audio_tokens\":0,\"cached_tokens\":0},\"total_tokens\":27}}\n"
											       "\n"
											       "data: [DONE]\n"
											       "\n";

#define RESP_ID "resp_68a1b2c3d4e5f60718293a4b5c6d7e8f0011223344556677"
#define MSG_ID	"msg_68a1b2c3e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d"
#define RESP_OBJ(status, output, usage)                                                                                                                                                                                                                                                                                                                                                                                                   \
	"{\"id\":\"" RESP_ID                                                                                                                                                                                                                                                                                                                                                                                                              \
	"\",\"object\":\"response\",\"created_at\":1755427011,\"status\":\"" status                                                                                                                                                                                                                                                                                                                                                       \
	"\",\"background\":false,\"error\":null,\"incomplete_details\":null,\"instructions\":null,\"max_output_tokens\":null,\"max_tool_calls\":null,\"model\":\"o4-mini-2025-04-16\",\"output\":[" output                                                                                                                                                                                                                                \
	"],\"parallel_tool_calls\":true,\"previous_response_id\":null,\"prompt_cache_key\":null,\"reasoning\":{\"effort\":\"medium\",\"summary\":null},\"safety_identifier\":null,\"service_tier\":\"default\",\"store\":true,\"temperature\":1.0,\"text\":{\"format\":{\"type\":\"text\"},\"verbosity\":\"medium\"},\"tool_choice\":\"auto\",\"tools\":[],\"top_logprobs\":0,\"top_p\":1.0,\"truncation\":\"disabled\",\"usage\":" usage \
	",\"user\":null,\"metadata\":{}}"
#define RESP_MSG(status, content)                                                                  \
	"{\"id\":\"" MSG_ID "\",\"type\":\"message\",\"status\":\"" status                         \
	"\",\"content\":[" content "],\"role\":\"assistant\"}"
#define RESP_TEXT(t)                                                                               \
	"{\"type\":\"output_text\",\"annotations\":[],\"logprobs\":[],\"text\":\"" t "\"}"
#define RESP_USAGE                                                                                 \
	"{\"input_tokens\":37,\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens\":203,\"output_tokens_details\":{\"reasoning_tokens\":192},\"total_tokens\":240}"

/* POST /v1/responses {"stream": true}: typed events, usage only at the end. */
static const char responses_stream[] =
    "event: response.created\n"
    "data: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":" RESP_OBJ(
	"in_progress", "",
	"null") "}\n"
		"\n"
		"event: response.in_progress\n"
		"data: {\"type\":\"response.in_progress\",\"sequence_number\":1,\"response\":" RESP_OBJ(
		    "in_progress", "",
		    "null") "}\n"
			    "\n"
			    "event: response.output_item.added\n"
			    "data: {\"type\":\"response.output_item.added\",\"sequence_number\":2,\"output_index\":0,\"item\":" RESP_MSG(
				"in_progress",
				"") "}\n"
				    "\n"
				    "event: response.content_part.added\n"
				    "data: {\"type\":\"response.content_part.added\",\"sequence_number\":3,\"item_id\":\"" MSG_ID
				    "\",\"output_index\":0,\"content_index\":0,\"part\":{\"type\":\"output_text\",\"annotations\":[],\"logprobs\":[],\"text\":\"\"}}\n"
				    "\n"
				    "event: response.output_text.delta\n"
				    "data: {\"type\":\"response.output_text.delta\",\"sequence_number\":4,\"item_id\":\"" MSG_ID
				    "\",\"output_index\":0,\"content_index\":0,\"delta\":\"Under\",\"logprobs\":[]}\n"
				    "\n"
				    "event: response.output_text.delta\n"
				    "data: {\"type\":\"response.output_text.delta\",\"sequence_number\":5,\"item_id\":\"" MSG_ID
				    "\",\"output_index\":0,\"content_index\":0,\"delta\":\" the stars.\",\"logprobs\":[]}\n"
				    "\n"
				    "event: response.output_text.done\n"
				    "data: {\"type\":\"response.output_text.done\",\"sequence_number\":6,\"item_id\":\"" MSG_ID
				    "\",\"output_index\":0,\"content_index\":0,\"text\":\"Under the stars.\",\"logprobs\":[]}\n"
				    "\n"
				    "event: response.content_part.done\n"
				    "data: {\"type\":\"response.content_part.done\",\"sequence_number\":7,\"item_id\":\"" MSG_ID
				    "\",\"output_index\":0,\"content_index\":0,\"part\":" RESP_TEXT(
					"Under the stars.") "}\n"
							    "\n"
							    "event: response.output_item.done\n"
							    "data: {\"type\":\"response.output_item.done\",\"sequence_number\":8,\"output_index\":0,\"item\":" RESP_MSG(
								"completed",
								RESP_TEXT(
								    "Under the stars.")) "}\n"
											 "\n"
											 "event: response.completed\n"
											 "data: {\"type\":\"response.completed\",\"sequence_number\":9,\"response\":" RESP_OBJ(
											     "completed",
											     RESP_MSG(
												 "completed",
												 RESP_TEXT(
												     "Under the stars.")),
											     RESP_USAGE) "}\n"
													 "\n";

/* Keep-alive comments, id/retry and unknown fields (one that starts with
 * "data"), data split over lines (joined with LF, which JSON takes as
 * space), "data:" without the space and with two, an "event" line with no
 * colon. */
static const char fields_stream[] = ": keep-alive\n"
				    "\n"
				    ":\n"
				    "retry: 3000\n"
				    "id: 17\n"
				    "x-vendor: {\"usage\":{\"prompt_tokens\":999}}\n"
				    "data-only: 42\n"
				    "data: {\"model\":\"gpt-4o\",\"choices\":[]}\n"
				    "\n"
				    "data:{\"choices\":[],\"model\":\"gpt-4o-mini\",\n"
				    ": a comment inside the event\n"
				    "data:  \"usage\":\n"
				    "data\n"
				    "data: {\"prompt_tokens\":11,\"completion_tokens\":2,\n"
				    "data: \"total_tokens\":13}}\n"
				    "\n"
				    "event\n"
				    "data: [DONE]\n"
				    "\n";

/* An error known only from the event name; the SDK raises it too. */
static const char named_error_stream[] = "event: error\n"
					 "data: {\"message\":\"overloaded\",\"code\":529}\n"
					 "\n";

/* --- helpers ------------------------------------------------------------------ */

struct outcome {
	int ret; /* of the first failing call, else of finish() */
	struct kars_err err;
	struct kars_usage u;
	size_t cap; /* the parser's buffer when done */
};

/* Feeds s[0..n) cut at the ascending positions cuts[0..ncuts). */
static void run_cuts(const char *s, size_t n, const size_t *cuts, size_t ncuts, size_t max_event,
		     struct outcome *o)
{
	struct kars_sse_usage p;
	size_t from = 0;

	memset(o, 0, sizeof(*o));
	kars_sse_usage_init(&p, max_event);
	for (size_t i = 0; i <= ncuts && !o->ret; i++) {
		size_t to = i < ncuts ? cuts[i] : n;
		/* each piece in its own buffer, scribbled over once fed, as a
		 * proxy reusing its read buffer would: nothing may point into it */
		char *piece = malloc(to - from + 1);

		assert_non_null(piece);
		memcpy(piece, s + from, to - from);
		o->ret = kars_sse_usage_feed(&p, piece, to - from, &o->err);
		memset(piece, 'Z', to - from);
		free(piece);
		from = to;
	}
	if (!o->ret)
		o->ret = kars_sse_usage_finish(&p, &o->err);
	o->u = p.usage;
	o->cap = p.cap;
	assert_true(p.cap <= p.max_event);
	kars_sse_usage_release(&p);
}

static void run_whole(const char *s, size_t n, size_t max_event, struct outcome *o)
{
	run_cuts(s, n, NULL, 0, max_event, o);
}

static void run_chunks(const char *s, size_t n, size_t size, size_t max_event, struct outcome *o)
{
	size_t *cuts = calloc(n / size + 1, sizeof(*cuts));
	size_t k = 0;

	assert_non_null(cuts);
	for (size_t at = size; at < n; at += size)
		cuts[k++] = at;
	run_cuts(s, n, cuts, k, max_event, o);
	free(cuts);
}

static void expect_same(const struct outcome *a, const struct outcome *b, const char *how)
{
	const struct kars_usage *x = &a->u, *y = &b->u;

	if (a->ret != b->ret || strcmp(a->err.msg, b->err.msg) != 0)
		fail_msg("%s: ret %d \"%s\" vs %d \"%s\"", how, a->ret, a->err.msg, b->ret,
			 b->err.msg);
	if (x->has_usage != y->has_usage || x->prompt_tokens != y->prompt_tokens ||
	    x->completion_tokens != y->completion_tokens || x->total_tokens != y->total_tokens ||
	    x->cached_tokens != y->cached_tokens || x->reasoning_tokens != y->reasoning_tokens ||
	    strcmp(x->model, y->model) || x->done != y->done || x->truncated != y->truncated ||
	    x->events != y->events)
		fail_msg(
		    "%s: usage differs (%d %llu/%llu/%llu, %llu events, done %d) vs (%d "
		    "%llu/%llu/%llu, %llu events, done %d)",
		    how, x->has_usage, (unsigned long long)x->prompt_tokens,
		    (unsigned long long)x->completion_tokens, (unsigned long long)x->total_tokens,
		    (unsigned long long)x->events, x->done, y->has_usage,
		    (unsigned long long)y->prompt_tokens, (unsigned long long)y->completion_tokens,
		    (unsigned long long)y->total_tokens, (unsigned long long)y->events, y->done);
	if (x->filter.annotated != y->filter.annotated ||
	    x->filter.filtered != y->filter.filtered || x->filter.prompt != y->filter.prompt ||
	    strcmp(x->filter.category, y->filter.category) ||
	    x->filter.severity != y->filter.severity || x->filter.detected != y->filter.detected ||
	    memcmp(x->filter.max_severity, y->filter.max_severity, sizeof(x->filter.max_severity)))
		fail_msg("%s: content filter differs", how);
	if (x->error.present != y->error.present || strcmp(x->error.type, y->error.type) ||
	    strcmp(x->error.code, y->error.code) || strcmp(x->error.message, y->error.message))
		fail_msg("%s: upstream error differs", how);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Whole, every single split point, every chunk size up to 64, 1-byte, and
 * 300 random cuttings must all give `want`. */
static void expect_any_split(const char *s, size_t n, size_t max_event, const struct outcome *want)
{
	struct outcome o;
	char how[64];
	size_t cuts[64];

	for (size_t k = 0; k <= n; k++) {
		run_cuts(s, n, &k, 1, max_event, &o);
		snprintf(how, sizeof(how), "split at byte %zu", k);
		expect_same(want, &o, how);
	}
	for (size_t size = 1; size <= 64; size++) {
		run_chunks(s, n, size, max_event, &o);
		snprintf(how, sizeof(how), "%zu-byte chunks", size);
		expect_same(want, &o, how);
	}
	for (int r = 0; r < 300; r++) {
		size_t k = rng() % 64, at = 0, m = 0;

		for (size_t i = 0; i < k && at < n; i++) {
			at += 1 + rng() % (n / (k + 1) + 1);
			if (at < n)
				cuts[m++] = at;
		}
		run_cuts(s, n, cuts, m, max_event, &o);
		snprintf(how, sizeof(how), "random cutting %d", r);
		expect_same(want, &o, how);
	}
}

/* s with every LF replaced: mode 1 CRLF, 2 CR, 3 a mix. Caller frees. */
static char *with_line_ends(const char *s, int mode, size_t *outlen)
{
	char *out = malloc(2 * strlen(s) + 1), *o = out;
	bool prev_cr = false;

	assert_non_null(out);
	for (; *s; s++) {
		int m = mode == 3 ? (int)(rng() % 3) : mode;

		if (*s != '\n') {
			*o++ = *s;
			prev_cr = false;
			continue;
		}
		if (m == 0 && prev_cr) /* a lone LF after CR would merge into CRLF */
			m = 1;
		if (m == 1 || m == 2)
			*o++ = '\r';
		if (m == 0 || m == 1)
			*o++ = '\n';
		prev_cr = m == 2;
	}
	*o = '\0';
	*outlen = (size_t)(o - out);
	return out;
}

static size_t offset_of(const char *s, const char *needle)
{
	const char *at = strstr(s, needle);

	assert_non_null(at);
	return (size_t)(at - s);
}

static void assert_err_byte(const struct kars_err *err, const char *fmt, size_t byte)
{
	char needle[64];

	snprintf(needle, sizeof(needle), fmt, byte);
	assert_err_contains(err, needle);
}

#define N(s) (sizeof(s) - 1)

/* --- streams ------------------------------------------------------------------- */

static void test_chat_stream(void **state)
{
	struct outcome o;

	run_whole(chat_stream, N(chat_stream), 0, &o);
	assert_int_equal(o.ret, 0);
	assert_true(o.u.has_usage);
	assert_int_equal(o.u.prompt_tokens, 1337);
	assert_int_equal(o.u.completion_tokens, 7);
	assert_int_equal(o.u.total_tokens, 1344);
	assert_int_equal(o.u.cached_tokens, 1024);
	assert_int_equal(o.u.reasoning_tokens, 0);
	assert_string_equal(o.u.model, "gpt-4o-mini-2024-07-18");
	assert_true(o.u.done);
	assert_false(o.u.truncated);
	assert_int_equal(o.u.events, 6);
	assert_false(o.u.filter.annotated);
	assert_false(o.u.filter.filtered);
	assert_false(o.u.error.present);
	/* every event lay whole in the one piece: nothing was copied */
	assert_int_equal(o.cap, 0);
	expect_any_split(chat_stream, N(chat_stream), 0, &o);
}

static void test_responses_stream(void **state)
{
	struct outcome o;

	run_whole(responses_stream, N(responses_stream), 0, &o);
	assert_int_equal(o.ret, 0);
	assert_true(o.u.has_usage);
	assert_int_equal(o.u.prompt_tokens, 37);
	assert_int_equal(o.u.completion_tokens, 203);
	assert_int_equal(o.u.total_tokens, 240);
	assert_int_equal(o.u.reasoning_tokens, 192);
	assert_string_equal(o.u.model, "o4-mini-2025-04-16");
	assert_true(o.u.done);
	assert_int_equal(o.u.events, 10);
	assert_false(o.u.error.present);
	expect_any_split(responses_stream, N(responses_stream), 0, &o);
}

static void test_line_ends(void **state)
{
	const char *streams[] = {chat_stream, responses_stream, azure_stream, fields_stream,
				 named_error_stream};
	struct outcome want, o;

	for (size_t i = 0; i < sizeof(streams) / sizeof(streams[0]); i++) {
		run_whole(streams[i], strlen(streams[i]), 0, &want);
		assert_int_equal(want.ret, 0);
		assert_true(want.u.has_usage || want.u.error.present);
		for (int mode = 1; mode <= 3; mode++) {
			size_t n;
			char *s = with_line_ends(streams[i], mode, &n);

			assert_non_null(memchr(s, '\r', n));
			run_whole(s, n, 0, &o);
			expect_same(&want, &o, mode == 1 ? "CRLF" : mode == 2 ? "CR" : "mixed");
			/* CR then LF across a piece boundary is still one line end */
			expect_any_split(s, n, 0, &want);
			free(s);
		}
	}
}

static void test_missing_usage(void **state)
{
	struct outcome o;

	run_whole(chat_stream_no_usage, N(chat_stream_no_usage), 0, &o);
	assert_int_equal(o.ret, 0);
	assert_false(o.u.has_usage);
	assert_int_equal(o.u.total_tokens, 0);
	assert_true(o.u.done);
	assert_int_equal(o.u.events, 4);
	assert_string_equal(o.u.model, "gpt-4o-mini-2024-07-18");
}

static void test_done_and_truncation(void **state)
{
	/* [DONE] is the end; without it (the upstream hung up) done stays false */
	static const char cut[] = "data: {\"id\":\"chatcmpl-1\",\"choices\":[]}\n\n"
				  "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,";
	static const char no_blank[] = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5}}\n";
	static const char comment_tail[] = "data: [DONE]\n\n: bye\n";
	struct outcome o;

	run_whole(cut, N(cut), 0, &o);
	assert_int_equal(o.ret, 0);
	assert_false(o.u.done);
	assert_true(o.u.truncated);
	assert_false(o.u.has_usage);
	assert_int_equal(o.u.events, 1);
	/* a complete line but no blank line: the event is discarded */
	run_whole(no_blank, N(no_blank), 0, &o);
	assert_int_equal(o.ret, 0);
	assert_true(o.u.truncated);
	assert_false(o.u.has_usage);
	assert_int_equal(o.u.events, 0);
	run_whole(comment_tail, N(comment_tail), 0, &o);
	assert_true(o.u.done);
	assert_false(o.u.truncated);
	assert_int_equal(o.u.events, 1);
}

static void test_comments_fields_multiline(void **state)
{
	struct outcome o;

	run_whole(fields_stream, N(fields_stream), 0, &o);
	assert_int_equal(o.ret, 0);
	assert_true(o.u.has_usage);
	assert_int_equal(o.u.prompt_tokens, 11);
	assert_int_equal(o.u.completion_tokens, 2);
	assert_int_equal(o.u.total_tokens, 13);
	assert_int_equal(o.u.events, 3);
	assert_true(o.u.done);
	/* the first model named is kept */
	assert_string_equal(o.u.model, "gpt-4o");
	expect_any_split(fields_stream, N(fields_stream), 0, &o);
}

static void test_total_computed_when_absent(void **state)
{
	static const char s[] = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":8,"
				"\"completion_tokens\":5}}\n\n";
	struct outcome o;

	run_whole(s, N(s), 0, &o);
	assert_int_equal(o.ret, 0);
	assert_int_equal(o.u.total_tokens, 13);
}

static void test_bom(void **state)
{
	static const char with_bom[] =
	    "\xef\xbb\xbf"
	    "data: {\"usage\":{\"prompt_tokens\":3,\"total_tokens\":3}}\n\n";
	/* not a BOM: "\xef" then "data" is one unknown field name, so the
	 * line is ignored and the event has no data */
	static const char half_bom[] =
	    "\xef"
	    "data: {\"usage\":{\"prompt_tokens\":3,\"total_tokens\":3}}\n\n";
	struct outcome o;

	run_whole(with_bom, N(with_bom), 0, &o);
	assert_int_equal(o.ret, 0);
	assert_true(o.u.has_usage);
	assert_int_equal(o.u.total_tokens, 3);
	expect_any_split(with_bom, N(with_bom), 0, &o);
	run_whole(half_bom, N(half_bom), 0, &o);
	assert_int_equal(o.ret, 0);
	assert_false(o.u.has_usage);
	assert_int_equal(o.u.events, 0);
	expect_any_split(half_bom, N(half_bom), 0, &o);
	/* a BOM cut short by the end of the stream is an unfinished line */
	run_whole("\xef\xbb", 2, 0, &o);
	assert_int_equal(o.ret, 0);
	assert_true(o.u.truncated);
}

static void test_content_filter(void **state)
{
	const struct kars_content_filter *f;
	struct outcome o;

	run_whole(azure_stream, N(azure_stream), 0, &o);
	f = &o.u.filter;
	assert_int_equal(o.ret, 0);
	assert_true(f->annotated);
	assert_true(f->filtered);
	assert_false(f->prompt);
	assert_string_equal(f->category, "sexual");
	assert_int_equal(f->severity, KARS_CF_SEVERITY_MEDIUM);
	assert_int_equal(f->max_severity[KARS_CF_SEXUAL], KARS_CF_SEVERITY_MEDIUM);
	assert_int_equal(f->max_severity[KARS_CF_VIOLENCE], KARS_CF_SEVERITY_LOW);
	assert_int_equal(f->max_severity[KARS_CF_HATE], KARS_CF_SEVERITY_SAFE);
	assert_int_equal(f->max_severity[KARS_CF_JAILBREAK], KARS_CF_SEVERITY_NONE);
	assert_int_equal(f->detected, 0);
	/* the first chunk's empty "model" is not the model */
	assert_string_equal(o.u.model, "gpt-4o-2024-11-20");
	assert_int_equal(o.u.total_tokens, 27);
	assert_true(o.u.done);
	expect_any_split(azure_stream, N(azure_stream), 0, &o);
}

static void test_content_filter_prompt(void **state)
{
	/* a prompt-shield hit annotated on the prompt, and the Responses API's
	 * incomplete_details.reason */
	static const char chat[] =
	    "data: {\"choices\":[],\"created\":0,\"id\":\"\",\"model\":\"\",\"object\":\"\","
	    "\"prompt_filter_results\":[{\"prompt_index\":0,\"content_filter_results\":{" AZ_SAFE(
		"hate") ",\"jailbreak\":{\"filtered\":true,\"detected\":true}}}]}\n\n";
	static const char resp[] =
	    "event: response.incomplete\n"
	    "data: {\"type\":\"response.incomplete\",\"sequence_number\":5,\"response\":{\"id\":\"" RESP_ID
	    "\",\"object\":\"response\",\"status\":\"incomplete\",\"incomplete_details\":{\"reason\":"
	    "\"content_filter\"},\"model\":\"gpt-4.1-2025-04-14\",\"output\":[],\"usage\":{\"input_"
	    "tokens\":12,\"output_tokens\":4,\"total_tokens\":16}}}\n\n";
	/* OpenAI itself says only finish_reason */
	static const char openai[] =
	    "data: {" CHAT_HDR ",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,"
	    "\"finish_reason\":\"content_filter\"}]}\n\n";
	struct outcome o;

	run_whole(openai, N(openai), 0, &o);
	assert_int_equal(o.ret, 0);
	assert_true(o.u.filter.filtered);
	assert_false(o.u.filter.annotated);
	assert_string_equal(o.u.filter.category, "");
	run_whole(chat, N(chat), 0, &o);
	assert_int_equal(o.ret, 0);
	assert_true(o.u.filter.filtered);
	assert_true(o.u.filter.prompt);
	assert_string_equal(o.u.filter.category, "jailbreak");
	assert_int_equal(o.u.filter.severity, KARS_CF_SEVERITY_NONE);
	assert_int_equal(o.u.filter.detected, 1u << KARS_CF_JAILBREAK);
	assert_string_equal(o.u.model, "");
	run_whole(resp, N(resp), 0, &o);
	assert_int_equal(o.ret, 0);
	assert_true(o.u.filter.filtered);
	assert_string_equal(o.u.filter.category, "");
	assert_true(o.u.done);
	assert_int_equal(o.u.total_tokens, 16);
}

static void test_error_events(void **state)
{
	/* OpenAI ends a failing chat stream with an error chunk, no [DONE] */
	static const char chat[] =
	    "data: {" CHAT_HDR
	    ",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"logprobs\":"
	    "null,\"finish_reason\":null}]}\n\n"
	    "data: {\"error\":{\"message\":\"The server had an error while processing your request. "
	    "Sorry about that!\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n";
	static const char resp_error[] =
	    "event: error\n"
	    "data: {\"type\":\"error\",\"code\":\"rate_limit_exceeded\",\"message\":\"Rate limit "
	    "reached for o4-mini.\",\"param\":null,\"sequence_number\":3}\n\n";
	static const char resp_failed[] =
	    "event: response.failed\n"
	    "data: {\"type\":\"response.failed\",\"sequence_number\":4,\"response\":{\"id\":\"" RESP_ID
	    "\",\"object\":\"response\",\"status\":\"failed\",\"error\":{\"code\":\"server_error\","
	    "\"message\":\"An error occurred.\"},\"model\":\"o4-mini-2025-04-16\",\"output\":[],"
	    "\"usage\":null}}\n\n";
	struct outcome o;

	run_whole(chat, N(chat), 0, &o);
	assert_int_equal(o.ret, 0);
	assert_true(o.u.error.present);
	assert_string_equal(o.u.error.type, "server_error");
	assert_string_equal(o.u.error.code, "");
	assert_string_equal(o.u.error.message, "The server had an error while processing your "
					       "request. Sorry about that!");
	assert_true(o.u.done);
	assert_false(o.u.has_usage);
	expect_any_split(chat, N(chat), 0, &o);

	run_whole(resp_error, N(resp_error), 0, &o);
	assert_true(o.u.error.present);
	assert_string_equal(o.u.error.type, "error");
	assert_string_equal(o.u.error.code, "rate_limit_exceeded");
	assert_string_equal(o.u.error.message, "Rate limit reached for o4-mini.");
	assert_true(o.u.done);

	run_whole(resp_failed, N(resp_failed), 0, &o);
	assert_int_equal(o.ret, 0);
	assert_true(o.u.error.present);
	assert_string_equal(o.u.error.type, "response.failed");
	assert_string_equal(o.u.error.code, "server_error");
	assert_false(o.u.has_usage);
	assert_true(o.u.done);

	run_whole(named_error_stream, N(named_error_stream), 0, &o);
	assert_true(o.u.error.present);
	assert_string_equal(o.u.error.code, "529");
	assert_string_equal(o.u.error.message, "overloaded");
}

static void test_error_message_cut_at_utf8_boundary(void **state)
{
	char s[600], msg[400];
	struct outcome o;
	size_t n;

	/* 150 two-byte characters: 255 bytes fit, which would end halfway
	 * through the 128th, so the message keeps 127 */
	for (n = 0; n < 2 * 150; n += 2)
		msg[n] = '\xc3', msg[n + 1] = '\xa9';
	msg[n] = '\0';
	snprintf(s, sizeof(s), "data: {\"error\":{\"message\":\"%s\",\"type\":\"t\"}}\n\n", msg);
	run_whole(s, strlen(s), 0, &o);
	assert_int_equal(o.ret, 0);
	assert_int_equal(strlen(o.u.error.message), 254);
	assert_memory_equal(o.u.error.message, msg, 254);
}

static void test_oversize_event(void **state)
{
	struct outcome o, o1;
	size_t start = offset_of(chat_stream, "data: ") + 6;
	struct kars_sse_usage p;
	static const char head[] = "data: {\"usage\":{\"total_tokens\":1}";
	struct kars_err err = {0};
	char big[4096];
	size_t cap;

	/* the first event's data is over 200 bytes: byte 200 of it is refused */
	run_whole(chat_stream, N(chat_stream), 200, &o);
	assert_int_equal(o.ret, -EMSGSIZE);
	assert_err_byte(&o.err, "SSE event at byte %zu", start);
	assert_err_byte(&o.err, "(byte %zu)", start + 200);
	assert_err_contains(&o.err, "more than 200 bytes");
	assert_false(o.u.has_usage);
	run_chunks(chat_stream, N(chat_stream), 1, 200, &o1);
	expect_same(&o, &o1, "1-byte chunks");
	assert_true(o1.cap <= 200);

	/* LFs joining empty data lines count too: "data\n" forever is refused */
	kars_sse_usage_init(&p, 100);
	for (size_t i = 0; i < 200 && !err.code; i++)
		kars_sse_usage_feed(&p, "data\n", 5, &err);
	assert_int_equal(err.code, EMSGSIZE);
	/* line 102 would add the 101st LF at its line end, byte 101 * 5 + 4 */
	assert_err_contains(&err, "(byte 509)");
	assert_true(p.cap <= 100);
	/* an error is final */
	kars_err_clear(&err);
	assert_int_equal(kars_sse_usage_feed(&p, "\n", 1, &err), -EMSGSIZE);
	assert_err_contains(&err, "(byte 509)");
	kars_err_clear(&err);
	assert_int_equal(kars_sse_usage_finish(&p, &err), -EMSGSIZE);
	kars_sse_usage_release(&p);

	/* a big event under the limit, fed 1 byte at a time, then another:
	 * the buffer grows once and is reused */
	memset(big, ' ', sizeof(big));
	memcpy(big, head, N(head));
	memcpy(big + sizeof(big) - 3, "}\n\n", 3);
	kars_sse_usage_init(&p, 8192);
	kars_err_clear(&err);
	for (size_t i = 0; i < sizeof(big); i++)
		assert_int_equal(kars_sse_usage_feed(&p, big + i, 1, &err), 0);
	cap = p.cap;
	assert_true(cap >= sizeof(big) - 8 && cap <= 8192);
	for (size_t i = 0; i < sizeof(big); i++)
		assert_int_equal(kars_sse_usage_feed(&p, big + i, 1, &err), 0);
	assert_int_equal(p.cap, cap);
	assert_int_equal(p.usage.events, 2);
	assert_int_equal(p.usage.total_tokens, 1);
	kars_sse_usage_release(&p);
}

static void test_malformed_json(void **state)
{
	/* the second event's data has a trailing comma; jansson stops after
	 * the '}' that follows it, 20 bytes into the data */
	static const char s[] = "data: {\"choices\":[]}\n\n"
				"data: {\"id\":\"chatcmpl-1\",}\n\n"
				"data: {\"choices\":[],\"usage\":{\"total_tokens\":9}}\n\n";
	static const char multi[] = "data: {\"choices\":\n"
				    "data: ]}\n\n";
	size_t start = offset_of(s, "{\"id\"");
	struct outcome o, o1;

	run_whole(s, N(s), 0, &o);
	assert_int_equal(o.ret, -EINVAL);
	assert_err_byte(&o.err, "SSE event data at byte %zu", start);
	assert_err_byte(&o.err, "invalid JSON at byte %zu", start + 20);
	/* parsing stopped: the usage after it is not taken */
	assert_false(o.u.has_usage);
	assert_int_equal(o.u.events, 2);
	run_chunks(s, N(s), 1, 0, &o1);
	expect_same(&o, &o1, "1-byte chunks");
	expect_any_split(s, N(s), 0, &o);

	run_whole(multi, N(multi), 0, &o);
	assert_int_equal(o.ret, -EINVAL);
	assert_err_contains(&o.err, "SSE event data at byte 6");
	assert_err_contains(&o.err, "of its 2 data lines joined");

	/* an event whose data is empty is not dispatched (WHATWG SSE), in any
	 * chunking: a fuzzer found the error text depended on it */
	run_whole("data:\n\n", 7, 0, &o);
	assert_int_equal(o.ret, 0);
	assert_int_equal(o.u.events, 0);
	run_chunks("data:\n\n", 7, 1, 0, &o1);
	assert_int_equal(o1.ret, 0);
	assert_int_equal(o1.u.events, 0);
	/* JSON, but not an object */
	run_whole("data: [1]\n\n", 11, 0, &o);
	assert_int_equal(o.ret, -EINVAL);
	assert_err_contains(&o.err, "expected a JSON object");
}

static void test_bad_usage_types(void **state)
{
	static const char s[] = "data: {\"choices\":[]}\n\n"
				"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":\"12\"}}\n\n";
	static const char neg[] =
	    "event: response.completed\n"
	    "data: {\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":1,"
	    "\"output_tokens\":-4}}}\n\n";
	struct outcome o;

	run_whole(s, N(s), 0, &o);
	assert_int_equal(o.ret, -EINVAL);
	assert_err_byte(&o.err, "SSE event data at byte %zu", offset_of(s + 1, "data: ") + 7);
	assert_err_contains(&o.err, "usage.prompt_tokens: expected a non-negative integer");
	run_whole(neg, N(neg), 0, &o);
	assert_int_equal(o.ret, -EINVAL);
	assert_err_contains(&o.err,
			    "response.usage.output_tokens: expected a non-negative integer");
}

static void test_zero_length_and_empty(void **state)
{
	struct kars_sse_usage p;
	struct kars_err err = {0};

	kars_sse_usage_init(&p, 0);
	assert_int_equal(p.max_event, KARS_SSE_MAX_EVENT_DEFAULT);
	assert_int_equal(kars_sse_usage_feed(&p, "", 0, &err), 0);
	assert_int_equal(kars_sse_usage_finish(&p, &err), 0);
	assert_false(p.usage.truncated);
	assert_false(p.usage.done);
	assert_int_equal(p.usage.events, 0);
	kars_sse_usage_release(&p);
}

/* --- whole bodies --------------------------------------------------------------- */

static void body_ok(enum kars_openai_route route, const char *body, struct kars_usage *u)
{
	struct kars_err err = {0};

	if (kars_openai_usage_from_body(route, body, strlen(body), u, &err))
		fail_msg("%s body refused: %s", kars_openai_route_name(route), err.msg);
}

static void test_body_chat_and_completions(void **state)
{
	static const char chat[] =
	    "{\n  \"id\": \"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT\",\n  \"object\": "
	    "\"chat.completion\",\n  \"created\": 1741569952,\n  \"model\": "
	    "\"gpt-4.1-2025-04-14\",\n  \"choices\": [\n    {\n      \"index\": 0,\n      "
	    "\"message\": {\n        \"role\": \"assistant\",\n        \"content\": \"Hello! How "
	    "can I assist you today?\",\n        \"refusal\": null,\n        \"annotations\": []\n "
	    "     },\n      \"logprobs\": null,\n      \"finish_reason\": \"stop\"\n    }\n  ],\n  "
	    "\"usage\": {\n    \"prompt_tokens\": 19,\n    \"completion_tokens\": 10,\n    "
	    "\"total_tokens\": 29,\n    \"prompt_tokens_details\": {\n      \"cached_tokens\": 0,\n "
	    "     \"audio_tokens\": 0\n    },\n    \"completion_tokens_details\": {\n      "
	    "\"reasoning_tokens\": 0,\n      \"audio_tokens\": 0,\n      "
	    "\"accepted_prediction_tokens\": 0,\n      \"rejected_prediction_tokens\": 0\n    }\n "
	    " },\n  \"service_tier\": \"default\",\n  \"system_fingerprint\": \"fp_799e4ca3f1\"\n}\n";
	static const char completions[] =
	    "{\"id\":\"cmpl-9fGh5Jk3Lm7Np1Qr5St9Uv3Wx7Yz1\",\"object\":\"text_completion\","
	    "\"created\":1751980800,\"model\":\"gpt-3.5-turbo-instruct:20230824-v2\",\"choices\":[{"
	    "\"text\":\"\\n\\nThis is indeed a test\",\"index\":0,\"logprobs\":null,\"finish_"
	    "reason\":\"length\"}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7,\"total_"
	    "tokens\":12}}";
	struct kars_usage u;

	body_ok(KARS_OPENAI_CHAT_COMPLETIONS, chat, &u);
	assert_true(u.has_usage);
	assert_int_equal(u.prompt_tokens, 19);
	assert_int_equal(u.completion_tokens, 10);
	assert_int_equal(u.total_tokens, 29);
	assert_string_equal(u.model, "gpt-4.1-2025-04-14");
	assert_false(u.filter.filtered);
	assert_false(u.done);
	body_ok(KARS_OPENAI_COMPLETIONS, completions, &u);
	assert_int_equal(u.prompt_tokens, 5);
	assert_int_equal(u.completion_tokens, 7);
	assert_int_equal(u.total_tokens, 12);
	assert_string_equal(u.model, "gpt-3.5-turbo-instruct:20230824-v2");
}

static void test_body_embeddings(void **state)
{
	static const char body[] =
	    "{\n  \"object\": \"list\",\n  \"data\": [\n    {\n      \"object\": \"embedding\",\n "
	    "     \"index\": 0,\n      \"embedding\": [\n        -0.006929283,\n        "
	    "-0.005336422,\n        -4.547132e-05,\n        -0.024047505\n      ]\n    }\n  ],\n "
	    " \"model\": \"text-embedding-3-small\",\n  \"usage\": {\n    \"prompt_tokens\": 8,\n "
	    "   \"total_tokens\": 8\n  }\n}\n";
	struct kars_usage u;

	body_ok(KARS_OPENAI_EMBEDDINGS, body, &u);
	assert_true(u.has_usage);
	assert_int_equal(u.prompt_tokens, 8);
	assert_int_equal(u.completion_tokens, 0);
	assert_int_equal(u.total_tokens, 8);
	assert_string_equal(u.model, "text-embedding-3-small");
}

static void test_body_responses(void **state)
{
	static const char body[] =
	    RESP_OBJ("completed", RESP_MSG("completed", RESP_TEXT("Under the stars.")), RESP_USAGE);
	struct kars_usage u;

	body_ok(KARS_OPENAI_RESPONSES, body, &u);
	assert_true(u.has_usage);
	assert_int_equal(u.prompt_tokens, 37);
	assert_int_equal(u.completion_tokens, 203);
	assert_int_equal(u.total_tokens, 240);
	assert_int_equal(u.reasoning_tokens, 192);
	assert_string_equal(u.model, "o4-mini-2025-04-16");
	assert_false(u.error.present);
	/* the same body read with the chat names finds no token counts */
	body_ok(KARS_OPENAI_CHAT_COMPLETIONS, body, &u);
	assert_true(u.has_usage);
	assert_int_equal(u.total_tokens, 240);
	assert_int_equal(u.prompt_tokens, 0);
}

static void test_body_errors(void **state)
{
	/* Azure refusing a prompt: HTTP 400 with the filter result inside */
	static const char azure400[] =
	    "{\"error\":{\"message\":\"The response was filtered due to the prompt triggering Azure "
	    "OpenAI's content management policy.\",\"type\":null,\"param\":\"prompt\",\"code\":"
	    "\"content_filter\",\"status\":400,\"innererror\":{\"code\":"
	    "\"ResponsibleAIPolicyViolation\",\"content_filter_result\":{" AZ_SAFE("hate") "," AZ_CLEAN(
		"jailbreak") "," AZ_SAFE("self_harm") ",\"sexual\":{"
						      "\"filtered\":true,\"severity\":"
						      "\"high\"}," AZ_SAFE("violence") "}}}}";
	static const char rate[] =
	    "{\n    \"error\": {\n        \"message\": \"Rate limit reached for gpt-4o-mini in "
	    "organization org-abc on tokens per min (TPM): Limit 200000, Used 199990, Requested "
	    "37.\",\n        \"type\": \"tokens\",\n        \"param\": null,\n        \"code\": "
	    "\"rate_limit_exceeded\"\n    }\n}\n";
	struct kars_err err = {0};
	struct kars_usage u;

	body_ok(KARS_OPENAI_CHAT_COMPLETIONS, azure400, &u);
	assert_true(u.error.present);
	assert_string_equal(u.error.code, "content_filter");
	assert_string_equal(u.error.type, "error");
	assert_true(u.filter.filtered);
	assert_true(u.filter.prompt);
	assert_string_equal(u.filter.category, "sexual");
	assert_int_equal(u.filter.severity, KARS_CF_SEVERITY_HIGH);
	assert_false(u.has_usage);
	body_ok(KARS_OPENAI_RESPONSES, rate, &u);
	assert_true(u.error.present);
	assert_string_equal(u.error.type, "tokens");
	assert_string_equal(u.error.code, "rate_limit_exceeded");

	assert_int_equal(
	    kars_openai_usage_from_body(KARS_OPENAI_EMBEDDINGS, "{\"usage\": {]", 12, &u, &err),
	    -EINVAL);
	assert_err_contains(&err, "response body: invalid JSON at byte 12");
	kars_err_clear(&err);
	assert_int_equal(kars_openai_usage_from_body(KARS_OPENAI_EMBEDDINGS,
						     "{\"usage\": {\"prompt_tokens\": 1.5}}", 33,
						     &u, &err),
			 -EINVAL);
	assert_err_contains(&err, "usage.prompt_tokens: expected a non-negative integer");
	kars_err_clear(&err);
	assert_int_equal(kars_openai_usage_from_body(KARS_OPENAI_UNKNOWN, "{}", 2, &u, &err),
			 -EINVAL);
	kars_err_clear(&err);
	assert_int_equal(
	    kars_openai_usage_from_body(KARS_OPENAI_CHAT_COMPLETIONS, "[]", 2, &u, &err), -EINVAL);
	assert_err_contains(&err, "expected a JSON object");
}

static void test_routes(void **state)
{
	assert_int_equal(kars_openai_route_from_path("/v1/chat/completions"),
			 KARS_OPENAI_CHAT_COMPLETIONS);
	assert_int_equal(
	    kars_openai_route_from_path("/openai/v1/chat/completions?api-version=preview"),
	    KARS_OPENAI_CHAT_COMPLETIONS);
	assert_int_equal(kars_openai_route_from_path("/v1/completions"), KARS_OPENAI_COMPLETIONS);
	assert_int_equal(kars_openai_route_from_path("/openai/v1/embeddings"),
			 KARS_OPENAI_EMBEDDINGS);
	assert_int_equal(kars_openai_route_from_path("/v1/responses"), KARS_OPENAI_RESPONSES);
	assert_int_equal(kars_openai_route_from_path("/v1/responses/resp_1"), KARS_OPENAI_UNKNOWN);
	assert_int_equal(kars_openai_route_from_path("/v1/chat/completionsx"), KARS_OPENAI_UNKNOWN);
	assert_int_equal(kars_openai_route_from_path("/openai/v2/embeddings"), KARS_OPENAI_UNKNOWN);
	assert_int_equal(kars_openai_route_from_path("/v1/models"), KARS_OPENAI_UNKNOWN);
	assert_int_equal(kars_openai_route_from_path(NULL), KARS_OPENAI_UNKNOWN);
	assert_string_equal(kars_openai_route_name(KARS_OPENAI_RESPONSES), "responses");
	assert_string_equal(kars_cf_category_name(KARS_CF_SELF_HARM), "self_harm");
	assert_string_equal(kars_cf_severity_name(KARS_CF_SEVERITY_MEDIUM), "medium");
}

/* --- include_usage ----------------------------------------------------------------- */

/* Runs the injection on body; returns its result and the body it left. */
static int inject(const char *body, char *out, size_t outlen, struct kars_err *err)
{
	json_error_t jerr;
	json_t *j = json_loads(body, 0, &jerr);
	char *s;
	int ret;

	assert_non_null(j);
	ret = kars_openai_inject_include_usage(j, err);
	s = json_dumps(j, JSON_COMPACT);
	snprintf(out, outlen, "%s", s);
	free(s);
	json_decref(j);
	return ret;
}

static void test_inject_include_usage(void **state)
{
	struct kars_err err = {0};
	char out[512];

	assert_int_equal(inject("{\"model\":\"m\",\"stream\":true}", out, sizeof(out), &err),
			 KARS_INCLUDE_USAGE_INJECTED);
	assert_string_equal(
	    out, "{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":true}}");
	assert_int_equal(
	    inject("{\"stream\":true,\"stream_options\":null}", out, sizeof(out), &err),
	    KARS_INCLUDE_USAGE_INJECTED);
	assert_string_equal(out, "{\"stream\":true,\"stream_options\":{\"include_usage\":true}}");
	/* other stream options are kept */
	assert_int_equal(
	    inject("{\"stream\":true,\"stream_options\":{\"include_obfuscation\":false}}", out,
		   sizeof(out), &err),
	    KARS_INCLUDE_USAGE_INJECTED);
	assert_string_equal(out,
			    "{\"stream\":true,\"stream_options\":{\"include_obfuscation\":false,"
			    "\"include_usage\":true}}");
	assert_int_equal(inject("{\"stream\":true,\"stream_options\":{\"include_usage\":null}}",
				out, sizeof(out), &err),
			 KARS_INCLUDE_USAGE_INJECTED);
	assert_string_equal(out, "{\"stream\":true,\"stream_options\":{\"include_usage\":true}}");
	assert_int_equal(inject("{\"stream\":true,\"stream_options\":{\"include_usage\":true}}",
				out, sizeof(out), &err),
			 KARS_INCLUDE_USAGE_ASKED);
	assert_string_equal(out, "{\"stream\":true,\"stream_options\":{\"include_usage\":true}}");
	/* an explicit false cannot opt out of accounting */
	assert_int_equal(inject("{\"stream\":true,\"stream_options\":{\"include_usage\":false}}",
				out, sizeof(out), &err),
			 KARS_INCLUDE_USAGE_FORCED);
	assert_string_equal(out, "{\"stream\":true,\"stream_options\":{\"include_usage\":true}}");
	/* not streamed: untouched */
	assert_int_equal(inject("{\"model\":\"m\"}", out, sizeof(out), &err),
			 KARS_INCLUDE_USAGE_NO_STREAM);
	assert_string_equal(out, "{\"model\":\"m\"}");
	assert_int_equal(inject("{\"stream\":false,\"stream_options\":{\"include_usage\":false}}",
				out, sizeof(out), &err),
			 KARS_INCLUDE_USAGE_NO_STREAM);
	assert_int_equal(inject("{\"stream\":null}", out, sizeof(out), &err),
			 KARS_INCLUDE_USAGE_NO_STREAM);
	assert_int_equal(err.code, 0);

	assert_int_equal(inject("{\"stream\":\"true\"}", out, sizeof(out), &err), -EINVAL);
	assert_err_contains(&err, "stream: expected true or false");
	kars_err_clear(&err);
	assert_int_equal(inject("{\"stream\":true,\"stream_options\":[]}", out, sizeof(out), &err),
			 -EINVAL);
	assert_err_contains(&err, "stream_options: expected an object");
	kars_err_clear(&err);
	assert_int_equal(inject("{\"stream\":true,\"stream_options\":{\"include_usage\":1}}", out,
				sizeof(out), &err),
			 -EINVAL);
	assert_err_contains(&err, "stream_options.include_usage");
	kars_err_clear(&err);
	assert_int_equal(inject("[]", out, sizeof(out), &err), -EINVAL);
	assert_err_contains(&err, "request body: expected a JSON object");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_chat_stream),
    cmocka_unit_test(test_responses_stream),
    cmocka_unit_test(test_line_ends),
    cmocka_unit_test(test_missing_usage),
    cmocka_unit_test(test_done_and_truncation),
    cmocka_unit_test(test_comments_fields_multiline),
    cmocka_unit_test(test_total_computed_when_absent),
    cmocka_unit_test(test_bom),
    cmocka_unit_test(test_content_filter),
    cmocka_unit_test(test_content_filter_prompt),
    cmocka_unit_test(test_error_events),
    cmocka_unit_test(test_error_message_cut_at_utf8_boundary),
    cmocka_unit_test(test_oversize_event),
    cmocka_unit_test(test_malformed_json),
    cmocka_unit_test(test_bad_usage_types),
    cmocka_unit_test(test_zero_length_and_empty),
    cmocka_unit_test(test_body_chat_and_completions),
    cmocka_unit_test(test_body_embeddings),
    cmocka_unit_test(test_body_responses),
    cmocka_unit_test(test_body_errors),
    cmocka_unit_test(test_routes),
    cmocka_unit_test(test_inject_include_usage),
};

KARS_UNIT_MAIN(tests)
