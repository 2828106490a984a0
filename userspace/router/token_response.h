/* token_response.h - reading an access-token answer from Azure AD or IMDS.
 *
 * The bytes come from the network, so this is a parser of untrusted input,
 * kept apart from the event loop so it can be fuzzed
 * (selftests/fuzz/fuzz_token_response.c). Both services answer 200 with a
 * JSON object holding access_token, token_type and the lifetime (AAD:
 * "expires_in": 3599; IMDS: "expires_in": "3599" and "expires_on": epoch
 * seconds, as strings), and an error status with {"error", "error_description"}.
 */
#ifndef KARS_ROUTER_TOKEN_RESPONSE_H
#define KARS_ROUTER_TOKEN_RESPONSE_H

#include <stddef.h>

#include "err.h"

#define KARS_TOKEN_MAX_LEN    (16 << 10)
#define KARS_TOKEN_MAX_LIFE_S (30LL * 86400)

/* status and body (len bytes, not necessarily NUL-terminated) as received.
 * Returns 0 with *header = "Authorization: Bearer TOKEN" (malloc'd; the
 * caller wipes and frees it) and *life_ms in (0, 30 days]; the token's copy
 * in the parsed JSON is wiped. Otherwise a negative errno and one line in err
 * (no control bytes, never the token): for an error status, the service's
 * error code and the first line of its description ("invalid_client:
 * AADSTS70021: No matching federated identity record found ..."). */
int kars_token_response_parse(long status, const char *body, size_t len, char **header,
			      long long *life_ms, struct kars_err *err);

#endif
