/* test_ipv6_mapped.c - IPv6, and IPv4 spoken through IPv6 sockets.
 *
 * An AF_INET6 socket reaches IPv4 hosts through v4-mapped addresses
 * (::ffff:192.0.2.1); the kernel then runs the *6 hooks (connect6) with the
 * mapped address, and for unconnected UDP it switches to the IPv4 path
 * (sendmsg4) for the send but reports the reply through recvmsg6. A policy
 * that only looked at AF_INET would be bypassed by a one-line change in the
 * client, so every IPv4 verdict is checked again here through a mapped
 * address, and the native IPv6 ones next to it.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <unistd.h>

#include "dns_testpkt.h"
#include "harness.h"
#include "karsd_proc.h"
#include "net_helpers.h"

#define MAPPED_REMOTE "::ffff:" KST_REMOTE4
#define MAPPED_DNS    "::ffff:" KST_DNS4

static int agent_v6_denied(struct kst_env *env, void *arg)
{
	ASSERT_ERRNO(kst_try_tcp(KST_REMOTE6, 22), EPERM, "tcp [2001:db8::1]:22");
	ASSERT_ERRNO(kst_try_tcp(KST_REMOTE6, 9000), EPERM, "tcp [2001:db8::1]:9000");
	ASSERT_ERRNO(kst_try_udp_sendto(KST_REMOTE6, 9999), EPERM, "udp sendto [2001:db8::1]:9999");
	ASSERT_ERRNO(kst_try_udp_connect(KST_REMOTE6, 9999), EPERM, "udp connect [2001:db8::1]");
	ASSERT_ERRNO(kst_try_tcp("::1", 9000), EPERM, "tcp [::1]:9000");
	ASSERT_ERRNO(kst_try_udp_sendto("::1", 9000), EPERM, "udp [::1]:9000");
	return 0;
}

static int agent_mapped_denied(struct kst_env *env, void *arg)
{
	ASSERT_ERRNO(kst_try_tcp(MAPPED_REMOTE, 22), EPERM, "tcp [::ffff:192.0.2.1]:22");
	ASSERT_ERRNO(kst_try_tcp(MAPPED_REMOTE, 9000), EPERM, "tcp [::ffff:192.0.2.1]:9000");
	ASSERT_ERRNO(kst_try_udp_sendto(MAPPED_REMOTE, 9999), EPERM,
		     "udp sendto [::ffff:192.0.2.1]:9999");
	ASSERT_ERRNO(kst_try_udp_connect(MAPPED_REMOTE, 9999), EPERM,
		     "udp connect [::ffff:192.0.2.1]:9999");
	ASSERT_ERRNO(kst_try_tcp("::ffff:127.0.0.1", 9000), EPERM, "tcp [::ffff:127.0.0.1]:9000");
	ASSERT_ERRNO(kst_try_tcp("::ffff:0.0.0.0", 9000), EPERM, "tcp [::ffff:0.0.0.0]:9000");
	ASSERT_ERRNO(kst_try_udp_sendto("::ffff:127.0.0.1", 9000), EPERM,
		     "udp [::ffff:127.0.0.1]:9000");
	return 0;
}

static int host_control(struct kst_env *env, void *arg)
{
	ASSERT_ERRNO(kst_try_tcp(KST_REMOTE6, 9000), 0, "control: host to [2001:db8::1]:9000");
	ASSERT_ERRNO(kst_try_tcp(MAPPED_REMOTE, 9000), 0, "control: host to mapped :9000");
	return 0;
}

/* Native IPv6 and v4-mapped destinations are denied like their IPv4 twins. */
KST_TEST(agent_v6_and_mapped_denied)
{
	struct kst_peer s4, s6, u4, u6;

	if (!ASSERT_OK(kst_apply_default(env), "apply"))
		return;
	if (!ASSERT_OK(kst_listen(env, SOCK_STREAM, "0.0.0.0", 9000, "remote", &s4), "listen") ||
	    !ASSERT_OK(kst_listen(env, SOCK_STREAM, "::", 9000, "remote", &s6), "listen6") ||
	    !ASSERT_OK(kst_listen(env, SOCK_DGRAM, KST_REMOTE4, 9999, "remote", &u4), "udp") ||
	    !ASSERT_OK(kst_listen(env, SOCK_DGRAM, KST_REMOTE6, 9999, "remote", &u6), "udp6"))
		return;
	ASSERT_OK(kst_run(env, KST_HOST, KST_ROOT, host_control, NULL), "control");
	ASSERT_OK(kst_run(env, KST_AGENT, KST_AGENT_UID, agent_v6_denied, NULL), "agent v6");
	ASSERT_OK(kst_run(env, KST_AGENT, KST_AGENT_UID, agent_mapped_denied, NULL),
		  "agent mapped");
	ASSERT_TRUE(kst_peer_quiet(&u4, 200), "no datagram reached 192.0.2.1");
	ASSERT_TRUE(kst_peer_quiet(&u6, 200), "no datagram reached 2001:db8::1");
}

struct loop_case {
	const char *ip;
	uint16_t port;
	const char *want;
};

static int agent_loopback_router(struct kst_env *env, void *arg)
{
	static const struct loop_case cases[] = {
	    {"::1", 8443, "router"},
	    {"::1", 8444, "proxy"},
	    {"::ffff:127.0.0.1", 8443, "router"},
	    {"::ffff:127.0.0.1", 8444, "proxy"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sockaddr_storage peer;
		char tag[96], buf[32];
		int fd = -1;

		snprintf(tag, sizeof(tag), "[%s]:%u", cases[i].ip, cases[i].port);
		if (!ASSERT_ERRNO(kst_tcp_connect(cases[i].ip, cases[i].port, &fd), 0, tag))
			continue;
		ASSERT_ERRNO(kst_read_reply(fd, buf, sizeof(buf)), 0, tag);
		ASSERT_STREQ(buf, cases[i].want, tag);
		ASSERT_ERRNO(kst_getpeername(fd, &peer), 0, "getpeername");
		ASSERT_ADDR(&peer, cases[i].ip, cases[i].port, tag);
		close(fd);
	}
	return 0;
}

/* [::1]:8443 and [::ffff:127.0.0.1]:8443 reach the sandbox's router like
 * 127.0.0.1:8443, with the contract address kept in getpeername. */
KST_TEST(agent_v6_mapped_router_port)
{
	struct kst_peer r4, r6, p4, p6;

	if (!ASSERT_OK(kst_apply_default(env), "apply"))
		return;
	if (!ASSERT_OK(kst_start_router(env, &r4, &r6), "router") ||
	    !ASSERT_OK(kst_start_proxy(env, &p4, &p6), "proxy"))
		return;
	ASSERT_OK(kst_run(env, KST_AGENT, KST_AGENT_UID, agent_loopback_router, NULL), "agent");
}

static int agent_v6_dns(struct kst_env *env, void *arg)
{
	struct sockaddr_storage from, peer;
	char buf[64];
	int fd, n;

	fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (!ASSERT_OK_FD(fd, "socket"))
		return 1;
	ASSERT_ERRNO(kst_dns_sendto(fd, "query6", KST_DNS6, 53), 0, "sendto [2001:db8::77]:53");
	n = kst_recvfrom(fd, buf, sizeof(buf), &from, KST_IO_TIMEOUT_MS);
	ASSERT_EQ(n, 6, "reply");
	ASSERT_ADDR(&from, KST_DNS6, 53, "reply source");
	close(fd);

	fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (!ASSERT_OK_FD(fd, "socket"))
		return 1;
	if (ASSERT_ERRNO(kst_connect_fd(fd, KST_DNS6, 53), 0, "tcp [2001:db8::77]:53")) {
		ASSERT_ERRNO(kst_read_reply(fd, buf, sizeof(buf)), 0, "read");
		ASSERT_STREQ(buf, "resolver6-tcp", "reached the IPv6 resolver");
		ASSERT_ERRNO(kst_getpeername(fd, &peer), 0, "getpeername");
		ASSERT_ADDR(&peer, KST_DNS6, 53, "getpeername");
	}
	close(fd);
	return 0;
}

/* IPv6 DNS goes to the IPv6 resolver, UDP and TCP. */
KST_TEST(agent_v6_dns_rewrite)
{
	struct kst_peer udp, tcp;
	struct kst_report r;

	if (!ASSERT_OK(kst_apply_default(env), "apply"))
		return;
	if (!ASSERT_OK(
		kst_listen(env, SOCK_DGRAM, KST_RESOLVER6, KST_RESOLVER_PORT, "answer", &udp),
		"resolver6") ||
	    !ASSERT_OK(kst_listen(env, SOCK_STREAM, KST_RESOLVER6, KST_RESOLVER_PORT,
				  "resolver6-tcp", &tcp),
		       "resolver6 tcp"))
		return;
	ASSERT_OK(kst_run(env, KST_AGENT, KST_AGENT_UID, agent_v6_dns, NULL), "agent");
	if (ASSERT_OK(kst_peer_next(&udp, &r, KST_IO_TIMEOUT_MS), "resolver got the query"))
		ASSERT_STREQ(r.data, "query6", "query");
}

static int agent_mapped_dns_sendto(struct kst_env *env, void *arg)
{
	struct sockaddr_storage from;
	char buf[64];
	int fd, n;

	fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (!ASSERT_OK_FD(fd, "socket"))
		return 1;
	ASSERT_ERRNO(kst_dns_sendto(fd, "query-m", MAPPED_DNS, 53), 0,
		     "sendto [::ffff:192.0.2.77]:53");
	n = kst_recvfrom(fd, buf, sizeof(buf), &from, KST_IO_TIMEOUT_MS);
	ASSERT_EQ(n, 6, "reply");
	/* The send went through sendmsg4 (the kernel hands v4-mapped UDP to the
	 * IPv4 stack); the reply comes back through recvmsg6. */
	ASSERT_ADDR(&from, MAPPED_DNS, 53, "reply source is the server asked");
	close(fd);
	return 0;
}

/* Unconnected UDP DNS through a v4-mapped address: rewritten, and the
 * reply's source restored like on an AF_INET socket. */
KST_TEST(agent_mapped_dns_sendto)
{
	struct kst_peer udp;
	struct kst_report r;

	if (!ASSERT_OK(kst_apply_default(env), "apply"))
		return;
	if (!ASSERT_OK(
		kst_listen(env, SOCK_DGRAM, KST_RESOLVER4, KST_RESOLVER_PORT, "answer", &udp),
		"resolver"))
		return;
	ASSERT_OK(kst_run(env, KST_AGENT, KST_AGENT_UID, agent_mapped_dns_sendto, NULL), "agent");
	if (ASSERT_OK(kst_peer_next(&udp, &r, KST_IO_TIMEOUT_MS), "resolver got the query"))
		ASSERT_STREQ(r.data, "query-m", "query");
}

static int agent_mapped_dns_connected(struct kst_env *env, void *arg)
{
	struct sockaddr_storage from, peer;
	char buf[64];
	int fd, n;

	fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (!ASSERT_OK_FD(fd, "socket"))
		return 1;
	if (ASSERT_ERRNO(kst_connect_fd(fd, MAPPED_DNS, 53), 0, "connect [::ffff:192.0.2.77]:53")) {
		ASSERT_ERRNO(kst_getpeername(fd, &peer), 0, "getpeername");
		ASSERT_ADDR(&peer, MAPPED_DNS, 53, "getpeername");
		ASSERT_ERRNO(kst_dns_send(fd, "query-c"), 0, "send() on the connected socket");
		n = kst_recvfrom(fd, buf, sizeof(buf), &from, KST_IO_TIMEOUT_MS);
		ASSERT_EQ(n, 6, "reply");
		ASSERT_ADDR(&from, MAPPED_DNS, 53, "reply source");
	}
	close(fd);
	return 0;
}

/* Connected UDP DNS through a v4-mapped address. */
KST_TEST(agent_mapped_dns_connected)
{
	struct kst_peer udp;
	struct kst_report r;

	if (!ASSERT_OK(kst_apply_default(env), "apply"))
		return;
	if (!ASSERT_OK(
		kst_listen(env, SOCK_DGRAM, KST_RESOLVER4, KST_RESOLVER_PORT, "answer", &udp),
		"resolver"))
		return;
	ASSERT_OK(kst_run(env, KST_AGENT, KST_AGENT_UID, agent_mapped_dns_connected, NULL),
		  "agent");
	if (ASSERT_OK(kst_peer_next(&udp, &r, KST_IO_TIMEOUT_MS), "resolver got the query"))
		ASSERT_STREQ(r.data, "query-c", "query");
}

static int router_mapped(struct kst_env *env, void *arg)
{
	ASSERT_ERRNO(kst_try_tcp(MAPPED_REMOTE, 9000), 0, "router tcp [::ffff:192.0.2.1]:9000");
	ASSERT_ERRNO(kst_try_tcp(MAPPED_REMOTE, 9001), EPERM, "router tcp [::ffff:192.0.2.1]:9001");
	ASSERT_ERRNO(kst_try_tcp(KST_REMOTE6, 9000), EPERM,
		     "router tcp [2001:db8::1]:9000 (rule is for the IPv4 host)");
	ASSERT_ERRNO(kst_try_tcp(KST_REMOTE6, 9443), 0, "router tcp [2001:db8::1]:9443 (v6 rule)");
	return 0;
}

/* Router rules written for IPv4 match v4-mapped destinations too (one key
 * for both), and IPv6 rules match native IPv6. */
KST_TEST(router_mapped_rules)
{
	struct kst_peer a, b, c, d;
	json_t *pol = kst_policy(env);

	kst_rule_exact(pol, KST_REMOTE4, 9000, "tcp");
	kst_rule_exact(pol, KST_REMOTE6, 9443, "tcp");
	if (!ASSERT_OK(kst_apply(env, pol, NULL), "apply"))
		goto cleanup;
	if (!ASSERT_OK(kst_listen(env, SOCK_STREAM, "0.0.0.0", 9000, "r", &a), "listen") ||
	    !ASSERT_OK(kst_listen(env, SOCK_STREAM, "0.0.0.0", 9001, "r", &b), "listen") ||
	    !ASSERT_OK(kst_listen(env, SOCK_STREAM, "::", 9000, "r", &c), "listen") ||
	    !ASSERT_OK(kst_listen(env, SOCK_STREAM, "::", 9443, "r", &d), "listen"))
		goto cleanup;
	ASSERT_OK(kst_run(env, KST_ROUTER, KST_ROUTER_UID, router_mapped, NULL), "router");
cleanup:
	json_decref(pol);
}
