/* kars_dataplane.h - map keys, values and events shared by sandbox.bpf.c and karsd.
 *
 * Layout rules: fixed-width fields only, explicit padding, no pointers, so the
 * same bytes mean the same thing on both sides of the bpf() syscall.
 *
 * Keying (docs/dataplane.md has the full story):
 *  - Programs are attached to each sandbox role cgroup (<sandbox>/agent,
 *    <sandbox>/router). The kernel picks programs by the *socket's* cgroup (the
 *    cgroup of the task that created it), so the programs look policy up by the
 *    socket's cgroup id too: program selection and policy lookup never disagree.
 *    sock_addr programs have no helper for it: on kernels with bpf_rdonly_cast
 *    they read it from the socket (sk->sk_cgrp_data), on older ones a
 *    cgroup/sock_create program stamps it on each socket (sk_storage) and the
 *    other hooks read the stamp. cgroup_skb uses bpf_skb_cgroup_id().
 *  - A socket whose cgroup has no entry although our program runs for it (a
 *    cgroup created below a sandbox cgroup) is denied: fail closed.
 *  - The UID is a second key: a role may name its UID, and a task of another UID
 *    using a socket of that cgroup is denied (the router's egress belongs to the
 *    router's UID only).
 *  - Rule maps are keyed by a policy generation. A new policy is written under a
 *    fresh generation and becomes visible with one update of the cgroup entry, so
 *    no connect() ever sees half a policy.
 */
#ifndef KARS_DATAPLANE_H
#define KARS_DATAPLANE_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* The runtime contract: what every agent dials, in a pod or on a host. */
#define KARS_CONTRACT_ROUTER_PORT 8443
#define KARS_CONTRACT_PROXY_PORT  8444
#define KARS_DNS_PORT		  53

#define KARS_UID_ANY 0xffffffffu

/* Map sizes. Userspace refuses policies that would not fit. */
#define KARS_MAX_CGROUPS       4096
#define KARS_MAX_EXACT_RULES   262144
#define KARS_MAX_CIDR_RULES    16384
#define KARS_CIDR_PORT_RANGES  8
#define KARS_MAX_ORIG_DST      65536
#define KARS_MAX_LEARNED       65536
#define KARS_DEFAULT_LEARN_MAX 1024
#define KARS_MAX_STATS	       16384
#define KARS_EVENTS_RINGBUF    (1 << 20)
#define KARS_MAX_PROTECTED     1024

enum kars_role {
	KARS_ROLE_NONE = 0,
	KARS_ROLE_AGENT = 1,
	KARS_ROLE_ROUTER = 2,
};

enum kars_mode {
	KARS_MODE_STRICT = 0,
	KARS_MODE_LEARN = 1,
};

enum kars_verdict {
	KARS_VERDICT_ALLOW = 0,	   /* plain allow: no event */
	KARS_VERDICT_REWRITE = 1,  /* allowed with a new destination (DNS, router port) */
	KARS_VERDICT_REDIRECT = 2, /* TCP 80/443 sent to the egress proxy */
	KARS_VERDICT_DENY = 3,
	KARS_VERDICT_LEARN = 4, /* would be denied; allowed and recorded (learn mode) */
	KARS_VERDICT__COUNT,
};

enum kars_reason {
	KARS_REASON_NONE = 0,
	KARS_REASON_RULE_EXACT = 1,	 /* matched an exact ip+port+proto rule */
	KARS_REASON_RULE_CIDR = 2,	 /* matched a CIDR rule */
	KARS_REASON_ROUTER_PORT = 3,	 /* agent to its router's API port */
	KARS_REASON_PROXY_PORT = 4,	 /* agent to its router's egress proxy */
	KARS_REASON_DNS = 5,		 /* DNS sent to the sandbox resolver */
	KARS_REASON_HTTP_REDIRECT = 6,	 /* TCP 80/443 redirected to the proxy */
	KARS_REASON_NOT_ALLOWED = 7,	 /* no rule allows it (default deny) */
	KARS_REASON_LOOPBACK_PORT = 8,	 /* loopback port that is not this sandbox's router */
	KARS_REASON_UID_MISMATCH = 9,	 /* task UID is not the role's UID */
	KARS_REASON_UNKNOWN_CGROUP = 10, /* socket cgroup below a sandbox, without policy */
	KARS_REASON_NO_RESOLVER = 11,	 /* DNS, but no resolver for this family */
	KARS_REASON_PROTOCOL = 12,	 /* protocol the role may not use (ICMP, raw IP, ...) */
	KARS_REASON_FRAGMENT = 13,	 /* non-first IP fragment (no ports to check) */
	KARS_REASON_DNS_BLOCKED = 14,	 /* DNS query for a name on the blocklist */
	KARS_REASON_DNS_MALFORMED = 15,	 /* DNS message that is not one plain query */
	KARS_REASON_DNS_TOO_LONG = 16,	 /* query name longer than the length cap */
	KARS_REASON_DNS_TOO_DEEP = 17,	 /* query name with more labels than the walk bound */
	KARS_REASON_DNS_RATE = 18,	 /* the sandbox's DNS query rate cap */
	KARS_REASON_SOCKET_FAMILY = 19,	 /* LSM: a socket family/protocol sandboxes may not open */
	KARS_REASON_FOREIGN_SOCKET =
	    20, /* LSM: a socket or AF_UNIX peer from outside the sandbox */
	KARS_REASON_PROTECTED_FILE = 21, /* LSM: a file below a protected inode (karsd --protect) */
	KARS_REASON_RULE_FQDN = 22,	 /* router: an address learned for an allowed name */
	KARS_REASON_FQDN_EXPIRED = 23,	 /* router: learned for this port, TTL + grace passed */
	KARS_REASON_FQDN_LEARNED = 24,	 /* a resolver answer's record became an entry */
	KARS_REASON_FQDN_QUOTA = 25,	 /* a record not learned: the sandbox's entry quota */
	KARS_REASON__COUNT,
};

enum kars_hook {
	KARS_HOOK_CONNECT4 = 1,
	KARS_HOOK_CONNECT6 = 2,
	KARS_HOOK_SENDMSG4 = 3,
	KARS_HOOK_SENDMSG6 = 4,
	KARS_HOOK_SKB_EGRESS = 5,
	KARS_HOOK_SOCK_CREATE = 6,
	KARS_HOOK_DNS_EGRESS = 7,	 /* cgroup_skb egress DNS check (kars_dns.bpf.h) */
	KARS_HOOK_LSM_SOCKET_CREATE = 8, /* lsm.bpf.c, global, sandbox tasks only */
	KARS_HOOK_LSM_CONNECT = 9,
	KARS_HOOK_LSM_SENDMSG = 10,
	KARS_HOOK_LSM_UNIX = 11, /* unix_stream_connect, unix_may_send */
	KARS_HOOK_LSM_FILE_OPEN = 12,
	KARS_HOOK_LSM_RECVMSG = 13,
	KARS_HOOK_LSM_FILE_LINK = 14, /* inode_link, inode_rename of a protected file */
	KARS_HOOK_DNS_INGRESS =
	    15, /* cgroup_skb ingress: resolver answers (kars_dns_answer.bpf.h) */
	KARS_HOOK__COUNT,
};

/* Value of kars_cgroups, keyed by __u64 cgroup id. Ports in host order. */
struct kars_cgroup_policy {
	__u32 sandbox_id;
	__u32 gen;
	__u8 role;
	__u8 mode;
	__u8 has_resolver4;
	__u8 has_resolver6;
	__u32 uid;
	__u32 learn_max;
	__u16 router_port; /* this sandbox's router API on loopback */
	__u16 proxy_port;  /* this sandbox's egress proxy on loopback */
	__u16 resolver_port;
	__u16 pad;
	__u32 resolver4; /* network order */
	__u8 resolver6[16];
};

/* Key of kars_rules_exact. IPv4 as v4-mapped IPv6; port in host order. */
struct kars_rule_key {
	__u32 gen;
	__u8 proto;
	__u8 pad;
	__u16 port;
	__u8 addr[16];
};

/* Key of kars_rules_cidr (LPM trie): prefixlen counts the 32 gen bits too. */
struct kars_cidr_key {
	__u32 prefixlen;
	__u32 gen;
	__u8 addr[16];
};

struct kars_port_range {
	__u8 proto; /* 0: unused slot */
	__u8 pad;
	__u16 lo;
	__u16 hi;
};

/* Userspace folds the ranges of every shorter containing prefix into each
 * entry, because an LPM lookup returns the longest match only. */
struct kars_cidr_value {
	struct kars_port_range ranges[KARS_CIDR_PORT_RANGES];
};

/* Original destination of a rewritten or redirected socket, keyed by the
 * agent socket's cookie. The egress proxy finds that cookie from its accepted
 * socket with sock_diag (libkars' kars_sock_peer_cookie) and asks karsd. */
struct kars_orig_dst {
	__u8 addr[16];
	__u16 port;
	__u8 family; /* AF_INET or AF_INET6, as the agent dialled */
	__u8 verdict;
	__u8 new_addr[16]; /* where the data plane sent it instead */
	__u16 new_port;
	__u16 pad;
	__u32 sandbox_id;
	__u64 agent_cookie;
	__u64 cgroup_id;
};

/* Key of kars_learned: one distinct would-be-denied destination. */
struct kars_learned_key {
	__u32 sandbox_id;
	__u8 proto;
	__u8 role;
	__u16 port;
	__u8 addr[16];
};

struct kars_learned_value {
	__u64 first_ns;
	__u64 last_ns;
	__u64 count;
};

/* Key of kars_stats (per-CPU hash): verdict counters per sandbox and reason. */
struct kars_stat_key {
	__u32 sandbox_id;
	__u8 verdict;
	__u8 reason;
	__u16 pad;
};

/* Indexes of kars_counters (per-CPU array). */
enum kars_counter {
	KARS_COUNTER_EVENT_DROPS = 0, /* ringbuf full: event lost, counted */
	KARS_COUNTER_LEARN_FULL = 1,  /* learned set at its bound: not recorded */
	KARS_COUNTER_ORIG_FULL = 2,   /* original destination could not be stored */
	KARS_COUNTER_STATS_FULL = 3,  /* per-sandbox counter map full */
	KARS_COUNTER__COUNT,
};

/* Value of kars_sandboxes, keyed by __u32 sandbox id. Read and written by
 * karsd only: it is how a restarted karsd re-adopts what is pinned. */
#define KARS_META_NAME_LEN 320 /* namespace/name, 317 at most */
#define KARS_META_PATH_LEN 1024
struct kars_sandbox_meta {
	char name[KARS_META_NAME_LEN];
	__u32 gen;
	__u8 mode;
	__u8 pad[3];
	__u64 agent_cgroup_id;
	__u64 router_cgroup_id;
	__u32 agent_uid;
	__u32 router_uid;
	__u32 n_exact;
	__u32 n_cidr;
	char agent_cgroup[KARS_META_PATH_LEN];
	char router_cgroup[KARS_META_PATH_LEN];
};

/* Key of kars_protected (lsm.bpf.c): an inode that agent tasks may not open,
 * nor anything below it. dev is the kernel's encoding (major << 20 | minor),
 * not stat()'s. */
struct kars_protected_key {
	__u64 dev;
	__u64 ino;
};

struct kars_event {
	__u64 ts_ns;
	__u64 cgroup_id;
	__u64 cookie;
	__u32 pid;
	__u32 tgid;
	__u32 uid;
	__u32 sandbox_id;
	__u32 gen;
	__u8 hook;
	__u8 family;
	__u8 protocol;
	__u8 verdict;
	__u8 reason;
	__u8 role;
	__u16 orig_port;
	__u16 new_port;
	__u16 pad;
	__u8 orig_addr[16];
	__u8 new_addr[16];
	char comm[16];
};

#endif
