/* local_proc.c - detached supervisors, their pid files (local_proc.h). */
#include "local_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup2.h"
#include "deliver.h"

static unsigned long long start_time(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long t = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* comm may hold spaces and parentheses: fields restart after the last ')'. */
	p = strrchr(buf, ')');
	if (!p)
		return 0;
	/* state is field 3, starttime field 22: 19 fields on. */
	if (sscanf(p + 2,
		   "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d "
		   "%*d %*d %*d %llu",
		   &t) != 1)
		return 0;
	/* A zombie is not alive. */
	return p[2] == 'Z' ? 0 : t;
}

pid_t kars_lp_alive(const char *pid_file)
{
	unsigned long long want = 0;
	int pid = 0, n;
	FILE *f = fopen(pid_file, "re");

	if (!f)
		return 0;
	n = fscanf(f, "%d %llu", &pid, &want);
	fclose(f);
	if (n < 1 || pid <= 1)
		return 0;
	if (n == 2)
		return start_time(pid) == want ? pid : 0;
	return start_time(pid) ? pid : 0;
}

static void run_supervisor(struct kars_sup_child *c, const char *cgroup)
{
	struct kars_sup sup = {.child = {c}, .n = 1};
	struct kars_err err = {0};
	char cg[PATH_MAX + 16];
	int fd;

	snprintf(cg, sizeof(cg), "%s/supervisor", cgroup);
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
	}
	fd = open(c->log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd >= 0)
		dup2(fd, 2);
	syscall(SYS_close_range, 3, ~0U, 0);
	if (kars_cgroup_mkdir(cg, &err) || kars_cgroup_attach(cg, getpid(), &err)) {
		fprintf(stderr, "kars supervisor: %s\n", err.msg);
		_exit(1);
	}
	if (kars_sup_run(&sup, 5.0, &err)) {
		fprintf(stderr, "kars supervisor: %s\n", err.msg);
		_exit(1);
	}
	_exit(0);
}

int kars_lp_spawn(struct kars_sup_child *c, const char *cgroup, const char *pid_file,
		  struct kars_err *err)
{
	char buf[64];
	int p[2], st = 0, n, ret = 0;
	pid_t pid, sup = 0;

	if (pipe2(p, O_CLOEXEC))
		return kars_err_set(err, errno, "pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0) {
		ret = kars_err_set(err, errno, "fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return ret;
	}
	if (pid == 0) {
		close(p[0]);
		if (setsid() < 0)
			_exit(1);
		sup = fork();
		if (sup == 0) {
			close(p[1]);
			run_supervisor(c, cgroup);
		}
		if (sup > 0 && write(p[1], &sup, sizeof(sup)) != sizeof(sup))
			_exit(1);
		_exit(sup < 0);
	}
	close(p[1]);
	waitpid(pid, &st, 0);
	n = (int)read(p[0], &sup, sizeof(sup));
	close(p[0]);
	if (n != sizeof(sup) || sup <= 0)
		return kars_err_set(err, ECHILD, "%s supervisor: could not start", c->spec.name);
	n = snprintf(buf, sizeof(buf), "%d %llu\n", (int)sup, start_time(sup));
	ret = kars_deliver_file(pid_file, buf, (size_t)n, err);
	if (ret < 0) {
		kill(sup, SIGTERM);
		return ret;
	}
	return 0;
}

int kars_lp_stop(const char *pid_file, double wait_s, struct kars_err *err)
{
	struct timespec ts = {0, 20 * 1000 * 1000};
	double waited = 0;
	pid_t pid = kars_lp_alive(pid_file);

	if (pid > 0)
		kill(pid, SIGTERM);
	while (pid > 0 && kars_lp_alive(pid_file) == pid) {
		if (waited >= wait_s)
			return kars_err_set(err, ETIMEDOUT, "supervisor %d did not stop in %.0f s",
					    (int)pid, wait_s);
		nanosleep(&ts, NULL);
		waited += 0.02;
	}
	unlink(pid_file);
	return 0;
}
