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
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "egress_proxy.h"
#include "gov_gate.h"
#include "gov_limits.h"
#include "http_server.h"
#include "log.h"
#include "policy_watch.h"
#include "router.h"
#include "upstream.h"
#include "upstream_http.h"

static void usage(FILE *f)
{
	const struct kars_gov_limits d = KARS_GOV_LIMITS_AGT;

	fprintf(f,
		"usage: kars-router --config FILE [--log-level LEVEL] [--log-json]\n"
		"  --config FILE      the router's configuration (JSON; docs/router.md)\n"
		"  --log-level LEVEL  error, warn, info (default) or debug\n"
		"  --log-json         log JSON objects, one per line\n"
		"Rate limits are on without any configuration: %.0f inferences and /agt/ calls a\n"
		"second per agent (burst %u), %.0f a second for the whole router (burst %u).\n"
		"governance.rateLimit in the config changes them; a rate of 0 turns one off.\n",
		d.principal_rate, d.principal_burst, d.global_rate, d.global_burst);
}

static void on_drain_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct kars_router *r = arg;

	log_warn("drain deadline (%ld ms): stopping with %llu request(s) in flight",
		 r->cfg.drain_timeout_ms, (unsigned long long)r->inflight);
	event_base_loopbreak(r->base);
}

/* The first signal drains: the listener closes, requests in flight go on
 * (up to drainTimeoutMs); a second one stops at once. */
static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct kars_router *r = arg;
	struct timeval tv = {.tv_sec = r->cfg.drain_timeout_ms / 1000,
			     .tv_usec = (r->cfg.drain_timeout_ms % 1000) * 1000};

	if (r->draining || !r->inflight) {
		log_info("signal %d: stopping", (int)sig);
		event_base_loopbreak(r->base);
		return;
	}
	log_info("signal %d: draining %llu request(s) in flight, at most %ld ms", (int)sig,
		 (unsigned long long)r->inflight, r->cfg.drain_timeout_ms);
	r->draining = true;
	kars_hsrv_stop_listening(r->http);
	kars_egress_proxy_stop_listening(r->egress);
	r->drain_timer = evtimer_new(r->base, on_drain_deadline, r);
	if (!r->drain_timer || evtimer_add(r->drain_timer, &tv))
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
	{
		/* With the changelist, a socket's interest switched on and off
		 * again within one loop turn (the upstream client's bufferevents
		 * do it on every write) costs no epoll_ctl: bench-router's
		 * profile had 15% of the router's time in epoll_ctl without it. */
		struct event_config *ec = event_config_new();

		if (ec)
			event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
		r.base = ec ? event_base_new_with_config(ec) : NULL;
		if (ec)
			event_config_free(ec);
	}
	r.upstream = r.base ? kars_upstream_new(r.base) : NULL;
	if (r.base) {
		struct kars_uhttp_config uc = {
		    .base_url = r.cfg.base_url,
		    .ca_file = r.cfg.ca_file,
		    .connect_timeout_ms = r.cfg.connect_timeout_ms,
		    .idle_timeout_s = r.cfg.idle_timeout_s,
		};

		r.http_upstream = kars_uhttp_new(r.base, &uc, &err);
		if (!r.http_upstream) {
			log_error("%s", err.msg);
			goto cleanup;
		}
	}
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
	if (!r.upstream || !r.watch) {
		log_error("out of memory");
		goto cleanup;
	}
	r.gov = kars_gov_gate_new(&r, &err);
	if (!r.gov) {
		log_error("%s", err.msg);
		goto cleanup;
	}
	if (kars_router_routes_init(&r, &err) ||
	    kars_hsrv_listen(r.http, r.cfg.listen_addr, r.cfg.listen_port, &err)) {
		log_error("%s", err.msg);
		goto cleanup;
	}
	if (r.cfg.egress.enabled) {
		r.egress = kars_egress_proxy_new(&r, &err);
		if (!r.egress) {
			log_error("%s", err.msg);
			goto cleanup;
		}
		for (unsigned i = 0; i < r.cfg.egress.n_listen; i++)
			log_info("egress proxy on %s (%s)", r.cfg.egress.listen_text[i],
				 r.cfg.egress.policy.mode == KARS_EGRESS_LEARN ? "learn"
									       : "strict");
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
	kars_egress_proxy_free(r.egress);
	kars_egress_policy_free(&r.cfg.egress.policy);
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
	if (r.drain_timer)
		event_free(r.drain_timer);
	/* Before the HTTP server and the upstream: it calls waiting requests
	 * back with an error. */
	kars_credential_free(r.credential);
	kars_hsrv_free(r.http);
	kars_upstream_free(r.upstream);
	kars_uhttp_free(r.http_upstream);
	if (r.base)
		event_base_free(r.base);
	curl_global_cleanup();
	return ret;
}
