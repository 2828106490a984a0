/* schema_sandbox.c - the KarsSandbox kind: one agent runtime, its sandbox
 * posture, its inference and tool policies, its network policy.
 *
 * Unlike the original, spec.a2a, spec.upstreamCompatibility and
 * spec.meshAuth are part of the schema, so the API server keeps them.
 */
#include "schema_common.h"

/* A settings block is only allowed for its own kind. A kind may leave its
 * block out (every field in it is optional), except BYO, whose image and
 * contract version are required. */
#define VARIANT(fn, kind_name, block)                                                              \
	static bool fn(const json_t *self)                                                         \
	{                                                                                          \
		return !j_has(self, block) || j_str_is(self, "kind", kind_name);                   \
	}
VARIANT(rt_openclaw, "OpenClaw", "openclaw")
VARIANT(rt_hermes, "Hermes", "hermes")
VARIANT(rt_openai, "OpenAIAgents", "openaiAgents")
VARIANT(rt_maf, "MicrosoftAgentFramework", "microsoftAgentFramework")
VARIANT(rt_sk, "SemanticKernel", "semanticKernel")
VARIANT(rt_langgraph, "LangGraph", "langGraph")
VARIANT(rt_anthropic, "Anthropic", "anthropic")
VARIANT(rt_pydantic, "PydanticAi", "pydanticAi")
VARIANT(rt_byo, "BYO", "byo")

#define VARIANT_RULE(kind_name, block, fn)                                                         \
	{                                                                                          \
		"!has(self." block ") || self.kind == '" kind_name "'",                            \
		    "runtime." block " is only allowed when runtime.kind is " kind_name, NULL, fn  \
	}

static bool byo_needs_block(const json_t *self)
{
	return !j_str_is(self, "kind", "BYO") || j_has(self, "byo");
}

static bool code_one_source(const json_t *self)
{
	return j_has(self, "oci") != j_has(self, "git");
}

/* The image names a tag or a digest: never an implicit :latest. */
static bool image_pinned(const json_t *self)
{
	const char *img = j_str(self, "image");
	const char *slash = strrchr(img, '/');
	const char *colon = strrchr(img, ':');

	if (strstr(img, "@sha256:"))
		return true;
	return colon && colon[1] && (!slash || colon > slash);
}

static bool no_agent_with_byo(const json_t *self)
{
	return !j_str_is(json_object_get(self, "runtime"), "kind", "BYO") || !j_has(self, "agent");
}

static bool one_mcp_ref_form(const json_t *self)
{
	return !(j_has(self, "mcpServerRef") && j_has(self, "mcpServerRefs"));
}

static bool a2a_expiry(const json_t *self)
{
	return !j_bool(self, "enabled", false) || j_has(self, "expiresAt");
}

static bool overlay_needs_ref(const json_t *self)
{
	return !j_str_is(self, "sigsAgentSandbox", "overlay") || j_has(self, "upstreamSandboxRef");
}

static bool sandbox_name(const json_t *self)
{
	const char *name = j_str(json_object_get(self, "metadata"), "name");
	size_t len = strlen(name);

	if (len == 0 || len > 58 || name[0] == '-' || name[len - 1] == '-')
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
		      name[i] == '-'))
			return false;
	return true;
}

#define EXTRA_ENV                                                                                  \
	F("extraEnv", KT_MAP, .max_items = 64, .items = ITEMS(.type = KT_STRING),                  \
	  .desc = "Extra environment for the agent container. Names with the reserved prefixes "   \
		  "AGT_, FOUNDRY_AGENT_, AZURE_, IMDS_ and KARS_ are dropped by the controller.")

#define AGENT_CODE                                                                                 \
	F("agentCode", KT_OBJECT,                                                                  \
	  .desc = "Where the agent's code comes from: an OCI image or a git repository.",          \
	  .props = FIELDS(                                                                         \
	      F("oci", KT_OBJECT, .desc = "Agent code packaged as an OCI image.",                  \
		.props = FIELDS(F("image", KT_STRING, .flags = KF_REQUIRED, .min_len = 1,          \
				  .max_len = 512, .desc = "Image reference."))),                   \
	      F("git", KT_OBJECT, .desc = "Agent code in a git repository.",                       \
		.props = FIELDS(F("url", KT_STRING, .flags = KF_REQUIRED, .pattern = "^https://",  \
				  .max_len = 2048, .desc = "https URL of the repository."),        \
				F("ref", KT_STRING, .max_len = 255,                                \
				  .desc = "Branch, tag or commit (default: the default branch)."), \
				F("path", KT_STRING, .max_len = 1024,                              \
				  .desc = "Directory inside the repository.")))),                  \
	  .rules = RULES({"has(self.oci) != has(self.git)",                                        \
			  "exactly one of agentCode.oci and agentCode.git must be set", NULL,      \
			  code_one_source}))

#define ENTRYPOINT                                                                                 \
	F("entrypoint", KT_ARRAY, .max_items = 64, .items = ITEMS(.type = KT_STRING),              \
	  .desc = "Command that starts the agent, overriding the adapter's default.")

#define PYTHON_VERSION                                                                             \
	F("pythonVersion", KT_STRING, .pattern = "^3\\.[0-9]+$", .dflt = "\"3.12\"",               \
	  .desc = "Python version of the adapter image.")

#define PY_RUNTIME(n, d)                                                                           \
	F(n, KT_OBJECT, .desc = d,                                                                 \
	  .props = FIELDS(PYTHON_VERSION, AGENT_CODE, ENTRYPOINT, EXTRA_ENV))

#define RUNTIME_FIELD                                                                                                  \
	F("runtime", KT_OBJECT, .flags = KF_REQUIRED,                                                                  \
	  .desc =                                                                                                      \
	      "The agent runtime: its kind and at most the one settings block that kind names (BYO needs its block).", \
	  .props = FIELDS(                                                                                             \
	      F("kind", KT_STRING, .flags = KF_REQUIRED,                                                               \
		.enums = ENUM("OpenClaw", "Hermes", "OpenAIAgents", "MicrosoftAgentFramework",                         \
			      "SemanticKernel", "LangGraph", "Anthropic", "PydanticAi", "BYO"),                        \
		.desc = "Runtime kind. SemanticKernel is reserved: its adapter is not built "                          \
			"(RuntimeReady=False, AdapterMissing)."),                                                      \
	      F("openclaw", KT_OBJECT, .desc = "OpenClaw settings (kind OpenClaw).",                                   \
		.props = FIELDS(                                                                                       \
		    F("version", KT_STRING, .max_len = 64, .desc = "OpenClaw version."),                               \
		    F("image", KT_STRING, .max_len = 512,                                                              \
		      .desc = "Sandbox image; the platform's OpenClaw image when unset."),                             \
		    F("config", KT_FREEFORM,                                                                           \
		      .desc = "OpenClaw configuration (channels, skills, ...), passed through."),                      \
		    EXTRA_ENV)),                                                                                       \
	      F("hermes", KT_OBJECT, .desc = "Hermes settings (kind Hermes).",                                         \
		.props = FIELDS(F("version", KT_STRING, .max_len = 64, .desc = "Hermes version."),                     \
				EXTRA_ENV)),                                                                           \
	      PY_RUNTIME("openaiAgents", "OpenAI Agents SDK settings (kind OpenAIAgents)."),                           \
	      F("microsoftAgentFramework", KT_OBJECT,                                                                  \
		.desc = "Microsoft Agent Framework settings (kind MicrosoftAgentFramework).",                          \
		.props = FIELDS(                                                                                       \
		    F("language", KT_STRING, .enums = ENUM("python", "dotnet"),                                        \
		      .dflt = "\"python\"",                                                                            \
		      .desc = "python; dotnet is reserved (RuntimeReady=False, ShapeInvalid)."),                       \
		    PYTHON_VERSION, AGENT_CODE, ENTRYPOINT, EXTRA_ENV)),                                               \
	      F("semanticKernel", KT_OBJECT,                                                                           \
		.desc = "Semantic Kernel settings (kind SemanticKernel; adapter not built).",                          \
		.props = FIELDS(F("language", KT_STRING, .enums = ENUM("python", "dotnet"),                            \
				  .dflt = "\"python\"", .desc = "Adapter language."),                                  \
				AGENT_CODE, ENTRYPOINT, EXTRA_ENV)),                                                   \
	      F("langGraph", KT_OBJECT, .desc = "LangGraph settings (kind LangGraph).",                                \
		.props = FIELDS(F("language", KT_STRING, .enums = ENUM("python", "typescript"),                        \
				  .dflt = "\"python\"", .desc = "python or typescript adapter."),                      \
				PYTHON_VERSION, AGENT_CODE, ENTRYPOINT, EXTRA_ENV)),                                   \
	      PY_RUNTIME("anthropic", "Anthropic SDK settings (kind Anthropic)."),                                     \
	      PY_RUNTIME("pydanticAi", "PydanticAI settings (kind PydanticAi)."),                                      \
	      F("byo", KT_OBJECT,                                                                                      \
		.desc = "Bring-your-own image under the kars runtime contract (kind BYO).",                            \
		.props = FIELDS(                                                                                       \
		    F("image", KT_STRING, .flags = KF_REQUIRED, .min_len = 1, .max_len = 512,                          \
		      .desc = "Image reference with a tag or a digest."),                                              \
		    F("command", KT_ARRAY, .max_items = 64, .items = ITEMS(.type = KT_STRING),                         \
		      .desc = "Entrypoint override."),                                                                 \
		    F("args", KT_ARRAY, .max_items = 256, .items = ITEMS(.type = KT_STRING),                           \
		      .desc = "Arguments."),                                                                           \
		    F("env", KT_ARRAY, .list_map_key = "name", .max_items = 64,                                        \
		      .desc = "Environment variables (reserved prefixes are dropped).",                                \
		      .items = ITEMS(.type = KT_OBJECT,                                                                \
				     .props = FIELDS(F("name", KT_STRING, .flags = KF_REQUIRED,                        \
						       .pattern = "^[A-Za-z_][A-Za-z0-9_]*$",                          \
						       .max_len = 255, .desc = "Variable name."),                      \
						     F("value", KT_STRING, .max_len = 32768,                           \
						       .desc = "Value.")))),                                           \
		    F("contractVersion", KT_STRING, .flags = KF_REQUIRED,                                              \
		      .enums = ENUM("v1", "1", "1.0"),                                                                 \
		      .desc = "kars runtime contract version the image implements (v1).")),                            \
		.rules =                                                                                               \
		    RULES({"self.image.contains('@sha256:') || self.image.matches(':[^/:]+$')",                        \
			   "byo.image must name a tag or a digest", ".image", image_pinned}))),                        \
	  .rules = RULES(                                                                                              \
	      VARIANT_RULE("OpenClaw", "openclaw", rt_openclaw),                                                       \
	      VARIANT_RULE("Hermes", "hermes", rt_hermes),                                                             \
	      VARIANT_RULE("OpenAIAgents", "openaiAgents", rt_openai),                                                 \
	      VARIANT_RULE("MicrosoftAgentFramework", "microsoftAgentFramework", rt_maf),                              \
	      VARIANT_RULE("SemanticKernel", "semanticKernel", rt_sk),                                                 \
	      VARIANT_RULE("LangGraph", "langGraph", rt_langgraph),                                                    \
	      VARIANT_RULE("Anthropic", "anthropic", rt_anthropic),                                                    \
	      VARIANT_RULE("PydanticAi", "pydanticAi", rt_pydantic),                                                   \
	      VARIANT_RULE("BYO", "byo", rt_byo),                                                                      \
	      {"self.kind != 'BYO' || has(self.byo)",                                                                  \
	       "runtime.byo is required when runtime.kind is BYO", ".byo", byo_needs_block}))

#define SANDBOX_POSTURE                                                                              \
	F("sandbox", KT_OBJECT, .flags = KF_REQUIRED, .desc = "Isolation posture of the sandbox.",   \
	  .props = FIELDS(                                                                           \
	      F("isolation", KT_STRING, .enums = ENUM("standard", "enhanced", "confidential"),       \
		.dflt = "\"enhanced\"",                                                              \
		.desc =                                                                              \
		    "standard: runtime default seccomp; enhanced: the kars-strict seccomp profile; " \
		    "confidential: a VM-isolated runtime."),                                         \
	      F("seccompProfile", KT_STRING, .dflt = "\"kars-strict\"", .pattern = DNS_LABEL,        \
		.max_len = 63, .desc = "Seccomp profile name used by enhanced isolation."),          \
	      F("selinuxContext", KT_STRING, .max_len = 255, .desc = "SELinux context, if any."),    \
	      F("readOnlyRootFilesystem", KT_BOOLEAN, .dflt = "true",                                \
		.desc = "Mount the agent's root file system read-only."),                            \
	      F("runAsNonRoot", KT_BOOLEAN, .dflt = "true",                                          \
		.desc = "Refuse to run the agent as root."),                                         \
	      F("allowPrivilegeEscalation", KT_BOOLEAN, .dflt = "false",                             \
		.desc = "Allow setuid and file capabilities to raise privileges."),                  \
	      F("writablePaths", KT_ARRAY, .max_items = 16, .flags = KF_SET,                         \
		.dflt = "[\"/sandbox\",\"/tmp\"]",                                                   \
		.items = ITEMS(.type = KT_STRING, .pattern = "^/"),                                  \
		.desc = "Absolute paths the agent may write.")))

#define GOVERNANCE                                                                                 \
	F("governance", KT_OBJECT,                                                                 \
	  .desc = "Tool governance: the ToolPolicy, trust scoring and the agent mesh registry.",   \
	  .props = FIELDS(                                                                         \
	      F("enabled", KT_BOOLEAN, .dflt = "true",                                             \
		.desc = "Evaluate every tool call against policy."),                               \
	      REF("toolPolicyRef", 0, "ToolPolicy to enforce; kars-default when unset."),          \
	      F("trustThreshold", KT_INTEGER, RANGE(0, 1000), .dflt = "500",                       \
		.desc = "Minimum trust score (0-1000) a peer needs."),                             \
	      F("trustedPeers", KT_STRING, .max_len = 4096,                                        \
		.desc = "Comma-separated name:AMID pairs trusted without scoring."),               \
	      F("registryMode", KT_STRING, .enums = ENUM("local", "global"), .dflt = "\"local\"",  \
		.desc =                                                                            \
		    "local: this cluster's mesh registry only; global: the cross-cluster one."),   \
	      F("mcpServerRefs", KT_ARRAY, .list_map_key = "name", .max_items = 8,                 \
		.desc = "McpServers the agent may use (at most 8).",                               \
		.items = ITEMS(.type = KT_OBJECT,                                                  \
			       .props = FIELDS(F("name", KT_STRING, .flags = KF_REQUIRED,          \
						 .pattern = DNS_SUBDOMAIN, .max_len = 253,         \
						 .desc = "McpServer name.")))),                    \
	      REF("mcpServerRef", 0, "Deprecated single McpServer; use mcpServerRefs.")),          \
	  .rules = RULES({"!(has(self.mcpServerRef) && has(self.mcpServerRefs))",                  \
			  "mcpServerRef (deprecated) and mcpServerRefs are mutually exclusive",    \
			  NULL, one_mcp_ref_form}))

#define NETWORK_POLICY                                                                             \
	F("networkPolicy", KT_OBJECT, .desc = "Egress policy enforced by the data plane.",         \
	  .props = FIELDS(                                                                         \
	      F("defaultDeny", KT_BOOLEAN, .dflt = "true",                                         \
		.desc = "Deny all egress not allowed below (kars always enforces this)."),         \
	      F("egressMode", KT_STRING, .enums = ENUM("Learn", "Strict"), .dflt = "\"Learn\"",    \
		.desc = "Learn: record destinations outside the allowlist; Strict: refuse them."), \
	      F("allowedEndpoints", KT_ARRAY, .max_items = 256,                                    \
		.desc = "Destinations the router may reach for the agent.",                        \
		.items =                                                                           \
		    ITEMS(.type = KT_OBJECT,                                                       \
			  .props = FIELDS(F("host", KT_STRING, .flags = KF_REQUIRED,               \
					    .pattern = HOST_PATTERN, .max_len = 253,               \
					    .desc = "Host name, or *.domain for its subdomains."), \
					  F("port", KT_INTEGER, RANGE(1, 65535), .dflt = "443",    \
					    .desc = "TCP port.")))),                               \
	      OCI_REF("allowlistRef", "Signed OCI egress allowlist; authoritative when set.")))

#define A2A                                                                                        \
	F("a2a", KT_OBJECT,                                                                        \
	  .desc = "Inbound A2A through the public gateway: opt-in, time-bounded, revocable.",      \
	  .props = FIELDS(                                                                         \
	      F("enabled", KT_BOOLEAN, .dflt = "false",                                            \
		.desc = "Expose this sandbox to A2A callers."),                                    \
	      F("allowedCallers", KT_ARRAY, .list_map_key = "jwsThumbprint", .max_items = 64,      \
		.desc = "Callers allowed in, pinned by their AgentCard signing key.",              \
		.items = ITEMS(.type = KT_OBJECT,                                                  \
			       .props = FIELDS(                                                    \
				   F("jwsThumbprint", KT_STRING, .flags = KF_REQUIRED,             \
				     .pattern = SHA256_DIGEST,                                     \
				     .desc = "sha256 thumbprint of the caller's signing key."),    \
				   F("displayName", KT_STRING, .max_len = 253, .desc = "Label."),  \
				   F("issuer", KT_STRING, .pattern = "^https://", .max_len = 2048, \
				     .desc = "URL of the caller's agent card.")))),                \
	      F("expiresAt", KT_STRING, .format = "date-time",                                     \
		.desc = "When exposure ends; required when enabled."),                             \
	      F("advertisedSkills", KT_ARRAY, .list_map_key = "name", .max_items = 64,             \
		.desc = "Skills published in the agent card; nothing else is callable.",           \
		.items = ITEMS(.type = KT_OBJECT,                                                  \
			       .props = FIELDS(F("name", KT_STRING, .flags = KF_REQUIRED,          \
						 .max_len = 128, .desc = "Skill name."),           \
					       F("description", KT_STRING, .max_len = 1024,        \
						 .desc = "What it does.")))),                      \
	      F("minimumTrustScore", KT_INTEGER, RANGE(0, 1000),                                   \
		.desc = "Minimum trust score a caller needs."),                                    \
	      F("rateLimit", KT_OBJECT, .desc = "Per-caller rate limit.",                          \
		.props =                                                                           \
		    FIELDS(F("rpm", KT_INTEGER, RANGE(1, 100000), .desc = "Requests per minute."), \
			   F("burst", KT_INTEGER, RANGE(1, 10000), .desc = "Burst size."))),       \
	      F("bodyCapBytes", KT_INTEGER, RANGE(1, 4194304), .dflt = "1048576",                  \
		.desc = "Largest request body accepted (hard ceiling 4 MiB)."),                    \
	      F("sessionMaxSeconds", KT_INTEGER, RANGE(1, 3600), .dflt = "60",                     \
		.desc = "Longest session."),                                                       \
	      F("allowStreaming", KT_BOOLEAN, .dflt = "false",                                     \
		.desc = "Allow streamed responses.")),                                             \
	  .rules = RULES({"!self.enabled || has(self.expiresAt)",                                  \
			  "a2a.expiresAt is required when a2a is enabled", NULL, a2a_expiry}))

#define UPSTREAM                                                                                   \
	F("upstreamCompatibility", KT_OBJECT,                                                      \
	  .desc = "Relation to an agents.x-k8s.io Sandbox of the upstream project.",               \
	  .props = FIELDS(                                                                         \
	      F("sigsAgentSandbox", KT_STRING,                                                     \
		.enums = ENUM("off", "observe", "translate", "overlay"), .dflt = "\"off\"",        \
		.desc =                                                                            \
		    "off: kars owns the workload; overlay: governance over an upstream Sandbox; "  \
		    "observe and translate: reserved."),                                           \
	      F("upstreamSandboxRef", KT_STRING, .max_len = 317,                                   \
		.pattern = "^([a-z0-9]([-a-z0-9]*[a-z0-9])?/)?[a-z0-9]([-a-z0-9]*[a-z0-9])?$",     \
		.desc = "[namespace/]name of the upstream Sandbox."),                              \
	      F("aiConformanceReference", KT_STRING, .max_len = 2048,                              \
		.desc = "Reference to an AI conformance report.")),                                \
	  .rules = RULES({"self.sigsAgentSandbox != 'overlay' || has(self.upstreamSandboxRef)",    \
			  "upstreamCompatibility.upstreamSandboxRef is required in overlay mode",  \
			  NULL, overlay_needs_ref}))

static const struct kars_field spec = F(
    "spec", KT_OBJECT, .flags = KF_REQUIRED, .desc = "Desired state of the sandbox.",
    .props = FIELDS(
	RUNTIME_FIELD, SANDBOX_POSTURE,
	REF("inferenceRef", KF_REQUIRED, "InferencePolicy of this sandbox (same namespace)."),
	REF("memoryRef", 0, "KarsMemory binding of this sandbox."),
	F("agent", KT_OBJECT, .desc = "Agent settings (not for BYO).",
	  .props =
	      FIELDS(F("instructions", KT_STRING, .max_len = 65536, .desc = "System instructions."),
		     F("tools", KT_ARRAY, .max_items = 128, .flags = KF_SET,
		       .items = ITEMS(.type = KT_STRING, .max_len = 128),
		       .desc = "Built-in tools to enable."),
		     F("fileIds", KT_ARRAY, .max_items = 128, .flags = KF_SET,
		       .items = ITEMS(.type = KT_STRING, .max_len = 256),
		       .desc = "Files available to the agent."))),
	F("azureServices", KT_ARRAY, .max_items = 32,
	  .desc = "Azure services the sandbox's identity is granted.",
	  .items = ITEMS(.type = KT_OBJECT,
			 .props = FIELDS(F("service", KT_STRING, .flags = KF_REQUIRED,
					   .max_len = 128, .desc = "Service type."),
					 F("account", KT_STRING, .max_len = 253,
					   .desc = "Account or resource name."),
					 F("permissions", KT_ARRAY, .max_items = 32,
					   .items = ITEMS(.type = KT_STRING, .max_len = 128),
					   .desc = "Permissions granted.")))),
	F("resources", KT_OBJECT, .desc = "Agent container resources.",
	  .props = FIELDS(F("requests", KT_MAP, .items = ITEMS(.type = KT_INT_OR_STRING),
			    .desc = "Requested resources (cpu, memory)."),
			  F("limits", KT_MAP, .items = ITEMS(.type = KT_INT_OR_STRING),
			    .desc = "Resource limits (cpu, memory)."))),
	F("suspended", KT_BOOLEAN, .dflt = "false", .desc = "Stop the workload, keep the sandbox."),
	GOVERNANCE, NETWORK_POLICY, A2A, UPSTREAM,
	F("meshAuth", KT_OBJECT, .desc = "How the agent authenticates to the agent mesh.",
	  .props = FIELDS(F("backend", KT_STRING, .enums = ENUM("Anonymous", "EntraAgentIdentity"),
			    .dflt = "\"Anonymous\"",
			    .desc = "Anonymous, or an Entra agent identity.")))),
    .rules = RULES({"self.runtime.kind != 'BYO' || !has(self.agent)",
		    "agent is not allowed with runtime.kind BYO", ".agent", no_agent_with_byo}));

static const struct kars_field status =
    F("status", KT_OBJECT, .desc = "Observed state, written by the controller.",
      .props = FIELDS(
	  PHASE("Pending", "Running", "Degraded", "Failed", "Overlay"),
	  F("namespace", KT_STRING, .desc = "Namespace of the sandbox's workload."),
	  F("sandboxPod", KT_STRING, .desc = "The running workload."),
	  F("inferenceEndpoint", KT_STRING, .desc = "URL of the sandbox's router."),
	  F("runtimeKind", KT_STRING, .desc = "Runtime kind that was planned."),
	  F("a2aWindowStart", KT_STRING, .format = "date-time",
	    .desc = "When the controller first saw this generation's a2a.expiresAt; the "
		    "30-day cap is measured from it."),
	  OBSERVED_GENERATION, F("foundryAgentId", KT_STRING, .desc = "Foundry agent id, if any."),
	  F("agentIdentity", KT_OBJECT, .desc = "Entra agent identity, if any.",
	    .props =
		FIELDS(F("appId", KT_STRING, .desc = "Application id."),
		       F("objectId", KT_STRING, .desc = "Object id."),
		       F("displayName", KT_STRING, .desc = "Display name."),
		       F("createdAt", KT_STRING, .format = "date-time", .desc = "Creation time."))),
	  F("tokensUsed", KT_INTEGER, .flags = KF_MIN, .min = 0,
	    .desc = "Tokens used by the sandbox."),
	  CONDITIONS));

const struct kars_kind kars_kind_karssandbox = {
    .kind = "KarsSandbox",
    .plural = "karssandboxes",
    .singular = "karssandbox",
    .short_names = ENUM("cs"),
    .desc = "An AI agent runtime in a hardened, governed sandbox.",
    .spec = &spec,
    .status = &status,
    .root_rules = RULES({"self.metadata.name.size() <= 58 && "
			 "self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",
			 "metadata.name must be a DNS label of at most 58 characters (the "
			 "sandbox's namespace is kars-<name>)",
			 NULL, sandbox_name}),
    .columns = COLUMNS(
	PHASE_COLUMN, {"Runtime", "string", ".spec.runtime.kind", "Runtime kind.", 0},
	{"InferencePolicy", "string", ".spec.inferenceRef.name", "Policy.", 0},
	{"Isolation", "string", ".spec.sandbox.isolation", "Isolation level.", 0},
	{"Allowlist", "string", ".status.conditions[?(@.type==\"AllowlistVerified\")].status",
	 "Signed allowlist verified.", 1},
	AGE_COLUMN),
    .phases = ENUM("Pending", "Running", "Degraded", "Failed", "Overlay"),
    .conditions = ENUM("Ready", "Progressing", "Degraded", "Suspended", "RuntimeReady",
		       "AllowlistVerified", "AllowlistAuthoritative", "AllowlistDrift"),
};
