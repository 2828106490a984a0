/* fuzz_gov_trust.c - libFuzzer target for the trust manager's state file
 * (userspace/lib/gov_trust.h).
 *
 * The router writes the file itself, but a crash mid-write, a disk error or a
 * hand edit must never crash it or load half a table: any byte string either
 * opens as a whole table whose scores are in range, or is refused with
 * -EBADMSG naming the file. An accepted table takes a change and is saved
 * and reopened to the same scores. selftests/fuzz/run.sh builds and runs it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gov_trust.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

static int check_score(const struct kars_trust_score *s, void *arg)
{
	CHECK(s->score <= KARS_TRUST_MAX && s->tier && s->known);
	CHECK(strlen(s->agent) >= 1 && strlen(s->agent) <= KARS_TRUST_AGENT_MAX);
	++*(size_t *)arg;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	struct kars_trust_opts o = {.path = path, .agents_max = 16};
	struct kars_trust *t = NULL;
	struct kars_trust_score s, s2;
	struct kars_err err = {0};
	size_t n = 0;
	int fd, ret;

	if (!path[0])
		snprintf(path, sizeof(path), "/tmp/fuzz_gov_trust.%d", (int)getpid());
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK(write(fd, data, size) == (ssize_t)size);
	close(fd);
	ret = kars_trust_open(&t, &o, &err);
	if (ret) {
		CHECK(ret == -EBADMSG && strstr(err.msg, path));
		unlink(path);
		return 0;
	}
	kars_trust_each(t, 0, check_score, &n);
	CHECK(n == kars_trust_count(t) && n <= 16);
	ret = kars_trust_change(t, "fuzz-peer", KARS_TRUST_PENALTY, 0, "fuzz", NULL, 0, &s, &err);
	CHECK(ret == 0 || ret == -ENOSPC);
	kars_trust_close(t);
	if (ret == 0) {
		CHECK(kars_trust_open(&t, &o, &err) == 0);
		CHECK(kars_trust_get(t, "fuzz-peer", 0, &s2, &err) == 0);
		CHECK(s2.known && s2.score <= s.score + 1 && s2.score + 1 >= s.score);
		kars_trust_close(t);
	}
	unlink(path);
	return 0;
}
