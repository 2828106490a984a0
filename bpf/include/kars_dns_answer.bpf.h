/* kars_dns_answer.bpf.h - the router's FQDN allowlist: its DNS queries
 * recorded on egress, the resolver's answers to them snooped on ingress.
 *
 * Included at the end of sandbox.bpf.c (it shares kars_cgroups, the event
 * ring buffer and the helpers there, and dns_ipv6_l4 of kars_dns.bpf.h);
 * karsd attaches both programs to router cgroups only, and they never drop:
 *
 *   kars_fqdn_egress   a UDP query to the sandbox resolver (address and
 *                      port of the policy) whose name matches one of the
 *                      sandbox's fqdns is recorded in kars_fqdn_queries under
 *                      resolver address and port, the router's address and
 *                      port, and the DNS id, with the name's hash and the
 *                      matching rule's port ranges.
 *   kars_fqdn_ingress  a UDP datagram from the resolver's address and port
 *                      is looked up by the same five values; only a recorded
 *                      query's answer, with the same question, NOERROR, not
 *                      truncated, is read. Its A/AAAA records whose owner is
 *                      the question or a name a CNAME of the same answer led
 *                      to become entries of kars_fqdn_entries (TTL clamped
 *                      to the sandbox's floor and ceiling, plus a grace).
 *
 * Verifier budget (the object must load on 6.1 under qemu TCG): the message
 * is copied into per-CPU scratch and parsed by one small state machine run
 * under bpf_loop, one label, pointer or record per step, so the verifier
 * checks each step once however long the answer (the fold of a name into
 * its hash is one step per label too); the learning is a global function,
 * verified once. Names are read label
 * by label with compression pointers followed strictly backwards (a pointer
 * to its own position or later is refused, so loops cannot happen), at most
 * KARS_FQDN_MAX_HOPS pointers, 40 labels and 255 octets per name.
 */
#ifndef KARS_DNS_ANSWER_BPF_H
#define KARS_DNS_ANSWER_BPF_H

#define FQDN_MSG_MAX   2048 /* bytes of a message parsed; the rest is not read */
#define FQDN_MSG_MASK  (FQDN_MSG_MAX - 1)
#define FQDN_NAME_BUF  (KARS_DNS_EVENT_NAME_LEN + 8)
#define FQDN_MAX_STEPS 8192 /* > 32 records x 2 names x (57 + 40) steps, and the question */
#define DNS_CLASS_IN   1
#define DNS_TYPE_A     1
#define DNS_TYPE_CNAME 5
#define DNS_TYPE_AAAA  28

enum fqdn_phase {
	FQDN_PH_NAME = 0,      /* walking a name, then folding it */
	FQDN_PH_FOLD,	       /* folding its labels into its hash, then s->after */
	FQDN_PH_QUERY_DONE,    /* egress: the query's name walked */
	FQDN_PH_QUESTION_DONE, /* ingress: the answer's question walked */
	FQDN_PH_RR,	       /* ingress: the next answer record */
	FQDN_PH_OWNER_DONE,    /* ingress: a record's owner walked */
	FQDN_PH_TARGET_DONE,   /* ingress: a CNAME's target walked */
};

enum fqdn_result {
	FQDN_RES_RUNNING = 0,
	FQDN_RES_OK,
	FQDN_RES_MISMATCH, /* the answer's question is not the query's */
	FQDN_RES_BAD,	   /* a name or record that cannot be read */
};

struct fqdn_walk {
	__u32 pos;   /* next byte of the name (message offset) */
	__u32 limit; /* a pointer must point below this: the current run's start */
	__u32 wire;  /* octets of the name so far */
	__u32 n;     /* labels so far */
	__u32 end;   /* where the name ends where it was written */
	__u32 hops;
	__u32 text; /* also write the name as text into s->name */
	__u32 tlen;
};

struct fqdn_scratch {
	__u8 msg[FQDN_MSG_MAX + 8];
	__u32 msg_len;
	__u32 phase, after, result;
	struct fqdn_walk w;
	__u64 lh[64]; /* label hashes of the name being walked */
	__u64 hash;   /* its fold: S of the whole name */
	__u32 fold_gen, fold_match, fold_k, pad1;
	__u64 fold_h;
	__u32 matched;
	__u16 rule;
	__u16 qtype;
	struct kars_port_range ranges[KARS_CIDR_PORT_RANGES];
	__u32 qname_len; /* the question's text length in s->name */
	__u32 pad0;
	/* answer records */
	__u32 rr_off, rr_left, rdata_end, cur_ttl;
	__u32 n_chain;
	__u32 pad;
	__u64 chain[KARS_FQDN_MAX_CHAIN];
	__u32 chain_ttl[KARS_FQDN_MAX_CHAIN];
	/* context */
	struct kars_fqdn_key key;
	struct kars_fqdn_cfg cfg;
	struct kars_fqdn_query_key qkey;
	struct kars_fqdn_query query;
	struct kars_fqdn_entry_key ekey;
	struct kars_fqdn_entry entry;
	__u64 now;
	__u64 cgroup_id;
	__u32 sandbox_id, gen;
	__u8 role, family, pad2[2];
	__u8 addr[16]; /* a record's address */
	char name[FQDN_NAME_BUF];
	struct {
		struct kars_event e;
		struct kars_fqdn_event_tail t;
	} ev;
};

/* Element 0 for the egress program, 1 for ingress: an answer's softirq may
 * interrupt a query's send on the same CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct fqdn_scratch);
} kars_fqdn_scratch SEC(".maps");

static __always_inline __u32 fqdn_u16(const struct fqdn_scratch *s, __u32 off)
{
	return ((__u32)s->msg[off & FQDN_MSG_MASK] << 8) | s->msg[(off + 1) & FQDN_MSG_MASK];
}

static __always_inline __u32 fqdn_u32(const struct fqdn_scratch *s, __u32 off)
{
	return (fqdn_u16(s, off) << 16) | fqdn_u16(s, off + 2);
}

static __always_inline void fqdn_walk_start(struct fqdn_scratch *s, __u32 off, __u32 text,
					    __u32 after)
{
	s->w.pos = off;
	s->w.limit = off;
	s->w.wire = 0;
	s->w.n = 0;
	s->w.end = 0;
	s->w.hops = 0;
	s->w.text = text;
	s->w.tlen = 0;
	s->phase = FQDN_PH_NAME;
	s->after = after;
}

/* One step of the fold of the walked labels into the name's hash, from the
 * last label to the first (S(root) = 0, S(l.rest) = mix(S(rest), H(l))).
 * With fold_match set, each suffix's wildcard rule and the whole name's
 * exact rule are looked up under fold_gen; the most specific hit (the last)
 * lands in s->matched, s->rule, s->ranges. One mix per step keeps the
 * verifier's work to one pass over this code. */
static __always_inline long fqdn_fold_step(struct fqdn_scratch *s)
{
	struct kars_fqdn_rule_key key = {.gen = s->fold_gen};
	struct kars_fqdn_rule *r;
	__u32 k = s->fold_k, n = s->w.n, i;

	if (k >= n || n > KARS_DNS_MAX_LABELS) {
		s->hash = s->fold_h;
		s->phase = s->after;
		return 0;
	}
	i = n - 1 - k;
	s->fold_h = kars_fqdn_mix(s->key.chain, s->fold_h, s->lh[i & 63]);
	s->fold_k = k + 1;
	if (!s->fold_match)
		return 0;
	key.wildcard = i != 0; /* "*.x" matches strictly below x */
	key.hash = s->fold_h;
	r = bpf_map_lookup_elem(&kars_fqdn_rules, &key);
	if (r) {
		s->matched = 1;
		s->rule = r->index;
		__builtin_memcpy(s->ranges, r->ranges, sizeof(s->ranges));
	}
	return 0;
}

/* One step of a name: a label (hashed, and copied as text when asked) or a
 * compression pointer. Returns 1 to stop the loop. */
static __always_inline long fqdn_name_step(struct fqdn_scratch *s)
{
	struct kars_sip st;
	__u32 pos = s->w.pos, len, tpos;
	__u8 l;

	if (pos >= s->msg_len)
		goto bad;
	l = s->msg[pos & FQDN_MSG_MASK];
	if ((l & 0xc0) == 0xc0) {
		__u32 target;

		if (pos + 2 > s->msg_len || ++s->w.hops > KARS_FQDN_MAX_HOPS)
			goto bad;
		target = fqdn_u16(s, pos) & 0x3fff;
		/* Strictly backwards, and never into the header: no loops. */
		if (target >= s->w.limit || target < DNS_HDR_LEN)
			goto bad;
		if (!s->w.end)
			s->w.end = pos + 2;
		s->w.pos = target;
		s->w.limit = target;
		return 0;
	}
	if (l & 0xc0)
		goto bad; /* 0x40, 0x80: extended label types */
	if (l == 0) {
		if (!s->w.end)
			s->w.end = pos + 1;
		s->fold_k = 0;
		s->fold_h = 0;
		s->matched = 0;
		s->phase = FQDN_PH_FOLD;
		return 0;
	}
	len = l;
	s->w.wire += len + 1;
	if (s->w.n >= KARS_DNS_MAX_LABELS || s->w.wire > KARS_DNS_MAX_WIRE - 1 ||
	    pos + 1 + len > s->msg_len)
		goto bad;
	tpos = s->w.tlen;
	if (s->w.text) {
		if (tpos)
			s->name[tpos++ & 0xff] = '.';
		s->w.tlen = tpos + len;
	}
	/* H(label): SipHash-2-4 of its bytes, lower-cased, one word at a time
	 * (unaligned loads; the word past the label's end is masked). */
	kars_sip_init(&st, s->key.label[0], s->key.label[1]);
	for (__u32 k = 0; k < 8; k++) {
		__u64 w = *(__u64 *)&s->msg[(pos + 1 + 8 * k) & FQDN_MSG_MASK];

		if (k == len >> 3)
			w &= kars_sip_tail_mask(len & 7);
		w = kars_fqdn_lower8(w);
		if (s->w.text)
			*(__u64 *)&s->name[(tpos + 8 * k) & 0xff] = w;
		if (k == len >> 3) {
			s->lh[s->w.n & 63] = kars_sip_final(&st, w, len);
			break;
		}
		kars_sip_absorb(&st, w);
	}
	s->w.n++;
	s->w.pos = pos + 1 + len;
	return 0;
bad:
	s->result = FQDN_RES_BAD;
	return 1;
}

/* The event of a record: learned (allow) or refused by the quota (deny). */
static __always_inline void fqdn_record_event(struct fqdn_scratch *s, __u8 verdict, __u8 reason,
					      __u32 ttl)
{
	__builtin_memset(&s->ev.e, 0, sizeof(s->ev.e));
	s->ev.e.ts_ns = s->now;
	s->ev.e.cgroup_id = s->cgroup_id;
	s->ev.e.sandbox_id = s->sandbox_id;
	s->ev.e.gen = s->gen;
	s->ev.e.role = s->role;
	s->ev.e.hook = KARS_HOOK_DNS_INGRESS;
	s->ev.e.family = s->family;
	s->ev.e.protocol = IPPROTO_UDP;
	s->ev.e.verdict = verdict;
	s->ev.e.reason = reason;
	__builtin_memcpy(s->ev.e.orig_addr, s->addr, 16);
	__builtin_memcpy(s->ev.e.new_addr, s->addr, 16);
	s->ev.t.ttl = ttl;
	s->ev.t.qtype = s->query.qtype;
	s->ev.t.name_len = s->qname_len > KARS_DNS_MAX_TEXT ? KARS_DNS_MAX_TEXT : s->qname_len;
	__builtin_memcpy(s->ev.t.name, s->name, sizeof(s->ev.t.name));
	if (bpf_ringbuf_output(&kars_events, &s->ev, sizeof(s->ev), 0))
		count(KARS_COUNTER_EVENT_DROPS);
	count_verdict(s->sandbox_id, verdict, reason);
}

/* Learns s->addr (a record on the chain, TTL s->cur_ttl) for the ranges of
 * the query's rule, and says so in an event. A global function, verified
 * once; it takes the scratch element's index and looks it up itself, since
 * 6.1 takes a map key or value only from the stack or a map value, not from
 * a global function's memory argument. */
__noinline int kars_fqdn_learn(__u32 idx)
{
	struct fqdn_scratch *s = bpf_map_lookup_elem(&kars_fqdn_scratch, &idx);
	struct kars_fqdn_entry *e;
	struct kars_fqdn_cfg *cfg = NULL;
	__u64 ttl, expires;
	bool fresh = false, absent = false;

	if (!s)
		return 0;
	ttl = s->cur_ttl;
	if (ttl < s->cfg.min_ttl)
		ttl = s->cfg.min_ttl;
	if (ttl > s->cfg.max_ttl)
		ttl = s->cfg.max_ttl;
	expires = s->now + (ttl + s->cfg.grace) * 1000000000ULL;
	s->ekey.sandbox_id = s->sandbox_id;
	s->ekey.pad = 0;
	__builtin_memcpy(s->ekey.addr, s->addr, 16);
	e = bpf_map_lookup_elem(&kars_fqdn_entries, &s->ekey);
	if (!e) {
		/* A new key: only within the sandbox's quota, so that one
		 * sandbox cannot fill the node's map for all. */
		absent = true;
		cfg = bpf_map_lookup_elem(&kars_fqdn_cfg, &s->ekey.sandbox_id);
		if (!cfg || cfg->n_entries >= cfg->max_entries) {
			fqdn_count(KARS_FQDN_ENTRY_QUOTA);
			fqdn_record_event(s, KARS_VERDICT_DENY, KARS_REASON_FQDN_QUOTA, (__u32)ttl);
			return 0;
		}
	}
	if (!e || e->since_gen != s->cfg.since_gen) {
		e = &s->entry;
		fresh = true;
		__builtin_memset(e->slots, 0, sizeof(e->slots));
		e->since_gen = s->cfg.since_gen;
	}
	/* Range i of the rule goes to slot i: refreshed when it holds the same
	 * range, taken when free or expired; a live different range (an address
	 * shared by names with other ports) keeps its place. */
	for (int i = 0; i < KARS_FQDN_SLOTS; i++) {
		struct kars_port_range *r = &s->query.ranges[i];
		struct kars_fqdn_slot *sl = &e->slots[i];

		if (!r->proto)
			continue;
		if (sl->proto == r->proto && sl->lo == r->lo && sl->hi == r->hi) {
			if (expires > sl->expires_ns)
				sl->expires_ns = expires;
			sl->ttl = ttl;
		} else if (!sl->proto || sl->expires_ns <= s->now) {
			sl->proto = r->proto;
			sl->lo = r->lo;
			sl->hi = r->hi;
			sl->ttl = ttl;
			sl->expires_ns = expires;
		} else {
			fqdn_count(KARS_FQDN_ENTRY_FULL);
		}
	}
	e->rule = s->query.rule;
	e->learned_ns = s->now;
	e->name_len = s->qname_len > KARS_DNS_MAX_TEXT ? KARS_DNS_MAX_TEXT : s->qname_len;
	__builtin_memcpy(e->name, s->name, sizeof(e->name));
	if (absent) {
		/* Counted once per new key; another CPU that added the same key
		 * first (EEXIST) counted it already. */
		long err =
		    bpf_map_update_elem(&kars_fqdn_entries, &s->ekey, &s->entry, BPF_NOEXIST);

		if (err == -EEXIST)
			err = bpf_map_update_elem(&kars_fqdn_entries, &s->ekey, &s->entry, BPF_ANY);
		else if (!err && cfg)
			__sync_fetch_and_add(&cfg->n_entries, 1);
		if (err) {
			fqdn_count(KARS_FQDN_ENTRY_FULL);
			return 0;
		}
	} else if (fresh && bpf_map_update_elem(&kars_fqdn_entries, &s->ekey, &s->entry, BPF_ANY)) {
		fqdn_count(KARS_FQDN_ENTRY_FULL);
		return 0;
	}
	fqdn_record_event(s, KARS_VERDICT_ALLOW, KARS_REASON_FQDN_LEARNED, (__u32)ttl);
	return 0;
}

/* The chain member a record's owner is, or -1. */
static __always_inline int fqdn_on_chain(const struct fqdn_scratch *s, __u64 h)
{
	for (int i = 0; i < KARS_FQDN_MAX_CHAIN; i++)
		if (i < s->n_chain && s->chain[i] == h)
			return i;
	return -1;
}

static __always_inline long fqdn_owner_done(struct fqdn_scratch *s, __u32 idx)
{
	__u32 p = s->w.end, type, class, ttl, rdlen, next;
	int on;

	if (p + 10 > s->msg_len)
		goto bad;
	type = fqdn_u16(s, p);
	class = fqdn_u16(s, p + 2);
	ttl = fqdn_u32(s, p + 4);
	rdlen = fqdn_u16(s, p + 8);
	next = p + 10 + rdlen;
	if (next > s->msg_len)
		goto bad;
	s->rr_off = next;
	s->phase = FQDN_PH_RR;
	on = fqdn_on_chain(s, s->hash);
	if (class != DNS_CLASS_IN || on < 0)
		return 0;
	if (ttl > 0x7fffffff)
		ttl = 0; /* RFC 2181 8: a TTL with the top bit set is zero */
	if (ttl > s->chain_ttl[on & (KARS_FQDN_MAX_CHAIN - 1)])
		ttl = s->chain_ttl[on & (KARS_FQDN_MAX_CHAIN - 1)];
	s->cur_ttl = ttl;
	if (type == DNS_TYPE_CNAME) {
		if (s->n_chain >= KARS_FQDN_MAX_CHAIN)
			return 0;
		s->rdata_end = next;
		fqdn_walk_start(s, p + 10, 0, FQDN_PH_TARGET_DONE);
		return 0;
	}
	if (type == DNS_TYPE_A && rdlen == 4) {
		__builtin_memset(s->addr, 0, 10);
		s->addr[10] = 0xff;
		s->addr[11] = 0xff;
		for (int i = 0; i < 4; i++)
			s->addr[12 + i] = s->msg[(p + 10 + i) & FQDN_MSG_MASK];
	} else if (type == DNS_TYPE_AAAA && rdlen == 16) {
		for (int i = 0; i < 16; i++)
			s->addr[i] = s->msg[(p + 10 + i) & FQDN_MSG_MASK];
	} else {
		return 0;
	}
	kars_fqdn_learn(idx);
	return 0;
bad:
	s->result = FQDN_RES_BAD;
	return 1;
}

static __always_inline long fqdn_step(__u32 idx)
{
	struct fqdn_scratch *s = bpf_map_lookup_elem(&kars_fqdn_scratch, &idx);
	__u32 p;

	if (!s)
		return 1;
	switch (s->phase) {
	case FQDN_PH_NAME:
		return fqdn_name_step(s);
	case FQDN_PH_FOLD:
		return fqdn_fold_step(s);
	case FQDN_PH_QUERY_DONE:
		p = s->w.end;
		if (p + 4 > s->msg_len)
			goto bad;
		s->qtype = fqdn_u16(s, p);
		s->result = FQDN_RES_OK;
		return 1;
	case FQDN_PH_QUESTION_DONE:
		p = s->w.end;
		if (p + 4 > s->msg_len)
			goto bad;
		if (s->hash != s->query.name_hash || fqdn_u16(s, p) != s->query.qtype ||
		    fqdn_u16(s, p + 2) != DNS_CLASS_IN) {
			s->result = FQDN_RES_MISMATCH;
			return 1;
		}
		s->qname_len = s->w.tlen;
		s->chain[0] = s->hash;
		s->chain_ttl[0] = 0xffffffff;
		s->n_chain = 1;
		s->rr_off = p + 4;
		s->phase = FQDN_PH_RR;
		return 0;
	case FQDN_PH_RR:
		if (!s->rr_left) {
			s->result = FQDN_RES_OK;
			return 1;
		}
		s->rr_left--;
		s->fold_match = 0;
		fqdn_walk_start(s, s->rr_off, 0, FQDN_PH_OWNER_DONE);
		return 0;
	case FQDN_PH_OWNER_DONE:
		return fqdn_owner_done(s, idx);
	case FQDN_PH_TARGET_DONE:
		if (s->w.end > s->rdata_end)
			goto bad; /* the name runs past its record */
		s->chain[s->n_chain & (KARS_FQDN_MAX_CHAIN - 1)] = s->hash;
		s->chain_ttl[s->n_chain & (KARS_FQDN_MAX_CHAIN - 1)] = s->cur_ttl;
		s->n_chain++;
		s->phase = FQDN_PH_RR;
		return 0;
	}
bad:
	s->result = FQDN_RES_BAD;
	return 1;
}

static long fqdn_step_egress(__u32 i, void *ctx)
{
	return fqdn_step(0);
}

static long fqdn_step_ingress(__u32 i, void *ctx)
{
	return fqdn_step(1);
}

/* The UDP datagram's addresses and ports, v4-mapped, and its payload's
 * offset. Returns false for anything but an unfragmented UDP datagram. */
static __always_inline bool fqdn_udp(struct __sk_buff *skb, __u8 *family, __u8 *saddr, __u8 *daddr,
				     __u16 *sport, __u16 *dport, __u32 *msg_off)
{
	bool later_fragment = false;
	__u16 ports[2];
	__u32 l4_off;
	__u8 proto;

	if (skb->protocol == bpf_htons(0x0800)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
			return false;
		*family = AF_INET;
		addr_set_v4(saddr, ip.saddr);
		addr_set_v4(daddr, ip.daddr);
		proto = ip.protocol;
		if (ip.frag_off & bpf_htons(0x3fff))
			return false; /* a fragment: the resolver's answers fit a datagram */
		l4_off = (__u32)ip.ihl * 4;
	} else if (skb->protocol == bpf_htons(0x86DD)) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)))
			return false;
		*family = AF_INET6;
		__builtin_memcpy(saddr, &ip6.saddr, 16);
		__builtin_memcpy(daddr, &ip6.daddr, 16);
		proto = ip6.nexthdr;
		l4_off = sizeof(ip6);
		if (!dns_ipv6_l4(skb, &proto, &l4_off, &later_fragment) || later_fragment)
			return false;
	} else {
		return false;
	}
	if (proto != IPPROTO_UDP || bpf_skb_load_bytes(skb, l4_off, ports, sizeof(ports)))
		return false;
	*sport = bpf_ntohs(ports[0]);
	*dport = bpf_ntohs(ports[1]);
	*msg_off = l4_off + 8;
	return skb->len >= *msg_off + DNS_HDR_LEN;
}

/* Copies the DNS message (at most FQDN_MSG_MAX bytes) into s->msg. */
static __always_inline bool fqdn_copy_msg(struct __sk_buff *skb, struct fqdn_scratch *s,
					  __u32 msg_off)
{
	volatile __u32 n_spill;
	__u32 n;

	n_spill = skb->len - msg_off;
	n = n_spill;
	if (n > FQDN_MSG_MAX)
		n = FQDN_MSG_MAX;
	if (n < DNS_HDR_LEN || n > FQDN_MSG_MAX)
		return false;
	s->msg_len = n;
	return bpf_skb_load_bytes(skb, msg_off, s->msg, n) == 0;
}

/* The sandbox's policy and fqdn settings for a router socket's packet, and
 * whether the packet's far end is the sandbox resolver. */
static __always_inline struct kars_cgroup_policy *fqdn_router(struct __sk_buff *skb, __u32 *sid,
							      struct kars_fqdn_cfg **cfg)
{
	__u64 cgroup_id = bpf_skb_cgroup_id(skb);
	struct kars_cgroup_policy *pol = bpf_map_lookup_elem(&kars_cgroups, &cgroup_id);

	if (!pol || pol->role != KARS_ROLE_ROUTER)
		return NULL;
	*sid = pol->sandbox_id;
	*cfg = bpf_map_lookup_elem(&kars_fqdn_cfg, sid);
	return *cfg ? pol : NULL;
}

static __always_inline bool fqdn_from_resolver(const struct kars_cgroup_policy *pol,
					       const __u8 *addr, __u16 port)
{
	__u8 resolver[16];

	return port == pol->resolver_port && resolver_addr(pol, addr_is_v4(addr), resolver) &&
	       addr_eq(resolver, addr);
}

static __always_inline void fqdn_context(struct fqdn_scratch *s,
					 const struct kars_cgroup_policy *pol, __u32 gen_to_match,
					 __u32 match)
{
	__u32 zero = 0;
	struct kars_fqdn_key *k = bpf_map_lookup_elem(&kars_fqdn_key, &zero);

	if (k)
		s->key = *k;
	else
		__builtin_memset(&s->key, 0, sizeof(s->key));
	s->sandbox_id = pol->sandbox_id;
	s->gen = pol->gen;
	s->role = pol->role;
	s->fold_gen = gen_to_match;
	s->fold_match = match;
	s->result = FQDN_RES_RUNNING;
	s->matched = 0;
}

SEC("cgroup_skb/egress")
int kars_fqdn_egress(struct __sk_buff *skb)
{
	struct kars_fqdn_query_key qk = {};
	struct kars_fqdn_cfg *cfg;
	struct kars_cgroup_policy *pol;
	struct fqdn_scratch *s;
	__u32 sid, msg_off, zero = 0, flags;
	__u16 sport, dport;
	__u8 family;

	pol = fqdn_router(skb, &sid, &cfg);
	if (!pol)
		return 1;
	s = bpf_map_lookup_elem(&kars_fqdn_scratch, &zero);
	if (!s || !fqdn_udp(skb, &family, qk.laddr, qk.raddr, &sport, &dport, &msg_off) ||
	    !fqdn_from_resolver(pol, qk.raddr, dport) || !fqdn_copy_msg(skb, s, msg_off))
		return 1;
	/* One plain query (the DNS check next to this program drops the rest). */
	flags = fqdn_u16(s, 2);
	if ((flags & 0xf800) || fqdn_u16(s, 4) != 1)
		return 1;
	fqdn_context(s, pol, pol->gen, 1);
	fqdn_walk_start(s, DNS_HDR_LEN, 0, FQDN_PH_QUERY_DONE);
	bpf_loop(2 * KARS_DNS_MAX_LABELS + 4, fqdn_step_egress, NULL, 0);
	if (s->result != FQDN_RES_OK || !s->matched)
		return 1;
	qk.sandbox_id = sid;
	qk.id = (__u16)fqdn_u16(s, 0);
	qk.lport = sport;
	qk.rport = dport;
	s->query.name_hash = s->hash;
	s->query.sent_ns = bpf_ktime_get_ns();
	s->query.gen = pol->gen;
	s->query.qtype = s->qtype;
	s->query.rule = s->rule;
	__builtin_memcpy(s->query.ranges, s->ranges, sizeof(s->ranges));
	if (bpf_map_update_elem(&kars_fqdn_queries, &qk, &s->query, BPF_ANY) == 0)
		fqdn_count(KARS_FQDN_QUERY_RECORDED);
	return 1;
}

SEC("cgroup_skb/ingress")
int kars_fqdn_ingress(struct __sk_buff *skb)
{
	struct kars_fqdn_query_key qk = {};
	struct kars_fqdn_query *q;
	struct kars_fqdn_cfg *cfg;
	struct kars_cgroup_policy *pol;
	struct fqdn_scratch *s;
	__u32 sid, msg_off, one = 1, flags, ancount;
	__u16 sport, dport;
	__u8 family;

	pol = fqdn_router(skb, &sid, &cfg);
	if (!pol)
		return 1;
	s = bpf_map_lookup_elem(&kars_fqdn_scratch, &one);
	if (!s || !fqdn_udp(skb, &family, qk.raddr, qk.laddr, &sport, &dport, &msg_off) ||
	    !fqdn_from_resolver(pol, qk.raddr, sport) || !fqdn_copy_msg(skb, s, msg_off))
		return 1;
	qk.sandbox_id = sid;
	qk.id = (__u16)fqdn_u16(s, 0);
	qk.lport = dport;
	qk.rport = sport;
	q = bpf_map_lookup_elem(&kars_fqdn_queries, &qk);
	if (!q) {
		fqdn_count(KARS_FQDN_ANSWER_NO_QUERY);
		return 1;
	}
	s->query = *q;
	flags = fqdn_u16(s, 2);
	ancount = fqdn_u16(s, 6);
	if (!(flags & 0x8000) || (flags & 0x7800) || fqdn_u16(s, 4) != 1) {
		fqdn_count(KARS_FQDN_ANSWER_MISMATCH); /* not an answer to it */
		return 1;
	}
	/* TC (the answer is retried over TCP, which is not read), an error
	 * rcode, or a query of a policy whose fqdns have changed since. */
	if ((flags & 0x0200) || (flags & 0x000f) || s->query.gen < cfg->since_gen) {
		bpf_map_delete_elem(&kars_fqdn_queries, &qk);
		fqdn_count(KARS_FQDN_ANSWER_REFUSED);
		return 1;
	}
	fqdn_context(s, pol, 0, 0);
	s->cfg = *cfg;
	s->cgroup_id = bpf_skb_cgroup_id(skb);
	s->family = family;
	s->now = bpf_ktime_get_ns();
	s->rr_left = ancount < KARS_FQDN_MAX_RRS ? ancount : KARS_FQDN_MAX_RRS;
	s->n_chain = 0;
	__builtin_memset(s->name, 0, sizeof(s->name));
	fqdn_walk_start(s, DNS_HDR_LEN, 1, FQDN_PH_QUESTION_DONE);
	bpf_loop(FQDN_MAX_STEPS, fqdn_step_ingress, NULL, 0);
	if (s->result == FQDN_RES_MISMATCH || (s->result == FQDN_RES_BAD && s->n_chain == 0)) {
		/* Not this query's answer (a forgery that guessed id and port):
		 * ignored, and the query stays for the real one. */
		fqdn_count(KARS_FQDN_ANSWER_MISMATCH);
		return 1;
	}
	bpf_map_delete_elem(&kars_fqdn_queries, &qk);
	fqdn_count(s->result == FQDN_RES_OK ? KARS_FQDN_ANSWER_LEARNED : KARS_FQDN_ANSWER_BAD);
	return 1;
}

#endif
