/* schema_ops.c - the remaining kinds: KarsMemory (a memory-store binding),
 * KarsEval (conformance runs against a sandbox), KarsSREAction (an
 * approved one-shot operation), KarsAuthConfig (the cluster's identity
 * settings, a singleton named "default") and KarsPairing (a one-time
 * pairing token for offload).
 */
#include "schema_common.h"

#define GUID "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"

static bool mem_scope(const json_t *self)
{
	return j_has(self, "bundleRef") || j_has(self, "scope");
}

static const struct kars_field mem_spec =
    F("spec", KT_OBJECT, .flags = KF_REQUIRED, .desc = "Binding of a sandbox to a memory store.",
      .props = FIELDS(
	  REF("sandboxRef", KF_REQUIRED, "KarsSandbox the memory belongs to."),
	  F("storeName", KT_STRING, .pattern = DNS_LABEL, .max_len = 63,
	    .desc = "Memory store name."),
	  F("scope", KT_STRING, .pattern = "^[A-Za-z0-9_./%+@-]+$", .max_len = 256,
	    .desc = "Scope inside the store, e.g. agent_<sandbox>; required without bundleRef."),
	  F("retentionDays", KT_INTEGER, RANGE(1, 3650), .desc = "Days memories are kept."),
	  F("deleteOnSandboxDelete", KT_BOOLEAN, .dflt = "true",
	    .desc = "Delete the memories with the sandbox."),
	  OCI_REF("bundleRef", "Signed OCI bundle holding the binding.")),
      .rules = RULES({"has(self.bundleRef) || has(self.scope)",
		      "scope is required unless bundleRef is set", ".scope", mem_scope}));

static const struct kars_field mem_status =
    F("status", KT_OBJECT, .desc = "Observed state, written by the controller.",
      .props = FIELDS(PHASE("Pending", "Compiled", "Ready", "Failed"), OBSERVED_GENERATION,
		      F("bindingConfigMapRef", KT_STRING, .desc = "Where the binding is."),
		      F("compiledDigest", KT_STRING, .desc = "Digest of the compiled binding."),
		      F("loadedDigest", KT_STRING, .desc = "Digest the router reports loaded."),
		      F("bundleRefDigest", KT_STRING, .desc = "Digest of the verified bundle."),
		      CONDITIONS));

const struct kars_kind kars_kind_karsmemory = {
    .kind = "KarsMemory",
    .plural = "karsmemories",
    .singular = "karsmemory",
    .short_names = ENUM("cmem"),
    .desc = "Binds a sandbox to a memory store (the store itself is elsewhere).",
    .spec = &mem_spec,
    .status = &mem_status,
    .columns = COLUMNS(PHASE_COLUMN, {"Sandbox", "string", ".spec.sandboxRef.name", "Sandbox.", 0},
		       {"Store", "string", ".spec.storeName", "Store.", 0}, AGE_COLUMN),
    .phases = ENUM("Pending", "Compiled", "Ready", "Failed"),
    .conditions = ENUM("Ready", "Progressing", "Degraded"),
};

static bool eval_one_corpus(const json_t *self)
{
	return j_has(self, "builtin") != j_has(self, "bundleRef");
}

#define RESULT_PROPS                                                                               \
	FIELDS(F("total", KT_INTEGER, .desc = "Cases run."),                                       \
	       F("passed", KT_INTEGER, .desc = "Cases passed."),                                   \
	       F("failed", KT_INTEGER, .desc = "Cases failed."),                                   \
	       F("errored", KT_INTEGER, .desc = "Cases that could not run."))

static const struct kars_field eval_spec = F(
    "spec", KT_OBJECT, .flags = KF_REQUIRED, .desc = "A conformance corpus run against a sandbox.",
    .props = FIELDS(
	REF("targetSandboxRef", KF_REQUIRED, "KarsSandbox under test."),
	F("corpus", KT_OBJECT, .flags = KF_REQUIRED, .desc = "The cases: built-in or a bundle.",
	  .props = FIELDS(F("builtin", KT_STRING,
			    .enums = ENUM("jailbreak-baseline", "prompt-injection-2026q1",
					  "banned-tools", "egress-known-bad", "memory-isolation"),
			    .desc = "A built-in corpus."),
			  OCI_REF("bundleRef", "Signed OCI bundle with the cases.")),
	  .rules = RULES({"has(self.builtin) != has(self.bundleRef)",
			  "exactly one of corpus.builtin and corpus.bundleRef must be set", NULL,
			  eval_one_corpus})),
	F("schedule", KT_STRING, .pattern = "^[^ ]+( [^ ]+){4}$", .max_len = 128,
	  .desc = "Cron schedule (five fields); runs once when unset."),
	F("failSandboxOnDrift", KT_BOOLEAN, .dflt = "false",
	  .desc = "Degrade the sandbox when results drift."),
	F("runnerImage", KT_STRING, .max_len = 512, .desc = "Runner image override.")));

static const struct kars_field eval_status =
    F("status", KT_OBJECT, .desc = "Observed state, written by the controller.",
      .props = FIELDS(
	  PHASE("Pending", "Ready", "Degraded"), OBSERVED_GENERATION,
	  F("lastRunAt", KT_STRING, .format = "date-time", .desc = "Last run."),
	  F("cronJobName", KT_STRING, .desc = "Scheduled job."),
	  F("corpusConfigMapRef", KT_STRING, .desc = "Where the corpus is."),
	  F("corpusDigest", KT_STRING, .desc = "Digest of the corpus."),
	  F("lastResult", KT_OBJECT, .desc = "Result of the last run.", .props = RESULT_PROPS),
	  F("history", KT_ARRAY, .max_items = 64, .desc = "Earlier results.",
	    .items = ITEMS(.type = KT_FREEFORM)),
	  CONDITIONS));

const struct kars_kind kars_kind_karseval = {
    .kind = "KarsEval",
    .plural = "karsevals",
    .singular = "karseval",
    .short_names = ENUM("ceval"),
    .desc = "Runs a conformance corpus against a sandbox's router and records the results.",
    .spec = &eval_spec,
    .status = &eval_status,
    .columns =
	COLUMNS(PHASE_COLUMN, {"Target", "string", ".spec.targetSandboxRef.name", "Sandbox.", 0},
		{"Passed", "integer", ".status.lastResult.passed", "Passed.", 0},
		{"Failed", "integer", ".status.lastResult.failed", "Failed.", 0}, AGE_COLUMN),
    .phases = ENUM("Pending", "Ready", "Degraded"),
    .conditions = ENUM("Ready", "Progressing", "Degraded", "ConformanceDrift"),
};

static const struct kars_field sre_spec =
    F("spec", KT_OBJECT, .flags = KF_REQUIRED,
      .desc = "One remediation, applied only after a human approves it.",
      .props = FIELDS(
	  F("action", KT_OBJECT, .flags = KF_REQUIRED, .desc = "What to do.",
	    .props = FIELDS(F("type", KT_STRING, .flags = KF_REQUIRED,
			      .enums = ENUM("DeleteResourceQuota", "PatchDeploymentImage",
					    "ScaleDeployment", "RolloutRestart", "DeletePod"),
			      .desc = "Action type."),
			    F("params", KT_FREEFORM, .desc = "Parameters of the action."))),
	  F("approval", KT_OBJECT, .flags = KF_REQUIRED, .desc = "The human decision.",
	    .props = FIELDS(F("state", KT_STRING, .enums = ENUM("Pending", "Approved", "Rejected"),
			      .dflt = "\"Pending\"", .desc = "Pending, Approved or Rejected."),
			    F("note", KT_STRING, .max_len = 1024, .desc = "Reviewer's note."))),
	  F("diagnosis", KT_STRING, .max_len = 512, .desc = "What is wrong."),
	  F("rationale", KT_STRING, .max_len = 2048, .desc = "Why this action fixes it."),
	  F("ttlMinutes", KT_INTEGER, RANGE(1, 60), .dflt = "15",
	    .desc = "Minutes the proposal stays open.")));

static const struct kars_field sre_status =
    F("status", KT_OBJECT, .desc = "Observed state, written by the controller.",
      .props = FIELDS(
	  PHASE("Proposed", "Approved", "Applied", "Recovered", "Rejected", "Expired", "Failed"),
	  OBSERVED_GENERATION,
	  F("appliedAt", KT_STRING, .format = "date-time", .desc = "When applied."),
	  F("writerCrbName", KT_STRING, .desc = "One-shot binding used to apply it."), CONDITIONS));

const struct kars_kind kars_kind_karssreaction = {
    .kind = "KarsSREAction",
    .plural = "karssreactions",
    .singular = "karssreaction",
    .short_names = ENUM("sreaction"),
    .desc = "A proposed operational action that runs once after approval.",
    .spec = &sre_spec,
    .status = &sre_status,
    .columns = COLUMNS(PHASE_COLUMN, {"Action", "string", ".spec.action.type", "Action.", 0},
		       {"Approval", "string", ".spec.approval.state", "Decision.", 0}, AGE_COLUMN),
    .phases = ENUM("Proposed", "Approved", "Applied", "Recovered", "Rejected", "Expired", "Failed"),
    .conditions = ENUM("Approved", "Executed", "Recovered", "Available", "Degraded"),
};

static bool auth_singleton(const json_t *self)
{
	return j_str_is(json_object_get(self, "metadata"), "name", "default");
}

#define GUID_FIELD(n, fl, d) F(n, KT_STRING, .flags = (fl), .pattern = GUID, .desc = d)

static const struct kars_field auth_spec = F(
    "spec", KT_OBJECT, .flags = KF_REQUIRED, .desc = "Identity settings of the cluster.",
    .props = FIELDS(
	F("tenant", KT_OBJECT, .flags = KF_REQUIRED, .desc = "Entra tenant.",
	  .props =
	      FIELDS(GUID_FIELD("tenantId", KF_REQUIRED, "Tenant id."),
		     F("authorityHost", KT_STRING, .pattern = "^https://", .max_len = 2048,
		       .dflt = "\"https://login.microsoftonline.com\"", .desc = "Authority host."),
		     F("serviceManagementReference", KT_STRING, .max_len = 256,
		       .desc = "Service management reference."))),
	F("agentId", KT_OBJECT, .flags = KF_REQUIRED, .desc = "Agent identity blueprint.",
	  .props = FIELDS(GUID_FIELD("blueprintClientId", 0, "Blueprint client id."),
			  GUID_FIELD("blueprintObjectId", 0, "Blueprint object id."),
			  F("sponsorUserObjectIds", KT_ARRAY, .flags = KF_SET, .max_items = 16,
			    .items = ITEMS(.type = KT_STRING, .pattern = GUID),
			    .desc = "Sponsors of created agent identities."))),
	F("controller", KT_OBJECT, .flags = KF_REQUIRED,
	  .desc = "How the controller authenticates.",
	  .props = FIELDS(F("credentialMode", KT_STRING, .flags = KF_REQUIRED,
			    .enums = ENUM("ManagedIdentityImds", "WorkloadIdentity"),
			    .desc = "Managed identity over IMDS, or workload identity."),
			  GUID_FIELD("managedIdentityClientId", 0, "Managed identity client id."),
			  GUID_FIELD("managedIdentityObjectId", 0, "Managed identity object id."))),
	F("downstreamApis", KT_ARRAY, .list_map_key = "name", .max_items = 32,
	  .desc = "APIs agents call on a user's behalf.",
	  .items =
	      ITEMS(.type = KT_OBJECT,
		    .props = FIELDS(
			F("name", KT_STRING, .flags = KF_REQUIRED, .max_len = 63, .desc = "Name."),
			F("baseUrl", KT_STRING, .pattern = "^https://", .max_len = 2048,
			  .desc = "Base URL."),
			F("scopes", KT_ARRAY, .max_items = 32,
			  .items = ITEMS(.type = KT_STRING, .max_len = 253), .desc = "Scopes.")))),
	F("foundryRbac", KT_ARRAY, .max_items = 32, .desc = "Role assignments on Foundry.",
	  .items =
	      ITEMS(.type = KT_OBJECT, .props = FIELDS(F("role", KT_STRING, .flags = KF_REQUIRED,
							 .max_len = 128, .desc = "Role name."),
						       F("scope", KT_STRING, .flags = KF_REQUIRED,
							 .max_len = 1024, .desc = "ARM scope.")))),
	F("meshAuthBackend", KT_STRING, .enums = ENUM("Anonymous", "EntraAgentIdentity"),
	  .dflt = "\"Anonymous\"", .desc = "How agents authenticate to the mesh.")));

static const struct kars_field auth_status =
    F("status", KT_OBJECT, .desc = "Observed state, written by the controller.",
      .props = FIELDS(PHASE("Pending", "Ready", "Degraded", "NotDefault"), OBSERVED_GENERATION,
		      F("blueprintFicCount", KT_INTEGER, .desc = "Federated credentials in use."),
		      F("blueprintFicQuota", KT_INTEGER, .desc = "Federated credential quota."),
		      CONDITIONS));

const struct kars_kind kars_kind_karsauthconfig = {
    .kind = "KarsAuthConfig",
    .plural = "karsauthconfigs",
    .singular = "karsauthconfig",
    .short_names = ENUM("kac"),
    .cluster_scoped = true,
    .desc = "The cluster's identity settings; one object, named default.",
    .spec = &auth_spec,
    .status = &auth_status,
    .root_rules = RULES({"self.metadata.name == 'default'",
			 "metadata.name must be default (KarsAuthConfig is a singleton)", NULL,
			 auth_singleton}),
    .columns = COLUMNS(PHASE_COLUMN,
		       {"Mode", "string", ".spec.controller.credentialMode", "Credential mode.", 0},
		       AGE_COLUMN),
    .phases = ENUM("Pending", "Ready", "Degraded", "NotDefault"),
    .conditions = ENUM("Ready", "Progressing", "Degraded"),
};

static const struct kars_field pair_spec =
    F("spec", KT_OBJECT, .flags = KF_REQUIRED, .desc = "A one-time pairing token and its bounds.",
      .props = FIELDS(
	  F("tokenHash", KT_STRING, .flags = KF_REQUIRED, .pattern = "^[0-9a-f]{64}$",
	    .desc = "SHA-256 (hex) of the pairing token; the token itself is never stored."),
	  F("expiresAt", KT_STRING, .flags = KF_REQUIRED, .format = "date-time",
	    .desc = "When the token stops working."),
	  F("slotsMax", KT_INTEGER, RANGE(1, 64), .dflt = "1", .desc = "Concurrent sandboxes."),
	  F("tokenBudget", KT_INTEGER, RANGE(0, 1000000000000LL), .dflt = "500000",
	    .desc = "Model tokens the pairing may spend."),
	  F("capabilities", KT_ARRAY, .flags = KF_SET, .max_items = 2,
	    .dflt = "[\"offload\",\"handoff\"]",
	    .items = ITEMS(.type = KT_STRING, .enums = ENUM("offload", "handoff")),
	    .desc = "What the paired host may do."),
	  F("displayName", KT_STRING, .max_len = 253, .desc = "Label."),
	  F("model", KT_STRING, .max_len = 253, .desc = "Model offloaded work uses."),
	  F("isolation", KT_STRING, .enums = ENUM("standard", "enhanced", "confidential"),
	    .dflt = "\"enhanced\"", .desc = "Isolation of offload sandboxes.")));

static const struct kars_field pair_status = F(
    "status", KT_OBJECT, .desc = "Observed state, written by the controller.",
    .props = FIELDS(PHASE("PendingPairing", "Active", "Expired", "Revoked"), OBSERVED_GENERATION,
		    F("boundAmid", KT_STRING, .desc = "Mesh id of the paired host."),
		    F("boundPubkeyEd25519", KT_STRING, .desc = "Its public key."),
		    F("pairedAt", KT_STRING, .format = "date-time", .desc = "When paired."),
		    F("slotsUsed", KT_INTEGER, .desc = "Sandboxes in use."),
		    F("tokensUsed", KT_INTEGER, .desc = "Tokens spent."),
		    F("offloadsStarted", KT_INTEGER, .desc = "Offloads started."),
		    F("offloadsCompleted", KT_INTEGER, .desc = "Offloads completed."),
		    F("activeSandbox", KT_STRING, .desc = "Current offload sandbox."), CONDITIONS));

const struct kars_kind kars_kind_karspairing = {
    .kind = "KarsPairing",
    .plural = "karspairings",
    .singular = "karspairing",
    .short_names = ENUM("cp"),
    .desc = "A one-time, expiring, slot- and budget-bounded pairing for offload.",
    .spec = &pair_spec,
    .status = &pair_status,
    .columns = COLUMNS(PHASE_COLUMN, {"Expires", "date", ".spec.expiresAt", "Expiry.", 0},
		       {"Slots", "integer", ".spec.slotsMax", "Slots.", 0}, AGE_COLUMN),
    .phases = ENUM("PendingPairing", "Active", "Expired", "Revoked"),
    .conditions = ENUM("Ready", "Progressing", "Degraded"),
};
