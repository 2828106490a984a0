/* fuzz_tool_policy_file.c - libFuzzer target for kars-router's reader of the
 * compiled ToolPolicy file (userspace/router/tool_policy_file.h).
 *
 * The file is written by the controller, but a mount mistake or a
 * compromised writer must not crash the router or make it report a digest
 * for something it did not read: any byte string is either the controller's
 * form (a name "<namespace>/<name>" of this router's namespace, a
 * sha256 digest, a profile that is a JSON object) or handed on whole as a
 * hand-written profile without a digest, or refused naming the file. What
 * comes out goes through the governance loader, as in the router.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../userspace/router/tool_policy_file.h"
#include "governance.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kars_tool_policy_file f;
	struct kars_gov_profile *p = NULL;
	struct kars_err err = {0};

	if (kars_tool_policy_file_parse((const char *)data, size, "fuzz.json", "team-a/bot", &f,
					&err)) {
		CHECK(strncmp(err.msg, "fuzz.json: ", 11) == 0 || err.code == ENOMEM);
		return 0;
	}
	CHECK(f.profile && f.profile[f.profile_len] == '\0');
	if (f.digest[0]) {
		CHECK(strncmp(f.digest, "sha256:", 7) == 0 && strlen(f.digest) == 71);
		CHECK(strncmp(f.name, "team-a/", 7) == 0 && f.name[7]);
		CHECK(f.profile[0] == '{');
	} else {
		CHECK(!f.name[0] && f.profile_len == size && !memcmp(f.profile, data, size));
	}
	kars_err_clear(&err);
	if (kars_gov_profile_load_buf(f.profile, f.profile_len, "fuzz.json", NULL, &p, NULL,
				      &err) == 0)
		CHECK(p && kars_gov_profile_agent(p));
	kars_gov_profile_free(p);
	kars_tool_policy_file_free(&f);
	return 0;
}
