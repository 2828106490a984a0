/* main.c - kars-router: options, start-up, the event loop.
 *
 * It refuses to start rather than run half-configured: a bad config file, an
 * unreadable credential, a credential the agent's UID could read, a budget
 * file of another sandbox or an audit log that does not verify are all fatal,
 * with the reason on stderr. A missing or bad policy file is not: the router
 * starts, refuses inference, reports itself not ready, and loads the policy
 * when a good one arrives.
 */
#include <event2/event.h>
#include <event2/http.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "gov_gate.h"
#include "log.h"
#include "policy_watch.h"
#include "router.h"
#include "upstream.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: kars-router --config FILE [--log-level LEVEL] [--log-json]\n"
		   "  --config FILE      the router's configuration (JSON; docs/router.md)\n"
		   "  --log-level LEVEL  error, warn, info (default) or debug\n"
		   "  --log-json         log JSON objects, one per line\n");
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct kars_router *r = arg;

	log_info("signal %d: stopping", (int)sig);
	event_base_loopbreak(r->base);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"log-level", required_argument, NULL, 'l'},
	    {"log-json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct kars_router r = {0};
	struct event *sigint = NULL, *sigterm = NULL;
	struct kars_err err = {0};
	const char *config = NULL;
	int opt, ret = 1;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 'l':
			if (kars_log_level_option("kars-router", optarg))
				return 2;
			break;
		case 'j':
			kars_log_set_json(true);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!config || optind != argc) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (kars_router_config_load(config, &r.cfg, &err) || kars_router_open_state(&r, &err)) {
		log_error("%s", err.msg);
		goto cleanup;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		log_error("curl_global_init failed");
		goto cleanup;
	}
	r.base = event_base_new();
	r.http = r.base ? evhttp_new(r.base) : NULL;
	r.upstream = r.base ? kars_upstream_new(r.base) : NULL;
	/* The credential is fetched (or the key read) before the first request:
	 * a key file the agent could read stops the router here. */
	r.credential = r.upstream ? kars_credential_new(r.base, r.upstream, &r.cfg.auth,
							r.cfg.kind == KARS_UPSTREAM_AZURE
							    ? KARS_CREDENTIAL_API_KEY
							    : KARS_CREDENTIAL_BEARER,
							&err)
				  : NULL;
	if (r.upstream && !r.credential) {
		log_error("%s", err.msg);
		goto cleanup;
	}
	r.tick = r.base ? evtimer_new(r.base, kars_router_on_tick, &r) : NULL;
	r.watch = r.tick ? kars_policy_watch_new(&r) : NULL;
	if (!r.http || !r.upstream || !r.watch) {
		log_error("out of memory");
		goto cleanup;
	}
	r.gov = kars_gov_gate_new(&r, &err);
	if (!r.gov) {
		log_error("%s", err.msg);
		goto cleanup;
	}
	kars_router_routes_init(&r);
	if (evhttp_bind_socket(r.http, r.cfg.listen_addr, r.cfg.listen_port)) {
		log_error("listen: cannot bind %s:%u", r.cfg.listen_addr, r.cfg.listen_port);
		goto cleanup;
	}
	sigint = evsignal_new(r.base, SIGINT, on_signal, &r);
	sigterm = evsignal_new(r.base, SIGTERM, on_signal, &r);
	if (!sigint || !sigterm || evsignal_add(sigint, NULL) || evsignal_add(sigterm, NULL)) {
		log_error("cannot set up signal handling");
		goto cleanup;
	}
	log_info("kars-router for %s on %s:%u, upstream %s (%s)", r.cfg.sandbox, r.cfg.listen_addr,
		 r.cfg.listen_port, r.cfg.base_url,
		 r.cfg.kind == KARS_UPSTREAM_AZURE ? "azure" : "openai");
	event_base_dispatch(r.base);
	ret = 0;
cleanup:
	kars_policy_watch_free(r.watch);
	kars_gov_gate_free(r.gov);
	kars_inference_policy_unref(r.policy);
	if (r.tick)
		event_free(r.tick);
	if (kars_budget_persist(&r.budget, &err))
		log_error("%s", err.msg);
	if (r.audit && kars_audit_close(r.audit, &err)) {
		log_error("audit: %s", err.msg);
		ret = 1;
	}
	if (sigint)
		event_free(sigint);
	if (sigterm)
		event_free(sigterm);
	/* Before the HTTP server and the upstream: it calls waiting requests
	 * back with an error. */
	kars_credential_free(r.credential);
	if (r.http)
		evhttp_free(r.http);
	kars_upstream_free(r.upstream);
	if (r.base)
		event_base_free(r.base);
	curl_global_cleanup();
	return ret;
}
