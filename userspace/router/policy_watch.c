/* policy_watch.c - see policy_watch.h. */
#include "policy_watch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "audit.h"
#include "file_watch.h"
#include "log.h"
#include "router.h"

struct kars_policy_watch {
	struct kars_router *r;
	struct kars_file_watch *fw;
	bool seen; /* sig is of a file we looked at */
	struct stat sig;
};

static void audit_reload(struct kars_router *r, const char *decision, const char *reason)
{
	struct kars_audit_record rec = {0};

	rec.sandbox = r->cfg.sandbox;
	rec.principal = "controller";
	rec.action = "policy.reload";
	rec.decision = decision;
	rec.reason = reason;
	kars_router_audit(r, &rec);
}

static void swap_policy(struct kars_router *r, struct kars_inference_policy *p)
{
	kars_inference_policy_unref(r->policy);
	r->policy = p;
	/* An override the new policy no longer allows ends with it. */
	if (r->model_override[0] &&
	    (!p || !kars_inference_policy_allows_model(p, r->model_override))) {
		log_warn("model override %s is not allowed by the new policy: cleared",
			 r->model_override);
		r->model_override[0] = '\0';
	}
}

void kars_policy_watch_check(struct kars_policy_watch *w)
{
	struct kars_router *r = w->r;
	const char *provider = r->cfg.kind == KARS_UPSTREAM_AZURE ? "azure" : "openai";
	struct kars_inference_policy *p;
	struct kars_err err = {0};
	char reason[2048];
	struct stat st;

	if (stat(r->cfg.policy_file, &st)) {
		int e = errno;

		if (w->seen || r->policy || !r->policy_error[0]) {
			snprintf(r->policy_error, sizeof(r->policy_error), "%.400s: %.100s",
				 r->cfg.policy_file, strerror(e));
			if (r->policy) {
				log_error("policy %s is gone (%s): inference is refused until "
					  "one is delivered",
					  r->cfg.policy_file, strerror(e));
				audit_reload(r, "cleared", r->policy_error);
			} else {
				log_warn("no policy yet: %s", r->policy_error);
			}
			swap_policy(r, NULL);
		}
		w->seen = false;
		return;
	}
	if (!kars_file_sig_changed(&st, &w->sig, &w->seen))
		return;
	p = kars_inference_policy_load(r->cfg.policy_file, provider, r->cfg.sandbox, &err);
	if (!p) {
		r->policy_reload_errors++;
		snprintf(r->policy_error, sizeof(r->policy_error), "%s", err.msg);
		log_error("policy not loaded, %s: %s",
			  r->policy ? "the previous one stays in force"
				    : "inference is refused until a valid one arrives",
			  err.msg);
		snprintf(reason, sizeof(reason), "refused (%s in force): %s",
			 r->policy ? r->policy->digest : "no policy", err.msg);
		audit_reload(r, "deny", reason);
		return;
	}
	r->policy_error[0] = '\0';
	if (r->policy && strcmp(r->policy->digest, p->digest) == 0) {
		kars_inference_policy_unref(p); /* touched, not changed */
		return;
	}
	r->policy_reloads++;
	log_info("policy %s loaded from %s: %s", p->name, r->cfg.policy_file, p->digest);
	snprintf(reason, sizeof(reason), "%.320s %s from %.1024s (was %s)", p->name, p->digest,
		 r->cfg.policy_file, r->policy ? r->policy->digest : "none");
	swap_policy(r, p);
	audit_reload(r, "allow", reason);
}

static void check(void *arg)
{
	kars_policy_watch_check(arg);
}

struct kars_policy_watch *kars_policy_watch_new(struct kars_router *r)
{
	struct kars_policy_watch *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->r = r;
	w->fw = kars_file_watch_new(r->base, r->cfg.policy_file, r->cfg.policy_poll_ms, check, w);
	if (!w->fw) {
		free(w);
		return NULL;
	}
	kars_policy_watch_check(w);
	return w;
}

void kars_policy_watch_free(struct kars_policy_watch *w)
{
	if (!w)
		return;
	kars_file_watch_free(w->fw);
	free(w);
}
