/* cgroup2.c - finding the cgroup v2 mount and creating, emptying and
 * removing kars' subtrees in it. Processes are killed through cgroup.kill
 * (5.14+) so that a fork racing the kill cannot escape; older kernels get a
 * SIGKILL per pid of cgroup.procs, repeated until the cgroup is empty.
 */
#include "cgroup2.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mntent.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int kars_cgroup2_find(char *out, size_t len, struct kars_err *err)
{
	FILE *f = setmntent("/proc/mounts", "r");
	struct mntent *m;
	int ret = kars_err_set(err, ENOENT, "no cgroup2 mount in /proc/mounts");

	if (!f)
		return kars_err_set(err, errno, "/proc/mounts: %s", strerror(errno));
	while ((m = getmntent(f))) {
		if (strcmp(m->mnt_type, "cgroup2") == 0 && strlen(m->mnt_dir) < len) {
			strcpy(out, m->mnt_dir);
			kars_err_clear(err);
			ret = 0;
			break;
		}
	}
	endmntent(f);
	return ret;
}

int kars_cgroup_mkdir(const char *abs, struct kars_err *err)
{
	char path[PATH_MAX];
	size_t n = strlen(abs);

	if (n == 0 || n >= sizeof(path) || abs[0] != '/')
		return kars_err_set(err, EINVAL, "cgroup path \"%s\" is not absolute", abs);
	memcpy(path, abs, n + 1);
	for (char *p = path + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(path, 0755) && errno != EEXIST)
			return kars_err_set(err, errno, "mkdir %s: %s", path, strerror(errno));
		*p = c;
		if (!c)
			break;
	}
	return 0;
}

static int write_file(const char *dir, const char *file, const char *val)
{
	char path[PATH_MAX];
	int fd, ret = 0;

	if (snprintf(path, sizeof(path), "%s/%s", dir, file) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* 1 when some process is in the subtree (cgroup.events "populated 1"). */
static int populated(const char *abs)
{
	char path[PATH_MAX], line[128];
	int ret = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/cgroup.events", abs);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "populated ", 10) == 0)
			ret = atoi(line + 10) != 0;
	fclose(f);
	return ret;
}

/* SIGKILL to every pid listed in cgroup.procs of abs and below. */
static void kill_each(const char *abs)
{
	char path[PATH_MAX];
	struct dirent *de;
	FILE *f;
	DIR *d;
	long pid;

	snprintf(path, sizeof(path), "%s/cgroup.procs", abs);
	if ((f = fopen(path, "re"))) {
		while (fscanf(f, "%ld", &pid) == 1)
			kill((pid_t)pid, SIGKILL);
		fclose(f);
	}
	if (!(d = opendir(abs)))
		return;
	while ((de = readdir(d)))
		if (de->d_type == DT_DIR && de->d_name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s", abs, de->d_name);
			kill_each(path);
		}
	closedir(d);
}

static int kill_until_empty(const char *abs, bool use_cgroup_kill, struct kars_err *err)
{
	struct timespec ts = {0, 10 * 1000 * 1000};
	bool has_kill = use_cgroup_kill && write_file(abs, "cgroup.kill", "1") == 0;
	int p;

	for (int i = 0; i < 200; i++) {
		p = populated(abs);
		if (p < 0)
			return kars_err_set(err, -p, "%s/cgroup.events: %s", abs, strerror(-p));
		if (!p)
			return 0;
		if (!has_kill)
			kill_each(abs);
		nanosleep(&ts, NULL);
	}
	return kars_err_set(err, EBUSY, "cgroup %s still has processes after SIGKILL", abs);
}

int kars_cgroup_kill(const char *abs, struct kars_err *err)
{
	return kill_until_empty(abs, true, err);
}

int kars_cgroup_empty(const char *abs, struct kars_err *err)
{
	return kill_until_empty(abs, false, err);
}

static int remove_tree(const char *abs, struct kars_err *err)
{
	char path[PATH_MAX];
	struct dirent *de;
	int ret = 0;
	DIR *d;

	if (!(d = opendir(abs)))
		return errno == ENOENT ? 0
				       : kars_err_set(err, errno, "%s: %s", abs, strerror(errno));
	while (!ret && (de = readdir(d)))
		if (de->d_type == DT_DIR && de->d_name[0] != '.') {
			if (snprintf(path, sizeof(path), "%s/%s", abs, de->d_name) >=
			    (int)sizeof(path))
				ret = kars_err_set(err, ENAMETOOLONG, "cgroup path below %s", abs);
			else
				ret = remove_tree(path, err);
		}
	closedir(d);
	if (!ret && rmdir(abs) && errno != ENOENT)
		ret = kars_err_set(err, errno, "rmdir %s: %s", abs, strerror(errno));
	return ret;
}

int kars_cgroup_remove(const char *abs, struct kars_err *err)
{
	struct stat st;
	int ret;

	if (stat(abs, &st) && errno == ENOENT)
		return 0;
	ret = kars_cgroup_kill(abs, err);
	if (ret)
		return ret;
	return remove_tree(abs, err);
}

int kars_cgroup_attach(const char *abs, pid_t pid, struct kars_err *err)
{
	char val[32];
	int ret;

	snprintf(val, sizeof(val), "%d", (int)pid);
	ret = write_file(abs, "cgroup.procs", val);
	if (ret)
		return kars_err_set(err, -ret, "%s/cgroup.procs: %s", abs, strerror(-ret));
	return 0;
}

int kars_cgroup_has_pid(const char *abs, pid_t pid)
{
	char path[64], line[PATH_MAX + 8], mnt[PATH_MAX];
	int ret = 0;
	FILE *f;

	if (kars_cgroup2_find(mnt, sizeof(mnt), NULL))
		return -ENOENT;
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	if (!(f = fopen(path, "re")))
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char full[2 * PATH_MAX + 16];

		if (strncmp(line, "0::", 3) != 0)
			continue;
		line[strcspn(line, "\n")] = '\0';
		snprintf(full, sizeof(full), "%s%s", mnt, strcmp(line + 3, "/") ? line + 3 : "");
		ret = strcmp(full, abs) == 0;
	}
	fclose(f);
	return ret;
}
