/* dns_table.h - the blocklist's in-kernel table, built in userspace.
 *
 * An array of KARS_DNS_BUCKET_SLOTS-slot buckets (kars_dns.h): element 0 is
 * the header, buckets are 1..n_buckets. Each hash goes into the emptier of
 * its two buckets; buckets are sized for an average of half full, and a
 * table that still overflows is rebuilt twice as large. The BPF program
 * then finds any name in at most two bucket reads.
 */
#ifndef KARS_DNS_TABLE_H
#define KARS_DNS_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "kars_dns.h"

struct kars_dns_table {
	struct kars_dns_block *blocks; /* 1 + n_buckets elements */
	uint32_t n_buckets;	       /* a power of two */
	uint32_t entries;	       /* distinct hashes stored */
};

/* Builds the table from n hashes (sorted and de-duplicated in place). */
int kars_dns_table_build(uint64_t *hashes, size_t n, struct kars_dns_table *t,
			 struct kars_err *err);
bool kars_dns_table_has(const struct kars_dns_table *t, uint64_t h);
void kars_dns_table_free(struct kars_dns_table *t);

/* Puts the table into a new BPF array map (header hdr as element 0, filled
 * through mmap) and makes it the generation in force: one update of slot 0
 * of the kars_dns_list array-of-maps outer_fd. Returns 0 with *memlock set
 * to the new map's memory as the kernel accounts it (fdinfo memlock). */
int kars_dns_table_install(int outer_fd, const struct kars_dns_table *t,
			   const struct kars_dns_header *hdr, uint64_t *memlock,
			   struct kars_err *err);
/* The kernel's memory accounting of a BPF map fd (fdinfo "memlock"). */
uint64_t kars_bpf_fd_memlock(int fd);

#endif
