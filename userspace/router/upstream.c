/* upstream.c - see upstream.h. */
#include "upstream.h"

#include <event2/event.h>
#include <stdlib.h>

struct kars_upstream {
	CURLM *multi;
	struct event_base *base;
	struct event *timer;
	int running;
};

struct transfer {
	kars_upstream_done_fn done;
	void *arg;
};

static void finish_done(struct kars_upstream *u)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(u->multi, &left))) {
		struct transfer *t = NULL;
		CURL *easy = msg->easy_handle;
		CURLcode result = msg->data.result;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
		curl_multi_remove_handle(u->multi, easy);
		if (t) {
			t->done(easy, result, t->arg);
			free(t);
		}
	}
}

static void on_socket_event(evutil_socket_t fd, short kind, void *arg)
{
	struct kars_upstream *u = arg;
	int action =
	    (kind & EV_READ ? CURL_CSELECT_IN : 0) | (kind & EV_WRITE ? CURL_CSELECT_OUT : 0);

	curl_multi_socket_action(u->multi, fd, action, &u->running);
	/* A done callback may start the next transfer (failover); libcurl arms
	 * the timer for it through timer_cb, so the timer is libcurl's alone. */
	finish_done(u);
}

static void on_timer(evutil_socket_t fd, short kind, void *arg)
{
	struct kars_upstream *u = arg;

	curl_multi_socket_action(u->multi, CURL_SOCKET_TIMEOUT, 0, &u->running);
	finish_done(u);
}

static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct kars_upstream *u = userp;
	struct event *ev = socketp;
	short kind;

	if (what == CURL_POLL_REMOVE) {
		if (ev)
			event_free(ev);
		curl_multi_assign(u->multi, s, NULL);
		return 0;
	}
	kind = (short)((what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0) |
		       EV_PERSIST);
	if (ev) {
		event_del(ev);
		event_assign(ev, u->base, s, kind, on_socket_event, u);
	} else {
		ev = event_new(u->base, s, kind, on_socket_event, u);
		if (!ev)
			return -1;
		curl_multi_assign(u->multi, s, ev);
	}
	return event_add(ev, NULL);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct kars_upstream *u = userp;
	struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};

	if (timeout_ms < 0)
		return evtimer_del(u->timer);
	return evtimer_add(u->timer, &tv);
}

struct kars_upstream *kars_upstream_new(struct event_base *base)
{
	struct kars_upstream *u = calloc(1, sizeof(*u));

	if (!u)
		return NULL;
	u->base = base;
	u->multi = curl_multi_init();
	u->timer = evtimer_new(base, on_timer, u);
	if (!u->multi || !u->timer) {
		kars_upstream_free(u);
		return NULL;
	}
	curl_multi_setopt(u->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(u->multi, CURLMOPT_SOCKETDATA, u);
	curl_multi_setopt(u->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(u->multi, CURLMOPT_TIMERDATA, u);
	/* Keep idle upstream connections for reuse: by default libcurl caches
	 * 4 per transfer in progress, so with few in flight it closes and
	 * reopens them (bench-router measured 236 new connections per 1,000
	 * requests without this, 0.02 with it). */
	curl_multi_setopt(u->multi, CURLMOPT_MAXCONNECTS, 256L);
	return u;
}

void kars_upstream_free(struct kars_upstream *u)
{
	if (!u)
		return;
	if (u->multi)
		curl_multi_cleanup(u->multi);
	if (u->timer)
		event_free(u->timer);
	free(u);
}

int kars_upstream_start(struct kars_upstream *u, CURL *easy, kars_upstream_done_fn done, void *arg)
{
	struct transfer *t = calloc(1, sizeof(*t));

	if (!t)
		return -1;
	t->done = done;
	t->arg = arg;
	curl_easy_setopt(easy, CURLOPT_PRIVATE, t);
	if (curl_multi_add_handle(u->multi, easy) != CURLM_OK) {
		curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
		free(t);
		return -1;
	}
	return 0;
}

void kars_upstream_cancel(struct kars_upstream *u, CURL *easy)
{
	struct transfer *t = NULL;

	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
	curl_multi_remove_handle(u->multi, easy);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
	free(t);
}
