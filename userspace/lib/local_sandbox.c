/* local_sandbox.c - the directories, cgroups and UIDs of a local sandbox, and
 * the launch specs of its agent and router (local_sandbox.h).
 */
#include "local_sandbox.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup2.h"
#include "names.h"

static int fmt(char *out, size_t len, struct kars_err *err, const char *f, const char *a,
	       const char *b)
{
	if (snprintf(out, len, f, a, b) >= (int)len)
		return kars_err_set(err, ENAMETOOLONG, "path %s/%s is too long", a, b);
	return 0;
}

static int make_dir(const char *path, mode_t mode, uid_t uid, struct kars_err *err)
{
	if (mkdir(path, mode) && errno != EEXIST)
		return kars_err_set(err, errno, "mkdir %s: %s", path, strerror(errno));
	if (chown(path, uid, uid) || chmod(path, mode))
		return kars_err_set(err, errno, "chown/chmod %s: %s", path, strerror(errno));
	return 0;
}

static int mkdir_parents(const char *path, struct kars_err *err)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s", path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0711) && errno != EEXIST)
			return kars_err_set(err, errno, "mkdir %s: %s", p, strerror(errno));
		*s = '/';
	}
	return 0;
}

int kars_local_sandbox_create(const char *state_dir, const struct kars_uid_range *range,
			      const char *ns, const char *name, struct kars_local_sandbox *sb,
			      struct kars_err *err)
{
	char cg2[PATH_MAX], tmp[2 * PATH_MAX];
	int ret;

	memset(sb, 0, sizeof(*sb));
	if (snprintf(sb->owner, sizeof(sb->owner), "%s/%s", ns, name) >= (int)sizeof(sb->owner))
		return kars_err_set(err, ENAMETOOLONG, "sandbox name %s/%s is too long", ns, name);
	if ((ret = kars_sandbox_name_check(sb->owner, "sandbox", err)))
		return ret;
	snprintf(sb->state_dir, sizeof(sb->state_dir), "%s", state_dir);
	snprintf(tmp, sizeof(tmp), "%s/sandboxes/%s", state_dir, sb->owner);
	if ((ret = fmt(sb->dir, sizeof(sb->dir), err, "%s%s", tmp, "")) ||
	    (ret = fmt(sb->sandbox_dir, sizeof(sb->sandbox_dir), err, "%s/%s", tmp, "sandbox")) ||
	    (ret = fmt(sb->router_dir, sizeof(sb->router_dir), err, "%s/%s", tmp, "router")) ||
	    (ret = fmt(sb->run_dir, sizeof(sb->run_dir), err, "%s/%s", tmp, "run")) ||
	    (ret = fmt(sb->log_dir, sizeof(sb->log_dir), err, "%s/%s", tmp, "logs")) ||
	    (ret = fmt(sb->agent_root, sizeof(sb->agent_root), err, "%s/%s", tmp,
		       "run/agent.root")) ||
	    (ret = fmt(sb->router_root, sizeof(sb->router_root), err, "%s/%s", tmp,
		       "run/router.root")))
		return ret;
	if ((ret = kars_cgroup2_find(cg2, sizeof(cg2), err)))
		return ret;
	snprintf(tmp, sizeof(tmp), "%s/kars/%s", cg2, sb->owner);
	if ((ret = fmt(sb->cgroup, sizeof(sb->cgroup), err, "%s%s", tmp, "")) ||
	    (ret = fmt(sb->cg_agent, sizeof(sb->cg_agent), err, "%s/%s", tmp, "agent")) ||
	    (ret = fmt(sb->cg_router, sizeof(sb->cg_router), err, "%s/%s", tmp, "router")))
		return ret;
	ret = kars_uid_alloc(state_dir, range, sb->owner, &sb->agent_uid, &sb->router_uid, err);
	if (ret)
		return ret;
	if ((ret = mkdir_parents(sb->sandbox_dir, err)) ||
	    (ret = make_dir(sb->dir, 0711, 0, err)) ||
	    (ret = make_dir(sb->sandbox_dir, 0700, sb->agent_uid, err)) ||
	    (ret = make_dir(sb->router_dir, 0700, sb->router_uid, err)) ||
	    (ret = make_dir(sb->run_dir, 0700, 0, err)) ||
	    (ret = make_dir(sb->log_dir, 0700, 0, err)) ||
	    (ret = make_dir(sb->agent_root, 0700, 0, err)) ||
	    (ret = make_dir(sb->router_root, 0700, 0, err)) ||
	    (ret = kars_cgroup_mkdir(sb->cg_agent, err)) ||
	    (ret = kars_cgroup_mkdir(sb->cg_router, err))) {
		struct kars_err ignored;

		kars_local_sandbox_remove(sb, &ignored);
		return ret;
	}
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

int kars_local_sandbox_remove(struct kars_local_sandbox *sb, struct kars_err *err)
{
	char cg[PATH_MAX + 8];
	int ret, r;

	ret = kars_cgroup_remove(sb->cgroup, err);
	/* The now empty <cgroup2>/kars/<ns>, when no other sandbox uses it. */
	snprintf(cg, sizeof(cg), "%s", sb->cgroup);
	if (!ret && strrchr(cg, '/')) {
		*strrchr(cg, '/') = '\0';
		rmdir(cg);
	}
	/* Private mounts of the views live and die in their namespaces, so
	 * the tree holds plain files only. */
	r = nftw(sb->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	if (r && errno != ENOENT && !ret)
		ret = kars_err_set(err, errno, "removing %s: %s", sb->dir, strerror(errno));
	r = kars_uid_release(sb->state_dir, sb->owner, ret ? NULL : err);
	return ret ? ret : r;
}

void kars_local_agent_spec(const struct kars_local_sandbox *sb, char *const *argv,
			   char *const *envp, const struct sock_fprog *prog, int log_fd,
			   struct kars_local_spec *s)
{
	memset(s, 0, sizeof(*s));
	s->name = "agent";
	s->uid = sb->agent_uid;
	s->gid = sb->agent_uid;
	s->cgroup = sb->cg_agent;
	s->root = sb->agent_root;
	s->argv = argv;
	s->envp = envp;
	s->cwd = "/sandbox";
	s->log_fd = log_fd;
	s->seccomp = prog;
	s->mounts[s->n_mounts++] = (struct kars_local_mount){KARS_MNT_HIDE, NULL, sb->state_dir};
	s->mounts[s->n_mounts++] =
	    (struct kars_local_mount){KARS_MNT_RW, sb->sandbox_dir, "/sandbox"};
}

void kars_local_router_spec(const struct kars_local_sandbox *sb, char *const *argv,
			    char *const *envp, int log_fd, struct kars_local_spec *s)
{
	memset(s, 0, sizeof(*s));
	s->name = "router";
	s->uid = sb->router_uid;
	s->gid = sb->router_uid;
	s->cgroup = sb->cg_router;
	s->root = sb->router_root;
	s->argv = argv;
	s->envp = envp;
	s->cwd = sb->router_dir;
	s->log_fd = log_fd;
	s->mounts[s->n_mounts++] = (struct kars_local_mount){KARS_MNT_HIDE, NULL, sb->state_dir};
	s->mounts[s->n_mounts++] =
	    (struct kars_local_mount){KARS_MNT_RW, sb->router_dir, sb->router_dir};
}
