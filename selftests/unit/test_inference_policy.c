/* test_inference_policy.c - the router's InferencePolicy parser, model
 * choice, content floor, and the budget's UTC rollover and persistence.
 *
 * The e2e test (selftests/e2e/router_policy.sh) drives the same code through
 * a real router; here each rule is pinned on its own, with an injected clock
 * for the calendar.
 */
#include "unit.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "budget.h"
#include "inference_policy.h"

#define HEAD                                                                                       \
	"{\"schemaVersion\":1,\"kind\":\"InferencePolicy\",\"namespace\":\"team-a\",\"name\":\"p\""

static struct kars_inference_policy *parse(const char *text, struct kars_err *err)
{
	return kars_inference_policy_parse(text, strlen(text), "test.json", "azure", "team-a/bot",
					   err);
}

static void expect_refused(const char *text, const char *needle)
{
	struct kars_err err = {0};
	struct kars_inference_policy *p = parse(text, &err);

	if (p)
		fail_msg("accepted: %s", text);
	assert_err_contains(&err, needle);
	assert_err_contains(&err, "test.json: ");
}

static void test_refused(void **state)
{
	expect_refused("{\"kind\":\"InferencePolicy\"}", "schemaVersion: Required value");
	expect_refused("{\"schemaVersion\":2}", "schemaVersion: Unsupported value 2");
	expect_refused(HEAD ",\"allowedModels\":[\"a\"],\"extra\":1}", "extra: unknown field");
	expect_refused(HEAD "}", "a policy must name its models");
	expect_refused(HEAD ",\"modelPreference\":{}}", "modelPreference.primary: Required value");
	expect_refused(HEAD ",\"modelPreference\":{\"primary\":{\"deployment\":\"a b\"}}}",
		       "modelPreference.primary.deployment: \"a b\" is not a model");
	expect_refused(
	    HEAD ",\"modelPreference\":{\"primary\":{\"provider\":\"openai\","
		 "\"deployment\":\"x\"}}}",
	    "modelPreference.primary.provider: \"openai\" is not this router's upstream");
	expect_refused(HEAD ",\"modelPreference\":{\"primary\":{\"deployment\":\"x\"},"
			    "\"fallback\":[{\"deployment\":\"y\"},{\"deployment\":\"x\"}]}}",
		       "modelPreference.fallback[1].deployment: Duplicate value \"x\"");
	expect_refused(HEAD ",\"allowedModels\":[\"a\",7]}", "allowedModels[1]: expected a string");
	expect_refused(HEAD ",\"allowedModels\":[\"a\"],\"onDisallowedModel\":\"override\"}",
		       "onDisallowedModel: \"override\" needs modelPreference.primary");
	expect_refused(HEAD ",\"allowedModels\":[\"a\"],\"appliesTo\":{\"sandboxName\":\"other\"}}",
		       "appliesTo.sandboxName: the policy applies to sandbox \"other\"");
	expect_refused(HEAD ",\"allowedModels\":[\"a\"],\"appliesTo\":{\"action\":[\"chat\","
			    "\"images\"]}}",
		       "appliesTo.action[1]: Unsupported value \"images\"");
	expect_refused(HEAD ",\"allowedModels\":[\"a\"],\"tokenBudget\":{\"dailyTokens\":10,"
			    "\"monthlyTokens\":5}}",
		       "tokenBudget.monthlyTokens: Invalid value: 5: must be at least dailyTokens");
	expect_refused(HEAD ",\"allowedModels\":[\"a\"],\"contentSafety\":{\"hate\":\"medium\"}}",
		       "contentSafety.hate: Unsupported value \"medium\"");
	expect_refused(HEAD ",\"allowedModels\":[\"a\"]", "test.json: ");
}

/* The digest is the controller's: namespace/name over the bytes as read. */
static void test_digest(void **state)
{
	const char *text = HEAD ",\"allowedModels\":[\"a\"]}";
	struct kars_err err = {0};
	struct kars_inference_policy *p = parse(text, &err);
	char want[KARS_DIGEST_LEN];

	assert_non_null(p);
	kars_policy_digest("team-a/p", text, strlen(text), want);
	assert_string_equal(p->digest, want);
	assert_string_equal(p->name, "team-a/p");
	kars_inference_policy_unref(p);
}

static size_t models(const struct kars_inference_policy *p, enum kars_policy_action a,
		     const char *requested, const char **out, const char **code)
{
	char reason[256];

	*code = "";
	return kars_inference_policy_models(p, a, requested, out, code, reason, sizeof(reason));
}

static void test_models(void **state)
{
	struct kars_err err = {0};
	struct kars_inference_policy *p =
	    parse(HEAD ",\"modelPreference\":{\"primary\":{\"provider\":\"azure-openai\","
		       "\"deployment\":\"gpt-4o\"},\"fallback\":[{\"deployment\":\"mini\"}]},"
		       "\"allowedModels\":[\"o4\",\"emb\"]}",
		  &err);
	const char *out[1 + KARS_POLICY_MAX_FALLBACKS], *code;

	assert_non_null(p);
	/* none asked: the chain */
	assert_int_equal(models(p, KARS_ACTION_CHAT, NULL, out, &code), 2);
	assert_string_equal(out[0], "gpt-4o");
	assert_string_equal(out[1], "mini");
	/* the primary asked: the same chain */
	assert_int_equal(models(p, KARS_ACTION_CHAT, "gpt-4o", out, &code), 2);
	/* a fallback asked: it first, then the rest of the chain */
	assert_int_equal(models(p, KARS_ACTION_CHAT, "mini", out, &code), 2);
	assert_string_equal(out[0], "mini");
	assert_string_equal(out[1], "gpt-4o");
	/* another allowed model: it, then the chain */
	assert_int_equal(models(p, KARS_ACTION_RESPONSES, "o4", out, &code), 3);
	assert_string_equal(out[0], "o4");
	/* not allowed: refused (deny is the default) */
	assert_int_equal(models(p, KARS_ACTION_CHAT, "gpt-5", out, &code), 0);
	assert_string_equal(code, "model_not_allowed");
	/* embeddings: no chain, no override, a model must be named */
	assert_int_equal(models(p, KARS_ACTION_EMBEDDINGS, "emb", out, &code), 1);
	assert_int_equal(models(p, KARS_ACTION_EMBEDDINGS, NULL, out, &code), 0);
	assert_string_equal(code, "model_required");
	kars_inference_policy_unref(p);

	p = parse(HEAD ",\"modelPreference\":{\"primary\":{\"deployment\":\"gpt-4o\"}},"
		       "\"onDisallowedModel\":\"override\",\"appliesTo\":{\"action\":\"chat\"}}",
		  &err);
	assert_non_null(p);
	assert_int_equal(models(p, KARS_ACTION_CHAT, "gpt-5", out, &code), 1);
	assert_string_equal(out[0], "gpt-4o"); /* overridden */
	assert_int_equal(models(p, KARS_ACTION_EMBEDDINGS, "gpt-5", out, &code), 0);
	assert_true(kars_inference_policy_covers(p, KARS_ACTION_CHAT));
	assert_false(kars_inference_policy_covers(p, KARS_ACTION_RESPONSES));
	kars_inference_policy_unref(p);
}

static void test_content_floor(void **state)
{
	struct kars_err err = {0};
	struct kars_inference_policy *p =
	    parse(HEAD ",\"allowedModels\":[\"a\"],\"contentSafety\":{\"sexual\":\"Low\"}}", &err);
	struct kars_content_filter f = {.annotated = true};
	char reason[256];

	assert_non_null(p);
	f.max_severity[KARS_CF_SEXUAL] = KARS_CF_SEVERITY_LOW;
	f.max_severity[KARS_CF_HATE] = KARS_CF_SEVERITY_HIGH; /* no ceiling for hate */
	assert_false(kars_inference_policy_blocks_content(p, &f, reason, sizeof(reason)));
	f.max_severity[KARS_CF_SEXUAL] = KARS_CF_SEVERITY_MEDIUM;
	assert_true(kars_inference_policy_blocks_content(p, &f, reason, sizeof(reason)));
	assert_non_null(strstr(reason, "sexual severity medium is above the policy's ceiling low"));
	kars_inference_policy_unref(p);

	p = parse(HEAD
		  ",\"allowedModels\":[\"a\"],\"contentSafety\":{\"requirePromptShields\":true}}",
		  &err);
	assert_non_null(p);
	f = (struct kars_content_filter){0};
	assert_true(kars_inference_policy_blocks_content(p, &f, reason, sizeof(reason)));
	f.annotated = true;
	assert_false(kars_inference_policy_blocks_content(p, &f, reason, sizeof(reason)));
	kars_inference_policy_unref(p);
}

/* 2026-11-30 23:59:50 UTC, then 20 s later (a new day), then 2026-12-01
 * (a new month), with the daily and monthly figures rolling separately. */
static void test_budget_rollover(void **state)
{
	const time_t day1 = 1796083190, day2 = day1 + 20;
	struct kars_budget b;
	struct kars_err err = {0};

	assert_int_equal(kars_budget_open(&b, NULL, "team-a/bot", day1 - 86400, &err), 0);
	kars_budget_charge(&b, 900, day1 - 86400); /* 2026-11-29 */
	kars_budget_charge(&b, 100, day1);	   /* 2026-11-30 */
	assert_string_equal(b.day, "2026-11-30");
	assert_int_equal(b.daily_used, 100);
	assert_int_equal(b.monthly_used, 1000);
	assert_int_equal(kars_budget_check(&b, 100, 0, day1), KARS_BUDGET_DAILY_EXCEEDED);
	assert_int_equal(kars_budget_check(&b, 0, 1000, day1), KARS_BUDGET_MONTHLY_EXCEEDED);
	assert_int_equal(kars_budget_retry_after(KARS_BUDGET_DAILY_EXCEEDED, day1), 10);
	assert_int_equal(kars_budget_retry_after(KARS_BUDGET_MONTHLY_EXCEEDED, day1), 10);
	/* past midnight UTC: a new day and a new month */
	assert_int_equal(kars_budget_check(&b, 100, 1000, day2), KARS_BUDGET_OK);
	assert_string_equal(b.day, "2026-12-01");
	assert_string_equal(b.month, "2026-12");
	assert_int_equal(b.daily_used, 0);
	assert_int_equal(b.monthly_used, 0);
	/* the next day within the month keeps the monthly figure */
	kars_budget_charge(&b, 50, day2);
	kars_budget_charge(&b, 5, day2 + 86400);
	assert_int_equal(b.daily_used, 5);
	assert_int_equal(b.monthly_used, 55);
}

static void test_budget_persisted(void **state)
{
	char dir[] = "/tmp/kars-budget.XXXXXX", path[64], tmp[80];
	const time_t now = 1796083190;
	struct kars_budget b, again;
	struct kars_err err = {0};
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/budget.json", dir);
	assert_int_equal(kars_budget_open(&b, path, "team-a/bot", now, &err), 0);
	kars_budget_charge(&b, 42, now);
	assert_int_equal(kars_budget_persist(&b, &err), 0);
	assert_false(b.dirty);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	assert_int_equal(access(tmp, F_OK), -1); /* renamed over, nothing left */

	assert_int_equal(kars_budget_open(&again, path, "team-a/bot", now, &err), 0);
	assert_int_equal(again.daily_used, 42);
	/* another sandbox's file is refused, not adopted */
	assert_int_equal(kars_budget_open(&again, path, "team-b/bot", now, &err), -EINVAL);
	assert_err_contains(&err, "the file is the budget of \"team-a/bot\"");
	/* a damaged file is refused with its path */
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("{\"sandbox\":", f);
	fclose(f);
	kars_err_clear(&err);
	assert_int_equal(kars_budget_open(&again, path, "team-a/bot", now, &err), -EINVAL);
	assert_err_contains(&err, "budget file");
	unlink(path);
	rmdir(dir);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_refused),	    cmocka_unit_test(test_digest),
    cmocka_unit_test(test_models),	    cmocka_unit_test(test_content_floor),
    cmocka_unit_test(test_budget_rollover), cmocka_unit_test(test_budget_persisted),
};

KARS_UNIT_MAIN(tests)
