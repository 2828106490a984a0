/* store_file.c - the local object store: Kubernetes API semantics (store.h)
 * over one JSON file per object, for local mode and the CLI.
 *
 * Layout under the state directory: <plural>/<namespace>/<name>.json
 * ("_" as the namespace of cluster-scoped kinds), events.log (store_log.c)
 * and .lock, an flock(2) every operation holds, so the CLI and the
 * controller can share a directory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store_priv.h"
#include "validate.h"

#define CLUSTER_DIR "_"

static json_t *md_of(const json_t *obj)
{
	return json_object_get(obj, "metadata");
}

static const char *md_str(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(md_of(obj), key));
}

/* A name or namespace that can be a path component: the validator allows
 * only DNS names, this is the store's own guard against "..", "/" etc. */
static bool safe_component(const char *s)
{
	if (!s || !*s || strlen(s) > 253 || s[0] == '.')
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		      *p == '.'))
			return false;
	return true;
}

static const char *ns_of(const struct kars_kind *k, const char *ns)
{
	if (k->cluster_scoped)
		return CLUSTER_DIR;
	return ns && *ns ? ns : "default";
}

int store_object_path(const json_t *obj, char *buf, size_t len)
{
	const struct kars_kind *k =
	    kars_kind_find(json_string_value(json_object_get(obj, "kind")) ?: "");
	const char *name = md_str(obj, "name"), *ns;

	if (!k || !safe_component(name))
		return -EINVAL;
	ns = ns_of(k, md_str(obj, "namespace"));
	if (!k->cluster_scoped && !safe_component(ns))
		return -EINVAL;
	snprintf(buf, len, "%s/%s/%s.json", k->plural, ns, name);
	return 0;
}

static int not_found(const struct kars_kind *k, const char *name, struct kars_err *err)
{
	return kars_err_set(err, ENOENT, "%s.%s \"%s\" not found", k->plural, KARS_GROUP, name);
}

static int conflict(const struct kars_kind *k, const char *name, struct kars_err *err)
{
	return kars_err_set(
	    err, ESTALE,
	    "Operation cannot be fulfilled on %s.%s \"%s\": the object has been "
	    "modified; please apply your changes to the latest version and try again",
	    k->plural, KARS_GROUP, name);
}

static int read_object(struct file_store *fs, const struct kars_kind *k, const char *ns,
		       const char *name, json_t **out, struct kars_err *err)
{
	char rel[PATH_MAX];
	json_error_t jerr;
	int fd;

	*out = NULL;
	if (!safe_component(name) || (!k->cluster_scoped && !safe_component(ns_of(k, ns))))
		return not_found(k, name ? name : "", err);
	snprintf(rel, sizeof(rel), "%s/%s/%s.json", k->plural, ns_of(k, ns), name);
	fd = openat(fs->dirfd, rel, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT
			   ? not_found(k, name, err)
			   : kars_err_set(err, errno, "store: %s: %s", rel, strerror(errno));
	*out = json_loadfd(fd, 0, &jerr);
	close(fd);
	if (!*out)
		return kars_err_set(err, EIO, "store: %s: %s", rel, jerr.text);
	return 0;
}

static void now_rfc3339(char *buf, size_t len)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void new_uid(char *buf, size_t len)
{
	unsigned char b[16];

	if (getrandom(b, sizeof(b), 0) != sizeof(b))
		memset(b, 0, sizeof(b)); /* unreachable on Linux >= 3.17 */
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	snprintf(buf, len, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
}

/* Validates obj as the API server would (defaults applied in place). */
static int admit(json_t *obj, const struct kars_kind **kind, struct kars_err *err)
{
	struct kars_problems p = {};
	char all[1024];

	if (kars_validate_object(obj, kind, &p) == 0)
		return 0;
	kars_problems_join(&p, all, sizeof(all));
	for (char *c = all; *c; c++)
		if (*c == '\n')
			*c = ';';
	if (!*kind)
		return kars_err_set(err, EINVAL, "%s", all);
	return kars_err_set(err, EINVAL, "%s.%s \"%s\" is invalid: %s", (*kind)->kind, KARS_GROUP,
			    md_str(obj, "name") ?: "", all);
}

static const char *const user_metadata[] = {"labels", "annotations", "finalizers",
					    "ownerReferences", NULL};

static int fs_get(struct kars_store *s, const struct kars_kind *k, const char *ns, const char *name,
		  json_t **out, struct kars_err *err)
{
	struct file_store *fs = (struct file_store *)s;
	int ret = store_lock(fs, err);

	if (ret)
		return ret;
	ret = read_object(fs, k, ns, name, out, err);
	store_unlock(fs);
	return ret;
}

static int cmp_objects(const void *a, const void *b)
{
	const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	int c = strcmp(md_str(x, "namespace") ?: "", md_str(y, "namespace") ?: "");

	return c ? c : strcmp(md_str(x, "name") ?: "", md_str(y, "name") ?: "");
}

static int list_dir(struct file_store *fs, const char *rel, json_t *items, struct kars_err *err)
{
	int dfd = openat(fs->dirfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *e;
	DIR *d;

	if (dfd < 0)
		return errno == ENOENT
			   ? 0
			   : kars_err_set(err, errno, "store: %s: %s", rel, strerror(errno));
	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return kars_err_set(err, errno, "store: %s: %s", rel, strerror(errno));
	}
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);
		json_t *obj;
		int fd;

		if (e->d_name[0] == '.' || n < 6 || strcmp(e->d_name + n - 5, ".json"))
			continue;
		fd = openat(dfd, e->d_name, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		obj = json_loadfd(fd, 0, NULL);
		close(fd);
		if (!obj) {
			closedir(d);
			return kars_err_set(err, EIO, "store: %s/%s: unreadable", rel, e->d_name);
		}
		json_array_append_new(items, obj);
	}
	closedir(d);
	return 0;
}

static int fs_list(struct kars_store *s, const struct kars_kind *k, const char *ns, json_t **items,
		   uint64_t *rv, struct kars_err *err)
{
	struct file_store *fs = (struct file_store *)s;
	char rel[PATH_MAX];
	json_t *arr = json_array();
	int ret = store_lock(fs, err);

	if (ret) {
		json_decref(arr);
		return ret;
	}
	if (k->cluster_scoped || ns) {
		snprintf(rel, sizeof(rel), "%s/%s", k->plural, ns_of(k, ns));
		ret = safe_component(ns_of(k, ns)) || k->cluster_scoped
			  ? list_dir(fs, rel, arr, err)
			  : 0;
	} else {
		int dfd = openat(fs->dirfd, k->plural, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
		struct dirent *e;

		while (d && !ret && (e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(rel, sizeof(rel), "%s/%s", k->plural, e->d_name);
			ret = list_dir(fs, rel, arr, err);
		}
		if (d)
			closedir(d);
		else if (dfd >= 0)
			close(dfd);
	}
	*rv = fs->last_rv;
	store_unlock(fs);
	if (ret) {
		json_decref(arr);
		return ret;
	}
	/* sorted by namespace, then name, as kubectl shows them */
	{
		size_t n = json_array_size(arr);
		json_t **v = calloc(n ? n : 1, sizeof(*v));
		json_t *sorted = json_array();

		for (size_t i = 0; v && i < n; i++)
			v[i] = json_array_get(arr, i);
		if (v)
			qsort(v, n, sizeof(*v), cmp_objects);
		for (size_t i = 0; v && i < n; i++)
			json_array_append(sorted, v[i]);
		free(v);
		json_decref(arr);
		*items = sorted;
	}
	return 0;
}

static int fs_create(struct kars_store *s, const json_t *in, json_t **out, struct kars_err *err)
{
	struct file_store *fs = (struct file_store *)s;
	const struct kars_kind *k = NULL;
	json_t *obj = json_deep_copy(in), *md, *cur = NULL, *clean;
	char uid[40], ts[32];
	int ret;

	if (!obj)
		return kars_err_set(err, ENOMEM, "store: out of memory");
	json_object_del(obj, "status"); /* a subresource: never set by create */
	ret = admit(obj, &k, err);
	if (ret)
		goto out;
	md = md_of(obj);
	clean = json_pack("{s:O}", "name", json_object_get(md, "name"));
	if (!k->cluster_scoped)
		json_object_set_new(clean, "namespace",
				    json_string(ns_of(k, md_str(obj, "namespace"))));
	for (const char *const *key = user_metadata; *key; key++)
		if (json_object_get(md, *key))
			json_object_set(clean, *key, json_object_get(md, *key));
	new_uid(uid, sizeof(uid));
	now_rfc3339(ts, sizeof(ts));
	json_object_set_new(clean, "uid", json_string(uid));
	json_object_set_new(clean, "generation", json_integer(1));
	json_object_set_new(clean, "creationTimestamp", json_string(ts));
	json_object_set_new(obj, "metadata", clean);
	ret = store_lock(fs, err);
	if (ret)
		goto out;
	if (read_object(fs, k, md_str(obj, "namespace"), md_str(obj, "name"), &cur, NULL) == 0)
		ret = kars_err_set(err, EEXIST, "%s.%s \"%s\" already exists", k->plural,
				   KARS_GROUP, md_str(obj, "name"));
	else
		ret = store_commit(fs, KARS_ADDED, obj, err);
	store_unlock(fs);
out:
	json_decref(cur);
	if (ret)
		json_decref(obj);
	else
		*out = obj;
	return ret;
}

/* The stored object for in's kind/namespace/name, locked, with the
 * resourceVersion check an update needs. On success the lock is held. */
static int locked_current(struct file_store *fs, const json_t *in, const struct kars_kind **kind,
			  json_t **cur, struct kars_err *err)
{
	const struct kars_kind *k =
	    kars_kind_find(json_string_value(json_object_get(in, "kind")) ?: "");
	const char *name = md_str(in, "name");
	uint64_t want = kars_object_rv(in);
	int ret;

	*cur = NULL;
	if (!k)
		return kars_err_set(err, EINVAL, "kind: Unsupported value: \"%s\"",
				    json_string_value(json_object_get(in, "kind")) ?: "");
	*kind = k;
	if (!want)
		return kars_err_set(err, EINVAL,
				    "%s.%s \"%s\" is invalid: metadata.resourceVersion: Invalid "
				    "value: 0x0: must be specified for an update",
				    k->kind, KARS_GROUP, name ?: "");
	ret = store_lock(fs, err);
	if (ret)
		return ret;
	ret = read_object(fs, k, md_str(in, "namespace"), name, cur, err);
	if (!ret && kars_object_rv(*cur) != want)
		ret = conflict(k, name, err);
	if (ret) {
		json_decref(*cur);
		*cur = NULL;
		store_unlock(fs);
	}
	return ret;
}

static bool same_ignoring_rv(const json_t *a, const json_t *b)
{
	json_t *x = json_deep_copy(a), *y = json_deep_copy(b);
	bool same;

	json_object_del(md_of(x), "resourceVersion");
	json_object_del(md_of(y), "resourceVersion");
	same = json_equal(x, y);
	json_decref(x);
	json_decref(y);
	return same;
}

static bool string_in(const json_t *arr, const json_t *s)
{
	size_t i;
	json_t *v;

	json_array_foreach(arr, i, v) if (json_equal(v, (json_t *)s)) return true;
	return false;
}

/* Writes next (built from cur) unless it equals cur. Called locked; unlocks. */
static int finish_write(struct file_store *fs, const struct kars_kind *k, json_t *cur, json_t *next,
			json_t **out, struct kars_err *err)
{
	struct kars_problems p = {};
	const struct kars_kind *kk = NULL;
	int ret = 0;
	const json_t *fin = json_object_get(md_of(next), "finalizers");

	ret = admit(next, &kk, err);
	if (!ret && json_object_get(md_of(cur), "deletionTimestamp")) {
		size_t i;
		json_t *f;

		json_array_foreach(fin, i,
				   f) if (!string_in(json_object_get(md_of(cur), "finalizers"), f))
		{
			ret =
			    kars_err_set(err, EINVAL,
					 "%s.%s \"%s\" is invalid: metadata.finalizers: Forbidden: "
					 "no new finalizers can be added if the object is being "
					 "deleted",
					 k->kind, KARS_GROUP, md_str(cur, "name"));
			break;
		}
	}
	(void)p;
	if (ret)
		goto out;
	if (same_ignoring_rv(cur, next)) {
		*out = json_incref(cur);
		goto out;
	}
	if (json_object_get(md_of(next), "deletionTimestamp") && json_array_size(fin) == 0)
		ret = store_commit(fs, KARS_DELETED, next, err);
	else
		ret = store_commit(fs, KARS_MODIFIED, next, err);
	if (!ret)
		*out = json_incref(next);
out:
	store_unlock(fs);
	json_decref(cur);
	json_decref(next);
	return ret;
}

static int fs_update(struct kars_store *s, const json_t *in, json_t **out, struct kars_err *err)
{
	struct file_store *fs = (struct file_store *)s;
	const struct kars_kind *k;
	json_t *cur, *next, *spec, *md;
	int ret = locked_current(fs, in, &k, &cur, err);

	if (ret)
		return ret;
	next = json_deep_copy(cur);
	md = md_of(next);
	for (const char *const *key = user_metadata; *key; key++) {
		json_t *v = json_object_get(md_of(in), *key);

		if (v)
			json_object_set(md, *key, v);
		else
			json_object_del(md, *key);
	}
	spec = json_object_get(in, "spec");
	if (spec)
		json_object_set(next, "spec", spec);
	else
		json_object_del(next, "spec");
	/* generation follows spec only; compare after defaults, as stored */
	{
		struct kars_problems p = {};
		json_t *probe = json_deep_copy(next);

		kars_validate_object(probe, NULL, &p);
		if (!json_equal(json_object_get(probe, "spec"), json_object_get(cur, "spec")))
			json_object_set_new(
			    md, "generation",
			    json_integer(json_integer_value(json_object_get(md, "generation")) +
					 1));
		json_decref(probe);
	}
	return finish_write(fs, k, cur, next, out, err);
}

static int fs_update_status(struct kars_store *s, const json_t *in, json_t **out,
			    struct kars_err *err)
{
	struct file_store *fs = (struct file_store *)s;
	const struct kars_kind *k;
	json_t *cur, *next, *status;
	int ret = locked_current(fs, in, &k, &cur, err);

	if (ret)
		return ret;
	next = json_deep_copy(cur);
	status = json_object_get(in, "status");
	if (status)
		json_object_set(next, "status", status);
	else
		json_object_del(next, "status");
	return finish_write(fs, k, cur, next, out, err);
}

static int fs_remove(struct kars_store *s, const struct kars_kind *k, const char *ns,
		     const char *name, json_t **out, struct kars_err *err)
{
	struct file_store *fs = (struct file_store *)s;
	json_t *cur = NULL;
	int ret = store_lock(fs, err);

	if (ret)
		return ret;
	ret = read_object(fs, k, ns, name, &cur, err);
	if (ret)
		goto out;
	if (json_array_size(json_object_get(md_of(cur), "finalizers")) == 0) {
		ret = store_commit(fs, KARS_DELETED, cur, err);
	} else if (!json_object_get(md_of(cur), "deletionTimestamp")) {
		char ts[32];

		now_rfc3339(ts, sizeof(ts));
		json_object_set_new(md_of(cur), "deletionTimestamp", json_string(ts));
		json_object_set_new(md_of(cur), "deletionGracePeriodSeconds", json_integer(0));
		ret = store_commit(fs, KARS_MODIFIED, cur, err);
	}
out:
	store_unlock(fs);
	if (ret)
		json_decref(cur);
	else
		*out = cur;
	return ret;
}

static int fs_watch(struct kars_store *s, const struct kars_kind *k, const char *ns, uint64_t from,
		    struct kars_watch **w, struct kars_err *err)
{
	return store_watch_open((struct file_store *)s, k, ns, from, w, err);
}

static void fs_close(struct kars_store *s)
{
	struct file_store *fs = (struct file_store *)s;

	close(fs->dirfd);
	close(fs->lockfd);
	close(fs->logfd);
	free(fs->last_line);
	free(fs->dir);
	free(fs);
}

static const struct kars_store_ops file_store_ops;

int kars_store_dir_compact(struct kars_store *s, struct kars_err *err)
{
	struct file_store *fs = (struct file_store *)s;
	int ret;

	if (s->ops != &file_store_ops)
		return kars_err_set(err, EOPNOTSUPP, "store: compaction is the file store's");
	ret = store_lock(fs, err);
	if (ret)
		return ret;
	ret = store_compact(fs, err);
	store_unlock(fs);
	return ret;
}

static const struct kars_store_ops file_store_ops = {
    .get = fs_get,
    .list = fs_list,
    .create = fs_create,
    .update = fs_update,
    .update_status = fs_update_status,
    .remove = fs_remove,
    .watch = fs_watch,
    .close = fs_close,
};

int kars_store_open_dir(const char *dir, struct kars_store **out, struct kars_err *err)
{
	struct file_store *fs = calloc(1, sizeof(*fs));
	int ret;

	if (!fs)
		return kars_err_set(err, ENOMEM, "store: out of memory");
	fs->base.ops = &file_store_ops;
	fs->dirfd = fs->lockfd = fs->logfd = -1;
	fs->dir = strdup(dir);
	fs->compact_bytes = STORE_COMPACT_BYTES;
	if (getenv("KARS_STORE_COMPACT_BYTES"))
		fs->compact_bytes = strtoull(getenv("KARS_STORE_COMPACT_BYTES"), NULL, 10);
	if (mkdir(dir, 0700) && errno != EEXIST) {
		ret = kars_err_set(err, errno, "store: %s: %s", dir, strerror(errno));
		goto fail;
	}
	fs->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fs->dirfd >= 0)
		fs->lockfd = openat(fs->dirfd, STORE_LOCK, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fs->lockfd >= 0)
		fs->logfd = openat(fs->dirfd, STORE_LOG, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fs->logfd < 0) {
		ret = kars_err_set(err, errno, "store: %s: %s", dir, strerror(errno));
		goto fail;
	}
	/* recover now, so a crash is repaired before anyone reads */
	ret = store_lock(fs, err);
	if (ret)
		goto fail;
	store_unlock(fs);
	*out = &fs->base;
	return 0;
fail:
	fs_close(&fs->base);
	return ret;
}
