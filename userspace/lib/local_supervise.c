/* local_supervise.c - restart with backoff, pid files, logs, clean stop
 * (local_supervise.h).
 */
#include "local_supervise.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup2.h"

double kars_monotonic(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

unsigned kars_backoff_next(unsigned cur_ms, double ran_s)
{
	if (cur_ms == 0 || ran_s >= KARS_BACKOFF_STABLE_S)
		return KARS_BACKOFF_FIRST_MS;
	return cur_ms >= KARS_BACKOFF_MAX_MS / 2 ? KARS_BACKOFF_MAX_MS : cur_ms * 2;
}

static int write_pid_file(const char *path, pid_t pid, struct kars_err *err)
{
	char tmp[PATH_MAX + 8], buf[32];
	int fd, n, ret = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	n = snprintf(buf, sizeof(buf), "%d\n", (int)pid);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, buf, (size_t)n) != n || fsync(fd))
		ret = kars_err_set(err, errno, "%s: %s", tmp, strerror(errno));
	if (fd >= 0)
		close(fd);
	if (!ret && rename(tmp, path))
		ret = kars_err_set(err, errno, "rename %s: %s", path, strerror(errno));
	if (ret)
		unlink(tmp);
	return ret;
}

int kars_sup_start(struct kars_sup_child *c, double now, struct kars_err *err)
{
	int fd, ret;
	pid_t pid;

	fd = open(c->log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return kars_err_set(err, errno, "%s: %s", c->log_file, strerror(errno));
	c->spec.log_fd = fd;
	ret = kars_local_launch(&c->spec, &pid, err);
	close(fd);
	c->spec.log_fd = -1;
	if (ret)
		return ret;
	c->pid = pid;
	c->started = now;
	ret = write_pid_file(c->pid_file, pid, err);
	if (ret) {
		/* A child nobody can find is not supervised: stop it. */
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		c->pid = 0;
	}
	return ret;
}

static void schedule(struct kars_sup_child *c, double now, double ran)
{
	c->backoff_ms = kars_backoff_next(c->backoff_ms, ran);
	c->next_start = now + c->backoff_ms / 1000.0;
}

bool kars_sup_exited(struct kars_sup *s, pid_t pid, int status, double now)
{
	for (int i = 0; i < s->n; i++) {
		struct kars_sup_child *c = s->child[i];

		if (c->pid != pid || pid <= 0)
			continue;
		c->pid = 0;
		c->last_status = status;
		unlink(c->pid_file);
		schedule(c, now, now - c->started);
		return true;
	}
	return false;
}

int kars_sup_tick(struct kars_sup *s, double now, double *next, struct kars_err *err)
{
	int ret = 0;

	*next = -1;
	for (int i = 0; i < s->n; i++) {
		struct kars_sup_child *c = s->child[i];
		struct kars_err e = {0};

		if (c->pid)
			continue;
		if (c->next_start <= now) {
			if (kars_sup_start(c, now, &e) == 0) {
				c->restarts++;
				continue;
			}
			if (!ret)
				ret = kars_err_set(err, e.code, "%s", e.msg);
			schedule(c, now, 0);
		}
		if (*next < 0 || c->next_start - now < *next)
			*next = c->next_start - now;
	}
	return ret;
}

int kars_sup_stop(struct kars_sup *s, double grace_s, struct kars_err *err)
{
	double deadline = kars_monotonic() + grace_s;
	struct timespec ts = {0, 20 * 1000 * 1000};
	int ret = 0, st = 0, left;
	pid_t pid;

	for (int i = 0; i < s->n; i++)
		if (s->child[i]->pid)
			kill(s->child[i]->pid, SIGTERM);
	do {
		left = 0;
		for (int i = 0; i < s->n; i++) {
			struct kars_sup_child *c = s->child[i];

			if (!c->pid)
				continue;
			pid = waitpid(c->pid, &st, WNOHANG);
			if (pid == c->pid || (pid < 0 && errno == ECHILD)) {
				c->pid = 0;
				c->last_status = st;
				unlink(c->pid_file);
			} else {
				left++;
			}
		}
		if (left)
			nanosleep(&ts, NULL);
	} while (left && kars_monotonic() < deadline);
	for (int i = 0; i < s->n; i++) {
		struct kars_sup_child *c = s->child[i];
		int r = kars_cgroup_empty(c->spec.cgroup, ret ? NULL : err);

		if (r && !ret)
			ret = r;
		if (c->pid) {
			waitpid(c->pid, &c->last_status, 0);
			c->pid = 0;
		}
		unlink(c->pid_file);
		c->next_start = 0;
	}
	return ret;
}

int kars_sup_run(struct kars_sup *s, double grace_s, struct kars_err *err)
{
	struct timespec ts;
	sigset_t set, old;
	double next, now;
	int ret, sig, st;
	pid_t pid;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, &old))
		return kars_err_set(err, errno, "sigprocmask: %s", strerror(errno));
	for (int i = 0; i < s->n; i++)
		s->child[i]->next_start = 0;
	for (;;) {
		now = kars_monotonic();
		while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
			kars_sup_exited(s, pid, st, now);
		ret = kars_sup_tick(s, now, &next, err);
		if (ret) {
			fprintf(stderr, "kars supervisor: %s\n", err->msg);
			kars_err_clear(err);
		}
		if (next < 0)
			next = 3600;
		ts.tv_sec = (time_t)next;
		ts.tv_nsec = (long)((next - (double)ts.tv_sec) * 1e9);
		sig = sigtimedwait(&set, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT)
			break;
	}
	ret = kars_sup_stop(s, grace_s, err);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return ret;
}
