/* fuzz_policy_status.c - libFuzzer target for the controller's reader of a
 * kars-router's /kars/v1/policy-status answer
 * (userspace/controller/policy_status.h).
 *
 * The answer crosses a socket from another process: any bytes must give
 * either a digest that is one ("sha256:" and 64 lowercase hex, from the
 * entry of the asked kind and name, for the asked sandbox) or a refusal
 * that says why. selftests/fuzz/run.sh builds and runs it.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../userspace/controller/policy_status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char digest[KARS_DIGEST_LEN], why[300];
	int ret =
	    kars_policy_status_digest((const char *)data, size, "team-a/bot", "InferencePolicy",
				      "team-a/bot-inference", digest, why, sizeof(why));

	if (ret == 0) {
		CHECK(strlen(digest) == 71 && !strncmp(digest, "sha256:", 7));
		CHECK(strspn(digest + 7, "0123456789abcdef") == 64);
		CHECK(memmem(data, size, digest, 71) != NULL);
		CHECK(memmem(data, size, "team-a/bot", 10) != NULL);
	} else {
		CHECK(ret == -ENOENT || ret == -EINVAL);
		CHECK(why[0] != '\0' && strlen(why) < sizeof(why));
		CHECK(digest[0] == '\0');
	}
	return 0;
}
