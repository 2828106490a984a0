/* test_dns_fqdn.c - the router's FQDN allowlist end to end: karsd applies
 * "fqdns", the router resolves through a real resolver (Debian's dnsmasq in
 * the test netns, asked by glibc's res_nquery), and its connect()s meet the
 * learned entries; forged answers from a fake resolver teach nothing.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cgroup_helpers.h"
#include "dns_answerpkt.h"
#include "harness.h"
#include "karsd_proc.h"
#include "metrics.h"
#include "net_helpers.h"

#define APP_PORT 9443
#define TTL	 3 /* dnsmasq's TTL for the test names */
#define GRACE	 2

static json_t *fqdn_policy_of(json_t *pol)
{
	kst_rule_exact(pol, KST_RESOLVER4, KST_RESOLVER_PORT, "udp"); /* the router's DNS */
	json_object_set_new(pol, "fqdns",
			    json_pack("[{s:s,s:i,s:s},{s:s,s:s}]", "name", "api.allowed.test",
				      "port", APP_PORT, "protocol", "tcp", "name", "*.allowed.test",
				      "ports", "9443-9444"));
	json_object_set_new(
	    pol, "fqdnTtl",
	    json_pack("{s:i,s:i,s:i}", "minSeconds", 1, "maxSeconds", 60, "graceSeconds", GRACE));
	return pol;
}

static json_t *fqdn_policy(struct kst_env *env)
{
	return fqdn_policy_of(kst_policy(env));
}

static int run_dnsmasq(struct kst_env *env, void *arg)
{
	char listen[64];

	snprintf(listen, sizeof(listen), "--port=%d", KST_RESOLVER_PORT);
	execlp("dnsmasq", "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
	       "--listen-address=" KST_RESOLVER4, listen, "--bind-interfaces", "--no-resolv",
	       "--no-hosts", "--user=root", "--pid-file=", "--log-facility=-",
	       "--host-record=api.allowed.test,198.51.100.7,2001:db8::2,3",
	       "--host-record=edge.cdn.test,192.0.2.2,3",
	       "--cname=www.allowed.test,edge.cdn.test,3",
	       "--host-record=other.test,198.51.100.200,3", (char *)NULL);
	_exit(127);
}

/* res_nquery through the sandbox resolver (over TCP when tcp); the first
 * address answered (AAAA when v6) into out, "" when none. 0 or -1. */
static int lookup_via(const char *name, bool v6, bool tcp, char *out, size_t len)
{
	struct __res_state st;
	uint8_t ans[1500];
	ns_msg msg;
	int n;

	memset(&st, 0, sizeof(st));
	out[0] = '\0';
	if (res_ninit(&st))
		return -1;
	st.nscount = 1;
	st.nsaddr_list[0].sin_family = AF_INET;
	st.nsaddr_list[0].sin_port = htons(KST_RESOLVER_PORT);
	inet_pton(AF_INET, KST_RESOLVER4, &st.nsaddr_list[0].sin_addr);
	st.retrans = 1;
	st.retry = 2;
	if (tcp)
		st.options |= RES_USEVC;
	n = res_nquery(&st, name, ns_c_in, v6 ? ns_t_aaaa : ns_t_a, ans, sizeof(ans));
	res_nclose(&st);
	if (n < 0 || ns_initparse(ans, n, &msg))
		return -1;
	for (int i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
		ns_rr rr;

		if (ns_parserr(&msg, ns_s_an, i, &rr))
			return -1;
		if (ns_rr_type(rr) == (v6 ? ns_t_aaaa : ns_t_a)) {
			inet_ntop(v6 ? AF_INET6 : AF_INET, ns_rr_rdata(rr), out, (socklen_t)len);
			return 0;
		}
	}
	return 0;
}

static int lookup(const char *name, bool v6, char *out, size_t len)
{
	return lookup_via(name, v6, false, out, len);
}

struct fqdn_run {
	int before, allowed, other_port, other_ip, v6, unlisted, cname;
	char a[64], aaaa[64], cname_a[64], other[64];
	uint64_t learned_ms;
};

static int router_resolves(struct kst_env *env, void *arg)
{
	struct fqdn_run *r = env->scratch;

	memset(r, 0, sizeof(*r));
	r->before = kst_try_tcp("198.51.100.7", APP_PORT);
	ASSERT_OK(lookup("api.allowed.test", false, r->a, sizeof(r->a)), "lookup A");
	r->learned_ms = kst_now_ms();
	r->allowed = kst_try_tcp("198.51.100.7", APP_PORT);
	r->other_port = kst_try_tcp("198.51.100.7", APP_PORT + 2);
	r->other_ip = kst_try_tcp("198.51.100.200", APP_PORT);
	ASSERT_OK(lookup("api.allowed.test", true, r->aaaa, sizeof(r->aaaa)), "lookup AAAA");
	r->v6 = kst_try_tcp("2001:db8::2", APP_PORT);
	ASSERT_OK(lookup("other.test", false, r->other, sizeof(r->other)), "lookup other.test");
	r->unlisted = kst_try_tcp("198.51.100.200", APP_PORT);
	ASSERT_OK(lookup("www.allowed.test", false, r->cname_a, sizeof(r->cname_a)),
		  "lookup CNAME");
	r->cname = kst_try_tcp("192.0.2.2", 9444);
	return 0;
}

static int router_connects(struct kst_env *env, void *arg)
{
	int *res = env->scratch;

	*res = kst_try_tcp(arg, APP_PORT);
	return 0;
}

static bool match_reason_qname(const json_t *ev, const void *arg)
{
	const char *const *want = arg;

	return strcmp(kst_json_str(ev, "reason"), want[0]) == 0 &&
	       strcmp(kst_json_str(ev, "qname"), want[1]) == 0;
}

static json_t *fqdn_entries(struct kst_env *env)
{
	json_t *resp = NULL, *arr;
	char err[256];

	if (kst_call(json_pack("{s:s,s:s}", "op", "fqdn_entries", "sandbox", env->sandbox), &resp,
		     err, sizeof(err))) {
		json_decref(resp);
		return NULL;
	}
	arr = json_incref(json_object_get(resp, "entries"));
	json_decref(resp);
	return arr;
}

static const json_t *entry_for(const json_t *arr, const char *ip)
{
	const json_t *e;
	size_t i;

	json_array_foreach(arr, i, e)
	{
		if (strcmp(kst_json_str(e, "ip"), ip) == 0)
			return e;
	}
	return NULL;
}

/* status.fqdn: {"entries": N, "counters": {...}} (new reference) or NULL. */
static json_t *fqdn_status(void)
{
	json_t *req = json_pack("{s:s}", "op", "status"), *resp = NULL, *out = NULL;
	char err[256];

	if (kst_call(req, &resp, err, sizeof(err)) == 0)
		out = json_incref(json_object_get(resp, "fqdn"));
	json_decref(req);
	json_decref(resp);
	return out;
}

/* The metrics carry the same entry count and answer counters as status. */
static void metrics_match_status(void)
{
	static const char *const pairs[][2] = {
	    {"kars_fqdn_answers_total{result=\"learned\"}", "learned"},
	    {"kars_fqdn_answers_total{result=\"no_query\"}", "noQuery"},
	    {"kars_fqdn_answers_total{result=\"mismatch\"}", "mismatch"},
	    {"kars_fqdn_answers_total{result=\"refused\"}", "refused"},
	    {"kars_fqdn_answers_total{result=\"unreadable\"}", "unreadable"},
	    {"kars_fqdn_queries_recorded_total", "queriesRecorded"},
	    {"kars_fqdn_records_refused_total{why=\"full\"}", "entriesFull"},
	};
	json_t *st = fqdn_status(), *counters;
	char err[256], *text = NULL;

	if (!ASSERT_OK_PTR(st, "status.fqdn") ||
	    !ASSERT_OK(kst_metrics_fetch(&text, err, sizeof(err)), err))
		goto cleanup;
	counters = json_object_get(st, "counters");
	ASSERT_EQ(kst_metric(text, "kars_fqdn_entries", -1), kst_json_int(st, "entries", -2),
		  "metrics: kars_fqdn_entries as status");
	ASSERT_EQ(kst_metric(text, "kars_fqdn_entries_capacity", -1), 65536,
		  "metrics: kars_fqdn_entries_capacity");
	ASSERT_GE(kst_metric(text, "kars_fqdn_entries_stored", -1),
		  kst_metric(text, "kars_fqdn_entries", 0), "metrics: stored >= live");
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
		ASSERT_EQ(kst_metric(text, pairs[i][0], -1),
			  kst_json_int(counters, pairs[i][1], -2), pairs[i][0]);
cleanup:
	json_decref(st);
	free(text);
}

static bool peers(struct kst_env *env, struct kst_peer *p)
{
	return ASSERT_OK(kst_listen(env, SOCK_STREAM, "198.51.100.7", APP_PORT, "api", &p[0]),
			 "peer api") &&
	       ASSERT_OK(kst_listen(env, SOCK_STREAM, "198.51.100.7", APP_PORT + 2, "x", &p[1]),
			 "peer api, other port") &&
	       ASSERT_OK(kst_listen(env, SOCK_STREAM, "198.51.100.200", APP_PORT, "other", &p[2]),
			 "peer other") &&
	       ASSERT_OK(kst_listen(env, SOCK_STREAM, "2001:db8::2", APP_PORT, "v6", &p[3]),
			 "peer v6") &&
	       ASSERT_OK(kst_listen(env, SOCK_STREAM, "192.0.2.2", 9444, "edge", &p[4]),
			 "peer edge");
}

KST_TEST(router_fqdn_allowlist)
{
	static const char *const want_allow[] = {"rule_fqdn", "api.allowed.test"};
	static const char *const want_learn[] = {"fqdn_learned", "api.allowed.test"};
	static const char *const want_expired[] = {"fqdn_expired", "api.allowed.test"};
	struct fqdn_run *r = env->scratch;
	struct kst_peer p[5];
	json_t *pol = NULL, *arr = NULL, *ev = NULL, *sb = NULL;
	const json_t *e;
	int evfd = -1, *res = env->scratch, i;
	uint64_t learned;
	pid_t dnsmasq;
	char got[64];

	if (system("command -v dnsmasq >/dev/null 2>&1") != 0) {
		kst_skip("dnsmasq is not installed (Debian package dnsmasq-base)");
		return;
	}
	pol = fqdn_policy(env);
	if (!ASSERT_OK(kst_apply(env, pol, NULL), "apply with fqdns") || !peers(env, p))
		goto cleanup;
	dnsmasq = kst_spawn(env, KST_HOST, KST_ROOT, "dnsmasq", run_dnsmasq, NULL);
	if (!ASSERT_GT(dnsmasq, 0, "start dnsmasq"))
		goto cleanup;
	for (i = 0; i < 50 && lookup("other.test", false, got, sizeof(got)); i++)
		kst_msleep(100); /* until dnsmasq answers (from the host: learns nothing) */
	evfd = kst_events_open();
	ASSERT_OK_FD(evfd, "subscribe");
	ASSERT_OK(kst_run(env, KST_ROUTER, KST_ROUTER_UID, router_resolves, NULL), "router");
	learned = r->learned_ms;
	ASSERT_ERRNO(r->before, EPERM, "before resolving: denied");
	ASSERT_STREQ(r->a, "198.51.100.7", "dnsmasq answered the A record");
	ASSERT_ERRNO(r->allowed, 0, "resolved name: the answered address is allowed");
	ASSERT_ERRNO(r->other_port, EPERM, "on the listed port only");
	ASSERT_ERRNO(r->other_ip, EPERM, "and no other address");
	ASSERT_STREQ(r->aaaa, "2001:db8::2", "dnsmasq answered the AAAA record");
	ASSERT_ERRNO(r->v6, 0, "the AAAA address is allowed");
	ASSERT_STREQ(r->other, "198.51.100.200", "an unlisted name resolves");
	ASSERT_ERRNO(r->unlisted, EPERM, "but its address stays denied");
	ASSERT_STREQ(r->cname_a, "192.0.2.2", "the CNAME chain resolves");
	ASSERT_ERRNO(r->cname, 0, "*.allowed.test through a CNAME: allowed on its range");

	/* What karsd shows: the entries, named, with their expiry. */
	arr = fqdn_entries(env);
	if (ASSERT_OK_PTR(arr, "fqdn_entries")) {
		e = entry_for(arr, "198.51.100.7");
		if (ASSERT_OK_PTR(e, "entry for 198.51.100.7")) {
			ASSERT_STREQ(kst_json_str(e, "name"), "api.allowed.test", "its name");
			ASSERT_TRUE(kst_json_int(e, "expiresInMs", 0) <= (TTL + GRACE) * 1000 &&
					kst_json_int(e, "expiresInMs", 0) > 0,
				    "expires within TTL + grace");
		}
		ASSERT_OK_PTR(entry_for(arr, "2001:db8::2"), "entry for the AAAA");
		e = entry_for(arr, "192.0.2.2");
		if (ASSERT_OK_PTR(e, "entry at the end of the CNAME chain"))
			ASSERT_STREQ(kst_json_str(e, "name"), "www.allowed.test",
				     "named by the question");
		ASSERT_FALSE(entry_for(arr, "198.51.100.200"), "no entry for the unlisted name");
	}
	sb = kst_list_find(env->sandbox);
	if (ASSERT_OK_PTR(sb, "list")) {
		ASSERT_EQ(kst_json_int(sb, "fqdnRules", -1), 2, "list: fqdn rules");
		ASSERT_EQ(kst_json_int(sb, "fqdnEntries", -1), 3, "list: learned entries");
	}
	metrics_match_status();
	if (evfd >= 0) {
		ev = kst_events_find(evfd, match_reason_qname, want_learn, 3000);
		if (ASSERT_OK_PTR(ev, "fqdn_learned event with the name"))
			ASSERT_STREQ(kst_json_str(ev, "hook"), "dns_ingress", "learned on ingress");
		json_decref(ev);
		ev = kst_events_find(evfd, match_reason_qname, want_allow, 3000);
		if (ASSERT_OK_PTR(ev, "connect allowed by the entry, with the name")) {
			ASSERT_STREQ(kst_json_str(ev, "verdict"), "allow", "verdict");
			ASSERT_STREQ(kst_json_str(ev, "dst"), "198.51.100.7", "destination");
		}
		json_decref(ev);
		ev = NULL;
	}

	/* TTL + grace later the address is denied again, and the entry leaves. */
	while (kst_now_ms() < learned + (TTL + GRACE) * 1000 + 300)
		kst_msleep(100);
	ASSERT_OK(kst_run(env, KST_ROUTER, KST_ROUTER_UID, router_connects, "198.51.100.7"),
		  "router");
	ASSERT_ERRNO(*res, EPERM, "after TTL + grace: denied");
	if (evfd >= 0) {
		ev = kst_events_find(evfd, match_reason_qname, want_expired, 3000);
		ASSERT_OK_PTR(ev, "fqdn_expired event with the name");
	}
	for (i = 0; i < 30; i++) {
		json_decref(arr);
		arr = fqdn_entries(env);
		if (arr && !entry_for(arr, "198.51.100.7"))
			break;
		kst_msleep(100);
	}
	ASSERT_FALSE(arr && entry_for(arr, "198.51.100.7"), "expired entry removed");
cleanup:
	json_decref(ev);
	json_decref(sb);
	json_decref(arr);
	json_decref(pol);
	if (evfd >= 0)
		close(evfd);
}

/* --- forged answers ------------------------------------------------------------ */

#define QID 0x4242

struct forge {
	volatile int ready, done;
	char router_ip[64];
	uint16_t router_port;
	int got, real;
	int to_forged, to_real;
};

/* The answer to QID for name, one A record ip, as the resolver would. */
static void answer_msg(struct kst_msg *m, uint16_t id, const char *name, const char *ip)
{
	kst_msg_header(m, id, KST_DNS_QR_AA, 1, 1);
	kst_msg_question(m, name, 1);
	kst_msg_u16(m, 0xc00c);
	kst_msg_rr_addr(m, 30, ip);
}

static int send_from(const char *src, uint16_t sport, const char *dst, uint16_t dport,
		     const struct kst_msg *m)
{
	struct sockaddr_storage a, b;
	socklen_t al, bl;
	int fd = -1, one = 1, ret = -1;

	if (kst_sockaddr(src, sport, &a, &al) || kst_sockaddr(dst, dport, &b, &bl))
		return -1;
	fd = socket(a.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, al) == 0 &&
	    sendto(fd, m->b, m->n, 0, (struct sockaddr *)&b, bl) == (ssize_t)m->n)
		ret = 0;
	if (fd >= 0)
		close(fd);
	return ret;
}

/* A fake resolver on the resolver's address: takes the router's query, then
 * sends forgeries (198.51.100.200) and last the real answer (198.51.100.7). */
static int fake_resolver(struct kst_env *env, void *arg)
{
	struct forge *f = env->scratch;
	struct sockaddr_storage from;
	struct kst_msg m;
	char buf[512];
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), n;
	struct sockaddr_storage me;
	socklen_t ml;

	kst_sockaddr(KST_RESOLVER4, KST_RESOLVER_PORT, &me, &ml);
	if (!ASSERT_OK_FD(fd, "socket") || !ASSERT_OK(bind(fd, (struct sockaddr *)&me, ml), "bind"))
		return 1;
	f->ready = 1;
	n = kst_recvfrom(fd, buf, sizeof(buf), &from, KST_IO_TIMEOUT_MS);
	if (!ASSERT_GT(n, 12, "the router's query"))
		return 1;
	inet_ntop(AF_INET, &((struct sockaddr_in *)&from)->sin_addr, f->router_ip,
		  sizeof(f->router_ip));
	f->router_port = kst_addr_port(&from);
	answer_msg(&m, QID, "api.allowed.test", "198.51.100.200");
	ASSERT_OK(send_from("192.0.2.1", KST_RESOLVER_PORT, f->router_ip, f->router_port, &m),
		  "forgery from another address");
	ASSERT_OK(send_from(KST_RESOLVER4, KST_RESOLVER_PORT + 1, f->router_ip, f->router_port, &m),
		  "forgery from another port");
	{
		struct sockaddr_in other = *(struct sockaddr_in *)&from;

		other.sin_port = htons((uint16_t)(f->router_port + 1));
		ASSERT_TRUE(sendto(fd, m.b, m.n, 0, (struct sockaddr *)&other, sizeof(other)) ==
				(ssize_t)m.n,
			    "forgery to another router port (unsolicited)");
	}
	answer_msg(&m, QID + 1, "api.allowed.test", "198.51.100.200");
	ASSERT_TRUE(sendto(fd, m.b, m.n, 0, (struct sockaddr *)&from, sizeof(struct sockaddr_in)) ==
			(ssize_t)m.n,
		    "forgery with another id");
	answer_msg(&m, QID, "other.test", "198.51.100.200");
	ASSERT_TRUE(sendto(fd, m.b, m.n, 0, (struct sockaddr *)&from, sizeof(struct sockaddr_in)) ==
			(ssize_t)m.n,
		    "forgery with another question");
	answer_msg(&m, QID, "api.allowed.test", "198.51.100.7");
	ASSERT_TRUE(sendto(fd, m.b, m.n, 0, (struct sockaddr *)&from, sizeof(struct sockaddr_in)) ==
			(ssize_t)m.n,
		    "the real answer");
	close(fd);
	f->done = 1;
	return 0;
}

static int router_asks(struct kst_env *env, void *arg)
{
	struct forge *f = env->scratch;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), n;
	struct kst_msg m;
	char buf[512];

	if (!ASSERT_OK_FD(fd, "socket"))
		return 1;
	kst_msg_header(&m, QID, 0x0100, 1, 0);
	kst_msg_question(&m, "api.allowed.test", 1);
	{
		struct sockaddr_storage to;
		socklen_t tl;

		kst_sockaddr(KST_RESOLVER4, KST_RESOLVER_PORT, &to, &tl);
		ASSERT_TRUE(sendto(fd, m.b, m.n, 0, (struct sockaddr *)&to, tl) == (ssize_t)m.n,
			    "query sent");
	}
	/* Every datagram that reaches this socket; the real answer is last. */
	while ((n = kst_recv(fd, buf, sizeof(buf), KST_IO_TIMEOUT_MS)) > 0) {
		f->got++;
		if (n > 4 && memcmp(buf + n - 4, "\xc6\x33\x64\x07", 4) == 0) {
			f->real = 1;
			break;
		}
	}
	close(fd);
	f->to_forged = kst_try_tcp("198.51.100.200", APP_PORT);
	f->to_real = kst_try_tcp("198.51.100.7", APP_PORT);
	return 0;
}

KST_TEST(router_fqdn_forged_answers)
{
	struct forge *f = env->scratch;
	struct kst_peer p[5];
	json_t *pol = fqdn_policy(env), *arr = NULL;
	char err[256], *before = NULL, *after = NULL;
	pid_t fake;
	int i;

	memset(f, 0, sizeof(*f));
	if (!ASSERT_OK(kst_apply(env, pol, NULL), "apply with fqdns") || !peers(env, p) ||
	    !ASSERT_OK(kst_metrics_fetch(&before, err, sizeof(err)), err))
		goto cleanup;
	fake = kst_spawn(env, KST_HOST, KST_ROOT, "fake-resolver", fake_resolver, NULL);
	if (!ASSERT_GT(fake, 0, "fake resolver"))
		goto cleanup;
	for (i = 0; i < 100 && !f->ready; i++)
		kst_msleep(20);
	ASSERT_OK(kst_run(env, KST_ROUTER, KST_ROUTER_UID, router_asks, NULL), "router");
	ASSERT_OK(kst_wait(env, fake, 5000), "fake resolver done");
	ASSERT_TRUE(f->real, "the real answer reached the router");
	ASSERT_GE(f->got, 3, "forgeries from the resolver's address reached the router too");
	ASSERT_ERRNO(f->to_forged, EPERM, "no forged address is allowed");
	ASSERT_ERRNO(f->to_real, 0, "the real answer's address is");
	arr = fqdn_entries(env);
	if (ASSERT_OK_PTR(arr, "fqdn_entries")) {
		ASSERT_EQ(json_array_size(arr), 1, "one entry");
		ASSERT_FALSE(entry_for(arr, "198.51.100.200"), "none for the forged address");
	}
	/* The metrics tell the forgeries from the real answer: the other id had
	 * no query, the other question mismatched (the other address and port
	 * are not the resolver: not read at all; the unsolicited one reaches no
	 * socket of the router, so no cgroup program sees it). */
	if (ASSERT_OK(kst_metrics_fetch(&after, err, sizeof(err)), err)) {
		static const char *const learned = "kars_fqdn_answers_total{result=\"learned\"}";
		static const char *const no_query = "kars_fqdn_answers_total{result=\"no_query\"}";
		static const char *const mismatch = "kars_fqdn_answers_total{result=\"mismatch\"}";

		ASSERT_EQ(kst_metric(after, learned, 0) - kst_metric(before, learned, 0), 1,
			  "metrics: one answer learned");
		ASSERT_EQ(kst_metric(after, no_query, 0) - kst_metric(before, no_query, 0), 1,
			  "metrics: one answer without a query");
		ASSERT_EQ(kst_metric(after, mismatch, 0) - kst_metric(before, mismatch, 0), 1,
			  "metrics: one answer to another question");
		ASSERT_EQ(kst_metric(after, "kars_fqdn_queries_recorded_total", 0) -
			      kst_metric(before, "kars_fqdn_queries_recorded_total", 0),
			  1, "metrics: one query recorded");
	}
	metrics_match_status();
cleanup:
	free(before);
	free(after);
	json_decref(arr);
	json_decref(pol);
}

/* --- the per-sandbox entry quota ------------------------------------------------ */

struct quota_run {
	int v4, v6;
	char a[64], aaaa[64];
};

/* A (unless arg), then AAAA of the same name: two addresses, two entries. */
static int router_two_addresses(struct kst_env *env, void *arg)
{
	struct quota_run *r = env->scratch;

	memset(r, 0, sizeof(*r));
	if (!arg)
		ASSERT_OK(lookup("api.allowed.test", false, r->a, sizeof(r->a)), "lookup A");
	ASSERT_OK(lookup("api.allowed.test", true, r->aaaa, sizeof(r->aaaa)), "lookup AAAA");
	r->v4 = kst_try_tcp("198.51.100.7", APP_PORT);
	r->v6 = kst_try_tcp("2001:db8::2", APP_PORT);
	return 0;
}

/* A sandbox at its quota (fqdnMaxEntries 1) learns nothing more, with an
 * event and a counter; another sandbox on the node still learns. */
KST_TEST(router_fqdn_entry_quota)
{
	static const char *const want_quota[] = {"fqdn_quota", "api.allowed.test"};
	struct quota_run *r = env->scratch;
	char b_agent[PATH_MAX], b_router[PATH_MAX], err[256], got[64], *before = NULL,
								       *after = NULL;
	json_t *pol = NULL, *pb = NULL, *ev = NULL, *resp = NULL;
	struct kst_peer p[5];
	uint64_t learned;
	int evfd = -1, i;
	pid_t pid;

	if (system("command -v dnsmasq >/dev/null 2>&1") != 0) {
		kst_skip("dnsmasq is not installed (Debian package dnsmasq-base)");
		return;
	}
	/* Out of range: refused, naming the field. */
	pol = fqdn_policy(env);
	json_object_set_new(pol, "fqdnMaxEntries", json_integer(0));
	ASSERT_TRUE(kst_call(pol, &resp, err, sizeof(err)) != 0, "fqdnMaxEntries 0 refused");
	ASSERT_STRSTR(err, "fqdnMaxEntries", "error names the field");
	ASSERT_STRSTR(err, "65536", "and the range");
	json_decref(resp);
	json_object_set_new(pol, "fqdnMaxEntries", json_integer(65537));
	ASSERT_TRUE(kst_call(pol, NULL, err, sizeof(err)) != 0, "fqdnMaxEntries 65537 refused");
	ASSERT_STRSTR(err, "fqdnMaxEntries", "error names the field");
	ASSERT_STRSTR(err, "65536", "and the range");

	json_object_set_new(pol, "fqdnMaxEntries", json_integer(1));
	if (!ASSERT_OK(kst_cgroup_create(env, "b-agent", b_agent, sizeof(b_agent)), "cgroup") ||
	    !ASSERT_OK(kst_cgroup_create(env, "b-router", b_router, sizeof(b_router)), "cgroup"))
		goto cleanup;
	pb = fqdn_policy_of(kst_policy_named(env, "b", "b-agent", "b-router", 23443, 23444));
	if (!ASSERT_OK(kst_apply(env, pol, NULL), "apply A, quota 1") ||
	    !ASSERT_OK(kst_apply(env, pb, NULL), "apply B, default quota") || !peers(env, p) ||
	    !ASSERT_OK(kst_metrics_fetch(&before, err, sizeof(err)), err))
		goto cleanup;
	pid = kst_spawn(env, KST_HOST, KST_ROOT, "dnsmasq", run_dnsmasq, NULL);
	if (!ASSERT_GT(pid, 0, "start dnsmasq"))
		goto cleanup;
	for (i = 0; i < 50 && lookup("other.test", false, got, sizeof(got)); i++)
		kst_msleep(100);
	evfd = kst_events_open();
	ASSERT_OK_FD(evfd, "subscribe");

	ASSERT_OK(kst_run(env, KST_ROUTER, KST_ROUTER_UID, router_two_addresses, NULL), "router A");
	ASSERT_STREQ(r->aaaa, "2001:db8::2", "A: the AAAA answer reached the router");
	ASSERT_ERRNO(r->v4, 0, "A: the first address is learned");
	ASSERT_ERRNO(r->v6, EPERM, "A: the second is over the quota");
	if (evfd >= 0) {
		ev = kst_events_find(evfd, match_reason_qname, want_quota, 3000);
		if (ASSERT_OK_PTR(ev, "fqdn_quota event with the name")) {
			ASSERT_STREQ(kst_json_str(ev, "verdict"), "deny", "verdict");
			ASSERT_STREQ(kst_json_str(ev, "dst"), "2001:db8::2", "the refused address");
			ASSERT_STREQ(kst_json_str(ev, "sandbox"), env->sandbox, "sandbox A");
		}
	}
	pid =
	    kst_spawn_cg(env, b_router, KST_ROUTER_UID, "kst-router-b", router_two_addresses, NULL);
	if (ASSERT_GT(pid, 0, "spawn router B"))
		ASSERT_OK(kst_wait(env, pid, 20000), "router B");
	ASSERT_ERRNO(r->v4, 0, "B: the first address is learned");
	ASSERT_ERRNO(r->v6, 0, "B: and the second: A's quota is A's");

	if (ASSERT_OK(kst_metrics_fetch(&after, err, sizeof(err)), err)) {
		static const char *const quota = "kars_fqdn_records_refused_total{why=\"quota\"}";
		char series[256];

		ASSERT_EQ(kst_metric(after, quota, 0) - kst_metric(before, quota, 0), 1,
			  "metrics: one record refused by the quota");
		snprintf(series, sizeof(series),
			 "kars_verdicts_total{sandbox=\"%s\",verdict=\"deny\",reason=\"fqdn_"
			 "quota\"}",
			 env->sandbox);
		ASSERT_EQ(kst_metric(after, series, 0), 1, "metrics: counted for sandbox A");
	}
	metrics_match_status();

	/* The same policy again keeps A's entries and their count. */
	if (ASSERT_OK(kst_apply(env, pol, NULL), "apply A again")) {
		ASSERT_OK(kst_run(env, KST_ROUTER, KST_ROUTER_UID, router_two_addresses, NULL),
			  "router A");
		ASSERT_ERRNO(r->v4, 0, "A: its address is refreshed");
		ASSERT_ERRNO(r->v6, EPERM, "A: still at its quota");
	}
	/* Once A's entry expired and karsd deleted it (TTL + grace, then 10 s),
	 * the sweep's recount frees the quota: the AAAA is learned. */
	learned = kst_now_ms();
	while (kst_now_ms() < learned + (TTL + GRACE + 10) * 1000)
		kst_msleep(200);
	for (i = 0; i < 20; i++) {
		ASSERT_OK(kst_run(env, KST_ROUTER, KST_ROUTER_UID, router_two_addresses, "v6"),
			  "router A");
		if (r->v6 == 0)
			break;
		kst_msleep(500);
	}
	ASSERT_ERRNO(r->v6, 0, "A: after its entry left, a new address is learned");

cleanup:
	free(before);
	free(after);
	json_decref(ev);
	json_decref(pb);
	json_decref(pol);
	if (evfd >= 0)
		close(evfd);
}

/* --- DNS over TCP ---------------------------------------------------------------- */

struct tcp_run {
	int tcp_ret, after_tcp, udp_ret, after_udp;
	char a[64];
};

static int router_resolves_tcp(struct kst_env *env, void *arg)
{
	struct tcp_run *r = env->scratch;
	char other[64];

	memset(r, 0, sizeof(*r));
	/* Until dnsmasq answers (an unlisted name over UDP: learns nothing). */
	for (int i = 0; i < 50 && lookup("other.test", false, other, sizeof(other)); i++)
		kst_msleep(100);
	ASSERT_STREQ(other, "198.51.100.200", "dnsmasq answers");
	r->tcp_ret = lookup_via("api.allowed.test", false, true, r->a, sizeof(r->a));
	r->after_tcp = kst_try_tcp("198.51.100.7", APP_PORT);
	if (arg) {
		r->udp_ret = lookup("api.allowed.test", false, r->a, sizeof(r->a));
		r->after_udp = kst_try_tcp("198.51.100.7", APP_PORT);
	}
	return 0;
}

/* Answers over TCP are not read: the router reaches TCP 53 of its resolver
 * only through an explicit tcp rule, and a name it resolves over TCP gets
 * no entry (its address stays denied: fail closed); over UDP it does. */
KST_TEST(router_fqdn_tcp_unlearned)
{
	struct tcp_run *r = env->scratch;
	json_t *pol = NULL, *st0 = NULL, *st1 = NULL;
	struct kst_peer p[5];
	pid_t pid;

	if (system("command -v dnsmasq >/dev/null 2>&1") != 0) {
		kst_skip("dnsmasq is not installed (Debian package dnsmasq-base)");
		return;
	}
	pol = fqdn_policy(env);
	if (!ASSERT_OK(kst_apply(env, pol, NULL), "apply, udp rule to the resolver") ||
	    !peers(env, p))
		goto cleanup;
	pid = kst_spawn(env, KST_HOST, KST_ROOT, "dnsmasq", run_dnsmasq, NULL);
	if (!ASSERT_GT(pid, 0, "start dnsmasq"))
		goto cleanup;

	ASSERT_OK(kst_run(env, KST_ROUTER, KST_ROUTER_UID, router_resolves_tcp, NULL), "router");
	ASSERT_EQ(r->tcp_ret, -1, "no tcp rule: TCP to the resolver is denied");
	ASSERT_ERRNO(r->after_tcp, EPERM, "and nothing was learned");

	kst_rule_exact(pol, KST_RESOLVER4, KST_RESOLVER_PORT, "tcp");
	st0 = fqdn_status();
	if (!ASSERT_OK(kst_apply(env, pol, NULL), "apply, udp and tcp rules to the resolver"))
		goto cleanup;
	ASSERT_OK(kst_run(env, KST_ROUTER, KST_ROUTER_UID, router_resolves_tcp, "udp too"),
		  "router");
	ASSERT_EQ(r->tcp_ret, 0, "with a tcp rule: the name resolves over TCP");
	ASSERT_ERRNO(r->after_tcp, EPERM, "but the TCP answer teaches nothing");
	ASSERT_EQ(r->udp_ret, 0, "over UDP");
	ASSERT_ERRNO(r->after_udp, 0, "the UDP answer is learned");
	st1 = fqdn_status();
	if (ASSERT_OK_PTR(st0, "status") && ASSERT_OK_PTR(st1, "status"))
		ASSERT_EQ(kst_json_int(json_object_get(st1, "counters"), "queriesRecorded", 0) -
			      kst_json_int(json_object_get(st0, "counters"), "queriesRecorded", 0),
			  1, "only the UDP query was recorded");
cleanup:
	json_decref(st0);
	json_decref(st1);
	json_decref(pol);
}

/* Refused policies name the field. */
KST_TEST(router_fqdn_policy_errors)
{
	static const struct {
		const char *json, *want;
	} cases[] = {
	    {"[{\"name\":\"a..b\",\"port\":443}]", "fqdns[0].name"},
	    {"[{\"name\":\"ok.test\",\"port\":443},{\"name\":\"x.*.test\",\"port\":1}]",
	     "fqdns[1].name"},
	    {"[{\"name\":\"ok.test\"}]", "fqdns[0]: exactly one of port, ports"},
	    {"[{\"name\":\"ok.test\",\"ports\":\"9-1\"}]", "fqdns[0].ports"},
	    {"[{\"name\":\"ok.test\",\"port\":1,\"protocol\":\"icmp\"}]", "fqdns[0].protocol"},
	    {"[{\"name\":\"ok.test\",\"port\":1,\"bogus\":1}]", "fqdns[0]"},
	    {"{}", "fqdns"},
	};
	char err[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *pol = kst_policy(env), *resp = NULL;

		json_object_set_new(pol, "fqdns", json_loads(cases[i].json, 0, NULL));
		err[0] = '\0';
		ASSERT_TRUE(kst_call(pol, &resp, err, sizeof(err)) != 0, cases[i].json);
		ASSERT_STRSTR(err, cases[i].want, "error names the field");
		json_decref(resp);
		json_decref(pol);
	}
	{
		json_t *pol = fqdn_policy(env), *resp = NULL;

		json_object_set_new(pol, "fqdnTtl",
				    json_pack("{s:i,s:i}", "minSeconds", 10, "maxSeconds", 5));
		ASSERT_TRUE(kst_call(pol, &resp, err, sizeof(err)) != 0, "min above max");
		ASSERT_STRSTR(err, "fqdnTtl.maxSeconds", "error names the field");
		json_decref(resp);
		json_object_del(pol, "fqdnTtl");
		json_object_del(pol, "resolver");
		ASSERT_TRUE(kst_call(pol, &resp, err, sizeof(err)) != 0, "no resolver");
		ASSERT_STRSTR(err, "fqdns: need resolver", "fqdns need the resolver");
		json_decref(resp);
		json_decref(pol);
	}
}

/* --- policy changes ------------------------------------------------------------- */

static int router_learns(struct kst_env *env, void *arg)
{
	int *res = env->scratch;
	char a[64];

	ASSERT_OK(lookup("api.allowed.test", false, a, sizeof(a)), "lookup");
	*res = kst_try_tcp("198.51.100.7", APP_PORT);
	return 0;
}

/* The same list applied again keeps what was learned; another list starts
 * afresh at once. */
KST_TEST(router_fqdn_policy_change)
{
	struct kst_peer p[5];
	json_t *pol = fqdn_policy(env), *arr = NULL;
	int *res = env->scratch, i;
	pid_t dnsmasq;
	char got[64];

	if (system("command -v dnsmasq >/dev/null 2>&1") != 0) {
		kst_skip("dnsmasq is not installed (Debian package dnsmasq-base)");
		goto cleanup;
	}
	if (!ASSERT_OK(kst_apply(env, pol, NULL), "apply with fqdns") || !peers(env, p))
		goto cleanup;
	dnsmasq = kst_spawn(env, KST_HOST, KST_ROOT, "dnsmasq", run_dnsmasq, NULL);
	if (!ASSERT_GT(dnsmasq, 0, "start dnsmasq"))
		goto cleanup;
	for (i = 0; i < 50 && lookup("other.test", false, got, sizeof(got)); i++)
		kst_msleep(100);
	ASSERT_OK(kst_run(env, KST_ROUTER, KST_ROUTER_UID, router_learns, NULL), "router");
	ASSERT_ERRNO(*res, 0, "learned and allowed");
	/* Same list, another rule added: the entry stays. */
	kst_rule_exact(pol, KST_REMOTE4, 80, "tcp");
	if (!ASSERT_OK(kst_apply(env, pol, NULL), "apply the same fqdns"))
		goto cleanup;
	ASSERT_OK(kst_run(env, KST_ROUTER, KST_ROUTER_UID, router_connects, "198.51.100.7"),
		  "router");
	ASSERT_ERRNO(*res, 0, "same fqdns: still allowed");
	arr = fqdn_entries(env);
	ASSERT_TRUE(arr && entry_for(arr, "198.51.100.7"), "same fqdns: entry listed");
	json_decref(arr);
	/* Another list: what the old one learned is void at once. */
	json_object_set_new(pol, "fqdns",
			    json_pack("[{s:s,s:i}]", "name", "other.test", "port", APP_PORT));
	if (!ASSERT_OK(kst_apply(env, pol, NULL), "apply other fqdns"))
		goto cleanup;
	ASSERT_OK(kst_run(env, KST_ROUTER, KST_ROUTER_UID, router_connects, "198.51.100.7"),
		  "router");
	ASSERT_ERRNO(*res, EPERM, "changed fqdns: the old entry no longer allows");
	arr = fqdn_entries(env);
	ASSERT_TRUE(arr && json_array_size(arr) == 0, "changed fqdns: nothing listed");
	/* Without fqdns at all: the same. */
	json_object_del(pol, "fqdns");
	ASSERT_OK(kst_apply(env, pol, NULL), "apply without fqdns");
	ASSERT_OK(kst_run(env, KST_ROUTER, KST_ROUTER_UID, router_learns, NULL), "router");
	ASSERT_ERRNO(*res, EPERM, "no fqdns: nothing learned");
cleanup:
	json_decref(arr);
	json_decref(pol);
}
