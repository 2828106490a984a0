/* gov_eval.c - one evaluation over a compiled profile: no scan, no malloc.
 *
 * The terminal decision is the smallest (rule, kind) entry, among the keys
 * that match the action, whose rule's conditions hold: rules are numbered in
 * evaluation order, so this is "first rule that decides wins". The matching
 * keys are at most one exact key (hash lookup) and the prefix keys that are
 * prefixes of the action. Those are found with one binary search in the
 * sorted prefix keys: the greatest key <= action has every prefix key of the
 * action among its ancestors (its parent chain), because any string sorted
 * between a prefix P of the action and the action itself starts with P. So
 * the cost is O(log keys + chain), whatever the number of rules.
 *
 * Only when the decision is allow are rate_limit rules charged: every one
 * whose pattern matches and whose conditions hold takes one call from its
 * current window; the first that has none left turns the decision into
 * rate_limited. A window is a fixed, clock-aligned interval of window_ns
 * (CLOCK_MONOTONIC_COARSE / window); its index and count share one 64-bit atomic.
 */
#include <string.h>
#include <time.h>

#include "gov_priv.h"

static const char *const verdict_names[] = {
    [KARS_GOV_ALLOW] = "allow",
    [KARS_GOV_DENY] = "deny",
    [KARS_GOV_REQUIRES_APPROVAL] = "requires_approval",
    [KARS_GOV_RATE_LIMITED] = "rate_limited",
};

static const char *const why_names[] = {
    [KARS_GOV_WHY_ALLOWED_ACTION] = "allowed_action",
    [KARS_GOV_WHY_DENIED_ACTION] = "denied_action",
    [KARS_GOV_WHY_NOT_IN_ALLOWLIST] = "not_in_allowlist",
    [KARS_GOV_WHY_APPROVAL] = "approval_required",
    [KARS_GOV_WHY_RULE_RATE_LIMIT] = "rule_rate_limit",
    [KARS_GOV_WHY_UNMATCHED_ALLOW] = "unmatched_allow",
    [KARS_GOV_WHY_UNMATCHED_DENY] = "unmatched_deny",
    [KARS_GOV_WHY_NO_PROFILE] = "no_profile",
    [KARS_GOV_WHY_BAD_ACTION] = "bad_action",
    [KARS_GOV_WHY_GLOBAL_RATE_LIMIT] = "global_rate_limit",
    [KARS_GOV_WHY_PRINCIPAL_RATE_LIMIT] = "principal_rate_limit",
    [KARS_GOV_WHY_MONITOR_BURST] = "monitor_burst",
    [KARS_GOV_WHY_MONITOR_FAILURES] = "monitor_failures",
    [KARS_GOV_WHY_MONITOR_DENIALS] = "monitor_denials",
};

static const char *const why_reasons[] = {
    [KARS_GOV_WHY_ALLOWED_ACTION] = "the action is on the rule's allowed_actions",
    [KARS_GOV_WHY_DENIED_ACTION] = "the action is on the rule's denied_actions",
    [KARS_GOV_WHY_NOT_IN_ALLOWLIST] =
	"the action is in the rule's namespace but not on its allowed_actions",
    [KARS_GOV_WHY_APPROVAL] = "the action needs human approval",
    [KARS_GOV_WHY_RULE_RATE_LIMIT] = "the rule's max_calls for this window are used up",
    [KARS_GOV_WHY_UNMATCHED_ALLOW] = "no rule decides the action; the profile allows the rest",
    [KARS_GOV_WHY_UNMATCHED_DENY] = "no rule decides the action; the profile denies the rest",
    [KARS_GOV_WHY_NO_PROFILE] = "no governance profile is loaded",
    [KARS_GOV_WHY_BAD_ACTION] = "the action is empty, too long or holds a control byte",
    [KARS_GOV_WHY_GLOBAL_RATE_LIMIT] = "the router-wide rate limit is used up",
    [KARS_GOV_WHY_PRINCIPAL_RATE_LIMIT] = "the caller's rate limit is used up",
    [KARS_GOV_WHY_MONITOR_BURST] =
	"the caller is blocked for a while: too many calls in a short window",
    [KARS_GOV_WHY_MONITOR_FAILURES] =
	"the caller is blocked for a while: too many consecutive failed calls",
    [KARS_GOV_WHY_MONITOR_DENIALS] =
	"the caller is blocked for a while: too many denied calls in a short window",
};

const char *gov_why_reason(enum kars_gov_why why)
{
	return (unsigned)why < sizeof(why_reasons) / sizeof(*why_reasons) ? why_reasons[why]
									  : "unknown";
}

const char *kars_gov_verdict_name(enum kars_gov_verdict v)
{
	return (unsigned)v < sizeof(verdict_names) / sizeof(*verdict_names) ? verdict_names[v]
									    : "unknown";
}

const char *kars_gov_why_name(enum kars_gov_why why)
{
	return (unsigned)why < sizeof(why_names) / sizeof(*why_names) ? why_names[why] : "unknown";
}

size_t kars_gov_profile_rule_count(const struct kars_gov_profile *p)
{
	return p ? p->n_rules : 0;
}

const char *kars_gov_profile_agent(const struct kars_gov_profile *p)
{
	return p ? p->agent : NULL;
}

enum kars_gov_unmatched kars_gov_profile_unmatched(const struct kars_gov_profile *p)
{
	return p ? p->unmatched : KARS_GOV_UNMATCHED_DENY;
}

static void set(struct kars_gov_decision *out, enum kars_gov_verdict v, enum kars_gov_why why,
		const struct kars_gov_profile *p, const struct gov_crule *r)
{
	out->verdict = v;
	out->why = why;
	out->reason = why_reasons[why];
	out->min_approvals = 0;
	out->retry_after_ms = 0;
	if (r) {
		const char *name = p->strings + r->name;
		size_t len = strlen(name);

		memcpy(out->rule, name, len + 1); /* names are at most KARS_GOV_NAME_MAX */
	} else {
		out->rule[0] = '\0';
	}
}

static bool conds_hold(const struct kars_gov_profile *p, const struct gov_crule *r,
		       const struct kars_gov_request *req)
{
	for (uint32_t i = 0; i < r->n_conds; i++) {
		const struct gov_ccond *c = &p->conds[r->conds + i];
		const char *key = p->strings + c->key;
		const char *value = NULL;
		bool ok = false;

		for (size_t j = 0; j < req->n_context; j++) {
			if (req->context[j].key && strcmp(req->context[j].key, key) == 0) {
				value = req->context[j].value;
				break;
			}
		}
		if (!value)
			return false;
		for (uint32_t k = 0; k < c->n_values && !ok; k++)
			ok = strcmp(p->strings + p->cond_values[c->values + k], value) == 0;
		if (!ok)
			return false;
	}
	return true;
}

#define NO_ENTRY UINT64_MAX

/* The smallest entry of key whose rule's conditions hold, if below best. */
static uint64_t best_of_key(const struct kars_gov_profile *p, const struct gov_key *key,
			    const struct kars_gov_request *req, uint64_t best)
{
	for (uint32_t i = 0; i < key->n_entries; i++) {
		const struct gov_entry *e = i ? &p->entries[key->entries + i] : &key->first;
		uint64_t code = ((uint64_t)e->rule << 2) | e->kind;

		if (code >= best)
			break;
		if (!e->has_conds || conds_hold(p, &p->rules[e->rule], req))
			return code;
	}
	return best;
}

struct match {
	int64_t exact;	/* key index or -1 */
	int64_t prefix; /* greatest prefix key <= action, or -1 */
	size_t lcp;	/* its common prefix length with the action */
};

static int64_t find_exact(const struct kars_gov_profile *p, const char *a, size_t len)
{
	uint64_t h, tag;

	if (p->n_exact == 0)
		return -1;
	h = gov_hash(p->hash_seed, a, len);
	tag = h & 0xffffffff00000000ull;
	for (;;) {
		uint64_t slot = p->exact_table[h & p->exact_mask];
		const struct gov_key *k;

		if (slot == 0)
			return -1;
		if ((slot & 0xffffffff00000000ull) == tag) {
			k = &p->keys[(uint32_t)slot - 1];
			if (k->len == len && memcmp(p->strings + k->str, a, len) == 0)
				return (uint32_t)slot - 1;
		}
		h++;
	}
}

/* Is prefix key i <= the action (a, len, its words aw)? */
static bool pkey_le(const struct kars_gov_profile *p, size_t i, const char *a, size_t len,
		    const uint64_t aw[GOV_PKEY_WORDS])
{
	const struct gov_pkey *pk = &p->prefix_pkeys[i];
	const struct gov_key *k;
	size_t l;
	int c;

	for (size_t j = 0; j < GOV_PKEY_WORDS; j++) {
		if (pk->w[j] != aw[j])
			return pk->w[j] < aw[j];
	}
	/* equal so far: past the words only when both are longer */
	if (pk->len <= GOV_PKEY_BYTES || len <= GOV_PKEY_BYTES)
		return pk->len <= len;
	k = &p->keys[p->n_exact + i];
	l = k->len < len ? k->len : len;
	c = memcmp(p->strings + k->str + GOV_PKEY_BYTES, a + GOV_PKEY_BYTES, l - GOV_PKEY_BYTES);
	return c < 0 || (c == 0 && k->len <= len);
}

static void find_prefix(const struct kars_gov_profile *p, const char *a, size_t len,
			struct match *m)
{
	size_t lo = 0, hi = p->n_prefix, n;
	uint64_t aw[GOV_PKEY_WORDS];
	const struct gov_key *k;

	m->prefix = -1;
	m->lcp = 0;
	if (p->n_prefix == 0 || (len < p->prefix_min_len && !p->has_empty_prefix))
		return;
	/* greatest key <= action */
	gov_pkey_words(a, len, aw);
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (pkey_le(p, mid, a, len, aw))
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return;
	m->prefix = (int64_t)(p->n_exact + lo) - 1;
	k = &p->keys[m->prefix];
	n = k->len < len ? k->len : len;
	while (m->lcp < n && p->strings[k->str + m->lcp] == a[m->lcp])
		m->lcp++;
}

/* Calls fn for each prefix key of the action (longest first). */
#define FOR_EACH_PREFIX_KEY(p, m, kvar)                                                            \
	for (int64_t _i = (m)->prefix; _i >= 0; _i = (p)->keys[_i].parent)                         \
		if (((kvar) = &(p)->keys[_i])->len <= (m)->lcp)

static bool take_call(const struct gov_crule *r, uint64_t now_ns, bool peek, uint64_t *retry_ms)
{
	uint64_t idx = now_ns / r->window_ns;
	uint32_t idx32 = (uint32_t)idx;
	uint64_t cur = atomic_load_explicit(r->window, memory_order_relaxed);

	for (;;) {
		uint64_t next;

		if ((uint32_t)(cur >> 32) != idx32) {
			next = ((uint64_t)idx32 << 32) | 1;
		} else if ((uint32_t)cur >= r->max_calls) {
			*retry_ms = ((idx + 1) * r->window_ns - now_ns + 999999) / 1000000;
			return false;
		} else {
			next = cur + 1;
		}
		if (peek)
			return true;
		if (atomic_compare_exchange_weak_explicit(
			r->window, &cur, next, memory_order_relaxed, memory_order_relaxed))
			return true;
	}
}

/* Rules already charged by this evaluation: a rule whose patterns overlap
 * ("inference:*" and "inference:chat*") is charged once. Past CHARGED_MAX
 * distinct rules a rule may be charged twice; no real profile gets there. */
#define CHARGED_MAX 32

struct charged {
	uint32_t rule[CHARGED_MAX];
	unsigned n;
};

static bool already_charged(struct charged *c, uint32_t rule)
{
	for (unsigned i = 0; i < c->n; i++) {
		if (c->rule[i] == rule)
			return true;
	}
	if (c->n < CHARGED_MAX)
		c->rule[c->n++] = rule;
	return false;
}

static bool charge_key(const struct kars_gov_profile *p, const struct gov_key *key,
		       const struct kars_gov_request *req, uint64_t now, struct charged *done,
		       struct kars_gov_decision *out)
{
	for (uint32_t i = 0; i < key->n_rates; i++) {
		const struct gov_crule *r = &p->rules[p->rate_entries[key->rates + i]];
		uint64_t retry_ms;

		if (r->n_conds && !conds_hold(p, r, req))
			continue;
		if (already_charged(done, p->rate_entries[key->rates + i]))
			continue;
		if (!take_call(r, now, req->peek, &retry_ms)) {
			set(out, KARS_GOV_RATE_LIMITED, KARS_GOV_WHY_RULE_RATE_LIMIT, p, r);
			out->retry_after_ms = retry_ms;
			return false;
		}
	}
	return true;
}

static uint64_t now_ns(const struct kars_gov_request *req)
{
	struct timespec ts;

	if (req->now_ns)
		return req->now_ns;
	/* windows are 1 s or longer: the coarse clock (a tick behind at most)
	 * is exact enough and costs a fraction of CLOCK_MONOTONIC's read */
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool action_ok(const char *a, size_t len)
{
	if (!a || len == 0 || len > KARS_GOV_ACTION_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)a[i];

		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

void kars_gov_profile_evaluate(const struct kars_gov_profile *p, const struct kars_gov_request *req,
			       struct kars_gov_decision *out)
{
	const char *a = req ? req->action : NULL;
	size_t len = a ? (req->action_len ? req->action_len : strlen(a)) : 0;
	uint64_t best = NO_ENTRY;
	const struct gov_key *k;
	const struct gov_crule *r;
	struct match m;
	bool has_rates = false;

	if (!action_ok(a, len)) {
		set(out, KARS_GOV_DENY, KARS_GOV_WHY_BAD_ACTION, p, NULL);
		return;
	}
	if (!p) {
		set(out, KARS_GOV_DENY, KARS_GOV_WHY_NO_PROFILE, p, NULL);
		return;
	}
	m.exact = find_exact(p, a, len);
	find_prefix(p, a, len, &m);
	if (m.exact >= 0) {
		best = best_of_key(p, &p->keys[m.exact], req, best);
		has_rates |= p->keys[m.exact].n_rates != 0;
	}
	FOR_EACH_PREFIX_KEY(p, &m, k)
	{
		best = best_of_key(p, k, req, best);
		has_rates |= k->n_rates != 0;
	}

	if (best == NO_ENTRY) {
		if (p->unmatched == KARS_GOV_UNMATCHED_DENY) {
			set(out, KARS_GOV_DENY, KARS_GOV_WHY_UNMATCHED_DENY, p, NULL);
			return;
		}
		set(out, KARS_GOV_ALLOW, KARS_GOV_WHY_UNMATCHED_ALLOW, p, NULL);
	} else {
		r = &p->rules[best >> 2];
		switch (best & 3) {
		case GOV_E_DENY: /* == GOV_E_APPROVAL */
			if (r->type == GOV_RULE_APPROVAL) {
				set(out, KARS_GOV_REQUIRES_APPROVAL, KARS_GOV_WHY_APPROVAL, p, r);
				out->min_approvals = r->min_approvals;
			} else {
				set(out, KARS_GOV_DENY, KARS_GOV_WHY_DENIED_ACTION, p, r);
			}
			return;
		case GOV_E_SCOPE:
			set(out, KARS_GOV_DENY, KARS_GOV_WHY_NOT_IN_ALLOWLIST, p, r);
			return;
		default:
			set(out, KARS_GOV_ALLOW, KARS_GOV_WHY_ALLOWED_ACTION, p, r);
			break;
		}
	}
	if (!has_rates)
		return;
	{
		uint64_t now = now_ns(req);
		struct charged done = {.n = 0};

		if (m.exact >= 0 && !charge_key(p, &p->keys[m.exact], req, now, &done, out))
			return;
		FOR_EACH_PREFIX_KEY(p, &m, k)
		{
			if (!charge_key(p, k, req, now, &done, out))
				return;
		}
	}
}

void kars_gov_profile_carry_windows(struct kars_gov_profile *to,
				    const struct kars_gov_profile *from)
{
	if (!to || !from)
		return;
	for (size_t i = 0; i < to->n_rules; i++) {
		struct gov_crule *t = &to->rules[i];

		if (t->type != GOV_RULE_RATE_LIMIT)
			continue;
		for (size_t j = 0; j < from->n_rules; j++) {
			const struct gov_crule *f = &from->rules[j];

			if (f->type == GOV_RULE_RATE_LIMIT && f->max_calls == t->max_calls &&
			    f->window_ns == t->window_ns &&
			    strcmp(from->strings + f->name, to->strings + t->name) == 0) {
				atomic_store(t->window, atomic_load(f->window));
				break;
			}
		}
	}
}
