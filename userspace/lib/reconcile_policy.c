/* reconcile_policy.c - see reconcile_policy.h. */
#include "reconcile_policy.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conditions.h"
#include "deliver.h"

const struct kars_policy_kind *const kars_policy_kinds[] = {
    &kars_policy_inferencepolicy, &kars_policy_toolpolicy, &kars_policy_egressapproval, NULL};

static json_t *md_of(const json_t *o)
{
	return json_object_get(o, "metadata");
}

static const char *md_str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(md_of(o), key));
}

static bool in_array(const json_t *names, const char *name)
{
	const json_t *v;
	size_t i;

	json_array_foreach(names, i, v) if (!strcmp(json_string_value(v), name)) return true;
	return false;
}

/* Removes the policy's file from every sandbox directory of its namespace
 * not in keep (NULL: from all). Returns how many were removed. */
static unsigned undeliver(const struct kars_policy_kind *pk, const char *out_dir,
			  const json_t *policy, const json_t *keep)
{
	char nsdir[PATH_MAX], rel[PATH_MAX], path[3 * PATH_MAX];
	unsigned removed = 0;
	struct dirent *e;
	DIR *d;

	snprintf(nsdir, sizeof(nsdir), "%s/%s", out_dir, md_str(policy, "namespace"));
	pk->file(policy, rel, sizeof(rel));
	d = opendir(nsdir);
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.' || (keep && in_array(keep, e->d_name)))
			continue;
		snprintf(path, sizeof(path), "%s/%s/%s", nsdir, e->d_name, rel);
		if (access(path, F_OK) == 0 && (!pk->owns || pk->owns(path, policy)) &&
		    unlink(path) == 0)
			removed++;
	}
	if (d)
		closedir(d);
	return removed;
}

static int finish_deletion(const struct kars_policy_kind *pk, const struct kars_policy_env *env,
			   json_t *obj, struct kars_reconcile_result *res, struct kars_err *err)
{
	json_t *fin = json_object_get(md_of(obj), "finalizers"), *kept = json_array(), *f,
	       *out = NULL;
	size_t i;
	int ret;

	res->files_removed = undeliver(pk, env->out_dir, obj, NULL);
	json_array_foreach(fin, i, f) if (strcmp(json_string_value(f) ?: "", pk->finalizer))
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

static int ensure_finalizer(const struct kars_policy_kind *pk, const struct kars_policy_env *env,
			    json_t **obj, struct kars_err *err)
{
	json_t *md = md_of(*obj), *fin = json_object_get(md, "finalizers"), *f, *out = NULL;
	size_t i;
	int ret;

	json_array_foreach(fin, i,
			   f) if (!strcmp(json_string_value(f) ?: "", pk->finalizer)) return 0;
	if (!json_is_array(fin)) {
		fin = json_array();
		json_object_set_new(md, "finalizers", fin);
	}
	json_array_append_new(fin, json_string(pk->finalizer));
	ret = kars_store_update(env->store, *obj, &out, err);
	if (ret)
		return ret;
	json_decref(*obj);
	*obj = out;
	return 0;
}

/* Names of the namespace's KarsSandboxes that use the policy. */
static int using_sandboxes(const struct kars_policy_kind *pk, const struct kars_policy_env *env,
			   const json_t *policy, json_t **names, struct kars_err *err)
{
	json_t *items = NULL, *sb;
	uint64_t rv;
	size_t i;
	int ret = kars_store_list(env->store, kars_kind_find("KarsSandbox"),
				  md_str(policy, "namespace"), &items, &rv, err);

	if (ret)
		return ret;
	*names = json_array();
	json_array_foreach(items, i, sb) if (pk->uses(policy, sb))
	    json_array_append(*names, json_object_get(md_of(sb), "name"));
	json_decref(items);
	return 0;
}

static void set_degraded(const struct kars_policy_kind *pk, json_t *status, int ret,
			 const char *msg, long long gen, const char *now)
{
	const char *reason = ret == -ENOTSUP ? "NotSupported" : "SpecInvalid";

	kars_phase_set(kars_kind_find(pk->kind), status, pk->degraded_phase);
	kars_condition_set(status, "Ready", "False", reason, msg, gen, now);
	kars_condition_set(status, "Degraded", "True", reason, msg, gen, now);
	kars_condition_set(status, "Progressing", "False", reason, NULL, gen, now);
}

/* Delivers c to every using sandbox and asks each router what it loaded.
 * Returns how many report c's digest, or -errno. */
static int deliver_all(const struct kars_policy_kind *pk, const struct kars_policy_env *env,
		       const json_t *obj, const struct kars_compiled *c, const json_t *sandboxes,
		       json_t *status, char *why, size_t why_len, struct kars_reconcile_result *res,
		       struct kars_err *err)
{
	const char *ns = md_str(obj, "namespace"), *loaded_digest = NULL;
	char rel[PATH_MAX], path[3 * PATH_MAX];
	const json_t *sb;
	size_t i;
	int loaded = 0, ret;

	pk->file(obj, rel, sizeof(rel));
	json_array_foreach(sandboxes, i, sb)
	{
		const char *sbname = json_string_value(sb), *d;

		snprintf(path, sizeof(path), "%s/%s/%s/%s", env->out_dir, ns, sbname, rel);
		ret = kars_deliver_file(path, c->bytes, c->len, err);
		if (ret < 0)
			return ret;
		res->files_written += (unsigned)ret;
		char one[256] = "";

		d = env->loaded_digest ? env->loaded_digest(env->ctx, pk->kind, ns, sbname, c->name,
							    one, sizeof(one))
				       : NULL;
		if (d && !strcmp(d, c->digest))
			loaded++;
		else if (!why[0])
			snprintf(why, why_len, "; %s: %s", sbname,
				 d	  ? "reports another digest"
				 : one[0] ? one
					  : "no report");
		if (d && (!loaded_digest || !strcmp(d, c->digest)))
			loaded_digest = d;
	}
	if (loaded_digest)
		json_object_set_new(status, "loadedDigest", json_string(loaded_digest));
	return loaded;
}

int kars_reconcile_policy(const struct kars_policy_kind *pk, const struct kars_policy_env *env,
			  const char *ns, const char *name, struct kars_reconcile_result *res,
			  struct kars_err *err)
{
	const struct kars_kind *k = kars_kind_find(pk->kind);
	struct kars_compiled c = {};
	json_t *obj = NULL, *status = NULL, *old = NULL, *sandboxes = NULL, *out = NULL;
	uint64_t requeue = KARS_REQUEUE_STEADY_MS;
	long long gen;
	char now[32], why[300] = "";
	int ret, loaded;

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
		ret = finish_deletion(pk, env, obj, res, err);
		goto out;
	}
	ret = ensure_finalizer(pk, env, &obj, err);
	if (ret)
		goto out;
	gen = json_integer_value(json_object_get(md_of(obj), "generation"));
	/* the object carries the status being built (a time-bound kind's
	 * compiler reads its window from it); old is what the store has */
	old = json_incref(json_object_get(obj, "status"));
	status = old ? json_deep_copy(old) : json_object();
	json_object_set(obj, "status", status);
	json_object_set_new(status, "observedGeneration", json_integer(gen));

	if (pk->in_force && !pk->in_force(obj, status, now, &requeue)) {
		res->files_removed = undeliver(pk, env->out_dir, obj, NULL);
		kars_phase_set(k, status, pk->inactive_phase);
		kars_condition_set(status, "Ready", "False", pk->inactive_phase,
				   "no longer in force; its files were removed", gen, now);
		kars_condition_set(status, "Progressing", "False", pk->inactive_phase, NULL, gen,
				   now);
		requeue = 0;
		goto write_status;
	}
	ret = pk->compile(obj, &c, err);
	if (ret) {
		set_degraded(pk, status, ret, err->msg, gen, now);
		kars_err_clear(err);
		ret = 0;
		goto write_status;
	}
	if (strcmp(json_string_value(json_object_get(status, "compiledDigest")) ?: "", c.digest)) {
		json_object_set_new(status, "compiledDigest", json_string(c.digest));
		json_object_set_new(status, "lastCompiledAt", json_string(now));
	}
	if (pk->version_hash)
		json_object_set_new(status, "versionHash", json_stringn(c.digest + 7, 12));
	ret = using_sandboxes(pk, env, obj, &sandboxes, err);
	if (ret)
		goto out;
	loaded = deliver_all(pk, env, obj, &c, sandboxes, status, why, sizeof(why), res, err);
	if (loaded < 0) {
		ret = loaded;
		goto out;
	}
	res->files_removed = undeliver(pk, env->out_dir, obj, sandboxes);
	kars_condition_set(status, "Degraded", "False", "Compiled", NULL, gen, now);
	if (json_array_size(sandboxes) == 0) {
		kars_phase_set(k, status, pk->waiting_phase);
		kars_condition_set(status, "Ready", "False", "NoSandboxesReferencing",
				   "no KarsSandbox in this namespace uses this policy", gen, now);
		kars_condition_set(status, "Progressing", "False", "NoSandboxesReferencing", NULL,
				   gen, now);
	} else if ((size_t)loaded == json_array_size(sandboxes)) {
		kars_phase_set(k, status, pk->ready_phase);
		kars_condition_set(status, "Ready", "True", "RouterEnforcing",
				   "every using sandbox's router reports the compiled digest", gen,
				   now);
		kars_condition_set(status, "Progressing", "False", "RouterEnforcing", NULL, gen,
				   now);
	} else {
		char msg[512];

		snprintf(msg, sizeof(msg), "%d of %zu routers report %s%s", loaded,
			 json_array_size(sandboxes), c.digest, why);
		res->waiting = true;
		kars_phase_set(k, status, pk->waiting_phase);
		kars_condition_set(status, "Ready", "False", "AwaitingRouterEnforcement", msg, gen,
				   now);
		kars_condition_set(status, "Progressing", "True", "AwaitingRouterEnforcement", msg,
				   gen, now);
		if (requeue > KARS_REQUEUE_WAITING_MS)
			requeue = KARS_REQUEUE_WAITING_MS;
	}
write_status:
	res->requeue_after_ms = requeue;
	if (!json_equal(status, old ?: json_null())) {
		ret = kars_store_update_status(env->store, obj, &out, err);
		res->status_written = ret == 0;
	}
out:
	kars_compiled_free(&c);
	json_decref(status);
	json_decref(old);
	json_decref(sandboxes);
	json_decref(obj);
	json_decref(out);
	return ret;
}
