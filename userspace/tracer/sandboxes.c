/* sandboxes.c - see sandboxes.h. */
#include "sandboxes.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blocklist.h"
#include "fqdn.h"
#include "log.h"
#include "sandbox.skel.h"

#define MAP_FD(s, name) bpf_map__fd((s)->loader->skel->maps.name)

_Static_assert(KARS_SANDBOX_NAME_MAX < KARS_META_NAME_LEN,
	       "sandbox names must fit the pinned record");

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Lengths were checked by the caller; this only guarantees termination. */
static void copy_str(char *dst, size_t len, const char *src)
{
	size_t n = strnlen(src, len - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

static struct kars_sandbox *find_by_name(const struct kars_sandboxes *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->items[i].meta.name, name) == 0)
			return &s->items[i];
	return NULL;
}

const struct kars_sandbox *kars_sandboxes_by_id(const struct kars_sandboxes *s, uint32_t id)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->items[i].id == id)
			return &s->items[i];
	return NULL;
}

bool kars_sandboxes_is_router_uid(const struct kars_sandboxes *s, uint32_t uid)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->items[i].meta.router_cgroup_id && s->items[i].meta.router_uid == uid)
			return true;
	return false;
}

static uint32_t alloc_id(const struct kars_sandboxes *s)
{
	uint32_t id = 1;

	while (kars_sandboxes_by_id(s, id))
		id++;
	return id;
}

static int retire(struct kars_sandboxes *s, uint32_t gen, uint64_t due_ns)
{
	if (s->n_retired == s->cap_retired) {
		size_t cap = s->cap_retired ? s->cap_retired * 2 : 16;
		struct kars_retired_gen *r = realloc(s->retired, cap * sizeof(*r));

		if (!r)
			return -ENOMEM;
		s->retired = r;
		s->cap_retired = cap;
	}
	s->retired[s->n_retired++] = (struct kars_retired_gen){.gen = gen, .due_ns = due_ns};
	return 0;
}

/* Judges one key by a u32 field of it (a generation, a sandbox id). */
typedef bool (*key_pred)(const struct kars_sandboxes *s, uint32_t field, const void *arg);

/* Deletes every key of a map whose u32 field at field_offset pred accepts.
 * Keys are collected first: deleting while walking a hash map restarts the
 * walk. */
static void delete_keys_where(const struct kars_sandboxes *s, int fd, size_t key_size,
			      size_t field_offset, key_pred pred, const void *arg)
{
	size_t cap = 1024, n = 0;
	char *keys = NULL;
	char cur[64], prev[64];
	bool first = true;

	if (key_size > sizeof(cur) || field_offset + sizeof(uint32_t) > key_size)
		return;
	keys = malloc(cap * key_size);
	if (!keys)
		return;
	while (bpf_map_get_next_key(fd, first ? NULL : prev, cur) == 0) {
		uint32_t field;

		first = false;
		memcpy(prev, cur, key_size);
		memcpy(&field, cur + field_offset, sizeof(field));
		if (!pred(s, field, arg))
			continue;
		if (n == cap) {
			char *bigger = realloc(keys, cap * 2 * key_size);

			if (!bigger)
				break;
			keys = bigger;
			cap *= 2;
		}
		memcpy(keys + n * key_size, cur, key_size);
		n++;
	}
	for (size_t i = 0; i < n; i++)
		bpf_map_delete_elem(fd, keys + i * key_size);
	free(keys);
}

static bool gen_is(const struct kars_sandboxes *s, uint32_t gen, const void *arg)
{
	const uint32_t *gens = arg;

	for (size_t i = 0; gens[i]; i++)
		if (gens[i] == gen)
			return true;
	return false;
}

static bool gen_orphan(const struct kars_sandboxes *s, uint32_t gen, const void *arg)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->items[i].meta.gen == gen)
			return false;
	return true;
}

static bool id_is(const struct kars_sandboxes *s, uint32_t id, const void *arg)
{
	return id == *(const uint32_t *)arg;
}

static void delete_rules(const struct kars_sandboxes *s, key_pred pred, const void *arg)
{
	delete_keys_where(s, MAP_FD(s, kars_rules_exact), sizeof(struct kars_rule_key),
			  offsetof(struct kars_rule_key, gen), pred, arg);
	delete_keys_where(s, MAP_FD(s, kars_rules_cidr), sizeof(struct kars_cidr_key),
			  offsetof(struct kars_cidr_key, gen), pred, arg);
	delete_keys_where(s, MAP_FD(s, kars_fqdn_rules), sizeof(struct kars_fqdn_rule_key),
			  offsetof(struct kars_fqdn_rule_key, gen), pred, arg);
}

void kars_sandboxes_gc(struct kars_sandboxes *s)
{
	uint64_t now = now_ns();
	uint32_t *due = calloc(s->n_retired + 1, sizeof(*due));
	size_t n_due = 0, kept = 0;

	if (!due)
		return;
	for (size_t i = 0; i < s->n_retired; i++) {
		if (s->retired[i].due_ns <= now)
			due[n_due++] = s->retired[i].gen;
		else
			s->retired[kept++] = s->retired[i];
	}
	s->n_retired = kept;
	if (n_due) {
		delete_rules(s, gen_is, due);
		log_debug("retired %zu policy generation(s)", n_due);
	}
	free(due);
	kars_fqdn_gc(s->loader); /* expired FQDN entries leave */
}

/* --- rules --------------------------------------------------------------- */

static int write_exact(struct kars_sandboxes *s, uint32_t gen, const struct kars_policy *p,
		       struct kars_err *err)
{
	struct kars_rule_key *keys;
	uint8_t *values;
	uint32_t count;
	int ret;

	if (!p->n_exact)
		return 0;
	keys = calloc(p->n_exact, sizeof(*keys));
	values = calloc(p->n_exact, sizeof(*values));
	if (!keys || !values) {
		ret = kars_err_set(err, ENOMEM, "rules: out of memory");
		goto out;
	}
	for (size_t i = 0; i < p->n_exact; i++) {
		keys[i].gen = gen;
		keys[i].proto = p->exact[i].proto;
		keys[i].port = p->exact[i].port;
		memcpy(keys[i].addr, p->exact[i].addr.bytes, 16);
		values[i] = 1;
	}
	count = (uint32_t)p->n_exact;
	ret = bpf_map_update_batch(MAP_FD(s, kars_rules_exact), keys, values, &count, NULL);
	if (ret)
		ret =
		    kars_err_set(err, -ret,
				 "rules: stored %u of %zu exact rules: %s (the node holds at most "
				 "%d exact rules across sandboxes)",
				 count, p->n_exact, strerror(-ret), KARS_MAX_EXACT_RULES);
out:
	free(keys);
	free(values);
	return ret;
}

struct cidr_group {
	struct kars_addr addr;
	uint8_t prefix;
	int n;
	struct kars_port_range ranges[KARS_CIDR_PORT_RANGES];
};

static bool prefix_contains(const struct cidr_group *outer, const struct kars_addr *addr)
{
	for (int bit = 0; bit < outer->prefix; bit++) {
		uint8_t mask = (uint8_t)(0x80 >> (bit % 8));

		if ((outer->addr.bytes[bit / 8] & mask) != (addr->bytes[bit / 8] & mask))
			return false;
	}
	return true;
}

static int add_range(struct cidr_group *g, const struct kars_port_range *r, struct kars_err *err)
{
	char buf[64];

	for (int i = 0; i < g->n; i++)
		if (!memcmp(&g->ranges[i], r, sizeof(*r)))
			return 0;
	if (g->n == KARS_CIDR_PORT_RANGES)
		return kars_err_set(
		    err, E2BIG,
		    "rules: cidr %s/%u has more than %d port ranges (counting those "
		    "of the shorter cidrs that contain it)",
		    kars_addr_str(&g->addr, buf, sizeof(buf)),
		    kars_addr_is_v4(&g->addr) ? g->prefix - 96 : g->prefix, KARS_CIDR_PORT_RANGES);
	g->ranges[g->n++] = *r;
	return 0;
}

/* An LPM lookup returns the longest match only, so each prefix carries the
 * port ranges of every shorter prefix that contains it. */
static int write_cidr(struct kars_sandboxes *s, uint32_t gen, const struct kars_policy *p,
		      struct kars_err *err)
{
	struct cidr_group *groups = calloc(p->n_cidr + 1, sizeof(*groups));
	struct cidr_group *merged = calloc(p->n_cidr + 1, sizeof(*merged));
	size_t n = 0;
	int ret = 0;

	if (!groups || !merged) {
		ret = kars_err_set(err, ENOMEM, "rules: out of memory");
		goto out;
	}
	for (size_t i = 0; i < p->n_cidr && !ret; i++) {
		const struct kars_cidr_rule *r = &p->cidr[i];
		struct kars_port_range range = {
		    .proto = r->proto, .lo = r->port_lo, .hi = r->port_hi};
		size_t g;

		for (g = 0; g < n; g++)
			if (groups[g].prefix == r->prefix128 &&
			    !memcmp(&groups[g].addr, &r->addr, 16))
				break;
		if (g == n) {
			groups[n].addr = r->addr;
			groups[n].prefix = r->prefix128;
			n++;
		}
		ret = add_range(&groups[g], &range, err);
	}
	for (size_t g = 0; g < n && !ret; g++) {
		merged[g] = groups[g];
		for (size_t h = 0; h < n && !ret; h++) {
			if (groups[h].prefix >= groups[g].prefix ||
			    !prefix_contains(&groups[h], &groups[g].addr))
				continue;
			for (int i = 0; i < groups[h].n && !ret; i++)
				ret = add_range(&merged[g], &groups[h].ranges[i], err);
		}
	}
	for (size_t g = 0; g < n && !ret; g++) {
		struct kars_cidr_key key = {.prefixlen = 32u + merged[g].prefix, .gen = gen};
		struct kars_cidr_value value = {};

		memcpy(key.addr, merged[g].addr.bytes, 16);
		memcpy(value.ranges, merged[g].ranges, sizeof(value.ranges));
		if (bpf_map_update_elem(MAP_FD(s, kars_rules_cidr), &key, &value, BPF_ANY))
			ret = kars_err_set(err, errno,
					   "rules: storing cidr rule: %s (the node "
					   "holds at most %d cidr rules across sandboxes)",
					   strerror(errno), KARS_MAX_CIDR_RULES);
	}
out:
	free(groups);
	free(merged);
	return ret;
}

/* --- apply / remove -------------------------------------------------------- */

static void fill_cgroup_policy(struct kars_cgroup_policy *v, const struct kars_policy *p,
			       uint32_t id, uint32_t gen, uint8_t role, uint32_t uid)
{
	memset(v, 0, sizeof(*v));
	v->sandbox_id = id;
	v->gen = gen;
	v->role = role;
	v->mode = p->mode;
	v->uid = uid;
	v->learn_max = p->learn_max;
	v->router_port = p->router_port;
	v->proxy_port = p->proxy_port;
	v->resolver_port = p->resolver_port;
	v->has_resolver4 = p->has_resolver4;
	v->has_resolver6 = p->has_resolver6;
	memcpy(&v->resolver4, p->resolver4.bytes + 12, 4);
	memcpy(v->resolver6, p->resolver6.bytes, 16);
}

struct role_target {
	const char *what;
	const struct kars_role_spec *spec;
	uint8_t role;
	char canon[PATH_MAX];
	uint64_t id;
};

static int check_owner(const struct kars_sandboxes *s, const struct role_target *t,
		       const struct kars_sandbox *self, struct kars_err *err)
{
	struct kars_cgroup_policy cur;
	const struct kars_sandbox *owner;

	if (bpf_map_lookup_elem(MAP_FD(s, kars_cgroups), &t->id, &cur))
		return 0;
	if (self && cur.sandbox_id == self->id && cur.role == t->role)
		return 0;
	owner = kars_sandboxes_by_id(s, cur.sandbox_id);
	return kars_err_set(err, EEXIST, "%s.cgroup: %s is already the %s cgroup of sandbox %s",
			    t->what, t->canon, kars_role_name(cur.role),
			    owner ? owner->meta.name : "(unknown)");
}

static int meta_store(struct kars_sandboxes *s, const struct kars_sandbox *sb, struct kars_err *err)
{
	if (bpf_map_update_elem(MAP_FD(s, kars_sandboxes), &sb->id, &sb->meta, BPF_ANY))
		return kars_err_set(err, errno, "storing sandbox record: %s", strerror(errno));
	return 0;
}

static struct kars_sandbox *slot_for(struct kars_sandboxes *s, const char *name)
{
	struct kars_sandbox *sb = find_by_name(s, name);

	if (sb)
		return sb;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct kars_sandbox *items = realloc(s->items, cap * sizeof(*items));

		if (!items)
			return NULL;
		s->items = items;
		s->cap = cap;
	}
	sb = &s->items[s->n];
	memset(sb, 0, sizeof(*sb));
	sb->id = alloc_id(s);
	copy_str(sb->meta.name, sizeof(sb->meta.name), name);
	s->n++;
	return sb;
}

int kars_sandboxes_apply(struct kars_sandboxes *s, const struct kars_policy *p, json_t **resp,
			 struct kars_err *err)
{
	struct role_target targets[2] = {
	    {.what = "agent", .spec = &p->agent, .role = KARS_ROLE_AGENT},
	    {.what = "router", .spec = &p->router, .role = KARS_ROLE_ROUTER},
	};
	struct kars_sandbox *existing = find_by_name(s, p->sandbox), *sb;
	struct kars_sandbox before = {};
	struct kars_cgroup_policy saved[2];
	bool had_saved[2] = {false, false};
	struct kars_fqdn_cfg saved_fqdn;
	bool had_fqdn = false, stored_fqdn = false;
	uint32_t gen, id, old_gen = 0;
	int ret = 0;

	for (int i = 0; i < 2 && !ret; i++) {
		if (!targets[i].spec->present)
			continue;
		ret = kars_cgroup_resolve(s->loader, targets[i].spec->cgroup, targets[i].canon,
					  sizeof(targets[i].canon), &targets[i].id, targets[i].what,
					  err);
		if (!ret)
			ret = check_owner(s, &targets[i], existing, err);
		if (!ret && strlen(targets[i].canon) >= KARS_META_PATH_LEN)
			ret = kars_err_set(err, ENAMETOOLONG, "%s.cgroup: path longer than %d",
					   targets[i].what, KARS_META_PATH_LEN - 1);
	}
	if (!ret && targets[0].id && targets[0].id == targets[1].id)
		ret =
		    kars_err_set(err, EINVAL, "router.cgroup: is the same cgroup as agent.cgroup");
	if (ret)
		return ret;

	if (existing)
		before = *existing;
	id = existing ? existing->id : alloc_id(s);
	gen = s->next_gen++;

	/* 1. The new generation's rules, invisible until a cgroup points at them. */
	ret = write_exact(s, gen, p, err);
	if (!ret)
		ret = write_cidr(s, gen, p, err);
	if (!ret)
		ret = kars_fqdn_write_rules(s->loader, gen, p, err);
	/* The FQDN settings before the switch: a changed list's since_gen is
	 * the new generation, so nothing the old one recorded is learned. */
	if (!ret)
		ret = kars_fqdn_store_cfg(s->loader, id, gen, p, &saved_fqdn, &had_fqdn, err);
	if (ret)
		goto undo_rules;
	stored_fqdn = true;

	/* 2. Switch each role cgroup: one map update each, then attach (a no-op
	 * re-adoption when already attached). Policy before programs, so a
	 * socket never meets our programs without its policy. */
	for (int i = 0; i < 2 && !ret; i++) {
		struct kars_cgroup_policy v;

		if (!targets[i].spec->present)
			continue;
		fill_cgroup_policy(&v, p, id, gen, targets[i].role, targets[i].spec->uid);
		had_saved[i] =
		    !bpf_map_lookup_elem(MAP_FD(s, kars_cgroups), &targets[i].id, &saved[i]);
		if (bpf_map_update_elem(MAP_FD(s, kars_cgroups), &targets[i].id, &v, BPF_ANY))
			ret = kars_err_set(err, errno, "%s.cgroup: storing policy: %s",
					   targets[i].what, strerror(errno));
		if (!ret)
			ret = kars_loader_attach(s->loader, targets[i].canon, targets[i].id,
						 targets[i].role, err);
	}
	if (!ret) /* the DNS tunnelling caps (docs/dns.md) */
		ret = kars_dns_caps_store_fd(MAP_FD(s, kars_dns_caps), id, p->dns_max_name_len,
					     p->dns_max_qps, err);
	if (ret)
		goto undo_cgroups;

	/* 3. Record it; retire what the new policy replaced. */
	sb = slot_for(s, p->sandbox);
	if (!sb) {
		ret = kars_err_set(err, ENOMEM, "out of memory");
		goto undo_cgroups;
	}
	sb->id = id;
	old_gen = existing ? before.meta.gen : 0;
	sb->meta.gen = gen;
	sb->meta.mode = p->mode;
	sb->meta.n_exact = (uint32_t)p->n_exact;
	sb->meta.n_cidr = (uint32_t)p->n_cidr;
	sb->meta.agent_cgroup_id = targets[0].id;
	sb->meta.router_cgroup_id = targets[1].id;
	sb->meta.agent_uid = p->agent.present ? p->agent.uid : KARS_UID_ANY;
	sb->meta.router_uid = p->router.present ? p->router.uid : KARS_UID_ANY;
	copy_str(sb->meta.agent_cgroup, sizeof(sb->meta.agent_cgroup), targets[0].canon);
	copy_str(sb->meta.router_cgroup, sizeof(sb->meta.router_cgroup), targets[1].canon);
	ret = meta_store(s, sb, err);
	if (ret)
		log_error("sandbox %s: policy applied but not recorded: %s", p->sandbox, err->msg);
	if (existing) {
		uint64_t old_ids[2] = {before.meta.agent_cgroup_id, before.meta.router_cgroup_id};

		for (int i = 0; i < 2; i++) {
			if (!old_ids[i] || old_ids[i] == targets[0].id ||
			    old_ids[i] == targets[1].id)
				continue;
			bpf_map_delete_elem(MAP_FD(s, kars_cgroups), &old_ids[i]);
			kars_loader_detach(s->loader, old_ids[i], NULL);
		}
		retire(s, old_gen, now_ns() + KARS_RETIRE_GRACE_NS);
	}
	log_info("sandbox %s (id %u): generation %u applied: mode %s, %zu exact and %zu cidr rules",
		 p->sandbox, id, gen, kars_mode_name(p->mode), p->n_exact, p->n_cidr);
	*resp = json_pack("{s:b,s:s,s:I,s:I}", "ok", 1, "sandbox", p->sandbox, "sandboxId",
			  (json_int_t)id, "generation", (json_int_t)gen);
	return 0;

undo_cgroups:
	/* Put back what was there; a cgroup that had no entry gets none, so our
	 * programs, where attached, deny everything in it. */
	for (int i = 0; i < 2; i++) {
		if (!targets[i].spec->present)
			continue;
		if (had_saved[i])
			bpf_map_update_elem(MAP_FD(s, kars_cgroups), &targets[i].id, &saved[i],
					    BPF_ANY);
		else
			bpf_map_delete_elem(MAP_FD(s, kars_cgroups), &targets[i].id);
	}
undo_rules:
	if (stored_fqdn)
		kars_fqdn_restore_cfg(s->loader, id, &saved_fqdn, had_fqdn);
	retire(s, gen, 0);
	kars_sandboxes_gc(s);
	return ret;
}

static void delete_sandbox_entries(struct kars_sandboxes *s, uint32_t id)
{
	delete_keys_where(s, MAP_FD(s, kars_learned), sizeof(struct kars_learned_key),
			  offsetof(struct kars_learned_key, sandbox_id), id_is, &id);
	bpf_map_delete_elem(MAP_FD(s, kars_learn_count), &id);
	bpf_map_delete_elem(MAP_FD(s, kars_dns_caps), &id);
	kars_fqdn_forget(s->loader, id);
	/* Per-sandbox counters go too; the totals in metrics restart from zero,
	 * as Prometheus counters of a removed series should. */
	delete_keys_where(s, MAP_FD(s, kars_stats), sizeof(struct kars_stat_key),
			  offsetof(struct kars_stat_key, sandbox_id), id_is, &id);
}

int kars_sandboxes_remove(struct kars_sandboxes *s, const char *name, struct kars_err *err)
{
	struct kars_sandbox *sb = find_by_name(s, name);
	const char *paths[2];
	uint64_t ids[2];
	uint32_t id, gen;

	if (!sb)
		return kars_err_set(err, ENOENT, "sandbox: %s not found", name);
	paths[0] = sb->meta.agent_cgroup;
	paths[1] = sb->meta.router_cgroup;
	ids[0] = sb->meta.agent_cgroup_id;
	ids[1] = sb->meta.router_cgroup_id;
	/* Enforcement ends only where nothing is left to enforce it on. */
	for (int i = 0; i < 2; i++) {
		if (ids[i] && kars_cgroup_populated(paths[i], NULL) == 1)
			return kars_err_set(err, EBUSY,
					    "sandbox: %s cgroup %s still has processes; stop them "
					    "first (the policy stays in force until then)",
					    i == 0 ? "agent" : "router", paths[i]);
	}
	for (int i = 0; i < 2; i++) {
		if (!ids[i])
			continue;
		bpf_map_delete_elem(MAP_FD(s, kars_cgroups), &ids[i]);
		kars_loader_detach(s->loader, ids[i], err);
	}
	id = sb->id;
	gen = sb->meta.gen;
	delete_sandbox_entries(s, id);
	bpf_map_delete_elem(MAP_FD(s, kars_sandboxes), &id);
	*sb = s->items[--s->n];
	retire(s, gen, 0);
	kars_sandboxes_gc(s);
	log_info("sandbox %s (id %u) removed", name, id);
	return 0;
}

/* --- queries ------------------------------------------------------------------ */

static json_t *role_json(uint64_t id, const char *path, uint32_t uid)
{
	if (!id)
		return json_null();
	return json_pack("{s:s,s:I,s:o}", "cgroup", path, "cgroupId", (json_int_t)id, "uid",
			 uid == KARS_UID_ANY ? json_null() : json_integer(uid));
}

json_t *kars_sandboxes_list(const struct kars_sandboxes *s)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < s->n; i++) {
		const struct kars_sandbox_meta *m = &s->items[i].meta;
		uint32_t id = s->items[i].id;

		json_array_append_new(
		    arr, json_pack("{s:s,s:I,s:I,s:s,s:o,s:o,s:I,s:I,s:I,s:I}", "sandbox", m->name,
				   "sandboxId", (json_int_t)s->items[i].id, "generation",
				   (json_int_t)m->gen, "mode", kars_mode_name(m->mode), "agent",
				   role_json(m->agent_cgroup_id, m->agent_cgroup, m->agent_uid),
				   "router",
				   role_json(m->router_cgroup_id, m->router_cgroup, m->router_uid),
				   "exactRules", (json_int_t)m->n_exact, "cidrRules",
				   (json_int_t)m->n_cidr, "fqdnRules",
				   (json_int_t)kars_fqdn_rules(s->loader, id), "fqdnEntries",
				   (json_int_t)kars_fqdn_entries(s->loader, id, NULL)));
	}
	return arr;
}

int kars_sandboxes_fqdn(const struct kars_sandboxes *s, const char *name, json_t **out,
			struct kars_err *err)
{
	const struct kars_sandbox *sb = find_by_name(s, name);

	if (!sb)
		return kars_err_set(err, ENOENT, "sandbox: %s not found", name);
	*out = json_array();
	kars_fqdn_entries(s->loader, sb->id, *out);
	return 0;
}

int kars_sandboxes_learned(const struct kars_sandboxes *s, const char *name, json_t **out,
			   struct kars_err *err)
{
	const struct kars_sandbox *sb = find_by_name(s, name);
	int fd = MAP_FD(s, kars_learned);
	struct kars_learned_key key, prev;
	bool first = true;
	json_t *arr;

	if (!sb)
		return kars_err_set(err, ENOENT, "sandbox: %s not found", name);
	arr = json_array();
	while (bpf_map_get_next_key(fd, first ? NULL : &prev, &key) == 0) {
		struct kars_learned_value v;
		struct kars_addr a;
		char ip[64];

		first = false;
		prev = key;
		if (key.sandbox_id != sb->id || bpf_map_lookup_elem(fd, &key, &v))
			continue;
		memcpy(a.bytes, key.addr, 16);
		json_array_append_new(
		    arr, json_pack("{s:s,s:s,s:s,s:i,s:I,s:I,s:I}", "role",
				   kars_role_name(key.role), "protocol", kars_proto_name(key.proto),
				   "ip", kars_addr_str(&a, ip, sizeof(ip)), "port", key.port,
				   "count", (json_int_t)v.count, "firstSeenNs",
				   (json_int_t)v.first_ns, "lastSeenNs", (json_int_t)v.last_ns));
	}
	*out = arr;
	return 0;
}

int kars_sandboxes_orig_dst(const struct kars_sandboxes *s, uint64_t cookie, uint32_t uid,
			    bool admin, json_t **out, struct kars_err *err)
{
	struct kars_orig_dst orig;
	const struct kars_sandbox *sb;
	struct kars_addr a;
	char ip[64];

	/* Only redirects: the proxy has no business with DNS or router-port
	 * rewrites (and a connection to the proxy's contract port 8444 is one). */
	if (bpf_map_lookup_elem(MAP_FD(s, kars_orig_dst), &cookie, &orig) ||
	    orig.verdict != KARS_VERDICT_REDIRECT)
		return kars_err_set(err, ENOENT,
				    "cookie: no redirected connection with cookie %llu",
				    (unsigned long long)cookie);
	sb = kars_sandboxes_by_id(s, orig.sandbox_id);
	if (!admin && (!sb || sb->meta.router_uid != uid))
		return kars_err_set(
		    err, EACCES,
		    "permission denied: cookie %llu is not a connection of a sandbox "
		    "whose router runs as UID %u",
		    (unsigned long long)cookie, uid);
	memcpy(a.bytes, orig.addr, 16);
	*out = json_pack("{s:b,s:s,s:i,s:s,s:s,s:s}", "ok", 1, "ip",
			 kars_addr_str(&a, ip, sizeof(ip)), "port", orig.port, "family",
			 orig.family == AF_INET6 ? "ipv6" : "ipv4", "verdict",
			 kars_verdict_name(orig.verdict), "sandbox", sb ? sb->meta.name : "");
	return 0;
}

/* --- start-up -------------------------------------------------------------------- */

static void adopt_role(struct kars_sandboxes *s, struct kars_sandbox *sb, __u64 *id,
		       const char *path, int role)
{
	const char *what = kars_role_name((uint8_t)role);
	char canon[PATH_MAX];
	uint64_t now_id;
	struct kars_err err = {};

	if (!*id)
		return;
	if (kars_cgroup_resolve(s->loader, path, canon, sizeof(canon), &now_id, what, &err) ||
	    now_id != *id) {
		log_warn("sandbox %s: %s cgroup %s is gone; dropping its programs", sb->meta.name,
			 what, path);
		bpf_map_delete_elem(MAP_FD(s, kars_cgroups), id);
		kars_loader_detach(s->loader, *id, NULL);
		return;
	}
	if (kars_loader_attach(s->loader, canon, *id, role, &err))
		log_error("sandbox %s: re-adopting %s cgroup %s: %s", sb->meta.name, what, canon,
			  err.msg);
}

int kars_sandboxes_init(struct kars_sandboxes *s, struct kars_loader *l, struct kars_err *err)
{
	int fd;
	uint32_t key, prev;
	bool first = true;

	memset(s, 0, sizeof(*s));
	s->loader = l;
	s->next_gen = 1;
	if (kars_fqdn_key_init(l, err))
		return -err->code;
	fd = MAP_FD(s, kars_sandboxes);
	while (bpf_map_get_next_key(fd, first ? NULL : &prev, &key) == 0) {
		struct kars_sandbox *sb;
		struct kars_sandbox_meta meta;

		first = false;
		prev = key;
		if (bpf_map_lookup_elem(fd, &key, &meta))
			continue;
		meta.name[sizeof(meta.name) - 1] = '\0';
		sb = slot_for(s, meta.name);
		if (!sb)
			return kars_err_set(err, ENOMEM, "out of memory");
		sb->id = key;
		sb->meta = meta;
		if (meta.gen >= s->next_gen)
			s->next_gen = meta.gen + 1;
	}
	for (size_t i = 0; i < s->n; i++) {
		struct kars_sandbox *sb = &s->items[i];

		adopt_role(s, sb, &sb->meta.agent_cgroup_id, sb->meta.agent_cgroup,
			   KARS_ROLE_AGENT);
		adopt_role(s, sb, &sb->meta.router_cgroup_id, sb->meta.router_cgroup,
			   KARS_ROLE_ROUTER);
		log_info("re-adopted sandbox %s (id %u, generation %u)", sb->meta.name, sb->id,
			 sb->meta.gen);
	}
	/* Rules of no current generation: left by a crash between writing and
	 * retiring. Nothing points at them; delete. */
	delete_rules(s, gen_orphan, NULL);
	return 0;
}

void kars_sandboxes_free(struct kars_sandboxes *s)
{
	free(s->items);
	free(s->retired);
	memset(s, 0, sizeof(*s));
}
