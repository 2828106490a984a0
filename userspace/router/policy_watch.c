/* policy_watch.c - see policy_watch.h. */
#include "policy_watch.h"

#include <errno.h>
#include <event2/event.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "log.h"
#include "router.h"

struct kars_policy_watch {
	struct kars_router *r;
	int inotify_fd;
	struct event *on_inotify;
	struct event *settle; /* a burst of inotify events, then one check */
	struct event *poll;
	bool seen; /* sig is of a file we looked at */
	struct stat sig;
};

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

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
	if (w->seen && same_file(&st, &w->sig))
		return;
	w->sig = st;
	w->seen = true;
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

static void on_settle(evutil_socket_t fd, short what, void *arg)
{
	kars_policy_watch_check(arg);
}

static void on_inotify(evutil_socket_t fd, short what, void *arg)
{
	struct kars_policy_watch *w = arg;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	struct timeval settle = {.tv_usec = 20000};

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	evtimer_add(w->settle, &settle);
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
	kars_policy_watch_check(arg);
}

struct kars_policy_watch *kars_policy_watch_new(struct kars_router *r)
{
	struct kars_policy_watch *w = calloc(1, sizeof(*w));
	struct timeval every = {.tv_sec = r->cfg.policy_poll_ms / 1000,
				.tv_usec = (r->cfg.policy_poll_ms % 1000) * 1000};
	char dir[sizeof(r->cfg.policy_file)];

	if (!w)
		return NULL;
	w->r = r;
	w->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	snprintf(dir, sizeof(dir), "%s", r->cfg.policy_file);
	if (w->inotify_fd >= 0 &&
	    inotify_add_watch(w->inotify_fd, dirname(dir),
			      IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_CLOSE_WRITE | IN_DELETE |
				  IN_ATTRIB | IN_MODIFY) < 0) {
		log_warn("policy: cannot watch %s (%s): polling every %ld ms only", dir,
			 strerror(errno), r->cfg.policy_poll_ms);
		close(w->inotify_fd);
		w->inotify_fd = -1;
	}
	w->settle = evtimer_new(r->base, on_settle, w);
	w->poll = event_new(r->base, -1, EV_PERSIST, on_poll, w);
	if (w->inotify_fd >= 0)
		w->on_inotify =
		    event_new(r->base, w->inotify_fd, EV_READ | EV_PERSIST, on_inotify, w);
	if (!w->settle || !w->poll || (w->inotify_fd >= 0 && !w->on_inotify) ||
	    event_add(w->poll, &every) || (w->on_inotify && event_add(w->on_inotify, NULL))) {
		kars_policy_watch_free(w);
		return NULL;
	}
	kars_policy_watch_check(w);
	return w;
}

void kars_policy_watch_free(struct kars_policy_watch *w)
{
	if (!w)
		return;
	if (w->on_inotify)
		event_free(w->on_inotify);
	if (w->settle)
		event_free(w->settle);
	if (w->poll)
		event_free(w->poll);
	if (w->inotify_fd >= 0)
		close(w->inotify_fd);
	free(w);
}
