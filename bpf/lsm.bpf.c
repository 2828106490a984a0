// SPDX-License-Identifier: GPL-2.0
/* lsm.bpf.c - the BPF LSM backstop of the sandbox data plane.
 *
 * sandbox.bpf.c decides inet sockets per role cgroup, but cgroup hooks never
 * see packet, netlink or vsock sockets, AF_UNIX connects, or a socket created
 * outside a sandbox and passed in. These LSM programs close that, where `bpf`
 * is an active LSM. They are global (every task) and act only on tasks whose
 * cgroup is a sandbox role cgroup or lies below one (its ancestors looked up in
 * the same kars_cgroups map the cgroup programs read); outside sandboxes they
 * change nothing.
 *
 *   socket_create        only AF_UNIX, AF_INET/6 (no raw, no ping) and
 *                        NETLINK_ROUTE (the router also NETLINK_SOCK_DIAG);
 *                        packet, vsock, other netlink and every other
 *                        family: EPERM
 *   socket_connect/sendmsg/recvmsg
 *                        an inet or netlink socket created outside this
 *                        sandbox: EPERM; agent tasks: a connected AF_UNIX
 *                        socket whose peer is outside this sandbox: EPERM;
 *                        a socket of any other family (only a passed-in
 *                        one can be): EPERM
 *   unix_stream_connect, unix_may_send
 *                        agent tasks: an AF_UNIX peer outside this sandbox
 *                        (host daemons, karsd): EPERM
 *   file_open            agent tasks: files below a protected inode (karsd
 *                        --protect: router secrets, kars state): EACCES, by
 *                        inode, so a bind mount exposing them changes nothing
 *   inode_link, inode_rename
 *                        agent tasks: a hard link to a protected file, or
 *                        moving one out (or in, by exchange): EACCES
 *
 * Maps shared with sandbox.bpf.c (kars_cgroups, kars_stats, kars_counters,
 * kars_events) come from kars_maps.bpf.h, one definition for both objects,
 * and are reused through their pins; libbpf refuses a pinned map whose
 * definition differs (one from another kars version), so a mismatch fails
 * the load and karsd reports it, never silently.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "kars_dataplane.h"
#include "kars_maps.bpf.h"

#define EPERM  1
#define EACCES 13
#define E2BIG  7

#define AF_UNIX	   1
#define AF_INET	   2
#define AF_INET6   10
#define AF_NETLINK 16

#define SOCK_DGRAM	  2
#define SOCK_RAW	  3
#define SOCK_TYPE_MASK	  0xf
#define NETLINK_ROUTE	  0
#define NETLINK_SOCK_DIAG 4
#define IPPROTO_ICMPV6	  58

/* How deep below the cgroup root a role cgroup may be (tasks are matched
 * from the root down); how far up a socket's cgroup is walked to find its
 * role cgroup (a socket from deeper below counts as foreign: refused); how
 * far up a file's directories are walked to find a protected one. */
#define KARS_LSM_ROLE_LEVEL   16
#define KARS_LSM_CGROUP_DEPTH 8
#define KARS_LSM_PATH_DEPTH   32

char LICENSE[] SEC("license") = "GPL";

/* Protected inodes (directories or files), written by karsd. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KARS_MAX_PROTECTED);
	__type(key, struct kars_protected_key);
	__type(value, __u8);
} kars_protected SEC(".maps");

static __always_inline const struct kars_cgroup_policy *cgroup_sandbox(struct cgroup *cg)
{
	const struct kars_cgroup_policy *pol;

	for (int i = 0; i < KARS_LSM_CGROUP_DEPTH && cg; i++) {
		__u64 id = BPF_CORE_READ(cg, kn, id);

		pol = bpf_map_lookup_elem(&kars_cgroups, &id);
		if (pol)
			return pol;
		cg = BPF_CORE_READ(cg, self.parent, cgroup);
	}
	return NULL;
}

/* The sandbox of the calling task, or NULL outside every sandbox. Walked
 * from the root down, so a task however deep below its role cgroup is found
 * (as long as the role cgroup is within KARS_LSM_ROLE_LEVEL of the root). */
static __always_inline const struct kars_cgroup_policy *task_sandbox(void)
{
	const struct kars_cgroup_policy *pol;

	for (int level = 1; level <= KARS_LSM_ROLE_LEVEL; level++) {
		__u64 id = bpf_get_current_ancestor_cgroup_id(level);

		if (!id)
			break;
		pol = bpf_map_lookup_elem(&kars_cgroups, &id);
		if (pol)
			return pol;
	}
	return NULL;
}

/* The sandbox of the task that created the socket (sockets keep the cgroup
 * of their creator; accepted ones their listener's). */
static __always_inline const struct kars_cgroup_policy *sock_sandbox(struct sock *sk)
{
	return cgroup_sandbox(BPF_CORE_READ(sk, sk_cgrp_data.cgroup));
}

static __always_inline void count_denial(__u32 sandbox_id, __u8 reason)
{
	struct kars_stat_key key = {
	    .sandbox_id = sandbox_id, .verdict = KARS_VERDICT_DENY, .reason = reason};
	__u64 one = 1, *v;

	v = bpf_map_lookup_elem(&kars_stats, &key);
	if (v) {
		*v += 1;
		return;
	}
	if (bpf_map_update_elem(&kars_stats, &key, &one, BPF_NOEXIST) == -E2BIG) {
		__u32 idx = KARS_COUNTER_STATS_FULL;
		__u64 *c = bpf_map_lookup_elem(&kars_counters, &idx);

		if (c)
			*c += 1;
	}
}

/* Counts the denial and reports it as an event; returns err (negative). */
static __always_inline int deny(const struct kars_cgroup_policy *pol, __u8 hook, __u8 reason,
				__u8 family, __u8 protocol, int err)
{
	struct kars_event *e;
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	count_denial(pol->sandbox_id, reason);
	e = bpf_ringbuf_reserve(&kars_events, sizeof(*e), 0);
	if (!e) {
		__u32 idx = KARS_COUNTER_EVENT_DROPS;
		__u64 *c = bpf_map_lookup_elem(&kars_counters, &idx);

		if (c)
			*c += 1;
		return err;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = bpf_ktime_get_ns();
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->pid = (__u32)pid_tgid;
	e->tgid = pid_tgid >> 32;
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->sandbox_id = pol->sandbox_id;
	e->gen = pol->gen;
	e->role = pol->role;
	e->hook = hook;
	e->family = family;
	e->protocol = protocol;
	e->verdict = KARS_VERDICT_DENY;
	e->reason = reason;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
	return err;
}

SEC("lsm/socket_create")
int BPF_PROG(kars_lsm_socket_create, int family, int type, int protocol, int kern, int ret)
{
	const struct kars_cgroup_policy *pol;
	bool allowed;

	if (ret || kern)
		return ret;
	pol = task_sandbox();
	if (!pol)
		return 0;
	type &= SOCK_TYPE_MASK;
	switch (family) {
	case AF_UNIX:
		allowed = true;
		break;
	case AF_INET:
	case AF_INET6:
		/* Raw and ping sockets: sock_create refuses them too; this is the
		 * backstop for a cgroup the programs are not attached to. */
		allowed = type != SOCK_RAW && !(type == SOCK_DGRAM && (protocol == IPPROTO_ICMP ||
								       protocol == IPPROTO_ICMPV6));
		break;
	case AF_NETLINK:
		/* NETLINK_ROUTE: getaddrinfo(AI_ADDRCONFIG) and if_nameindex()
		 * read addresses and links with it; changing them needs
		 * CAP_NET_ADMIN. NETLINK_SOCK_DIAG for the router only: its
		 * egress proxy finds the agent's socket cookie with it. Audit,
		 * uevents, generic netlink and the rest are refused. */
		allowed = protocol == NETLINK_ROUTE ||
			  (protocol == NETLINK_SOCK_DIAG && pol->role == KARS_ROLE_ROUTER);
		break;
	default:
		/* AF_PACKET, AF_VSOCK, AF_XDP, AF_ALG, AF_KEY, AF_BLUETOOTH, ... */
		allowed = false;
	}
	if (allowed)
		return 0;
	/* Raw and ping are denied for their protocol, as sock_create says. */
	return deny(pol, KARS_HOOK_LSM_SOCKET_CREATE,
		    family == AF_INET || family == AF_INET6 ? KARS_REASON_PROTOCOL
							    : KARS_REASON_SOCKET_FAMILY,
		    (__u8)family, (__u8)protocol, -EPERM);
}

/* May a task of sandbox pol use this socket to connect or send? */
static __always_inline int check_socket_use(const struct kars_cgroup_policy *pol,
					    struct socket *sock, __u8 hook)
{
	struct sock *sk = BPF_CORE_READ(sock, sk);
	const struct kars_cgroup_policy *owner;
	__u16 family;

	if (!sk)
		return 0;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family == AF_UNIX) {
		/* A connected socket sends to its peer: judged by the peer's
		 * sandbox. Unconnected sends meet unix_may_send. */
		struct sock *peer;

		if (pol->role != KARS_ROLE_AGENT)
			return 0;
		peer = BPF_CORE_READ((struct unix_sock *)sk, peer);
		if (!peer)
			return 0;
		owner = sock_sandbox(peer);
	} else if (family == AF_INET || family == AF_INET6 || family == AF_NETLINK) {
		/* The cgroup programs judge sockets created in the sandbox;
		 * one created anywhere else carries no sandbox program. */
		owner = sock_sandbox(sk);
	} else {
		owner = NULL; /* only a socket passed in can be of another family */
	}
	if (owner && owner->sandbox_id == pol->sandbox_id)
		return 0;
	return deny(pol, hook, KARS_REASON_FOREIGN_SOCKET, (__u8)family, 0, -EPERM);
}

SEC("lsm/socket_connect")
int BPF_PROG(kars_lsm_socket_connect, struct socket *sock, struct sockaddr *address, int addrlen,
	     int ret)
{
	const struct kars_cgroup_policy *pol;
	struct sock *sk;

	if (ret)
		return ret;
	pol = task_sandbox();
	if (!pol)
		return 0;
	/* AF_UNIX connects are judged with the peer in hand
	 * (unix_stream_connect, unix_may_send). */
	sk = BPF_CORE_READ(sock, sk);
	if (sk && BPF_CORE_READ(sk, __sk_common.skc_family) == AF_UNIX)
		return 0;
	return check_socket_use(pol, sock, KARS_HOOK_LSM_CONNECT);
}

SEC("lsm/socket_sendmsg")
int BPF_PROG(kars_lsm_socket_sendmsg, struct socket *sock, struct msghdr *msg, int size, int ret)
{
	const struct kars_cgroup_policy *pol;

	if (ret)
		return ret;
	pol = task_sandbox();
	if (!pol)
		return 0;
	return check_socket_use(pol, sock, KARS_HOOK_LSM_SENDMSG);
}

/* AF_UNIX rules bind the agent only: the router is kars' own code and talks
 * to karsd (orig_dst) over its control socket. */
SEC("lsm/socket_recvmsg")
int BPF_PROG(kars_lsm_socket_recvmsg, struct socket *sock, struct msghdr *msg, int size, int flags,
	     int ret)
{
	const struct kars_cgroup_policy *pol;

	if (ret)
		return ret;
	pol = task_sandbox();
	if (!pol)
		return 0;
	return check_socket_use(pol, sock, KARS_HOOK_LSM_RECVMSG);
}

static __always_inline int check_unix_peer(struct sock *other)
{
	const struct kars_cgroup_policy *pol = task_sandbox(), *owner;

	if (!pol || pol->role != KARS_ROLE_AGENT)
		return 0;
	owner = other ? sock_sandbox(other) : NULL;
	if (owner && owner->sandbox_id == pol->sandbox_id)
		return 0;
	return deny(pol, KARS_HOOK_LSM_UNIX, KARS_REASON_FOREIGN_SOCKET, AF_UNIX, 0, -EPERM);
}

SEC("lsm/unix_stream_connect")
int BPF_PROG(kars_lsm_unix_stream_connect, struct sock *sock, struct sock *other,
	     struct sock *newsk, int ret)
{
	if (ret)
		return ret;
	return check_unix_peer(other);
}

SEC("lsm/unix_may_send")
int BPF_PROG(kars_lsm_unix_may_send, struct socket *sock, struct socket *other, int ret)
{
	if (ret)
		return ret;
	return check_unix_peer(other ? BPF_CORE_READ(other, sk) : NULL);
}

/* Whether dentry d is, or lies below, a protected inode: walked up the
 * dentries to the file system root, so the path it was reached by (a bind
 * mount elsewhere) changes nothing. */
static __always_inline bool dentry_protected(struct dentry *d)
{
	for (int i = 0; i < KARS_LSM_PATH_DEPTH && d; i++) {
		struct inode *inode = BPF_CORE_READ(d, d_inode);
		struct dentry *parent;

		if (inode) {
			struct kars_protected_key key = {
			    .dev = BPF_CORE_READ(inode, i_sb, s_dev),
			    .ino = BPF_CORE_READ(inode, i_ino),
			};

			if (bpf_map_lookup_elem(&kars_protected, &key))
				return true;
		}
		parent = BPF_CORE_READ(d, d_parent);
		if (parent == d)
			break;
		d = parent;
	}
	return false;
}

/* The agent's sandbox, or NULL for every other task. */
static __always_inline const struct kars_cgroup_policy *agent_sandbox(void)
{
	const struct kars_cgroup_policy *pol = task_sandbox();

	return pol && pol->role == KARS_ROLE_AGENT ? pol : NULL;
}

SEC("lsm/file_open")
int BPF_PROG(kars_lsm_file_open, struct file *file, int ret)
{
	const struct kars_cgroup_policy *pol;

	if (ret)
		return ret;
	pol = agent_sandbox();
	if (!pol || !dentry_protected(BPF_CORE_READ(file, f_path.dentry)))
		return 0;
	return deny(pol, KARS_HOOK_LSM_FILE_OPEN, KARS_REASON_PROTECTED_FILE, 0, 0, -EACCES);
}

/* A hard link to a protected file, or the file renamed out of its protected
 * directory, would be a path to it that no longer passes a protected inode:
 * an agent task (root in the agent cgroup has CAP_FOWNER, which lets it past
 * fs.protected_hardlinks) may do neither. */
SEC("lsm/inode_link")
int BPF_PROG(kars_lsm_inode_link, struct dentry *old_dentry, struct inode *dir,
	     struct dentry *new_dentry, int ret)
{
	const struct kars_cgroup_policy *pol;

	if (ret)
		return ret;
	pol = agent_sandbox();
	if (!pol || !dentry_protected(old_dentry))
		return 0;
	return deny(pol, KARS_HOOK_LSM_FILE_LINK, KARS_REASON_PROTECTED_FILE, 0, 0, -EACCES);
}

SEC("lsm/inode_rename")
int BPF_PROG(kars_lsm_inode_rename, struct inode *old_dir, struct dentry *old_dentry,
	     struct inode *new_dir, struct dentry *new_dentry, int ret)
{
	const struct kars_cgroup_policy *pol;

	if (ret)
		return ret;
	pol = agent_sandbox();
	/* new_dentry too: RENAME_EXCHANGE moves it to old_dentry's place. */
	if (!pol || (!dentry_protected(old_dentry) && !dentry_protected(new_dentry)))
		return 0;
	return deny(pol, KARS_HOOK_LSM_FILE_LINK, KARS_REASON_PROTECTED_FILE, 0, 0, -EACCES);
}
