/* digest.h - the digest that names a compiled policy document.
 *
 * The controller compiles a policy to bytes, the daemon that enforces it
 * loads those bytes, and both report "sha256:<hex>" of them so that the
 * controller can tell when what it wrote is what is enforced. The digest
 * covers the document's name as well as its bytes, each length-prefixed
 * (a u64 big-endian byte count), so no two (name, body) pairs collide by
 * shifting bytes between them:
 *
 *	sha256( u64be(len(name)) || name || u64be(len(body)) || body )
 *
 * This is the original platform's contract (name "inference-policy.json"
 * for an InferencePolicy), kept so existing controllers and routers agree.
 */
#ifndef KARS_DIGEST_H
#define KARS_DIGEST_H

#include <stddef.h>

/* "sha256:" + 64 hex digits + NUL */
#define KARS_DIGEST_STR_LEN 72

void kars_policy_digest(const char *name, const void *body, size_t len,
			char out[KARS_DIGEST_STR_LEN]);

#endif
