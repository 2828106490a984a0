/* fqdn.c - see fqdn.h. */
#include "fqdn.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "addr.h"
#include "dns_name.h"
#include "fqdn_name.h"
#include "karsd.h"
#include "sandbox.skel.h"

#define FD(l, name) bpf_map__fd((l)->skel->maps.name)
/* An expired entry stays in the map this long (unlisted, and denying with
 * reason fqdn_expired rather than not_allowed), then karsd deletes it. */
#define LINGER_NS (10 * 1000000000ull)

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int load_key(struct kars_loader *l, struct kars_fqdn_key *k)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(FD(l, kars_fqdn_key), &zero, k) ? -errno : 0;
}

int kars_fqdn_key_init(struct kars_loader *l, struct kars_err *err)
{
	static const struct kars_fqdn_key none;
	struct kars_fqdn_key k;
	__u32 zero = 0;

	if (load_key(l, &k))
		return kars_err_set(err, errno, "fqdn key: %s", strerror(errno));
	if (memcmp(&k, &none, sizeof(k)))
		return 0; /* pinned from an earlier start: the rules were hashed with it */
	if (getrandom(&k, sizeof(k), 0) != sizeof(k))
		return kars_err_set(err, errno, "fqdn key: getrandom: %s", strerror(errno));
	if (bpf_map_update_elem(FD(l, kars_fqdn_key), &zero, &k, BPF_ANY))
		return kars_err_set(err, errno, "fqdn key: %s", strerror(errno));
	return 0;
}

/* Whether wildcard w ("*.w") matches every name below "name" too: w is a
 * proper suffix of name at a label boundary. */
static bool wildcard_above(const struct kars_fqdn_spec *w, const char *name)
{
	size_t nl = strlen(name), wl = strlen(w->name);

	return w->wildcard && nl > wl + 1 && name[nl - wl - 1] == '.' &&
	       strcmp(name + nl - wl, w->name) == 0;
}

static int add_range(struct kars_fqdn_rule *r, const struct kars_fqdn_spec *f)
{
	struct kars_port_range want = {.proto = f->proto, .lo = f->port_lo, .hi = f->port_hi};
	int i;

	for (i = 0; i < KARS_CIDR_PORT_RANGES && r->ranges[i].proto; i++)
		if (!memcmp(&r->ranges[i], &want, sizeof(want)))
			return 0;
	if (i == KARS_CIDR_PORT_RANGES)
		return -E2BIG;
	r->ranges[i] = want;
	return 0;
}

int kars_fqdn_write_rules(struct kars_loader *l, uint32_t gen, const struct kars_policy *p,
			  struct kars_err *err)
{
	struct kars_fqdn_key k;

	if (!p->n_fqdns)
		return 0;
	if (load_key(l, &k))
		return kars_err_set(err, errno, "fqdns: reading the hash key: %s", strerror(errno));
	for (size_t i = 0; i < p->n_fqdns; i++) {
		const struct kars_fqdn_spec *f = &p->fqdns[i];
		struct kars_fqdn_rule_key key = {.gen = gen, .wildcard = f->wildcard};
		struct kars_fqdn_rule r = {.index = (uint16_t)i};
		bool first = true;

		/* One rule per distinct name: the first entry writes it, with its
		 * own ranges, those of entries naming it again, and those of every
		 * wildcard above it (the BPF side uses the most specific match). */
		for (size_t j = 0; j < i && first; j++)
			if (p->fqdns[j].wildcard == f->wildcard &&
			    !strcmp(p->fqdns[j].name, f->name))
				first = false;
		if (!first)
			continue;
		for (size_t j = 0; j < p->n_fqdns; j++) {
			const struct kars_fqdn_spec *o = &p->fqdns[j];
			bool same = o->wildcard == f->wildcard && !strcmp(o->name, f->name);

			if ((same || wildcard_above(o, f->name)) && add_range(&r, o))
				return kars_err_set(
				    err, E2BIG,
				    "fqdns[%zu].name: \"%s%s\" is reached by more than "
				    "%d port ranges (its own and those of the "
				    "wildcards above it)",
				    i, f->wildcard ? "*." : "", f->name, KARS_CIDR_PORT_RANGES);
		}
		key.hash = kars_fqdn_name_hash(&k, f->name);
		if (bpf_map_update_elem(FD(l, kars_fqdn_rules), &key, &r, BPF_ANY))
			return kars_err_set(err, errno,
					    "fqdns: storing rule: %s (the node holds at most %d "
					    "fqdn rules across sandboxes and generations)",
					    strerror(errno), KARS_FQDN_MAX_RULES);
	}
	return 0;
}

/* What makes a list the same list: names, ports and knobs, in order. */
static uint64_t fingerprint(const struct kars_policy *p)
{
	static const uint64_t key[2] = {0x6b6172732d667164ULL, 0x6e2d6c6973742d31ULL};
	struct kars_sip s;
	uint64_t h;

	kars_sip_init(&s, key[0], key[1]);
	kars_sip_absorb(&s, ((uint64_t)p->fqdn_min_ttl << 32) | p->fqdn_max_ttl);
	kars_sip_absorb(&s, ((uint64_t)p->fqdn_grace << 32) | p->n_fqdns);
	for (size_t i = 0; i < p->n_fqdns; i++) {
		const struct kars_fqdn_spec *f = &p->fqdns[i];

		h = kars_dns_siphash(key, (const uint8_t *)f->name, strlen(f->name));
		kars_sip_absorb(&s, h);
		kars_sip_absorb(&s, ((uint64_t)f->wildcard << 40) | ((uint64_t)f->proto << 32) |
					((uint64_t)f->port_lo << 16) | f->port_hi);
	}
	return kars_sip_final(&s, 0, 0);
}

int kars_fqdn_store_cfg(struct kars_loader *l, uint32_t sandbox_id, uint32_t gen,
			const struct kars_policy *p, struct kars_fqdn_cfg *saved, bool *had,
			struct kars_err *err)
{
	struct kars_fqdn_cfg c = {
	    .min_ttl = p->fqdn_min_ttl,
	    .max_ttl = p->fqdn_max_ttl,
	    .grace = p->fqdn_grace,
	    .n_rules = (uint32_t)p->n_fqdns,
	    .max_entries = p->fqdn_max_entries,
	};
	int fd = FD(l, kars_fqdn_cfg);

	*had = bpf_map_lookup_elem(fd, &sandbox_id, saved) == 0;
	if (!p->n_fqdns) {
		if (*had && bpf_map_delete_elem(fd, &sandbox_id) && errno != ENOENT)
			return kars_err_set(err, errno, "fqdns: %s", strerror(errno));
		return 0;
	}
	c.fingerprint = fingerprint(p);
	/* The quota is not part of the list: the entries and their count stay. */
	c.n_entries = *had ? saved->n_entries : 0;
	/* The same list as before keeps what it learned; another starts afresh. */
	c.since_gen = *had && saved->fingerprint == c.fingerprint ? saved->since_gen : gen;
	if (bpf_map_update_elem(fd, &sandbox_id, &c, BPF_ANY))
		return kars_err_set(err, errno, "fqdns: storing settings: %s", strerror(errno));
	return 0;
}

void kars_fqdn_restore_cfg(struct kars_loader *l, uint32_t sandbox_id,
			   const struct kars_fqdn_cfg *saved, bool had)
{
	if (had)
		bpf_map_update_elem(FD(l, kars_fqdn_cfg), &sandbox_id, saved, BPF_ANY);
	else
		bpf_map_delete_elem(FD(l, kars_fqdn_cfg), &sandbox_id);
}

/* Calls fn for each entry (key, value); deleting is safe: keys are
 * collected first. */
static void each_entry(struct kars_loader *l,
		       void (*fn)(struct kars_loader *, const struct kars_fqdn_entry_key *,
				  const struct kars_fqdn_entry *, void *),
		       void *arg)
{
	int fd = FD(l, kars_fqdn_entries);
	struct kars_fqdn_entry_key *keys = NULL, cur, prev;
	size_t n = 0, cap = 0;
	bool first = true;

	while (bpf_map_get_next_key(fd, first ? NULL : &prev, &cur) == 0) {
		first = false;
		prev = cur;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 256;
			struct kars_fqdn_entry_key *k = realloc(keys, ncap * sizeof(*k));

			if (!k)
				break;
			keys = k;
			cap = ncap;
		}
		keys[n++] = cur;
	}
	for (size_t i = 0; i < n; i++) {
		struct kars_fqdn_entry v;

		if (bpf_map_lookup_elem(fd, &keys[i], &v) == 0)
			fn(l, &keys[i], &v, arg);
	}
	free(keys);
}

/* Whether the entry belongs to the list in force and has a live slot. */
static bool entry_live(struct kars_loader *l, const struct kars_fqdn_entry_key *k,
		       const struct kars_fqdn_entry *v, uint64_t now)
{
	struct kars_fqdn_cfg c;

	if (bpf_map_lookup_elem(FD(l, kars_fqdn_cfg), &k->sandbox_id, &c) ||
	    c.since_gen != v->since_gen)
		return false;
	for (int i = 0; i < KARS_FQDN_SLOTS; i++)
		if (v->slots[i].proto && v->slots[i].expires_ns > now)
			return true;
	return false;
}

struct sweep {
	uint64_t now;
	uint32_t *ids; /* sandbox of each key left, for the recount */
	size_t n, cap;
};

static void gc_one(struct kars_loader *l, const struct kars_fqdn_entry_key *k,
		   const struct kars_fqdn_entry *v, void *arg)
{
	struct sweep *sw = arg;

	if (!entry_live(l, k, v, sw->now > LINGER_NS ? sw->now - LINGER_NS : 0) &&
	    (bpf_map_delete_elem(FD(l, kars_fqdn_entries), k) == 0 || errno == ENOENT))
		return;
	if (sw->n == sw->cap) {
		size_t ncap = sw->cap ? sw->cap * 2 : 256;
		uint32_t *ids = realloc(sw->ids, ncap * sizeof(*ids));

		if (!ids)
			return;
		sw->ids = ids;
		sw->cap = ncap;
	}
	sw->ids[sw->n++] = k->sandbox_id;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Keys of sandbox id among the sorted ids. */
static uint32_t count_id(const uint32_t *ids, size_t n, uint32_t id)
{
	size_t lo = 0, hi = n, first;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	first = lo;
	while (lo < n && ids[lo] == id)
		lo++;
	return (uint32_t)(lo - first);
}

/* Deletes what is dead, then sets each sandbox's n_entries to the keys it
 * has left. An entry the kernel adds during the sweep may be missed until
 * the next one (half a second): the quota can be passed by what a sandbox
 * learns in that time, never by more. */
void kars_fqdn_gc(struct kars_loader *l)
{
	struct sweep sw = {.now = mono_ns()};
	int fd = FD(l, kars_fqdn_cfg);
	uint32_t cur, prev;
	bool first = true;

	each_entry(l, gc_one, &sw);
	if (sw.n)
		qsort(sw.ids, sw.n, sizeof(*sw.ids), cmp_u32);
	while (bpf_map_get_next_key(fd, first ? NULL : &prev, &cur) == 0) {
		struct kars_fqdn_cfg c;
		uint32_t n = count_id(sw.ids, sw.n, cur);

		first = false;
		prev = cur;
		if (bpf_map_lookup_elem(fd, &cur, &c) == 0 && c.n_entries != n) {
			c.n_entries = n;
			bpf_map_update_elem(fd, &cur, &c, BPF_EXIST);
		}
	}
	free(sw.ids);
}

struct forget {
	uint32_t id;
};

static void forget_one(struct kars_loader *l, const struct kars_fqdn_entry_key *k,
		       const struct kars_fqdn_entry *v, void *arg)
{
	if (k->sandbox_id == ((struct forget *)arg)->id)
		bpf_map_delete_elem(FD(l, kars_fqdn_entries), k);
}

void kars_fqdn_forget(struct kars_loader *l, uint32_t sandbox_id)
{
	struct forget f = {.id = sandbox_id};
	int fd = FD(l, kars_fqdn_queries);
	struct kars_fqdn_query_key cur, prev, *del = NULL;
	size_t n = 0, cap = 0;
	bool first = true;

	bpf_map_delete_elem(FD(l, kars_fqdn_cfg), &sandbox_id);
	each_entry(l, forget_one, &f);
	while (bpf_map_get_next_key(fd, first ? NULL : &prev, &cur) == 0) {
		first = false;
		prev = cur;
		if (cur.sandbox_id != sandbox_id)
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct kars_fqdn_query_key *d = realloc(del, ncap * sizeof(*d));

			if (!d)
				break;
			del = d;
			cap = ncap;
		}
		del[n++] = cur;
	}
	for (size_t i = 0; i < n; i++)
		bpf_map_delete_elem(fd, &del[i]);
	free(del);
}

struct listing {
	uint32_t id;
	uint64_t now;
	size_t n;
	json_t *out;
};

static json_t *entry_json(const struct kars_fqdn_entry_key *k, const struct kars_fqdn_entry *v,
			  uint64_t now)
{
	char ip[64], name[KARS_DNS_EVENT_NAME_LEN + 1], ports[16];
	json_t *slots = json_array();
	uint64_t last = 0;
	struct kars_addr a;
	size_t len = v->name_len < KARS_DNS_EVENT_NAME_LEN ? v->name_len : 0;

	memcpy(a.bytes, k->addr, 16);
	memcpy(name, v->name, len);
	name[len] = '\0';
	for (int i = 0; i < KARS_FQDN_SLOTS; i++) {
		const struct kars_fqdn_slot *s = &v->slots[i];

		if (!s->proto || s->expires_ns <= now)
			continue;
		if (s->lo == s->hi)
			snprintf(ports, sizeof(ports), "%u", s->lo);
		else
			snprintf(ports, sizeof(ports), "%u-%u", s->lo, s->hi);
		if (s->expires_ns > last)
			last = s->expires_ns;
		json_array_append_new(
		    slots, json_pack("{s:s,s:s,s:I,s:I}", "protocol", kars_proto_name(s->proto),
				     "ports", ports, "ttl", (json_int_t)s->ttl, "expiresInMs",
				     (json_int_t)((s->expires_ns - now) / 1000000)));
	}
	return json_pack("{s:s,s:s,s:I,s:I,s:o}", "ip", kars_addr_str(&a, ip, sizeof(ip)), "name",
			 name, "learnedAgoMs", (json_int_t)((now - v->learned_ns) / 1000000),
			 "expiresInMs", (json_int_t)((last - now) / 1000000), "ports", slots);
}

static void list_one(struct kars_loader *l, const struct kars_fqdn_entry_key *k,
		     const struct kars_fqdn_entry *v, void *arg)
{
	struct listing *ls = arg;

	if (k->sandbox_id != ls->id || !entry_live(l, k, v, ls->now))
		return;
	ls->n++;
	if (ls->out)
		json_array_append_new(ls->out, entry_json(k, v, ls->now));
}

size_t kars_fqdn_entries(struct kars_loader *l, uint32_t sandbox_id, json_t *out)
{
	struct listing ls = {.id = sandbox_id, .now = mono_ns(), .out = out};

	each_entry(l, list_one, &ls);
	return ls.n;
}

uint32_t kars_fqdn_rules(struct kars_loader *l, uint32_t sandbox_id)
{
	struct kars_fqdn_cfg c;

	return bpf_map_lookup_elem(FD(l, kars_fqdn_cfg), &sandbox_id, &c) ? 0 : c.n_rules;
}

struct tally {
	uint64_t now, live, stored;
};

/* Every key counts as stored (what the capacity is spent on); live ones too. */
static void tally_one(struct kars_loader *l, const struct kars_fqdn_entry_key *k,
		      const struct kars_fqdn_entry *v, void *arg)
{
	struct tally *t = arg;

	t->stored++;
	t->live += entry_live(l, k, v, t->now);
}

void kars_fqdn_stats(struct kars_loader *l, struct kars_fqdn_stats *st)
{
	struct tally t = {.now = mono_ns()};

	memset(st, 0, sizeof(*st));
	each_entry(l, tally_one, &t);
	st->entries = t.live;
	st->stored = t.stored;
	for (__u32 i = 0; i < KARS_FQDN_COUNTER__COUNT; i++)
		st->counters[i] = karsd_percpu_sum(FD(l, kars_fqdn_counters), &i);
}

json_t *kars_fqdn_status(struct kars_loader *l)
{
	static const char *const names[KARS_FQDN_COUNTER__COUNT] = {
	    [KARS_FQDN_ANSWER_LEARNED] = "learned",
	    [KARS_FQDN_ANSWER_NO_QUERY] = "noQuery",
	    [KARS_FQDN_ANSWER_MISMATCH] = "mismatch",
	    [KARS_FQDN_ANSWER_REFUSED] = "refused",
	    [KARS_FQDN_ANSWER_BAD] = "unreadable",
	    [KARS_FQDN_ENTRY_FULL] = "entriesFull",
	    [KARS_FQDN_QUERY_RECORDED] = "queriesRecorded",
	    [KARS_FQDN_ENTRY_QUOTA] = "entriesQuota",
	};
	struct kars_fqdn_stats st;
	json_t *answers = json_object();

	kars_fqdn_stats(l, &st);
	for (__u32 i = 0; i < KARS_FQDN_COUNTER__COUNT; i++)
		json_object_set_new(answers, names[i], json_integer((json_int_t)st.counters[i]));
	return json_pack("{s:I,s:o}", "entries", (json_int_t)st.entries, "counters", answers);
}

void kars_fqdn_event_json(json_t *o, const void *data, size_t size)
{
	const struct kars_event *e = data;
	const struct kars_fqdn_event_tail *t = (const void *)(e + 1);
	char name[KARS_DNS_EVENT_NAME_LEN + 1];
	size_t len;

	if (size < sizeof(*e) + sizeof(*t) || e->hook == KARS_HOOK_DNS_EGRESS)
		return;
	len = t->name_len < KARS_DNS_EVENT_NAME_LEN ? t->name_len : 0;
	memcpy(name, t->name, len);
	name[len] = '\0';
	/* Normalised names only (the kernel lower-cased them): printable. */
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)name[i] <= 0x20 || (unsigned char)name[i] >= 0x7f)
			name[i] = '?';
	json_object_set_new(o, "qname", json_string(name));
	if (e->hook == KARS_HOOK_DNS_INGRESS)
		json_object_set_new(o, "ttl", json_integer(t->ttl));
}
