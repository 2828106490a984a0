/* convert_validate.c - the check every converted object passes before it is
 * printed or written (convert.h): kars kinds through the kars validator,
 * upstream Sandboxes against the fields of their CRD kars writes. And the
 * --model value, checked before it can become an invalid policy.
 */
#include "convert_priv.h"

#include <errno.h>
#include <string.h>

#include "validate.h"

static const char *md_name(const json_t *obj)
{
	const char *n =
	    json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));

	return n ? n : "";
}

/* agents.x-k8s.io/v1alpha1 Sandbox, as far as kars writes it. */
static int check_upstream(const json_t *obj, struct kars_err *err)
{
	const json_t *spec = json_object_get(obj, "spec");
	const json_t *pod = json_object_get(json_object_get(spec, "podTemplate"), "spec");
	const json_t *cs = json_object_get(pod, "containers"), *ctr, *rep;
	size_t i;

	if (!kc_is_dns_label(md_name(obj), 63))
		return kars_err_set(err, EINVAL, "Sandbox \"%s\": metadata.name: Invalid value",
				    md_name(obj));
	if (!json_is_array(cs) || json_array_size(cs) == 0)
		return kars_err_set(
		    err, EINVAL, "Sandbox \"%s\": spec.podTemplate.spec.containers: Required value",
		    md_name(obj));
	json_array_foreach(cs, i, ctr)
	{
		const char *image = json_string_value(json_object_get(ctr, "image"));
		const char *name = json_string_value(json_object_get(ctr, "name"));

		if (!name || !kc_is_dns_label(name, 63))
			return kars_err_set(
			    err, EINVAL,
			    "Sandbox \"%s\": spec.podTemplate.spec.containers[%zu].name: "
			    "Invalid value",
			    md_name(obj), i);
		if (!image || !*image)
			return kars_err_set(
			    err, EINVAL,
			    "Sandbox \"%s\": spec.podTemplate.spec.containers[%zu].image: "
			    "Required value",
			    md_name(obj), i);
	}
	rep = json_object_get(spec, "replicas");
	if (rep &&
	    (!json_is_integer(rep) || json_integer_value(rep) < 0 || json_integer_value(rep) > 1))
		return kars_err_set(err, EINVAL, "Sandbox \"%s\": spec.replicas: must be 0 or 1",
				    md_name(obj));
	return 0;
}

int kars_convert_validate(const json_t *objs, struct kars_err *err)
{
	const json_t *obj;
	size_t i;

	json_array_foreach(objs, i, obj)
	{
		struct kars_problems p = {};
		const struct kars_kind *k = NULL;
		json_t *copy;
		int ret;

		if (strcmp(json_string_value(json_object_get(obj, "apiVersion")) ?: "",
			   UPSTREAM_API_VERSION) == 0) {
			ret = check_upstream(obj, err);
			if (ret)
				return ret;
			continue;
		}
		copy = json_deep_copy(obj);
		ret = kars_validate_object(copy, &k, &p);
		json_decref(copy);
		if (ret)
			return kars_err_set(err, EINVAL, "%s \"%s\" is invalid: %s",
					    k ? k->kind : "object", md_name(obj),
					    p.count ? p.msg[0] : "unknown problem");
	}
	return 0;
}

json_t *kars_conv_parse_model(const char *model, struct kars_err *err)
{
	const char *slash = strchr(model, '/');
	const char *dep = slash ? slash + 1 : model;
	json_t *out;

	if (!*dep || strlen(dep) > 253 || strchr(dep, '/')) {
		kars_err_set(
		    err, EINVAL,
		    "--model \"%s\": expected [PROVIDER/]DEPLOYMENT, a deployment name of 1 "
		    "to 253 characters",
		    model);
		return NULL;
	}
	out = json_pack("{s:s}", "deployment", dep);
	if (slash) {
		char provider[64];
		size_t n = (size_t)(slash - model);

		if (n >= sizeof(provider)) {
			n = sizeof(provider) - 1;
		}
		memcpy(provider, model, n);
		provider[n] = '\0';
		if (!kc_is_dns_label(provider, 63) || (size_t)(slash - model) > 63) {
			json_decref(out);
			kars_err_set(
			    err, EINVAL,
			    "--model \"%s\": the provider must be a DNS label (azure-openai, "
			    "openai, ...)",
			    model);
			return NULL;
		}
		json_object_set_new(out, "provider", json_string(provider));
	}
	return out;
}
