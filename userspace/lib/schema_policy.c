/* schema_policy.c - the policy kinds a sandbox's router enforces:
 * ToolPolicy, InferencePolicy and EgressApproval. Each is compiled by the
 * controller to canonical JSON with a digest (status.compiledDigest) and is
 * Ready only when the router reports the same digest loaded.
 */
#include "schema_common.h"

#define MONEY	   "^[A-Z]{3} [0-9]+(\\.[0-9]{1,2})?$"
#define MODEL_NAME "^[A-Za-z0-9._:-]+$" /* the router's kars_model_name_ok() */
#define DURATION   "^P([0-9]+D)?(T([0-9]+H)?([0-9]+M)?([0-9]+S)?)?$"

#define COMPILED_STATUS                                                                            \
	OBSERVED_GENERATION,                                                                       \
	    F("compiledDigest", KT_STRING, .desc = "Digest of the compiled policy."),              \
	    F("loadedDigest", KT_STRING, .desc = "Digest the router reports loaded."),             \
	    F("lastCompiledAt", KT_STRING, .format = "date-time", .desc = "Last compile time."),   \
	    F("bundleRefDigest", KT_STRING, .desc = "Digest of the verified bundle, if any.")

static bool tp_labels(const json_t *self)
{
	return json_object_size(json_object_get(self, "sandboxMatchLabels")) >= 1;
}

static bool tp_threshold(const json_t *self)
{
	return !j_str_is(self, "mode", "aboveThreshold") || j_has(self, "threshold");
}

static bool one_profile_source(const json_t *self)
{
	return j_has(self, "inline") != j_has(self, "bundleRef");
}

static const struct kars_field tp_spec =
    F("spec", KT_OBJECT, .flags = KF_REQUIRED, .desc = "Tool-call policy for matching sandboxes.",
      .props = FIELDS(
	  F("appliesTo", KT_OBJECT, .flags = KF_REQUIRED,
	    .desc = "Which tool calls, of which sandboxes, this policy governs.",
	    .props = FIELDS(
		F("tool", KT_STRING, .max_len = 253, .dflt = "\"*\"",
		  .desc = "Tool name, or * for all."),
		F("mcpServer", KT_STRING, .max_len = 253, .desc = "McpServer the tool belongs to."),
		F("sandboxMatchLabels", KT_MAP, .max_items = 32,
		  .items = ITEMS(.type = KT_STRING, .max_len = 63),
		  .desc = "Labels a KarsSandbox must carry (at least one).")),
	    .rules = RULES({"has(self.sandboxMatchLabels) && size(self.sandboxMatchLabels) >= 1",
			    "appliesTo.sandboxMatchLabels must name at least one label",
			    ".sandboxMatchLabels", tp_labels})),
	  F("approval", KT_OBJECT, .desc = "Human approval of tool calls.",
	    .props = FIELDS(
		F("mode", KT_STRING, .enums = ENUM("never", "always", "aboveThreshold"),
		  .dflt = "\"never\"", .desc = "When a call needs approval."),
		F("threshold", KT_INTEGER, RANGE(0, 1000),
		  .desc = "Risk score above which approval is needed."),
		F("channel", KT_STRING, .max_len = 253, .desc = "Where approval requests go.")),
	    .rules = RULES({"self.mode != 'aboveThreshold' || has(self.threshold)",
			    "approval.threshold is required with mode aboveThreshold", NULL,
			    tp_threshold})),
	  F("rateLimit", KT_OBJECT, .desc = "Tool-call rate limit per sandbox.",
	    .props = FIELDS(F("rps", KT_INTEGER, RANGE(1, 100000), .desc = "Calls per second."),
			    F("burst", KT_INTEGER, RANGE(1, 100000), .desc = "Burst size."),
			    F("window", KT_STRING, .pattern = DURATION, .max_len = 32,
			      .desc = "Accounting window, ISO-8601 duration."))),
	  F("commerce", KT_OBJECT, .desc = "Spending caps for payment tools (\"USD 10.00\").",
	    .props = FIELDS(
		F("dailyCap", KT_STRING, .pattern = MONEY, .desc = "Daily cap."),
		F("monthlyCap", KT_STRING, .pattern = MONEY, .desc = "Monthly cap."),
		F("perTransferCap", KT_STRING, .pattern = MONEY, .desc = "Cap per transfer."),
		F("counterpartyAllowlist", KT_ARRAY, .flags = KF_SET, .max_items = 256,
		  .items = ITEMS(.type = KT_STRING, .max_len = 253),
		  .desc = "Counterparties payments may go to."))),
	  F("agtProfile", KT_OBJECT, .desc = "The governance profile: inline or a signed bundle.",
	    .props = FIELDS(F("inline", KT_FREEFORM, .desc = "The profile itself."),
			    OCI_REF("bundleRef", "Signed OCI bundle holding the profile.")),
	    .rules = RULES({"has(self.inline) != has(self.bundleRef)",
			    "exactly one of agtProfile.inline and agtProfile.bundleRef must be set",
			    NULL, one_profile_source}))));

static const struct kars_field tp_status =
    F("status", KT_OBJECT, .desc = "Observed state, written by the controller.",
      .props = FIELDS(PHASE("Pending", "Compiled", "Ready", "Degraded"), COMPILED_STATUS,
		      F("agtProfileDigest", KT_STRING, .desc = "Digest of the inline profile."),
		      F("agtProfileBundleDigest", KT_STRING, .desc = "Digest of the bundle."),
		      CONDITIONS));

const struct kars_kind kars_kind_toolpolicy = {
    .kind = "ToolPolicy",
    .plural = "toolpolicies",
    .singular = "toolpolicy",
    .short_names = ENUM("tp"),
    .desc = "Which tools matching sandboxes may call, with approval, rate and spending limits.",
    .spec = &tp_spec,
    .status = &tp_status,
    .columns =
	COLUMNS(PHASE_COLUMN, {"Tool", "string", ".spec.appliesTo.tool", "Tool governed.", 0},
		{"Approval", "string", ".spec.approval.mode", "Approval mode.", 0}, AGE_COLUMN),
    .phases = ENUM("Pending", "Compiled", "Ready", "Degraded"),
    .conditions = ENUM("Ready", "Progressing", "Degraded"),
};

static bool ip_budget(const json_t *self)
{
	const json_t *d = json_object_get(self, "dailyTokens");
	const json_t *m = json_object_get(self, "monthlyTokens");

	return !d || !m || json_integer_value(m) >= json_integer_value(d);
}

static bool ip_bundle_or_inline(const json_t *self)
{
	return !j_has(self, "bundleRef") ||
	       !(j_has(self, "modelPreference") || j_has(self, "tokenBudget") ||
		 j_has(self, "contentSafety") || j_has(self, "allowedModels") ||
		 j_has(self, "onDisallowedModel"));
}

/* The router refuses a policy that names no model (docs/router.md). */
static bool ip_names_models(const json_t *self)
{
	return j_has(self, "bundleRef") || j_has(self, "modelPreference") ||
	       j_has(self, "allowedModels");
}

/* "override" sends a disallowed request to the chain, so there must be one. */
static bool ip_override_needs_chain(const json_t *self)
{
	return !j_str_is(self, "onDisallowedModel", "override") || j_has(self, "modelPreference");
}

#define SEVERITY(n)                                                                                \
	F(n, KT_STRING, .enums = ENUM("Safe", "Low", "Medium", "High"),                            \
	  .desc = "Lowest severity that is blocked.")

#define MODEL(n, fl, d)                                                                            \
	F(n, KT_OBJECT, .flags = (fl), .desc = d,                                                  \
	  .props = FIELDS(F("provider", KT_STRING, .max_len = 63, .pattern = DNS_LABEL,            \
			    .desc = "Provider, e.g. azure-openai, openai, foundry."),              \
			  F("deployment", KT_STRING, .flags = KF_REQUIRED, .min_len = 1,           \
			    .max_len = 253, .desc = "Model deployment name.")))

static const struct kars_field ip_spec = F(
    "spec", KT_OBJECT, .flags = KF_REQUIRED,
    .desc = "Model, token budget and content-safety guardrails for matching sandboxes.",
    .props = FIELDS(
	F("appliesTo", KT_OBJECT, .flags = KF_REQUIRED, .desc = "Which sandboxes and calls.",
	  .props = FIELDS(
	      F("sandboxName", KT_STRING, .pattern = DNS_LABEL, .max_len = 63,
		.desc = "One sandbox by name."),
	      F("sandboxMatchLabels", KT_MAP, .max_items = 32,
		.items = ITEMS(.type = KT_STRING, .max_len = 63), .desc = "Sandboxes by label."),
	      F("action", KT_STRING,
		.enums = ENUM("chat", "responses", "completions", "image", "embeddings", "*"),
		.dflt = "\"*\"",
		.desc = "Which calls: chat, responses, completions (the legacy "
			"route), image, embeddings or * for all."))),
	F("modelPreference", KT_OBJECT, .desc = "Model to use, and fallbacks.",
	  .props = FIELDS(
	      MODEL("primary", KF_REQUIRED, "The model calls go to."),
	      F("fallback", KT_ARRAY, .max_items = 8,
		.items =
		    ITEMS(.type = KT_OBJECT,
			  .props = FIELDS(F("provider", KT_STRING, .max_len = 63,
					    .pattern = DNS_LABEL, .desc = "Provider."),
					  F("deployment", KT_STRING, .flags = KF_REQUIRED,
					    .min_len = 1, .max_len = 253, .desc = "Deployment."))),
		.desc = "Models tried in order when the primary fails."))),
	F("tokenBudget", KT_OBJECT, .desc = "Token limits.",
	  .props = FIELDS(F("perRequestTokens", KT_INTEGER, RANGE(1, 10000000),
			    .desc = "Most tokens one request may use."),
			  F("dailyTokens", KT_INTEGER, RANGE(1, 1000000000000LL),
			    .desc = "Tokens per UTC day."),
			  F("monthlyTokens", KT_INTEGER, RANGE(1, 1000000000000LL),
			    .desc = "Tokens per calendar month (at least dailyTokens).")),
	  .rules = RULES({"!has(self.dailyTokens) || !has(self.monthlyTokens) || "
			  "self.monthlyTokens >= self.dailyTokens",
			  "tokenBudget.monthlyTokens must be at least tokenBudget.dailyTokens",
			  ".monthlyTokens", ip_budget})),
	F("contentSafety", KT_OBJECT, .desc = "Content-safety thresholds per category.",
	  .props = FIELDS(SEVERITY("hate"), SEVERITY("selfHarm"), SEVERITY("sexual"),
			  SEVERITY("violence"),
			  F("requirePromptShields", KT_BOOLEAN, .dflt = "false",
			    .desc = "Refuse prompts Prompt Shields flags."))),
	F("allowedModels", KT_ARRAY, .flags = KF_SET, .max_items = 64,
	  .items = ITEMS(.type = KT_STRING, .min_len = 1, .max_len = 256, .pattern = MODEL_NAME),
	  .desc = "Models a request may name besides the modelPreference chain (at most 64)."),
	F("onDisallowedModel", KT_STRING, .enums = ENUM("deny", "override"),
	  .desc = "A request naming another model: deny (403, the default when absent) or "
		  "override (sent to the modelPreference chain instead)."),
	F("displayName", KT_STRING, .max_len = 255, .desc = "Human-readable name of the policy."),
	OCI_REF("bundleRef", "Signed OCI bundle holding the policy instead of the inline fields.")),
    .rules = RULES({"!has(self.bundleRef) || !(has(self.modelPreference) || "
		    "has(self.tokenBudget) || has(self.contentSafety) || "
		    "has(self.allowedModels) || has(self.onDisallowedModel))",
		    "bundleRef and the inline modelPreference, tokenBudget, contentSafety, "
		    "allowedModels and onDisallowedModel are mutually exclusive",
		    NULL, ip_bundle_or_inline},
		   {"has(self.bundleRef) || has(self.modelPreference) || has(self.allowedModels)",
		    "a policy must name its models: modelPreference, allowedModels or bundleRef",
		    ".modelPreference", ip_names_models},
		   {"!has(self.onDisallowedModel) || self.onDisallowedModel != 'override' || "
		    "has(self.modelPreference)",
		    "onDisallowedModel override needs modelPreference to send the request to",
		    ".onDisallowedModel", ip_override_needs_chain}));

static const struct kars_field ip_status =
    F("status", KT_OBJECT, .desc = "Observed state, written by the controller.",
      .props = FIELDS(PHASE("Pending", "Compiled", "Ready", "Degraded"), COMPILED_STATUS,
		      F("profileConfigMapRef", KT_STRING, .desc = "Where the compiled policy is."),
		      F("versionHash", KT_STRING, .desc = "Short hash of the compiled policy."),
		      CONDITIONS));

const struct kars_kind kars_kind_inferencepolicy = {
    .kind = "InferencePolicy",
    .plural = "inferencepolicies",
    .singular = "inferencepolicy",
    .short_names = ENUM("ip"),
    .desc = "Model choice, token budgets and content-safety guardrails the router enforces.",
    .spec = &ip_spec,
    .status = &ip_status,
    .columns = COLUMNS(
	PHASE_COLUMN, {"Model", "string", ".spec.modelPreference.primary.deployment", "Model.", 0},
	{"Daily", "integer", ".spec.tokenBudget.dailyTokens", "Daily tokens.", 0},
	{"Digest", "string", ".status.compiledDigest", "Compiled digest.", 1}, AGE_COLUMN),
    .phases = ENUM("Pending", "Compiled", "Ready", "Degraded"),
    .conditions = ENUM("Ready", "Progressing", "Degraded"),
};

static bool ea_reason(const json_t *self)
{
	const char *r = j_str(self, "reason");

	for (; *r; r++)
		if ((unsigned char)*r < 0x20 || *r == 0x7f)
			return false;
	return true;
}

static bool ea_ttl(const json_t *self)
{
	const char *t = j_str(self, "ttl");
	size_t len = strlen(t);

	return strpbrk(t, "123456789") && len && t[len - 1] != 'T';
}

static const struct kars_field ea_spec =
    F("spec", KT_OBJECT, .flags = KF_REQUIRED,
      .desc = "A time-bounded extra egress allowance for one sandbox.",
      .props =
	  FIELDS(F("sandbox", KT_STRING, .flags = KF_REQUIRED, .pattern = DNS_LABEL, .max_len = 58,
		   .desc = "KarsSandbox (same namespace) the allowance is for."),
		 F("hosts", KT_ARRAY, .flags = KF_REQUIRED, .min_items = 1, .max_items = 16,
		   .desc = "Destinations allowed (1 to 16).",
		   .items = ITEMS(.type = KT_OBJECT,
				  .props = FIELDS(F("host", KT_STRING, .flags = KF_REQUIRED,
						    .pattern = HOST_PATTERN, .max_len = 253,
						    .desc = "Host name."),
						  F("port", KT_INTEGER, RANGE(1, 65535),
						    .dflt = "443", .desc = "TCP port.")))),
		 F("reason", KT_STRING, .flags = KF_REQUIRED, .min_len = 1, .max_len = 512,
		   .desc = "Why the allowance is needed (no control characters)."),
		 F("ticket", KT_STRING, .max_len = 256, .desc = "Change ticket reference."),
		 F("ttl", KT_STRING, .flags = KF_REQUIRED, .pattern = DURATION, .max_len = 32,
		   .desc = "How long it lasts, ISO-8601 (PT2H); clamped to the cluster ceiling.")),
      .rules = RULES({"!self.reason.matches('[\\\\x00-\\\\x1f\\\\x7f]')",
		      "reason must not contain control characters", ".reason", ea_reason},
		     {"self.ttl.matches('[1-9]') && !self.ttl.endsWith('T')",
		      "ttl must be a nonzero ISO-8601 duration", ".ttl", ea_ttl}));

static const struct kars_field ea_status =
    F("status", KT_OBJECT, .desc = "Observed state, written by the controller.",
      .props = FIELDS(
	  PHASE("Pending", "Active", "Expired"), OBSERVED_GENERATION,
	  F("compiledDigest", KT_STRING, .desc = "Digest of the compiled approval."),
	  F("loadedDigest", KT_STRING, .desc = "Digest the enforcer reports loaded."),
	  F("lastCompiledAt", KT_STRING, .format = "date-time", .desc = "Last compile time."),
	  F("effectiveAt", KT_STRING, .format = "date-time", .desc = "Start."),
	  F("expiresAt", KT_STRING, .format = "date-time", .desc = "End."),
	  F("mergedDigest", KT_STRING, .desc = "Digest of the merged approvals."),
	  F("hostCount", KT_INTEGER, .flags = KF_MIN, .min = 0, .desc = "Hosts."),
	  F("usageCount", KT_INTEGER, .flags = KF_MIN, .min = 0,
	    .desc = "Connections made under it."),
	  CONDITIONS));

const struct kars_kind kars_kind_egressapproval = {
    .kind = "EgressApproval",
    .plural = "egressapprovals",
    .singular = "egressapproval",
    .short_names = ENUM("eappr"),
    .desc = "An operator's time-bounded approval of extra egress for one sandbox.",
    .spec = &ea_spec,
    .status = &ea_status,
    .columns = COLUMNS(PHASE_COLUMN, {"Sandbox", "string", ".spec.sandbox", "Sandbox.", 0},
		       {"TTL", "string", ".spec.ttl", "Duration.", 0},
		       {"Expires", "date", ".status.expiresAt", "End.", 0}, AGE_COLUMN),
    .phases = ENUM("Pending", "Active", "Expired"),
    .conditions = ENUM("Ready", "Progressing", "Degraded"),
};
