/* controller_ip.c - see controller_ip.h. */
#include "controller_ip.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BACKOFF_BASE_MS 1000
#define BACKOFF_MAX_MS	300000
#define JITTER_PCT	20

struct kars_ipc {
	const struct kars_ip_env *env;
	struct kars_workqueue *q;
	struct kars_watch *policies, *sandboxes;
	char last_error[1024];
};

int kars_ipc_new(const struct kars_ip_env *env, uint64_t seed, struct kars_ipc **out,
		 struct kars_err *err)
{
	struct kars_ipc *c = calloc(1, sizeof(*c));
	int ret;

	if (!c)
		return kars_err_set(err, ENOMEM, "controller: out of memory");
	c->env = env;
	c->q = kars_wq_new(BACKOFF_BASE_MS, BACKOFF_MAX_MS, JITTER_PCT, seed);
	if (!c->q) {
		free(c);
		return kars_err_set(err, ENOMEM, "controller: out of memory");
	}
	ret = kars_store_watch(env->store, kars_kind_find("InferencePolicy"), NULL, 0, &c->policies,
			       err);
	if (!ret)
		ret = kars_store_watch(env->store, kars_kind_find("KarsSandbox"), NULL, 0,
				       &c->sandboxes, err);
	if (ret) {
		kars_ipc_free(c);
		return ret;
	}
	*out = c;
	return 0;
}

void kars_ipc_free(struct kars_ipc *c)
{
	if (!c)
		return;
	kars_watch_close(c->policies);
	kars_watch_close(c->sandboxes);
	kars_wq_free(c->q);
	free(c);
}

static void enqueue(struct kars_ipc *c, const char *ns, const char *name, uint64_t now)
{
	char key[320];

	if (!ns || !name)
		return;
	snprintf(key, sizeof(key), "%s/%s", ns, name);
	kars_wq_add(c->q, key, now);
}

static void drain(struct kars_ipc *c, struct kars_watch *w, bool sandbox, uint64_t now)
{
	struct kars_event ev;
	struct kars_err err = {};

	while (kars_watch_next(w, 0, &ev, &err) == 0) {
		const json_t *md = json_object_get(ev.object, "metadata");
		const char *ns = json_string_value(json_object_get(md, "namespace"));

		if (sandbox)
			enqueue(
			    c, ns,
			    json_string_value(json_object_get(
				json_object_get(json_object_get(ev.object, "spec"), "inferenceRef"),
				"name")),
			    now);
		else
			enqueue(c, ns, json_string_value(json_object_get(md, "name")), now);
		json_decref(ev.object);
	}
}

int64_t kars_ipc_step(struct kars_ipc *c, uint64_t now_ms)
{
	const char *key;

	drain(c, c->policies, false, now_ms);
	drain(c, c->sandboxes, true, now_ms);
	while ((key = kars_wq_get(c->q, now_ms))) {
		struct kars_reconcile_result res;
		struct kars_err err = {};
		char ns[320];
		const char *slash = strchr(key, '/');
		int ret;

		snprintf(ns, sizeof(ns), "%.*s", (int)(slash - key), key);
		ret = kars_reconcile_inferencepolicy(c->env, ns, slash + 1, &res, &err);
		if (ret) {
			snprintf(c->last_error, sizeof(c->last_error), "%s: %s", key, err.msg);
			kars_wq_add_rate_limited(c->q, key, now_ms);
		} else {
			c->last_error[0] = '\0';
			kars_wq_forget(c->q, key);
			if (res.requeue_after_ms)
				kars_wq_add_after(c->q, key, res.requeue_after_ms, now_ms);
		}
		kars_wq_done(c->q, key, now_ms);
	}
	return kars_wq_next_due_ms(c->q, now_ms);
}

void kars_ipc_fds(const struct kars_ipc *c, int fds[2])
{
	fds[0] = c->policies->ops->fd(c->policies);
	fds[1] = c->sandboxes->ops->fd(c->sandboxes);
}

struct kars_workqueue *kars_ipc_queue(struct kars_ipc *c)
{
	return c->q;
}

const char *kars_ipc_last_error(const struct kars_ipc *c)
{
	return c->last_error;
}
