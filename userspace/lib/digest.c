/* digest.c - see digest.h. */
#include "digest.h"

#include <sodium.h>
#include <stdint.h>
#include <string.h>

static void update_prefixed(crypto_hash_sha256_state *st, const void *bytes, size_t len)
{
	uint8_t be[8];

	for (int i = 0; i < 8; i++)
		be[i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
	crypto_hash_sha256_update(st, be, sizeof(be));
	crypto_hash_sha256_update(st, bytes, len);
}

void kars_policy_digest(const char *name, const void *body, size_t len,
			char out[KARS_DIGEST_STR_LEN])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t sum[crypto_hash_sha256_BYTES];
	crypto_hash_sha256_state st;

	crypto_hash_sha256_init(&st);
	update_prefixed(&st, name, strlen(name));
	update_prefixed(&st, body, len);
	crypto_hash_sha256_final(&st, sum);
	memcpy(out, "sha256:", 7);
	for (size_t i = 0; i < sizeof(sum); i++) {
		out[7 + 2 * i] = hex[sum[i] >> 4];
		out[8 + 2 * i] = hex[sum[i] & 15];
	}
	out[7 + 2 * sizeof(sum)] = '\0';
}
