/* main.c - kars-controller: the reconcilers of the local store, as a
 * process.
 *
 * It watches the store (--state-dir, the directory `kars apply` writes),
 * runs the InferencePolicy, ToolPolicy and EgressApproval reconcilers
 * through the work queue (userspace/lib/controller.h), delivers compiled
 * policies under --out-dir (<out>/<namespace>/<sandbox>/...) and asks each
 * sandbox's router (--router) what it has loaded. KarsSandbox objects are
 * run by the local backend with --backend local (local_backend.h: processes
 * on this host, the default under `kars up --local`); with --backend none
 * (the default) they are planned, not run, and their status says so
 * (RuntimeReady=False, reason NoBackend).
 *
 * On SIGTERM or SIGINT it finishes the reconcile in progress and exits 0.
 * A restart lists the store and watches from there: nothing written while
 * it was down is missed, and nothing is replayed.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "control_client.h"
#include "controller.h"
#include "egress_flags.h"
#include "local_backend.h"
#include "log.h"
#include "reconcile_sandbox.h"
#include "router_status.h"

#define DEFAULT_STATE_DIR "/var/lib/kars/state"
#define DEFAULT_OUT_DIR	  "/var/lib/kars/sandboxes"
#define DEFAULT_LOCAL_DIR "/var/lib/kars"

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: kars-controller [--state-dir DIR] [--out-dir DIR] [--router NS/NAME=URL]...\n"
	    "                       [--log-level LEVEL] [--log-json] [--dns-... (below)]\n"
	    "  --state-dir DIR        the local store (default $KARS_STATE_DIR, else %s)\n"
	    "  --out-dir DIR          where compiled policies are delivered, per sandbox\n"
	    "                         (default %s)\n"
	    "  --router NS/NAME=URL   the kars-router of sandbox NS/NAME (repeatable); a\n"
	    "                         policy is Ready only when its routers report its digest\n"
	    "  --log-level LEVEL      error, warn, info (default) or debug\n"
	    "  --log-json             log JSON objects, one per line\n"
	    "  --backend none|local   what runs KarsSandbox objects: none (default: planned,\n"
	    "                         not run, status reason NoBackend) or local (processes\n"
	    "                         on this host, docs/local-mode.md)\n"
	    "  --local-dir DIR        local backend: sandboxes' directories and UIDs\n"
	    "                         (default %s)\n"
	    "  --karsd-socket PATH    local backend: karsd's control socket (default %s)\n"
	    "  --router-bin PATH      local backend: kars-router (default: next to this binary)\n"
	    "  --router-port-base N   local backend: routers listen on N + (agent UID - 60000)\n"
	    "                         (default %d)\n" KARS_EGRESS_USAGE,
	    DEFAULT_STATE_DIR, DEFAULT_OUT_DIR, DEFAULT_LOCAL_DIR, KARSD_DEFAULT_SOCKET,
	    KARS_LOCAL_PORT_BASE);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int signal_fd(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return -1;
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

static int run(struct kars_controller *c, int sfd)
{
	char last_error[1024] = "";

	for (;;) {
		struct pollfd pfd[KARS_CTL_MAX_FDS + 1];
		int fds[KARS_CTL_MAX_FDS];
		size_t n = kars_ctl_fds(c, fds);
		int64_t wait = kars_ctl_step(c, mono_ms());

		if (strcmp(last_error, kars_ctl_last_error(c))) {
			snprintf(last_error, sizeof(last_error), "%s", kars_ctl_last_error(c));
			if (last_error[0])
				log_warn("reconcile failed, retrying with backoff: %s", last_error);
		}
		for (size_t i = 0; i < n; i++)
			pfd[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
		pfd[n] = (struct pollfd){.fd = sfd, .events = POLLIN};
		if (poll(pfd, n + 1, wait < 0 || wait > 60000 ? 60000 : (int)wait) < 0 &&
		    errno != EINTR) {
			log_error("poll: %s", strerror(errno));
			return 1;
		}
		if (pfd[n].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == sizeof(si))
				log_info("signal %u: stopping (last resourceVersion %llu)",
					 si.ssi_signo, (unsigned long long)kars_ctl_last_rv(c));
			return 0;
		}
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"state-dir", required_argument, NULL, 's'},
	    {"out-dir", required_argument, NULL, 'o'},
	    {"router", required_argument, NULL, 'r'},
	    {"log-level", required_argument, NULL, 'l'},
	    {"log-json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {"backend", required_argument, NULL, 'b'},
	    {"local-dir", required_argument, NULL, 'L'},
	    {"karsd-socket", required_argument, NULL, 'k'},
	    {"router-bin", required_argument, NULL, 'R'},
	    {"router-port-base", required_argument, NULL, 'P'},
	    KARS_EGRESS_LONG_OPTIONS,
	    {NULL, 0, NULL, 0},
	};
	const char *state_dir = getenv("KARS_STATE_DIR") ?: DEFAULT_STATE_DIR;
	const char *out_dir = DEFAULT_OUT_DIR;
	struct kars_routers *routers = kars_routers_new();
	struct kars_store *store = NULL;
	struct kars_controller *c = NULL;
	struct kars_sandbox_env sandbox_env = {0};
	struct kars_local_backend_opts lopts = {.state_dir = DEFAULT_LOCAL_DIR,
						.karsd_socket = KARSD_DEFAULT_SOCKET};
	struct kars_sandbox_backend backend = {0};
	char router_bin[PATH_MAX];
	bool local = false;
	struct kars_egress_opts egress = {0};
	struct kars_policy_env env = {0};
	struct kars_ctl_opts copts = {0};
	struct kars_err err = {0};
	int opt, sfd = -1, ret = 1;

	if (!routers) {
		fprintf(stderr, "kars-controller: out of memory\n");
		return 1;
	}
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			state_dir = optarg;
			break;
		case 'o':
			out_dir = optarg;
			break;
		case 'r':
			if (kars_routers_add(routers, optarg, &err)) {
				fprintf(stderr, "kars-controller: %s\n", err.msg);
				goto out;
			}
			break;
		case 'l':
			if (kars_log_level_option("kars-controller", optarg))
				goto out;
			break;
		case 'j':
			kars_log_set_json(true);
			break;
		case KARS_FLAG_DNS_RESOLVER:
		case KARS_FLAG_DNS_RESOLVER6:
		case KARS_FLAG_DNS_PORT:
		case KARS_FLAG_DNS_MAX_NAME:
		case KARS_FLAG_DNS_MAX_QPS:
			if (kars_egress_flag_set(&egress, opt, optarg, &err)) {
				fprintf(stderr, "kars-controller: %s\n", err.msg);
				goto out;
			}
			break;
		case 'b':
			if (strcmp(optarg, "none") && strcmp(optarg, "local")) {
				fprintf(
				    stderr,
				    "kars-controller: --backend: \"%s\": expected none or local\n",
				    optarg);
				goto out;
			}
			local = !strcmp(optarg, "local");
			break;
		case 'L':
			lopts.state_dir = optarg;
			break;
		case 'k':
			lopts.karsd_socket = optarg;
			break;
		case 'R':
			lopts.router_bin = optarg;
			break;
		case 'P': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);

			if (*optarg < '1' || *optarg > '9' || *end || v > 65535) {
				fprintf(stderr,
					"kars-controller: --router-port-base: \"%s\" is not a port "
					"number\n",
					optarg);
				goto out;
			}
			lopts.port_base = (uint16_t)v;
			break;
		}
		case 'h':
			usage(stdout);
			ret = 0;
			goto out;
		default:
			usage(stderr);
			goto out;
		}
	}
	if (optind != argc) {
		usage(stderr);
		goto out;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		fprintf(stderr, "kars-controller: curl_global_init failed\n");
		goto out;
	}
	if (kars_store_open_dir(state_dir, &store, &err)) {
		fprintf(stderr, "kars-controller: %s: %s\n", state_dir, err.msg);
		goto out;
	}
	sfd = signal_fd();
	if (sfd < 0) {
		fprintf(stderr, "kars-controller: signalfd: %s\n", strerror(errno));
		goto out;
	}
	env = (struct kars_policy_env){.store = store,
				       .out_dir = out_dir,
				       .loaded_digest = kars_routers_loaded,
				       .ctx = routers};
	if (local && !lopts.router_bin) {
		ssize_t n = readlink("/proc/self/exe", router_bin, sizeof(router_bin) - 16);

		if (n > 0 && memchr(router_bin, '/', (size_t)n)) {
			router_bin[n] = '\0';
			strcpy(strrchr(router_bin, '/') + 1, "kars-router");
			lopts.router_bin = router_bin;
		}
	}
	if (local)
		kars_routers_set_local(routers, lopts.state_dir);
	if (local && kars_local_backend_new(&lopts, &backend, &err)) {
		fprintf(stderr, "kars-controller: local backend: %s\n", err.msg);
		goto out;
	}
	sandbox_env = (struct kars_sandbox_env){.store = store,
						.backend = local ? &backend : NULL,
						.out_dir = out_dir,
						.egress = egress};
	copts = (struct kars_ctl_opts){.env = &env,
				       .reconcile_sandbox = kars_reconcile_sandbox_fn,
				       .sandbox_ctx = &sandbox_env,
				       .seed = (uint64_t)time(NULL) ^ (uint64_t)getpid()};
	if (kars_ctl_new(&copts, &c, &err)) {
		fprintf(stderr, "kars-controller: %s\n", err.msg);
		goto out;
	}
	if (local)
		log_info("kars-controller: store %s (resourceVersion %llu), delivering to %s, "
			 "local backend in %s (karsd %s, router %s)",
			 state_dir, (unsigned long long)kars_ctl_last_rv(c), out_dir,
			 lopts.state_dir, lopts.karsd_socket, lopts.router_bin);
	else
		log_info("kars-controller: store %s (resourceVersion %llu), delivering to %s, no "
			 "sandbox backend (KarsSandbox objects are not run)",
			 state_dir, (unsigned long long)kars_ctl_last_rv(c), out_dir);
	ret = run(c, sfd);
out:
	kars_ctl_free(c);
	kars_local_backend_free(&backend);
	if (store)
		kars_store_close(store);
	if (sfd >= 0)
		close(sfd);
	kars_routers_free(routers);
	curl_global_cleanup();
	return ret;
}
