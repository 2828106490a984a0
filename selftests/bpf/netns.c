/* netns.c - see netns.h. */
#include "netns.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static const char *const addrs4[] = {
    KST_REMOTE4, KST_REMOTE4_B, KST_RESOLVER4, KST_NET_B ".7", KST_NET_B ".200",
};
static const char *const addrs6[] = {KST_REMOTE6, "2001:db8::2", KST_RESOLVER6};

int kst_sys(const char *fmt, ...)
{
	char cmd[1024], full[1100];
	va_list ap;
	int ret;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	snprintf(full, sizeof(full), "%s%s", cmd, kst_verbose() ? "" : " >/dev/null 2>&1");
	kst_log("sys: %s", cmd);
	fflush(stdout);
	ret = system(full);
	if (ret == -1)
		return -1;
	if (WIFEXITED(ret))
		return WEXITSTATUS(ret);
	return -1;
}

int kst_netns_enter(const char *name)
{
	char path[128];
	int fd, ret = 0;

	snprintf(path, sizeof(path), "/run/netns/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (setns(fd, CLONE_NEWNET))
		ret = -errno;
	close(fd);
	return ret;
}

int kst_netns_sysctl(const char *name, const char *path, const char *value)
{
	pid_t pid;
	int status;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		char full[256];
		int fd;

		if (kst_netns_enter(name))
			_exit(1);
		snprintf(full, sizeof(full), "/proc/sys/%s", path);
		fd = open(full, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			_exit(2);
		if (write(fd, value, strlen(value)) != (ssize_t)strlen(value))
			_exit(3);
		_exit(0);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

/* IPv6 addresses are usable once no longer tentative (nodad skips DAD, but
 * an address still waits for its link to come up). Bounded wait. */
static int wait_ipv6_ready(const char *ns)
{
	uint64_t deadline = kst_now_ms() + 5000;
	char cmd[128], line[256];

	snprintf(cmd, sizeof(cmd), "ip -n %s -6 addr show tentative 2>/dev/null", ns);
	while (kst_now_ms() < deadline) {
		bool tentative = false;
		FILE *f = popen(cmd, "r");

		if (!f)
			return -errno;
		while (fgets(line, sizeof(line), f))
			tentative |= strstr(line, "inet6") != NULL;
		pclose(f);
		if (!tentative)
			return 0;
		kst_msleep(10);
	}
	return -ETIMEDOUT;
}

int kst_netns_create(struct kst_env *env)
{
	const char *ns = env->netns;
	FILE *batch;
	char cmd[256];
	int ret;

	if (kst_sys("ip netns add %s", ns))
		return -EIO;
	/* One `ip -batch` for the rest: a handful of commands, one process. */
	snprintf(cmd, sizeof(cmd), "ip -n %s -batch -%s", ns,
		 kst_verbose() ? "" : " >/dev/null 2>&1");
	fflush(stdout);
	batch = popen(cmd, "w");
	if (!batch)
		return -errno;
	fprintf(batch, "link set lo up\n");
	fprintf(batch, "link add kst0 type veth peer name kst1\n");
	fprintf(batch, "link set kst0 up\n");
	fprintf(batch, "link set kst1 up\n");
	for (size_t i = 0; i < sizeof(addrs4) / sizeof(addrs4[0]); i++)
		fprintf(batch, "addr add %s/24 dev kst0\n", addrs4[i]);
	for (size_t i = 0; i < sizeof(addrs6) / sizeof(addrs6[0]); i++)
		fprintf(batch, "addr add %s/64 dev kst0 nodad\n", addrs6[i]);
	ret = pclose(batch);
	if (ret == -1 || !WIFEXITED(ret) || WEXITSTATUS(ret))
		return -EIO;
	ret = wait_ipv6_ready(ns);
	if (ret)
		return ret;
	/* Ping sockets for the agent's and the router's groups (test_raw_packet.c). */
	return kst_netns_sysctl(ns, "net/ipv4/ping_group_range", "1000 1001");
}

void kst_netns_destroy(struct kst_env *env)
{
	if (env->netns[0])
		kst_sys("ip netns del %s", env->netns);
}
