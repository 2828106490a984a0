/* inference_policy.c - see inference_policy.h. */
#include "inference_policy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "json.h"

#define MAX_POLICY_BYTES (1u << 20)

static const char *const action_names[KARS_ACTION__COUNT] = {
    [KARS_ACTION_CHAT] = "chat",
    [KARS_ACTION_RESPONSES] = "responses",
    [KARS_ACTION_COMPLETIONS] = "completions",
    [KARS_ACTION_EMBEDDINGS] = "embeddings",
    [KARS_ACTION_IMAGE] = "image",
};

static const char *const harm_keys[KARS_HARM__COUNT] = {
    [KARS_HARM_HATE] = "hate",
    [KARS_HARM_SELF_HARM] = "selfHarm",
    [KARS_HARM_SEXUAL] = "sexual",
    [KARS_HARM_VIOLENCE] = "violence",
};

/* The matching kars_cf_category of each harm. */
static const enum kars_cf_category harm_category[KARS_HARM__COUNT] = {
    [KARS_HARM_HATE] = KARS_CF_HATE,
    [KARS_HARM_SELF_HARM] = KARS_CF_SELF_HARM,
    [KARS_HARM_SEXUAL] = KARS_CF_SEXUAL,
    [KARS_HARM_VIOLENCE] = KARS_CF_VIOLENCE,
};

const char *kars_policy_action_name(enum kars_policy_action a)
{
	return a < KARS_ACTION__COUNT ? action_names[a] : "?";
}

/* Model and deployment names: what OpenAI and Azure use ("gpt-4o-mini",
 * "ft:gpt-4o:org::id", "my-deployment_2"), nothing that needs escaping in a
 * URL path or a log line. */
bool kars_model_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= KARS_POLICY_MODEL_LEN)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.' || c == ':'))
			return false;
	}
	return true;
}

static int copy_string(char *dst, size_t len, const char *src, const char *path,
		       struct kars_err *err)
{
	if (strlen(src) >= len)
		return kars_err_set(err, EINVAL, "%s: longer than %zu bytes", path, len - 1);
	strcpy(dst, src);
	return 0;
}

static int parse_action(const json_t *v, const char *path, uint32_t *actions, struct kars_err *err)
{
	const char *s = json_string_value(v);

	if (!s)
		return kars_err_set(err, EINVAL, "%s: expected a string", path);
	if (strcmp(s, "*") == 0) {
		*actions |= (1u << KARS_ACTION__COUNT) - 1;
		return 0;
	}
	for (int i = 0; i < KARS_ACTION__COUNT; i++) {
		if (strcmp(s, action_names[i]) == 0) {
			*actions |= 1u << i;
			return 0;
		}
	}
	return kars_err_set(err, EINVAL,
			    "%s: Unsupported value \"%s\": supported values: \"chat\", "
			    "\"responses\", \"completions\", \"embeddings\", \"image\", \"*\"",
			    path, s);
}

/* appliesTo: {sandboxName, sandboxMatchLabels, action}. The controller has
 * already matched the labels; the name is checked again here so that a
 * policy delivered to the wrong router is refused, not enforced. */
static int parse_applies_to(const json_t *root, struct kars_inference_policy *p,
			    const char *sandbox, struct kars_err *err)
{
	static const char *const keys[] = {"sandboxName", "sandboxMatchLabels", "action", NULL};
	const char *name = NULL, *ours;
	const json_t *action;
	char path[64];
	int ret;
	const json_t *a = kars_json_get_object(root, "", "appliesTo", false, &ret, err);

	p->actions = (1u << KARS_ACTION__COUNT) - 1;
	if (!a)
		return ret;
	ret = kars_json_only_keys(a, "appliesTo", keys, err);
	if (!ret)
		ret = kars_json_get_string(a, "appliesTo", "sandboxName", false, &name, err);
	if (!ret && json_object_get(a, "sandboxMatchLabels") &&
	    !json_is_object(json_object_get(a, "sandboxMatchLabels")))
		ret = kars_err_set(err, EINVAL, "appliesTo.sandboxMatchLabels: expected an object");
	if (ret)
		return ret;
	ours = strchr(sandbox, '/') ? strchr(sandbox, '/') + 1 : sandbox;
	if (name && strcmp(name, ours) != 0)
		return kars_err_set(err, EINVAL,
				    "appliesTo.sandboxName: the policy applies to sandbox \"%s\", "
				    "this router serves \"%s\"",
				    name, sandbox);
	action = json_object_get(a, "action");
	if (!action)
		return 0;
	p->actions = 0;
	if (!json_is_array(action))
		return parse_action(action, "appliesTo.action", &p->actions, err);
	if (json_array_size(action) == 0)
		return kars_err_set(err, EINVAL, "appliesTo.action: must not be empty");
	for (size_t i = 0; i < json_array_size(action); i++) {
		kars_json_path_index(path, sizeof(path), "appliesTo.action", i);
		ret = parse_action(json_array_get(action, i), path, &p->actions, err);
		if (ret)
			return ret;
	}
	return 0;
}

/* The provider names a policy may use for the router's upstream kind
 * ("openai" or "azure"): the CRD's names (azure-openai, foundry) too. */
static bool provider_matches(const char *policy, const char *upstream)
{
	if (strcmp(upstream, "azure") == 0)
		return !strcmp(policy, "azure") || !strcmp(policy, "azure-openai") ||
		       !strcmp(policy, "foundry");
	return strcmp(policy, upstream) == 0;
}

static int parse_model_ref(const json_t *v, const char *path, const char *provider,
			   struct kars_model_ref *out, struct kars_err *err)
{
	static const char *const keys[] = {"provider", "deployment", NULL};
	const char *prov = NULL, *dep = NULL;
	char field[128];
	int ret;

	if (!json_is_object(v))
		return kars_err_set(err, EINVAL, "%s: expected an object", path);
	ret = kars_json_only_keys(v, path, keys, err);
	if (!ret)
		ret = kars_json_get_string(v, path, "provider", false, &prov, err);
	if (!ret)
		ret = kars_json_get_string(v, path, "deployment", true, &dep, err);
	if (ret)
		return ret;
	kars_json_path(field, sizeof(field), path, "deployment");
	if (!kars_model_name_ok(dep))
		return kars_err_set(err, EINVAL,
				    "%s: \"%.64s\" is not a model or deployment name (1-256 of "
				    "letters, digits, - _ . :)",
				    field, dep);
	/* One router, one upstream: a policy that expects another provider
	 * would silently send its traffic somewhere it did not ask for. */
	if (prov && *prov && !provider_matches(prov, provider)) {
		kars_json_path(field, sizeof(field), path, "provider");
		return kars_err_set(err, EINVAL,
				    "%s: \"%.32s\" is not this router's upstream (\"%s\")", field,
				    prov, provider);
	}
	strcpy(out->deployment, dep);
	return copy_string(out->provider, sizeof(out->provider), prov ? prov : "", path, err);
}

static int parse_model_preference(const json_t *root, struct kars_inference_policy *p,
				  const char *provider, struct kars_err *err)
{
	static const char *const keys[] = {"primary", "fallback", NULL};
	const json_t *primary, *fallback;
	char path[64];
	int ret;
	const json_t *mp = kars_json_get_object(root, "", "modelPreference", false, &ret, err);

	if (!mp)
		return ret;
	ret = kars_json_only_keys(mp, "modelPreference", keys, err);
	if (ret)
		return ret;
	primary = json_object_get(mp, "primary");
	if (!primary)
		return kars_err_set(err, EINVAL, "modelPreference.primary: Required value");
	ret = parse_model_ref(primary, "modelPreference.primary", provider, &p->chain[0], err);
	if (ret)
		return ret;
	p->chain_len = 1;
	fallback = kars_json_get_array(mp, "modelPreference", "fallback", false, &ret, err);
	if (!fallback)
		return ret;
	if (json_array_size(fallback) > KARS_POLICY_MAX_FALLBACKS)
		return kars_err_set(err, EINVAL, "modelPreference.fallback: at most %d entries",
				    KARS_POLICY_MAX_FALLBACKS);
	for (size_t i = 0; i < json_array_size(fallback); i++) {
		struct kars_model_ref *m = &p->chain[p->chain_len];

		kars_json_path_index(path, sizeof(path), "modelPreference.fallback", i);
		ret = parse_model_ref(json_array_get(fallback, i), path, provider, m, err);
		if (ret)
			return ret;
		for (size_t j = 0; j < p->chain_len; j++)
			if (strcmp(p->chain[j].deployment, m->deployment) == 0)
				return kars_err_set(err, EINVAL,
						    "%s.deployment: Duplicate value \"%s\"", path,
						    m->deployment);
		p->chain_len++;
	}
	return 0;
}

static int parse_allowed_models(const json_t *root, struct kars_inference_policy *p,
				struct kars_err *err)
{
	const char *mode = "deny";
	char path[64];
	int ret;
	const json_t *list = kars_json_get_array(root, "", "allowedModels", false, &ret, err);

	if (!list && ret)
		return ret;
	if (list && json_array_size(list) > KARS_POLICY_MAX_MODELS)
		return kars_err_set(err, EINVAL, "allowedModels: at most %d entries",
				    KARS_POLICY_MAX_MODELS);
	for (size_t i = 0; list && i < json_array_size(list); i++) {
		const char *s = json_string_value(json_array_get(list, i));

		kars_json_path_index(path, sizeof(path), "allowedModels", i);
		if (!s)
			return kars_err_set(err, EINVAL, "%s: expected a string", path);
		if (!kars_model_name_ok(s))
			return kars_err_set(err, EINVAL,
					    "%s: \"%.64s\" is not a model name (1-256 of letters, "
					    "digits, - _ . :)",
					    path, s);
		for (size_t j = 0; j < p->n_allowed; j++)
			if (strcmp(p->allowed[j], s) == 0)
				return kars_err_set(err, EINVAL, "%s: Duplicate value \"%s\"", path,
						    s);
		strcpy(p->allowed[p->n_allowed++], s);
	}
	ret = kars_json_get_string(root, "", "onDisallowedModel", false, &mode, err);
	if (ret)
		return ret;
	if (strcmp(mode, "override") == 0)
		p->override_disallowed = true;
	else if (strcmp(mode, "deny") != 0)
		return kars_err_set(err, EINVAL,
				    "onDisallowedModel: Unsupported value \"%s\": supported "
				    "values: \"deny\", \"override\"",
				    mode);
	if (p->override_disallowed && p->chain_len == 0)
		return kars_err_set(err, EINVAL,
				    "onDisallowedModel: \"override\" needs modelPreference.primary "
				    "to override with");
	if (p->chain_len == 0 && p->n_allowed == 0)
		return kars_err_set(err, EINVAL,
				    "modelPreference.primary: Required value: a policy must name "
				    "its models (modelPreference.primary or allowedModels)");
	return 0;
}

static int parse_token_budget(const json_t *root, struct kars_inference_policy *p,
			      struct kars_err *err)
{
	static const char *const keys[] = {"perRequestTokens", "dailyTokens", "monthlyTokens",
					   NULL};
	const uint64_t max = 1ull << 53; /* exact in every JSON reader */
	int ret;
	const json_t *b = kars_json_get_object(root, "", "tokenBudget", false, &ret, err);

	if (!b)
		return ret;
	ret = kars_json_only_keys(b, "tokenBudget", keys, err);
	if (!ret)
		ret = kars_json_get_uint(b, "tokenBudget", "perRequestTokens", false, 0, max,
					 &p->per_request_tokens, err);
	if (!ret)
		ret = kars_json_get_uint(b, "tokenBudget", "dailyTokens", false, 0, max,
					 &p->daily_tokens, err);
	if (!ret)
		ret = kars_json_get_uint(b, "tokenBudget", "monthlyTokens", false, 0, max,
					 &p->monthly_tokens, err);
	if (!ret && p->daily_tokens && p->monthly_tokens && p->monthly_tokens < p->daily_tokens)
		ret = kars_err_set(err, EINVAL,
				   "tokenBudget.monthlyTokens: Invalid value: %llu: must be at "
				   "least dailyTokens (%llu)",
				   (unsigned long long)p->monthly_tokens,
				   (unsigned long long)p->daily_tokens);
	return ret;
}

static int parse_severity(const char *s, const char *path, enum kars_cf_severity *out,
			  struct kars_err *err)
{
	static const char *const names[] = {"Safe", "Low", "Medium", "High"};

	for (int i = 0; i < 4; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (enum kars_cf_severity)(KARS_CF_SEVERITY_SAFE + i);
			return 0;
		}
	}
	return kars_err_set(err, EINVAL,
			    "%s: Unsupported value \"%s\": supported values: \"Safe\", \"Low\", "
			    "\"Medium\", \"High\"",
			    path, s);
}

static int parse_content_safety(const json_t *root, struct kars_inference_policy *p,
				struct kars_err *err)
{
	static const char *const keys[] = {
	    "hate", "selfHarm", "sexual", "violence", "requirePromptShields", NULL};
	char path[64];
	int ret;
	const json_t *cs = kars_json_get_object(root, "", "contentSafety", false, &ret, err);

	if (!cs)
		return ret;
	ret = kars_json_only_keys(cs, "contentSafety", keys, err);
	for (int i = 0; !ret && i < KARS_HARM__COUNT; i++) {
		const char *s = NULL;

		ret = kars_json_get_string(cs, "contentSafety", harm_keys[i], false, &s, err);
		if (!ret && s)
			ret = parse_severity(
			    s, kars_json_path(path, sizeof(path), "contentSafety", harm_keys[i]),
			    &p->ceiling[i], err);
	}
	if (!ret)
		ret = kars_json_get_bool(cs, "contentSafety", "requirePromptShields", false,
					 &p->require_prompt_shields, err);
	return ret;
}

/* Prefixes err's message with source, so that every error names the file. */
static void name_source(struct kars_err *err, const char *source)
{
	char msg[sizeof(err->msg)];

	snprintf(msg, sizeof(msg), "%.200s: %.300s", source, err->msg);
	memcpy(err->msg, msg, sizeof(msg));
}

/* schemaVersion, kind, namespace and name: what the document is. */
static int parse_identity(const json_t *root, struct kars_inference_policy *p, struct kars_err *err)
{
	const char *kind = NULL, *ns = NULL, *name = NULL, *dn = NULL;
	uint64_t version = 0;
	int ret;

	ret = kars_json_get_uint(root, "", "schemaVersion", true, 0, UINT32_MAX, &version, err);
	if (!ret && version != KARS_COMPILED_SCHEMA_VERSION)
		ret = kars_err_set(err, EINVAL,
				   "schemaVersion: Unsupported value %llu: this router reads %d",
				   (unsigned long long)version, KARS_COMPILED_SCHEMA_VERSION);
	if (!ret)
		ret = kars_json_get_string(root, "", "kind", true, &kind, err);
	if (!ret && strcmp(kind, "InferencePolicy") != 0)
		ret = kars_err_set(err, EINVAL,
				   "kind: Unsupported value \"%s\": supported values: "
				   "\"InferencePolicy\"",
				   kind);
	if (!ret)
		ret = kars_json_get_string(root, "", "namespace", true, &ns, err);
	if (!ret)
		ret = kars_json_get_string(root, "", "name", true, &name, err);
	if (!ret && (!*ns || !*name || strlen(ns) + strlen(name) + 2 > sizeof(p->name)))
		ret = kars_err_set(err, EINVAL, "namespace, name: must be 1 to %zu bytes together",
				   sizeof(p->name) - 2);
	if (!ret)
		snprintf(p->name, sizeof(p->name), "%s/%s", ns, name);
	if (!ret)
		ret = kars_json_get_string(root, "", "displayName", false, &dn, err);
	if (!ret && dn)
		ret = copy_string(p->display_name, sizeof(p->display_name), dn, "displayName", err);
	return ret;
}

struct kars_inference_policy *kars_inference_policy_parse(const char *buf, size_t len,
							  const char *source, const char *provider,
							  const char *sandbox, struct kars_err *err)
{
	static const char *const keys[] = {
	    "schemaVersion", "kind",	      "namespace",	   "name",
	    "displayName",   "appliesTo",     "modelPreference",   "allowedModels",
	    "tokenBudget",   "contentSafety", "onDisallowedModel", NULL};
	struct kars_inference_policy *p;
	struct timespec now;
	json_t *root;
	int ret;

	root = kars_json_parse(buf, len, err);
	if (!root) {
		name_source(err, source);
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		json_decref(root);
		kars_err_set(err, ENOMEM, "%s: out of memory", source);
		return NULL;
	}
	p->refs = 1;
	if (!json_is_object(root))
		ret = kars_err_set(err, EINVAL, "expected a JSON object");
	else
		ret = kars_json_only_keys(root, "", keys, err);
	if (!ret)
		ret = parse_identity(root, p, err);
	if (!ret)
		ret = parse_applies_to(root, p, sandbox, err);
	if (!ret)
		ret = parse_model_preference(root, p, provider, err);
	if (!ret)
		ret = parse_allowed_models(root, p, err);
	if (!ret)
		ret = parse_token_budget(root, p, err);
	if (!ret)
		ret = parse_content_safety(root, p, err);
	if (!ret)
		ret = copy_string(p->source, sizeof(p->source), source, "source", err);
	json_decref(root);
	if (ret) {
		name_source(err, source);
		free(p);
		return NULL;
	}
	/* Over the bytes as read, never a re-encoding: the controller's digest. */
	kars_policy_digest(p->name, buf, len, p->digest);
	clock_gettime(CLOCK_REALTIME, &now);
	p->loaded_at_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
	return p;
}

struct kars_inference_policy *kars_inference_policy_load(const char *path, const char *provider,
							 const char *sandbox, struct kars_err *err)
{
	struct kars_inference_policy *p = NULL;
	struct stat st;
	char *buf = NULL;
	ssize_t n = 0;
	size_t len = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		kars_err_set(err, errno, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		kars_err_set(err, EINVAL, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_size > MAX_POLICY_BYTES) {
		kars_err_set(err, EFBIG, "%s: %lld bytes, more than the %u allowed", path,
			     (long long)st.st_size, MAX_POLICY_BYTES);
		goto out;
	}
	buf = malloc(MAX_POLICY_BYTES + 1);
	if (!buf) {
		kars_err_set(err, ENOMEM, "%s: out of memory", path);
		goto out;
	}
	/* Read to the end, not to st_size: the file may change under us, and
	 * then the digest must be of what was parsed. */
	while (len <= MAX_POLICY_BYTES && (n = read(fd, buf + len, MAX_POLICY_BYTES + 1 - len)) > 0)
		len += (size_t)n;
	if (n < 0) {
		kars_err_set(err, errno, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (len > MAX_POLICY_BYTES) {
		kars_err_set(err, EFBIG, "%s: more than %u bytes", path, MAX_POLICY_BYTES);
		goto out;
	}
	if (len == 0) {
		kars_err_set(err, ENODATA, "%s: empty", path);
		goto out;
	}
	p = kars_inference_policy_parse(buf, len, path, provider, sandbox, err);
out:
	free(buf);
	close(fd);
	return p;
}

struct kars_inference_policy *kars_inference_policy_ref(struct kars_inference_policy *p)
{
	if (p)
		p->refs++;
	return p;
}

void kars_inference_policy_unref(struct kars_inference_policy *p)
{
	if (p && --p->refs == 0)
		free(p);
}

bool kars_inference_policy_covers(const struct kars_inference_policy *p,
				  enum kars_policy_action action)
{
	return action < KARS_ACTION__COUNT && (p->actions & (1u << action));
}

static bool in_chain(const struct kars_inference_policy *p, const char *model)
{
	for (size_t i = 0; i < p->chain_len; i++)
		if (strcmp(p->chain[i].deployment, model) == 0)
			return true;
	return false;
}

bool kars_inference_policy_allows_model(const struct kars_inference_policy *p, const char *model)
{
	for (size_t i = 0; i < p->n_allowed; i++)
		if (strcmp(p->allowed[i], model) == 0)
			return true;
	return in_chain(p, model);
}

size_t kars_inference_policy_models(const struct kars_inference_policy *p,
				    enum kars_policy_action action, const char *requested,
				    const char *out[1 + KARS_POLICY_MAX_FALLBACKS],
				    const char **code, char *reason, size_t reason_len)
{
	/* Embedding models are not chat models: no preference, no override,
	 * no failover; the request names an allowed model or is refused. */
	bool generation = action != KARS_ACTION_EMBEDDINGS;
	size_t n = 0;

	if (requested && !*requested)
		requested = NULL;
	if (requested && !kars_inference_policy_allows_model(p, requested)) {
		if (!generation || !p->override_disallowed) {
			*code = "model_not_allowed";
			snprintf(reason, reason_len,
				 "model \"%.64s\" is not allowed by InferencePolicy %s", requested,
				 p->name);
			return 0;
		}
		requested = NULL; /* override: the policy's own chain */
	}
	if (!requested && (!generation || p->chain_len == 0)) {
		*code = "model_required";
		snprintf(reason, reason_len,
			 "the request must name a model: InferencePolicy %s has no %s", p->name,
			 generation ? "modelPreference.primary" : "default embedding model");
		return 0;
	}
	if (requested)
		out[n++] = requested;
	if (!generation)
		return n;
	/* The requested model (if any) first, then the policy's chain. A
	 * request for a model outside the chain still fails over to it. */
	for (size_t i = 0; i < p->chain_len; i++)
		if (!requested || strcmp(p->chain[i].deployment, requested) != 0)
			out[n++] = p->chain[i].deployment;
	return n;
}

bool kars_inference_policy_blocks_content(const struct kars_inference_policy *p,
					  const struct kars_content_filter *f, char *reason,
					  size_t reason_len)
{
	for (int i = 0; i < KARS_HARM__COUNT; i++) {
		enum kars_cf_severity seen =
		    (enum kars_cf_severity)f->max_severity[harm_category[i]];

		if (p->ceiling[i] != KARS_CF_SEVERITY_NONE && seen > p->ceiling[i]) {
			snprintf(reason, reason_len,
				 "content safety: %s severity %s is above the policy's ceiling %s",
				 kars_cf_category_name(harm_category[i]),
				 kars_cf_severity_name(seen), kars_cf_severity_name(p->ceiling[i]));
			return true;
		}
	}
	if (p->require_prompt_shields && !f->annotated) {
		snprintf(reason, reason_len,
			 "content safety: the policy requires prompt shields and the upstream "
			 "sent no content-filter annotations");
		return true;
	}
	return false;
}
