/* audit_priv.h - what the audit chain's writer and verifier share: one record
 * as fields, its canonical line and hash input, and the chain checker.
 *
 * The writer and the verifier must agree byte for byte on what is hashed and
 * signed, so both go through audit_hash() and audit_sign_msg() here and
 * nowhere else. Not installed; libkars users include audit.h.
 */
#ifndef KARS_AUDIT_PRIV_H
#define KARS_AUDIT_PRIV_H

#include <openssl/evp.h>
#include <sys/types.h>

#include "audit.h"

#define AUDIT_SIG_LEN 64

/* "kars.audit.v1\0", prefixed to every record's hash input. */
#define AUDIT_HASH_TAG	   "kars.audit.v1"
#define AUDIT_HASH_TAG_LEN (sizeof(AUDIT_HASH_TAG)) /* with its NUL */
/* "kars.audit.checkpoint.v1\0", prefixed to every signed message. */
#define AUDIT_SIGN_TAG	   "kars.audit.checkpoint.v1"
#define AUDIT_SIGN_TAG_LEN (sizeof(AUDIT_SIGN_TAG))
#define AUDIT_SIGN_MSG_LEN                                                                         \
	(AUDIT_SIGN_TAG_LEN + 3 * 8 + KARS_AUDIT_PUBKEY_LEN + KARS_AUDIT_HASH_LEN)
/* Tag + at most 16 length-prefixed fields, 6 of them strings. */
#define AUDIT_HASH_INPUT_MAX (AUDIT_HASH_TAG_LEN + 16 * 4 + 6 * KARS_AUDIT_FIELD_MAX + 512)

enum audit_kind {
	AUDIT_ENTRY,
	AUDIT_CHECKPOINT,
};

struct audit_str {
	const char *p;
	size_t len;
};

/* One record. Entries use the strings, counters and payload; checkpoints
 * use every, key and sig. Strings need not be NUL-terminated. */
struct audit_fields {
	enum audit_kind kind;
	uint64_t seq;
	uint64_t time_ns;
	struct audit_str sandbox, principal, action, decision, reason, model;
	uint64_t tokens_in, tokens_out, latency_ns;
	bool has_payload;
	uint8_t payload[KARS_AUDIT_HASH_LEN];
	uint64_t every;
	uint8_t key[KARS_AUDIT_PUBKEY_LEN];
	uint8_t sig[AUDIT_SIG_LEN];
	uint8_t prev[KARS_AUDIT_HASH_LEN];
	uint8_t hash[KARS_AUDIT_HASH_LEN];
};

struct audit_hasher {
	EVP_MD_CTX *ctx;
	EVP_MD *md;
	uint8_t *scratch; /* AUDIT_HASH_INPUT_MAX bytes */
};

int audit_hasher_init(struct audit_hasher *h, struct kars_err *err);
void audit_hasher_free(struct audit_hasher *h);
/* The record's hash: SHA-256 over audit_hash_input(). */
int audit_hash(struct audit_hasher *h, const struct audit_fields *f,
	       uint8_t out[KARS_AUDIT_HASH_LEN]);
/* Writes the hash input into out (AUDIT_HASH_INPUT_MAX bytes); returns its length. */
size_t audit_hash_input(const struct audit_fields *f, uint8_t *out);
/* Writes the message a checkpoint signs (AUDIT_SIGN_MSG_LEN bytes). */
void audit_sign_msg(const struct audit_fields *f, uint8_t out[AUDIT_SIGN_MSG_LEN]);
/* The most bytes audit_encode() can write for f. */
size_t audit_line_bound(const struct audit_fields *f);
/* Writes f's canonical JSON line, newline included; returns its length. */
size_t audit_encode(const struct audit_fields *f, char *out);
/* "2026-11-29T12:34:56.123456789Z": UTC, always nine fractional digits. */
#define AUDIT_TIME_LEN 30
size_t audit_time_format(uint64_t ns, char out[AUDIT_TIME_LEN + 1]);
/* 0 and *ns for a time in exactly that form (1970 to 2262), else -1. */
int audit_time_parse(const char *s, size_t len, uint64_t *ns);
/* 0 if s[0..len) is UTF-8 as RFC 3629 (and jansson) define it; else -1 and
 * *bad is the offset of the first bad byte. */
int audit_utf8_check(const char *s, size_t len, size_t *bad);

/* Checks records one line at a time, in file order. */
struct audit_chain {
	struct audit_hasher h;
	const uint8_t *pubkey; /* the required signer, or NULL */
	bool anchored;	       /* next_seq and prev are known */
	uint64_t next_seq;
	uint8_t prev[KARS_AUDIT_HASH_LEN];
	bool have_key;
	uint8_t key[KARS_AUDIT_PUBKEY_LEN];
	uint64_t since_ckpt; /* entries since the last checkpoint */
	uint64_t records, entries, checkpoints;
	bool signed_any;
	uint64_t signed_seq;
	enum audit_kind last_kind;
};

/* An anchored chain expects seq 0 after a zero prevHash: a file's start. */
int audit_chain_init(struct audit_chain *c, const uint8_t *pubkey, bool anchored,
		     struct kars_err *err);
void audit_chain_free(struct audit_chain *c);
/* Checks one line (without its newline) and advances the chain. Returns 0 or
 * -EBADMSG with what is wrong in err (the caller adds where). */
int audit_chain_feed(struct audit_chain *c, const char *line, size_t len, struct kars_err *err);

/* Calls fn for every newline-terminated line of fd in [start, limit) (limit
 * < 0: to end of file), reading with pread. fn gets the line without its
 * newline and the line's file offset; a non-zero return stops the scan and is
 * returned. *tail is set to the offset of what follows the last newline (an
 * unterminated line, or the end). A line longer than KARS_AUDIT_LINE_MAX
 * returns -E2BIG with *tail at its start, and err untouched. */
typedef int (*audit_line_fn)(void *ctx, const char *line, size_t len, off_t off);
int audit_scan_fd(int fd, off_t start, off_t limit, audit_line_fn fn, void *ctx, off_t *tail,
		  struct kars_err *err);

/* Where an existing log goes on (audit_recover.c). */
struct audit_resume {
	uint64_t next_seq;
	uint8_t prev[KARS_AUDIT_HASH_LEN];
	uint64_t since_ckpt;
	off_t end;  /* the file's size once a torn tail is gone */
	off_t torn; /* bytes of it truncated */
};

/* Checks the records of fd (size bytes) after its last checkpoint with pk
 * (NULL: the writer signs nothing, so the log must hold no checkpoint),
 * truncates an unterminated last line with a warning, and returns where the
 * chain goes on. Any other bad record: -EBADMSG naming it, nothing changed. */
int audit_recover(int fd, const char *path, const uint8_t *pk, off_t size, struct audit_resume *out,
		  struct kars_err *err);

/* The signing key (audit_key.c): loads the seed at path, or creates it
 * (0600), and keeps "<path>.pub" in step. */
int audit_key_load(const char *path, uint8_t pk[KARS_AUDIT_PUBKEY_LEN],
		   uint8_t sk[2 * KARS_AUDIT_PUBKEY_LEN], struct kars_err *err);
/* write() all of buf, through EINTR and short writes; 0 or -errno. */
int audit_write_full(int fd, const void *buf, size_t n);
/* fsync() of the directory holding path: makes a new entry in it durable. */
int audit_fsync_dir(const char *path, struct kars_err *err);

#endif
