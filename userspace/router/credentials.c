/* credentials.c - the upstream credential at run time: the cached header,
 * the one token call in flight, the callers waiting for it, the refresh and
 * retry timer (see credentials.h for the contract).
 *
 * States, for the token kinds: no token / a usable token / a token due for
 * refresh; orthogonally a call in flight or not, and after a failure a
 * "not before" time for the next call. A usable token is always handed out
 * at once; only callers that find no usable token wait, and only for the one
 * call in flight.
 */
#include "credentials.h"

#include <curl/curl.h>
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "file_watch.h"
#include "json.h"
#include "log.h"
#include "token_response.h"
#include "upstream.h"

#define MAX_RESPONSE	 (64 << 10)
#define FIRST_BACKOFF_MS 1000
#define MAX_BACKOFF_MS	 60000
#define MAX_RETRY_AFTER	 300
#define NEVER		 INT64_MAX
#define KEY_POLL_MS	 5000 /* the key file's stat() fallback to inotify */

struct kars_credential {
	struct event_base *base;
	struct kars_upstream *up;
	struct kars_credential_config cfg;
	enum kars_credential_header_style style;
	const char *name; /* kind name, for messages */

	char *header;		 /* the header line in use, or NULL */
	int64_t usable_until_ms; /* monotonic; NEVER for a key */
	int64_t refresh_at_ms;	 /* monotonic; NEVER for a key */
	int64_t expires_ms;	 /* monotonic; NEVER for a key */

	/* The call in flight (easy != NULL). */
	CURL *easy;
	struct curl_slist *request_headers;
	char *form; /* holds the service-account token: wiped */
	char *response;
	size_t response_len;
	bool response_too_big;
	long retry_after_s;
	int64_t call_started_ms;
	char curl_error[CURL_ERROR_SIZE];

	int64_t not_before_ms; /* after a failure, no call before this */
	long backoff_ms;
	struct event *timer;
	TAILQ_HEAD(, kars_credential_wait) waiters;

	uint64_t refreshes, failures;
	char last_error[256];

	/* apiKeyFile: the file is watched; a new key replaces the old one. */
	struct kars_file_watch *watch;
	struct stat key_sig;
	bool key_sig_seen;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void wipe_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static bool usable(const struct kars_credential *c, int64_t now)
{
	return c->header && now < c->usable_until_ms;
}

static void schedule(struct kars_credential *c, int64_t at_ms)
{
	int64_t delay = at_ms - now_ms();
	struct timeval tv;

	if (at_ms == NEVER)
		return;
	if (delay < 0)
		delay = 0;
	tv.tv_sec = (time_t)(delay / 1000);
	tv.tv_usec = (suseconds_t)(delay % 1000) * 1000;
	evtimer_add(c->timer, &tv);
}

/* --- the token call ------------------------------------------------------------ */

static size_t on_response(char *data, size_t size, size_t n, void *arg)
{
	struct kars_credential *c = arg;
	size_t len = size * n;
	char *grown;

	if (c->response_len + len > MAX_RESPONSE) {
		c->response_too_big = true;
		return 0;
	}
	grown = malloc(c->response_len + len + 1);
	if (!grown)
		return 0;
	if (c->response) {
		memcpy(grown, c->response, c->response_len);
		explicit_bzero(c->response, c->response_len);
		free(c->response);
	}
	memcpy(grown + c->response_len, data, len);
	c->response_len += len;
	grown[c->response_len] = '\0';
	c->response = grown;
	return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	struct kars_credential *c = arg;
	size_t len = size * n;

	if (len > 12 && !strncasecmp(data, "Retry-After:", 12)) {
		char buf[32];
		size_t k = len - 12 < sizeof(buf) - 1 ? len - 12 : sizeof(buf) - 1;

		memcpy(buf, data + 12, k);
		buf[k] = '\0';
		c->retry_after_s = strtol(buf, NULL, 10); /* delta-seconds only */
	}
	return len;
}

static void call_cleanup(struct kars_credential *c)
{
	if (c->easy)
		curl_easy_cleanup(c->easy);
	c->easy = NULL;
	curl_slist_free_all(c->request_headers);
	c->request_headers = NULL;
	wipe_free(c->form);
	c->form = NULL;
	if (c->response) {
		explicit_bzero(c->response, c->response_len);
		free(c->response);
	}
	c->response = NULL;
	c->response_len = 0;
	c->response_too_big = false;
	c->retry_after_s = 0;
}

/* k=escaped(v), appended to the form. */
static int form_add(CURL *easy, char **form, const char *k, const char *v)
{
	char *esc = curl_easy_escape(easy, v, 0);
	size_t old = *form ? strlen(*form) : 0, len;
	char *grown;

	if (!esc)
		return -ENOMEM;
	len = old + strlen(k) + strlen(esc) + 3;
	grown = malloc(len);
	if (grown)
		snprintf(grown, len, "%s%s%s=%s", *form ? *form : "", old ? "&" : "", k, esc);
	explicit_bzero(esc, strlen(esc));
	curl_free(esc);
	wipe_free(*form);
	*form = grown;
	return grown ? 0 : -ENOMEM;
}

static void on_token_done(CURL *easy, CURLcode result, void *arg);

static int build_workload_identity(struct kars_credential *c, char *url, size_t len,
				   struct kars_err *err)
{
	char *assertion = NULL;
	int ret;

	snprintf(url, len, "%s/%s/oauth2/v2.0/token", c->cfg.authority_host, c->cfg.tenant_id);
	/* Re-read every time: the kubelet rotates the projected token. */
	ret = kars_credential_read_file(c->cfg.file, c->cfg.agent_uid, c->cfg.file_field,
					&assertion, err);
	if (ret)
		return ret;
	ret = form_add(c->easy, &c->form, "grant_type", "client_credentials");
	if (!ret)
		ret = form_add(c->easy, &c->form, "client_id", c->cfg.client_id);
	if (!ret)
		ret = form_add(c->easy, &c->form, "scope", c->cfg.scope);
	if (!ret)
		ret = form_add(c->easy, &c->form, "client_assertion_type",
			       "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
	if (!ret)
		ret = form_add(c->easy, &c->form, "client_assertion", assertion);
	wipe_free(assertion);
	if (ret)
		return kars_err_set(err, ENOMEM, "out of memory");
	curl_easy_setopt(c->easy, CURLOPT_POST, 1L);
	curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, c->form);
	curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(c->form));
	return 0;
}

static int build_imds(struct kars_credential *c, char *url, size_t len, struct kars_err *err)
{
	char *resource = curl_easy_escape(c->easy, c->cfg.resource, 0);
	char *client = c->cfg.client_id[0] ? curl_easy_escape(c->easy, c->cfg.client_id, 0) : NULL;
	int n = -1;

	if (resource && (client || !c->cfg.client_id[0]))
		n = snprintf(
		    url, len,
		    "%s/metadata/identity/oauth2/token?api-version=2018-02-01&resource=%s%s%s",
		    c->cfg.endpoint, resource, client ? "&client_id=" : "", client ? client : "");
	curl_free(resource);
	curl_free(client);
	if (n < 0 || (size_t)n >= len)
		return kars_err_set(err, ENAMETOOLONG, "%s: the IMDS URL is too long", c->cfg.path);
	c->request_headers = curl_slist_append(c->request_headers, "Metadata: true");
	/* IMDS is on the node's link-local address: never through a proxy. */
	curl_easy_setopt(c->easy, CURLOPT_NOPROXY, "*");
	return 0;
}

/* Starts the one token call; on failure nothing is in flight. */
static int start_call(struct kars_credential *c, struct kars_err *err)
{
	char url[2048];
	int ret;

	c->easy = curl_easy_init();
	if (!c->easy)
		return kars_err_set(err, ENOMEM, "out of memory");
	if (c->cfg.kind == KARS_CREDENTIAL_WORKLOAD_IDENTITY)
		ret = build_workload_identity(c, url, sizeof(url), err);
	else
		ret = build_imds(c, url, sizeof(url), err);
	c->request_headers = curl_slist_append(c->request_headers, "Accept: application/json");
	c->request_headers = curl_slist_append(c->request_headers, "Expect:");
	if (!ret && !c->request_headers)
		ret = kars_err_set(err, ENOMEM, "out of memory");
	if (ret) {
		call_cleanup(c);
		return ret;
	}
	c->curl_error[0] = '\0';
	curl_easy_setopt(c->easy, CURLOPT_URL, url);
	curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, c->request_headers);
	curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, on_response);
	curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(c->easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c->easy, CURLOPT_HEADERDATA, c);
	curl_easy_setopt(c->easy, CURLOPT_ERRORBUFFER, c->curl_error);
	curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, c->cfg.timeout_ms);
	curl_easy_setopt(c->easy, CURLOPT_CONNECTTIMEOUT_MS, c->cfg.timeout_ms);
	curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	c->call_started_ms = now_ms();
	if (kars_upstream_start(c->up, c->easy, on_token_done, c)) {
		call_cleanup(c);
		return kars_err_set(err, ENOMEM, "%s: cannot start the token call", c->cfg.path);
	}
	c->refreshes++;
	return 0;
}

/* --- the answer ---------------------------------------------------------------- */

/* Reads the finished call: 0 and a header, or an error. */
static int read_answer(struct kars_credential *c, CURLcode result, char **header,
		       long long *life_ms, struct kars_err *err)
{
	struct kars_err inner = {0};
	char what[256];
	long status = 0;
	int ret;

	snprintf(what, sizeof(what), "%s: %s %.160s", c->name,
		 c->cfg.kind == KARS_CREDENTIAL_IMDS ? "IMDS" : "token endpoint",
		 c->cfg.kind == KARS_CREDENTIAL_IMDS ? c->cfg.endpoint : c->cfg.authority_host);
	if (c->response_too_big)
		return kars_err_set(err, EPROTO, "%s: the answer is larger than %d bytes", what,
				    MAX_RESPONSE);
	if (result != CURLE_OK)
		return kars_err_set(err, EIO, "%s: %s%s%s", what, curl_easy_strerror(result),
				    c->curl_error[0] ? ": " : "", c->curl_error);
	curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
	ret = kars_token_response_parse(status, c->response ? c->response : "", c->response_len,
					header, life_ms, &inner);
	if (ret)
		kars_err_set(err, -ret, "%s: %s", what, inner.msg);
	return ret;
}

static void wake_waiters(struct kars_credential *c)
{
	struct kars_credential_wait *w;
	char error[384];

	snprintf(error, sizeof(error), "no valid upstream credential: %s",
		 c->last_error[0] ? c->last_error : "none fetched yet");
	/* One at a time: a callback may cancel the next waiter or queue again. */
	while ((w = TAILQ_FIRST(&c->waiters))) {
		TAILQ_REMOVE(&c->waiters, w, link);
		w->queued = false;
		if (usable(c, now_ms()))
			w->fn(c->header, NULL, w->arg);
		else
			w->fn(NULL, error, w->arg);
	}
}

static void accept_token(struct kars_credential *c, char *header, long long life_ms)
{
	long long early = life_ms / 5 > 300000 ? life_ms / 5 : 300000;
	long long margin = life_ms / 10 < 30000 ? life_ms / 10 : 30000;

	/* Refresh at lifetime - max(20%, 5 min), not before half of it; stop
	 * using it a little before expiry (clock skew, time on the wire). */
	if (life_ms - early < life_ms / 2)
		early = life_ms - life_ms / 2;
	wipe_free(c->header);
	c->header = header;
	/* Counted from when the call started: the token may be older than the
	 * answer. */
	c->expires_ms = c->call_started_ms + life_ms;
	c->usable_until_ms = c->expires_ms - margin;
	c->refresh_at_ms = c->call_started_ms + life_ms - early;
	c->backoff_ms = 0;
	c->not_before_ms = 0;
	c->last_error[0] = '\0';
	log_info("%s: new token, expires in %lld s, refresh in %lld s", c->name,
		 (long long)(c->expires_ms - now_ms()) / 1000,
		 (long long)(c->refresh_at_ms - now_ms()) / 1000);
	evtimer_del(c->timer);
	schedule(c, c->refresh_at_ms);
}

static void record_failure(struct kars_credential *c, const char *msg)
{
	int64_t now = now_ms(), delay;

	c->failures++;
	snprintf(c->last_error, sizeof(c->last_error), "%s", msg);
	c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : FIRST_BACKOFF_MS;
	if (c->backoff_ms > MAX_BACKOFF_MS)
		c->backoff_ms = MAX_BACKOFF_MS;
	delay = c->backoff_ms;
	if (c->retry_after_s > 0)
		delay = (c->retry_after_s < MAX_RETRY_AFTER ? c->retry_after_s : MAX_RETRY_AFTER) *
			1000;
	/* While the old token lasts, try again well before it runs out. */
	if (usable(c, now) && delay > (c->usable_until_ms - now) / 2)
		delay = (c->usable_until_ms - now) / 2 > 100 ? (c->usable_until_ms - now) / 2 : 100;
	c->not_before_ms = now + delay;
	log_warn("%s: token call failed (%s); %s, next attempt in %lld ms", c->name, msg,
		 usable(c, now) ? "the current token stays in use" : "no valid token",
		 (long long)delay);
	evtimer_del(c->timer);
	schedule(c, c->not_before_ms);
}

static void on_token_done(CURL *easy, CURLcode result, void *arg)
{
	struct kars_credential *c = arg;
	struct kars_err err = {0};
	long long life_ms = 0;
	char *header = NULL;

	if (read_answer(c, result, &header, &life_ms, &err))
		record_failure(c, err.msg);
	else
		accept_token(c, header, life_ms);
	call_cleanup(c);
	wake_waiters(c);
}

/* Starts a call now if none is in flight and none is held back. */
static void refresh(struct kars_credential *c)
{
	struct kars_err err = {0};

	if (c->easy)
		return;
	if (now_ms() < c->not_before_ms) {
		/* A timer may fire a millisecond early: make sure one is set. */
		if (!evtimer_pending(c->timer, NULL))
			schedule(c, c->not_before_ms);
		return;
	}
	if (start_call(c, &err))
		record_failure(c, err.msg);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct kars_credential *c = arg;

	refresh(c);
	/* A failed start leaves nothing in flight: tell anyone waiting. */
	if (!c->easy)
		wake_waiters(c);
}

/* --- apiKeyFile ---------------------------------------------------------------- */

/* Reads the key file into a new header; *out is malloc'd (wipe it). */
static int key_header(const struct kars_credential *c, char **out, struct kars_err *err)
{
	char *key = NULL;
	size_t len;

	if (kars_credential_read_file(c->cfg.file, c->cfg.agent_uid, c->cfg.file_field, &key, err))
		return -1;
	len = strlen(key) + sizeof("Authorization: Bearer ");
	*out = malloc(len);
	if (!*out) {
		wipe_free(key);
		return kars_err_set(err, ENOMEM, "out of memory");
	}
	snprintf(*out, len, "%s%s",
		 c->style == KARS_CREDENTIAL_API_KEY ? "api-key: " : "Authorization: Bearer ", key);
	wipe_free(key);
	return 0;
}

/* The file changed (kars credentials update replaces it atomically): the new
 * key is used from the next request on. A file that cannot be used (gone,
 * agent-readable, empty) leaves the old key in force and says why. */
static void key_check(void *arg)
{
	struct kars_credential *c = arg;
	struct kars_err err = {};
	struct stat st;
	char *header;

	if (stat(c->cfg.file, &st) || !kars_file_sig_changed(&st, &c->key_sig, &c->key_sig_seen))
		return;
	if (key_header(c, &header, &err)) {
		c->failures++;
		snprintf(c->last_error, sizeof(c->last_error), "%.*s",
			 (int)sizeof(c->last_error) - 1, err.msg);
		log_error("upstream credential not reloaded, the previous key stays in use: %s",
			  err.msg);
		return;
	}
	if (c->header && strcmp(header, c->header) == 0) {
		wipe_free(header);
		return;
	}
	wipe_free(c->header);
	c->header = header;
	c->refreshes++;
	c->last_error[0] = '\0';
	log_info("upstream credential reloaded from %s", c->cfg.file_field);
}

/* --- the API ------------------------------------------------------------------- */

struct kars_credential *kars_credential_new(struct event_base *base, struct kars_upstream *up,
					    const struct kars_credential_config *cfg,
					    enum kars_credential_header_style style,
					    struct kars_err *err)
{
	struct kars_credential *c = calloc(1, sizeof(*c));

	if (!c) {
		kars_err_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	c->base = base;
	c->up = up;
	c->cfg = *cfg;
	c->style = style;
	c->name = kars_credential_kind_name(cfg->kind);
	c->usable_until_ms = c->refresh_at_ms = c->expires_ms = NEVER;
	TAILQ_INIT(&c->waiters);
	if (cfg->kind == KARS_CREDENTIAL_API_KEY_FILE) {
		struct stat st;

		if (stat(cfg->file, &st) == 0)
			kars_file_sig_changed(&st, &c->key_sig, &c->key_sig_seen);
		if (key_header(c, &c->header, err))
			goto fail;
		c->watch = kars_file_watch_new(base, cfg->file, KEY_POLL_MS, key_check, c);
		if (!c->watch) {
			kars_err_set(err, errno ? errno : ENOMEM, "%s: cannot watch %s",
				     cfg->file_field, cfg->file);
			goto fail;
		}
		return c;
	}
	c->usable_until_ms = c->refresh_at_ms = c->expires_ms = 0;
	c->timer = evtimer_new(base, on_timer, c);
	if (!c->timer) {
		kars_err_set(err, ENOMEM, "out of memory");
		goto fail;
	}
	schedule(c, 0); /* the first token, as soon as the loop runs */
	return c;
fail:
	kars_credential_free(c);
	return NULL;
}

void kars_credential_free(struct kars_credential *c)
{
	if (!c)
		return;
	if (c->easy)
		kars_upstream_cancel(c->up, c->easy);
	call_cleanup(c);
	if (c->timer)
		event_free(c->timer);
	c->timer = NULL;
	kars_file_watch_free(c->watch);
	c->watch = NULL;
	wipe_free(c->header);
	c->header = NULL;
	snprintf(c->last_error, sizeof(c->last_error), "credential source closed");
	wake_waiters(c);
	free(c);
}

int kars_credential_get(struct kars_credential *c, struct kars_credential_wait *w,
			kars_credential_fn fn, void *arg)
{
	int64_t now = now_ms();
	char error[384];

	w->fn = fn;
	w->arg = arg;
	w->queued = false;
	if (usable(c, now)) {
		if (now >= c->refresh_at_ms)
			refresh(c); /* in the background; this caller goes on */
		fn(c->header, NULL, arg);
		return 0;
	}
	refresh(c);
	if (!c->easy) {
		/* Held back after a failure: say so now rather than queue. */
		snprintf(error, sizeof(error),
			 "no valid upstream credential: %s (next attempt in %lld ms)",
			 c->last_error[0] ? c->last_error : "none fetched yet",
			 (long long)(c->not_before_ms > now ? c->not_before_ms - now : 0));
		fn(NULL, error, arg);
		return 0;
	}
	TAILQ_INSERT_TAIL(&c->waiters, w, link);
	w->queued = true;
	return 1;
}

void kars_credential_cancel(struct kars_credential *c, struct kars_credential_wait *w)
{
	if (!w->queued)
		return;
	TAILQ_REMOVE(&c->waiters, w, link);
	w->queued = false;
}

void kars_credential_get_stats(const struct kars_credential *c, struct kars_credential_stats *s)
{
	int64_t now = now_ms();

	memset(s, 0, sizeof(*s));
	s->valid = usable(c, now);
	s->refreshes = c->refreshes;
	s->failures = c->failures;
	s->expires_in_ms = c->header && c->expires_ms != NEVER
			       ? (c->expires_ms > now ? c->expires_ms - now : 0)
			       : -1;
	snprintf(s->last_error, sizeof(s->last_error), "%s", c->last_error);
}
