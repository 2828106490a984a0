/* governance.h - ToolPolicy evaluation: AGT profiles, compiled and measured.
 *
 * Every tool call, inference, mesh message and handoff a sandbox makes is
 * named by an action string ("inference:chat_completions:gpt-4o",
 * "tool.invoke:web_search", "shell:rm") and evaluated against the sandbox's
 * governance profile, in the AGT profile format that ToolPolicy
 * agtProfile.inline documents are written in (version, agent, policies[]).
 * docs/governance.md gives every semantic choice beside what AGT does.
 *
 * Lifecycle. A profile is loaded (YAML or JSON, strictly: errors name the
 * file, line and field) straight into its compiled form, an immutable table
 * that answers an evaluation without scanning the rules and without
 * allocating. A daemon publishes compiled profiles into an engine; readers
 * evaluate against whatever is current, lock-free, while a reload publishes a
 * new one: one atomic pointer swap, and the old profile is freed once no
 * reader holds it any more (hazard slots, see kars_gov_engine_publish).
 *
 * Threads. kars_gov_profile_evaluate() on one profile is safe from any number
 * of threads (its rate-limit windows are atomics). An engine takes any number
 * of reader threads, each with its own kars_gov_reader, and one publisher at
 * a time (the caller serialises publishes, e.g. from its event loop).
 */
#ifndef KARS_GOVERNANCE_H
#define KARS_GOVERNANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define KARS_GOV_NAME_MAX     128	  /* bytes of a rule name */
#define KARS_GOV_ACTION_MAX   1024	  /* bytes of an action or pattern */
#define KARS_GOV_PROFILE_MAX  (16u << 20) /* bytes of one profile file */
#define KARS_GOV_RULES_MAX    100000	  /* rules in one profile, files merged */
#define KARS_GOV_FILES_MAX    64	  /* files merged into one profile */
#define KARS_GOV_READERS_MAX  64	  /* concurrent reader threads of an engine */
#define KARS_GOV_WINDOW_MAX_S (31u * 24 * 3600)

enum kars_gov_verdict {
	KARS_GOV_ALLOW = 0,
	KARS_GOV_DENY,
	KARS_GOV_REQUIRES_APPROVAL,
	KARS_GOV_RATE_LIMITED,
};

/* Why, as a code a daemon can map to a status and a metric label. */
enum kars_gov_why {
	KARS_GOV_WHY_ALLOWED_ACTION = 0, /* on a capability rule's allowed_actions */
	KARS_GOV_WHY_DENIED_ACTION,	 /* on a capability rule's denied_actions */
	KARS_GOV_WHY_NOT_IN_ALLOWLIST,	 /* in a capability rule's scope, not on its list */
	KARS_GOV_WHY_APPROVAL,		 /* on an approval rule's actions */
	KARS_GOV_WHY_RULE_RATE_LIMIT,	 /* a rate_limit rule's window is used up */
	KARS_GOV_WHY_UNMATCHED_ALLOW,	 /* no rule decided; the profile allows the rest */
	KARS_GOV_WHY_UNMATCHED_DENY,	 /* no rule decided; the profile denies the rest */
	KARS_GOV_WHY_NO_PROFILE,	 /* nothing published: fail closed */
	KARS_GOV_WHY_BAD_ACTION,	 /* empty, too long, or holds a NUL or control byte */
	/* from a kars_gov_limiter (gov_limits.h), before the profile is read */
	KARS_GOV_WHY_GLOBAL_RATE_LIMIT,	   /* the global token bucket is empty */
	KARS_GOV_WHY_PRINCIPAL_RATE_LIMIT, /* the principal's token bucket is empty */
	KARS_GOV_WHY_MONITOR_BURST,	   /* blocked: too many calls in the burst window */
	KARS_GOV_WHY_MONITOR_FAILURES,	   /* blocked: too many consecutive failures */
	KARS_GOV_WHY_MONITOR_DENIALS,	   /* blocked: too many denials in the window */
};

/* A decision. Filled without allocating; rule is a copy, so the decision
 * stays valid after the profile it came from is gone. */
struct kars_gov_decision {
	enum kars_gov_verdict verdict;
	enum kars_gov_why why;
	const char *reason;		  /* static, one sentence for a human */
	char rule[KARS_GOV_NAME_MAX + 1]; /* the deciding rule, "" when none */
	uint32_t min_approvals;		  /* for REQUIRES_APPROVAL: as the rule says */
	uint64_t retry_after_ms;	  /* for RATE_LIMITED: until the window ends */
};

/* One condition key and the caller's value for it ("environment" =
 * "production"). Values are compared as bytes, case-sensitively. */
struct kars_gov_kv {
	const char *key;
	const char *value;
};

struct kars_gov_request {
	const char *action; /* required */
	size_t action_len;  /* 0: strlen(action) */
	const struct kars_gov_kv *context;
	size_t n_context;
	uint64_t now_ns; /* CLOCK_MONOTONIC for rate-limit windows; 0 = read the clock */
	/* Check rate_limit windows without charging them: a used-up window
	 * still decides rate_limited. For what is not a call, e.g. a tool a
	 * request merely advertises. */
	bool peek;
};

/* What an action that no rule decides gets, when the profile does not say
 * (its "unmatched" key, a kars extension AGT ignores). AGT allows it. */
enum kars_gov_unmatched {
	KARS_GOV_UNMATCHED_ALLOW = 0,
	KARS_GOV_UNMATCHED_DENY,
};

struct kars_gov_load_opts {
	enum kars_gov_unmatched unmatched; /* default when a profile has no "unmatched" */
};

/* What the loader noticed that is legal but worth a log line. */
struct kars_gov_load_notes {
	/* The rules' priorities put them in another order than the file's:
	 * AGT would have run them in file order (it ignores priority). */
	bool reordered_by_priority;
	char first_moved_rule[KARS_GOV_NAME_MAX + 1];
};

struct kars_gov_profile;

/* Loads one profile document (YAML or JSON; JSON is read as the YAML it is)
 * from buf and compiles it. name names it in errors ("agt-profile.yaml"):
 * "agt-profile.yaml:12: policies[1].window: ...". opts and notes may be
 * NULL. Returns 0 with *out set, or -errno with err naming what is wrong. */
int kars_gov_profile_load_buf(const char *buf, size_t len, const char *name,
			      const struct kars_gov_load_opts *opts, struct kars_gov_profile **out,
			      struct kars_gov_load_notes *notes, struct kars_err *err);

/* Loads several files as ONE profile: their rules merged (rule names unique
 * across them, one agent, one unmatched setting), ordered by priority, ties
 * by the order of paths and then of the rules in each file. */
int kars_gov_profile_load_files(const char *const *paths, size_t n,
				const struct kars_gov_load_opts *opts,
				struct kars_gov_profile **out, struct kars_gov_load_notes *notes,
				struct kars_err *err);

/* Every *.yaml, *.yml and *.json regular file of dir (symlinks followed, as
 * a Kubernetes ConfigMap mount needs; dot-files skipped), in byte order of
 * their names, through kars_gov_profile_load_files(). -ENOENT when there is
 * none: the caller decides what an empty mount means. */
int kars_gov_profile_load_dir(const char *dir, const struct kars_gov_load_opts *opts,
			      struct kars_gov_profile **out, struct kars_gov_load_notes *notes,
			      struct kars_err *err);

void kars_gov_profile_free(struct kars_gov_profile *p);

size_t kars_gov_profile_rule_count(const struct kars_gov_profile *p);
const char *kars_gov_profile_agent(const struct kars_gov_profile *p);
enum kars_gov_unmatched kars_gov_profile_unmatched(const struct kars_gov_profile *p);

/* Evaluates req against p. p may be NULL: DENY, KARS_GOV_WHY_NO_PROFILE.
 * Never allocates, never blocks; safe from many threads at once. */
void kars_gov_profile_evaluate(const struct kars_gov_profile *p, const struct kars_gov_request *req,
			       struct kars_gov_decision *out);

/* Rate-limit windows carry over a reload: for each rate_limit rule of to
 * with the same name, max_calls and window as one of from, its current
 * window's count is copied. Call before publishing to. */
void kars_gov_profile_carry_windows(struct kars_gov_profile *to,
				    const struct kars_gov_profile *from);

/* "allow", "deny", "requires_approval", "rate_limited" (AGT's labels). */
const char *kars_gov_verdict_name(enum kars_gov_verdict v);
/* A stable snake_case label for a metric or an audit record. */
const char *kars_gov_why_name(enum kars_gov_why why);

/* --- engine: the current profile, swapped on reload ------------------------ */

struct kars_gov_engine;
struct kars_gov_reader;

struct kars_gov_engine *kars_gov_engine_new(void);
/* Frees the engine and its current profile. Every reader must be closed. */
void kars_gov_engine_free(struct kars_gov_engine *e);

/* Makes p (owned by the engine from now on; NULL = no profile, which denies
 * everything) the current profile. The old one is freed before this returns:
 * the publisher waits until no reader slot still holds it, which a reader
 * does only for the length of one evaluation. Must not be called from inside
 * an evaluation; publishes must not run concurrently with each other. */
void kars_gov_engine_publish(struct kars_gov_engine *e, struct kars_gov_profile *p);

/* One per thread that evaluates. -EBUSY when KARS_GOV_READERS_MAX are open. */
int kars_gov_reader_open(struct kars_gov_engine *e, struct kars_gov_reader **out);
void kars_gov_reader_close(struct kars_gov_reader *r);

/* kars_gov_profile_evaluate() against the engine's current profile. */
void kars_gov_evaluate(struct kars_gov_reader *r, const struct kars_gov_request *req,
		       struct kars_gov_decision *out);

/* Publishes so far (a test and a status endpoint can see a reload landed). */
uint64_t kars_gov_engine_generation(const struct kars_gov_engine *e);

#endif
