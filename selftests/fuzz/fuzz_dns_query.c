/* fuzz_dns_query.c - random DNS messages through the kernel's DNS query
 * check (kars_dns_egress, BPF_PROG_TEST_RUN), each verdict compared with a
 * reference parser written here in plain C from the rules in docs/dns.md.
 *
 * The reference shares no code with the BPF walk: it hashes each suffix's
 * reversed wire form in one go (kars_dns_siphash), where BPF streams one
 * hash through all suffixes. Any disagreement aborts with both verdicts.
 * Input: byte 0 picks the transport (bit 0: TCP with a correct length
 * prefix, else UDP), the rest is the DNS message. Needs root (test_run of a
 * cgroup_skb program); selftests/fuzz/run.sh skips it otherwise.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns_name.h"
#include "dns_table.h"
#include "sandbox.skel.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const blocked[] = {"blocked.example", "ads.test", "a", "xn--bcher-kva.de", NULL};

static struct sandbox_bpf *skel;
static int prog_fd;
static struct kars_dns_table table;
static uint64_t key[2];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct kars_dns_header hdr = {.gen = 1, .max_name_len = KARS_DNS_MAX_TEXT};
	struct kars_err err = {};
	struct bpf_program *p;
	uint64_t hashes[16];
	size_t n = 0;

	libbpf_set_print(NULL);
	skel = sandbox_bpf__open();
	if (!skel)
		abort();
	bpf_object__for_each_program(p, skel->obj)
	    bpf_program__set_autoload(p, p == skel->progs.kars_dns_egress);
	if (sandbox_bpf__load(skel)) {
		fprintf(stderr, "fuzz_dns_query: cannot load kars_dns_egress (root needed)\n");
		abort();
	}
	prog_fd = bpf_program__fd(skel->progs.kars_dns_egress);
	key[0] = 0x9e3779b97f4a7c15ULL;
	key[1] = 0xc2b2ae3d27d4eb4fULL;
	for (; blocked[n]; n++)
		hashes[n] = kars_dns_name_hash(key, blocked[n]);
	if (kars_dns_table_build(hashes, n, &table, &err))
		abort();
	memcpy(hdr.key, key, sizeof(key));
	hdr.bucket_mask = table.n_buckets - 1;
	hdr.entries = table.entries;
	if (kars_dns_table_install(bpf_map__fd(skel->maps.kars_dns_list), &table, &hdr, NULL,
				   &err)) {
		fprintf(stderr, "fuzz_dns_query: %s\n", err.msg);
		abort();
	}
	return 0;
}

/* The rules of docs/dns.md, plainly. Returns 1 (pass) or 0 (drop). */
static int reference(const uint8_t *m, size_t len)
{
	uint8_t name[KARS_DNS_MAX_WIRE + 1], rev[KARS_DNS_MAX_WIRE];
	size_t starts[KARS_DNS_MAX_LABELS + 1], n, pos = 0, labels = 0, total;

	if (len < 12)
		return 0;
	if ((m[2] & 0xf8) || m[4] != 0 || m[5] != 1)
		return 0; /* QR, opcode; one question */
	n = len - 12 < KARS_DNS_MAX_WIRE ? len - 12 : KARS_DNS_MAX_WIRE;
	for (;;) {
		uint8_t l;

		if (pos >= n)
			return 0; /* too long or truncated */
		l = m[12 + pos];
		if (l == 0)
			break;
		if (l & 0xc0)
			return 0; /* pointer or extended label */
		if (labels == KARS_DNS_MAX_LABELS)
			return 0; /* too deep */
		starts[labels++] = pos;
		pos += 1u + l;
	}
	total = pos;
	if (12 + total + 1 + 4 > len)
		return 0; /* no QTYPE/QCLASS */
	for (size_t i = 0; i < total; i++) {
		uint8_t c = m[12 + i];

		name[i] = (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
	}
	/* Each suffix from label j on: its wire bytes, reversed, hashed. */
	for (size_t j = 0; j < labels; j++) {
		size_t slen = total - starts[j];

		for (size_t i = 0; i < slen; i++)
			rev[i] = name[total - 1 - i];
		if (kars_dns_table_has(&table, kars_dns_siphash(key, rev, slen)))
			return 0;
	}
	return 1;
}

static size_t frame(uint8_t *buf, const uint8_t *msg, size_t len, bool tcp)
{
	size_t l4 = tcp ? 20 + 2 : 8, n = 14 + 20 + l4 + len;

	memset(buf, 0, 14 + 20 + l4);
	buf[12] = 0x08;
	buf[14] = 0x45;
	buf[14 + 2] = (uint8_t)((n - 14) >> 8);
	buf[14 + 3] = (uint8_t)(n - 14);
	buf[14 + 8] = 64;
	buf[14 + 9] = tcp ? 6 : 17;
	memcpy(buf + 14 + 12, "\x0a\x00\x00\x01\xc0\x00\x02\x35", 8);
	buf[34 + 2] = 0;
	buf[34 + 3] = 53;
	if (tcp) {
		buf[34 + 12] = 5 << 4;
		buf[34 + 13] = 0x18;
		buf[34 + 20] = (uint8_t)(len >> 8);
		buf[34 + 21] = (uint8_t)len;
	} else {
		buf[34 + 4] = (uint8_t)((8 + len) >> 8);
		buf[34 + 5] = (uint8_t)(8 + len);
	}
	memcpy(buf + 14 + 20 + l4, msg, len);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[2048];
	bool tcp;
	size_t len, n;
	int want;

	if (size < 1 || size > 1400)
		return 0;
	tcp = data[0] & 1;
	len = size - 1;
	n = frame(buf, data + 1, len, tcp);
	{
		LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = buf, .data_size_in = (__u32)n,
			    .repeat = 1);

		if (bpf_prog_test_run_opts(prog_fd, &opts))
			abort();
		want = reference(data + 1, len);
		if ((int)opts.retval != want) {
			fprintf(stderr, "fuzz_dns_query: kernel says %u, reference says %d (%s)\n",
				opts.retval, want, tcp ? "tcp" : "udp");
			abort();
		}
	}
	return 0;
}
