/* file_watch.c - see file_watch.h. */
#include "file_watch.h"

#include <errno.h>
#include <event2/event.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "log.h"

struct kars_file_watch {
	void (*check)(void *arg);
	void *arg;
	int inotify_fd;
	struct event *on_inotify;
	struct event *settle; /* a burst of inotify events, then one check */
	struct event *poll;
};

bool kars_file_sig_changed(const struct stat *a, struct stat *sig, bool *seen)
{
	const struct stat *b = sig;

	if (*seen && a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	    a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	    a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec)
		return false;
	*sig = *a;
	*seen = true;
	return true;
}

static void on_settle(evutil_socket_t fd, short what, void *arg)
{
	struct kars_file_watch *w = arg;

	w->check(w->arg);
}

static void on_inotify(evutil_socket_t fd, short what, void *arg)
{
	struct kars_file_watch *w = arg;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	struct timeval settle = {.tv_usec = 20000};

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	evtimer_add(w->settle, &settle);
}

struct kars_file_watch *kars_file_watch_new(struct event_base *base, const char *path, long poll_ms,
					    void (*check)(void *arg), void *arg)
{
	struct kars_file_watch *w = calloc(1, sizeof(*w));
	struct timeval every = {.tv_sec = poll_ms / 1000, .tv_usec = (poll_ms % 1000) * 1000};
	char dir[4096];

	if (!w)
		return NULL;
	w->check = check;
	w->arg = arg;
	w->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	snprintf(dir, sizeof(dir), "%s", path);
	if (w->inotify_fd >= 0 &&
	    inotify_add_watch(w->inotify_fd, dirname(dir),
			      IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_CLOSE_WRITE | IN_DELETE |
				  IN_ATTRIB | IN_MODIFY) < 0) {
		log_warn("cannot watch %s (%s): polling every %ld ms only", dir, strerror(errno),
			 poll_ms);
		close(w->inotify_fd);
		w->inotify_fd = -1;
	}
	w->settle = evtimer_new(base, on_settle, w);
	w->poll = event_new(base, -1, EV_PERSIST, on_settle, w);
	if (w->inotify_fd >= 0)
		w->on_inotify = event_new(base, w->inotify_fd, EV_READ | EV_PERSIST, on_inotify, w);
	if (!w->settle || !w->poll || (w->inotify_fd >= 0 && !w->on_inotify) ||
	    event_add(w->poll, &every) || (w->on_inotify && event_add(w->on_inotify, NULL))) {
		kars_file_watch_free(w);
		return NULL;
	}
	return w;
}

void kars_file_watch_free(struct kars_file_watch *w)
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
