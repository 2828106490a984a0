/* local_supervise.h - keeping a local sandbox's processes running.
 *
 * The supervisor starts each child (kars_local_launch), writes its pid file,
 * sends its stdout and stderr to its log file (appended), and when a child
 * exits starts it again after a backoff: 1 s, doubling up to 30 s, back to
 * 1 s once a run lasted a stable minute. SIGTERM or SIGINT to the
 * supervisor stops the children: SIGTERM to each, SIGKILL to what is left of
 * its cgroup after the grace period, pid files removed.
 *
 * Time is passed in (monotonic seconds) so that the restart schedule can be
 * driven and observed by a test without sleeping; kars_sup_run() is the loop
 * that feeds it the real clock.
 */
#ifndef KARS_LOCAL_SUPERVISE_H
#define KARS_LOCAL_SUPERVISE_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>

#include "err.h"
#include "local_launch.h"

#define KARS_BACKOFF_FIRST_MS 1000
#define KARS_BACKOFF_MAX_MS   30000
#define KARS_BACKOFF_STABLE_S 60.0
#define KARS_SUP_MAX	      4

struct kars_sup_child {
	struct kars_local_spec spec; /* log_fd is set by the supervisor */
	char pid_file[PATH_MAX + 32];
	char log_file[PATH_MAX + 32];
	pid_t pid; /* 0 while not running */
	double started;
	double next_start;   /* when pid is 0: monotonic time of the next start */
	unsigned backoff_ms; /* delay after the next exit */
	unsigned restarts;
	int last_status; /* wait status of the last exit */
};

struct kars_sup {
	struct kars_sup_child *child[KARS_SUP_MAX];
	int n;
};

/* The delay after a run of ran_s seconds, given the current one (0: none yet). */
unsigned kars_backoff_next(unsigned cur_ms, double ran_s);
double kars_monotonic(void);

int kars_sup_start(struct kars_sup_child *c, double now, struct kars_err *err);
/* A reaped pid: true when it was one of the children, whose restart is
 * then scheduled. */
bool kars_sup_exited(struct kars_sup *s, pid_t pid, int status, double now);
/* Starts the children whose restart is due. Returns 0, or the first launch
 * error (that child is rescheduled, with backoff). *next: seconds until the
 * next due start, -1 for none. */
int kars_sup_tick(struct kars_sup *s, double now, double *next, struct kars_err *err);
/* SIGTERM, grace_s seconds, then SIGKILL of the cgroup; pid files removed. */
int kars_sup_stop(struct kars_sup *s, double grace_s, struct kars_err *err);
/* Starts every child and supervises until SIGTERM or SIGINT, then stops
 * them. Blocks those signals and SIGCHLD in the calling thread. */
int kars_sup_run(struct kars_sup *s, double grace_s, struct kars_err *err);

#endif
