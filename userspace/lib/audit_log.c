/* audit_log.c - the audit chain's writer: open and recover, append, group
 * commit, checkpoints.
 *
 * A daemon appends many records a second and each must survive a crash once
 * acknowledged, so appends only encode and hash into memory, and a flush
 * puts a whole group on disk with one write() and one fdatasync(). A crash
 * can cut that write anywhere; the next open finds the cut (an unterminated
 * last line), says so, truncates it and records that it did. Anything else
 * wrong in the unsigned part of the log stops the open instead: only a crash
 * explains a torn tail, and a damaged record must reach a person.
 */
#include "audit_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

struct kars_audit {
	char *path;
	int fd;
	struct audit_hasher h;
	bool signing;
	uint8_t pk[crypto_sign_PUBLICKEYBYTES];
	uint8_t sk[crypto_sign_SECRETKEYBYTES];
	uint32_t every;
	uint64_t interval;
	size_t flush_bytes, max_pending;
	char *principal, *sandbox;
	/* the chain */
	uint64_t next_seq;
	uint8_t prev[KARS_AUDIT_HASH_LEN];
	uint64_t since_ckpt;
	/* records encoded but not yet written */
	char *buf;
	size_t len, cap;
	uint64_t pending_records;
	uint64_t first_pending_ns;
	/* what the last successful flush left on disk */
	off_t durable_off;
	uint64_t durable_seq;
	int failed; /* errno that failed the log for good (fdatasync, truncate-back) */
	char failed_msg[400];
	struct kars_audit_stats st;
};

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int failed_err(const struct kars_audit *log, struct kars_err *err)
{
	return kars_err_set(err, log->failed, "%s", log->failed_msg);
}

/* After a failed fdatasync() the kernel may have dropped the dirty pages and
 * a later fdatasync() can succeed without them: nothing this handle writes
 * can be trusted any more. Reopening re-reads what is really in the file. */
static int fail_log(struct kars_audit *log, int e, const char *what, struct kars_err *err)
{
	log->failed = e;
	snprintf(log->failed_msg, sizeof(log->failed_msg),
		 "audit log %s failed: %s: %s; records from seq %llu on may not be on disk: "
		 "close and reopen the log",
		 log->path, what, strerror(e), (unsigned long long)log->durable_seq);
	log_error("%s", log->failed_msg);
	return failed_err(log, err);
}

/* --- appending ------------------------------------------------------------ */

static int str_field(const char *name, const char *s, bool required, struct audit_str *out,
		     struct kars_err *err)
{
	size_t bad;

	out->p = s ? s : "";
	out->len = strlen(out->p);
	if (required && !out->len)
		return kars_err_set(err, EINVAL, "%s: Required value", name);
	if (out->len > KARS_AUDIT_FIELD_MAX)
		return kars_err_set(err, EINVAL, "%s: longer than %d bytes", name,
				    KARS_AUDIT_FIELD_MAX);
	if (audit_utf8_check(out->p, out->len, &bad))
		return kars_err_set(err, EINVAL, "%s: not valid UTF-8 at byte %zu", name, bad);
	return 0;
}

static int int_field(const char *name, uint64_t v, struct kars_err *err)
{
	if (v > (uint64_t)INT64_MAX)
		return kars_err_set(err, EINVAL, "%s: larger than 2^63-1", name);
	return 0;
}

static int to_fields(struct kars_audit *log, const struct kars_audit_record *r,
		     struct audit_fields *f, struct kars_err *err)
{
	unsigned int n = 0;
	int ret;

	memset(f, 0, sizeof(*f));
	f->kind = AUDIT_ENTRY;
	f->time_ns = r->time_ns ? r->time_ns : clock_ns(CLOCK_REALTIME);
	ret = str_field("action", r->action, true, &f->action, err);
	ret = ret ?: str_field("decision", r->decision, true, &f->decision, err);
	ret = ret ?: str_field("sandbox", r->sandbox, false, &f->sandbox, err);
	ret = ret ?: str_field("principal", r->principal, false, &f->principal, err);
	ret = ret ?: str_field("reason", r->reason, false, &f->reason, err);
	ret = ret ?: str_field("model", r->model, false, &f->model, err);
	ret = ret ?: int_field("time", f->time_ns, err);
	ret = ret ?: int_field("tokensIn", r->tokens_in, err);
	ret = ret ?: int_field("tokensOut", r->tokens_out, err);
	ret = ret ?: int_field("latencyNs", r->latency_ns, err);
	if (ret)
		return ret;
	f->tokens_in = r->tokens_in;
	f->tokens_out = r->tokens_out;
	f->latency_ns = r->latency_ns;
	if (r->payload_sha256) {
		memcpy(f->payload, r->payload_sha256, sizeof(f->payload));
		f->has_payload = true;
	} else if (r->payload) {
		if (!EVP_DigestInit_ex2(log->h.ctx, log->h.md, NULL) ||
		    !EVP_DigestUpdate(log->h.ctx, r->payload, r->payload_len) ||
		    !EVP_DigestFinal_ex(log->h.ctx, f->payload, &n))
			return kars_err_set(err, EIO, "SHA-256 of the payload failed (OpenSSL)");
		f->has_payload = true;
	}
	return 0;
}

/* Chains f (its seq and prevHash are set here) and encodes it into the buffer. */
static int push(struct kars_audit *log, struct audit_fields *f, struct kars_err *err)
{
	size_t need = log->len + audit_line_bound(f);

	if (need > log->cap) {
		size_t cap = log->cap ? log->cap : 64u << 10;
		char *bigger;

		while (cap < need)
			cap *= 2;
		bigger = realloc(log->buf, cap);
		if (!bigger)
			return kars_err_set(err, ENOMEM, "audit log %s: out of memory", log->path);
		log->buf = bigger;
		log->cap = cap;
	}
	f->seq = log->next_seq;
	memcpy(f->prev, log->prev, sizeof(f->prev));
	if (audit_hash(&log->h, f, f->hash))
		return kars_err_set(err, EIO, "SHA-256 failed (OpenSSL)");
	log->len += audit_encode(f, log->buf + log->len);
	if (!log->pending_records++)
		log->first_pending_ns = clock_ns(CLOCK_MONOTONIC);
	log->next_seq++;
	memcpy(log->prev, f->hash, sizeof(log->prev));
	log->since_ckpt = f->kind == AUDIT_CHECKPOINT ? 0 : log->since_ckpt + 1;
	log->st.records++;
	log->st.checkpoints += f->kind == AUDIT_CHECKPOINT;
	return 0;
}

static int push_checkpoint(struct kars_audit *log, struct kars_err *err)
{
	struct audit_fields f = {.kind = AUDIT_CHECKPOINT};
	uint8_t msg[AUDIT_SIGN_MSG_LEN];

	f.seq = log->next_seq;
	f.time_ns = clock_ns(CLOCK_REALTIME);
	f.every = log->every;
	memcpy(f.key, log->pk, sizeof(f.key));
	memcpy(f.prev, log->prev, sizeof(f.prev));
	audit_sign_msg(&f, msg);
	crypto_sign_detached(f.sig, NULL, msg, sizeof(msg), log->sk);
	return push(log, &f, err);
}

int kars_audit_append(struct kars_audit *log, const struct kars_audit_record *rec,
		      struct kars_err *err)
{
	struct audit_fields f;
	int ret;

	if (log->failed)
		return failed_err(log, err);
	ret = to_fields(log, rec, &f, err);
	if (ret)
		return ret;
	if (log->len + audit_line_bound(&f) > log->max_pending)
		return kars_err_set(err, ENOSPC,
				    "audit log %s: %zu bytes of records already wait for the disk "
				    "(max_pending_bytes): record refused",
				    log->path, log->len);
	ret = push(log, &f, err);
	if (ret)
		return ret;
	/* rec is in the chain now. A checkpoint that cannot be made (out of
	 * memory) is tried again at the next append; it does not undo rec. */
	if (log->signing && log->since_ckpt >= log->every) {
		struct kars_err why = {0};

		if (push_checkpoint(log, &why))
			log_warn("%s; the checkpoint is postponed", why.msg);
	}
	if (log->len >= log->flush_bytes)
		return kars_audit_flush(log, err);
	return 0;
}

int kars_audit_append_sync(struct kars_audit *log, const struct kars_audit_record *rec,
			   struct kars_err *err)
{
	return kars_audit_append(log, rec, err) ?: kars_audit_flush(log, err);
}

int kars_audit_flush(struct kars_audit *log, struct kars_err *err)
{
	char what[128];
	int ret;

	if (log->failed)
		return failed_err(log, err);
	if (!log->len)
		return 0;
	ret = audit_write_full(log->fd, log->buf, log->len);
	if (ret) {
		/* Undo a partial write, so the file ends with a whole record. */
		if (ftruncate(log->fd, log->durable_off)) {
			snprintf(what, sizeof(what),
				 "write (%s), then truncating back to byte %lld", strerror(-ret),
				 (long long)log->durable_off);
			return fail_log(log, errno, what, err);
		}
		/* Retry at the next tick, not in a loop. */
		log->first_pending_ns = clock_ns(CLOCK_MONOTONIC);
		return kars_err_set(err, -ret,
				    "audit log %s: write: %s; %llu records (from seq %llu) wait "
				    "in memory for the next flush",
				    log->path, strerror(-ret),
				    (unsigned long long)log->pending_records,
				    (unsigned long long)log->durable_seq);
	}
	if (fdatasync(log->fd))
		return fail_log(log, errno, "fdatasync", err);
	log->durable_off += (off_t)log->len;
	log->durable_seq = log->next_seq;
	log->st.flushes++;
	log->st.bytes_written += log->len;
	log->len = 0;
	log->pending_records = 0;
	return 0;
}

int kars_audit_tick(struct kars_audit *log, uint64_t now_ns, struct kars_err *err)
{
	if (log->failed)
		return failed_err(log, err);
	if (!log->pending_records)
		return 0;
	if (now_ns - log->first_pending_ns >= log->interval || log->len >= log->flush_bytes)
		return kars_audit_flush(log, err);
	return 0;
}

uint64_t kars_audit_deadline(const struct kars_audit *log)
{
	if (log->failed || !log->pending_records)
		return UINT64_MAX;
	return log->first_pending_ns + log->interval;
}

void kars_audit_stats(const struct kars_audit *log, struct kars_audit_stats *st)
{
	*st = log->st;
	st->next_seq = log->next_seq;
	st->durable_seq = log->durable_seq;
	st->pending_records = log->pending_records;
	st->pending_bytes = log->len;
}

bool kars_audit_pubkey(const struct kars_audit *log, uint8_t pubkey[KARS_AUDIT_PUBKEY_LEN])
{
	if (log->signing)
		memcpy(pubkey, log->pk, KARS_AUDIT_PUBKEY_LEN);
	return log->signing;
}

static int open_file(struct kars_audit *log, bool *created, struct kars_err *err)
{
	struct stat st;

	*created = false;
	for (int i = 0; i < 2 && log->fd < 0; i++) {
		log->fd = open(log->path, O_RDWR | O_APPEND | O_CLOEXEC);
		if (log->fd < 0 && errno == ENOENT) {
			log->fd =
			    open(log->path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
			*created = log->fd >= 0;
		}
		if (log->fd < 0 && errno != EEXIST)
			break;
	}
	if (log->fd < 0)
		return kars_err_set(err, errno, "audit log %s: %s", log->path, strerror(errno));
	if (flock(log->fd, LOCK_EX | LOCK_NB))
		return kars_err_set(
		    err, errno == EWOULDBLOCK ? EBUSY : errno, "audit log %s: %s", log->path,
		    errno == EWOULDBLOCK ? "another process writes it (flock)" : strerror(errno));
	if (fstat(log->fd, &st))
		return kars_err_set(err, errno, "audit log %s: %s", log->path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return kars_err_set(err, EINVAL, "audit log %s: not a regular file", log->path);
	return *created ? audit_fsync_dir(log->path, err) : 0;
}

static void free_log(struct kars_audit *log)
{
	if (log->fd >= 0)
		close(log->fd);
	sodium_memzero(log->sk, sizeof(log->sk));
	audit_hasher_free(&log->h);
	free(log->buf);
	free(log->path);
	free(log->principal);
	free(log->sandbox);
	free(log);
}

int kars_audit_open(struct kars_audit **out, const char *path, const struct kars_audit_opts *opts,
		    struct kars_err *err)
{
	static const struct kars_audit_opts defaults;
	struct kars_audit_record rec = {.action = "audit.open"};
	struct audit_resume res;
	struct kars_audit *log;
	struct stat st = {0};
	char reason[200];
	bool created;
	off_t torn;
	int ret;

	*out = NULL;
	opts = opts ? opts : &defaults;
	if (sodium_init() < 0)
		return kars_err_set(err, EIO, "libsodium failed to initialise");
	log = calloc(1, sizeof(*log));
	if (!log)
		return kars_err_set(err, ENOMEM, "out of memory");
	log->fd = -1;
	log->every = opts->checkpoint_every ?: KARS_AUDIT_DEFAULT_CHECKPOINT_EVERY;
	log->interval = opts->flush_interval_ns ?: KARS_AUDIT_DEFAULT_FLUSH_INTERVAL;
	log->flush_bytes = opts->flush_bytes ?: KARS_AUDIT_DEFAULT_FLUSH_BYTES;
	log->max_pending = opts->max_pending_bytes ?: KARS_AUDIT_DEFAULT_MAX_PENDING;
	log->path = strdup(path);
	log->principal = strdup(opts->principal ? opts->principal : "kars");
	log->sandbox = strdup(opts->sandbox ? opts->sandbox : "");
	if (!log->path || !log->principal || !log->sandbox) {
		ret = kars_err_set(err, ENOMEM, "out of memory");
		goto fail;
	}
	ret = audit_hasher_init(&log->h, err);
	if (!ret && opts->key_path) {
		ret = audit_key_load(opts->key_path, log->pk, log->sk, err);
		log->signing = !ret;
	}
	ret = ret ?: open_file(log, &created, err);
	if (!ret && fstat(log->fd, &st))
		ret = kars_err_set(err, errno, "audit log %s: %s", path, strerror(errno));
	ret = ret
		  ?: audit_recover(log->fd, path, log->signing ? log->pk : NULL, st.st_size, &res,
				   err);
	if (ret)
		goto fail;
	log->next_seq = res.next_seq;
	memcpy(log->prev, res.prev, sizeof(log->prev));
	log->since_ckpt = res.since_ckpt;
	log->durable_off = res.end;
	log->durable_seq = res.next_seq;
	torn = res.torn;
	log->st.truncated_bytes = (uint64_t)torn;

	/* Every open is on the record: a new chain, a resumed one, or one a crash
	 * cut short (and what was cut). A new signed chain starts signed. */
	if (log->next_seq == 0) {
		rec.decision = torn ? "recovered" : "new";
		snprintf(reason, sizeof(reason), "a new log%s",
			 torn ? "; truncated a torn first write" : "");
		if (log->signing)
			ret = push_checkpoint(log, err);
	} else {
		rec.decision = torn ? "recovered" : "resumed";
		snprintf(reason, sizeof(reason), "resumed after seq %llu",
			 (unsigned long long)log->next_seq - 1);
		if (torn)
			snprintf(reason + strlen(reason), sizeof(reason) - strlen(reason),
				 "; truncated a torn record of %lld bytes at byte %lld",
				 (long long)torn, (long long)log->durable_off);
	}
	rec.reason = reason;
	rec.principal = log->principal;
	rec.sandbox = log->sandbox;
	ret = ret ?: kars_audit_append_sync(log, &rec, err);
	if (ret)
		goto fail;
	*out = log;
	return 0;
fail:
	free_log(log);
	return ret;
}

int kars_audit_close(struct kars_audit *log, struct kars_err *err)
{
	int ret = 0;

	if (!log)
		return 0;
	if (log->failed)
		ret = failed_err(log, err);
	else if (log->signing && log->since_ckpt)
		ret = push_checkpoint(log, err); /* what waits is written even if this fails */
	if (!log->failed && log->pending_records) {
		struct kars_err why = {0};
		uint64_t n = log->pending_records;
		int fret = kars_audit_flush(log, &why);

		if (fret)
			ret = kars_err_set(
			    err, -fret,
			    "audit log %s: closed with %llu records (from seq %llu) not written: %s",
			    log->path, (unsigned long long)n, (unsigned long long)log->durable_seq,
			    why.msg);
	}
	if (close(log->fd) && !ret)
		ret =
		    kars_err_set(err, errno, "audit log %s: close: %s", log->path, strerror(errno));
	log->fd = -1;
	free_log(log);
	return ret;
}
