/* reconcile_ip.c - see reconcile_ip.h. */
#include "reconcile_ip.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conditions.h"
#include "policy_compile.h"

#define REQUEUE_WAITING_MS 15000
#define REQUEUE_STEADY_MS  300000

static const struct kars_kind *ip_kind(void)
{
	return kars_kind_find("InferencePolicy");
}

static json_t *md_of(const json_t *o)
{
	return json_object_get(o, "metadata");
}

static int mkdir_p(const char *path)
{
	char buf[PATH_MAX];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return mkdir(buf, 0755) && errno != EEXIST ? -errno : 0;
}

/* Writes bytes to path (atomically) unless it already holds exactly them.
 * 1 written, 0 unchanged, <0 error. */
static int deliver(const char *dir, const struct kars_compiled *c, struct kars_err *err)
{
	char path[2 * PATH_MAX], tmp[2 * PATH_MAX + 8], *have;
	FILE *f;
	long n;
	int fd, ret;

	snprintf(path, sizeof(path), "%s/%s", dir, KARS_IP_FILE);
	f = fopen(path, "r");
	if (f) {
		bool same = false;

		if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) == (long)c->len &&
		    fseek(f, 0, SEEK_SET) == 0 && (have = malloc(c->len + 1))) {
			same =
			    fread(have, 1, c->len, f) == c->len && !memcmp(have, c->bytes, c->len);
			free(have);
		}
		fclose(f);
		if (same)
			return 0;
	}
	ret = mkdir_p(dir);
	if (ret)
		return kars_err_set(err, -ret, "deliver: mkdir %s: %s", dir, strerror(-ret));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, c->bytes, c->len) != (ssize_t)c->len || fsync(fd) || close(fd) ||
	    rename(tmp, path)) {
		ret = kars_err_set(err, errno ? errno : EIO, "deliver: %s: %s", path,
				   strerror(errno ? errno : EIO));
		unlink(tmp);
		return ret;
	}
	return 1;
}

/* Removes every delivered copy of policy ns/name. */
static unsigned undeliver(const char *out_dir, const char *ns, const char *name)
{
	char nsdir[PATH_MAX], path[2 * PATH_MAX];
	unsigned removed = 0;
	struct dirent *e;
	DIR *d;

	snprintf(nsdir, sizeof(nsdir), "%s/%s", out_dir, ns);
	d = opendir(nsdir);
	while (d && (e = readdir(d))) {
		json_t *doc;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/%s", nsdir, e->d_name, KARS_IP_FILE);
		doc = json_load_file(path, 0, NULL);
		if (doc && !strcmp(json_string_value(json_object_get(doc, "name")) ?: "", name) &&
		    unlink(path) == 0)
			removed++;
		json_decref(doc);
	}
	if (d)
		closedir(d);
	return removed;
}

static int finish_deletion(const struct kars_ip_env *env, json_t *obj,
			   struct kars_reconcile_result *res, struct kars_err *err)
{
	json_t *fin = json_object_get(md_of(obj), "finalizers"), *kept = json_array(), *f,
	       *out = NULL;
	size_t i;
	int ret;

	res->files_removed =
	    undeliver(env->out_dir, json_string_value(json_object_get(md_of(obj), "namespace")),
		      json_string_value(json_object_get(md_of(obj), "name")));
	json_array_foreach(fin, i, f) if (strcmp(json_string_value(f) ?: "", KARS_IP_FINALIZER))
	    json_array_append(kept, f);
	if (json_array_size(kept) == json_array_size(fin)) {
		json_decref(kept);
		return 0; /* not ours to hold */
	}
	json_object_set_new(md_of(obj), "finalizers", kept);
	ret = kars_store_update(env->store, obj, &out, err);
	json_decref(out);
	return ret;
}

static int ensure_finalizer(const struct kars_ip_env *env, json_t **obj, struct kars_err *err)
{
	json_t *md = md_of(*obj), *fin = json_object_get(md, "finalizers"), *f, *out = NULL;
	size_t i;
	int ret;

	json_array_foreach(fin, i,
			   f) if (!strcmp(json_string_value(f) ?: "", KARS_IP_FINALIZER)) return 0;
	if (!json_is_array(fin)) {
		fin = json_array();
		json_object_set_new(md, "finalizers", fin);
	}
	json_array_append_new(fin, json_string(KARS_IP_FINALIZER));
	ret = kars_store_update(env->store, *obj, &out, err);
	if (ret)
		return ret;
	json_decref(*obj);
	*obj = out;
	return 0;
}

/* Names of the namespace's KarsSandboxes whose inferenceRef is `name`. */
static int referencing_sandboxes(const struct kars_ip_env *env, const char *ns, const char *name,
				 json_t **names, struct kars_err *err)
{
	json_t *items = NULL, *sb;
	uint64_t rv;
	size_t i;
	int ret = kars_store_list(env->store, kars_kind_find("KarsSandbox"), ns, &items, &rv, err);

	if (ret)
		return ret;
	*names = json_array();
	json_array_foreach(items, i, sb)
	{
		const char *ref = json_string_value(json_object_get(
		    json_object_get(json_object_get(sb, "spec"), "inferenceRef"), "name"));

		if (ref && !strcmp(ref, name))
			json_array_append(*names, json_object_get(md_of(sb), "name"));
	}
	json_decref(items);
	return 0;
}

int kars_reconcile_inferencepolicy(const struct kars_ip_env *env, const char *ns, const char *name,
				   struct kars_reconcile_result *res, struct kars_err *err)
{
	struct kars_compiled c = {};
	json_t *obj = NULL, *status, *sandboxes = NULL, *sb, *out = NULL;
	const struct kars_kind *k = ip_kind();
	long long gen;
	char now[32], dir[PATH_MAX];
	size_t i, loaded = 0;
	const char *loaded_digest = NULL;
	int ret;

	memset(res, 0, sizeof(*res));
	if (env->now)
		snprintf(now, sizeof(now), "%s", env->now);
	else
		kars_now_rfc3339(now, sizeof(now));
	ret = kars_store_get(env->store, k, ns, name, &obj, err);
	if (ret == -ENOENT) {
		kars_err_clear(err);
		return 0;
	}
	if (ret)
		return ret;
	if (json_object_get(md_of(obj), "deletionTimestamp")) {
		ret = finish_deletion(env, obj, res, err);
		goto out;
	}
	ret = ensure_finalizer(env, &obj, err);
	if (ret)
		goto out;
	gen = json_integer_value(json_object_get(md_of(obj), "generation"));
	status = json_deep_copy(json_object_get(obj, "status"));
	if (!status)
		status = json_object();
	json_object_set_new(status, "observedGeneration", json_integer(gen));

	ret = kars_inferencepolicy_compile(obj, &c, err);
	if (ret) {
		kars_phase_set(k, status, "Degraded");
		kars_condition_set(status, "Ready", "False",
				   ret == -ENOTSUP ? "NotSupported" : "SpecInvalid", err->msg, gen,
				   now);
		kars_condition_set(status, "Degraded", "True",
				   ret == -ENOTSUP ? "NotSupported" : "SpecInvalid", err->msg, gen,
				   now);
		kars_condition_set(status, "Progressing", "False", "SpecInvalid", NULL, gen, now);
		res->requeue_after_ms = REQUEUE_STEADY_MS;
		kars_err_clear(err);
		ret = 0;
		goto write_status;
	}
	if (strcmp(json_string_value(json_object_get(status, "compiledDigest")) ?: "", c.digest)) {
		json_object_set_new(status, "compiledDigest", json_string(c.digest));
		json_object_set_new(status, "lastCompiledAt", json_string(now));
	}
	json_object_set_new(status, "versionHash", json_stringn(c.digest + 7, 12));
	ret = referencing_sandboxes(env, ns, name, &sandboxes, err);
	if (ret)
		goto free_status;
	json_array_foreach(sandboxes, i, sb)
	{
		const char *sbname = json_string_value(sb);
		const char *d;

		snprintf(dir, sizeof(dir), "%s/%s/%s", env->out_dir, ns, sbname);
		ret = deliver(dir, &c, err);
		if (ret < 0)
			goto free_status;
		res->files_written += (unsigned)ret;
		ret = 0;
		d = env->loaded_digest ? env->loaded_digest(env->ctx, ns, sbname) : NULL;
		if (d && !strcmp(d, c.digest))
			loaded++;
		if (d && !loaded_digest)
			loaded_digest = d;
		else if (d && !strcmp(d, c.digest))
			loaded_digest = d;
	}
	if (loaded_digest)
		json_object_set_new(status, "loadedDigest", json_string(loaded_digest));
	kars_condition_set(status, "Degraded", "False", "Compiled", NULL, gen, now);
	if (json_array_size(sandboxes) == 0) {
		kars_phase_set(k, status, "Compiled");
		kars_condition_set(
		    status, "Ready", "False", "NoSandboxesReferencing",
		    "no KarsSandbox in this namespace has this policy as inferenceRef", gen, now);
		kars_condition_set(status, "Progressing", "False", "NoSandboxesReferencing", NULL,
				   gen, now);
		res->requeue_after_ms = REQUEUE_STEADY_MS;
	} else if (loaded == json_array_size(sandboxes)) {
		kars_phase_set(k, status, "Ready");
		kars_condition_set(status, "Ready", "True", "RouterEnforcing",
				   "every referencing sandbox's router reports the compiled digest",
				   gen, now);
		kars_condition_set(status, "Progressing", "False", "RouterEnforcing", NULL, gen,
				   now);
		res->requeue_after_ms = REQUEUE_STEADY_MS;
	} else {
		char msg[160];

		snprintf(msg, sizeof(msg), "%zu of %zu routers report %s", loaded,
			 json_array_size(sandboxes), c.digest);
		kars_phase_set(k, status, "Compiled");
		kars_condition_set(status, "Ready", "False", "AwaitingRouterEnforcement", msg, gen,
				   now);
		kars_condition_set(status, "Progressing", "True", "AwaitingRouterEnforcement", msg,
				   gen, now);
		res->requeue_after_ms = REQUEUE_WAITING_MS;
	}
write_status:
	if (!json_equal(status, json_object_get(obj, "status") ?: json_null())) {
		json_object_set(obj, "status", status);
		ret = kars_store_update_status(env->store, obj, &out, err);
		res->status_written = ret == 0;
	}
free_status:
	json_decref(status);
out:
	kars_compiled_free(&c);
	json_decref(sandboxes);
	json_decref(obj);
	json_decref(out);
	return ret;
}
