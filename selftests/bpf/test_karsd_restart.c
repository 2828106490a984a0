/* test_karsd_restart.c - enforcement outlives karsd; attachments stay single.
 *
 * Programs are attached with BPF links pinned under karsd's pin dir, so a
 * karsd that crashes (SIGKILL) or stops (SIGTERM) leaves enforcement exactly
 * as it was, and a restarted karsd re-adopts what is pinned: the sandbox is
 * listed again, and each cgroup still has exactly one program per attach
 * type its role has (re-adoption updates the pinned links in place; attaching
 * again would stack a second copy). Counts are read with BPF_PROG_QUERY. Removing a
 * sandbox detaches everything, but only once its cgroups are empty.
 */
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup_helpers.h"
#include "harness.h"
#include "karsd_proc.h"
#include "net_helpers.h"

/* What karsd attaches to each role cgroup: one program per attach type, but
 * for egress: the agent's packet backstop and, on both roles, the DNS query
 * check (docs/dns.md); the router's FQDN query recorder on egress and answer
 * snooper on ingress. The router has no rewrites to hide and no packet
 * backstop (docs/dataplane.md). */
static const struct {
	enum bpf_attach_type type;
	int agent, router;
} attached[] = {
    {BPF_CGROUP_INET_SOCK_CREATE, 1, 1},  {BPF_CGROUP_INET4_CONNECT, 1, 1},
    {BPF_CGROUP_INET6_CONNECT, 1, 1},	  {BPF_CGROUP_UDP4_SENDMSG, 1, 1},
    {BPF_CGROUP_UDP6_SENDMSG, 1, 1},	  {BPF_CGROUP_UDP4_RECVMSG, 1, 0},
    {BPF_CGROUP_UDP6_RECVMSG, 1, 0},	  {BPF_CGROUP_INET4_GETPEERNAME, 1, 0},
    {BPF_CGROUP_INET6_GETPEERNAME, 1, 0}, {BPF_CGROUP_INET_EGRESS, 2, 2},
    {BPF_CGROUP_INET_INGRESS, 0, 1},	  {BPF_CGROUP_SOCK_OPS, 0, 0},
};

/* Every attach type has exactly its role's count * mult programs. */
static bool check_attached(const char *cg, bool agent, int mult, const char *when)
{
	bool ok = true;

	for (size_t i = 0; i < sizeof(attached) / sizeof(attached[0]); i++) {
		char tag[160];
		int want = (agent ? attached[i].agent : attached[i].router) * mult;

		snprintf(tag, sizeof(tag), "%s: %s on %s", when,
			 libbpf_bpf_attach_type_str(attached[i].type), strrchr(cg, '/') + 1);
		ok &= ASSERT_EQ(kst_cgroup_prog_count(cg, attached[i].type), want, tag);
	}
	return ok;
}

struct loop_shm {
	int stop;
	int iters;
	int bad_deny, deny_err;
	int bad_allow, allow_err;
};

static int router_roundtrip(void)
{
	char buf[32];
	int fd = -1, e = kst_tcp_connect("127.0.0.1", 8443, &fd);

	if (e)
		return e;
	e = kst_read_reply(fd, buf, sizeof(buf));
	close(fd);
	if (!e && strcmp(buf, "router"))
		e = EBADMSG;
	return e;
}

/* Denied and allowed traffic in a loop until told to stop; every surprise
 * is counted, never retried away. */
static int agent_loop(struct kst_env *env, void *arg)
{
	struct loop_shm *s = env->scratch;

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		int e = kst_try_tcp(KST_REMOTE4, 22);

		if (e != EPERM) {
			s->bad_deny++;
			s->deny_err = e;
		}
		e = kst_try_udp_sendto(KST_REMOTE4, 9999);
		if (e != EPERM) {
			s->bad_deny++;
			s->deny_err = e;
		}
		e = router_roundtrip();
		if (e) {
			s->bad_allow++;
			s->allow_err = e;
		}
		__atomic_fetch_add(&s->iters, 1, __ATOMIC_RELEASE);
		kst_msleep(2);
	}
	return 0;
}

/* Waits (bounded) until the loop has done n more rounds. */
static bool loop_advances(struct loop_shm *s, int n, const char *tag)
{
	int target = __atomic_load_n(&s->iters, __ATOMIC_ACQUIRE) + n;
	uint64_t deadline = kst_now_ms() + 15000;

	while (__atomic_load_n(&s->iters, __ATOMIC_ACQUIRE) < target && kst_now_ms() < deadline)
		kst_msleep(5);
	return ASSERT_GE(s->iters, target, tag);
}

/* kill -9 karsd in the middle of traffic: denied stays EPERM, allowed stays
 * allowed, before, during and after; the restarted karsd lists the sandbox
 * again with no duplicate attachment, and a re-apply after it works. */
KST_TEST(karsd_sigkill_enforcement_continues)
{
	struct loop_shm *s = env->scratch;
	struct kst_peer r4, ssh, udp;
	json_t *before = NULL, *after = NULL, *pol = kst_policy(env);
	long long gen = -1, gen2 = -1;
	pid_t loop = -1;

	if (!ASSERT_OK(kst_apply(env, pol, &gen), "apply") ||
	    !ASSERT_OK(kst_start_router(env, &r4, NULL), "router") ||
	    !ASSERT_OK(kst_listen(env, SOCK_STREAM, "0.0.0.0", 22, "ssh", &ssh), "ssh") ||
	    !ASSERT_OK(kst_listen(env, SOCK_DGRAM, KST_REMOTE4, 9999, "u", &udp), "udp"))
		goto cleanup;
	check_attached(env->cg_agent, true, 1, "after apply");
	check_attached(env->cg_router, false, 1, "after apply");
	before = kst_list_find(env->sandbox);
	if (!ASSERT_OK_PTR(before, "listed before"))
		goto cleanup;

	loop = kst_spawn(env, KST_AGENT, KST_AGENT_UID, "kst-loop", agent_loop, NULL);
	if (!ASSERT_GT(loop, 0, "spawn loop") || !loop_advances(s, 20, "traffic with karsd up"))
		goto cleanup;
	if (!ASSERT_OK(kst_karsd_kill(SIGKILL), "kill -9 karsd"))
		goto cleanup;
	loop_advances(s, 50, "traffic with karsd dead");
	check_attached(env->cg_agent, true, 1, "karsd dead");
	if (!ASSERT_OK(kst_karsd_start(), "restart karsd, same pin dir")) {
		kst_karsd_print_log_tail(20);
		goto cleanup;
	}
	loop_advances(s, 50, "traffic after the restart");
	__atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
	ASSERT_OK(kst_wait(env, loop, 20000), "loop ends");
	loop = -1;
	ASSERT_EQ(s->bad_deny, 0, "no denied connection got through, at any time");
	if (s->bad_deny)
		printf("  last unexpected result for a denied destination: %s\n",
		       kst_errno_name(s->deny_err));
	ASSERT_EQ(s->bad_allow, 0, "no allowed connection failed, at any time");
	if (s->bad_allow)
		printf("  last error for the allowed destination: %s\n",
		       kst_errno_name(s->allow_err));

	after = kst_list_find(env->sandbox);
	if (ASSERT_OK_PTR(after, "re-adopted: listed after the restart")) {
		ASSERT_EQ(kst_json_int(after, "sandboxId", -1),
			  kst_json_int(before, "sandboxId", -2), "same sandboxId");
		ASSERT_EQ(kst_json_int(after, "generation", -1), gen, "same generation");
		ASSERT_STREQ(kst_json_str(json_object_get(after, "agent"), "cgroup"), env->cg_agent,
			     "agent cgroup");
	}
	check_attached(env->cg_agent, true, 1, "after restart");
	check_attached(env->cg_router, false, 1, "after restart");

	/* The restarted karsd takes a new apply: newer generation, still one
	 * program per type. */
	if (ASSERT_OK(kst_apply(env, pol, &gen2), "apply after the restart"))
		ASSERT_GT(gen2, gen, "generation keeps rising across restarts");
	check_attached(env->cg_agent, true, 1, "after restart + apply");
	check_attached(env->cg_router, false, 1, "after restart + apply");
cleanup:
	if (loop > 0) {
		__atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
		kst_wait(env, loop, 5000);
	}
	json_decref(before);
	json_decref(after);
	json_decref(pol);
}

static int agent_denied_22(struct kst_env *env, void *arg)
{
	ASSERT_ERRNO(kst_try_tcp(KST_REMOTE4, 22), EPERM, "tcp 192.0.2.1:22");
	return 0;
}

/* SIGTERM is a clean stop that detaches nothing either; the next karsd
 * re-adopts without stacking programs. */
KST_TEST(karsd_sigterm_detaches_nothing)
{
	struct kst_peer ssh;

	if (!ASSERT_OK(kst_apply_default(env), "apply") ||
	    !ASSERT_OK(kst_listen(env, SOCK_STREAM, "0.0.0.0", 22, "ssh", &ssh), "ssh"))
		return;
	if (!ASSERT_OK(kst_karsd_kill(SIGTERM), "SIGTERM karsd"))
		return;
	check_attached(env->cg_agent, true, 1, "karsd stopped");
	ASSERT_OK(kst_run(env, KST_AGENT, KST_AGENT_UID, agent_denied_22, NULL), "karsd stopped");
	if (!ASSERT_OK(kst_karsd_start(), "start karsd again"))
		return;
	check_attached(env->cg_agent, true, 1, "restarted");
	check_attached(env->cg_router, false, 1, "restarted");
	ASSERT_OK(kst_run(env, KST_AGENT, KST_AGENT_UID, agent_denied_22, NULL), "restarted");
}

static int agent_free_again(struct kst_env *env, void *arg)
{
	ASSERT_ERRNO(kst_try_tcp(KST_REMOTE4, 22), 0, "after remove: no policy, connect works");
	return 0;
}

/* remove detaches every program from both cgroups and drops the pins. */
KST_TEST(remove_detaches_everything)
{
	struct kst_peer ssh;
	json_t *entry = NULL;
	char err[512], pins[PATH_MAX + 64];
	struct stat st;
	long long agent_id;

	if (!ASSERT_OK(kst_apply_default(env), "apply") ||
	    !ASSERT_OK(kst_listen(env, SOCK_STREAM, "0.0.0.0", 22, "ssh", &ssh), "ssh"))
		return;
	entry = kst_list_find(env->sandbox);
	if (!ASSERT_OK_PTR(entry, "listed"))
		return;
	agent_id = kst_json_int(json_object_get(entry, "agent"), "cgroupId", -1);
	snprintf(pins, sizeof(pins), "%s/cgroups/%lld", kst_karsd_pin_dir(), agent_id);
	ASSERT_OK(stat(pins, &st) ? -errno : 0, "agent cgroup's links are pinned");
	check_attached(env->cg_agent, true, 1, "applied");

	if (ASSERT_OK(kst_remove(env->sandbox, err, sizeof(err)), "remove")) {
		check_attached(env->cg_agent, true, 0, "removed");
		check_attached(env->cg_router, false, 0, "removed");
		ASSERT_EQ(stat(pins, &st) ? errno : 0, ENOENT, "pins are gone");
		json_decref(entry);
		entry = kst_list_find(env->sandbox);
		ASSERT_TRUE(entry == NULL, "no longer listed");
		ASSERT_OK(kst_run(env, KST_AGENT, KST_AGENT_UID, agent_free_again, NULL), "agent");
	} else {
		printf("  remove: %s\n", err);
	}
	json_decref(entry);
}

static int agent_wait_stop(struct kst_env *env, void *arg)
{
	struct loop_shm *s = env->scratch;
	uint64_t deadline = kst_now_ms() + 20000;

	/* In the agent cgroup by now (the harness joins before calling us). */
	__atomic_store_n(&s->iters, 1, __ATOMIC_RELEASE);

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE) && kst_now_ms() < deadline)
		kst_msleep(5);
	return 0;
}

/* remove is refused while a role cgroup has processes, and the policy stays
 * in force: enforcement never ends under a live workload. */
KST_TEST(remove_refused_while_populated)
{
	struct loop_shm *s = env->scratch;
	struct kst_peer ssh;
	uint64_t deadline;
	char err[512];
	pid_t sleeper;

	if (!ASSERT_OK(kst_apply_default(env), "apply") ||
	    !ASSERT_OK(kst_listen(env, SOCK_STREAM, "0.0.0.0", 22, "ssh", &ssh), "ssh"))
		return;
	sleeper = kst_spawn(env, KST_AGENT, KST_AGENT_UID, "kst-sleeper", agent_wait_stop, NULL);
	if (!ASSERT_GT(sleeper, 0, "spawn"))
		return;
	deadline = kst_now_ms() + 5000;
	while (!__atomic_load_n(&s->iters, __ATOMIC_ACQUIRE) && kst_now_ms() < deadline)
		kst_msleep(5);
	if (!ASSERT_EQ(s->iters, 1, "sleeper is in the agent cgroup"))
		return;
	ASSERT_EQ(kst_remove(env->sandbox, err, sizeof(err)), -EPROTO, "remove refused");
	ASSERT_STRSTR(err, "processes", "refusal says why");
	check_attached(env->cg_agent, true, 1, "after the refused remove");
	ASSERT_OK(kst_run(env, KST_AGENT, KST_AGENT_UID, agent_denied_22, NULL), "still enforced");
	__atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
	ASSERT_OK(kst_wait(env, sleeper, 20000), "sleeper ends");
}

/* Whether the kernel has bpf_rdonly_cast (6.2+), which the socket build of
 * the verdict hooks needs: a kernel without it (Debian 12's 6.1, in the VM)
 * can only run the stamp build. */
static bool kernel_has_rdonly_cast(void)
{
	struct btf *btf = btf__load_vmlinux_btf();
	bool ok = btf && btf__find_by_name_kind(btf, "bpf_rdonly_cast", BTF_KIND_FUNC) > 0;

	btf__free(btf);
	return ok;
}

/* karsd says how its verdict hooks find a socket's cgroup, and a forced
 * build is the one loaded (so a run with --socket-cgroup stamp tests the
 * pre-6.2 build, not the default one again). */
KST_TEST(karsd_reports_socket_cgroup_build)
{
	const char *mode = kst_karsd_socket_cgroup(), *got;
	json_t *req = json_pack("{s:s}", "op", "status"), *resp = NULL;
	char err[256];

	if (!ASSERT_OK(kst_call(req, &resp, err, sizeof(err)), "status"))
		goto cleanup;
	got = kst_json_str(resp, "socketCgroup");
	if (!ASSERT_OK_PTR(got, "status.socketCgroup"))
		goto cleanup;
	if (strcmp(mode, "stamp") == 0)
		ASSERT_STREQ(got, "creation-stamp", "forced stamp build");
	else if (strcmp(mode, "socket") == 0)
		ASSERT_STREQ(got, "socket", "forced socket build");
	else if (kernel_has_rdonly_cast())
		ASSERT_TRUE(!strcmp(got, "socket") || !strcmp(got, "creation-stamp"),
			    "a known build (socket, or stamp if that build failed to load)");
	else
		ASSERT_STREQ(got, "creation-stamp", "auto on a kernel before 6.2: the stamp build");
cleanup:
	json_decref(req);
	json_decref(resp);
}
