/* store.h - the object store: Kubernetes API semantics over kars objects.
 *
 * Reconcilers and the CLI talk to this interface only: get, list, watch,
 * create, update, update_status, delete, with the API server's rules:
 *
 *   - create sets metadata.uid, creationTimestamp, generation 1 and
 *     resourceVersion; it ignores status (status is a subresource).
 *   - update needs the object's current metadata.resourceVersion (else a
 *     conflict); it ignores status, keeps uid/creationTimestamp, and bumps
 *     generation only when spec changed. update_status changes only status.
 *     A write that changes nothing writes nothing (no new resourceVersion).
 *   - delete of an object with finalizers only sets deletionTimestamp; the
 *     object goes when an update empties its finalizers. No finalizer can be
 *     added once deletion started.
 *   - every write is validated as the API server would (validate.h), with
 *     the schema's defaults applied.
 *   - resourceVersion is one store-wide counter (like etcd's revision), so
 *     list returns the version to watch from and watch resumes from any
 *     version still in the event log.
 *
 * Errors are negative errno, as Kubernetes statuses: -ENOENT NotFound,
 * -EEXIST AlreadyExists, -ESTALE Conflict, -EINVAL Invalid (err names the
 * fields), -ERANGE Gone (watch from a version older than the log).
 *
 * kars_store_open_dir() is the local, file-backed implementation (store_file.c);
 * a Kubernetes-API one can implement the same ops.
 */
#ifndef KARS_STORE_H
#define KARS_STORE_H

#include <jansson.h>
#include <stdint.h>

#include "err.h"
#include "schema.h"

struct kars_store;
struct kars_watch;

enum kars_event_type { KARS_ADDED = 1, KARS_MODIFIED, KARS_DELETED };

struct kars_event {
	enum kars_event_type type;
	uint64_t resource_version;
	json_t *object; /* owned by the caller after watch_next */
};

struct kars_store_ops {
	int (*get)(struct kars_store *s, const struct kars_kind *k, const char *ns,
		   const char *name, json_t **out, struct kars_err *err);
	int (*list)(struct kars_store *s, const struct kars_kind *k, const char *ns, json_t **items,
		    uint64_t *resource_version, struct kars_err *err);
	int (*create)(struct kars_store *s, const json_t *obj, json_t **out, struct kars_err *err);
	int (*update)(struct kars_store *s, const json_t *obj, json_t **out, struct kars_err *err);
	int (*update_status)(struct kars_store *s, const json_t *obj, json_t **out,
			     struct kars_err *err);
	int (*remove)(struct kars_store *s, const struct kars_kind *k, const char *ns,
		      const char *name, json_t **out, struct kars_err *err);
	int (*watch)(struct kars_store *s, const struct kars_kind *k, const char *ns, uint64_t from,
		     struct kars_watch **w, struct kars_err *err);
	void (*close)(struct kars_store *s);
};

struct kars_store {
	const struct kars_store_ops *ops;
};

struct kars_watch_ops {
	/* Next event after the last one, waiting up to timeout_ms (-1: forever).
	 * 0 with ev filled, -ETIMEDOUT, or another negative errno. */
	int (*next)(struct kars_watch *w, int timeout_ms, struct kars_event *ev,
		    struct kars_err *err);
	int (*fd)(struct kars_watch *w); /* readable when next may have an event */
	void (*close)(struct kars_watch *w);
};

struct kars_watch {
	const struct kars_watch_ops *ops;
};

/* The file store under dir (created if missing): one JSON file per object,
 * dir/<plural>/<namespace>/<name>.json (cluster-scoped kinds under "_"),
 * and dir/events.log, the write-ahead event log watch reads. */
int kars_store_open_dir(const char *dir, struct kars_store **out, struct kars_err *err);

/* Compacts the file store's event log: the history up to the current
 * resourceVersion is dropped (the object files are the state), so a watch
 * from an older version is Gone (-ERANGE); watch from 0 means whatever the
 * log still holds. Writes compact on their own once the log passes 64 MiB
 * ($KARS_STORE_COMPACT_BYTES at open; 0: never). */
int kars_store_dir_compact(struct kars_store *s, struct kars_err *err);

/* ns NULL or "" means "default" for namespaced kinds; ignored for cluster ones.
 * For list and watch, ns NULL means all namespaces. */
static inline int kars_store_get(struct kars_store *s, const struct kars_kind *k, const char *ns,
				 const char *name, json_t **out, struct kars_err *err)
{
	return s->ops->get(s, k, ns, name, out, err);
}

static inline int kars_store_list(struct kars_store *s, const struct kars_kind *k, const char *ns,
				  json_t **items, uint64_t *rv, struct kars_err *err)
{
	return s->ops->list(s, k, ns, items, rv, err);
}

static inline int kars_store_create(struct kars_store *s, const json_t *obj, json_t **out,
				    struct kars_err *err)
{
	return s->ops->create(s, obj, out, err);
}

static inline int kars_store_update(struct kars_store *s, const json_t *obj, json_t **out,
				    struct kars_err *err)
{
	return s->ops->update(s, obj, out, err);
}

static inline int kars_store_update_status(struct kars_store *s, const json_t *obj, json_t **out,
					   struct kars_err *err)
{
	return s->ops->update_status(s, obj, out, err);
}

static inline int kars_store_delete(struct kars_store *s, const struct kars_kind *k, const char *ns,
				    const char *name, json_t **out, struct kars_err *err)
{
	return s->ops->remove(s, k, ns, name, out, err);
}

static inline int kars_store_watch(struct kars_store *s, const struct kars_kind *k, const char *ns,
				   uint64_t from, struct kars_watch **w, struct kars_err *err)
{
	return s->ops->watch(s, k, ns, from, w, err);
}

static inline void kars_store_close(struct kars_store *s)
{
	if (s)
		s->ops->close(s);
}

static inline int kars_watch_next(struct kars_watch *w, int timeout_ms, struct kars_event *ev,
				  struct kars_err *err)
{
	return w->ops->next(w, timeout_ms, ev, err);
}

static inline void kars_watch_close(struct kars_watch *w)
{
	if (w)
		w->ops->close(w);
}

/* metadata.resourceVersion of obj as a number (0 when absent or malformed). */
uint64_t kars_object_rv(const json_t *obj);

#endif
