/* local_backend.c - KarsSandbox objects as local processes (local_backend.h).
 *
 * Everything a pass needs is on disk (the UID file, pid files, the specs the
 * processes were started from), so a restarted controller picks up the
 * sandboxes where they are: nothing in memory but the options.
 */
#include "local_backend.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "control_client.h"
#include "deliver.h"
#include "local_egress.h"
#include "local_env.h"
#include "local_proc.h"
#include "local_sandbox.h"
#include "local_seccomp.h"
#include "log.h"
#include "router_paths.h"

#define SUP_STOP_WAIT_S 15.0

struct local_backend {
	struct kars_local_backend_opts o;
	struct sock_fprog seccomp;
};

static double now_s(void)
{
	return kars_monotonic();
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static void ports_of(const struct local_backend *b, const struct kars_local_sandbox *sb,
		     unsigned *router, unsigned *proxy)
{
	*router = b->o.port_base + (sb->agent_uid - b->o.uids.first);
	*proxy = *router + 1;
}

static int open_sandbox(const struct local_backend *b, const char *ns, const char *name,
			struct kars_local_sandbox *sb, struct kars_err *err)
{
	return kars_local_sandbox_create(b->o.state_dir, &b->o.uids, ns, name, sb, err);
}

static void run_path(char *out, size_t len, const struct kars_local_sandbox *sb, const char *f)
{
	snprintf(out, len, "%s/%s", sb->run_dir, f);
}

/* Writes bytes to path atomically, mode and owner as given. */
static int write_private(const char *path, const char *bytes, mode_t mode, uid_t owner,
			 struct kars_err *err)
{
	char tmp[PATH_MAX + 8];
	size_t len = strlen(bytes);
	int fd, ret = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return kars_err_set(err, errno, "%s: %s", tmp, strerror(errno));
	if (fchown(fd, owner, owner) || fchmod(fd, mode) || write(fd, bytes, len) != (ssize_t)len ||
	    fsync(fd))
		ret = kars_err_set(err, errno, "%s: %s", tmp, strerror(errno));
	close(fd);
	if (!ret && rename(tmp, path))
		ret = kars_err_set(err, errno, "rename %s: %s", path, strerror(errno));
	if (ret)
		unlink(tmp);
	return ret;
}

/* Whether path holds exactly bytes. */
static int same_file(const char *path, const char *bytes)
{
	char *old = NULL;
	size_t len = 0;
	int same;

	if (kars_read_file(path, 1 << 20, &old, &len))
		return 0;
	same = len == strlen(bytes) && !memcmp(old, bytes, len);
	free(old);
	return same;
}

static size_t discard(char *p, size_t size, size_t n, void *ctx)
{
	(void)p;
	(void)ctx;
	return size * n;
}

static bool router_healthy(unsigned port)
{
	char url[64];
	long code = 0;
	CURL *h = curl_easy_init();

	if (!h)
		return false;
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/healthz", port);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 1000L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	if (curl_easy_perform(h) == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(h);
	return code == 200;
}

/* The first IPv4 nameserver of /etc/resolv.conf, for the router's DNS. */
static bool host_resolver(char *out, size_t len)
{
	char line[256], addr[64];
	bool found = false;
	FILE *f = fopen("/etc/resolv.conf", "re");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		if (sscanf(line, " nameserver %63s", addr) == 1 && !strchr(addr, ':')) {
			snprintf(out, len, "%s", addr);
			found = true;
		}
	fclose(f);
	return found;
}

/* The upstream of the router: <sandbox dir>/upstream.json when present
 * (root's: the router must not choose where its own rules let it go), else
 * a placeholder that refuses: no credential is ever invented. */
static int upstream_of(const struct kars_local_sandbox *sb, json_t **up, struct kars_err *err)
{
	char path[PATH_MAX + 32], key[PATH_MAX + 32];
	json_error_t jerr;

	snprintf(path, sizeof(path), "%s/upstream.json", sb->dir);
	snprintf(key, sizeof(key), "%s/api-key", sb->router_dir);
	if (access(path, F_OK) == 0) {
		const char *from;
		char *secret = NULL;
		size_t len;

		*up = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
		if (!*up || !json_is_object(*up)) {
			bool loaded = *up != NULL;

			json_decref(*up);
			*up = NULL;
			return kars_err_set(err, EINVAL, "%s: line %d: %s", path, jerr.line,
					    loaded ? "not an object" : jerr.text);
		}
		/* The key reaches the router only: copied into its directory
		 * (its UID, 0600), wherever root keeps it. */
		from = json_string_value(json_object_get(*up, "apiKeyFile"));
		if (!from || !strcmp(from, key))
			return 0;
		if (kars_read_file(from, 64 * 1024, &secret, &len)) {
			json_decref(*up);
			*up = NULL;
			return kars_err_set(err, EINVAL, "%s: apiKeyFile %s: cannot read it", path,
					    from);
		}
		if (same_file(key, secret) ||
		    !write_private(key, secret, 0600, sb->router_uid, err))
			json_object_set_new(*up, "apiKeyFile", json_string(key));
		explicit_bzero(secret, len);
		free(secret);
		return 0;
	}
	if (access(key, F_OK) && write_private(key, "unconfigured\n", 0600, sb->router_uid, err))
		return -EIO;
	*up = json_pack("{s:s,s:s,s:s}", "kind", "openai", "baseUrl", KARS_LOCAL_NO_UPSTREAM,
			"apiKeyFile", key);
	return 0;
}

/* Whether [::1] can be bound here (no IPv6, or IPv6 disabled: no). */
static bool have_ipv6_loopback(void)
{
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok = fd >= 0 && !bind(fd, (struct sockaddr *)&sa, sizeof(sa));

	if (fd >= 0)
		close(fd);
	return ok;
}

/* The router's config. Its egressProxy comes from the desired egress, the
 * request karsd gets too (local_egress.h), with the same resolver. */
static char *router_config(const struct local_backend *b, const struct kars_local_sandbox *sb,
			   const struct kars_sandbox_desired *d, struct kars_err *err)
{
	char f1[PATH_MAX + 32], f2[PATH_MAX + 32], f3[PATH_MAX + 32], listen[32], r4[64];
	unsigned rp, pp;
	json_t *cfg, *up = NULL, *proxy = NULL;
	char *out = NULL;

	ports_of(b, sb, &rp, &pp);
	if (kars_local_egress_proxy(d->egress, pp, have_ipv6_loopback(),
				    host_resolver(r4, sizeof(r4)) ? r4 : NULL, b->o.karsd_socket,
				    &proxy, err))
		return NULL;
	if (upstream_of(sb, &up, err)) {
		json_decref(proxy);
		return NULL;
	}
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", rp);
	snprintf(f1, sizeof(f1), "%s/budget.json", sb->router_dir);
	snprintf(f2, sizeof(f2), "%s/audit.jsonl", sb->router_dir);
	snprintf(f3, sizeof(f3), "%s/audit.key", sb->router_dir);
	cfg = json_pack("{s:s,s:s,s:I,s:o,s:{s:s},s:{s:s,s:s},s:{s:[i]},s:I,s:o}", "sandbox",
			sb->owner, "listen", listen, "agentUid", (json_int_t)sb->agent_uid,
			"upstream", up, "budget", "file", f1, "audit", "file", f2, "keyFile", f3,
			"control", "allowedUids", 0, "drainTimeoutMs", (json_int_t)2000,
			"egressProxy", proxy);
	if (!cfg) {
		kars_err_set(err, ENOMEM, "router config: out of memory");
		return NULL;
	}
	if (!kars_router_config_set_policy_files(cfg, d->router_dir, err))
		out = json_dumps(cfg, JSON_SORT_KEYS | JSON_INDENT(2));
	json_decref(cfg);
	return out;
}

/* Adds the router's way to addr:port (an IP literal: a rule; a name: an
 * fqdn, learned from the resolver's answers). */
static void allow_router(json_t *req, const char *host, unsigned port, const char *proto)
{
	bool ip = strspn(host, "0123456789.") == strlen(host) || strchr(host, ':');
	const char *list = ip ? "rules" : "fqdns";
	json_t *a = json_object_get(req, list);

	if (!a) {
		a = json_array();
		json_object_set_new(req, list, a);
	}
	json_array_append_new(a, json_pack("{s:s,s:I,s:s}", ip ? "ip" : "name", host, "port",
					   (json_int_t)port, "protocol", proto));
}

/* Host and port of an http(s) URL, for the router's rule to its upstream. */
static bool url_host(const char *url, char *host, size_t len, unsigned *port)
{
	const char *p = strstr(url, "://"), *end;
	size_t n;

	if (!p)
		return false;
	*port = strncmp(url, "https", 5) ? 80 : 443;
	p += 3;
	if (*p == '[') {
		end = strchr(p, ']');
		if (!end)
			return false;
		n = (size_t)(end - p - 1);
		p++;
		end++;
	} else {
		n = strcspn(p, ":/");
		end = p + n;
	}
	if (!n || n >= len)
		return false;
	memcpy(host, p, n);
	host[n] = '\0';
	if (*end == ':')
		*port = (unsigned)strtoul(end + 1, NULL, 10);
	return *port > 0 && *port < 65536;
}

/* Whether karsd has a policy for the sandbox (after a restart it has the
 * pinned one). */
static bool karsd_has(const struct local_backend *b, const char *owner)
{
	json_t *req = json_pack("{s:s}", "op", "list"), *resp = NULL, *e;
	struct kars_err err = {0};
	bool found = false;
	size_t i;

	if (!kars_control_call(b->o.karsd_socket, req, &resp, &err))
		json_array_foreach(json_object_get(resp, "sandboxes"), i, e)
		{
			if (!strcmp(json_string_value(json_object_get(e, "sandbox")) ?: "", owner))
				found = true;
		}
	json_decref(req);
	json_decref(resp);
	return found;
}

static int karsd_apply(const struct local_backend *b, const struct kars_local_sandbox *sb,
		       const struct kars_sandbox_desired *d, const json_t *up, struct kars_err *err)
{
	json_t *req = json_deep_copy(d->egress), *resp = NULL, *res;
	char resolver[64], host[256], last[PATH_MAX + 32], *bytes = NULL;
	unsigned rp, pp, port;
	int ret;

	if (!req)
		return kars_err_set(err, ENOMEM, "karsd request: out of memory");
	ports_of(b, sb, &rp, &pp);
	json_object_set_new(
	    req, "agent",
	    json_pack("{s:s,s:I}", "cgroup", sb->cg_agent, "uid", (json_int_t)sb->agent_uid));
	json_object_set_new(
	    req, "router",
	    json_pack("{s:s,s:I}", "cgroup", sb->cg_router, "uid", (json_int_t)sb->router_uid));
	json_object_set_new(req, "routerPort", json_integer(rp));
	json_object_set_new(req, "proxyPort", json_integer(pp));
	res = json_object_get(req, "resolver");
	if (!res && host_resolver(resolver, sizeof(resolver))) {
		res = json_pack("{s:s,s:i}", "ipv4", resolver, "port", 53);
		json_object_set_new(req, "resolver", res);
	}
	if (json_string_value(json_object_get(res, "ipv4"))) {
		const char *r = json_string_value(json_object_get(res, "ipv4"));
		unsigned rport = (unsigned)json_integer_value(json_object_get(res, "port")) ?: 53;

		allow_router(req, r, rport, "udp");
		allow_router(req, r, rport, "tcp");
	}
	if (url_host(json_string_value(json_object_get(up, "baseUrl")) ?: "", host, sizeof(host),
		     &port) &&
	    strcmp(json_string_value(json_object_get(up, "baseUrl")), KARS_LOCAL_NO_UPSTREAM))
		allow_router(req, host, port, "tcp");
	bytes = json_dumps(req, JSON_COMPACT | JSON_SORT_KEYS);
	run_path(last, sizeof(last), sb, "karsd.json");
	if (bytes && same_file(last, bytes) && karsd_has(b, sb->owner)) {
		ret = 0; /* in force as asked: no new generation for nothing */
		goto cleanup;
	}
	ret = kars_control_call(b->o.karsd_socket, req, &resp, err);
	if (ret) {
		char why[sizeof(err->msg)];

		snprintf(why, sizeof(why), "%s", err->msg);
		kars_err_set(err, -ret, "karsd apply (%s): %s", b->o.karsd_socket, why);
	} else if (bytes)
		write_private(last, bytes, 0600, 0, err);
cleanup:
	free(bytes);
	json_decref(req);
	json_decref(resp);
	return ret;
}

/* Starts role's supervisor unless it runs from the same spec. */
static int ensure(const struct kars_local_sandbox *sb, struct kars_sup_child *c,
		  const char *spec_bytes, bool *started, struct kars_err *err)
{
	char sup_pid[PATH_MAX + 32], spec[PATH_MAX + 32];
	int ret;

	*started = false;
	snprintf(sup_pid, sizeof(sup_pid), "%s/%s.sup.pid", sb->run_dir, c->spec.name);
	snprintf(spec, sizeof(spec), "%s/%s.spec", sb->run_dir, c->spec.name);
	if (kars_lp_alive(sup_pid)) {
		if (same_file(spec, spec_bytes))
			return 0;
		log_info("%s: %s spec changed, restarting it", sb->owner, c->spec.name);
		if ((ret = kars_lp_stop(sup_pid, SUP_STOP_WAIT_S, err)))
			return ret;
	}
	snprintf(c->pid_file, sizeof(c->pid_file), "%s/%s.pid", sb->run_dir, c->spec.name);
	snprintf(c->log_file, sizeof(c->log_file), "%s/%s.log", sb->log_dir, c->spec.name);
	if ((ret = write_private(spec, spec_bytes, 0600, 0, err)))
		return ret;
	ret = kars_lp_spawn(c, sb->cgroup, sup_pid, err);
	if (!ret)
		*started = true;
	return ret;
}

/* A view's private /tmp hides the host's: a program under the host's /tmp
 * (a build tree checked out there) gets its directory bound read-only at
 * the same path. Not when that directory is, or holds, the state directory,
 * which the view hides on purpose: then exec fails, saying so. */
static void expose_program(struct kars_local_spec *spec, const char *prog, const char *state_dir,
			   char *dir, size_t len)
{
	size_t n = strlen(state_dir), d;
	char *slash;

	if (strncmp(prog, "/tmp/", 5) || spec->n_mounts >= KARS_LOCAL_MAX_MOUNTS)
		return;
	snprintf(dir, len, "%s", prog);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir + 4)
		return;
	*slash = '\0';
	d = strlen(dir);
	if ((strncmp(dir, state_dir, n) == 0 && (dir[n] == '/' || !dir[n])) ||
	    (strncmp(state_dir, dir, d) == 0 && state_dir[d] == '/'))
		return;
	spec->mounts[spec->n_mounts++] = (struct kars_local_mount){KARS_MNT_RO, dir, dir};
}

static int start_router(const struct local_backend *b, const struct kars_local_sandbox *sb,
			const char *deliver_dir, const char *cfg_path, const char *cfg,
			struct kars_err *err)
{
	char *argv[] = {(char *)b->o.router_bin, "--config", (char *)cfg_path, NULL};
	char *envp[] = {"PATH=/usr/bin:/bin", "LANG=C.UTF-8", NULL}, prog_dir[PATH_MAX];
	struct kars_sup_child c = {0};
	unsigned rp, pp;
	bool started;
	int ret;

	kars_local_router_spec(sb, argv, envp, -1, &c.spec);
	/* The delivered policies, in the state directory its view hides:
	 * read-only to the router by ownership (root's 0644 files in a 0755
	 * directory). */
	c.spec.mounts[c.spec.n_mounts++] =
	    (struct kars_local_mount){KARS_MNT_RW, deliver_dir, deliver_dir};
	expose_program(&c.spec, b->o.router_bin, sb->state_dir, prog_dir, sizeof(prog_dir));
	ret = ensure(sb, &c, cfg, &started, err);
	if (ret || !started)
		return ret;
	ports_of(b, sb, &rp, &pp);
	for (double t0 = now_s(); now_s() - t0 < b->o.health_wait_s; sleep_ms(100))
		if (router_healthy(rp))
			return 0;
	return 0; /* observe says it does not answer; no agent before it does */
}

/* The agent's argv: the plan's command and args; the command found on PATH
 * when it has no slash. */
static int agent_argv(const json_t *plan, char ***out, struct kars_err *err)
{
	const json_t *cmd = json_object_get(plan, "command"), *args = json_object_get(plan, "args");
	size_t n = json_array_size(cmd) + json_array_size(args), i = 0, k;
	char **argv;
	json_t *v;

	if (!json_array_size(cmd))
		return kars_err_set(err, EINVAL,
				    "spec.runtime.byo.command: Required value: local mode runs the "
				    "command on this host (the image is not run)");
	argv = calloc(n + 1, sizeof(*argv));
	if (!argv)
		return kars_err_set(err, ENOMEM, "out of memory");
	json_array_foreach(cmd, k, v) argv[i++] = strdup(json_string_value(v) ?: "");
	json_array_foreach(args, k, v) argv[i++] = strdup(json_string_value(v) ?: "");
	if (!strchr(argv[0], '/')) {
		static const char *const dirs[] = {"/usr/local/bin", "/usr/bin", "/bin", NULL};
		char path[PATH_MAX];

		for (const char *const *d = dirs; *d; d++) {
			snprintf(path, sizeof(path), "%s/%s", *d, argv[0]);
			if (access(path, X_OK) == 0) {
				free(argv[0]);
				argv[0] = strdup(path);
				break;
			}
		}
	}
	*out = argv;
	return 0;
}

static void strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static int plan_env(const json_t *plan, char ***out, struct kars_err *err)
{
	const json_t *env = json_object_get(plan, "env");
	char **vars = calloc(json_object_size(env) + 1, sizeof(*vars));
	const char *k;
	size_t i = 0;
	json_t *v;
	int ret;

	if (!vars)
		return kars_err_set(err, ENOMEM, "out of memory");
	json_object_foreach((json_t *)env, k, v)
	{
		if (asprintf(&vars[i], "%s=%s", k, json_string_value(v) ?: "") < 0)
			vars[i] = NULL;
		else
			i++;
	}
	ret = kars_local_env_build((const char *const *)vars, out, err);
	strv_free(vars);
	return ret;
}

/* What decides whether a running agent is restarted: its argv and
 * environment, except KARS_MODEL. The model is a policy decision the router
 * makes on every request (`kars model set` is hot-reloaded there); the
 * agent keeps the KARS_MODEL it started with until it is restarted for
 * another reason, rather than losing its work to a model change. */
static char *spec_json(char **argv, char **envp)
{
	json_t *a = json_array(), *e = json_array(), *o;
	char *s;

	for (size_t i = 0; argv[i]; i++)
		json_array_append_new(a, json_string(argv[i]));
	for (size_t i = 0; envp[i]; i++)
		if (strncmp(envp[i], "KARS_MODEL=", 11))
			json_array_append_new(e, json_string(envp[i]));
	o = json_pack("{s:o,s:o}", "argv", a, "env", e);
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

static int start_agent(const struct local_backend *b, const struct kars_local_sandbox *sb,
		       const json_t *plan, struct kars_err *err)
{
	char **argv = NULL, **envp = NULL, *spec = NULL, pid[PATH_MAX + 32], prog_dir[PATH_MAX];
	struct kars_sup_child c = {0};
	bool started = false;
	int ret;

	if ((ret = agent_argv(plan, &argv, err)) || (ret = plan_env(plan, &envp, err)))
		goto cleanup;
	spec = spec_json(argv, envp);
	if (!spec) {
		ret = kars_err_set(err, ENOMEM, "out of memory");
		goto cleanup;
	}
	kars_local_agent_spec(sb, argv, envp, &b->seccomp, -1, &c.spec);
	expose_program(&c.spec, argv[0], sb->state_dir, prog_dir, sizeof(prog_dir));
	ret = ensure(sb, &c, spec, &started, err);
	/* The contract file names the agent's pid: let its supervisor write it. */
	run_path(pid, sizeof(pid), sb, "agent.pid");
	for (int i = 0; !ret && started && i < 50 && !kars_lp_alive(pid); i++)
		sleep_ms(20);
cleanup:
	strv_free(argv);
	kars_local_env_free(envp);
	free(spec);
	return ret;
}

static int write_contract(const struct local_backend *b, const struct kars_local_sandbox *sb,
			  struct kars_err *err)
{
	char path[PATH_MAX + 32], rpid[PATH_MAX + 32], apid[PATH_MAX + 32], *s;
	unsigned rp, pp;
	json_t *o;
	int ret;

	ports_of(b, sb, &rp, &pp);
	run_path(path, sizeof(path), sb, "router.json");
	run_path(rpid, sizeof(rpid), sb, "router.pid");
	run_path(apid, sizeof(apid), sb, "agent.pid");
	o = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "routerPort", (json_int_t)rp, "proxyPort",
		      (json_int_t)pp, "routerUid", (json_int_t)sb->router_uid, "agentUid",
		      (json_int_t)sb->agent_uid, "routerPid", (json_int_t)kars_lp_alive(rpid),
		      "agentPid", (json_int_t)kars_lp_alive(apid));
	s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	if (!s)
		return kars_err_set(err, ENOMEM, "out of memory");
	ret = kars_deliver_file(path, s, strlen(s), err);
	free(s);
	return ret < 0 ? ret : 0;
}

static void set_message(const struct kars_local_sandbox *sb, const char *msg)
{
	char path[PATH_MAX + 32];
	struct kars_err ignored;

	run_path(path, sizeof(path), sb, "message");
	if (!msg)
		unlink(path);
	else if (!same_file(path, msg))
		write_private(path, msg, 0600, 0, &ignored);
}

static int lb_apply(void *ctx, const struct kars_sandbox_desired *d, struct kars_err *err)
{
	struct local_backend *b = ctx;
	struct kars_local_sandbox sb;
	char cfg_path[PATH_MAX + 32], msg[256], rpid[PATH_MAX + 32];
	const char *kind = json_string_value(json_object_get(d->plan, "kind")) ?: "";
	json_t *up = NULL;
	char *cfg = NULL;
	unsigned rp, pp;
	int ret;

	if ((ret = open_sandbox(b, d->ns, d->name, &sb, err)))
		return ret;
	if ((ret = kars_mkdir_p(d->router_dir))) {
		kars_err_set(err, -ret, "%s: %s", d->router_dir, strerror(-ret));
		return ret;
	}
	snprintf(cfg_path, sizeof(cfg_path), "%s/config.json", sb.router_dir);
	cfg = router_config(b, &sb, d, err);
	if (!cfg)
		return -EINVAL;
	if (!same_file(cfg_path, cfg) &&
	    (ret = write_private(cfg_path, cfg, 0600, sb.router_uid, err)))
		goto cleanup;
	if ((ret = start_router(b, &sb, d->router_dir, cfg_path, cfg, err)))
		goto cleanup;
	ports_of(b, &sb, &rp, &pp);
	run_path(rpid, sizeof(rpid), &sb, "router.pid");
	if (!kars_lp_alive(rpid) || !router_healthy(rp))
		goto contract; /* fail closed: no agent before its router answers */
	upstream_of(&sb, &up, err);
	if ((ret = karsd_apply(b, &sb, d, up, err)))
		goto cleanup; /* fail closed: no policy, no agent */
	if (strcmp(kind, "BYO")) {
		snprintf(msg, sizeof(msg),
			 "runtime kind %s cannot run in local mode: only BYO (a command on this "
			 "host) does; its adapter image is not run",
			 kind);
		set_message(&sb, msg);
		goto contract;
	}
	ret = start_agent(b, &sb, d->plan, err);
	set_message(&sb, ret ? err->msg : NULL);
	if (ret)
		goto cleanup;
contract:
	ret = write_contract(b, &sb, err);
cleanup:
	json_decref(up);
	free(cfg);
	return ret;
}

static int lb_observe(void *ctx, const char *ns, const char *name,
		      struct kars_sandbox_observed *out, struct kars_err *err)
{
	struct local_backend *b = ctx;
	struct kars_local_sandbox sb;
	char path[PATH_MAX + 32], *msg = NULL;
	unsigned rp, pp;
	size_t len;
	int ret;

	memset(out, 0, sizeof(*out));
	if ((ret = open_sandbox(b, ns, name, &sb, err)))
		return ret;
	ports_of(b, &sb, &rp, &pp);
	run_path(path, sizeof(path), &sb, "agent.pid");
	out->running = kars_lp_alive(path) > 0;
	run_path(path, sizeof(path), &sb, "router.pid");
	out->router_answers = kars_lp_alive(path) > 0 && router_healthy(rp);
	run_path(path, sizeof(path), &sb, "message");
	if (!kars_read_file(path, sizeof(out->message) - 1, &msg, &len)) {
		snprintf(out->message, sizeof(out->message), "%s", msg);
		free(msg);
	} else if (!out->router_answers) {
		snprintf(out->message, sizeof(out->message),
			 "the router does not answer http://127.0.0.1:%u/healthz (kars logs %s)",
			 rp, name);
	} else if (!out->running) {
		snprintf(out->message, sizeof(out->message),
			 "the agent is not running (kars logs %s)", name);
	}
	return 0;
}

static int lb_remove(void *ctx, const char *ns, const char *name, struct kars_err *err)
{
	struct local_backend *b = ctx;
	struct kars_local_sandbox sb;
	char path[PATH_MAX + 32], owner[160];
	json_t *req, *resp = NULL;
	uid_t agent;
	int ret;

	snprintf(owner, sizeof(owner), "%s/%s", ns, name);
	if (kars_uid_lookup(b->o.state_dir, owner, &agent, err) == -ENOENT) {
		kars_err_clear(err);
		return 0; /* nothing of it on this host */
	}
	if ((ret = open_sandbox(b, ns, name, &sb, err)))
		return ret;
	run_path(path, sizeof(path), &sb, "agent.sup.pid");
	if ((ret = kars_lp_stop(path, SUP_STOP_WAIT_S, err)))
		return ret;
	run_path(path, sizeof(path), &sb, "router.sup.pid");
	if ((ret = kars_lp_stop(path, SUP_STOP_WAIT_S, err)))
		return ret;
	req = json_pack("{s:s,s:s}", "op", "remove", "sandbox", sb.owner);
	ret = kars_control_call(b->o.karsd_socket, req, &resp, err);
	json_decref(req);
	if (ret == -EPROTO && strstr(err->msg, "not found"))
		ret = 0; /* karsd never had it */
	json_decref(resp);
	if (ret) {
		char why[sizeof(err->msg)];

		snprintf(why, sizeof(why), "%s", err->msg);
		return kars_err_set(err, -ret, "karsd remove (%s): %s", b->o.karsd_socket, why);
	}
	kars_err_clear(err);
	return kars_local_sandbox_remove(&sb, err);
}

static const struct kars_sandbox_backend_ops local_ops = {
    .name = "local",
    .apply = lb_apply,
    .remove = lb_remove,
    .observe = lb_observe,
};

int kars_local_backend_new(const struct kars_local_backend_opts *o,
			   struct kars_sandbox_backend *out, struct kars_err *err)
{
	struct local_backend *b = calloc(1, sizeof(*b));
	int ret;

	if (!b)
		return kars_err_set(err, ENOMEM, "out of memory");
	b->o = *o;
	if (!b->o.port_base)
		b->o.port_base = KARS_LOCAL_PORT_BASE;
	if (!b->o.uids.first) {
		b->o.uids.first = KARS_UID_FIRST;
		b->o.uids.last = KARS_UID_LAST;
	}
	if (b->o.port_base + (b->o.uids.last - b->o.uids.first) + 1 > 65535) {
		ret = kars_err_set(
		    err, EINVAL, "router ports %u+%u: beyond 65535 for the UID range %u-%u",
		    (unsigned)b->o.port_base, (unsigned)(b->o.uids.last - b->o.uids.first),
		    (unsigned)b->o.uids.first, (unsigned)b->o.uids.last);
		free(b);
		return ret;
	}
	if (!b->o.health_wait_s)
		b->o.health_wait_s = 10;
	if ((ret = kars_mkdir_p(b->o.state_dir))) {
		free(b);
		return kars_err_set(err, -ret, "%s: %s", o->state_dir, strerror(-ret));
	}
	if ((ret = kars_seccomp_compile(&b->seccomp, err))) {
		free(b);
		return ret;
	}
	out->ops = &local_ops;
	out->ctx = b;
	return 0;
}

void kars_local_backend_free(struct kars_sandbox_backend *be)
{
	struct local_backend *b = be ? be->ctx : NULL;

	if (!b)
		return;
	free(b->seccomp.filter);
	free(b);
	be->ctx = NULL;
}
