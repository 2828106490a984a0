/* local_uid.h - the UIDs of local sandboxes, allocated by pairs.
 *
 * Each sandbox gets two consecutive IDs of a reserved range, agent = the
 * even one, router = agent + 1, used as both UID and GID. The allocation is
 * kept in <state>/uids (one "<agent-uid> <namespace>/<name>" line per
 * sandbox, replaced atomically: write, fsync, rename), under a lock file, so
 * an ID is never handed out twice while a sandbox holds it, across restarts
 * of the process that allocates. IDs named in the passwd or group file are
 * skipped: a sandbox never runs as a host account.
 */
#ifndef KARS_LOCAL_UID_H
#define KARS_LOCAL_UID_H

#include <sys/types.h>

#include "err.h"

struct kars_uid_range {
	uid_t first;	    /* even; default 60000 */
	uid_t last;	    /* inclusive; default 60999 */
	const char *passwd; /* NULL: /etc/passwd */
	const char *group;  /* NULL: /etc/group */
};

#define KARS_UID_FIRST 60000
#define KARS_UID_LAST  60999

/* The pair held by owner ("ns/name"), or a new one. Idempotent. */
int kars_uid_alloc(const char *state_dir, const struct kars_uid_range *range, const char *owner,
		   uid_t *agent, uid_t *router, struct kars_err *err);
/* Frees owner's pair; an owner holding none is not an error. */
int kars_uid_release(const char *state_dir, const char *owner, struct kars_err *err);
/* The agent UID owner holds: 0 and *agent set, or -ENOENT. */
int kars_uid_lookup(const char *state_dir, const char *owner, uid_t *agent, struct kars_err *err);

#endif
