/* probe.h - what this kernel can enforce, found out at start and reported.
 *
 * karsd never degrades silently: each missing feature becomes a sentence in
 * the status report and the enforcement level says what is left open.
 */
#ifndef KARS_PROBE_H
#define KARS_PROBE_H

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>

#include "cgroup2.h"
#include "err.h"

struct kars_probe {
	bool btf_vmlinux;
	bool prog_cgroup_sock_addr;
	bool prog_cgroup_sock;
	bool prog_cgroup_skb;
	bool prog_lsm;
	bool map_ringbuf;
	bool map_sk_storage;
	bool lsm_bpf_active;
	/* Set by kars_lsm_start(): the LSM programs enforce, or why not. */
	bool lsm_loaded;
	char lsm_error[768];
	char lsm_list[256];
	char cgroup2[PATH_MAX];
};

/* Mounts bpffs at /sys/fs/bpf when nothing is mounted there. */
int kars_bpffs_ensure(struct kars_err *err);
/* Runs every probe; fails only when the data plane cannot work at all. */
int kars_probe_run(struct kars_probe *p, struct kars_err *err);
/* "full" when the LSM programs are loaded and attached, else "no-lsm". */
const char *kars_probe_enforcement(const struct kars_probe *p);
/* Why the LSM programs cannot be used, in one sentence ("none" when they can). */
const char *kars_probe_lsm_problem(const struct kars_probe *p);
json_t *kars_probe_json(const struct kars_probe *p);

#endif
