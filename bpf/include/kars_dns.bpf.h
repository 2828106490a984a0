/* kars_dns.bpf.h - the DNS query check, a second cgroup_skb egress program.
 *
 * Included by sandbox.bpf.c (one BPF object: it shares kars_cgroups, the
 * event ring buffer and the counters), attached by karsd to both role cgroups
 * next to the agent's packet backstop (cgroup programs multi-attach: a packet
 * leaves only if every program lets it). Kept out of kars_skb_egress because
 * the router gets this check but not the backstop, and so that the DNS rules
 * live in one place.
 *
 * For every UDP datagram and every TCP segment with payload sent to port 53
 * or to the sandbox's resolver port, the DNS message must be exactly one
 * plain query (QR 0, opcode QUERY, one question) whose name is uncompressed,
 * at most KARS_DNS_MAX_LABELS labels deep and at most the length cap long;
 * anything else is dropped (fail closed). The name, lower-cased, is then
 * looked up suffix by suffix (com, example.com, a.example.com, ...) in the
 * current blocklist generation; a hit is dropped. A drop at cgroup egress
 * makes the sender's sendmsg()/write() fail with EPERM at once, so a resolver
 * library gives up without waiting for a timeout. Every drop is an event
 * carrying the name. docs/dns.md.
 */
#ifndef KARS_DNS_BPF_H
#define KARS_DNS_BPF_H

#include "kars_dns.h"

#define DNS_HDR_LEN	12
#define DNS_REV_BUF	(512 + 8) /* reversed name, written at (total - 1 - i) & 511 */
#define DNS_IPV6_EXTS	4
#define IPPROTO_HOPOPTS 0
#define IPPROTO_ROUTING 43
#define IPPROTO_FRAG6	44
#define IPPROTO_DSTOPTS 60
#define IPPROTO_AH6	51

/* One blocklist generation (see kars_dns.h); karsd creates these. */
struct kars_dns_gen_map {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_INNER_MAP | BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kars_dns_block);
};

/* Slot 0: the generation in force; empty until karsd loads a list. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct kars_dns_gen_map);
} kars_dns_list SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KARS_MAX_CGROUPS);
	__type(key, __u32);
	__type(value, struct kars_dns_caps);
} kars_dns_caps SEC(".maps");

struct dns_scratch {
	__u8 wire[KARS_DNS_MAX_WIRE + 9];
	__u8 rev[DNS_REV_BUF];
	__u8 offs[KARS_DNS_MAX_LABELS];
	__u8 ends[KARS_DNS_MAX_WIRE + 1];
	struct kars_event ev; /* staged here: too big for the stack with the rest */
	struct kars_dns_event_tail tail;
	/* Unused; makes clang emit the full type into BTF, which the inner
	 * map definition only names through a pointer. */
	struct kars_dns_block btf_anchor;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dns_scratch);
} kars_dns_scratch SEC(".maps");

struct dns_query {
	__u64 cgroup_id; /* of the sending socket */
	__u8 family;
	__u8 pad[3];
	__u16 id;
	__u16 qtype;
	__u32 name_bytes; /* wire bytes of the name parsed, for the event */
	__u32 labels;
};

static __always_inline bool dns_in_bucket(void *list, __u32 idx, __u64 h, bool *missing)
{
	struct kars_dns_block *b = bpf_map_lookup_elem(list, &idx);

	if (!b) {
		*missing = true;
		return false;
	}
	for (int i = 0; i < KARS_DNS_BUCKET_SLOTS; i++)
		if (b->slot[i] == h)
			return true;
	return false;
}

/* Every per-byte and per-label loop below is a bpf_loop() callback (Linux
 * 5.17+). The verifier checks a callback's body once (6.1) or until its state
 * stops changing (6.7+), where a bounded loop is walked iteration by
 * iteration, every branch in its body adding paths: written as plain loops,
 * this check cost the 6.18 verifier 0.97M instructions and hit the 1M limit
 * on 6.1 (E2BIG), which left the object unloadable there. A callback returns
 * 0 to go on, 1 to stop; it reads and writes its loop's state through ctx. */

struct dns_walk_ctx {
	struct dns_scratch *s;
	void *list; /* the generation in force, looked up once per query */
	struct kars_sip st;
	__u64 pending; /* reversed bytes not yet absorbed, little-endian */
	__u32 total;
	__u32 mask;
	int reason;
};

/* Byte p = i + 1 of the reversed name: absorbed into the stream; where a
 * suffix ends after it, that suffix's hash is looked up. */
static int dns_walk_byte(__u64 i, void *ctx)
{
	struct dns_walk_ctx *c = ctx;
	struct dns_scratch *s = c->s;
	bool missing = false;
	__u32 p = i + 1;
	__u64 h;

	if (!s || p > c->total || p > KARS_DNS_MAX_WIRE)
		return 1;
	c->pending |= (__u64)s->rev[i & 0x1ff] << (8 * (i & 7));
	if ((p & 7) == 0) {
		kars_sip_absorb(&c->st, c->pending);
		c->pending = 0;
	}
	if (!s->ends[p & 0xff])
		return 0;
	h = kars_sip_final(&c->st, c->pending, p);
	if (dns_in_bucket(c->list, kars_dns_bucket1(h, c->mask), h, &missing) ||
	    dns_in_bucket(c->list, kars_dns_bucket2(h, c->mask), h, &missing)) {
		c->reason = KARS_REASON_DNS_BLOCKED;
		return 1;
	}
	if (missing) {
		c->reason = KARS_REASON_DNS_MALFORMED; /* bucket outside the map: fail closed */
		return 1;
	}
	return 0;
}

/* Hashes every suffix of the reversed name in s->rev in one pass and looks
 * each up: s->ends[p] is 1 where a suffix ends after p bytes of the
 * reversed stream. Returns KARS_REASON_NONE, or the reason to drop. */
__noinline int kars_dns_walk(struct dns_scratch *s, __u32 total)
{
	struct dns_walk_ctx c = {.total = total, .reason = KARS_REASON_NONE};
	__u32 zero = 0;
	struct kars_dns_header *hb;
	void *list;

	if (!s)
		return KARS_REASON_DNS_MALFORMED;
	list = bpf_map_lookup_elem(&kars_dns_list, &zero);
	if (!list)
		return KARS_REASON_NONE; /* no blocklist loaded */
	hb = bpf_map_lookup_elem(list, &zero);
	if (!hb)
		return KARS_REASON_DNS_MALFORMED; /* a generation without header: fail closed */
	_Static_assert(sizeof(struct kars_dns_header) == sizeof(struct kars_dns_block), "header");
	if (total > hb->max_name_len + 1)
		return KARS_REASON_DNS_TOO_LONG;
	c.s = s;
	c.list = list;
	c.mask = hb->bucket_mask;
	kars_sip_init(&c.st, hb->key[0], hb->key[1]);
	bpf_loop(total < KARS_DNS_MAX_WIRE ? total : KARS_DNS_MAX_WIRE, dns_walk_byte, &c, 0);
	return c.reason;
}

struct dns_labels_ctx {
	struct dns_scratch *s;
	struct dns_query *q;
	__u32 n;
	__u32 pos; /* where label i starts in s->wire */
	int reason;
};

/* Label i of the name, at c->pos. */
static int dns_label(__u64 i, void *ctx)
{
	struct dns_labels_ctx *c = ctx;
	struct dns_scratch *s = c->s;
	struct dns_query *q = c->q;
	__u32 pos = c->pos;
	__u8 l;

	if (!s || !q)
		return 1;
	if (pos >= c->n) {
		/* Ran off what we read: past 255 octets, or past the packet. */
		c->reason = c->n == KARS_DNS_MAX_WIRE ? KARS_REASON_DNS_TOO_LONG
						      : KARS_REASON_DNS_MALFORMED;
		return 1;
	}
	l = s->wire[pos & 0xff];
	if (l == 0) {
		q->name_bytes = pos; /* wire bytes before the root label */
		c->reason = KARS_REASON_NONE;
		return 1;
	}
	/* 0xc0: a compression pointer, 0x40/0x80: extended label types. A
	 * query's one name has nothing earlier to point at but the header, so
	 * a pointer is never legitimate here. */
	if (l & 0xc0) {
		c->reason = KARS_REASON_DNS_MALFORMED;
		return 1;
	}
	if (i >= KARS_DNS_MAX_LABELS) {
		c->reason = KARS_REASON_DNS_TOO_DEEP;
		return 1;
	}
	s->offs[i] = pos;
	q->labels = i + 1;
	q->name_bytes = pos + 1 + l;
	c->pos = pos + 1 + l;
	return 0;
}

/* Walks the labels of the name read into s->wire (n bytes), recording where
 * each starts in s->offs. Returns KARS_REASON_NONE with q->labels and
 * q->name_bytes set, or why the name is refused. A global function: the
 * verifier checks it once, whatever the caller's state. */
__noinline int kars_dns_labels(struct dns_scratch *s, __u32 n, struct dns_query *q)
{
	struct dns_labels_ctx c = {.n = n, .reason = KARS_REASON_DNS_TOO_DEEP};

	if (!s || !q || n > KARS_DNS_MAX_WIRE)
		return KARS_REASON_DNS_MALFORMED;
	c.s = s;
	c.q = q;
	/* One more than the bound: the 41st label is what is refused. */
	bpf_loop(KARS_DNS_MAX_LABELS + 1, dns_label, &c, 0);
	return c.reason;
}

struct dns_reverse_ctx {
	struct dns_scratch *s;
	__u32 total;
	__u32 labels;
};

static int dns_reverse_byte(__u64 i, void *ctx)
{
	struct dns_reverse_ctx *c = ctx;
	struct dns_scratch *s = c->s;
	__u8 ch;

	if (!s || i > KARS_DNS_MAX_WIRE)
		return 1;
	s->ends[i] = 0;
	if (i >= c->total || i >= KARS_DNS_MAX_WIRE)
		return 0; /* ends[total]: cleared, no byte */
	ch = s->wire[i];
	if (ch >= 'A' && ch <= 'Z')
		ch += 'a' - 'A';
	s->wire[i] = ch;
	s->rev[(c->total - 1 - i) & 511] = ch;
	return 0;
}

/* Label j's suffix ends after total - offs[j] reversed bytes. */
static int dns_reverse_label(__u64 j, void *ctx)
{
	struct dns_reverse_ctx *c = ctx;
	struct dns_scratch *s = c->s;

	if (!s || j >= c->labels || j >= KARS_DNS_MAX_LABELS)
		return 1;
	s->ends[(c->total - s->offs[j]) & 0xff] = 1;
	return 0;
}

/* Lower-cases the name's total wire bytes (ASCII only, as DNS compares
 * names), writes them byte-reversed to s->rev and marks in s->ends (cleared
 * up to total) where each suffix ends. */
__noinline int kars_dns_reverse(struct dns_scratch *s, __u32 total, __u32 labels)
{
	struct dns_reverse_ctx c = {.total = total, .labels = labels};

	if (!s || total > KARS_DNS_MAX_WIRE)
		return -1;
	c.s = s;
	bpf_loop(total + 1, dns_reverse_byte, &c, 0);
	bpf_loop(labels < KARS_DNS_MAX_LABELS ? labels : KARS_DNS_MAX_LABELS, dns_reverse_label, &c,
		 0);
	return 0;
}

/* Parses the DNS message at off (msg_len bytes) and judges its question.
 * Returns KARS_REASON_NONE to let it pass, or why it is dropped. */
static __always_inline __u8 dns_check(struct __sk_buff *skb, struct dns_scratch *s, __u32 off,
				      __u32 msg_len, struct dns_query *q)
{
	__u16 hdr[6], tail[2];
	volatile __u32 m_spill;
	__u32 avail, m, n, total;
	int reason;

	if (msg_len < DNS_HDR_LEN || bpf_skb_load_bytes(skb, off, hdr, sizeof(hdr)))
		return KARS_REASON_DNS_MALFORMED;
	q->id = bpf_ntohs(hdr[0]);
	/* QR 0 and opcode QUERY; exactly one question. The TC bit and the
	 * answer/authority/additional counts (EDNS0 OPT) do not matter here. */
	if ((bpf_ntohs(hdr[1]) & 0xf800) || bpf_ntohs(hdr[2]) != 1)
		return KARS_REASON_DNS_MALFORMED;
	if (msg_len == DNS_HDR_LEN)
		return KARS_REASON_DNS_MALFORMED; /* no question */
	avail = msg_len - DNS_HDR_LEN;
	/* n = the bytes to read, 1 to 255, built as m + 1 from a checked m:
	 * the 6.1 verifier does not learn n >= 1 from n != 0 (later kernels
	 * do), and the re-read keeps clang from reusing an unchecked copy. */
	m_spill = (avail < KARS_DNS_MAX_WIRE ? avail : KARS_DNS_MAX_WIRE) - 1;
	m = m_spill;
	if (m > KARS_DNS_MAX_WIRE - 1)
		return KARS_REASON_DNS_MALFORMED;
	n = m + 1;
	if (bpf_skb_load_bytes(skb, off + DNS_HDR_LEN, s->wire, n))
		return KARS_REASON_DNS_MALFORMED;
	reason = kars_dns_labels(s, n, q);
	if (reason != KARS_REASON_NONE)
		return reason;
	total = q->name_bytes;
	if (total > KARS_DNS_MAX_WIRE - 1 || (__u64)DNS_HDR_LEN + total + 1 + 4 > msg_len ||
	    bpf_skb_load_bytes(skb, off + DNS_HDR_LEN + total + 1, tail, sizeof(tail)))
		return KARS_REASON_DNS_MALFORMED; /* no QTYPE/QCLASS: truncated */
	q->qtype = bpf_ntohs(tail[0]);
	if (total > KARS_DNS_MAX_TEXT + 1)
		return KARS_REASON_DNS_TOO_LONG;
	if (total == 0)
		return KARS_REASON_NONE; /* the root: nothing to look up */
	if (kars_dns_reverse(s, total, q->labels))
		return KARS_REASON_DNS_MALFORMED;
	return kars_dns_walk(s, total);
}

struct dns_emit_ctx {
	struct dns_scratch *s;
	__u32 len;
	__u32 labels;
};

/* Text byte i: wire byte i + 1, zero past the name. */
static int dns_emit_byte(__u64 i, void *ctx)
{
	struct dns_emit_ctx *c = ctx;
	struct dns_scratch *s = c->s;

	if (!s || i >= KARS_DNS_MAX_WIRE)
		return 1;
	s->tail.name[i] = i + 1 < c->len ? s->wire[i + 1] : 0;
	return 0;
}

/* The length byte of label i + 1 becomes a dot. */
static int dns_emit_dot(__u64 i, void *ctx)
{
	struct dns_emit_ctx *c = ctx;
	struct dns_scratch *s = c->s;
	__u64 j = i + 1;
	__u32 o;

	if (!s || j >= c->labels || j >= KARS_DNS_MAX_LABELS)
		return 1;
	o = s->offs[j];
	if (o >= 1 && o < c->len)
		s->tail.name[(o - 1) & 0xff] = '.';
	return 0;
}

/* The drop event, with the name. Global, so verified once. */
__noinline int kars_dns_emit(struct dns_scratch *s, const struct kars_cgroup_policy *pol,
			     const struct decision *d, const struct dns_query *q)
{
	struct dns_emit_ctx c = {};
	struct kars_event *e;
	__u32 len;

	if (!s || !d || !q)
		return 0;
	e = &s->ev;
	len = q->name_bytes;

	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = bpf_ktime_get_ns();
	e->cgroup_id = q->cgroup_id;
	/* No pid, uid or comm: cgroup_skb programs have the current-task
	 * helpers only from Linux 6.10, and the object must load on 6.1 (the
	 * packet may also be sent from softirq context, where they would name
	 * the wrong task). */
	e->sandbox_id = pol ? pol->sandbox_id : 0;
	e->gen = pol ? pol->gen : 0;
	e->role = pol ? pol->role : KARS_ROLE_NONE;
	e->hook = KARS_HOOK_DNS_EGRESS;
	e->family = q->family;
	e->protocol = d->proto;
	e->verdict = d->verdict;
	e->reason = d->reason;
	e->orig_port = d->port;
	e->new_port = d->port;
	__builtin_memcpy(e->orig_addr, d->addr, 16);
	__builtin_memcpy(e->new_addr, d->addr, 16);

	/* The name in text form: the wire bytes after the first length byte,
	 * each later length byte turned into a dot. */
	s->tail.qtype = q->qtype;
	s->tail.msg_id = q->id;
	s->tail.pad = 0;
	if (len > KARS_DNS_MAX_WIRE)
		len = KARS_DNS_MAX_WIRE;
	s->tail.name_len = len ? len - 1 : 0;
	c.s = s;
	c.len = len;
	c.labels = q->labels;
	bpf_loop(KARS_DNS_MAX_WIRE, dns_emit_byte, &c, 0);
	bpf_loop(KARS_DNS_MAX_LABELS - 1, dns_emit_dot, &c, 0);
	if (bpf_ringbuf_output(&kars_events, e, sizeof(*e) + sizeof(s->tail), 0))
		count(KARS_COUNTER_EVENT_DROPS);
	return 0;
}

/* Offset of the transport header of an IPv6 packet and its protocol, past
 * the extension headers a socket may add (routing, destination options).
 * Returns false for a packet that cannot be followed (fail closed). */
static __always_inline bool dns_ipv6_l4(struct __sk_buff *skb, __u8 *proto, __u32 *off,
					bool *later_fragment)
{
	__u8 nh = *proto;

	for (int i = 0; i < DNS_IPV6_EXTS; i++) {
		__u8 ext[2];

		if (nh != IPPROTO_HOPOPTS && nh != IPPROTO_ROUTING && nh != IPPROTO_DSTOPTS &&
		    nh != IPPROTO_FRAG6 && nh != IPPROTO_AH6) {
			*proto = nh;
			return true;
		}
		if (bpf_skb_load_bytes(skb, *off, ext, sizeof(ext)))
			return false;
		if (nh == IPPROTO_FRAG6) {
			__u16 frag[2];

			if (bpf_skb_load_bytes(skb, *off, frag, sizeof(frag)))
				return false;
			if (bpf_ntohs(frag[1]) & 0xfff8) {
				*later_fragment = true;
				return true;
			}
			*off += 8;
		} else if (nh == IPPROTO_AH6) {
			*off += ((__u32)ext[1] + 2) * 4;
		} else {
			*off += ((__u32)ext[1] + 1) * 8;
		}
		nh = ext[0];
	}
	return false;
}

/* The sandbox's tunnelling caps on a query that passed everything else. */
static __always_inline __u8 dns_caps(const struct kars_cgroup_policy *pol,
				     const struct dns_query *q)
{
	struct kars_dns_caps *c;
	__u32 id;
	__u64 now;

	if (!pol)
		return KARS_REASON_NONE;
	id = pol->sandbox_id;
	c = bpf_map_lookup_elem(&kars_dns_caps, &id);
	if (!c)
		return KARS_REASON_NONE;
	/* Text length is the wire length before the root label, less one. */
	if (c->max_name_len && q->name_bytes > c->max_name_len + 1)
		return KARS_REASON_DNS_TOO_LONG;
	if (!c->max_qps)
		return KARS_REASON_NONE;
	now = bpf_ktime_get_ns();
	if (now - c->window_ns >= 1000000000ULL) {
		c->window_ns = now;
		c->count = 0;
	}
	if (__sync_fetch_and_add(&c->count, 1) >= c->max_qps)
		return KARS_REASON_DNS_RATE;
	return KARS_REASON_NONE;
}

SEC("cgroup_skb/egress")
int kars_dns_egress(struct __sk_buff *skb)
{
	__u64 cgroup_id = bpf_skb_cgroup_id(skb);
	struct kars_cgroup_policy *pol = bpf_map_lookup_elem(&kars_cgroups, &cgroup_id);
	struct dns_query q = {};
	struct decision d = {};
	struct dns_scratch *s;
	bool later_fragment = false;
	__u32 zero = 0, l4_off, msg_off, msg_len;
	__u16 ports[2];

	q.cgroup_id = cgroup_id;
	if (skb->protocol == bpf_htons(0x0800)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
			return 0;
		q.family = AF_INET;
		addr_set_v4(d.addr, ip.daddr);
		d.proto = ip.protocol;
		later_fragment = ip.frag_off & bpf_htons(0x1fff);
		l4_off = (__u32)ip.ihl * 4;
	} else if (skb->protocol == bpf_htons(0x86DD)) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)))
			return 0;
		q.family = AF_INET6;
		__builtin_memcpy(d.addr, &ip6.daddr, 16);
		d.proto = ip6.nexthdr;
		l4_off = sizeof(ip6);
		if (!dns_ipv6_l4(skb, &d.proto, &l4_off, &later_fragment)) {
			d.reason = KARS_REASON_DNS_MALFORMED;
			goto drop;
		}
	} else {
		return 1;
	}
	/* A later fragment carries no ports. Sockets hand whole datagrams to
	 * this hook (the IP layer fragments after it), so only a raw socket,
	 * which no sandbox may create, could send one; the agent's backstop
	 * drops them. */
	if (later_fragment || (d.proto != IPPROTO_UDP && d.proto != IPPROTO_TCP))
		return 1;
	if (bpf_skb_load_bytes(skb, l4_off, ports, sizeof(ports)))
		return 0;
	d.port = bpf_ntohs(ports[1]);
	if (d.port != KARS_DNS_PORT && !(pol && d.port == pol->resolver_port))
		return 1;
	if (d.proto == IPPROTO_UDP) {
		msg_off = l4_off + 8;
		if (skb->len < msg_off) {
			d.reason = KARS_REASON_DNS_MALFORMED;
			goto drop;
		}
		msg_len = skb->len - msg_off;
	} else {
		__u8 doff_byte;
		__u16 len_be;

		if (bpf_skb_load_bytes(skb, l4_off + 12, &doff_byte, 1))
			return 0;
		msg_off = l4_off + (doff_byte >> 4) * 4;
		if (skb->len <= msg_off)
			return 1; /* SYN, ACK, FIN: no payload */
		/* Each segment must hold exactly one whole length-prefixed
		 * message: a query split across segments, or two in one, is
		 * dropped (the connection stalls; nothing unjudged gets out). */
		if (bpf_skb_load_bytes(skb, msg_off, &len_be, 2) ||
		    skb->len - msg_off != 2 + (__u32)bpf_ntohs(len_be)) {
			d.reason = KARS_REASON_DNS_MALFORMED;
			goto drop;
		}
		msg_off += 2;
		msg_len = bpf_ntohs(len_be);
	}
	s = bpf_map_lookup_elem(&kars_dns_scratch, &zero);
	if (!s)
		return 0;
	d.reason = dns_check(skb, s, msg_off, msg_len, &q);
	if (d.reason == KARS_REASON_NONE)
		d.reason = dns_caps(pol, &q);
	if (d.reason == KARS_REASON_NONE)
		return 1;
	d.verdict = KARS_VERDICT_DENY;
	count_verdict(pol ? pol->sandbox_id : 0, d.verdict, d.reason);
	kars_dns_emit(s, pol, &d, &q);
	return 0;
drop:
	d.verdict = KARS_VERDICT_DENY;
	count_verdict(pol ? pol->sandbox_id : 0, d.verdict, d.reason);
	s = bpf_map_lookup_elem(&kars_dns_scratch, &zero);
	if (s)
		kars_dns_emit(s, pol, &d, &q);
	return 0;
}

#endif
