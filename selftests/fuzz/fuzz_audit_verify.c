/* fuzz_audit_verify.c - libFuzzer target for everything that reads an audit log.
 *
 * An audit log is read back by `kars audit verify` (perhaps a copy someone
 * handed over) and by the writer itself when it reopens the log after a
 * crash, and either may find anything in it. Neither may crash, leak or read
 * past the bytes, and they must agree:
 *   - verify's verdict is 0 or -EBADMSG, with a message and a position on
 *     failure, and with every line counted on success; reading the file
 *     (in chunks) and reading a buffer give the same verdict, word for word;
 *   - a log that verifies under the writer's key (perhaps up to a torn last
 *     line) must be reopened, and after one more record and a close it must
 *     verify whole;
 *   - a log the writer refuses must be left byte for byte as it was.
 * The seed corpus (selftests/fuzz/corpus/audit_verify/) is signed with the
 * fixed seed below, so mutations of it reach the signature checks.
 * selftests/fuzz/run.sh builds and runs it.
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "CHECK failed: %s (line %d)\n", #cond, __LINE__);          \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* The seed of the corpus's signing key: 32 bytes, kept in a 0600 file. */
static const char seed[33] = "kars-fuzz-audit-verify-seed-0001";
static char key_path[64];
static uint8_t pk[KARS_AUDIT_PUBKEY_LEN];

static void remove_key(void)
{
	char pub[80];

	snprintf(pub, sizeof(pub), "%s.pub", key_path);
	unlink(key_path);
	unlink(pub);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	uint8_t sk[64];
	int fd;

	kars_log_set_level(KARS_LOG_ERROR);
	CHECK(sodium_init() >= 0);
	crypto_sign_seed_keypair(pk, sk, (const uint8_t *)seed);
	snprintf(key_path, sizeof(key_path), "/tmp/kars-fuzz-audit-%d.key", (int)getpid());
	fd = open(key_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0 && write(fd, seed, 32) == 32);
	close(fd);
	atexit(remove_key);
	return 0;
}

static char *contents(int fd, size_t *len)
{
	struct stat st;
	char *buf;

	CHECK(fstat(fd, &st) == 0);
	buf = malloc((size_t)st.st_size + 1);
	CHECK(buf);
	CHECK(pread(fd, buf, (size_t)st.st_size, 0) == st.st_size);
	*len = (size_t)st.st_size;
	return buf;
}

static void check_report(int ret, const struct kars_audit_report *rep, const struct kars_err *err,
			 const uint8_t *data, size_t size, bool keyed)
{
	size_t lines = 0;

	CHECK(ret == 0 || ret == -EBADMSG);
	if (ret) {
		CHECK(err->code == EBADMSG && err->msg[0]);
		/* only "nothing is signed" is about no single record */
		CHECK(rep->bad_line >= 1 || (keyed && !rep->signed_any));
		CHECK(rep->bad_offset <= size);
		CHECK(rep->records < rep->bad_line || rep->bad_line == 0);
		return;
	}
	CHECK(!err->code);
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	CHECK(size == 0 || data[size - 1] == '\n');
	CHECK(rep->records == lines && rep->entries + rep->checkpoints == lines);
	CHECK(!keyed || (rep->signed_any && !memcmp(rep->key, pk, sizeof(pk))));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kars_audit_opts opts = {.key_path = key_path, .checkpoint_every = 4};
	struct kars_audit_record rec = {.action = "fuzz", .decision = "allow"};
	struct kars_audit_report rep, keyed, frep;
	struct kars_err err = {0}, kerr = {0}, oerr = {0}, ferr = {0};
	struct kars_audit *log = NULL;
	bool continuable;
	char path[64], *after;
	size_t len;
	int ret, fd;

	ret = kars_audit_verify_buf((const char *)data, size, NULL, &rep, &err);
	check_report(ret, &rep, &err, data, size, false);
	ret = kars_audit_verify_buf((const char *)data, size, pk, &keyed, &kerr);
	check_report(ret, &keyed, &kerr, data, size, true);
	/* Whole and signed by our key, but for a torn last line. */
	continuable = (ret == 0 || keyed.torn) && (keyed.signed_any || keyed.records == 0);

	fd = memfd_create("audit", 0);
	CHECK(fd >= 0);
	CHECK(size == 0 || write(fd, data, size) == (ssize_t)size);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);

	/* the file reader (chunked pread) says exactly what the buffer one said */
	ret = kars_audit_verify(path, NULL, &frep, &ferr);
	CHECK(ret == (err.code ? -EBADMSG : 0));
	CHECK(strcmp(ferr.msg, err.msg) == 0);
	CHECK(frep.records == rep.records && frep.bad_line == rep.bad_line &&
	      frep.bad_offset == rep.bad_offset && frep.torn == rep.torn);

	ret = kars_audit_open(&log, path, &opts, &oerr);
	if (ret) {
		CHECK(!continuable);
		CHECK(oerr.code && oerr.msg[0]);
		after = contents(fd, &len);
		CHECK(len == size && !memcmp(after, data, size)); /* left as it was */
		free(after);
		close(fd);
		return 0;
	}
	CHECK(kars_audit_append(log, &rec, &oerr) == 0);
	CHECK(kars_audit_close(log, &oerr) == 0);
	if (continuable) {
		after = contents(fd, &len);
		kars_err_clear(&kerr);
		ret = kars_audit_verify_buf(after, len, pk, &keyed, &kerr);
		if (ret)
			fprintf(stderr, "reopened log does not verify: %s\n", kerr.msg);
		CHECK(ret == 0);
		CHECK(keyed.signed_seq + 1 == keyed.records); /* closed: signed to the end */
		free(after);
	}
	close(fd);
	return 0;
}
