/* policy.c - governance evaluation latency (`make bench-policy`).
 *
 * Builds profiles of 10, 100, 1,000 and 10,000 rules shaped like real
 * ToolPolicy profiles (capability rules over tool.invoke:, shell:, mcp:
 * namespaces with exact and prefix patterns, approval rules, rate_limit
 * rules), loads them through the real loader (YAML text), and times
 * kars_gov_evaluate() through an engine reader, one call at a time, over a
 * fixed realistic action mix: exact hits, prefix hits, namespace denials,
 * approvals, inference calls charged to a rate-limit window, and actions no
 * rule decides. The baseline is the same evaluation against an empty profile
 * ("policies: []"), in the same run: the cost of the call, the reader's
 * hazard slot and the action check, without any rule.
 *
 * Timing: each evaluation is bracketed by rdtscp (serialising its end) with
 * an lfence, the cycles converted to ns by a calibration against
 * CLOCK_MONOTONIC, and the median cost of an empty bracket subtracted.
 * bench/README.md explains why per call, and what the figures include.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <x86intrin.h>

#include "gov_limits.h"
#include "governance.h"

#define SAMPLES	  400000
#define N_ACTIONS 4096

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t tsc_start(void)
{
	_mm_lfence();
	return __rdtsc();
}

static inline uint64_t tsc_end(void)
{
	unsigned aux;
	uint64_t t = __rdtscp(&aux);

	_mm_lfence();
	return t;
}

static double tsc_per_ns(void)
{
	uint64_t n0 = mono_ns(), c0 = __rdtsc(), n1, c1;

	do {
		n1 = mono_ns();
	} while (n1 - n0 < 200000000ull);
	c1 = __rdtsc();
	return (double)(c1 - c0) / (double)(n1 - n0);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* A deterministic generator, so every run sees the same profiles and mix. */
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

struct buf {
	char *p;
	size_t len, cap;
};

static void put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if ((size_t)n < b->cap - b->len)
			break;
		b->cap = b->cap * 2 + (size_t)n;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			abort();
	}
	b->len += (size_t)n;
}

/* n rules, shaped like a ToolPolicy profile: per tool family, a deny rule
 * over tool.invoke: names (4 in 10), an MCP family rule with exact and prefix
 * allows and an exact deny (3 in 10), an approval rule (1 in 10), a
 * rate_limit rule on one model (1 in 10), a shell:/mcp: namespace deny (1 in
 * 10); first an inference allow, last a catch-all "tool.invoke:*" allow.
 * (Allow lists name mcp:<family>:<tool>, not tool.invoke:<tool>: under AGT's
 * in-scope rule an allow list of tool.invoke: names denies every other
 * tool.invoke: action; see docs/governance.md.) */
static char *make_profile(int n, size_t *len)
{
	struct buf b = {.p = malloc(1 << 16), .cap = 1 << 16};

	put(&b, "version: \"1.0\"\nagent: bench\npolicies:%s\n", n == 0 ? " []" : "");
	if (n > 0)
		put(&b, "  - {name: inference-allow, type: capability, allowed_actions: "
			"[\"inference:*\", \"image_generation:*\"], priority: 80}\n");
	for (int i = 1; i < n - 1; i++) {
		int kind = i % 10;

		if (kind < 4)
			put(&b,
			    "  - name: fam%d\n    type: capability\n    priority: %d\n"
			    "    denied_actions: [\"tool.invoke:fam%d_delete\", "
			    "\"tool.invoke:fam%d_admin\", \"tool.invoke:fam%d_exec*\"]\n",
			    i, 100 - i % 50, i, i, i);
		else if (kind < 7)
			put(&b,
			    "  - name: mcp%d\n    type: capability\n    priority: %d\n"
			    "    denied_actions: [\"mcp:fam%d:delete\"]\n"
			    "    allowed_actions: [\"mcp:fam%d:read\", \"mcp:fam%d:list\", "
			    "\"mcp:fam%d:get*\"]\n",
			    i, 100 - i % 50, i, i, i, i);
		else if (kind == 7)
			put(&b,
			    "  - {name: appr%d, type: approval, actions: [\"admin:bulk%d*\", "
			    "\"deploy.env%d.*\"], min_approvals: 1, priority: 60}\n",
			    i, i, i);
		else if (kind == 8)
			put(&b,
			    "  - {name: rl%d, type: rate_limit, actions: [\"inference:chat_completions:"
			    "model%d\"], max_calls: 4000000000, window: 1h, priority: 40}\n",
			    i, i);
		else
			put(&b,
			    "  - {name: ns%d, type: capability, denied_actions: [\"shell:cmd%d\", "
			    "\"mcp:server%d:*\"], priority: 90}\n",
			    i, i, i);
	}
	if (n > 1)
		put(&b, "  - {name: tool-allow, type: capability, allowed_actions: "
			"[\"tool.invoke:*\"], priority: 0}\n");
	*len = b.len;
	return b.p;
}

/* A family index in [1, n_rules - 2] whose rule has kind lo..hi (i % 10),
 * or a number past the profile when there is none (the action then goes
 * unmatched, as in a small profile it would). */
static int family(int n_rules, int lo, int hi)
{
	int top = n_rules - 2, f;

	if (top < 1)
		return 1000000 + (int)rnd(1000);
	for (int tries = 0; tries < 64; tries++) {
		f = 1 + (int)rnd((uint32_t)top);
		if (f % 10 >= lo && f % 10 <= hi)
			return f;
	}
	return 1000000 + (int)rnd(1000);
}

/* The mix a router sees: mostly tool calls and inference. */
static void make_actions(int n, char actions[][96])
{
	for (int i = 0; i < N_ACTIONS; i++) {
		int pick = (int)rnd(100);

		if (pick < 25) /* a tool no family rule names: the catch-all allows */
			snprintf(actions[i], 96, "tool.invoke:fam%d_search", family(n, 0, 3));
		else if (pick < 35) /* exact deny */
			snprintf(actions[i], 96, "tool.invoke:fam%d_delete", family(n, 0, 3));
		else if (pick < 50) /* exact allow */
			snprintf(actions[i], 96, "mcp:fam%d:read", family(n, 4, 6));
		else if (pick < 60) /* prefix allow */
			snprintf(actions[i], 96, "mcp:fam%d:get_document", family(n, 4, 6));
		else if (pick < 85) /* allowed, charged to a rate-limit window */
			snprintf(actions[i], 96, "inference:chat_completions:model%d",
				 family(n, 8, 8));
		else if (pick < 90)
			snprintf(actions[i], 96, "admin:bulk%d_delete", family(n, 7, 7));
		else if (pick < 95)
			snprintf(actions[i], 96, "shell:cmd%d", family(n, 9, 9));
		else /* nothing decides it */
			snprintf(actions[i], 96, "files.read:/sandbox/notes%d.txt", (int)rnd(1000));
	}
}

struct result {
	double p50, p99, p999;
	uint64_t decisions[4];
};

static uint64_t samples[SAMPLES];

/* With l, each call goes through kars_gov_evaluate_as(): the principal's
 * and the global token bucket and the monitor, then the profile. */
static int measure(int n_rules, double per_ns, uint64_t overhead, struct kars_gov_limiter *l,
		   struct result *res)
{
	static char principals[64][32];
	static char actions[N_ACTIONS][96];
	struct kars_gov_engine *e = kars_gov_engine_new();
	struct kars_gov_profile *p = NULL;
	struct kars_gov_reader *r = NULL;
	struct kars_err err = {0};
	size_t len;
	char *yaml = make_profile(n_rules, &len);
	uint64_t load0 = mono_ns();

	if (kars_gov_profile_load_buf(yaml, len, "bench.yaml", NULL, &p, NULL, &err) != 0) {
		fprintf(stderr, "bench: profile of %d rules did not load: %s\n", n_rules, err.msg);
		return -1;
	}
	fprintf(stderr, "policy: %d rules: %zu bytes of YAML loaded and compiled in %.1f ms\n",
		n_rules, len, (double)(mono_ns() - load0) / 1e6);
	free(yaml);
	kars_gov_engine_publish(e, p);
	if (kars_gov_reader_open(e, &r) != 0)
		return -1;
	make_actions(n_rules, actions);
	for (int i = 0; i < 64; i++)
		snprintf(principals[i], sizeof(principals[i]), "agent-%d", i);
	memset(res, 0, sizeof(*res));

	/* warm up: caches, branch predictors, the CPU's clock */
	for (int i = 0; i < 200000; i++) {
		struct kars_gov_request req = {.action = actions[i % N_ACTIONS]};
		struct kars_gov_decision d;

		kars_gov_evaluate(r, &req, &d);
	}
	for (int i = 0; i < SAMPLES; i++) {
		struct kars_gov_request req = {.action = actions[i % N_ACTIONS]};
		struct kars_gov_decision d;
		uint64_t t0, t1;

		t0 = tsc_start();
		if (l)
			kars_gov_evaluate_as(r, l, principals[i % 64], &req, &d);
		else
			kars_gov_evaluate(r, &req, &d);
		t1 = tsc_end();
		samples[i] = t1 - t0 > overhead ? t1 - t0 - overhead : 0;
		res->decisions[d.verdict]++;
	}
	qsort(samples, SAMPLES, sizeof(*samples), cmp_u64);
	res->p50 = (double)samples[SAMPLES / 2] / per_ns;
	res->p99 = (double)samples[SAMPLES * 99 / 100] / per_ns;
	res->p999 = (double)samples[SAMPLES * 999 / 1000] / per_ns;
	kars_gov_reader_close(r);
	kars_gov_engine_free(e);
	return 0;
}

int main(void)
{
	static const int sizes[] = {0, 10, 100, 1000, 10000};
	static const char *const labels[] = {"empty", "10", "100", "1k", "10k"};
	struct result res[5], limited;
	/* rates no run reaches, so every call pays for the buckets and the
	 * monitor and none is refused by them */
	struct kars_gov_limits lim = {.global_rate = 1e9,
				      .global_burst = 1000000000,
				      .principal_rate = 1e9,
				      .principal_burst = 1000000000,
				      .burst_calls = 4000000000u,
				      .denials = 4000000000u};
	struct kars_gov_limiter *l = NULL;
	struct kars_err err = {0};
	struct utsname u;
	double per_ns;
	uint64_t overhead;

	per_ns = tsc_per_ns();
	for (int i = 0; i < SAMPLES; i++) {
		uint64_t t0 = tsc_start(), t1 = tsc_end();

		samples[i] = t1 - t0;
	}
	qsort(samples, SAMPLES, sizeof(*samples), cmp_u64);
	overhead = samples[SAMPLES / 2];
	uname(&u);
	printf("bench: policy_env kernel=%s tsc_ghz=%.3f timer_overhead_ns=%.1f samples=%d\n",
	       u.release, per_ns, (double)overhead / per_ns, SAMPLES);
	fflush(stdout);
	for (int i = 0; i < 5; i++) {
		if (measure(sizes[i], per_ns, overhead, NULL, &res[i]))
			return 1;
		fprintf(stderr,
			"policy: %s: p50 %.0f ns, p99 %.0f ns, p99.9 %.0f ns; decisions allow %llu "
			"deny %llu approval %llu rate_limited %llu\n",
			labels[i], res[i].p50, res[i].p99, res[i].p999,
			(unsigned long long)res[i].decisions[0],
			(unsigned long long)res[i].decisions[1],
			(unsigned long long)res[i].decisions[2],
			(unsigned long long)res[i].decisions[3]);
	}
	if (kars_gov_limiter_new(&lim, &l, &err)) {
		fprintf(stderr, "bench: limiter: %s\n", err.msg);
		return 1;
	}
	if (measure(1000, per_ns, overhead, l, &limited))
		return 1;
	kars_gov_limiter_free(l);
	fprintf(stderr,
		"policy: 1k, with principal and global buckets and the monitor: p50 %.0f ns, "
		"p99 %.0f ns, p99.9 %.0f ns\n",
		limited.p50, limited.p99, limited.p999);
	for (int i = 0; i < 5; i++) {
		printf("bench: policy_eval_p50_ns_%s=%.0f\n", labels[i], res[i].p50);
		printf("bench: policy_eval_p99_ns_%s=%.0f\n", labels[i], res[i].p99);
	}
	printf("bench: policy_eval_limited_p50_ns_1k=%.0f\n", limited.p50);
	printf("bench: policy_eval_limited_p99_ns_1k=%.0f\n", limited.p99);
	for (int i = 1; i < 5; i++)
		printf("bench: policy_eval_ratio_p99_%s=%.2f\n", labels[i],
		       res[0].p99 > 0 ? res[i].p99 / res[0].p99 : 0.0);
	return 0;
}
