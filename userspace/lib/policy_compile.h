/* policy_compile.h - policies compiled to the canonical bytes a router
 * loads, and the digest both sides compare (docs/compiled-policy.md).
 *
 * The controller writes the bytes; the router hashes what it loaded and
 * reports the digest; the policy is Ready only when the two digests match.
 * So the bytes must be a pure function of the policy: compact JSON, keys
 * sorted, no floats, nothing time- or identity-dependent.
 */
#ifndef KARS_POLICY_COMPILE_H
#define KARS_POLICY_COMPILE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define KARS_DIGEST_LEN		     72 /* "sha256:" + 64 hex + NUL */
#define KARS_COMPILED_SCHEMA_VERSION 1

struct kars_compiled {
	char *bytes; /* canonical JSON, not NUL-counted in len */
	size_t len;
	char name[320]; /* "<namespace>/<name>", the digest's name */
	char digest[KARS_DIGEST_LEN];
};

/* SHA-256 over be64(len(name)) || name || be64(len) || bytes, written as
 * "sha256:<64 lowercase hex>". */
void kars_policy_digest(const char *name, const void *bytes, size_t len, char out[KARS_DIGEST_LEN]);

/* An InferencePolicy object (as stored: defaults applied) compiled to
 * {"schemaVersion":1,"kind":"InferencePolicy","namespace","name",
 *  "appliesTo","modelPreference","tokenBudget","contentSafety",
 *  "allowedModels","onDisallowedModel","displayName"} (the spec fields that
 * are present). -ENOTSUP for bundleRef (not implemented yet). */
int kars_inferencepolicy_compile(const json_t *policy, struct kars_compiled *out,
				 struct kars_err *err);

/* A ToolPolicy compiled to {"schemaVersion":1,"kind":"ToolPolicy",
 * "namespace","name","profile"}, profile being the AGT profile the router's
 * governance library loads (governance.h): spec.agtProfile.inline, plus a
 * rate_limit rule "kars-rate-limit" from spec.rateLimit; checked with the
 * library's own loader. -ENOTSUP for what is not compiled yet (bundleRef, approval modes
 * other than never, commerce), -EINVAL for a profile the loader refuses. */
int kars_toolpolicy_compile(const json_t *policy, struct kars_compiled *out, struct kars_err *err);

/* An EgressApproval compiled to {"schemaVersion":1,"kind":"EgressApproval",
 * "namespace","name","sandbox","hosts":[{"host","port"}],"effectiveAt",
 * "expiresAt"}; the window comes from status (the reconciler sets it). */
int kars_egressapproval_compile(const json_t *approval, struct kars_compiled *out,
				struct kars_err *err);

/* Canonical bytes and digest of doc (consumed) named ns/name into out. */
int kars_compiled_set(struct kars_compiled *out, json_t *doc, const char *ns, const char *name,
		      struct kars_err *err);

/* "P1DT2H3M4S" (the schema's DURATION pattern) in seconds; -EINVAL if it
 * is not one or overflows. */
int kars_iso_duration_s(const char *s, uint64_t *out);

void kars_compiled_free(struct kars_compiled *c);

#endif
