/* gov_priv.h - the governance library's insides, shared by its gov_*.c files.
 *
 * gov_doc.c    YAML/JSON bytes -> a small tree that remembers line numbers
 * gov_profile.c tree -> rules (struct gov_rule), validated field by field
 * gov_compile.c rules -> struct kars_gov_profile (hash + sorted prefix table)
 * gov_eval.c   evaluation over the compiled form; the engine (reload)
 */
#ifndef KARS_GOV_PRIV_H
#define KARS_GOV_PRIV_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "governance.h"

/* --- document tree ---------------------------------------------------------- */

enum gov_node_kind {
	GOV_SCALAR,
	GOV_SEQ,
	GOV_MAP, /* items: key, value, key, value, ... (keys are scalars) */
};

struct gov_node {
	enum gov_node_kind kind;
	bool plain;  /* scalar written without quotes (so `5` may be a number) */
	size_t line; /* 1-based */
	char *text;  /* scalar bytes, NUL-terminated (a NUL inside is refused) */
	size_t len;
	struct gov_node **items;
	size_t n;
};

/* Parses one YAML document (JSON included). Refuses aliases, anchors, tags,
 * several documents, duplicate keys, non-scalar keys and nesting past 32.
 * name is for errors. */
struct gov_node *gov_doc_parse(const char *buf, size_t len, const char *name, struct kars_err *err);
void gov_doc_free(struct gov_node *n);
/* The value of key in map, or NULL. */
const struct gov_node *gov_doc_get(const struct gov_node *map, const char *key);
/* A plain scalar that YAML resolves to null: "", "~", "null". */
bool gov_doc_is_null(const struct gov_node *n);

/* --- rules, as loaded ---------------------------------------------------------- */

enum gov_rule_type {
	GOV_RULE_CAPABILITY,
	GOV_RULE_APPROVAL,
	GOV_RULE_RATE_LIMIT,
};

struct gov_strv {
	char **v;
	size_t n;
};

struct gov_cond {
	char *key;
	struct gov_strv values; /* one for a scalar; membership for a list */
};

struct gov_rule {
	char *name;
	enum gov_rule_type type;
	struct gov_strv allowed; /* capability */
	struct gov_strv denied;	 /* capability */
	struct gov_strv actions; /* approval, rate_limit */
	uint32_t min_approvals;
	uint32_t max_calls;
	uint64_t window_ns;
	uint32_t priority;
	uint8_t scope; /* 0 global, 1 tenant, 2 organization, 3 agent: recorded, no effect */
	struct gov_cond *conds;
	size_t n_conds;
	/* where it came from, for errors and for the tie-break */
	size_t file_index;
	size_t position;
	size_t line;
	const char *file;
};

struct gov_ruleset {
	char *agent;
	char *version;
	bool unmatched_set;
	enum kars_gov_unmatched unmatched;
	struct gov_rule *rules;
	size_t n, cap;
	char **files; /* names, for the rules' file pointers */
	size_t n_files;
};

void gov_ruleset_free(struct gov_ruleset *rs);
/* Adds one parsed document's rules to rs (file_index = rs->n_files). */
int gov_ruleset_add_doc(struct gov_ruleset *rs, const struct gov_node *root, const char *name,
			struct kars_err *err);

/* A pattern is exact, or a prefix when it ended in '*' ("*" is the empty
 * prefix, "x.*" the prefix "x."). Returns 0 or -EINVAL with why set. */
int gov_pattern_check(const char *pat, const char **why);

/* --- compiled form --------------------------------------------------------------- */

/* What one pattern does in one rule, ranked so that a lower (rule, rank) wins:
 * within a capability rule deny beats allow beats the scope check. */
enum gov_entry_kind {
	GOV_E_DENY = 0,
	GOV_E_APPROVAL = 0,
	GOV_E_ALLOW = 1,
	GOV_E_SCOPE = 2, /* in the rule's scope but not on its allow list */
};

struct gov_entry {
	uint32_t rule;	   /* index in evaluation order */
	uint8_t kind;	   /* enum gov_entry_kind; approval rules use GOV_E_APPROVAL */
	uint8_t has_conds; /* the rule has conditions: only then is rules[] read */
};

/* A distinct pattern string, exact or prefix, and what it triggers. */
struct gov_key {
	uint32_t str; /* offset in strings */
	uint32_t len;
	uint32_t entries; /* first in entries[] (terminal rules), sorted */
	uint32_t n_entries;
	struct gov_entry first; /* entries[entries], kept here: most keys have one */
	uint32_t rates;		/* first in rate_entries[] */
	uint32_t n_rates;
	int32_t
	    parent; /* prefix keys: the longest other prefix key that is a prefix of this, or -1 */
};

struct gov_crule {
	uint32_t name; /* offset in strings */
	uint8_t type;
	uint8_t scope;
	uint32_t priority;
	uint32_t min_approvals;
	uint32_t max_calls;
	uint64_t window_ns;
	uint32_t conds; /* first in conds[] */
	uint32_t n_conds;
	_Atomic uint64_t *window; /* rate_limit: (window index << 32) | count */
};

struct gov_ccond {
	uint32_t key;	 /* offset in strings */
	uint32_t values; /* first in cond_values[] (string offsets) */
	uint32_t n_values;
};

struct kars_gov_profile {
	char *agent;
	char *version;
	enum kars_gov_unmatched unmatched;
	struct gov_crule *rules;
	size_t n_rules;
	char *strings;
	size_t strings_len;
	struct gov_key *keys; /* exact keys, then prefix keys (sorted) */
	size_t n_exact;
	size_t n_prefix;
	uint64_t *exact_table; /* open addressing, gov_exact_slot(), 0 = empty */
	uint64_t exact_mask;
	struct gov_pkey
	    *prefix_pkeys; /* prefix key i is keys[n_exact + i]: the search reads these */
	uint64_t hash_seed;
	struct gov_entry *entries;
	size_t n_entries;
	uint32_t *rate_entries; /* rule indices */
	size_t n_rate_entries;
	struct gov_ccond *conds;
	size_t n_conds;
	uint32_t *cond_values;
	_Atomic uint64_t *windows;
	size_t n_windows;
	/* the shortest and longest prefix key, to skip the search cheaply */
	uint32_t prefix_min_len;
	bool has_empty_prefix;
};

/* Compiles rs (sorted here by priority, then file, then position). */
int gov_compile(struct gov_ruleset *rs, struct kars_gov_profile **out,
		struct kars_gov_load_notes *notes, struct kars_err *err);

uint64_t gov_hash(uint64_t seed, const char *s, size_t len);

/* The sentence of a why code (gov_eval.c), for the limiter's decisions. */
const char *gov_why_reason(enum kars_gov_why why);

/* An exact-table slot: the key index + 1 in the low half, the hash's high
 * half as a tag, so that a probe that does not match rarely touches keys[]. */
static inline uint64_t gov_exact_slot(uint64_t hash, size_t key_index)
{
	return (hash & 0xffffffff00000000ull) | (uint32_t)(key_index + 1);
}

/* The first GOV_PKEY_WORDS * 8 bytes of a prefix key, as big-endian words,
 * zero-padded, with its length: comparing words orders the strings as memcmp
 * would (neither holds a NUL: loader and evaluator refuse those), so the
 * binary search reads this dense array and touches the string arena only
 * when two strings agree on all of it. */
#define GOV_PKEY_WORDS 3
#define GOV_PKEY_BYTES (GOV_PKEY_WORDS * 8)

struct gov_pkey {
	uint64_t w[GOV_PKEY_WORDS];
	uint64_t len;
};

static inline void gov_pkey_words(const char *s, size_t len, uint64_t w[GOV_PKEY_WORDS])
{
	for (size_t j = 0; j < GOV_PKEY_WORDS; j++) {
		uint64_t h = 0;

		for (size_t i = j * 8; i < j * 8 + 8; i++)
			h = (h << 8) | (i < len ? (unsigned char)s[i] : 0);
		w[j] = h;
	}
}

#endif
