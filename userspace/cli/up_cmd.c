/* up_cmd.c - kars up --local, kars down (up_cmd.h).
 *
 * `kars up --local` forks a small service supervisor (setsid, its own pid
 * file), which starts karsd and then kars-controller --backend local, and
 * starts either again after it exits: 1 s, doubling to 30 s, back to 1 s
 * after a stable minute (kars_backoff_next). It returns once karsd answers
 * on its socket and the controller runs. SIGTERM to the supervisor (kars
 * down) stops the controller, then karsd; the sandboxes keep running and
 * their BPF enforcement stays pinned until they are deleted.
 */
#include "up_cmd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "control_client.h"
#include "deliver.h"
#include "local_supervise.h"

#define STOP_WAIT_S  15.0
#define READY_WAIT_S 30.0

struct service {
	const char *name;
	char *argv[24];
	char pid_file[PATH_MAX + 32];
	char log_file[PATH_MAX + 32];
	pid_t pid;
	double started, next_start;
	unsigned backoff_ms;
};

struct up {
	char dir[PATH_MAX];
	char run[PATH_MAX + 8], logs[PATH_MAX + 8];
	char store[PATH_MAX + 8], policies[PATH_MAX + 16];
	char socket[PATH_MAX + 32];
	char karsd[PATH_MAX], controller[PATH_MAX], router[PATH_MAX];
	const char *pin_dir, *port_base;
	const char *dns, *dns_port; /* the sandboxes' resolver (the controller's flags) */
	struct service svc[2];	    /* karsd, kars-controller: started in this order */
};

void kars_cli_up_usage(FILE *f)
{
	fprintf(f,
		"  up --local [--state-dir DIR] [--foreground] [--pin-dir DIR]\n"
		"     [--router-port-base N] [--dns-resolver IPV4 [--dns-resolver-port N]]\n"
		"                                start karsd and kars-controller (local backend)\n"
		"                                as supervised services; state in DIR (default\n"
		"                                " KARS_LOCAL_STATE_DIR "), logs in DIR/logs\n"
		"  down [--state-dir DIR]        stop them; sandboxes keep running, enforced by\n"
		"                                their pinned programs, until deleted\n"
		"    up, down: exit 0 done, 1 failed, 2 bad usage\n");
}

static void sleep_s(double s)
{
	struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};

	nanosleep(&ts, NULL);
}

static int write_pid(const char *path, pid_t pid)
{
	struct kars_err err = {0};
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d\n", (int)pid);

	return kars_deliver_file(path, buf, (size_t)n, &err) < 0 ? -1 : 0;
}

static pid_t read_pid(const char *path)
{
	int pid = 0;
	FILE *f = fopen(path, "re");

	if (!f)
		return 0;
	if (fscanf(f, "%d", &pid) != 1 || pid <= 1 || kill(pid, 0))
		pid = 0;
	fclose(f);
	return pid;
}

static int start(struct service *s, double now)
{
	int fd = open(s->log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	pid_t pid;

	if (fd < 0)
		return -errno;
	pid = fork();
	if (pid == 0) {
		sigset_t all;

		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(s->argv[0], s->argv);
		fprintf(stderr, "kars up: exec %s: %s\n", s->argv[0], strerror(errno));
		_exit(127);
	}
	close(fd);
	if (pid < 0)
		return -errno;
	s->pid = pid;
	s->started = now;
	write_pid(s->pid_file, pid);
	fprintf(stderr, "kars up: started %s (pid %d)\n", s->name, (int)pid);
	return 0;
}

static void stop(struct service *s)
{
	double t0 = kars_monotonic();
	int st;

	if (!s->pid)
		return;
	kill(s->pid, SIGTERM);
	while (waitpid(s->pid, &st, WNOHANG) == 0) {
		if (kars_monotonic() - t0 > STOP_WAIT_S) {
			kill(s->pid, SIGKILL);
			waitpid(s->pid, &st, 0);
			break;
		}
		sleep_s(0.02);
	}
	fprintf(stderr, "kars up: stopped %s\n", s->name);
	s->pid = 0;
	unlink(s->pid_file);
}

/* The service loop: until SIGTERM or SIGINT. */
static int supervise(struct up *u)
{
	sigset_t set;
	int sig, st;
	pid_t pid;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	for (int i = 0; i < 2; i++)
		u->svc[i].next_start = 0;
	for (;;) {
		double now = kars_monotonic(), next = 3600;
		struct timespec ts;

		while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
			for (int i = 0; i < 2; i++) {
				struct service *s = &u->svc[i];

				if (s->pid != pid)
					continue;
				s->pid = 0;
				unlink(s->pid_file);
				s->backoff_ms = kars_backoff_next(s->backoff_ms, now - s->started);
				s->next_start = now + s->backoff_ms / 1000.0;
				fprintf(
				    stderr, "kars up: %s exited (status %d), restarting in %u ms\n",
				    s->name, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st),
				    s->backoff_ms);
			}
		for (int i = 0; i < 2; i++) {
			struct service *s = &u->svc[i];

			if (s->pid)
				continue;
			if (s->next_start <= now && start(s, now)) {
				s->backoff_ms = kars_backoff_next(s->backoff_ms, 0);
				s->next_start = now + s->backoff_ms / 1000.0;
			}
			if (!s->pid && s->next_start - now < next)
				next = s->next_start - now;
		}
		if (next < 0.01)
			next = 0.01;
		ts.tv_sec = (time_t)next;
		ts.tv_nsec = (long)((next - (double)ts.tv_sec) * 1e9);
		sig = sigtimedwait(&set, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT)
			break;
	}
	stop(&u->svc[1]);
	stop(&u->svc[0]);
	return 0;
}

static bool karsd_ready(const char *socket)
{
	json_t *req = json_pack("{s:s}", "op", "status"), *resp = NULL;
	struct kars_err err = {0};
	int ret = kars_control_call(socket, req, &resp, &err);

	json_decref(req);
	json_decref(resp);
	return ret == 0;
}

static void sibling(char *out, size_t len, const char *name)
{
	ssize_t n = readlink("/proc/self/exe", out, len - 32);

	if (n <= 0 || !memchr(out, '/', (size_t)n)) {
		snprintf(out, len, "%s", name);
		return;
	}
	out[n] = '\0';
	strcpy(strrchr(out, '/') + 1, name);
}

static int layout(struct up *u, const char *dir, const char *socket)
{
	char up_json[PATH_MAX + 32];
	json_t *cfg;
	int ret;

	if (dir[0] != '/') {
		if (!realpath(dir, u->dir) && (kars_mkdir_p(dir) || !realpath(dir, u->dir))) {
			fprintf(stderr, "kars: --state-dir %s: %s\n", dir, strerror(errno));
			return 1;
		}
	} else {
		snprintf(u->dir, sizeof(u->dir), "%s", dir);
	}
	snprintf(u->run, sizeof(u->run), "%s/run", u->dir);
	snprintf(u->logs, sizeof(u->logs), "%s/logs", u->dir);
	snprintf(u->store, sizeof(u->store), "%s/state", u->dir);
	snprintf(u->policies, sizeof(u->policies), "%s/policies", u->dir);
	snprintf(u->socket, sizeof(u->socket), "%s", socket);
	if ((ret = kars_mkdir_p(u->run)) || (ret = kars_mkdir_p(u->logs)) ||
	    (ret = kars_mkdir_p(u->store)) || chmod(u->dir, 0711) || chmod(u->run, 0700) ||
	    chmod(u->logs, 0700) || chmod(u->store, 0700)) {
		fprintf(stderr, "kars: %s: %s\n", u->dir, strerror(ret ? -ret : errno));
		return 1;
	}
	if (strrchr(u->socket, '/')) {
		char sdir[PATH_MAX + 32];

		snprintf(sdir, sizeof(sdir), "%s", u->socket);
		*strrchr(sdir, '/') = '\0';
		if (sdir[0] && kars_mkdir_p(sdir)) {
			fprintf(stderr, "kars: %s: %s\n", sdir, strerror(errno));
			return 1;
		}
	}
	/* What the other verbs need to find the services again. */
	snprintf(up_json, sizeof(up_json), "%s/up.json", u->run);
	cfg =
	    json_pack("{s:s,s:s,s:s}", "stateDir", u->dir, "socket", u->socket, "store", u->store);
	if (!cfg || json_dump_file(cfg, up_json, JSON_SORT_KEYS)) {
		json_decref(cfg);
		fprintf(stderr, "kars: %s: cannot write\n", up_json);
		return 1;
	}
	json_decref(cfg);
	return 0;
}

static void services(struct up *u)
{
	struct service *k = &u->svc[0], *c = &u->svc[1];
	int n = 0;

	sibling(u->karsd, sizeof(u->karsd), "karsd");
	sibling(u->controller, sizeof(u->controller), "kars-controller");
	sibling(u->router, sizeof(u->router), "kars-router");
	k->name = "karsd";
	k->argv[n++] = u->karsd;
	k->argv[n++] = "--socket";
	k->argv[n++] = u->socket;
	/* At BPF LSM enforcement, no agent opens anything of kars state. */
	k->argv[n++] = "--protect";
	k->argv[n++] = u->dir;
	if (u->pin_dir) {
		k->argv[n++] = "--pin-dir";
		k->argv[n++] = (char *)u->pin_dir;
	}
	n = 0;
	c->name = "kars-controller";
	c->argv[n++] = u->controller;
	c->argv[n++] = "--state-dir";
	c->argv[n++] = u->store;
	c->argv[n++] = "--out-dir";
	c->argv[n++] = u->policies;
	c->argv[n++] = "--backend";
	c->argv[n++] = "local";
	c->argv[n++] = "--local-dir";
	c->argv[n++] = u->dir;
	c->argv[n++] = "--karsd-socket";
	c->argv[n++] = u->socket;
	c->argv[n++] = "--router-bin";
	c->argv[n++] = u->router;
	if (u->port_base) {
		c->argv[n++] = "--router-port-base";
		c->argv[n++] = (char *)u->port_base;
	}
	if (u->dns) {
		c->argv[n++] = "--dns-resolver";
		c->argv[n++] = (char *)u->dns;
	}
	if (u->dns_port) {
		c->argv[n++] = "--dns-resolver-port";
		c->argv[n++] = (char *)u->dns_port;
	}
	for (int i = 0; i < 2; i++) {
		snprintf(u->svc[i].pid_file, sizeof(u->svc[i].pid_file), "%s/%s.pid", u->run,
			 u->svc[i].name);
		snprintf(u->svc[i].log_file, sizeof(u->svc[i].log_file), "%s/%s.log", u->logs,
			 u->svc[i].name);
	}
}

/* The detached supervisor: grandchild of the caller, its own session. */
static pid_t daemonize(struct up *u, const char *pid_file)
{
	char log[PATH_MAX + 40];
	int p[2], fd, st;
	pid_t pid, d = 0;

	if (pipe2(p, O_CLOEXEC))
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		close(p[0]);
		setsid();
		d = fork();
		if (d != 0) {
			if (write(p[1], &d, sizeof(d)) != sizeof(d))
				_exit(1);
			_exit(d < 0);
		}
		close(p[1]);
		snprintf(log, sizeof(log), "%s/up.log", u->logs);
		fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		dup2(fd, 0);
		dup2(fd, 1);
		fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		dup2(fd, 2);
		if (chdir("/"))
			_exit(1);
		write_pid(pid_file, getpid());
		supervise(u);
		unlink(pid_file);
		_exit(0);
	}
	close(p[1]);
	waitpid(pid, &st, 0);
	if (read(p[0], &d, sizeof(d)) != sizeof(d))
		d = -1;
	close(p[0]);
	return d;
}

/* --dns-resolver IPV4 and --dns-resolver-port 1..65535, checked here: the
 * controller would refuse them, and be restarted again and again. */
static bool bad_resolver(const struct up *u)
{
	struct in_addr a;
	char *end;
	unsigned long port;

	if (u->dns && inet_pton(AF_INET, u->dns, &a) != 1) {
		fprintf(stderr, "kars: up: --dns-resolver: \"%s\" is not an IPv4 address\n",
			u->dns);
		return true;
	}
	if (!u->dns_port)
		return false;
	errno = 0;
	port = strtoul(u->dns_port, &end, 10);
	if (!u->dns || errno || *end || !*u->dns_port || !port || port > 65535) {
		fprintf(stderr, "kars: up: --dns-resolver-port: \"%s\" %s\n", u->dns_port,
			u->dns ? "is not a port (1-65535)" : "needs --dns-resolver");
		return true;
	}
	return false;
}

int kars_cli_up(const char *socket_path, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"local", no_argument, NULL, 'l'},
	    {"state-dir", required_argument, NULL, 's'},
	    {"foreground", no_argument, NULL, 'f'},
	    {"pin-dir", required_argument, NULL, 'p'},
	    {"router-port-base", required_argument, NULL, 'P'},
	    {"dns-resolver", required_argument, NULL, 'r'},
	    {"dns-resolver-port", required_argument, NULL, 'R'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *dir = getenv("KARS_LOCAL_DIR") ?: KARS_LOCAL_STATE_DIR;
	bool local = false, fg = false;
	char pid_file[PATH_MAX + 32];
	struct up *u = calloc(1, sizeof(*u));
	pid_t pid;
	int opt, ret = 1;

	if (!u)
		return 1;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			local = true;
			break;
		case 's':
			dir = optarg;
			break;
		case 'f':
			fg = true;
			break;
		case 'p':
			u->pin_dir = optarg;
			break;
		case 'P':
			u->port_base = optarg;
			break;
		case 'r':
			u->dns = optarg;
			break;
		case 'R':
			u->dns_port = optarg;
			break;
		case 'h':
			kars_cli_up_usage(stdout);
			ret = 0;
			goto out;
		default:
			kars_cli_up_usage(stderr);
			ret = 2;
			goto out;
		}
	}
	if (optind != argc || !local) {
		fprintf(stderr, "kars: up: %s\n",
			optind != argc ? "unexpected argument"
				       : "--local is required (the only backend implemented: "
					 "processes on this host)");
		ret = 2;
		goto out;
	}
	if (bad_resolver(u)) {
		ret = 2;
		goto out;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "kars: up: must run as root (karsd loads BPF programs, the "
				"sandboxes get their own UIDs and cgroups)\n");
		goto out;
	}
	if (layout(u, dir, socket_path))
		goto out;
	services(u);
	snprintf(pid_file, sizeof(pid_file), "%s/up.pid", u->run);
	if ((pid = read_pid(pid_file))) {
		fprintf(stderr, "kars: up: already up in %s (pid %d); kars down first\n", u->dir,
			(int)pid);
		goto out;
	}
	if (fg) {
		write_pid(pid_file, getpid());
		ret = supervise(u);
		unlink(pid_file);
		goto out;
	}
	pid = daemonize(u, pid_file);
	if (pid <= 0) {
		fprintf(stderr, "kars: up: could not start the supervisor: %s\n", strerror(errno));
		goto out;
	}
	for (double t0 = kars_monotonic(); kars_monotonic() - t0 < READY_WAIT_S; sleep_s(0.1)) {
		if (kill(pid, 0)) {
			fprintf(stderr, "kars: up: the supervisor exited; see %s/up.log\n",
				u->logs);
			goto out;
		}
		if (karsd_ready(u->socket) && read_pid(u->svc[1].pid_file)) {
			printf("kars is up: state %s, karsd %s, logs %s\n", u->dir, u->socket,
			       u->logs);
			ret = 0;
			goto out;
		}
	}
	fprintf(stderr, "kars: up: karsd did not answer on %s in %.0f s; see %s/karsd.log\n",
		u->socket, READY_WAIT_S, u->logs);
	kill(pid, SIGTERM);
out:
	free(u);
	return ret;
}

int kars_cli_down(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"state-dir", required_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *dir = getenv("KARS_LOCAL_DIR") ?: KARS_LOCAL_STATE_DIR;
	char pid_file[PATH_MAX + 32];
	int opt;
	pid_t pid;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			dir = optarg;
			break;
		case 'h':
			kars_cli_up_usage(stdout);
			return 0;
		default:
			kars_cli_up_usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "kars: down: unexpected argument \"%s\"\n", argv[optind]);
		return 2;
	}
	snprintf(pid_file, sizeof(pid_file), "%s/run/up.pid", dir);
	pid = read_pid(pid_file);
	if (!pid) {
		printf("kars is not up in %s\n", dir);
		return 0;
	}
	kill(pid, SIGTERM);
	for (double t0 = kars_monotonic(); !kill(pid, 0); sleep_s(0.05))
		if (kars_monotonic() - t0 > 2 * STOP_WAIT_S + 5) {
			fprintf(stderr, "kars: down: supervisor %d did not stop\n", (int)pid);
			return 1;
		}
	printf("kars is down; sandboxes keep running, enforced by their pinned programs, "
	       "until deleted\n");
	return 0;
}
