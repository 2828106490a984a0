/* audit.c - audit chain benchmark, and a writer of real audit logs for tests.
 *
 *   run    the measurement (`make bench-audit`). In DIR, REPS rounds of:
 *          kars      N records through kars_audit_append() + kars_audit_tick()
 *                    at the default flush interval and checkpoint cadence,
 *                    then kars_audit_close(): encoding, SHA-256 chaining,
 *                    Ed25519 checkpoints, group commit with fdatasync().
 *          baseline  the same bytes (the file kars just wrote, line by line)
 *                    appended with one write() per record and one fdatasync()
 *                    at each point where kars flushed: a plain JSON-lines
 *                    logger with the same durability, minus the chain.
 *          floor     the same batches with one write() each: the disk alone.
 *          Then fdatasync() per record (kars_audit_append_sync) for context.
 *          Prints "bench: audit_..." lines with medians and ratios.
 *   write  writes a log of N realistic records (for selftests/e2e/audit.sh
 *          and the fuzz seed corpus); --crash stops after a flush without
 *          closing, as a crash would.
 *
 * Why the baseline writes record by record: that is what a logger without
 * group commit does (the original wrote each JSON line with O_APPEND). The
 * floor shows how much of either is the disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "log.h"

#define MAX_REPS 32

struct opts {
	const char *dir;
	const char *out;
	const char *key;
	long records;
	long reps;
	long sync_records;
	long every;
	bool crash;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: audit run --dir DIR [--records N] [--reps N] [--sync-records N]\n"
		"       audit write --out FILE [--key FILE] [--records N] [--every N] [--crash]\n"
		"\n"
		"run measures in a new directory under DIR (removed afterwards) and prints\n"
		"\"bench: audit_...\" lines; write makes a log of N realistic records.\n");
}

static uint64_t now_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Record i as the router would write it: ~650-byte lines, mostly allowed
 * inference, some denials, now and then a policy reload. The payload digest
 * is the router's to compute (from the request body it already holds). */
static void fill(struct kars_audit_record *r, uint64_t i, uint8_t digest[32], char *reason,
		 size_t len)
{
	uint64_t x = i * 0x9e3779b97f4a7c15ull;

	memset(r, 0, sizeof(*r));
	for (int k = 0; k < 32; k++)
		digest[k] = (uint8_t)(x >> (8 * (k % 8))) ^ (uint8_t)k;
	r->sandbox = "team-a/research-agent";
	r->principal = "spiffe://cluster.local/ns/team-a/sa/research-agent";
	r->model = "gpt-4o-mini";
	r->payload_sha256 = digest;
	if (i % 50 == 49) {
		r->action = "policy.reload";
		r->decision = "applied";
		snprintf(reason, len, "InferencePolicy team-a/default generation %llu: 4 rules",
			 (unsigned long long)(i / 50));
		r->model = "";
		return;
	}
	r->action = "inference";
	r->tokens_in = 200 + x % 3800;
	r->tokens_out = 20 + (x >> 16) % 900;
	r->latency_ns = 150000000 + (x >> 24) % 2000000000;
	if (i % 10 == 9) {
		r->decision = "deny";
		snprintf(reason, len, "rate limit: %llu requests in the last minute, limit 120",
			 (unsigned long long)(121 + x % 40));
	} else {
		r->decision = "allow";
		snprintf(reason, len,
			 "InferencePolicy team-a/default: model allowed, daily budget %llu%% used",
			 (unsigned long long)(x % 100));
	}
	r->reason = reason;
}

static int append(struct kars_audit *log, uint64_t i, bool sync, struct kars_err *err)
{
	struct kars_audit_record r;
	uint8_t digest[32];
	char reason[128];

	fill(&r, i, digest, reason, sizeof(reason));
	r.reason = reason;
	return sync ? kars_audit_append_sync(log, &r, err) : kars_audit_append(log, &r, err);
}

/* --- run -------------------------------------------------------------------- */

struct batches {
	uint64_t *end; /* file offset where each flush ended */
	size_t n, cap;
};

static int push_batch(struct batches *b, uint64_t end)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 1024;
		uint64_t *bigger = realloc(b->end, cap * sizeof(*bigger));

		if (!bigger)
			return -ENOMEM;
		b->end = bigger;
		b->cap = cap;
	}
	b->end[b->n++] = end;
	return 0;
}

/* N records through the library; records where each flush ended. */
static int run_kars(const char *path, const char *key, long n, struct batches *b, double *rate)
{
	struct kars_audit_opts opts = {.key_path = key, .principal = "bench"};
	struct kars_audit_stats st;
	struct kars_err err = {0};
	struct kars_audit *log;
	uint64_t t0, flushes;
	struct stat sb;
	int ret;

	unlink(path);
	b->n = 0;
	ret = kars_audit_open(&log, path, &opts, &err);
	if (ret)
		goto fail;
	kars_audit_stats(log, &st);
	flushes = st.flushes;
	ret = push_batch(b, st.bytes_written);
	t0 = now_ns(CLOCK_MONOTONIC);
	for (long i = 0; i < n && !ret; i++) {
		ret = append(log, (uint64_t)i, false, &err);
		ret = ret ?: kars_audit_tick(log, now_ns(CLOCK_MONOTONIC), &err);
		kars_audit_stats(log, &st);
		if (!ret && st.flushes != flushes) {
			flushes = st.flushes;
			ret = push_batch(b, st.bytes_written);
		}
	}
	if (ret) {
		kars_audit_close(log, NULL);
		goto fail;
	}
	ret = kars_audit_close(log, &err);
	*rate = (double)n * 1e9 / (double)(now_ns(CLOCK_MONOTONIC) - t0);
	if (!ret && stat(path, &sb))
		ret = -errno;
	if (!ret && (uint64_t)sb.st_size != b->end[b->n - 1])
		ret = push_batch(b, (uint64_t)sb.st_size);
	if (!ret)
		return 0;
fail:
	fprintf(stderr, "audit: kars run: %s\n", err.msg[0] ? err.msg : strerror(-ret));
	return ret ? ret : -EIO;
}

/* The bytes of src in the batches of b: per_record makes one write() per
 * line, else one per batch; one fdatasync() per batch either way. */
static int run_plain(const char *path, const char *src, const struct batches *b, long n,
		     bool per_record, double *rate)
{
	uint64_t t0, start = 0;
	int fd, ret = 0;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	t0 = now_ns(CLOCK_MONOTONIC);
	for (size_t k = 1; k < b->n && !ret; k++) {
		const char *p = src + start, *end = src + b->end[k];

		while (p < end && !ret) {
			const char *q = per_record ? memchr(p, '\n', (size_t)(end - p)) + 1 : end;

			if (write(fd, p, (size_t)(q - p)) != q - p)
				ret = -EIO;
			p = q;
		}
		if (!ret && fdatasync(fd))
			ret = -errno;
		start = b->end[k];
	}
	*rate = (double)n * 1e9 / (double)(now_ns(CLOCK_MONOTONIC) - t0);
	close(fd);
	return ret;
}

static int run_sync(const char *path, const char *key, long n, double *rate)
{
	struct kars_audit_opts opts = {.key_path = key, .principal = "bench"};
	struct kars_err err = {0};
	struct kars_audit *log;
	uint64_t t0;
	int ret;

	unlink(path);
	ret = kars_audit_open(&log, path, &opts, &err);
	if (ret)
		goto out;
	t0 = now_ns(CLOCK_MONOTONIC);
	for (long i = 0; i < n && !ret; i++)
		ret = append(log, (uint64_t)i, true, &err);
	*rate = (double)n * 1e9 / (double)(now_ns(CLOCK_MONOTONIC) - t0);
	ret = kars_audit_close(log, ret ? NULL : &err) ?: ret;
out:
	if (ret)
		fprintf(stderr, "audit: sync run: %s\n", err.msg);
	return ret;
}

static char *slurp(const char *path, size_t *len)
{
	struct stat sb;
	char *buf = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd >= 0 && !fstat(fd, &sb) && (buf = malloc((size_t)sb.st_size + 1)) &&
	    read(fd, buf, (size_t)sb.st_size) == sb.st_size) {
		*len = (size_t)sb.st_size;
		close(fd);
		return buf;
	}
	free(buf);
	if (fd >= 0)
		close(fd);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, long n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void print_env(const char *dir, long records, long reps)
{
	char cpu[128] = "unknown", line[256];
	const char *fs = "other";
	struct utsname u;
	struct statfs sf;
	FILE *f = fopen("/proc/cpuinfo", "r");

	while (f && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "model name", 10) == 0 && strchr(line, ':')) {
			snprintf(cpu, sizeof(cpu), "%s", strchr(line, ':') + 2);
			cpu[strcspn(cpu, "\n")] = '\0';
			break;
		}
	}
	if (f)
		fclose(f);
	if (!statfs(dir, &sf))
		fs = sf.f_type == 0xEF53       ? "ext4"
		     : sf.f_type == 0x58465342 ? "xfs"
		     : sf.f_type == 0x9123683E ? "btrfs"
		     : sf.f_type == 0x01021994 ? "tmpfs"
					       : "other";
	uname(&u);
	printf("bench: audit_env kernel=%s fs=%s cpus=%ld cpu=\"%s\" records=%ld reps=%ld\n",
	       u.release, fs, sysconf(_SC_NPROCESSORS_ONLN), cpu, records, reps);
}

static int cmd_run(const struct opts *o)
{
	double kars[MAX_REPS], base[MAX_REPS], floor_[MAX_REPS], sync_rate = 0, k, bl;
	char dir[4096], path[4200], plain[4200], key[4200];
	struct batches b = {0};
	uint64_t batches = 0, bytes = 0;
	int ret = 0;

	snprintf(dir, sizeof(dir), "%s/bench-audit.XXXXXX", o->dir);
	if (!mkdtemp(dir)) {
		fprintf(stderr, "audit: mkdtemp %s: %s\n", dir, strerror(errno));
		return 1;
	}
	snprintf(path, sizeof(path), "%s/kars.jsonl", dir);
	snprintf(plain, sizeof(plain), "%s/plain.jsonl", dir);
	snprintf(key, sizeof(key), "%s/audit.key", dir);
	print_env(dir, o->records, o->reps);
	fflush(stdout);
	for (long r = 0; r < o->reps && !ret; r++) {
		size_t len = 0;
		char *src;

		ret = run_kars(path, key, o->records, &b, &kars[r]);
		src = ret ? NULL : slurp(path, &len);
		if (!ret && !src)
			ret = -EIO;
		ret = ret ?: run_plain(plain, src, &b, o->records, true, &base[r]);
		ret = ret ?: run_plain(plain, src, &b, o->records, false, &floor_[r]);
		free(src);
		batches += b.n - 1;
		bytes += len;
		if (!ret)
			fprintf(stderr,
				"audit: rep %ld: kars %.0f/s, baseline %.0f/s, floor %.0f/s, "
				"%zu flushes, %zu bytes\n",
				r + 1, kars[r], base[r], floor_[r], b.n - 1, len);
	}
	ret = ret ?: run_sync(path, key, o->sync_records, &sync_rate);
	if (!ret) {
		k = median(kars, o->reps);
		bl = median(base, o->reps);
		printf("bench: audit_records_per_s=%.0f\n", k);
		printf("bench: audit_baseline_write_records_per_s=%.0f\n", bl);
		printf("bench: audit_ratio=%.3f\n", k / bl);
		printf("bench: audit_floor_write_records_per_s=%.0f\n", median(floor_, o->reps));
		printf("bench: audit_sync_records_per_s=%.0f\n", sync_rate);
		printf("bench: audit_bytes_per_record=%.0f audit_records_per_flush=%.0f\n",
		       (double)bytes / (double)(o->records * o->reps),
		       (double)(o->records * o->reps) / (double)batches);
	}
	free(b.end);
	unlink(path);
	unlink(plain);
	unlink(key);
	strcat(key, ".pub");
	unlink(key);
	rmdir(dir);
	return ret ? 1 : 0;
}

/* --- write ------------------------------------------------------------------- */

static int cmd_write(const struct opts *o)
{
	struct kars_audit_opts opts = {
	    .key_path = o->key, .checkpoint_every = (uint32_t)o->every, .principal = "bench"};
	struct kars_err err = {0};
	struct kars_audit *log;
	int ret;

	ret = kars_audit_open(&log, o->out, &opts, &err);
	for (long i = 0; i < o->records && !ret; i++)
		ret = append(log, (uint64_t)i, false, &err);
	if (!ret && o->crash) {
		ret = kars_audit_flush(log, &err);
		if (!ret)
			_exit(0); /* no close: no closing checkpoint */
	}
	if (log)
		ret = kars_audit_close(log, ret ? NULL : &err) ?: ret;
	if (ret) {
		fprintf(stderr, "audit: write: %s\n", err.msg);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"dir", required_argument, NULL, 'd'},
	    {"out", required_argument, NULL, 'o'},
	    {"key", required_argument, NULL, 'k'},
	    {"records", required_argument, NULL, 'n'},
	    {"reps", required_argument, NULL, 'r'},
	    {"sync-records", required_argument, NULL, 's'},
	    {"every", required_argument, NULL, 'e'},
	    {"crash", no_argument, NULL, 'c'},
	    {NULL, 0, NULL, 0},
	};
	struct opts o = {.records = 200000, .reps = 5, .sync_records = 2000};
	const char *cmd = argc > 1 ? argv[1] : "";
	int opt;

	kars_log_set_level(KARS_LOG_WARN);
	optind = 2;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			o.dir = optarg;
			break;
		case 'o':
			o.out = optarg;
			break;
		case 'k':
			o.key = optarg;
			break;
		case 'n':
			o.records = strtol(optarg, NULL, 10);
			break;
		case 'r':
			o.reps = strtol(optarg, NULL, 10);
			break;
		case 's':
			o.sync_records = strtol(optarg, NULL, 10);
			break;
		case 'e':
			o.every = strtol(optarg, NULL, 10);
			break;
		case 'c':
			o.crash = true;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || o.records < 1 || o.reps < 1 || o.reps > MAX_REPS ||
	    o.sync_records < 1 || o.every < 0 || o.every > UINT32_MAX)
		goto bad;
	if (strcmp(cmd, "run") == 0 && o.dir)
		return cmd_run(&o);
	if (strcmp(cmd, "write") == 0 && o.out)
		return cmd_write(&o);
bad:
	usage(stderr);
	return 2;
}
