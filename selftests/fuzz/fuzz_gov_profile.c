/* fuzz_gov_profile.c - libFuzzer target for the governance profile loader.
 *
 * A profile arrives from a ToolPolicy (agtProfile.inline) written by whoever
 * may edit that object, so its bytes are untrusted: the YAML/JSON reader,
 * the field checks and the compiler must not crash, leak or read past the
 * input. An accepted profile must then evaluate a few actions without
 * allocating surprises, and a refused one must say why.
 * selftests/fuzz/run.sh builds and runs it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "governance.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

static const char *const actions[] = {
    "shell:rm",
    "tool.invoke:web_search",
    "inference:chat_completions:gpt-4o",
    "data.read",
    "a",
    "admin:bulk_delete",
    "deploy.production",
    "x:*",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kars_gov_profile *p = NULL;
	struct kars_gov_load_notes notes;
	struct kars_err err = {0};
	struct kars_gov_kv ctx = {"environment", "production"};
	int ret;

	ret = kars_gov_profile_load_buf((const char *)data, size, "fuzz.yaml", NULL, &p, &notes,
					&err);
	if (ret) {
		CHECK(ret < 0);
		CHECK(p == NULL);
		CHECK(err.msg[0] != '\0');
		return 0;
	}
	CHECK(p != NULL);
	CHECK(kars_gov_profile_rule_count(p) <= KARS_GOV_RULES_MAX);
	for (size_t i = 0; i < sizeof(actions) / sizeof(*actions); i++) {
		struct kars_gov_request req = {.action = actions[i],
					       .context = &ctx,
					       .n_context = i % 2,
					       .now_ns = 1000000000ull * (i + 1)};
		struct kars_gov_decision d;

		kars_gov_profile_evaluate(p, &req, &d);
		CHECK(d.verdict <= KARS_GOV_RATE_LIMITED);
		CHECK(d.reason != NULL);
		CHECK(strlen(d.rule) <= KARS_GOV_NAME_MAX);
		CHECK(d.verdict != KARS_GOV_ALLOW || d.why == KARS_GOV_WHY_ALLOWED_ACTION ||
		      d.why == KARS_GOV_WHY_UNMATCHED_ALLOW);
	}
	kars_gov_profile_free(p);
	return 0;
}
