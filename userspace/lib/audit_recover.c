/* audit_recover.c - where an existing audit log goes on, and what a crash
 * left at its end.
 *
 * The writer must not start appending before it knows that the chain it
 * extends is whole: its next checkpoint will sign everything before it. So
 * it checks the records that no checkpoint covers yet (those after the last
 * one: bounded work at start-up, however long the log), and tells a torn
 * last write (truncated here) from damage (reported, left alone for a
 * person and `kars audit verify`).
 */
#include "audit_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#define WINDOW (1u << 20) /* bytes read at a time when searching backwards */

static ssize_t pread_full(int fd, char *buf, size_t n, off_t off)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = pread(fd, buf + got, n - got, off + (off_t)got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EIO; /* shorter than fstat said: someone else truncated it */
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* Offset just after the last newline of the first size bytes (0 if none). */
static int find_end(int fd, off_t size, char *buf, off_t *end)
{
	off_t hi = size;

	while (hi > 0) {
		off_t lo = hi > WINDOW ? hi - WINDOW : 0;
		ssize_t n = pread_full(fd, buf, (size_t)(hi - lo), lo);
		char *nl;

		if (n < 0)
			return (int)n;
		nl = memrchr(buf, '\n', (size_t)n);
		if (nl) {
			*end = lo + (nl - buf) + 1;
			return 0;
		}
		hi = lo;
	}
	*end = 0;
	return 0;
}

/* Start of the last line before end that is a checkpoint (0 if none): the
 * records from there on are the ones no signature covers yet. */
static int find_stretch(int fd, off_t end, char *buf, off_t *start)
{
	static const char mark[] = ",\"kind\":\"checkpoint\",";
	off_t hi = end;

	while (hi > 0) {
		off_t lo = hi > WINDOW ? hi - WINDOW : 0;
		ssize_t n = pread_full(fd, buf, (size_t)(hi - lo), lo);
		size_t e;

		if (n < 0)
			return (int)n;
		e = (size_t)n - 1; /* buf[e] is the newline ending the last line */
		for (;;) {
			char *nl = memrchr(buf, '\n', e);
			size_t s = nl ? (size_t)(nl - buf) + 1 : 0;

			if (!nl && lo > 0)
				break; /* this line starts before the window */
			if (memmem(buf + s, e - s, mark, sizeof(mark) - 1) || !nl) {
				*start = lo + (off_t)s;
				return 0;
			}
			e = (size_t)(nl - buf);
		}
		if (lo + (off_t)e + 1 == hi)
			return -E2BIG; /* one line fills the window */
		hi = lo + (off_t)e + 1;
	}
	*start = 0;
	return 0;
}

struct recover_ctx {
	struct audit_chain chain;
	bool signing;
	struct kars_err why;
	off_t bad_off;
	bool bad_seq_known;
	uint64_t bad_seq;
};

static int recover_line(void *ctx, const char *line, size_t len, off_t off)
{
	struct recover_ctx *r = ctx;
	int ret;

	r->bad_off = off;
	r->bad_seq_known = r->chain.anchored;
	r->bad_seq = r->chain.next_seq;
	ret = audit_chain_feed(&r->chain, line, len, &r->why);
	if (!ret && r->chain.last_kind == AUDIT_CHECKPOINT && !r->signing)
		ret = kars_err_set(&r->why, EBADMSG,
				   "a signed checkpoint, but no signing key is configured: the "
				   "chain would go on unsigned");
	return ret;
}

int audit_recover(int fd, const char *path, const uint8_t *pk, off_t size, struct audit_resume *out,
		  struct kars_err *err)
{
	struct recover_ctx r = {.signing = pk != NULL};
	off_t end = 0, start = 0, tail;
	char *buf = malloc(WINDOW);
	int ret;

	memset(out, 0, sizeof(*out));
	if (!buf)
		return kars_err_set(err, ENOMEM, "out of memory");
	ret = find_end(fd, size, buf, &end);
	if (!ret)
		ret = find_stretch(fd, end, buf, &start);
	free(buf);
	if (ret == -E2BIG)
		return kars_err_set(
		    err, EBADMSG,
		    "audit log %s: a line before byte %lld is longer than %u bytes: "
		    "not an audit log, or damaged (kars audit verify %s)",
		    path, (long long)end, KARS_AUDIT_LINE_MAX, path);
	if (ret)
		return kars_err_set(err, -ret, "audit log %s: read: %s", path, strerror(-ret));
	ret = audit_chain_init(&r.chain, pk, start == 0, err);
	if (ret)
		return ret;
	ret = audit_scan_fd(fd, start, end, recover_line, &r, &tail, err);
	if (ret == -E2BIG) {
		r.bad_off = tail;
		r.bad_seq_known = r.chain.anchored;
		r.bad_seq = r.chain.next_seq;
		kars_err_set(&r.why, EBADMSG, "longer than %u bytes", KARS_AUDIT_LINE_MAX);
	}
	if (ret == -EBADMSG || ret == -E2BIG) {
		char seq[48] = "";

		if (r.bad_seq_known)
			snprintf(seq, sizeof(seq), " (seq %llu due)",
				 (unsigned long long)r.bad_seq);
		ret =
		    kars_err_set(err, EBADMSG,
				 "audit log %s: the record at byte %lld%s: %s; the log is damaged "
				 "before its end, so nothing was truncated (kars audit verify %s)",
				 path, (long long)r.bad_off, seq, r.why.msg, path);
		goto out;
	}
	if (ret)
		goto out;
	if (pk && start == 0 && r.chain.records && !r.chain.checkpoints) {
		ret = kars_err_set(err, EBADMSG,
				   "audit log %s: %llu records and no signed checkpoint: it was "
				   "written without a key, and signing it now would vouch for "
				   "records nobody signed; start a new log",
				   path, (unsigned long long)r.chain.records);
		goto out;
	}
	if (end < size) {
		char after[48] = "";

		if (r.chain.records)
			snprintf(after, sizeof(after), " (after seq %llu)",
				 (unsigned long long)r.chain.next_seq - 1);
		log_warn("audit log %s: truncating a torn record of %lld bytes at byte %lld%s: a "
			 "write cut short by a crash",
			 path, (long long)(size - end), (long long)end, after);
		if (ftruncate(fd, end) || fdatasync(fd)) {
			ret = kars_err_set(err, errno, "audit log %s: truncate: %s", path,
					   strerror(errno));
			goto out;
		}
		out->torn = size - end;
	}
	out->next_seq = r.chain.next_seq;
	memcpy(out->prev, r.chain.prev, sizeof(out->prev));
	out->since_ckpt = r.chain.since_ckpt;
	out->end = end;
out:
	audit_chain_free(&r.chain);
	return ret;
}
