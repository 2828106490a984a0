/* test_validate.c - the validation table (userspace/lib/validate.h).
 *
 * One good manifest per kind, each of which must validate; then bad
 * manifests made from them by changing one field, each of which must be
 * refused with a message naming that field as kubectl would. Every schema
 * rule kind (required, type, enum, pattern, format, bounds, uniqueness,
 * unknown field) and every CEL rule of the twelve kinds has a row here, so a
 * rule whose C half stops working fails a test.
 */
#include "unit.h"

#include <errno.h>
#include <stdlib.h>

#include "schema.h"
#include "validate.h"

static const char *const good[] = {
    /* 0 */
    "{\"apiVersion\":\"kars.azure.com/v1alpha1\",\"kind\":\"KarsSandbox\","
    "\"metadata\":{\"name\":\"bot\",\"namespace\":\"kars-bot\"},\"spec\":{"
    "\"runtime\":{\"kind\":\"OpenClaw\",\"openclaw\":{\"config\":{\"x\":{\"y\":1}}}},"
    "\"inferenceRef\":{\"name\":\"bot-inference\"},\"sandbox\":{\"isolation\":\"enhanced\"},"
    "\"governance\":{\"toolPolicyRef\":{\"name\":\"bot-policy\"},\"mcpServerRefs\":[{\"name\":\"a\"}]},"
    "\"networkPolicy\":{\"egressMode\":\"Strict\",\"allowedEndpoints\":[{\"host\":\"api.github.com\"}]},"
    "\"agent\":{\"tools\":[\"web_search\"]},"
    "\"resources\":{\"limits\":{\"cpu\":2,\"memory\":\"4Gi\"}},"
    "\"a2a\":{\"enabled\":true,\"expiresAt\":\"2026-05-30T00:00:00Z\"},"
    "\"upstreamCompatibility\":{\"sigsAgentSandbox\":\"overlay\",\"upstreamSandboxRef\":\"prod/web\"},"
    "\"meshAuth\":{\"backend\":\"EntraAgentIdentity\"}}}",
    /* 1 */
    "{\"apiVersion\":\"kars.azure.com/v1alpha1\",\"kind\":\"ToolPolicy\","
    "\"metadata\":{\"name\":\"bot-policy\",\"namespace\":\"kars-bot\"},\"spec\":{"
    "\"appliesTo\":{\"tool\":\"*\",\"sandboxMatchLabels\":{\"app\":\"bot\"}},"
    "\"approval\":{\"mode\":\"aboveThreshold\",\"threshold\":700},"
    "\"commerce\":{\"dailyCap\":\"USD 10.00\"},\"agtProfile\":{\"inline\":{\"rules\":[]}}}}",
    /* 2 */
    "{\"apiVersion\":\"kars.azure.com/v1alpha1\",\"kind\":\"InferencePolicy\","
    "\"metadata\":{\"name\":\"bot-inference\",\"namespace\":\"kars-bot\"},\"spec\":{"
    "\"appliesTo\":{\"sandboxName\":\"bot\"},"
    "\"modelPreference\":{\"primary\":{\"provider\":\"azure-openai\",\"deployment\":\"gpt-4.1\"},"
    "\"fallback\":[{\"deployment\":\"gpt-4.1-mini\"}]},"
    "\"tokenBudget\":{\"perRequestTokens\":8000,\"dailyTokens\":100000,\"monthlyTokens\":2000000},"
    "\"contentSafety\":{\"hate\":\"Medium\",\"requirePromptShields\":true},"
    "\"allowedModels\":[\"o4-mini\",\"text-embedding-3-small\"],"
    "\"onDisallowedModel\":\"override\",\"displayName\":\"Bot inference\"}}",
    /* 3 */
    "{\"apiVersion\":\"kars.azure.com/v1alpha1\",\"kind\":\"EgressApproval\","
    "\"metadata\":{\"name\":\"gh\",\"namespace\":\"kars-bot\"},\"spec\":{\"sandbox\":\"bot\","
    "\"hosts\":[{\"host\":\"api.github.com\",\"port\":443}],\"reason\":\"release\","
    "\"ttl\":\"PT2H\"}}",
    /* 4 */
    "{\"apiVersion\":\"kars.azure.com/v1alpha1\",\"kind\":\"A2AAgent\","
    "\"metadata\":{\"name\":\"planner\",\"namespace\":\"a\"},\"spec\":{"
    "\"endpointUrl\":\"https://planner.example.com/a2a\",\"productionMode\":true,"
    "\"signingKeys\":[{\"kid\":\"k1\",\"publicKeyB64u\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}],"
    "\"federation\":[{\"label\":\"p\",\"kind\":\"external\",\"endpointUrl\":\"https://p.example\",\"pinnedKid\":\"k9\"}]}}",
    /* 5 */
    "{\"apiVersion\":\"kars.azure.com/v1alpha1\",\"kind\":\"McpServer\","
    "\"metadata\":{\"name\":\"tools\",\"namespace\":\"a\"},\"spec\":{"
    "\"url\":\"https://mcp.example.com\",\"productionMode\":true,"
    "\"oauth\":{\"issuer\":\"https://login.example.com\"},\"allowedTools\":[\"*\"]}}",
    /* 6 */
    "{\"apiVersion\":\"kars.azure.com/v1alpha1\",\"kind\":\"TrustGraph\","
    "\"metadata\":{\"name\":\"org\"},\"spec\":{\"vertices\":[{\"id\":\"a\","
    "\"publicKeyB64u\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"},{\"id\":\"b\","
    "\"publicKeyB64u\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}],"
    "\"edges\":[{\"from\":\"a\",\"to\":\"b\",\"score\":800,\"signature\":"
    "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}]}}",
    /* 7 */
    "{\"apiVersion\":\"kars.azure.com/v1alpha1\",\"kind\":\"KarsMemory\","
    "\"metadata\":{\"name\":\"mem\",\"namespace\":\"a\"},\"spec\":{\"sandboxRef\":{\"name\":\"bot\"},"
    "\"storeName\":\"store-1\",\"scope\":\"agent_bot\",\"retentionDays\":30}}",
    /* 8 */
    "{\"apiVersion\":\"kars.azure.com/v1alpha1\",\"kind\":\"KarsEval\","
    "\"metadata\":{\"name\":\"ev\",\"namespace\":\"a\"},\"spec\":{\"targetSandboxRef\":{\"name\":\"bot\"},"
    "\"corpus\":{\"builtin\":\"jailbreak-baseline\"},\"schedule\":\"0 */6 * * *\"}}",
    /* 9 */
    "{\"apiVersion\":\"kars.azure.com/v1alpha1\",\"kind\":\"KarsSREAction\","
    "\"metadata\":{\"name\":\"fix\",\"namespace\":\"kars-sre\"},\"spec\":{"
    "\"action\":{\"type\":\"RolloutRestart\",\"params\":{\"deployment\":\"x\"}},"
    "\"approval\":{\"state\":\"Pending\"},\"diagnosis\":\"stuck\"}}",
    /* 10 */
    "{\"apiVersion\":\"kars.azure.com/v1alpha1\",\"kind\":\"KarsAuthConfig\","
    "\"metadata\":{\"name\":\"default\"},\"spec\":{"
    "\"tenant\":{\"tenantId\":\"72f988bf-86f1-41af-91ab-2d7cd011db47\"},\"agentId\":{},"
    "\"controller\":{\"credentialMode\":\"WorkloadIdentity\"}}}",
    /* 11 */
    "{\"apiVersion\":\"kars.azure.com/v1alpha1\",\"kind\":\"KarsPairing\","
    "\"metadata\":{\"name\":\"alice-laptop\",\"namespace\":\"kars-system\"},\"spec\":{"
    "\"tokenHash\":\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\","
    "\"expiresAt\":\"2026-08-01T00:00:00+02:00\"}}",
};

struct bad_case {
	int base;
	const char *path;  /* "spec.hosts[0].port" */
	const char *value; /* JSON, or NULL to delete */
	const char *want;  /* a substring of one of the problems */
};

#define LONG_513                                                                                     \
	"\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"   \
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"   \
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"   \
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"   \
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\""

static const struct bad_case bad[] = {
    /* KarsSandbox: schema rules */
    {0, "spec.runtime", NULL, "spec.runtime: Required value"},
    {0, "spec.inferenceRef", NULL, "spec.inferenceRef: Required value"},
    {0, "spec.sandbox", NULL, "spec.sandbox: Required value"},
    {0, "spec", NULL, "spec: Required value"},
    {0, "spec.runtime", "{\"kind\":\"BYO\",\"byo\":{\"image\":\"r.io/a:1\"}}",
     "spec.runtime.byo.contractVersion: Required value"},
    {0, "spec.runtime.kind", "\"Foo\"", "spec.runtime.kind: Unsupported value: \"Foo\""},
    {0, "spec.sandbox.isolation", "\"max\"",
     "spec.sandbox.isolation: Unsupported value: \"max\": supported values: \"standard\", "
     "\"enhanced\", \"confidential\""},
    {0, "spec.governance.trustThreshold", "2000",
     "spec.governance.trustThreshold: Invalid value: 2000: spec.governance.trustThreshold in "
     "body should be less than or equal to 1000"},
    {0, "spec.governance.trustThreshold", "-1", "greater than or equal to 0"},
    {0, "spec.governance.trustThreshold", "\"high\"",
     "spec.governance.trustThreshold: Invalid value: \"string\": "
     "spec.governance.trustThreshold in body must be of type integer"},
    {0, "spec.suspended", "\"yes\"", "spec.suspended in body must be of type boolean"},
    {0, "spec.governance.toolPolicyRef.name", "\"ns/policy\"",
     "spec.governance.toolPolicyRef.name: Invalid value: \"ns/policy\""},
    {0, "spec.foo", "1", "unknown field \"spec.foo\""},
    {0, "spec.sandbox.readOnlyRootFilesystm", "false",
     "unknown field \"spec.sandbox.readOnlyRootFilesystm\""},
    {0, "extra", "1", "unknown field \"extra\""},
    {0, "metadata.nam", "\"x\"", "unknown field \"metadata.nam\""},
    {0, "spec.networkPolicy.allowedEndpoints[0].port", "70000",
     "spec.networkPolicy.allowedEndpoints[0].port: Invalid value: 70000"},
    {0, "spec.networkPolicy.allowedEndpoints[0].host", "\"Bad_Host\"",
     "spec.networkPolicy.allowedEndpoints[0].host: Invalid value: \"Bad_Host\""},
    {0, "spec.networkPolicy.allowlistRef",
     "{\"registry\":\"r\",\"repository\":\"x\",\"digest\":\"sha256:abc\"}",
     "spec.networkPolicy.allowlistRef.digest: Invalid value: \"sha256:abc\""},
    {0, "spec.a2a.expiresAt", "\"tomorrow\"",
     "spec.a2a.expiresAt: Invalid value: \"tomorrow\": spec.a2a.expiresAt in body must be of "
     "type date-time"},
    {0, "spec.a2a.expiresAt", "\"2026-02-30T00:00:00Z\"", "spec.a2a.expiresAt: Invalid value"},
    {0, "spec.a2a.bodyCapBytes", "8388608", "spec.a2a.bodyCapBytes: Invalid value: 8388608"},
    {0, "spec.a2a.allowedCallers", "[{\"jwsThumbprint\":\"sha256:abcd1234...\"}]",
     "spec.a2a.allowedCallers[0].jwsThumbprint: Invalid value"},
    {0, "spec.upstreamCompatibility.sigsAgentSandbox", "false",
     "spec.upstreamCompatibility.sigsAgentSandbox: Invalid value: \"boolean\""},
    {0, "spec.governance.mcpServerRefs", "[{\"name\":\"a\"},{\"name\":\"b\"},{\"name\":\"a\"}]",
     "spec.governance.mcpServerRefs[2]: Duplicate value: {\"name\":\"a\"}"},
    {0, "spec.governance.mcpServerRefs",
     "[{\"name\":\"a\"},{\"name\":\"b\"},{\"name\":\"c\"},{\"name\":\"d\"},{\"name\":\"e\"},"
     "{\"name\":\"f\"},{\"name\":\"g\"},{\"name\":\"h\"},{\"name\":\"i\"}]",
     "spec.governance.mcpServerRefs: Too many: 9: must have at most 8 items"},
    {0, "spec.agent.tools", "[\"a\",\"a\"]", "spec.agent.tools[1]: Duplicate value: \"a\""},
    {0, "spec.runtime", "{\"kind\":\"LangGraph\",\"langGraph\":{\"language\":\"rust\"}}",
     "spec.runtime.langGraph.language: Unsupported value: \"rust\""},
    {0, "metadata", NULL, "metadata.name: Required value"},
    {0, "metadata.name", "\"Bad_Name\"", "metadata.name: Invalid value: \"Bad_Name\""},
    {0, "metadata.namespace", "\"Kars\"", "metadata.namespace: Invalid value: \"Kars\""},
    {0, "metadata.labels", "{\"a\":1}", "metadata.labels.a: Invalid value"},
    {0, "apiVersion", "\"kars.azure.com/v1\"",
     "no kind \"KarsSandbox\" is registered for "
     "version \"kars.azure.com/v1\""},
    {0, "kind", "\"Sandbox\"", "no kind \"Sandbox\""},
    {0, "kind", NULL, "kind: Required value"},
    /* KarsSandbox: CEL rules */
    {0, "spec.runtime", "{\"kind\":\"BYO\"}",
     "spec.runtime.byo: Invalid value: \"object\": runtime.byo is required when runtime.kind "
     "is BYO"},
    {0, "spec.runtime",
     "{\"kind\":\"OpenClaw\",\"byo\":{\"image\":\"r.io/a:1\",\"contractVersion\":\"v1\"}}",
     "spec.runtime: Invalid value: \"object\": runtime.byo is only allowed when runtime.kind "
     "is BYO"},
    {0, "spec.runtime",
     "{\"kind\":\"Anthropic\",\"anthropic\":{\"agentCode\":{\"oci\":{\"image\":\"a:1\"}}},"
     "\"openaiAgents\":{}}",
     "runtime.openaiAgents is only allowed when runtime.kind is OpenAIAgents"},
    {0, "spec.runtime", "{\"kind\":\"OpenClaw\",\"hermes\":{}}",
     "runtime.hermes is only allowed when runtime.kind is Hermes"},
    {0, "spec.runtime", "{\"kind\":\"OpenClaw\",\"microsoftAgentFramework\":{}}",
     "runtime.microsoftAgentFramework is only allowed"},
    {0, "spec.runtime", "{\"kind\":\"OpenClaw\",\"semanticKernel\":{}}",
     "runtime.semanticKernel is only allowed"},
    {0, "spec.runtime", "{\"kind\":\"OpenClaw\",\"langGraph\":{}}",
     "runtime.langGraph is only allowed"},
    {0, "spec.runtime", "{\"kind\":\"OpenClaw\",\"anthropic\":{}}",
     "runtime.anthropic is only allowed"},
    {0, "spec.runtime", "{\"kind\":\"OpenClaw\",\"pydanticAi\":{}}",
     "runtime.pydanticAi is only allowed"},
    {0, "spec.runtime",
     "{\"kind\":\"BYO\",\"openclaw\":{},\"byo\":{\"image\":\"r.io/a:1\",\"contractVersion\":\"v1\"}}",
     "runtime.openclaw is only allowed when runtime.kind is OpenClaw"},
    {0, "spec.runtime",
     "{\"kind\":\"BYO\",\"byo\":{\"image\":\"r.io:5000/agent\",\"contractVersion\":\"v1\"}}",
     "spec.runtime.byo.image: Invalid value: \"object\": byo.image must name a tag or a digest"},
    {0, "spec.runtime",
     "{\"kind\":\"PydanticAi\",\"pydanticAi\":{\"agentCode\":{\"oci\":{\"image\":\"a:1\"},"
     "\"git\":{\"url\":\"https://g/x\"}}}}",
     "spec.runtime.pydanticAi.agentCode: Invalid value: \"object\": exactly one of "
     "agentCode.oci and agentCode.git must be set"},
    {0, "spec.runtime",
     "{\"kind\":\"BYO\",\"byo\":{\"image\":\"r.io/a:1\",\"contractVersion\":\"v1\"}}",
     "spec.agent: Invalid value: \"object\": agent is not allowed with runtime.kind BYO"},
    {0, "spec.a2a.expiresAt", NULL,
     "spec.a2a: Invalid value: \"object\": a2a.expiresAt is required when a2a is enabled"},
    {0, "spec.upstreamCompatibility.upstreamSandboxRef", NULL,
     "spec.upstreamCompatibility: Invalid value: \"object\": "
     "upstreamCompatibility.upstreamSandboxRef is required in overlay mode"},
    {0, "spec.governance.mcpServerRef", "{\"name\":\"b\"}",
     "spec.governance: Invalid value: \"object\": mcpServerRef (deprecated) and mcpServerRefs "
     "are mutually exclusive"},
    {0, "metadata.name", "\"a23456789012345678901234567890123456789012345678901234567890\"",
     "metadata.name must be a DNS label of at most 58 characters"},
    /* ToolPolicy */
    {1, "spec.appliesTo.sandboxMatchLabels", "{}",
     "spec.appliesTo.sandboxMatchLabels: Invalid value: \"object\": "
     "appliesTo.sandboxMatchLabels must name at least one label"},
    {1, "spec.appliesTo.sandboxMatchLabels", NULL, "must name at least one label"},
    {1, "spec.approval.threshold", NULL,
     "spec.approval: Invalid value: \"object\": approval.threshold is required with mode "
     "aboveThreshold"},
    {1, "spec.agtProfile.bundleRef",
     "{\"registry\":\"r\",\"repository\":\"x\",\"digest\":"
     "\"sha256:0000000000000000000000000000000000000000000000000000000000000000\"}",
     "spec.agtProfile: Invalid value: \"object\": exactly one of agtProfile.inline and "
     "agtProfile.bundleRef must be set"},
    {1, "spec.commerce.dailyCap", "\"10 dollars\"", "spec.commerce.dailyCap: Invalid value"},
    {1, "spec.approval.mode", "\"sometimes\"", "spec.approval.mode: Unsupported value"},
    {1, "spec.appliesTo", NULL, "spec.appliesTo: Required value"},
    /* InferencePolicy */
    {2, "spec.tokenBudget.monthlyTokens", "50000",
     "spec.tokenBudget.monthlyTokens: Invalid value: \"object\": tokenBudget.monthlyTokens "
     "must be at least tokenBudget.dailyTokens"},
    {2, "spec.contentSafety.hate", "\"Extreme\"", "spec.contentSafety.hate: Unsupported value"},
    {2, "spec.modelPreference.primary.deployment", NULL,
     "spec.modelPreference.primary.deployment: Required value"},
    {2, "spec.modelPreference.fallback[0].deployment", "\"\"",
     "spec.modelPreference.fallback[0].deployment: Invalid value: \"\""},
    {2, "spec.bundleRef",
     "{\"registry\":\"r\",\"repository\":\"x\",\"digest\":"
     "\"sha256:0000000000000000000000000000000000000000000000000000000000000000\"}",
     "spec: Invalid value: \"object\": bundleRef and the inline modelPreference"},
    {2, "spec.appliesTo.action", "\"video\"", "spec.appliesTo.action: Unsupported value"},
    {2, "spec.tokenBudget.dailyTokens", "0", "spec.tokenBudget.dailyTokens: Invalid value: 0"},
    {2, "spec.allowedModels", "[\"gpt 4\"]", "spec.allowedModels[0]: Invalid value: \"gpt 4\""},
    {2, "spec.allowedModels", "[\"o4-mini\",\"o4-mini\"]",
     "spec.allowedModels[1]: Duplicate value: \"o4-mini\""},
    {2, "spec.allowedModels", "[\"\"]", "spec.allowedModels[0]: Invalid value: \"\""},
    {2, "spec.onDisallowedModel", "\"redirect\"", "spec.onDisallowedModel: Unsupported value"},
    {2, "spec.modelPreference", NULL,
     "spec.onDisallowedModel: Invalid value: \"object\": onDisallowedModel override needs "
     "modelPreference"},
    {2, "spec", "{\"appliesTo\":{\"sandboxName\":\"bot\"}}",
     "spec.modelPreference: Invalid value: \"object\": a policy must name its models"},
    {2, "spec.displayName", LONG_513, "spec.displayName: Too long: may not be longer than 255"},
    /* EgressApproval */
    {3, "spec.hosts", "[]",
     "spec.hosts: Invalid value: 0: spec.hosts in body should have at "
     "least 1 items"},
    {3, "spec.hosts",
     "[{\"host\":\"a.b\"},{\"host\":\"a.b\"},{\"host\":\"a.b\"},{\"host\":\"a.b\"},{\"host\":"
     "\"a.b\"},{\"host\":\"a.b\"},{\"host\":\"a.b\"},{\"host\":\"a.b\"},{\"host\":\"a.b\"},"
     "{\"host\":\"a.b\"},{\"host\":\"a.b\"},{\"host\":\"a.b\"},{\"host\":\"a.b\"},{\"host\":"
     "\"a.b\"},{\"host\":\"a.b\"},{\"host\":\"a.b\"},{\"host\":\"a.b\"}]",
     "spec.hosts: Too many: 17: must have at most 16 items"},
    {3, "spec.reason", "\"line\\nbreak\"",
     "spec.reason: Invalid value: \"object\": reason must not contain control characters"},
    {3, "spec.reason", LONG_513, "spec.reason: Too long: may not be longer than 512"},
    {3, "spec.reason", "\"\"", "spec.reason: Invalid value: \"\""},
    {3, "spec.ttl", "\"P0D\"",
     "spec.ttl: Invalid value: \"object\": ttl must be a nonzero ISO-8601 duration"},
    {3, "spec.ttl", "\"PT\"", "ttl must be a nonzero ISO-8601 duration"},
    {3, "spec.ttl", "\"P1DT\"", "ttl must be a nonzero ISO-8601 duration"},
    {3, "spec.ttl", "\"2h\"", "spec.ttl: Invalid value: \"2h\""},
    {3, "spec.sandbox", NULL, "spec.sandbox: Required value"},
    /* A2AAgent */
    {4, "spec.signingKeys", NULL, "spec.signingKeys: Required value"},
    {4, "spec.signingKeys", "[]", "spec.signingKeys: Invalid value: 0"},
    {4, "spec.signingKeys[0].publicKeyB64u", "\"short\"",
     "spec.signingKeys[0].publicKeyB64u: Invalid value: \"short\""},
    {4, "spec.signingKeys[0].alg", "\"RS256\"", "spec.signingKeys[0].alg: Unsupported value"},
    {4, "spec.endpointUrl", "\"http://planner.example.com\"",
     "spec.endpointUrl: Invalid value: \"object\": endpointUrl must be https in productionMode"},
    {4, "spec.federation[0].pinnedKid", NULL,
     "spec.federation[0]: Invalid value: \"object\": in-cluster federation needs agentRef"},
    {4, "spec.federation[0]", "{\"label\":\"q\",\"kind\":\"in-cluster\"}",
     "spec.federation[0]: Invalid value: \"object\""},
    /* McpServer */
    {5, "spec.bundleRef",
     "{\"registry\":\"r\",\"repository\":\"x\",\"digest\":"
     "\"sha256:0000000000000000000000000000000000000000000000000000000000000000\"}",
     "spec: Invalid value: \"object\": exactly one of url and bundleRef must be set"},
    {5, "spec.url", NULL, "exactly one of url and bundleRef must be set"},
    {5, "spec.url", "\"http://mcp.example.com\"",
     "spec: Invalid value: \"object\": productionMode needs an https url and oauth.issuer"},
    {5, "spec.oauth", NULL, "productionMode needs an https url and oauth.issuer"},
    {5, "spec.allowedTools", "[\"a\",\"a\"]", "spec.allowedTools[1]: Duplicate value"},
    /* TrustGraph */
    {6, "metadata.namespace", "\"a\"", "metadata.namespace: Forbidden"},
    {6, "spec.edges[0].score", "1001", "spec.edges[0].score: Invalid value: 1001"},
    {6, "spec.edges[0].signature", "\"abc\"", "spec.edges[0].signature: Invalid value"},
    {6, "spec.vertices[1].id", "\"a\"", "spec.vertices[1]: Duplicate value: {\"id\":\"a\"}"},
    {6, "spec.vertices", NULL, "spec.vertices: Required value"},
    /* KarsMemory */
    {7, "spec.scope", NULL,
     "spec.scope: Invalid value: \"object\": scope is required unless bundleRef is set"},
    {7, "spec.storeName", "\"Bad Store\"", "spec.storeName: Invalid value: \"Bad Store\""},
    {7, "spec.retentionDays", "0", "spec.retentionDays: Invalid value: 0"},
    {7, "spec.scope", "\"a b\"", "spec.scope: Invalid value: \"a b\""},
    {7, "spec.sandboxRef", NULL, "spec.sandboxRef: Required value"},
    /* KarsEval */
    {8, "spec.corpus.builtin", "\"everything\"", "spec.corpus.builtin: Unsupported value"},
    {8, "spec.corpus",
     "{\"builtin\":\"banned-tools\",\"bundleRef\":{\"registry\":\"r\",\"repository\":\"x\","
     "\"digest\":\"sha256:0000000000000000000000000000000000000000000000000000000000000000\"}}",
     "spec.corpus: Invalid value: \"object\": exactly one of corpus.builtin and "
     "corpus.bundleRef must be set"},
    {8, "spec.corpus", "{}", "exactly one of corpus.builtin and corpus.bundleRef"},
    {8, "spec.schedule", "\"daily\"", "spec.schedule: Invalid value: \"daily\""},
    /* KarsSREAction */
    {9, "spec.ttlMinutes", "61", "spec.ttlMinutes: Invalid value: 61"},
    {9, "spec.action.type", "\"RmRf\"", "spec.action.type: Unsupported value: \"RmRf\""},
    {9, "spec.approval", NULL, "spec.approval: Required value"},
    {9, "spec.diagnosis", LONG_513, "spec.diagnosis: Too long: may not be longer than 512"},
    /* KarsAuthConfig */
    {10, "metadata.name", "\"other\"",
     "Invalid value: \"object\": metadata.name must be default (KarsAuthConfig is a "
     "singleton)"},
    {10, "spec.tenant.tenantId", "\"not-a-guid\"", "spec.tenant.tenantId: Invalid value"},
    {10, "spec.controller.credentialMode", NULL, "spec.controller.credentialMode: Required value"},
    {10, "spec.meshAuthBackend", "\"Password\"", "spec.meshAuthBackend: Unsupported value"},
    /* KarsPairing */
    {11, "spec.tokenHash", "\"ABC\"", "spec.tokenHash: Invalid value: \"ABC\""},
    {11, "spec.expiresAt", NULL, "spec.expiresAt: Required value"},
    {11, "spec.expiresAt", "\"2026-08-01\"", "spec.expiresAt: Invalid value: \"2026-08-01\""},
    {11, "spec.capabilities", "[\"teleport\"]",
     "spec.capabilities[0]: Unsupported value: \"teleport\""},
    {11, "spec.slotsMax", "0", "spec.slotsMax: Invalid value: 0"},
};

static json_t *parse(const char *s)
{
	json_error_t jerr;
	json_t *v = json_loads(s, JSON_DECODE_ANY, &jerr);

	if (!v)
		fail_msg("test JSON does not parse: %s: %s", jerr.text, s);
	return v;
}

/* Sets (value != NULL) or deletes the field at path, creating objects on the way. */
static void mutate(json_t *root, const char *path, const char *value)
{
	char buf[256], *save = NULL, *seg;
	json_t *cur = root;

	snprintf(buf, sizeof(buf), "%s", path);
	for (seg = strtok_r(buf, ".", &save); seg; seg = strtok_r(NULL, ".", &save)) {
		char *br = strchr(seg, '[');
		bool last = save == NULL || *save == '\0';
		long idx = -1;

		if (br) {
			*br = '\0';
			idx = strtol(br + 1, NULL, 10);
		}
		if (last && idx < 0) {
			if (value)
				json_object_set_new(cur, seg, parse(value));
			else
				json_object_del(cur, seg);
			return;
		}
		if (!json_object_get(cur, seg))
			json_object_set_new(cur, seg, json_object());
		cur = json_object_get(cur, seg);
		if (idx >= 0) {
			if (last) {
				if (value)
					json_array_set_new(cur, (size_t)idx, parse(value));
				else
					json_array_remove(cur, (size_t)idx);
				return;
			}
			cur = json_array_get(cur, (size_t)idx);
		}
		assert_non_null(cur);
	}
}

/* With KARS_CEL_CASES=FILE set, every CEL rule evaluated on a manifest of this
 * table is written to FILE as one JSON line {"cel", "self", "ok"}: the rule's
 * text, the node it ran on and what its C half said. selftests/e2e/cel.sh
 * runs a real CEL evaluator on the same lines and fails on any disagreement. */
static FILE *cel_cases;

static void emit_rules(const struct kars_rule *rules, const json_t *self)
{
	for (const struct kars_rule *r = rules; r && r->cel; r++) {
		json_t *line =
		    json_pack("{s:s,s:O,s:b}", "cel", r->cel, "self", self, "ok", r->ok(self));
		char *text = json_dumps(line, JSON_COMPACT | JSON_ENCODE_ANY);

		fprintf(cel_cases, "%s\n", text);
		free(text);
		json_decref(line);
	}
}

static void emit_cel_cases(const struct kars_field *f, const json_t *v)
{
	const char *key;
	json_t *val;
	size_t i;

	if (!f || !v)
		return;
	if (f->type == KT_OBJECT && json_is_object(v)) {
		emit_rules(f->rules, v);
		for (const struct kars_field *c = f->props; c && c->name; c++)
			emit_cel_cases(c, json_object_get(v, c->name));
	} else if (f->type == KT_ARRAY && json_is_array(v)) {
		json_array_foreach(v, i, val) emit_cel_cases(f->items, val);
	} else if (f->type == KT_MAP && json_is_object(v)) {
		json_object_foreach((json_t *)v, key, val) emit_cel_cases(f->items, val);
	}
}

/* Only manifests whose problems are all CEL ones: the API server runs CEL on
 * well-typed nodes only, so that is where the two halves must agree. */
static void record_cel_cases(const json_t *obj, const struct kars_problems *p)
{
	const struct kars_kind *k;

	if (!cel_cases)
		return;
	for (size_t i = 0; i < p->count; i++)
		if (!strstr(p->msg[i], "Invalid value: \"object\""))
			return;
	k = kars_kind_find(json_string_value(json_object_get(obj, "kind")));
	if (!k)
		return;
	emit_rules(k->root_rules, obj);
	emit_cel_cases(k->spec, json_object_get(obj, "spec"));
}

static void test_every_kind_has_a_good_manifest(void **state)
{
	size_t kinds = 0;

	for (size_t i = 0; kars_kinds[i]; i++, kinds++) {
		bool found = false;

		for (size_t j = 0; j < sizeof(good) / sizeof(good[0]); j++)
			found |= strstr(good[j], kars_kinds[i]->kind) != NULL;
		if (!found)
			fail_msg("no good manifest for %s", kars_kinds[i]->kind);
	}
	assert_int_equal(kinds, 12);
}

static void test_good_manifests_validate(void **state)
{
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct kars_problems p = {};
		json_t *obj = parse(good[i]);
		char all[4096];

		if (kars_validate_object(obj, NULL, &p))
			fail_msg("good manifest %zu refused:\n%s", i,
				 kars_problems_join(&p, all, sizeof(all)));
		record_cel_cases(obj, &p);
		json_decref(obj);
	}
}

static void test_bad_manifests_name_their_field(void **state)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const struct bad_case *c = &bad[i];
		struct kars_problems p = {};
		json_t *obj = parse(good[c->base]);
		char all[8192];

		mutate(obj, c->path, c->value);
		if (kars_validate_object(obj, NULL, &p) == 0)
			fail_msg("case %zu (%s = %s) was accepted", i, c->path,
				 c->value ? c->value : "(deleted)");
		kars_problems_join(&p, all, sizeof(all));
		record_cel_cases(obj, &p);
		if (!strstr(all, c->want))
			fail_msg("case %zu (%s): want \"%s\", got:\n%s", i, c->path, c->want, all);
		json_decref(obj);
	}
}

static void test_defaults_applied(void **state)
{
	struct kars_problems p = {};
	json_t *obj = parse(good[0]), *pair = parse(good[11]);
	const json_t *spec = json_object_get(obj, "spec");

	assert_int_equal(kars_validate_object(obj, NULL, &p), 0);
	assert_true(json_is_true(json_object_get(json_object_get(spec, "governance"), "enabled")));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(spec, "governance"),
							    "trustThreshold")),
			 500);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(spec, "sandbox"), "seccompProfile")),
	    "kars-strict");
	assert_int_equal(
	    json_integer_value(json_object_get(
		json_array_get(
		    json_object_get(json_object_get(spec, "networkPolicy"), "allowedEndpoints"), 0),
		"port")),
	    443);
	/* absent parents stay absent: no memoryRef is invented */
	assert_null(json_object_get(spec, "memoryRef"));
	assert_int_equal(kars_validate_object(pair, NULL, &p), 0);
	assert_int_equal(
	    json_array_size(json_object_get(json_object_get(pair, "spec"), "capabilities")), 2);
	json_decref(obj);
	json_decref(pair);
}

static void test_problems_are_capped_not_lost(void **state)
{
	struct kars_problems p = {};
	json_t *obj = parse(good[3]);
	char key[32];

	for (int i = 0; i < 50; i++) {
		snprintf(key, sizeof(key), "junk%d", i);
		json_object_set_new(json_object_get(obj, "spec"), key, json_true());
	}
	assert_int_equal(kars_validate_object(obj, NULL, &p), -EINVAL);
	assert_int_equal(p.count, KARS_PROBLEMS_MAX);
	assert_int_equal(p.count + p.dropped, 50);
	json_decref(obj);
}

static void test_date_time(void **state)
{
	assert_true(kars_is_date_time("2026-05-30T00:00:00Z"));
	assert_true(kars_is_date_time("2026-05-30T23:59:60.123+05:30"));
	assert_true(kars_is_date_time("2024-02-29T00:00:00-01:00"));
	assert_false(kars_is_date_time("2026-05-30"));
	assert_false(kars_is_date_time("2026-13-01T00:00:00Z"));
	assert_false(kars_is_date_time("2026-05-30T24:00:00Z"));
	assert_false(kars_is_date_time("2026-05-30T00:00:00"));
	assert_false(kars_is_date_time("2026-05-30T00:00:00Zjunk"));
	assert_false(kars_is_date_time("2026-05-30T00:00:00.Z"));
	/* the instant: offsets applied, fractions dropped (epoch seconds by date -d) */
	{
		time_t t = 0;

		assert_int_equal(kars_date_time_parse("2026-05-30T00:00:00Z", &t), 0);
		assert_int_equal((long long)t, 1780099200LL);
		assert_int_equal(kars_date_time_parse("2026-05-30T05:30:00.999+05:30", &t), 0);
		assert_int_equal((long long)t, 1780099200LL);
		assert_int_equal(kars_date_time_parse("2026-05-29T23:00:00-01:00", &t), 0);
		assert_int_equal((long long)t, 1780099200LL);
		assert_int_equal(kars_date_time_parse("2026-05-30", &t), -EINVAL);
		assert_int_equal(kars_date_time_parse(NULL, &t), -EINVAL);
	}
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_every_kind_has_a_good_manifest),
    cmocka_unit_test(test_good_manifests_validate),
    cmocka_unit_test(test_bad_manifests_name_their_field),
    cmocka_unit_test(test_defaults_applied),
    cmocka_unit_test(test_problems_are_capped_not_lost),
    cmocka_unit_test(test_date_time),
};

/* KARS_UNIT_MAIN, with the KARS_CEL_CASES file opened first. */
int main(int argc, char **argv)
{
	const char *path = getenv("KARS_CEL_CASES");
	int ret;

	if (path && !(cel_cases = fopen(path, "w"))) {
		perror(path);
		return 2;
	}
	ret = kars_unit_main(__FILE__, tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
	if (cel_cases)
		fclose(cel_cases);
	return ret;
}
