/* test_learn.c - learn mode and the event stream: what karsd reports.
 *
 * Learn mode lets what strict mode would deny through and records each
 * distinct destination once (with a count), up to learnMax per sandbox, so an
 * operator can turn a workload's real traffic into rules. Switching back to
 * strict is a re-apply and denies again at once. Every non-plain verdict is
 * an event on `subscribe`, with enough to act on: verdict, reason, the
 * destination, the UID and command of the task.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "dns_testpkt.h"
#include "harness.h"
#include "karsd_proc.h"
#include "net_helpers.h"

struct ev_match {
	const char *dst;
	int dport;
	const char *verdict; /* NULL: any */
};

static bool match_dst(const json_t *ev, const void *arg)
{
	const struct ev_match *m = arg;
	const char *dst = kst_json_str(ev, "dst"), *verdict = kst_json_str(ev, "verdict");

	return dst && !strcmp(dst, m->dst) && kst_json_int(ev, "dport", -1) == m->dport &&
	       (!m->verdict || (verdict && !strcmp(verdict, m->verdict)));
}

static int connect_and_read(const char *ip, uint16_t port)
{
	char buf[16];
	int fd = -1, e = kst_tcp_connect(ip, port, &fd);

	if (e)
		return e;
	e = kst_read_reply(fd, buf, sizeof(buf));
	close(fd);
	return e;
}

static int agent_learn_three(struct kst_env *env, void *arg)
{
	ASSERT_ERRNO(connect_and_read(KST_REMOTE4, 9000), 0, "learn: 192.0.2.1:9000 allowed");
	ASSERT_ERRNO(connect_and_read(KST_REMOTE4, 9001), 0, "learn: 192.0.2.1:9001 allowed");
	ASSERT_ERRNO(connect_and_read(KST_REMOTE4_B, 9002), 0,
		     "learn: 192.0.2.2:9002 allowed past learnMax");
	return 0;
}

static int agent_again(struct kst_env *env, void *arg)
{
	ASSERT_ERRNO(connect_and_read(KST_REMOTE4, 9000), 0, "learn: 192.0.2.1:9000 again");
	return 0;
}

static int agent_strict_again(struct kst_env *env, void *arg)
{
	ASSERT_ERRNO(kst_try_tcp(KST_REMOTE4, 9000), EPERM, "strict: 192.0.2.1:9000 denied");
	ASSERT_ERRNO(kst_try_tcp(KST_REMOTE4_B, 9002), EPERM, "strict: 192.0.2.2:9002 denied");
	return 0;
}

static const json_t *find_learned(const json_t *arr, const char *ip, int port, int *n_found)
{
	const json_t *it, *found = NULL;
	size_t i;

	*n_found = 0;
	json_array_foreach(arr, i, it)
	{
		const char *eip = kst_json_str(it, "ip");

		if (eip && !strcmp(eip, ip) && kst_json_int(it, "port", -1) == port) {
			found = it;
			(*n_found)++;
		}
	}
	return found;
}

static void check_entry(const json_t *arr, const char *ip, int port, long long *count)
{
	const json_t *e;
	char tag[96];
	int n;

	snprintf(tag, sizeof(tag), "learned %s:%d exactly once", ip, port);
	e = find_learned(arr, ip, port, &n);
	if (!ASSERT_EQ(n, 1, tag))
		return;
	ASSERT_STREQ(kst_json_str(e, "role"), "agent", "learned role");
	ASSERT_STREQ(kst_json_str(e, "protocol"), "tcp", "learned protocol");
	ASSERT_GE(kst_json_int(e, "count", 0), 1, "learned count");
	ASSERT_GE(kst_json_int(e, "lastSeenNs", 0), kst_json_int(e, "firstSeenNs", 1),
		  "lastSeen >= firstSeen");
	*count = kst_json_int(e, "count", 0);
}

/* learnMax 2, three distinct would-be-denied destinations: all three are
 * allowed, the first two are recorded once each, the third is not. A repeat
 * raises the count, not the number of entries. Back to strict: denied. */
KST_TEST(learn_mode_bounded)
{
	static const uint16_t ports[] = {9000, 9001, 9002};
	struct kst_peer peers[3];
	json_t *pol = kst_policy(env), *arr = NULL, *arr2 = NULL, *strict = NULL, *entry = NULL;
	struct ev_match m = {.dst = KST_REMOTE4, .dport = 9000, .verdict = "learn"};
	long long c9000 = 0, c9001 = 0, c9000_again = 0;
	json_t *ev = NULL;
	int n, evfd = -1;

	json_object_set_new(pol, "mode", json_string("learn"));
	json_object_set_new(pol, "learnMax", json_integer(2));
	if (!ASSERT_OK(kst_apply(env, pol, NULL), "apply learn"))
		goto cleanup;
	for (int i = 0; i < 3; i++) {
		char reply[16];

		snprintf(reply, sizeof(reply), "r%u", ports[i]);
		if (!ASSERT_OK(kst_listen(env, SOCK_STREAM, "0.0.0.0", ports[i], reply, &peers[i]),
			       "listen"))
			goto cleanup;
	}
	evfd = kst_events_open();
	ASSERT_GE(evfd, 0, "subscribe");
	ASSERT_OK(kst_run(env, KST_AGENT, KST_AGENT_UID, agent_learn_three, NULL), "agent");
	if (evfd >= 0) {
		ev = kst_events_find(evfd, match_dst, &m, 5000);
		ASSERT_OK_PTR(ev, "a learn event for 192.0.2.1:9000");
	}

	arr = kst_learned(env->sandbox);
	if (!ASSERT_OK_PTR(arr, "learned"))
		goto cleanup;
	ASSERT_EQ(json_array_size(arr), 2, "learned holds learnMax entries");
	check_entry(arr, KST_REMOTE4, 9000, &c9000);
	check_entry(arr, KST_REMOTE4, 9001, &c9001);
	find_learned(arr, KST_REMOTE4_B, 9002, &n);
	ASSERT_EQ(n, 0, "the third destination is not recorded");

	ASSERT_OK(kst_run(env, KST_AGENT, KST_AGENT_UID, agent_again, NULL), "agent again");
	arr2 = kst_learned(env->sandbox);
	if (ASSERT_OK_PTR(arr2, "learned")) {
		ASSERT_EQ(json_array_size(arr2), 2, "a repeat adds no entry");
		check_entry(arr2, KST_REMOTE4, 9000, &c9000_again);
		ASSERT_GT(c9000_again, c9000, "a repeat raises the count");
	}

	strict = kst_policy(env);
	if (!ASSERT_OK(kst_apply(env, strict, NULL), "apply strict"))
		goto cleanup;
	ASSERT_OK(kst_run(env, KST_AGENT, KST_AGENT_UID, agent_strict_again, NULL), "agent strict");
	entry = kst_list_find(env->sandbox);
	if (ASSERT_OK_PTR(entry, "list"))
		ASSERT_STREQ(kst_json_str(entry, "mode"), "strict", "list shows strict");
cleanup:
	if (evfd >= 0)
		close(evfd);
	json_decref(ev);
	json_decref(entry);
	json_decref(strict);
	json_decref(arr2);
	json_decref(arr);
	json_decref(pol);
}

struct ev_shm {
	pid_t agent_pid;
};

static int agent_denied_for_events(struct kst_env *env, void *arg)
{
	struct ev_shm *s = env->scratch;
	int fd;

	s->agent_pid = getpid();
	ASSERT_ERRNO(kst_try_tcp(KST_REMOTE4, 22), EPERM, "tcp 192.0.2.1:22");
	ASSERT_ERRNO(kst_try_udp_sendto(KST_REMOTE4, 9999), EPERM, "udp 192.0.2.1:9999");
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (ASSERT_OK_FD(fd, "socket")) {
		ASSERT_ERRNO(kst_dns_sendto(fd, "q", KST_DNS4, 53), 0, "dns");
		close(fd);
	}
	return 0;
}

/* A denied connect() is an event with the fields an operator acts on. */
KST_TEST(events_deny_fields)
{
	struct ev_shm *s = env->scratch;
	struct ev_match tcp = {.dst = KST_REMOTE4, .dport = 22};
	struct ev_match udp = {.dst = KST_REMOTE4, .dport = 9999};
	struct ev_match dns = {.dst = KST_DNS4, .dport = 53};
	json_t *ev = NULL, *ev_udp = NULL, *ev_dns = NULL;
	int evfd = -1;
	pid_t pid;

	if (!ASSERT_OK(kst_apply_default(env), "apply"))
		return;
	evfd = kst_events_open();
	if (!ASSERT_GE(evfd, 0, "subscribe"))
		return;
	pid =
	    kst_spawn(env, KST_AGENT, KST_AGENT_UID, "kst-ev-agent", agent_denied_for_events, NULL);
	if (!ASSERT_GT(pid, 0, "spawn") || !ASSERT_OK(kst_wait(env, pid, 20000), "agent"))
		goto cleanup;

	ev = kst_events_find(evfd, match_dst, &tcp, 5000);
	if (ASSERT_OK_PTR(ev, "event for 192.0.2.1:22")) {
		ASSERT_STREQ(kst_json_str(ev, "verdict"), "deny", "verdict");
		ASSERT_STREQ(kst_json_str(ev, "reason"), "not_allowed", "reason");
		ASSERT_STREQ(kst_json_str(ev, "hook"), "connect4", "hook");
		ASSERT_STREQ(kst_json_str(ev, "protocol"), "tcp", "protocol");
		ASSERT_STREQ(kst_json_str(ev, "family"), "ipv4", "family");
		ASSERT_STREQ(kst_json_str(ev, "role"), "agent", "role");
		ASSERT_STREQ(kst_json_str(ev, "sandbox"), env->sandbox, "sandbox");
		ASSERT_EQ(kst_json_int(ev, "uid", -1), KST_AGENT_UID, "uid");
		ASSERT_STREQ(kst_json_str(ev, "comm"), "kst-ev-agent", "comm");
		ASSERT_EQ(kst_json_int(ev, "tgid", -1), s->agent_pid, "tgid is the agent");
	}
	ev_udp = kst_events_find(evfd, match_dst, &udp, 5000);
	if (ASSERT_OK_PTR(ev_udp, "event for udp 192.0.2.1:9999")) {
		ASSERT_STREQ(kst_json_str(ev_udp, "verdict"), "deny", "udp verdict");
		ASSERT_STREQ(kst_json_str(ev_udp, "hook"), "sendmsg4", "udp hook");
		ASSERT_STREQ(kst_json_str(ev_udp, "protocol"), "udp", "udp protocol");
	}
	ev_dns = kst_events_find(evfd, match_dst, &dns, 5000);
	if (ASSERT_OK_PTR(ev_dns, "event for the DNS rewrite")) {
		ASSERT_STREQ(kst_json_str(ev_dns, "verdict"), "rewrite", "dns verdict");
		ASSERT_STREQ(kst_json_str(ev_dns, "reason"), "dns_resolver", "dns reason");
		ASSERT_STREQ(kst_json_str(ev_dns, "newDst"), KST_RESOLVER4, "dns newDst");
		ASSERT_EQ(kst_json_int(ev_dns, "newDport", -1), KST_RESOLVER_PORT, "dns newDport");
	}
cleanup:
	json_decref(ev);
	json_decref(ev_udp);
	json_decref(ev_dns);
	close(evfd);
}
