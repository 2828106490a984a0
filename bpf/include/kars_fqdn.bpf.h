/* kars_fqdn.bpf.h - the router's FQDN allowlist: its maps, and the check
 * the router's connect/sendmsg hooks make after the ip and cidr rules.
 *
 * Included by sandbox.bpf.c before the verdict code. The programs that fill
 * the entries (the DNS query recorder on egress, the answer snooper on
 * ingress) are in kars_dns_answer.bpf.h. kars_fqdn.h has the layouts,
 * docs/dns.md the semantics.
 */
#ifndef KARS_FQDN_BPF_H
#define KARS_FQDN_BPF_H

#include "kars_fqdn.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kars_fqdn_key);
} kars_fqdn_key SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KARS_FQDN_MAX_RULES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct kars_fqdn_rule_key);
	__type(value, struct kars_fqdn_rule);
} kars_fqdn_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KARS_MAX_CGROUPS);
	__type(key, __u32);
	__type(value, struct kars_fqdn_cfg);
} kars_fqdn_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, KARS_FQDN_MAX_QUERIES);
	__type(key, struct kars_fqdn_query_key);
	__type(value, struct kars_fqdn_query);
} kars_fqdn_queries SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KARS_FQDN_MAX_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct kars_fqdn_entry_key);
	__type(value, struct kars_fqdn_entry);
} kars_fqdn_entries SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KARS_FQDN_COUNTER__COUNT);
	__type(key, __u32);
	__type(value, __u64);
} kars_fqdn_counters SEC(".maps");

static __always_inline void fqdn_count(enum kars_fqdn_counter which)
{
	__u32 idx = which;
	__u64 *v = bpf_map_lookup_elem(&kars_fqdn_counters, &idx);

	if (v)
		*v += 1;
}

/* The learned entry for this destination, if it is current. */
static __always_inline struct kars_fqdn_entry *fqdn_entry(__u32 sandbox_id, const __u8 *addr)
{
	struct kars_fqdn_entry_key key = {.sandbox_id = sandbox_id};
	struct kars_fqdn_entry *e;
	struct kars_fqdn_cfg *cfg;

	cfg = bpf_map_lookup_elem(&kars_fqdn_cfg, &sandbox_id);
	if (!cfg)
		return NULL;
	__builtin_memcpy(key.addr, addr, 16);
	e = bpf_map_lookup_elem(&kars_fqdn_entries, &key);
	if (!e || e->since_gen != cfg->since_gen)
		return NULL;
	return e;
}

/* The router's destination against its learned FQDN entries: returns
 * KARS_REASON_RULE_FQDN to allow, else the reason to deny (fqdn_expired when
 * the address was learned for this port but its time is up). *known is set
 * when an entry names the address, so that the event can carry the name. */
static __always_inline __u8 fqdn_check(__u32 sandbox_id, const __u8 *addr, __u8 proto, __u16 port,
				       __u8 *known)
{
	struct kars_fqdn_entry *e = fqdn_entry(sandbox_id, addr);
	bool expired = false;
	__u64 now;

	if (!e)
		return KARS_REASON_NOT_ALLOWED;
	*known = 1;
	now = bpf_ktime_get_ns();
#pragma unroll
	for (int i = 0; i < KARS_FQDN_SLOTS; i++) {
		struct kars_fqdn_slot *sl = &e->slots[i];

		if (sl->proto != proto || port < sl->lo || port > sl->hi)
			continue;
		if (now < sl->expires_ns)
			return KARS_REASON_RULE_FQDN;
		expired = true;
	}
	return expired ? KARS_REASON_FQDN_EXPIRED : KARS_REASON_NOT_ALLOWED;
}

/* Fills an event tail with the name the destination was learned for. */
static __always_inline void fqdn_event_tail(__u32 sandbox_id, const __u8 *addr,
					    struct kars_fqdn_event_tail *t)
{
	struct kars_fqdn_entry *e = fqdn_entry(sandbox_id, addr);

	t->ttl = 0;
	t->qtype = 0;
	if (!e) {
		t->name_len = 0;
		__builtin_memset(t->name, 0, sizeof(t->name));
		return;
	}
	t->name_len = e->name_len;
	__builtin_memcpy(t->name, e->name, sizeof(t->name));
}

#endif
