/* test_store.c - the local object store (userspace/lib/store.h): Kubernetes
 * API semantics, crash safety and watch resume.
 *
 * Semantics: create/update/update_status/delete as the API server does them
 * (generation on spec only, status a subresource, conflicts on a stale
 * resourceVersion, finalizers and deletionTimestamp, no-op writes that write
 * nothing). Crash safety with real processes: a writer is SIGKILLed at
 * random points of a stream of updates, and the store must then hold a
 * whole object with at least every acknowledged update; the two crash
 * windows (between log and file, inside a log append) are also reproduced
 * exactly. Watch: resume from any resourceVersion, and live events through
 * inotify from another process.
 */
#include "unit.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

static char dir[64];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/kars-store-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

static struct kars_store *open_store(void)
{
	struct kars_store *s = NULL;
	struct kars_err err = {};

	if (kars_store_open_dir(dir, &s, &err))
		fail_msg("open %s: %s", dir, err.msg);
	return s;
}

static json_t *policy(const char *name, long long daily)
{
	return json_pack("{s:s,s:s,s:{s:s,s:s},s:{s:{s:s},s:{s:{s:s}},s:{s:I,s:I}}}", "apiVersion",
			 "kars.azure.com/v1alpha1", "kind", "InferencePolicy", "metadata", "name",
			 name, "namespace", "kars-bot", "spec", "appliesTo", "sandboxName", "bot",
			 "modelPreference", "primary", "deployment", "gpt-4.1", "tokenBudget",
			 "dailyTokens", (json_int_t)daily, "monthlyTokens", (json_int_t)1000000000);
}

static const struct kars_kind *IP(void)
{
	return kars_kind_find("InferencePolicy");
}

/* A store call that must succeed; err is the caller's struct kars_err. */
#define MUST(call)                                                                                 \
	do {                                                                                       \
		if ((call))                                                                        \
			fail_msg("%s failed: %s", #call, err.msg);                                 \
	} while (0)

static long long daily_of(const json_t *o)
{
	return json_integer_value(json_object_get(
	    json_object_get(json_object_get(o, "spec"), "tokenBudget"), "dailyTokens"));
}

static long long gen_of(const json_t *o)
{
	return json_integer_value(json_object_get(json_object_get(o, "metadata"), "generation"));
}

static void set_daily(json_t *o, long long v)
{
	json_object_set_new(json_object_get(json_object_get(o, "spec"), "tokenBudget"),
			    "dailyTokens", json_integer(v));
}

static void test_create_get_defaults_and_metadata(void **state)
{
	struct kars_store *s = open_store();
	struct kars_err err = {};
	json_t *in = policy("p", 10), *out = NULL, *got = NULL;
	const json_t *md;

	json_object_set_new(in, "status", json_pack("{s:s}", "phase", "Ready"));
	MUST(kars_store_create(s, in, &out, &err));
	md = json_object_get(out, "metadata");
	assert_int_equal(gen_of(out), 1);
	assert_int_equal(kars_object_rv(out), 1);
	assert_int_equal(strlen(json_string_value(json_object_get(md, "uid"))), 36);
	assert_non_null(json_object_get(md, "creationTimestamp"));
	assert_null(json_object_get(out, "status")); /* a subresource: ignored by create */
	assert_string_equal(
	    json_string_value(json_object_get(
		json_object_get(json_object_get(out, "spec"), "appliesTo"), "action")),
	    "*"); /* schema default */
	MUST(kars_store_get(s, IP(), "kars-bot", "p", &got, &err));
	assert_true(json_equal(got, out));
	json_decref(got);
	assert_int_equal(kars_store_create(s, in, &got, &err), -EEXIST);
	assert_err_contains(&err, "inferencepolicies.kars.azure.com \"p\" already exists");
	kars_err_clear(&err);
	assert_int_equal(kars_store_get(s, IP(), "kars-bot", "nope", &got, &err), -ENOENT);
	assert_err_contains(&err, "inferencepolicies.kars.azure.com \"nope\" not found");
	kars_err_clear(&err);
	assert_int_equal(kars_store_get(s, IP(), "kars-bot", "../../etc", &got, &err), -ENOENT);
	kars_err_clear(&err);
	set_daily(in, 0);
	json_object_set_new(json_object_get(in, "metadata"), "name", json_string("q"));
	assert_int_equal(kars_store_create(s, in, &got, &err), -EINVAL);
	assert_err_contains(&err, "spec.tokenBudget.dailyTokens: Invalid value: 0");
	json_decref(in);
	json_decref(out);
	kars_store_close(s);
}

static void test_update_generation_conflict_status(void **state)
{
	struct kars_store *s = open_store();
	struct kars_err err = {};
	json_t *in = policy("p", 10), *v1 = NULL, *v2 = NULL, *v3 = NULL, *v4 = NULL, *same = NULL;
	json_t *stale;

	MUST(kars_store_create(s, in, &v1, &err));
	/* a label change: new resourceVersion, same generation */
	v2 = json_deep_copy(v1);
	json_object_set_new(json_object_get(v2, "metadata"), "labels",
			    json_pack("{s:s}", "a", "b"));
	stale = json_deep_copy(v1);
	{
		json_t *tmp = NULL;

		MUST(kars_store_update(s, v2, &tmp, &err));
		json_decref(v2);
		v2 = tmp;
	}
	assert_int_equal(gen_of(v2), 1);
	assert_true(kars_object_rv(v2) > kars_object_rv(v1));
	/* a spec change: generation 2 */
	set_daily(v2, 20);
	MUST(kars_store_update(s, v2, &v3, &err));
	assert_int_equal(gen_of(v3), 2);
	/* the stale copy conflicts, and changes nothing */
	set_daily(stale, 99);
	assert_int_equal(kars_store_update(s, stale, &v4, &err), -ESTALE);
	assert_err_contains(&err, "the object has been modified");
	kars_err_clear(&err);
	/* no resourceVersion: refused */
	json_object_del(json_object_get(stale, "metadata"), "resourceVersion");
	assert_int_equal(kars_store_update(s, stale, &v4, &err), -EINVAL);
	assert_err_contains(&err, "metadata.resourceVersion");
	kars_err_clear(&err);
	/* update ignores status; update_status changes only status */
	json_object_set_new(v3, "status", json_pack("{s:s}", "phase", "Compiled"));
	set_daily(v3, 30);
	MUST(kars_store_update_status(s, v3, &v4, &err));
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(v4, "status"), "phase")), "Compiled");
	assert_int_equal(daily_of(v4), 20);
	assert_int_equal(gen_of(v4), 2);
	/* writing the same status again writes nothing */
	MUST(kars_store_update_status(s, v4, &same, &err));
	assert_int_equal(kars_object_rv(same), kars_object_rv(v4));
	json_decref(same);
	json_object_set_new(v4, "status", json_pack("{s:s}", "phase", "Bogus"));
	assert_int_equal(kars_store_update_status(s, v4, &same, &err), -EINVAL);
	assert_err_contains(&err, "status.phase: Unsupported value: \"Bogus\"");
	json_decref(in);
	json_decref(v1);
	json_decref(v2);
	json_decref(v3);
	json_decref(v4);
	json_decref(stale);
	kars_store_close(s);
}

static void test_finalizers_and_deletion(void **state)
{
	struct kars_store *s = open_store();
	struct kars_err err = {};
	json_t *in = policy("p", 10), *v = NULL, *d = NULL, *u = NULL, *items = NULL;
	uint64_t rv;

	json_object_set_new(json_object_get(in, "metadata"), "finalizers",
			    json_pack("[s]", "kars.azure.com/inferencepolicy-cleanup"));
	MUST(kars_store_create(s, in, &v, &err));
	MUST(kars_store_delete(s, IP(), "kars-bot", "p", &d, &err));
	assert_non_null(json_object_get(json_object_get(d, "metadata"), "deletionTimestamp"));
	json_decref(v);
	MUST(kars_store_get(s, IP(), "kars-bot", "p", &v, &err)); /* still there */
	/* no new finalizer once deleting */
	json_array_append_new(json_object_get(json_object_get(v, "metadata"), "finalizers"),
			      json_string("other"));
	assert_int_equal(kars_store_update(s, v, &u, &err), -EINVAL);
	assert_err_contains(&err, "no new finalizers can be added");
	/* removing the last finalizer deletes it */
	json_object_set_new(json_object_get(v, "metadata"), "finalizers", json_array());
	MUST(kars_store_update(s, v, &u, &err));
	json_decref(v);
	assert_int_equal(kars_store_get(s, IP(), "kars-bot", "p", &v, &err), -ENOENT);
	MUST(kars_store_list(s, IP(), NULL, &items, &rv, &err));
	assert_int_equal(json_array_size(items), 0);
	assert_int_equal(rv, kars_object_rv(u));
	json_decref(items);
	json_decref(in);
	json_decref(d);
	json_decref(u);
	kars_store_close(s);
}

static void test_list_sorted_and_by_namespace(void **state)
{
	struct kars_store *s = open_store();
	struct kars_err err = {};
	const char *names[] = {"c", "a", "b"};
	json_t *items = NULL, *o;
	uint64_t rv;

	for (int i = 0; i < 3; i++) {
		json_t *in = policy(names[i], 10), *out = NULL;

		if (i == 2)
			json_object_set_new(json_object_get(in, "metadata"), "namespace",
					    json_string("other"));
		MUST(kars_store_create(s, in, &out, &err));
		json_decref(out);
		json_decref(in);
	}
	MUST(kars_store_list(s, IP(), NULL, &items, &rv, &err));
	assert_int_equal(json_array_size(items), 3);
	o = json_array_get(items, 0);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(o, "metadata"), "name")), "a");
	assert_int_equal(rv, 3);
	json_decref(items);
	MUST(kars_store_list(s, IP(), "other", &items, &rv, &err));
	assert_int_equal(json_array_size(items), 1);
	json_decref(items);
	kars_store_close(s);
}

static void expect_event(struct kars_watch *w, enum kars_event_type type, uint64_t rv,
			 const char *name)
{
	struct kars_event ev = {};
	struct kars_err err = {};
	int ret = kars_watch_next(w, 10000, &ev, &err);

	if (ret)
		fail_msg("watch: %d %s (want %s rv %llu)", ret, err.msg, name,
			 (unsigned long long)rv);
	assert_int_equal(ev.type, type);
	assert_int_equal(ev.resource_version, rv);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(ev.object, "metadata"), "name")),
	    name);
	json_decref(ev.object);
}

static void test_watch_resume_and_live(void **state)
{
	struct kars_store *s = open_store();
	struct kars_err err = {};
	struct kars_watch *w = NULL;
	struct kars_event ev = {};
	json_t *a = policy("a", 10), *b = policy("b", 10), *out = NULL, *tmp = NULL;
	pid_t pid;
	int status;

	MUST(kars_store_create(s, a, &out, &err)); /* rv 1 */
	set_daily(out, 11);
	MUST(kars_store_update(s, out, &tmp, &err)); /* rv 2 */
	json_decref(tmp);
	json_decref(out);
	MUST(kars_store_create(s, b, &out, &err)); /* rv 3 */
	json_decref(out);
	MUST(kars_store_delete(s, IP(), "kars-bot", "a", &out, &err)); /* rv 4 */
	json_decref(out);

	/* from 0: the whole history */
	assert_int_equal(kars_store_watch(s, IP(), NULL, 0, &w, &err), 0);
	expect_event(w, KARS_ADDED, 1, "a");
	expect_event(w, KARS_MODIFIED, 2, "a");
	expect_event(w, KARS_ADDED, 3, "b");
	expect_event(w, KARS_DELETED, 4, "a");
	assert_int_equal(kars_watch_next(w, 50, &ev, &err), -ETIMEDOUT);
	kars_watch_close(w);
	/* resume from 2: only what came after */
	assert_int_equal(kars_store_watch(s, IP(), NULL, 2, &w, &err), 0);
	expect_event(w, KARS_ADDED, 3, "b");
	expect_event(w, KARS_DELETED, 4, "a");
	/* live: another process writes, inotify wakes the watcher */
	pid = fork();
	if (pid == 0) {
		struct kars_store *cs = NULL;
		json_t *c = policy("c", 10), *co = NULL;
		int ret =
		    kars_store_open_dir(dir, &cs, &err) || kars_store_create(cs, c, &co, &err);

		_exit(ret ? 1 : 0);
	}
	expect_event(w, KARS_ADDED, 5, "c");
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(status, 0);
	kars_watch_close(w);
	/* another kind or namespace sees nothing */
	assert_int_equal(kars_store_watch(s, kars_kind_find("ToolPolicy"), NULL, 0, &w, &err), 0);
	assert_int_equal(kars_watch_next(w, 50, &ev, &err), -ETIMEDOUT);
	kars_watch_close(w);
	assert_int_equal(kars_store_watch(s, IP(), "other", 0, &w, &err), 0);
	assert_int_equal(kars_watch_next(w, 50, &ev, &err), -ETIMEDOUT);
	kars_watch_close(w);
	json_decref(a);
	json_decref(b);
	kars_store_close(s);
}

static off_t log_size(void)
{
	char path[128];
	struct stat st;

	snprintf(path, sizeof(path), "%s/events.log", dir);
	return stat(path, &st) ? -1 : st.st_size;
}

/* Compaction: the log shrinks to one line, the objects and the counter
 * stay, a resume from before it is Gone, and every reader of the old log
 * (a watcher that is behind, a watcher that is caught up, another store
 * handle, another process) carries on into the new one without losing an
 * event. */
static int create_named(struct kars_store *s, const char *name, json_t **out, struct kars_err *err)
{
	json_t *in = policy(name, 10);
	int ret = kars_store_create(s, in, out, err);

	json_decref(in);
	return ret;
}

static void test_compaction(void **state)
{
	struct kars_store *s = open_store(), *other = open_store();
	struct kars_err err = {};
	struct kars_watch *behind = NULL, *live = NULL, *w = NULL;
	struct kars_event ev = {};
	json_t *out = NULL, *items = NULL;
	uint64_t rv = 0;
	pid_t pid;
	int status;

	for (int i = 0; i < 3; i++) {
		char name[8];

		snprintf(name, sizeof(name), "p%d", i);
		MUST(create_named(s, name, &out, &err)); /* rv 1..3 */
		json_decref(out);
	}
	assert_int_equal(kars_store_watch(s, IP(), NULL, 0, &behind, &err), 0);
	assert_int_equal(kars_store_watch(s, IP(), NULL, 0, &live, &err), 0);
	expect_event(live, KARS_ADDED, 1, "p0");
	expect_event(live, KARS_ADDED, 2, "p1");
	expect_event(live, KARS_ADDED, 3, "p2");
	MUST(kars_store_delete(s, IP(), "kars-bot", "p0", &out, &err)); /* rv 4 */
	json_decref(out);
	assert_true(log_size() > 1000);

	MUST(kars_store_dir_compact(s, &err));
	assert_true(log_size() < 64);
	MUST(kars_store_list(s, IP(), NULL, &items, &rv, &err));
	assert_int_equal(json_array_size(items), 2);
	assert_int_equal(rv, 4);
	json_decref(items);
	/* another handle, opened before: its next write follows the new log */
	MUST(create_named(other, "p3", &out, &err));
	assert_int_equal(kars_object_rv(out), 5);
	json_decref(out);
	/* and another process */
	pid = fork();
	if (pid == 0) {
		struct kars_store *cs = NULL;
		json_t *co = NULL;

		_exit(kars_store_open_dir(dir, &cs, &err) || create_named(cs, "p4", &co, &err) ? 1
											       : 0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(status, 0);

	/* the watcher that was behind reads the old log to its end, then on */
	expect_event(behind, KARS_ADDED, 1, "p0");
	expect_event(behind, KARS_ADDED, 2, "p1");
	expect_event(behind, KARS_ADDED, 3, "p2");
	expect_event(behind, KARS_DELETED, 4, "p0");
	expect_event(behind, KARS_ADDED, 5, "p3");
	expect_event(behind, KARS_ADDED, 6, "p4");
	/* the one that was caught up too */
	expect_event(live, KARS_DELETED, 4, "p0");
	expect_event(live, KARS_ADDED, 5, "p3");
	expect_event(live, KARS_ADDED, 6, "p4");
	assert_int_equal(kars_watch_next(live, 50, &ev, &err), -ETIMEDOUT);
	kars_watch_close(behind);
	kars_watch_close(live);

	/* resume from the compaction point: fine; from before it: Gone */
	assert_int_equal(kars_store_watch(s, IP(), NULL, 4, &w, &err), 0);
	expect_event(w, KARS_ADDED, 5, "p3");
	kars_watch_close(w);
	assert_int_equal(kars_store_watch(s, IP(), NULL, 3, &w, &err), 0);
	assert_int_equal(kars_watch_next(w, 1000, &ev, &err), -ERANGE);
	assert_err_contains(&err, "older than the compacted log (4)");
	kars_watch_close(w);
	kars_err_clear(&err);
	/* from 0: whatever the log still holds */
	assert_int_equal(kars_store_watch(s, IP(), NULL, 0, &w, &err), 0);
	expect_event(w, KARS_ADDED, 5, "p3");
	kars_watch_close(w);
	kars_store_close(other);
	kars_store_close(s);

	/* reopened: the counter goes on from the compacted log */
	s = open_store();
	MUST(create_named(s, "p5", &out, &err));
	assert_int_equal(kars_object_rv(out), 7);
	json_decref(out);
	kars_store_close(s);
}

/* Writes compact on their own past $KARS_STORE_COMPACT_BYTES; a crash that
 * left a half-written new log behind changes nothing. */
static void test_compaction_automatic_and_crash(void **state)
{
	struct kars_store *s;
	struct kars_err err = {};
	json_t *out = NULL, *cur = NULL, *tmp = NULL;
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/events.log.new", dir);
	setenv("KARS_STORE_COMPACT_BYTES", "4096", 1);
	s = open_store();
	unsetenv("KARS_STORE_COMPACT_BYTES");
	MUST(create_named(s, "p", &cur, &err));
	for (int i = 2; i < 40; i++) {
		set_daily(cur, i);
		MUST(kars_store_update(s, cur, &tmp, &err));
		json_decref(cur);
		cur = tmp;
		assert_true(log_size() < 4096 + 1024);
	}
	assert_int_equal(kars_object_rv(cur), 39);
	json_decref(cur);
	kars_store_close(s);

	f = fopen(path, "w");
	fputs("{\"rv\":1,\"ty", f);
	fclose(f);
	s = open_store();
	MUST(kars_store_get(s, IP(), "kars-bot", "p", &out, &err));
	assert_int_equal(daily_of(out), 39);
	json_decref(out);
	MUST(create_named(s, "q", &out, &err));
	assert_int_equal(kars_object_rv(out), 40);
	json_decref(out);
	kars_store_close(s);
}

static json_t *read_json(const char *path)
{
	json_t *v = json_load_file(path, 0, NULL);

	if (!v)
		fail_msg("%s: not a whole JSON object", path);
	return v;
}

/* The writer died after the log append, before the object file. */
static void test_redo_after_crash_between_log_and_file(void **state)
{
	struct kars_store *s = open_store();
	struct kars_err err = {};
	json_t *in = policy("p", 10), *v = NULL, *ev, *got = NULL;
	char path[256], *line;
	FILE *log;

	MUST(kars_store_create(s, in, &v, &err));
	kars_store_close(s);
	set_daily(v, 77);
	json_object_set_new(json_object_get(v, "metadata"), "resourceVersion", json_string("2"));
	ev = json_pack("{s:s,s:i,s:O}", "type", "MODIFIED", "rv", 2, "object", v);
	line = json_dumps(ev, JSON_COMPACT);
	snprintf(path, sizeof(path), "%s/events.log", dir);
	log = fopen(path, "a");
	fprintf(log, "%s\n", line);
	fclose(log);
	s = open_store();
	MUST(kars_store_get(s, IP(), "kars-bot", "p", &got, &err));
	assert_int_equal(daily_of(got), 77);
	assert_int_equal(kars_object_rv(got), 2);
	free(line);
	json_decref(ev);
	json_decref(got);
	json_decref(v);
	json_decref(in);
	kars_store_close(s);
}

/* The writer died inside the log append: the torn line is cut, the next
 * write gets the next resourceVersion and the log stays whole. */
static void test_torn_log_line_is_cut(void **state)
{
	struct kars_store *s = open_store();
	struct kars_err err = {};
	json_t *in = policy("p", 10), *v = NULL, *u = NULL;
	char path[256];
	FILE *log;

	MUST(kars_store_create(s, in, &v, &err));
	snprintf(path, sizeof(path), "%s/events.log", dir);
	log = fopen(path, "a");
	fprintf(log, "{\"type\":\"MODIFIED\",\"rv\":2,\"object\":{\"kind\":\"Infer");
	fclose(log);
	set_daily(v, 12);
	MUST(kars_store_update(s, v, &u, &err));
	assert_int_equal(kars_object_rv(u), 2);
	json_decref(u);
	json_decref(v);
	kars_store_close(s);
	/* every line of the log is whole JSON again */
	{
		char buf[8192];
		FILE *f = fopen(path, "r");
		int lines = 0;

		while (fgets(buf, sizeof(buf), f)) {
			json_t *e = json_loads(buf, 0, NULL);

			assert_non_null(e);
			json_decref(e);
			lines++;
		}
		fclose(f);
		assert_int_equal(lines, 2);
	}
	json_decref(in);
}

/* A writer SIGKILLed at random points: no torn object, no lost update. */
static void test_kill_during_writes(void **state)
{
	struct kars_store *s = open_store();
	struct kars_err err = {};
	json_t *in = policy("p", 0 + 1), *v = NULL;
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();

	MUST(kars_store_create(s, in, &v, &err));
	json_decref(v);
	kars_store_close(s);
	for (int round = 0; round < 25; round++) {
		int fds[2];
		long long acked, val;
		pid_t pid;
		json_t *got = NULL;
		char path[256];

		s = open_store();
		MUST(kars_store_get(s, IP(), "kars-bot", "p", &got, &err));
		acked = daily_of(got); /* what the previous rounds left */
		json_decref(got);
		got = NULL;
		kars_store_close(s);
		assert_int_equal(pipe(fds), 0);
		pid = fork();
		if (pid == 0) {
			struct kars_store *cs = NULL;

			close(fds[0]);
			if (kars_store_open_dir(dir, &cs, &err))
				_exit(1);
			for (;;) {
				json_t *cur = NULL, *next = NULL;

				if (kars_store_get(cs, IP(), "kars-bot", "p", &cur, &err))
					_exit(2);
				val = daily_of(cur) + 1;
				set_daily(cur, val);
				if (kars_store_update(cs, cur, &next, &err))
					_exit(3);
				/* acknowledged: the caller was told it is done */
				if (write(fds[1], &val, sizeof(val)) != sizeof(val))
					_exit(4);
				json_decref(cur);
				json_decref(next);
			}
		}
		close(fds[1]);
		usleep((useconds_t)(rand_r(&seed) % 40000));
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		while (read(fds[0], &val, sizeof(val)) == sizeof(val))
			acked = val;
		close(fds[0]);

		s = open_store();
		MUST(kars_store_get(s, IP(), "kars-bot", "p", &got, &err));
		if (daily_of(got) < acked)
			fail_msg("round %d: acknowledged %lld, store has %lld", round, acked,
				 daily_of(got));
		assert_true(daily_of(got) <= acked + 1);
		snprintf(path, sizeof(path), "%s/inferencepolicies/kars-bot/p.json", dir);
		json_decref(read_json(path));
		json_decref(got);
		kars_store_close(s);
	}
	json_decref(in);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_create_get_defaults_and_metadata, setup, teardown),
    cmocka_unit_test_setup_teardown(test_update_generation_conflict_status, setup, teardown),
    cmocka_unit_test_setup_teardown(test_finalizers_and_deletion, setup, teardown),
    cmocka_unit_test_setup_teardown(test_list_sorted_and_by_namespace, setup, teardown),
    cmocka_unit_test_setup_teardown(test_watch_resume_and_live, setup, teardown),
    cmocka_unit_test_setup_teardown(test_redo_after_crash_between_log_and_file, setup, teardown),
    cmocka_unit_test_setup_teardown(test_torn_log_line_is_cut, setup, teardown),
    cmocka_unit_test_setup_teardown(test_kill_during_writes, setup, teardown),
    cmocka_unit_test_setup_teardown(test_compaction, setup, teardown),
    cmocka_unit_test_setup_teardown(test_compaction_automatic_and_crash, setup, teardown),
};

KARS_UNIT_MAIN(tests)
