/* lsm.c - see lsm.h. */
#include "lsm.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "kars_dataplane.h"
#include "log.h"
#include "lsm.skel.h"

int kars_lsm_add_protect(struct kars_lsm *lsm, const char *path)
{
	if (lsm->n_protect >= KARS_LSM_MAX_PROTECT)
		return -E2BIG;
	lsm->protect[lsm->n_protect++] = path;
	return 0;
}

static void set_problem(struct kars_probe *p, const char *fmt, const char *detail)
{
	snprintf(p->lsm_error, sizeof(p->lsm_error), fmt, detail);
	p->lsm_loaded = false;
}

/* Writes the protected inodes into the map; a missing path is an error: an
 * operator who asked for protection gets it or karsd does not start. */
static int fill_protected(struct kars_lsm *lsm, struct kars_err *err)
{
	int fd = bpf_map__fd(lsm->skel->maps.kars_protected);
	struct kars_protected_key key;
	struct kars_protected_key next;
	struct stat st;
	__u8 one = 1;

	/* The map is pinned: start from what this karsd is told now. */
	while (bpf_map_get_next_key(fd, NULL, &next) == 0)
		bpf_map_delete_elem(fd, &next);
	for (int i = 0; i < lsm->n_protect; i++) {
		if (stat(lsm->protect[i], &st))
			return kars_err_set(err, errno, "--protect %s: %s", lsm->protect[i],
					    strerror(errno));
		memset(&key, 0, sizeof(key));
		/* The kernel's dev_t encoding, as inode->i_sb->s_dev holds it. */
		key.dev = ((__u64)major(st.st_dev) << 20) | minor(st.st_dev);
		key.ino = st.st_ino;
		if (bpf_map_update_elem(fd, &key, &one, BPF_ANY))
			return kars_err_set(err, errno, "--protect %s: map update: %s",
					    lsm->protect[i], strerror(errno));
	}
	return 0;
}

/* Attaches one program and puts its link at <dir>/<name>, replacing the pin
 * of an older karsd's link only after the new one is attached. */
static int attach_pinned(struct bpf_program *prog, const char *dir, struct kars_err *err)
{
	char path[2 * PATH_MAX], tmp[2 * PATH_MAX + 8];
	struct bpf_link *link;
	int ret;

	snprintf(path, sizeof(path), "%s/%s", dir, bpf_program__name(prog));
	snprintf(tmp, sizeof(tmp), "%s_new", path); /* bpffs refuses dots */
	link = bpf_program__attach_lsm(prog);
	if (!link)
		return kars_err_set(err, errno, "attaching %s: %s", bpf_program__name(prog),
				    strerror(errno));
	unlink(tmp);
	ret = bpf_link__pin(link, tmp);
	if (ret) {
		bpf_link__destroy(link);
		return kars_err_set(err, -ret, "pinning %s: %s", tmp, strerror(-ret));
	}
	/* The old pin (if any) goes with the rename: its link detaches now,
	 * after ours enforces. */
	if (rename(tmp, path)) {
		ret = kars_err_set(err, errno, "renaming %s to %s: %s", tmp, path, strerror(errno));
		unlink(tmp);
		bpf_link__destroy(link);
		return ret;
	}
	bpf_link__destroy(link); /* closes our fd; the pin holds the link */
	return 0;
}

int kars_lsm_start(struct kars_lsm *lsm, struct kars_probe *p, const char *pin_dir,
		   struct kars_err *err)
{
	char path[PATH_MAX + 64];
	struct bpf_program *prog;
	struct bpf_map *map;
	int ret;

	p->lsm_loaded = false;
	p->lsm_error[0] = '\0';
	if (!p->lsm_bpf_active) {
		/* Nothing to load; --protect paths are still checked so that a
		 * typo fails the same on every kernel. */
		for (int i = 0; i < lsm->n_protect; i++)
			if (access(lsm->protect[i], F_OK))
				return kars_err_set(err, errno, "--protect %s: %s", lsm->protect[i],
						    strerror(errno));
		return 0;
	}
	lsm->skel = lsm_bpf__open();
	if (!lsm->skel) {
		set_problem(p, "opening the LSM object failed: %s", strerror(errno));
		return 0;
	}
	bpf_object__for_each_map(map, lsm->skel->obj)
	{
		snprintf(path, sizeof(path), "%s/maps/%s", pin_dir, bpf_map__name(map));
		bpf_map__set_pin_path(map, path);
	}
	ret = lsm_bpf__load(lsm->skel);
	if (ret) {
		set_problem(p, "bpf is an active LSM but loading the LSM programs failed: %s",
			    strerror(-ret));
		goto unload;
	}
	ret = fill_protected(lsm, err);
	if (ret)
		goto fail;
	snprintf(path, sizeof(path), "%s/lsm", pin_dir);
	if (mkdir(path, 0700) && errno != EEXIST) {
		ret = kars_err_set(err, errno, "mkdir %s: %s", path, strerror(errno));
		goto fail;
	}
	lsm->n_programs = 0;
	bpf_object__for_each_program(prog, lsm->skel->obj)
	{
		struct kars_err aerr = {};

		if (attach_pinned(prog, path, &aerr)) {
			/* The kernel refused a hook: report it, keep what is
			 * attached (each program stands alone). */
			set_problem(p, "bpf is an active LSM but attaching failed: %s", aerr.msg);
			log_warn("%s", aerr.msg);
			continue;
		}
		lsm->n_programs++;
	}
	if (!p->lsm_error[0])
		p->lsm_loaded = true;
	log_info("LSM programs: %d attached, links pinned under %s", lsm->n_programs, path);
	return 0;
unload:
	log_warn("%s", p->lsm_error);
	lsm_bpf__destroy(lsm->skel);
	lsm->skel = NULL;
	return 0;
fail:
	lsm_bpf__destroy(lsm->skel);
	lsm->skel = NULL;
	return ret;
}

void kars_lsm_close(struct kars_lsm *lsm)
{
	lsm_bpf__destroy(lsm->skel);
	lsm->skel = NULL;
}

void kars_lsm_gaps(const struct kars_lsm *lsm, const struct kars_probe *p, json_t *gaps)
{
	if (p->lsm_loaded && lsm->n_protect == 0)
		json_array_append_new(gaps,
				      json_string("no --protect paths: an agent's access to the "
						  "router's secrets and kars state rests on file "
						  "permissions alone"));
}

json_t *kars_lsm_json(const struct kars_lsm *lsm)
{
	json_t *prot = json_array();

	for (int i = 0; i < lsm->n_protect; i++)
		json_array_append_new(prot, json_string(lsm->protect[i]));
	return json_pack("{s:i,s:o}", "programs", lsm->n_programs, "protected", prot);
}
