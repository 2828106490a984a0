/* karsd_proc.c - see karsd_proc.h. */
#include "karsd_proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "control_client.h"
#include "harness.h"

static struct {
	char bin[PATH_MAX];
	char run_dir[PATH_MAX];
	char socket[PATH_MAX];
	char pin_dir[PATH_MAX];
	char log[PATH_MAX];
	char protected_dir[PATH_MAX];
	const char *socket_cgroup; /* karsd --socket-cgroup, or NULL for its default */
	pid_t pid;
} kd;

const char *kst_karsd_socket(void)
{
	return kd.socket;
}

const char *kst_karsd_pin_dir(void)
{
	return kd.pin_dir;
}

const char *kst_karsd_log(void)
{
	return kd.log;
}

pid_t kst_karsd_pid(void)
{
	return kd.pid;
}

void kst_karsd_set_socket_cgroup(const char *mode)
{
	kd.socket_cgroup = mode;
}

const char *kst_karsd_socket_cgroup(void)
{
	return kd.socket_cgroup ? kd.socket_cgroup : "auto";
}

static int write_secret(const char *dir)
{
	char path[PATH_MAX + 16];
	FILE *f;

	snprintf(path, sizeof(path), "%s/secret", dir);
	f = fopen(path, "we");
	if (!f)
		return -errno;
	fputs("router credential\n", f);
	if (fclose(f))
		return -errno;
	return chmod(path, 0644) ? -errno : 0;
}

int kst_karsd_setup(const char *bin)
{
	if (!realpath(bin, kd.bin))
		return -errno;
	if (access(kd.bin, X_OK))
		return -errno;
	snprintf(kd.run_dir, sizeof(kd.run_dir), "/tmp/kars-selftest-%d", (int)getpid());
	kst_fmt(kd.socket, sizeof(kd.socket), "%s/karsd.sock", kd.run_dir);
	kst_fmt(kd.log, sizeof(kd.log), "%s/karsd.log", kd.run_dir);
	snprintf(kd.pin_dir, sizeof(kd.pin_dir), "/sys/fs/bpf/kars-selftest-%d", (int)getpid());
	/* 0755: the router UID must reach the socket (orig_dst). */
	if (mkdir(kd.run_dir, 0755) && errno != EEXIST)
		return -errno;
	chmod(kd.run_dir, 0755);
	/* What karsd --protect guards (test_lsm.c): a world-readable file, so
	 * only the LSM can keep the agent out. */
	kst_fmt(kd.protected_dir, sizeof(kd.protected_dir), "%s/protected", kd.run_dir);
	if (mkdir(kd.protected_dir, 0755) && errno != EEXIST)
		return -errno;
	return write_secret(kd.protected_dir);
}

const char *kst_karsd_protected_dir(void)
{
	return kd.protected_dir;
}

bool kst_lsm_full(char *why, size_t len)
{
	json_t *req = json_pack("{s:s}", "op", "status"), *resp = NULL, *gaps;
	char err[256];
	bool full = false;

	snprintf(why, len, "karsd status failed");
	if (kst_call(req, &resp, err, sizeof(err)) == 0) {
		const char *level = kst_json_str(resp, "enforcement");

		full = level && strcmp(level, "full") == 0;
		gaps = json_object_get(resp, "openGaps");
		const char *gap = json_string_value(json_array_get(gaps, 0));

		/* The reason, without the list of what it leaves open. */
		snprintf(why, len, "enforcement %s: %.*s", level ? level : "?",
			 gap ? (int)(strstr(gap, ": AF_PACKET") ? strstr(gap, ": AF_PACKET") - gap
								: (long)strlen(gap))
			     : 0,
			 gap ? gap : "");
	}
	json_decref(req);
	json_decref(resp);
	return full;
}

bool kst_karsd_running(void)
{
	int status;

	if (kd.pid <= 0)
		return false;
	if (waitpid(kd.pid, &status, WNOHANG) == kd.pid) {
		kst_note("karsd (pid %d) exited with %s %d", (int)kd.pid,
			 WIFEXITED(status) ? "status" : "signal",
			 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		kd.pid = 0;
		return false;
	}
	return true;
}

int kst_karsd_start(void)
{
	uint64_t deadline;
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int fd = open(kd.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		/* karsd dies with the runner, never outlives a crashed run. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		execl(kd.bin, kd.bin, "--socket", kd.socket, "--pin-dir", kd.pin_dir, "--log-level",
		      "debug", "--socket-cgroup", kd.socket_cgroup ? kd.socket_cgroup : "auto",
		      "--protect", kd.protected_dir, (char *)NULL);
		fprintf(stderr, "exec %s: %s\n", kd.bin, strerror(errno));
		_exit(127);
	}
	kd.pid = pid;
	/* Ready when the socket answers; bounded, and given up as soon as
	 * karsd exits. */
	deadline = kst_now_ms() + 15000;
	while (kst_now_ms() < deadline) {
		json_t *req = json_pack("{s:s}", "op", "status"), *resp = NULL;
		char err[256];
		int ret = kst_call(req, &resp, err, sizeof(err));

		json_decref(req);
		json_decref(resp);
		if (ret == 0 || ret == -EPROTO)
			return 0;
		if (!kst_karsd_running())
			return -ECHILD;
		kst_msleep(20);
	}
	kst_karsd_kill(SIGKILL);
	return -ETIMEDOUT;
}

int kst_karsd_kill(int sig)
{
	uint64_t deadline = kst_now_ms() + 10000;
	int status;

	if (kd.pid <= 0)
		return -ESRCH;
	if (kill(kd.pid, sig))
		return -errno;
	while (kst_now_ms() < deadline) {
		pid_t r = waitpid(kd.pid, &status, WNOHANG);

		if (r == kd.pid || (r < 0 && errno == ECHILD)) {
			kd.pid = 0;
			return 0;
		}
		kst_msleep(10);
	}
	kill(kd.pid, SIGKILL);
	waitpid(kd.pid, &status, 0);
	kd.pid = 0;
	return -ETIMEDOUT;
}

/* rm -r for bpffs pins: unlink files, rmdir directories. */
static void remove_tree(const char *path)
{
	struct dirent *de;
	DIR *d = opendir(path);

	if (!d) {
		unlink(path);
		return;
	}
	while ((de = readdir(d))) {
		char child[PATH_MAX];

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(child, sizeof(child), "%s/%s", path, de->d_name);
		if (de->d_type == DT_DIR)
			remove_tree(child);
		else
			unlink(child);
	}
	closedir(d);
	rmdir(path);
}

void kst_karsd_teardown(bool keep_log)
{
	if (kd.pid > 0)
		kst_karsd_kill(SIGTERM);
	if (kd.pin_dir[0])
		remove_tree(kd.pin_dir);
	if (!kd.run_dir[0])
		return;
	unlink(kd.socket);
	if (kd.protected_dir[0])
		remove_tree(kd.protected_dir);
	if (!keep_log) {
		unlink(kd.log);
		rmdir(kd.run_dir);
	}
}

void kst_karsd_print_log_tail(int lines)
{
	char *buf[256] = {};
	char line[1024];
	int n = 0;
	FILE *f;

	if (lines > 256)
		lines = 256;
	f = fopen(kd.log, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		free(buf[n % lines]);
		buf[n % lines] = strdup(line);
		n++;
	}
	fclose(f);
	printf("--- last lines of %s ---\n", kd.log);
	for (int i = n > lines ? n - lines : 0; i < n; i++)
		printf("  %s", buf[i % lines] ? buf[i % lines] : "\n");
	for (int i = 0; i < lines; i++)
		free(buf[i]);
	printf("---\n");
}

int kst_call(const json_t *req, json_t **resp, char *errbuf, size_t errlen)
{
	struct kars_err err = {};
	json_t *r = NULL;
	int ret;

	ret = kars_control_call(kd.socket, req, &r, &err);
	if (errbuf && errlen) {
		const char *msg = json_string_value(json_object_get(r, "error"));

		snprintf(errbuf, errlen, "%s", ret ? (msg ? msg : err.msg) : "");
	}
	if (resp)
		*resp = r;
	else
		json_decref(r);
	return ret;
}

int kst_call_unprivileged(const json_t *req, json_t **resp, char *errbuf, size_t errlen)
{
	struct kars_err err = {};
	json_t *r = NULL;
	const char *msg;
	int fd, ret;

	if (resp)
		*resp = NULL;
	fd = kars_control_connect(kd.socket, &err);
	if (fd < 0) {
		snprintf(errbuf, errlen, "%s", err.msg);
		return fd;
	}
	kars_control_send(fd, req, NULL);
	ret = kars_control_recv(fd, 5000, &r, &err);
	close(fd);
	if (ret) {
		snprintf(errbuf, errlen, "%s", err.msg);
		return ret;
	}
	msg = json_string_value(json_object_get(r, "error"));
	ret = json_is_true(json_object_get(r, "ok")) ? 0 : -EPROTO;
	snprintf(errbuf, errlen, "%s", ret ? (msg ? msg : "refused") : "");
	if (resp)
		*resp = r;
	else
		json_decref(r);
	return ret;
}

json_t *kst_policy_named(struct kst_env *env, const char *suffix, const char *agent_leaf,
			 const char *router_leaf, int router_port, int proxy_port)
{
	char name[160], agent[256], router[256];

	snprintf(name, sizeof(name), "%s/%s", env->ns_name, suffix);
	snprintf(agent, sizeof(agent), "%s/%s", env->cg_rel, agent_leaf);
	snprintf(router, sizeof(router), "%s/%s", env->cg_rel, router_leaf);
	return json_pack("{s:s,s:s,s:s,s:{s:s,s:i},s:{s:s,s:i},s:i,s:i,s:{s:s,s:s,s:i},s:[]}", "op",
			 "apply", "sandbox", name, "mode", "strict", "agent", "cgroup", agent,
			 "uid", KST_AGENT_UID, "router", "cgroup", router, "uid", KST_ROUTER_UID,
			 "routerPort", router_port, "proxyPort", proxy_port, "resolver", "ipv4",
			 KST_RESOLVER4, "ipv6", KST_RESOLVER6, "port", KST_RESOLVER_PORT, "rules");
}

json_t *kst_policy(struct kst_env *env)
{
	return kst_policy_named(env, "main", "agent", "router", KST_ROUTER_PORT, KST_PROXY_PORT);
}

void kst_rule_exact(json_t *policy, const char *ip, int port, const char *proto)
{
	json_array_append_new(
	    json_object_get(policy, "rules"),
	    json_pack("{s:s,s:i,s:s}", "ip", ip, "port", port, "protocol", proto));
}

void kst_rule_cidr(json_t *policy, const char *cidr, const char *ports, const char *proto)
{
	json_array_append_new(
	    json_object_get(policy, "rules"),
	    json_pack("{s:s,s:s,s:s}", "cidr", cidr, "ports", ports, "protocol", proto));
}

int kst_apply(struct kst_env *env, json_t *policy, long long *gen)
{
	const char *name = kst_json_str(policy, "sandbox");
	json_t *resp = NULL;
	char err[512];
	bool known = false;
	int ret;

	if (!name)
		return -EINVAL;
	ret = kst_call(policy, &resp, err, sizeof(err));
	if (ret) {
		printf("  apply %s: %s\n", name, err);
		json_decref(resp);
		return ret;
	}
	if (gen)
		*gen = kst_json_int(resp, "generation", -1);
	json_decref(resp);
	for (int i = 0; i < env->n_sandboxes; i++)
		known |= strcmp(env->sandboxes[i], name) == 0;
	if (!known && env->n_sandboxes < KST_MAX_SANDBOXES)
		snprintf(env->sandboxes[env->n_sandboxes++], sizeof(env->sandboxes[0]), "%s", name);
	return 0;
}

int kst_apply_default(struct kst_env *env)
{
	json_t *p = kst_policy(env);
	int ret = kst_apply(env, p, NULL);

	json_decref(p);
	return ret;
}

int kst_remove(const char *sandbox, char *errbuf, size_t errlen)
{
	json_t *req = json_pack("{s:s,s:s}", "op", "remove", "sandbox", sandbox);
	int ret = kst_call(req, NULL, errbuf, errlen);

	json_decref(req);
	return ret;
}

json_t *kst_list_find(const char *sandbox)
{
	json_t *req = json_pack("{s:s}", "op", "list"), *resp = NULL, *found = NULL, *it;
	size_t i;

	if (kst_call(req, &resp, NULL, 0) == 0) {
		json_array_foreach(json_object_get(resp, "sandboxes"), i, it)
		{
			const char *name = kst_json_str(it, "sandbox");

			if (name && strcmp(name, sandbox) == 0) {
				found = json_incref(it);
				break;
			}
		}
	}
	json_decref(req);
	json_decref(resp);
	return found;
}

json_t *kst_learned(const char *sandbox)
{
	json_t *req = json_pack("{s:s,s:s}", "op", "learned", "sandbox", sandbox), *resp = NULL;
	json_t *arr = NULL;
	char err[256];

	if (kst_call(req, &resp, err, sizeof(err)) == 0)
		arr = json_incref(json_object_get(resp, "learned"));
	else
		printf("  learned %s: %s\n", sandbox, err);
	json_decref(req);
	json_decref(resp);
	return arr;
}

int kst_events_open(void)
{
	struct kars_err err = {};
	json_t *req = json_pack("{s:s}", "op", "subscribe"), *resp = NULL;
	int fd, ret;

	fd = kars_control_connect(kd.socket, &err);
	if (fd < 0) {
		json_decref(req);
		return fd;
	}
	ret = kars_control_send(fd, req, &err);
	if (!ret)
		ret = kars_control_recv(fd, 5000, &resp, &err);
	if (!ret && !json_is_true(json_object_get(resp, "ok")))
		ret = -EPROTO;
	json_decref(req);
	json_decref(resp);
	if (ret) {
		printf("  subscribe: %s\n", err.msg[0] ? err.msg : "refused");
		close(fd);
		return ret;
	}
	return fd;
}

json_t *kst_events_find(int fd, bool (*match)(const json_t *ev, const void *arg), const void *arg,
			int timeout_ms)
{
	uint64_t deadline = kst_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		int64_t left = (int64_t)(deadline - kst_now_ms());
		struct kars_err err = {};
		json_t *ev = NULL;

		if (left <= 0)
			return NULL;
		if (kars_control_recv(fd, (int)left, &ev, &err))
			return NULL;
		if (kst_verbose()) {
			char *s = json_dumps(ev, JSON_COMPACT);

			kst_log("event: %s", s ? s : "?");
			free(s);
		}
		if (match(ev, arg))
			return ev;
		json_decref(ev);
	}
}

const char *kst_json_str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

long long kst_json_int(const json_t *o, const char *key, long long dflt)
{
	const json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? (long long)json_integer_value(v) : dflt;
}
