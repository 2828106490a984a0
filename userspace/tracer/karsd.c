/* karsd.c - the per-node data-plane agent: main, options, the event loop.
 *
 * Start-up order is the safety argument: probe (and say what cannot be
 * enforced), load with pinned maps, re-adopt every pinned sandbox, and only
 * then accept requests. Shutdown detaches nothing: pinned links keep
 * enforcing until a sandbox is removed.
 */
#include <errno.h>
#include <event2/event.h>
#include <event2/http.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_client.h"
#include "karsd.h"
#include "log.h"

#define DEFAULT_PIN_DIR "/sys/fs/bpf/kars"

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: karsd [options]\n"
	    "  --socket PATH      control socket (default " KARSD_DEFAULT_SOCKET ")\n"
	    "  --pin-dir DIR      bpffs directory for maps and links (default " DEFAULT_PIN_DIR
	    ")\n"
	    "  --group NAME       group whose members may use every control operation\n"
	    "  --metrics ADDR:PORT  serve Prometheus metrics at http://ADDR:PORT/metrics\n"
	    "  --protect PATH     agents may not open PATH or anything below it (BPF LSM;\n"
	    "                     repeatable: router secrets, kars state)\n"
	    "  --log-level LEVEL  error, warn, info (default) or debug\n"
	    "  --log-json         log JSON objects, one per line\n"
	    "  --socket-cgroup auto|socket|stamp\n"
	    "                     how verdict hooks find a socket's cgroup: read from the socket\n"
	    "                     (kernel 6.2+), or stamped at creation (older kernels); auto\n"
	    "                     (default) picks the first that loads\n"
	    "  --help\n");
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct karsd *d = arg;

	log_info("signal %d: stopping (programs stay attached and pinned)", (int)sig);
	event_base_loopbreak(d->base);
}

static void on_gc_timer(evutil_socket_t fd, short what, void *arg)
{
	struct karsd *d = arg;

	kars_sandboxes_gc(&d->sandboxes);
}

static void report_probe(const struct kars_probe *p)
{
	log_info("cgroup v2 at %s; active LSMs: %s", p->cgroup2,
		 p->lsm_list[0] ? p->lsm_list : "(unknown)");
	if (strcmp(kars_probe_enforcement(p), "full") == 0) {
		log_info("enforcement level: full");
		return;
	}
	log_warn("enforcement level: no-lsm: %s; so AF_PACKET, netlink and vsock sockets are "
		 "not vetoed, AF_UNIX connects are not checked, and a socket passed in from "
		 "outside a sandbox is judged by its origin",
		 kars_probe_lsm_problem(p));
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"socket", required_argument, NULL, 's'},
	    {"pin-dir", required_argument, NULL, 'p'},
	    {"group", required_argument, NULL, 'g'},
	    {"metrics", required_argument, NULL, 'm'},
	    {"log-level", required_argument, NULL, 'l'},
	    {"log-json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {"socket-cgroup", required_argument, NULL, 'c'},
	    {"protect", required_argument, NULL, 'P'},
	    {NULL, 0, NULL, 0},
	};
	struct karsd d = {.socket_path = KARSD_DEFAULT_SOCKET};
	const char *pin_dir = DEFAULT_PIN_DIR, *metrics = NULL;
	struct event *sigint = NULL, *sigterm = NULL, *gc = NULL;
	struct timeval gc_every = {.tv_sec = 0, .tv_usec = 500000};
	struct kars_err err = {};
	enum kars_socket_cgroup_mode cgroup_mode = KARS_SOCKET_CGROUP_AUTO;
	bool loaded = false, adopted = false;
	int opt, ret = 1;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			d.socket_path = optarg;
			break;
		case 'p':
			pin_dir = optarg;
			break;
		case 'g': {
			struct group *g = getgrnam(optarg);

			if (!g) {
				fprintf(stderr, "karsd: --group: no group named \"%s\"\n", optarg);
				return 2;
			}
			d.have_admin_gid = true;
			d.admin_gid = g->gr_gid;
			break;
		}
		case 'm':
			metrics = optarg;
			break;
		case 'l':
			if (kars_log_level_option("karsd", optarg))
				return 2;
			break;
		case 'j':
			kars_log_set_json(true);
			break;
		case 'c':
			if (strcmp(optarg, "auto") == 0) {
				cgroup_mode = KARS_SOCKET_CGROUP_AUTO;
			} else if (strcmp(optarg, "socket") == 0) {
				cgroup_mode = KARS_SOCKET_CGROUP_SOCKET;
			} else if (strcmp(optarg, "stamp") == 0) {
				cgroup_mode = KARS_SOCKET_CGROUP_STAMP;
			} else {
				fprintf(stderr,
					"karsd: --socket-cgroup: \"%s\" is not auto, socket or "
					"stamp\n",
					optarg);
				return 2;
			}
			break;
		case 'P':
			if (kars_lsm_add_protect(&d.lsm, optarg)) {
				fprintf(stderr, "karsd: --protect: at most %d paths\n",
					KARS_LSM_MAX_PROTECT);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "karsd: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	kars_log_route_libbpf();

	if (kars_bpffs_ensure(&err) || kars_probe_run(&d.probe, &err)) {
		log_error("%s", err.msg);
		return 1;
	}
	d.base = event_base_new();
	if (!d.base) {
		log_error("event_base_new failed");
		return 1;
	}
	if (kars_loader_open(&d.loader, pin_dir, d.probe.cgroup2, cgroup_mode, &err))
		goto cleanup;
	loaded = true;
	/* After the loader: the LSM programs reuse its pinned maps. */
	if (kars_lsm_start(&d.lsm, &d.probe, pin_dir, &err))
		goto cleanup;
	report_probe(&d.probe);
	if (kars_sandboxes_init(&d.sandboxes, &d.loader, &err))
		goto cleanup;
	adopted = true;
	if (karsd_events_start(&d, &err) || karsd_control_start(&d, &err))
		goto cleanup;
	if (metrics && karsd_metrics_http_start(&d, metrics, &err))
		goto cleanup;

	sigint = evsignal_new(d.base, SIGINT, on_signal, &d);
	sigterm = evsignal_new(d.base, SIGTERM, on_signal, &d);
	gc = event_new(d.base, -1, EV_PERSIST, on_gc_timer, &d);
	if (!sigint || !sigterm || !gc || evsignal_add(sigint, NULL) ||
	    evsignal_add(sigterm, NULL) || event_add(gc, &gc_every)) {
		kars_err_set(&err, ENOMEM, "cannot set up signal and timer events");
		goto cleanup;
	}
	log_info("karsd ready: %zu sandbox(es), %d programs, pins under %s, socket %s",
		 d.sandboxes.n, d.loader.n_programs, pin_dir, d.socket_path);
	event_base_dispatch(d.base);
	ret = 0;
cleanup:
	if (ret)
		log_error("%s", err.msg[0] ? err.msg : "start-up failed");
	if (gc)
		event_free(gc);
	if (sigint)
		event_free(sigint);
	if (sigterm)
		event_free(sigterm);
	karsd_control_stop(&d);
	karsd_events_stop(&d);
	if (d.http)
		evhttp_free(d.http);
	if (adopted)
		kars_sandboxes_free(&d.sandboxes);
	kars_lsm_close(&d.lsm);
	if (loaded)
		kars_loader_close(&d.loader);
	event_base_free(d.base);
	return ret;
}
