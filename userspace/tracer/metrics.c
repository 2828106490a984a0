/* metrics.c - Prometheus text metrics: verdicts per sandbox and reason, event
 * drops, map occupancy, enforcement level, the DNS blocklist and the FQDN
 * allowlist (the same numbers blocklist_status and status report). Served
 * by the control API's "metrics" op and, with --metrics ADDR:PORT, over
 * HTTP at GET /metrics.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdarg.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blocklist.h"
#include "fqdn.h"
#include "karsd.h"
#include "log.h"
#include "parse.h"
#include "policy.h"
#include "sandbox.skel.h"

struct text {
	char *buf;
	size_t len, cap;
};

__attribute__((format(printf, 2, 3))) static void put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt,
			      ap);
		va_end(ap);
		if (n < 0)
			return;
		if (t->buf && t->len + (size_t)n < t->cap) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = t->cap ? t->cap * 2 : 4096;
		while (cap < t->len + (size_t)n + 1)
			cap *= 2;
		char *b = realloc(t->buf, cap);
		if (!b)
			return;
		t->buf = b;
		t->cap = cap;
	}
}

uint64_t karsd_percpu_sum(int fd, const void *key)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t *vals, sum = 0;

	if (ncpu <= 0)
		return 0;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	if (vals && bpf_map_lookup_elem(fd, key, vals) == 0)
		for (int i = 0; i < ncpu; i++)
			sum += vals[i];
	free(vals);
	return sum;
}

static uint64_t count_keys(int fd, size_t key_size)
{
	char cur[64], prev[64];
	uint64_t n = 0;

	while (bpf_map_get_next_key(fd, n ? prev : NULL, cur) == 0) {
		memcpy(prev, cur, key_size);
		n++;
	}
	return n;
}

/* The blocklist generation in force and what the FQDN snooper did. DNS
 * drops per sandbox and cap are kars_verdicts_total's dns_* reasons. */
static void put_dns(struct karsd *d, struct text *t)
{
	static const char *const answers[] = {
	    [KARS_FQDN_ANSWER_LEARNED] = "learned",   [KARS_FQDN_ANSWER_NO_QUERY] = "no_query",
	    [KARS_FQDN_ANSWER_MISMATCH] = "mismatch", [KARS_FQDN_ANSWER_REFUSED] = "refused",
	    [KARS_FQDN_ANSWER_BAD] = "unreadable",
	};
	struct karsd_blocklist_info b;
	struct kars_fqdn_stats st;
	struct kars_err err = {};

	if (karsd_blocklist_info(d, &b, &err))
		memset(&b, 0, sizeof(b)); /* unreadable: reported as not loaded */
	put(t,
	    "# HELP kars_blocklist_loaded 1 when a DNS blocklist generation is in force.\n"
	    "# TYPE kars_blocklist_loaded gauge\nkars_blocklist_loaded %d\n"
	    "# HELP kars_blocklist_entries Names in the blocklist generation in force.\n"
	    "# TYPE kars_blocklist_entries gauge\nkars_blocklist_entries %u\n"
	    "# HELP kars_blocklist_generation The blocklist generation in force (0: none).\n"
	    "# TYPE kars_blocklist_generation gauge\nkars_blocklist_generation %u\n"
	    "# HELP kars_blocklist_memory_bytes Kernel memory of the generation's map "
	    "(its memlock).\n"
	    "# TYPE kars_blocklist_memory_bytes gauge\nkars_blocklist_memory_bytes %llu\n",
	    b.loaded, b.entries, b.generation, (unsigned long long)b.memory_bytes);

	kars_fqdn_stats(&d->loader, &st);
	put(t, "# HELP kars_fqdn_answers_total Resolver answers to the router that the FQDN "
	       "snooper read, by what became of them (no_query and mismatch: ignored).\n"
	       "# TYPE kars_fqdn_answers_total counter\n");
	for (size_t i = 0; i < sizeof(answers) / sizeof(answers[0]); i++)
		put(t, "kars_fqdn_answers_total{result=\"%s\"} %llu\n", answers[i],
		    (unsigned long long)st.counters[i]);
	put(t,
	    "# HELP kars_fqdn_queries_recorded_total Router queries for allowed names recorded "
	    "on egress.\n# TYPE kars_fqdn_queries_recorded_total counter\n"
	    "kars_fqdn_queries_recorded_total %llu\n"
	    "# HELP kars_fqdn_records_refused_total Answer records not learned, by why.\n"
	    "# TYPE kars_fqdn_records_refused_total counter\n"
	    "kars_fqdn_records_refused_total{why=\"full\"} %llu\n"
	    "kars_fqdn_records_refused_total{why=\"quota\"} %llu\n",
	    (unsigned long long)st.counters[KARS_FQDN_QUERY_RECORDED],
	    (unsigned long long)st.counters[KARS_FQDN_ENTRY_FULL],
	    (unsigned long long)st.counters[KARS_FQDN_ENTRY_QUOTA]);
	put(t,
	    "# HELP kars_fqdn_entries Live learned FQDN entries (addresses), all sandboxes.\n"
	    "# TYPE kars_fqdn_entries gauge\nkars_fqdn_entries %llu\n"
	    "# HELP kars_fqdn_entries_stored FQDN entries in the map, expired and stale ones "
	    "included until karsd deletes them.\n"
	    "# TYPE kars_fqdn_entries_stored gauge\nkars_fqdn_entries_stored %llu\n"
	    "# HELP kars_fqdn_entries_capacity Maximum FQDN entries on the node.\n"
	    "# TYPE kars_fqdn_entries_capacity gauge\nkars_fqdn_entries_capacity %d\n",
	    (unsigned long long)st.entries, (unsigned long long)st.stored, KARS_FQDN_MAX_ENTRIES);
}

char *karsd_metrics_text(struct karsd *d)
{
	struct sandbox_bpf *skel = d->loader.skel;
	struct text t = {};
	struct kars_stat_key key, prev;
	bool first = true;
	uint64_t exact = 0, cidr = 0;
	int fd = bpf_map__fd(skel->maps.kars_stats);
	static const char *const counter_names[KARS_COUNTER__COUNT] = {
	    "events_dropped", "learn_dropped", "orig_dst_store_failed", "stats_dropped"};

	put(&t, "# HELP kars_verdicts_total Data-plane verdicts by sandbox, verdict and reason.\n"
		"# TYPE kars_verdicts_total counter\n");
	while (bpf_map_get_next_key(fd, first ? NULL : &prev, &key) == 0) {
		const struct kars_sandbox *sb = kars_sandboxes_by_id(&d->sandboxes, key.sandbox_id);

		first = false;
		prev = key;
		put(&t, "kars_verdicts_total{sandbox=\"%s\",verdict=\"%s\",reason=\"%s\"} %llu\n",
		    sb ? sb->meta.name : "", kars_verdict_name(key.verdict),
		    kars_reason_name(key.reason), (unsigned long long)karsd_percpu_sum(fd, &key));
	}

	fd = bpf_map__fd(skel->maps.kars_counters);
	put(&t, "# HELP kars_bpf_drops_total Things the BPF programs could not record, by kind.\n"
		"# TYPE kars_bpf_drops_total counter\n");
	for (uint32_t i = 0; i < KARS_COUNTER__COUNT; i++)
		put(&t, "kars_bpf_drops_total{kind=\"%s\"} %llu\n", counter_names[i],
		    (unsigned long long)karsd_percpu_sum(fd, &i));
	put(&t, "# HELP kars_events_dropped_total Events lost: ring buffer full (in BPF) or a "
		"subscriber too slow.\n# TYPE kars_events_dropped_total counter\n");
	{
		uint32_t idx = KARS_COUNTER_EVENT_DROPS;

		put(&t, "kars_events_dropped_total{where=\"ringbuf\"} %llu\n",
		    (unsigned long long)karsd_percpu_sum(fd, &idx));
	}
	put(&t, "kars_events_dropped_total{where=\"subscriber\"} %llu\n",
	    (unsigned long long)d->subscriber_drops);
	put(&t,
	    "# HELP kars_events_total Events read from the ring buffer.\n"
	    "# TYPE kars_events_total counter\nkars_events_total %llu\n",
	    (unsigned long long)d->events_total);

	for (size_t i = 0; i < d->sandboxes.n; i++) {
		exact += d->sandboxes.items[i].meta.n_exact;
		cidr += d->sandboxes.items[i].meta.n_cidr;
	}
	put(&t, "# HELP kars_map_entries Entries in the data-plane maps (rules: current "
		"generations).\n# TYPE kars_map_entries gauge\n");
	put(&t, "kars_map_entries{map=\"cgroups\"} %llu\n",
	    (unsigned long long)count_keys(bpf_map__fd(skel->maps.kars_cgroups), sizeof(__u64)));
	put(&t, "kars_map_entries{map=\"rules_exact\"} %llu\n", (unsigned long long)exact);
	put(&t, "kars_map_entries{map=\"rules_cidr\"} %llu\n", (unsigned long long)cidr);
	put(&t, "kars_map_entries{map=\"learned\"} %llu\n",
	    (unsigned long long)count_keys(bpf_map__fd(skel->maps.kars_learned),
					   sizeof(struct kars_learned_key)));
	put(&t, "# HELP kars_map_capacity Maximum entries of each data-plane map.\n"
		"# TYPE kars_map_capacity gauge\n");
	put(&t,
	    "kars_map_capacity{map=\"cgroups\"} %d\nkars_map_capacity{map=\"rules_exact\"} %d\n"
	    "kars_map_capacity{map=\"rules_cidr\"} %d\nkars_map_capacity{map=\"learned\"} %d\n"
	    "kars_map_capacity{map=\"orig_dst\"} %d\n",
	    KARS_MAX_CGROUPS, KARS_MAX_EXACT_RULES, KARS_MAX_CIDR_RULES, KARS_MAX_LEARNED,
	    KARS_MAX_ORIG_DST);
	put(&t,
	    "# HELP kars_sandboxes Sandboxes with a policy on this node.\n"
	    "# TYPE kars_sandboxes gauge\nkars_sandboxes %zu\n",
	    d->sandboxes.n);
	put(&t,
	    "# HELP kars_enforcement_level 1 for the level this node enforces at "
	    "(full: with BPF LSM; no-lsm: socket and packet hooks only).\n"
	    "# TYPE kars_enforcement_level gauge\nkars_enforcement_level{level=\"%s\"} 1\n",
	    kars_probe_enforcement(&d->probe));
	put(&t,
	    "# HELP kars_lsm_programs BPF LSM programs attached by this karsd (0 at no-lsm).\n"
	    "# TYPE kars_lsm_programs gauge\nkars_lsm_programs %d\n",
	    d->lsm.n_programs);
	put_dns(d, &t);
	return t.buf;
}

static void on_http(struct evhttp_request *req, void *arg)
{
	struct karsd *d = arg;
	struct evbuffer *out;
	char *text;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET ||
	    strcmp(evhttp_request_get_uri(req), "/metrics") != 0) {
		evhttp_send_error(req, HTTP_NOTFOUND, "only GET /metrics is served here");
		return;
	}
	text = karsd_metrics_text(d);
	out = evbuffer_new();
	if (!text || !out) {
		evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
		free(text);
		if (out)
			evbuffer_free(out);
		return;
	}
	evbuffer_add(out, text, strlen(text));
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "text/plain; version=0.0.4");
	evhttp_send_reply(req, HTTP_OK, "OK", out);
	evbuffer_free(out);
	free(text);
}

int karsd_metrics_http_start(struct karsd *d, const char *addr_port, struct kars_err *err)
{
	const char *colon = strrchr(addr_port, ':');
	char addr[64];
	uint16_t port;
	int ret;

	if (!colon || (size_t)(colon - addr_port) >= sizeof(addr))
		return kars_err_set(err, EINVAL, "--metrics: expected ADDR:PORT, got \"%s\"",
				    addr_port);
	memcpy(addr, addr_port, (size_t)(colon - addr_port));
	addr[colon - addr_port] = '\0';
	ret = kars_parse_port(colon + 1, &port, "--metrics port", err);
	if (ret)
		return ret;
	d->http = evhttp_new(d->base);
	if (!d->http)
		return kars_err_set(err, ENOMEM, "evhttp_new failed");
	evhttp_set_allowed_methods(d->http, EVHTTP_REQ_GET);
	evhttp_set_gencb(d->http, on_http, d);
	if (evhttp_bind_socket(d->http, addr, port))
		return kars_err_set(err, EADDRINUSE, "--metrics: cannot listen on %s", addr_port);
	log_info("metrics on http://%s/metrics", addr_port);
	return 0;
}
