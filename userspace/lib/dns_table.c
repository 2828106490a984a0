/* dns_table.c - see dns_table.h. */
#include "dns_table.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int fill(struct kars_dns_block *b)
{
	int n = 0;

	while (n < KARS_DNS_BUCKET_SLOTS && b->slot[n])
		n++;
	return n;
}

static bool try_build(const uint64_t *hashes, size_t n, struct kars_dns_table *t)
{
	uint32_t mask = t->n_buckets - 1;

	for (size_t i = 0; i < n; i++) {
		struct kars_dns_block *b1 = &t->blocks[kars_dns_bucket1(hashes[i], mask)];
		struct kars_dns_block *b2 = &t->blocks[kars_dns_bucket2(hashes[i], mask)];
		int f1 = fill(b1), f2 = fill(b2);
		struct kars_dns_block *b = f2 < f1 ? b2 : b1;
		int f = f2 < f1 ? f2 : f1;

		if (f == KARS_DNS_BUCKET_SLOTS)
			return false;
		b->slot[f] = hashes[i];
	}
	return true;
}

int kars_dns_table_build(uint64_t *hashes, size_t n, struct kars_dns_table *t, struct kars_err *err)
{
	size_t uniq = 0;
	uint64_t want;

	memset(t, 0, sizeof(*t));
	qsort(hashes, n, sizeof(*hashes), cmp_u64);
	for (size_t i = 0; i < n; i++)
		if (i == 0 || hashes[i] != hashes[uniq - 1])
			hashes[uniq++] = hashes[i];
	want = (uniq + KARS_DNS_BUCKET_SLOTS / 2 - 1) / (KARS_DNS_BUCKET_SLOTS / 2);
	t->n_buckets = 1;
	while (t->n_buckets < want)
		t->n_buckets <<= 1;
	for (; t->n_buckets <= KARS_DNS_MAX_BUCKETS; t->n_buckets <<= 1) {
		t->blocks = calloc(1 + (size_t)t->n_buckets, sizeof(*t->blocks));
		if (!t->blocks)
			return kars_err_set(err, ENOMEM, "blocklist table: out of memory");
		if (try_build(hashes, uniq, t)) {
			t->entries = (uint32_t)uniq;
			return 0;
		}
		free(t->blocks);
		t->blocks = NULL;
	}
	return kars_err_set(err, E2BIG, "blocklist: %zu names do not fit %u buckets", uniq,
			    KARS_DNS_MAX_BUCKETS);
}

bool kars_dns_table_has(const struct kars_dns_table *t, uint64_t h)
{
	uint32_t mask = t->n_buckets - 1;
	const struct kars_dns_block *b1 = &t->blocks[kars_dns_bucket1(h, mask)];
	const struct kars_dns_block *b2 = &t->blocks[kars_dns_bucket2(h, mask)];

	for (int i = 0; i < KARS_DNS_BUCKET_SLOTS; i++)
		if (b1->slot[i] == h || b2->slot[i] == h)
			return true;
	return false;
}

void kars_dns_table_free(struct kars_dns_table *t)
{
	free(t->blocks);
	memset(t, 0, sizeof(*t));
}

uint64_t kars_bpf_fd_memlock(int fd)
{
	char path[64], line[256];
	unsigned long long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "memlock: %llu", &v) == 1)
			break;
	fclose(f);
	return v;
}

/* The BTF of a generation map: __u32 keys, struct kars_dns_block values, as
 * libbpf describes the inner-map template it creates from sandbox.bpf.c.
 * Linux 6.1 accepts an inner map only if its timer offset matches the
 * template's, and that offset is -ENOENT for a map with BTF but -EINVAL
 * for one without: a generation created without BTF is refused (EINVAL)
 * there. Returns the BTF loaded into the kernel, or NULL with errno set. */
static struct btf *generation_btf(__u32 *key_type, __u32 *value_type)
{
	struct btf *btf = btf__new_empty();
	int u32, u64, slots, block;

	if (!btf)
		return NULL;
	u32 = btf__add_int(btf, "unsigned int", sizeof(__u32), 0);
	u64 = btf__add_int(btf, "long long unsigned int", sizeof(__u64), 0);
	slots = u32 < 0 || u64 < 0 ? -EINVAL : btf__add_array(btf, u32, u64, KARS_DNS_BUCKET_SLOTS);
	block = slots < 0 ? slots
			  : btf__add_struct(btf, "kars_dns_block", sizeof(struct kars_dns_block));
	if (block < 0 || btf__add_field(btf, "slot", slots, 0, 0) || btf__load_into_kernel(btf)) {
		btf__free(btf);
		errno = block < 0 ? -block : errno;
		return NULL;
	}
	*key_type = (__u32)u32;
	*value_type = (__u32)block;
	return btf;
}

int kars_dns_table_install(int outer_fd, const struct kars_dns_table *t,
			   const struct kars_dns_header *hdr, uint64_t *memlock,
			   struct kars_err *err)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_INNER_MAP | BPF_F_MMAPABLE);
	size_t n = 1 + (size_t)t->n_buckets, bytes = n * sizeof(struct kars_dns_block);
	struct btf *btf;
	__u32 zero = 0;
	void *mem;
	int fd, ret;

	_Static_assert(sizeof(*hdr) == sizeof(struct kars_dns_block), "header is one block");
	btf = generation_btf(&opts.btf_key_type_id, &opts.btf_value_type_id);
	if (!btf)
		return kars_err_set(err, errno, "loading the blocklist map's BTF: %s",
				    strerror(errno));
	opts.btf_fd = btf__fd(btf);
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "kars_dns_gen", sizeof(__u32),
			    sizeof(struct kars_dns_block), (__u32)n, &opts);
	btf__free(btf); /* the map holds its own reference */
	if (fd < 0)
		return kars_err_set(err, errno, "creating the blocklist map (%zu buckets): %s", n,
				    strerror(errno));
	mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED) {
		ret = kars_err_set(err, errno, "mapping the blocklist map: %s", strerror(errno));
		goto out;
	}
	memcpy(mem, t->blocks, bytes);
	memcpy(mem, hdr, sizeof(*hdr));
	munmap(mem, bytes);
	/* The switch: every query from here on sees the new generation. */
	if (bpf_map_update_elem(outer_fd, &zero, &fd, BPF_ANY)) {
		ret =
		    kars_err_set(err, errno, "switching to the new blocklist: %s", strerror(errno));
		goto out;
	}
	if (memlock)
		*memlock = kars_bpf_fd_memlock(fd);
	ret = 0;
out:
	close(fd);
	return ret;
}
