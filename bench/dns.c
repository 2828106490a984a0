/* dns.c - the measuring half of `make bench-dns` (bench/dns.sh drives it).
 *
 *   dns gen N FILE                 a deterministic N-name blocklist (domainswild)
 *   dns query --server IP:PORT --seconds S [--window W] [--cgroup DIR]
 *             [--netns NAME] [--uid UID]
 *                                  DNS queries/s against a real resolver, from a
 *                                  process in that cgroup, netns and UID
 *   dns lookups --link PIN [--repeat N]
 *                                  runs the attached DNS check (the program behind
 *                                  the pinned link) on a query packet with
 *                                  BPF_PROG_TEST_RUN: names judged per second, and
 *                                  the same program on a non-DNS packet as baseline
 *
 * Each figure is one line "bench: <metric>=<value>" or "<key>=<value>" for the
 * script to combine.
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* A query for name (A, IN, RD) into out; returns its length. */
static size_t dns_message(uint8_t *out, const char *name, uint16_t id)
{
	size_t n = 12, start = 0, len = strlen(name);

	memset(out, 0, 12);
	out[0] = (uint8_t)(id >> 8);
	out[1] = (uint8_t)id;
	out[2] = 0x01; /* RD */
	out[5] = 1;    /* one question */
	for (size_t i = 0; i <= len; i++) {
		if (name[i] != '.' && name[i] != '\0')
			continue;
		out[n++] = (uint8_t)(i - start);
		memcpy(out + n, name + start, i - start);
		n += i - start;
		start = i + 1;
	}
	out[n++] = 0;
	memcpy(out + n, "\x00\x01\x00\x01", 4);
	return n + 4;
}

struct frame {
	uint8_t buf[1600];
	size_t len;
};

/* Ethernet + IPv4 + UDP to 192.0.2.53:dport around payload (checksums 0). */
static struct frame udp4_frame(const uint8_t *payload, size_t len, uint16_t dport)
{
	struct frame f = {0};
	uint8_t *ip = f.buf + 14, *u = ip + 20;

	f.buf[12] = 0x08;
	ip[0] = 0x45;
	ip[2] = (uint8_t)((28 + len) >> 8);
	ip[3] = (uint8_t)(28 + len);
	ip[8] = 64;
	ip[9] = 17;
	memcpy(ip + 12, "\x0a\x00\x00\x01\xc0\x00\x02\x35", 8);
	u[0] = 0x9c, u[1] = 0x40;
	u[2] = (uint8_t)(dport >> 8);
	u[3] = (uint8_t)dport;
	u[4] = (uint8_t)((8 + len) >> 8);
	u[5] = (uint8_t)(8 + len);
	memcpy(u + 8, payload, len);
	f.len = 14 + 28 + len;
	return f;
}

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static int gen(long n, const char *path)
{
	static const char *const words[] = {"ads",   "track",  "cdn", "metrics", "pixel",
					    "stats", "beacon", "tag", "collect", "click"};
	static const char *const tlds[] = {"com", "net", "org", "io", "xyz", "info", "top", "de"};
	FILE *f = fopen(path, "w");
	uint64_t s = 42;

	if (!f) {
		perror(path);
		return 1;
	}
	fprintf(f, "# kars bench-dns: %ld generated names (seed 42), domainswild format\n", n);
	for (long i = 0; i < n; i++) {
		uint64_t r = splitmix(&s);

		fprintf(f, "%s%s%lx.%s.%s\n", i % 2 ? "*." : "", words[r % 10],
			(unsigned long)(r >> 20), i % 3 ? "example" : words[(r >> 8) % 10],
			tlds[(r >> 4) % 8]);
	}
	if (fclose(f)) {
		perror(path);
		return 1;
	}
	return 0;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int enter(const char *cgroup, const char *netns, int uid)
{
	char path[4096];
	int fd;

	if (cgroup) {
		FILE *f;

		snprintf(path, sizeof(path), "%s/cgroup.procs", cgroup);
		f = fopen(path, "w");
		if (!f || fprintf(f, "%d\n", getpid()) < 0 || fclose(f)) {
			perror(path);
			return -1;
		}
	}
	if (netns) {
		snprintf(path, sizeof(path), "/run/netns/%s", netns);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, CLONE_NEWNET)) {
			perror(path);
			return -1;
		}
		close(fd);
	}
	if (uid >= 0 && (setgid((gid_t)uid) || setuid((uid_t)uid))) {
		perror("setuid");
		return -1;
	}
	return 0;
}

/* Keeps window queries outstanding on one unconnected socket (sendto, as a
 * stub resolver with several servers does) for seconds; counts answers. */
static int query(const char *server, double seconds, int window)
{
	char ip[64];
	const char *colon = strrchr(server, ':');
	struct sockaddr_in sa = {.sin_family = AF_INET};
	uint8_t msg[600], buf[1500];
	long sent = 0, answered = 0, errors = 0;
	int fd, inflight = 0;
	double t0, end;

	if (!colon || (size_t)(colon - server) >= sizeof(ip)) {
		fprintf(stderr, "dns: --server IP:PORT\n");
		return 2;
	}
	memcpy(ip, server, (size_t)(colon - server));
	ip[colon - server] = '\0';
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1) {
		fprintf(stderr, "dns: bad address %s\n", ip);
		return 2;
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("socket");
		return 1;
	}
	t0 = now();
	end = t0 + seconds;
	while (now() < end) {
		struct pollfd p = {.fd = fd, .events = POLLIN};

		while (inflight < window) {
			char name[64];
			size_t len;

			snprintf(name, sizeof(name), "q%ld.allowed.test", sent % 1000);
			len = dns_message(msg, name, (uint16_t)sent);
			if (sendto(fd, msg, len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
				errors++;
				break;
			}
			sent++;
			inflight++;
		}
		if (poll(&p, 1, 100) <= 0) {
			inflight = 0; /* lost: start a new window */
			continue;
		}
		while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0) {
			answered++;
			if (inflight > 0)
				inflight--;
		}
	}
	printf("qps=%.0f\nsent=%ld\nerrors=%ld\n", (double)answered / (now() - t0), sent, errors);
	close(fd);
	return errors ? 1 : 0;
}

static int run_prog(int prog_fd, const struct frame *p, int repeat, double *ns)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = p->buf, .data_size_in = (__u32)p->len,
		    .repeat = repeat);

	if (bpf_prog_test_run_opts(prog_fd, &opts)) {
		perror("BPF_PROG_TEST_RUN");
		return -1;
	}
	*ns = opts.duration;
	return (int)opts.retval;
}

static int lookups(const char *link_pin, int repeat)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);
	uint8_t msg[600];
	struct frame q = udp4_frame(msg, dns_message(msg, "www.some-site.example.org", 1), 53);
	struct frame other = udp4_frame(msg, 32, 1234);
	int link_fd = bpf_obj_get(link_pin), prog_fd, v;
	double ns_q, ns_o;

	if (link_fd < 0 || bpf_obj_get_info_by_fd(link_fd, &info, &len)) {
		perror(link_pin);
		return 1;
	}
	prog_fd = bpf_prog_get_fd_by_id(info.prog_id);
	if (prog_fd < 0) {
		perror("program of the link");
		return 1;
	}
	v = run_prog(prog_fd, &q, repeat, &ns_q);
	if (v != 1 || run_prog(prog_fd, &other, repeat, &ns_o) != 1) {
		fprintf(stderr, "dns: unexpected verdict %d on an allowed query\n", v);
		return 1;
	}
	/* One name, four suffixes looked up (org, example.org, ...). */
	printf("lookups_ns=%.1f\nbaseline_ns=%.1f\n", ns_q, ns_o);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"server", required_argument, NULL, 's'},
	    {"seconds", required_argument, NULL, 't'},
	    {"window", required_argument, NULL, 'w'},
	    {"cgroup", required_argument, NULL, 'c'},
	    {"netns", required_argument, NULL, 'n'},
	    {"uid", required_argument, NULL, 'u'},
	    {"link", required_argument, NULL, 'l'},
	    {"repeat", required_argument, NULL, 'r'},
	    {NULL, 0, NULL, 0},
	};
	const char *server = NULL, *cgroup = NULL, *netns = NULL, *link = NULL;
	double seconds = 3;
	int window = 16, uid = -1, repeat = 1000000, opt;

	if (argc >= 4 && strcmp(argv[1], "gen") == 0)
		return gen(atol(argv[2]), argv[3]);
	if (argc < 2)
		goto usage;
	optind = 2;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			server = optarg;
			break;
		case 't':
			seconds = atof(optarg);
			break;
		case 'w':
			window = atoi(optarg);
			break;
		case 'c':
			cgroup = optarg;
			break;
		case 'n':
			netns = optarg;
			break;
		case 'u':
			uid = atoi(optarg);
			break;
		case 'l':
			link = optarg;
			break;
		case 'r':
			repeat = atoi(optarg);
			break;
		default:
			goto usage;
		}
	}
	if (strcmp(argv[1], "query") == 0 && server) {
		if (enter(cgroup, netns, uid))
			return 1;
		return query(server, seconds, window > 0 ? window : 1);
	}
	if (strcmp(argv[1], "lookups") == 0 && link)
		return lookups(link, repeat);
usage:
	fprintf(stderr, "usage: dns gen N FILE | dns query --server IP:PORT [...] | dns lookups "
			"--link PIN [--repeat N]\n");
	return 2;
}
