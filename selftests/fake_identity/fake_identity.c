/* fake_identity.c - an Azure AD token endpoint and an Azure IMDS endpoint,
 * for testing kars-router's upstream credentials without a cloud account.
 *
 * The router's credential code must handle what the real services send, so
 * this server answers in their wire format:
 *
 *   POST /{tenant}/oauth2/v2.0/token   the AAD v2 endpoint, client_credentials
 *        grant with a federated client_assertion (workload identity). The form
 *        is checked field by field as AAD does; success is
 *        {"token_type":"Bearer","expires_in":N,"ext_expires_in":N,
 *         "access_token":"..."}, failure AAD's error shape
 *        {"error","error_description":"AADSTS...\r\nTrace ID: ...",
 *         "error_codes":[..],"timestamp","trace_id","correlation_id",
 *         "error_uri"}.
 *   GET  /metadata/identity/oauth2/token?api-version=..&resource=..[&client_id=..]
 *        IMDS: requires "Metadata: true"; numbers come as strings
 *        ({"access_token","client_id","expires_in":"3599","expires_on",
 *          "ext_expires_in","not_before","resource","token_type"}).
 *
 * Test knobs (flags set them at start, POST /_fake/config?k=v&... at run
 * time): lifetime (expires_in, seconds), delay_ms (before answering),
 * fail_status (answer token requests with this status and the real error
 * body), fail_count (how many requests fail; -1: all), retry_after (a
 * Retry-After header on failures). GET /_fake/stats returns counters and the
 * last form fields seen, so tests can prove that N concurrent callers caused
 * one token request, or that a rotated token file was re-read. Tokens are
 * "fake-aad-N" / "fake-imds-N", N counting tokens issued. It listens only on
 * the address it is given and connects nowhere.
 */
#include <errno.h>
#include <getopt.h>
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
#include <netinet/in.h>

#include "err.h"
#include "parse.h"

#define JWT_BEARER "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

static struct {
	struct event_base *base;
	const char *tenant;    /* NULL: any */
	const char *client_id; /* NULL: any */
	long lifetime;
	long delay_ms;
	int fail_status;
	long fail_count; /* -1: every request */
	long retry_after;
	/* stats */
	long aad_requests, imds_requests, tokens_issued, failures_sent;
	long in_flight, max_in_flight;
	json_t *last; /* last token request's fields */
	bool verbose;
} fake = {.lifetime = 3599, .fail_count = -1};

/* --- replies ------------------------------------------------------------------- */

struct reply {
	struct evhttp_request *req;
	struct evhttp_connection *evcon;
	struct event *timer;
	int code;
	char *body;
	char retry_after[24];
};

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
	case 405:
		return "Method Not Allowed";
	case 429:
		return "Too Many Requests";
	case 500:
		return "Internal Server Error";
	case 503:
		return "Service Unavailable";
	default:
		return code < 500 ? "Client Error" : "Server Error";
	}
}

static void reply_free(struct reply *r)
{
	fake.in_flight--;
	if (r->timer)
		event_free(r->timer);
	free(r->body);
	free(r);
}

static void reply_send(struct reply *r)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
	struct evbuffer *buf = evbuffer_new();

	evhttp_add_header(h, "Content-Type", "application/json; charset=utf-8");
	evhttp_add_header(h, "Cache-Control", "no-store, no-cache");
	evhttp_add_header(h, "Pragma", "no-cache");
	if (r->retry_after[0])
		evhttp_add_header(h, "Retry-After", r->retry_after);
	evbuffer_add(buf, r->body, strlen(r->body));
	evhttp_send_reply(r->req, r->code, reason(r->code), buf);
	evbuffer_free(buf);
}

/* The client went away while we waited: libevent detached the request. */
static void reply_on_close(struct evhttp_connection *evcon, void *arg)
{
	struct reply *r = arg;

	if (fake.verbose)
		fprintf(stderr, "fake-identity: client left before the answer\n");
	if (!evhttp_request_get_connection(r->req))
		evhttp_send_reply_end(r->req);
	reply_free(r);
}

static void reply_later(evutil_socket_t fd, short what, void *arg)
{
	struct reply *r = arg;

	evhttp_connection_set_closecb(r->evcon, NULL, NULL);
	reply_send(r);
	reply_free(r);
}

/* Sends body (steals it, a JSON document) now or after delay_ms. */
static void reply(struct evhttp_request *req, int code, json_t *body, bool token_call)
{
	struct reply *r = calloc(1, sizeof(*r));

	fake.in_flight++;
	if (fake.in_flight > fake.max_in_flight)
		fake.max_in_flight = fake.in_flight;
	if (!r || !(r->body = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER))) {
		json_decref(body);
		if (r)
			reply_free(r);
		else
			fake.in_flight--;
		evhttp_send_error(req, 500, NULL);
		return;
	}
	json_decref(body);
	r->req = req;
	r->code = code;
	if (code != 200 && fake.retry_after > 0)
		snprintf(r->retry_after, sizeof(r->retry_after), "%ld", fake.retry_after);
	if (!token_call || fake.delay_ms <= 0) {
		reply_send(r);
		reply_free(r);
		return;
	}
	r->evcon = evhttp_request_get_connection(req);
	r->timer = evtimer_new(fake.base, reply_later, r);
	if (!r->timer) {
		reply_send(r);
		reply_free(r);
		return;
	}
	evhttp_connection_set_closecb(r->evcon, reply_on_close, r);
	struct timeval tv = {fake.delay_ms / 1000, (fake.delay_ms % 1000) * 1000};

	evtimer_add(r->timer, &tv);
}

/* --- the AAD shapes ---------------------------------------------------------------- */

static void utc_now(char *out, size_t len, const char *fmt)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, len, fmt, &tm);
}

static void fake_guid(char *out, size_t len)
{
	static unsigned long n;

	n++;
	snprintf(out, len, "%08lx-0000-4000-8000-%012lx", n * 2654435761ul & 0xffffffff,
		 (unsigned long)getpid() * 1000003ul + n);
}

/* AAD's error body: description first line "AADSTSnnnnn: text", then the
 * trace, correlation and timestamp lines, as login.microsoftonline.com does. */
static void aad_error(struct evhttp_request *req, int code, const char *error, long aadsts,
		      const char *text)
{
	char trace[64], corr[64], ts[32], ts_desc[32], desc[1024], uri[128];

	fake_guid(trace, sizeof(trace));
	fake_guid(corr, sizeof(corr));
	utc_now(ts, sizeof(ts), "%Y-%m-%d %H:%M:%SZ");
	utc_now(ts_desc, sizeof(ts_desc), "%Y-%m-%d %H:%M:%SZ");
	snprintf(desc, sizeof(desc),
		 "AADSTS%ld: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s", aadsts,
		 text, trace, corr, ts_desc);
	snprintf(uri, sizeof(uri), "https://login.microsoftonline.com/error?code=%ld", aadsts);
	reply(req, code,
	      json_pack("{s:s, s:s, s:[I], s:s, s:s, s:s, s:s}", "error", error,
			"error_description", desc, "error_codes", (json_int_t)aadsts, "timestamp",
			ts, "trace_id", trace, "correlation_id", corr, "error_uri", uri),
	      true);
}

/* A failure asked for by the knobs, in each service's shape. */
static bool forced_failure(struct evhttp_request *req, bool imds)
{
	int s = fake.fail_status;

	if (!s || fake.fail_count == 0)
		return false;
	if (fake.fail_count > 0)
		fake.fail_count--;
	fake.failures_sent++;
	if (imds) {
		reply(req, s,
		      json_pack("{s:s, s:s}", "error", s == 429 ? "too_many_requests" : "unknown",
				"error_description",
				s == 429 ? "Too many requests" : "Failed to get a token"),
		      true);
		return true;
	}
	if (s >= 500 || s == 429)
		aad_error(req, s, "temporarily_unavailable", 90033,
			  "A transient error has occurred. Please try again.");
	else if (s == 401)
		aad_error(req, s, "invalid_client", 70021,
			  "No matching federated identity record found for presented assertion.");
	else
		aad_error(req, s, "invalid_request", 90014,
			  "The request body must contain the following parameter: 'grant_type'.");
	return true;
}

static const char *field(struct evkeyvalq *q, const char *k)
{
	return evhttp_find_header(q, k);
}

static bool suffix(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);

	return n >= m && !strcmp(s + n - m, suf);
}

static void remember(const char *kind, struct evkeyvalq *q, const char *tenant)
{
	struct evkeyval *kv;

	json_decref(fake.last);
	fake.last = json_pack("{s:s}", "endpoint", kind);
	if (tenant)
		json_object_set_new(fake.last, "tenant", json_string(tenant));
	TAILQ_FOREACH(kv, q, next)
	json_object_set_new(fake.last, kv->key, json_string(kv->value));
}

static void handle_aad(struct evhttp_request *req, const char *tenant)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	const char *type =
	    evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
	struct evkeyvalq q = {0};
	const char *grant, *client, *scope, *atype, *assertion;
	size_t len = evbuffer_get_length(in);
	char *form = malloc(len + 1), text[512], token[64];
	const char *dot;

	fake.aad_requests++;
	if (!form) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	evbuffer_remove(in, form, len);
	form[len] = '\0';
	TAILQ_INIT(&q);
	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		aad_error(req, 405, "invalid_request", 900561,
			  "The endpoint only accepts POST requests. Received a GET request.");
		goto out;
	}
	if (!type || strncasecmp(type, "application/x-www-form-urlencoded", 33) ||
	    evhttp_parse_query_str(form, &q)) {
		aad_error(req, 400, "invalid_request", 900144,
			  "The request body must contain the following parameter: 'grant_type'.");
		goto out;
	}
	remember("aad", &q, tenant);
	if (fake.tenant && strcmp(tenant, fake.tenant)) {
		snprintf(text, sizeof(text),
			 "Tenant '%.64s' not found. Check to make sure you have the correct tenant "
			 "ID and are signing into the correct cloud.",
			 tenant);
		aad_error(req, 400, "invalid_request", 90002, text);
		goto out;
	}
	grant = field(&q, "grant_type");
	client = field(&q, "client_id");
	scope = field(&q, "scope");
	atype = field(&q, "client_assertion_type");
	assertion = field(&q, "client_assertion");
	if (!grant || strcmp(grant, "client_credentials")) {
		aad_error(req, 400, grant ? "unsupported_grant_type" : "invalid_request",
			  grant ? 70003 : 900144,
			  grant ? "The app requested an unsupported grant type."
				: "The request body must contain the following parameter: "
				  "'grant_type'.");
		goto out;
	}
	if (!client || (fake.client_id && strcmp(client, fake.client_id))) {
		snprintf(text, sizeof(text),
			 "Application with identifier '%.64s' was not found in the directory "
			 "'%.64s'.",
			 client ? client : "", tenant);
		aad_error(req, 400, "unauthorized_client", 700016, text);
		goto out;
	}
	if (!scope || !suffix(scope, "/.default") || strchr(scope, ' ')) {
		snprintf(
		    text, sizeof(text),
		    "The provided value for scope %.128s is not valid. Client credential flows "
		    "must have a scope value with /.default suffixed to the resource "
		    "identifier (application ID URI).",
		    scope ? scope : "");
		aad_error(req, 400, "invalid_scope", 1002012, text);
		goto out;
	}
	if (!assertion || !atype) {
		aad_error(req, 401, "invalid_client", 7000216,
			  "'client_assertion', 'client_secret' or 'request' is required for the "
			  "'client_credentials' grant type.");
		goto out;
	}
	dot = strchr(assertion, '.');
	if (strcmp(atype, JWT_BEARER) || !dot || !strchr(dot + 1, '.')) {
		aad_error(req, 401, "invalid_client", 50027,
			  "JWT token is invalid or is malformed.");
		goto out;
	}
	if (forced_failure(req, false))
		goto out;
	snprintf(token, sizeof(token), "fake-aad-%ld", ++fake.tokens_issued);
	reply(req, 200,
	      json_pack("{s:s, s:i, s:i, s:s}", "token_type", "Bearer", "expires_in",
			(int)fake.lifetime, "ext_expires_in", (int)fake.lifetime, "access_token",
			token),
	      true);
out:
	evhttp_clear_headers(&q);
	free(form);
}

static void handle_imds(struct evhttp_request *req)
{
	const char *meta = evhttp_find_header(evhttp_request_get_input_headers(req), "Metadata");
	const char *version, *resource, *client;
	struct evkeyvalq q;
	char token[64], life[24], on[24], before[24];
	long long now = (long long)time(NULL);

	fake.imds_requests++;
	TAILQ_INIT(&q);
	evhttp_parse_query(evhttp_request_get_uri(req), &q);
	remember("imds", &q, NULL);
	json_object_set_new(fake.last, "Metadata", meta ? json_string(meta) : json_null());
	version = field(&q, "api-version");
	resource = field(&q, "resource");
	client = field(&q, "client_id");
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET)
		reply(req, 405,
		      json_pack("{s:s, s:s}", "error", "invalid_request", "error_description",
				"Only GET is allowed"),
		      true);
	else if (!meta || strcmp(meta, "true"))
		reply(req, 400,
		      json_pack("{s:s, s:s}", "error", "invalid_request", "error_description",
				"Required metadata header not specified"),
		      true);
	else if (!version)
		reply(req, 400,
		      json_pack("{s:s, s:s}", "error", "invalid_request", "error_description",
				"Required query variable 'api-version' is missing"),
		      true);
	else if (!resource || !*resource)
		reply(req, 400,
		      json_pack("{s:s, s:s}", "error", "invalid_request", "error_description",
				"Required audience parameter not specified"),
		      true);
	else if (fake.client_id && (!client || strcmp(client, fake.client_id)))
		reply(req, 400,
		      json_pack("{s:s, s:s}", "error", "invalid_request", "error_description",
				"Identity not found"),
		      true);
	else if (!forced_failure(req, true)) {
		snprintf(token, sizeof(token), "fake-imds-%ld", ++fake.tokens_issued);
		snprintf(life, sizeof(life), "%ld", fake.lifetime);
		snprintf(on, sizeof(on), "%lld", now + fake.lifetime);
		snprintf(before, sizeof(before), "%lld", now - 300);
		reply(req, 200,
		      json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "access_token", token,
				"client_id",
				client ? client : "00000000-0000-0000-0000-000000000000",
				"expires_in", life, "expires_on", on, "ext_expires_in", life,
				"not_before", before, "resource", resource, "token_type", "Bearer"),
		      true);
	}
	evhttp_clear_headers(&q);
}

/* --- test controls ------------------------------------------------------------- */

static void handle_stats(struct evhttp_request *req)
{
	reply(req, 200,
	      json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:O}", "aad_requests",
			(json_int_t)fake.aad_requests, "imds_requests",
			(json_int_t)fake.imds_requests, "tokens_issued",
			(json_int_t)fake.tokens_issued, "failures_sent",
			(json_int_t)fake.failures_sent, "in_flight", (json_int_t)fake.in_flight,
			"max_in_flight", (json_int_t)fake.max_in_flight, "last",
			fake.last ? fake.last : json_null()),
	      false);
}

static int set_knob(const char *k, const char *v, struct kars_err *err)
{
	uint64_t n;
	int ret;

	if (!strcmp(k, "lifetime")) {
		ret = kars_parse_u64(v, 1, 86400 * 30, &n, k, err);
		fake.lifetime = (long)n;
	} else if (!strcmp(k, "delay_ms")) {
		ret = kars_parse_u64(v, 0, 600000, &n, k, err);
		fake.delay_ms = (long)n;
	} else if (!strcmp(k, "fail_status")) {
		ret = strcmp(v, "0") ? kars_parse_u64(v, 400, 599, &n, k, err) : (n = 0, 0);
		fake.fail_status = (int)n;
	} else if (!strcmp(k, "fail_count")) {
		if (!strcmp(v, "-1")) {
			fake.fail_count = -1;
			return 0;
		}
		ret = kars_parse_u64(v, 0, 1000000, &n, k, err);
		fake.fail_count = (long)n;
	} else if (!strcmp(k, "retry_after")) {
		ret = kars_parse_u64(v, 0, 3600, &n, k, err);
		fake.retry_after = (long)n;
	} else {
		return kars_err_set(err, EINVAL,
				    "%s: unknown knob (lifetime, delay_ms, fail_status, "
				    "fail_count, retry_after)",
				    k);
	}
	return ret;
}

static void handle_config(struct evhttp_request *req)
{
	struct kars_err err = {0};
	struct evkeyvalq q;
	struct evkeyval *kv;

	TAILQ_INIT(&q);
	evhttp_parse_query(evhttp_request_get_uri(req), &q);
	TAILQ_FOREACH(kv, &q, next)
	if (set_knob(kv->key, kv->value, &err))
		break;
	evhttp_clear_headers(&q);
	if (err.code) {
		reply(req, 400, json_pack("{s:s}", "error", err.msg), false);
		return;
	}
	handle_stats(req);
}

static void handle(struct evhttp_request *req, void *arg)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	char tenant[256];
	const char *slash;

	if (fake.verbose)
		fprintf(stderr, "fake-identity: %s\n", evhttp_request_get_uri(req));
	if (!path) {
		evhttp_send_error(req, 400, NULL);
		return;
	}
	if (!strcmp(path, "/_fake/stats")) {
		handle_stats(req);
		return;
	}
	if (!strcmp(path, "/_fake/config") && evhttp_request_get_command(req) == EVHTTP_REQ_POST) {
		handle_config(req);
		return;
	}
	if (!strcmp(path, "/metadata/identity/oauth2/token")) {
		handle_imds(req);
		return;
	}
	slash = strchr(path + 1, '/');
	if (path[0] == '/' && slash && !strcmp(slash, "/oauth2/v2.0/token") &&
	    (size_t)(slash - path - 1) < sizeof(tenant)) {
		memcpy(tenant, path + 1, (size_t)(slash - path - 1));
		tenant[slash - path - 1] = '\0';
		handle_aad(req, tenant);
		return;
	}
	evhttp_send_error(req, 404, NULL);
}

/* --- main ---------------------------------------------------------------------------- */

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	event_base_loopexit(fake.base, NULL);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: fake-identity --listen ADDR:PORT [--port-file FILE] [--tenant ID]\n"
		   "                     [--client-id ID] [--lifetime S] [--delay-ms N]\n"
		   "                     [--fail-status N] [--fail-count N] [--retry-after S]\n"
		   "                     [--verbose]\n"
		   "Serves the Azure AD v2 token endpoint (POST /{tenant}/oauth2/v2.0/token) and\n"
		   "IMDS (GET /metadata/identity/oauth2/token) in their real wire formats; GET\n"
		   "/_fake/stats and POST /_fake/config?knob=value for tests. PORT 0 picks a free\n"
		   "port; --port-file receives it.\n");
}

static int write_port(const char *path, unsigned port)
{
	char tmp[4096];
	FILE *f;
	int ok;

	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	ok = fprintf(f, "%u\n", port) > 0;
	ok = (fclose(f) == 0) && ok;
	if (!ok || rename(tmp, path)) {
		unlink(tmp);
		return -EIO;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"port-file", required_argument, NULL, 'p'},
	    {"tenant", required_argument, NULL, 't'},
	    {"client-id", required_argument, NULL, 'c'},
	    {"lifetime", required_argument, NULL, 'L'},
	    {"delay-ms", required_argument, NULL, 'd'},
	    {"fail-status", required_argument, NULL, 's'},
	    {"fail-count", required_argument, NULL, 'n'},
	    {"retry-after", required_argument, NULL, 'r'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	static const char *const knob[128] = {
	    ['L'] = "lifetime",	  ['d'] = "delay_ms",	 ['s'] = "fail_status",
	    ['n'] = "fail_count", ['r'] = "retry_after",
	};
	const char *listen = NULL, *port_file = NULL, *colon;
	struct evhttp_bound_socket *bound;
	struct event *sigterm = NULL, *sigint = NULL;
	struct evhttp *http = NULL;
	struct kars_err err = {0};
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	char host[256];
	uint16_t port = 0, bound_port;
	int opt, ret = 1;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			listen = optarg;
			break;
		case 'p':
			port_file = optarg;
			break;
		case 't':
			fake.tenant = optarg;
			break;
		case 'c':
			fake.client_id = optarg;
			break;
		case 'L':
		case 'd':
		case 's':
		case 'n':
		case 'r':
			set_knob(knob[opt], optarg, &err);
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
	colon = listen ? strrchr(listen, ':') : NULL;
	if (!err.code && (!colon || colon == listen || (size_t)(colon - listen) >= sizeof(host)))
		kars_err_set(&err, EINVAL, "--listen: expected ADDR:PORT");
	if (!err.code) {
		memcpy(host, listen, (size_t)(colon - listen));
		host[colon - listen] = '\0';
		if (strcmp(colon + 1, "0"))
			kars_parse_port(colon + 1, &port, "--listen port", &err);
	}
	if (err.code) {
		fprintf(stderr, "fake-identity: %s\n", err.msg);
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	fake.base = event_base_new();
	http = fake.base ? evhttp_new(fake.base) : NULL;
	if (!http) {
		fprintf(stderr, "fake-identity: cannot create the event loop\n");
		goto cleanup;
	}
	evhttp_set_max_body_size(http, 1 << 20);
	evhttp_set_timeout(http, 600);
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT);
	evhttp_set_gencb(http, handle, NULL);
	bound = evhttp_bind_socket_with_handle(http, host, port);
	if (!bound) {
		fprintf(stderr, "fake-identity: cannot listen on %s: %s\n", listen,
			strerror(errno));
		goto cleanup;
	}
	if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&ss, &sslen)) {
		fprintf(stderr, "fake-identity: getsockname: %s\n", strerror(errno));
		goto cleanup;
	}
	bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						    : ((struct sockaddr_in *)&ss)->sin_port);
	if (port_file && write_port(port_file, bound_port)) {
		fprintf(stderr, "fake-identity: cannot write %s\n", port_file);
		goto cleanup;
	}
	fprintf(stderr, "fake-identity: listening on %s port %u\n", host, bound_port);
	sigterm = evsignal_new(fake.base, SIGTERM, on_signal, NULL);
	sigint = evsignal_new(fake.base, SIGINT, on_signal, NULL);
	if (!sigterm || !sigint || evsignal_add(sigterm, NULL) || evsignal_add(sigint, NULL)) {
		fprintf(stderr, "fake-identity: cannot handle signals\n");
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
