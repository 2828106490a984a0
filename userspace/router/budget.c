/* budget.c - see budget.h. */
#include "budget.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"

static void calendar(time_t now, char day[16], char month[8])
{
	struct tm tm;

	gmtime_r(&now, &tm);
	if (!strftime(day, 16, "%Y-%m-%d", &tm))
		day[0] = '\0';
	if (!strftime(month, 8, "%Y-%m", &tm))
		month[0] = '\0';
}

/* Starts a new day or month when the UTC calendar has moved on. */
static void roll(struct kars_budget *b, time_t now)
{
	char day[16], month[8];

	calendar(now, day, month);
	if (strcmp(day, b->day) != 0) {
		strcpy(b->day, day);
		b->daily_used = 0;
		b->dirty = true;
	}
	if (strcmp(month, b->month) != 0) {
		strcpy(b->month, month);
		b->monthly_used = 0;
		b->dirty = true;
	}
}

static int load(struct kars_budget *b, struct kars_err *err)
{
	static const char *const keys[] = {"sandbox", "day",	       "dailyTokens",
					   "month",   "monthlyTokens", NULL};
	const char *sandbox = NULL, *day = NULL, *month = NULL;
	json_error_t jerr;
	json_t *root;
	int ret;

	root = json_load_file(b->path, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		if (access(b->path, F_OK) && errno == ENOENT)
			return 0;
		return kars_err_set(err, EINVAL, "budget file %s: line %d: %s", b->path, jerr.line,
				    jerr.text);
	}
	ret = kars_json_only_keys(root, "", keys, err);
	if (!ret)
		ret = kars_json_get_string(root, "", "sandbox", true, &sandbox, err);
	if (!ret)
		ret = kars_json_get_string(root, "", "day", true, &day, err);
	if (!ret)
		ret = kars_json_get_string(root, "", "month", true, &month, err);
	if (!ret)
		ret = kars_json_get_uint(root, "", "dailyTokens", true, 0, UINT64_MAX >> 1,
					 &b->daily_used, err);
	if (!ret)
		ret = kars_json_get_uint(root, "", "monthlyTokens", true, 0, UINT64_MAX >> 1,
					 &b->monthly_used, err);
	if (!ret && strcmp(sandbox, b->sandbox) != 0)
		ret = kars_err_set(err, EINVAL,
				   "sandbox: the file is the budget of \"%s\", not \"%s\"", sandbox,
				   b->sandbox);
	if (!ret && (strlen(day) >= sizeof(b->day) || strlen(month) >= sizeof(b->month)))
		ret = kars_err_set(err, EINVAL, "day/month: not YYYY-MM-DD / YYYY-MM");
	if (!ret) {
		strcpy(b->day, day);
		strcpy(b->month, month);
	} else {
		char msg[sizeof(err->msg)];

		snprintf(msg, sizeof(msg), "budget file %.200s: %.290s", b->path, err->msg);
		memcpy(err->msg, msg, sizeof(msg));
	}
	json_decref(root);
	return ret;
}

int kars_budget_open(struct kars_budget *b, const char *path, const char *sandbox, time_t now,
		     struct kars_err *err)
{
	int ret = 0;

	memset(b, 0, sizeof(*b));
	if (strlen(sandbox) >= sizeof(b->sandbox) || (path && strlen(path) >= sizeof(b->path)))
		return kars_err_set(err, ENAMETOOLONG, "budget: sandbox name or path too long");
	strcpy(b->sandbox, sandbox);
	if (path) {
		strcpy(b->path, path);
		ret = load(b, err);
	}
	if (!ret)
		roll(b, now);
	return ret;
}

enum kars_budget_verdict kars_budget_check(struct kars_budget *b, uint64_t daily_limit,
					   uint64_t monthly_limit, time_t now)
{
	roll(b, now);
	if (monthly_limit && b->monthly_used >= monthly_limit)
		return KARS_BUDGET_MONTHLY_EXCEEDED;
	if (daily_limit && b->daily_used >= daily_limit)
		return KARS_BUDGET_DAILY_EXCEEDED;
	return KARS_BUDGET_OK;
}

long kars_budget_retry_after(enum kars_budget_verdict v, time_t now)
{
	struct tm tm;
	time_t next;

	gmtime_r(&now, &tm);
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	if (v == KARS_BUDGET_MONTHLY_EXCEEDED) {
		tm.tm_mday = 1;
		tm.tm_mon++;
	} else {
		tm.tm_mday++;
	}
	next = timegm(&tm); /* normalises day 32, month 12 */
	return next > now ? (long)(next - now) : 1;
}

void kars_budget_charge(struct kars_budget *b, uint64_t tokens, time_t now)
{
	roll(b, now);
	if (!tokens)
		return;
	b->daily_used += tokens;
	b->monthly_used += tokens;
	b->dirty = true;
}

void kars_budget_reset(struct kars_budget *b)
{
	b->daily_used = b->monthly_used = 0;
	b->dirty = true;
}

static int fsync_dir_of(const char *path)
{
	char copy[4096];
	int fd, ret;

	snprintf(copy, sizeof(copy), "%s", path);
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = fsync(fd) ? -errno : 0;
	close(fd);
	return ret;
}

int kars_budget_persist(struct kars_budget *b, struct kars_err *err)
{
	char tmp[4200], *text;
	json_t *doc;
	size_t len;
	int fd, ret = 0;

	if (!b->dirty || !b->path[0])
		return 0;
	doc = json_pack("{s:s,s:s,s:I,s:s,s:I}", "sandbox", b->sandbox, "day", b->day,
			"dailyTokens", (json_int_t)b->daily_used, "month", b->month,
			"monthlyTokens", (json_int_t)b->monthly_used);
	text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	if (!text)
		return kars_err_set(err, ENOMEM, "budget: out of memory");
	len = strlen(text);
	snprintf(tmp, sizeof(tmp), "%s.tmp", b->path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = kars_err_set(err, errno, "budget: %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1 || fsync(fd)) {
		ret = kars_err_set(err, errno ? errno : EIO, "budget: writing %s: %s", tmp,
				   strerror(errno ? errno : EIO));
		close(fd);
		unlink(tmp);
		goto out;
	}
	close(fd);
	if (rename(tmp, b->path)) {
		ret =
		    kars_err_set(err, errno, "budget: rename to %s: %s", b->path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	ret = fsync_dir_of(b->path);
	if (ret)
		ret = kars_err_set(err, -ret, "budget: fsync of %s's directory: %s", b->path,
				   strerror(-ret));
	else
		b->dirty = false;
out:
	free(text);
	return ret;
}
