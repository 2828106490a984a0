/* blocklist.c - see blocklist.h. */
#include "blocklist.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "blocklist_parse.h"
#include "dns_name.h"
#include "dns_table.h"
#include "json.h"
#include "karsd.h"
#include "kars_dataplane.h"
#include "log.h"
#include "sandbox.skel.h"

#define MAX_FILES	    64
#define MAX_REPORTED_ERRORS 20
#define MAX_NAMES	    ((size_t)KARS_DNS_MAX_BUCKETS * KARS_DNS_BUCKET_SLOTS / 2)

/* The generation in force, mapped read-only. */
struct generation {
	int fd;
	const struct kars_dns_block *blocks;
	size_t bytes;
	struct kars_dns_header hdr;
	struct kars_dns_table table; /* blocks borrowed from the mapping */
};

static int outer_fd(struct karsd *d)
{
	return bpf_map__fd(d->loader.skel->maps.kars_dns_list);
}

/* Returns 1 with g filled, 0 when no list is loaded, or -errno. */
static int generation_open(struct karsd *d, struct generation *g, struct kars_err *err)
{
	__u32 zero = 0, id = 0;
	struct bpf_map_info info = {};
	__u32 info_len = sizeof(info);

	memset(g, 0, sizeof(*g));
	g->fd = -1;
	if (bpf_map_lookup_elem(outer_fd(d), &zero, &id) || id == 0)
		return 0;
	g->fd = bpf_map_get_fd_by_id(id);
	if (g->fd < 0)
		return errno == ENOENT ? 0
				       : kars_err_set(err, errno, "opening blocklist map %u: %s",
						      id, strerror(errno));
	if (bpf_obj_get_info_by_fd(g->fd, &info, &info_len)) {
		close(g->fd);
		return kars_err_set(err, errno, "blocklist map info: %s", strerror(errno));
	}
	g->bytes = (size_t)info.max_entries * sizeof(struct kars_dns_block);
	g->blocks = mmap(NULL, g->bytes, PROT_READ, MAP_SHARED, g->fd, 0);
	if (g->blocks == MAP_FAILED) {
		close(g->fd);
		return kars_err_set(err, errno, "mapping the blocklist: %s", strerror(errno));
	}
	memcpy(&g->hdr, g->blocks, sizeof(g->hdr));
	g->table.blocks = (struct kars_dns_block *)g->blocks;
	g->table.n_buckets = g->hdr.bucket_mask + 1;
	g->table.entries = g->hdr.entries;
	if ((size_t)g->table.n_buckets + 1 > info.max_entries) {
		munmap((void *)g->blocks, g->bytes);
		close(g->fd);
		return kars_err_set(err, EINVAL,
				    "blocklist map %u: header names %u buckets, map "
				    "holds %u",
				    id, g->table.n_buckets, info.max_entries - 1);
	}
	return 1;
}

static void generation_close(struct generation *g)
{
	if (g->fd < 0)
		return;
	munmap((void *)g->blocks, g->bytes);
	close(g->fd);
}

struct load {
	uint64_t key[2];
	uint64_t *hashes;
	size_t n, cap;
	size_t lines, rejected;
	json_t *errors;
};

static int add_name(void *arg, const char *name)
{
	struct load *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 1 << 16;
		uint64_t *h;

		if (l->n >= MAX_NAMES)
			return -E2BIG;
		h = realloc(l->hashes, cap * sizeof(*h));
		if (!h)
			return -ENOMEM;
		l->hashes = h;
		l->cap = cap;
	}
	l->hashes[l->n++] = kars_dns_name_hash(l->key, name);
	return 0;
}

/* Opens path with the caller's file-system identity (karsd runs as root). */
static FILE *open_as(const char *path, uid_t uid, gid_t gid)
{
	FILE *f;
	int e;

	setfsgid(gid);
	setfsuid(uid);
	f = fopen(path, "re");
	e = errno;
	setfsuid(0);
	setfsgid(0);
	errno = e;
	return f;
}

static int load_file(struct load *l, const char *path, uid_t uid, gid_t gid, struct kars_err *err)
{
	FILE *f = open_as(path, uid, gid);
	char *line = NULL;
	size_t cap = 0, lineno = 0;
	ssize_t len;
	int ret = 0;

	if (!f)
		return kars_err_set(err, errno, "files: %s: %s", path, strerror(errno));
	while ((len = getline(&line, &cap, f)) >= 0) {
		struct kars_err lerr = {};

		lineno++;
		l->lines++;
		ret = kars_blocklist_parse_line(line, (size_t)len, add_name, l, &lerr);
		if (ret == -E2BIG || ret == -ENOMEM) {
			kars_err_set(err, -ret, "%s:%zu: %s", path, lineno,
				     ret == -E2BIG ? "more names than a blocklist holds"
						   : "out of memory");
			break;
		}
		ret = 0;
		if (lerr.code) {
			l->rejected++;
			if (json_array_size(l->errors) < MAX_REPORTED_ERRORS) {
				char msg[sizeof(lerr.msg) + 64 + PATH_MAX];

				snprintf(msg, sizeof(msg), "%s:%zu: %s", path, lineno, lerr.msg);
				json_array_append_new(l->errors, json_string(msg));
			}
		}
	}
	if (!ret && ferror(f))
		ret = kars_err_set(err, EIO, "files: %s: read error", path);
	else if (err->code)
		ret = -err->code;
	free(line);
	fclose(f);
	return ret;
}

static double now_s(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static json_t *op_load(struct karsd *d, const json_t *req, uid_t uid, gid_t gid,
		       struct kars_err *err)
{
	static const char *const keys[] = {"op", "files", NULL};
	const json_t *files = json_object_get(req, "files");
	struct load l = {.errors = json_array()};
	struct kars_dns_header hdr = {.max_name_len = KARS_DNS_MAX_TEXT};
	struct kars_dns_table t = {};
	struct generation old;
	double t0 = now_s(CLOCK_MONOTONIC);
	uint64_t memlock = 0;
	json_t *resp = NULL, *f;
	size_t i;
	int cur;

	if (kars_json_only_keys(req, "", keys, err))
		goto out;
	if (!json_is_array(files) || json_array_size(files) == 0 ||
	    json_array_size(files) > MAX_FILES) {
		kars_err_set(err, EINVAL, "files: expected an array of 1 to %d absolute paths",
			     MAX_FILES);
		goto out;
	}
	json_array_foreach(files, i, f)
	{
		const char *p = json_string_value(f);

		if (!p || p[0] != '/') {
			kars_err_set(err, EINVAL, "files[%zu]: expected an absolute path", i);
			goto out;
		}
	}
	if (getrandom(l.key, sizeof(l.key), 0) != sizeof(l.key)) {
		kars_err_set(err, errno, "getrandom: %s", strerror(errno));
		goto out;
	}
	json_array_foreach(files, i, f)
	{
		if (load_file(&l, json_string_value(f), uid, gid, err))
			goto out;
	}
	if (kars_dns_table_build(l.hashes, l.n, &t, err))
		goto out;
	cur = generation_open(d, &old, err);
	if (cur < 0)
		goto out;
	hdr.gen = cur ? old.hdr.gen + 1 : 1;
	generation_close(&old);
	memcpy(hdr.key, l.key, sizeof(hdr.key));
	hdr.bucket_mask = t.n_buckets - 1;
	hdr.entries = t.entries;
	hdr.loaded_ns = (uint64_t)(now_s(CLOCK_REALTIME) * 1e9);
	if (kars_dns_table_install(outer_fd(d), &t, &hdr, &memlock, err))
		goto out;
	log_info("blocklist generation %u: %u names from %zu lines (%zu rejected), %llu bytes",
		 hdr.gen, hdr.entries, l.lines, l.rejected, (unsigned long long)memlock);
	resp = json_pack("{s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:O}", "ok", 1, "generation",
			 (json_int_t)hdr.gen, "entries", (json_int_t)hdr.entries, "lines",
			 (json_int_t)l.lines, "rejected", (json_int_t)l.rejected, "buckets",
			 (json_int_t)t.n_buckets, "memoryBytes", (json_int_t)memlock, "seconds",
			 now_s(CLOCK_MONOTONIC) - t0, "errors", l.errors);
out:
	kars_dns_table_free(&t);
	free(l.hashes);
	json_decref(l.errors);
	return resp;
}

int karsd_blocklist_info(struct karsd *d, struct karsd_blocklist_info *out, struct kars_err *err)
{
	struct generation g;
	int cur = generation_open(d, &g, err);

	memset(out, 0, sizeof(*out));
	if (cur <= 0)
		return cur;
	out->loaded = true;
	out->entries = g.hdr.entries;
	out->generation = g.hdr.gen;
	out->buckets = g.table.n_buckets;
	out->max_name_len = g.hdr.max_name_len;
	out->memory_bytes = kars_bpf_fd_memlock(g.fd);
	out->loaded_ns = g.hdr.loaded_ns;
	generation_close(&g);
	return 0;
}

static json_t *op_status(struct karsd *d, struct kars_err *err)
{
	struct karsd_blocklist_info b;

	if (karsd_blocklist_info(d, &b, err))
		return NULL;
	if (!b.loaded)
		return json_pack("{s:b,s:b,s:I,s:I}", "ok", 1, "loaded", 0, "entries",
				 (json_int_t)0, "generation", (json_int_t)0);
	return json_pack("{s:b,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:i,s:i}", "ok", 1, "loaded", 1,
			 "entries", (json_int_t)b.entries, "generation", (json_int_t)b.generation,
			 "buckets", (json_int_t)b.buckets, "memoryBytes",
			 (json_int_t)b.memory_bytes, "loadedAtNs", (json_int_t)b.loaded_ns,
			 "maxNameLength", (json_int_t)b.max_name_len, "maxLabels",
			 KARS_DNS_MAX_LABELS, "maxWireLength", KARS_DNS_MAX_WIRE);
}

static json_t *op_check(struct karsd *d, const json_t *req, struct kars_err *err)
{
	static const char *const keys[] = {"op", "name", NULL};
	char name[KARS_DNS_NAME_BUF];
	uint64_t hashes[KARS_DNS_MAX_WIRE];
	size_t starts[KARS_DNS_MAX_WIRE], n;
	struct generation g;
	const char *in = NULL;
	json_t *resp;
	int cur;

	if (kars_json_only_keys(req, "", keys, err) ||
	    kars_json_get_string(req, "", "name", true, &in, err))
		return NULL;
	if (kars_dns_name_normalize(in, strlen(in), name, err)) {
		char msg[sizeof(err->msg)];

		snprintf(msg, sizeof(msg), "%s", err->msg);
		kars_err_clear(err);
		kars_err_set(err, EINVAL, "name: %s", msg);
		return NULL;
	}
	cur = generation_open(d, &g, err);
	if (cur < 0)
		return NULL;
	if (cur == 0)
		return json_pack("{s:b,s:s,s:b,s:I}", "ok", 1, "name", name, "blocked", 0,
				 "generation", (json_int_t)0);
	n = kars_dns_suffix_hashes((const uint64_t *)g.hdr.key, name, hashes, starts);
	resp = json_pack("{s:b,s:s,s:b,s:I}", "ok", 1, "name", name, "blocked", 0, "generation",
			 (json_int_t)g.hdr.gen);
	if (n > KARS_DNS_MAX_LABELS)
		json_object_set_new(resp, "refused", json_string("deeper than the walk bound"));
	for (size_t i = 0; i < n; i++) {
		if (!kars_dns_table_has(&g.table, hashes[i]))
			continue;
		json_object_set_new(resp, "blocked", json_true());
		json_object_set_new(resp, "matched", json_string(name + starts[i]));
		break;
	}
	generation_close(&g);
	return resp;
}

json_t *karsd_blocklist_op(struct karsd *d, const char *op, const json_t *req, uid_t uid, gid_t gid,
			   struct kars_err *err)
{
	if (strcmp(op, "blocklist_load") == 0)
		return op_load(d, req, uid, gid, err);
	if (strcmp(op, "blocklist_check") == 0)
		return op_check(d, req, err);
	if (strcmp(op, "blocklist_status") == 0) {
		static const char *const keys[] = {"op", NULL};

		if (kars_json_only_keys(req, "", keys, err))
			return NULL;
		return op_status(d, err);
	}
	kars_err_set(err, EINVAL,
		     "op: Unsupported value \"%s\": supported values: \"blocklist_load\", "
		     "\"blocklist_check\", \"blocklist_status\"",
		     op);
	return NULL;
}

int kars_dns_caps_store_fd(int caps_fd, uint32_t sandbox_id, uint32_t max_name_len,
			   uint32_t max_qps, struct kars_err *err)
{
	struct kars_dns_caps c = {.max_name_len = max_name_len, .max_qps = max_qps};

	if (!max_name_len && !max_qps)
		return bpf_map_delete_elem(caps_fd, &sandbox_id) && errno != ENOENT
			   ? kars_err_set(err, errno, "dns: deleting caps: %s", strerror(errno))
			   : 0;
	if (bpf_map_update_elem(caps_fd, &sandbox_id, &c, BPF_ANY))
		return kars_err_set(err, errno, "dns: storing caps: %s", strerror(errno));
	return 0;
}

int karsd_dns_caps_store(struct karsd *d, uint32_t sandbox_id, uint32_t max_name_len,
			 uint32_t max_qps, struct kars_err *err)
{
	return kars_dns_caps_store_fd(bpf_map__fd(d->loader.skel->maps.kars_dns_caps), sandbox_id,
				      max_name_len, max_qps, err);
}

void karsd_blocklist_event_json(json_t *o, const void *data, size_t size)
{
	const struct kars_event *e = data;
	const struct kars_dns_event_tail *t = (const void *)(e + 1);
	char name[4 * KARS_DNS_EVENT_NAME_LEN + 1];
	size_t n = 0, len;

	if (size < sizeof(*e) + sizeof(*t) || e->hook != KARS_HOOK_DNS_EGRESS)
		return;
	len = t->name_len < KARS_DNS_EVENT_NAME_LEN ? t->name_len : KARS_DNS_EVENT_NAME_LEN;
	/* Presentation form: bytes outside printable ASCII as \DDD. */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)t->name[i];

		if (c > 0x20 && c < 0x7f && c != '\\')
			name[n++] = (char)c;
		else
			n += (size_t)snprintf(name + n, sizeof(name) - n, "\\%03u", c);
	}
	name[n] = '\0';
	json_object_set_new(o, "qname", json_string(name));
	json_object_set_new(o, "qtype", json_integer(t->qtype));
}
