/* audit.h - the audit chain: a tamper-evident, crash-safe record of decisions.
 *
 * Every daemon appends one record per decision that matters (an inference
 * request allowed or denied, a policy reload) to one JSON-lines file. Each
 * record carries the SHA-256 of its fields and of the previous record, so an
 * edit, a deletion or a reordering breaks the chain; every N records (and at
 * every clean close) an Ed25519-signed checkpoint makes the chain up to it
 * unforgeable without the key. docs/audit-chain.md has the byte layouts.
 *
 * Durability is group commit: appends go to memory, and a flush writes them
 * with one write() and one fdatasync(). The daemon calls kars_audit_tick()
 * from its event loop (kars_audit_deadline() says when); a caller that must
 * know its record is on disk uses kars_audit_append_sync().
 *
 * Threads: a handle is not thread-safe; use it from one thread (the daemon's
 * event loop) or under the caller's lock. Different handles are independent.
 * A log file has one writer: open takes an exclusive flock() on it.
 */
#ifndef KARS_AUDIT_H
#define KARS_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define KARS_AUDIT_HASH_LEN   32
#define KARS_AUDIT_PUBKEY_LEN 32
#define KARS_AUDIT_FIELD_MAX  4096	   /* bytes of one string field */
#define KARS_AUDIT_LINE_MAX   (256u << 10) /* bytes of one line, newline included */

#define KARS_AUDIT_DEFAULT_CHECKPOINT_EVERY 1024
#define KARS_AUDIT_DEFAULT_FLUSH_INTERVAL   (10ull * 1000 * 1000) /* 10 ms */
#define KARS_AUDIT_DEFAULT_FLUSH_BYTES	    (1u << 20)
#define KARS_AUDIT_DEFAULT_MAX_PENDING	    (64u << 20)

/* One decision. Strings are UTF-8, at most KARS_AUDIT_FIELD_MAX bytes; NULL
 * means "". action and decision are required. Integers are at most 2^63-1. */
struct kars_audit_record {
	uint64_t time_ns;      /* CLOCK_REALTIME; 0 = now */
	const char *sandbox;   /* "namespace/name" */
	const char *principal; /* who asked: the agent's identity, a user, "controller" */
	const char *action;    /* "inference", "policy.reload", ... */
	const char *decision;  /* "allow", "deny", ... */
	const char *reason;    /* why, for a human: the rule or the error */
	const char *model;
	uint64_t tokens_in;
	uint64_t tokens_out;
	uint64_t latency_ns;
	/* The payload's digest: payload_sha256 if set, else SHA-256 of
	 * payload[0..payload_len) if payload is set, else none. */
	const uint8_t *payload_sha256;
	const void *payload;
	size_t payload_len;
};

/* Zero means the default for every field. */
struct kars_audit_opts {
	/* The Ed25519 seed (32 raw bytes, mode 0600), created if missing; its
	 * public key is kept beside it as "<key_path>.pub" (hex). NULL writes no
	 * checkpoints: for tests only, an unsigned chain can be rewritten whole. */
	const char *key_path;
	uint32_t checkpoint_every;  /* entries between checkpoints (1024) */
	uint64_t flush_interval_ns; /* a record is flushed at most this late (10 ms) */
	size_t flush_bytes;	    /* ... or once this much is waiting (1 MiB) */
	size_t max_pending_bytes;   /* refuse appends past this while the disk fails (64 MiB) */
	const char *principal;	    /* names the writer in its "audit.open" records ("kars") */
	const char *sandbox;	    /* and the sandbox, if it has one */
};

struct kars_audit_stats {
	uint64_t next_seq;	  /* seq the next record gets */
	uint64_t durable_seq;	  /* records [0, durable_seq) are on disk */
	uint64_t records;	  /* appended through this handle, checkpoints included */
	uint64_t checkpoints;	  /* of which checkpoints */
	uint64_t flushes;	  /* write() + fdatasync() groups */
	uint64_t bytes_written;	  /* through this handle */
	uint64_t pending_records; /* in memory, not yet written */
	size_t pending_bytes;
	uint64_t truncated_bytes; /* of a torn tail, removed at open */
};

struct kars_audit;

/* Opens path (created 0600 if missing) and continues its chain. The records
 * after the last checkpoint are checked first: an unterminated last line (a
 * write torn by a crash) is truncated with a warning, and the "audit.open"
 * record that every open appends says so; any other bad record fails the
 * open (-EBADMSG) naming its byte offset and seq, and nothing is truncated.
 * Returns 0 or -errno, with *out set only on success. */
int kars_audit_open(struct kars_audit **out, const char *path, const struct kars_audit_opts *opts,
		    struct kars_err *err);

/* Appends rec to the chain (in memory). Returns 0, or -errno if rec was
 * refused (a bad field, named; -ENOSPC past max_pending_bytes; the log has
 * failed). Once flush_bytes are waiting it also flushes, and returns that
 * flush's error: the record is then in the chain and waits for the next one
 * (kars_audit_stats().next_seq tells the two cases apart). */
int kars_audit_append(struct kars_audit *log, const struct kars_audit_record *rec,
		      struct kars_err *err);
/* Appends and flushes: 0 means rec is on disk. */
int kars_audit_append_sync(struct kars_audit *log, const struct kars_audit_record *rec,
			   struct kars_err *err);

/* Writes what waits and fdatasync()s it. A failed write() is undone (the file
 * is truncated back) and the records stay queued for the next flush. A failed
 * fdatasync() fails the log for good (every call returns its error from then
 * on; close and reopen): after it the kernel no longer says which pages
 * reached the disk. */
int kars_audit_flush(struct kars_audit *log, struct kars_err *err);
/* Flushes if the oldest waiting record is flush_interval_ns old at now_ns
 * (CLOCK_MONOTONIC), or flush_bytes wait. Cheap when nothing is due. */
int kars_audit_tick(struct kars_audit *log, uint64_t now_ns, struct kars_err *err);
/* CLOCK_MONOTONIC ns by which kars_audit_tick() must run, UINT64_MAX if idle. */
uint64_t kars_audit_deadline(const struct kars_audit *log);

void kars_audit_stats(const struct kars_audit *log, struct kars_audit_stats *st);
/* The signing public key, or false for an unsigned log. */
bool kars_audit_pubkey(const struct kars_audit *log, uint8_t pubkey[KARS_AUDIT_PUBKEY_LEN]);

/* Writes a checkpoint if anything follows the last one, flushes and closes.
 * The handle is freed whatever the result; an error means records may be
 * missing from the file. log may be NULL. */
int kars_audit_close(struct kars_audit *log, struct kars_err *err);

/* What kars_audit_verify() found. On failure bad_line (1-based), bad_offset
 * (byte of the line's start) and bad_seq (the seq due at that line) name the
 * first bad record; bad_line is 0 when no single record is at fault. */
struct kars_audit_report {
	uint64_t records;     /* whole records that verified */
	uint64_t entries;     /* of which entries */
	uint64_t checkpoints; /* and checkpoints */
	uint8_t last_hash[KARS_AUDIT_HASH_LEN];
	bool signed_any;     /* a checkpoint verified */
	uint64_t signed_seq; /* the last one's seq: records [0, signed_seq] are signed */
	uint8_t key[KARS_AUDIT_PUBKEY_LEN]; /* that signed them */
	uint64_t bad_line;
	uint64_t bad_offset;
	uint64_t bad_seq;
	bool torn; /* the failure is an unterminated last line, all before it verified */
};

/* Walks the whole file: every line a record of the documented shape, seq
 * 0, 1, 2, ..., each prevHash the previous record's hash, each hash right,
 * each checkpoint's signature good and by one key. With pubkey, that key must
 * be it and at least one checkpoint must exist; without, the checkpoints are
 * checked against the key they carry, which proves integrity, not origin.
 * Returns 0 for a valid log, -EBADMSG for an invalid one (err names the first
 * bad record: "line L (byte B, seq S): ..."), other -errno when the file
 * cannot be read. */
int kars_audit_verify(const char *path, const uint8_t *pubkey, struct kars_audit_report *rep,
		      struct kars_err *err);
/* The same over a buffer holding a whole log file. */
int kars_audit_verify_buf(const char *buf, size_t len, const uint8_t *pubkey,
			  struct kars_audit_report *rep, struct kars_err *err);

/* Reads a public key file: 64 hex digits (optionally a newline), or 32 raw
 * bytes. */
int kars_audit_pubkey_read(const char *path, uint8_t pubkey[KARS_AUDIT_PUBKEY_LEN],
			   struct kars_err *err);

/* Lowercase hex of n bytes into out (2n + 1 bytes). */
void kars_audit_hex(const uint8_t *in, size_t n, char *out);

#endif
