/* proxy.c - kars-router's HTTP handlers: the OpenAI routes, relayed.
 *
 * A request is checked (route, method, a JSON object body), its headers are
 * filtered through an allowlist (the agent's Authorization, api-key,
 * cookies, organisation and project headers never leave), the sandbox's
 * credential is added, and the upstream's answer is relayed as it arrives,
 * so streams (SSE) flow chunk by chunk. Errors are in the OpenAI shape.
 */
#include <sys/queue.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"
#include "router.h"
#include "upstream.h"

#define MAX_REQUEST_BODY (16u << 20)

static const struct route {
	const char *path;
	enum evhttp_cmd_type method;
	const char *upstream_path;
	const char *name;
} routes[KARS_ROUTE__COUNT] = {
    [KARS_ROUTE_CHAT] = {"/v1/chat/completions", EVHTTP_REQ_POST, "/chat/completions", "chat"},
    [KARS_ROUTE_RESPONSES] = {"/v1/responses", EVHTTP_REQ_POST, "/responses", "responses"},
    [KARS_ROUTE_COMPLETIONS] = {"/v1/completions", EVHTTP_REQ_POST, "/completions", "completions"},
    [KARS_ROUTE_EMBEDDINGS] = {"/v1/embeddings", EVHTTP_REQ_POST, "/embeddings", "embeddings"},
    [KARS_ROUTE_MODELS] = {"/v1/models", EVHTTP_REQ_GET, "/models", "models"},
};

/* Request headers the agent may pass on; everything else is dropped. */
static bool forward_request_header(const char *name)
{
	return !strcasecmp(name, "Content-Type") || !strcasecmp(name, "Accept") ||
	       !strcasecmp(name, "OpenAI-Beta") || !strcasecmp(name, "User-Agent") ||
	       !strncasecmp(name, "X-Stainless-", 12);
}

/* Response headers the agent gets back. */
static bool forward_response_header(const char *name)
{
	return !strcasecmp(name, "Content-Type") || !strcasecmp(name, "x-request-id") ||
	       !strcasecmp(name, "openai-processing-ms") || !strcasecmp(name, "Retry-After") ||
	       !strncasecmp(name, "x-ratelimit-", 12);
}

static int status_class(int status)
{
	return status >= 100 && status < 600 ? status / 100 : 0;
}

__attribute__((format(printf, 5, 6))) static void send_error(struct evhttp_request *req, int status,
							     const char *type, const char *code,
							     const char *fmt, ...)
{
	char msg[512];
	struct evbuffer *out = evbuffer_new();
	json_t *body;
	char *text;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	body = json_pack("{s:{s:s,s:s,s:s,s:n}}", "error", "message", msg, "type", type, "code",
			 code, "param");
	text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	if (out && text)
		evbuffer_add_printf(out, "%s\n", text);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "application/json");
	evhttp_send_reply(req, status, NULL, out);
	if (out)
		evbuffer_free(out);
	free(text);
	json_decref(body);
}

/* One request relayed to the upstream. */
struct exchange {
	struct kars_router *r;
	struct evhttp_request *req;
	enum kars_route route;
	CURL *easy;
	struct curl_slist *headers;
	char *body;
	size_t body_len;
	long status;
	bool started;
	struct evkeyvalq response_headers;
	struct evbuffer *chunk;
};

static void exchange_free(struct exchange *x)
{
	if (x->easy)
		curl_easy_cleanup(x->easy);
	curl_slist_free_all(x->headers);
	evhttp_clear_headers(&x->response_headers);
	if (x->chunk)
		evbuffer_free(x->chunk);
	free(x->body);
	free(x);
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	struct exchange *x = arg;
	size_t len = size * n;
	char line[1024], *colon, *value;

	if (len >= sizeof(line) || len < 2)
		return len;
	memcpy(line, data, len);
	line[len] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	if (strncmp(line, "HTTP/", 5) == 0) {
		/* A new status line (after a 100 Continue, say): start over. */
		evhttp_clear_headers(&x->response_headers);
		return len;
	}
	colon = strchr(line, ':');
	if (!colon)
		return len;
	*colon = '\0';
	for (value = colon + 1; *value == ' ' || *value == '\t'; value++)
		;
	if (forward_response_header(line))
		evhttp_add_header(&x->response_headers, line, value);
	return len;
}

static void start_reply(struct exchange *x)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(x->req);
	struct evkeyval *h;

	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
	TAILQ_FOREACH(h, &x->response_headers, next)
	{
		evhttp_add_header(out, h->key, h->value);
	}
	evhttp_send_reply_start(x->req, (int)x->status, NULL);
	x->started = true;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct exchange *x = arg;
	size_t len = size * n;

	/* The agent went away: stop the upstream transfer too. */
	if (!evhttp_request_get_connection(x->req))
		return 0;
	if (!x->started)
		start_reply(x);
	evbuffer_add(x->chunk, data, len);
	evhttp_send_reply_chunk(x->req, x->chunk);
	return len;
}

static void on_cut_flushed(struct bufferevent *bev, void *arg)
{
	evhttp_connection_free(arg);
}

static void on_cut_event(struct bufferevent *bev, short what, void *arg)
{
	evhttp_connection_free(arg);
}

/* Closes the agent's connection without the final chunk, once what was
 * already relayed has been written: the connection is ours alone from here
 * (its request is never finished), so its callbacks may be too. */
static void cut_connection(struct evhttp_connection *evcon)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);

	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		evhttp_connection_free(evcon);
		return;
	}
	bufferevent_disable(bev, EV_READ);
	bufferevent_setcb(bev, NULL, on_cut_flushed, on_cut_event, evcon);
	bufferevent_enable(bev, EV_WRITE);
}

static void on_done(CURL *easy, CURLcode result, void *arg)
{
	struct exchange *x = arg;
	struct kars_router *r = x->r;

	if (result != CURLE_OK && !x->started) {
		r->upstream_errors++;
		r->requests[x->route][5]++;
		log_warn("upstream %s: %s", routes[x->route].name, curl_easy_strerror(result));
		send_error(x->req, 502, "upstream_error", "upstream_unavailable",
			   "the model upstream could not be reached: %s",
			   curl_easy_strerror(result));
	} else {
		if (!x->started)
			start_reply(x);
		r->requests[x->route][status_class((int)x->status)]++;
		if (result != CURLE_OK && evhttp_request_get_connection(x->req)) {
			/* The upstream broke off mid-answer: so does the agent's
			 * connection, without the last chunk, so that the agent
			 * sees a cut stream, not a complete one. Freeing the
			 * connection frees the request. */
			r->upstream_errors++;
			log_warn("upstream %s: %s after the reply started; cutting the agent's "
				 "stream too",
				 routes[x->route].name, curl_easy_strerror(result));
			cut_connection(evhttp_request_get_connection(x->req));
		} else {
			/* Ends the reply; frees the request even if the agent is gone. */
			evhttp_send_reply_end(x->req);
		}
	}
	exchange_free(x);
}

static int add_header(struct exchange *x, const char *name, const char *value)
{
	char line[8192];
	struct curl_slist *l;

	if ((size_t)snprintf(line, sizeof(line), "%s: %s", name, value) >= sizeof(line))
		return -1;
	l = curl_slist_append(x->headers, line);
	if (!l)
		return -1;
	x->headers = l;
	return 0;
}

static int build_transfer(struct exchange *x, const struct route *route, const char *item)
{
	struct kars_router *r = x->r;
	const struct kars_router_config *c = &r->cfg;
	struct evkeyval *h;
	char url[2048];

	snprintf(url, sizeof(url), "%s%s%s%s%s", c->base_url,
		 c->kind == KARS_UPSTREAM_AZURE ? "/openai/v1" : "", route->upstream_path,
		 item ? "/" : "", item ? item : "");
	x->easy = curl_easy_init();
	if (!x->easy)
		return -1;
	TAILQ_FOREACH(h, evhttp_request_get_input_headers(x->req), next)
	{
		if (forward_request_header(h->key) && add_header(x, h->key, h->value))
			return -1;
	}
	x->headers = curl_slist_append(x->headers, r->credential_header);
	/* No "Expect: 100-continue" round trip for request bodies. */
	x->headers = curl_slist_append(x->headers, "Expect:");
	if (!x->headers)
		return -1;
	curl_easy_setopt(x->easy, CURLOPT_URL, url);
	curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers);
	curl_easy_setopt(x->easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(x->easy, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(x->easy, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
	/* An idle timeout, not a total one: a stream may run for minutes, but
	 * not sit silent. */
	curl_easy_setopt(x->easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(x->easy, CURLOPT_LOW_SPEED_TIME, c->idle_timeout_s);
	curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(x->easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(x->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(x->easy, CURLOPT_ACCEPT_ENCODING, NULL);
	if (route->method == EVHTTP_REQ_POST) {
		curl_easy_setopt(x->easy, CURLOPT_POST, 1L);
		curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, x->body);
		curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->body_len);
	}
	return 0;
}

/* The body, whole, as a NUL-terminated copy (the upstream gets it as is). */
static char *take_body(struct evhttp_request *req, size_t *len)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	char *body;

	*len = evbuffer_get_length(in);
	body = malloc(*len + 1);
	if (!body)
		return NULL;
	evbuffer_remove(in, body, *len);
	body[*len] = '\0';
	return body;
}

/* A model id as it may appear in a path: no '/', nothing to escape. */
static bool model_id_ok(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > 256)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.' || c == ':'))
			return false;
	}
	return true;
}

/* item: the model id of GET /v1/models/{id}, else NULL. */
static void handle_route(struct kars_router *r, struct evhttp_request *req, enum kars_route id,
			 const char *item)
{
	const struct route *route = &routes[id];
	struct exchange *x;
	struct kars_err err = {0};

	if (evhttp_request_get_command(req) != route->method) {
		r->rejected++;
		send_error(req, 405, "invalid_request_error", "method_not_allowed",
			   "%s takes %s only", route->path,
			   route->method == EVHTTP_REQ_POST ? "POST" : "GET");
		return;
	}
	if (item && !model_id_ok(item)) {
		r->rejected++;
		send_error(req, 400, "invalid_request_error", "invalid_model_id",
			   "model id: only letters, digits and - _ . : are allowed");
		return;
	}
	x = calloc(1, sizeof(*x));
	if (!x) {
		send_error(req, 500, "server_error", "out_of_memory", "out of memory");
		return;
	}
	x->r = r;
	x->req = req;
	x->route = id;
	TAILQ_INIT(&x->response_headers);
	x->chunk = evbuffer_new();
	x->body = take_body(req, &x->body_len);
	if (!x->chunk || !x->body) {
		exchange_free(x);
		send_error(req, 500, "server_error", "out_of_memory", "out of memory");
		return;
	}
	if (route->method == EVHTTP_REQ_POST) {
		json_t *parsed = kars_json_parse(x->body, x->body_len, &err);

		if (!json_is_object(parsed)) {
			r->rejected++;
			send_error(req, 400, "invalid_request_error", "invalid_json",
				   "the request body must be a JSON object: %s",
				   parsed ? "got another JSON value" : err.msg);
			json_decref(parsed);
			exchange_free(x);
			return;
		}
		json_decref(parsed);
	}
	if (build_transfer(x, route, item) ||
	    kars_upstream_start(r->upstream, x->easy, on_done, x)) {
		send_error(req, 500, "server_error", "internal_error",
			   "could not start the upstream request");
		exchange_free(x);
	}
}

static void reply_text(struct evhttp_request *req, int status, const char *type, const char *text)
{
	struct evbuffer *out = evbuffer_new();

	if (out)
		evbuffer_add(out, text, strlen(text));
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
	evhttp_send_reply(req, status, NULL, out);
	if (out)
		evbuffer_free(out);
}

static void handle_metrics(struct kars_router *r, struct evhttp_request *req)
{
	static const char *const classes[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
	struct evbuffer *out = evbuffer_new();

	if (!out) {
		send_error(req, 500, "server_error", "out_of_memory", "out of memory");
		return;
	}
	evbuffer_add_printf(out, "# HELP kars_router_requests_total Inference requests by route "
				 "and status class.\n# TYPE kars_router_requests_total counter\n");
	for (int i = 0; i < KARS_ROUTE__COUNT; i++)
		for (int c = 0; c < 6; c++)
			if (r->requests[i][c])
				evbuffer_add_printf(out,
						    "kars_router_requests_total{sandbox=\"%s\","
						    "route=\"%s\",status=\"%s\"} %llu\n",
						    r->cfg.sandbox, routes[i].name, classes[c],
						    (unsigned long long)r->requests[i][c]);
	evbuffer_add_printf(
	    out,
	    "# HELP kars_router_upstream_errors_total Upstream transport failures.\n"
	    "# TYPE kars_router_upstream_errors_total counter\n"
	    "kars_router_upstream_errors_total{sandbox=\"%s\"} %llu\n"
	    "# HELP kars_router_rejected_total Requests refused before the upstream.\n"
	    "# TYPE kars_router_rejected_total counter\n"
	    "kars_router_rejected_total{sandbox=\"%s\"} %llu\n",
	    r->cfg.sandbox, (unsigned long long)r->upstream_errors, r->cfg.sandbox,
	    (unsigned long long)r->rejected);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "text/plain; version=0.0.4");
	evhttp_send_reply(req, 200, NULL, out);
	evbuffer_free(out);
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct kars_router *r = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;

	if (!path) {
		send_error(req, 400, "invalid_request_error", "bad_uri", "malformed request URI");
		return;
	}
	for (int i = 0; i < KARS_ROUTE__COUNT; i++) {
		if (strcmp(path, routes[i].path) == 0) {
			handle_route(r, req, (enum kars_route)i, NULL);
			return;
		}
	}
	if (strncmp(path, "/v1/models/", 11) == 0) {
		handle_route(r, req, KARS_ROUTE_MODELS, path + 11);
		return;
	}
	if (strcmp(path, "/healthz") == 0) {
		reply_text(req, 200, "text/plain", "ok\n");
	} else if (strcmp(path, "/readyz") == 0) {
		reply_text(req, 200, "application/json", "{\"ready\":true}\n");
	} else if (strcmp(path, "/metrics") == 0) {
		handle_metrics(r, req);
	} else {
		r->rejected++;
		send_error(req, 404, "invalid_request_error", "unknown_url",
			   "kars-router does not serve %s (served: /v1/chat/completions, "
			   "/v1/responses, /v1/completions, /v1/embeddings, /v1/models)",
			   path);
	}
}

void kars_router_routes_init(struct kars_router *r)
{
	/* libevent's connection timeout (50 s by default) also runs while a reply
	 * streams; a stream may be quiet as long as the upstream idle timeout. */
	struct timeval idle = {.tv_sec = r->cfg.idle_timeout_s + 5};

	evhttp_set_timeout_tv(r->http, &idle);
	evhttp_set_max_body_size(r->http, MAX_REQUEST_BODY);
	evhttp_set_allowed_methods(r->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
	evhttp_set_gencb(r->http, on_request, r);
}
