/* sandboxes.h - the sandboxes karsd enforces, and their policies in the maps.
 *
 * Applying a policy writes its rules under a fresh generation, then switches
 * each role cgroup to that generation with one map update, then retires the
 * old generation after a grace period (a connect() that read the old cgroup
 * entry a moment earlier still finds the old rules). The sandbox list itself
 * lives in a pinned map, so a restarted karsd picks it up where it was.
 */
#ifndef KARS_SANDBOXES_H
#define KARS_SANDBOXES_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "kars_dataplane.h"
#include "loader.h"
#include "policy.h"

/* How long an old generation's rules outlive the switch. */
#define KARS_RETIRE_GRACE_NS 1000000000ull

struct kars_sandbox {
	uint32_t id;
	struct kars_sandbox_meta meta;
};

struct kars_retired_gen {
	uint32_t gen;
	uint64_t due_ns;
};

struct kars_sandboxes {
	struct kars_loader *loader;
	struct kars_sandbox *items;
	size_t n, cap;
	uint32_t next_gen;
	struct kars_retired_gen *retired;
	size_t n_retired, cap_retired;
};

/* Reads the pinned sandbox list and re-adopts each sandbox's cgroups. */
int kars_sandboxes_init(struct kars_sandboxes *s, struct kars_loader *l, struct kars_err *err);
void kars_sandboxes_free(struct kars_sandboxes *s);

int kars_sandboxes_apply(struct kars_sandboxes *s, const struct kars_policy *p, json_t **resp,
			 struct kars_err *err);
int kars_sandboxes_remove(struct kars_sandboxes *s, const char *name, struct kars_err *err);
json_t *kars_sandboxes_list(const struct kars_sandboxes *s);
/* The sandbox's learned FQDN entries (docs/dns.md). */
int kars_sandboxes_fqdn(const struct kars_sandboxes *s, const char *name, json_t **out,
			struct kars_err *err);
int kars_sandboxes_learned(const struct kars_sandboxes *s, const char *name, json_t **out,
			   struct kars_err *err);
/* admin: the caller may read any sandbox's; else only one whose router UID is uid. */
int kars_sandboxes_orig_dst(const struct kars_sandboxes *s, uint64_t cookie, uint32_t uid,
			    bool admin, json_t **out, struct kars_err *err);

const struct kars_sandbox *kars_sandboxes_by_id(const struct kars_sandboxes *s, uint32_t id);
bool kars_sandboxes_is_router_uid(const struct kars_sandboxes *s, uint32_t uid);
/* Deletes the rules of retired generations whose grace has passed. */
void kars_sandboxes_gc(struct kars_sandboxes *s);

#endif
