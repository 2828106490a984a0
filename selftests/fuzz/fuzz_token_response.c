/* fuzz_token_response.c - libFuzzer target for the access-token answer
 * parser (userspace/router/token_response.h).
 *
 * Azure AD's and IMDS's answers reach kars-router from the network. The first
 * two input bytes pick the HTTP status (200 most of the time), the rest is the
 * body. Whatever the bytes: no crash or leak; a success yields exactly
 * "Authorization: Bearer " and a token of visible ASCII (nothing that could
 * split or inject a header) with a lifetime in (0, 30 days]; a failure yields
 * no header and one non-empty line of visible bytes as the message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../userspace/router/token_response.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const long statuses[] = {200, 200, 200, 200, 400, 401, 429, 500, 503, 302};
	struct kars_err err = {0};
	long long life_ms = -1;
	char *header = (char *)1;
	char *body;
	long status;
	int ret;

	if (size < 1)
		return 0;
	status = statuses[data[0] % (sizeof(statuses) / sizeof(statuses[0]))];
	/* An exact-size heap copy, so ASan sees any read past the body. */
	body = malloc(size - 1 ? size - 1 : 1);
	if (!body)
		return 0;
	memcpy(body, data + 1, size - 1);
	ret = kars_token_response_parse(status, body, size - 1, &header, &life_ms, &err);
	if (ret == 0) {
		size_t n = strlen("Authorization: Bearer ");

		CHECK(status == 200);
		CHECK(header && !strncmp(header, "Authorization: Bearer ", n));
		CHECK(header[n] != '\0');
		for (const char *p = header + n; *p; p++)
			CHECK(*p > ' ' && *p < 0x7f);
		CHECK(strlen(header + n) <= KARS_TOKEN_MAX_LEN);
		CHECK(life_ms > 0 && life_ms <= KARS_TOKEN_MAX_LIFE_S * 1000);
		free(header);
	} else {
		CHECK(ret < 0);
		CHECK(header == NULL);
		CHECK(err.msg[0] != '\0');
		for (const char *p = err.msg; *p; p++)
			CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);
	}
	free(body);
	return 0;
}
