/* cgroup_helpers.c - see cgroup_helpers.h. */
#include "cgroup_helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <mntent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

int kst_cgroup2_find(char *out, size_t len)
{
	struct mntent *m;
	FILE *f = setmntent("/proc/mounts", "r");
	int ret = -ENOENT;

	if (!f)
		return -errno;
	while ((m = getmntent(f))) {
		if (strcmp(m->mnt_type, "cgroup2") == 0) {
			if (strlen(m->mnt_dir) >= len) {
				ret = -ENAMETOOLONG;
				break;
			}
			strcpy(out, m->mnt_dir);
			ret = 0;
			break;
		}
	}
	endmntent(f);
	return ret;
}

int kst_cgroup_create(struct kst_env *env, const char *leaf, char *abs, size_t len)
{
	char path[PATH_MAX];

	if (env->n_cgroups == KST_MAX_CGROUPS)
		return -E2BIG;
	if (kst_fmt(path, sizeof(path), "%s%s%s", env->cg_base, leaf ? "/" : "", leaf ? leaf : ""))
		return -ENAMETOOLONG;
	if (mkdir(path, 0755))
		return -errno;
	kst_fmt(env->cgroups[env->n_cgroups++], PATH_MAX, "%s", path);
	if (abs && abs != env->cg_base)
		kst_fmt(abs, len, "%s", path);
	return 0;
}

static int write_file(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, value, strlen(value));
	if (n < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	close(fd);
	return 0;
}

int kst_cgroup_join(const char *abs)
{
	char path[PATH_MAX + 32];

	snprintf(path, sizeof(path), "%s/cgroup.procs", abs);
	return write_file(path, "0");
}

int kst_cgroup_self(char *abs, size_t len)
{
	char line[PATH_MAX + 8];
	FILE *f = fopen("/proc/self/cgroup", "re");
	bool found = false;

	if (!f)
		return -errno;
	while (!found && fgets(line, sizeof(line), f))
		found = strncmp(line, "0::", 3) == 0;
	fclose(f);
	if (!found)
		return -ENOENT;
	line[strcspn(line, "\n")] = '\0';
	return kst_fmt(abs, len, "%s%s", kst_cgroup2(), line + 3);
}

int kst_in_cgroup(const char *cgroup, int (*make)(void *arg), void *arg)
{
	char here[PATH_MAX];
	int ret = kst_cgroup_self(here, sizeof(here));

	if (ret)
		return ret;
	ret = kst_cgroup_join(cgroup);
	if (ret)
		return ret;
	ret = make(arg);
	if (kst_cgroup_join(here) && !ret)
		ret = -EIO;
	return ret;
}

static int populated(const char *abs)
{
	char path[PATH_MAX + 32], line[64];
	int ret = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/cgroup.events", abs);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (strcmp(line, "populated 1\n") == 0)
			ret = 1;
	fclose(f);
	return ret;
}

int kst_cgroup_kill(const char *abs)
{
	char path[PATH_MAX + 32];
	uint64_t deadline = kst_now_ms() + 5000;
	int ret;

	snprintf(path, sizeof(path), "%s/cgroup.kill", abs);
	if (access(path, F_OK) == 0) {
		ret = write_file(path, "1");
		if (ret)
			return ret;
	} else {
		/* Kernels before 5.14: kill what cgroup.procs lists. */
		char line[32];
		FILE *f;

		snprintf(path, sizeof(path), "%s/cgroup.procs", abs);
		f = fopen(path, "re");
		if (!f)
			return -errno;
		while (fgets(line, sizeof(line), f))
			kill((pid_t)strtol(line, NULL, 10), SIGKILL);
		fclose(f);
	}
	while ((ret = populated(abs)) == 1 && kst_now_ms() < deadline)
		kst_msleep(10);
	return ret == 0 ? 0 : ret < 0 ? ret : -EBUSY;
}

void kst_cgroup_destroy_all(struct kst_env *env)
{
	for (int i = env->n_cgroups - 1; i >= 0; i--) {
		const char *cg = env->cgroups[i];
		uint64_t deadline = kst_now_ms() + 5000;

		kst_cgroup_kill(cg);
		/* A cgroup is removable once its last task is reaped; that may
		 * trail "populated 0" by a moment. */
		while (rmdir(cg) && errno == EBUSY && kst_now_ms() < deadline)
			kst_msleep(10);
		if (access(cg, F_OK) == 0)
			kst_note("could not remove cgroup %s: %s", cg, strerror(errno));
	}
	env->n_cgroups = 0;
}

int kst_cgroup_prog_count(const char *abs, enum bpf_attach_type type)
{
	__u32 ids[64], cnt = 64, flags = 0;
	int fd = open(abs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ret;

	if (fd < 0)
		return -errno;
	ret = bpf_prog_query(fd, type, 0, &flags, ids, &cnt);
	close(fd);
	if (ret)
		return ret < 0 ? ret : -EIO;
	return (int)cnt;
}
