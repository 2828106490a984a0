/* test_tcp_udp.c - the agent's TCP and UDP verdicts over IPv4.
 *
 * The agent may reach its own router on loopback (8443/8444 mapped to this
 * sandbox's ports) and DNS (any port-53 destination rewritten to the sandbox
 * resolver, the rewrite hidden by getpeername/recvmsg); everything else is
 * EPERM at connect()/sendmsg(), before a packet exists. TCP 80/443 is
 * redirected: test_redirect.c.
 *
 * Every case is a real socket call by a UID-1000 process in the agent
 * cgroup against a real listener, and the denials come with a control (the
 * same call from outside the sandbox succeeds), so a policy that wrongly
 * allows shows up as success or ECONNREFUSED, never as a pass.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <unistd.h>

#include "cgroup_helpers.h"
#include "dns_testpkt.h"
#include "harness.h"
#include "karsd_proc.h"
#include "net_helpers.h"

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif

static const uint16_t denied_tcp_ports[] = {22, 25, 853, 8080, 9000};

static int host_reaches_denied_ports(struct kst_env *env, void *arg)
{
	for (size_t i = 0; i < sizeof(denied_tcp_ports) / sizeof(denied_tcp_ports[0]); i++) {
		char tag[64];

		snprintf(tag, sizeof(tag), "control: host to 192.0.2.1:%u", denied_tcp_ports[i]);
		ASSERT_ERRNO(kst_try_tcp(KST_REMOTE4, denied_tcp_ports[i]), 0, tag);
	}
	return 0;
}

static int agent_denied_ports(struct kst_env *env, void *arg)
{
	for (size_t i = 0; i < sizeof(denied_tcp_ports) / sizeof(denied_tcp_ports[0]); i++) {
		char tag[64];

		snprintf(tag, sizeof(tag), "agent tcp 192.0.2.1:%u", denied_tcp_ports[i]);
		ASSERT_ERRNO(kst_try_tcp(KST_REMOTE4, denied_tcp_ports[i]), EPERM, tag);
	}
	return 0;
}

/* TCP to any port but 53/80/443 of a remote host: EPERM, though something
 * listens there (ssh, smtp, DNS-over-TLS, a proxy, an app port). */
KST_TEST(agent_tcp_denied)
{
	struct kst_peer peers[5];

	if (!ASSERT_OK(kst_apply_default(env), "apply"))
		return;
	for (size_t i = 0; i < 5; i++)
		if (!ASSERT_OK(kst_listen(env, SOCK_STREAM, "0.0.0.0", denied_tcp_ports[i],
					  "remote", &peers[i]),
			       "listen"))
			return;
	ASSERT_OK(kst_run(env, KST_HOST, KST_ROOT, host_reaches_denied_ports, NULL), "control");
	ASSERT_OK(kst_run(env, KST_AGENT, KST_AGENT_UID, agent_denied_ports, NULL), "agent");
	/* Nothing reached the listeners from the agent: the control's 5 only. */
	for (size_t i = 0; i < 5; i++) {
		struct kst_report r;

		ASSERT_OK(kst_peer_next(&peers[i], &r, KST_IO_TIMEOUT_MS), "control connection");
		ASSERT_TRUE(kst_peer_quiet(&peers[i], 200), "no agent connection");
	}
}

static int agent_udp_denied(struct kst_env *env, void *arg)
{
	ASSERT_ERRNO(kst_try_udp_sendto(KST_REMOTE4, 9999), EPERM, "unconnected sendto :9999");
	ASSERT_ERRNO(kst_try_udp_connect(KST_REMOTE4, 9999), EPERM, "connect :9999");
	ASSERT_ERRNO(kst_try_udp_sendto(KST_REMOTE4, 123), EPERM, "sendto ntp :123");
	ASSERT_ERRNO(kst_try_udp_sendto(KST_RESOLVER4, 9999), EPERM, "sendto resolver, not :53");
	return 0;
}

static int host_udp_control(struct kst_env *env, void *arg)
{
	ASSERT_ERRNO(kst_try_udp_sendto(KST_REMOTE4, 9999), 0, "control: host sendto :9999");
	return 0;
}

/* UDP to anything but port 53: EPERM for sendto() on an unconnected socket
 * and for connect(). */
KST_TEST(agent_udp_denied)
{
	struct kst_peer srv;
	struct kst_report r;

	if (!ASSERT_OK(kst_apply_default(env), "apply"))
		return;
	if (!ASSERT_OK(kst_listen(env, SOCK_DGRAM, KST_REMOTE4, 9999, "remote", &srv), "listen"))
		return;
	ASSERT_OK(kst_run(env, KST_AGENT, KST_AGENT_UID, agent_udp_denied, NULL), "agent");
	ASSERT_TRUE(kst_peer_quiet(&srv, 300), "no datagram from the agent");
	ASSERT_OK(kst_run(env, KST_HOST, KST_ROOT, host_udp_control, NULL), "control");
	ASSERT_OK(kst_peer_next(&srv, &r, KST_IO_TIMEOUT_MS), "control datagram arrives");
}

static int agent_dns_sendto(struct kst_env *env, void *arg)
{
	struct sockaddr_storage from;
	char buf[64];
	int fd, n;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (!ASSERT_OK_FD(fd, "socket"))
		return 1;
	ASSERT_ERRNO(kst_dns_sendto(fd, "query-1", KST_DNS4, 53), 0, "sendto 192.0.2.77:53");
	n = kst_recvfrom(fd, buf, sizeof(buf) - 1, &from, KST_IO_TIMEOUT_MS);
	if (ASSERT_EQ(n, 6, "reply length")) {
		buf[n] = '\0';
		ASSERT_STREQ(buf, "answer", "reply");
	}
	/* recvmsg4 restores the address the agent asked: a resolver library
	 * drops answers from a server it did not query. */
	ASSERT_ADDR(&from, KST_DNS4, 53, "reply source");
	close(fd);
	return 0;
}

/* Unconnected UDP to any x:53 is rewritten to the sandbox resolver; the reply
 * appears to come from x:53. */
KST_TEST(agent_dns_udp_rewrite)
{
	struct kst_peer resolver;
	struct kst_report r;

	if (!ASSERT_OK(kst_apply_default(env), "apply"))
		return;
	if (!ASSERT_OK(
		kst_listen(env, SOCK_DGRAM, KST_RESOLVER4, KST_RESOLVER_PORT, "answer", &resolver),
		"resolver"))
		return;
	ASSERT_OK(kst_run(env, KST_AGENT, KST_AGENT_UID, agent_dns_sendto, NULL), "agent");
	if (ASSERT_OK(kst_peer_next(&resolver, &r, KST_IO_TIMEOUT_MS), "resolver got the query")) {
		ASSERT_STREQ(r.data, "query-1", "query");
		ASSERT_ADDR(&r.local, KST_RESOLVER4, KST_RESOLVER_PORT, "resolver address");
	}
}

static int agent_dns_connected(struct kst_env *env, void *arg)
{
	struct sockaddr_storage peer, from;
	char buf[64];
	int fd, n;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (!ASSERT_OK_FD(fd, "socket"))
		return 1;
	if (!ASSERT_ERRNO(kst_connect_fd(fd, KST_DNS4, 53), 0, "connect 192.0.2.77:53"))
		goto out;
	ASSERT_ERRNO(kst_getpeername(fd, &peer), 0, "getpeername");
	ASSERT_ADDR(&peer, KST_DNS4, 53, "getpeername hides the rewrite");
	ASSERT_ERRNO(kst_dns_send(fd, "query-2"), 0, "send() on the connected socket");
	n = kst_recvfrom(fd, buf, sizeof(buf) - 1, &from, KST_IO_TIMEOUT_MS);
	ASSERT_EQ(n, 6, "reply length");
	ASSERT_ADDR(&from, KST_DNS4, 53, "reply source");
	/* The connected socket still may not talk elsewhere: sendto with an
	 * address is an unconnected send and meets sendmsg4. */
	ASSERT_ERRNO(kst_sendto(fd, "x", KST_REMOTE4, 9999), EPERM, "sendto elsewhere");
out:
	close(fd);
	return 0;
}

/* Connected UDP to x:53: getpeername shows x:53, the datagram reaches the
 * resolver, and sendto() with another address on the same socket is EPERM. */
KST_TEST(agent_dns_udp_connected)
{
	struct kst_peer resolver, other;
	struct kst_report r;

	if (!ASSERT_OK(kst_apply_default(env), "apply"))
		return;
	if (!ASSERT_OK(
		kst_listen(env, SOCK_DGRAM, KST_RESOLVER4, KST_RESOLVER_PORT, "answer", &resolver),
		"resolver") ||
	    !ASSERT_OK(kst_listen(env, SOCK_DGRAM, KST_REMOTE4, 9999, "remote", &other), "other"))
		return;
	ASSERT_OK(kst_run(env, KST_AGENT, KST_AGENT_UID, agent_dns_connected, NULL), "agent");
	if (ASSERT_OK(kst_peer_next(&resolver, &r, KST_IO_TIMEOUT_MS), "resolver got the query"))
		ASSERT_STREQ(r.data, "query-2", "query");
	ASSERT_TRUE(kst_peer_quiet(&other, 300), "nothing reached 192.0.2.1:9999");
}

static int agent_dns_tcp(struct kst_env *env, void *arg)
{
	struct sockaddr_storage peer;
	char buf[64];
	int fd = -1;

	if (!ASSERT_ERRNO(kst_tcp_connect(KST_DNS4, 53, &fd), 0, "tcp 192.0.2.77:53"))
		return 1;
	ASSERT_ERRNO(kst_read_reply(fd, buf, sizeof(buf)), 0, "read");
	ASSERT_STREQ(buf, "resolver-tcp", "reached the resolver");
	ASSERT_ERRNO(kst_getpeername(fd, &peer), 0, "getpeername");
	ASSERT_ADDR(&peer, KST_DNS4, 53, "getpeername hides the rewrite");
	close(fd);
	return 0;
}

/* DNS over TCP (port 53) is rewritten like UDP. */
KST_TEST(agent_dns_tcp)
{
	struct kst_peer resolver;
	struct kst_report r;

	if (!ASSERT_OK(kst_apply_default(env), "apply"))
		return;
	if (!ASSERT_OK(kst_listen(env, SOCK_STREAM, KST_RESOLVER4, KST_RESOLVER_PORT,
				  "resolver-tcp", &resolver),
		       "resolver"))
		return;
	ASSERT_OK(kst_run(env, KST_AGENT, KST_AGENT_UID, agent_dns_tcp, NULL), "agent");
	if (ASSERT_OK(kst_peer_next(&resolver, &r, KST_IO_TIMEOUT_MS), "resolver accepted"))
		ASSERT_ADDR(&r.local, KST_RESOLVER4, KST_RESOLVER_PORT, "resolver address");
}

struct spoof_shm {
	int ready; /* the agent has asked DNS and waits for the stranger */
	uint16_t agent_port;
};

static int agent_dns_then_stranger(struct kst_env *env, void *arg)
{
	struct spoof_shm *s = env->scratch;
	struct sockaddr_storage from, me;
	char buf[64];
	int fd, n;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (!ASSERT_OK_FD(fd, "socket"))
		return 1;
	ASSERT_ERRNO(kst_dns_sendto(fd, "query-3", KST_DNS4, 53), 0, "sendto 192.0.2.77:53");
	n = kst_recvfrom(fd, buf, sizeof(buf), &from, KST_IO_TIMEOUT_MS);
	ASSERT_EQ(n, 6, "resolver reply");
	ASSERT_ADDR(&from, KST_DNS4, 53, "resolver reply shows the asked server");
	kst_getsockname(fd, &me);
	s->agent_port = kst_addr_port(&me);
	__atomic_store_n(&s->ready, 1, __ATOMIC_RELEASE);
	/* A datagram from someone else entirely, to the same socket. */
	n = kst_recvfrom(fd, buf, sizeof(buf), &from, KST_IO_TIMEOUT_MS);
	if (ASSERT_EQ(n, 8, "stranger's datagram"))
		ASSERT_ADDR(&from, KST_REMOTE4_B, 7777,
			    "a non-resolver sender is shown as itself, not as 192.0.2.77:53");
	close(fd);
	return 0;
}

static int stranger_sends(struct kst_env *env, void *arg)
{
	struct spoof_shm *s = env->scratch;
	struct sockaddr_storage me;
	socklen_t len;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (!ASSERT_OK_FD(fd, "socket"))
		return 1;
	kst_sockaddr(KST_REMOTE4_B, 7777, &me, &len);
	if (!ASSERT_OK(bind(fd, (struct sockaddr *)&me, len) ? -errno : 0, "bind 192.0.2.2:7777"))
		return 1;
	ASSERT_ERRNO(kst_sendto(fd, "stranger", "127.0.0.1", s->agent_port), 0, "send");
	close(fd);
	return 0;
}

/* recvmsg4 must undo only the rewrite it made: a datagram to the agent's DNS
 * socket from a host that is not the resolver keeps its real source. If
 * every datagram on that socket were shown as coming from 192.0.2.77:53, any
 * sender could pass the source check resolvers rely on against spoofed
 * answers. */
KST_TEST(agent_dns_recvmsg_only_resolver)
{
	struct spoof_shm *s = env->scratch;
	struct kst_peer resolver;
	uint64_t deadline;
	pid_t agent;

	if (!ASSERT_OK(kst_apply_default(env), "apply"))
		return;
	if (!ASSERT_OK(
		kst_listen(env, SOCK_DGRAM, KST_RESOLVER4, KST_RESOLVER_PORT, "answer", &resolver),
		"resolver"))
		return;
	agent = kst_spawn(env, KST_AGENT, KST_AGENT_UID, NULL, agent_dns_then_stranger, NULL);
	if (!ASSERT_GT(agent, 0, "spawn agent"))
		return;
	deadline = kst_now_ms() + KST_IO_TIMEOUT_MS;
	while (!__atomic_load_n(&s->ready, __ATOMIC_ACQUIRE) && kst_now_ms() < deadline)
		kst_msleep(5);
	if (ASSERT_TRUE(s->ready, "agent asked DNS"))
		ASSERT_OK(kst_run(env, KST_HOST, KST_ROOT, stranger_sends, NULL), "stranger");
	ASSERT_OK(kst_wait(env, agent, 10000), "agent");
}

static int agent_to_router(struct kst_env *env, void *arg)
{
	struct sockaddr_storage peer;
	char buf[32];
	int fd = -1;

	if (ASSERT_ERRNO(kst_tcp_connect("127.0.0.1", 8443, &fd), 0, "127.0.0.1:8443")) {
		ASSERT_ERRNO(kst_read_reply(fd, buf, sizeof(buf)), 0, "read");
		ASSERT_STREQ(buf, "router", "8443 lands on the sandbox's router port");
		ASSERT_ERRNO(kst_getpeername(fd, &peer), 0, "getpeername");
		ASSERT_ADDR(&peer, "127.0.0.1", 8443, "getpeername shows the contract port");
		close(fd);
	}
	if (ASSERT_ERRNO(kst_tcp_connect("127.0.0.1", KST_ROUTER_PORT, &fd), 0,
			 "127.0.0.1:18443 directly")) {
		ASSERT_ERRNO(kst_read_reply(fd, buf, sizeof(buf)), 0, "read");
		ASSERT_STREQ(buf, "router", "own router port");
		close(fd);
	}
	if (ASSERT_ERRNO(kst_tcp_connect("127.0.0.1", 8444, &fd), 0, "127.0.0.1:8444")) {
		ASSERT_ERRNO(kst_read_reply(fd, buf, sizeof(buf)), 0, "read");
		ASSERT_STREQ(buf, "proxy", "8444 lands on the sandbox's proxy port");
		close(fd);
	}
	return 0;
}

/* The runtime contract: 127.0.0.1:8443 reaches this sandbox's router on its
 * own port (18443 here), and getpeername still says 8443. */
KST_TEST(agent_router_port)
{
	struct kst_peer r4, p4;
	struct kst_report r;

	if (!ASSERT_OK(kst_apply_default(env), "apply"))
		return;
	if (!ASSERT_OK(kst_start_router(env, &r4, NULL), "router") ||
	    !ASSERT_OK(kst_start_proxy(env, &p4, NULL), "proxy"))
		return;
	ASSERT_OK(kst_run(env, KST_AGENT, KST_AGENT_UID, agent_to_router, NULL), "agent");
	if (ASSERT_OK(kst_peer_next(&r4, &r, KST_IO_TIMEOUT_MS), "router accepted"))
		ASSERT_ADDR(&r.local, "127.0.0.1", KST_ROUTER_PORT, "router's local address");
}

static int agent_loopback_other(struct kst_env *env, void *arg)
{
	ASSERT_ERRNO(kst_try_tcp("127.0.0.1", 9000), EPERM, "tcp 127.0.0.1:9000");
	ASSERT_ERRNO(kst_try_tcp("127.0.0.2", 9000), EPERM, "tcp 127.0.0.2:9000 (127/8)");
	ASSERT_ERRNO(kst_try_tcp("127.0.0.1", KST_ROUTER_PORT + 2), EPERM, "tcp 127.0.0.1:18445");
	ASSERT_ERRNO(kst_try_udp_sendto("127.0.0.1", 9000), EPERM, "udp 127.0.0.1:9000");
	ASSERT_ERRNO(kst_try_udp_sendto("127.0.0.1", 8443), EPERM, "udp 127.0.0.1:8443");
	return 0;
}

static int host_loopback_control(struct kst_env *env, void *arg)
{
	ASSERT_ERRNO(kst_try_tcp("127.0.0.1", 9000), 0, "control: host to 127.0.0.1:9000");
	return 0;
}

/* Any other loopback port is a host service, not the router: EPERM. */
KST_TEST(agent_loopback_other_port)
{
	struct kst_peer srv, usrv;

	if (!ASSERT_OK(kst_apply_default(env), "apply"))
		return;
	if (!ASSERT_OK(kst_listen(env, SOCK_STREAM, "0.0.0.0", 9000, "host-service", &srv),
		       "listen") ||
	    !ASSERT_OK(kst_listen(env, SOCK_DGRAM, "0.0.0.0", 9000, "host-service", &usrv),
		       "listen udp"))
		return;
	ASSERT_OK(kst_run(env, KST_HOST, KST_ROOT, host_loopback_control, NULL), "control");
	ASSERT_OK(kst_run(env, KST_AGENT, KST_AGENT_UID, agent_loopback_other, NULL), "agent");
	ASSERT_TRUE(kst_peer_quiet(&usrv, 300), "no datagram from the agent");
}

static int agent_unspecified(struct kst_env *env, void *arg)
{
	ASSERT_ERRNO(kst_try_tcp("0.0.0.0", 9000), EPERM, "tcp 0.0.0.0:9000");
	ASSERT_ERRNO(kst_try_tcp("::", 9000), EPERM, "tcp [::]:9000");
	ASSERT_ERRNO(kst_try_udp_sendto("0.0.0.0", 9000), EPERM, "udp 0.0.0.0:9000");
	ASSERT_ERRNO(kst_try_udp_sendto("::", 9000), EPERM, "udp [::]:9000");
	return 0;
}

static int host_unspecified_control(struct kst_env *env, void *arg)
{
	ASSERT_ERRNO(kst_try_tcp("0.0.0.0", 9000), 0, "control: 0.0.0.0 reaches the host");
	ASSERT_ERRNO(kst_try_tcp("::", 9000), 0, "control: :: reaches the host");
	return 0;
}

/* connect() to 0.0.0.0 or :: reaches the local host like loopback does. */
KST_TEST(agent_unspecified_addr)
{
	struct kst_peer s4, s6;

	if (!ASSERT_OK(kst_apply_default(env), "apply"))
		return;
	if (!ASSERT_OK(kst_listen(env, SOCK_STREAM, "0.0.0.0", 9000, "host", &s4), "listen") ||
	    !ASSERT_OK(kst_listen(env, SOCK_STREAM, "::", 9000, "host", &s6), "listen6"))
		return;
	ASSERT_OK(kst_run(env, KST_HOST, KST_ROOT, host_unspecified_control, NULL), "control");
	ASSERT_OK(kst_run(env, KST_AGENT, KST_AGENT_UID, agent_unspecified, NULL), "agent");
}

static int agent_a_other_router(struct kst_env *env, void *arg)
{
	char buf[32];
	int fd = -1;

	ASSERT_ERRNO(kst_try_tcp("127.0.0.1", 28443), EPERM, "A to B's router port");
	ASSERT_ERRNO(kst_try_tcp("127.0.0.1", 28444), EPERM, "A to B's proxy port");
	if (ASSERT_ERRNO(kst_tcp_connect("127.0.0.1", 8443, &fd), 0, "A to 8443")) {
		kst_read_reply(fd, buf, sizeof(buf));
		ASSERT_STREQ(buf, "router", "A's 8443 is A's router");
		close(fd);
	}
	return 0;
}

static int agent_b_routers(struct kst_env *env, void *arg)
{
	char buf[32];
	int fd = -1;

	ASSERT_ERRNO(kst_try_tcp("127.0.0.1", KST_ROUTER_PORT), EPERM, "B to A's router port");
	if (ASSERT_ERRNO(kst_tcp_connect("127.0.0.1", 8443, &fd), 0, "B to 8443")) {
		kst_read_reply(fd, buf, sizeof(buf));
		ASSERT_STREQ(buf, "router-b", "B's 8443 is B's router");
		close(fd);
	}
	return 0;
}

/* Two sandboxes on one host: each agent reaches only its own router, and the
 * same contract port 8443 means a different router for each. */
KST_TEST(agent_other_sandbox_router)
{
	char b_agent[PATH_MAX], b_router[PATH_MAX];
	struct kst_peer ra, rb;
	/* B's fake router, in B's router cgroup. */
	struct kst_peer_opts o = {.cgroup = b_router,
				  .uid = KST_ROUTER_UID,
				  .type = SOCK_STREAM,
				  .ip = "127.0.0.1",
				  .port = 28443,
				  .reply = "router-b"};
	json_t *pb = NULL;
	pid_t pid;

	if (!ASSERT_OK(kst_cgroup_create(env, "b-agent", b_agent, sizeof(b_agent)), "cgroup") ||
	    !ASSERT_OK(kst_cgroup_create(env, "b-router", b_router, sizeof(b_router)), "cgroup"))
		return;
	pb = kst_policy_named(env, "b", "b-agent", "b-router", 28443, 28444);
	if (!ASSERT_OK(kst_apply_default(env), "apply A") ||
	    !ASSERT_OK(kst_apply(env, pb, NULL), "apply B"))
		goto cleanup;
	if (!ASSERT_OK(kst_start_router(env, &ra, NULL), "router A"))
		goto cleanup;
	if (!ASSERT_OK(kst_peer_start(env, &o, &rb), "router B"))
		goto cleanup;
	ASSERT_OK(kst_run(env, KST_AGENT, KST_AGENT_UID, agent_a_other_router, NULL), "agent A");
	pid = kst_spawn_cg(env, b_agent, KST_AGENT_UID, "kst-agent-b", agent_b_routers, NULL);
	if (ASSERT_GT(pid, 0, "spawn agent B"))
		ASSERT_OK(kst_wait(env, pid, 20000), "agent B");
cleanup:
	json_decref(pb);
}

static int sub_cgroup_sockets(struct kst_env *env, void *arg)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ASSERT_ERRNO(fd < 0 ? errno : 0, EPERM, "tcp socket() in a cgroup below agent");
	if (fd >= 0)
		close(fd);
	fd = socket(AF_INET6, SOCK_DGRAM, 0);
	ASSERT_ERRNO(fd < 0 ? errno : 0, EPERM, "udp6 socket() in a cgroup below agent");
	if (fd >= 0)
		close(fd);
	return 0;
}

/* A cgroup created below the agent's has no policy of its own: the
 * programs inherited from agent refuse its sockets (fail closed), rather
 * than letting a workload escape policy with mkdir. */
KST_TEST(agent_subcgroup_fail_closed)
{
	char sub[PATH_MAX];
	pid_t pid;

	if (!ASSERT_OK(kst_apply_default(env), "apply"))
		return;
	if (!ASSERT_OK(kst_cgroup_create(env, "agent/sub", sub, sizeof(sub)), "mkdir agent/sub"))
		return;
	pid = kst_spawn_cg(env, sub, KST_AGENT_UID, "kst-sub", sub_cgroup_sockets, NULL);
	if (ASSERT_GT(pid, 0, "spawn"))
		ASSERT_OK(kst_wait(env, pid, 20000), "child in agent/sub");
}

static int agent_mptcp(struct kst_env *env, void *arg)
{
	char buf[32];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_MPTCP);

	if (fd < 0) {
		kst_skip("MPTCP sockets unavailable: %s", kst_errno_name(errno));
		return 0;
	}
	ASSERT_ERRNO(kst_connect_fd(fd, KST_REMOTE4, 22), EPERM, "mptcp 192.0.2.1:22");
	close(fd);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_MPTCP);
	if (!ASSERT_OK_FD(fd, "socket"))
		return 1;
	if (ASSERT_ERRNO(kst_connect_fd(fd, "127.0.0.1", 8443), 0, "mptcp 127.0.0.1:8443")) {
		ASSERT_ERRNO(kst_read_reply(fd, buf, sizeof(buf)), 0, "read");
		ASSERT_STREQ(buf, "router", "mptcp reaches the router");
	}
	close(fd);
	return 0;
}

/* MPTCP is TCP to the policy: denied to a remote port, allowed to the
 * router. Its connect() runs the hooks on a kernel-created subflow socket. */
KST_TEST(agent_mptcp)
{
	struct kst_peer r4, ssh;

	if (!ASSERT_OK(kst_apply_default(env), "apply"))
		return;
	if (!ASSERT_OK(kst_start_router(env, &r4, NULL), "router") ||
	    !ASSERT_OK(kst_listen(env, SOCK_STREAM, "0.0.0.0", 22, "ssh", &ssh), "listen"))
		return;
	ASSERT_OK(kst_run(env, KST_AGENT, KST_AGENT_UID, agent_mptcp, NULL), "agent");
}
