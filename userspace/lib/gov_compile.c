/* gov_compile.c - rules to the table an evaluation reads without scanning.
 *
 * Every pattern of every rule becomes a key: exact ("shell:rm") or prefix
 * ("shell:" from "shell:*", "" from "*"). A key lists what it triggers as
 * (rule, kind) entries, sorted, where rules are numbered in evaluation order
 * (priority, highest first; then file; then position) and kind ranks deny >
 * allow > scope within a capability rule. An evaluation looks the action up
 * once in the exact hash table and once in the sorted prefix table (binary
 * search, then the chain of shorter prefix keys: see gov_eval.c) and takes
 * the smallest entry whose rule's conditions hold. rate_limit rules get
 * their own entry lists, read only when the decision is allow.
 *
 * Everything lives in a handful of arrays allocated here, so an evaluation
 * allocates nothing and the profile is freed with a few free() calls.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "gov_priv.h"

uint64_t gov_hash(uint64_t seed, const char *s, size_t len)
{
	/* eight bytes per step (a multiply and a fold each), then a final mix:
	 * an action of 30 bytes costs four steps, not thirty dependent ones */
	uint64_t h = seed ^ (len * 0x9e3779b97f4a7c15ull);

	while (len >= 8) {
		uint64_t w;

		memcpy(&w, s, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
		s += 8;
		len -= 8;
	}
	if (len) {
		uint64_t w = 0;

		memcpy(&w, s, len);
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

struct tuple {
	const char *s;
	uint32_t len;
	uint8_t prefix;
	uint8_t rate;
	uint8_t kind;
	uint32_t rule;
};

struct builder {
	struct tuple *t;
	size_t n, cap;
	char *strings;
	size_t slen, scap;
	struct kars_err *err;
};

static int add_tuple(struct builder *b, const char *s, size_t len, bool prefix, bool rate,
		     uint8_t kind, uint32_t rule)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 256;
		struct tuple *t = realloc(b->t, cap * sizeof(*t));

		if (!t)
			return kars_err_set(b->err, ENOMEM, "out of memory");
		b->t = t;
		b->cap = cap;
	}
	b->t[b->n++] = (struct tuple){.s = s,
				      .len = (uint32_t)len,
				      .prefix = prefix,
				      .rate = rate,
				      .kind = kind,
				      .rule = rule};
	return 0;
}

static int add_pattern(struct builder *b, const char *pat, bool rate, uint8_t kind, uint32_t rule)
{
	size_t len = strlen(pat);
	bool prefix = len > 0 && pat[len - 1] == '*';

	return add_tuple(b, pat, prefix ? len - 1 : len, prefix, rate, kind, rule);
}

/* The offset of a copy of s[0..len) in the string arena (NUL-terminated). */
static int intern(struct builder *b, const char *s, size_t len, uint32_t *off)
{
	if (b->slen + len + 1 > b->scap) {
		size_t cap = b->scap ? b->scap : 4096;
		char *p;

		while (cap < b->slen + len + 1)
			cap *= 2;
		if (cap > UINT32_MAX)
			return kars_err_set(b->err, E2BIG, "profile strings exceed 4 GiB");
		p = realloc(b->strings, cap);
		if (!p)
			return kars_err_set(b->err, ENOMEM, "out of memory");
		b->strings = p;
		b->scap = cap;
	}
	memcpy(b->strings + b->slen, s, len);
	b->strings[b->slen + len] = '\0';
	*off = (uint32_t)b->slen;
	b->slen += len + 1;
	return 0;
}

static int cmp_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static int tuple_cmp(const void *pa, const void *pb)
{
	const struct tuple *a = pa, *b = pb;
	int c;

	if (a->prefix != b->prefix)
		return a->prefix < b->prefix ? -1 : 1;
	c = cmp_bytes(a->s, a->len, b->s, b->len);
	if (c)
		return c;
	if (a->rate != b->rate)
		return a->rate < b->rate ? -1 : 1;
	if (a->rule != b->rule)
		return a->rule < b->rule ? -1 : 1;
	return a->kind < b->kind ? -1 : a->kind > b->kind;
}

static int rule_order_cmp(const void *pa, const void *pb)
{
	const struct gov_rule *a = *(const struct gov_rule *const *)pa;
	const struct gov_rule *b = *(const struct gov_rule *const *)pb;

	if (a->priority != b->priority)
		return a->priority > b->priority ? -1 : 1;
	if (a->file_index != b->file_index)
		return a->file_index < b->file_index ? -1 : 1;
	return a->position < b->position ? -1 : a->position > b->position;
}

static int rule_name_cmp(const void *pa, const void *pb)
{
	const struct gov_rule *a = *(const struct gov_rule *const *)pa;
	const struct gov_rule *b = *(const struct gov_rule *const *)pb;
	int c = strcmp(a->name, b->name);

	return c ? c : rule_order_cmp(pa, pb);
}

static int check_unique_names(struct gov_rule **order, size_t n, struct kars_err *err)
{
	struct gov_rule **byname = malloc((n ? n : 1) * sizeof(*byname));

	if (!byname)
		return kars_err_set(err, ENOMEM, "out of memory");
	memcpy(byname, order, n * sizeof(*byname));
	qsort(byname, n, sizeof(*byname), rule_name_cmp);
	for (size_t i = 1; i < n; i++) {
		const struct gov_rule *a = byname[i - 1], *b = byname[i];
		int ret;

		if (strcmp(a->name, b->name) != 0)
			continue;
		/* name the later one in file order */
		if (a->file_index > b->file_index ||
		    (a->file_index == b->file_index && a->position > b->position)) {
			const struct gov_rule *t = a;

			a = b;
			b = t;
		}
		ret =
		    kars_err_set(err, EINVAL,
				 "%s:%zu: policies[%zu].name: \"%s\" is also the name of the rule "
				 "at %s:%zu; rule names must be unique (decisions name them)",
				 b->file, b->line, b->position, b->name, a->file, a->line);
		free(byname);
		return ret;
	}
	free(byname);
	return 0;
}

/* The AGT "in scope" namespaces of a capability rule with an allow list: each
 * denied pattern without its trailing '*'s and then ':'s, and each allowed
 * pattern up to its first '.'. An action starting with one of them that no
 * pattern of the rule matched is denied by the rule; any other falls through. */
static int add_scope_keys(struct builder *b, const struct gov_rule *r, uint32_t rule)
{
	int ret;

	for (size_t i = 0; i < r->denied.n; i++) {
		const char *d = r->denied.v[i];
		size_t len = strlen(d);

		while (len > 0 && d[len - 1] == '*')
			len--;
		while (len > 0 && d[len - 1] == ':')
			len--;
		ret = add_tuple(b, d, len, true, false, GOV_E_SCOPE, rule);
		if (ret)
			return ret;
	}
	for (size_t i = 0; i < r->allowed.n; i++) {
		const char *a = r->allowed.v[i];
		const char *dot = strchr(a, '.');

		ret = add_tuple(b, a, dot ? (size_t)(dot - a) : strlen(a), true, false, GOV_E_SCOPE,
				rule);
		if (ret)
			return ret;
	}
	return 0;
}

static int add_rule_patterns(struct builder *b, const struct gov_rule *r, uint32_t rule)
{
	int ret = 0;

	switch (r->type) {
	case GOV_RULE_CAPABILITY:
		for (size_t i = 0; i < r->denied.n && !ret; i++)
			ret = add_pattern(b, r->denied.v[i], false, GOV_E_DENY, rule);
		for (size_t i = 0; i < r->allowed.n && !ret; i++)
			ret = add_pattern(b, r->allowed.v[i], false, GOV_E_ALLOW, rule);
		if (!ret && r->allowed.n > 0)
			ret = add_scope_keys(b, r, rule);
		break;
	case GOV_RULE_APPROVAL:
		for (size_t i = 0; i < r->actions.n && !ret; i++)
			ret = add_pattern(b, r->actions.v[i], false, GOV_E_APPROVAL, rule);
		break;
	case GOV_RULE_RATE_LIMIT:
		for (size_t i = 0; i < r->actions.n && !ret; i++)
			ret = add_pattern(b, r->actions.v[i], true, 0, rule);
		break;
	}
	return ret;
}

void kars_gov_profile_free(struct kars_gov_profile *p)
{
	if (!p)
		return;
	free(p->agent);
	free(p->version);
	free(p->rules);
	free(p->strings);
	free(p->keys);
	free(p->exact_table);
	free(p->prefix_pkeys);
	free(p->entries);
	free(p->rate_entries);
	free(p->conds);
	free(p->cond_values);
	free(p->windows);
	free(p);
}

static int copy_rules(struct builder *b, struct kars_gov_profile *p, struct gov_rule **order,
		      size_t n)
{
	size_t n_conds = 0, n_values = 0, n_windows = 0, vpos = 0;
	int ret;

	for (size_t i = 0; i < n; i++) {
		n_conds += order[i]->n_conds;
		for (size_t j = 0; j < order[i]->n_conds; j++)
			n_values += order[i]->conds[j].values.n;
		n_windows += order[i]->type == GOV_RULE_RATE_LIMIT;
	}
	p->rules = calloc(n ? n : 1, sizeof(*p->rules));
	p->conds = calloc(n_conds ? n_conds : 1, sizeof(*p->conds));
	p->cond_values = calloc(n_values ? n_values : 1, sizeof(*p->cond_values));
	p->windows = calloc(n_windows ? n_windows : 1, sizeof(*p->windows));
	if (!p->rules || !p->conds || !p->cond_values || !p->windows)
		return kars_err_set(b->err, ENOMEM, "out of memory");
	p->n_rules = n;
	for (size_t i = 0; i < n; i++) {
		const struct gov_rule *r = order[i];
		struct gov_crule *c = &p->rules[i];

		ret = intern(b, r->name, strlen(r->name), &c->name);
		if (ret)
			return ret;
		c->type = (uint8_t)r->type;
		c->scope = r->scope;
		c->priority = r->priority;
		c->min_approvals = r->min_approvals;
		c->max_calls = r->max_calls;
		c->window_ns = r->window_ns;
		if (r->type == GOV_RULE_RATE_LIMIT)
			c->window = &p->windows[p->n_windows++];
		c->conds = (uint32_t)p->n_conds;
		c->n_conds = (uint32_t)r->n_conds;
		for (size_t j = 0; j < r->n_conds; j++) {
			struct gov_ccond *cc = &p->conds[p->n_conds++];

			ret = intern(b, r->conds[j].key, strlen(r->conds[j].key), &cc->key);
			if (ret)
				return ret;
			cc->values = (uint32_t)vpos;
			cc->n_values = (uint32_t)r->conds[j].values.n;
			for (size_t k = 0; k < r->conds[j].values.n; k++) {
				const char *v = r->conds[j].values.v[k];
				uint32_t off;

				ret = intern(b, v, strlen(v), &off);
				if (ret)
					return ret;
				p->cond_values[vpos++] = off;
			}
		}
	}
	return 0;
}

/* Turns the sorted tuples into keys with entry ranges, the exact hash table
 * and the prefix parents. */
static int build_keys(struct builder *b, struct kars_gov_profile *p)
{
	size_t n_keys = 0, n_entries = 0, n_rates = 0;
	int32_t *stack = NULL;
	size_t depth = 0, tsize;
	int ret;

	for (size_t i = 0; i < b->n; i++) {
		const struct tuple *t = &b->t[i];

		if (i == 0 || t->prefix != t[-1].prefix ||
		    cmp_bytes(t->s, t->len, t[-1].s, t[-1].len) != 0)
			n_keys++;
		if (t->rate)
			n_rates++;
		else
			n_entries++;
	}
	p->keys = calloc(n_keys ? n_keys : 1, sizeof(*p->keys));
	p->entries = calloc(n_entries ? n_entries : 1, sizeof(*p->entries));
	p->rate_entries = calloc(n_rates ? n_rates : 1, sizeof(*p->rate_entries));
	stack = calloc(n_keys ? n_keys : 1, sizeof(*stack));
	if (!p->keys || !p->entries || !p->rate_entries || !stack) {
		free(stack);
		return kars_err_set(b->err, ENOMEM, "out of memory");
	}
	for (size_t i = 0, k = (size_t)-1; i < b->n; i++) {
		const struct tuple *t = &b->t[i];
		struct gov_key *key;

		if (i == 0 || t->prefix != t[-1].prefix ||
		    cmp_bytes(t->s, t->len, t[-1].s, t[-1].len) != 0) {
			key = &p->keys[++k];
			ret = intern(b, t->s, t->len, &key->str);
			if (ret) {
				free(stack);
				return ret;
			}
			key->len = t->len;
			key->entries = (uint32_t)p->n_entries;
			key->rates = (uint32_t)p->n_rate_entries;
			key->parent = -1;
			if (t->prefix)
				p->n_prefix++;
			else
				p->n_exact++;
		}
		key = &p->keys[k];
		if (t->rate) {
			/* a rule listing overlapping patterns is charged once */
			if (key->n_rates && p->rate_entries[p->n_rate_entries - 1] == t->rule)
				continue;
			p->rate_entries[p->n_rate_entries++] = t->rule;
			key->n_rates++;
		} else {
			p->entries[p->n_entries] = (struct gov_entry){
			    .rule = t->rule,
			    .kind = t->kind,
			    .has_conds = p->rules[t->rule].n_conds != 0,
			};
			if (key->n_entries++ == 0)
				key->first = p->entries[p->n_entries];
			p->n_entries++;
		}
	}

	/* Prefix keys are sorted, i.e. in depth-first order of their trie: a
	 * stack of the keys that are prefixes of the current one gives parents. */
	for (size_t i = p->n_exact; i < p->n_exact + p->n_prefix; i++) {
		struct gov_key *key = &p->keys[i];

		while (depth > 0) {
			const struct gov_key *top = &p->keys[stack[depth - 1]];

			if (top->len <= key->len &&
			    memcmp(b->strings + top->str, b->strings + key->str, top->len) == 0)
				break;
			depth--;
		}
		key->parent = depth ? stack[depth - 1] : -1;
		stack[depth++] = (int32_t)i;
		if (i == p->n_exact || key->len < p->prefix_min_len)
			p->prefix_min_len = key->len;
		if (key->len == 0)
			p->has_empty_prefix = true;
	}
	free(stack);

	tsize = 16;
	while (tsize < p->n_exact * 2)
		tsize *= 2;
	p->exact_table = calloc(tsize, sizeof(*p->exact_table));
	p->prefix_pkeys = calloc(p->n_prefix ? p->n_prefix : 1, sizeof(*p->prefix_pkeys));
	if (!p->exact_table || !p->prefix_pkeys)
		return kars_err_set(b->err, ENOMEM, "out of memory");
	for (size_t i = 0; i < p->n_prefix; i++) {
		const struct gov_key *key = &p->keys[p->n_exact + i];

		gov_pkey_words(b->strings + key->str, key->len, p->prefix_pkeys[i].w);
		p->prefix_pkeys[i].len = key->len;
	}
	p->exact_mask = tsize - 1;
	for (size_t i = 0; i < p->n_exact; i++) {
		const struct gov_key *key = &p->keys[i];
		uint64_t hash = gov_hash(p->hash_seed, b->strings + key->str, key->len), h = hash;

		while (p->exact_table[h & p->exact_mask])
			h++;
		p->exact_table[h & p->exact_mask] = gov_exact_slot(hash, i);
	}
	return 0;
}

static void note_reorder(struct gov_rule **order, size_t n, struct kars_gov_load_notes *notes)
{
	for (size_t i = 1; i < n; i++) {
		const struct gov_rule *a = order[i - 1], *b = order[i];

		if (a->file_index > b->file_index ||
		    (a->file_index == b->file_index && a->position > b->position)) {
			notes->reordered_by_priority = true;
			snprintf(notes->first_moved_rule, sizeof(notes->first_moved_rule), "%s",
				 a->name);
			return;
		}
	}
}

int gov_compile(struct gov_ruleset *rs, struct kars_gov_profile **out,
		struct kars_gov_load_notes *notes, struct kars_err *err)
{
	struct builder b = {.err = err};
	struct kars_gov_profile *p;
	struct gov_rule **order;
	int ret;

	order = malloc((rs->n ? rs->n : 1) * sizeof(*order));
	p = calloc(1, sizeof(*p));
	if (!order || !p) {
		free(order);
		free(p);
		return kars_err_set(err, ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < rs->n; i++)
		order[i] = &rs->rules[i];
	qsort(order, rs->n, sizeof(*order), rule_order_cmp);
	ret = check_unique_names(order, rs->n, err);
	if (ret)
		goto out;
	if (notes) {
		memset(notes, 0, sizeof(*notes));
		note_reorder(order, rs->n, notes);
	}

	p->agent = strdup(rs->agent ? rs->agent : "");
	p->version = strdup(rs->version ? rs->version : "");
	if (!p->agent || !p->version) {
		ret = kars_err_set(err, ENOMEM, "out of memory");
		goto out;
	}
	p->unmatched = rs->unmatched;
	if (getrandom(&p->hash_seed, sizeof(p->hash_seed), 0) != sizeof(p->hash_seed))
		p->hash_seed = (uint64_t)(uintptr_t)p ^ 0x9e3779b97f4a7c15ull;

	ret = copy_rules(&b, p, order, rs->n);
	for (size_t i = 0; i < rs->n && !ret; i++)
		ret = add_rule_patterns(&b, order[i], (uint32_t)i);
	if (ret)
		goto out;
	if (b.n)
		qsort(b.t, b.n, sizeof(*b.t), tuple_cmp);
	ret = build_keys(&b, p);
	if (ret)
		goto out;
	p->strings = b.strings;
	p->strings_len = b.slen;
	b.strings = NULL;
	*out = p;
	p = NULL;
out:
	free(order);
	free(b.t);
	free(b.strings);
	kars_gov_profile_free(p);
	return ret;
}
