/* policy_compile.c - see policy_compile.h. */
#include "policy_compile.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void be64(unsigned char out[8], unsigned long long v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		out[i] = (unsigned char)v;
}

void kars_policy_digest(const char *name, const void *bytes, size_t len, char out[KARS_DIGEST_LEN])
{
	unsigned char nlen[8], blen[8], md[32];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	be64(nlen, strlen(name));
	be64(blen, len);
	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) ||
	    !EVP_DigestUpdate(ctx, nlen, 8) || !EVP_DigestUpdate(ctx, name, strlen(name)) ||
	    !EVP_DigestUpdate(ctx, blen, 8) || !EVP_DigestUpdate(ctx, bytes, len) ||
	    !EVP_DigestFinal_ex(ctx, md, &mdlen) || mdlen != 32) {
		/* no digest is better than a wrong one: nothing will ever match it */
		snprintf(out, KARS_DIGEST_LEN, "sha256:error");
		EVP_MD_CTX_free(ctx);
		return;
	}
	EVP_MD_CTX_free(ctx);
	memcpy(out, "sha256:", 7);
	for (int i = 0; i < 32; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

int kars_inferencepolicy_compile(const json_t *policy, struct kars_compiled *out,
				 struct kars_err *err)
{
	static const char *const fields[] = {
	    "appliesTo",     "modelPreference",	  "tokenBudget", "contentSafety",
	    "allowedModels", "onDisallowedModel", "displayName", NULL};
	const json_t *md = json_object_get(policy, "metadata");
	const json_t *spec = json_object_get(policy, "spec");
	const char *ns = json_string_value(json_object_get(md, "namespace"));
	const char *name = json_string_value(json_object_get(md, "name"));
	json_t *doc;

	memset(out, 0, sizeof(*out));
	if (!ns || !name || !json_is_object(spec))
		return kars_err_set(err, EINVAL, "InferencePolicy without namespace, name or spec");
	if (json_object_get(spec, "bundleRef"))
		return kars_err_set(
		    err, ENOTSUP, "spec.bundleRef: signed policy bundles are not implemented yet");
	doc = json_pack("{s:i,s:s,s:s,s:s}", "schemaVersion", KARS_COMPILED_SCHEMA_VERSION, "kind",
			"InferencePolicy", "namespace", ns, "name", name);
	for (const char *const *f = fields; *f; f++)
		if (json_object_get(spec, *f))
			json_object_set(doc, *f, json_object_get(spec, *f));
	return kars_compiled_set(out, doc, ns, name, err);
}

int kars_compiled_set(struct kars_compiled *out, json_t *doc, const char *ns, const char *name,
		      struct kars_err *err)
{
	out->bytes = doc ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(doc);
	if (!out->bytes)
		return kars_err_set(err, ENOMEM, "compile: out of memory");
	out->len = strlen(out->bytes);
	snprintf(out->name, sizeof(out->name), "%s/%s", ns, name);
	kars_policy_digest(out->name, out->bytes, out->len, out->digest);
	return 0;
}

int kars_iso_duration_s(const char *s, uint64_t *out)
{
	static const struct {
		char unit;
		uint64_t secs;
		bool in_time;
	} parts[] = {{'D', 86400, false}, {'H', 3600, true}, {'M', 60, true}, {'S', 1, true}};
	uint64_t total = 0;
	bool in_time = false;
	size_t next = 0;

	if (*s++ != 'P')
		return -EINVAL;
	while (*s) {
		uint64_t n = 0;

		if (*s == 'T' && !in_time) {
			in_time = true;
			s++;
			continue;
		}
		if (*s < '0' || *s > '9')
			return -EINVAL;
		for (; *s >= '0' && *s <= '9'; s++) {
			if (n > (UINT64_MAX - 9) / 10)
				return -EINVAL;
			n = n * 10 + (uint64_t)(*s - '0');
		}
		while (next < 4 && parts[next].unit != *s)
			next++;
		if (next == 4 || parts[next].in_time != in_time ||
		    n > (UINT64_MAX - total) / parts[next].secs)
			return -EINVAL;
		total += n * parts[next++].secs;
		s++;
	}
	*out = total;
	return 0;
}

void kars_compiled_free(struct kars_compiled *c)
{
	free(c->bytes);
	c->bytes = NULL;
}
