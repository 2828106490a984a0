/* test_gov_trust.c - the trust manager: steps, clamping, decay, tiers,
 * bounded table, the state file across a reopen, torn and corrupt files
 * refused, a failed save changing nothing, and every change in the audit
 * chain. Times are passed in (now_ms), so decay is exact.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "gov_trust.h"
#include "unit.h"

#define T0   1700000000000ull /* a wall-clock instant, ms */
#define HOUR 3600000ull

static char dir[64];
static char path[128];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/kars-trust-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/trust.json", dir);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct kars_trust *open_trust(const struct kars_trust_opts *o)
{
	struct kars_trust *t = NULL;
	struct kars_err err = {0};

	if (kars_trust_open(&t, o, &err))
		fail_msg("trust open: %s", err.msg);
	return t;
}

static uint32_t change(struct kars_trust *t, const char *agent, enum kars_trust_change what,
		       uint32_t value, uint64_t now)
{
	struct kars_trust_score s;
	struct kars_err err = {0};

	if (kars_trust_change(t, agent, what, value, "test", NULL, now, &s, &err))
		fail_msg("trust change: %s", err.msg);
	return s.score;
}

static uint32_t score(struct kars_trust *t, const char *agent, uint64_t now)
{
	struct kars_trust_score s;
	struct kars_err err = {0};

	if (kars_trust_get(t, agent, now, &s, &err))
		fail_msg("trust get: %s", err.msg);
	return s.score;
}

static void test_steps_clamping_tiers(void **state)
{
	struct kars_trust *t = open_trust(&(struct kars_trust_opts){.decay_per_hour = 1});
	struct kars_trust_score s;
	struct kars_err err = {0};
	static const struct {
		uint32_t score;
		const char *tier;
	} tiers[] = {{1000, "sovereign"}, {800, "sovereign"}, {799, "verified"}, {600, "verified"},
		     {599, "known"},	  {400, "known"},     {399, "observed"}, {200, "observed"},
		     {199, "anonymous"},  {0, "anonymous"}};

	assert_int_equal(kars_trust_get(t, "peer-a", T0, &s, &err), 0);
	assert_int_equal(s.score, KARS_TRUST_START);
	assert_false(s.known);
	assert_string_equal(s.tier, "known");
	assert_int_equal(kars_trust_count(t), 0); /* a read adds nothing */
	assert_int_equal(change(t, "peer-a", KARS_TRUST_REWARD, 0, T0), 510);
	assert_int_equal(change(t, "peer-a", KARS_TRUST_PENALTY, 0, T0), 460);
	assert_int_equal(change(t, "peer-a", KARS_TRUST_SET, 995, T0), 995);
	assert_int_equal(change(t, "peer-a", KARS_TRUST_REWARD, 0, T0), 1000);
	assert_int_equal(change(t, "peer-a", KARS_TRUST_REWARD, 0, T0), 1000);
	assert_int_equal(change(t, "peer-a", KARS_TRUST_SET, 30, T0), 30);
	assert_int_equal(change(t, "peer-a", KARS_TRUST_PENALTY, 0, T0), 0);
	assert_int_equal(change(t, "peer-a", KARS_TRUST_PENALTY, 0, T0), 0);
	assert_int_equal(
	    kars_trust_change(t, "peer-a", KARS_TRUST_SET, 1001, "t", NULL, T0, &s, &err), -EINVAL);
	assert_err_contains(&err, "score: 1001");
	kars_err_clear(&err);
	assert_int_equal(kars_trust_get(t, "bad id", T0, &s, &err), -EINVAL);
	assert_err_contains(&err, "byte 3");
	kars_err_clear(&err);
	assert_int_equal(kars_trust_get(t, "", T0, &s, &err), -EINVAL);
	for (size_t i = 0; i < sizeof(tiers) / sizeof(*tiers); i++)
		assert_string_equal(kars_trust_tier(tiers[i].score), tiers[i].tier);
	kars_trust_close(t);
}

static void test_decay_toward_start(void **state)
{
	struct kars_trust *t = open_trust(&(struct kars_trust_opts){0});

	assert_int_equal(change(t, "up", KARS_TRUST_SET, 600, T0), 600);
	assert_int_equal(change(t, "down", KARS_TRUST_SET, 400, T0), 400);
	assert_int_equal(score(t, "up", T0 + HOUR), 595);      /* 500 + 100 x 0.95 */
	assert_int_equal(score(t, "down", T0 + HOUR), 405);    /* 500 - 100 x 0.95 */
	assert_int_equal(score(t, "up", T0 + 10 * HOUR), 560); /* 500 + 100 x 0.95^10 = 559.9 */
	assert_int_equal(score(t, "up", T0 + 200 * HOUR), 500);
	assert_int_equal(score(t, "down", T0 + 200 * HOUR), 500);
	/* a step applies to the decayed score, and restarts the clock */
	assert_int_equal(change(t, "up", KARS_TRUST_REWARD, 0, T0 + HOUR), 605);
	assert_int_equal(score(t, "up", T0 + 2 * HOUR), 600); /* 500 + 105 x 0.95 = 599.75 */
	/* a clock that went back decays nothing */
	assert_int_equal(score(t, "down", T0 - HOUR), 400);
	kars_trust_close(t);
}

static void test_bounded_table(void **state)
{
	struct kars_trust *t = open_trust(&(struct kars_trust_opts){.agents_max = 3});
	struct kars_trust_score s;
	struct kars_err err = {0};

	change(t, "a", KARS_TRUST_PENALTY, 0, T0);
	change(t, "b", KARS_TRUST_PENALTY, 0, T0);
	change(t, "c", KARS_TRUST_REWARD, 0, T0);
	assert_int_equal(kars_trust_change(t, "d", KARS_TRUST_REWARD, 0, "t", NULL, T0, &s, &err),
			 -ENOSPC);
	assert_err_contains(&err, "agents_max (3)");
	assert_int_equal(score(t, "a", T0), 450); /* no penalty was forgotten */
	/* c's +10 decays below half a point after 60 h: c is worth no more
	 * than a new agent, and makes room */
	assert_int_equal(change(t, "d", KARS_TRUST_REWARD, 0, T0 + 60 * HOUR), 510);
	assert_int_equal(kars_trust_count(t), 3);
	assert_int_equal(score(t, "a", T0 + 60 * HOUR), 498);
	kars_trust_close(t);
}

static void test_persisted_across_reopen(void **state)
{
	struct kars_trust_opts o = {.path = path};
	struct kars_trust *t = open_trust(&o);
	char tmp[160];
	struct stat st;

	change(t, "peer-a", KARS_TRUST_REWARD, 0, T0);
	change(t, "peer-b", KARS_TRUST_SET, 900, T0);
	change(t, "peer-b", KARS_TRUST_PENALTY, 0, T0);
	kars_trust_close(t);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	assert_int_equal(access(tmp, F_OK), -1);

	t = open_trust(&o);
	assert_int_equal(kars_trust_count(t), 2);
	assert_int_equal(score(t, "peer-a", T0), 510);
	assert_int_equal(score(t, "peer-b", T0), 850);
	assert_int_equal(score(t, "peer-b", T0 + 2 * HOUR), 816); /* 500 + 350 x 0.95^2 */
	kars_trust_close(t);
}

static void write_file(const char *p, const char *text, size_t len)
{
	if (len == 0)
		len = strlen(text);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
}

static char *read_file(const char *p, size_t *len)
{
	static char buf[8192];
	int fd = open(p, O_RDONLY);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n > 0);
	buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}

static void expect_refused(const char *needle)
{
	struct kars_trust_opts o = {.path = path};
	struct kars_trust *t = NULL;
	struct kars_err err = {0};

	assert_int_equal(kars_trust_open(&t, &o, &err), -EBADMSG);
	assert_null(t);
	assert_err_contains(&err, "torn or corrupt");
	assert_err_contains(&err, needle);
}

static void test_torn_and_corrupt_refused(void **state)
{
	struct kars_trust_opts o = {.path = path};
	struct kars_trust *t = open_trust(&o);
	char good[8192], *p, *edit;
	size_t len, len2;

	change(t, "peer-a", KARS_TRUST_REWARD, 0, T0);
	change(t, "peer-b", KARS_TRUST_PENALTY, 0, T0);
	kars_trust_close(t);
	p = read_file(path, &len);
	memcpy(good, p, len + 1);

	/* torn: the first half of the file */
	write_file(path, good, len / 2);
	expect_refused("invalid JSON");
	p = read_file(path, &len2);
	assert_int_equal(len2, len / 2); /* a refused file is left alone */

	/* corrupt: one digit of a score changed, still valid JSON */
	edit = strdup(good);
	p = strstr(edit, "510000");
	assert_non_null(p);
	p[0] = '9';
	write_file(path, edit, len);
	expect_refused("sha256 does not match");
	free(edit);

	/* a foreign file */
	write_file(path, "{\"format\":\"other/1\",\"agents\":[],\"sha256\":\"x\"}", 0);
	expect_refused("format is \"other/1\"");
	write_file(path, "[1,2]", 0);
	expect_refused("not a JSON object");
	write_file(path, "{\"format\":\"kars-trust/1\",\"agents\":[],\"sha256\":\"x\",\"extra\":1}",
		   0);
	expect_refused("extra");

	/* the good bytes open again */
	write_file(path, good, len);
	t = open_trust(&o);
	assert_int_equal(score(t, "peer-b", T0), 450);
	kars_trust_close(t);
}

static void test_failed_save_changes_nothing(void **state)
{
	struct kars_trust_opts o = {.path = "/nonexistent-kars-dir/trust.json"};
	struct kars_trust *t = open_trust(&o);
	struct kars_trust_score s;
	struct kars_err err = {0};

	assert_int_equal(kars_trust_change(t, "a", KARS_TRUST_PENALTY, 0, "t", NULL, T0, &s, &err),
			 -ENOENT);
	assert_err_contains(&err, "trust state");
	assert_int_equal(kars_trust_count(t), 0);
	assert_int_equal(score(t, "a", T0), 500);
	kars_trust_close(t);
}

static void test_changes_audited(void **state)
{
	char log_path[160];
	struct kars_audit *log = NULL;
	struct kars_audit_report rep;
	struct kars_err err = {0};
	struct kars_trust *t;
	struct kars_trust_score s;
	size_t len;
	char *text;

	snprintf(log_path, sizeof(log_path), "%s/audit.jsonl", dir);
	assert_int_equal(kars_audit_open(&log, log_path, &(struct kars_audit_opts){0}, &err), 0);
	t = open_trust(&(struct kars_trust_opts){.path = path, .audit = log, .sandbox = "ns/sb"});
	assert_int_equal(kars_trust_change(t, "peer-a", KARS_TRUST_REWARD, 0, "controller",
					   "handoff completed", T0, &s, &err),
			 0);
	assert_int_equal(
	    kars_trust_change(t, "peer-a", KARS_TRUST_SET, 850, "operator", NULL, T0, &s, &err), 0);
	kars_trust_close(t);
	assert_int_equal(kars_audit_close(log, &err), 0);
	assert_int_equal(kars_audit_verify(log_path, NULL, &rep, &err), 0);
	text = read_file(log_path, &len);
	assert_non_null(strstr(text, "\"trust.update\""));
	assert_non_null(strstr(text, "peer-a: 500 -> 510 (reward, new agent: handoff completed)"));
	assert_non_null(strstr(text, "peer-a: 510 -> 850 (set)"));
	assert_non_null(strstr(text, "\"sovereign\""));
	assert_non_null(strstr(text, "\"operator\""));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_steps_clamping_tiers),
    cmocka_unit_test(test_decay_toward_start),
    cmocka_unit_test(test_bounded_table),
    cmocka_unit_test_setup_teardown(test_persisted_across_reopen, setup, teardown),
    cmocka_unit_test_setup_teardown(test_torn_and_corrupt_refused, setup, teardown),
    cmocka_unit_test(test_failed_save_changes_nothing),
    cmocka_unit_test_setup_teardown(test_changes_audited, setup, teardown),
};

KARS_UNIT_MAIN(tests)
