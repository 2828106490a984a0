/* loader.h - loads the data-plane programs and attaches them to cgroups.
 *
 * Maps are pinned under <pin dir>/maps/ and reused across restarts; each
 * sandbox role cgroup gets one BPF link per program, pinned under
 * <pin dir>/cgroups/<cgroup id>/<program>. A link held by a pin outlives
 * karsd, so a crash or restart leaves no enforcement gap. A restarted karsd
 * re-adopts those links and points them at its freshly loaded programs
 * (an atomic link update), never attaching twice.
 */
#ifndef KARS_LOADER_H
#define KARS_LOADER_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"

struct sandbox_bpf;

struct kars_loader {
	struct sandbox_bpf *skel;
	char pin_dir[PATH_MAX];
	char cgroup2[PATH_MAX];
	int n_programs;
	/* true: the verdict hooks read the socket's cgroup from the socket
	 * (bpf_rdonly_cast, kernel 6.2+); false: from a stamp in sk_storage. */
	bool socket_cgroup_by_btf;
};

enum kars_socket_cgroup_mode {
	KARS_SOCKET_CGROUP_AUTO = 0, /* from the socket where the kernel allows it */
	KARS_SOCKET_CGROUP_SOCKET,   /* from the socket, or fail */
	KARS_SOCKET_CGROUP_STAMP,    /* from the stamp, as on pre-6.2 kernels */
};

/* Opens the object, reuses or creates the pinned maps, loads the programs. */
int kars_loader_open(struct kars_loader *l, const char *pin_dir, const char *cgroup2,
		     enum kars_socket_cgroup_mode mode, struct kars_err *err);
/* Frees the loaded object; links and pins stay. */
void kars_loader_close(struct kars_loader *l);

/* Resolves a role cgroup path (relative to the cgroup v2 mount, or absolute
 * below it) to its canonical path and id. */
int kars_cgroup_resolve(const struct kars_loader *l, const char *path, char *canon,
			size_t canon_len, uint64_t *id, const char *what, struct kars_err *err);
/* Whether the cgroup has live processes (cgroup.events "populated 1"). */
int kars_cgroup_populated(const char *canon, struct kars_err *err);

/* Attaches the role's programs to the cgroup, or re-adopts the pinned links
 * (role: KARS_ROLE_AGENT or KARS_ROLE_ROUTER). */
int kars_loader_attach(struct kars_loader *l, const char *canon, uint64_t id, int role,
		       struct kars_err *err);
/* Detaches and unpins the cgroup's links. */
int kars_loader_detach(struct kars_loader *l, uint64_t id, struct kars_err *err);

#endif
