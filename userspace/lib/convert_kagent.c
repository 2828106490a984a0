/* convert_kagent.c - kagent.dev/v1alpha2 Agent -> kars bundle (convert.h),
 * for `kars migrate from-kagent`.
 *
 * One Agent becomes a KarsSandbox (Declarative: an OpenClaw runtime with
 * the system message as spec.agent.instructions; BYO: a BYO runtime with
 * the image, command, args and env), an InferencePolicy with the model of
 * the Agent's ModelConfig (from the same input) or --model, and never
 * without one, an McpServer for each referenced RemoteMCPServer found in
 * the input, and one ToolPolicy per MCP server tool reference (approval
 * mode always for the tools the Agent lists in requireApproval), named
 * deterministically. Annotations record the origin.
 */
#include "convert_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DESC_MAX 4096

#define PLACEMENT "placement follows the isolation level (spec.sandbox.isolation)"
#define SA	  "the sandbox runs as its own service account, with no API token for the agent"
#define NO_VOLUMES                                                                                 \
	"kars mounts the sandbox's file systems itself; the agent writes only "                    \
	"spec.sandbox.writablePaths"
#define DEP(key, why)                                                                              \
	{"spec.declarative.deployment." key, why},                                                 \
	{                                                                                          \
		"spec.byo.deployment." key, why                                                    \
	}

static const struct kc_reason agent_reasons[] = {
    {"spec.skills", "skills are not pulled into a kars sandbox (OpenClaw skills belong in "
		    "spec.runtime.openclaw.config)"},
    {"spec.allowedNamespaces", "it governs Agents used as tools by other Agents; kars has no "
			       "Agent-as-tool"},
    {"spec.declarative.systemMessageFrom",
     "a ConfigMap or Secret is not read offline: put the text in spec.agent.instructions"},
    {"spec.declarative.stream", "streaming is the runtime's choice, per request"},
    {"spec.declarative.executeCodeBlocks",
     "code execution is the runtime's (and sandboxed by kars regardless)"},
    {"spec.declarative.a2aConfig",
     "A2A exposure is spec.a2a, opt-in and time-bounded: configure it explicitly"},
    {"spec.declarative.memory",
     "long-term memory is a KarsMemory binding, not an embedding ModelConfig"},
    {"spec.declarative.context", "context compaction is the runtime's"},
    {"spec.declarative.tools[].headersFrom",
     "tool headers from Secrets are not carried (an McpServer's bearerFromEnv holds a token)"},
    {"spec.declarative.tools[].mcpServer.allowedHeaders",
     "A2A request headers are not propagated to MCP calls"},
    {"spec.declarative.deployment.imageRegistry",
     "kars resolves the OpenClaw image itself (--image sets one)"},
    DEP("replicas", "a sandbox runs one agent"),
    DEP("imagePullSecrets", "image pull credentials are the cluster's"),
    DEP("imagePullPolicy", "the controller sets the pull policy"),
    DEP("volumes", NO_VOLUMES),
    DEP("volumeMounts", NO_VOLUMES),
    DEP("labels", "the pod's labels are the kars controller's"),
    DEP("annotations", "the pod's annotations are the kars controller's"),
    DEP("tolerations", PLACEMENT),
    DEP("affinity", PLACEMENT),
    DEP("nodeSelector", PLACEMENT),
    DEP("serviceAccountName", SA),
    DEP("serviceAccountConfig", SA),
    {NULL, NULL},
};

static const struct kc_reason mc_reasons[] = {
    {"spec.apiKeySecret", "the router authenticates to the model with the platform's identity; "
			  "no API key is handed to the sandbox"},
    {"spec.apiKeySecretKey", "the router authenticates to the model with the platform's "
			     "identity; no API key is handed to the sandbox"},
    {"spec.defaultHeaders", "the router sets the upstream headers"},
    {"spec.azureOpenAI.azureEndpoint", "the router's upstream endpoint is the platform's"},
    {"spec.azureOpenAI.apiVersion", "the router picks the API version"},
    {"spec.azureOpenAI.azureAdToken", "the router authenticates with the platform's identity"},
    {"spec.openAI.baseUrl", "the router's upstream endpoint is the platform's"},
    {"spec.anthropic.baseUrl", "the router's upstream endpoint is the platform's"},
    {"spec.ollama.host", "the router's upstream endpoint is the platform's"},
    {"spec.tls", "the router's upstream TLS settings are the platform's"},
    {NULL, NULL},
};

static const struct kc_reason rmcp_reasons[] = {
    {"spec.headersFrom", "headers from Secrets are not carried (use the McpServer's "
			 "bearerFromEnv)"},
    {"spec.protocol", "the router picks the MCP transport"},
    {"spec.description", "an McpServer has no description"},
    {NULL, NULL},
};

struct input {
	const json_t *docs;
	bool *used; /* per document: a ModelConfig/RemoteMCPServer someone referenced */
	bool *reported;
};

static const char *md_get(const json_t *doc, const char *key)
{
	return json_string_value(json_object_get(json_object_get(doc, "metadata"), key));
}

static bool is_kagent(const json_t *doc, const char *kind)
{
	return json_is_object(doc) &&
	       strcmp(json_string_value(json_object_get(doc, "apiVersion")) ?: "",
		      KAGENT_API_VERSION) == 0 &&
	       strcmp(json_string_value(json_object_get(doc, "kind")) ?: "", kind) == 0;
}

static bool same_ns(const char *a, const char *b)
{
	return strcmp(a && *a ? a : "default", b && *b ? b : "default") == 0;
}

/* The document of kind named name in namespace ns, or -1. */
static int find(const struct input *in, const char *kind, const char *name, const char *ns)
{
	const json_t *d;
	size_t i;

	json_array_foreach(in->docs, i, d)
	{
		if (is_kagent(d, kind) && strcmp(md_get(d, "name") ?: "", name) == 0 &&
		    same_ns(md_get(d, "namespace"), ns))
			return (int)i;
	}
	return -1;
}

static const char *provider_of(const char *kagent)
{
	static const char *const map[][2] = {
	    {"OpenAI", "openai"},
	    {"AzureOpenAI", "azure-openai"},
	    {"Anthropic", "anthropic"},
	    {"Ollama", "ollama"},
	    {"Gemini", "gemini"},
	    {"GeminiVertexAI", "gemini-vertex-ai"},
	    {"AnthropicVertexAI", "anthropic-vertex-ai"},
	    {"SAPAICore", "sap-ai-core"},
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(map[i][0], kagent) == 0)
			return map[i][1];
	return NULL;
}

/* ModelConfig -> modelPreference.primary (new ref), its leftovers reported once. */
static json_t *model_of(struct kc *agent, struct input *in, int idx)
{
	const json_t *doc = json_array_get(in->docs, (size_t)idx);
	json_t *rest = json_deep_copy(doc), *spec, *az, *out = NULL;
	const char *model, *prov, *kars_prov, *dep = NULL;
	struct kars_conv_report scratch = {};
	char label[256];
	struct kc c;

	snprintf(label, sizeof(label), "ModelConfig %s%s%.100s", md_get(doc, "namespace") ?: "",
		 md_get(doc, "namespace") ? "/" : "", md_get(doc, "name"));
	/* reported once even when several Agents use it */
	kc_init(&c, in->reported[idx] ? &scratch : agent->r, agent->err, label);
	c.reasons = mc_reasons;
	c.dflt = "sampling and client settings are the runtime's, per request";
	in->reported[idx] = true;
	in->used[idx] = true;
	spec = kc_take_obj(&c, rest, "", "spec");
	model = kc_take_str(&c, spec, "spec", "model");
	prov = kc_take_str(&c, spec, "spec", "provider");
	if (!prov)
		prov = "OpenAI";
	kars_prov = provider_of(prov);
	az = json_object_get(spec, "azureOpenAI");
	if (json_is_object(az))
		dep = kc_take_str(&c, az, "spec.azureOpenAI", "azureDeployment");
	if (!dep)
		dep = model;
	if (!c.ret && !model)
		kc_fail(&c, "spec.model: Required value");
	else if (!c.ret && !kars_prov)
		kc_fail(&c, "spec.provider \"%.64s\": not a kagent model provider", prov);
	else if (!c.ret && (!*dep || strlen(dep) > 253))
		kc_fail(&c, "spec.model: a deployment name of 1 to 253 characters");
	if (!c.ret)
		out = json_pack("{s:s,s:s}", "provider", kars_prov, "deployment", dep);
	json_object_del(rest, "apiVersion");
	json_object_del(rest, "kind");
	json_object_del(rest, "metadata");
	json_object_del(rest, "status");
	kc_leftovers(&c, spec, "spec");
	kc_leftovers(&c, rest, "");
	if (c.ret && !agent->ret)
		agent->ret = c.ret;
	kc_done(&c);
	kars_conv_report_free(&scratch);
	json_decref(rest);
	return out;
}

struct bundle {
	json_t *ks, *ks_spec, *objs_mcp, *objs_tp, *mcp_refs;
	const char *name, *ns, *src_ns;
};

static json_t *object(const char *kind, const char *name, const struct bundle *b)
{
	json_t *md = json_pack("{s:s}", "name", name);

	if (b->ns)
		json_object_set_new(md, "namespace", json_string(b->ns));
	json_object_set_new(md, "labels", json_pack("{s:s}", KARS_SANDBOX_LABEL, b->name));
	json_object_set_new(
	    md, "annotations",
	    json_pack("{s:s}", KARS_ANN_MIGRATED_FROM, KAGENT_API_VERSION "/Agent"));
	return json_pack("{s:s,s:s,s:o}", "apiVersion", KARS_API_VERSION, "kind", kind, "metadata",
			 md);
}

/* McpServer from the RemoteMCPServer doc idx. */
static void mcp_server(struct kc *agent, struct input *in, int idx, const char *server,
		       json_t *tools, struct bundle *b)
{
	const json_t *doc = json_array_get(in->docs, (size_t)idx), *o;
	json_t *rest = json_deep_copy(doc), *spec, *m;
	const char *url;
	char label[256];
	size_t i;
	struct kc c;

	json_array_foreach(b->objs_mcp, i, o)
	{
		if (strcmp(md_get(o, "name"), server) == 0)
			goto done_early; /* one per server */
	}
	snprintf(label, sizeof(label), "RemoteMCPServer %s%s%.100s", md_get(doc, "namespace") ?: "",
		 md_get(doc, "namespace") ? "/" : "", server);
	kc_init(&c, agent->r, agent->err, label);
	c.reasons = rmcp_reasons;
	in->used[idx] = true;
	spec = kc_take_obj(&c, rest, "", "spec");
	url = kc_take_str(&c, spec, "spec", "url");
	if (!c.ret && (!url || (strncmp(url, "https://", 8) && strncmp(url, "http://", 7)) ||
		       strlen(url) > 2048))
		kc_fail(&c, "spec.url: an http(s) URL of at most 2048 characters is required");
	if (!c.ret) {
		m = object("McpServer", server, b);
		json_object_set_new(m, "spec",
				    json_pack("{s:s,s:O,s:{s:{s:s}}}", "url", url, "allowedTools",
					      tools, "allowedSandboxes", "matchLabels",
					      KARS_SANDBOX_LABEL, b->name));
		json_array_append_new(b->objs_mcp, m);
	}
	json_object_del(rest, "apiVersion");
	json_object_del(rest, "kind");
	json_object_del(rest, "metadata");
	json_object_del(rest, "status");
	kc_leftovers(&c, spec, "spec");
	kc_leftovers(&c, rest, "");
	if (c.ret && !agent->ret)
		agent->ret = c.ret;
	kc_done(&c);
done_early:
	json_decref(rest);
}

static bool in_list(const json_t *list, const char *s)
{
	const json_t *v;
	size_t i;

	json_array_foreach(list, i, v)
	{
		if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
			return true;
	}
	return false;
}

static int strings(struct kc *c, const json_t *list, const char *path, size_t max_len)
{
	const json_t *v;
	size_t i;

	json_array_foreach(list, i, v)
	{
		if (!json_is_string(v) || !json_string_length(v) || json_string_length(v) > max_len)
			return kc_fail(c, "%s[%zu]: expected a name of 1 to %zu characters", path,
				       i, max_len);
	}
	return 0;
}

static void tool_policy(struct kc *c, struct bundle *b, const char *server, const char *tool,
			bool approval)
{
	char name[80], key[600];
	json_t *tp;

	char full[400];

	/* <agent>-<tool>-<hash>: as much of "agent-tool" as fits, and a hash of
	 * the whole reference, so that tools that sanitise alike stay distinct */
	snprintf(key, sizeof(key), "%s/%s\n%s\n%s", b->src_ns ? b->src_ns : "", b->name, server,
		 tool);
	snprintf(full, sizeof(full), "%s-%s", b->name, strcmp(tool, "*") ? tool : "all");
	kc_dns_name(name, sizeof(name), full, key);
	tp = object("ToolPolicy", name, b);
	json_object_set_new(tp, "spec",
			    json_pack("{s:{s:s,s:s,s:{s:s}}}", "appliesTo", "tool", tool,
				      "mcpServer", server, "sandboxMatchLabels", KARS_SANDBOX_LABEL,
				      b->name));
	if (approval)
		json_object_set_new(json_object_get(tp, "spec"), "approval",
				    json_pack("{s:s}", "mode", "always"));
	json_array_append_new(b->objs_tp, tp);
	(void)c;
}

static void one_tool(struct kc *c, struct input *in, json_t *item, const char *path,
		     struct bundle *b)
{
	char p[512], q[512];
	const char *type = kc_take_str(c, item, path, "type");
	json_t *ms, *tools, *approve, *agent = json_object_get(item, "agent");
	const char *server, *kind, *sns;
	int idx;

	if ((type && strcmp(type, "Agent") == 0) || (!type && agent)) {
		const char *an = json_string_value(json_object_get(agent, "name"));

		kc_add(c, KARS_CONV_LOSSY, path,
		       "Agent %s as a tool: kars has no Agent-as-tool; reach it over A2A (an "
		       "A2AAgent)",
		       an ? an : "(unnamed)");
		json_object_clear(item);
		return;
	}
	if (type && strcmp(type, "McpServer")) {
		kc_fail(c, "%s.type \"%.64s\": expected McpServer or Agent", path, type);
		return;
	}
	kc_path(p, sizeof(p), path, "mcpServer");
	ms = kc_take_obj(c, item, path, "mcpServer");
	if (!ms) {
		if (!c->ret)
			kc_fail(c, "%s: Required value", p);
		return;
	}
	server = kc_take_str(c, ms, p, "name");
	kind = kc_take_str(c, ms, p, "kind");
	kc_take_str(c, ms, p, "apiGroup");
	sns = kc_take_str(c, ms, p, "namespace");
	tools = kc_take_arr(c, ms, p, "toolNames");
	approve = kc_take_arr(c, ms, p, "requireApproval");
	if (c->ret)
		return;
	if (!server || !kc_is_dns_label(server, 63)) {
		kc_fail(c, "%s.name: Required, a DNS label", p);
		return;
	}
	if (strings(c, tools, kc_path(q, sizeof(q), p, "toolNames"), 253) ||
	    strings(c, approve, kc_path(q, sizeof(q), p, "requireApproval"), 253))
		return;
	for (size_t i = 0; i < json_array_size(approve); i++)
		if (!in_list(tools, json_string_value(json_array_get(approve, i)))) {
			kc_fail(c, "%s.requireApproval[%zu] \"%s\": must also be in toolNames", p,
				i, json_string_value(json_array_get(approve, i)));
			return;
		}
	if (sns && !same_ns(sns, b->src_ns))
		kc_add(c, KARS_CONV_NOTE, kc_path(q, sizeof(q), p, "namespace"),
		       "%s: a sandbox's McpServers are in its own namespace", sns);
	if (!in_list(b->mcp_refs, server) && json_array_size(b->mcp_refs) < 8)
		json_array_append_new(b->mcp_refs, json_string(server));
	else if (!in_list(b->mcp_refs, server))
		kc_add(c, KARS_CONV_LOSSY, p, "%s: a sandbox may use at most 8 McpServers", server);
	if (json_array_size(tools) == 0) {
		tool_policy(c, b, server, "*", false);
	} else {
		for (size_t i = 0; i < json_array_size(tools); i++) {
			const char *t = json_string_value(json_array_get(tools, i));

			tool_policy(c, b, server, t, in_list(approve, t));
		}
	}
	idx = find(in, "RemoteMCPServer", server, sns ? sns : b->src_ns);
	if (idx >= 0 && (!kind || strcmp(kind, "RemoteMCPServer") == 0)) {
		json_t *allowed =
		    json_array_size(tools) ? json_incref(tools) : json_pack("[s]", "*");

		mcp_server(c, in, idx, server, allowed, b);
		json_decref(allowed);
	} else {
		kc_add(c, KARS_CONV_NOTE, p,
		       "%s %s: no McpServer is emitted, its URL is not in the input (add the "
		       "RemoteMCPServer to the input, or create the McpServer)",
		       kind ? kind : "MCPServer", server);
	}
	kc_leftovers(c, ms, p);
}

static bool pinned(const char *img)
{
	const char *slash = strrchr(img, '/'), *colon = strrchr(img, ':');

	return strstr(img, "@sha256:") || (colon && colon[1] && (!slash || colon > slash));
}

static bool env_name_ok(const char *k)
{
	if (!*k || strlen(k) > 255 || (*k >= '0' && *k <= '9'))
		return false;
	for (; *k; k++)
		if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') ||
		      (*k >= '0' && *k <= '9') || *k == '_'))
			return false;
	return true;
}

static json_t *byo_runtime(struct kc *c, json_t *byo, json_t *ks_spec, json_t *sb)
{
	static const char dp[] = "spec.byo.deployment";
	json_t *dep = kc_take_obj(c, byo, "spec.byo", "deployment"), *blk, *env, *v, *res;
	const char *image, *cmd, *k;

	if (!dep) {
		if (!c->ret)
			kc_fail(c, "%s: Required value when spec.type is BYO", dp);
		return NULL;
	}
	image = kc_take_str(c, dep, dp, "image");
	cmd = kc_take_str(c, dep, dp, "cmd");
	v = kc_take_arr(c, dep, dp, "args");
	if (c->ret || strings(c, v, "spec.byo.deployment.args", 32768))
		return NULL;
	if (json_array_size(v) > 256) {
		kc_fail(c, "%s.args: at most 256 arguments", dp);
		return NULL;
	}
	if (!image || !*image || strlen(image) > 512) {
		kc_fail(c, "%s.image: Required value", dp);
		return NULL;
	}
	if (!pinned(image)) {
		kc_fail(c,
			"%s.image \"%.200s\": kars runs BYO images by tag or digest, never an "
			"implicit :latest",
			dp, image);
		return NULL;
	}
	blk = json_pack("{s:s}", "image", image);
	if (cmd)
		json_object_set_new(blk, "command", json_pack("[s]", cmd));
	if (json_array_size(v))
		json_object_set(blk, "args", v);
	env = kc_take_arr(c, dep, dp, "env");
	if (env) {
		json_t *map = kc_env_map(c, env, "spec.byo.deployment.env"), *list = json_array();

		json_object_foreach(map, k, v)
		{
			if (!env_name_ok(k) || json_string_length(v) > 32768)
				kc_add(c, KARS_CONV_LOSSY, "spec.byo.deployment.env",
				       "%.64s: a BYO runtime takes names matching "
				       "^[A-Za-z_][A-Za-z0-9_]*$ and values of at most 32 KiB",
				       k);
			else
				json_array_append_new(
				    list, json_pack("{s:s,s:O}", "name", k, "value", v));
		}
		if (json_array_size(list))
			json_object_set(blk, "env", list);
		json_decref(list);
		json_decref(map);
	}
	json_object_set_new(blk, "contractVersion", json_string("v1"));
	kc_add(c, KARS_CONV_NOTE, "spec.byo.deployment.image",
	       "%s runs as a kars BYO runtime: it must implement the kars runtime contract v1",
	       image);
	res = kc_take_obj(c, dep, dp, "resources");
	if (res && (res = kc_resources(c, res, "spec.byo.deployment.resources")))
		json_object_set_new(ks_spec, "resources", res);
	kc_posture(c, kc_take_obj(c, dep, dp, "securityContext"),
		   "spec.byo.deployment.securityContext",
		   kc_take_obj(c, dep, dp, "podSecurityContext"),
		   "spec.byo.deployment.podSecurityContext", sb);
	kc_leftovers(c, dep, dp);
	return json_pack("{s:s,s:o}", "kind", "BYO", "byo", blk);
}

static json_t *declarative_runtime(struct kc *c, const struct kars_conv_opts *o, json_t *decl,
				   json_t *ks_spec, json_t *sb)
{
	static const char dp[] = "spec.declarative.deployment";
	json_t *dep = kc_take_obj(c, decl, "spec.declarative", "deployment"), *oc = json_object();
	json_t *env, *res;

	if (o->image)
		json_object_set_new(oc, "image", json_string(o->image));
	if (dep) {
		env = kc_take_arr(c, dep, dp, "env");
		if (env) {
			json_t *map = kc_env_map(c, env, "spec.declarative.deployment.env");

			if (json_object_size(map))
				json_object_set(oc, "extraEnv", map);
			json_decref(map);
		}
		res = kc_take_obj(c, dep, dp, "resources");
		if (res && (res = kc_resources(c, res, "spec.declarative.deployment.resources")))
			json_object_set_new(ks_spec, "resources", res);
		kc_posture(c, kc_take_obj(c, dep, dp, "securityContext"),
			   "spec.declarative.deployment.securityContext",
			   kc_take_obj(c, dep, dp, "podSecurityContext"),
			   "spec.declarative.deployment.podSecurityContext", sb);
		kc_leftovers(c, dep, dp);
	}
	if (!json_object_size(oc)) {
		json_decref(oc);
		return json_pack("{s:s}", "kind", "OpenClaw");
	}
	return json_pack("{s:s,s:o}", "kind", "OpenClaw", "openclaw", oc);
}

static void annotate(struct kc *c, json_t *md, const char *ns, const char *name, const char *desc,
		     const struct kars_conv_opts *o)
{
	json_t *ann = json_object_get(md, "annotations"), *labels = json_object_get(md, "labels");
	const char *have = json_string_value(json_object_get(labels, KARS_SANDBOX_LABEL));
	char ref[400];

	if (have && strcmp(have, name)) {
		kc_fail(c, "metadata.labels[%s] \"%.64s\": must be the Agent's name (%s)",
			KARS_SANDBOX_LABEL, have, name);
		return;
	}
	if (!labels)
		json_object_set_new(md, "labels", labels = json_object());
	json_object_set_new(labels, KARS_SANDBOX_LABEL, json_string(name));
	if (!ann)
		json_object_set_new(md, "annotations", ann = json_object());
	json_object_set_new(ann, KARS_ANN_MIGRATED_FROM, json_string(KAGENT_API_VERSION "/Agent"));
	if (o->date)
		json_object_set_new(ann, KARS_ANN_MIGRATED_AT, json_string(o->date));
	snprintf(ref, sizeof(ref), "%s%s%s", ns ? ns : "", ns ? "/" : "", name);
	json_object_set_new(ann, KARS_ANN_KAGENT_AGENT, json_string(ref));
	if (desc && strlen(desc) <= DESC_MAX)
		json_object_set_new(ann, KARS_ANN_KAGENT_DESC, json_string(desc));
	else if (desc)
		kc_add(c, KARS_CONV_LOSSY, "spec.description",
		       "longer than %d bytes, too long for the %s annotation", DESC_MAX,
		       KARS_ANN_KAGENT_DESC);
}

static int one_agent(struct input *in, size_t di, const struct kars_conv_opts *o, json_t *out,
		     struct kars_conv_report *r, struct kars_err *err)
{
	const json_t *doc = json_array_get(in->docs, di);
	json_t *rest = json_deep_copy(doc), *md, *spec, *decl = NULL, *byo = NULL, *tools;
	json_t *sb = json_object(), *rt = NULL, *model = NULL, *ip, *gov;
	struct bundle b = {.ks_spec = json_object(),
			   .objs_mcp = json_array(),
			   .objs_tp = json_array(),
			   .mcp_refs = json_array()};
	const char *type, *desc, *mc = NULL, *src_ns = md_get(doc, "namespace");
	char label[256], p[512];
	struct kc c;
	size_t i;

	snprintf(label, sizeof(label), "Agent %s%s%.100s (document %zu)", src_ns ? src_ns : "",
		 src_ns ? "/" : "", md_get(doc, "name") ?: "(no name)", di + 1);
	kc_init(&c, r, err, label);
	c.reasons = agent_reasons;
	json_object_del(rest, "apiVersion");
	json_object_del(rest, "kind");
	json_object_del(rest, "status");
	md = kc_metadata(&c, rest, o->ns, 58);
	b.name = json_string_value(json_object_get(md, "name"));
	b.ns = json_string_value(json_object_get(md, "namespace"));
	b.src_ns = src_ns;
	spec = kc_take_obj(&c, rest, "", "spec");
	if (!spec && !c.ret)
		kc_fail(&c, "spec: Required value");
	type = kc_take_str(&c, spec, "spec", "type");
	desc = kc_take_str(&c, spec, "spec", "description");
	if (c.ret)
		goto out;
	annotate(&c, md, src_ns, b.name, desc, o);
	if (!type)
		type = "Declarative";
	json_object_set_new(sb, "isolation", json_string(o->isolation ? o->isolation : "enhanced"));
	if (strcmp(type, "Declarative") == 0) {
		decl = kc_take_obj(&c, spec, "spec", "declarative");
		if (!decl && !c.ret)
			kc_fail(&c,
				"spec.declarative: Required value when spec.type is Declarative");
		if (c.ret)
			goto out;
		mc = kc_take_str(&c, decl, "spec.declarative", "modelConfig");
		if (!mc)
			mc = "default-model-config";
		rt = declarative_runtime(&c, o, decl, b.ks_spec, sb);
	} else if (strcmp(type, "BYO") == 0) {
		byo = kc_take_obj(&c, spec, "spec", "byo");
		if (!byo && !c.ret)
			kc_fail(&c, "spec.byo: Required value when spec.type is BYO");
		if (c.ret)
			goto out;
		rt = byo_runtime(&c, byo, b.ks_spec, sb);
		kc_leftovers(&c, byo, "spec.byo");
	} else {
		kc_fail(&c, "spec.type \"%.64s\": expected Declarative or BYO", type);
	}
	if (c.ret)
		goto out;
	/* the model: the Agent's ModelConfig in this input, else --model, else refuse */
	if (mc && find(in, "ModelConfig", mc, src_ns) >= 0) {
		model = model_of(&c, in, find(in, "ModelConfig", mc, src_ns));
		if (model && o->model)
			kc_add(&c, KARS_CONV_NOTE, "spec.declarative.modelConfig",
			       "--model %s not used: ModelConfig %s in the input names the model",
			       o->model, mc);
	} else if (o->model) {
		model = kars_conv_parse_model(o->model, err);
		if (!model)
			c.ret = -EINVAL;
	} else {
		if (mc)
			kc_fail(&c,
				"no model: ModelConfig \"%s\" is not in the input; add it to the "
				"input, or pass --model [PROVIDER/]DEPLOYMENT",
				mc);
		else
			kc_fail(&c, "no model: a BYO Agent names none; pass --model "
				    "[PROVIDER/]DEPLOYMENT");
	}
	if (c.ret)
		goto out;
	b.ks = json_pack("{s:s,s:s,s:O,s:O}", "apiVersion", KARS_API_VERSION, "kind", "KarsSandbox",
			 "metadata", md, "spec", b.ks_spec);
	json_object_set_new(b.ks_spec, "runtime", rt);
	rt = NULL;
	json_object_set(b.ks_spec, "sandbox", sb);
	json_object_set_new(b.ks_spec, "inferenceRef",
			    json_pack("{s:s+}", "name", b.name, "-inference"));
	/* resources were set earlier: keep the schema's order readable */
	if (json_object_get(b.ks_spec, "resources")) {
		json_t *res = json_incref(json_object_get(b.ks_spec, "resources"));

		json_object_del(b.ks_spec, "resources");
		json_object_set_new(b.ks_spec, "resources", res);
	}
	if (decl) {
		const char *sm = kc_take_str(&c, decl, "spec.declarative", "systemMessage");

		if (sm && strlen(sm) <= 65536)
			json_object_set_new(b.ks_spec, "agent",
					    json_pack("{s:s}", "instructions", sm));
		else if (sm)
			kc_add(&c, KARS_CONV_LOSSY, "spec.declarative.systemMessage",
			       "longer than the 65536 bytes of spec.agent.instructions");
		tools = kc_take_arr(&c, decl, "spec.declarative", "tools");
		json_array_foreach(tools, i, gov)
		{
			kc_index(p, sizeof(p), "spec.declarative.tools", i);
			if (!json_is_object(gov)) {
				kc_fail(&c, "%s: expected an object", p);
				break;
			}
			one_tool(&c, in, gov, p, &b);
			kc_leftovers(&c, gov, p);
		}
		kc_leftovers(&c, decl, "spec.declarative");
	}
	gov = json_pack("{s:b}", "enabled", 1);
	if (json_array_size(b.mcp_refs)) {
		json_t *refs = json_array(), *v;

		json_array_foreach(b.mcp_refs, i, v)
		    json_array_append_new(refs, json_pack("{s:O}", "name", v));
		json_object_set_new(gov, "mcpServerRefs", refs);
	}
	json_object_set_new(b.ks_spec, "governance", gov);
	json_object_set_new(b.ks_spec, "upstreamCompatibility",
			    json_pack("{s:s}", "sigsAgentSandbox", "off"));
	kc_leftovers(&c, spec, "spec");
	kc_leftovers(&c, rest, "");
	if (c.ret)
		goto out;
	ip = object(
	    "InferencePolicy",
	    json_string_value(json_object_get(json_object_get(b.ks_spec, "inferenceRef"), "name")),
	    &b);
	json_object_set_new(ip, "spec",
			    json_pack("{s:{s:s},s:{s:O}}", "appliesTo", "sandboxName", b.name,
				      "modelPreference", "primary", model));
	json_array_append(out, b.ks);
	json_array_append_new(out, ip);
	json_array_extend(out, b.objs_mcp);
	json_array_extend(out, b.objs_tp);
out:
	json_decref(b.ks);
	json_decref(b.ks_spec);
	json_decref(b.objs_mcp);
	json_decref(b.objs_tp);
	json_decref(b.mcp_refs);
	json_decref(md);
	json_decref(sb);
	json_decref(rt);
	json_decref(model);
	json_decref(rest);
	kc_done(&c);
	return c.ret;
}

int kars_convert_kagent(const json_t *docs, const struct kars_conv_opts *o, json_t **out,
			struct kars_conv_report *r, struct kars_err *err)
{
	size_t n = json_array_size(docs), agents = 0, i;
	struct input in = {.docs = docs,
			   .used = calloc(n + 1, sizeof(bool)),
			   .reported = calloc(n + 1, sizeof(bool))};
	const json_t *d;
	char type[300];
	int ret = 0;

	*out = json_array();
	if (!in.used || !in.reported) {
		ret = kars_err_set(err, ENOMEM, "out of memory");
		goto out;
	}
	json_array_foreach(docs, i, d)
	{
		if (is_kagent(d, "Agent"))
			agents++;
		else if (!is_kagent(d, "ModelConfig") && !is_kagent(d, "RemoteMCPServer")) {
			ret = kars_err_set(err, EINVAL,
					   "document %zu: %s is not a " KAGENT_API_VERSION
					   " Agent, ModelConfig or RemoteMCPServer",
					   i + 1, kars_conv_type_of(d, type, sizeof(type)));
			goto out;
		}
	}
	if (!agents) {
		ret = kars_err_set(err, EINVAL, "no " KAGENT_API_VERSION " Agent in the input");
		goto out;
	}
	json_array_foreach(docs, i, d)
	{
		if (is_kagent(d, "Agent") && (ret = one_agent(&in, i, o, *out, r, err)))
			goto out;
	}
	json_array_foreach(docs, i, d)
	{
		if (!is_kagent(d, "Agent") && !in.used[i]) {
			struct kc c;
			char label[300];

			snprintf(label, sizeof(label), "%s %.100s (document %zu)",
				 json_string_value(json_object_get(d, "kind")),
				 md_get(d, "name") ?: "(no name)", i + 1);
			kc_init(&c, r, err, label);
			kc_add(&c, KARS_CONV_NOTE, "",
			       "no Agent in the input uses it; not converted");
			kc_done(&c);
		}
	}
out:
	if (ret) {
		json_decref(*out);
		*out = NULL;
	}
	free(in.used);
	free(in.reported);
	return ret;
}
