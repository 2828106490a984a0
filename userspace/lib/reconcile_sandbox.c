/* reconcile_sandbox.c - see reconcile_sandbox.h. */
#include "reconcile_sandbox.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "a2a_window.h"
#include "conditions.h"
#include "runtime_plan.h"

#define REQUEUE_MISSING_REF_MS 60000

static json_t *md_of(const json_t *o)
{
	return json_object_get(o, "metadata");
}

static bool has_finalizer(const json_t *obj)
{
	const json_t *f;
	size_t i;

	json_array_foreach(
	    json_object_get(md_of(obj), "finalizers"), i,
	    f) if (!strcmp(json_string_value(f) ?: "", KARS_SANDBOX_FINALIZER)) return true;
	return false;
}

static int set_finalizer(const struct kars_sandbox_env *env, json_t **obj, bool on,
			 struct kars_err *err)
{
	json_t *fin = json_object_get(md_of(*obj), "finalizers"), *kept = json_array(), *f,
	       *out = NULL;
	size_t i;
	int ret;

	json_array_foreach(fin, i,
			   f) if (strcmp(json_string_value(f) ?: "", KARS_SANDBOX_FINALIZER))
	    json_array_append(kept, f);
	if (on)
		json_array_append_new(kept, json_string(KARS_SANDBOX_FINALIZER));
	json_object_set_new(md_of(*obj), "finalizers", kept);
	ret = kars_store_update(env->store, *obj, &out, err);
	if (ret)
		return ret;
	json_decref(*obj);
	*obj = out;
	return 0;
}

static void conditions(json_t *status, const char *ready, const char *runtime_ready,
		       const char *reason, const char *msg, long long gen, const char *now)
{
	kars_condition_set(status, "Ready", ready, reason, msg, gen, now);
	kars_condition_set(status, "RuntimeReady", runtime_ready, reason, msg, gen, now);
}

/* The sandbox's EgressApprovals in force at now. */
static int approvals_in_force(const struct kars_sandbox_env *env, const char *ns, const char *name,
			      const char *now, json_t **out, struct kars_err *err)
{
	json_t *items = NULL, *a;
	uint64_t rv;
	size_t i;
	int ret =
	    kars_store_list(env->store, kars_kind_find("EgressApproval"), ns, &items, &rv, err);

	if (ret)
		return ret;
	*out = json_array();
	json_array_foreach(items, i, a)
	{
		const json_t *st = json_object_get(a, "status");
		const char *exp = json_string_value(json_object_get(st, "expiresAt"));
		const char *phase = json_string_value(json_object_get(st, "phase"));

		/* RFC 3339 UTC with the same format compares as text */
		if (strcmp(json_string_value(json_object_get(json_object_get(a, "spec"), "sandbox"))
			       ?: "",
			   name) ||
		    !exp || strcmp(exp, now) <= 0 || (phase && !strcmp(phase, "Expired")) ||
		    json_object_get(md_of(a), "deletionTimestamp"))
			continue;
		json_array_append(*out, a);
	}
	json_decref(items);
	return 0;
}

/* The primary model of the sandbox's InferencePolicy; -ENOENT if none. */
static int inference_model(const struct kars_sandbox_env *env, const json_t *sb, char *model,
			   size_t len, struct kars_err *err)
{
	const char *ref = json_string_value(
	    json_object_get(json_object_get(json_object_get(sb, "spec"), "inferenceRef"), "name"));
	json_t *ip = NULL;
	const char *m;
	int ret;

	model[0] = '\0';
	if (!ref)
		return kars_err_set(err, ENOENT, "spec.inferenceRef: Required value");
	ret = kars_store_get(env->store, kars_kind_find("InferencePolicy"),
			     json_string_value(json_object_get(md_of(sb), "namespace")), ref, &ip,
			     err);
	if (ret == -ENOENT)
		return kars_err_set(err, ENOENT,
				    "spec.inferenceRef: InferencePolicy \"%s\" not found in this "
				    "namespace",
				    ref);
	if (ret)
		return ret;
	m = json_string_value(json_object_get(
	    json_object_get(json_object_get(json_object_get(ip, "spec"), "modelPreference"),
			    "primary"),
	    "deployment"));
	snprintf(model, len, "%s", m ? m : "");
	json_decref(ip);
	return 0;
}

/* The 30-day cap on spec.a2a.expiresAt (a2a_window.h), from
 * status.a2aWindowStart: set when this generation is first seen, dropped
 * (by the caller) when the generation changes. */
static int a2a_window(const json_t *obj, json_t *status, const char *now, struct kars_err *err)
{
	const json_t *spec = json_object_get(obj, "spec");
	const char *start = json_string_value(json_object_get(status, "a2aWindowStart"));

	if (!json_object_get(json_object_get(spec, "a2a"), "expiresAt")) {
		json_object_del(status, "a2aWindowStart");
		return 0;
	}
	if (!start) {
		json_object_set_new(status, "a2aWindowStart", json_string(now));
		start = now;
	}
	return kars_a2a_window_check(spec, start, err);
}

static int run(const struct kars_sandbox_env *env, json_t *obj, json_t *status, long long gen,
	       const char *now, struct kars_reconcile_result *res, struct kars_err *err)
{
	const struct kars_kind *k = kars_kind_find("KarsSandbox");
	const char *ns = json_string_value(json_object_get(md_of(obj), "namespace"));
	const char *name = json_string_value(json_object_get(md_of(obj), "name"));
	json_t *plan = NULL, *egress = NULL, *approvals = NULL;
	struct kars_sandbox_observed seen = {0};
	struct kars_err why = {0};
	enum kars_plan_status ps;
	char model[300], router_dir[PATH_MAX];
	int ret;

	res->requeue_after_ms = KARS_REQUEUE_STEADY_MS;
	if (a2a_window(obj, status, now, &why)) {
		kars_phase_set(k, status, "Degraded");
		conditions(status, "False", "False", "SpecInvalid", why.msg, gen, now);
		kars_condition_set(status, "Degraded", "True", "SpecInvalid", why.msg, gen, now);
		kars_condition_set(status, "Progressing", "False", "SpecInvalid", NULL, gen, now);
		return 0;
	}
	ret = inference_model(env, obj, model, sizeof(model), &why);
	if (ret == -ENOENT) {
		kars_phase_set(k, status, "Degraded");
		conditions(status, "False", "False", "InferencePolicyNotFound", why.msg, gen, now);
		kars_condition_set(status, "Degraded", "True", "InferencePolicyNotFound", why.msg,
				   gen, now);
		res->requeue_after_ms = REQUEUE_MISSING_REF_MS;
		return 0;
	}
	if (ret)
		return kars_err_set(err, -ret, "%s", why.msg);
	ps = kars_runtime_plan(obj, model[0] ? model : NULL, &plan, &why);
	json_object_set(
	    status, "runtimeKind",
	    json_object_get(json_object_get(json_object_get(obj, "spec"), "runtime"), "kind"));
	if (ps != KARS_PLAN_OK) {
		const char *reason = kars_plan_status_reason(ps);

		kars_phase_set(k, status, "Degraded");
		conditions(status, "False", "False", reason, why.msg, gen, now);
		kars_condition_set(status, "Degraded", "True", reason, why.msg, gen, now);
		kars_condition_set(status, "Progressing", "False", reason, NULL, gen, now);
		return 0;
	}
	ret = approvals_in_force(env, ns, name, now, &approvals, err);
	if (!ret)
		ret = kars_egress_compile(obj, approvals, &env->egress, &egress, &why);
	if (ret == -ENOTSUP || ret == -EINVAL) {
		kars_phase_set(k, status, "Degraded");
		conditions(status, "False", "False",
			   ret == -ENOTSUP ? "NotSupported" : "SpecInvalid", why.msg, gen, now);
		kars_condition_set(status, "Degraded", "True",
				   ret == -ENOTSUP ? "NotSupported" : "SpecInvalid", why.msg, gen,
				   now);
		ret = 0;
		goto out;
	}
	if (ret)
		goto out;
	kars_condition_set(status, "Degraded", "False", "Planned", NULL, gen, now);
	if (!env->backend) {
		static const char msg[] = "no sandbox backend: the runtime and egress policy are "
					  "planned, not run (kars-controller --backend local runs "
					  "them)";

		kars_phase_set(k, status, "Pending");
		conditions(status, "False", "False", "NoBackend", msg, gen, now);
		kars_condition_set(status, "Progressing", "False", "NoBackend", NULL, gen, now);
		goto out;
	}
	snprintf(router_dir, sizeof(router_dir), "%s/%s/%s", env->out_dir ? env->out_dir : ".", ns,
		 name);
	ret = env->backend->ops->apply(env->backend->ctx,
				       &(struct kars_sandbox_desired){.ns = ns,
								      .name = name,
								      .generation = gen,
								      .plan = plan,
								      .egress = egress,
								      .router_dir = router_dir},
				       err);
	if (!ret)
		ret = env->backend->ops->observe(env->backend->ctx, ns, name, &seen, err);
	if (ret)
		goto out;
	if (seen.running && seen.router_answers) {
		kars_phase_set(k, status, "Running");
		conditions(status, "True", "True", "Running",
			   "the workload runs and its router answers", gen, now);
		kars_condition_set(status, "Progressing", "False", "Running", NULL, gen, now);
	} else {
		const char *reason = seen.running ? "RouterNotAnswering" : "WorkloadNotRunning";

		kars_phase_set(k, status, "Pending");
		conditions(status, "False", seen.running ? "True" : "False", reason,
			   seen.message[0] ? seen.message : reason, gen, now);
		kars_condition_set(status, "Progressing", "True", reason, NULL, gen, now);
		res->waiting = true;
		res->requeue_after_ms = KARS_REQUEUE_WAITING_MS;
	}
out:
	json_decref(plan);
	json_decref(egress);
	json_decref(approvals);
	return ret;
}

int kars_reconcile_sandbox(const struct kars_sandbox_env *env, const char *ns, const char *name,
			   struct kars_reconcile_result *res, struct kars_err *err)
{
	json_t *obj = NULL, *status = NULL, *old = NULL, *out = NULL;
	long long gen;
	char now[32];
	int ret;

	memset(res, 0, sizeof(*res));
	if (env->now)
		snprintf(now, sizeof(now), "%s", env->now);
	else
		kars_now_rfc3339(now, sizeof(now));
	ret = kars_store_get(env->store, kars_kind_find("KarsSandbox"), ns, name, &obj, err);
	if (ret == -ENOENT) {
		kars_err_clear(err);
		return 0;
	}
	if (ret)
		return ret;
	if (json_object_get(md_of(obj), "deletionTimestamp")) {
		if (!has_finalizer(obj))
			goto done;
		if (env->backend)
			ret = env->backend->ops->remove(env->backend->ctx, ns, name, err);
		if (!ret)
			ret = set_finalizer(env, &obj, false, err);
		goto done;
	}
	if (!has_finalizer(obj)) {
		ret = set_finalizer(env, &obj, true, err);
		if (ret)
			goto done;
	}
	gen = json_integer_value(json_object_get(md_of(obj), "generation"));
	old = json_incref(json_object_get(obj, "status"));
	status = old ? json_deep_copy(old) : json_object();
	if (json_integer_value(json_object_get(status, "observedGeneration")) != gen)
		json_object_del(status, "a2aWindowStart"); /* a new spec: a new window */
	json_object_set_new(status, "observedGeneration", json_integer(gen));
	ret = run(env, obj, status, gen, now, res, err);
	if (!ret && !json_equal(status, old ?: json_null())) {
		json_object_set(obj, "status", status);
		ret = kars_store_update_status(env->store, obj, &out, err);
		res->status_written = ret == 0;
	}
done:
	json_decref(status);
	json_decref(old);
	json_decref(obj);
	json_decref(out);
	return ret;
}

int kars_reconcile_sandbox_fn(void *ctx, const char *ns, const char *name,
			      struct kars_reconcile_result *res, struct kars_err *err)
{
	return kars_reconcile_sandbox(ctx, ns, name, res, err);
}
