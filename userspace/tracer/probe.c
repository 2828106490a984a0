/* probe.c - see probe.h. */
#include "probe.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <mntent.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "log.h"

#define BPF_FS_MAGIC_NUMBER 0xcafe4a11
#define SECURITYFS_MAGIC    0x73636673

static bool is_fs(const char *path, long magic)
{
	struct statfs st;

	return statfs(path, &st) == 0 && st.f_type == magic;
}

int kars_bpffs_ensure(struct kars_err *err)
{
	if (is_fs("/sys/fs/bpf", BPF_FS_MAGIC_NUMBER))
		return 0;
	if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700"))
		return kars_err_set(err, errno, "mounting bpffs at /sys/fs/bpf: %s",
				    strerror(errno));
	log_info("mounted bpffs at /sys/fs/bpf");
	return 0;
}

static void read_lsm_list(struct kars_probe *p)
{
	FILE *f;

	if (!is_fs("/sys/kernel/security", SECURITYFS_MAGIC) &&
	    mount("securityfs", "/sys/kernel/security", "securityfs", 0, NULL))
		log_warn("cannot mount securityfs: %s; assuming BPF LSM is not active",
			 strerror(errno));
	f = fopen("/sys/kernel/security/lsm", "r");
	if (!f)
		return;
	if (fgets(p->lsm_list, sizeof(p->lsm_list), f))
		p->lsm_list[strcspn(p->lsm_list, "\n")] = '\0';
	fclose(f);
	for (char *tok = p->lsm_list, *end; *tok; tok = *end ? end + 1 : end) {
		end = strchr(tok, ',');
		if (!end)
			end = tok + strlen(tok);
		if (end - tok == 3 && strncmp(tok, "bpf", 3) == 0)
			p->lsm_bpf_active = true;
	}
}

static bool prog_ok(enum bpf_prog_type type)
{
	return libbpf_probe_bpf_prog_type(type, NULL) == 1;
}

int kars_probe_run(struct kars_probe *p, struct kars_err *err)
{
	int ret;

	memset(p, 0, sizeof(*p));
	p->btf_vmlinux = access("/sys/kernel/btf/vmlinux", R_OK) == 0;
	p->prog_cgroup_sock_addr = prog_ok(BPF_PROG_TYPE_CGROUP_SOCK_ADDR);
	p->prog_cgroup_sock = prog_ok(BPF_PROG_TYPE_CGROUP_SOCK);
	p->prog_cgroup_skb = prog_ok(BPF_PROG_TYPE_CGROUP_SKB);
	p->prog_lsm = prog_ok(BPF_PROG_TYPE_LSM);
	p->map_ringbuf = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, NULL) == 1;
	p->map_sk_storage = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_SK_STORAGE, NULL) == 1;
	read_lsm_list(p);
	ret = kars_cgroup2_find(p->cgroup2, sizeof(p->cgroup2), err);
	if (ret)
		return ret;
	if (!p->btf_vmlinux)
		return kars_err_set(err, ENOTSUP,
				    "no /sys/kernel/btf/vmlinux: CO-RE programs cannot load");
	if (!p->prog_cgroup_sock_addr || !p->prog_cgroup_sock || !p->prog_cgroup_skb ||
	    !p->map_ringbuf || !p->map_sk_storage)
		return kars_err_set(err, ENOTSUP,
				    "kernel lacks cgroup sock_addr/sock/skb, ringbuf or "
				    "sk_storage support: no enforcement possible");
	return 0;
}

const char *kars_probe_lsm_problem(const struct kars_probe *p)
{
	if (!p->lsm_bpf_active)
		return "bpf is not an active LSM (add it to the kernel's lsm= list)";
	if (p->lsm_error[0])
		return p->lsm_error;
	if (!p->lsm_loaded)
		return "the LSM programs are not loaded";
	return "none";
}

const char *kars_probe_enforcement(const struct kars_probe *p)
{
	return p->lsm_loaded ? "full" : "no-lsm";
}

json_t *kars_probe_json(const struct kars_probe *p)
{
	json_t *open = json_array();

	if (!p->lsm_loaded)
		json_array_append_new(open,
				      json_sprintf("%s: AF_PACKET, netlink and vsock sockets "
						   "are not vetoed, AF_UNIX connects are not "
						   "checked, and a socket passed in from outside "
						   "a sandbox is judged by its origin",
						   kars_probe_lsm_problem(p)));
	return json_pack("{s:s,s:o,s:{s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:s},s:s}", "enforcement",
			 kars_probe_enforcement(p), "openGaps", open, "features", "btfVmlinux",
			 p->btf_vmlinux, "cgroupSockAddr", p->prog_cgroup_sock_addr, "cgroupSock",
			 p->prog_cgroup_sock, "cgroupSkb", p->prog_cgroup_skb, "lsmProgram",
			 p->prog_lsm, "ringbuf", p->map_ringbuf, "skStorage", p->map_sk_storage,
			 "lsmBpfActive", p->lsm_bpf_active, "lsmList", p->lsm_list, "cgroup2",
			 p->cgroup2);
}
