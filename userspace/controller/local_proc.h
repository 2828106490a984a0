/* local_proc.h - the detached per-role supervisors of the local backend.
 *
 * A supervisor is a grandchild of the controller (so it is never the
 * controller's zombie, and a controller restart leaves it running), in the
 * cgroup <sandbox cgroup>/supervisor, supervising one child with
 * kars_sup_run(). Its pid file holds "<pid> <start time>" (the start time
 * from /proc/<pid>/stat), so a recycled pid is never taken for it.
 */
#ifndef KARS_LOCAL_PROC_H
#define KARS_LOCAL_PROC_H

#include <stdbool.h>
#include <sys/types.h>

#include "err.h"
#include "local_supervise.h"

/* Starts the supervisor of c, its stderr appended to c->log_file, and
 * writes pid_file. */
int kars_lp_spawn(struct kars_sup_child *c, const char *cgroup, const char *pid_file,
		  struct kars_err *err);
/* The live process a pid file names (a supervisor's, or a supervised
 * child's plain "<pid>"), else 0. */
pid_t kars_lp_alive(const char *pid_file);
/* SIGTERM to the supervisor of pid_file, then waits until it is gone
 * (at most wait_s seconds) and removes the file. */
int kars_lp_stop(const char *pid_file, double wait_s, struct kars_err *err);

#endif
