/* fuzz_inference_policy.c - libFuzzer target for kars-router's InferencePolicy
 * loader (userspace/router/inference_policy.h).
 *
 * The policy file is written by the controller, but a mount mistake or a
 * compromised writer must not crash the router or make it enforce half a
 * policy: any byte string either parses into a whole policy whose invariants
 * hold, or is refused with a message that names the source. Model choice is
 * exercised on every accepted policy. selftests/fuzz/run.sh builds and runs it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../userspace/router/inference_policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *out[1 + KARS_POLICY_MAX_FALLBACKS], *code;
	struct kars_err err = {0};
	struct kars_inference_policy *p;
	char reason[256];

	p = kars_inference_policy_parse((const char *)data, size, "fuzz.json", "azure",
					"team-a/bot", &err);
	if (!p) {
		CHECK(strncmp(err.msg, "fuzz.json: ", 11) == 0);
		return 0;
	}
	CHECK(strncmp(p->digest, "sha256:", 7) == 0 && strlen(p->digest) == 71);
	CHECK(p->chain_len || p->n_allowed);
	CHECK(p->chain_len <= 1 + KARS_POLICY_MAX_FALLBACKS);
	CHECK(p->n_allowed <= KARS_POLICY_MAX_MODELS);
	CHECK(!p->daily_tokens || !p->monthly_tokens || p->monthly_tokens >= p->daily_tokens);
	for (int a = 0; a < KARS_ACTION__COUNT; a++) {
		const char *ask[] = {NULL, "gpt-4o", p->n_allowed ? p->allowed[0] : "x"};

		for (size_t i = 0; i < sizeof(ask) / sizeof(ask[0]); i++) {
			size_t n = kars_inference_policy_models(p, a, ask[i], out, &code, reason,
								sizeof(reason));

			CHECK(n <= 1 + KARS_POLICY_MAX_FALLBACKS + 1);
			for (size_t j = 0; j < n; j++)
				CHECK(kars_inference_policy_allows_model(p, out[j]));
			CHECK(n || *code);
		}
	}
	kars_inference_policy_unref(p);
	return 0;
}
