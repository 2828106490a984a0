/* audit_verify.c - reads an audit log back and checks its chain.
 *
 * The same checker serves `kars audit verify` (the whole file) and the
 * writer's open (the records after the last checkpoint), so a log the writer
 * continues is one the verifier accepts. A line is parsed strictly: exactly
 * the fields of its kind, each of the right type and size; then its seq,
 * its link to the previous record, its hash and, for a checkpoint, its
 * signature are checked, and the first failure is reported with where it is.
 */
#include "audit_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"

static const char *const entry_keys[] = {
    "seq",	     "kind",	 "time",  "sandbox",  "principal", "action",
    "decision",	     "reason",	 "model", "tokensIn", "tokensOut", "latencyNs",
    "payloadSha256", "prevHash", "hash",  NULL,
};

static const char *const checkpoint_keys[] = {
    "seq", "kind", "time", "checkpointEvery", "key", "sig", "prevHash", "hash", NULL,
};

#define INT63_MAX ((uint64_t)INT64_MAX)

static int unhex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* A lowercase hex string of exactly n bytes (or "" when empty_ok). */
static int get_hex(const json_t *o, const char *key, uint8_t *out, size_t n, bool empty_ok,
		   bool *present, struct kars_err *err)
{
	const char *s = NULL;
	size_t len;
	int ret = kars_json_get_string(o, "", key, true, &s, err);

	if (ret)
		return ret;
	len = strlen(s);
	if (empty_ok && len == 0) {
		*present = false;
		return 0;
	}
	if (len != 2 * n)
		return kars_err_set(err, EINVAL, "%s: expected %zu lowercase hex digits%s, got %zu",
				    key, 2 * n, empty_ok ? " or \"\"" : "", len);
	for (size_t i = 0; i < n; i++) {
		int hi = unhex(s[2 * i]), lo = unhex(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return kars_err_set(err, EINVAL, "%s: not lowercase hex at character %zu",
					    key, hi < 0 ? 2 * i : 2 * i + 1);
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	if (present)
		*present = true;
	return 0;
}

static int get_str(const json_t *o, const char *key, struct audit_str *out, struct kars_err *err)
{
	const char *s = NULL;
	int ret = kars_json_get_string(o, "", key, true, &s, err);

	if (ret)
		return ret;
	out->p = s;
	out->len = json_string_length(json_object_get(o, key));
	if (out->len > KARS_AUDIT_FIELD_MAX)
		return kars_err_set(err, EINVAL, "%s: longer than %d bytes", key,
				    KARS_AUDIT_FIELD_MAX);
	return 0;
}

static int get_time(const json_t *o, uint64_t *ns, struct kars_err *err)
{
	const char *s = NULL;
	int ret = kars_json_get_string(o, "", "time", true, &s, err);

	if (ret)
		return ret;
	if (audit_time_parse(s, strlen(s), ns))
		return kars_err_set(err, EINVAL,
				    "time: expected UTC with nanoseconds, as "
				    "\"2026-01-31T23:59:59.123456789Z\"");
	return 0;
}

/* Fills f from one line; the strings point into *root (the caller frees it). */
static int parse_line(const char *line, size_t len, struct audit_fields *f, json_t **root,
		      struct kars_err *err)
{
	json_error_t jerr;
	const char *kind = NULL;
	json_t *o;
	int ret;

	memset(f, 0, sizeof(*f));
	*root = o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!o)
		return kars_err_set(err, EINVAL, "not a JSON record: %s (column %d)", jerr.text,
				    jerr.column);
	if (!json_is_object(o))
		return kars_err_set(err, EINVAL, "not a JSON object");
	ret = kars_json_get_string(o, "", "kind", true, &kind, err);
	if (ret)
		return ret;
	if (strcmp(kind, "entry") && strcmp(kind, "checkpoint"))
		return kars_err_set(err, EINVAL, "kind: expected \"entry\" or \"checkpoint\"");
	f->kind = strcmp(kind, "checkpoint") ? AUDIT_ENTRY : AUDIT_CHECKPOINT;
	ret =
	    kars_json_only_keys(o, "", f->kind == AUDIT_ENTRY ? entry_keys : checkpoint_keys, err);
	ret = ret ?: kars_json_get_uint(o, "", "seq", true, 0, INT63_MAX, &f->seq, err);
	ret = ret ?: get_time(o, &f->time_ns, err);
	if (f->kind == AUDIT_CHECKPOINT) {
		ret = ret
			  ?: kars_json_get_uint(o, "", "checkpointEvery", true, 1, INT63_MAX,
						&f->every, err);
		ret = ret ?: get_hex(o, "key", f->key, sizeof(f->key), false, NULL, err);
		ret = ret ?: get_hex(o, "sig", f->sig, sizeof(f->sig), false, NULL, err);
	} else {
		ret = ret ?: get_str(o, "sandbox", &f->sandbox, err);
		ret = ret ?: get_str(o, "principal", &f->principal, err);
		ret = ret ?: get_str(o, "action", &f->action, err);
		ret = ret ?: get_str(o, "decision", &f->decision, err);
		ret = ret ?: get_str(o, "reason", &f->reason, err);
		ret = ret ?: get_str(o, "model", &f->model, err);
		ret = ret
			  ?: kars_json_get_uint(o, "", "tokensIn", true, 0, INT63_MAX,
						&f->tokens_in, err);
		ret = ret
			  ?: kars_json_get_uint(o, "", "tokensOut", true, 0, INT63_MAX,
						&f->tokens_out, err);
		ret = ret
			  ?: kars_json_get_uint(o, "", "latencyNs", true, 0, INT63_MAX,
						&f->latency_ns, err);
		ret = ret
			  ?: get_hex(o, "payloadSha256", f->payload, sizeof(f->payload), true,
				     &f->has_payload, err);
	}
	ret = ret ?: get_hex(o, "prevHash", f->prev, sizeof(f->prev), false, NULL, err);
	ret = ret ?: get_hex(o, "hash", f->hash, sizeof(f->hash), false, NULL, err);
	return ret;
}

int audit_chain_init(struct audit_chain *c, const uint8_t *pubkey, bool anchored,
		     struct kars_err *err)
{
	memset(c, 0, sizeof(*c));
	c->pubkey = pubkey;
	c->anchored = anchored;
	if (sodium_init() < 0)
		return kars_err_set(err, EIO, "libsodium failed to initialise");
	return audit_hasher_init(&c->h, err);
}

void audit_chain_free(struct audit_chain *c)
{
	audit_hasher_free(&c->h);
}

static int check_checkpoint(struct audit_chain *c, const struct audit_fields *f,
			    struct kars_err *err)
{
	uint8_t msg[AUDIT_SIGN_MSG_LEN];
	char got[2 * KARS_AUDIT_PUBKEY_LEN + 1], want[2 * KARS_AUDIT_PUBKEY_LEN + 1];

	kars_audit_hex(f->key, sizeof(f->key), got);
	if (c->pubkey && memcmp(f->key, c->pubkey, sizeof(f->key))) {
		kars_audit_hex(c->pubkey, KARS_AUDIT_PUBKEY_LEN, want);
		return kars_err_set(err, EBADMSG,
				    "checkpoint signed by key %.16s..., not by the public key "
				    "given (%.16s...)",
				    got, want);
	}
	if (c->have_key && memcmp(f->key, c->key, sizeof(f->key))) {
		kars_audit_hex(c->key, sizeof(c->key), want);
		return kars_err_set(err, EBADMSG,
				    "checkpoint signed by key %.16s..., earlier ones by %.16s...",
				    got, want);
	}
	audit_sign_msg(f, msg);
	if (crypto_sign_verify_detached(f->sig, msg, sizeof(msg), f->key))
		return kars_err_set(err, EBADMSG, "checkpoint signature is not valid");
	return 0;
}

int audit_chain_feed(struct audit_chain *c, const char *line, size_t len, struct kars_err *err)
{
	uint8_t hash[KARS_AUDIT_HASH_LEN];
	struct audit_fields f;
	json_t *root = NULL;
	int ret;

	ret = parse_line(line, len, &f, &root, err);
	if (ret) {
		ret = -EBADMSG;
		goto out;
	}
	if (c->anchored && f.seq != c->next_seq) {
		ret = kars_err_set(err, EBADMSG, "seq is %llu: %s", (unsigned long long)f.seq,
				   f.seq < c->next_seq ? "a record repeated or out of order"
						       : "record(s) missing or out of order");
		goto out;
	}
	if (c->anchored && memcmp(f.prev, c->prev, sizeof(f.prev))) {
		ret = kars_err_set(err, EBADMSG,
				   c->next_seq ? "prevHash is not the previous record's hash"
					       : "prevHash of seq 0 is not all zeros");
		goto out;
	}
	if (audit_hash(&c->h, &f, hash)) {
		ret = kars_err_set(err, EIO, "SHA-256 failed (OpenSSL)");
		goto out;
	}
	if (memcmp(hash, f.hash, sizeof(hash))) {
		ret = kars_err_set(err, EBADMSG, "hash does not match the record's fields");
		goto out;
	}
	if (f.kind == AUDIT_CHECKPOINT) {
		ret = check_checkpoint(c, &f, err);
		if (ret)
			goto out;
		memcpy(c->key, f.key, sizeof(c->key));
		c->have_key = true;
		c->signed_any = true;
		c->signed_seq = f.seq;
		c->since_ckpt = 0;
		c->checkpoints++;
	} else {
		c->since_ckpt++;
		c->entries++;
	}
	c->anchored = true;
	c->next_seq = f.seq + 1;
	memcpy(c->prev, f.hash, sizeof(c->prev));
	c->last_kind = f.kind;
	c->records++;
out:
	json_decref(root);
	return ret;
}

int audit_scan_fd(int fd, off_t start, off_t limit, audit_line_fn fn, void *ctx, off_t *tail,
		  struct kars_err *err)
{
	size_t cap = 2 * KARS_AUDIT_LINE_MAX, len = 0, pos = 0;
	char *buf = malloc(cap);
	off_t off = start; /* file offset of buf[0] */
	bool eof = false;
	int ret = 0;

	*tail = start;
	if (!buf)
		return kars_err_set(err, ENOMEM, "out of memory");
	for (;;) {
		char *nl = memchr(buf + pos, '\n', len - pos);

		if (nl) {
			size_t n = (size_t)(nl - (buf + pos));

			if (n + 1 > KARS_AUDIT_LINE_MAX)
				goto too_long;
			ret = fn(ctx, buf + pos, n, off + (off_t)pos);
			if (ret)
				break;
			pos += n + 1;
			*tail = off + (off_t)pos;
			continue;
		}
		if (len - pos >= KARS_AUDIT_LINE_MAX)
			goto too_long;
		if (eof)
			break;
		memmove(buf, buf + pos, len - pos);
		off += (off_t)pos;
		len -= pos;
		pos = 0;
		while (len < cap) {
			size_t want = cap - len;
			ssize_t n;

			if (limit >= 0 && off + (off_t)len + (off_t)want > limit)
				want = (size_t)(limit - off - (off_t)len);
			if (!want) {
				eof = true;
				break;
			}
			n = pread(fd, buf + len, want, off + (off_t)len);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				ret = kars_err_set(err, errno, "read at byte %lld: %s",
						   (long long)(off + (off_t)len), strerror(errno));
				goto out;
			}
			if (n == 0) {
				eof = true;
				break;
			}
			len += (size_t)n;
		}
	}
	goto out;
too_long:
	/* Not set in err: the caller says where, in its own terms. */
	*tail = off + (off_t)pos;
	ret = -E2BIG;
out:
	free(buf);
	return ret;
}

/* --- kars_audit_verify --------------------------------------------------- */

struct verify_ctx {
	struct audit_chain chain;
	struct kars_audit_report *rep;
	struct kars_err *err;
	uint64_t line;
};

static int fail_at(struct verify_ctx *v, off_t off, const char *what)
{
	v->rep->bad_line = v->line;
	v->rep->bad_offset = (uint64_t)off;
	v->rep->bad_seq = v->chain.next_seq;
	return kars_err_set(v->err, EBADMSG, "line %llu (byte %lld, seq %llu): %s",
			    (unsigned long long)v->line, (long long)off,
			    (unsigned long long)v->chain.next_seq, what);
}

static int verify_line(void *ctx, const char *line, size_t len, off_t off)
{
	struct verify_ctx *v = ctx;
	struct kars_err why = {0};
	int ret;

	v->line++;
	ret = audit_chain_feed(&v->chain, line, len, &why);
	if (ret == -EBADMSG)
		return fail_at(v, off, why.msg);
	if (ret)
		return kars_err_set(v->err, ret, "%s", why.msg);
	return 0;
}

static int verify_begin(struct verify_ctx *v, const uint8_t *pubkey, struct kars_audit_report *rep,
			struct kars_err *err)
{
	memset(rep, 0, sizeof(*rep));
	v->rep = rep;
	v->err = err;
	v->line = 0;
	return audit_chain_init(&v->chain, pubkey, true, err);
}

/* The end of the file is reached at tail with size - tail bytes unterminated. */
static int verify_end(struct verify_ctx *v, int ret, off_t tail, off_t size)
{
	struct kars_audit_report *rep = v->rep;

	if (ret == -E2BIG) {
		v->line++;
		ret = fail_at(v, tail, "line longer than the longest record (not an audit log?)");
	} else if (!ret && size > tail) {
		v->line++;
		ret = fail_at(v, tail,
			      "no newline at the end of the file: a torn record (a crash during "
			      "a write, or a write in progress); reopening the log truncates it");
		rep->torn = true;
	} else if (!ret && v->chain.pubkey && !v->chain.signed_any) {
		ret = kars_err_set(v->err, EBADMSG,
				   "no checkpoint: nothing in the log is signed by the public key");
	}
	rep->records = v->chain.records;
	rep->entries = v->chain.entries;
	rep->checkpoints = v->chain.checkpoints;
	memcpy(rep->last_hash, v->chain.prev, sizeof(rep->last_hash));
	rep->signed_any = v->chain.signed_any;
	rep->signed_seq = v->chain.signed_seq;
	memcpy(rep->key, v->chain.key, sizeof(rep->key));
	audit_chain_free(&v->chain);
	return ret;
}

int kars_audit_verify_buf(const char *buf, size_t len, const uint8_t *pubkey,
			  struct kars_audit_report *rep, struct kars_err *err)
{
	struct verify_ctx v;
	size_t pos = 0;
	int ret;

	ret = verify_begin(&v, pubkey, rep, err);
	if (ret)
		return ret;
	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (buf + pos)) : len - pos;

		if (n + 1 > KARS_AUDIT_LINE_MAX) {
			ret = -E2BIG;
			break;
		}
		if (!nl)
			break;
		ret = verify_line(&v, buf + pos, n, (off_t)pos);
		if (ret)
			break;
		pos += n + 1;
	}
	return verify_end(&v, ret, (off_t)pos, (off_t)len);
}

int kars_audit_verify(const char *path, const uint8_t *pubkey, struct kars_audit_report *rep,
		      struct kars_err *err)
{
	struct verify_ctx v;
	struct stat st;
	off_t tail = 0;
	int fd, ret;

	memset(rep, 0, sizeof(*rep));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kars_err_set(err, errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return kars_err_set(err, EINVAL, "%s: not a regular file", path);
	}
	ret = verify_begin(&v, pubkey, rep, err);
	if (!ret) {
		ret = audit_scan_fd(fd, 0, -1, verify_line, &v, &tail, err);
		if (!ret && fstat(fd, &st))
			ret = kars_err_set(err, errno, "%s: %s", path, strerror(errno));
		ret = verify_end(&v, ret, tail, st.st_size);
	}
	close(fd);
	return ret;
}

int kars_audit_pubkey_read(const char *path, uint8_t pubkey[KARS_AUDIT_PUBKEY_LEN],
			   struct kars_err *err)
{
	char buf[2 * KARS_AUDIT_PUBKEY_LEN + 3];
	size_t n = 0;
	ssize_t r;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return kars_err_set(err, errno, "%s: %s", path, strerror(errno));
	while (n < sizeof(buf) && (r = read(fd, buf + n, sizeof(buf) - n)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;

			close(fd);
			return kars_err_set(err, e, "%s: %s", path, strerror(e));
		}
		n += (size_t)r;
	}
	close(fd);
	if (n == KARS_AUDIT_PUBKEY_LEN) {
		memcpy(pubkey, buf, KARS_AUDIT_PUBKEY_LEN);
		return 0;
	}
	if (n > 2 * KARS_AUDIT_PUBKEY_LEN && buf[2 * KARS_AUDIT_PUBKEY_LEN] == '\n')
		n--;
	for (size_t i = 0; n == 2 * KARS_AUDIT_PUBKEY_LEN && i < KARS_AUDIT_PUBKEY_LEN; i++) {
		int hi = unhex(buf[2 * i]), lo = unhex(buf[2 * i + 1]);

		if (hi < 0 || lo < 0)
			break;
		pubkey[i] = (uint8_t)(hi << 4 | lo);
		if (i + 1 == KARS_AUDIT_PUBKEY_LEN)
			return 0;
	}
	return kars_err_set(err, EINVAL,
			    "%s: expected an Ed25519 public key: 64 lowercase hex digits and "
			    "a newline, or 32 bytes",
			    path);
}
