/* kars_dns.h - the DNS blocklist as BPF and karsd both see it.
 *
 * A blocklist generation is one BPF array map (an "inner" map of the
 * kars_dns_list array-of-maps): element 0 is a header (the generation's
 * random SipHash key, bucket mask, name length cap), elements 1.. are buckets
 * of 8 slots holding keyed 64-bit hashes of blocked names. karsd builds a new
 * generation off to the side and switches kars_dns_list[0] to it with one map
 * update: a query is checked against the old list or the new one, never half
 * of each. docs/dns.md has the full story.
 *
 * The hash of a name is SipHash-2-4 (the generation's key) over the name's
 * DNS wire form without the root label, byte-reversed: the hash of every
 * suffix (com, example.com, a.example.com) is then a prefix of one stream,
 * so the BPF suffix walk hashes each query name once. The value 0 marks an
 * empty slot, so a hash of 0 is stored and looked up as 1.
 *
 * Each name goes into the emptier of two buckets (b1 = h & mask,
 * b2 = (h >> 32) & mask): a lookup reads at most 16 slots.
 */
#ifndef KARS_DNS_H
#define KARS_DNS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define KARS_DNS_PORT_DOT	853
#define KARS_DNS_MAX_WIRE	255 /* RFC 1035 2.3.4: a name is 255 octets on the wire */
#define KARS_DNS_MAX_TEXT	253 /* ... which is 253 characters without the trailing dot */
#define KARS_DNS_MAX_LABELS	40  /* suffix-walk bound; 34 for an ip6.arpa PTR name */
#define KARS_DNS_BUCKET_SLOTS	8
#define KARS_DNS_MAX_BUCKETS	(1u << 22) /* 32M slots: 16M names at half load */
#define KARS_DNS_TCP_MAX_MSGS	1	   /* DNS messages per TCP segment we judge */
#define KARS_DNS_EVENT_NAME_LEN 256

/* Element 0 of a generation map. Same size as a bucket (the map's value). */
struct kars_dns_header {
	__u64 key[2];	    /* SipHash key: k0, k1 */
	__u32 bucket_mask;  /* n_buckets - 1; buckets are elements 1..n_buckets */
	__u32 gen;	    /* generation number, 1 and up */
	__u32 entries;	    /* distinct names in this generation */
	__u32 max_name_len; /* names longer than this (text form) are denied */
	__u64 loaded_ns;    /* CLOCK_REALTIME of the load, for status */
	__u64 pad[3];
};

/* Every element of a generation map: the header (element 0) or a bucket. */
struct kars_dns_block {
	__u64 slot[KARS_DNS_BUCKET_SLOTS];
};

/* Value of kars_dns_caps, keyed by __u32 sandbox id: the optional caps
 * against DNS tunnelling (a name length below the global cap, queries per
 * second over a one-second window). karsd writes the caps; the program counts
 * in window_ns/count (an approximate window: CPUs race on its reset). */
struct kars_dns_caps {
	__u32 max_name_len; /* 0: only the global cap */
	__u32 max_qps;	    /* 0: no rate cap */
	__u64 window_ns;
	__u64 count;
};

/* A DNS verdict event: a kars_event (hook KARS_HOOK_DNS_EGRESS) followed by
 * the query name in text form, lower case, as far as it could be parsed.
 * Bytes outside printable ASCII are escaped by karsd, not here. */
struct kars_dns_event_tail {
	__u16 qtype;
	__u16 name_len;
	__u16 msg_id;
	__u16 pad;
	char name[KARS_DNS_EVENT_NAME_LEN];
};

/* SipHash-2-4, streamed one 8-byte little-endian word at a time. The same
 * code runs in the BPF program and in karsd, so both hash alike; the unit
 * tests check it against libsodium's crypto_shorthash (also SipHash-2-4). */
struct kars_sip {
	__u64 v0, v1, v2, v3;
};

#define KARS_SIP_ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))
#define KARS_SIP_ROUND(s)                                                                          \
	do {                                                                                       \
		(s)->v0 += (s)->v1;                                                                \
		(s)->v1 = KARS_SIP_ROTL((s)->v1, 13);                                              \
		(s)->v1 ^= (s)->v0;                                                                \
		(s)->v0 = KARS_SIP_ROTL((s)->v0, 32);                                              \
		(s)->v2 += (s)->v3;                                                                \
		(s)->v3 = KARS_SIP_ROTL((s)->v3, 16);                                              \
		(s)->v3 ^= (s)->v2;                                                                \
		(s)->v0 += (s)->v3;                                                                \
		(s)->v3 = KARS_SIP_ROTL((s)->v3, 21);                                              \
		(s)->v3 ^= (s)->v0;                                                                \
		(s)->v2 += (s)->v1;                                                                \
		(s)->v1 = KARS_SIP_ROTL((s)->v1, 17);                                              \
		(s)->v1 ^= (s)->v2;                                                                \
		(s)->v2 = KARS_SIP_ROTL((s)->v2, 32);                                              \
	} while (0)

static inline void kars_sip_init(struct kars_sip *s, __u64 k0, __u64 k1)
{
	s->v0 = k0 ^ 0x736f6d6570736575ULL;
	s->v1 = k1 ^ 0x646f72616e646f6dULL;
	s->v2 = k0 ^ 0x6c7967656e657261ULL;
	s->v3 = k1 ^ 0x7465646279746573ULL;
}

static inline void kars_sip_absorb(struct kars_sip *s, __u64 m)
{
	s->v3 ^= m;
	KARS_SIP_ROUND(s);
	KARS_SIP_ROUND(s);
	s->v0 ^= m;
}

/* The hash of everything absorbed so far plus a tail of len & 7 bytes (the
 * low bytes of tail, the rest zero), len being the total length. The state
 * is copied, so the stream can go on. 0 comes out as 1 (0 = empty slot). */
static inline __u64 kars_sip_final(const struct kars_sip *in, __u64 tail, __u64 len)
{
	struct kars_sip s = *in;
	__u64 b = tail | (len << 56), h;

	kars_sip_absorb(&s, b);
	s.v2 ^= 0xff;
	KARS_SIP_ROUND(&s);
	KARS_SIP_ROUND(&s);
	KARS_SIP_ROUND(&s);
	KARS_SIP_ROUND(&s);
	h = s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
	return h ? h : 1;
}

/* The low n bytes (n < 8) of a little-endian word. */
static inline __u64 kars_sip_tail_mask(__u32 n)
{
	return n ? (~0ULL >> (64 - 8 * n)) : 0;
}

/* The two buckets (1-based map indexes) a hash may live in. */
static inline __u32 kars_dns_bucket1(__u64 h, __u32 mask)
{
	return ((__u32)h & mask) + 1;
}

static inline __u32 kars_dns_bucket2(__u64 h, __u32 mask)
{
	return ((__u32)(h >> 32) & mask) + 1;
}

#endif
