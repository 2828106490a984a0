/* sock_diag.c - see sock_diag.h. One exact-match SOCK_DIAG_BY_FAMILY request
 * for the peer's 4-tuple (its source is our peer, its destination is us). */
#include "sock_diag.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void put_addr(__be32 out[4], const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		out[0] = ((const struct sockaddr_in *)ss)->sin_addr.s_addr;
	else
		memcpy(out, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
}

static __be16 port_of(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET ? ((const struct sockaddr_in *)ss)->sin_port
					: ((const struct sockaddr_in6 *)ss)->sin6_port;
}

int kars_sock_peer_lookup(int fd, struct kars_sock_peer *out, struct kars_err *err)
{
	struct sockaddr_storage local, peer;
	socklen_t llen = sizeof(local), plen = sizeof(peer);
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	} msg = {
	    .nlh = {.nlmsg_len = sizeof(msg),
		    .nlmsg_type = SOCK_DIAG_BY_FAMILY,
		    .nlmsg_flags = NLM_F_REQUEST},
	    .req = {.sdiag_protocol = IPPROTO_TCP, .idiag_states = ~0u},
	};
	union {
		struct nlmsghdr nlh;
		char buf[8192];
	} reply;
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	struct inet_diag_msg *diag;
	ssize_t n;
	int nl, ret = 0;

	if (getsockname(fd, (struct sockaddr *)&local, &llen) ||
	    getpeername(fd, (struct sockaddr *)&peer, &plen))
		return kars_err_set(err, errno, "peer of fd %d: %s", fd, strerror(errno));
	if (local.ss_family != peer.ss_family ||
	    (local.ss_family != AF_INET && local.ss_family != AF_INET6))
		return kars_err_set(err, EAFNOSUPPORT, "fd %d is not a TCP/IP connection", fd);
	/* The peer's socket: its source is our peer, its destination is us. */
	msg.req.sdiag_family = (__u8)local.ss_family;
	put_addr(msg.req.id.idiag_src, &peer);
	put_addr(msg.req.id.idiag_dst, &local);
	msg.req.id.idiag_sport = port_of(&peer);
	msg.req.id.idiag_dport = port_of(&local);
	msg.req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
	msg.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;

	nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (nl < 0)
		return kars_err_set(err, errno, "sock_diag socket: %s", strerror(errno));
	if (sendto(nl, &msg, sizeof(msg), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0) {
		ret = kars_err_set(err, errno, "sock_diag request: %s", strerror(errno));
		goto out;
	}
	n = recv(nl, &reply, sizeof(reply), 0);
	if (n < 0) {
		ret = kars_err_set(err, errno, "sock_diag reply: %s", strerror(errno));
		goto out;
	}
	if (!NLMSG_OK(&reply.nlh, (size_t)n)) {
		ret = kars_err_set(err, EPROTO, "sock_diag: malformed reply");
		goto out;
	}
	if (reply.nlh.nlmsg_type == NLMSG_ERROR) {
		const struct nlmsgerr *e = NLMSG_DATA(&reply.nlh);
		int code = e->error ? -e->error : ENOENT;

		ret = kars_err_set(err, code, "sock_diag: no local socket at the other end: %s",
				   strerror(code));
		goto out;
	}
	if (reply.nlh.nlmsg_type != SOCK_DIAG_BY_FAMILY ||
	    reply.nlh.nlmsg_len < NLMSG_LENGTH(sizeof(*diag))) {
		ret = kars_err_set(err, EPROTO, "sock_diag: unexpected reply type %u",
				   reply.nlh.nlmsg_type);
		goto out;
	}
	diag = NLMSG_DATA(&reply.nlh);
	out->cookie = (uint64_t)diag->id.idiag_cookie[0] | (uint64_t)diag->id.idiag_cookie[1] << 32;
	out->uid = diag->idiag_uid;
out:
	close(nl);
	return ret;
}

int kars_sock_peer_cookie(int fd, uint64_t *cookie, struct kars_err *err)
{
	struct kars_sock_peer peer;
	int ret = kars_sock_peer_lookup(fd, &peer, err);

	if (!ret)
		*cookie = peer.cookie;
	return ret;
}
