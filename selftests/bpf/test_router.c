/* test_router.c - the router's egress rules, and replacing a policy.
 *
 * The router (UID 1001 in <sandbox>/router) may reach exactly what its
 * rules allow: exact ip+port+protocol entries (hashed) and CIDR entries with
 * port ranges (LPM trie, where karsd folds each shorter prefix's ranges into
 * the longer ones, since an LPM lookup returns only the longest match). A
 * re-apply writes a new generation and switches to it with one map update:
 * the old rules stop and the new ones start together, and `list` shows the
 * new generation. A refused apply leaves the policy in force untouched.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <unistd.h>

#include "harness.h"
#include "karsd_proc.h"
#include "net_helpers.h"

static int start_tcp(struct kst_env *env, const uint16_t *ports, size_t n, struct kst_peer *p)
{
	for (size_t i = 0; i < n; i++) {
		char reply[16];
		int ret;

		snprintf(reply, sizeof(reply), "r%u", ports[i]);
		ret = kst_listen(env, SOCK_STREAM, "0.0.0.0", ports[i], reply, &p[i]);
		if (ret)
			return ret;
	}
	return 0;
}

/* Connects, and for a success checks the right server answered. */
static int tcp_verdict(const char *ip, uint16_t port)
{
	char buf[16], want[16];
	int fd = -1, e = kst_tcp_connect(ip, port, &fd);

	if (e)
		return e;
	snprintf(want, sizeof(want), "r%u", port);
	e = kst_read_reply(fd, buf, sizeof(buf));
	close(fd);
	if (e)
		return e;
	return strcmp(buf, want) ? EBADMSG : 0;
}

static int router_exact(struct kst_env *env, void *arg)
{
	ASSERT_ERRNO(tcp_verdict(KST_REMOTE4, 9000), 0, "tcp 192.0.2.1:9000 (exact rule)");
	ASSERT_ERRNO(tcp_verdict(KST_REMOTE4, 9001), EPERM, "tcp 192.0.2.1:9001 (no rule)");
	ASSERT_ERRNO(tcp_verdict(KST_REMOTE4_B, 9000), EPERM, "tcp 192.0.2.2:9000 (other ip)");
	ASSERT_ERRNO(tcp_verdict(KST_REMOTE4, 9053), EPERM, "tcp 192.0.2.1:9053 (rule is udp)");
	ASSERT_ERRNO(kst_try_udp_sendto(KST_REMOTE4, 9053), 0, "udp sendto 192.0.2.1:9053");
	ASSERT_ERRNO(kst_try_udp_connect(KST_REMOTE4, 9053), 0, "udp connect 192.0.2.1:9053");
	ASSERT_ERRNO(kst_try_udp_sendto(KST_REMOTE4, 9000), EPERM,
		     "udp 192.0.2.1:9000 (rule is tcp)");
	ASSERT_ERRNO(kst_try_tcp("127.0.0.1", 9000), EPERM, "loopback is no exception");
	return 0;
}

/* Exact rules: ip, port and protocol must all match. */
KST_TEST(router_exact_rules)
{
	static const uint16_t ports[] = {9000, 9001, 9053};
	struct kst_peer tcp[3], udp;
	struct kst_report r;
	json_t *pol = kst_policy(env);

	kst_rule_exact(pol, KST_REMOTE4, 9000, "tcp");
	kst_rule_exact(pol, KST_REMOTE4, 9053, "udp");
	if (!ASSERT_OK(kst_apply(env, pol, NULL), "apply") ||
	    !ASSERT_OK(start_tcp(env, ports, 3, tcp), "listen") ||
	    !ASSERT_OK(kst_listen(env, SOCK_DGRAM, KST_REMOTE4, 9053, "u", &udp), "listen udp"))
		goto cleanup;
	ASSERT_OK(kst_run(env, KST_ROUTER, KST_ROUTER_UID, router_exact, NULL), "router");
	if (ASSERT_OK(kst_peer_next(&udp, &r, KST_IO_TIMEOUT_MS), "udp datagram arrived"))
		ASSERT_STREQ(r.data, "kst", "payload");
cleanup:
	json_decref(pol);
}

static int router_cidr(struct kst_env *env, void *arg)
{
	ASSERT_ERRNO(tcp_verdict(KST_NET_B ".7", 7000), 0, ".7:7000 in /24 7000-7099");
	ASSERT_ERRNO(tcp_verdict(KST_NET_B ".7", 7099), 0, ".7:7099 range end");
	ASSERT_ERRNO(tcp_verdict(KST_NET_B ".7", 7100), EPERM, ".7:7100 past the range");
	ASSERT_ERRNO(tcp_verdict(KST_NET_B ".7", 6999), EPERM, ".7:6999 before the range");
	ASSERT_ERRNO(tcp_verdict(KST_NET_B ".200", 8000), 0, ".200:8000 in /25 8000-8099");
	/* .200 matches the /25 longest; the /24's ports still apply to it. */
	ASSERT_ERRNO(tcp_verdict(KST_NET_B ".200", 7000), 0,
		     ".200:7000: the longer /25 does not hide the /24's ports");
	/* .7 is outside the /25: its ports do not leak to the rest of the /24. */
	ASSERT_ERRNO(tcp_verdict(KST_NET_B ".7", 8000), EPERM, ".7:8000 (only the /25 has 8000)");
	ASSERT_ERRNO(tcp_verdict(KST_REMOTE4, 7000), EPERM, "192.0.2.1:7000 outside both");
	ASSERT_ERRNO(kst_try_udp_sendto(KST_NET_B ".7", 7000), EPERM, "udp .7:7000 (rule is tcp)");
	return 0;
}

/* CIDR rules with port ranges, nested prefixes with different ranges. */
KST_TEST(router_cidr_rules)
{
	static const uint16_t ports[] = {6999, 7000, 7099, 7100, 8000};
	struct kst_peer tcp[5];
	json_t *pol = kst_policy(env);

	kst_rule_cidr(pol, KST_NET_B ".0/24", "7000-7099", "tcp");
	kst_rule_cidr(pol, KST_NET_B ".128/25", "8000-8099", "tcp");
	if (!ASSERT_OK(kst_apply(env, pol, NULL), "apply") ||
	    !ASSERT_OK(start_tcp(env, ports, 5, tcp), "listen"))
		goto cleanup;
	ASSERT_OK(kst_run(env, KST_ROUTER, KST_ROUTER_UID, router_cidr, NULL), "router");
cleanup:
	json_decref(pol);
}

struct gen_case {
	uint16_t allowed, denied;
};

static int router_gen(struct kst_env *env, void *arg)
{
	const struct gen_case *c = arg;
	char tag[64];

	snprintf(tag, sizeof(tag), "allowed: 192.0.2.1:%u", c->allowed);
	ASSERT_ERRNO(tcp_verdict(KST_REMOTE4, c->allowed), 0, tag);
	snprintf(tag, sizeof(tag), "denied: 192.0.2.1:%u", c->denied);
	ASSERT_ERRNO(tcp_verdict(KST_REMOTE4, c->denied), EPERM, tag);
	return 0;
}

static int agent_router_reply(struct kst_env *env, void *arg)
{
	const char *want = arg;
	char buf[32];
	int fd = -1;

	if (ASSERT_ERRNO(kst_tcp_connect("127.0.0.1", 8443, &fd), 0, "agent to 8443")) {
		kst_read_reply(fd, buf, sizeof(buf));
		ASSERT_STREQ(buf, want, "8443 follows the applied routerPort");
		close(fd);
	}
	return 0;
}

/* Re-applying a different policy switches behaviour as a whole: the old
 * rule stops, the new one starts, the agent's router port moves, and the
 * generation goes up. A malformed apply is refused and changes nothing. */
KST_TEST(reapply_switches_generation)
{
	static const uint16_t ports[] = {9000, 9001};
	struct gen_case g1 = {.allowed = 9000, .denied = 9001};
	struct gen_case g2 = {.allowed = 9001, .denied = 9000};
	struct kst_peer tcp[2], r_old, r_new;
	struct kst_peer_opts o = {.role = KST_ROUTER,
				  .uid = KST_ROUTER_UID,
				  .type = SOCK_STREAM,
				  .ip = "127.0.0.1",
				  .port = 18543,
				  .reply = "router-2"};
	json_t *p1 = kst_policy(env), *p2 = kst_policy(env), *bad = kst_policy(env), *entry = NULL;
	long long gen1 = -1, gen2 = -1;
	char err[512];

	kst_rule_exact(p1, KST_REMOTE4, 9000, "tcp");
	kst_rule_exact(p2, KST_REMOTE4, 9001, "tcp");
	json_object_set_new(p2, "routerPort", json_integer(18543));
	if (!ASSERT_OK(kst_apply(env, p1, &gen1), "apply 1") ||
	    !ASSERT_OK(start_tcp(env, ports, 2, tcp), "listen") ||
	    !ASSERT_OK(kst_start_router(env, &r_old, NULL), "router") ||
	    !ASSERT_OK(kst_peer_start(env, &o, &r_new), "router on the new port"))
		goto cleanup;
	ASSERT_OK(kst_run(env, KST_ROUTER, KST_ROUTER_UID, router_gen, &g1), "generation 1");
	ASSERT_OK(kst_run(env, KST_AGENT, KST_AGENT_UID, agent_router_reply, "router"), "agent 1");

	if (!ASSERT_OK(kst_apply(env, p2, &gen2), "apply 2"))
		goto cleanup;
	ASSERT_GT(gen2, gen1, "apply returns a higher generation");
	ASSERT_OK(kst_run(env, KST_ROUTER, KST_ROUTER_UID, router_gen, &g2), "generation 2");
	ASSERT_OK(kst_run(env, KST_AGENT, KST_AGENT_UID, agent_router_reply, "router-2"),
		  "agent 2");
	entry = kst_list_find(env->sandbox);
	if (ASSERT_OK_PTR(entry, "list has the sandbox")) {
		ASSERT_EQ(kst_json_int(entry, "generation", -1), gen2,
			  "list shows the new generation");
		ASSERT_EQ(kst_json_int(entry, "exactRules", -1), 1, "list: one exact rule");
	}

	/* Refused: the field is named, the policy in force stays. */
	kst_rule_exact(bad, KST_REMOTE4, 9000, "tcp");
	json_array_append_new(json_object_get(bad, "rules"),
			      json_pack("{s:s,s:i}", "ip", KST_REMOTE4, "port", 70000));
	ASSERT_EQ(kst_call(bad, NULL, err, sizeof(err)), -EPROTO, "malformed apply refused");
	ASSERT_STRSTR(err, "rules[1].port", "error names the field");
	ASSERT_OK(kst_run(env, KST_ROUTER, KST_ROUTER_UID, router_gen, &g2), "still generation 2");
cleanup:
	json_decref(entry);
	json_decref(p1);
	json_decref(p2);
	json_decref(bad);
}
