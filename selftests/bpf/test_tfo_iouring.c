/* test_tfo_iouring.c - connections that do not start with connect(2).
 *
 * TCP Fast Open opens a connection with sendto(MSG_FASTOPEN) and no
 * connect(); io_uring opens connections, sends datagrams and even creates
 * sockets from its own request queue. Both are known ways around filters
 * that watch syscalls. The cgroup hooks sit below them (TFO goes through
 * the same pre-connect hook; io_uring calls the same socket operations), so
 * each is checked here for both a denial and the redirect.
 */
#include <liburing.h>
#include <netinet/in.h>
#include <stdio.h>
#include <unistd.h>

#include "harness.h"
#include "karsd_proc.h"
#include "net_helpers.h"

#ifndef MSG_FASTOPEN
#define MSG_FASTOPEN 0x20000000
#endif

static int tfo_send(const char *ip, uint16_t port, int *fd_out)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, e = 0;

	kst_sockaddr(ip, port, &ss, &len);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	if (sendto(fd, "hello", 5, MSG_FASTOPEN, (struct sockaddr *)&ss, len) != 5)
		e = errno ? errno : EIO;
	if (e || !fd_out)
		close(fd);
	else
		*fd_out = fd;
	return e;
}

static int agent_tfo(struct kst_env *env, void *arg)
{
	struct sockaddr_storage peer;
	char buf[32];
	int fd = -1, e;

	e = tfo_send(KST_REMOTE4, 22, NULL);
	if (e == EOPNOTSUPP) {
		kst_skip("TCP Fast Open client disabled (net.ipv4.tcp_fastopen)");
		return 0;
	}
	ASSERT_ERRNO(e, EPERM, "sendto(MSG_FASTOPEN) 192.0.2.1:22");
	ASSERT_ERRNO(tfo_send(KST_REMOTE6, 22, NULL), EPERM,
		     "sendto(MSG_FASTOPEN) [2001:db8::1]:22");
	if (!ASSERT_ERRNO(tfo_send(KST_REMOTE4, 443, &fd), 0, "sendto(MSG_FASTOPEN) 192.0.2.1:443"))
		return 1;
	ASSERT_ERRNO(kst_read_reply(fd, buf, sizeof(buf)), 0, "read");
	ASSERT_STREQ(buf, "proxy", "TFO to 443 is redirected to the proxy");
	ASSERT_ERRNO(kst_getpeername(fd, &peer), 0, "getpeername");
	ASSERT_ADDR(&peer, KST_REMOTE4, 443, "getpeername shows the original destination");
	close(fd);
	return 0;
}

/* TFO: a denied destination is EPERM at sendto(); 443 is redirected, data
 * and original destination intact. */
KST_TEST(tfo_denied_and_redirected)
{
	struct kst_peer p4, remote, ssh;
	struct kst_report r;

	if (!ASSERT_OK(kst_apply_default(env), "apply") ||
	    !ASSERT_OK(kst_start_proxy(env, &p4, NULL), "proxy") ||
	    !ASSERT_OK(kst_listen(env, SOCK_STREAM, KST_REMOTE4, 443, "remote", &remote),
		       "remote") ||
	    !ASSERT_OK(kst_listen(env, SOCK_STREAM, "0.0.0.0", 22, "ssh", &ssh), "ssh"))
		return;
	ASSERT_OK(kst_run(env, KST_AGENT, KST_AGENT_UID, agent_tfo, NULL), "agent");
	ASSERT_TRUE(kst_peer_quiet(&ssh, 200), "nothing reached port 22");
	if (!ASSERT_OK(kst_peer_next(&p4, &r, KST_IO_TIMEOUT_MS), "proxy accepted"))
		return;
	ASSERT_STREQ(r.data, "hello", "the fast-open data reached the proxy");
	if (ASSERT_OK(r.orig_ret, "orig_dst")) {
		ASSERT_STREQ(r.orig_ip, KST_REMOTE4, "orig_dst ip");
		ASSERT_EQ(r.orig_port, 443, "orig_dst port");
	}
	ASSERT_TRUE(kst_peer_quiet(&remote, 200), "nothing reached the real 192.0.2.1:443");
}

/* One io_uring operation; returns the CQE's res. */
static int uring_one(struct io_uring *ring)
{
	struct io_uring_cqe *cqe;
	struct __kernel_timespec ts = {.tv_sec = KST_IO_TIMEOUT_MS / 1000};
	int ret;

	ret = io_uring_submit(ring);
	if (ret != 1)
		return ret < 0 ? ret : -EIO;
	ret = io_uring_wait_cqe_timeout(ring, &cqe, &ts);
	if (ret)
		return ret == -ETIME ? -ETIMEDOUT : ret;
	ret = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return ret;
}

static int uring_connect(struct io_uring *ring, const char *ip, uint16_t port, int *fd_out)
{
	struct sockaddr_storage ss;
	struct io_uring_sqe *sqe;
	socklen_t len;
	int fd, ret;

	kst_sockaddr(ip, port, &ss, &len);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	sqe = io_uring_get_sqe(ring);
	io_uring_prep_connect(sqe, fd, (struct sockaddr *)&ss, len);
	ret = uring_one(ring);
	if (ret || !fd_out)
		close(fd);
	else
		*fd_out = fd;
	return ret;
}

static int uring_sendmsg(struct io_uring *ring, const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	struct io_uring_sqe *sqe;
	char data[] = "x";
	struct iovec iov = {.iov_base = data, .iov_len = 1};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	socklen_t len;
	int fd, ret;

	kst_sockaddr(ip, port, &ss, &len);
	msg.msg_name = &ss;
	msg.msg_namelen = len;
	fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	sqe = io_uring_get_sqe(ring);
	io_uring_prep_sendmsg(sqe, fd, &msg, 0);
	ret = uring_one(ring);
	close(fd);
	return ret;
}

static int agent_uring(struct kst_env *env, void *arg)
{
	struct sockaddr_storage peer;
	struct io_uring ring;
	char buf[32];
	int fd = -1, ret;

	ret = io_uring_queue_init(8, &ring, 0);
	if (ret) {
		kst_skip("io_uring unavailable: %s (kernel.io_uring_disabled?)",
			 kst_errno_name(-ret));
		return 0;
	}
	ASSERT_EQ(uring_connect(&ring, KST_REMOTE4, 22, NULL), -EPERM,
		  "IORING_OP_CONNECT 192.0.2.1:22 -> -EPERM in the CQE");
	ASSERT_EQ(uring_connect(&ring, KST_REMOTE6, 22, NULL), -EPERM,
		  "IORING_OP_CONNECT [2001:db8::1]:22 -> -EPERM");
	ASSERT_EQ(uring_sendmsg(&ring, KST_REMOTE4, 9999), -EPERM,
		  "IORING_OP_SENDMSG udp 192.0.2.1:9999 -> -EPERM");
	if (ASSERT_EQ(uring_connect(&ring, KST_REMOTE4, 443, &fd), 0,
		      "IORING_OP_CONNECT 192.0.2.1:443 -> redirected")) {
		ASSERT_ERRNO(kst_read_reply(fd, buf, sizeof(buf)), 0, "read");
		ASSERT_STREQ(buf, "proxy", "landed on the proxy");
		ASSERT_ERRNO(kst_getpeername(fd, &peer), 0, "getpeername");
		ASSERT_ADDR(&peer, KST_REMOTE4, 443, "getpeername shows the original destination");
		close(fd);
	}
	io_uring_queue_exit(&ring);
	return 0;
}

/* io_uring: connect and sendmsg from the ring meet the same hooks. */
KST_TEST(iouring_connect_denied)
{
	struct kst_peer p4, ssh, udp;

	if (!ASSERT_OK(kst_apply_default(env), "apply") ||
	    !ASSERT_OK(kst_start_proxy(env, &p4, NULL), "proxy") ||
	    !ASSERT_OK(kst_listen(env, SOCK_STREAM, "0.0.0.0", 22, "ssh", &ssh), "ssh") ||
	    !ASSERT_OK(kst_listen(env, SOCK_DGRAM, KST_REMOTE4, 9999, "u", &udp), "udp"))
		return;
	ASSERT_OK(kst_run(env, KST_AGENT, KST_AGENT_UID, agent_uring, NULL), "agent");
	ASSERT_TRUE(kst_peer_quiet(&udp, 200), "no datagram through io_uring");
}

static int agent_uring_socket(struct kst_env *env, void *arg)
{
	struct io_uring ring;
	struct io_uring_sqe *sqe;
	int ret;

	ret = io_uring_queue_init(8, &ring, 0);
	if (ret) {
		kst_skip("io_uring unavailable: %s", kst_errno_name(-ret));
		return 0;
	}
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_socket(sqe, AF_INET, SOCK_RAW, IPPROTO_UDP, 0);
	ret = uring_one(&ring);
	if (ret == -EINVAL) {
		kst_skip("IORING_OP_SOCKET unsupported by this kernel");
	} else {
		ASSERT_EQ(ret, -EPERM,
			  "IORING_OP_SOCKET raw as root in the agent cgroup -> -EPERM");
		if (ret >= 0)
			close(ret);
		sqe = io_uring_get_sqe(&ring);
		io_uring_prep_socket(sqe, AF_INET, SOCK_STREAM, 0, 0);
		ret = uring_one(&ring);
		ASSERT_GE(ret, 0, "IORING_OP_SOCKET tcp works (and is stamped)");
		if (ret >= 0) {
			ASSERT_ERRNO(kst_connect_fd(ret, KST_REMOTE4, 22), EPERM,
				     "ring-made socket: connect 192.0.2.1:22 EPERM");
			close(ret);
		}
	}
	io_uring_queue_exit(&ring);
	return 0;
}

/* IORING_OP_SOCKET runs cgroup/sock_create like socket(2): root in the
 * agent cgroup gets no raw socket from the ring either. */
KST_TEST(iouring_socket_raw_denied)
{
	struct kst_peer ssh;

	if (!ASSERT_OK(kst_apply_default(env), "apply") ||
	    !ASSERT_OK(kst_listen(env, SOCK_STREAM, "0.0.0.0", 22, "ssh", &ssh), "ssh"))
		return;
	ASSERT_OK(kst_run(env, KST_AGENT, KST_ROOT, agent_uring_socket, NULL), "agent (root)");
}
