// SPDX-License-Identifier: GPL-2.0
/* sandbox.bpf.c - per-sandbox egress enforcement at the socket layer.
 *
 * Attached by karsd to every sandbox role cgroup (<sandbox>/agent and
 * <sandbox>/router). Decides each connect()/sendmsg() before a packet exists:
 *
 *   agent:  DNS (port 53, UDP or TCP)  -> rewritten to the sandbox resolver
 *           loopback, router ports     -> allowed (8443/8444 mapped to this
 *                                         sandbox's own router ports)
 *           TCP 80/443 anywhere        -> redirected to the egress proxy, the
 *                                         original destination kept by cookie
 *           anything else              -> EPERM (learn mode: allowed, recorded)
 *   router: exact ip+port+proto rules, then CIDR rules; anything else EPERM.
 *
 * getpeername/recvmsg hooks undo the rewrites as the agent sees them, and a
 * cgroup_skb egress program on the agent is the packet-level backstop for
 * what the socket hooks never see.
 *
 * Two builds of the socket-cgroup lookup exist side by side (karsd loads one):
 * on kernels with bpf_rdonly_cast (6.2+) connect/sendmsg read the socket's
 * cgroup straight from the socket; on older ones sock_create stamps it into
 * sk_storage and connect/sendmsg read the stamp.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>

#include "kars_dataplane.h"
#include "kars_maps.bpf.h"

#define AF_INET	       2
#define AF_INET6       10
#define SOCK_STREAM    1
#define SOCK_DGRAM     2
#define SOCK_RAW       3
#define E2BIG	       7
#define EEXIST	       17
#define IPPROTO_ICMPV6 58

char LICENSE[] SEC("license") = "GPL";

extern void *bpf_rdonly_cast(const void *obj__ign, __u32 btf_id__k) __ksym __weak;

/* The cgroup a socket was created in, stamped by kars_sock_create. sock_addr
 * programs have no helper for the socket's cgroup; this is it. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC | BPF_F_CLONE);
	__type(key, int);
	__type(value, __u64);
} kars_sock_cgroup SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KARS_MAX_EXACT_RULES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct kars_rule_key);
	__type(value, __u8);
} kars_rules_exact SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, KARS_MAX_CIDR_RULES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct kars_cidr_key);
	__type(value, struct kars_cidr_value);
} kars_rules_cidr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, KARS_MAX_ORIG_DST);
	__type(key, __u64);
	__type(value, struct kars_orig_dst);
} kars_orig_dst SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KARS_MAX_LEARNED);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct kars_learned_key);
	__type(value, struct kars_learned_value);
} kars_learned SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KARS_MAX_CGROUPS);
	__type(key, __u32);
	__type(value, __u32);
} kars_learn_count SEC(".maps");

/* Userspace bookkeeping (names, cgroup paths, generations), pinned with the
 * rest so that a restarted karsd knows what it enforces. No program reads it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KARS_MAX_CGROUPS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct kars_sandbox_meta);
} kars_sandboxes SEC(".maps");

/* The router's FQDN allowlist: its maps and the connect-time check. */
#include "kars_fqdn.bpf.h"

/* One connect/sendmsg/packet being decided. Addresses are v4-mapped IPv6. */
struct decision {
	__u8 addr[16];
	__u16 port;
	__u8 proto; /* IPPROTO_TCP, IPPROTO_UDP, or the raw protocol number */
	__u8 verdict;
	__u8 reason;
	__u8 new_addr[16];
	__u16 new_port;
	__u8 fqdn; /* a learned FQDN entry names the destination (router) */
};

static __always_inline void count(enum kars_counter which)
{
	__u32 idx = which;
	__u64 *v = bpf_map_lookup_elem(&kars_counters, &idx);

	if (v)
		*v += 1;
}

static __always_inline void count_verdict(__u32 sandbox_id, __u8 verdict, __u8 reason)
{
	struct kars_stat_key key = {.sandbox_id = sandbox_id, .verdict = verdict, .reason = reason};
	__u64 one = 1, *v;

	v = bpf_map_lookup_elem(&kars_stats, &key);
	if (v) {
		*v += 1;
		return;
	}
	if (bpf_map_update_elem(&kars_stats, &key, &one, BPF_NOEXIST) == -E2BIG)
		count(KARS_COUNTER_STATS_FULL);
}

static __always_inline void addr_set_v4(__u8 *addr, __u32 v4_be)
{
	__builtin_memset(addr, 0, 10);
	addr[10] = 0xff;
	addr[11] = 0xff;
	__builtin_memcpy(addr + 12, &v4_be, 4);
}

static __always_inline bool addr_is_v4(const __u8 *addr)
{
	__u32 w0, w1, w2;

	__builtin_memcpy(&w0, addr, 4);
	__builtin_memcpy(&w1, addr + 4, 4);
	__builtin_memcpy(&w2, addr + 8, 4);
	return w0 == 0 && w1 == 0 && w2 == bpf_htonl(0x0000ffff);
}

/* Loopback, or an unspecified address: connect() to 0.0.0.0 or :: reaches
 * the local host just as 127.0.0.1 does. */
static __always_inline bool addr_is_local(const __u8 *addr)
{
	__u32 w[4];

	__builtin_memcpy(w, addr, 16);
	if (addr_is_v4(addr))
		return addr[12] == 127 || w[3] == 0;
	return w[0] == 0 && w[1] == 0 && w[2] == 0 && (w[3] == 0 || w[3] == bpf_htonl(1));
}

static __always_inline bool addr_eq(const __u8 *a, const __u8 *b)
{
	__u64 a0, a1, b0, b1;

	__builtin_memcpy(&a0, a, 8);
	__builtin_memcpy(&a1, a + 8, 8);
	__builtin_memcpy(&b0, b, 8);
	__builtin_memcpy(&b1, b + 8, 8);
	return a0 == b0 && a1 == b1;
}

/* The address of the loopback service for a socket of this kind. */
static __always_inline void addr_set_loopback(__u8 *addr, bool v4)
{
	if (v4) {
		addr_set_v4(addr, bpf_htonl(0x7f000001));
		return;
	}
	__builtin_memset(addr, 0, 15);
	addr[15] = 1;
}

/* The sandbox resolver for a socket of this kind; false when there is none. */
static __always_inline bool resolver_addr(const struct kars_cgroup_policy *pol, bool v4, __u8 *out)
{
	if (v4) {
		addr_set_v4(out, pol->resolver4);
		return pol->has_resolver4;
	}
	__builtin_memcpy(out, pol->resolver6, 16);
	return pol->has_resolver6;
}

static __always_inline bool rule_allows(__u32 gen, struct decision *d)
{
	struct kars_rule_key key = {.gen = gen, .proto = d->proto, .port = d->port};
	struct kars_cidr_key ckey = {.prefixlen = 32 + 128, .gen = gen};
	struct kars_cidr_value *ranges;

	__builtin_memcpy(key.addr, d->addr, 16);
	if (bpf_map_lookup_elem(&kars_rules_exact, &key)) {
		d->reason = KARS_REASON_RULE_EXACT;
		return true;
	}
	__builtin_memcpy(ckey.addr, d->addr, 16);
	ranges = bpf_map_lookup_elem(&kars_rules_cidr, &ckey);
	if (!ranges)
		return false;
#pragma unroll
	for (int i = 0; i < KARS_CIDR_PORT_RANGES; i++) {
		struct kars_port_range *r = &ranges->ranges[i];

		if (r->proto == d->proto && d->port >= r->lo && d->port <= r->hi) {
			d->reason = KARS_REASON_RULE_CIDR;
			return true;
		}
	}
	return false;
}

static __always_inline void learn(const struct kars_cgroup_policy *pol, const struct decision *d)
{
	struct kars_learned_key key = {
	    .sandbox_id = pol->sandbox_id, .proto = d->proto, .role = pol->role, .port = d->port};
	struct kars_learned_value fresh = {}, *seen;
	__u32 sandbox_id = pol->sandbox_id, zero = 0, *n;
	__u64 now = bpf_ktime_get_ns();

	__builtin_memcpy(key.addr, d->addr, 16);
	seen = bpf_map_lookup_elem(&kars_learned, &key);
	if (seen) {
		seen->last_ns = now;
		__sync_fetch_and_add(&seen->count, 1);
		return;
	}
	n = bpf_map_lookup_elem(&kars_learn_count, &sandbox_id);
	if (!n) {
		bpf_map_update_elem(&kars_learn_count, &sandbox_id, &zero, BPF_NOEXIST);
		n = bpf_map_lookup_elem(&kars_learn_count, &sandbox_id);
		if (!n)
			return;
	}
	if (*n >= pol->learn_max) {
		count(KARS_COUNTER_LEARN_FULL);
		return;
	}
	fresh.first_ns = now;
	fresh.last_ns = now;
	fresh.count = 1;
	if (bpf_map_update_elem(&kars_learned, &key, &fresh, BPF_NOEXIST) == 0)
		__sync_fetch_and_add(n, 1);
	else
		count(KARS_COUNTER_LEARN_FULL);
}

/* Turns a deny into a learn-mode allow where the policy says so. Identity
 * failures (unknown cgroup, wrong UID) are never softened. */
static __always_inline void deny(const struct kars_cgroup_policy *pol, struct decision *d,
				 __u8 reason)
{
	d->reason = reason;
	d->verdict = KARS_VERDICT_DENY;
	if (pol->mode == KARS_MODE_LEARN && reason != KARS_REASON_UID_MISMATCH) {
		d->verdict = KARS_VERDICT_LEARN;
		learn(pol, d);
	}
}

static __always_inline void decide_agent(const struct kars_cgroup_policy *pol, struct decision *d)
{
	bool v4 = addr_is_v4(d->addr);

	__builtin_memcpy(d->new_addr, d->addr, 16);
	d->new_port = d->port;
	d->verdict = KARS_VERDICT_ALLOW;

	/* Already the resolver: a send on a connected v4-mapped socket runs
	 * sendmsg4 again with the rewritten address. */
	if ((d->proto == IPPROTO_UDP || d->proto == IPPROTO_TCP) &&
	    resolver_addr(pol, v4, d->new_addr) && addr_eq(d->new_addr, d->addr) &&
	    d->port == pol->resolver_port) {
		d->reason = KARS_REASON_DNS;
		return;
	}
	__builtin_memcpy(d->new_addr, d->addr, 16);
	if (d->port == KARS_DNS_PORT && (d->proto == IPPROTO_UDP || d->proto == IPPROTO_TCP)) {
		if (!resolver_addr(pol, v4, d->new_addr)) {
			deny(pol, d, KARS_REASON_NO_RESOLVER);
			return;
		}
		d->new_port = pol->resolver_port;
		d->reason = KARS_REASON_DNS;
		if (!addr_eq(d->new_addr, d->addr) || d->new_port != d->port)
			d->verdict = KARS_VERDICT_REWRITE;
		return;
	}
	if (addr_is_local(d->addr)) {
		if (d->proto != IPPROTO_TCP) {
			deny(pol, d, KARS_REASON_LOOPBACK_PORT);
			return;
		}
		if (d->port == KARS_CONTRACT_ROUTER_PORT || d->port == pol->router_port) {
			d->reason = KARS_REASON_ROUTER_PORT;
			d->new_port = pol->router_port;
		} else if (d->port == KARS_CONTRACT_PROXY_PORT || d->port == pol->proxy_port) {
			d->reason = KARS_REASON_PROXY_PORT;
			d->new_port = pol->proxy_port;
		} else {
			deny(pol, d, KARS_REASON_LOOPBACK_PORT);
			return;
		}
		addr_set_loopback(d->new_addr, v4);
		if (!addr_eq(d->new_addr, d->addr) || d->new_port != d->port)
			d->verdict = KARS_VERDICT_REWRITE;
		return;
	}
	if (d->proto == IPPROTO_TCP && (d->port == 80 || d->port == 443)) {
		addr_set_loopback(d->new_addr, v4);
		d->new_port = pol->proxy_port;
		d->verdict = KARS_VERDICT_REDIRECT;
		d->reason = KARS_REASON_HTTP_REDIRECT;
		return;
	}
	deny(pol, d,
	     (d->proto == IPPROTO_TCP || d->proto == IPPROTO_UDP) ? KARS_REASON_NOT_ALLOWED
								  : KARS_REASON_PROTOCOL);
}

static __always_inline void decide_router(const struct kars_cgroup_policy *pol, struct decision *d)
{
	__u8 reason;

	__builtin_memcpy(d->new_addr, d->addr, 16);
	d->new_port = d->port;
	d->verdict = KARS_VERDICT_ALLOW;
	if (d->proto != IPPROTO_TCP && d->proto != IPPROTO_UDP) {
		deny(pol, d, KARS_REASON_PROTOCOL);
		return;
	}
	if (rule_allows(pol->gen, d))
		return;
	/* Then the addresses learned from answers for allowed names. */
	reason = fqdn_check(pol->sandbox_id, d->addr, d->proto, d->port, &d->fqdn);
	if (reason == KARS_REASON_RULE_FQDN)
		d->reason = reason;
	else
		deny(pol, d, reason);
}

/* The event of one decision. in_task: the hook runs in the task that made
 * the call (socket hooks), so pid, uid and comm are that task's. The packet
 * backstop passes false: a packet can leave in any context (a softirq, a
 * retransmit timer), and before 6.10 cgroup_skb programs may not call the
 * current-task helpers at all (6.1's verifier: "unknown func"). */
static __always_inline void fill_event(struct kars_event *e, const struct kars_cgroup_policy *pol,
				       __u64 cgroup_id, __u64 cookie, __u8 hook, __u8 family,
				       const struct decision *d, bool in_task)
{
	__u64 pid_tgid = 0, uid_gid = 0;

	if (in_task) {
		pid_tgid = bpf_get_current_pid_tgid();
		uid_gid = bpf_get_current_uid_gid();
	}
	e->ts_ns = bpf_ktime_get_ns();
	e->cgroup_id = cgroup_id;
	e->cookie = cookie;
	e->pid = (__u32)pid_tgid;
	e->tgid = pid_tgid >> 32;
	e->uid = (__u32)uid_gid;
	e->sandbox_id = pol ? pol->sandbox_id : 0;
	e->gen = pol ? pol->gen : 0;
	e->role = pol ? pol->role : KARS_ROLE_NONE;
	e->hook = hook;
	e->family = family;
	e->protocol = d->proto;
	e->verdict = d->verdict;
	e->reason = d->reason;
	e->orig_port = d->port;
	e->new_port = d->new_port;
	e->pad = 0;
	__builtin_memcpy(e->orig_addr, d->addr, 16);
	__builtin_memcpy(e->new_addr, d->new_addr, 16);
	if (in_task)
		bpf_get_current_comm(e->comm, sizeof(e->comm));
	else
		__builtin_memset(e->comm, 0, sizeof(e->comm));
}

static __always_inline void emit_event(const struct kars_cgroup_policy *pol, __u64 cgroup_id,
				       __u64 cookie, __u8 hook, __u8 family,
				       const struct decision *d, bool in_task)
{
	struct kars_event *e = bpf_ringbuf_reserve(&kars_events, sizeof(*e), 0);

	if (!e) {
		count(KARS_COUNTER_EVENT_DROPS);
		return;
	}
	fill_event(e, pol, cgroup_id, cookie, hook, family, d, in_task);
	bpf_ringbuf_submit(e, 0);
}

static __always_inline void emit(const struct kars_cgroup_policy *pol, __u64 cgroup_id,
				 __u64 cookie, __u8 hook, __u8 family, const struct decision *d)
{
	emit_event(pol, cgroup_id, cookie, hook, family, d, true);
}

/* A router verdict a learned FQDN entry took part in (allowed by it, or
 * denied with one for the address): the event carries the entry's name. */
static __always_inline void emit_fqdn(const struct kars_cgroup_policy *pol, __u64 cgroup_id,
				      __u64 cookie, __u8 hook, __u8 family,
				      const struct decision *d)
{
	struct {
		struct kars_event e;
		struct kars_fqdn_event_tail t;
	} *r = bpf_ringbuf_reserve(&kars_events, sizeof(*r), 0);

	if (!r) {
		count(KARS_COUNTER_EVENT_DROPS);
		return;
	}
	fill_event(&r->e, pol, cgroup_id, cookie, hook, family, d, true);
	fqdn_event_tail(pol->sandbox_id, d->addr, &r->t);
	bpf_ringbuf_submit(r, 0);
}

/* The protocol as rules name it. MPTCP (262, which does not fit the rules'
 * byte) is TCP for policy; SCTP and anything else keep their own number and
 * meet no TCP or UDP rule. */
static __always_inline __u8 sock_proto(const struct bpf_sock_addr *ctx)
{
	if (ctx->type == SOCK_STREAM &&
	    (ctx->protocol == IPPROTO_TCP || ctx->protocol == IPPROTO_MPTCP))
		return IPPROTO_TCP;
	if (ctx->type == SOCK_DGRAM &&
	    (ctx->protocol == IPPROTO_UDP || ctx->protocol == IPPROTO_UDPLITE))
		return IPPROTO_UDP;
	return (__u8)ctx->protocol;
}

/* The socket's cgroup: the cgroup of the task that created it, which is
 * also the cgroup whose programs the kernel runs for it. */
static __always_inline __u64 sock_cgroup_id(struct bpf_sock *sk, bool by_btf)
{
	__u64 *stamp;

	if (by_btf) {
		struct sock *s = bpf_rdonly_cast(sk, bpf_core_type_id_kernel(struct sock));

		return s->sk_cgrp_data.cgroup->kn->id;
	}
	/* Sockets the kernel creates for a task (MPTCP subflows) and sockets
	 * created before our programs were attached have no stamp: they are
	 * judged by the calling task's cgroup, which must then be a sandbox
	 * cgroup itself or the call is denied. */
	stamp = bpf_sk_storage_get(&kars_sock_cgroup, sk, 0, 0);
	return stamp ? *stamp : bpf_get_current_cgroup_id();
}

/* Runs the policy for one sock_addr hook. Returns 1 (go on) or 0 (EPERM) and
 * leaves the destination to write back in d. */
static __always_inline int decide_sock(struct bpf_sock_addr *ctx, struct decision *d, __u8 hook,
				       __u8 family, bool by_btf)
{
	struct kars_cgroup_policy *pol;
	struct bpf_sock *sk = ctx->sk;
	__u64 cgroup_id, cookie;
	__u32 uid;

	if (!sk)
		return 0;
	cgroup_id = sock_cgroup_id(sk, by_btf);
	cookie = bpf_get_socket_cookie(ctx);
	d->proto = sock_proto(ctx);
	pol = bpf_map_lookup_elem(&kars_cgroups, &cgroup_id);
	if (!pol) {
		d->verdict = KARS_VERDICT_DENY;
		d->reason = KARS_REASON_UNKNOWN_CGROUP;
		__builtin_memcpy(d->new_addr, d->addr, 16);
		d->new_port = d->port;
		count_verdict(0, d->verdict, d->reason);
		emit(NULL, cgroup_id, cookie, hook, family, d);
		return 0;
	}
	uid = (__u32)bpf_get_current_uid_gid();
	if (pol->role == KARS_ROLE_ROUTER && pol->uid != KARS_UID_ANY && uid != pol->uid) {
		__builtin_memcpy(d->new_addr, d->addr, 16);
		d->new_port = d->port;
		deny(pol, d, KARS_REASON_UID_MISMATCH);
	} else if (pol->role == KARS_ROLE_AGENT) {
		decide_agent(pol, d);
	} else {
		decide_router(pol, d);
	}
	count_verdict(pol->sandbox_id, d->verdict, d->reason);
	if (d->fqdn)
		emit_fqdn(pol, cgroup_id, cookie, hook, family, d);
	else if (d->verdict != KARS_VERDICT_ALLOW)
		emit(pol, cgroup_id, cookie, hook, family, d);
	if (d->verdict == KARS_VERDICT_REWRITE || d->verdict == KARS_VERDICT_REDIRECT) {
		struct kars_orig_dst orig = {
		    .port = d->port,
		    .family = family,
		    .verdict = d->verdict,
		    .sandbox_id = pol->sandbox_id,
		    .agent_cookie = cookie,
		    .cgroup_id = cgroup_id,
		};

		__builtin_memcpy(orig.addr, d->addr, 16);
		__builtin_memcpy(orig.new_addr, d->new_addr, 16);
		orig.new_port = d->new_port;
		if (bpf_map_update_elem(&kars_orig_dst, &cookie, &orig, BPF_ANY)) {
			count(KARS_COUNTER_ORIG_FULL);
			/* A redirect whose destination the proxy cannot learn is useless
			 * to it and unsafe to allow: fail closed. */
			if (d->verdict == KARS_VERDICT_REDIRECT)
				return 0;
		}
	}
	return d->verdict == KARS_VERDICT_DENY ? 0 : 1;
}

static __always_inline int sock4(struct bpf_sock_addr *ctx, __u8 hook, bool by_btf)
{
	struct decision d = {};
	__u32 new_ip4;

	addr_set_v4(d.addr, ctx->user_ip4);
	d.port = bpf_ntohs((__u16)ctx->user_port);
	if (!decide_sock(ctx, &d, hook, AF_INET, by_btf))
		return 0;
	__builtin_memcpy(&new_ip4, d.new_addr + 12, 4);
	ctx->user_ip4 = new_ip4;
	ctx->user_port = bpf_htons(d.new_port);
	return 1;
}

static __always_inline int sock6(struct bpf_sock_addr *ctx, __u8 hook, bool by_btf)
{
	struct decision d = {};
	__u32 w[4];

	w[0] = ctx->user_ip6[0];
	w[1] = ctx->user_ip6[1];
	w[2] = ctx->user_ip6[2];
	w[3] = ctx->user_ip6[3];
	__builtin_memcpy(d.addr, w, 16);
	d.port = bpf_ntohs((__u16)ctx->user_port);
	if (!decide_sock(ctx, &d, hook, AF_INET6, by_btf))
		return 0;
	__builtin_memcpy(w, d.new_addr, 16);
	ctx->user_ip6[0] = w[0];
	ctx->user_ip6[1] = w[1];
	ctx->user_ip6[2] = w[2];
	ctx->user_ip6[3] = w[3];
	ctx->user_port = bpf_htons(d.new_port);
	return 1;
}

/* Refuses, at socket(), what no sandbox role may hold: raw IP sockets and ICMP
 * ping sockets (the socket hooks never see a raw socket's packets, nor an
 * unconnected ping socket's), and any socket in an unknown cgroup below a
 * sandbox. Packet, netlink and vsock sockets are not inet sockets and never
 * reach this hook; the LSM programs cover them where BPF LSM is active.
 * Returns 1 when the socket may be created. */
static __always_inline int vet_socket(struct bpf_sock *sk, __u64 cgroup_id)
{
	struct kars_cgroup_policy *pol = bpf_map_lookup_elem(&kars_cgroups, &cgroup_id);
	struct decision d = {};
	bool ping = sk->type == SOCK_DGRAM &&
		    (sk->protocol == IPPROTO_ICMP || sk->protocol == IPPROTO_ICMPV6);

	d.proto = (__u8)sk->protocol;
	if (pol && sk->type != SOCK_RAW && !ping)
		return 1;
	d.verdict = KARS_VERDICT_DENY;
	d.reason = pol ? KARS_REASON_PROTOCOL : KARS_REASON_UNKNOWN_CGROUP;
	count_verdict(pol ? pol->sandbox_id : 0, d.verdict, d.reason);
	emit(pol, cgroup_id, 0, KARS_HOOK_SOCK_CREATE, (__u8)sk->family, &d);
	return 0;
}

/* sock_create runs in the creating task, so its cgroup is the socket's. */
SEC("cgroup/sock_create")
int kars_sock_create_btf(struct bpf_sock *sk)
{
	return vet_socket(sk, bpf_get_current_cgroup_id());
}

/* Without bpf_rdonly_cast: also stamp the socket's cgroup for the verdict
 * hooks (sk_storage, cloned to accepted sockets). */
SEC("cgroup/sock_create")
int kars_sock_create(struct bpf_sock *sk)
{
	__u64 cgroup_id = bpf_get_current_cgroup_id();
	__u64 *stamp;

	if (!vet_socket(sk, cgroup_id))
		return 0;
	stamp = bpf_sk_storage_get(&kars_sock_cgroup, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!stamp)
		return 0;
	*stamp = cgroup_id;
	return 1;
}

/* The four verdict hooks, once per socket-cgroup lookup (see the top). */
#define VERDICT_PROGRAMS(suffix, by_btf)                                                           \
	SEC("cgroup/connect4")                                                                     \
	int kars_connect4##suffix(struct bpf_sock_addr *ctx)                                       \
	{                                                                                          \
		return sock4(ctx, KARS_HOOK_CONNECT4, by_btf);                                     \
	}                                                                                          \
	SEC("cgroup/connect6")                                                                     \
	int kars_connect6##suffix(struct bpf_sock_addr *ctx)                                       \
	{                                                                                          \
		return sock6(ctx, KARS_HOOK_CONNECT6, by_btf);                                     \
	}                                                                                          \
	SEC("cgroup/sendmsg4")                                                                     \
	int kars_sendmsg4##suffix(struct bpf_sock_addr *ctx)                                       \
	{                                                                                          \
		return sock4(ctx, KARS_HOOK_SENDMSG4, by_btf);                                     \
	}                                                                                          \
	SEC("cgroup/sendmsg6")                                                                     \
	int kars_sendmsg6##suffix(struct bpf_sock_addr *ctx)                                       \
	{                                                                                          \
		return sock6(ctx, KARS_HOOK_SENDMSG6, by_btf);                                     \
	}

VERDICT_PROGRAMS(, false)
VERDICT_PROGRAMS(_btf, true)

/* getpeername and recvmsg: show the agent the address it dialled, so that a
 * rewrite stays invisible (resolvers compare a reply's source with the server
 * they asked). Only the address this socket was rewritten to is translated
 * back: a datagram from anywhere else keeps its true source. */
static __always_inline void restore(struct bpf_sock_addr *ctx, bool v6)
{
	__u64 cookie = bpf_get_socket_cookie(ctx);
	struct kars_orig_dst *orig = bpf_map_lookup_elem(&kars_orig_dst, &cookie);
	__u8 seen[16];
	__u32 w[4];

	/* Addresses are compared in v4-mapped form: a v4-mapped IPv6 socket's
	 * DNS goes out through sendmsg4 and comes back through recvmsg6. */
	if (!orig || (!v6 && !addr_is_v4(orig->addr)))
		return;
	if (v6) {
		w[0] = ctx->user_ip6[0];
		w[1] = ctx->user_ip6[1];
		w[2] = ctx->user_ip6[2];
		w[3] = ctx->user_ip6[3];
		__builtin_memcpy(seen, w, 16);
	} else {
		addr_set_v4(seen, ctx->user_ip4);
	}
	if (!addr_eq(seen, orig->new_addr) || bpf_ntohs((__u16)ctx->user_port) != orig->new_port)
		return;
	__builtin_memcpy(w, orig->addr, 16);
	if (v6) {
		ctx->user_ip6[0] = w[0];
		ctx->user_ip6[1] = w[1];
		ctx->user_ip6[2] = w[2];
		ctx->user_ip6[3] = w[3];
	} else {
		ctx->user_ip4 = w[3];
	}
	ctx->user_port = bpf_htons(orig->port);
}

SEC("cgroup/getpeername4")
int kars_getpeername4(struct bpf_sock_addr *ctx)
{
	restore(ctx, false);
	return 1;
}

SEC("cgroup/getpeername6")
int kars_getpeername6(struct bpf_sock_addr *ctx)
{
	restore(ctx, true);
	return 1;
}

SEC("cgroup/recvmsg4")
int kars_recvmsg4(struct bpf_sock_addr *ctx)
{
	restore(ctx, false);
	return 1;
}

SEC("cgroup/recvmsg6")
int kars_recvmsg6(struct bpf_sock_addr *ctx)
{
	restore(ctx, true);
	return 1;
}

/* Packet-level backstop on the agent's cgroup: every packet an agent socket
 * sends passes here, whatever the socket hooks saw. All the agent's allowed
 * traffic has been rewritten to loopback (its router) or to its resolver, so
 * anything else is dropped. (The router has no packet backstop: its raw and
 * ping sockets are refused at creation, and every other socket of it is
 * decided at connect/sendmsg.) */
SEC("cgroup_skb/egress")
int kars_skb_egress(struct __sk_buff *skb)
{
	struct kars_cgroup_policy *pol;
	struct decision d = {};
	__u64 cgroup_id = bpf_skb_cgroup_id(skb);
	__u32 l4_off = 0;
	__u8 family;
	__u16 ports[2];

	pol = bpf_map_lookup_elem(&kars_cgroups, &cgroup_id);
	if (skb->protocol == bpf_htons(0x0800)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
			return 0;
		family = AF_INET;
		addr_set_v4(d.addr, ip.daddr);
		d.proto = ip.protocol;
		if (ip.frag_off & bpf_htons(0x1fff))
			l4_off = 0; /* non-first fragment: no ports */
		else
			l4_off = (__u32)ip.ihl * 4;
	} else if (skb->protocol == bpf_htons(0x86DD)) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)))
			return 0;
		family = AF_INET6;
		__builtin_memcpy(d.addr, &ip6.daddr, 16);
		d.proto = ip6.nexthdr;
		l4_off = sizeof(ip6);
	} else {
		return pol ? 0 : 1;
	}
	if (addr_is_local(d.addr))
		return 1;
	if ((d.proto == IPPROTO_TCP || d.proto == IPPROTO_UDP) && l4_off) {
		if (bpf_skb_load_bytes(skb, l4_off, ports, sizeof(ports)))
			return 0;
		d.port = bpf_ntohs(ports[1]);
	}
	__builtin_memcpy(d.new_addr, d.addr, 16);
	d.new_port = d.port;
	d.verdict = KARS_VERDICT_ALLOW;
	if (!pol) {
		d.verdict = KARS_VERDICT_DENY;
		d.reason = KARS_REASON_UNKNOWN_CGROUP;
	} else if ((d.proto == IPPROTO_TCP || d.proto == IPPROTO_UDP) && !l4_off) {
		deny(pol, &d, KARS_REASON_FRAGMENT);
	} else if (pol->role != KARS_ROLE_AGENT || pol->mode == KARS_MODE_LEARN) {
		/* Not attached to router cgroups. In learn mode the socket hooks
		 * allowed and recorded the flow already: no second record, and no
		 * event, per packet. */
		return 1;
	} else {
		__u8 resolver[16];
		bool to_resolver =
		    resolver_addr(pol, addr_is_v4(d.addr), resolver) && addr_eq(d.addr, resolver);

		if (!(to_resolver && d.port == pol->resolver_port &&
		      (d.proto == IPPROTO_UDP || d.proto == IPPROTO_TCP)))
			deny(pol, &d,
			     (d.proto == IPPROTO_TCP || d.proto == IPPROTO_UDP)
				 ? KARS_REASON_NOT_ALLOWED
				 : KARS_REASON_PROTOCOL);
		else
			d.reason = KARS_REASON_DNS;
	}
	/* Packets the socket hooks already decided are allowed here without a
	 * count: verdict counters count decisions, not packets. */
	if (d.verdict == KARS_VERDICT_ALLOW)
		return 1;
	count_verdict(pol ? pol->sandbox_id : 0, d.verdict, d.reason);
	emit_event(pol, cgroup_id, 0, KARS_HOOK_SKB_EGRESS, family, &d, false);
	return d.verdict == KARS_VERDICT_DENY ? 0 : 1;
}

/* The DNS query check: a second cgroup_skb egress program, in its own file. */
#include "kars_dns.bpf.h"
/* The router's FQDN allowlist: its queries recorded, its answers snooped. */
#include "kars_dns_answer.bpf.h"
