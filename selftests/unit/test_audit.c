/* test_audit.c - unit tests for the audit chain (userspace/lib/audit.h).
 *
 * The chain is only worth having if every way a record can be lost, altered
 * or forged is caught, and if a crash costs at most the record being written
 * without ever being silently absorbed. So each test damages a real log file
 * the way a crash, a disk or a person would, and checks that the verifier
 * names the first bad record and that the writer refuses, or recovers and
 * says so. The hash input and the signed message are recomputed here from
 * docs/audit-chain.md by an independent implementation, which pins the
 * documented format.
 */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <sched.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "audit_priv.h" /* the time codec */
#include "log.h"

#define MAX_LINES 512

/* Fault injection: libkars is linked statically, so these definitions take
 * the place of libc's for the library's calls. Non-zero: fail with that errno. */
static int fail_fdatasync, fail_ftruncate;

int fdatasync(int fd)
{
	if (fail_fdatasync) {
		errno = fail_fdatasync;
		return -1;
	}
	return (int)syscall(SYS_fdatasync, fd);
}

int ftruncate(int fd, off_t len)
{
	if (fail_ftruncate) {
		errno = fail_ftruncate;
		return -1;
	}
	return (int)syscall(SYS_ftruncate, fd, len);
}

struct fx {
	char dir[64];
	char log[128];
	char key[128];
	char pub[160];
	uint8_t pk[KARS_AUDIT_PUBKEY_LEN];
};

struct lines {
	char *v[MAX_LINES];
	size_t n;
};

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	if (!fx)
		return -1;
	strcpy(fx->dir, "/tmp/kars-audit-XXXXXX");
	if (!mkdtemp(fx->dir))
		return -1;
	snprintf(fx->log, sizeof(fx->log), "%s/audit.jsonl", fx->dir);
	snprintf(fx->key, sizeof(fx->key), "%s/audit.key", fx->dir);
	snprintf(fx->pub, sizeof(fx->pub), "%s.pub", fx->key);
	kars_log_set_level(KARS_LOG_WARN);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	nftw(fx->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(fx);
	return 0;
}

/* --- files and lines ------------------------------------------------------- */

static char *slurp(const char *path, size_t *len)
{
	struct stat st;
	char *buf;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
	buf[st.st_size] = '\0';
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

static void spit(const char *path, const char *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

static off_t file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

static void lines_read(const char *path, struct lines *l)
{
	size_t len;
	char *buf = slurp(path, &len), *save = NULL;

	l->n = 0;
	assert_true(len && buf[len - 1] == '\n');
	for (char *s = strtok_r(buf, "\n", &save); s; s = strtok_r(NULL, "\n", &save)) {
		assert_true(l->n < MAX_LINES);
		l->v[l->n++] = strdup(s);
	}
	free(buf);
}

static void lines_write(const char *path, const struct lines *l)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	for (size_t i = 0; i < l->n; i++)
		fprintf(f, "%s\n", l->v[i]);
	fclose(f);
}

static void lines_free(struct lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	l->n = 0;
}

static void lines_copy(struct lines *dst, const struct lines *src)
{
	dst->n = src->n;
	for (size_t i = 0; i < src->n; i++)
		dst->v[i] = strdup(src->v[i]);
}

static json_t *line_json(const char *line)
{
	json_t *o = json_loads(line, JSON_REJECT_DUPLICATES, NULL);

	if (!o)
		fail_msg("not JSON: %s", line);
	return o;
}

static void line_set(struct lines *l, size_t i, json_t *o)
{
	free(l->v[i]);
	l->v[i] = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
}

static const char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	if (!s)
		fail_msg("no string \"%s\"", key);
	return s;
}

static uint64_t jint(json_t *o, const char *key)
{
	return (uint64_t)json_integer_value(json_object_get(o, key));
}

/* --- the documented format, implemented again ----------------------------- */

static void unhex(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned int b;

		assert_int_equal(sscanf(s + 2 * i, "%2x", &b), 1);
		out[i] = (uint8_t)b;
	}
}

static uint8_t *be32(uint8_t *p, uint32_t v)
{
	*p++ = v >> 24;
	*p++ = v >> 16;
	*p++ = v >> 8;
	*p++ = v;
	return p;
}

static uint8_t *be64(uint8_t *p, uint64_t v)
{
	p = be32(p, (uint32_t)(v >> 32));
	return be32(p, (uint32_t)v);
}

static uint8_t *doc_bytes(uint8_t *p, const void *b, size_t n)
{
	p = be32(p, (uint32_t)n);
	memcpy(p, b, n);
	return p + n;
}

static uint8_t *doc_u64(uint8_t *p, json_t *o, const char *key)
{
	return be64(be32(p, 8), jint(o, key));
}

/* "time" as nanoseconds since the epoch, by libc's timegm(). */
static uint64_t doc_time(json_t *o)
{
	const char *t = jstr(o, "time");
	struct tm tm = {0};
	unsigned long frac;
	char z;

	assert_int_equal(strlen(t), 30);
	assert_int_equal(sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d.%9lu%c", &tm.tm_year, &tm.tm_mon,
				&tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &frac, &z),
			 8);
	assert_int_equal(z, 'Z');
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (uint64_t)timegm(&tm) * 1000000000ull + frac;
}

static uint8_t *doc_str(uint8_t *p, json_t *o, const char *key)
{
	json_t *s = json_object_get(o, key);

	return doc_bytes(p, json_string_value(s), json_string_length(s));
}

static uint8_t *doc_hex(uint8_t *p, json_t *o, const char *key, size_t n)
{
	const char *s = jstr(o, key);
	uint8_t b[64];

	if (!*s)
		return be32(p, 0);
	unhex(s, b, n);
	return doc_bytes(p, b, n);
}

/* SHA-256 over docs/audit-chain.md's "hash input" of a parsed line. */
static void doc_hash(json_t *o, uint8_t out[32])
{
	static uint8_t buf[32768];
	const char *kind = jstr(o, "kind");
	uint8_t *p = buf;
	unsigned int n = 0;

	memcpy(p, "kars.audit.v1", 14); /* with its NUL */
	p += 14;
	p = doc_u64(p, o, "seq");
	p = doc_bytes(p, kind, strlen(kind));
	p = be64(be32(p, 8), doc_time(o));
	if (strcmp(kind, "checkpoint") == 0) {
		p = doc_u64(p, o, "checkpointEvery");
		p = doc_hex(p, o, "key", 32);
		p = doc_hex(p, o, "sig", 64);
	} else {
		static const char *const strs[] = {"sandbox",  "principal", "action",
						   "decision", "reason",    "model"};

		for (size_t i = 0; i < 6; i++)
			p = doc_str(p, o, strs[i]);
		p = doc_u64(p, o, "tokensIn");
		p = doc_u64(p, o, "tokensOut");
		p = doc_u64(p, o, "latencyNs");
		p = doc_hex(p, o, "payloadSha256", 32);
	}
	p = doc_hex(p, o, "prevHash", 32);
	assert_true(EVP_Digest(buf, (size_t)(p - buf), out, &n, EVP_sha256(), NULL));
}

static void set_hex(json_t *o, const char *key, const uint8_t *b, size_t n)
{
	char hex[129];

	kars_audit_hex(b, n, hex);
	json_object_set_new(o, key, json_string(hex));
}

/* What a forger without the key can do: fix every hash from line i on. */
static void rehash_from(struct lines *l, size_t i)
{
	for (; i < l->n; i++) {
		json_t *o = line_json(l->v[i]);
		uint8_t h[32];

		if (i > 0) {
			json_t *prev = line_json(l->v[i - 1]);

			json_object_set_new(o, "prevHash", json_string(jstr(prev, "hash")));
			json_decref(prev);
		}
		doc_hash(o, h);
		set_hex(o, "hash", h, 32);
		line_set(l, i, o);
	}
}

/* --- logs ------------------------------------------------------------------ */

static struct kars_audit *open_opts(const char *path, const struct kars_audit_opts *opts)
{
	struct kars_err err = {0};
	struct kars_audit *log = NULL;

	if (kars_audit_open(&log, path, opts, &err))
		fail_msg("open %s: %s", path, err.msg);
	return log;
}

static struct kars_audit *open_log(struct fx *fx, uint32_t every)
{
	struct kars_audit_opts opts = {
	    .key_path = fx->key, .checkpoint_every = every, .principal = "test"};
	struct kars_audit *log = open_opts(fx->log, &opts);

	assert_true(kars_audit_pubkey(log, fx->pk));
	return log;
}

static void close_log(struct kars_audit *log)
{
	struct kars_err err = {0};

	if (kars_audit_close(log, &err))
		fail_msg("close: %s", err.msg);
}

static const uint8_t digest_abc[32] = {
    0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
    0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
};

/* Record i of a test: fields that vary, escapes, UTF-8, both payload forms. */
static void fill(struct kars_audit_record *r, int i, char *reason, size_t len)
{
	memset(r, 0, sizeof(*r));
	snprintf(reason, len, "rule #%d: \"quoted\", tab\there, newline\nthere, caf\xc3\xa9 \\ %d",
		 i, i * 7);
	r->sandbox = "team-a/agent-1";
	r->principal = "spiffe://cluster.local/ns/team-a/sa/agent";
	r->action = i % 5 == 4 ? "policy.reload" : "inference";
	r->decision = i % 3 ? "allow" : "deny";
	r->reason = reason;
	r->model = i % 2 ? "gpt-4o-mini" : NULL;
	r->tokens_in = 1000 + (uint64_t)i;
	r->tokens_out = 200 + (uint64_t)i;
	r->latency_ns = 850000000ull + (uint64_t)i;
	if (i % 4 == 1)
		r->payload_sha256 = digest_abc;
	else if (i % 4 == 2) {
		r->payload = "abc";
		r->payload_len = 3;
	}
}

static void append_n(struct kars_audit *log, int n, int base)
{
	struct kars_audit_record r;
	struct kars_err err = {0};
	char reason[128];

	for (int i = base; i < base + n; i++) {
		fill(&r, i, reason, sizeof(reason));
		if (kars_audit_append(log, &r, &err))
			fail_msg("append %d: %s", i, err.msg);
	}
}

/* A closed, signed log: genesis checkpoint, open record, n entries. */
static void make_log(struct fx *fx, uint32_t every, int n)
{
	struct kars_audit *log = open_log(fx, every);

	append_n(log, n, 0);
	close_log(log);
}

static void expect_valid(const char *path, const uint8_t *pk, struct kars_audit_report *rep)
{
	struct kars_err err = {0};
	struct kars_audit_report r2;
	size_t len;
	char *buf;

	if (kars_audit_verify(path, pk, rep, &err))
		fail_msg("verify: %s", err.msg);
	buf = slurp(path, &len);
	assert_int_equal(kars_audit_verify_buf(buf, len, pk, &r2, &err), 0);
	assert_int_equal(r2.records, rep->records);
	free(buf);
}

/* Verify fails, naming line (1-based) with a message containing needle; the
 * buffer variant agrees. */
static void expect_bad(const char *path, const uint8_t *pk, uint64_t line, const char *needle)
{
	struct kars_err err = {0}, err2 = {0};
	struct kars_audit_report rep, rep2;
	char where[48];
	size_t len;
	char *buf;

	assert_int_equal(kars_audit_verify(path, pk, &rep, &err), -EBADMSG);
	if (rep.bad_line != line)
		fail_msg("bad line %llu, want %llu: %s", (unsigned long long)rep.bad_line,
			 (unsigned long long)line, err.msg);
	snprintf(where, sizeof(where), "line %llu ", (unsigned long long)line);
	if (line)
		assert_err_contains(&err, where);
	assert_err_contains(&err, needle);
	buf = slurp(path, &len);
	assert_int_equal(kars_audit_verify_buf(buf, len, pk, &rep2, &err2), -EBADMSG);
	assert_string_equal(err.msg, err2.msg);
	assert_int_equal(rep.bad_offset, rep2.bad_offset);
	free(buf);
}

static size_t find_line(const struct lines *l, const char *kind, size_t from)
{
	for (size_t i = from; i < l->n; i++) {
		json_t *o = line_json(l->v[i]);
		bool match = strcmp(jstr(o, "kind"), kind) == 0;

		json_decref(o);
		if (match)
			return i;
	}
	fail_msg("no %s at or after line %zu", kind, from + 1);
	return 0;
}

/* Runs fn in a child that exits without closing the log: a crash. */
static void crash_after(struct fx *fx, uint32_t every, int n)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct kars_audit_opts opts = {.key_path = fx->key, .checkpoint_every = every};
		struct kars_audit_record r;
		struct kars_audit *log;
		struct kars_err err = {0};
		char reason[128];

		if (kars_audit_open(&log, fx->log, &opts, &err))
			_exit(1);
		for (int i = 0; i < n; i++) {
			fill(&r, i, reason, sizeof(reason));
			if (kars_audit_append(log, &r, &err))
				_exit(2);
		}
		_exit(kars_audit_flush(log, &err) ? 3 : 0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* --- tests ------------------------------------------------------------------ */

static void test_round_trip(void **state)
{
	struct fx *fx = *state;
	struct kars_audit_report rep;
	struct kars_audit_record r;
	struct kars_audit_stats st;
	struct kars_err err = {0};
	struct kars_audit *log;
	struct lines l;
	struct stat sb;
	char reason[128], hex[65];
	size_t len;
	char *pub;
	json_t *o;

	log = open_log(fx, 4);
	append_n(log, 9, 0);
	fill(&r, 9, reason, sizeof(reason));
	assert_int_equal(kars_audit_append_sync(log, &r, &err), 0);
	kars_audit_stats(log, &st);
	/* seq 0 genesis checkpoint, 1 "audit.open", then 10 entries with a
	 * checkpoint after every 4th entry: after seq 4 and seq 9 */
	assert_int_equal(st.next_seq, 14);
	assert_int_equal(st.durable_seq, 14);
	assert_int_equal(st.checkpoints, 3);
	assert_int_equal(st.pending_records, 0);
	close_log(log);

	expect_valid(fx->log, fx->pk, &rep);
	assert_int_equal(rep.records, 15); /* + the closing checkpoint */
	assert_int_equal(rep.entries, 11);
	assert_int_equal(rep.checkpoints, 4);
	assert_true(rep.signed_any);
	assert_int_equal(rep.signed_seq, 14);
	assert_memory_equal(rep.key, fx->pk, 32);

	lines_read(fx->log, &l);
	assert_int_equal(l.n, 15);
	o = line_json(l.v[1]);
	assert_string_equal(jstr(o, "action"), "audit.open");
	assert_string_equal(jstr(o, "decision"), "new");
	assert_string_equal(jstr(o, "principal"), "test");
	json_decref(o);
	/* seq 3 is record 1 (digest given), seq 4 is record 2 (payload "abc"
	 * given, hashed by the library) */
	for (size_t i = 3; i <= 4; i++) {
		o = line_json(l.v[i]);
		assert_int_equal(jint(o, "seq"), i);
		assert_string_equal(
		    jstr(o, "payloadSha256"),
		    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
		json_decref(o);
	}
	o = line_json(l.v[2]);
	fill(&r, 0, reason, sizeof(reason));
	assert_string_equal(jstr(o, "kind"), "entry");
	assert_string_equal(jstr(o, "sandbox"), r.sandbox);
	assert_string_equal(jstr(o, "principal"), r.principal);
	assert_string_equal(jstr(o, "action"), "inference");
	assert_string_equal(jstr(o, "decision"), "deny");
	assert_string_equal(jstr(o, "reason"), reason); /* quotes, tab, newline, é, \ */
	assert_string_equal(jstr(o, "model"), "");
	assert_string_equal(jstr(o, "payloadSha256"), "");
	assert_int_equal(jint(o, "tokensIn"), 1000);
	assert_int_equal(jint(o, "tokensOut"), 200);
	assert_int_equal(jint(o, "latencyNs"), 850000000);
	assert_true(doc_time(o) > 1600000000ull * 1000000000ull);
	json_decref(o);
	o = line_json(l.v[5]);
	assert_string_equal(jstr(o, "kind"), "checkpoint");
	json_decref(o);
	lines_free(&l);

	/* the log and the key are private; the public key is beside the key */
	assert_int_equal(stat(fx->log, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(stat(fx->key, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(sb.st_size, 32);
	pub = slurp(fx->pub, &len);
	kars_audit_hex(fx->pk, 32, hex);
	assert_int_equal(len, 65);
	assert_memory_equal(pub, hex, 64);
	assert_int_equal(pub[64], '\n');
	free(pub);
}

/* The hash and the signature are exactly as docs/audit-chain.md says. */
static void test_format_is_documented(void **state)
{
	struct fx *fx = *state;
	uint8_t h[32], want[32], sig[64], msg[113], *p;
	struct lines l;

	make_log(fx, 4, 6);
	lines_read(fx->log, &l);
	for (size_t i = 0; i < l.n; i++) {
		json_t *o = line_json(l.v[i]);

		doc_hash(o, h);
		unhex(jstr(o, "hash"), want, 32);
		assert_memory_equal(h, want, 32);
		if (strcmp(jstr(o, "kind"), "checkpoint") == 0) {
			p = msg;
			memcpy(p, "kars.audit.checkpoint.v1", 25);
			p = be64(p + 25, jint(o, "seq"));
			p = be64(p, doc_time(o));
			p = be64(p, jint(o, "checkpointEvery"));
			unhex(jstr(o, "key"), p, 32);
			unhex(jstr(o, "prevHash"), p + 32, 32);
			assert_int_equal(p + 64 - msg, sizeof(msg));
			unhex(jstr(o, "sig"), sig, 64);
			assert_memory_equal(msg + 49, fx->pk, 32);
			assert_int_equal(crypto_sign_verify_detached(sig, msg, sizeof(msg), fx->pk),
					 0);
			assert_int_equal(jint(o, "checkpointEvery"), 4);
		}
		json_decref(o);
	}
	/* seq 0 links to 32 zero bytes */
	assert_non_null(
	    strstr(l.v[0], "\"prevHash\":\"" /* 64 zeros */
			   "0000000000000000000000000000000000000000000000000000000000000000\""));
	lines_free(&l);
}

/* The hash covers values, not formatting: a log reformatted by a JSON tool
 * (spaces, \u escapes) still verifies. */
static void test_reformatted_still_verifies(void **state)
{
	struct fx *fx = *state;
	struct kars_audit_report rep;
	struct lines l;

	make_log(fx, 4, 6);
	lines_read(fx->log, &l);
	for (size_t i = 0; i < l.n; i++) {
		json_t *o = line_json(l.v[i]);

		free(l.v[i]);
		l.v[i] = json_dumps(o, JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
		json_decref(o);
	}
	assert_non_null(strstr(l.v[2], "caf\\u00E9"));
	assert_non_null(strstr(l.v[2], "\"seq\": 2"));
	lines_write(fx->log, &l);
	expect_valid(fx->log, fx->pk, &rep);
	assert_int_equal(rep.records, l.n);
	lines_free(&l);
}

static void test_reopen_continues(void **state)
{
	struct fx *fx = *state;
	struct kars_audit_report rep;
	struct kars_audit_stats st;
	struct kars_audit *log;
	struct lines l;
	json_t *o;

	make_log(fx, 4, 3); /* seq 0..5: ckpt, open, 3 entries, ckpt */
	log = open_log(fx, 4);
	kars_audit_stats(log, &st);
	assert_int_equal(st.next_seq, 7); /* 6 is the second "audit.open" */
	append_n(log, 3, 100);
	close_log(log);
	log = open_log(fx, 4);
	close_log(log);

	expect_valid(fx->log, fx->pk, &rep);
	lines_read(fx->log, &l);
	assert_int_equal(rep.records, l.n);
	for (size_t i = 0; i < l.n; i++) {
		o = line_json(l.v[i]);
		assert_int_equal(jint(o, "seq"), i);
		json_decref(o);
	}
	o = line_json(l.v[6]);
	assert_string_equal(jstr(o, "action"), "audit.open");
	assert_string_equal(jstr(o, "decision"), "resumed");
	assert_string_equal(jstr(o, "reason"), "resumed after seq 5");
	json_decref(o);
	lines_free(&l);
}

/* Changes one field of line at in a copy of orig and checks that verify names
 * that line, with and without the public key. */
static void tamper(struct fx *fx, const struct lines *orig, size_t at, const char *field)
{
	struct lines l;
	json_t *o, *v;

	lines_copy(&l, orig);
	o = line_json(l.v[at]);
	v = json_object_get(o, field);
	if (!v)
		fail_msg("line %zu has no %s", at + 1, field);
	if (json_is_integer(v)) {
		json_object_set_new(o, field, json_integer(json_integer_value(v) + 1));
	} else if (strcmp(field, "kind") == 0) {
		json_object_set_new(
		    o, "kind",
		    json_string(strcmp(json_string_value(v), "entry") ? "entry" : "checkpoint"));
	} else {
		char *t = strdup(json_string_value(v));

		/* hex: another digit; text: another first letter */
		t[0] = t[0] == '0' ? '1' : t[0] == 'a' ? 'b' : t[0] == 's' ? 'S' : '0';
		json_object_set_new(o, field, json_string(t));
		free(t);
	}
	line_set(&l, at, o);
	lines_write(fx->log, &l);
	expect_bad(fx->log, fx->pk, at + 1, "");
	expect_bad(fx->log, NULL, at + 1, "");
	lines_free(&l);
}

/* Changing any one field of a record in the middle is caught at that record. */
static void test_tamper_each_field(void **state)
{
	static const char *const entry_fields[] = {
	    "seq",	 "kind",      "time",	       "sandbox",  "principal",
	    "action",	 "decision",  "reason",	       "model",	   "tokensIn",
	    "tokensOut", "latencyNs", "payloadSha256", "prevHash", "hash",
	};
	static const char *const checkpoint_fields[] = {
	    "seq", "kind", "time", "checkpointEvery", "key", "sig", "prevHash", "hash",
	};
	struct fx *fx = *state;
	const size_t entry = 8; /* seq 8: record 5, with a payload digest and a model */
	struct lines orig, l;
	size_t ckpt;
	json_t *o;

	make_log(fx, 4, 10);
	lines_read(fx->log, &orig);
	ckpt = find_line(&orig, "checkpoint", entry);
	for (size_t i = 0; i < sizeof(entry_fields) / sizeof(entry_fields[0]); i++)
		tamper(fx, &orig, entry, entry_fields[i]);
	for (size_t i = 0; i < sizeof(checkpoint_fields) / sizeof(checkpoint_fields[0]); i++)
		tamper(fx, &orig, ckpt, checkpoint_fields[i]);

	/* the reasons given */
	lines_copy(&l, &orig);
	o = line_json(l.v[entry]);
	json_object_set_new(o, "reason", json_string("edited"));
	line_set(&l, entry, o);
	lines_write(fx->log, &l);
	expect_bad(fx->log, fx->pk, entry + 1, "hash does not match the record's fields");
	lines_free(&l);

	lines_copy(&l, &orig);
	o = line_json(l.v[entry]);
	json_object_set_new(o, "prevHash", json_string(jstr(o, "hash")));
	line_set(&l, entry, o);
	lines_write(fx->log, &l);
	expect_bad(fx->log, fx->pk, entry + 1, "prevHash is not the previous record's hash");
	lines_free(&l);

	lines_copy(&l, &orig); /* a time still well-formed, one nanosecond off */
	o = line_json(l.v[entry]);
	{
		char *t = strdup(jstr(o, "time"));

		t[28] = t[28] == '9' ? '8' : (char)(t[28] + 1);
		json_object_set_new(o, "time", json_string(t));
		free(t);
	}
	line_set(&l, entry, o);
	lines_write(fx->log, &l);
	expect_bad(fx->log, fx->pk, entry + 1, "hash does not match the record's fields");
	lines_free(&l);

	lines_copy(&l, &orig);
	o = line_json(l.v[0]);
	json_object_set_new(o, "prevHash", json_string(jstr(o, "hash")));
	line_set(&l, 0, o);
	lines_write(fx->log, &l);
	expect_bad(fx->log, fx->pk, 1, "prevHash of seq 0 is not all zeros");
	lines_free(&l);
	lines_free(&orig);
}

/* Damage that is not a well-formed record is named with the field. */
static void test_malformed_lines_named(void **state)
{
	static const struct {
		const char *from, *to, *needle;
	} edits[] = {
	    {"\"model\":", "\"modle\":", "modle: unknown field"},
	    {"\"tokensIn\":", "\"tokensIn\":-", "tokensIn: expected an integer"},
	    {"\"sandbox\":\"team-a/agent-1\"", "\"sandbox\":7", "sandbox: expected a string"},
	    {"\"hash\":\"", "\"hash\":\"A", "hash: expected 64 lowercase hex digits"},
	    {",\"decision\":\"allow\"", "", "decision: Required value"},
	    {"{\"seq\"", "{\"seq\":1,\"seq\"", "duplicate object key"},
	    {"\"kind\":\"entry\"", "\"kind\":\"Entry\"",
	     "kind: expected \"entry\" or \"checkpoint\""},
	    {"{", "[", "not a JSON record"},
	};
	struct fx *fx = *state;
	struct lines orig, l;

	make_log(fx, 100, 4);
	lines_read(fx->log, &orig);
	for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		const size_t at = 3; /* seq 3, record 1: "allow" */
		char *p, *s;

		lines_copy(&l, &orig);
		p = strstr(l.v[at], edits[i].from);
		assert_non_null(p);
		s = malloc(strlen(l.v[at]) + strlen(edits[i].to) + 1);
		sprintf(s, "%.*s%s%s", (int)(p - l.v[at]), l.v[at], edits[i].to,
			p + strlen(edits[i].from));
		free(l.v[at]);
		l.v[at] = s;
		lines_write(fx->log, &l);
		expect_bad(fx->log, NULL, at + 1, edits[i].needle);
		lines_free(&l);
	}
	/* a blank line is a bad record too */
	{
		size_t len;
		char *buf = slurp(fx->log, &len);
		char *second = strchr(buf, '\n') + 1;
		FILE *f = fopen(fx->log, "w");

		fprintf(f, "%.*s\n%s", (int)(second - buf), buf, second);
		fclose(f);
		free(buf);
		expect_bad(fx->log, NULL, 2, "byte ");
	}
	lines_free(&orig);
}

static void test_delete_swap_duplicate(void **state)
{
	struct fx *fx = *state;
	struct kars_audit_report rep;
	struct lines orig, l;
	char *tmp;

	make_log(fx, 4, 10);
	lines_read(fx->log, &orig);

	lines_copy(&l, &orig); /* delete line 8 (seq 7) */
	free(l.v[7]);
	memmove(&l.v[7], &l.v[8], (l.n - 8) * sizeof(l.v[0]));
	l.n--;
	lines_write(fx->log, &l);
	expect_bad(fx->log, fx->pk, 8, "seq is 8: record(s) missing or out of order");
	lines_free(&l);

	lines_copy(&l, &orig); /* delete the first line */
	free(l.v[0]);
	memmove(&l.v[0], &l.v[1], (l.n - 1) * sizeof(l.v[0]));
	l.n--;
	lines_write(fx->log, &l);
	expect_bad(fx->log, fx->pk, 1, "seq is 1");
	lines_free(&l);

	lines_copy(&l, &orig); /* swap lines 8 and 9 */
	tmp = l.v[7];
	l.v[7] = l.v[8];
	l.v[8] = tmp;
	lines_write(fx->log, &l);
	expect_bad(fx->log, fx->pk, 8, "seq is 8");
	lines_free(&l);

	lines_copy(&l, &orig); /* duplicate line 8 */
	memmove(&l.v[8], &l.v[7], (l.n - 7) * sizeof(l.v[0]));
	l.v[7] = strdup(l.v[8]);
	l.n++;
	lines_write(fx->log, &l);
	expect_bad(fx->log, fx->pk, 9, "seq is 7: a record repeated or out of order");
	lines_free(&l);

	/* Cutting whole records off the end leaves a valid, shorter chain: only
	 * the signature horizon shows it. docs/audit-chain.md says why. */
	lines_copy(&l, &orig);
	free(l.v[--l.n]);
	lines_write(fx->log, &l);
	expect_valid(fx->log, fx->pk, &rep);
	assert_int_equal(rep.records, orig.n - 1);
	assert_true(rep.signed_seq < rep.records - 1);
	lines_free(&l);
	lines_free(&orig);
}

/* Reopens a log whose tail was torn, with stderr in a file (returned, for
 * the warning), checks that the chain went on after the last whole record
 * and that the "audit.open" record says what was cut. */
static char *check_recovered(struct fx *fx, size_t whole_lines, off_t cut_at, off_t torn)
{
	struct kars_audit_opts opts = {.key_path = fx->key, .checkpoint_every = 4};
	struct kars_audit_report rep;
	struct kars_audit_stats st;
	struct kars_err err = {0};
	struct kars_audit *log;
	char want[160], path[160];
	struct lines l;
	int saved, fd, ret;
	size_t len;
	json_t *o;

	snprintf(path, sizeof(path), "%s/stderr", fx->dir);
	fflush(stderr);
	saved = dup(2);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(saved >= 0 && fd >= 0);
	dup2(fd, 2);
	close(fd);
	ret = kars_audit_open(&log, fx->log, &opts, &err);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	if (ret)
		fail_msg("open: %s", err.msg);

	kars_audit_stats(log, &st);
	assert_int_equal(st.truncated_bytes, torn);
	/* the chain goes on after them: the "audit.open" record (checked below),
	 * and a checkpoint if it was due */
	assert_true(st.next_seq == whole_lines + 1 || st.next_seq == whole_lines + 2);
	append_n(log, 2, 50);
	close_log(log);
	expect_valid(fx->log, fx->pk, &rep);
	lines_read(fx->log, &l);
	o = line_json(l.v[whole_lines]);
	assert_int_equal(jint(o, "seq"), whole_lines);
	assert_string_equal(jstr(o, "action"), "audit.open");
	assert_string_equal(jstr(o, "decision"), "recovered");
	snprintf(want, sizeof(want),
		 "resumed after seq %zu; truncated a torn record of %lld bytes at byte %lld",
		 whole_lines - 1, (long long)torn, (long long)cut_at);
	assert_string_equal(jstr(o, "reason"), want);
	json_decref(o);
	lines_free(&l);
	return slurp(path, &len);
}

/* A crash mid-write leaves an unterminated last line, or (on some file
 * systems) zeros or junk: verify calls it torn, reopen cuts it and says so. */
static void test_torn_tail_truncated(void **state)
{
	struct fx *fx = *state;
	size_t olen, last, prev;
	struct lines l;
	char *orig, *buf;

	make_log(fx, 4, 6);
	orig = slurp(fx->log, &olen);
	lines_read(fx->log, &l);
	last = olen - strlen(l.v[l.n - 1]) - 1; /* where the last line starts */
	prev = last - strlen(l.v[l.n - 2]) - 1;

	/* cut 1 byte in, in the middle, just before the newline; and a cut that
	 * takes the newline of the line before */
	for (int k = 0; k < 4; k++) {
		size_t cut = k == 0   ? last + 1
			     : k == 1 ? (last + olen) / 2
			     : k == 2 ? olen - 1
				      : last - 1;
		size_t whole = k == 3 ? l.n - 2 : l.n - 1;
		size_t start = k == 3 ? prev : last;
		struct kars_audit_report rep;
		struct kars_err err = {0};

		spit(fx->log, orig, cut);
		assert_int_equal(kars_audit_verify(fx->log, fx->pk, &rep, &err), -EBADMSG);
		assert_true(rep.torn);
		assert_int_equal(rep.bad_line, whole + 1);
		assert_int_equal(rep.bad_offset, start);
		assert_err_contains(&err, "torn record");
		buf = check_recovered(fx, whole, (off_t)start, (off_t)(cut - start));
		if (!strstr(buf, "truncating a torn record"))
			fail_msg("no warning on stderr: \"%s\"", buf);
		free(buf);
	}

	/* zeros after the last whole record (delayed allocation after a crash),
	 * and junk without a newline */
	for (int k = 0; k < 2; k++) {
		size_t extra = k ? 37 : 8192;

		buf = malloc(olen + extra);
		memcpy(buf, orig, olen);
		for (size_t i = 0; i < extra; i++)
			buf[olen + i] = k ? (char)(0x80 + i * 13) : 0;
		spit(fx->log, buf, olen + extra);
		free(buf);
		expect_bad(fx->log, fx->pk, l.n + 1, "torn record");
		free(check_recovered(fx, l.n, (off_t)olen, (off_t)extra));
	}

	/* A cut at a line boundary loses whole records: nothing is torn. */
	spit(fx->log, orig, last);
	{
		struct kars_audit_stats st;
		struct kars_audit *log = open_log(fx, 4);

		kars_audit_stats(log, &st);
		assert_int_equal(st.truncated_bytes, 0);
		/* l.n - 1 records, "audit.open" (the 4th entry since the last
		 * checkpoint), and so a checkpoint */
		assert_int_equal(st.next_seq, l.n + 1);
		close_log(log);
	}
	free(orig);
	lines_free(&l);
}

/* Damage before the end, in the part no signature covers yet, is not a
 * crash: open refuses and leaves the file as it is. */
static void test_damaged_log_refused(void **state)
{
	struct fx *fx = *state;
	struct kars_audit_opts opts = {.key_path = fx->key, .checkpoint_every = 100};
	struct kars_err err = {0};
	struct kars_audit *log = NULL;
	struct lines orig, l;
	size_t len, len2;
	char *before, *after;

	crash_after(fx, 100, 10); /* ckpt, open, 10 entries; no closing checkpoint */
	lines_read(fx->log, &orig);
	assert_int_equal(orig.n, 12);

	for (int k = 0; k < 3; k++) {
		size_t at = k == 0 ? 5 : 11;

		lines_copy(&l, &orig);
		if (k < 2) {
			json_t *o = line_json(l.v[at]);

			json_object_set_new(o, "decision", json_string("allow-all"));
			line_set(&l, at, o);
		} else {
			l.v[l.n++] = strdup("{\"garbage\": true}"); /* a whole junk line */
			at = 12;
		}
		lines_write(fx->log, &l);
		before = slurp(fx->log, &len);
		kars_err_clear(&err);
		assert_int_equal(kars_audit_open(&log, fx->log, &opts, &err), -EBADMSG);
		assert_null(log);
		{
			char want[64];

			snprintf(want, sizeof(want), "(seq %zu due)", at);
			assert_err_contains(&err, want);
		}
		assert_err_contains(&err, "nothing was truncated");
		after = slurp(fx->log, &len2);
		assert_int_equal(len, len2);
		assert_memory_equal(before, after, len);
		free(before);
		free(after);
		lines_free(&l);
	}

	/* The way on that docs/audit-chain.md gives: cut at the offset verify
	 * names, and the writer resumes there. */
	lines_copy(&l, &orig);
	{
		json_t *o = line_json(l.v[7]);
		struct kars_audit_report rep;

		json_object_set_new(o, "reason", json_string("rewritten"));
		line_set(&l, 7, o);
		lines_write(fx->log, &l);
		assert_int_equal(kars_audit_verify(fx->log, NULL, &rep, &err), -EBADMSG);
		assert_int_equal(rep.bad_line, 8);
		assert_int_equal(truncate(fx->log, (off_t)rep.bad_offset), 0);
		log = open_log(fx, 100);
		close_log(log);
		expect_valid(fx->log, fx->pk, &rep);
		assert_int_equal(rep.records, 7 + 2); /* seq 0-6, "audit.open", checkpoint */
	}
	lines_free(&l);

	/* An unsigned log (tests only) has no checkpoint: open checks it whole. */
	{
		char unsigned_log[160];
		struct kars_audit *u;

		snprintf(unsigned_log, sizeof(unsigned_log), "%s/unsigned.jsonl", fx->dir);
		u = open_opts(unsigned_log, NULL);
		append_n(u, 3, 0);
		close_log(u);
		lines_read(unsigned_log, &l);
		free(l.v[0]);
		l.v[0] = strdup(l.v[1]);
		lines_write(unsigned_log, &l);
		lines_free(&l);
		kars_err_clear(&err);
		assert_int_equal(kars_audit_open(&u, unsigned_log, NULL, &err), -EBADMSG);
		assert_err_contains(&err, "the record at byte 0 (seq 0 due): seq is 1");
	}

	/* Before the last checkpoint the signatures cover it: open checks only
	 * what follows (bounded work at start-up); verify finds it. */
	lines_free(&orig);
	unlink(fx->log);
	make_log(fx, 4, 8);
	lines_read(fx->log, &orig);
	lines_copy(&l, &orig);
	{
		json_t *o = line_json(l.v[3]);

		json_object_set_new(o, "reason", json_string("rewritten"));
		line_set(&l, 3, o);
	}
	lines_write(fx->log, &l);
	log = open_log(fx, 4);
	close_log(log);
	expect_bad(fx->log, fx->pk, 4, "hash does not match");
	lines_free(&l);
	lines_free(&orig);
}

static void test_signatures(void **state)
{
	struct fx *fx = *state;
	struct kars_audit_report rep;
	uint8_t other[32];
	struct lines orig, l;
	size_t ckpt, entry;
	char other_log[192], other_key[192];

	make_log(fx, 4, 10);
	lines_read(fx->log, &orig);
	ckpt = find_line(&orig, "checkpoint", 3);

	/* a bad signature with a consistent hash: caught by the signature */
	lines_copy(&l, &orig);
	{
		json_t *o = line_json(l.v[ckpt]);
		char *sig = strdup(jstr(o, "sig"));

		sig[10] = sig[10] == '0' ? '1' : '0';
		json_object_set_new(o, "sig", json_string(sig));
		free(sig);
		line_set(&l, ckpt, o);
	}
	rehash_from(&l, ckpt);
	lines_write(fx->log, &l);
	expect_bad(fx->log, fx->pk, ckpt + 1, "checkpoint signature is not valid");
	expect_bad(fx->log, NULL, ckpt + 1, "checkpoint signature is not valid");
	lines_free(&l);

	/* an edited entry with every hash after it recomputed: the hash chain
	 * alone cannot tell, the next checkpoint's signature does */
	entry = ckpt + 2;
	lines_copy(&l, &orig);
	{
		json_t *o = line_json(l.v[entry]);

		json_object_set_new(o, "decision", json_string("allow"));
		json_object_set_new(o, "tokensOut", json_integer(1));
		line_set(&l, entry, o);
	}
	rehash_from(&l, entry);
	lines_write(fx->log, &l);
	expect_bad(fx->log, fx->pk, find_line(&l, "checkpoint", entry) + 1,
		   "checkpoint signature is not valid");
	lines_free(&l);

	/* the right log, the wrong public key */
	lines_write(fx->log, &orig);
	memcpy(other, fx->pk, 32);
	other[0] ^= 1;
	expect_bad(fx->log, other, 1, "not by the public key given");
	expect_valid(fx->log, NULL, &rep); /* without a key: integrity only */
	assert_memory_equal(rep.key, fx->pk, 32);

	/* a whole chain forged with another key */
	snprintf(other_log, sizeof(other_log), "%s/forged.jsonl", fx->dir);
	snprintf(other_key, sizeof(other_key), "%s/forger.key", fx->dir);
	{
		struct kars_audit_opts opts = {.key_path = other_key};
		struct kars_audit *log = open_opts(other_log, &opts);

		append_n(log, 3, 0);
		close_log(log);
	}
	expect_bad(other_log, fx->pk, 1, "not by the public key given");
	expect_valid(other_log, NULL, &rep);

	/* an unsigned chain checked against a key: nothing is signed */
	unlink(other_log);
	{
		struct kars_audit *log = open_opts(other_log, NULL);

		append_n(log, 3, 0);
		close_log(log);
	}
	expect_bad(other_log, fx->pk, 0, "no checkpoint");
	expect_valid(other_log, NULL, &rep);
	assert_false(rep.signed_any);
	lines_free(&orig);
}

/* Appends wait in memory until the interval passes, the size threshold is
 * reached, or a flush is asked for; then one write reaches the disk. */
static void test_group_commit(void **state)
{
	struct fx *fx = *state;
	struct kars_audit_opts opts = {
	    .key_path = fx->key, .flush_interval_ns = 1000000000ull, .principal = "t"};
	struct kars_audit_stats st;
	struct kars_audit_record r;
	struct kars_err err = {0};
	struct kars_audit *log;
	struct timespec ts;
	uint64_t now, deadline;
	char reason[128];
	off_t size0, size1;

	log = open_opts(fx->log, &opts);
	assert_int_equal(kars_audit_deadline(log), UINT64_MAX);
	size0 = file_size(fx->log);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	append_n(log, 5, 0);
	deadline = kars_audit_deadline(log);
	assert_true(deadline >= now + 1000000000ull && deadline < now + 2000000000ull);
	kars_audit_stats(log, &st);
	assert_int_equal(st.pending_records, 5);
	assert_int_equal(file_size(fx->log), size0);
	assert_int_equal(kars_audit_tick(log, deadline - 1, &err), 0);
	assert_int_equal(file_size(fx->log), size0); /* not yet */
	assert_int_equal(kars_audit_tick(log, deadline, &err), 0);
	size1 = file_size(fx->log);
	assert_true(size1 > size0);
	kars_audit_stats(log, &st);
	assert_int_equal(st.pending_records, 0);
	assert_int_equal(st.durable_seq, st.next_seq);
	assert_int_equal(kars_audit_deadline(log), UINT64_MAX);

	fill(&r, 7, reason, sizeof(reason));
	assert_int_equal(kars_audit_append_sync(log, &r, &err), 0);
	assert_true(file_size(fx->log) > size1);
	size1 = file_size(fx->log);
	assert_int_equal(kars_audit_append(log, &r, &err), 0);
	assert_int_equal(kars_audit_flush(log, &err), 0);
	assert_true(file_size(fx->log) > size1);
	close_log(log);

	/* the size threshold: every append past flush_bytes writes */
	opts.flush_bytes = 1;
	log = open_opts(fx->log, &opts);
	size1 = file_size(fx->log);
	append_n(log, 1, 0);
	assert_true(file_size(fx->log) > size1);
	kars_audit_stats(log, &st);
	assert_int_equal(st.pending_records, 0);
	close_log(log);
}

static void test_write_failure_kept(void **state)
{
	struct fx *fx = *state;
	struct kars_audit_opts opts = {
	    .key_path = fx->key, .flush_interval_ns = 3600000000000ull, .max_pending_bytes = 32768};
	struct kars_audit_report rep;
	struct kars_audit_stats st;
	struct kars_audit_record r;
	struct kars_err err = {0};
	struct kars_audit *log;
	struct rlimit old, lim;
	uint64_t seq;
	char reason[128];
	off_t size0;
	int ret, i;

	log = open_opts(fx->log, &opts);
	assert_true(kars_audit_pubkey(log, fx->pk));
	size0 = file_size(fx->log);
	append_n(log, 10, 0);
	/* a file size limit 300 bytes on: the write stops part-way (EFBIG) */
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)size0 + 300;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	ret = kars_audit_flush(log, &err);
	/* the records wait; a full buffer refuses more, and says so */
	for (i = 0; i < 1000; i++) {
		struct kars_err e2 = {0};

		kars_audit_stats(log, &st);
		seq = st.next_seq;
		fill(&r, i, reason, sizeof(reason));
		if (kars_audit_append(log, &r, &e2)) {
			kars_audit_stats(log, &st);
			assert_int_equal(st.next_seq, seq); /* refused: not in the chain */
			assert_int_equal(e2.code, ENOSPC);
			assert_err_contains(&e2, "record refused");
			break;
		}
	}
	setrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, SIG_DFL);
	assert_int_equal(ret, -EFBIG);
	assert_err_contains(&err, "write: File too large; 10 records (from seq 2) wait");
	assert_true(i < 1000);
	assert_int_equal(file_size(fx->log), size0); /* the partial write was undone */
	expect_valid(fx->log, fx->pk, &rep);

	/* the disk recovers: nothing was lost */
	kars_audit_stats(log, &st);
	assert_true(st.pending_records > 10);
	assert_int_equal(kars_audit_flush(log, &err), 0);
	close_log(log);
	expect_valid(fx->log, fx->pk, &rep);
	assert_int_equal(rep.records, st.next_seq + 1);
}

/* stderr to /dev/null and back, around failures a test provokes on purpose. */
static int quiet_begin(void)
{
	int saved, fd;

	fflush(stderr);
	saved = dup(2);
	fd = open("/dev/null", O_WRONLY);
	assert_true(saved >= 0 && fd >= 0);
	dup2(fd, 2);
	close(fd);
	return saved;
}

static void quiet_end(int saved)
{
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
}

/* After a failed fdatasync() the handle refuses everything: the kernel may
 * have dropped the pages, so it cannot know what is on disk. Reopening reads
 * what is. A failed truncate-back after a failed write does the same. */
static void test_sync_failure_fails_log(void **state)
{
	struct fx *fx = *state;
	struct kars_audit_opts opts = {.key_path = fx->key, .flush_interval_ns = 3600000000000ull};
	struct kars_audit_report rep;
	struct kars_audit_record r;
	struct kars_err err = {0};
	struct kars_audit *log;
	struct rlimit old, lim;
	char reason[128];
	int ret, saved;

	for (int k = 0; k < 2; k++) {
		log = open_opts(fx->log, &opts);
		assert_true(kars_audit_pubkey(log, fx->pk));
		append_n(log, 5, 0);
		kars_err_clear(&err);
		saved = quiet_begin(); /* the log's own error line */
		if (k == 0) {
			fail_fdatasync = EIO;
			ret = kars_audit_flush(log, &err);
			fail_fdatasync = 0;
			assert_int_equal(ret, -EIO);
			assert_err_contains(&err, "failed: fdatasync: Input/output error");
		} else {
			signal(SIGXFSZ, SIG_IGN);
			assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
			lim = old;
			lim.rlim_cur = (rlim_t)file_size(fx->log) + 100;
			assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
			fail_ftruncate = EIO;
			ret = kars_audit_flush(log, &err);
			fail_ftruncate = 0;
			setrlimit(RLIMIT_FSIZE, &old);
			signal(SIGXFSZ, SIG_DFL);
			assert_int_equal(ret, -EIO);
			assert_err_contains(&err, "then truncating back to byte");
		}
		quiet_end(saved);
		assert_err_contains(&err, "may not be on disk: close and reopen the log");
		/* for good: appends, ticks, flushes and close all say so */
		fill(&r, 1, reason, sizeof(reason));
		kars_err_clear(&err);
		assert_int_equal(kars_audit_append(log, &r, &err), -EIO);
		assert_err_contains(&err, "close and reopen");
		assert_int_equal(kars_audit_tick(log, UINT64_MAX, &err), -EIO);
		assert_int_equal(kars_audit_flush(log, &err), -EIO);
		assert_int_equal(kars_audit_deadline(log), UINT64_MAX);
		assert_int_equal(kars_audit_close(log, &err), -EIO);
		/* what reached the file is whole records or a torn tail: reopen copes */
		saved = quiet_begin();
		log = open_opts(fx->log, &opts);
		quiet_end(saved);
		close_log(log);
		expect_valid(fx->log, fx->pk, &rep);
	}
}

/* A real full file system (tmpfs of 64 KiB), in a mount namespace of a child
 * so that nothing outlives the test. Needs CAP_SYS_ADMIN; skipped without. */
static int tmpfs_child(const char *dir)
{
	struct kars_audit_opts opts = {.flush_interval_ns = 3600000000000ull};
	char log_path[256], filler[256], reason[128];
	struct kars_audit_report rep;
	struct kars_audit_record r;
	struct kars_err err = {0};
	struct kars_audit *log;
	static char block[4096];
	int fd, n = 0;

	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    mount("tmpfs", dir, "tmpfs", 0, "size=64k"))
		return 77;
	snprintf(log_path, sizeof(log_path), "%s/audit.jsonl", dir);
	snprintf(filler, sizeof(filler), "%s/filler", dir);
	if (kars_audit_open(&log, log_path, &opts, &err))
		return 10;
	fd = open(filler, O_WRONLY | O_CREAT, 0600);
	while (write(fd, block, sizeof(block)) == sizeof(block))
		;
	close(fd);
	for (n = 0; n < 40; n++) {
		fill(&r, n, reason, sizeof(reason));
		if (kars_audit_append(log, &r, &err))
			return 11;
	}
	if (kars_audit_flush(log, &err) != -ENOSPC || !strstr(err.msg, "No space left"))
		return 12;
	if (kars_audit_verify(log_path, NULL, &rep, &err) || rep.records != 1)
		return 13; /* back to the open record only */
	unlink(filler);
	kars_err_clear(&err);
	if (kars_audit_flush(log, &err))
		return 14;
	if (kars_audit_close(log, &err))
		return 15;
	if (kars_audit_verify(log_path, NULL, &rep, &err) || rep.records != 41)
		return 16;
	return 0;
}

static void test_full_disk(void **state)
{
	struct fx *fx = *state;
	char dir[160];
	int status;
	pid_t pid;

	snprintf(dir, sizeof(dir), "%s/small", fx->dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(tmpfs_child(dir));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77)
		skip();
	if (WEXITSTATUS(status))
		fail_msg("full tmpfs: step %d failed", WEXITSTATUS(status));
}

static void test_append_refuses_bad_fields(void **state)
{
	struct fx *fx = *state;
	struct kars_audit_report rep;
	struct kars_audit_stats st;
	struct kars_audit_record r;
	struct kars_audit *log;
	static char longer[KARS_AUDIT_FIELD_MAX + 2];
	static const struct {
		int field;
		const char *value;
		const char *needle;
	} bad[] = {
	    {0, NULL, "action: Required value"},
	    {1, "", "decision: Required value"},
	    {2, "ok \xc3\x28", "reason: not valid UTF-8 at byte 3"},
	    {2, "\xed\xa0\x80", "reason: not valid UTF-8 at byte 0"}, /* a surrogate */
	    {3, "\xc0\xaf", "sandbox: not valid UTF-8 at byte 0"},    /* overlong */
	    {4, longer, "model: longer than 4096 bytes"},
	};
	char reason[128];

	memset(longer, 'm', sizeof(longer) - 1);
	log = open_log(fx, 4);
	kars_audit_stats(log, &st);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct kars_audit_stats now;
		struct kars_err err = {0};

		fill(&r, 1, reason, sizeof(reason));
		*(bad[i].field == 0   ? &r.action
		  : bad[i].field == 1 ? &r.decision
		  : bad[i].field == 2 ? &r.reason
		  : bad[i].field == 3 ? &r.sandbox
				      : &r.model) = bad[i].value;
		assert_int_equal(kars_audit_append(log, &r, &err), -EINVAL);
		assert_err_contains(&err, bad[i].needle);
		kars_audit_stats(log, &now);
		assert_int_equal(now.next_seq, st.next_seq);
	}
	{
		struct kars_err err = {0};

		fill(&r, 1, reason, sizeof(reason));
		r.tokens_in = UINT64_MAX;
		assert_int_equal(kars_audit_append(log, &r, &err), -EINVAL);
		assert_err_contains(&err, "tokensIn: larger than 2^63-1");
	}
	append_n(log, 2, 0);
	close_log(log);
	expect_valid(fx->log, fx->pk, &rep);
	assert_int_equal(rep.entries, 3);
}

static void test_one_writer(void **state)
{
	struct fx *fx = *state;
	struct kars_audit_opts opts = {.key_path = fx->key};
	struct kars_audit *log = open_log(fx, 4), *second = NULL;
	struct kars_err err = {0};

	assert_int_equal(kars_audit_open(&second, fx->log, &opts, &err), -EBUSY);
	assert_null(second);
	assert_err_contains(&err, "another process writes it");
	close_log(log);
}

static void test_keys(void **state)
{
	struct fx *fx = *state;
	struct kars_audit_opts opts = {.key_path = fx->key};
	struct kars_audit *log = NULL;
	struct kars_err err = {0};
	uint8_t pk[32];
	char other[160], unsigned_log[160];

	make_log(fx, 4, 1);
	assert_int_equal(kars_audit_pubkey_read(fx->pub, pk, &err), 0);
	assert_memory_equal(pk, fx->pk, 32);

	assert_int_equal(chmod(fx->key, 0640), 0);
	assert_int_equal(kars_audit_open(&log, fx->log, &opts, &err), -EPERM);
	assert_err_contains(&err, "mode 0640 lets group or others read the signing key");
	assert_int_equal(chmod(fx->key, 0600), 0);

	spit(fx->pub, "00000000000000000000000000000000000000000000000000000000000000ff\n", 65);
	kars_err_clear(&err);
	assert_int_equal(kars_audit_open(&log, fx->log, &opts, &err), -EINVAL);
	assert_err_contains(&err, "does not hold the public key");
	unlink(fx->pub);
	log = open_log(fx, 4); /* written again */
	close_log(log);
	assert_int_equal(kars_audit_pubkey_read(fx->pub, pk, &err), 0);
	assert_memory_equal(pk, fx->pk, 32);

	/* another key for this log */
	snprintf(other, sizeof(other), "%s/other.key", fx->dir);
	opts.key_path = other;
	kars_err_clear(&err);
	assert_int_equal(kars_audit_open(&log, fx->log, &opts, &err), -EBADMSG);
	assert_err_contains(&err, "not by the public key given");
	/* no key for a signed log */
	kars_err_clear(&err);
	assert_int_equal(kars_audit_open(&log, fx->log, NULL, &err), -EBADMSG);
	assert_err_contains(&err, "no signing key is configured");
	/* a key for an unsigned log */
	snprintf(unsigned_log, sizeof(unsigned_log), "%s/unsigned.jsonl", fx->dir);
	close_log(open_opts(unsigned_log, NULL));
	kars_err_clear(&err);
	assert_int_equal(kars_audit_open(&log, unsigned_log, &opts, &err), -EBADMSG);
	assert_err_contains(&err, "no signed checkpoint");

	/* a seed of the wrong size */
	spit(other, "short", 5);
	chmod(other, 0600);
	kars_err_clear(&err);
	assert_int_equal(kars_audit_open(&log, unsigned_log, &opts, &err), -EINVAL);
	assert_err_contains(&err, "expected a 32-byte Ed25519 seed, found 5 bytes");

	/* public key files: hex with or without a newline, or raw bytes */
	spit(other, (const char *)fx->pk, 32);
	assert_int_equal(kars_audit_pubkey_read(other, pk, &err), 0);
	assert_memory_equal(pk, fx->pk, 32);
	spit(other, "0123", 4);
	kars_err_clear(&err);
	assert_int_equal(kars_audit_pubkey_read(other, pk, &err), -EINVAL);
	assert_err_contains(&err, "expected an Ed25519 public key");
}

/* Where "<key>.pub" cannot be written (a read-only Secret mount), the writer
 * warns with the key and goes on. An immutable directory stands in for the
 * read-only mount (root writes anywhere else); skipped where chattr is not
 * supported. */
static void test_pub_unwritable_warns(void **state)
{
	struct fx *fx = *state;
	char dir[128], key[160], pub[168], path[160], hex[65], *out;
	struct kars_audit_opts opts = {0};
	struct kars_err err = {0};
	struct kars_audit *log;
	int dfd, flags, saved, fd, ret;
	size_t len;

	snprintf(dir, sizeof(dir), "%s/keys", fx->dir);
	snprintf(key, sizeof(key), "%s/audit.key", dir);
	snprintf(pub, sizeof(pub), "%s.pub", key);
	assert_int_equal(mkdir(dir, 0700), 0);
	opts.key_path = key;
	log = open_opts(fx->log, &opts);
	assert_true(kars_audit_pubkey(log, fx->pk));
	close_log(log);
	assert_int_equal(unlink(pub), 0);
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	assert_true(dfd >= 0);
	flags = FS_IMMUTABLE_FL;
	if (ioctl(dfd, FS_IOC_SETFLAGS, &flags)) {
		close(dfd);
		skip();
	}
	snprintf(path, sizeof(path), "%s/stderr", fx->dir);
	fflush(stderr);
	saved = dup(2);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(fd, 2);
	close(fd);
	ret = kars_audit_open(&log, fx->log, &opts, &err);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	flags = 0;
	ioctl(dfd, FS_IOC_SETFLAGS, &flags);
	close(dfd);
	if (ret)
		fail_msg("open: %s", err.msg);
	close_log(log);
	assert_int_equal(access(pub, F_OK), -1);
	out = slurp(path, &len);
	kars_audit_hex(fx->pk, 32, hex);
	if (!strstr(out, "cannot write") || !strstr(out, hex))
		fail_msg("no warning with the key: \"%s\"", out);
	free(out);
}

static void test_verify_edge_cases(void **state)
{
	struct fx *fx = *state;
	struct kars_audit_report rep;
	struct kars_err err = {0};
	char *big;

	spit(fx->log, "", 0);
	expect_valid(fx->log, NULL, &rep);
	assert_int_equal(rep.records, 0);
	expect_bad(fx->log, fx->pk, 0, "no checkpoint");
	unlink(fx->log);
	assert_int_equal(kars_audit_verify(fx->log, NULL, &rep, &err), -ENOENT);
	assert_err_contains(&err, "No such file");
	/* one line longer than any record */
	big = malloc(KARS_AUDIT_LINE_MAX + 10);
	memset(big, 'x', KARS_AUDIT_LINE_MAX + 9);
	big[KARS_AUDIT_LINE_MAX + 9] = '\n';
	spit(fx->log, big, KARS_AUDIT_LINE_MAX + 10);
	free(big);
	expect_bad(fx->log, NULL, 1, "line longer than the longest record");
}

/* The time field: exact nanoseconds in a form every JSON tool keeps (an
 * integer of 19 digits is rounded by jq 1.6 and JavaScript). */
static void test_time_field(void **state)
{
	static const struct {
		const char *text;
		uint64_t ns;
	} good[] = {
	    {"1970-01-01T00:00:00.000000000Z", 0},
	    {"2024-02-29T12:34:56.000000001Z", 1709210096000000001ull},
	    {"2000-03-01T00:00:00.999999999Z", 951868800999999999ull},
	    {"2262-04-11T23:47:16.854775807Z", 9223372036854775807ull}, /* 2^63-1 */
	};
	static const char *const bad[] = {
	    "2262-04-11T23:47:16.854775808Z", /* 2^63 */
	    "2023-02-29T00:00:00.000000000Z", "2100-02-29T00:00:00.000000000Z",
	    "1969-12-31T23:59:59.999999999Z", "2024-13-01T00:00:00.000000000Z",
	    "2024-04-31T00:00:00.000000000Z", "2024-01-01T24:00:00.000000000Z",
	    "2024-01-01T00:00:60.000000000Z", "2024-01-01t00:00:00.000000000Z",
	    "2024-01-01T00:00:00.00000000Z",  "2024-01-01T00:00:00.0000000000",
	    "2024-01-01T00:00:00.000000000+", "2024-01-01 00:00:00.000000000Z",
	    "+024-01-01T00:00:00.000000000Z",
	};
	char out[AUDIT_TIME_LEN + 1];
	uint64_t ns;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(audit_time_parse(good[i].text, strlen(good[i].text), &ns), 0);
		assert_int_equal(ns, good[i].ns);
		assert_int_equal(audit_time_format(good[i].ns, out), AUDIT_TIME_LEN);
		assert_string_equal(out, good[i].text);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (audit_time_parse(bad[i], strlen(bad[i]), &ns) == 0)
			fail_msg("\"%s\" was accepted", bad[i]);
	}
	/* every day from 1970 to 2262 round-trips, against libc */
	for (uint64_t day = 0; day < 106750; day += 7) {
		uint64_t t = day * 86400ull * 1000000000ull + 123456789;
		time_t secs = (time_t)(day * 86400);
		struct tm tm;
		char want[40];

		gmtime_r(&secs, &tm);
		strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%S.123456789Z", &tm);
		audit_time_format(t, out);
		assert_string_equal(out, want);
		assert_int_equal(audit_time_parse(out, strlen(out), &ns), 0);
		assert_int_equal(ns, t);
	}
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_time_field),
    cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
    cmocka_unit_test_setup_teardown(test_format_is_documented, setup, teardown),
    cmocka_unit_test_setup_teardown(test_reformatted_still_verifies, setup, teardown),
    cmocka_unit_test_setup_teardown(test_reopen_continues, setup, teardown),
    cmocka_unit_test_setup_teardown(test_tamper_each_field, setup, teardown),
    cmocka_unit_test_setup_teardown(test_malformed_lines_named, setup, teardown),
    cmocka_unit_test_setup_teardown(test_delete_swap_duplicate, setup, teardown),
    cmocka_unit_test_setup_teardown(test_torn_tail_truncated, setup, teardown),
    cmocka_unit_test_setup_teardown(test_damaged_log_refused, setup, teardown),
    cmocka_unit_test_setup_teardown(test_signatures, setup, teardown),
    cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
    cmocka_unit_test_setup_teardown(test_write_failure_kept, setup, teardown),
    cmocka_unit_test_setup_teardown(test_sync_failure_fails_log, setup, teardown),
    cmocka_unit_test_setup_teardown(test_full_disk, setup, teardown),
    cmocka_unit_test_setup_teardown(test_append_refuses_bad_fields, setup, teardown),
    cmocka_unit_test_setup_teardown(test_one_writer, setup, teardown),
    cmocka_unit_test_setup_teardown(test_keys, setup, teardown),
    cmocka_unit_test_setup_teardown(test_pub_unwritable_warns, setup, teardown),
    cmocka_unit_test_setup_teardown(test_verify_edge_cases, setup, teardown),
};

KARS_UNIT_MAIN(tests)
