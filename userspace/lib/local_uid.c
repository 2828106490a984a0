/* local_uid.c - the allocation file of local sandbox UIDs (see local_uid.h). */
#include "local_uid.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define MAX_HELD  1024
#define OWNER_MAX 256

struct held {
	uid_t uid;
	char owner[OWNER_MAX];
};

struct table {
	struct held h[MAX_HELD];
	int n;
};

static int lock_state(const char *dir, struct kars_err *err)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/uids.lock", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return kars_err_set(err, errno, "%s: %s", path, strerror(errno));
	if (flock(fd, LOCK_EX)) {
		close(fd);
		return kars_err_set(err, errno, "flock %s: %s", path, strerror(errno));
	}
	return fd;
}

static int load(const char *dir, struct table *t, struct kars_err *err)
{
	char path[PATH_MAX], line[OWNER_MAX + 32];
	int lineno = 0, ret = 0;
	FILE *f;

	t->n = 0;
	snprintf(path, sizeof(path), "%s/uids", dir);
	if (!(f = fopen(path, "re")))
		return errno == ENOENT ? 0
				       : kars_err_set(err, errno, "%s: %s", path, strerror(errno));
	while (!ret && fgets(line, sizeof(line), f)) {
		char owner[OWNER_MAX];
		unsigned long uid;
		int end = 0;

		lineno++;
		if (sscanf(line, "%lu %255s%n", &uid, owner, &end) != 2 || line[end] != '\n' ||
		    uid > UINT32_MAX - 1)
			ret = kars_err_set(err, EINVAL, "%s:%d: not \"<uid> <namespace>/<name>\"",
					   path, lineno);
		else if (t->n == MAX_HELD)
			ret =
			    kars_err_set(err, ENOSPC, "%s: more than %d sandboxes", path, MAX_HELD);
		else {
			t->h[t->n].uid = (uid_t)uid;
			strcpy(t->h[t->n].owner, owner);
			t->n++;
		}
	}
	fclose(f);
	return ret;
}

static int store(const char *dir, const struct table *t, struct kars_err *err)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	int fd, ret = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/uids", dir);
	snprintf(tmp, sizeof(tmp), "%s/uids.tmp", dir);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		ret = kars_err_set(err, errno, "%s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		return ret;
	}
	for (int i = 0; i < t->n; i++)
		fprintf(f, "%u %s\n", (unsigned)t->h[i].uid, t->h[i].owner);
	if (fflush(f) || fsync(fileno(f)))
		ret = kars_err_set(err, errno, "%s: %s", tmp, strerror(errno));
	if (fclose(f) && !ret)
		ret = kars_err_set(err, errno, "%s: %s", tmp, strerror(errno));
	if (!ret && rename(tmp, path))
		ret = kars_err_set(err, errno, "rename %s: %s", path, strerror(errno));
	if (!ret && (fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		fsync(fd);
		close(fd);
	}
	if (ret)
		unlink(tmp);
	return ret;
}

/* Whether id is a UID of the passwd file or a GID of the group file. */
static int host_id(const struct kars_uid_range *r, uid_t id, struct kars_err *err)
{
	const char *pw = r->passwd ? r->passwd : "/etc/passwd";
	const char *gr = r->group ? r->group : "/etc/group";
	struct passwd *p;
	struct group *g;
	int found = 0;
	FILE *f;

	if (!(f = fopen(pw, "re")))
		return kars_err_set(err, errno, "%s: %s", pw, strerror(errno));
	while (!found && (p = fgetpwent(f)))
		found = p->pw_uid == id;
	fclose(f);
	if (found)
		return 1;
	if (!(f = fopen(gr, "re")))
		return errno == ENOENT ? 0
				       : kars_err_set(err, errno, "%s: %s", gr, strerror(errno));
	while (!found && (g = fgetgrent(f)))
		found = g->gr_gid == id;
	fclose(f);
	return found;
}

static int check_owner(const char *owner, struct kars_err *err)
{
	size_t n = strlen(owner);

	if (n == 0 || n >= OWNER_MAX || strchr(owner, ' ') || strchr(owner, '\n') ||
	    !strchr(owner, '/'))
		return kars_err_set(err, EINVAL, "sandbox \"%s\" is not <namespace>/<name>", owner);
	return 0;
}

int kars_uid_alloc(const char *dir, const struct kars_uid_range *r, const char *owner, uid_t *agent,
		   uid_t *router, struct kars_err *err)
{
	struct table *t = NULL;
	int lock, ret;
	uid_t u;

	if ((ret = check_owner(owner, err)))
		return ret;
	if (r->first % 2 || r->last <= r->first || r->first == 0)
		return kars_err_set(err, EINVAL, "UID range %u-%u: first must be even and non-zero",
				    (unsigned)r->first, (unsigned)r->last);
	if ((lock = lock_state(dir, err)) < 0)
		return lock;
	if (!(t = malloc(sizeof(*t)))) {
		ret = kars_err_set(err, ENOMEM, "out of memory");
		goto cleanup;
	}
	if ((ret = load(dir, t, err)))
		goto cleanup;
	for (int i = 0; i < t->n; i++)
		if (strcmp(t->h[i].owner, owner) == 0) {
			*agent = t->h[i].uid;
			*router = t->h[i].uid + 1;
			goto cleanup;
		}
	ret = kars_err_set(err, ENOSPC, "UID range %u-%u is exhausted", (unsigned)r->first,
			   (unsigned)r->last);
	for (u = r->first; u < r->last; u += 2) {
		bool taken = false;
		int a, b;

		for (int i = 0; i < t->n && !taken; i++)
			taken = t->h[i].uid == u;
		if (taken)
			continue;
		if ((a = host_id(r, u, err)) < 0 || (b = host_id(r, u + 1, err)) < 0) {
			ret = a < 0 ? a : b;
			goto cleanup;
		}
		if (a || b)
			continue;
		if (t->n == MAX_HELD)
			break;
		kars_err_clear(err);
		t->h[t->n].uid = u;
		strcpy(t->h[t->n].owner, owner);
		t->n++;
		ret = store(dir, t, err);
		if (!ret) {
			*agent = u;
			*router = u + 1;
		}
		break;
	}
cleanup:
	free(t);
	close(lock);
	return ret;
}

int kars_uid_release(const char *dir, const char *owner, struct kars_err *err)
{
	struct table *t = malloc(sizeof(*t));
	int lock, ret, j = 0;

	if (!t)
		return kars_err_set(err, ENOMEM, "out of memory");
	if ((lock = lock_state(dir, err)) < 0) {
		free(t);
		return lock;
	}
	ret = load(dir, t, err);
	if (!ret) {
		for (int i = 0; i < t->n; i++)
			if (strcmp(t->h[i].owner, owner) != 0)
				t->h[j++] = t->h[i];
		if (j != t->n) {
			t->n = j;
			ret = store(dir, t, err);
		}
	}
	free(t);
	close(lock);
	return ret;
}

int kars_uid_lookup(const char *dir, const char *owner, uid_t *agent, struct kars_err *err)
{
	struct table *t = malloc(sizeof(*t));
	int ret;

	if (!t)
		return kars_err_set(err, ENOMEM, "out of memory");
	ret = load(dir, t, err);
	if (!ret) {
		ret = -ENOENT;
		for (int i = 0; i < t->n; i++)
			if (strcmp(t->h[i].owner, owner) == 0) {
				*agent = t->h[i].uid;
				ret = 0;
			}
	}
	free(t);
	return ret;
}
