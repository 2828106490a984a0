/* tool_policy_file.c - see tool_policy_file.h. Strict like the
 * InferencePolicy reader: unknown keys, another schemaVersion, a profile
 * that is not an object are refused with the field's name.
 */
#include "tool_policy_file.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "deliver.h"
#include "json.h"

/* The compiled form, or NULL (and no error) when the bytes are not a JSON
 * object whose "kind" is "ToolPolicy". */
static json_t *compiled_doc(const char *buf, size_t len)
{
	json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);

	if (root && json_is_object(root) &&
	    !strcmp(json_string_value(json_object_get(root, "kind")) ?: "", "ToolPolicy"))
		return root;
	json_decref(root);
	return NULL;
}

static int unwrap(json_t *root, const char *path, const char *sandbox,
		  struct kars_tool_policy_file *out, struct kars_err *err)
{
	static const char *const keys[] = {"schemaVersion", "kind",    "namespace",
					   "name",	    "profile", NULL};
	const char *ns = NULL, *name = NULL, *slash = strchr(sandbox, '/');
	uint64_t version = 0;
	const json_t *profile;
	int ret;

	ret = kars_json_only_keys(root, "", keys, err);
	if (!ret)
		ret = kars_json_get_uint(root, "", "schemaVersion", true, 0, UINT32_MAX, &version,
					 err);
	if (!ret && version != 1)
		ret = kars_err_set(err, EINVAL,
				   "schemaVersion: %llu is not supported (this router reads 1)",
				   (unsigned long long)version);
	if (!ret)
		ret = kars_json_get_string(root, "", "namespace", true, &ns, err);
	if (!ret)
		ret = kars_json_get_string(root, "", "name", true, &name, err);
	if (!ret && (!*ns || !*name || strlen(ns) + strlen(name) + 2 > sizeof(out->name)))
		ret = kars_err_set(err, EINVAL, "namespace, name: 1 to %zu characters together",
				   sizeof(out->name) - 2);
	if (!ret && slash &&
	    ((size_t)(slash - sandbox) != strlen(ns) ||
	     strncmp(sandbox, ns, (size_t)(slash - sandbox))))
		ret = kars_err_set(err, EINVAL,
				   "namespace: the ToolPolicy is of namespace \"%s\", this router "
				   "serves \"%s\"",
				   ns, sandbox);
	profile = json_object_get(root, "profile");
	if (!ret && !json_is_object(profile))
		ret = kars_err_set(err, EINVAL, "profile: %s",
				   profile ? "expected an object" : "Required value");
	if (!ret) {
		out->profile = json_dumps(profile, JSON_COMPACT | JSON_SORT_KEYS);
		if (!out->profile)
			ret = kars_err_set(err, ENOMEM, "out of memory");
	}
	if (ret) {
		char msg[sizeof(err->msg)];

		memcpy(msg, err->msg, sizeof(msg));
		kars_err_clear(err);
		kars_err_set(err, ret, "%s: %s", path, msg);
		return ret;
	}
	out->profile_len = strlen(out->profile);
	snprintf(out->name, sizeof(out->name), "%s/%s", ns, name);
	return 0;
}

int kars_tool_policy_file_parse(const char *buf, size_t len, const char *path, const char *sandbox,
				struct kars_tool_policy_file *out, struct kars_err *err)
{
	json_t *root;
	int ret;

	memset(out, 0, sizeof(*out));
	root = compiled_doc(buf, len);
	if (!root) {
		out->profile = malloc(len + 1);
		if (!out->profile)
			return kars_err_set(err, ENOMEM, "out of memory");
		memcpy(out->profile, buf, len);
		out->profile[len] = '\0';
		out->profile_len = len;
		return 0;
	}
	ret = unwrap(root, path, sandbox, out, err);
	json_decref(root);
	if (ret) {
		kars_tool_policy_file_free(out);
		return ret;
	}
	/* Over the bytes as read, never a re-encoding: the controller's digest. */
	kars_policy_digest(out->name, buf, len, out->digest);
	return 0;
}

int kars_tool_policy_file_read(const char *path, const char *sandbox,
			       struct kars_tool_policy_file *out, struct kars_err *err)
{
	char *buf = NULL;
	size_t len = 0;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = kars_read_file(path, KARS_TOOL_POLICY_MAX_BYTES, &buf, &len);
	if (ret == -EFBIG)
		return kars_err_set(err, EFBIG, "%s: more than %u bytes", path,
				    KARS_TOOL_POLICY_MAX_BYTES);
	if (ret)
		return kars_err_set(err, -ret, "%s: %s", path, strerror(-ret));
	ret = kars_tool_policy_file_parse(buf, len, path, sandbox, out, err);
	free(buf);
	return ret;
}

void kars_tool_policy_file_free(struct kars_tool_policy_file *f)
{
	free(f->profile);
	f->profile = NULL;
}
