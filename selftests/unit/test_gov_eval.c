/* test_gov_eval.c - what a governance profile decides, as tables.
 *
 * Every rule type, every glob form, the AGT capability "in scope"
 * fall-through, priority order, conditions, the unmatched default, rate-limit
 * windows, and AGT's own test cases from its policy.rs, each as one row:
 * profile, action, context -> verdict, deciding rule, why. Then a reload
 * under concurrent evaluation by several threads.
 */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers" /* table rows without a context */

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "governance.h"
#include "unit.h"

static struct kars_gov_profile *load(const char *yaml)
{
	struct kars_gov_profile *p = NULL;
	struct kars_err err = {0};
	int ret = kars_gov_profile_load_buf(yaml, strlen(yaml), "t.yaml", NULL, &p, NULL, &err);

	if (ret)
		fail_msg("profile did not load: %s\n%s", err.msg, yaml);
	return p;
}

struct row {
	const char *action;
	enum kars_gov_verdict verdict;
	const char *rule; /* "" = none */
	enum kars_gov_why why;
	const char *ctx_key, *ctx_value;
};

static void run_rows(const char *yaml, const struct row *rows, size_t n)
{
	struct kars_gov_profile *p = load(yaml);

	for (size_t i = 0; i < n; i++) {
		struct kars_gov_kv kv = {rows[i].ctx_key, rows[i].ctx_value};
		struct kars_gov_request req = {.action = rows[i].action,
					       .context = rows[i].ctx_key ? &kv : NULL,
					       .n_context = rows[i].ctx_key ? 1 : 0,
					       .now_ns = 1000000000000ull};
		struct kars_gov_decision d;

		kars_gov_profile_evaluate(p, &req, &d);
		if (d.verdict != rows[i].verdict || strcmp(d.rule, rows[i].rule) != 0 ||
		    d.why != rows[i].why)
			fail_msg("row %zu \"%s\": got %s by \"%s\" (%s), want %s by \"%s\" (%s)", i,
				 rows[i].action, kars_gov_verdict_name(d.verdict), d.rule,
				 kars_gov_why_name(d.why), kars_gov_verdict_name(rows[i].verdict),
				 rows[i].rule, kars_gov_why_name(rows[i].why));
		assert_non_null(d.reason);
	}
	kars_gov_profile_free(p);
}

#define ROWS(yaml, rows) run_rows(yaml, rows, sizeof(rows) / sizeof(rows[0]))

#define A  KARS_GOV_ALLOW
#define D  KARS_GOV_DENY
#define AP KARS_GOV_REQUIRES_APPROVAL
#define RL KARS_GOV_RATE_LIMITED

#define W_ALLOW KARS_GOV_WHY_ALLOWED_ACTION
#define W_DENY	KARS_GOV_WHY_DENIED_ACTION
#define W_SCOPE KARS_GOV_WHY_NOT_IN_ALLOWLIST
#define W_APPR	KARS_GOV_WHY_APPROVAL
#define W_RATE	KARS_GOV_WHY_RULE_RATE_LIMIT
#define W_UNM_A KARS_GOV_WHY_UNMATCHED_ALLOW
#define W_UNM_D KARS_GOV_WHY_UNMATCHED_DENY
#define HDR	"version: \"1.0\"\nagent: t\n"

/* The four glob forms: exact, "x*", "x.*", "*". */
static void test_glob_forms(void **state)
{
	static const char yaml[] =
	    HDR "policies:\n"
		"  - {name: exact, type: capability, denied_actions: [\"shell:rm\"]}\n"
		"  - {name: star, type: capability, denied_actions: [\"net*\"]}\n"
		"  - {name: dotstar, type: capability, denied_actions: [\"deploy.*\"]}\n"
		"  - {name: colon, type: capability, denied_actions: [\"admin:*\"]}\n";
	static const struct row rows[] = {
	    {"shell:rm", D, "exact", W_DENY},
	    {"shell:rmdir", A, "", W_UNM_A}, /* exact is exact */
	    {"shell:r", A, "", W_UNM_A},
	    {"net", D, "star", W_DENY}, /* "x*" includes x itself */
	    {"netcat", D, "star", W_DENY},
	    {"ne", A, "", W_UNM_A},
	    {"deploy.prod", D, "dotstar", W_DENY},
	    {"deploy.", D, "dotstar", W_DENY},
	    {"deploy", A, "", W_UNM_A}, /* "x.*" needs the dot */
	    {"deployment", A, "", W_UNM_A},
	    {"admin:", D, "colon", W_DENY},
	    {"admin:x:y", D, "colon", W_DENY},
	    {"Admin:x", A, "", W_UNM_A}, /* case-sensitive */
	};
	static const char all[] =
	    HDR "policies:\n"
		"  - {name: everything, type: capability, denied_actions: [\"*\"]}\n";
	static const struct row all_rows[] = {
	    {"x", D, "everything", W_DENY},
	    {"tool.invoke:anything", D, "everything", W_DENY},
	};
	ROWS(yaml, rows);
	ROWS(all, all_rows);
}

/* capability: deny list first, then allow list, then AGT's "in scope". */
static void test_capability(void **state)
{
	/* AGT policy.rs's own fixture and tests */
	static const char yaml[] = HDR "policies:\n"
				       "  - name: capability-gate\n"
				       "    type: capability\n"
				       "    allowed_actions: [\"data.read\", \"data.write\"]\n"
				       "    denied_actions: [\"shell:*\"]\n"
				       "  - name: deploy-approval\n"
				       "    type: approval\n"
				       "    actions: [\"deploy.*\"]\n"
				       "    min_approvals: 2\n"
				       "  - name: api-rate-limit\n"
				       "    type: rate_limit\n"
				       "    actions: [\"api.call\"]\n"
				       "    max_calls: 3\n"
				       "    window: \"60s\"\n";
	static const struct row rows[] = {
	    {"data.read", A, "capability-gate", W_ALLOW},
	    {"shell:rm", D, "capability-gate", W_DENY},
	    {"data.delete", D, "capability-gate", W_SCOPE},   /* shares "data" */
	    {"database.drop", D, "capability-gate", W_SCOPE}, /* AGT's starts_with("data") */
	    {"shell", D, "capability-gate", W_SCOPE},	      /* deny ns "shell" */
	    {"admin.delete", A, "", W_UNM_A},		      /* out of scope: falls through */
	    {"deploy.production", AP, "deploy-approval", W_APPR},
	    {"api.call", A, "", W_UNM_A},
	    {"api.call", A, "", W_UNM_A},
	    {"api.call", A, "", W_UNM_A},
	    {"api.call", RL, "api-rate-limit", W_RATE}, /* 4th in the window */
	};
	/* deny beats allow inside one rule; allow beats the scope check */
	static const char both[] = HDR "policies:\n"
				       "  - name: r\n"
				       "    type: capability\n"
				       "    allowed_actions: [\"tool:*\", \"tool:exec\"]\n"
				       "    denied_actions: [\"tool:exec\"]\n"
				       "  - name: narrow\n"
				       "    type: capability\n"
				       "    allowed_actions: [\"fs:read\"]\n"
				       "    denied_actions: [\"fs:rm\"]\n";
	static const struct row both_rows[] = {
	    {"tool:exec", D, "r", W_DENY},
	    {"tool:read", A, "r", W_ALLOW},
	    {"fs:read", A, "narrow", W_ALLOW},
	    /* deny namespace "fs:rm" covers fs:rmdir; the allow namespace of
	     * "fs:read" is "fs:read" (it has no '.'), so fs:write falls through */
	    {"fs:rmdir", D, "narrow", W_SCOPE},
	    {"fs:write", A, "", W_UNM_A},
	};
	/* a deny-only rule has no scope: everything else falls through */
	static const char deny_only[] = HDR "policies:\n"
					    "  - name: deny-only\n"
					    "    type: capability\n"
					    "    denied_actions: [\"shell:*\", \"admin.*\"]\n";
	static const struct row deny_only_rows[] = {
	    {"shell:ls", D, "deny-only", W_DENY},
	    {"admin.delete", D, "deny-only", W_DENY},
	    {"data.read", A, "", W_UNM_A},
	    {"shellx", A, "", W_UNM_A},
	};
	ROWS(yaml, rows);
	ROWS(both, both_rows);
	ROWS(deny_only, deny_only_rows);
}

/* Rules run by priority (highest first), ties in file order. */
static void test_priority_order(void **state)
{
	static const char yaml[] = HDR
	    "policies:\n"
	    "  - {name: low-allow, type: capability, allowed_actions: [\"x:*\"], priority: 1}\n"
	    "  - {name: high-deny, type: capability, denied_actions: [\"x:bad\"], priority: 10}\n"
	    "  - {name: tie-a, type: capability, denied_actions: [\"y:a\"]}\n"
	    "  - {name: tie-b, type: capability, allowed_actions: [\"y:*\"]}\n";
	static const struct row rows[] = {
	    {"x:bad", D, "high-deny", W_DENY}, /* AGT (file order) would allow */
	    {"x:good", A, "low-allow", W_ALLOW},
	    {"y:a", D, "tie-a", W_DENY},
	    {"y:b", A, "tie-b", W_ALLOW},
	};
	/* first match wins across rules (AGT test_multiple_capability_rules_first_match_wins) */
	static const char first[] =
	    HDR "policies:\n"
		"  - {name: deny-first, type: capability, denied_actions: [data.read]}\n"
		"  - {name: allow-second, type: capability, allowed_actions: [data.read]}\n";
	static const struct row first_rows[] = {{"data.read", D, "deny-first", W_DENY}};
	struct kars_gov_load_notes notes;
	struct kars_gov_profile *p = NULL;
	struct kars_err err = {0};

	ROWS(yaml, rows);
	ROWS(first, first_rows);
	assert_int_equal(
	    kars_gov_profile_load_buf(yaml, strlen(yaml), "t.yaml", NULL, &p, &notes, &err), 0);
	assert_true(notes.reordered_by_priority);
	kars_gov_profile_free(p);
	assert_int_equal(
	    kars_gov_profile_load_buf(first, strlen(first), "t.yaml", NULL, &p, &notes, &err), 0);
	assert_false(notes.reordered_by_priority);
	kars_gov_profile_free(p);
}

static void test_conditions(void **state)
{
	static const char yaml[] = HDR "policies:\n"
				       "  - name: prod-gate\n"
				       "    type: capability\n"
				       "    denied_actions: [\"deploy.*\"]\n"
				       "    conditions: {environment: production}\n"
				       "  - name: verbs\n"
				       "    type: capability\n"
				       "    denied_actions: [\"sql:*\"]\n"
				       "    conditions: {sql.verb: [DROP, TRUNCATE]}\n";
	static const struct row rows[] = {
	    {"deploy.app", D, "prod-gate", W_DENY, "environment", "production"},
	    {"deploy.app", A, "", W_UNM_A, "environment", "staging"},
	    {"deploy.app", A, "", W_UNM_A}, /* no context: rule skipped (AGT) */
	    {"deploy.app", A, "", W_UNM_A, "environment", "Production"}, /* case-sensitive */
	    {"sql:q", D, "verbs", W_DENY, "sql.verb", "DROP"},
	    {"sql:q", D, "verbs", W_DENY, "sql.verb", "TRUNCATE"},
	    {"sql:q", A, "", W_UNM_A, "sql.verb", "drop"},
	    {"sql:q", A, "", W_UNM_A, "sql.verb", "SELECT"},
	};
	ROWS(yaml, rows);
}

static void test_unmatched(void **state)
{
	static const char deny[] =
	    HDR "unmatched: deny\npolicies:\n"
		"  - {name: ok, type: capability, allowed_actions: [\"tool.invoke:*\"]}\n";
	static const struct row rows[] = {
	    {"tool.invoke:search", A, "ok", W_ALLOW},
	    {"inference:chat_completions:gpt-4o", D, "", W_UNM_D},
	};
	static const char empty[] = HDR "policies: []\n";
	static const struct row empty_rows[] = {{"anything", A, "", W_UNM_A}};
	struct kars_gov_load_opts opts = {.unmatched = KARS_GOV_UNMATCHED_DENY};
	struct kars_gov_request req = {.action = "x"};
	struct kars_gov_profile *p = NULL;
	struct kars_gov_decision d;
	struct kars_err err = {0};

	ROWS(deny, rows);
	ROWS(empty, empty_rows);
	/* the caller's default applies when the profile does not say */
	assert_int_equal(
	    kars_gov_profile_load_buf(empty, strlen(empty), "t.yaml", &opts, &p, NULL, &err), 0);
	kars_gov_profile_evaluate(p, &req, &d);
	assert_int_equal(d.verdict, KARS_GOV_DENY);
	assert_int_equal(d.why, KARS_GOV_WHY_UNMATCHED_DENY);
	kars_gov_profile_free(p);
	/* no profile at all: fail closed (AGT allows) */
	kars_gov_profile_evaluate(NULL, &req, &d);
	assert_int_equal(d.verdict, KARS_GOV_DENY);
	assert_int_equal(d.why, KARS_GOV_WHY_NO_PROFILE);
}

static void test_bad_actions(void **state)
{
	static const char yaml[] =
	    HDR "policies:\n"
		"  - {name: all, type: capability, allowed_actions: [\"*\"]}\n";
	struct kars_gov_profile *p = load(yaml);
	char longa[KARS_GOV_ACTION_MAX + 2];
	const char *bad[] = {"", "tool\n", "tool\x7f", "a\tb", longa};
	struct kars_gov_decision d;

	memset(longa, 'a', sizeof(longa) - 1);
	longa[sizeof(longa) - 1] = '\0';
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		struct kars_gov_request req = {.action = bad[i]};

		kars_gov_profile_evaluate(p, &req, &d);
		assert_int_equal(d.verdict, KARS_GOV_DENY);
		assert_int_equal(d.why, KARS_GOV_WHY_BAD_ACTION);
	}
	{
		/* an embedded NUL with an explicit length */
		struct kars_gov_request req = {.action = "ab\0c", .action_len = 4};

		kars_gov_profile_evaluate(p, &req, &d);
		assert_int_equal(d.why, KARS_GOV_WHY_BAD_ACTION);
	}
	{
		struct kars_gov_request req = {.action = NULL};

		kars_gov_profile_evaluate(p, &req, &d);
		assert_int_equal(d.why, KARS_GOV_WHY_BAD_ACTION);
	}
	kars_gov_profile_free(p);
}

/* approval and rate_limit only ever take effect after a decision of allow:
 * a rate_limit rule never grants (AGT: a match under the limit returned
 * allow and skipped every later deny rule). */
static void test_rate_limit_never_grants(void **state)
{
	static const char yaml[] = HDR
	    "policies:\n"
	    "  - {name: rl, type: rate_limit, actions: [\"shell:*\"], max_calls: 100, window: 60s, priority: 100}\n"
	    "  - {name: no-rm, type: capability, denied_actions: [\"shell:rm\"]}\n"
	    "  - {name: appr, type: approval, actions: [\"shell:sudo\"], min_approvals: 2}\n";
	static const struct row rows[] = {
	    {"shell:rm", D, "no-rm", W_DENY},
	    {"shell:sudo", AP, "appr", W_APPR},
	    {"shell:ls", A, "", W_UNM_A},
	};
	struct kars_gov_profile *p = load(yaml);
	struct kars_gov_request req = {.action = "shell:sudo", .now_ns = 1};
	struct kars_gov_decision d;

	ROWS(yaml, rows);
	kars_gov_profile_evaluate(p, &req, &d);
	assert_int_equal(d.min_approvals, 2);
	kars_gov_profile_free(p);
}

/* Windows: max_calls per window, counted only for allowed actions, reset
 * when the next window starts; overlapping patterns of one rule charge once;
 * windows carry over a reload. */
static void test_rate_limit_windows(void **state)
{
	static const char yaml[] = HDR
	    "policies:\n"
	    "  - {name: no-x, type: capability, denied_actions: [\"inference:x\"]}\n"
	    "  - {name: rl, type: rate_limit, actions: [\"inference:*\", \"inference:chat*\"], max_calls: 3, window: 10s}\n"
	    "  - {name: rl-ctx, type: rate_limit, actions: [\"tool:*\"], max_calls: 1, window: 1m, conditions: {tier: free}}\n";
	struct kars_gov_profile *p = load(yaml), *p2;
	const uint64_t s = 1000000000ull, t0 = 100 * 10 * s; /* a window start */
	struct kars_gov_request req = {.action = "inference:chat", .now_ns = t0};
	struct kars_gov_kv free_tier = {"tier", "free"};
	struct kars_gov_decision d;

	/* a peek is not charged */
	req.peek = true;
	for (int i = 0; i < 10; i++) {
		kars_gov_profile_evaluate(p, &req, &d);
		assert_int_equal(d.verdict, KARS_GOV_ALLOW);
	}
	req.peek = false;
	for (int i = 0; i < 3; i++) {
		kars_gov_profile_evaluate(p, &req, &d);
		assert_int_equal(d.verdict, KARS_GOV_ALLOW); /* charged once each, not twice */
	}
	/* ...but sees a used-up window */
	req.peek = true;
	kars_gov_profile_evaluate(p, &req, &d);
	assert_int_equal(d.verdict, KARS_GOV_RATE_LIMITED);
	req.peek = false;
	/* denied actions are not charged */
	req.action = "inference:x";
	kars_gov_profile_evaluate(p, &req, &d);
	assert_int_equal(d.verdict, KARS_GOV_DENY);
	req.action = "inference:embed";
	req.now_ns = t0 + 4 * s;
	kars_gov_profile_evaluate(p, &req, &d);
	assert_int_equal(d.verdict, KARS_GOV_RATE_LIMITED);
	assert_string_equal(d.rule, "rl");
	assert_int_equal(d.retry_after_ms, 6000);

	/* a reload keeps the window */
	p2 = load(yaml);
	kars_gov_profile_carry_windows(p2, p);
	kars_gov_profile_evaluate(p2, &req, &d);
	assert_int_equal(d.verdict, KARS_GOV_RATE_LIMITED);
	/* the next window */
	req.now_ns = t0 + 10 * s;
	kars_gov_profile_evaluate(p2, &req, &d);
	assert_int_equal(d.verdict, KARS_GOV_ALLOW);

	/* conditions gate the rate rule too */
	req.action = "tool:a";
	for (int i = 0; i < 3; i++) {
		kars_gov_profile_evaluate(p2, &req, &d);
		assert_int_equal(d.verdict, KARS_GOV_ALLOW);
	}
	req.context = &free_tier;
	req.n_context = 1;
	kars_gov_profile_evaluate(p2, &req, &d);
	assert_int_equal(d.verdict, KARS_GOV_ALLOW);
	kars_gov_profile_evaluate(p2, &req, &d);
	assert_int_equal(d.verdict, KARS_GOV_RATE_LIMITED);
	assert_string_equal(d.rule, "rl-ctx");
	kars_gov_profile_free(p);
	kars_gov_profile_free(p2);
}

/* The kars default ToolPolicy profile (deploy/helm/kars/files/kars-default-
 * agt-profile.yaml in the original), as router actions meet it. */
static void test_kars_default_profile(void **state)
{
	static const char yaml[] =
	    "version: \"1.0\"\nagent: kars-default\npolicies:\n"
	    "  - name: shell-destructive-deny\n    type: capability\n"
	    "    denied_actions: [\"shell:rm\", \"shell:dd\", \"shell:nc\"]\n    priority: 100\n"
	    "  - name: shell-safe-commands\n    type: capability\n"
	    "    allowed_actions: [\"shell:ls\", \"shell:cat\", \"shell:git\"]\n    priority: 90\n"
	    "  - name: inference-allow\n    type: capability\n"
	    "    allowed_actions: [\"inference:*\", \"image_generation:*\"]\n    priority: 80\n"
	    "  - name: tool-allow\n    type: capability\n    allowed_actions: [\"tool:*\"]\n"
	    "    priority: 70\n"
	    "  - name: admin-bulk-approval\n    type: approval\n"
	    "    actions: [\"admin:bulk*\", \"admin:promote*\"]\n    min_approvals: 1\n"
	    "    priority: 60\n"
	    "  - name: admin-allow\n    type: capability\n    allowed_actions: [\"admin:*\"]\n"
	    "    priority: 50\n"
	    "  - name: inference-rate-limit\n    type: rate_limit\n    actions: [\"inference:*\"]\n"
	    "    max_calls: 500\n    window: \"60s\"\n    priority: 40\n";
	static const struct row rows[] = {
	    {"shell:rm", D, "shell-destructive-deny", W_DENY},
	    {"shell:ls", A, "shell-safe-commands", W_ALLOW},
	    /* allow ns of "shell:ls" is "shell:ls" (no '.'): shell:vim falls through */
	    {"shell:vim", A, "", W_UNM_A},
	    {"inference:chat_completions:gpt-4o", A, "inference-allow", W_ALLOW},
	    {"tool:web_search", A, "tool-allow", W_ALLOW},
	    /* the router's tool.invoke:<name> is not under "tool:*" */
	    {"tool.invoke:web_search", A, "", W_UNM_A},
	    {"admin:bulk_delete", AP, "admin-bulk-approval", W_APPR},
	    {"admin:status", A, "admin-allow", W_ALLOW},
	};
	struct kars_gov_profile *p = load(yaml);
	struct kars_gov_request req = {.action = "inference:responses:gpt-4o",
				       .now_ns = 7000000000000ull};
	struct kars_gov_decision d;
	int allowed = 0;

	ROWS(yaml, rows);
	/* AGT never reached inference-rate-limit (inference-allow matched
	 * first); here it limits the allowed inferences, as its author meant. */
	for (int i = 0; i < 600; i++) {
		kars_gov_profile_evaluate(p, &req, &d);
		allowed += d.verdict == KARS_GOV_ALLOW;
	}
	assert_int_equal(allowed, 500);
	assert_string_equal(d.rule, "inference-rate-limit");
	kars_gov_profile_free(p);
}

/* The same answers from JSON as from YAML. */
static void test_json_profile(void **state)
{
	static const char json[] =
	    "{\"version\": \"1.0\", \"agent\": \"t\", \"policies\": ["
	    "{\"name\": \"d\", \"type\": \"capability\", \"denied_actions\": [\"shell:*\"]},"
	    "{\"name\": \"a\", \"type\": \"approval\", \"actions\": [\"deploy.*\"], "
	    "\"min_approvals\": 2}]}";
	static const struct row rows[] = {
	    {"shell:ls", D, "d", W_DENY},
	    {"deploy.x", AP, "a", W_APPR},
	    {"other", A, "", W_UNM_A},
	};
	ROWS(json, rows);
}

/* Many rules: the indexed lookup agrees with the first-match definition. */
static void test_many_rules_agree(void **state)
{
	size_t cap = 1 << 20, len = 0;
	char *yaml = malloc(cap);
	struct kars_gov_profile *p;
	struct kars_gov_decision d;
	char action[64];

	len += (size_t)snprintf(yaml + len, cap - len, HDR "policies:\n");
	for (int i = 0; i < 2000; i++) {
		char extra[32] = "";

		/* rule i denies t:<i>, allows t:<i>x*, and every 7th denies u:<i>* */
		if (i % 7 == 0)
			snprintf(extra, sizeof(extra), ", \"u:%d*\"", i);
		len += (size_t)snprintf(yaml + len, cap - len,
					"  - {name: r%d, type: capability, denied_actions: "
					"[\"t:%d/\"%s], allowed_actions: [\"t:%d/x*\"]}\n",
					i, i, extra, i);
	}
	p = load(yaml);
	for (int i = 0; i < 2000; i++) {
		struct kars_gov_request req = {.action = action};

		snprintf(action, sizeof(action), "t:%d/", i);
		kars_gov_profile_evaluate(p, &req, &d);
		assert_int_equal(d.verdict, KARS_GOV_DENY);
		snprintf(action, sizeof(action), "r%d", i);
		assert_string_equal(d.rule, action);

		snprintf(action, sizeof(action), "t:%d/xyz", i);
		kars_gov_profile_evaluate(p, &req, &d);
		assert_int_equal(d.verdict, KARS_GOV_ALLOW);
		snprintf(action, sizeof(action), "r%d", i);
		assert_string_equal(d.rule, action);
	}
	{
		/* u:1400 has the prefix keys u:1400, u:140 and u:14 (rules 1400,
		 * 140, 14), reached by the parent chain: rule 14 comes first */
		struct kars_gov_request req = {.action = "u:1400"};

		kars_gov_profile_evaluate(p, &req, &d);
		assert_int_equal(d.verdict, KARS_GOV_DENY);
		assert_string_equal(d.rule, "r14");
	}
	kars_gov_profile_free(p);
	free(yaml);
}

/* Prefix keys that agree on far more than the search's inline words (24
 * bytes): the search must fall back to the strings and still find every
 * matching prefix, checked against a brute-force scan of the rules. */
#define LONG_NS "tool.invoke:enterprise.github.repos.team:"

static void test_long_shared_prefixes(void **state)
{
	size_t cap = 1 << 18, len = 0;
	char *yaml = malloc(cap);
	struct kars_gov_profile *p;
	char action[128], want[16];

	len += (size_t)snprintf(yaml + len, cap - len, HDR "policies:\n");
	for (int i = 1; i <= 300; i++)
		len += (size_t)snprintf(yaml + len, cap - len,
					"  - {name: r%d, type: capability, denied_actions: "
					"[\"" LONG_NS "t%d*\"]}\n",
					i, i);
	p = load(yaml);
	for (int j = 0; j <= 3100; j += 7) {
		struct kars_gov_request req = {.action = action};
		struct kars_gov_decision d;
		char probe[32];
		int first = 0;

		snprintf(action, sizeof(action), LONG_NS "t%d_x", j);
		snprintf(probe, sizeof(probe), "t%d_x", j);
		for (int i = 1; i <= 300 && !first; i++) {
			char pat[16];

			snprintf(pat, sizeof(pat), "t%d", i);
			if (strncmp(probe, pat, strlen(pat)) == 0)
				first = i;
		}
		kars_gov_profile_evaluate(p, &req, &d);
		if (first) {
			snprintf(want, sizeof(want), "r%d", first);
			assert_int_equal(d.verdict, KARS_GOV_DENY);
			assert_string_equal(d.rule, want);
		} else {
			assert_string_equal(d.rule, "");
		}
	}
	kars_gov_profile_free(p);
	free(yaml);
}

/* --- reload under concurrent evaluation ------------------------------------ */

struct reload_ctx {
	struct kars_gov_engine *e;
	atomic_bool stop;
	atomic_long evals;
	atomic_long wrong;
};

/* Every published profile denies "x:<g>" for its generation's rule and
 * allows the rest; a reader must always see one whole profile: a decision by
 * a rule named after the generation whose pattern it matched. */
static void *reader_main(void *arg)
{
	struct reload_ctx *c = arg;
	struct kars_gov_reader *r = NULL;
	struct kars_gov_request req = {.action = "x:probe"};
	struct kars_gov_decision d;

	if (kars_gov_reader_open(c->e, &r) != 0) {
		atomic_fetch_add(&c->wrong, 1);
		return NULL;
	}
	while (!atomic_load(&c->stop)) {
		kars_gov_evaluate(r, &req, &d);
		atomic_fetch_add(&c->evals, 1);
		if (d.verdict == KARS_GOV_DENY && d.why == KARS_GOV_WHY_NO_PROFILE)
			continue;
		if (d.verdict != KARS_GOV_DENY || strncmp(d.rule, "gen-", 4) != 0)
			atomic_fetch_add(&c->wrong, 1);
	}
	kars_gov_reader_close(r);
	return NULL;
}

static void test_reload_concurrent(void **state)
{
	struct reload_ctx c = {.e = kars_gov_engine_new()};
	pthread_t th[4];
	char yaml[512];
	int gens = 0;
	long elapsed_ms;
	struct timespec start, now;

	assert_non_null(c.e);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, reader_main, &c), 0);
	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		struct kars_gov_profile *p = NULL;
		struct kars_err err = {0};

		snprintf(yaml, sizeof(yaml),
			 HDR "policies:\n"
			     "  - {name: gen-%d, type: capability, denied_actions: [\"x:*\"], "
			     "allowed_actions: [\"y:*\"]}\n"
			     "  - {name: pad-%d, type: capability, allowed_actions: [\"z:%d\"]}\n",
			 gens, gens, gens);
		assert_int_equal(
		    kars_gov_profile_load_buf(yaml, strlen(yaml), "t.yaml", NULL, &p, NULL, &err),
		    0);
		kars_gov_engine_publish(c.e, p);
		gens++;
		clock_gettime(CLOCK_MONOTONIC, &now);
		elapsed_ms =
		    (now.tv_sec - start.tv_sec) * 1000L + (now.tv_nsec - start.tv_nsec) / 1000000L;
		/* at least 1 s, 50 reloads and 10,000 evaluations; at most 20 s
		 * (a loaded 2-CPU machine under ASan is slow) */
	} while (elapsed_ms < 20000 &&
		 (elapsed_ms < 1000 || gens < 50 || atomic_load(&c.evals) < 10000));
	atomic_store(&c.stop, true);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(atomic_load(&c.wrong), 0);
	assert_true(gens >= 50);
	assert_true(atomic_load(&c.evals) >= 10000);
	assert_int_equal(kars_gov_engine_generation(c.e), (uint64_t)gens);
	/* publishing NULL clears: fail closed */
	{
		struct kars_gov_reader *r;
		struct kars_gov_request req = {.action = "y:1"};
		struct kars_gov_decision d;

		kars_gov_engine_publish(c.e, NULL);
		assert_int_equal(kars_gov_reader_open(c.e, &r), 0);
		kars_gov_evaluate(r, &req, &d);
		assert_int_equal(d.why, KARS_GOV_WHY_NO_PROFILE);
		kars_gov_reader_close(r);
	}
	kars_gov_engine_free(c.e);
}

static void test_reader_slots_bounded(void **state)
{
	struct kars_gov_engine *e = kars_gov_engine_new();
	struct kars_gov_reader *r[KARS_GOV_READERS_MAX + 1];

	for (int i = 0; i < KARS_GOV_READERS_MAX; i++)
		assert_int_equal(kars_gov_reader_open(e, &r[i]), 0);
	assert_int_equal(kars_gov_reader_open(e, &r[KARS_GOV_READERS_MAX]), -EBUSY);
	kars_gov_reader_close(r[3]);
	assert_int_equal(kars_gov_reader_open(e, &r[3]), 0);
	for (int i = 0; i < KARS_GOV_READERS_MAX; i++)
		kars_gov_reader_close(r[i]);
	kars_gov_engine_free(e);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_glob_forms),
    cmocka_unit_test(test_capability),
    cmocka_unit_test(test_priority_order),
    cmocka_unit_test(test_conditions),
    cmocka_unit_test(test_unmatched),
    cmocka_unit_test(test_bad_actions),
    cmocka_unit_test(test_rate_limit_never_grants),
    cmocka_unit_test(test_rate_limit_windows),
    cmocka_unit_test(test_kars_default_profile),
    cmocka_unit_test(test_json_profile),
    cmocka_unit_test(test_many_rules_agree),
    cmocka_unit_test(test_long_shared_prefixes),
    cmocka_unit_test(test_reload_concurrent),
    cmocka_unit_test(test_reader_slots_bounded),
};

KARS_UNIT_MAIN(tests)
