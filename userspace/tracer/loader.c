/* loader.c - see loader.h. */
#include "loader.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kars_dataplane.h"
#include "log.h"
#include "sandbox.skel.h"

/* The hooks each role gets. The router has no rewrites to hide and no packet
 * backstop (its raw and ping sockets are refused at creation), which keeps
 * its connect() path short. */
static const struct hook {
	const char *name; /* pin name; the program is kars_<name>[_btf] */
	bool has_btf_variant;
	bool agent, router;
} hooks[] = {
    {"sock_create", true, true, true},
    {"connect4", true, true, true},
    {"connect6", true, true, true},
    {"sendmsg4", true, true, true},
    {"sendmsg6", true, true, true},
    {"recvmsg4", false, true, false},
    {"recvmsg6", false, true, false},
    {"getpeername4", false, true, false},
    {"getpeername6", false, true, false},
    {"skb_egress", false, true, false},
    {"dns_egress", false, true, true}, /* DNS query check, both roles (docs/dns.md) */
    /* The router's FQDN allowlist: queries recorded, answers snooped. */
    {"fqdn_egress", false, false, true},
    {"fqdn_ingress", false, false, true},
};
#define N_HOOKS (sizeof(hooks) / sizeof(hooks[0]))

static struct bpf_program *hook_program(const struct kars_loader *l, const struct hook *h,
					bool btf_variant)
{
	char name[64];

	snprintf(name, sizeof(name), "kars_%s%s", h->name,
		 h->has_btf_variant && btf_variant ? "_btf" : "");
	return bpf_object__find_program_by_name(l->skel->obj, name);
}

static bool kernel_has_rdonly_cast(void)
{
	struct btf *btf = btf__load_vmlinux_btf();
	bool ok = btf && btf__find_by_name_kind(btf, "bpf_rdonly_cast", BTF_KIND_FUNC) > 0;

	btf__free(btf);
	return ok;
}

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

/* Opens and loads the object with one build of the verdict hooks. */
static int load(struct kars_loader *l, bool by_btf, struct kars_err *err)
{
	struct bpf_program *prog;
	struct bpf_map *map;
	char path[2 * PATH_MAX];
	int ret;

	l->skel = sandbox_bpf__open();
	if (!l->skel)
		return kars_err_set(err, errno, "opening BPF object: %s", strerror(errno));
	bpf_object__for_each_map(map, l->skel->obj)
	{
		snprintf(path, sizeof(path), "%s/maps/%s", l->pin_dir, bpf_map__name(map));
		ret = bpf_map__set_pin_path(map, path);
		if (ret) {
			kars_err_set(err, -ret, "pin path for %s: %s", bpf_map__name(map),
				     strerror(-ret));
			goto fail;
		}
	}
	for (size_t i = 0; i < N_HOOKS; i++) {
		if (!hooks[i].has_btf_variant)
			continue;
		bpf_program__set_autoload(hook_program(l, &hooks[i], !by_btf), false);
	}
	/* Pinned maps that exist are reused (libbpf checks they are compatible);
	 * missing ones are created and pinned. */
	ret = sandbox_bpf__load(l->skel);
	if (ret) {
		kars_err_set(err, -ret,
			     "loading BPF programs: %s (an incompatible map pinned under %s/maps "
			     "from another kars version also fails here)",
			     strerror(-ret), l->pin_dir);
		goto fail;
	}
	l->socket_cgroup_by_btf = by_btf;
	l->n_programs = 0;
	bpf_object__for_each_program(prog, l->skel->obj) l->n_programs +=
	    bpf_program__autoload(prog);
	return 0;
fail:
	sandbox_bpf__destroy(l->skel);
	l->skel = NULL;
	return ret;
}

int kars_loader_open(struct kars_loader *l, const char *pin_dir, const char *cgroup2,
		     enum kars_socket_cgroup_mode mode, struct kars_err *err)
{
	char path[2 * PATH_MAX];
	bool by_btf = mode == KARS_SOCKET_CGROUP_SOCKET ||
		      (mode == KARS_SOCKET_CGROUP_AUTO && kernel_has_rdonly_cast());
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
	ret = load(l, by_btf, err);
	if (ret && by_btf && mode == KARS_SOCKET_CGROUP_AUTO) {
		log_warn("%s; retrying with sockets' cgroups stamped at creation", err->msg);
		kars_err_clear(err);
		ret = load(l, false, err);
	}
	if (!ret)
		log_info("socket cgroups read %s",
			 l->socket_cgroup_by_btf ? "from the socket (bpf_rdonly_cast)"
						 : "from a stamp set at creation (sk_storage)");
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

static void link_pin_path(const struct kars_loader *l, uint64_t id, const char *hook, char *out,
			  size_t len)
{
	snprintf(out, len, "%s/cgroups/%llu/%s", l->pin_dir, (unsigned long long)id,
		 hook ? hook : "");
}

/* Detaches and unpins one pinned link; a missing pin is not an error. */
static int unpin_link(const char *path, struct kars_err *err)
{
	struct bpf_link *link = bpf_link__open(path);
	int ret = 0;

	if (!link)
		return errno == ENOENT
			   ? 0
			   : kars_err_set(err, errno, "opening %s: %s", path, strerror(errno));
	/* A link severed from outside (bpftool link detach) fails here: fine. */
	if (bpf_link__detach(link) && errno != ENOLINK)
		ret = kars_err_set(err, errno, "detaching %s: %s", path, strerror(errno));
	bpf_link__destroy(link); /* closes our fd */
	if (unlink(path) && errno != ENOENT)
		ret = kars_err_set(err, errno, "unpinning %s: %s", path, strerror(errno));
	return ret;
}

static int attach_one(struct kars_loader *l, struct bpf_program *prog, int cg_fd, const char *path,
		      const char *canon, struct kars_err *err)
{
	struct bpf_link *link = bpf_link__open(path);
	int ret = 0;

	if (link) {
		/* Re-adopt: same link, our program. Atomic; no gap, no duplicate. */
		ret = bpf_link__update_program(link, prog);
		bpf_link__destroy(link); /* closes our fd; the pin keeps the link */
		if (ret != -ENOLINK)
			return ret ? kars_err_set(err, -ret, "updating pinned link %s: %s", path,
						  strerror(-ret))
				   : 0;
		/* Severed by hand: the cgroup lost this hook. Attach anew. */
		log_warn("pinned link %s was detached from outside karsd; attaching again", path);
		unlink(path);
	}
	link = bpf_program__attach_cgroup(prog, cg_fd);
	if (!link)
		return kars_err_set(err, errno, "attaching %s to %s: %s", bpf_program__name(prog),
				    canon, strerror(errno));
	ret = bpf_link__pin(link, path);
	if (ret) {
		kars_err_set(err, -ret, "pinning %s: %s", path, strerror(-ret));
		bpf_link__destroy(link); /* unpinned: detaches */
		return ret;
	}
	/* Closing our fd keeps a pinned link attached. (No bpf_link__disconnect:
	 * a disconnected link's destroy never closes its fd, and karsd leaked
	 * one per attach until RLIMIT_NOFILE stopped every apply.) */
	bpf_link__destroy(link);
	return 0;
}

int kars_loader_attach(struct kars_loader *l, const char *canon, uint64_t id, int role,
		       struct kars_err *err)
{
	char path[2 * PATH_MAX];
	int cg_fd, ret;

	link_pin_path(l, id, NULL, path, sizeof(path));
	ret = mkdir_p(path, err);
	if (ret)
		return ret;
	cg_fd = open(canon, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg_fd < 0)
		return kars_err_set(err, errno, "open %s: %s", canon, strerror(errno));
	for (size_t i = 0; i < N_HOOKS && !ret; i++) {
		const struct hook *h = &hooks[i];
		bool wanted = role == KARS_ROLE_AGENT ? h->agent : h->router;

		link_pin_path(l, id, h->name, path, sizeof(path));
		if (wanted)
			ret = attach_one(l, hook_program(l, h, l->socket_cgroup_by_btf), cg_fd,
					 path, canon, err);
		else
			ret = unpin_link(path, err); /* a hook the role no longer has */
	}
	close(cg_fd);
	return ret;
}

int kars_loader_detach(struct kars_loader *l, uint64_t id, struct kars_err *err)
{
	char path[2 * PATH_MAX];
	int ret = 0;

	for (size_t i = 0; i < N_HOOKS; i++) {
		link_pin_path(l, id, hooks[i].name, path, sizeof(path));
		if (unpin_link(path, err))
			ret = -1;
	}
	link_pin_path(l, id, NULL, path, sizeof(path));
	if (rmdir(path) && errno != ENOENT)
		log_warn("rmdir %s: %s", path, strerror(errno));
	return ret;
}
