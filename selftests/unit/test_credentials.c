/* test_credentials.c - kars-router's upstream credentials against a real
 * token server.
 *
 * Each test starts build/bin/fake-identity (the Azure AD token endpoint and
 * IMDS in their wire formats) as its own process and drives the credential
 * source on a real libevent loop through the router's libcurl glue, so the
 * token calls are real HTTP. The fake's /_fake/stats counts the token
 * requests it served: that is how single flight, refresh before expiry,
 * retries and the re-read of a rotated token file are proven. No assertion
 * is on elapsed time; waits are bounded so a hang fails instead of blocking.
 */
#include "unit.h"

#include <curl/curl.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "credentials.h"
#include "log.h"
#include "token_response.h"
#include "upstream.h"

#define AGENT_UID     1000
#define WAIT_LIMIT_MS 15000

static char dir[64], token_path[128], key_path[128], port_path[128], fake_bin[4096];
static const char *wi_token_file = token_path; /* what wi_source() configures */
static pid_t fake_pid;
static unsigned fake_port;
static struct event_base *base;
static struct kars_upstream *up;
static struct event *tick;

/* --- the fake identity process ------------------------------------------------ */

static void write_secret(const char *path, const char *text, mode_t mode)
{
	char tmp[256];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(tmp, mode), 0);
	assert_int_equal(rename(tmp, path), 0); /* as the kubelet swaps it */
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t collect(char *data, size_t size, size_t n, void *arg)
{
	strncat(arg, data, 8191 - strlen(arg) < size * n ? 8191 - strlen(arg) : size * n);
	return size * n;
}

/* A blocking call to the fake's control surface (it is another process). */
static json_t *fake_call(const char *method, const char *path)
{
	static char body[8192];
	char url[512];
	CURL *easy = curl_easy_init();
	json_t *j;

	body[0] = '\0';
	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", fake_port, path);
	curl_easy_setopt(easy, CURLOPT_URL, url);
	curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, body);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 5000L);
	assert_int_equal(curl_easy_perform(easy), CURLE_OK);
	curl_easy_cleanup(easy);
	j = json_loads(body, 0, NULL);
	if (!j)
		fail_msg("fake-identity answered %s %s with \"%s\"", method, path, body);
	return j;
}

static long long stat_of(const char *key)
{
	json_t *s = fake_call("GET", "/_fake/stats");
	long long v = json_integer_value(json_object_get(s, key));

	json_decref(s);
	return v;
}

static void fake_config(const char *query)
{
	char path[256];

	snprintf(path, sizeof(path), "/_fake/config?%s", query);
	json_decref(fake_call("POST", path));
}

static int start_fake(void)
{
	char port[16] = "";
	int64_t deadline = mono_ms() + 5000;

	unlink(port_path);
	fake_pid = fork();
	if (fake_pid < 0)
		return -1;
	if (fake_pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 2);
		execl(fake_bin, fake_bin, "--listen", "127.0.0.1:0", "--port-file", port_path,
		      "--tenant", "tenant-1", "--client-id", "client-1", (char *)NULL);
		_exit(127);
	}
	while (mono_ms() < deadline) {
		FILE *f = fopen(port_path, "r");

		if (f) {
			bool ok = fgets(port, sizeof(port), f) != NULL;

			fclose(f);
			if (ok && (fake_port = (unsigned)strtoul(port, NULL, 10)))
				return 0;
		}
		usleep(10000);
	}
	fprintf(stderr, "fake-identity (%s) did not start\n", fake_bin);
	return -1;
}

/* --- the loop ------------------------------------------------------------------ */

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
}

/* Runs the loop until *flag is true or the limit; returns *flag. */
static bool run_until(const bool *flag)
{
	int64_t deadline = mono_ms() + WAIT_LIMIT_MS;

	while (!*flag && mono_ms() < deadline)
		event_base_loop(base, EVLOOP_ONCE);
	return *flag;
}

static void run_for(int ms)
{
	int64_t deadline = mono_ms() + ms;

	while (mono_ms() < deadline)
		event_base_loop(base, EVLOOP_ONCE);
}

struct answer {
	struct kars_credential_wait w;
	bool called;
	int calls;
	char header[256];
	char error[512];
};

static void on_answer(const char *header, const char *error, void *arg)
{
	struct answer *a = arg;

	a->called = true;
	a->calls++;
	snprintf(a->header, sizeof(a->header), "%s", header ? header : "");
	snprintf(a->error, sizeof(a->error), "%s", error ? error : "");
}

/* Gets a header, waiting on the loop if needed. */
static void get_now(struct kars_credential *c, struct answer *a)
{
	memset(a, 0, sizeof(*a));
	kars_credential_get(c, &a->w, on_answer, a);
	if (!run_until(&a->called))
		fail_msg("no answer within %d ms", WAIT_LIMIT_MS);
}

/* --- configurations ------------------------------------------------------------- */

static int parse(const char *text, struct kars_credential_config *cfg, struct kars_err *err)
{
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);
	int ret;

	if (!j)
		fail_msg("bad test JSON %s: %s", text, jerr.text);
	ret = kars_credential_config_parse(j, "upstream.auth", cfg, AGENT_UID, err);
	json_decref(j);
	return ret;
}

static struct kars_credential *wi_source(const char *extra)
{
	struct kars_credential_config cfg;
	struct kars_err err = {0};
	struct kars_credential *c;
	char text[1024];

	snprintf(text, sizeof(text),
		 "{\"kind\":\"workloadIdentity\",\"tenantId\":\"tenant-1\",\"clientId\":"
		 "\"client-1\",\"tokenFile\":\"%s\",\"authorityHost\":\"http://127.0.0.1:%u/\"%s}",
		 wi_token_file, fake_port, extra);
	if (parse(text, &cfg, &err))
		fail_msg("%s", err.msg);
	c = kars_credential_new(base, up, &cfg, KARS_CREDENTIAL_API_KEY, &err);
	if (!c)
		fail_msg("%s", err.msg);
	return c;
}

static void expect_refused(const char *text, const char *needle)
{
	struct kars_credential_config cfg;
	struct kars_err err = {0};

	assert_true(parse(text, &cfg, &err) < 0);
	assert_err_contains(&err, needle);
}

/* --- fixtures ---------------------------------------------------------------------- */

static void cleanup_files(void)
{
	unlink(token_path);
	unlink(key_path);
	unlink(port_path);
	rmdir(dir);
	curl_global_cleanup();
}

/* Once per process (KARS_UNIT_MAIN has no group fixtures). */
static int init_once(void)
{
	static bool done;
	char exe[2048];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (done)
		return 0;
	done = true;
	if (n <= 0)
		return -1;
	exe[n] = '\0';
	/* BUILD/tests/unit/test_credentials -> BUILD/bin/fake-identity */
	for (int i = 0; i < 3 && (slash = strrchr(exe, '/')); i++)
		*slash = '\0';
	snprintf(fake_bin, sizeof(fake_bin), "%s/bin/fake-identity", exe);
	if (getenv("KARS_FAKE_IDENTITY"))
		snprintf(fake_bin, sizeof(fake_bin), "%s", getenv("KARS_FAKE_IDENTITY"));
	strcpy(dir, "/tmp/kars-credentials.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(token_path, sizeof(token_path), "%s/azure-identity-token", dir);
	snprintf(key_path, sizeof(key_path), "%s/api-key", dir);
	snprintf(port_path, sizeof(port_path), "%s/port", dir);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	kars_log_set_level(KARS_LOG_ERROR);
	atexit(cleanup_files);
	return 0;
}

static int setup_files(void **state)
{
	if (init_once())
		return -1;
	write_secret(token_path, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzYSJ9.c2lnLTE", 0600);
	return 0;
}

static int setup(void **state)
{
	struct timeval tv = {0, 20000};

	if (setup_files(state) || start_fake())
		return -1;
	base = event_base_new();
	up = base ? kars_upstream_new(base) : NULL;
	tick = base ? event_new(base, -1, EV_PERSIST, on_tick, NULL) : NULL;
	if (!up || !tick || event_add(tick, &tv))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	int status;

	wi_token_file = token_path;
	if (fake_pid > 0) {
		kill(fake_pid, SIGTERM);
		waitpid(fake_pid, &status, 0);
		fake_pid = 0;
	}
	if (tick)
		event_free(tick);
	kars_upstream_free(up);
	if (base)
		event_base_free(base);
	tick = NULL;
	up = NULL;
	base = NULL;
	return 0;
}

/* --- tests ------------------------------------------------------------------------- */

static void test_config_errors_name_fields(void **state)
{
	char text[1024];

	expect_refused("{\"kind\":\"vault\"}", "upstream.auth.kind: Unsupported value \"vault\"");
	expect_refused("{\"file\":\"/x\"}", "upstream.auth.kind");
	expect_refused("[]", "upstream.auth: expected an object");
	expect_refused("{\"kind\":\"imds\",\"resourse\":\"https://x\"}",
		       "upstream.auth.resourse: unknown field");
	expect_refused("{\"kind\":\"apiKeyFile\"}", "upstream.auth.file");
	snprintf(text, sizeof(text),
		 "{\"kind\":\"workloadIdentity\",\"clientId\":\"c\","
		 "\"tokenFile\":\"%s\"}",
		 token_path);
	expect_refused(text, "upstream.auth.tenantId");
	snprintf(text, sizeof(text),
		 "{\"kind\":\"workloadIdentity\",\"tenantId\":\"../evil\",\"clientId\":\"c\","
		 "\"tokenFile\":\"%s\"}",
		 token_path);
	expect_refused(text, "upstream.auth.tenantId: \"../evil\" is not an Azure AD id");
	snprintf(text, sizeof(text),
		 "{\"kind\":\"workloadIdentity\",\"tenantId\":\"t\",\"clientId\":\"c\","
		 "\"tokenFile\":\"%s\",\"scope\":\"https://cognitiveservices.azure.com\"}",
		 token_path);
	expect_refused(text, "upstream.auth.scope");
	snprintf(text, sizeof(text),
		 "{\"kind\":\"workloadIdentity\",\"tenantId\":\"t\",\"clientId\":\"c\","
		 "\"tokenFile\":\"%s\",\"authorityHost\":\"http://login.example.com\"}",
		 token_path);
	expect_refused(text, "upstream.auth.authorityHost");
	snprintf(text, sizeof(text),
		 "{\"kind\":\"workloadIdentity\",\"tenantId\":\"t\",\"clientId\":\"c\","
		 "\"tokenFile\":\"%s\",\"timeoutMs\":5}",
		 token_path);
	expect_refused(text, "upstream.auth.timeoutMs");
	expect_refused("{\"kind\":\"workloadIdentity\",\"tenantId\":\"t\",\"clientId\":\"c\","
		       "\"tokenFile\":\"/nonexistent/token\"}",
		       "upstream.auth.tokenFile: /nonexistent/token: No such file");
	expect_refused("{\"kind\":\"imds\",\"endpoint\":\"ftp://x\"}", "upstream.auth.endpoint");
	expect_refused("{\"kind\":\"imds\",\"clientId\":\"a b\"}", "upstream.auth.clientId");
}

static void test_config_defaults(void **state)
{
	struct kars_credential_config cfg;
	struct kars_err err = {0};
	char text[512];

	snprintf(text, sizeof(text),
		 "{\"kind\":\"workloadIdentity\",\"tenantId\":\"contoso.onmicrosoft.com\","
		 "\"clientId\":\"00000000-1111-2222-3333-444444444444\",\"tokenFile\":\"%s\"}",
		 token_path);
	assert_int_equal(parse(text, &cfg, &err), 0);
	assert_int_equal(cfg.kind, KARS_CREDENTIAL_WORKLOAD_IDENTITY);
	assert_string_equal(cfg.authority_host, "https://login.microsoftonline.com");
	assert_string_equal(cfg.scope, "https://cognitiveservices.azure.com/.default");
	assert_int_equal(cfg.timeout_ms, 10000);
	assert_int_equal(parse("{\"kind\":\"imds\"}", &cfg, &err), 0);
	assert_string_equal(cfg.endpoint, "http://169.254.169.254");
	assert_string_equal(cfg.resource, "https://cognitiveservices.azure.com");
	assert_string_equal(cfg.client_id, "");
}

static void expect_answer_refused(long status, const char *body, const char *needle)
{
	struct kars_err err = {0};
	long long life = 0;
	char *header = NULL;

	assert_true(kars_token_response_parse(status, body, strlen(body), &header, &life, &err) <
		    0);
	assert_null(header);
	assert_err_contains(&err, needle);
}

/* The answer parser on its own (fuzzed by fuzz_token_response). */
static void test_token_response(void **state)
{
	struct kars_err err = {0};
	long long life = 0;
	char *header = NULL, body[256];

	snprintf(body, sizeof(body),
		 "{\"access_token\":\"a.b.c\",\"expires_on\":\"%lld\",\"token_type\":"
		 "\"bearer\"}",
		 (long long)time(NULL) + 600);
	assert_int_equal(kars_token_response_parse(200, body, strlen(body), &header, &life, &err),
			 0);
	assert_string_equal(header, "Authorization: Bearer a.b.c");
	assert_true(life > 590000 && life <= 600000);
	free(header);
	expect_answer_refused(200, "{\"access_token\":\"a b\\r\\nX-Evil: 1\",\"expires_in\":9}",
			      "access_token holds a byte that cannot go in a header");
	expect_answer_refused(200, "{\"access_token\":\"x\",\"expires_in\":9000000000000000000}",
			      "expires_in is not a number of seconds");
	expect_answer_refused(200, "{\"access_token\":\"x\"}", "neither expires_in nor expires_on");
	expect_answer_refused(200, "{\"access_token\":\"x\",\"expires_in\":0}",
			      "expires_in 0 is out of range");
	expect_answer_refused(200, "{\"access_token\":\"x\",\"expires_on\":\"1000\"}",
			      "expires_on 1000 is in the past");
	expect_answer_refused(200,
			      "{\"access_token\":\"x\",\"expires_in\":60,\"token_type\":\"pop\"}",
			      "token_type is \"pop\", not Bearer");
	expect_answer_refused(200, "{\"expires_in\":60}", "no access_token");
	expect_answer_refused(200, "[]", "HTTP 200 without a JSON object");
	expect_answer_refused(502, "<html>", "HTTP 502: no JSON error body");
	/* The service's words, first line only, control bytes made visible. */
	expect_answer_refused(
	    400,
	    "{\"error\":\"bad\\u001b[31m\",\"error_description\":\"AADSTS1: x\\r\\n"
	    "Trace ID: 1\"}",
	    "HTTP 400: bad?[31m: AADSTS1: x");
}

static void test_agent_readable_files_refused(void **state)
{
	struct kars_credential_config cfg;
	struct kars_err err = {0};
	struct kars_credential *c;
	struct answer a;
	char text[512];

	snprintf(text, sizeof(text), "{\"kind\":\"apiKeyFile\",\"file\":\"%s\"}", key_path);
	write_secret(key_path, "sk-test\n", 0644);
	expect_refused(text, "must be 0600 (or 0400) and not owned by the agent's uid 1000");
	write_secret(key_path, "sk-test\n", 0640);
	expect_refused(text, "upstream.auth.file");
	write_secret(key_path, "sk-test\n", 0400);
	if (chown(key_path, AGENT_UID, AGENT_UID))
		skip();
	expect_refused(text, "owned by uid 1000");
	assert_int_equal(chown(key_path, 0, 0), 0);
	assert_int_equal(parse(text, &cfg, &err), 0);

	snprintf(text, sizeof(text),
		 "{\"kind\":\"workloadIdentity\",\"tenantId\":\"t\",\"clientId\":\"c\","
		 "\"tokenFile\":\"%s\"}",
		 token_path);
	write_secret(token_path, "a.b.c", 0644);
	expect_refused(text, "upstream.auth.tokenFile");

	/* Checked again at every read: a token file that turns agent-readable
	 * after start is refused, and nothing is sent. */
	write_secret(token_path, "a.b.c", 0600);
	c = wi_source("");
	write_secret(token_path, "a.b.c", 0604);
	get_now(c, &a);
	assert_string_equal(a.header, "");
	assert_non_null(strstr(a.error, "upstream.auth.tokenFile"));
	assert_non_null(strstr(a.error, "mode 0604"));
	assert_int_equal(stat_of("aad_requests"), 0);
	kars_credential_free(c);
}

static void test_api_key_header(void **state)
{
	struct kars_credential_config cfg;
	struct kars_err err = {0};
	struct kars_credential *c;
	struct answer a;
	char text[512];

	snprintf(text, sizeof(text), "{\"kind\":\"apiKeyFile\",\"file\":\"%s\"}", key_path);
	write_secret(key_path, "azure-key-123\n", 0600);
	assert_int_equal(parse(text, &cfg, &err), 0);
	c = kars_credential_new(base, up, &cfg, KARS_CREDENTIAL_API_KEY, &err);
	assert_non_null(c);
	memset(&a, 0, sizeof(a));
	assert_int_equal(kars_credential_get(c, &a.w, on_answer, &a), 0); /* at once */
	assert_string_equal(a.header, "api-key: azure-key-123");
	kars_credential_free(c);
	c = kars_credential_new(base, up, &cfg, KARS_CREDENTIAL_BEARER, &err);
	assert_non_null(c);
	assert_int_equal(kars_credential_get(c, &a.w, on_answer, &a), 0);
	assert_string_equal(a.header, "Authorization: Bearer azure-key-123");
	kars_credential_free(c);
	write_secret(key_path, "two\nlines\n", 0600);
	assert_null(kars_credential_new(base, up, &cfg, KARS_CREDENTIAL_BEARER, &err));
	assert_err_contains(&err, "one non-empty line");

	/* The shorthand upstream.apiKeyFile names its own field. */
	write_secret(key_path, "sk-short\n", 0644);
	kars_err_clear(&err);
	assert_true(kars_credential_config_api_key_file(key_path, "upstream.apiKeyFile", AGENT_UID,
							&cfg, &err) < 0);
	assert_err_contains(&err, "upstream.apiKeyFile: ");
	write_secret(key_path, "sk-short\n", 0600);
	assert_int_equal(kars_credential_config_api_key_file(key_path, "upstream.apiKeyFile",
							     AGENT_UID, &cfg, &err),
			 0);
	c = kars_credential_new(base, up, &cfg, KARS_CREDENTIAL_BEARER, &err);
	assert_non_null(c);
	assert_int_equal(kars_credential_get(c, &a.w, on_answer, &a), 0);
	assert_string_equal(a.header, "Authorization: Bearer sk-short");
	kars_credential_free(c);
}

/* kars credentials update replaces the key file atomically: the router uses
 * the new key from the next request on, without a restart; a replacement it
 * cannot use (agent-readable, empty) leaves the old key in force. The loop
 * runs until the watch has seen the change (inotify, or the stat() poll). */
static void test_api_key_reloaded(void **state)
{
	struct kars_credential_config cfg;
	struct kars_credential_stats st;
	struct kars_err err = {0};
	struct kars_credential *c;
	struct answer a;
	char text[512];

	snprintf(text, sizeof(text), "{\"kind\":\"apiKeyFile\",\"file\":\"%s\"}", key_path);
	write_secret(key_path, "sk-old\n", 0600);
	assert_int_equal(parse(text, &cfg, &err), 0);
	c = kars_credential_new(base, up, &cfg, KARS_CREDENTIAL_BEARER, &err);
	assert_non_null(c);
	memset(&a, 0, sizeof(a));
	assert_int_equal(kars_credential_get(c, &a.w, on_answer, &a), 0);
	assert_string_equal(a.header, "Authorization: Bearer sk-old");

	/* Bounded in loop turns, not time: without a watch the loop has no
	 * event and returns at once. */
	write_secret(key_path, "sk-new\n", 0600);
	for (int i = 0; i < 1000 && strcmp(a.header, "Authorization: Bearer sk-new"); i++) {
		event_base_loop(base, EVLOOP_ONCE);
		assert_int_equal(kars_credential_get(c, &a.w, on_answer, &a), 0);
	}
	assert_string_equal(a.header, "Authorization: Bearer sk-new");

	write_secret(key_path, "sk-leaked\n", 0644);
	kars_credential_get_stats(c, &st);
	for (int i = 0; i < 1000 && st.failures == 0; i++) {
		event_base_loop(base, EVLOOP_ONCE);
		kars_credential_get_stats(c, &st);
	}
	assert_non_null(strstr(st.last_error, "0644"));
	assert_true(st.valid);
	assert_int_equal(kars_credential_get(c, &a.w, on_answer, &a), 0);
	assert_string_equal(a.header, "Authorization: Bearer sk-new");
	kars_credential_free(c);
}

static void test_workload_identity_fetched_and_cached(void **state)
{
	struct kars_credential_stats st;
	struct kars_credential *c;
	struct answer a;
	json_t *s, *last;
	char logs[8192] = "";
	int saved = dup(2), fd;
	char log_path[160];

	/* Everything the source logs goes to a file we then search for the
	 * token: it must not be there. */
	snprintf(log_path, sizeof(log_path), "%s/log", dir);
	fd = open(log_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	dup2(fd, 2);
	kars_log_set_level(KARS_LOG_DEBUG);

	c = wi_source("");
	memset(&a, 0, sizeof(a));
	assert_int_equal(kars_credential_get(c, &a.w, on_answer, &a), 1); /* queued */
	assert_true(run_until(&a.called));
	assert_string_equal(a.header, "Authorization: Bearer fake-aad-1");
	assert_string_equal(a.error, "");
	/* Cached: the next caller is answered at once, no new request. */
	memset(&a, 0, sizeof(a));
	assert_int_equal(kars_credential_get(c, &a.w, on_answer, &a), 0);
	assert_string_equal(a.header, "Authorization: Bearer fake-aad-1");
	run_for(200);
	s = fake_call("GET", "/_fake/stats");
	assert_int_equal(json_integer_value(json_object_get(s, "aad_requests")), 1);
	last = json_object_get(s, "last");
	assert_string_equal(json_string_value(json_object_get(last, "tenant")), "tenant-1");
	assert_string_equal(json_string_value(json_object_get(last, "grant_type")),
			    "client_credentials");
	assert_string_equal(json_string_value(json_object_get(last, "client_id")), "client-1");
	assert_string_equal(json_string_value(json_object_get(last, "scope")),
			    "https://cognitiveservices.azure.com/.default");
	assert_string_equal(json_string_value(json_object_get(last, "client_assertion_type")),
			    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
	assert_string_equal(json_string_value(json_object_get(last, "client_assertion")),
			    "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzYSJ9.c2lnLTE");
	json_decref(s);
	kars_credential_get_stats(c, &st);
	assert_true(st.valid);
	assert_int_equal(st.refreshes, 1);
	assert_true(st.expires_in_ms > 3000 * 1000 && st.expires_in_ms <= 3599 * 1000);
	kars_credential_free(c);

	kars_log_set_level(KARS_LOG_ERROR);
	dup2(saved, 2);
	close(saved);
	assert_true(pread(fd, logs, sizeof(logs) - 1, 0) > 0);
	close(fd);
	unlink(log_path);
	assert_non_null(strstr(logs, "new token"));
	assert_null(strstr(logs, "fake-aad"));
	assert_null(strstr(logs, "c2lnLTE"));
}

static void test_single_flight(void **state)
{
	struct answer a[20];
	struct kars_credential *c;
	bool all = false;
	int64_t deadline;

	fake_config("delay_ms=300");
	c = wi_source("");
	for (int i = 0; i < 20; i++) {
		memset(&a[i], 0, sizeof(a[i]));
		assert_int_equal(kars_credential_get(c, &a[i].w, on_answer, &a[i]), 1);
	}
	deadline = mono_ms() + WAIT_LIMIT_MS;
	while (!all && mono_ms() < deadline) {
		event_base_loop(base, EVLOOP_ONCE);
		all = true;
		for (int i = 0; i < 20; i++)
			all = all && a[i].called;
	}
	assert_true(all);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(a[i].calls, 1);
		assert_string_equal(a[i].header, "Authorization: Bearer fake-aad-1");
	}
	assert_int_equal(stat_of("aad_requests"), 1);
	assert_int_equal(stat_of("max_in_flight"), 1);
	kars_credential_free(c);
}

static void test_imds(void **state)
{
	struct kars_credential_config cfg;
	struct kars_err err = {0};
	struct kars_credential *c;
	struct kars_credential_stats st;
	struct answer a;
	char text[512];
	json_t *s, *last;

	snprintf(
	    text, sizeof(text),
	    "{\"kind\":\"imds\",\"clientId\":\"client-1\",\"endpoint\":\"http://127.0.0.1:%u\","
	    "\"resource\":\"https://cognitiveservices.azure.com\"}",
	    fake_port);
	assert_int_equal(parse(text, &cfg, &err), 0);
	c = kars_credential_new(base, up, &cfg, KARS_CREDENTIAL_API_KEY, &err);
	assert_non_null(c);
	get_now(c, &a);
	assert_string_equal(a.header, "Authorization: Bearer fake-imds-1");
	s = fake_call("GET", "/_fake/stats");
	last = json_object_get(s, "last");
	assert_string_equal(json_string_value(json_object_get(last, "Metadata")), "true");
	assert_string_equal(json_string_value(json_object_get(last, "api-version")), "2018-02-01");
	assert_string_equal(json_string_value(json_object_get(last, "resource")),
			    "https://cognitiveservices.azure.com");
	assert_string_equal(json_string_value(json_object_get(last, "client_id")), "client-1");
	json_decref(s);
	/* expires_in came as the string "3599" */
	kars_credential_get_stats(c, &st);
	assert_true(st.expires_in_ms > 3000 * 1000 && st.expires_in_ms <= 3599 * 1000);
	kars_credential_free(c);

	/* A wrong client id: IMDS's error, passed on. */
	snprintf(
	    text, sizeof(text),
	    "{\"kind\":\"imds\",\"clientId\":\"client-2\",\"endpoint\":\"http://127.0.0.1:%u\"}",
	    fake_port);
	assert_int_equal(parse(text, &cfg, &err), 0);
	c = kars_credential_new(base, up, &cfg, KARS_CREDENTIAL_API_KEY, &err);
	assert_non_null(c);
	get_now(c, &a);
	assert_string_equal(a.header, "");
	assert_non_null(strstr(a.error, "HTTP 400: invalid_request: Identity not found"));
	kars_credential_free(c);
}

/* With a 3 s lifetime, callers asking every 20 ms for 5 s are always
 * answered at once with a valid token: the refresh happens before expiry,
 * in the background. */
static void test_refresh_before_expiry(void **state)
{
	struct kars_credential *c;
	struct answer a;
	char seen[8][256];
	int nseen = 0;
	int64_t end;

	fake_config("lifetime=3");
	c = wi_source("");
	get_now(c, &a);
	assert_string_equal(a.header, "Authorization: Bearer fake-aad-1");
	end = mono_ms() + 5000;
	while (mono_ms() < end) {
		memset(&a, 0, sizeof(a));
		if (kars_credential_get(c, &a.w, on_answer, &a) != 0)
			fail_msg("a caller had to wait: the token expired before its refresh");
		assert_string_equal(a.error, "");
		if (!nseen || strcmp(seen[nseen - 1], a.header)) {
			assert_true(nseen < 8);
			snprintf(seen[nseen++], sizeof(seen[0]), "%s", a.header);
		}
		run_for(20);
	}
	/* 5 s of 3 s tokens refreshed at half-life: at least 3 distinct ones
	 * (one more request may be on the wire as the loop stops). */
	assert_true(nseen >= 3);
	assert_true(stat_of("aad_requests") == nseen || stat_of("aad_requests") == nseen + 1);
	kars_credential_free(c);
}

static void test_timeout(void **state)
{
	struct kars_credential *c;
	struct kars_credential_stats st;
	struct answer a;

	fake_config("delay_ms=5000");
	c = wi_source(",\"timeoutMs\":300");
	get_now(c, &a); /* bounded: fails the test if no answer */
	assert_string_equal(a.header, "");
	assert_non_null(strstr(a.error, "no valid upstream credential"));
	assert_non_null(strstr(a.error, "Timeout was reached"));
	kars_credential_get_stats(c, &st);
	assert_false(st.valid);
	assert_int_equal(st.failures, 1);
	kars_credential_free(c);
}

static void test_failure_keeps_old_token_and_retries(void **state)
{
	struct kars_credential_stats st;
	struct kars_credential *c;
	struct answer a;
	int64_t deadline;

	fake_config("lifetime=3");
	c = wi_source("");
	get_now(c, &a);
	assert_string_equal(a.header, "Authorization: Bearer fake-aad-1");
	fake_config("fail_status=503&fail_count=1");
	/* The refresh at half-life fails ... */
	deadline = mono_ms() + WAIT_LIMIT_MS;
	while (stat_of("failures_sent") < 1 && mono_ms() < deadline)
		run_for(50);
	assert_int_equal(stat_of("failures_sent"), 1);
	run_for(20);
	kars_credential_get_stats(c, &st);
	/* ... the old token is still in use (if the retry has not come yet) ... */
	memset(&a, 0, sizeof(a));
	assert_int_equal(kars_credential_get(c, &a.w, on_answer, &a), 0);
	if (stat_of("tokens_issued") == 1)
		assert_string_equal(a.header, "Authorization: Bearer fake-aad-1");
	assert_int_equal(st.failures, 1);
	assert_non_null(strstr(st.last_error, "HTTP 503: temporarily_unavailable: AADSTS90033"));
	/* ... and the retry, before it expires, brings a new one. */
	while (stat_of("tokens_issued") < 2 && mono_ms() < deadline)
		run_for(50);
	run_for(20);
	memset(&a, 0, sizeof(a));
	assert_int_equal(kars_credential_get(c, &a.w, on_answer, &a), 0);
	assert_string_equal(a.header, "Authorization: Bearer fake-aad-2");
	kars_credential_get_stats(c, &st);
	assert_string_equal(st.last_error, "");
	kars_credential_free(c);
}

static void test_no_token_fails_clearly(void **state)
{
	struct kars_credential *c;
	struct answer a;

	fake_config("fail_status=401&fail_count=-1");
	c = wi_source("");
	get_now(c, &a);
	assert_string_equal(a.header, "");
	assert_non_null(strstr(a.error, "no valid upstream credential: workloadIdentity: token "
					"endpoint http://127.0.0.1"));
	assert_non_null(strstr(a.error, "HTTP 401: invalid_client: AADSTS70021: No matching "
					"federated identity record"));
	assert_null(strstr(a.error, "Trace ID")); /* one line */
	/* Held back: the next caller is told at once, AAD is not hammered. */
	memset(&a, 0, sizeof(a));
	assert_int_equal(kars_credential_get(c, &a.w, on_answer, &a), 0);
	assert_non_null(strstr(a.error, "next attempt in"));
	assert_int_equal(stat_of("aad_requests"), 1);
	kars_credential_free(c);
}

/* "next attempt in N ms" from an error. */
static long next_attempt_ms(const char *error)
{
	const char *p = strstr(error, "next attempt in ");

	if (!p)
		fail_msg("no \"next attempt in\" in \"%s\"", error);
	return strtol(p + strlen("next attempt in "), NULL, 10);
}

static void test_backoff_and_retry_after(void **state)
{
	struct kars_credential *c;
	struct answer a;
	int64_t deadline;
	long ms;

	/* Exponential: 1 s after the first failure, 2 s after the second. */
	fake_config("fail_status=503&fail_count=-1");
	c = wi_source("");
	get_now(c, &a);
	memset(&a, 0, sizeof(a));
	assert_int_equal(kars_credential_get(c, &a.w, on_answer, &a), 0);
	ms = next_attempt_ms(a.error);
	assert_true(ms > 0 && ms <= 1000);
	deadline = mono_ms() + WAIT_LIMIT_MS;
	while (stat_of("aad_requests") < 2 && mono_ms() < deadline)
		run_for(50);
	run_for(20);
	memset(&a, 0, sizeof(a));
	assert_int_equal(kars_credential_get(c, &a.w, on_answer, &a), 0);
	ms = next_attempt_ms(a.error);
	assert_true(ms > 1000 && ms <= 2000);
	kars_credential_free(c);

	/* Retry-After from a throttling AAD wins over the backoff. */
	fake_config("fail_status=429&fail_count=1&retry_after=7");
	c = wi_source("");
	get_now(c, &a);
	assert_non_null(strstr(a.error, "HTTP 429"));
	memset(&a, 0, sizeof(a));
	assert_int_equal(kars_credential_get(c, &a.w, on_answer, &a), 0);
	ms = next_attempt_ms(a.error);
	assert_true(ms > 5000 && ms <= 7000);
	kars_credential_free(c);
}

static void test_token_file_reread(void **state)
{
	struct kars_credential *c;
	struct answer a;
	json_t *s;
	int64_t deadline;

	fake_config("lifetime=2");
	c = wi_source("");
	get_now(c, &a);
	write_secret(token_path, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzYSJ9.c2lnLTI", 0600);
	deadline = mono_ms() + WAIT_LIMIT_MS;
	while (stat_of("tokens_issued") < 2 && mono_ms() < deadline)
		run_for(50);
	s = fake_call("GET", "/_fake/stats");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(s, "last"), "client_assertion")),
	    "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzYSJ9.c2lnLTI");
	json_decref(s);
	kars_credential_free(c);
}

/* dir/NAME -> ..data/NAME, ..data -> ..ts<n>/: the kubelet's atomic
 * writer, which rotates the token by renaming a new ..data over the old. */
static void kubelet_project(const char *tokens, int n, const char *token)
{
	char ts[256], file[320], tmp[256], data[256];

	snprintf(ts, sizeof(ts), "%s/..ts%d", tokens, n);
	assert_int_equal(mkdir(ts, 0755), 0);
	snprintf(file, sizeof(file), "%s/azure-identity-token", ts);
	write_secret(file, token, 0600);
	snprintf(tmp, sizeof(tmp), "%s/..data_tmp", tokens);
	snprintf(data, sizeof(data), "%s/..data", tokens);
	snprintf(ts, sizeof(ts), "..ts%d", n);
	assert_int_equal(symlink(ts, tmp), 0);
	assert_int_equal(rename(tmp, data), 0);
}

static void test_kubelet_projected_token_rotation(void **state)
{
	char tokens[128], link[192], path[256];
	struct kars_credential *c;
	struct answer a;
	json_t *s;
	int64_t deadline;

	snprintf(tokens, sizeof(tokens), "%s/tokens", dir);
	assert_int_equal(mkdir(tokens, 0755), 0);
	kubelet_project(tokens, 1, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzYSJ9.cm90LTE");
	snprintf(link, sizeof(link), "%s/azure-identity-token", tokens);
	assert_int_equal(symlink("..data/azure-identity-token", link), 0);
	fake_config("lifetime=2");
	wi_token_file = link;
	c = wi_source("");
	get_now(c, &a);
	assert_string_equal(a.header, "Authorization: Bearer fake-aad-1");
	kubelet_project(tokens, 2, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzYSJ9.cm90LTI");
	deadline = mono_ms() + WAIT_LIMIT_MS;
	while (stat_of("tokens_issued") < 2 && mono_ms() < deadline)
		run_for(50);
	s = fake_call("GET", "/_fake/stats");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(s, "last"), "client_assertion")),
	    "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzYSJ9.cm90LTI");
	json_decref(s);
	kars_credential_free(c);
	wi_token_file = token_path;
	unlink(link);
	for (int i = 1; i <= 2; i++) {
		snprintf(path, sizeof(path), "%s/..ts%d/azure-identity-token", tokens, i);
		unlink(path);
		snprintf(path, sizeof(path), "%s/..ts%d", tokens, i);
		rmdir(path);
	}
	snprintf(path, sizeof(path), "%s/..data", tokens);
	unlink(path);
	rmdir(tokens);
}

static void test_cancel_and_free(void **state)
{
	struct kars_credential *c;
	struct answer a, b;

	fake_config("delay_ms=300");
	c = wi_source("");
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	assert_int_equal(kars_credential_get(c, &a.w, on_answer, &a), 1);
	assert_int_equal(kars_credential_get(c, &b.w, on_answer, &b), 1);
	kars_credential_cancel(c, &a.w); /* its request went away */
	kars_credential_cancel(c, &a.w); /* twice is harmless */
	assert_true(run_until(&b.called));
	assert_false(a.called);
	assert_string_equal(b.header, "Authorization: Bearer fake-aad-1");
	kars_credential_free(c);

	/* Freed with a caller waiting: told, not forgotten. */
	fake_config("delay_ms=5000");
	c = wi_source("");
	memset(&a, 0, sizeof(a));
	assert_int_equal(kars_credential_get(c, &a.w, on_answer, &a), 1);
	run_for(50);
	kars_credential_free(c);
	assert_true(a.called);
	assert_non_null(strstr(a.error, "credential source closed"));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup(test_config_errors_name_fields, setup_files),
    cmocka_unit_test_setup(test_config_defaults, setup_files),
    cmocka_unit_test(test_token_response),
    cmocka_unit_test_setup_teardown(test_agent_readable_files_refused, setup, teardown),
    cmocka_unit_test_setup_teardown(test_api_key_header, setup, teardown),
    cmocka_unit_test_setup_teardown(test_api_key_reloaded, setup, teardown),
    cmocka_unit_test_setup_teardown(test_workload_identity_fetched_and_cached, setup, teardown),
    cmocka_unit_test_setup_teardown(test_single_flight, setup, teardown),
    cmocka_unit_test_setup_teardown(test_imds, setup, teardown),
    cmocka_unit_test_setup_teardown(test_refresh_before_expiry, setup, teardown),
    cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
    cmocka_unit_test_setup_teardown(test_failure_keeps_old_token_and_retries, setup, teardown),
    cmocka_unit_test_setup_teardown(test_no_token_fails_clearly, setup, teardown),
    cmocka_unit_test_setup_teardown(test_backoff_and_retry_after, setup, teardown),
    cmocka_unit_test_setup_teardown(test_token_file_reread, setup, teardown),
    cmocka_unit_test_setup_teardown(test_kubelet_projected_token_rotation, setup, teardown),
    cmocka_unit_test_setup_teardown(test_cancel_and_free, setup, teardown),
};

KARS_UNIT_MAIN(tests)
