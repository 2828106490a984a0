/* kars_fqdn.h - the router's FQDN allowlist as BPF and karsd both see it.
 *
 * A sandbox's policy may list names ("fqdns") its router may reach. karsd
 * writes each name as a rule keyed by the policy generation and a keyed hash
 * of the name; the router's DNS queries to the sandbox resolver that match a
 * rule are recorded (kars_fqdn_queries), and the resolver's answer to such a
 * query, and only that answer, turns its A/AAAA records into entries
 * (kars_fqdn_entries: sandbox + address -> port ranges with an expiry) that
 * the router's connect/sendmsg hooks allow. docs/dns.md has the story.
 *
 * Names are hashed label by label, so that a compressed name in an answer
 * hashes like the same name written out: H(label) is SipHash-2-4 (label key)
 * of the label's bytes, ASCII lower-cased; a name's hash is folded from its
 * last label to its first, S(root) = 0 and S(l.rest) = mix(S(rest), H(l)),
 * mix being SipHash-2-4 (chain key) of the two words. S of each suffix falls
 * out on the way, which is what the wildcard rules need. The keys are random
 * per node (kars_fqdn_key, pinned), so nobody can craft a colliding name.
 */
#ifndef KARS_FQDN_H
#define KARS_FQDN_H

#include "kars_dataplane.h"
#include "kars_dns.h"

#define KARS_FQDN_MAX_RULES_PER_SANDBOX 1024
#define KARS_FQDN_MAX_RULES		65536 /* node-wide, every generation */
#define KARS_FQDN_MAX_ENTRIES		65536 /* learned addresses, node-wide */
#define KARS_FQDN_MAX_QUERIES		8192  /* outstanding queries (LRU) */
#define KARS_FQDN_SLOTS			8     /* port ranges per learned address */
#define KARS_FQDN_MAX_RRS		32    /* answer records read per answer */
#define KARS_FQDN_MAX_CHAIN		8     /* names in one CNAME chain */
#define KARS_FQDN_MAX_HOPS		16    /* compression pointers per name */

/* Defaults of "fqdnTtl" (docs/karsd-api.md), seconds. */
#define KARS_FQDN_DEFAULT_MIN_TTL 60
#define KARS_FQDN_DEFAULT_MAX_TTL 86400
#define KARS_FQDN_DEFAULT_GRACE	  30
/* Default of "fqdnMaxEntries": learned addresses one sandbox may hold. */
#define KARS_FQDN_DEFAULT_MAX_ENTRIES 4096

/* Element 0 of kars_fqdn_key; all zero until karsd draws it. */
struct kars_fqdn_key {
	__u64 label[2];
	__u64 chain[2];
};

/* Key of kars_fqdn_rules: one name of a policy generation. wildcard 1 is
 * "*.name" (strictly below name), 0 the name itself. */
struct kars_fqdn_rule_key {
	__u32 gen;
	__u8 wildcard;
	__u8 pad[3];
	__u64 hash;
};

/* karsd folds into each rule the ranges of every wildcard above it, so the
 * most specific match alone says what a name may reach (as for CIDRs). */
struct kars_fqdn_rule {
	struct kars_port_range ranges[KARS_CIDR_PORT_RANGES];
	__u16 index; /* in the policy's fqdns array, for karsd */
	__u16 pad;
};

/* Value of kars_fqdn_cfg, keyed by __u32 sandbox id; present only for a
 * sandbox with fqdns. since_gen: the policy generation at which the fqdns
 * (or their TTL knobs) last changed; queries recorded and entries learned
 * under an older generation count for nothing. n_entries: the sandbox's keys
 * in kars_fqdn_entries, live or not; the kernel adds one per new key, karsd
 * recounts on every sweep (and keeps it across applies); a new key is
 * refused while n_entries >= max_entries. */
struct kars_fqdn_cfg {
	__u32 since_gen;
	__u32 min_ttl; /* seconds */
	__u32 max_ttl;
	__u32 grace;
	__u64 fingerprint; /* of the fqdns and knobs, for karsd */
	__u32 n_rules;
	__u32 max_entries;
	__u32 n_entries;
	__u32 pad;
};

/* Key of kars_fqdn_queries: one query the router sent to its resolver.
 * Addresses v4-mapped, ports host order. */
struct kars_fqdn_query_key {
	__u32 sandbox_id;
	__u16 id;    /* DNS message id */
	__u16 lport; /* the router socket's port */
	__u16 rport; /* the resolver's port */
	__u16 pad;
	__u8 raddr[16]; /* the resolver */
	__u8 laddr[16]; /* the router's address */
};

struct kars_fqdn_query {
	__u64 name_hash;
	__u64 sent_ns;
	__u32 gen; /* policy generation whose rules matched */
	__u16 qtype;
	__u16 rule; /* index of the most specific rule */
	struct kars_port_range ranges[KARS_CIDR_PORT_RANGES];
};

/* Key of kars_fqdn_entries. */
struct kars_fqdn_entry_key {
	__u32 sandbox_id;
	__u32 pad;
	__u8 addr[16];
};

/* One port range a learned address is open on, until expires_ns
 * (CLOCK_MONOTONIC: the record's TTL, clamped, plus the grace). */
struct kars_fqdn_slot {
	__u8 proto; /* 0: unused */
	__u8 pad;
	__u16 lo;
	__u16 hi;
	__u16 pad2;
	__u32 ttl; /* seconds, clamped, of the answer that set it */
	__u32 pad3;
	__u64 expires_ns;
};

struct kars_fqdn_entry {
	__u32 since_gen; /* kars_fqdn_cfg.since_gen when learned */
	__u16 rule;	 /* most specific rule of the last answer */
	__u16 name_len;
	__u64 learned_ns; /* the last answer */
	struct kars_fqdn_slot slots[KARS_FQDN_SLOTS];
	char name[KARS_DNS_EVENT_NAME_LEN]; /* question of the last answer, text */
};

/* Indexes of kars_fqdn_counters (per-CPU array): what became of answers. */
enum kars_fqdn_counter {
	KARS_FQDN_ANSWER_LEARNED = 0,  /* matched its query; records learned */
	KARS_FQDN_ANSWER_NO_QUERY = 1, /* from the resolver, but no outstanding query */
	KARS_FQDN_ANSWER_MISMATCH = 2, /* question differs from the query's */
	KARS_FQDN_ANSWER_REFUSED = 3,  /* rcode, TC, stale generation: nothing to learn */
	KARS_FQDN_ANSWER_BAD = 4,      /* unparseable records: learning stopped there */
	KARS_FQDN_ENTRY_FULL = 5,      /* entries map or an entry's slots full */
	KARS_FQDN_QUERY_RECORDED = 6,  /* router queries recorded on egress */
	KARS_FQDN_ENTRY_QUOTA = 7,     /* a new address refused: the sandbox's quota */
	KARS_FQDN_COUNTER__COUNT,
};

/* The tail of an event an FQDN entry took part in (a connect, or a learned
 * record): the name, and for a learned record its clamped TTL. */
struct kars_fqdn_event_tail {
	__u32 ttl;
	__u16 name_len;
	__u16 qtype;
	char name[KARS_DNS_EVENT_NAME_LEN];
};

/* mix(suffix, label): SipHash-2-4 of the two words under the chain key. */
static inline __u64 kars_fqdn_mix(const __u64 k[2], __u64 suffix, __u64 label)
{
	struct kars_sip s;

	kars_sip_init(&s, k[0], k[1]);
	kars_sip_absorb(&s, suffix);
	kars_sip_absorb(&s, label);
	return kars_sip_final(&s, 0, 16);
}

/* ASCII upper case to lower case in the 8 bytes of a word; other bytes,
 * non-ASCII ones included, stay. */
static inline __u64 kars_fqdn_lower8(__u64 w)
{
	__u64 h = w & 0x7f7f7f7f7f7f7f7fULL;
	__u64 ge_a = h + 0x3f3f3f3f3f3f3f3fULL; /* bit 7 set where byte >= 'A' */
	__u64 gt_z = h + 0x2525252525252525ULL; /* bit 7 set where byte > 'Z' */

	return w | ((ge_a & ~gt_z & ~w & 0x8080808080808080ULL) >> 2);
}

#endif
