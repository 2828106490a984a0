/* test_lsm.c - the BPF LSM backstop (bpf/lsm.bpf.c) as karsd installs it.
 *
 * Each rule is checked three ways: it blocks what it should in the sandbox,
 * the sandbox's ordinary work still goes through, and the same call outside
 * any sandbox is unchanged (the control). Where karsd enforces at level
 * "no-lsm" (this development kernel refuses LSM programs) the rule tests
 * skip with karsd's reason, and lsm_enforcement_reported checks that the
 * reason is reported rather than hidden. make vmtest runs them on a kernel
 * with BPF LSM active.
 */
#include <dirent.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <bpf/bpf.h>
#include <sched.h>
#include <signal.h>
#include <linux/netlink.h>
#include <linux/vm_sockets.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cgroup_helpers.h"
#include "harness.h"
#include "karsd_proc.h"
#include "net_helpers.h"

#define KST_LSM_PROGRAMS 9 /* the programs of bpf/lsm.bpf.c */

#ifndef AF_ALG
#define AF_ALG 38
#endif

/* Skips the test unless karsd enforces at level full (fails it instead
 * under --expect-lsm); true when it does. */
static bool need_full(void)
{
	char why[512];

	if (kst_lsm_full(why, sizeof(why)))
		return true;
	if (kst_expect_lsm()) {
		kst_note("%s", why);
		ASSERT_TRUE(false, "--expect-lsm: karsd enforces at level full");
	} else {
		kst_skip("%s", why);
	}
	return false;
}

static int try_socket(int family, int type, int proto)
{
	int fd = socket(family, type | SOCK_CLOEXEC, proto);

	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

static int count_lsm_pins(void)
{
	char dir[PATH_MAX];
	struct dirent *e;
	int n = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/lsm", kst_karsd_pin_dir());
	d = opendir(dir);
	if (!d)
		return -errno;
	while ((e = readdir(d)))
		if (strncmp(e->d_name, "kars_lsm_", 9) == 0)
			n += strstr(e->d_name, "_new") ? 100 : 1; /* a leftover fails the count */
	closedir(d);
	return n;
}

/* status and metrics say the level; below full, a reason is given. */
KST_TEST(lsm_enforcement_reported)
{
	json_t *req = json_pack("{s:s}", "op", "status"), *resp = NULL, *mreq = NULL, *mresp = NULL;
	const char *level, *text;
	char err[256], line[96];

	if (!ASSERT_OK(kst_call(req, &resp, err, sizeof(err)), "status"))
		goto cleanup;
	level = kst_json_str(resp, "enforcement");
	if (!ASSERT_OK_PTR(level, "status.enforcement"))
		goto cleanup;
	mreq = json_pack("{s:s}", "op", "metrics");
	if (!ASSERT_OK(kst_call(mreq, &mresp, err, sizeof(err)), "metrics"))
		goto cleanup;
	text = kst_json_str(mresp, "text");
	snprintf(line, sizeof(line), "kars_enforcement_level{level=\"%s\"} 1", level);
	ASSERT_STRSTR(text, line, "metrics carry the same level");
	if (kst_expect_lsm())
		ASSERT_STREQ(level, "full", "--expect-lsm: level full");
	if (strcmp(level, "full") == 0) {
		ASSERT_EQ(json_array_size(json_object_get(resp, "openGaps")), 0, "no open gaps");
		ASSERT_EQ(kst_json_int(json_object_get(resp, "lsm"), "programs", -1),
			  KST_LSM_PROGRAMS, "status.lsm.programs");
		ASSERT_EQ(count_lsm_pins(), KST_LSM_PROGRAMS, "one pinned link per program");
		snprintf(line, sizeof(line), "kars_lsm_programs %d", KST_LSM_PROGRAMS);
		ASSERT_STRSTR(text, line, "metrics: programs attached");
	} else {
		json_t *gap = json_array_get(json_object_get(resp, "openGaps"), 0);

		ASSERT_STREQ(level, "no-lsm", "level");
		if (ASSERT_TRUE(json_is_string(gap), "an open gap is reported")) {
			ASSERT_STRSTR(json_string_value(gap), "AF_PACKET", "it names what is open");
			kst_note("karsd reports no-lsm: %s", json_string_value(gap));
		}
		ASSERT_EQ(kst_json_int(json_object_get(resp, "lsm"), "programs", -1), 0,
			  "status.lsm.programs");
		ASSERT_STRSTR(text, "kars_lsm_programs 0", "metrics: no programs");
	}
cleanup:
	json_decref(req);
	json_decref(resp);
	json_decref(mreq);
	json_decref(mresp);
}

struct family_case {
	int family, type, proto;
	const char *what;
	int agent, router; /* expected errno in each role (root) */
};

static const struct family_case families[] = {
    {AF_PACKET, SOCK_RAW, 0x0300 /* htons(ETH_P_ALL) */, "AF_PACKET SOCK_RAW", EPERM, EPERM},
    {AF_PACKET, SOCK_DGRAM, 0x0008 /* htons(ETH_P_IP) */, "AF_PACKET SOCK_DGRAM", EPERM, EPERM},
    {AF_VSOCK, SOCK_STREAM, 0, "AF_VSOCK SOCK_STREAM", EPERM, EPERM},
    {AF_NETLINK, SOCK_RAW, NETLINK_SOCK_DIAG, "NETLINK_SOCK_DIAG", EPERM, 0},
    {AF_NETLINK, SOCK_RAW, NETLINK_AUDIT, "NETLINK_AUDIT", EPERM, EPERM},
    {AF_NETLINK, SOCK_RAW, NETLINK_GENERIC, "NETLINK_GENERIC", EPERM, EPERM},
    {AF_NETLINK, SOCK_RAW, NETLINK_KOBJECT_UEVENT, "NETLINK_KOBJECT_UEVENT", EPERM, EPERM},
    {AF_ALG, SOCK_SEQPACKET, 0, "AF_ALG", EPERM, EPERM},
    {AF_INET, SOCK_RAW, IPPROTO_UDP, "AF_INET SOCK_RAW", EPERM, EPERM},
    {AF_NETLINK, SOCK_RAW, NETLINK_ROUTE, "NETLINK_ROUTE", 0, 0},
    {AF_UNIX, SOCK_STREAM, 0, "AF_UNIX SOCK_STREAM", 0, 0},
    {AF_UNIX, SOCK_DGRAM, 0, "AF_UNIX SOCK_DGRAM", 0, 0},
    {AF_INET, SOCK_STREAM, 0, "AF_INET SOCK_STREAM", 0, 0},
    {AF_INET6, SOCK_DGRAM, 0, "AF_INET6 SOCK_DGRAM", 0, 0},
};
#define N_FAMILIES (sizeof(families) / sizeof(families[0]))

enum which { AGENT, ROUTER, CONTROL, AGENT_SUBCGROUP };

static int open_families(struct kst_env *env, void *arg)
{
	enum which w = *(const enum which *)arg;
	static const char *const who[] = {"agent", "router", "outside", "agent sub-cgroup"};

	for (size_t i = 0; i < N_FAMILIES; i++) {
		const struct family_case *c = &families[i];
		int want = w == AGENT || w == AGENT_SUBCGROUP ? c->agent
			   : w == ROUTER		      ? c->router
							      : 0;
		int got;
		char tag[128];

		/* Below the agent's cgroup, sock_create refuses every inet
		 * socket (no policy there: fail closed); the rest is ours. */
		if (w == AGENT_SUBCGROUP && (c->family == AF_INET || c->family == AF_INET6))
			continue;
		got = try_socket(c->family, c->type, c->proto);

		/* Outside, a family this kernel lacks is no verdict of ours. */
		if (w == CONTROL && got == EAFNOSUPPORT)
			continue;
		snprintf(tag, sizeof(tag), "%s (root): socket(%s)", who[w], c->what);
		ASSERT_ERRNO(got, want, tag);
	}
	return 0;
}

static bool match_lsm_create(const json_t *ev, const void *arg)
{
	const char *hook = kst_json_str(ev, "hook"), *reason = kst_json_str(ev, "reason");

	return hook && reason && !strcmp(hook, "lsm_socket_create") &&
	       !strcmp(reason, "socket_family");
}

/* socket_create: packet, vsock, netlink other than route (and sock_diag for
 * the router), AF_ALG, raw IP: EPERM to root in either role, with an event;
 * the families ordinary work needs open; root outside gets every one. A
 * cgroup below the agent's is in the sandbox too (ancestry). */
KST_TEST(lsm_socket_create_veto)
{
	static const enum which agent = AGENT, router = ROUTER, control = CONTROL,
				sub_agent = AGENT_SUBCGROUP;
	char sub[PATH_MAX];
	json_t *ev;
	int evfd = -1;
	pid_t pid;

	if (!need_full() || !ASSERT_OK(kst_apply_default(env), "apply"))
		return;
	evfd = kst_events_open();
	if (!ASSERT_GE(evfd, 0, "subscribe"))
		return;
	kst_track_fd(env, evfd);
	ASSERT_OK(kst_run(env, KST_OUTSIDE, KST_ROOT, open_families, (void *)&control), "control");
	ASSERT_OK(kst_run(env, KST_AGENT, KST_ROOT, open_families, (void *)&agent), "agent");
	ASSERT_OK(kst_run(env, KST_ROUTER, KST_ROOT, open_families, (void *)&router), "router");
	ev = kst_events_find(evfd, match_lsm_create, NULL, 5000);
	if (ASSERT_OK_PTR(ev, "lsm_socket_create event")) {
		ASSERT_STREQ(kst_json_str(ev, "verdict"), "deny", "verdict");
		ASSERT_STREQ(kst_json_str(ev, "sandbox"), env->sandbox, "sandbox");
	}
	json_decref(ev);
	/* Ancestry: a cgroup created below the agent's. (Its inet sockets are
	 * refused by sock_create, fail closed; the LSM refuses the rest.) */
	if (!ASSERT_OK(kst_cgroup_create(env, "agent/sub", sub, sizeof(sub)), "sub-cgroup"))
		return;
	pid = kst_spawn_cg(env, sub, KST_ROOT, "kst-sub", open_families, (void *)&sub_agent);
	if (ASSERT_GT(pid, 0, "spawn in the sub-cgroup"))
		ASSERT_OK(kst_wait(env, pid, 20000), "sub-cgroup");
}

/* --- AF_UNIX ------------------------------------------------------------------ */

struct unix_sock_spec {
	int type;
	char name[108]; /* a path, or an abstract name after a leading '@' */
	int fd;
};

static socklen_t unix_addr(const char *name, struct sockaddr_un *sun)
{
	size_t n = strlen(name);

	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, name, n);
	if (name[0] == '@')
		sun->sun_path[0] = '\0';
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
}

/* Binds (and for streams listens) a unix socket; world-connectable. */
static int make_unix(void *arg)
{
	struct unix_sock_spec *u = arg;
	struct sockaddr_un sun;
	socklen_t len = unix_addr(u->name, &sun);

	u->fd = socket(AF_UNIX, u->type | SOCK_CLOEXEC, 0);
	if (u->fd < 0)
		return -errno;
	if (bind(u->fd, (struct sockaddr *)&sun, len) ||
	    (u->type == SOCK_STREAM && listen(u->fd, 16)))
		return -errno;
	if (u->name[0] != '@' && chmod(u->name, 0777))
		return -errno;
	return 0;
}

/* make_unix in the test's network namespace (abstract names are per netns,
 * and the workloads live there). */
static int make_unix_in_netns(struct kst_env *env, struct unix_sock_spec *u)
{
	char path[PATH_MAX];
	int self, target, ret;

	snprintf(path, sizeof(path), "/run/netns/%s", env->netns);
	self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	target = open(path, O_RDONLY | O_CLOEXEC);
	if (self < 0 || target < 0 || setns(target, CLONE_NEWNET)) {
		ret = -errno;
		goto out;
	}
	ret = make_unix(u);
	if (setns(self, CLONE_NEWNET) && !ret)
		ret = -errno;
out:
	if (self >= 0)
		close(self);
	if (target >= 0)
		close(target);
	return ret;
}

static int unix_try(int type, const char *name)
{
	struct sockaddr_un sun;
	socklen_t len = unix_addr(name, &sun);
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0), ret = 0;

	if (fd < 0)
		return errno;
	if (type == SOCK_STREAM) {
		if (connect(fd, (struct sockaddr *)&sun, len))
			ret = errno;
	} else if (sendto(fd, "x", 1, 0, (struct sockaddr *)&sun, len) < 0) {
		ret = errno;
	}
	close(fd);
	return ret;
}

struct unix_world {
	struct unix_sock_spec out_stream, out_abstract, out_dgram;
	struct unix_sock_spec agent_stream, agent_dgram, router_stream;
};

static int agent_unix(struct kst_env *env, void *arg)
{
	const struct unix_world *w = arg;
	int sp[2];
	char c;

	ASSERT_ERRNO(unix_try(SOCK_STREAM, w->out_stream.name), EPERM,
		     "agent: connect to a host listener (path)");
	ASSERT_ERRNO(unix_try(SOCK_STREAM, w->out_abstract.name), EPERM,
		     "agent: connect to a host listener (abstract)");
	ASSERT_ERRNO(unix_try(SOCK_DGRAM, w->out_dgram.name), EPERM,
		     "agent: sendto a host datagram socket");
	ASSERT_ERRNO(unix_try(SOCK_STREAM, kst_karsd_socket()), EPERM,
		     "agent: connect to karsd's control socket");
	ASSERT_ERRNO(unix_try(SOCK_STREAM, w->agent_stream.name), 0,
		     "agent: connect to a listener of its own cgroup");
	ASSERT_ERRNO(unix_try(SOCK_DGRAM, w->agent_dgram.name), 0,
		     "agent: sendto a datagram socket of its own cgroup");
	ASSERT_ERRNO(unix_try(SOCK_STREAM, w->router_stream.name), 0,
		     "agent: connect to its router's listener (same sandbox)");
	if (ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) ? -errno : 0,
		      "agent: socketpair")) {
		ASSERT_ERRNO(write(sp[0], "y", 1) == 1 ? 0 : errno, 0, "agent: socketpair write");
		ASSERT_ERRNO(read(sp[1], &c, 1) == 1 ? 0 : errno, 0, "agent: socketpair read");
		close(sp[0]);
		close(sp[1]);
	}
	return 0;
}

static int others_unix(struct kst_env *env, void *arg)
{
	const struct unix_world *w = arg;

	ASSERT_ERRNO(unix_try(SOCK_STREAM, w->out_stream.name), 0, "connect to the host (path)");
	ASSERT_ERRNO(unix_try(SOCK_STREAM, w->out_abstract.name), 0,
		     "connect to the host (abstract)");
	ASSERT_ERRNO(unix_try(SOCK_DGRAM, w->out_dgram.name), 0, "sendto the host");
	ASSERT_ERRNO(unix_try(SOCK_STREAM, kst_karsd_socket()), 0,
		     "connect to karsd's control socket");
	ASSERT_ERRNO(unix_try(SOCK_STREAM, w->agent_stream.name), 0, "connect to the agent's");
	return 0;
}

static void unix_close(struct unix_sock_spec *u)
{
	if (u->fd >= 0)
		close(u->fd);
	if (u->name[0] && u->name[0] != '@')
		unlink(u->name);
}

/* An agent reaches AF_UNIX peers of its own sandbox only: a host daemon's
 * socket (path or abstract, stream or datagram; karsd's) is EPERM, its own and its
 * router's listeners work. The router (kars' own code, which talks to
 * karsd) and processes outside the sandbox are unchanged. */
KST_TEST(lsm_unix_peers)
{
	struct unix_world w;
	struct unix_sock_spec *all[] = {&w.out_stream,	 &w.out_abstract, &w.out_dgram,
					&w.agent_stream, &w.agent_dgram,  &w.router_stream};
	char dir[64];

	memset(&w, 0, sizeof(w));
	for (size_t i = 0; i < 6; i++)
		all[i]->fd = -1;
	if (!need_full() || !ASSERT_OK(kst_apply_default(env), "apply"))
		return;
	snprintf(dir, sizeof(dir), "/tmp/kst-lsm-%d-%d", (int)getpid(), env->num);
	if (!ASSERT_OK(mkdir(dir, 0777) || chmod(dir, 0777) ? -errno : 0, "mkdir"))
		return;
	w.out_stream.type = w.out_abstract.type = SOCK_STREAM;
	w.agent_stream.type = w.router_stream.type = SOCK_STREAM;
	w.out_dgram.type = w.agent_dgram.type = SOCK_DGRAM;
	snprintf(w.out_stream.name, sizeof(w.out_stream.name), "%s/host.sock", dir);
	snprintf(w.out_abstract.name, sizeof(w.out_abstract.name), "@kst-lsm-%d-%d", (int)getpid(),
		 env->num);
	snprintf(w.out_dgram.name, sizeof(w.out_dgram.name), "%s/host.dgram", dir);
	snprintf(w.agent_stream.name, sizeof(w.agent_stream.name), "%s/agent.sock", dir);
	snprintf(w.agent_dgram.name, sizeof(w.agent_dgram.name), "%s/agent.dgram", dir);
	snprintf(w.router_stream.name, sizeof(w.router_stream.name), "%s/router.sock", dir);
	if (!ASSERT_OK(make_unix(&w.out_stream), "host listener") ||
	    !ASSERT_OK(make_unix_in_netns(env, &w.out_abstract), "host abstract listener") ||
	    !ASSERT_OK(make_unix(&w.out_dgram), "host datagram socket") ||
	    !ASSERT_OK(kst_in_cgroup(env->cg_agent, make_unix, &w.agent_stream),
		       "listener born in the agent cgroup") ||
	    !ASSERT_OK(kst_in_cgroup(env->cg_agent, make_unix, &w.agent_dgram),
		       "datagram socket born in the agent cgroup") ||
	    !ASSERT_OK(kst_in_cgroup(env->cg_router, make_unix, &w.router_stream),
		       "listener born in the router cgroup"))
		goto cleanup;
	ASSERT_OK(kst_run(env, KST_AGENT, KST_AGENT_UID, agent_unix, &w), "agent");
	ASSERT_OK(kst_run(env, KST_OUTSIDE, KST_AGENT_UID, others_unix, &w), "control: outside");
	ASSERT_OK(kst_run(env, KST_ROUTER, KST_ROUTER_UID, others_unix, &w), "router");
cleanup:
	for (size_t i = 0; i < 6; i++)
		unix_close(all[i]);
	rmdir(dir);
}

/* --- sockets passed in ----------------------------------------------------------- */

struct passed {
	int packet;	 /* AF_PACKET, created outside */
	int netlink;	 /* NETLINK_ROUTE, created outside */
	int unix_stream; /* connected to a host listener, created outside */
	int want;	 /* EPERM in the agent, 0 (or not EPERM) outside */
};

static int use_passed(struct kst_env *env, void *arg)
{
	const struct passed *p = arg;
	struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP)};
	struct nlmsghdr noop = {.nlmsg_len = sizeof(noop), .nlmsg_type = NLMSG_NOOP};
	char buf[64];
	int got;

	/* ifindex 0: outside the sandbox the kernel says ENXIO and nothing is
	 * sent; in the agent the LSM answers first. */
	got = sendto(p->packet, "x", 1, 0, (struct sockaddr *)&sll, sizeof(sll)) < 0 ? errno : 0;
	if (p->want == EPERM)
		ASSERT_ERRNO(got, EPERM, "agent: sendto on a passed-in AF_PACKET socket");
	else
		ASSERT_TRUE(got != EPERM, "outside: the same sendto is no EPERM");
	ASSERT_ERRNO(write(p->unix_stream, "z", 1) == 1 ? 0 : errno, p->want,
		     p->want ? "agent: write on a passed-in unix socket to the host"
			     : "outside: the same write");
	/* A netlink family the agent may create, but this socket is not its
	 * own: the cgroup programs never judged it. NLMSG_NOOP asks nothing. */
	ASSERT_ERRNO(send(p->netlink, &noop, sizeof(noop), 0) == sizeof(noop) ? 0 : errno, p->want,
		     p->want ? "agent: send on a passed-in NETLINK_ROUTE socket"
			     : "outside: the same send");
	/* Reading is refused too: nothing to sniff on a passed-in socket. */
	got = recv(p->packet, buf, sizeof(buf), MSG_DONTWAIT) < 0 ? errno : 0;
	if (p->want == EPERM)
		ASSERT_ERRNO(got, EPERM, "agent: recv on a passed-in AF_PACKET socket");
	else
		ASSERT_TRUE(got != EPERM, "outside: the same recv is no EPERM");
	got = recv(p->unix_stream, buf, sizeof(buf), MSG_DONTWAIT) < 0 ? errno : 0;
	if (p->want == EPERM)
		ASSERT_ERRNO(got, EPERM, "agent: recv on a passed-in unix socket to the host");
	else
		ASSERT_TRUE(got != EPERM, "outside: the same recv is no EPERM");
	return 0;
}

/* Sockets created outside the sandbox and inherited by (or passed to) the
 * agent are unusable there: socket_sendmsg judges the calling task. (The
 * inet case is fd_outside_socket_passed_in.) */
KST_TEST(lsm_passed_in_sockets)
{
	struct unix_sock_spec host = {.type = SOCK_STREAM, .fd = -1};
	struct passed p = {.packet = -1, .netlink = -1, .unix_stream = -1};
	struct sockaddr_un sun;
	socklen_t len;

	if (!need_full() || !ASSERT_OK(kst_apply_default(env), "apply"))
		return;
	snprintf(host.name, sizeof(host.name), "/tmp/kst-lsm-%d-%d.sock", (int)getpid(), env->num);
	len = unix_addr(host.name, &sun);
	p.packet = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_IP));
	p.netlink = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	p.unix_stream = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (!ASSERT_OK_FD(p.packet, "packet socket") || !ASSERT_OK_FD(p.netlink, "netlink") ||
	    !ASSERT_OK_FD(p.unix_stream, "unix") || !ASSERT_OK(make_unix(&host), "host listener") ||
	    !ASSERT_OK(connect(p.unix_stream, (struct sockaddr *)&sun, len) ? -errno : 0,
		       "connect to the host listener"))
		goto cleanup;
	p.want = EPERM;
	ASSERT_OK(kst_run(env, KST_AGENT, KST_AGENT_UID, use_passed, &p), "agent");
	p.want = 0;
	ASSERT_OK(kst_run(env, KST_OUTSIDE, KST_AGENT_UID, use_passed, &p), "control: outside");
cleanup:
	if (p.packet >= 0)
		close(p.packet);
	if (p.netlink >= 0)
		close(p.netlink);
	if (p.unix_stream >= 0)
		close(p.unix_stream);
	unix_close(&host);
}

/* --- protected files ------------------------------------------------------------- */

struct files {
	char secret[PATH_MAX + 16]; /* <protected>/secret */
	char protected[PATH_MAX];   /* the directory karsd --protect names */
	char bind_secret[96];	    /* the same file through a bind mount */
	char ordinary[96];	    /* a world-readable file elsewhere */
	char work[64];		    /* a world-writable directory for ordinary work */
	int want;		    /* EACCES for the agent, 0 for everyone else */
};

static int try_open(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC);

	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

static int open_files(struct kst_env *env, void *arg)
{
	const struct files *f = arg;
	char path[PATH_MAX + 32], buf[16] = {};
	int fd;

	ASSERT_ERRNO(try_open(f->secret, O_RDONLY), f->want, "open the protected file");
	ASSERT_ERRNO(try_open(f->protected, O_RDONLY | O_DIRECTORY), f->want,
		     "open the protected directory");
	ASSERT_ERRNO(try_open(f->bind_secret, O_RDONLY), f->want,
		     "open the protected file through a bind mount elsewhere");
	ASSERT_ERRNO(try_open(f->ordinary, O_RDONLY), 0, "open an ordinary file");
	/* Ordinary work: create, write, read back, remove. */
	snprintf(path, sizeof(path), "%s/%d", f->work, (int)getpid());
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (ASSERT_OK_FD(fd, "create a file in a work directory")) {
		ASSERT_EQ(write(fd, "work", 4), 4, "write it");
		ASSERT_EQ(pread(fd, buf, 4, 0), 4, "read it back");
		ASSERT_STREQ(buf, "work", "contents");
		close(fd);
		ASSERT_OK(unlink(path) ? -errno : 0, "remove it");
	}
	return 0;
}

/* Root (CAP_FOWNER: fs.protected_hardlinks does not stop it) tries to make
 * a path to the secret that passes no protected inode: a hard link, or the
 * file moved out, into the work directory. */
static int link_files(struct kst_env *env, void *arg)
{
	const struct files *f = arg;
	char alias[PATH_MAX + 32];

	snprintf(alias, sizeof(alias), "%s/alias-%d", f->work, (int)getpid());
	ASSERT_ERRNO(link(f->secret, alias) ? errno : 0, f->want,
		     "hard link to the protected file");
	if (f->want == 0)
		unlink(alias);
	else
		ASSERT_ERRNO(try_open(alias, O_RDONLY), ENOENT, "no alias was made");
	if (f->want) {
		/* Moving it out is refused the same; outside, nobody moves it. */
		ASSERT_ERRNO(rename(f->secret, alias) ? errno : 0, f->want,
			     "rename the protected file out");
		ASSERT_ERRNO(try_open(alias, O_RDONLY), ENOENT, "it did not move");
	}
	return 0;
}

static bool match_file_event(const json_t *ev, const void *arg)
{
	const char *hook = kst_json_str(ev, "hook"), *reason = kst_json_str(ev, "reason");

	return hook && reason && !strcmp(hook, "lsm_file_open") &&
	       !strcmp(reason, "protected_file");
}

static bool match_link_event(const json_t *ev, const void *arg)
{
	const char *hook = kst_json_str(ev, "hook");

	return hook && !strcmp(hook, "lsm_file_link");
}

/* file_open: the agent cannot open what karsd --protect names (the
 * directory, anything below it, and the same inodes through a bind mount);
 * it still opens and writes ordinary files. The router (which must read its
 * credentials) and processes outside the sandbox open the same file. Root in
 * the agent cgroup cannot hard-link the file elsewhere or move it out (a
 * path past the protected directory); root outside can link it. */
KST_TEST(lsm_protected_files)
{
	struct files f = {};
	char bind_dir[64];
	bool mounted = false;
	json_t *ev;
	int evfd, fd;

	if (!need_full() || !ASSERT_OK(kst_apply_default(env), "apply"))
		return;
	evfd = kst_events_open();
	if (!ASSERT_GE(evfd, 0, "subscribe"))
		return;
	kst_track_fd(env, evfd);
	snprintf(f.protected, sizeof(f.protected), "%s", kst_karsd_protected_dir());
	snprintf(f.secret, sizeof(f.secret), "%s/secret", f.protected);
	snprintf(bind_dir, sizeof(bind_dir), "/tmp/kst-lsm-bind-%d-%d", (int)getpid(), env->num);
	snprintf(f.bind_secret, sizeof(f.bind_secret), "%s/secret", bind_dir);
	snprintf(f.work, sizeof(f.work), "/tmp/kst-lsm-work-%d-%d", (int)getpid(), env->num);
	snprintf(f.ordinary, sizeof(f.ordinary), "%s/ordinary", f.work);
	if (!ASSERT_OK(mkdir(bind_dir, 0755) ? -errno : 0, "mkdir bind target") ||
	    !ASSERT_OK(mount(f.protected, bind_dir, NULL, MS_BIND, NULL) ? -errno : 0,
		       "bind-mount the protected directory (the 'mount mistake')"))
		goto cleanup;
	mounted = true;
	if (!ASSERT_OK(mkdir(f.work, 0777) || chmod(f.work, 0777) ? -errno : 0, "work dir"))
		goto cleanup;
	fd = open(f.ordinary, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (!ASSERT_OK_FD(fd, "ordinary file"))
		goto cleanup;
	close(fd);

	f.want = EACCES;
	ASSERT_OK(kst_run(env, KST_AGENT, KST_AGENT_UID, open_files, &f), "agent");
	ev = kst_events_find(evfd, match_file_event, NULL, 5000);
	if (ASSERT_OK_PTR(ev, "lsm_file_open event"))
		ASSERT_STREQ(kst_json_str(ev, "role"), "agent", "role");
	json_decref(ev);
	f.want = EACCES;
	ASSERT_OK(kst_run(env, KST_AGENT, KST_ROOT, link_files, &f), "agent root: link, rename");
	ev = kst_events_find(evfd, match_link_event, NULL, 5000);
	ASSERT_OK_PTR(ev, "lsm_file_link event");
	json_decref(ev);
	f.want = 0;
	ASSERT_OK(kst_run(env, KST_ROUTER, KST_ROUTER_UID, open_files, &f), "router");
	ASSERT_OK(kst_run(env, KST_OUTSIDE, KST_AGENT_UID, open_files, &f), "control: outside");
	ASSERT_OK(kst_run(env, KST_OUTSIDE, KST_ROOT, link_files, &f),
		  "control: root outside links");
cleanup:
	if (mounted)
		umount2(bind_dir, MNT_DETACH);
	rmdir(bind_dir);
	unlink(f.ordinary);
	rmdir(f.work);
}

/* --- karsd restarts --------------------------------------------------------------- */

static int packet_refused(struct kst_env *env, void *arg)
{
	ASSERT_ERRNO(try_socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL)), EPERM, (const char *)arg);
	return 0;
}

/* Attached LSM links whose program uses this run's kars_cgroups map: the
 * links of this karsd's pin dir, whoever else runs kars on the node. */
static int count_our_lsm_links(void)
{
	char path[PATH_MAX];
	struct bpf_map_info minfo = {};
	__u32 len = sizeof(minfo), id = 0;
	int map_fd, n = 0;

	snprintf(path, sizeof(path), "%s/maps/kars_cgroups", kst_karsd_pin_dir());
	map_fd = bpf_obj_get(path);
	if (map_fd < 0)
		return -errno;
	if (bpf_obj_get_info_by_fd(map_fd, &minfo, &len)) {
		close(map_fd);
		return -errno;
	}
	close(map_fd);
	while (bpf_link_get_next_id(id, &id) == 0) {
		struct bpf_link_info linfo = {};
		struct bpf_prog_info pinfo = {};
		__u32 map_ids[16], llen = sizeof(linfo), plen = sizeof(pinfo);
		int lfd = bpf_link_get_fd_by_id(id), pfd;

		if (lfd < 0)
			continue;
		if (bpf_obj_get_info_by_fd(lfd, &linfo, &llen) ||
		    linfo.type != BPF_LINK_TYPE_TRACING) {
			close(lfd);
			continue;
		}
		close(lfd);
		pfd = bpf_prog_get_fd_by_id(linfo.prog_id);
		if (pfd < 0)
			continue;
		pinfo.nr_map_ids = 16;
		pinfo.map_ids = (__u64)(unsigned long)map_ids;
		if (bpf_obj_get_info_by_fd(pfd, &pinfo, &plen) == 0 &&
		    pinfo.type == BPF_PROG_TYPE_LSM)
			for (__u32 i = 0; i < pinfo.nr_map_ids && i < 16; i++)
				n += map_ids[i] == minfo.id;
		close(pfd);
	}
	return n;
}

/* The LSM links are pinned: SIGKILL leaves them enforcing, and a restarted
 * karsd puts its programs in their place without a gap or a second copy. */
KST_TEST(lsm_karsd_restart_keeps_programs)
{
	json_t *req = json_pack("{s:s}", "op", "status"), *resp = NULL;
	char err[256];

	if (!need_full() || !ASSERT_OK(kst_apply_default(env), "apply"))
		goto cleanup;
	ASSERT_OK(kst_run(env, KST_AGENT, KST_ROOT, packet_refused, "karsd up"), "before");
	if (!ASSERT_OK(kst_karsd_kill(SIGKILL), "kill -9 karsd"))
		goto cleanup;
	ASSERT_OK(kst_run(env, KST_AGENT, KST_ROOT, packet_refused, "karsd dead"), "karsd dead");
	ASSERT_EQ(count_lsm_pins(), KST_LSM_PROGRAMS, "pins while karsd is dead");
	ASSERT_EQ(count_our_lsm_links(), KST_LSM_PROGRAMS, "links while karsd is dead");
	if (!ASSERT_OK(kst_karsd_start(), "restart karsd")) {
		kst_karsd_print_log_tail(20);
		goto cleanup;
	}
	ASSERT_OK(kst_run(env, KST_AGENT, KST_ROOT, packet_refused, "karsd restarted"), "after");
	ASSERT_EQ(count_lsm_pins(), KST_LSM_PROGRAMS, "one pin per program after the restart");
	ASSERT_EQ(count_our_lsm_links(), KST_LSM_PROGRAMS,
		  "one attached link per program: the old ones detached");
	if (ASSERT_OK(kst_call(req, &resp, err, sizeof(err)), "status")) {
		ASSERT_STREQ(kst_json_str(resp, "enforcement"), "full", "still full");
		ASSERT_EQ(kst_json_int(json_object_get(resp, "lsm"), "programs", -1),
			  KST_LSM_PROGRAMS, "programs attached by the new karsd");
	}
cleanup:
	json_decref(req);
	json_decref(resp);
}
