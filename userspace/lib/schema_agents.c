/* schema_agents.c - the kinds that describe agents and tool servers outside
 * a sandbox: A2AAgent (a peer reached over A2A), McpServer (a tool server)
 * and TrustGraph (signed trust edges between agents, cluster-wide).
 */
#include "schema_common.h"

#define SIGNING_KEY_PROPS                                                                          \
	FIELDS(F("kid", KT_STRING, .flags = KF_REQUIRED, .max_len = 128, .desc = "Key id."),       \
	       F("alg", KT_STRING, .enums = ENUM("EdDSA"), .dflt = "\"EdDSA\"",                    \
		 .desc = "Signature algorithm (EdDSA, Ed25519)."),                                 \
	       F("publicKeyB64u", KT_STRING, .flags = KF_REQUIRED, .pattern = B64URL_32,           \
		 .desc = "Ed25519 public key, 32 bytes, base64url without padding."),              \
	       F("notAfter", KT_STRING, .format = "date-time", .desc = "Key expiry."))

static bool a2a_https_in_production(const json_t *self)
{
	return !j_bool(self, "productionMode", false) ||
	       strncmp(j_str(self, "endpointUrl"), "https://", 8) == 0;
}

static bool federation_shape(const json_t *self)
{
	if (j_str_is(self, "kind", "in-cluster"))
		return j_has(self, "agentRef");
	return j_has(self, "endpointUrl") && j_has(self, "pinnedKid");
}

static const struct kars_field a2a_spec =
    F("spec", KT_OBJECT, .flags = KF_REQUIRED, .desc = "An agent reachable over A2A.",
      .props = FIELDS(
	  F("endpointUrl", KT_STRING, .flags = KF_REQUIRED, .pattern = "^https?://",
	    .max_len = 2048, .desc = "A2A endpoint (https in productionMode)."),
	  F("productionMode", KT_BOOLEAN, .dflt = "false", .desc = "Enforce production rules."),
	  F("signingKeys", KT_ARRAY, .flags = KF_REQUIRED, .min_items = 1, .max_items = 16,
	    .list_map_key = "kid", .desc = "Keys the agent signs with (at least one).",
	    .items = ITEMS(.type = KT_OBJECT, .props = SIGNING_KEY_PROPS)),
	  F("capabilities", KT_ARRAY, .flags = KF_SET, .max_items = 64,
	    .items = ITEMS(.type = KT_STRING, .max_len = 128), .desc = "Advertised capabilities."),
	  F("trust", KT_OBJECT, .desc = "What callers must prove.",
	    .props = FIELDS(F("requireSignedRequests", KT_BOOLEAN, .dflt = "true",
			      .desc = "Refuse unsigned requests."),
			    F("minSignaturesRequired", KT_INTEGER, RANGE(1, 16), .dflt = "1",
			      .desc = "Signatures a request needs."),
			    F("maxClockSkewSeconds", KT_INTEGER, RANGE(0, 3600), .dflt = "300",
			      .desc = "Allowed clock skew."))),
	  F("federation", KT_ARRAY, .list_map_key = "label", .max_items = 32,
	    .desc = "Peers this agent federates with.",
	    .items =
		ITEMS(.type = KT_OBJECT,
		      .props = FIELDS(
			  F("label", KT_STRING, .flags = KF_REQUIRED, .max_len = 63,
			    .desc = "Name of the peer."),
			  F("kind", KT_STRING, .flags = KF_REQUIRED,
			    .enums = ENUM("in-cluster", "external"),
			    .desc = "in-cluster (agentRef) or external (endpointUrl, pinnedKid)."),
			  F("agentRef", KT_STRING, .pattern = DNS_SUBDOMAIN, .max_len = 253,
			    .desc = "A2AAgent in this cluster."),
			  F("endpointUrl", KT_STRING, .pattern = "^https://", .max_len = 2048,
			    .desc = "External endpoint."),
			  F("pinnedKid", KT_STRING, .max_len = 128,
			    .desc = "Key id the external peer must sign with.")),
		      .rules =
			  RULES({"self.kind == 'in-cluster' ? has(self.agentRef) : "
				 "(has(self.endpointUrl) && has(self.pinnedKid))",
				 "in-cluster federation needs agentRef; external needs endpointUrl "
				 "and pinnedKid",
				 NULL, federation_shape}))),
	  F("policyRefs", KT_OBJECT, .desc = "Policies applied to calls to this agent.",
	    .props = FIELDS(F("toolPolicy", KT_STRING, .pattern = DNS_SUBDOMAIN, .max_len = 253,
			      .desc = "ToolPolicy name.")))),
      .rules = RULES({"!self.productionMode || self.endpointUrl.startsWith('https://')",
		      "endpointUrl must be https in productionMode", ".endpointUrl",
		      a2a_https_in_production}));

static const struct kars_field a2a_status =
    F("status", KT_OBJECT, .desc = "Observed state, written by the controller.",
      .props = FIELDS(PHASE("Pending", "Ready", "Degraded"), OBSERVED_GENERATION,
		      F("agentCardConfigMapRef", KT_STRING, .desc = "Where the agent card is."),
		      F("versionHash", KT_STRING, .desc = "Hash of the compiled card."),
		      F("lastCompiledAt", KT_STRING, .format = "date-time", .desc = "Compiled."),
		      CONDITIONS));

const struct kars_kind kars_kind_a2aagent = {
    .kind = "A2AAgent",
    .plural = "a2aagents",
    .singular = "a2aagent",
    .short_names = ENUM("a2a"),
    .desc = "An agent reachable over A2A, with the keys its messages are signed with.",
    .spec = &a2a_spec,
    .status = &a2a_status,
    .columns =
	COLUMNS(PHASE_COLUMN, {"Endpoint", "string", ".spec.endpointUrl", "URL.", 0}, AGE_COLUMN),
    .phases = ENUM("Pending", "Ready", "Degraded"),
    .conditions = ENUM("Ready", "Progressing", "Degraded"),
};

static bool mcp_source(const json_t *self)
{
	return j_has(self, "url") != j_has(self, "bundleRef");
}

static bool mcp_production(const json_t *self)
{
	const json_t *oauth = json_object_get(self, "oauth");

	return !j_bool(self, "productionMode", false) || !j_has(self, "url") ||
	       (strncmp(j_str(self, "url"), "https://", 8) == 0 && j_has(oauth, "issuer"));
}

static const struct kars_field mcp_spec = F(
    "spec", KT_OBJECT, .flags = KF_REQUIRED, .desc = "A tool server sandboxes may call.",
    .props = FIELDS(
	F("url", KT_STRING, .pattern = "^https?://", .max_len = 2048, .desc = "Server URL."),
	F("productionMode", KT_BOOLEAN, .dflt = "false",
	  .desc = "Require https and an OAuth issuer."),
	F("oauth", KT_OBJECT, .desc = "OAuth 2.1 settings.",
	  .props = FIELDS(F("issuer", KT_STRING, .pattern = "^https://", .max_len = 2048,
			    .desc = "Issuer URL."),
			  F("audience", KT_STRING, .max_len = 2048, .desc = "Audience."),
			  F("resource", KT_STRING, .max_len = 2048, .desc = "Resource indicator."),
			  F("pkce", KT_STRING, .enums = ENUM("S256"), .dflt = "\"S256\"",
			    .desc = "PKCE method."))),
	F("scopes", KT_ARRAY, .flags = KF_SET, .max_items = 64,
	  .items = ITEMS(.type = KT_STRING, .max_len = 253), .desc = "OAuth scopes."),
	F("allowedTools", KT_ARRAY, .flags = KF_SET, .max_items = 256,
	  .items = ITEMS(.type = KT_STRING, .max_len = 253),
	  .desc = "Tools that may be called: [\"*\"], a list, or empty (none: fail closed)."),
	F("allowedSandboxes", KT_OBJECT, .desc = "Sandboxes that may use it.",
	  .props = FIELDS(F("matchLabels", KT_MAP, .max_items = 32,
			    .items = ITEMS(.type = KT_STRING, .max_len = 63),
			    .desc = "Labels a sandbox must carry."))),
	F("bearerFromEnv", KT_STRING, .pattern = "^[A-Za-z_][A-Za-z0-9_]*$", .max_len = 255,
	  .desc = "Router environment variable holding a bearer token."),
	OCI_REF("bundleRef", "Signed OCI bundle describing the server instead of url.")),
    .rules = RULES({"has(self.url) != has(self.bundleRef)",
		    "exactly one of url and bundleRef must be set", NULL, mcp_source},
		   {"!self.productionMode || !has(self.url) || (self.url.startsWith('https://') "
		    "&& has(self.oauth) && has(self.oauth.issuer))",
		    "productionMode needs an https url and oauth.issuer", NULL, mcp_production}));

static const struct kars_field mcp_status =
    F("status", KT_OBJECT, .desc = "Observed state, written by the controller.",
      .props = FIELDS(PHASE("Pending", "Ready", "Degraded"), OBSERVED_GENERATION,
		      F("signingKeyRef", KT_STRING, .desc = "Secret with the signing key."),
		      F("jwksConfigMapRef", KT_STRING, .desc = "ConfigMap with the JWKS."),
		      F("lastProbedAt", KT_STRING, .format = "date-time", .desc = "Last probe."),
		      F("bundleRefDigest", KT_STRING, .desc = "Digest of the verified bundle."),
		      CONDITIONS));

const struct kars_kind kars_kind_mcpserver = {
    .kind = "McpServer",
    .plural = "mcpservers",
    .singular = "mcpserver",
    .short_names = ENUM("mcp"),
    .desc = "A private MCP tool server, with the tools and sandboxes allowed to use it.",
    .spec = &mcp_spec,
    .status = &mcp_status,
    .columns = COLUMNS(PHASE_COLUMN, {"URL", "string", ".spec.url", "Server URL.", 0}, AGE_COLUMN),
    .phases = ENUM("Pending", "Ready", "Degraded"),
    .conditions = ENUM("Ready", "Progressing", "Degraded"),
};

static const struct kars_field tg_spec = F(
    "spec", KT_OBJECT, .flags = KF_REQUIRED, .desc = "Agents and signed trust edges.",
    .props = FIELDS(
	F("vertices", KT_ARRAY, .flags = KF_REQUIRED, .min_items = 1, .max_items = 256,
	  .list_map_key = "id", .desc = "Agents, each with its public key.",
	  .items = ITEMS(.type = KT_OBJECT,
			 .props = FIELDS(F("id", KT_STRING, .flags = KF_REQUIRED, .max_len = 128,
					   .desc = "Agent id."),
					 F("alg", KT_STRING, .enums = ENUM("EdDSA"),
					   .dflt = "\"EdDSA\"", .desc = "Key algorithm."),
					 F("publicKeyB64u", KT_STRING, .flags = KF_REQUIRED,
					   .pattern = B64URL_32, .desc = "Ed25519 public key."),
					 F("label", KT_STRING, .max_len = 253, .desc = "Label.")))),
	F("edges", KT_ARRAY, .max_items = 4096,
	  .desc = "Trust scores, each signed (Ed25519 over \"trustgraph.v1\\n\" + payload) by "
		  "the issuing vertex; invalid edges are counted in status and ignored.",
	  .items = ITEMS(.type = KT_OBJECT,
			 .props = FIELDS(
			     F("from", KT_STRING, .flags = KF_REQUIRED, .max_len = 128,
			       .desc = "Issuing vertex id."),
			     F("to", KT_STRING, .flags = KF_REQUIRED, .max_len = 128,
			       .desc = "Trusted vertex id."),
			     F("score", KT_INTEGER, RANGE_REQ(0, 1000), .desc = "0 to 1000."),
			     F("issuedAt", KT_STRING, .format = "date-time", .desc = "Issued."),
			     F("notAfter", KT_STRING, .format = "date-time", .desc = "Expiry."),
			     F("signature", KT_STRING, .flags = KF_REQUIRED,
			       .pattern = "^[A-Za-z0-9_-]{86}$",
			       .desc = "Ed25519 signature, base64url without padding."),
			     F("reason", KT_STRING, .max_len = 512, .desc = "Why."))))));

static const struct kars_field tg_status =
    F("status", KT_OBJECT, .desc = "Observed state, written by the controller.",
      .props = FIELDS(PHASE("Pending", "Ready", "Degraded"), OBSERVED_GENERATION,
		      F("validVertices", KT_INTEGER, .desc = "Vertices accepted."),
		      F("validEdges", KT_INTEGER, .desc = "Edges whose signature verified."),
		      F("invalidEdges", KT_INTEGER, .desc = "Edges refused."),
		      F("projectionConfigMapRef", KT_STRING, .desc = "Where the projection is."),
		      CONDITIONS));

const struct kars_kind kars_kind_trustgraph = {
    .kind = "TrustGraph",
    .plural = "trustgraphs",
    .singular = "trustgraph",
    .short_names = ENUM("tg"),
    .cluster_scoped = true,
    .desc = "Signed trust scores between agents, projected to the routers.",
    .spec = &tg_spec,
    .status = &tg_status,
    .columns =
	COLUMNS(PHASE_COLUMN, {"Valid", "integer", ".status.validEdges", "Valid edges.", 0},
		{"Invalid", "integer", ".status.invalidEdges", "Invalid edges.", 0}, AGE_COLUMN),
    .phases = ENUM("Pending", "Ready", "Degraded"),
    .conditions = ENUM("Ready", "Progressing", "Degraded"),
};
