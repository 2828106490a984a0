/* convert_pod.c - the Kubernetes shapes kagent deployments and upstream
 * Sandboxes share, mapped to a KarsSandbox: a container's securityContext
 * to spec.sandbox, an EnvVar list to extraEnv, ResourceRequirements to
 * spec.resources (convert_priv.h). The reasons for what they cannot carry
 * are here too, matched by path suffix.
 */
#include "convert_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NO_CREDENTIALS                                                                             \
	"Secret, ConfigMap and field references are not carried: the agent holds no "              \
	"credentials, the router brokers them"
#define OWNED_BY_KARS "the sandbox's file ownership and kernel settings are kars's (agent UID 1000)"

const struct kc_reason kc_shared_reasons[] = {
    {".securityContext.capabilities", "the agent runs with no Linux capabilities"},
    {".securityContext.privileged", "kars never runs a privileged agent"},
    {".securityContext.runAsUser", "the agent always runs as UID 1000"},
    {".securityContext.runAsGroup", "the agent always runs as GID 1000"},
    {".securityContext.seLinuxOptions",
     "only a complete user:role:type:level context is carried (spec.sandbox.selinuxContext)"},
    {".securityContext.seccompProfile",
     "only a Localhost profile named by a DNS label is carried (spec.sandbox.seccompProfile)"},
    {".securityContext.fsGroup", OWNED_BY_KARS},
    {".podSecurityContext.fsGroup", OWNED_BY_KARS},
    {".podSecurityContext.fsGroupChangePolicy", OWNED_BY_KARS},
    {".podSecurityContext.supplementalGroups", OWNED_BY_KARS},
    {".podSecurityContext.supplementalGroupsPolicy", OWNED_BY_KARS},
    {".podSecurityContext.sysctls", OWNED_BY_KARS},
    {".podSecurityContext.seLinuxChangePolicy", OWNED_BY_KARS},
    {".podSecurityContext.runAsUser", "the agent always runs as UID 1000"},
    {".podSecurityContext.runAsGroup", "the agent always runs as GID 1000"},
    {".securityContext.fsGroupChangePolicy", OWNED_BY_KARS},
    {".securityContext.supplementalGroups", OWNED_BY_KARS},
    {".securityContext.supplementalGroupsPolicy", OWNED_BY_KARS},
    {".securityContext.sysctls", OWNED_BY_KARS},
    {".securityContext.seLinuxChangePolicy", OWNED_BY_KARS},
    {".securityContext.procMount", "kars mounts /proc itself"},
    {".securityContext.windowsOptions", "kars sandboxes are Linux only"},
    {".securityContext.appArmorProfile",
     "kars confines the agent with seccomp and BPF, not AppArmor"},
    {".resources.claims", "dynamic resource claims are not supported in a sandbox"},
    {".envFrom", NO_CREDENTIALS},
    {NULL, NULL},
};

static const char *const reserved_env[] = {"AGT_",  "FOUNDRY_AGENT_", "AZURE_",
					   "IMDS_", "KARS_",	      NULL};

/* "profiles/x.json", "x.json" or "x" -> "x" if a DNS label. */
static bool profile_name(const char *lp, char *out, size_t len)
{
	const char *base = strrchr(lp, '/') ? strrchr(lp, '/') + 1 : lp;
	size_t n = strlen(base);

	if (n > 5 && strcmp(base + n - 5, ".json") == 0)
		n -= 5;
	if (n >= len)
		return false;
	memcpy(out, base, n);
	out[n] = '\0';
	return kc_is_dns_label(out, 63);
}

static void seccomp(struct kc *c, json_t *sp, const char *path, json_t *sb)
{
	char p[512], name[64];
	const char *type = kc_take_str(c, sp, path, "type");
	const char *lp = kc_take_str(c, sp, path, "localhostProfile");

	if (!type)
		return;
	if (strcmp(type, "Localhost") == 0 && lp && profile_name(lp, name, sizeof(name))) {
		json_object_set_new(sb, "seccompProfile", json_string(name));
	} else if (strcmp(type, "Localhost") == 0) {
		kc_add(c, c->dropped, kc_path(p, sizeof(p), path, "localhostProfile"),
		       "\"%s\" is not a profile named by a DNS label; kars applies the isolation "
		       "level's profile",
		       lp ? lp : "");
	} else {
		kc_add(c, KARS_CONV_NOTE, path,
		       "%s: kars applies the isolation level's seccomp profile instead (enhanced: "
		       "kars-strict)",
		       type);
	}
}

static void selinux(struct kc *c, json_t *so, const char *path, json_t *sb)
{
	const char *f[4] = {0};
	static const char *const keys[] = {"user", "role", "type", "level"};
	char ctx[256];

	for (int i = 0; i < 4; i++)
		if (!json_is_string(json_object_get(so, keys[i])))
			return; /* left over, reported */
	for (int i = 0; i < 4; i++)
		f[i] = kc_take_str(c, so, path, keys[i]);
	if (snprintf(ctx, sizeof(ctx), "%s:%s:%s:%s", f[0], f[1], f[2], f[3]) >= (int)sizeof(ctx)) {
		kc_add(c, c->dropped, path, "longer than 255 characters");
		return;
	}
	json_object_set_new(sb, "selinuxContext", json_string(ctx));
}

void kc_posture(struct kc *c, json_t *sc, const char *sc_path, json_t *psc, const char *psc_path,
		json_t *sb)
{
	static const char *const bools[] = {"readOnlyRootFilesystem", "runAsNonRoot",
					    "allowPrivilegeEscalation", NULL};
	char p[512];
	json_t *v;

	for (const char *const *b = bools; *b; b++) {
		int cv = kc_take_bool(c, sc, sc_path, *b);
		int pv = strcmp(*b, "runAsNonRoot") ? -1 : kc_take_bool(c, psc, psc_path, *b);

		if (cv >= 0 || pv >= 0)
			json_object_set_new(sb, *b, json_boolean(cv >= 0 ? cv : pv));
		if (pv >= 0)
			kc_add(c, KARS_CONV_NOTE, kc_path(p, sizeof(p), psc_path, *b),
			       "%s as spec.sandbox.%s, the agent container's setting",
			       cv >= 0 ? "shadowed by the container's, which is carried"
				       : "carried",
			       *b);
	}
	if ((v = kc_take_obj(c, sc, sc_path, "seccompProfile")))
		seccomp(c, v, kc_path(p, sizeof(p), sc_path, "seccompProfile"), sb);
	else if ((v = kc_take_obj(c, psc, psc_path, "seccompProfile")))
		seccomp(c, v, kc_path(p, sizeof(p), psc_path, "seccompProfile"), sb);
	if ((v = json_object_get(sc, "seLinuxOptions")) && json_is_object(v))
		selinux(c, v, kc_path(p, sizeof(p), sc_path, "seLinuxOptions"), sb);
	else if ((v = json_object_get(psc, "seLinuxOptions")) && json_is_object(v))
		selinux(c, v, kc_path(p, sizeof(p), psc_path, "seLinuxOptions"), sb);
	/* what kars does anyway is not lost */
	if (json_is_false(json_object_get(sc, "privileged")))
		json_object_del(sc, "privileged");
	v = json_object_get(json_object_get(sc, "capabilities"), "drop");
	if (json_object_size(json_object_get(sc, "capabilities")) == 1 && json_array_size(v) == 1 &&
	    strcmp(json_string_value(json_array_get(v, 0)) ?: "", "ALL") == 0)
		json_object_del(sc, "capabilities");
	if (sc)
		kc_leftovers(c, sc, sc_path);
	if (psc)
		kc_leftovers(c, psc, psc_path);
}

static bool reserved(const char *name)
{
	for (const char *const *r = reserved_env; *r; r++)
		if (strncmp(name, *r, strlen(*r)) == 0)
			return true;
	return false;
}

json_t *kc_env_map(struct kc *c, json_t *env, const char *path)
{
	json_t *out = json_object(), *item;
	size_t i;
	char p[512];

	json_array_foreach(env, i, item)
	{
		const char *name, *value;

		kc_index(p, sizeof(p), path, i);
		if (!json_is_object(item)) {
			kc_fail(c, "%s: expected an object", p);
			break;
		}
		name = kc_take_str(c, item, p, "name");
		value = kc_take_str(c, item, p, "value");
		if (c->ret)
			break;
		if (!name) {
			kc_fail(c, "%s.name: Required value", p);
			break;
		}
		if (reserved(name)) {
			kc_add(
			    c, c->dropped, p,
			    "%s: a reserved name (AGT_, FOUNDRY_AGENT_, AZURE_, IMDS_, KARS_), which "
			    "the controller drops",
			    name);
			json_object_clear(item);
			continue;
		}
		if (json_object_get(item, "valueFrom")) {
			/* the variable goes with its reference */
			kc_add(c, c->dropped, p, "%s, from valueFrom: " NO_CREDENTIALS, name);
			json_object_clear(item);
		} else if (json_object_size(out) >= 64) {
			kc_add(c, c->dropped, p, "%s: extraEnv holds at most 64 variables", name);
		} else {
			json_object_set_new(out, name, json_string(value ? value : ""));
		}
		kc_leftovers(c, item, p);
	}
	return out;
}

json_t *kc_resources(struct kc *c, json_t *res, const char *path)
{
	json_t *out = json_object(), *m;
	static const char *const keys[] = {"requests", "limits", NULL};

	for (const char *const *k = keys; *k; k++) {
		const char *name;
		json_t *q;
		char p[512], qp[600];

		m = kc_take_obj(c, res, path, *k);
		kc_path(p, sizeof(p), path, *k);
		json_object_foreach(m, name, q)
		{
			if (!json_is_string(q) && !json_is_integer(q))
				kc_fail(c, "%s: expected a quantity (string or integer)",
					kc_path(qp, sizeof(qp), p, name));
		}
		if (m && json_object_size(m))
			json_object_set(out, *k, m);
	}
	kc_leftovers(c, res, path);
	if (!json_object_size(out)) {
		json_decref(out);
		return NULL;
	}
	return out;
}
