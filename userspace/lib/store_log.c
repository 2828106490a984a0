/* store_log.c - the file store's write-ahead event log, crash recovery and
 * watch.
 *
 * Every write first appends one line {"type","rv","object"} to events.log
 * and fsyncs it (the commit point), then replaces the object's file
 * (write, fsync, rename, fsync the directory) or unlinks it. A writer killed
 * between the two leaves a log one event ahead; the next operation, under
 * the store lock, applies that event. A writer killed mid-append leaves a
 * line without its newline; it was never acknowledged and is cut off. So no
 * object file is ever torn and no acknowledged write is ever lost.
 * Watchers read the same log: from any resourceVersion, then live through
 * inotify, consuming only complete lines.
 *
 * Compaction replaces the log by a single COMPACTED line carrying the last
 * resourceVersion (the object files are the state). A watcher or another
 * process's store handle still reading the old log (its open fd keeps the
 * old inode) reads it to its end, which is complete since compaction holds
 * the lock, then notices the path names another inode and follows the new
 * log from its start. A watch from a version older than the compaction is
 * Gone (-ERANGE): list again.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store_priv.h"

const char *store_event_word(enum kars_event_type t)
{
	return t == KARS_ADDED ? "ADDED" : t == KARS_MODIFIED ? "MODIFIED" : "DELETED";
}

static enum kars_event_type event_type(const char *s)
{
	if (s && !strcmp(s, "ADDED"))
		return KARS_ADDED;
	if (s && !strcmp(s, "MODIFIED"))
		return KARS_MODIFIED;
	if (s && !strcmp(s, "DELETED"))
		return KARS_DELETED;
	return 0;
}

uint64_t kars_object_rv(const json_t *obj)
{
	const char *s =
	    json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
	char *end;
	unsigned long long v;

	if (!s || !*s)
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	return errno || *end ? 0 : v;
}

static int mkdirs_at(int dirfd, const char *rel)
{
	char buf[PATH_MAX];

	snprintf(buf, sizeof(buf), "%s", rel);
	for (char *p = strchr(buf, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (mkdirat(dirfd, buf, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return 0;
}

/* fsync of the directory holding rel, so a rename or unlink is durable. */
static int sync_parent(int dirfd, const char *rel)
{
	char buf[PATH_MAX];
	char *slash;
	int fd, ret = 0;

	snprintf(buf, sizeof(buf), "%s", rel);
	slash = strrchr(buf, '/');
	if (slash)
		*slash = '\0';
	fd = slash ? openat(dirfd, buf, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : dup(dirfd);
	if (fd < 0)
		return -errno;
	if (fsync(fd))
		ret = -errno;
	close(fd);
	return ret;
}

int store_apply_event(struct file_store *fs, enum kars_event_type type, const json_t *obj,
		      struct kars_err *err)
{
	char rel[PATH_MAX], tmp[PATH_MAX + 8];
	char *text = NULL;
	size_t len;
	int fd = -1, ret;

	if (store_object_path(obj, rel, sizeof(rel)))
		return kars_err_set(err, EINVAL, "store: object without kind, namespace or name");
	if (type == KARS_DELETED) {
		if (unlinkat(fs->dirfd, rel, 0) && errno != ENOENT)
			return kars_err_set(err, errno, "store: unlink %s: %s", rel,
					    strerror(errno));
		ret = sync_parent(fs->dirfd, rel);
		return ret ? kars_err_set(err, -ret, "store: fsync %s: %s", rel, strerror(-ret))
			   : 0;
	}
	ret = mkdirs_at(fs->dirfd, rel);
	if (ret)
		return kars_err_set(err, -ret, "store: mkdir for %s: %s", rel, strerror(-ret));
	text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text)
		return kars_err_set(err, ENOMEM, "store: out of memory");
	len = strlen(text);
	snprintf(tmp, sizeof(tmp), "%s.tmp", rel);
	fd = openat(fs->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1 ||
	    fsync(fd)) {
		ret = kars_err_set(err, errno ? errno : EIO, "store: write %s: %s", tmp,
				   strerror(errno ? errno : EIO));
		goto out;
	}
	close(fd);
	fd = -1;
	if (renameat(fs->dirfd, tmp, fs->dirfd, rel)) {
		ret = kars_err_set(err, errno, "store: rename %s: %s", rel, strerror(errno));
		goto out;
	}
	ret = sync_parent(fs->dirfd, rel);
	if (ret)
		ret = kars_err_set(err, -ret, "store: fsync %s: %s", rel, strerror(-ret));
out:
	if (fd >= 0) {
		close(fd);
		unlinkat(fs->dirfd, tmp, 0);
	}
	free(text);
	return ret;
}

/* Reads the log from log_seen on: remembers the last complete line and its
 * rv, and cuts off an incomplete tail (a writer died mid-append). */
static int scan_tail(struct file_store *fs, struct kars_err *err)
{
	struct stat st;
	char *buf, *line, *nl;
	off_t size, end;
	ssize_t n;

	if (fstat(fs->logfd, &st))
		return kars_err_set(err, errno, "store: stat %s: %s", STORE_LOG, strerror(errno));
	size = st.st_size;
	if (size < fs->log_seen) /* cannot shrink under us: we hold the lock */
		return kars_err_set(err, EIO, "store: %s shrank", STORE_LOG);
	if (size == fs->log_seen)
		return 0;
	buf = malloc((size_t)(size - fs->log_seen) + 1);
	if (!buf)
		return kars_err_set(err, ENOMEM, "store: out of memory");
	n = pread(fs->logfd, buf, (size_t)(size - fs->log_seen), fs->log_seen);
	if (n != size - fs->log_seen) {
		free(buf);
		return kars_err_set(err, EIO, "store: read %s", STORE_LOG);
	}
	buf[n] = '\0';
	end = fs->log_seen;
	for (line = buf; (nl = memchr(line, '\n', (size_t)(buf + n - line))); line = nl + 1) {
		json_t *ev;

		*nl = '\0';
		ev = json_loads(line, 0, NULL);
		if (!ev || !json_is_integer(json_object_get(ev, "rv"))) {
			json_decref(ev);
			free(buf);
			return kars_err_set(err, EIO, "store: %s: corrupt line at byte %lld",
					    STORE_LOG, (long long)end);
		}
		fs->last_rv = (uint64_t)json_integer_value(json_object_get(ev, "rv"));
		json_decref(ev);
		free(fs->last_line);
		fs->last_line = strdup(line);
		end += nl - line + 1;
	}
	free(buf);
	if (end != size) {
		/* torn append: never fsynced as a whole, never acknowledged */
		if (ftruncate(fs->logfd, end) || fsync(fs->logfd))
			return kars_err_set(err, errno, "store: truncate %s: %s", STORE_LOG,
					    strerror(errno));
	}
	fs->log_seen = end;
	return 0;
}

/* The last event reached its file? If not, apply it now. */
static int redo_last(struct file_store *fs, struct kars_err *err)
{
	json_t *ev, *obj, *cur;
	char rel[PATH_MAX];
	enum kars_event_type type;
	uint64_t rv;
	int ret = 0, fd;

	if (!fs->last_line)
		return 0;
	ev = json_loads(fs->last_line, 0, NULL);
	if (!strcmp(json_string_value(json_object_get(ev, "type")) ?: "", STORE_COMPACTED)) {
		json_decref(ev); /* nothing to apply: compaction ran after the last write */
		return 0;
	}
	obj = json_object_get(ev, "object");
	type = event_type(json_string_value(json_object_get(ev, "type")));
	rv = (uint64_t)json_integer_value(json_object_get(ev, "rv"));
	if (!type || store_object_path(obj, rel, sizeof(rel))) {
		json_decref(ev);
		return kars_err_set(err, EIO, "store: %s: malformed last event", STORE_LOG);
	}
	fd = openat(fs->dirfd, rel, O_RDONLY | O_CLOEXEC);
	cur = NULL;
	if (fd >= 0) {
		cur = json_loadfd(fd, 0, NULL);
		close(fd);
	}
	if (type == KARS_DELETED ? cur && kars_object_rv(cur) < rv
				 : !cur || kars_object_rv(cur) < rv)
		ret = store_apply_event(fs, type, obj, err);
	json_decref(cur);
	json_decref(ev);
	return ret;
}

/* Another handle compacted the log: reopen it and read it from the start. */
static int follow_compaction(struct file_store *fs, struct kars_err *err)
{
	struct stat have, now;
	int fd;

	if (fstat(fs->logfd, &have))
		return kars_err_set(err, errno, "store: stat %s: %s", STORE_LOG, strerror(errno));
	if (fstatat(fs->dirfd, STORE_LOG, &now, 0) == 0 && now.st_ino == have.st_ino &&
	    now.st_dev == have.st_dev)
		return 0;
	fd = openat(fs->dirfd, STORE_LOG, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return kars_err_set(err, errno, "store: %s: %s", STORE_LOG, strerror(errno));
	close(fs->logfd);
	fs->logfd = fd;
	fs->log_seen = 0;
	free(fs->last_line);
	fs->last_line = NULL;
	return 0;
}

int store_compact(struct file_store *fs, struct kars_err *err)
{
	char line[64];
	int fd, ret, len;

	len = snprintf(line, sizeof(line), "{\"rv\":%llu,\"type\":\"%s\"}\n",
		       (unsigned long long)fs->last_rv, STORE_COMPACTED);
	errno = 0;
	fd = openat(fs->dirfd, STORE_LOG_NEW, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ret = fd < 0 || write(fd, line, (size_t)len) != len || fsync(fd) ? -1 : 0;
	if (!ret && renameat(fs->dirfd, STORE_LOG_NEW, fs->dirfd, STORE_LOG))
		ret = -1;
	if (ret) {
		ret = kars_err_set(err, errno ? errno : EIO, "store: compact %s: %s", STORE_LOG,
				   strerror(errno ? errno : EIO));
		if (fd >= 0)
			close(fd);
		unlinkat(fs->dirfd, STORE_LOG_NEW, 0);
		return ret;
	}
	if (fsync(fs->dirfd))
		return kars_err_set(err, errno, "store: fsync %s: %s", fs->dir, strerror(errno));
	close(fs->logfd);
	fs->logfd = fd;
	fs->log_seen = len;
	free(fs->last_line);
	line[len - 1] = '\0';
	fs->last_line = strdup(line);
	return 0;
}

int store_lock(struct file_store *fs, struct kars_err *err)
{
	int ret;

	if (flock(fs->lockfd, LOCK_EX))
		return kars_err_set(err, errno, "store: lock: %s", strerror(errno));
	ret = follow_compaction(fs, err);
	if (!ret)
		ret = scan_tail(fs, err);
	if (!ret)
		ret = redo_last(fs, err);
	if (ret)
		flock(fs->lockfd, LOCK_UN);
	return ret;
}

void store_unlock(struct file_store *fs)
{
	flock(fs->lockfd, LOCK_UN);
}

int store_commit(struct file_store *fs, enum kars_event_type type, json_t *obj,
		 struct kars_err *err)
{
	uint64_t rv = fs->last_rv + 1;
	char rvs[32], *line, *text;
	json_t *ev;
	size_t len;
	ssize_t n;
	int ret;

	snprintf(rvs, sizeof(rvs), "%llu", (unsigned long long)rv);
	json_object_set_new(json_object_get(obj, "metadata"), "resourceVersion", json_string(rvs));
	ev = json_pack("{s:s,s:I,s:O}", "type", store_event_word(type), "rv", (json_int_t)rv,
		       "object", obj);
	text = ev ? json_dumps(ev, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(ev);
	if (!text || asprintf(&line, "%s\n", text) < 0) {
		free(text);
		return kars_err_set(err, ENOMEM, "store: out of memory");
	}
	len = strlen(line);
	n = pwrite(fs->logfd, line, len, fs->log_seen);
	if (n != (ssize_t)len || fsync(fs->logfd)) {
		ret = kars_err_set(err, errno ? errno : EIO, "store: append %s: %s", STORE_LOG,
				   strerror(errno ? errno : EIO));
		if (ftruncate(fs->logfd, fs->log_seen) == 0)
			fsync(fs->logfd);
		free(line);
		free(text);
		return ret;
	}
	fs->log_seen += (off_t)len;
	fs->last_rv = rv;
	free(fs->last_line);
	fs->last_line = text;
	free(line);
	ret = store_apply_event(fs, type, obj, err);
	if (!ret && fs->compact_bytes && (uint64_t)fs->log_seen > fs->compact_bytes) {
		struct kars_err ignored = {0};

		/* the write is done; a failed compaction only leaves a long log */
		store_compact(fs, &ignored);
	}
	return ret;
}

/* --- watch ------------------------------------------------------------------ */

struct file_watch {
	struct kars_watch base;
	const struct kars_kind *kind;
	char *ns, *path;
	uint64_t from;
	uint64_t read_rv; /* highest resourceVersion read (or from) */
	int logfd, infd, wd;
	off_t offset; /* bytes of complete lines consumed */
};

/* Was the log compacted (the path names another inode)? */
static bool log_moved(const struct file_watch *w)
{
	struct stat have, now;

	return !fstat(w->logfd, &have) && !stat(w->path, &now) &&
	       (now.st_ino != have.st_ino || now.st_dev != have.st_dev);
}

/* Follows the new log from its start. */
static int switch_log(struct file_watch *w, struct kars_err *err)
{
	int fd;

	inotify_rm_watch(w->infd, w->wd);
	w->wd = inotify_add_watch(w->infd, w->path, IN_MODIFY);
	fd = open(w->path, O_RDONLY | O_CLOEXEC);
	if (w->wd < 0 || fd < 0) {
		if (fd >= 0)
			close(fd);
		return kars_err_set(err, errno, "watch: %s: %s", w->path, strerror(errno));
	}
	close(w->logfd);
	w->logfd = fd;
	w->offset = 0;
	return 0;
}

/* The next matching event in complete log lines, or -EAGAIN. */
static int read_event(struct file_watch *w, struct kars_event *out, struct kars_err *err)
{
	char buf[1 << 16];

	for (;;) {
		ssize_t n = pread(w->logfd, buf, sizeof(buf) - 1, w->offset);
		char *nl;
		json_t *ev, *obj, *md;
		const char *ns;

		if (n < 0)
			return kars_err_set(err, errno, "watch: read: %s", strerror(errno));
		buf[n] = '\0';
		nl = memchr(buf, '\n', (size_t)n);
		if (!nl) {
			if (n == (ssize_t)sizeof(buf) - 1) {
				/* a line longer than the buffer: read it whole */
				struct stat st;
				char *big;

				if (fstat(w->logfd, &st))
					return -EIO;
				big = malloc((size_t)(st.st_size - w->offset) + 1);
				if (!big)
					return kars_err_set(err, ENOMEM, "watch: out of memory");
				n = pread(w->logfd, big, (size_t)(st.st_size - w->offset),
					  w->offset);
				nl = n > 0 ? memchr(big, '\n', (size_t)n) : NULL;
				if (!nl) {
					free(big);
					return -EAGAIN;
				}
				*nl = '\0';
				ev = json_loads(big, 0, NULL);
				w->offset += nl - big + 1;
				free(big);
			} else {
				return -EAGAIN;
			}
		} else {
			*nl = '\0';
			ev = json_loads(buf, 0, NULL);
			w->offset += nl - buf + 1;
		}
		if (!ev)
			return kars_err_set(err, EIO, "watch: corrupt event log line");
		if (!strcmp(json_string_value(json_object_get(ev, "type")) ?: "",
			    STORE_COMPACTED)) {
			uint64_t rv = (uint64_t)json_integer_value(json_object_get(ev, "rv"));

			json_decref(ev);
			/* from 0: whatever the log still holds */
			if (w->from && rv > w->read_rv)
				return kars_err_set(err, ERANGE,
						    "watch: resourceVersion %llu is older than the "
						    "compacted log (%llu): list again",
						    (unsigned long long)w->read_rv,
						    (unsigned long long)rv);
			continue;
		}
		if ((uint64_t)json_integer_value(json_object_get(ev, "rv")) > w->read_rv)
			w->read_rv = (uint64_t)json_integer_value(json_object_get(ev, "rv"));
		obj = json_object_get(ev, "object");
		md = json_object_get(obj, "metadata");
		ns = json_string_value(json_object_get(md, "namespace"));
		if ((uint64_t)json_integer_value(json_object_get(ev, "rv")) > w->from &&
		    !strcmp(json_string_value(json_object_get(obj, "kind")) ?: "", w->kind->kind) &&
		    (!w->ns || (ns && !strcmp(ns, w->ns)))) {
			out->type = event_type(json_string_value(json_object_get(ev, "type")));
			out->resource_version =
			    (uint64_t)json_integer_value(json_object_get(ev, "rv"));
			out->object = json_incref(obj);
			json_decref(ev);
			return 0;
		}
		json_decref(ev);
	}
}

static int watch_next(struct kars_watch *base, int timeout_ms, struct kars_event *ev,
		      struct kars_err *err)
{
	struct file_watch *w = (struct file_watch *)base;
	struct timespec start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		struct pollfd p = {.fd = w->infd, .events = POLLIN};
		char drain[4096];
		int left = timeout_ms, ret;

		/* Drained before the read: an append after it raises the fd
		 * again, and a poller with timeout 0 does not spin on stale
		 * events. */
		while (read(w->infd, drain, sizeof(drain)) > 0)
			;
		ret = read_event(w, ev, err);
		if (ret == -EAGAIN && log_moved(w)) {
			/* the rename came after every append to the old log:
			 * read what is left of it, then follow the new one */
			ret = read_event(w, ev, err);
			if (ret != -EAGAIN)
				return ret;
			ret = switch_log(w, err);
			if (ret)
				return ret;
			continue;
		}
		if (ret != -EAGAIN)
			return ret;
		if (timeout_ms >= 0) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			left = timeout_ms - (int)((now.tv_sec - start.tv_sec) * 1000 +
						  (now.tv_nsec - start.tv_nsec) / 1000000);
			if (left <= 0)
				return -ETIMEDOUT;
		}
		ret = poll(&p, 1, left);
		if (ret < 0 && errno != EINTR)
			return kars_err_set(err, errno, "watch: poll: %s", strerror(errno));
	}
}

static int watch_fd(struct kars_watch *base)
{
	return ((struct file_watch *)base)->infd;
}

static void watch_close(struct kars_watch *base)
{
	struct file_watch *w = (struct file_watch *)base;

	close(w->logfd);
	close(w->infd);
	free(w->ns);
	free(w->path);
	free(w);
}

static const struct kars_watch_ops file_watch_ops = {
    .next = watch_next,
    .fd = watch_fd,
    .close = watch_close,
};

int store_watch_open(struct file_store *fs, const struct kars_kind *k, const char *ns,
		     uint64_t from, struct kars_watch **out, struct kars_err *err)
{
	struct file_watch *w = calloc(1, sizeof(*w));
	char path[PATH_MAX];

	if (!w)
		return kars_err_set(err, ENOMEM, "watch: out of memory");
	w->base.ops = &file_watch_ops;
	w->kind = k;
	w->from = w->read_rv = from;
	w->ns = ns && !k->cluster_scoped ? strdup(ns) : NULL;
	snprintf(path, sizeof(path), "%s/%s", fs->dir, STORE_LOG);
	w->path = strdup(path);
	w->logfd = -1;
	w->infd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	/* inotify first, then the file: no append can fall between the two;
	 * the directory too, for the rename of a compacted log */
	if (!w->path || w->infd < 0 || (w->wd = inotify_add_watch(w->infd, path, IN_MODIFY)) < 0 ||
	    inotify_add_watch(w->infd, fs->dir, IN_MOVED_TO) < 0 ||
	    (w->logfd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		int e = errno;

		if (w->infd >= 0)
			close(w->infd);
		free(w->ns);
		free(w->path);
		free(w);
		return kars_err_set(err, e, "watch: %s: %s", path, strerror(e));
	}
	*out = &w->base;
	return 0;
}
