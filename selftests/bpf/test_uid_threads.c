/* test_uid_threads.c - identity: children, threads, UIDs.
 *
 * Agent policy is keyed on the cgroup, so everything the agent starts (a
 * forked grandchild, a thread) and whatever UID it switches to stays under
 * it: a setuid() is no way out. The router's policy has the UID as a second
 * key: its allowances belong to the router's UID, so another UID in the
 * router cgroup (root included) is denied even where the rules allow, with
 * reason uid_mismatch.
 */
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "karsd_proc.h"
#include "net_helpers.h"

static int denied_set(const char *who)
{
	char tag[96];
	int bad = 0;

	snprintf(tag, sizeof(tag), "%s: tcp 192.0.2.1:22", who);
	bad |= !ASSERT_ERRNO(kst_try_tcp(KST_REMOTE4, 22), EPERM, tag);
	snprintf(tag, sizeof(tag), "%s: udp 192.0.2.1:9999", who);
	bad |= !ASSERT_ERRNO(kst_try_udp_sendto(KST_REMOTE4, 9999), EPERM, tag);
	snprintf(tag, sizeof(tag), "%s: tcp [2001:db8::1]:22", who);
	bad |= !ASSERT_ERRNO(kst_try_tcp(KST_REMOTE6, 22), EPERM, tag);
	return bad;
}

static void *thread_body(void *arg)
{
	int *bad = arg;

	*bad = denied_set("pthread");
	return NULL;
}

static int agent_fork_and_thread(struct kst_env *env, void *arg)
{
	pthread_t t;
	int status = -1, tbad = 1;
	pid_t child;

	fflush(stdout);
	child = fork();
	if (child == 0)
		_exit(denied_set("grandchild"));
	if (!ASSERT_GT(child, 0, "fork"))
		return 1;
	waitpid(child, &status, 0);
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0, "grandchild denied");
	if (!ASSERT_OK(-pthread_create(&t, NULL, thread_body, &tbad), "pthread_create"))
		return 1;
	pthread_join(t, NULL);
	ASSERT_EQ(tbad, 0, "thread denied");
	return 0;
}

/* A grandchild and a thread of the agent are denied like the agent. */
KST_TEST(agent_children_and_threads)
{
	struct kst_peer ssh;

	if (!ASSERT_OK(kst_apply_default(env), "apply") ||
	    !ASSERT_OK(kst_listen(env, SOCK_STREAM, "0.0.0.0", 22, "ssh", &ssh), "listen"))
		return;
	ASSERT_OK(kst_run(env, KST_AGENT, KST_AGENT_UID, agent_fork_and_thread, NULL), "agent");
}

static int agent_root_then_nobody(struct kst_env *env, void *arg)
{
	denied_set("root in agent cgroup");
	if (!ASSERT_OK(setresgid(65534, 65534, 65534) ? -errno : 0, "setresgid 65534") ||
	    !ASSERT_OK(setresuid(65534, 65534, 65534) ? -errno : 0, "setresuid 65534"))
		return 1;
	ASSERT_EQ(getuid(), 65534, "now nobody");
	denied_set("uid 65534 in agent cgroup");
	return 0;
}

/* A process in the agent cgroup that starts as root and drops to 65534
 * is under agent policy before and after: the UID is not the key. */
KST_TEST(agent_uid_change)
{
	struct kst_peer ssh;

	if (!ASSERT_OK(kst_apply_default(env), "apply") ||
	    !ASSERT_OK(kst_listen(env, SOCK_STREAM, "0.0.0.0", 22, "ssh", &ssh), "listen"))
		return;
	ASSERT_OK(kst_run(env, KST_AGENT, KST_ROOT, agent_root_then_nobody, NULL), "agent");
}

static int router_try(struct kst_env *env, void *arg)
{
	int want = *(const int *)arg;
	char tag[64];

	snprintf(tag, sizeof(tag), "uid %d: tcp 192.0.2.1:9000 (rule allows)", (int)getuid());
	ASSERT_ERRNO(kst_try_tcp(KST_REMOTE4, 9000), want, tag);
	snprintf(tag, sizeof(tag), "uid %d: udp 192.0.2.1:9053 (rule allows)", (int)getuid());
	ASSERT_ERRNO(kst_try_udp_sendto(KST_REMOTE4, 9053), want, tag);
	return 0;
}

static bool match_uid_mismatch(const json_t *ev, const void *arg)
{
	const char *reason = kst_json_str(ev, "reason");

	return kst_json_int(ev, "uid", -1) == *(const int *)arg &&
	       kst_json_int(ev, "dport", -1) == 9000 && reason;
}

/* In the router cgroup only the router's UID gets the router's rules. */
KST_TEST(router_uid_mismatch)
{
	static const int ok = 0, eperm = EPERM, other = KST_OTHER_UID, root = 0;
	struct kst_peer tcp, udp;
	json_t *pol = kst_policy(env), *ev = NULL, *ev_root = NULL;
	int evfd = -1;

	kst_rule_exact(pol, KST_REMOTE4, 9000, "tcp");
	kst_rule_exact(pol, KST_REMOTE4, 9053, "udp");
	if (!ASSERT_OK(kst_apply(env, pol, NULL), "apply") ||
	    !ASSERT_OK(kst_listen(env, SOCK_STREAM, KST_REMOTE4, 9000, "r", &tcp), "listen") ||
	    !ASSERT_OK(kst_listen(env, SOCK_DGRAM, KST_REMOTE4, 9053, "r", &udp), "listen udp"))
		goto cleanup;
	evfd = kst_events_open();
	ASSERT_GE(evfd, 0, "subscribe");
	ASSERT_OK(kst_run(env, KST_ROUTER, KST_ROUTER_UID, router_try, (void *)&ok), "uid 1001");
	ASSERT_OK(kst_run(env, KST_ROUTER, KST_OTHER_UID, router_try, (void *)&eperm), "uid 1002");
	ASSERT_OK(kst_run(env, KST_ROUTER, KST_ROOT, router_try, (void *)&eperm), "root");
	if (evfd < 0)
		goto cleanup;
	ev = kst_events_find(evfd, match_uid_mismatch, &other, 5000);
	if (ASSERT_OK_PTR(ev, "event for uid 1002")) {
		ASSERT_STREQ(kst_json_str(ev, "verdict"), "deny", "verdict");
		ASSERT_STREQ(kst_json_str(ev, "reason"), "uid_mismatch", "reason");
		ASSERT_STREQ(kst_json_str(ev, "role"), "router", "role");
	}
	ev_root = kst_events_find(evfd, match_uid_mismatch, &root, 5000);
	if (ASSERT_OK_PTR(ev_root, "event for root"))
		ASSERT_STREQ(kst_json_str(ev_root, "reason"), "uid_mismatch", "root: reason");
cleanup:
	if (evfd >= 0)
		close(evfd);
	json_decref(ev);
	json_decref(ev_root);
	json_decref(pol);
}
