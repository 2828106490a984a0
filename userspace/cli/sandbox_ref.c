/* sandbox_ref.c - naming a local sandbox and reading its run file
 * (sandbox_ref.h). */
#include "sandbox_ref.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup2.h"
#include "json.h"
#include "names.h"

#define RUN_FILE_MAX (64 << 10)

static int put(char *out, size_t len, struct kars_err *err, const char *fmt, const char *a,
	       const char *b)
{
	if (snprintf(out, len, fmt, a, b) >= (int)len)
		return kars_err_set(err, ENAMETOOLONG, "path too long: %s/%s", a, b);
	return 0;
}

int kars_sbref_resolve(const char *arg, const char *ns, const char *store, const char *root,
		       struct kars_sbref *ref, struct kars_err *err)
{
	const char *slash = strchr(arg, '/');
	char cg2[PATH_MAX], tmp[PATH_MAX];
	int ret;

	memset(ref, 0, sizeof(*ref));
	if (slash && ns && strncmp(arg, ns, slash - arg))
		return kars_err_set(err, EINVAL, "sandbox %s: -n %s names another namespace", arg,
				    ns);
	if (slash) {
		if ((size_t)(slash - arg) >= sizeof(ref->ns))
			return kars_err_set(err, EINVAL, "sandbox %s: namespace too long", arg);
		snprintf(ref->ns, sizeof(ref->ns), "%.*s", (int)(slash - arg), arg);
		arg = slash + 1;
	} else {
		snprintf(ref->ns, sizeof(ref->ns), "%s", ns && *ns ? ns : "default");
	}
	if (snprintf(ref->name, sizeof(ref->name), "%s", arg) >= (int)sizeof(ref->name))
		return kars_err_set(err, EINVAL, "sandbox %s: name too long", arg);
	snprintf(ref->owner, sizeof(ref->owner), "%s/%s", ref->ns, ref->name);
	if ((ret = kars_sandbox_name_check(ref->owner, "sandbox", err)))
		return ret;

	if (!root || !*root)
		root = getenv("KARS_LOCAL_DIR");
	if (root && !*root)
		root = NULL;
	if ((!store || !*store) && root) {
		/* the layout kars up --local makes: ROOT/state */
		if (put(ref->store, sizeof(ref->store), err, "%s/%s", root, "state"))
			return -ENAMETOOLONG;
	} else {
		if (!store || !*store)
			store = getenv("KARS_STATE_DIR");
		if (!store || !*store)
			store = KARS_CLI_DEFAULT_STORE;
		if (put(ref->store, sizeof(ref->store), err, "%s%s", store, ""))
			return -ENAMETOOLONG;
	}
	if (!root) {
		snprintf(tmp, sizeof(tmp), "%s", ref->store);
		root = dirname(tmp);
	}
	if (put(ref->root, sizeof(ref->root), err, "%s%s", root, "") ||
	    put(ref->dir, sizeof(ref->dir), err, "%s/sandboxes/%s", ref->root, ref->owner) ||
	    put(ref->router_dir, sizeof(ref->router_dir), err, "%s/%s", ref->dir, "router") ||
	    put(ref->run_dir, sizeof(ref->run_dir), err, "%s/%s", ref->dir, "run"))
		return -ENAMETOOLONG;
	if ((ret = kars_cgroup2_find(cg2, sizeof(cg2), err)))
		return ret;
	if (put(tmp, sizeof(tmp), err, "%s/kars/%s", cg2, ref->owner) ||
	    put(ref->cg_agent, sizeof(ref->cg_agent), err, "%s/%s", tmp, "agent") ||
	    put(ref->cg_router, sizeof(ref->cg_router), err, "%s/%s", tmp, "router"))
		return -ENAMETOOLONG;
	return 0;
}

static int get_id(const json_t *o, const char *file, const char *key, bool required, uint64_t min,
		  uint64_t max, uint64_t *out, struct kars_err *err)
{
	struct kars_err e = {};
	int ret;

	*out = 0;
	ret = kars_json_get_uint(o, "", key, required, min, max, out, &e);
	if (ret)
		kars_err_set(err, -ret, "%s: %s", file, e.msg);
	return ret;
}

/* An optional path of the run file; relative to the router directory. */
static int get_path(const json_t *o, const char *file, const char *key, const char *dflt,
		    const struct kars_sbref *ref, char *out, size_t len, struct kars_err *err)
{
	struct kars_err e = {};
	const char *v = NULL;
	int ret = kars_json_get_string(o, "", key, false, &v, &e);

	if (ret)
		return kars_err_set(err, -ret, "%s: %s", file, e.msg);
	if (v && *v == '/')
		return put(out, len, err, "%s%s", v, "");
	return put(out, len, err, "%s/%s", ref->router_dir, v ? v : dflt);
}

int kars_sbrun_parse(const char *buf, size_t len, const char *file, const struct kars_sbref *ref,
		     struct kars_sbrun *run, struct kars_err *err)
{
	struct kars_err e = {};
	uint64_t v[6];
	json_t *o;
	int ret = -EINVAL;

	memset(run, 0, sizeof(*run));
	o = kars_json_parse(buf, len, &e);
	if (!o)
		return kars_err_set(err, EINVAL, "%s: %s", file, e.msg);
	if (!json_is_object(o)) {
		kars_err_set(err, EINVAL, "%s: expected a JSON object", file);
		goto cleanup;
	}
	if ((ret = get_id(o, file, "routerPort", true, 1, 65535, &v[0], err)) ||
	    (ret = get_id(o, file, "proxyPort", true, 1, 65535, &v[1], err)) ||
	    (ret = get_id(o, file, "routerUid", true, 1, UINT32_MAX - 1, &v[2], err)) ||
	    (ret = get_id(o, file, "agentUid", true, 1, UINT32_MAX - 1, &v[3], err)) ||
	    (ret = get_id(o, file, "routerPid", false, 0, INT32_MAX, &v[4], err)) ||
	    (ret = get_id(o, file, "agentPid", false, 0, INT32_MAX, &v[5], err)) ||
	    (ret = get_path(o, file, "auditFile", "audit.jsonl", ref, run->audit_file,
			    sizeof(run->audit_file), err)) ||
	    (ret = get_path(o, file, "apiKeyFile", "api-key", ref, run->api_key_file,
			    sizeof(run->api_key_file), err)))
		goto cleanup;
	if (v[2] == v[3]) {
		ret = kars_err_set(err, EINVAL, "%s: routerUid and agentUid are both %llu", file,
				   (unsigned long long)v[2]);
		goto cleanup;
	}
	run->router_port = (int)v[0];
	run->proxy_port = (int)v[1];
	run->router_uid = (uid_t)v[2];
	run->agent_uid = (uid_t)v[3];
	run->router_pid = (pid_t)v[4];
	run->agent_pid = (pid_t)v[5];
cleanup:
	json_decref(o);
	return ret;
}

int kars_sbref_run(const struct kars_sbref *ref, struct kars_sbrun *run, struct kars_err *err)
{
	char file[PATH_MAX + 16], *buf = NULL;
	size_t len = 0;
	FILE *f;
	int ret;

	memset(run, 0, sizeof(*run));
	snprintf(file, sizeof(file), "%s/router.json", ref->run_dir);
	f = fopen(file, "r");
	if (!f) {
		if (errno == ENOENT)
			return kars_err_set(err, ENOENT,
					    "sandbox %s is not running locally: %s does not exist "
					    "(kars status %s; start it with kars up --local)",
					    ref->owner, file, ref->owner);
		return kars_err_set(err, errno, "sandbox %s: %s: %s", ref->owner, file,
				    strerror(errno));
	}
	buf = malloc(RUN_FILE_MAX + 1);
	if (buf)
		len = fread(buf, 1, RUN_FILE_MAX + 1, f);
	fclose(f);
	if (!buf || len > RUN_FILE_MAX) {
		free(buf);
		return kars_err_set(err, EFBIG, "%s: unreadable or larger than 64 KiB", file);
	}
	ret = kars_sbrun_parse(buf, len, file, ref, run, err);
	free(buf);
	return ret;
}
