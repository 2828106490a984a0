/* net_helpers.c - see net_helpers.h. */
#include "net_helpers.h"

#include "dns_testpkt.h"
#include "sock_diag.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "karsd_proc.h"

int kst_family(const char *ip)
{
	return strchr(ip, ':') ? AF_INET6 : AF_INET;
}

int kst_sockaddr(const char *ip, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (kst_family(ip) == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		if (inet_pton(AF_INET, ip, &sin->sin_addr) != 1)
			return -EINVAL;
		*len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) != 1)
			return -EINVAL;
		*len = sizeof(*sin6);
	}
	return 0;
}

const char *kst_addr_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, ntohs(sin->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, ntohs(sin6->sin6_port));
	} else {
		snprintf(buf, len, "(family %d)", ss->ss_family);
	}
	return buf;
}

uint16_t kst_addr_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return 0;
}

bool kst_addr_eq(const struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
	struct sockaddr_storage want;
	socklen_t len;

	if (kst_sockaddr(ip, port, &want, &len) || ss->ss_family != want.ss_family)
		return false;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
		const struct sockaddr_in *b = (const struct sockaddr_in *)&want;

		return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
	}
	return ((const struct sockaddr_in6 *)ss)->sin6_port ==
		   ((const struct sockaddr_in6 *)&want)->sin6_port &&
	       !memcmp(&((const struct sockaddr_in6 *)ss)->sin6_addr,
		       &((const struct sockaddr_in6 *)&want)->sin6_addr, 16);
}

int kst_connect_fd(int fd, const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int flags, e = 0;

	if (kst_sockaddr(ip, port, &ss, &len))
		return EINVAL;
	flags = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	if (connect(fd, (struct sockaddr *)&ss, len)) {
		e = errno;
		if (e == EINPROGRESS) {
			struct pollfd p = {.fd = fd, .events = POLLOUT};
			socklen_t el = sizeof(e);
			int n = poll(&p, 1, KST_IO_TIMEOUT_MS);

			if (n == 0)
				e = ETIMEDOUT;
			else if (n < 0)
				e = errno;
			else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el))
				e = errno;
		}
	}
	fcntl(fd, F_SETFL, flags);
	return e;
}

int kst_tcp_connect(const char *ip, uint16_t port, int *fd_out)
{
	int fd = socket(kst_family(ip), SOCK_STREAM | SOCK_CLOEXEC, 0);
	int e;

	if (fd < 0)
		return errno;
	e = kst_connect_fd(fd, ip, port);
	if (e || !fd_out)
		close(fd);
	else
		*fd_out = fd;
	return e;
}

int kst_try_tcp(const char *ip, uint16_t port)
{
	return kst_tcp_connect(ip, port, NULL);
}

int kst_try_udp_connect(const char *ip, uint16_t port)
{
	int fd = socket(kst_family(ip), SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int e;

	if (fd < 0)
		return errno;
	e = kst_connect_fd(fd, ip, port);
	close(fd);
	return e;
}

int kst_sendto(int fd, const char *msg, const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	ssize_t n;

	if (kst_sockaddr(ip, port, &ss, &len))
		return EINVAL;
	n = sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&ss, len);
	if (n < 0)
		return errno;
	return n == (ssize_t)strlen(msg) ? 0 : EMSGSIZE;
}

int kst_send(int fd, const char *msg)
{
	ssize_t n = send(fd, msg, strlen(msg), MSG_NOSIGNAL);

	if (n < 0)
		return errno;
	return n == (ssize_t)strlen(msg) ? 0 : EMSGSIZE;
}

int kst_try_udp_sendto(const char *ip, uint16_t port)
{
	int fd = socket(kst_family(ip), SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int e;

	if (fd < 0)
		return errno;
	e = kst_sendto(fd, "kst", ip, port);
	close(fd);
	return e;
}

static int wait_readable(int fd, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int n = poll(&p, 1, timeout_ms);

	if (n < 0)
		return -errno;
	return n == 0 ? -ETIMEDOUT : 0;
}

int kst_recvfrom(int fd, char *buf, size_t len, struct sockaddr_storage *from, int timeout_ms)
{
	socklen_t flen = sizeof(*from);
	ssize_t n;
	int ret;

	memset(from, 0, sizeof(*from));
	ret = wait_readable(fd, timeout_ms);
	if (ret)
		return ret;
	n = recvfrom(fd, buf, len, MSG_DONTWAIT, (struct sockaddr *)from, &flen);
	return n < 0 ? -errno : (int)n;
}

int kst_recv(int fd, char *buf, size_t len, int timeout_ms)
{
	ssize_t n;
	int ret = wait_readable(fd, timeout_ms);

	if (ret)
		return ret;
	n = recv(fd, buf, len, MSG_DONTWAIT);
	return n < 0 ? -errno : (int)n;
}

int kst_read_reply(int fd, char *buf, size_t len)
{
	int n;

	buf[0] = '\0';
	n = kst_recv(fd, buf, len - 1, KST_IO_TIMEOUT_MS);
	if (n < 0)
		return -n;
	if (n == 0)
		return ENODATA;
	buf[n] = '\0';
	return 0;
}

int kst_getpeername(int fd, struct sockaddr_storage *ss)
{
	socklen_t len = sizeof(*ss);

	memset(ss, 0, sizeof(*ss));
	return getpeername(fd, (struct sockaddr *)ss, &len) ? errno : 0;
}

int kst_getsockname(int fd, struct sockaddr_storage *ss)
{
	socklen_t len = sizeof(*ss);

	memset(ss, 0, sizeof(*ss));
	return getsockname(fd, (struct sockaddr *)ss, &len) ? errno : 0;
}

uint64_t kst_peer_cookie(int fd)
{
	uint64_t cookie = 0;

	if (kars_sock_peer_cookie(fd, &cookie, NULL))
		return 0;
	return cookie;
}

/* --- peers ------------------------------------------------------------------ */

struct peer_arg {
	struct kst_peer_opts o;
	int wfd;
};

static void report(int wfd, const struct kst_report *r)
{
	/* Smaller than PIPE_BUF: atomic. Non-blocking: a parent that stopped
	 * reading (a peer serving a loop) loses reports, never stalls us. */
	if (write(wfd, r, sizeof(*r)) < 0) {
		/* dropped */
	}
}

static void ask_orig_dst(struct kst_report *r)
{
	json_t *req = json_pack("{s:s,s:I}", "op", "orig_dst", "cookie", (json_int_t)r->cookie);
	json_t *resp = NULL;

	r->orig_ret = kst_call(req, &resp, r->orig_err, sizeof(r->orig_err));
	if (!r->orig_ret) {
		snprintf(r->orig_ip, sizeof(r->orig_ip), "%s",
			 kst_json_str(resp, "ip") ? kst_json_str(resp, "ip") : "");
		snprintf(r->orig_family, sizeof(r->orig_family), "%s",
			 kst_json_str(resp, "family") ? kst_json_str(resp, "family") : "");
		r->orig_port = (int)kst_json_int(resp, "port", -1);
	}
	json_decref(req);
	json_decref(resp);
}

static void serve_stream(struct peer_arg *a, int fd)
{
	for (;;) {
		struct kst_report r = {.kind = KST_REP_CONN};
		int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
		int n;

		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			r.kind = KST_REP_ERROR;
			r.err = errno;
			report(a->wfd, &r);
			return;
		}
		kst_getpeername(c, &r.peer);
		kst_getsockname(c, &r.local);
		r.cookie = kst_peer_cookie(c);
		if (a->o.orig_dst)
			ask_orig_dst(&r);
		if (a->o.reply && send(c, a->o.reply, strlen(a->o.reply), MSG_NOSIGNAL) < 0)
			r.err = errno;
		/* First bytes, if the client sends any before it closes. */
		n = kst_recv(c, r.data, sizeof(r.data) - 1, 1000);
		if (n > 0)
			r.data[n] = '\0';
		report(a->wfd, &r);
		close(c);
	}
}

static void serve_dgram(struct peer_arg *a, int fd, const struct sockaddr_storage *bound)
{
	for (;;) {
		struct kst_report r = {.kind = KST_REP_DGRAM};
		socklen_t flen = sizeof(r.peer);
		ssize_t n =
		    recvfrom(fd, r.data, sizeof(r.data) - 1, 0, (struct sockaddr *)&r.peer, &flen);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			r.kind = KST_REP_ERROR;
			r.err = errno;
			report(a->wfd, &r);
			return;
		}
		r.data[n] = '\0';
		/* A DNS query (all the data plane lets through to a resolver
		 * port) is reported by its question name. */
		kst_dns_qname((const uint8_t *)r.data, (size_t)n, r.data, sizeof(r.data));
		r.local = *bound;
		if (a->o.reply && sendto(fd, a->o.reply, strlen(a->o.reply), 0,
					 (struct sockaddr *)&r.peer, flen) < 0)
			r.err = errno;
		report(a->wfd, &r);
	}
}

static int peer_main(struct kst_env *env, void *arg)
{
	struct peer_arg *a = arg;
	struct kst_report r = {.kind = KST_REP_READY};
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1;

	fcntl(a->wfd, F_SETFL, O_NONBLOCK);
	if (kst_sockaddr(a->o.ip, a->o.port, &ss, &len)) {
		r.err = EINVAL;
		goto fail;
	}
	fd = socket(ss.ss_family, a->o.type | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r.err = errno;
		goto fail;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) ||
	    (a->o.type == SOCK_STREAM && listen(fd, 128))) {
		r.err = errno;
		goto fail;
	}
	report(a->wfd, &r);
	if (a->o.type == SOCK_STREAM)
		serve_stream(a, fd);
	else
		serve_dgram(a, fd, &ss);
	return 1;
fail:
	r.kind = KST_REP_ERROR;
	report(a->wfd, &r);
	return 1;
}

int kst_peer_start(struct kst_env *env, const struct kst_peer_opts *o, struct kst_peer *p)
{
	struct peer_arg a = {.o = *o};
	struct kst_report r;
	char comm[16];
	int fds[2], ret;

	p->pid = -1;
	p->rfd = -1;
	if (pipe2(fds, O_CLOEXEC))
		return -errno;
	a.wfd = fds[1];
	snprintf(comm, sizeof(comm), "kst-peer-%u", o->port);
	p->pid = kst_spawn_cg(env, o->cgroup ? o->cgroup : kst_role_cgroup(env, o->role), o->uid,
			      comm, peer_main, &a);
	close(fds[1]);
	p->rfd = kst_track_fd(env, fds[0]);
	if (p->pid < 0)
		return p->pid;
	ret = kst_peer_next(p, &r, 5000);
	if (ret)
		return ret;
	if (r.kind != KST_REP_READY) {
		printf("  peer %s:%u: %s\n", o->ip, o->port, strerror(r.err));
		return -(r.err ? r.err : EIO);
	}
	return 0;
}

int kst_listen(struct kst_env *env, int type, const char *ip, uint16_t port, const char *reply,
	       struct kst_peer *p)
{
	struct kst_peer_opts o = {.role = KST_HOST,
				  .uid = KST_ROOT,
				  .type = type,
				  .ip = ip,
				  .port = port,
				  .reply = reply};

	return kst_peer_start(env, &o, p);
}

int kst_peer_next(struct kst_peer *p, struct kst_report *r, int timeout_ms)
{
	size_t got = 0;
	uint64_t deadline = kst_now_ms() + (uint64_t)timeout_ms;

	memset(r, 0, sizeof(*r));
	if (p->rfd < 0)
		return -EBADF;
	while (got < sizeof(*r)) {
		int64_t left = (int64_t)(deadline - kst_now_ms());
		ssize_t n;
		int ret;

		if (left <= 0)
			return -ETIMEDOUT;
		ret = wait_readable(p->rfd, (int)left);
		if (ret)
			return ret;
		n = read(p->rfd, (char *)r + got, sizeof(*r) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EPIPE;
		got += (size_t)n;
	}
	return 0;
}

bool kst_peer_quiet(struct kst_peer *p, int timeout_ms)
{
	struct kst_report r;

	return kst_peer_next(p, &r, timeout_ms) == -ETIMEDOUT;
}

static int start_pair(struct kst_env *env, uint16_t port, const char *reply, bool orig,
		      struct kst_peer *p4, struct kst_peer *p6)
{
	struct kst_peer_opts o = {.role = KST_ROUTER,
				  .uid = KST_ROUTER_UID,
				  .type = SOCK_STREAM,
				  .ip = "127.0.0.1",
				  .port = port,
				  .reply = reply,
				  .orig_dst = orig};
	int ret = kst_peer_start(env, &o, p4);

	if (ret || !p6)
		return ret;
	o.ip = "::1";
	return kst_peer_start(env, &o, p6);
}

int kst_start_router(struct kst_env *env, struct kst_peer *r4, struct kst_peer *r6)
{
	return start_pair(env, KST_ROUTER_PORT, "router", false, r4, r6);
}

int kst_start_proxy(struct kst_env *env, struct kst_peer *p4, struct kst_peer *p6)
{
	return start_pair(env, KST_PROXY_PORT, "proxy", true, p4, p6);
}
