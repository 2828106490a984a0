/* connect.c - connect() rate benchmark for the kars data plane.
 *
 * One binary, six commands, driven by bench/connect.sh:
 *
 *   run    the measurement: a tight loop of socket() + SO_LINGER{1,0} +
 *          connect() + close() to a TCP peer. Optionally first moves itself
 *          into a cgroup, into a network namespace, onto one CPU, and drops to
 *          a UID (in that order: the cgroup write needs root, and a socket
 *          belongs to the cgroup of the task that creates it). A fixed number
 *          of warm-up connects, then N rounds of a fixed number of connects,
 *          each timed alone; prints every round's rate and their median.
 *   serve  the peer: accepts and closes, forever, in a given netns.
 *   probe  one connect that must be allowed or denied (EPERM from a BPF hook,
 *          or no answer because a firewall dropped the SYN): proves that the
 *          configuration being measured is really in the path.
 *   apply  sends karsd an `apply` with a router role and N exact TCP rules,
 *          the peer among them (docs/karsd-api.md).
 *   remove sends karsd a `remove`.
 *   metrics prints karsd's Prometheus text (verdict counters, map sizes).
 *
 * Why SO_LINGER {1, 0}: close() then aborts the connection with a RST instead
 * of a FIN handshake, so neither side keeps a TIME_WAIT socket. At tens of
 * thousands of connects a second, TIME_WAIT would exhaust the 28k ephemeral
 * ports of one (source, destination) pair within a second; tcp_tw_reuse does
 * not help (it needs TCP timestamps to advance, 1 s at least). The setsockopt
 * is part of the timed loop in every configuration alike.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "control_client.h"
#include "err.h"

#define MAX_ROUNDS 64

struct opts {
	const char *peer;
	const char *cgroup;
	const char *netns;
	const char *socket;
	const char *sandbox;
	const char *expect;
	long uid;
	long cpu;
	long iters;
	long warmup;
	long rounds;
	long rules;
	long timeout_ms;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: connect run   --peer IP:PORT [--iters N] [--warmup N] [--rounds N]\n"
		   "                     [--cgroup DIR] [--netns PATH] [--uid UID] [--cpu N]\n"
		   "       connect serve --peer IP:PORT [--netns PATH] [--cpu N]\n"
		   "       connect probe --peer IP:PORT --expect allow|deny [--timeout-ms N]\n"
		   "                     [--cgroup DIR] [--netns PATH] [--uid UID]\n"
		   "       connect apply --socket PATH --sandbox NS/NAME --cgroup DIR --uid UID\n"
		   "                     --peer IP:PORT --rules N\n"
		   "       connect remove --socket PATH --sandbox NS/NAME\n"
		   "       connect metrics --socket PATH\n"
		   "\n"
		   "run prints one line: rate=<median connects/s> iters=N rounds=<r1,r2,...>\n"
		   "(serve: IP:PORT is where to listen; apply: the peer is one of the N rules,\n"
		   "the others are distinct addresses of 198.18.0.0/15, port 443)\n");
}

/* Prints what failed and why; returns 1, the exit status of a failed step. */
static int fail(const char *what, int e)
{
	fprintf(stderr, "connect: %s: %s\n", what, strerror(e));
	return 1;
}

static int parse_long(const char *name, const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		fprintf(stderr, "connect: --%s: expected an integer in [%ld, %ld], got '%s'\n",
			name, min, max, s);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

/* "192.0.2.1:7000", "[2001:db8::1]:7000" or "2001:db8::1:7000" (last colon). */
static int parse_peer(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = s ? strrchr(s, ':') : NULL;
	size_t hlen;
	long port;

	if (!colon || colon == s)
		goto bad;
	hlen = (size_t)(colon - s);
	if (s[0] == '[' && hlen >= 2 && s[hlen - 1] == ']') {
		s++;
		hlen -= 2;
	}
	if (hlen >= sizeof(host))
		goto bad;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (parse_long("peer", colon + 1, 1, 65535, &port))
		return -EINVAL;
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		*len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*sin6);
		return 0;
	}
bad:
	fprintf(stderr, "connect: --peer: expected IP:PORT, got '%s'\n", s ? s : "(none)");
	return -EINVAL;
}

/* cgroup, then netns, then CPU, then UID: each step needs the privileges the
 * next one drops. */
static int enter(const struct opts *o)
{
	char path[4096], pid[32];
	int fd, n;

	if (o->cgroup) {
		snprintf(path, sizeof(path), "%s/cgroup.procs", o->cgroup);
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return fail(path, errno);
		n = snprintf(pid, sizeof(pid), "%d\n", getpid());
		if (write(fd, pid, (size_t)n) != n) {
			int e = errno;

			close(fd);
			return fail(path, e);
		}
		close(fd);
	}
	if (o->netns) {
		fd = open(o->netns, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return fail(o->netns, errno);
		if (setns(fd, CLONE_NEWNET)) {
			int e = errno;

			close(fd);
			return fail("setns", e);
		}
		close(fd);
	}
	if (o->cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET((int)o->cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set))
			return fail("sched_setaffinity", errno);
	}
	if (o->uid >= 0) {
		uid_t uid = (uid_t)o->uid;

		/* gid = uid: the benchmark UID needs no passwd entry. */
		if (setgroups(0, NULL) || setresgid(uid, uid, uid) || setresuid(uid, uid, uid))
			return fail("dropping to --uid", errno);
	}
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const struct linger abort_on_close = {.l_onoff = 1, .l_linger = 0};

static int connect_loop(const struct sockaddr_storage *ss, socklen_t len, long n)
{
	for (long i = 0; i < n; i++) {
		int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0)
			return fail("socket", errno);
		if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_on_close,
			       sizeof(abort_on_close))) {
			int e = errno;

			close(fd);
			return fail("setsockopt(SO_LINGER)", e);
		}
		if (connect(fd, (const struct sockaddr *)ss, len)) {
			int e = errno;

			close(fd);
			fprintf(stderr, "connect: connect #%ld failed\n", i);
			return fail("connect", e);
		}
		close(fd);
	}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int cmd_run(const struct opts *o)
{
	double rate[MAX_ROUNDS], sorted[MAX_ROUNDS], median;
	struct sockaddr_storage ss;
	socklen_t len;

	if (parse_peer(o->peer, &ss, &len))
		return 2;
	if (enter(o))
		return 1;
	if (connect_loop(&ss, len, o->warmup))
		return 1;
	for (long r = 0; r < o->rounds; r++) {
		double t0 = now_s(), t;

		if (connect_loop(&ss, len, o->iters))
			return 1;
		t = now_s() - t0;
		rate[r] = (double)o->iters / t;
	}
	memcpy(sorted, rate, sizeof(double) * (size_t)o->rounds);
	qsort(sorted, (size_t)o->rounds, sizeof(double), cmp_double);
	if (o->rounds % 2)
		median = sorted[o->rounds / 2];
	else
		median = (sorted[o->rounds / 2 - 1] + sorted[o->rounds / 2]) / 2;
	printf("rate=%.0f iters=%ld rounds=", median, o->iters);
	for (long r = 0; r < o->rounds; r++)
		printf("%s%.0f", r ? "," : "", rate[r]);
	printf("\n");
	return 0;
}

static int cmd_serve(const struct opts *o)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1, fd;

	if (parse_peer(o->peer, &ss, &len))
		return 2;
	if (enter(o))
		return 1;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail("socket", errno);
	/* No SO_LINGER here: were the peer to abort first, its RST could reach
	 * the client between the handshake and the return of connect(), which
	 * then fails with ECONNRESET. A plain close() sends a FIN at worst, and
	 * the client's RST ends the connection on both sides: no TIME_WAIT. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)))
		return fail("setsockopt(SO_REUSEADDR)", errno);
	if (bind(fd, (struct sockaddr *)&ss, len))
		return fail("bind", errno);
	if (listen(fd, 4096))
		return fail("listen", errno);
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);

		if (c >= 0) {
			close(c);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE ||
		    errno == ENOBUFS || errno == ENOMEM)
			continue;
		return fail("accept", errno);
	}
}

/* One non-blocking connect: "allow" means the peer answered (connected or
 * refused), "deny" means EPERM at connect() or no answer within the timeout. */
static int cmd_probe(const struct opts *o)
{
	struct pollfd pfd = {.events = POLLOUT};
	struct sockaddr_storage ss;
	const char *seen;
	socklen_t len, elen = sizeof(int);
	bool allowed;
	int fd, e = 0;

	if (!o->expect || (strcmp(o->expect, "allow") && strcmp(o->expect, "deny"))) {
		fprintf(stderr, "connect: --expect: expected allow or deny\n");
		return 2;
	}
	if (parse_peer(o->peer, &ss, &len))
		return 2;
	if (enter(o))
		return 1;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return fail("socket", errno);
	pfd.fd = fd;
	if (connect(fd, (struct sockaddr *)&ss, len) == 0) {
		e = 0;
	} else if (errno != EINPROGRESS) {
		e = errno;
	} else if (poll(&pfd, 1, (int)o->timeout_ms) == 0) {
		e = ETIMEDOUT;
	} else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen)) {
		e = errno;
	}
	close(fd);
	switch (e) {
	case 0:
		seen = "connected";
		allowed = true;
		break;
	case ECONNREFUSED:
		seen = "refused by the peer";
		allowed = true;
		break;
	case EPERM:
		seen = "EPERM at connect()";
		allowed = false;
		break;
	case ETIMEDOUT:
		seen = "no answer (dropped)";
		allowed = false;
		break;
	default:
		fprintf(stderr, "connect: probe %s: unexpected %s\n", o->peer, strerror(e));
		return 1;
	}
	if (allowed != !strcmp(o->expect, "allow")) {
		fprintf(stderr, "connect: probe %s: expected %s, got %s\n", o->peer, o->expect,
			seen);
		return 1;
	}
	printf("probe %s: %s (%s, as expected)\n", o->peer, seen, allowed ? "allowed" : "denied");
	return 0;
}

static json_t *rule(const char *ip, long port)
{
	return json_pack("{s:s, s:I, s:s}", "ip", ip, "port", (json_int_t)port, "protocol", "tcp");
}

static int call(const char *socket_path, json_t *req, const char *what)
{
	struct kars_err err = {};
	json_t *resp = NULL;
	int ret;

	ret = kars_control_call(socket_path, req, &resp, &err);
	if (ret) {
		fprintf(stderr, "connect: %s: %s\n", what, err.msg);
		json_decref(resp);
		return 1;
	}
	printf("%s: generation=%lld\n", what,
	       (long long)json_integer_value(json_object_get(resp, "generation")));
	json_decref(resp);
	return 0;
}

static int cmd_apply(const struct opts *o)
{
	struct sockaddr_storage ss;
	char peer_ip[INET6_ADDRSTRLEN], ip[INET_ADDRSTRLEN];
	json_t *req, *rules;
	socklen_t len;
	double t0;
	long port;
	int ret;

	if (!o->socket || !o->sandbox || !o->cgroup || o->uid < 0 || o->rules < 1) {
		fprintf(stderr, "connect: apply needs --socket, --sandbox, --cgroup, --uid, "
				"--peer and --rules\n");
		return 2;
	}
	if (parse_peer(o->peer, &ss, &len))
		return 2;
	if (ss.ss_family == AF_INET) {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, peer_ip,
			  sizeof(peer_ip));
		port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	} else {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, peer_ip,
			  sizeof(peer_ip));
		port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	rules = json_array();
	/* Distinct filler destinations in 198.18.0.0/15 (131072 addresses):
	 * the peer is the last rule, and never one of them. */
	for (long i = 0; rules && i < o->rules - 1; i++) {
		unsigned int n = (unsigned int)i;

		snprintf(ip, sizeof(ip), "198.%u.%u.%u", 18 + ((n >> 16) & 1), (n >> 8) & 255,
			 n & 255);
		if (json_array_append_new(rules, rule(ip, 443)))
			goto nomem;
	}
	if (!rules || json_array_append_new(rules, rule(peer_ip, port)))
		goto nomem;
	req = json_pack("{s:s, s:s, s:s, s:{s:s, s:I}, s:o}", "op", "apply", "sandbox", o->sandbox,
			"mode", "strict", "router", "cgroup", o->cgroup, "uid", (json_int_t)o->uid,
			"rules", rules);
	if (!req)
		goto nomem;
	t0 = now_s();
	ret = call(o->socket, req, "apply");
	if (!ret)
		printf("apply: %ld rules in %.0f ms\n", o->rules, (now_s() - t0) * 1e3);
	json_decref(req);
	return ret;
nomem:
	json_decref(rules);
	return fail("building the apply request", ENOMEM);
}

static int cmd_remove(const struct opts *o)
{
	json_t *req;
	int ret;

	if (!o->socket || !o->sandbox) {
		fprintf(stderr, "connect: remove needs --socket and --sandbox\n");
		return 2;
	}
	req = json_pack("{s:s, s:s}", "op", "remove", "sandbox", o->sandbox);
	if (!req)
		return fail("building the remove request", ENOMEM);
	ret = call(o->socket, req, "remove");
	json_decref(req);
	return ret;
}

static int cmd_metrics(const struct opts *o)
{
	struct kars_err err = {};
	json_t *req, *resp = NULL;
	const char *text;
	int ret;

	if (!o->socket) {
		fprintf(stderr, "connect: metrics needs --socket\n");
		return 2;
	}
	req = json_pack("{s:s}", "op", "metrics");
	if (!req)
		return fail("building the metrics request", ENOMEM);
	ret = kars_control_call(o->socket, req, &resp, &err);
	json_decref(req);
	text = json_string_value(json_object_get(resp, "text"));
	if (ret || !text) {
		fprintf(stderr, "connect: metrics: %s\n",
			ret ? err.msg : "no text in the response");
		json_decref(resp);
		return 1;
	}
	fputs(text, stdout);
	json_decref(resp);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"peer", required_argument, NULL, 'p'},
	    {"cgroup", required_argument, NULL, 'c'},
	    {"netns", required_argument, NULL, 'n'},
	    {"uid", required_argument, NULL, 'u'},
	    {"cpu", required_argument, NULL, 'C'},
	    {"iters", required_argument, NULL, 'i'},
	    {"warmup", required_argument, NULL, 'w'},
	    {"rounds", required_argument, NULL, 'r'},
	    {"socket", required_argument, NULL, 's'},
	    {"sandbox", required_argument, NULL, 'S'},
	    {"rules", required_argument, NULL, 'R'},
	    {"expect", required_argument, NULL, 'e'},
	    {"timeout-ms", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {},
	};
	struct opts o = {
	    .uid = -1,
	    .cpu = -1,
	    .iters = 20000,
	    .warmup = 2000,
	    .rounds = 5,
	    .timeout_ms = 300,
	};
	const char *cmd;
	int c, bad = 0;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	cmd = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			o.peer = optarg;
			break;
		case 'c':
			o.cgroup = optarg;
			break;
		case 'n':
			o.netns = optarg;
			break;
		case 's':
			o.socket = optarg;
			break;
		case 'S':
			o.sandbox = optarg;
			break;
		case 'e':
			o.expect = optarg;
			break;
		case 'u':
			bad |= parse_long("uid", optarg, 0, 0xfffffffeL, &o.uid);
			break;
		case 'C':
			bad |= parse_long("cpu", optarg, 0, CPU_SETSIZE - 1, &o.cpu);
			break;
		case 'i':
			bad |= parse_long("iters", optarg, 1, 1000000000L, &o.iters);
			break;
		case 'w':
			bad |= parse_long("warmup", optarg, 0, 1000000000L, &o.warmup);
			break;
		case 'r':
			bad |= parse_long("rounds", optarg, 1, MAX_ROUNDS, &o.rounds);
			break;
		case 'R':
			bad |= parse_long("rules", optarg, 1, 131072, &o.rules);
			break;
		case 't':
			bad |= parse_long("timeout-ms", optarg, 1, 60000, &o.timeout_ms);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			bad = 1;
		}
	}
	if (bad || optind != argc) {
		usage(stderr);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(cmd, "run"))
		return cmd_run(&o);
	if (!strcmp(cmd, "serve"))
		return cmd_serve(&o);
	if (!strcmp(cmd, "probe"))
		return cmd_probe(&o);
	if (!strcmp(cmd, "apply"))
		return cmd_apply(&o);
	if (!strcmp(cmd, "remove"))
		return cmd_remove(&o);
	if (!strcmp(cmd, "metrics"))
		return cmd_metrics(&o);
	fprintf(stderr, "connect: unknown command '%s'\n", cmd);
	usage(stderr);
	return 2;
}
