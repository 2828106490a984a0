/* test_dns_parser.c - the DNS query check (kars_dns_egress) through
 * BPF_PROG_TEST_RUN with crafted packets.
 *
 * Each test loads its own copy of the data-plane object (nothing pinned, no
 * karsd), installs a blocklist generation the way karsd does (libkars'
 * kars_dns_table_install), and runs packets through the program in the
 * kernel: the verdict (1 pass, 0 drop) is the kernel's. Hashes come from
 * libkars and the lookups from BPF, so a blocked name that passes shows any
 * disagreement between the two.
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns_name.h"
#include "dns_table.h"
#include "dns_testpkt.h"
#include "harness.h"
#include "kars_dataplane.h"
#include "sandbox.skel.h"

struct dns_fixture {
	struct sandbox_bpf *skel;
	int prog_fd;
	struct ring_buffer *rb;
	char last_name[KARS_DNS_EVENT_NAME_LEN + 1];
	int last_reason;
	int events;
};

static int on_event(void *ctx, void *data, size_t size)
{
	struct dns_fixture *f = ctx;
	const struct kars_event *e = data;
	const struct kars_dns_event_tail *t = (const void *)(e + 1);

	if (size < sizeof(*e) + sizeof(*t) || e->hook != KARS_HOOK_DNS_EGRESS)
		return 0;
	f->events++;
	f->last_reason = e->reason;
	memcpy(f->last_name, t->name, KARS_DNS_EVENT_NAME_LEN);
	f->last_name[t->name_len < KARS_DNS_EVENT_NAME_LEN ? t->name_len : 0] = '\0';
	return 0;
}

static bool fixture_open(struct dns_fixture *f)
{
	memset(f, 0, sizeof(*f));
	f->skel = sandbox_bpf__open();
	if (!ASSERT_OK_PTR(f->skel, "open object"))
		return false;
	/* Only the program under test: keeps the load short. */
	{
		struct bpf_program *p;

		bpf_object__for_each_program(p, f->skel->obj)
		    bpf_program__set_autoload(p, p == f->skel->progs.kars_dns_egress);
	}
	if (!ASSERT_OK(sandbox_bpf__load(f->skel), "load kars_dns_egress"))
		return false;
	f->prog_fd = bpf_program__fd(f->skel->progs.kars_dns_egress);
	f->rb = ring_buffer__new(bpf_map__fd(f->skel->maps.kars_events), on_event, f, NULL);
	return ASSERT_OK_PTR(f->rb, "ring buffer");
}

static void fixture_close(struct dns_fixture *f)
{
	ring_buffer__free(f->rb);
	sandbox_bpf__destroy(f->skel);
}

/* Installs a generation blocking the given names (NULL-terminated). */
static bool install(struct dns_fixture *f, const char *const *names, uint32_t gen)
{
	struct kars_dns_header hdr = {.gen = gen, .max_name_len = KARS_DNS_MAX_TEXT};
	uint64_t hashes[64];
	struct kars_dns_table t;
	struct kars_err err = {};
	size_t n = 0;
	bool ok;

	hdr.key[0] = ((uint64_t)rand() << 32) ^ (uint64_t)rand() ^ gen;
	hdr.key[1] = ((uint64_t)rand() << 32) ^ (uint64_t)rand();
	for (; names[n]; n++) {
		char norm[KARS_DNS_NAME_BUF];

		if (!ASSERT_OK(kars_dns_name_normalize(names[n], strlen(names[n]), norm, &err),
			       names[n]))
			return false;
		hashes[n] = kars_dns_name_hash((const uint64_t *)hdr.key, norm);
	}
	if (!ASSERT_OK(kars_dns_table_build(hashes, n, &t, &err), "build table"))
		return false;
	hdr.entries = t.entries;
	hdr.bucket_mask = t.n_buckets - 1;
	ok = ASSERT_OK(
	    kars_dns_table_install(bpf_map__fd(f->skel->maps.kars_dns_list), &t, &hdr, NULL, &err),
	    "install generation");
	kars_dns_table_free(&t);
	return ok;
}

/* Runs one packet; returns the program's verdict (1 pass, 0 drop), or -1. */
static int run(struct dns_fixture *f, const struct kst_pkt *p)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = p->buf, .data_size_in = p->len,
		    .repeat = 1);
	int ret = bpf_prog_test_run_opts(f->prog_fd, &opts);

	if (ret)
		return -1;
	ring_buffer__consume(f->rb);
	return (int)opts.retval;
}

#define EXPECT(f, pkt, want, tag)                                                                  \
	do {                                                                                       \
		struct kst_pkt _p = (pkt);                                                         \
		ASSERT_EQ(run(f, &_p), want, tag);                                                 \
	} while (0)

static const char *const blocked[] = {"blocked.example", "wild.example", "xn--bcher-kva.example",
				      "bücher.test", NULL};

KST_TEST(dns_parser_verdicts)
{
	struct dns_fixture f;
	char longname[300], deep[300];
	int i;

	if (!fixture_open(&f) || !install(&f, blocked, 1))
		goto cleanup;
	/* Names and the suffix walk. */
	EXPECT(&f, kst_dns4_query("example.org", 1, 0), 1, "allowed name passes");
	EXPECT(&f, kst_dns4_query("blocked.example", 1, 0), 0, "blocked name dropped");
	ASSERT_STREQ(f.last_name, "blocked.example", "event carries the name");
	ASSERT_EQ(f.last_reason, KARS_REASON_DNS_BLOCKED, "event reason");
	EXPECT(&f, kst_dns4_query("a.b.blocked.example", 1, 0), 0, "subdomain dropped");
	EXPECT(&f, kst_dns4_query("wild.example", 1, 0), 0, "*.x blocks x itself");
	EXPECT(&f, kst_dns4_query("deep.er.wild.example", 1, 0), 0, "*.x blocks below x");
	EXPECT(&f, kst_dns4_query("example", 1, 0), 1, "parent of a blocked name passes");
	EXPECT(&f, kst_dns4_query("xblocked.example", 1, 0), 1, "label boundary respected");
	EXPECT(&f, kst_dns4_query("blocked.example.org", 1, 0), 1, "blocked name as a prefix");
	/* 0x20: mixed case is the same name. */
	EXPECT(&f, kst_dns4_query("BlOcKeD.ExAmPlE", 1, 0), 0, "0x20 mixed case dropped");
	ASSERT_STREQ(f.last_name, "blocked.example", "event name lower-cased");
	/* IDN: the list's Unicode entry was stored as punycode. */
	EXPECT(&f, kst_dns4_query("xn--bcher-kva.example", 1, 0), 0, "punycode entry");
	EXPECT(&f, kst_dns4_query("XN--BCHER-KVA.test", 1, 0), 0, "Unicode entry, punycode query");
	EXPECT(&f, kst_dns4_query("xn--bcher-kva.org", 1, 0), 1, "same label elsewhere passes");
	/* Header flags and counts. */
	EXPECT(&f, kst_dns4_query("example.org", 1, KST_DNS_TC), 1, "TC bit: allowed passes");
	EXPECT(&f, kst_dns4_query("blocked.example", 1, KST_DNS_TC), 0, "TC bit: blocked dropped");
	EXPECT(&f, kst_dns4_query("example.org", 1, KST_DNS_EDNS0), 1, "EDNS0 OPT: allowed passes");
	EXPECT(&f, kst_dns4_query("blocked.example", 1, KST_DNS_EDNS0), 0,
	       "EDNS0 OPT: blocked dropped");
	EXPECT(&f, kst_dns4_query("example.org", 2, 0), 0, "two questions dropped");
	EXPECT(&f, kst_dns4_query("example.org", 0, 0), 0, "no question dropped");
	EXPECT(&f, kst_dns4_query("example.org", 1, KST_DNS_QR), 0, "a response (QR) dropped");
	EXPECT(&f, kst_dns4_query("example.org", 1, KST_DNS_OPCODE_UPDATE), 0, "UPDATE dropped");
	/* Compression pointers: never in a query's one name. */
	EXPECT(&f, kst_dns4_raw("\xc0\x00", 2, 1), 0, "pointer into the header dropped");
	EXPECT(&f,
	       kst_dns4_raw("\x01"
			    "a\xc0\x0c",
			    4, 1),
	       0, "pointer loop dropped");
	EXPECT(&f, kst_dns4_raw("\xc0\x20\x00\x00\x01\x00\x01", 7, 1), 0,
	       "forward pointer dropped");
	EXPECT(&f, kst_dns4_raw("\x41x\x00", 3, 1), 0, "extended label type 0x40 dropped");
	/* Truncation. */
	EXPECT(&f, kst_dns4_raw("", 0, 0), 0, "header only dropped");
	EXPECT(&f,
	       kst_dns4_raw("\x07"
			    "example\x03org",
			    12, 0),
	       0, "name without its root label dropped");
	EXPECT(&f,
	       kst_dns4_raw("\x07"
			    "example\x03org\x00\x00",
			    14, 0),
	       0, "name without QTYPE/QCLASS dropped");
	EXPECT(&f, kst_dns4_raw("\x3f", 1, 0), 0, "label longer than the packet dropped");
	EXPECT(&f, kst_dns4_short_header(), 0, "shorter than a DNS header dropped");
	/* Maximum lengths: 253 characters pass, more are dropped. */
	kst_dns_long_name(longname, 253, "example.org");
	EXPECT(&f, kst_dns4_query(longname, 1, 0), 1, "253-character name passes");
	kst_dns_long_name(longname, 253, "blocked.example");
	EXPECT(&f, kst_dns4_query(longname, 1, 0), 0, "253-character blocked name dropped");
	EXPECT(&f, kst_dns4_long_wire(256), 0, "name past 255 wire octets dropped");
	/* Depth: 40 labels are walked, 41 are refused. */
	deep[0] = '\0';
	for (i = 0; i < 39; i++)
		strcat(deep, "a.");
	strcat(deep, "org");
	EXPECT(&f, kst_dns4_query(deep, 1, 0), 1, "40 labels pass");
	memmove(deep + 2, deep, strlen(deep) + 1);
	memcpy(deep, "a.", 2);
	EXPECT(&f, kst_dns4_query(deep, 1, 0), 0, "41 labels dropped");
	ASSERT_EQ(f.last_reason, KARS_REASON_DNS_TOO_DEEP, "too deep reason");
	/* Not DNS: left alone. */
	EXPECT(&f, kst_udp4_garbage(1234), 1, "UDP to another port passes untouched");
	EXPECT(&f, kst_udp4_garbage(53), 0, "garbage to port 53 dropped");
	/* IPv6, with and without an extension header. */
	EXPECT(&f, kst_dns6_query("example.org", false), 1, "IPv6 allowed passes");
	EXPECT(&f, kst_dns6_query("blocked.example", false), 0, "IPv6 blocked dropped");
	EXPECT(&f, kst_dns6_query("blocked.example", true), 0,
	       "IPv6 blocked behind a routing header dropped");
	EXPECT(&f, kst_dns6_query("example.org", true), 1, "IPv6 routing header, allowed passes");
	/* TCP: one whole length-prefixed message per segment. */
	EXPECT(&f, kst_dns4_tcp("example.org", 0), 1, "TCP allowed passes");
	EXPECT(&f, kst_dns4_tcp("blocked.example", 0), 0, "TCP blocked dropped");
	EXPECT(&f, kst_dns4_tcp("example.org", 5), 0, "TCP message split across segments dropped");
	EXPECT(&f, kst_dns4_tcp(NULL, 0), 1, "TCP segment without payload passes");
cleanup:
	fixture_close(&f);
}

KST_TEST(dns_parser_generation_swap)
{
	static const char *const gen2[] = {"other.example", NULL};
	struct dns_fixture f;

	if (!fixture_open(&f))
		goto cleanup;
	EXPECT(&f, kst_dns4_query("blocked.example", 1, 0), 1, "no list: names pass");
	EXPECT(&f, kst_dns4_raw("\xc0\x00", 2, 1), 0, "no list: malformed still dropped");
	if (!install(&f, blocked, 1))
		goto cleanup;
	EXPECT(&f, kst_dns4_query("blocked.example", 1, 0), 0, "generation 1 blocks");
	EXPECT(&f, kst_dns4_query("other.example", 1, 0), 1, "generation 1 allows other");
	if (!install(&f, gen2, 2))
		goto cleanup;
	EXPECT(&f, kst_dns4_query("blocked.example", 1, 0), 1, "generation 2: old name passes");
	EXPECT(&f, kst_dns4_query("other.example", 1, 0), 0, "generation 2 blocks its name");
cleanup:
	fixture_close(&f);
}
