/* store_priv.h - internals of the file store shared by store_file.c (the
 * objects) and store_log.c (the write-ahead event log and watch). */
#ifndef KARS_STORE_PRIV_H
#define KARS_STORE_PRIV_H

#include <stdbool.h>
#include <sys/types.h>

#include "store.h"

#define STORE_LOG	    "events.log"
#define STORE_LOG_NEW	    "events.log.new"
#define STORE_LOCK	    ".lock"
#define STORE_COMPACTED	    "COMPACTED" /* the first line of a compacted log */
#define STORE_COMPACT_BYTES (64u << 20) /* default: compact past 64 MiB */

struct file_store {
	struct kars_store base;
	char *dir;
	int dirfd, lockfd, logfd;
	off_t log_seen;		/* bytes of the log already scanned */
	uint64_t last_rv;	/* resourceVersion of the last event in the log */
	char *last_line;	/* that event, to check it reached its object file */
	uint64_t compact_bytes; /* compact the log once it is larger; 0: never */
};

/* Takes the store lock, then makes the objects match the log: a torn last
 * log line is cut off, and the last event is applied to its object file if
 * a writer died between the two. Every operation runs under this lock. */
int store_lock(struct file_store *fs, struct kars_err *err);
void store_unlock(struct file_store *fs);

/* Appends {"type","rv","object"} to the log and fsyncs it: the commit point.
 * Then the caller writes the object file (store_apply_event does both). */
int store_commit(struct file_store *fs, enum kars_event_type type, json_t *obj,
		 struct kars_err *err);

/* Makes the object file say what the event says (write or unlink), durably. */
int store_apply_event(struct file_store *fs, enum kars_event_type type, const json_t *obj,
		      struct kars_err *err);

/* dir-relative path of an object's file: "<plural>/<ns>/<name>.json". */
int store_object_path(const json_t *obj, char *buf, size_t len);

int store_watch_open(struct file_store *fs, const struct kars_kind *k, const char *ns,
		     uint64_t from, struct kars_watch **out, struct kars_err *err);

const char *store_event_word(enum kars_event_type t);

/* Replaces the log by one line {"rv":N,"type":"COMPACTED"} (N the last
 * resourceVersion), under the lock: the objects' files are the state, the
 * history before N is gone (a watch from before it is Gone). Durable: the
 * new log is written, fsynced and renamed over the old one. Watchers and
 * other store handles holding the old log finish it, then follow the new
 * one. */
int store_compact(struct file_store *fs, struct kars_err *err);

#endif
