/* controller.c - see controller.h. */
#include "controller.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BACKOFF_BASE_MS 1000
#define BACKOFF_MAX_MS	300000
#define JITTER_PCT	20
#define SANDBOX_KIND	"KarsSandbox"

struct kars_controller {
	struct kars_ctl_opts opts;
	struct kars_workqueue *q;
	struct kars_watch *watches[KARS_CTL_MAX_FDS];
	const struct kars_kind *kinds[KARS_CTL_MAX_FDS];
	size_t n;
	uint64_t last_rv;
	char last_error[1024];
};

static const char *md_str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(json_object_get(o, "metadata"), key));
}

static void enqueue(struct kars_controller *c, const char *kind, const json_t *obj, uint64_t now)
{
	const char *ns = md_str(obj, "namespace"), *name = md_str(obj, "name");
	char key[400];

	if (!ns || !name)
		return;
	snprintf(key, sizeof(key), "%s/%s/%s", kind, ns, name);
	kars_wq_add(c->q, key, now);
}

/* A sandbox changed: every policy of its namespace may have to deliver to
 * it or take a file back, and the sandbox itself is reconciled. */
static void sandbox_changed(struct kars_controller *c, const json_t *sb, uint64_t now)
{
	const char *ns = md_str(sb, "namespace");

	for (size_t i = 0; i < c->n; i++) {
		struct kars_err err = {};
		json_t *items = NULL, *o;
		uint64_t rv;
		size_t j;

		if (!strcmp(c->kinds[i]->kind, SANDBOX_KIND))
			continue;
		if (kars_store_list(c->opts.env->store, c->kinds[i], ns, &items, &rv, &err)) {
			snprintf(c->last_error, sizeof(c->last_error), "list %s: %s",
				 c->kinds[i]->kind, err.msg);
			continue;
		}
		json_array_foreach(items, j, o) enqueue(c, c->kinds[i]->kind, o, now);
		json_decref(items);
	}
	if (c->opts.reconcile_sandbox)
		enqueue(c, SANDBOX_KIND, sb, now);
}

/* A policy a sandbox depends on changed (its InferencePolicy's model, its
 * EgressApprovals' hosts): the namespace's sandboxes look again. */
static void sandboxes_of(struct kars_controller *c, const json_t *obj, uint64_t now)
{
	struct kars_err err = {};
	json_t *items = NULL, *o;
	uint64_t rv;
	size_t j;

	if (kars_store_list(c->opts.env->store, kars_kind_find(SANDBOX_KIND),
			    md_str(obj, "namespace"), &items, &rv, &err)) {
		snprintf(c->last_error, sizeof(c->last_error), "list %s: %s", SANDBOX_KIND,
			 err.msg);
		return;
	}
	json_array_foreach(items, j, o) enqueue(c, SANDBOX_KIND, o, now);
	json_decref(items);
}

static void object_changed(struct kars_controller *c, const struct kars_kind *k, const json_t *obj,
			   uint64_t now)
{
	if (!strcmp(k->kind, SANDBOX_KIND)) {
		sandbox_changed(c, obj, now);
		return;
	}
	enqueue(c, k->kind, obj, now);
	if (c->opts.reconcile_sandbox &&
	    (!strcmp(k->kind, "InferencePolicy") || !strcmp(k->kind, "EgressApproval")))
		sandboxes_of(c, obj, now);
}

int kars_ctl_new(const struct kars_ctl_opts *opts, struct kars_controller **out,
		 struct kars_err *err)
{
	struct kars_controller *c = calloc(1, sizeof(*c));
	int ret = 0;

	if (!c)
		return kars_err_set(err, ENOMEM, "controller: out of memory");
	c->opts = *opts;
	c->q = kars_wq_new(BACKOFF_BASE_MS, BACKOFF_MAX_MS, JITTER_PCT, opts->seed);
	if (!c->q) {
		free(c);
		return kars_err_set(err, ENOMEM, "controller: out of memory");
	}
	for (size_t i = 0; kars_policy_kinds[i]; i++)
		c->kinds[c->n++] = kars_kind_find(kars_policy_kinds[i]->kind);
	c->kinds[c->n++] = kars_kind_find(SANDBOX_KIND);
	/* list, queue what is there, watch from the list's version */
	for (size_t i = 0; i < c->n && !ret; i++) {
		json_t *items = NULL, *o;
		uint64_t rv = 0;
		size_t j;

		ret = kars_store_list(opts->env->store, c->kinds[i], NULL, &items, &rv, err);
		if (ret)
			break;
		json_array_foreach(items, j, o) object_changed(c, c->kinds[i], o, 0);
		json_decref(items);
		if (rv > c->last_rv)
			c->last_rv = rv;
		ret =
		    kars_store_watch(opts->env->store, c->kinds[i], NULL, rv, &c->watches[i], err);
	}
	if (ret) {
		kars_ctl_free(c);
		return ret;
	}
	*out = c;
	return 0;
}

void kars_ctl_free(struct kars_controller *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		if (c->watches[i])
			kars_watch_close(c->watches[i]);
	kars_wq_free(c->q);
	free(c);
}

static void drain(struct kars_controller *c, size_t i, uint64_t now)
{
	struct kars_event ev;
	struct kars_err err = {};

	while (kars_watch_next(c->watches[i], 0, &ev, &err) == 0) {
		if (ev.resource_version > c->last_rv)
			c->last_rv = ev.resource_version;
		object_changed(c, c->kinds[i], ev.object, now);
		json_decref(ev.object);
	}
}

static const struct kars_policy_kind *policy_kind(const char *kind)
{
	for (size_t i = 0; kars_policy_kinds[i]; i++)
		if (!strcmp(kars_policy_kinds[i]->kind, kind))
			return kars_policy_kinds[i];
	return NULL;
}

/* "Kind/ns/name" -> one reconcile. */
static int reconcile_key(struct kars_controller *c, const char *key,
			 struct kars_reconcile_result *res, struct kars_err *err)
{
	char kind[64], ns[320];
	const char *s1 = strchr(key, '/'), *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
	const struct kars_policy_kind *pk;

	if (!s2)
		return kars_err_set(err, EINVAL, "bad key %s", key);
	snprintf(kind, sizeof(kind), "%.*s", (int)(s1 - key), key);
	snprintf(ns, sizeof(ns), "%.*s", (int)(s2 - s1 - 1), s1 + 1);
	if (!strcmp(kind, SANDBOX_KIND))
		return c->opts.reconcile_sandbox(c->opts.sandbox_ctx, ns, s2 + 1, res, err);
	pk = policy_kind(kind);
	if (!pk)
		return kars_err_set(err, EINVAL, "bad key %s", key);
	return kars_reconcile_policy(pk, c->opts.env, ns, s2 + 1, res, err);
}

int64_t kars_ctl_step(struct kars_controller *c, uint64_t now_ms)
{
	const char *key;

	for (size_t i = 0; i < c->n; i++)
		drain(c, i, now_ms);
	while ((key = kars_wq_get(c->q, now_ms))) {
		struct kars_reconcile_result res;
		struct kars_err err = {};
		int ret = reconcile_key(c, key, &res, &err);

		if (ret) {
			snprintf(c->last_error, sizeof(c->last_error), "%s: %s", key, err.msg);
			kars_wq_add_rate_limited(c->q, key, now_ms);
		} else if (res.waiting) {
			/* not an error, but the same backoff: 1 s, 2 s, 4 s, ...
			 * up to what the reconciler asked (the earliest wins) */
			c->last_error[0] = '\0';
			kars_wq_add_rate_limited(c->q, key, now_ms);
			kars_wq_add_after(c->q, key, res.requeue_after_ms, now_ms);
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

size_t kars_ctl_fds(const struct kars_controller *c, int fds[KARS_CTL_MAX_FDS])
{
	for (size_t i = 0; i < c->n; i++)
		fds[i] = c->watches[i]->ops->fd(c->watches[i]);
	return c->n;
}

uint64_t kars_ctl_last_rv(const struct kars_controller *c)
{
	return c->last_rv;
}

struct kars_workqueue *kars_ctl_queue(struct kars_controller *c)
{
	return c->q;
}

const char *kars_ctl_last_error(const struct kars_controller *c)
{
	return c->last_error;
}
