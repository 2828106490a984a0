/* test_dns_blocklist.c - the DNS blocklist as karsd installs it: loading
 * files (bad lines reported FILE:LINE, the rest loaded), check and status,
 * and real sockets of the agent and the router against it, including a real
 * resolver (Debian's dnsmasq) answering glibc's getaddrinfo().
 *
 * The blocklist is node-wide: every test here leaves an empty list loaded.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dns_testpkt.h"
#include "harness.h"
#include "karsd_proc.h"
#include "metrics.h"
#include "net_helpers.h"

#define LIST_TEXT                                                                                  \
	"# kars test list\n"                                                                       \
	"*.blocked.example\n"                                                                      \
	"0.0.0.0 ads.example tracker.example # hosts format\n"                                     \
	"bad..name\n"                                                                              \
	"a.*.b\n"                                                                                  \
	"Plain.Example.\n"

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	fputs(text, f);
	fclose(f);
	chmod(path, 0644);
	return 0;
}

static json_t *load(const char *path, char *errbuf, size_t errlen)
{
	json_t *resp = NULL;

	if (kst_call(json_pack("{s:s,s:[s]}", "op", "blocklist_load", "files", path), &resp, errbuf,
		     errlen)) {
		json_decref(resp);
		return NULL;
	}
	return resp;
}

/* Leaves the node with an empty list. */
static void unload(struct kst_env *env)
{
	char path[PATH_MAX], err[256];

	snprintf(path, sizeof(path), "/tmp/kars-dns-empty-%d", (int)getpid());
	if (write_file(path, "# empty\n") == 0)
		json_decref(load(path, err, sizeof(err)));
	unlink(path);
}

static bool loaded_test_list(struct kst_env *env, char *path, size_t len)
{
	char err[256];
	json_t *resp;

	snprintf(path, len, "/tmp/kars-dns-list-%d-%d", (int)getpid(), env->num);
	if (!ASSERT_OK(write_file(path, LIST_TEXT), "write list"))
		return false;
	resp = load(path, err, sizeof(err));
	if (!ASSERT_OK_PTR(resp, err))
		return false;
	json_decref(resp);
	return true;
}

static int agent_asks_status(struct kst_env *env, void *arg)
{
	json_t *req = json_pack("{s:s}", "op", "blocklist_status");
	char err[256] = "";

	ASSERT_TRUE(kst_call_unprivileged(req, NULL, err, sizeof(err)) != 0, "agent UID refused");
	ASSERT_STRSTR(err, "permission denied", "refusal");
	json_decref(req);
	return 0;
}

/* The metrics report the status numbers (st: a blocklist_status answer). */
static void metrics_match_status(const json_t *st)
{
	char err[256], *text = NULL;

	if (!ASSERT_OK(kst_metrics_fetch(&text, err, sizeof(err)), err))
		return;
	ASSERT_EQ(kst_metric(text, "kars_blocklist_loaded", -1),
		  json_is_true(json_object_get(st, "loaded")), "metrics: loaded");
	ASSERT_EQ(kst_metric(text, "kars_blocklist_entries", -1), kst_json_int(st, "entries", -2),
		  "metrics: entries as status");
	ASSERT_EQ(kst_metric(text, "kars_blocklist_generation", -1),
		  kst_json_int(st, "generation", -2), "metrics: generation as status");
	ASSERT_EQ(kst_metric(text, "kars_blocklist_memory_bytes", -1),
		  kst_json_int(st, "memoryBytes", 0), "metrics: memory as status");
	free(text);
}

KST_TEST(blocklist_load_check_status)
{
	char path[PATH_MAX], err[256], want[PATH_MAX + 16];
	json_t *resp = NULL, *st = NULL, *chk = NULL;
	long long gen;

	snprintf(path, sizeof(path), "/tmp/kars-dns-list-%d-%d", (int)getpid(), env->num);
	if (!ASSERT_OK(write_file(path, LIST_TEXT), "write list"))
		goto cleanup;
	resp = load(path, err, sizeof(err));
	if (!ASSERT_OK_PTR(resp, err))
		goto cleanup;
	ASSERT_EQ(kst_json_int(resp, "entries", -1), 4, "four names loaded");
	ASSERT_EQ(kst_json_int(resp, "rejected", -1), 2, "two lines rejected");
	ASSERT_EQ(kst_json_int(resp, "lines", -1), 6, "six lines read");
	snprintf(want, sizeof(want), "%s:4:", path);
	ASSERT_STRSTR(json_string_value(json_array_get(json_object_get(resp, "errors"), 0)), want,
		      "first error names file:line");
	snprintf(want, sizeof(want), "%s:5:", path);
	ASSERT_STRSTR(json_string_value(json_array_get(json_object_get(resp, "errors"), 1)), want,
		      "second error names file:line");
	ASSERT_GT(kst_json_int(resp, "memoryBytes", 0), 0, "kernel memory reported");
	gen = kst_json_int(resp, "generation", 0);
	ASSERT_GT(gen, 0, "a generation");

	if (ASSERT_OK(kst_call(json_pack("{s:s,s:s}", "op", "blocklist_check", "name",
					 "WWW.Blocked.Example."),
			       &chk, err, sizeof(err)),
		      err)) {
		ASSERT_TRUE(json_is_true(json_object_get(chk, "blocked")), "subdomain blocked");
		ASSERT_STREQ(kst_json_str(chk, "matched"), "blocked.example", "matched entry");
	}
	json_decref(chk);
	chk = NULL;
	if (ASSERT_OK(kst_call(json_pack("{s:s,s:s}", "op", "blocklist_check", "name", "example"),
			       &chk, err, sizeof(err)),
		      err))
		ASSERT_FALSE(json_is_true(json_object_get(chk, "blocked")), "parent not blocked");
	json_decref(chk);
	chk = NULL;
	if (ASSERT_OK(kst_call(json_pack("{s:s}", "op", "blocklist_status"), &st, err, sizeof(err)),
		      err)) {
		ASSERT_EQ(kst_json_int(st, "entries", -1), 4, "status entries");
		ASSERT_EQ(kst_json_int(st, "generation", -1), gen, "status generation");
		ASSERT_GT(kst_json_int(st, "memoryBytes", 0), 0, "status memory");
		metrics_match_status(st);
	}
	/* A file that cannot be read refuses the whole load: nothing changes. */
	json_decref(resp);
	resp = NULL;
	ASSERT_TRUE(kst_call(json_pack("{s:s,s:[s,s]}", "op", "blocklist_load", "files", path,
				       "/nonexistent/list"),
			     &resp, err, sizeof(err)) != 0,
		    "missing file refused");
	ASSERT_STRSTR(err, "/nonexistent/list", "error names the file");
	json_decref(st);
	st = NULL;
	if (ASSERT_OK(kst_call(json_pack("{s:s}", "op", "blocklist_status"), &st, err, sizeof(err)),
		      err))
		ASSERT_EQ(kst_json_int(st, "generation", -1), gen, "generation unchanged");
	/* Not for agents. */
	ASSERT_OK(kst_run(env, KST_AGENT, KST_AGENT_UID, agent_asks_status, NULL), "agent");
cleanup:
	json_decref(resp);
	json_decref(st);
	json_decref(chk);
	unlink(path);
	unload(env);
}

static int agent_queries(struct kst_env *env, void *arg)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	uint64_t t0;
	int e;

	if (!ASSERT_OK_FD(fd, "socket"))
		return 1;
	t0 = kst_now_ms();
	e = kst_dns_sendto(fd, "www.blocked.example", KST_DNS4, 53);
	ASSERT_ERRNO(e, EPERM, "blocked query: sendto fails");
	ASSERT_TRUE(kst_now_ms() - t0 < 500, "and fails at once");
	ASSERT_ERRNO(kst_dns_sendto(fd, "TRACKER.example", KST_DNS4, 53), EPERM,
		     "hosts-format entry, other case: sendto fails");
	ASSERT_ERRNO(kst_dns_sendto(fd, "allowed.example", KST_DNS4, 53), 0, "allowed query sent");
	close(fd);
	return 0;
}

static bool match_dns_blocked(const json_t *ev, const void *arg)
{
	return strcmp(kst_json_str(ev, "reason"), "dns_blocked") == 0 &&
	       strcmp(kst_json_str(ev, "qname"), (const char *)arg) == 0;
}

KST_TEST(agent_dns_blocklist)
{
	struct kst_peer resolver;
	struct kst_report r;
	char path[PATH_MAX];
	json_t *ev = NULL;
	int evfd = -1;

	if (!loaded_test_list(env, path, sizeof(path)) ||
	    !ASSERT_OK(kst_apply_default(env), "apply") ||
	    !ASSERT_OK(
		kst_listen(env, SOCK_DGRAM, KST_RESOLVER4, KST_RESOLVER_PORT, "answer", &resolver),
		"resolver"))
		goto cleanup;
	evfd = kst_events_open();
	ASSERT_OK_FD(evfd, "subscribe");
	ASSERT_OK(kst_run(env, KST_AGENT, KST_AGENT_UID, agent_queries, NULL), "agent");
	if (ASSERT_OK(kst_peer_next(&resolver, &r, KST_IO_TIMEOUT_MS), "resolver got a query"))
		ASSERT_STREQ(r.data, "allowed.example", "only the allowed query arrived");
	ASSERT_TRUE(kst_peer_quiet(&resolver, 300), "nothing else reached the resolver");
	if (evfd >= 0) {
		ev = kst_events_find(evfd, match_dns_blocked, "www.blocked.example", 3000);
		if (ASSERT_OK_PTR(ev, "dns_blocked event with the name")) {
			ASSERT_STREQ(kst_json_str(ev, "hook"), "dns_egress", "event hook");
			ASSERT_STREQ(kst_json_str(ev, "role"), "agent", "event role");
			ASSERT_STREQ(kst_json_str(ev, "sandbox"), env->sandbox, "event sandbox");
		}
	}
cleanup:
	json_decref(ev);
	if (evfd >= 0)
		close(evfd);
	unlink(path);
	unload(env);
}

static int router_queries(struct kst_env *env, void *arg)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (!ASSERT_OK_FD(fd, "socket"))
		return 1;
	ASSERT_ERRNO(kst_dns_sendto(fd, "ads.example", KST_REMOTE4, 53), EPERM,
		     "router: blocked query fails");
	ASSERT_ERRNO(kst_dns_sendto(fd, "ok.example", KST_REMOTE4, 53), 0,
		     "router: allowed query sent");
	close(fd);
	return 0;
}

/* The router resolves names for the upstream and the egress proxy: the same
 * blocklist applies to its DNS, to whatever resolver its rules allow. */
KST_TEST(router_dns_blocklist)
{
	struct kst_peer dns;
	struct kst_report r;
	char path[PATH_MAX];
	json_t *pol = NULL;

	if (!loaded_test_list(env, path, sizeof(path)))
		goto cleanup;
	pol = kst_policy(env);
	kst_rule_exact(pol, KST_REMOTE4, 53, "udp");
	if (!ASSERT_OK(kst_apply(env, pol, NULL), "apply") ||
	    !ASSERT_OK(kst_listen(env, SOCK_DGRAM, KST_REMOTE4, 53, "answer", &dns), "dns server"))
		goto cleanup;
	ASSERT_OK(kst_run(env, KST_ROUTER, KST_ROUTER_UID, router_queries, NULL), "router");
	if (ASSERT_OK(kst_peer_next(&dns, &r, KST_IO_TIMEOUT_MS), "server got a query"))
		ASSERT_STREQ(r.data, "ok.example", "only the allowed query arrived");
	ASSERT_TRUE(kst_peer_quiet(&dns, 300), "nothing else arrived");
cleanup:
	json_decref(pol);
	unlink(path);
	unload(env);
}

/* --- a real resolver --------------------------------------------------------- */

static int run_dnsmasq(struct kst_env *env, void *arg)
{
	char listen[64];

	snprintf(listen, sizeof(listen), "--port=%d", KST_RESOLVER_PORT);
	execlp("dnsmasq", "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
	       "--listen-address=" KST_RESOLVER4, listen, "--bind-interfaces", "--no-resolv",
	       "--no-hosts", "--user=root", "--pid-file=", "--log-facility=-",
	       "--address=/allowed.test/198.51.100.7", "--address=/blocked.example/198.51.100.8",
	       (char *)NULL);
	_exit(127);
}

struct lookup {
	const char *name;
	int ret;
	char addr[64];
	uint64_t ms;
};

static int agent_lookup(struct kst_env *env, void *arg)
{
	struct lookup *l = arg, *out = env->scratch;
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_DGRAM}, *res = NULL;
	uint64_t t0 = kst_now_ms();

	*out = *l;
	out->ret = getaddrinfo(l->name, NULL, &hints, &res);
	out->ms = kst_now_ms() - t0;
	if (out->ret == 0)
		inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, out->addr,
			  sizeof(out->addr));
	if (res)
		freeaddrinfo(res);
	return 0;
}

KST_TEST(agent_dns_real_resolver)
{
	struct lookup l = {0}, *got = env->scratch;
	char path[PATH_MAX];
	pid_t dnsmasq;
	int i;

	if (system("command -v dnsmasq >/dev/null 2>&1") != 0) {
		kst_skip("dnsmasq is not installed (Debian package dnsmasq-base)");
		return;
	}
	if (!loaded_test_list(env, path, sizeof(path)) ||
	    !ASSERT_OK(kst_apply_default(env), "apply"))
		goto cleanup;
	dnsmasq = kst_spawn(env, KST_HOST, KST_ROOT, "dnsmasq", run_dnsmasq, NULL);
	if (!ASSERT_GT(dnsmasq, 0, "start dnsmasq"))
		goto cleanup;
	/* Wait for dnsmasq to answer (bounded). */
	l.name = "allowed.test";
	for (i = 0; i < 50; i++) {
		ASSERT_OK(kst_run(env, KST_AGENT, KST_AGENT_UID, agent_lookup, &l), "lookup");
		if (got->ret == 0)
			break;
		kst_msleep(100);
	}
	if (ASSERT_EQ(got->ret, 0, "allowed.test resolves through the sandbox resolver"))
		ASSERT_STREQ(got->addr, "198.51.100.7", "the resolver's answer");
	l.name = "www.blocked.example";
	ASSERT_OK(kst_run(env, KST_AGENT, KST_AGENT_UID, agent_lookup, &l), "lookup blocked");
	ASSERT_NEQ(got->ret, 0, "blocked name does not resolve");
	ASSERT_TRUE(got->ms < 1000, "and fails fast (no resolver timeout)");
	kst_log("blocked lookup failed in %llu ms: %s", (unsigned long long)got->ms,
		gai_strerror(got->ret));
cleanup:
	unlink(path);
	unload(env);
}

/* --- tunnelling caps ----------------------------------------------------------- */

struct caps_result {
	int long_name;
	int ok, denied, other;
};

static int agent_caps(struct kst_env *env, void *arg)
{
	struct caps_result *res = env->scratch;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	char name[64];

	if (!ASSERT_OK_FD(fd, "socket"))
		return 1;
	memset(res, 0, sizeof(*res));
	/* 31 characters: over this sandbox's cap of 30, far under the global 253. */
	res->long_name = kst_dns_sendto(fd, "a-rather-long-label.example.org", KST_DNS4, 53);
	for (int i = 0; i < 10; i++) {
		int e;

		snprintf(name, sizeof(name), "q%d.example", i);
		e = kst_dns_sendto(fd, name, KST_DNS4, 53);
		if (e == 0)
			res->ok++;
		else if (e == EPERM)
			res->denied++;
		else
			res->other++;
	}
	close(fd);
	return 0;
}

static bool match_reason(const json_t *ev, const void *arg)
{
	return strcmp(kst_json_str(ev, "reason"), (const char *)arg) == 0;
}

KST_TEST(agent_dns_tunnel_caps)
{
	struct caps_result *res = env->scratch;
	struct kst_peer resolver;
	char err[256];
	json_t *pol = kst_policy(env), *resp = NULL, *ev = NULL;
	char *text = NULL;
	int evfd = -1;

	/* A bad cap is refused with the field named. */
	json_object_set_new(pol, "dns", json_pack("{s:i}", "maxNameLength", 300));
	ASSERT_TRUE(kst_call(pol, &resp, err, sizeof(err)) != 0, "maxNameLength 300 refused");
	ASSERT_STRSTR(err, "dns.maxNameLength", "error names the field");
	json_decref(resp);
	resp = NULL;
	json_object_set_new(pol, "dns",
			    json_pack("{s:i,s:i}", "maxNameLength", 30, "maxQueriesPerSecond", 5));
	if (!ASSERT_OK(kst_apply(env, pol, NULL), "apply with caps") ||
	    !ASSERT_OK(
		kst_listen(env, SOCK_DGRAM, KST_RESOLVER4, KST_RESOLVER_PORT, "answer", &resolver),
		"resolver"))
		goto cleanup;
	evfd = kst_events_open();
	ASSERT_OK(kst_run(env, KST_AGENT, KST_AGENT_UID, agent_caps, NULL), "agent");
	ASSERT_ERRNO(res->long_name, EPERM, "name over the sandbox's length cap");
	ASSERT_EQ(res->ok, 5, "five queries within the rate cap");
	ASSERT_EQ(res->denied, 5, "the rest of the second refused");
	ASSERT_EQ(res->other, 0, "no other errors");
	if (evfd >= 0) {
		ev = kst_events_find(evfd, match_reason, "dns_too_long", 3000);
		if (ASSERT_OK_PTR(ev, "dns_too_long event"))
			ASSERT_STREQ(kst_json_str(ev, "qname"), "a-rather-long-label.example.org",
				     "with the name");
		json_decref(ev);
		ev = kst_events_find(evfd, match_reason, "dns_rate", 3000);
		ASSERT_OK_PTR(ev, "dns_rate event");
	}
	/* The drops per cap, counted for the sandbox in the metrics. */
	if (ASSERT_OK(kst_metrics_fetch(&text, err, sizeof(err)), err)) {
		char series[256];

		snprintf(series, sizeof(series),
			 "kars_verdicts_total{sandbox=\"%s\",verdict=\"deny\",reason=\"dns_rate\"}",
			 env->sandbox);
		ASSERT_EQ(kst_metric(text, series, -1), 5, "metrics: dns_rate drops");
		snprintf(series, sizeof(series),
			 "kars_verdicts_total{sandbox=\"%s\",verdict=\"deny\",reason=\"dns_too_"
			 "long\"}",
			 env->sandbox);
		ASSERT_EQ(kst_metric(text, series, -1), 1, "metrics: dns_too_long drops");
	}
	/* Without caps again: the same burst passes. */
	json_object_del(pol, "dns");
	if (ASSERT_OK(kst_apply(env, pol, NULL), "apply without caps")) {
		ASSERT_OK(kst_run(env, KST_AGENT, KST_AGENT_UID, agent_caps, NULL), "agent");
		ASSERT_EQ(res->long_name, 0, "long name passes");
		ASSERT_EQ(res->ok, 10, "all ten queries pass");
	}
cleanup:
	free(text);
	json_decref(ev);
	if (evfd >= 0)
		close(evfd);
	json_decref(pol);
}
