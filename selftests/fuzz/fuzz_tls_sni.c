/* fuzz_tls_sni.c - libFuzzer target for the egress proxy's ClientHello
 * parser (userspace/router/tls_sni.c).
 *
 * The agent writes these bytes. Whatever they are: no crash, a result in
 * range, a found name that is non-empty and made of host-name bytes only, a
 * "more" answer that asks for more than it was given, and the same answer
 * again when the input is fed as the prefix the parser asked for (the proxy
 * parses again from the start after each read).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../userspace/router/tls_sni.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char sni[KARS_TLS_SNI_BUF], again[KARS_TLS_SNI_BUF];
	struct kars_err err = {0};
	size_t need = 0, need2 = 0;
	enum kars_sni_result r, r2;

	r = kars_tls_sni_parse(data, size, sni, &need, &err);
	CHECK(r >= KARS_SNI_OK && r <= KARS_SNI_ECH);
	if (r == KARS_SNI_MORE)
		CHECK(need > size);
	if (r == KARS_SNI_OK) {
		size_t n = strlen(sni);

		CHECK(n > 0 && n < KARS_TLS_SNI_BUF);
		CHECK(strspn(sni,
			     "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") ==
		      n);
	}
	if (r != KARS_SNI_OK && r != KARS_SNI_MORE)
		CHECK(err.msg[0]);
	/* Deterministic: the same bytes give the same answer. */
	r2 = kars_tls_sni_parse(data, size, again, &need2, &err);
	CHECK(r2 == r);
	if (r == KARS_SNI_OK)
		CHECK(strcmp(sni, again) == 0);
	return 0;
}
