/* gov_trust.c - the trust manager: scores, decay, tiers, the state file.
 *
 * The table is a small array searched linearly: it is bounded (agents_max),
 * and it is read on the control path (a trust query, a handoff), not per
 * inference. A score is kept as it was at its last change (milli-points, so
 * decay does not round away) with that time; reads decay it to now.
 *
 * State file (JSON, one line):
 *   {"format":"kars-trust/1","agents":[{"id":..,"milli":..,"updated_ms":..},..],
 *    "sha256":"<hex of SHA-256 over the compact dump of agents>"}
 * jansson dumps the same array to the same bytes (integers, sorted keys,
 * compact), so the digest is checked by dumping what was parsed.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "audit_priv.h"
#include "gov_trust.h"
#include "json.h"

#define HOUR_MS	 3600000.0
#define FILE_MAX (64u << 20)

struct tentry {
	char id[KARS_TRUST_AGENT_MAX + 1];
	int64_t milli; /* score x 1000 at updated_ms */
	uint64_t updated_ms;
};

struct kars_trust {
	pthread_mutex_t lock;
	struct kars_trust_opts o;
	char *path;
	char *sandbox;
	struct tentry *e;
	size_t n;
};

const char *kars_trust_tier(uint32_t s)
{
	return s >= 800	  ? "sovereign"
	       : s >= 600 ? "verified"
	       : s >= 400 ? "known"
	       : s >= 200 ? "observed"
			  : "anonymous";
}

const char *kars_trust_change_name(enum kars_trust_change c)
{
	return c == KARS_TRUST_REWARD ? "reward" : c == KARS_TRUST_PENALTY ? "penalty" : "set";
}

static uint64_t wall_ms(uint64_t now)
{
	struct timespec ts;

	if (now)
		return now;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int check_id(const char *id, struct kars_err *err)
{
	size_t len = id ? strlen(id) : 0;

	if (len == 0 || len > KARS_TRUST_AGENT_MAX)
		return kars_err_set(err, EINVAL, "agent: an id of 1..%d bytes is required",
				    KARS_TRUST_AGENT_MAX);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)id[i];

		if (c < 0x21 || c == 0x7f)
			return kars_err_set(
			    err, EINVAL, "agent: byte %zu of the id is a space or control byte", i);
	}
	return 0;
}

/* The score in milli-points at now: the distance from the start decays. */
static double decayed(const struct kars_trust *t, const struct tentry *e, uint64_t now)
{
	double start = KARS_TRUST_START * 1000.0, hours;

	if (now <= e->updated_ms || t->o.decay_per_hour >= 1.0)
		return (double)e->milli;
	hours = (double)(now - e->updated_ms) / HOUR_MS;
	return start + ((double)e->milli - start) * pow(t->o.decay_per_hour, hours);
}

static uint32_t rounded(double milli)
{
	double s = floor(milli / 1000.0 + 0.5);

	return s < 0 ? 0 : s > KARS_TRUST_MAX ? KARS_TRUST_MAX : (uint32_t)s;
}

static void fill(const struct kars_trust *t, const struct tentry *e, const char *id, uint64_t now,
		 struct kars_trust_score *out)
{
	if (!out)
		return;
	memset(out, 0, sizeof(*out));
	snprintf(out->agent, sizeof(out->agent), "%s", e ? e->id : id);
	out->score = e ? rounded(decayed(t, e, now)) : KARS_TRUST_START;
	out->tier = kars_trust_tier(out->score);
	out->known = e != NULL;
	out->updated_ms = e ? e->updated_ms : 0;
}

static struct tentry *find(struct kars_trust *t, const char *id)
{
	for (size_t i = 0; i < t->n; i++) {
		if (strcmp(t->e[i].id, id) == 0)
			return &t->e[i];
	}
	return NULL;
}

static json_t *agents_json(const struct kars_trust *t)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < t->n; i++) {
		if (json_array_append_new(a, json_pack("{s:s,s:I,s:I}", "id", t->e[i].id, "milli",
						       (json_int_t)t->e[i].milli, "updated_ms",
						       (json_int_t)t->e[i].updated_ms))) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static int digest_hex(const json_t *agents, char hex[2 * SHA256_DIGEST_LENGTH + 1])
{
	char *s = json_dumps(agents, JSON_COMPACT | JSON_SORT_KEYS);
	uint8_t md[SHA256_DIGEST_LENGTH];

	if (!s)
		return -ENOMEM;
	SHA256((const unsigned char *)s, strlen(s), md);
	free(s);
	kars_audit_hex(md, sizeof(md), hex);
	return 0;
}

static int save(struct kars_trust *t, struct kars_err *err)
{
	char hex[2 * SHA256_DIGEST_LENGTH + 1], tmp[4096];
	json_t *agents = NULL, *doc = NULL;
	char *text = NULL;
	int fd = -1, ret;

	if (!t->path)
		return 0;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", t->path) >= sizeof(tmp))
		return kars_err_set(err, ENAMETOOLONG, "trust state %s: path too long", t->path);
	agents = agents_json(t);
	ret = agents ? digest_hex(agents, hex) : -ENOMEM;
	if (!ret) {
		doc = json_pack("{s:s,s:O,s:s}", "format", KARS_TRUST_FORMAT, "agents", agents,
				"sha256", hex);
		text = doc ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		ret = text ? 0 : -ENOMEM;
	}
	if (ret) {
		ret = kars_err_set(err, ENOMEM, "trust state: out of memory");
		goto cleanup;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = kars_err_set(err, errno, "trust state %s: %s", tmp, strerror(errno));
		goto cleanup;
	}
	ret = audit_write_full(fd, text, strlen(text));
	if (!ret)
		ret = audit_write_full(fd, "\n", 1);
	if (!ret && fsync(fd))
		ret = -errno;
	if (ret) {
		ret = kars_err_set(err, -ret, "trust state %s: write: %s", tmp, strerror(-ret));
		goto cleanup;
	}
	close(fd);
	fd = -1;
	if (rename(tmp, t->path)) {
		ret = kars_err_set(err, errno, "trust state: rename to %s: %s", t->path,
				   strerror(errno));
		goto cleanup;
	}
	ret = audit_fsync_dir(t->path, err);
cleanup:
	if (fd >= 0)
		close(fd);
	if (ret)
		unlink(tmp);
	free(text);
	json_decref(doc);
	json_decref(agents);
	return ret;
}

static int bad(struct kars_err *err, const char *path, const char *what)
{
	return kars_err_set(err, EBADMSG,
			    "trust state %s: %s; the file is torn or corrupt (it is not "
			    "replaced: restore it or remove it to start every agent at %d)",
			    path, what, KARS_TRUST_START);
}

static int load(struct kars_trust *t, struct kars_err *err)
{
	static const char *const top_keys[] = {"format", "agents", "sha256", NULL};
	static const char *const agent_keys[] = {"id", "milli", "updated_ms", NULL};
	char hex[2 * SHA256_DIGEST_LENGTH + 1], msg[600], path[64];
	const char *format = NULL, *sum = NULL;
	const json_t *agents;
	struct kars_err e = {0};
	json_t *root = NULL;
	char *buf = NULL;
	struct stat st;
	size_t i;
	FILE *f;
	int ret = 0;

	f = fopen(t->path, "re");
	if (!f)
		return errno == ENOENT ? 0
				       : kars_err_set(err, errno, "trust state %s: %s", t->path,
						      strerror(errno));
	if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > FILE_MAX) {
		fclose(f);
		return kars_err_set(err, EBADMSG,
				    "trust state %s: not a regular file of at most "
				    "%u bytes",
				    t->path, FILE_MAX);
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf || fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
		fclose(f);
		free(buf);
		return kars_err_set(err, EIO, "trust state %s: cannot read it", t->path);
	}
	fclose(f);
	root = kars_json_parse(buf, (size_t)st.st_size, &e);
	if (!root) {
		ret = bad(err, t->path, e.msg);
		goto cleanup;
	}
	if (!json_is_object(root) || kars_json_only_keys(root, "", top_keys, &e) ||
	    kars_json_get_string(root, "", "format", true, &format, &e) ||
	    kars_json_get_string(root, "", "sha256", true, &sum, &e)) {
		ret = bad(err, t->path, e.code ? e.msg : "not a JSON object");
		goto cleanup;
	}
	if (strcmp(format, KARS_TRUST_FORMAT) != 0) {
		snprintf(msg, sizeof(msg), "format is \"%.64s\", not \"%s\"", format,
			 KARS_TRUST_FORMAT);
		ret = bad(err, t->path, msg);
		goto cleanup;
	}
	agents = kars_json_get_array(root, "", "agents", true, &ret, &e);
	if (!agents) {
		ret = bad(err, t->path, e.msg);
		goto cleanup;
	}
	if (digest_hex(agents, hex) || strcmp(hex, sum) != 0) {
		ret = bad(err, t->path, "sha256 does not match the agents it covers");
		goto cleanup;
	}
	if (json_array_size(agents) > t->o.agents_max) {
		snprintf(msg, sizeof(msg), "%zu agents, more than agents_max %u",
			 json_array_size(agents), t->o.agents_max);
		ret = bad(err, t->path, msg);
		goto cleanup;
	}
	t->e = calloc(t->o.agents_max, sizeof(*t->e));
	if (!t->e) {
		ret = kars_err_set(err, ENOMEM, "trust state: out of memory");
		goto cleanup;
	}
	for (i = 0; i < json_array_size(agents); i++) {
		const json_t *a = json_array_get(agents, i);
		const char *id = NULL;
		uint64_t milli = 0, upd = 0;

		kars_json_path_index(path, sizeof(path), "agents", i);
		if (!json_is_object(a) || kars_json_only_keys(a, path, agent_keys, &e) ||
		    kars_json_get_string(a, path, "id", true, &id, &e) ||
		    kars_json_get_uint(a, path, "milli", true, 0, KARS_TRUST_MAX * 1000, &milli,
				       &e) ||
		    kars_json_get_uint(a, path, "updated_ms", true, 0, INT64_MAX, &upd, &e) ||
		    check_id(id, &e) || find(t, id)) {
			snprintf(msg, sizeof(msg), "%s: %s", path,
				 e.code ? e.msg
				 : id	? "the id is listed twice"
					: "not an object");
			ret = bad(err, t->path, msg);
			goto cleanup;
		}
		snprintf(t->e[t->n].id, sizeof(t->e[t->n].id), "%s", id);
		t->e[t->n].milli = (int64_t)milli;
		t->e[t->n].updated_ms = upd;
		t->n++;
	}
cleanup:
	json_decref(root);
	free(buf);
	return ret;
}

int kars_trust_open(struct kars_trust **out, const struct kars_trust_opts *opts,
		    struct kars_err *err)
{
	struct kars_trust *t;
	int ret;

	*out = NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return kars_err_set(err, ENOMEM, "out of memory");
	t->o = *opts;
	if (!t->o.reward)
		t->o.reward = 10;
	if (!t->o.penalty)
		t->o.penalty = 50;
	if (t->o.decay_per_hour == 0)
		t->o.decay_per_hour = 0.95;
	if (!t->o.agents_max)
		t->o.agents_max = 1024;
	if (!(t->o.decay_per_hour > 0 && t->o.decay_per_hour <= 1)) {
		ret = kars_err_set(err, EINVAL, "trust.decay_per_hour: %g is not in (0, 1]",
				   t->o.decay_per_hour);
		goto fail;
	}
	if (t->o.reward > KARS_TRUST_MAX || t->o.penalty > KARS_TRUST_MAX ||
	    t->o.agents_max > KARS_TRUST_AGENTS_MAX) {
		ret = kars_err_set(err, EINVAL,
				   "trust: reward and penalty must be at most %d, agents_max at "
				   "most %d",
				   KARS_TRUST_MAX, KARS_TRUST_AGENTS_MAX);
		goto fail;
	}
	t->path = opts->path ? strdup(opts->path) : NULL;
	t->sandbox = opts->sandbox ? strdup(opts->sandbox) : NULL;
	t->o.path = t->path;
	t->o.sandbox = t->sandbox;
	if (t->path) {
		ret = load(t, err);
		if (ret)
			goto fail;
	}
	if (!t->e)
		t->e = calloc(t->o.agents_max, sizeof(*t->e));
	if (!t->e) {
		ret = kars_err_set(err, ENOMEM, "out of memory");
		goto fail;
	}
	pthread_mutex_init(&t->lock, NULL);
	*out = t;
	return 0;
fail:
	free(t->e);
	free(t->path);
	free(t->sandbox);
	free(t);
	return ret;
}

void kars_trust_close(struct kars_trust *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->lock);
	free(t->e);
	free(t->path);
	free(t->sandbox);
	free(t);
}

int kars_trust_get(struct kars_trust *t, const char *agent, uint64_t now_ms,
		   struct kars_trust_score *out, struct kars_err *err)
{
	int ret = check_id(agent, err);

	if (ret)
		return ret;
	pthread_mutex_lock(&t->lock);
	fill(t, find(t, agent), agent, wall_ms(now_ms), out);
	pthread_mutex_unlock(&t->lock);
	return 0;
}

/* A slot for a new agent: a free one, or one whose score is back at the
 * start (worth no more than an absent agent). */
static struct tentry *make_room(struct kars_trust *t, uint64_t now)
{
	if (t->n < t->o.agents_max)
		return &t->e[t->n++];
	for (size_t i = 0; i < t->n; i++) {
		if (rounded(decayed(t, &t->e[i], now)) == KARS_TRUST_START)
			return &t->e[i];
	}
	return NULL;
}

int kars_trust_change(struct kars_trust *t, const char *agent, enum kars_trust_change what,
		      uint32_t value, const char *by, const char *why, uint64_t now_ms,
		      struct kars_trust_score *out, struct kars_err *err)
{
	uint64_t now = wall_ms(now_ms);
	struct tentry *e, saved;
	bool added = false;
	uint32_t before;
	double milli;
	size_t n_saved;
	int ret = check_id(agent, err);

	if (ret)
		return ret;
	if (what == KARS_TRUST_SET && value > KARS_TRUST_MAX)
		return kars_err_set(err, EINVAL, "score: %u is more than %d", value,
				    KARS_TRUST_MAX);
	pthread_mutex_lock(&t->lock);
	n_saved = t->n;
	e = find(t, agent);
	if (!e) {
		e = make_room(t, now);
		if (!e) {
			ret = kars_err_set(err, ENOSPC,
					   "trust: the table holds agents_max (%u) agents and none "
					   "has decayed back to %d",
					   t->o.agents_max, KARS_TRUST_START);
			goto out;
		}
		saved = *e;
		added = true;
		snprintf(e->id, sizeof(e->id), "%s", agent);
		e->milli = KARS_TRUST_START * 1000;
		e->updated_ms = now;
	} else {
		saved = *e;
	}
	milli = decayed(t, e, now);
	before = rounded(milli);
	if (what == KARS_TRUST_REWARD)
		milli += t->o.reward * 1000.0;
	else if (what == KARS_TRUST_PENALTY)
		milli -= t->o.penalty * 1000.0;
	else
		milli = value * 1000.0;
	milli = milli < 0 ? 0 : milli > KARS_TRUST_MAX * 1000.0 ? KARS_TRUST_MAX * 1000.0 : milli;
	e->milli = (int64_t)floor(milli + 0.5);
	e->updated_ms = now;
	ret = save(t, err);
	if (ret) {
		*e = saved; /* nothing changed */
		t->n = n_saved;
		goto out;
	}
	fill(t, e, agent, now, out);
	if (t->o.audit) {
		char reason[512];
		uint32_t after = rounded((double)e->milli);
		struct kars_audit_record rec = {
		    .sandbox = t->sandbox,
		    .principal = by,
		    .action = "trust.update",
		    .decision = kars_trust_tier(after),
		    .reason = reason,
		};
		struct kars_err ae = {0};

		snprintf(reason, sizeof(reason), "%s: %u -> %u (%s%s%s%s)", agent, before, after,
			 kars_trust_change_name(what), added ? ", new agent" : "", why ? ": " : "",
			 why ? why : "");
		if (kars_audit_append(t->o.audit, &rec, &ae))
			ret =
			    kars_err_set(err, ae.code ? ae.code : EIO,
					 "trust: the change was saved but not audited: %s", ae.msg);
	}
out:
	pthread_mutex_unlock(&t->lock);
	return ret;
}

int kars_trust_each(struct kars_trust *t, uint64_t now_ms,
		    int (*fn)(const struct kars_trust_score *s, void *arg), void *arg)
{
	uint64_t now = wall_ms(now_ms);
	struct kars_trust_score s;
	int ret = 0;

	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < t->n && !ret; i++) {
		fill(t, &t->e[i], NULL, now, &s);
		ret = fn(&s, arg);
	}
	pthread_mutex_unlock(&t->lock);
	return ret;
}

size_t kars_trust_count(struct kars_trust *t)
{
	size_t n;

	pthread_mutex_lock(&t->lock);
	n = t->n;
	pthread_mutex_unlock(&t->lock);
	return n;
}
