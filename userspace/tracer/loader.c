/* loader.c - see loader.h. */
#include "loader.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "sandbox.skel.h"

static int mkdir_p(const char *path, struct kars_err *err)
{
	char buf[PATH_MAX];

	if (strlen(path) >= sizeof(buf))
		return kars_err_set(err, ENAMETOOLONG, "path too long: %s", path);
	strcpy(buf, path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) && errno != EEXIST)
			return kars_err_set(err, errno, "mkdir %s: %s", buf, strerror(errno));
		*p = '/';
	}
	if (mkdir(buf, 0700) && errno != EEXIST)
		return kars_err_set(err, errno, "mkdir %s: %s", buf, strerror(errno));
	return 0;
}

int kars_loader_open(struct kars_loader *l, const char *pin_dir, const char *cgroup2,
		     struct kars_err *err)
{
	struct bpf_program *prog;
	struct bpf_map *map;
	char path[2 * PATH_MAX];
	int ret;

	memset(l, 0, sizeof(*l));
	if (strlen(pin_dir) >= sizeof(l->pin_dir) || strlen(cgroup2) >= sizeof(l->cgroup2))
		return kars_err_set(err, ENAMETOOLONG, "pin dir or cgroup2 path too long");
	strcpy(l->pin_dir, pin_dir);
	strcpy(l->cgroup2, cgroup2);
	snprintf(path, sizeof(path), "%s/maps", pin_dir);
	ret = mkdir_p(path, err);
	snprintf(path, sizeof(path), "%s/cgroups", pin_dir);
	if (!ret)
		ret = mkdir_p(path, err);
	if (ret)
		return ret;

	l->skel = sandbox_bpf__open();
	if (!l->skel)
		return kars_err_set(err, errno, "opening BPF object: %s", strerror(errno));
	bpf_object__for_each_map(map, l->skel->obj)
	{
		snprintf(path, sizeof(path), "%s/maps/%s", pin_dir, bpf_map__name(map));
		ret = bpf_map__set_pin_path(map, path);
		if (ret) {
			kars_err_set(err, -ret, "pin path for %s: %s", bpf_map__name(map),
				     strerror(-ret));
			goto fail;
		}
	}
	/* Pinned maps that exist are reused (libbpf checks they are compatible);
	 * missing ones are created and pinned. */
	ret = sandbox_bpf__load(l->skel);
	if (ret) {
		kars_err_set(err, -ret,
			     "loading BPF programs: %s (an incompatible map pinned under %s/maps "
			     "from another kars version also fails here)",
			     strerror(-ret), pin_dir);
		goto fail;
	}
	bpf_object__for_each_program(prog, l->skel->obj) l->n_programs++;
	return 0;
fail:
	sandbox_bpf__destroy(l->skel);
	l->skel = NULL;
	return ret;
}

void kars_loader_close(struct kars_loader *l)
{
	sandbox_bpf__destroy(l->skel);
	l->skel = NULL;
}

int kars_cgroup_resolve(const struct kars_loader *l, const char *path, char *canon,
			size_t canon_len, uint64_t *id, const char *what, struct kars_err *err)
{
	char joined[2 * PATH_MAX + 2], real[PATH_MAX];
	size_t root_len = strlen(l->cgroup2);
	struct {
		struct file_handle fh;
		uint64_t id;
	} handle = {.fh.handle_bytes = sizeof(uint64_t)};
	int mount_id;

	if (path[0] == '/')
		snprintf(joined, sizeof(joined), "%s", path);
	else
		snprintf(joined, sizeof(joined), "%s/%s", l->cgroup2, path);
	if (!realpath(joined, real))
		return kars_err_set(err, errno, "%s: cgroup %s: %s", what, joined, strerror(errno));
	if (strncmp(real, l->cgroup2, root_len) || real[root_len] != '/')
		return kars_err_set(err, EINVAL,
				    "%s: %s is not a cgroup below the cgroup v2 mount %s", what,
				    real, l->cgroup2);
	if (strlen(real) >= canon_len)
		return kars_err_set(err, ENAMETOOLONG, "%s: path too long", what);
	if (name_to_handle_at(AT_FDCWD, real, &handle.fh, &mount_id, 0))
		return kars_err_set(err, errno, "%s: cgroup id of %s: %s", what, real,
				    strerror(errno));
	strcpy(canon, real);
	*id = handle.id;
	return 0;
}

int kars_cgroup_populated(const char *canon, struct kars_err *err)
{
	char path[PATH_MAX], line[128];
	int populated = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/cgroup.events", canon);
	f = fopen(path, "r");
	if (!f)
		return kars_err_set(err, errno, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (strcmp(line, "populated 1\n") == 0)
			populated = 1;
	fclose(f);
	return populated;
}

static void link_pin_path(const struct kars_loader *l, uint64_t id, const struct bpf_program *prog,
			  char *out, size_t len)
{
	snprintf(out, len, "%s/cgroups/%llu/%s", l->pin_dir, (unsigned long long)id,
		 prog ? bpf_program__name(prog) : "");
}

int kars_loader_attach(struct kars_loader *l, const char *canon, uint64_t id, struct kars_err *err)
{
	struct bpf_program *prog;
	char path[2 * PATH_MAX];
	int cg_fd, ret = 0;

	link_pin_path(l, id, NULL, path, sizeof(path));
	ret = mkdir_p(path, err);
	if (ret)
		return ret;
	cg_fd = open(canon, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg_fd < 0)
		return kars_err_set(err, errno, "open %s: %s", canon, strerror(errno));
	bpf_object__for_each_program(prog, l->skel->obj)
	{
		struct bpf_link *link;

		link_pin_path(l, id, prog, path, sizeof(path));
		link = bpf_link__open(path);
		if (link) {
			/* Re-adopt: same link, our program. Atomic; no gap, no duplicate. */
			ret = bpf_link__update_program(link, prog);
			if (ret)
				kars_err_set(err, -ret, "updating pinned link %s: %s", path,
					     strerror(-ret));
		} else {
			link = bpf_program__attach_cgroup(prog, cg_fd);
			if (!link) {
				ret = kars_err_set(err, errno, "attaching %s to %s: %s",
						   bpf_program__name(prog), canon, strerror(errno));
				break;
			}
			ret = bpf_link__pin(link, path);
			if (ret) {
				kars_err_set(err, -ret, "pinning %s: %s", path, strerror(-ret));
				bpf_link__destroy(link); /* unpinned: detaches */
				break;
			}
		}
		/* Closing our fd keeps a pinned link attached. */
		bpf_link__disconnect(link);
		bpf_link__destroy(link);
		if (ret)
			break;
	}
	close(cg_fd);
	return ret;
}

int kars_loader_detach(struct kars_loader *l, uint64_t id, struct kars_err *err)
{
	struct bpf_program *prog;
	char path[2 * PATH_MAX];
	int ret = 0;

	bpf_object__for_each_program(prog, l->skel->obj)
	{
		struct bpf_link *link;

		link_pin_path(l, id, prog, path, sizeof(path));
		link = bpf_link__open(path);
		if (!link) {
			if (errno != ENOENT)
				ret = kars_err_set(err, errno, "opening %s: %s", path,
						   strerror(errno));
			continue;
		}
		if (bpf_link__detach(link))
			ret = kars_err_set(err, errno, "detaching %s: %s", path, strerror(errno));
		bpf_link__disconnect(link);
		bpf_link__destroy(link);
		if (unlink(path) && errno != ENOENT)
			ret = kars_err_set(err, errno, "unpinning %s: %s", path, strerror(errno));
	}
	link_pin_path(l, id, NULL, path, sizeof(path));
	if (rmdir(path) && errno != ENOENT)
		log_warn("rmdir %s: %s", path, strerror(errno));
	return ret;
}
