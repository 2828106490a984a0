/* lsm.h - the BPF LSM backstop (bpf/lsm.bpf.c): load, attach, pin, report.
 *
 * Loaded when `bpf` is an active LSM and the kernel accepts the programs;
 * otherwise karsd runs at enforcement level "no-lsm" and says why (status,
 * metrics, log), never silently. The programs share kars_cgroups, kars_stats,
 * kars_counters and kars_events with the cgroup programs through their pins,
 * so they must be loaded after kars_loader_open(). Each program's link is
 * pinned under <pin dir>/lsm/; a restarted karsd attaches its new programs
 * first and then replaces each pin (rename), so the old link detaches only
 * once the new one enforces: no gap, no second copy left behind.
 */
#ifndef KARS_LSM_H
#define KARS_LSM_H

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>

#include "err.h"
#include "probe.h"

#define KARS_LSM_MAX_PROTECT 16

struct lsm_bpf;

struct kars_lsm {
	struct lsm_bpf *skel;
	int n_programs; /* attached and pinned */
	const char *protect[KARS_LSM_MAX_PROTECT];
	int n_protect;
};

/* Adds a path agents may not open (nor anything below it); checked at start.
 * Returns -E2BIG past KARS_LSM_MAX_PROTECT. */
int kars_lsm_add_protect(struct kars_lsm *lsm, const char *path);
/* Loads and attaches the programs, or records in p why not (p->lsm_loaded,
 * p->lsm_error): a kernel that cannot do it is not an error. Fails only on a
 * --protect path that does not exist or a pin directory it cannot write. */
int kars_lsm_start(struct kars_lsm *lsm, struct kars_probe *p, const char *pin_dir,
		   struct kars_err *err);
/* Frees the loaded object; the pinned links stay and keep enforcing. */
void kars_lsm_close(struct kars_lsm *lsm);
/* Appends to the status report's openGaps what full enforcement still
 * leaves open with this configuration (no --protect paths). */
void kars_lsm_gaps(const struct kars_lsm *lsm, const struct kars_probe *p, json_t *gaps);
/* {"programs":N,"protected":[paths]} for the status report. */
json_t *kars_lsm_json(const struct kars_lsm *lsm);

#endif
