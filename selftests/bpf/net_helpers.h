/* net_helpers.h - sockets for the tests: client calls that return errno, and
 * peers (real listening servers in the test netns).
 *
 * Client helpers return 0 or a positive errno, so a test states the verdict
 * it expects: ASSERT_ERRNO(kst_try_tcp("192.0.2.1", 22), EPERM, "ssh").
 * Every wait is bounded (connect 3 s, receive 3 s): a verdict that lets a
 * packet go nowhere shows up as ETIMEDOUT, never as a hang.
 *
 * A peer is a forked server (TCP or UDP) in a role's cgroup, with a UID, that
 * reports every connection or datagram it gets on a pipe: the address it saw
 * the client at, the address it was reached on, its socket cookie, the first
 * bytes, and, for the fake egress proxy, what karsd's orig_dst said. It
 * answers each client with a fixed string, so the client knows whom it
 * reached ("router", "proxy", "remote:9000"...).
 */
#ifndef KST_NET_HELPERS_H
#define KST_NET_HELPERS_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "harness.h"

#define KST_IO_TIMEOUT_MS 3000

/* "192.0.2.1" -> AF_INET; anything with ':' (also "::ffff:192.0.2.1") ->
 * AF_INET6. 0 or -EINVAL. */
int kst_sockaddr(const char *ip, uint16_t port, struct sockaddr_storage *ss, socklen_t *len);
int kst_family(const char *ip);
/* "192.0.2.1:443", "[2001:db8::1]:80" */
const char *kst_addr_str(const struct sockaddr_storage *ss, char *buf, size_t len);
bool kst_addr_eq(const struct sockaddr_storage *ss, const char *ip, uint16_t port);
uint16_t kst_addr_port(const struct sockaddr_storage *ss);

#define ASSERT_ADDR(ss, ip, port, tag)                                                             \
	({                                                                                         \
		char ___buf[80];                                                                   \
		kst_check(kst_addr_eq((ss), (ip), (port)), __FILE__, __LINE__, tag,                \
			  "address %s, expected %s port %d", kst_addr_str((ss), ___buf, 80), (ip), \
			  (int)(port));                                                            \
	})

/* connect() with a bounded wait; 0 or errno. */
int kst_connect_fd(int fd, const char *ip, uint16_t port);
/* socket (family from ip) + connect; *fd_out gets the socket when it is
 * non-NULL and the connect succeeded, else it is closed. */
int kst_tcp_connect(const char *ip, uint16_t port, int *fd_out);
int kst_try_tcp(const char *ip, uint16_t port);
int kst_try_udp_connect(const char *ip, uint16_t port);
/* sendto() of one datagram on a fresh unconnected UDP socket. */
int kst_try_udp_sendto(const char *ip, uint16_t port);
int kst_sendto(int fd, const char *msg, const char *ip, uint16_t port);
int kst_send(int fd, const char *msg);
/* Receives one message within timeout_ms; returns bytes or -errno. */
int kst_recv(int fd, char *buf, size_t len, int timeout_ms);
int kst_recvfrom(int fd, char *buf, size_t len, struct sockaddr_storage *from, int timeout_ms);
/* Reads the peer's greeting into buf (NUL-terminated); 0 or errno. */
int kst_read_reply(int fd, char *buf, size_t len);
int kst_getpeername(int fd, struct sockaddr_storage *ss);
int kst_getsockname(int fd, struct sockaddr_storage *ss);
/* The cookie of the socket at the other end of an accepted local connection
 * (sock_diag), as an egress proxy finds the agent's socket; 0 if none. */
uint64_t kst_peer_cookie(int fd);

/* --- peers ------------------------------------------------------------------ */

enum kst_report_kind {
	KST_REP_READY = 1,
	KST_REP_CONN = 2,  /* a TCP connection was accepted (and ended) */
	KST_REP_DGRAM = 3, /* a datagram arrived */
	KST_REP_ERROR = 4, /* the peer failed; err says why */
};

struct kst_report {
	int kind;
	int err;
	struct sockaddr_storage peer;  /* the client, as getpeername/recvfrom saw it */
	struct sockaddr_storage local; /* the address the peer was reached on */
	uint64_t cookie;	       /* the connecting socket's cookie (sock_diag) */
	char data[128];		       /* first bytes from the client, NUL-terminated */
	int orig_ret;		       /* orig_dst: 0, or -errno of the call */
	char orig_ip[64];
	int orig_port;
	char orig_family[8];
	char orig_err[200];
};

struct kst_peer_opts {
	enum kst_role role;
	const char *cgroup; /* absolute; overrides role when set */
	uid_t uid;
	int type; /* SOCK_STREAM or SOCK_DGRAM */
	const char *ip;
	uint16_t port;
	const char *reply; /* sent to every client */
	bool orig_dst;	   /* ask karsd orig_dst with each connecting socket's cookie */
};

struct kst_peer {
	pid_t pid;
	int rfd;
};

/* Starts a peer and waits (bounded) until it listens; 0 or -errno. */
int kst_peer_start(struct kst_env *env, const struct kst_peer_opts *o, struct kst_peer *p);
/* Shorthand: a TCP or UDP peer in the runner's cgroup, as root. */
int kst_listen(struct kst_env *env, int type, const char *ip, uint16_t port, const char *reply,
	       struct kst_peer *p);
/* The next report within timeout_ms; 0 or -ETIMEDOUT / -EPIPE. */
int kst_peer_next(struct kst_peer *p, struct kst_report *r, int timeout_ms);
/* Whether a report arrives within timeout_ms (for "nothing got through"). */
bool kst_peer_quiet(struct kst_peer *p, int timeout_ms);

/* The sandbox's fake router (router cgroup, UID 1001, 127.0.0.1 and ::1 on
 * the router port, answering "router") and egress proxy (same, proxy port,
 * answering "proxy", asking orig_dst for every connection). */
int kst_start_router(struct kst_env *env, struct kst_peer *r4, struct kst_peer *r6);
int kst_start_proxy(struct kst_env *env, struct kst_peer *p4, struct kst_peer *p6);

#endif
