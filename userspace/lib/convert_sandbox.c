/* convert_sandbox.c - agents.x-k8s.io/v1alpha1 Sandbox <-> KarsSandbox
 * (convert.h), for `kars convert`.
 *
 * Sandbox -> KarsSandbox: the first container becomes an OpenClaw runtime
 * (image, env as extraEnv), its resources and securityContext become
 * spec.resources and spec.sandbox, runtimeClassName kata-vm-isolation is
 * confidential isolation, replicas 0 is suspended. In native and translate
 * mode kars owns the pod, so every other field of the pod is lost and
 * reported as lossy; in observe and overlay mode the upstream Sandbox keeps
 * owning the pod, so they are only noted. KarsSandbox -> Sandbox is the
 * inverse, with the posture made explicit (kars's hardened defaults, never
 * the pod's weaker ones) and every kars-only field reported.
 */
#include "convert_priv.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "validate.h"

#define CONFIDENTIAL_RUNTIME_CLASS "kata-vm-isolation"
#define AGENT_CONTAINER		   "agent"

#define PLACEMENT "placement follows the isolation level (spec.sandbox.isolation)"
#define HOST_NS	  "a sandbox never shares the host's namespaces"
#define DNS	  "the sandbox resolves names through kars's resolver"
#define SA	  "the sandbox runs as its own service account, with no API token for the agent"
#define PROBES	  "the controller derives readiness from the sandbox's router"
#define STARTUP	  "kars starts the sandbox's containers itself (the agent and its router)"
#define RUNTIME_CLASS                                                                              \
	"only " CONFIDENTIAL_RUNTIME_CLASS " (confidential) is carried; the isolation level "      \
	"picks the runtime class"
#define NO_VOLUMES                                                                                 \
	"kars mounts the sandbox's file systems itself; the agent writes only "                    \
	"spec.sandbox.writablePaths"

static const struct kc_reason up_reasons[] = {
    {"spec.podTemplate.metadata", "the pod's labels and annotations are the kars controller's"},
    {"spec.volumeClaimTemplates", NO_VOLUMES},
    {"spec.shutdownTime", "a KarsSandbox does not expire: delete it, or set spec.suspended"},
    {"spec.shutdownPolicy", "a KarsSandbox does not expire: delete it, or set spec.suspended"},
    {"spec.podTemplate.spec.initContainers", STARTUP},
    {"spec.podTemplate.spec.ephemeralContainers", STARTUP},
    {"spec.podTemplate.spec.volumes", NO_VOLUMES},
    {"spec.podTemplate.spec.containers[].volumeMounts", NO_VOLUMES},
    {"spec.podTemplate.spec.containers[].volumeDevices", NO_VOLUMES},
    {"spec.podTemplate.spec.containers[].command",
     "an OpenClaw runtime has no command (a BYO KarsSandbox has one)"},
    {"spec.podTemplate.spec.containers[].args",
     "an OpenClaw runtime has no arguments (a BYO KarsSandbox has them)"},
    {"spec.podTemplate.spec.containers[].ports",
     "the agent is reached through its router (port 8443), never directly"},
    {"spec.podTemplate.spec.containers[].livenessProbe", PROBES},
    {"spec.podTemplate.spec.containers[].readinessProbe", PROBES},
    {"spec.podTemplate.spec.containers[].startupProbe", PROBES},
    {"spec.podTemplate.spec.containers[].lifecycle", STARTUP},
    {"spec.podTemplate.spec.serviceAccountName", SA},
    {"spec.podTemplate.spec.serviceAccount", SA},
    {"spec.podTemplate.spec.automountServiceAccountToken", SA},
    {"spec.podTemplate.spec.hostNetwork", HOST_NS},
    {"spec.podTemplate.spec.hostPID", HOST_NS},
    {"spec.podTemplate.spec.hostIPC", HOST_NS},
    {"spec.podTemplate.spec.hostUsers", HOST_NS},
    {"spec.podTemplate.spec.shareProcessNamespace", HOST_NS},
    {"spec.podTemplate.spec.hostAliases", DNS},
    {"spec.podTemplate.spec.hostname", DNS},
    {"spec.podTemplate.spec.subdomain", DNS},
    {"spec.podTemplate.spec.setHostnameAsFQDN", DNS},
    {"spec.podTemplate.spec.dnsPolicy", DNS},
    {"spec.podTemplate.spec.dnsConfig", DNS},
    {"spec.podTemplate.spec.nodeSelector", PLACEMENT},
    {"spec.podTemplate.spec.nodeName", PLACEMENT},
    {"spec.podTemplate.spec.affinity", PLACEMENT},
    {"spec.podTemplate.spec.tolerations", PLACEMENT},
    {"spec.podTemplate.spec.schedulerName", PLACEMENT},
    {"spec.podTemplate.spec.priorityClassName", PLACEMENT},
    {"spec.podTemplate.spec.priority", PLACEMENT},
    {"spec.podTemplate.spec.preemptionPolicy", PLACEMENT},
    {"spec.podTemplate.spec.topologySpreadConstraints", PLACEMENT},
    {"spec.podTemplate.spec.schedulingGates", PLACEMENT},
    {"spec.podTemplate.spec.overhead", PLACEMENT},
    {"spec.podTemplate.spec.os", "kars sandboxes are Linux only"},
    {"spec.podTemplate.spec.imagePullSecrets", "image pull credentials are the cluster's"},
    {NULL, NULL},
};

static const struct kc_reason ks_reasons[] = {
    {"spec.inferenceRef", "an upstream Sandbox has no inference router: no model, token budget "
			  "or content safety"},
    {"spec.governance", "an upstream Sandbox has no tool governance"},
    {"spec.networkPolicy", "an upstream Sandbox has no egress policy"},
    {"spec.a2a", "an upstream Sandbox publishes no A2A agent card"},
    {"spec.meshAuth", "an upstream Sandbox is not in the agent mesh"},
    {"spec.memoryRef", "an upstream Sandbox has no memory binding"},
    {"spec.agent", "an upstream Sandbox has no agent settings"},
    {"spec.azureServices", "an upstream Sandbox has no Azure identity"},
    {"spec.upstreamCompatibility", "the relation of a KarsSandbox to an upstream Sandbox"},
    {"spec.sandbox.writablePaths", "an upstream Sandbox has no list of writable paths"},
    {"spec.runtime.openclaw.version", "the image pins the version"},
    {"spec.runtime.openclaw.config", "the OpenClaw configuration is kars's adapter's"},
    {"spec.runtime.byo.contractVersion", "an upstream Sandbox has no runtime contract"},
    {NULL, NULL},
};

static const char *mode_word(enum kars_conv_mode m)
{
	return m == KARS_MODE_TRANSLATE ? "translate"
	       : m == KARS_MODE_OBSERVE ? "observe"
	       : m == KARS_MODE_OVERLAY ? "overlay"
					: "off";
}

static void doc_label(char *buf, size_t len, const char *kind, const json_t *in)
{
	const json_t *md = json_object_get(in, "metadata");
	const char *ns = json_string_value(json_object_get(md, "namespace"));
	const char *name = json_string_value(json_object_get(md, "name"));

	snprintf(buf, len, "%s %s%s%.100s", kind, ns ? ns : "", ns ? "/" : "",
		 name ? name : "(no name)");
}

/* The isolation level: --isolation, else the runtime class. */
static const char *isolation_of(struct kc *c, const struct kars_conv_opts *o, const char *rc,
				const char *rc_path)
{
	bool kata = rc && strcmp(rc, CONFIDENTIAL_RUNTIME_CLASS) == 0;

	if (rc && !kata)
		kc_add(c, c->dropped, rc_path, "\"%s\": %s", rc, c->all ? c->all : RUNTIME_CLASS);
	if (o->isolation) {
		if (kata && strcmp(o->isolation, "confidential"))
			kc_add(c, KARS_CONV_NOTE, rc_path,
			       CONFIDENTIAL_RUNTIME_CLASS " replaced by --isolation %s",
			       o->isolation);
		return o->isolation;
	}
	return kata ? "confidential" : NULL;
}

static json_t *inference_policy(const json_t *md, const char *name, const json_t *model,
				const char *from)
{
	json_t *ip_md = json_pack("{s:s+}", "name", name, "-inference");

	if (json_object_get(md, "namespace"))
		json_object_set(ip_md, "namespace", json_object_get(md, "namespace"));
	json_object_set_new(ip_md, "annotations", json_pack("{s:s}", KARS_ANN_CONVERTED, from));
	return json_pack("{s:s,s:s,s:o,s:{s:{s:s},s:{s:O}}}", "apiVersion", KARS_API_VERSION,
			 "kind", "InferencePolicy", "metadata", ip_md, "spec", "appliesTo",
			 "sandboxName", name, "modelPreference", "primary", model);
}

static void agent_container(struct kc *c, json_t *ctr, const char *path, json_t *openclaw,
			    json_t *spec, json_t *sb, json_t *psc, const char *psc_path)
{
	char p[512], q[512];
	const char *name = kc_take_str(c, ctr, path, "name");
	const char *image = kc_take_str(c, ctr, path, "image");
	json_t *env = kc_take_arr(c, ctr, path, "env");
	json_t *res = kc_take_obj(c, ctr, path, "resources");
	json_t *sc = kc_take_obj(c, ctr, path, "securityContext");

	if (name && strcmp(name, AGENT_CONTAINER))
		kc_add(c, c->dropped, kc_path(p, sizeof(p), path, "name"),
		       "\"%s\": kars names the agent's container \"" AGENT_CONTAINER "\"", name);
	if (!image && !c->ret)
		kc_fail(c, "%s: Required value", kc_path(p, sizeof(p), path, "image"));
	else if (image && strlen(image) > 512)
		kc_fail(c, "%s: longer than 512 characters", kc_path(p, sizeof(p), path, "image"));
	if (image)
		json_object_set_new(openclaw, "image", json_string(image));
	if (env) {
		json_t *m = kc_env_map(c, env, kc_path(p, sizeof(p), path, "env"));

		if (json_object_size(m))
			json_object_set(openclaw, "extraEnv", m);
		json_decref(m);
	}
	if (res) {
		json_t *r = kc_resources(c, res, kc_path(p, sizeof(p), path, "resources"));

		if (r)
			json_object_set_new(spec, "resources", r);
	}
	kc_posture(c, sc, kc_path(q, sizeof(q), path, "securityContext"), psc, psc_path, sb);
	kc_leftovers(c, ctr, path);
}

int kars_convert_sandbox_to_kars(const json_t *in, const struct kars_conv_opts *o, json_t **out,
				 struct kars_conv_report *r, struct kars_err *err)
{
	static const char pod_path[] = "spec.podTemplate.spec";
	json_t *rest = json_deep_copy(in), *md, *spec, *pt, *pod, *cs, *ks = NULL, *ks_spec, *sb;
	json_t *openclaw = json_object(), *rep, *ctr;
	const char *name, *iso, *rc;
	char doc[256], ref[320], p[512];
	struct kc c;
	size_t i;

	doc_label(doc, sizeof(doc), "Sandbox", in);
	kc_init(&c, r, err, doc);
	c.reasons = up_reasons;
	c.dflt = "kars has no field for it";
	if (o->mode == KARS_MODE_OVERLAY || o->mode == KARS_MODE_OBSERVE) {
		c.dropped = KARS_CONV_NOTE;
		c.all = o->mode == KARS_MODE_OVERLAY
			    ? "kept by the upstream Sandbox, which owns the pod in overlay mode"
			    : "kept by the upstream Sandbox, which owns the pod in observe mode";
	}
	*out = NULL;
	json_object_del(rest, "apiVersion");
	json_object_del(rest, "kind");
	json_object_del(rest, "status");
	md = kc_metadata(&c, rest, o->ns, 58);
	name = json_string_value(json_object_get(md, "name"));
	spec = kc_take_obj(&c, rest, "", "spec");
	pt = kc_take_obj(&c, spec, "spec", "podTemplate");
	pod = kc_take_obj(&c, pt, "spec.podTemplate", "spec");
	cs = kc_take_arr(&c, pod, pod_path, "containers");
	if (!c.ret && (!cs || !json_array_size(cs)))
		kc_fail(&c, "%s.containers: Required value", pod_path);
	if (c.ret)
		goto out;
	ks_spec = json_object();
	sb = json_object();
	rc = kc_take_str(&c, pod, pod_path, "runtimeClassName");
	iso = isolation_of(&c, o, rc, "spec.podTemplate.spec.runtimeClassName");
	if (iso)
		json_object_set_new(sb, "isolation", json_string(iso));
	ks = json_pack("{s:s,s:s,s:o,s:o}", "apiVersion", KARS_API_VERSION, "kind", "KarsSandbox",
		       "metadata", md, "spec", ks_spec);
	md = NULL;
	json_object_set_new(ks_spec, "runtime",
			    json_pack("{s:s,s:o}", "kind", "OpenClaw", "openclaw", openclaw));
	openclaw = json_incref(json_object_get(json_object_get(ks_spec, "runtime"), "openclaw"));
	json_object_set_new(ks_spec, "sandbox", sb);
	json_object_set_new(ks_spec, "inferenceRef",
			    json_pack("{s:s+}", "name", name, "-inference"));
	ctr = json_array_get(cs, 0);
	if (!json_is_object(ctr)) {
		kc_fail(&c, "%s.containers[0]: expected an object", pod_path);
		goto out;
	}
	agent_container(&c, ctr, "spec.podTemplate.spec.containers[0]", openclaw, ks_spec, sb,
			kc_take_obj(&c, pod, pod_path, "securityContext"),
			"spec.podTemplate.spec.securityContext");
	if (!json_object_size(openclaw))
		json_object_del(json_object_get(ks_spec, "runtime"), "openclaw");
	for (i = 1; i < json_array_size(cs); i++)
		kc_add(&c, c.dropped, kc_index(p, sizeof(p), "spec.podTemplate.spec.containers", i),
		       "%s", c.all ? c.all : "only the first container becomes the agent");
	rep = kc_take(&c, spec, "replicas");
	if (rep &&
	    (!json_is_integer(rep) || json_integer_value(rep) < 0 || json_integer_value(rep) > 1))
		kc_fail(&c, "spec.replicas: must be 0 or 1");
	else if (rep)
		json_object_set_new(ks_spec, "suspended",
				    json_boolean(json_integer_value(rep) == 0));
	if (o->mode != KARS_MODE_NATIVE) {
		const char *src_ns = json_string_value(
		    json_object_get(json_object_get(in, "metadata"), "namespace"));

		if (o->sandbox_ref)
			snprintf(ref, sizeof(ref), "%s", o->sandbox_ref);
		else
			snprintf(ref, sizeof(ref), "%s%s%s", src_ns ? src_ns : "",
				 src_ns ? "/" : "", name);
		json_object_set_new(ks_spec, "upstreamCompatibility",
				    json_pack("{s:s,s:s}", "sigsAgentSandbox", mode_word(o->mode),
					      "upstreamSandboxRef", ref));
	}
	kc_leftovers(&c, pod, pod_path);
	kc_leftovers(&c, pt, "spec.podTemplate");
	kc_leftovers(&c, spec, "spec");
	kc_leftovers(&c, rest, "");
	if (c.ret)
		goto out;
	md = json_object_get(ks, "metadata");
	if (!json_object_get(md, "annotations"))
		json_object_set_new(md, "annotations", json_object());
	json_object_set_new(json_object_get(md, "annotations"), KARS_ANN_CONVERTED,
			    json_string(UPSTREAM_API_VERSION "/Sandbox"));
	md = NULL;
	*out = json_pack("[O]", ks);
	if (o->model) {
		json_t *model = kars_conv_parse_model(o->model, err);

		if (!model) {
			c.ret = -EINVAL;
			goto out;
		}
		json_array_append_new(*out,
				      inference_policy(json_object_get(ks, "metadata"), name, model,
						       UPSTREAM_API_VERSION "/Sandbox"));
		json_decref(model);
	} else {
		kc_add(&c, KARS_CONV_NOTE, "spec.inferenceRef",
		       "names InferencePolicy %s-inference, which is not emitted without --model; "
		       "the sandbox stays Degraded until it exists",
		       name);
	}
out:
	if (c.ret) {
		json_decref(*out);
		*out = NULL;
	}
	json_decref(md);
	json_decref(ks);
	json_decref(openclaw);
	json_decref(rest);
	kc_done(&c);
	return c.ret;
}

/* --- KarsSandbox -> Sandbox ------------------------------------------------ */

static json_t *env_list(const json_t *map)
{
	json_t *list = json_array(), *v;
	const char *k;

	json_object_foreach((json_t *)map, k, v)
	    json_array_append_new(list, json_pack("{s:s,s:O}", "name", k, "value", v));
	return list;
}

static int runtime_container(struct kc *c, json_t *rt, json_t *ctr)
{
	const char *kind = kc_take_str(c, rt, "spec.runtime", "kind");
	char p[64];
	json_t *blk, *v;

	if (!kind)
		return kc_fail(c, "spec.runtime.kind: Required value");
	if (strcmp(kind, "OpenClaw") && strcmp(kind, "BYO"))
		return kc_fail(c,
			       "spec.runtime.kind %s: only OpenClaw and BYO runtimes are a plain "
			       "image an upstream Sandbox can run",
			       kind);
	snprintf(p, sizeof(p), "spec.runtime.%s", strcmp(kind, "BYO") ? "openclaw" : "byo");
	blk = kc_take_obj(c, rt, "spec.runtime", strcmp(kind, "BYO") ? "openclaw" : "byo");
	v = kc_take(c, blk, "image");
	if (!v)
		return kc_fail(c,
			       "%s.image: Required to run it as an upstream Sandbox (kars resolves "
			       "the platform's image itself)",
			       p);
	json_object_set(ctr, "image", v);
	if ((v = kc_take(c, blk, "command")))
		json_object_set(ctr, "command", v);
	if ((v = kc_take(c, blk, "args")))
		json_object_set(ctr, "args", v);
	if ((v = kc_take(c, blk, "env")))
		json_object_set(ctr, "env", v);
	if ((v = kc_take(c, blk, "extraEnv")) && json_object_size(v))
		json_object_set_new(ctr, "env", env_list(v));
	kc_leftovers(c, blk, p);
	return 0;
}

/* Deletes the keys of rest that orig does not have: defaults the validator
 * added, which the user did not write and which are not lost. */
static void drop_defaulted(json_t *rest, const json_t *orig)
{
	const char *k;
	json_t *v;
	void *tmp;

	json_object_foreach_safe(rest, tmp, k, v)
	{
		if (!json_object_get(orig, k))
			json_object_del(rest, k);
	}
}

/* spec.sandbox, defaults applied, as the container's securityContext. */
static json_t *security_context(struct kc *c, json_t *sb, json_t *pod)
{
	const char *iso = json_string_value(kc_take(c, sb, "isolation"));
	const char *prof = json_string_value(kc_take(c, sb, "seccompProfile"));
	const char *se = json_string_value(kc_take(c, sb, "selinuxContext"));
	json_t *sc = json_object();
	char lp[128];

	json_object_set(sc, "allowPrivilegeEscalation", kc_take(c, sb, "allowPrivilegeEscalation"));
	json_object_set(sc, "readOnlyRootFilesystem", kc_take(c, sb, "readOnlyRootFilesystem"));
	json_object_set(sc, "runAsNonRoot", kc_take(c, sb, "runAsNonRoot"));
	json_object_set_new(sc, "capabilities", json_pack("{s:[s]}", "drop", "ALL"));
	if (strcmp(iso, "standard") == 0) {
		json_object_set_new(sc, "seccompProfile",
				    json_pack("{s:s}", "type", "RuntimeDefault"));
	} else {
		snprintf(lp, sizeof(lp), "profiles/%s.json", prof);
		json_object_set_new(
		    sc, "seccompProfile",
		    json_pack("{s:s,s:s}", "type", "Localhost", "localhostProfile", lp));
	}
	if (strcmp(iso, "confidential") == 0)
		json_object_set_new(pod, "runtimeClassName",
				    json_string(CONFIDENTIAL_RUNTIME_CLASS));
	if (se && *se) {
		char buf[256], *f[4] = {0}, *save = NULL;

		snprintf(buf, sizeof(buf), "%s", se);
		f[0] = strtok_r(buf, ":", &save);
		f[1] = f[0] ? strtok_r(NULL, ":", &save) : NULL;
		f[2] = f[1] ? strtok_r(NULL, ":", &save) : NULL;
		f[3] = f[2] ? strtok_r(NULL, "", &save) : NULL;
		if (f[3])
			json_object_set_new(sc, "seLinuxOptions",
					    json_pack("{s:s,s:s,s:s,s:s}", "user", f[0], "role",
						      f[1], "type", f[2], "level", f[3]));
		else
			kc_add(c, KARS_CONV_LOSSY, "spec.sandbox.selinuxContext",
			       "\"%s\" is not user:role:type:level", se);
	}
	return sc;
}

int kars_convert_kars_to_sandbox(const json_t *in, const struct kars_conv_opts *o, json_t **out,
				 struct kars_conv_report *r, struct kars_err *err)
{
	struct kars_problems prob = {};
	const struct kars_kind *k = NULL;
	json_t *rest = json_deep_copy(in), *md = NULL, *spec, *rt, *sb, *v;
	json_t *ctr = json_pack("{s:s}", "name", AGENT_CONTAINER), *pod = json_object();
	json_t *up_spec = json_object();
	const char *ann;
	char doc[256];
	struct kc c;

	doc_label(doc, sizeof(doc), "KarsSandbox", in);
	kc_init(&c, r, err, doc);
	c.reasons = ks_reasons;
	*out = NULL;
	/* A valid KarsSandbox, defaults applied: the posture is explicit. */
	if (kars_validate_object(rest, &k, &prob)) {
		kc_fail(&c, "not a valid KarsSandbox: %s", prob.count ? prob.msg[0] : "");
		goto out;
	}
	json_object_del(rest, "apiVersion");
	json_object_del(rest, "kind");
	json_object_del(rest, "status");
	md = kc_metadata(&c, rest, o->ns, 63);
	ann = json_string_value(
	    json_object_get(json_object_get(md, "annotations"), KARS_ANN_CONVERTED));
	if (ann && strcmp(ann, UPSTREAM_API_VERSION "/Sandbox") == 0) {
		json_object_del(json_object_get(md, "annotations"), KARS_ANN_CONVERTED);
		if (!json_object_size(json_object_get(md, "annotations")))
			json_object_del(md, "annotations");
	}
	spec = kc_take_obj(&c, rest, "", "spec");
	rt = kc_take_obj(&c, spec, "spec", "runtime");
	if (c.ret || runtime_container(&c, rt, ctr))
		goto out;
	kc_leftovers(&c, rt, "spec.runtime");
	if ((v = kc_take(&c, spec, "resources")))
		json_object_set(ctr, "resources", v);
	sb = kc_take_obj(&c, spec, "spec", "sandbox");
	json_object_set_new(ctr, "securityContext", security_context(&c, sb, pod));
	drop_defaulted(sb, json_object_get(json_object_get(in, "spec"), "sandbox"));
	kc_leftovers(&c, sb, "spec.sandbox");
	json_object_set_new(pod, "containers", json_pack("[O]", ctr));
	json_object_set_new(up_spec, "podTemplate", json_pack("{s:O}", "spec", pod));
	if ((v = kc_take(&c, spec, "suspended")) && json_is_boolean(v) &&
	    json_object_get(json_object_get(in, "spec"), "suspended"))
		json_object_set_new(up_spec, "replicas", json_integer(json_is_true(v) ? 0 : 1));
	drop_defaulted(spec, json_object_get(in, "spec"));
	kc_leftovers(&c, spec, "spec");
	kc_leftovers(&c, rest, "");
	if (c.ret)
		goto out;
	*out = json_pack("[{s:s,s:s,s:O,s:O}]", "apiVersion", UPSTREAM_API_VERSION, "kind",
			 "Sandbox", "metadata", md, "spec", up_spec);
out:
	json_decref(md);
	json_decref(ctr);
	json_decref(pod);
	json_decref(up_spec);
	json_decref(rest);
	kc_done(&c);
	return c.ret;
}
