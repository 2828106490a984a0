/* test_redirect.c - TCP 80/443 to the egress proxy, and orig_dst.
 *
 * An agent's TCP to port 80 or 443 anywhere is sent to its router's egress
 * proxy by the connect hook (no NAT): the agent believes it reached the
 * remote (getpeername says so), the proxy gets the connection on loopback,
 * finds the agent socket's cookie from its accepted socket with sock_diag,
 * and asks karsd `orig_dst` with it (to check SNI/Host against). Only the
 * sandbox's router UID (or root) may ask. A "remote" listener on the real
 * destination proves nothing leaks past the proxy.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <unistd.h>

#include "harness.h"
#include "karsd_proc.h"
#include "net_helpers.h"

struct redirect_shm {
	struct sockaddr_storage agent_local; /* the agent's end, as it sees it */
	uint64_t cookie;		     /* the agent's socket, found by the proxy */
	char err[256];
	int ret;
};

struct target {
	const char *ip;
	uint16_t port;
};

static int agent_dial(struct kst_env *env, void *arg)
{
	const struct target *t = arg;
	struct redirect_shm *s = env->scratch;
	struct sockaddr_storage peer;
	char buf[32], tag[96];
	int fd = -1;

	snprintf(tag, sizeof(tag), "agent tcp %s port %u", t->ip, t->port);
	if (!ASSERT_ERRNO(kst_tcp_connect(t->ip, t->port, &fd), 0, tag))
		return 1;
	ASSERT_ERRNO(kst_read_reply(fd, buf, sizeof(buf)), 0, "read");
	ASSERT_STREQ(buf, "proxy", "the connection landed on the egress proxy");
	ASSERT_ERRNO(kst_getpeername(fd, &peer), 0, "getpeername");
	ASSERT_ADDR(&peer, t->ip, t->port, "getpeername shows the original destination");
	kst_getsockname(fd, &s->agent_local);
	close(fd);
	return 0;
}

static int ask_orig_dst(struct kst_env *env, void *arg)
{
	struct redirect_shm *s = env->scratch;
	json_t *req = json_pack("{s:s,s:I}", "op", "orig_dst", "cookie", (json_int_t)s->cookie);

	s->ret = kst_call_unprivileged(req, NULL, s->err, sizeof(s->err));
	json_decref(req);
	return 0;
}

/* Checks one redirected connection end to end; proxy is the listener of the
 * family the redirect lands on. */
static void check_redirect(struct kst_env *env, struct kst_peer *proxy, struct kst_peer *remote,
			   const char *dial_ip, uint16_t port, const char *want_ip,
			   const char *want_family)
{
	struct redirect_shm *s = env->scratch;
	struct target t = {.ip = dial_ip, .port = port};
	struct kst_report r;
	json_t *req = NULL, *resp = NULL;
	char err[256], a[80], b[80];

	memset(s, 0, sizeof(*s));
	if (!ASSERT_OK(kst_run(env, KST_AGENT, KST_AGENT_UID, agent_dial, &t), "agent"))
		return;
	if (!ASSERT_OK(kst_peer_next(proxy, &r, KST_IO_TIMEOUT_MS), "proxy accepted"))
		return;
	/* The proxy (router cgroup, UID 1001) asked karsd with its cookie. */
	if (ASSERT_OK(r.orig_ret, "orig_dst as the router UID")) {
		ASSERT_STREQ(r.orig_ip, want_ip, "orig_dst ip");
		ASSERT_EQ(r.orig_port, port, "orig_dst port");
		if (want_family)
			ASSERT_STREQ(r.orig_family, want_family, "orig_dst family");
	} else {
		printf("  orig_dst (cookie %llu): %s\n", (unsigned long long)r.cookie, r.orig_err);
	}
	/* The proxy sees its client as it is (loopback, the agent's port):
	 * only the agent's view is rewritten, never the router's. */
	ASSERT_EQ(kst_addr_port(&r.peer), kst_addr_port(&s->agent_local),
		  "proxy's getpeername port is the agent's port");
	ASSERT_TRUE(kst_addr_eq(&r.peer, "127.0.0.1", kst_addr_port(&r.peer)) ||
			kst_addr_eq(&r.peer, "::1", kst_addr_port(&r.peer)),
		    "proxy's getpeername address is loopback");
	if (kst_addr_port(&r.peer) != kst_addr_port(&s->agent_local))
		printf("  proxy saw %s, agent is %s\n", kst_addr_str(&r.peer, a, sizeof(a)),
		       kst_addr_str(&s->agent_local, b, sizeof(b)));
	ASSERT_TRUE(kst_peer_quiet(remote, 200), "nothing reached the real destination");

	/* Root may ask too, and gets the same answer. */
	req = json_pack("{s:s,s:I}", "op", "orig_dst", "cookie", (json_int_t)r.cookie);
	if (ASSERT_OK(kst_call(req, &resp, err, sizeof(err)), "orig_dst as root")) {
		ASSERT_STREQ(kst_json_str(resp, "ip"), want_ip, "root: ip");
		ASSERT_EQ(kst_json_int(resp, "port", -1), port, "root: port");
		ASSERT_STREQ(kst_json_str(resp, "sandbox"), env->sandbox, "root: sandbox");
	}
	json_decref(req);
	json_decref(resp);

	/* The agent's UID may not ask, not even about its own connection. */
	s->cookie = r.cookie;
	if (ASSERT_OK(kst_run(env, KST_AGENT, KST_AGENT_UID, ask_orig_dst, NULL), "agent asks")) {
		if (kst_lsm_full(err, sizeof(err))) {
			/* BPF LSM: an agent reaches no AF_UNIX peer outside its
			 * sandbox; karsd's socket is never connected. */
			ASSERT_EQ(s->ret, -EPERM, "LSM: the agent cannot connect to karsd");
		} else {
			ASSERT_EQ(s->ret, -EPROTO, "orig_dst as UID 1000 is refused");
			ASSERT_STRSTR(s->err, "permission denied", "refusal says why");
		}
	}
}

/* 192.0.2.1:443 -> the proxy; orig_dst gives 192.0.2.1:443 back. */
KST_TEST(redirect_tcp4_443)
{
	struct kst_peer p4, p6, remote;

	if (!ASSERT_OK(kst_apply_default(env), "apply"))
		return;
	if (!ASSERT_OK(kst_start_proxy(env, &p4, &p6), "proxy") ||
	    !ASSERT_OK(kst_listen(env, SOCK_STREAM, KST_REMOTE4, 443, "remote", &remote), "remote"))
		return;
	check_redirect(env, &p4, &remote, KST_REMOTE4, 443, KST_REMOTE4, "ipv4");
}

/* [2001:db8::1]:80 -> the proxy on ::1; orig_dst gives it back. */
KST_TEST(redirect_tcp6_80)
{
	struct kst_peer p4, p6, remote;

	if (!ASSERT_OK(kst_apply_default(env), "apply"))
		return;
	if (!ASSERT_OK(kst_start_proxy(env, &p4, &p6), "proxy") ||
	    !ASSERT_OK(kst_listen(env, SOCK_STREAM, KST_REMOTE6, 80, "remote", &remote), "remote"))
		return;
	check_redirect(env, &p6, &remote, KST_REMOTE6, 80, KST_REMOTE6, "ipv6");
}

/* [::ffff:192.0.2.1]:443 from an AF_INET6 socket -> the proxy on 127.0.0.1. */
KST_TEST(redirect_mapped_443)
{
	struct kst_peer p4, p6, remote;

	if (!ASSERT_OK(kst_apply_default(env), "apply"))
		return;
	if (!ASSERT_OK(kst_start_proxy(env, &p4, &p6), "proxy") ||
	    !ASSERT_OK(kst_listen(env, SOCK_STREAM, KST_REMOTE4, 443, "remote", &remote), "remote"))
		return;
	check_redirect(env, &p4, &remote, "::ffff:" KST_REMOTE4, 443, KST_REMOTE4, NULL);
}

/* orig_dst for a cookie no redirect produced is an error, not an answer. */
KST_TEST(orig_dst_unknown_cookie)
{
	json_t *req = json_pack("{s:s,s:I}", "op", "orig_dst", "cookie", (json_int_t)123456789);
	char err[256];

	if (ASSERT_OK(kst_apply_default(env), "apply")) {
		ASSERT_EQ(kst_call(req, NULL, err, sizeof(err)), -EPROTO, "unknown cookie");
		ASSERT_STRSTR(err, "cookie", "error names the field");
	}
	json_decref(req);
}

static int agent_direct_proxy(struct kst_env *env, void *arg)
{
	char buf[32];
	int fd = -1;

	if (!ASSERT_ERRNO(kst_tcp_connect("127.0.0.1", 8444, &fd), 0, "agent to 127.0.0.1:8444"))
		return 1;
	kst_read_reply(fd, buf, sizeof(buf));
	ASSERT_STREQ(buf, "proxy", "reached the proxy");
	close(fd);
	return 0;
}

/* An agent that dials the proxy itself (HTTP CONNECT style) made no
 * redirect: the proxy's orig_dst says so, and the proxy must use the CONNECT
 * target instead. */
KST_TEST(proxy_direct_has_no_orig_dst)
{
	struct kst_peer p4;
	struct kst_report r;

	if (!ASSERT_OK(kst_apply_default(env), "apply") ||
	    !ASSERT_OK(kst_start_proxy(env, &p4, NULL), "proxy"))
		return;
	ASSERT_OK(kst_run(env, KST_AGENT, KST_AGENT_UID, agent_direct_proxy, NULL), "agent");
	if (ASSERT_OK(kst_peer_next(&p4, &r, KST_IO_TIMEOUT_MS), "proxy accepted")) {
		ASSERT_EQ(r.orig_ret, -EPROTO, "no orig_dst for a direct connection");
		ASSERT_STRSTR(r.orig_err, "cookie", "error names the cookie");
	}
}

static int agent_quic(struct kst_env *env, void *arg)
{
	ASSERT_ERRNO(kst_try_udp_sendto(KST_REMOTE4, 443), EPERM, "udp 192.0.2.1:443 (QUIC)");
	ASSERT_ERRNO(kst_try_udp_connect(KST_REMOTE4, 443), EPERM, "udp connect :443");
	ASSERT_ERRNO(kst_try_udp_sendto(KST_REMOTE6, 443), EPERM, "udp [2001:db8::1]:443");
	ASSERT_ERRNO(kst_try_udp_sendto(KST_REMOTE4, 80), EPERM, "udp 192.0.2.1:80");
	return 0;
}

/* Only TCP is redirected: QUIC (UDP 443) would carry HTTP/3 past the proxy,
 * so it is denied and clients fall back to TCP. */
KST_TEST(redirect_not_for_udp)
{
	struct kst_peer u;

	if (!ASSERT_OK(kst_apply_default(env), "apply") ||
	    !ASSERT_OK(kst_listen(env, SOCK_DGRAM, KST_REMOTE4, 443, "quic", &u), "listen"))
		return;
	ASSERT_OK(kst_run(env, KST_AGENT, KST_AGENT_UID, agent_quic, NULL), "agent");
	ASSERT_TRUE(kst_peer_quiet(&u, 200), "no datagram reached 192.0.2.1:443");
}
