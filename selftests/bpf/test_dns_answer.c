/* test_dns_answer.c - the router's DNS query recorder (kars_fqdn_egress)
 * and answer snooper (kars_fqdn_ingress) through BPF_PROG_TEST_RUN with
 * crafted packets: which answers become FQDN entries, and which are ignored.
 *
 * Each test loads its own copy of the two programs (nothing pinned, no
 * karsd) and writes the maps as karsd would: a policy for the runner's own
 * cgroup (BPF_PROG_TEST_RUN gives the packet a socket of the calling task's
 * cgroup), the sandbox's fqdn settings and rules hashed by libkars. The
 * entries are then read back from the kernel's map.
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cgroup_helpers.h"
#include "dns_answerpkt.h"
#include "fqdn_name.h"
#include "harness.h"
#include "kars_dataplane.h"
#include "sandbox.skel.h"

#define SID	  7
#define GEN	  5
#define ROUTER	  "10.0.0.1"
#define ROUTER6	  "2001:db8::100"
#define RES4	  "192.0.2.53"
#define RES6	  "2001:db8::53"
#define MIN_TTL	  2
#define MAX_TTL	  100
#define GRACE	  3
#define NS	  1000000000ULL
#define T_A	  1
#define T_CNAME	  5
#define T_AAAA	  28
#define PTR_QNAME 12 /* the question's name, where every answer points */

struct ans_fixture {
	struct sandbox_bpf *skel;
	int eg, in;
	struct kars_fqdn_key key;
};

static int cgroup_id(const char *path, uint64_t *id)
{
	struct {
		struct file_handle fh;
		uint64_t id;
	} h = {.fh.handle_bytes = sizeof(uint64_t)};
	int mount_id;

	if (name_to_handle_at(AT_FDCWD, path, &h.fh, &mount_id, 0))
		return -errno;
	*id = h.id;
	return 0;
}

static bool add_rule(struct ans_fixture *f, const char *name, uint8_t proto, uint16_t lo,
		     uint16_t hi, uint16_t index)
{
	bool wild = strncmp(name, "*.", 2) == 0;
	struct kars_fqdn_rule_key k = {.gen = GEN, .wildcard = wild};
	struct kars_fqdn_rule r = {.index = index};

	k.hash = kars_fqdn_name_hash(&f->key, wild ? name + 2 : name);
	r.ranges[0] = (struct kars_port_range){.proto = proto, .lo = lo, .hi = hi};
	return ASSERT_OK(
	    bpf_map_update_elem(bpf_map__fd(f->skel->maps.kars_fqdn_rules), &k, &r, BPF_ANY), name);
}

static void report_insns(const char *what, int fd)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0)
		kst_note("%s: %u instructions, %u processed by the verifier", what,
			 info.xlated_prog_len / 8, info.verified_insns);
}

static bool fixture_open(struct ans_fixture *f)
{
	struct kars_cgroup_policy pol = {.sandbox_id = SID,
					 .gen = GEN,
					 .role = KARS_ROLE_ROUTER,
					 .has_resolver4 = 1,
					 .has_resolver6 = 1,
					 .uid = KARS_UID_ANY,
					 .resolver_port = 53};
	struct kars_fqdn_cfg cfg = {.since_gen = GEN,
				    .min_ttl = MIN_TTL,
				    .max_ttl = MAX_TTL,
				    .grace = GRACE,
				    .max_entries = KARS_FQDN_MAX_ENTRIES};
	struct bpf_program *p;
	char self[PATH_MAX];
	uint64_t cg;
	__u32 zero = 0, sid = SID;

	memset(f, 0, sizeof(*f));
	f->skel = sandbox_bpf__open();
	if (!ASSERT_OK_PTR(f->skel, "open object"))
		return false;
	bpf_object__for_each_program(p, f->skel->obj) bpf_program__set_autoload(
	    p, p == f->skel->progs.kars_fqdn_egress || p == f->skel->progs.kars_fqdn_ingress);
	if (!ASSERT_OK(sandbox_bpf__load(f->skel), "load kars_fqdn_egress, kars_fqdn_ingress"))
		return false;
	f->eg = bpf_program__fd(f->skel->progs.kars_fqdn_egress);
	f->in = bpf_program__fd(f->skel->progs.kars_fqdn_ingress);
	f->key = (struct kars_fqdn_key){{0x0123456789abcdefULL, 0x1122334455667788ULL},
					{0x8877665544332211ULL, 0xfedcba9876543210ULL}};
	inet_pton(AF_INET, RES4, &pol.resolver4);
	inet_pton(AF_INET6, RES6, pol.resolver6);
	if (!ASSERT_OK(kst_cgroup_self(self, sizeof(self)), "own cgroup") ||
	    !ASSERT_OK(cgroup_id(self, &cg), "own cgroup id"))
		return false;
	return ASSERT_OK(bpf_map_update_elem(bpf_map__fd(f->skel->maps.kars_fqdn_key), &zero,
					     &f->key, BPF_ANY),
			 "key") &&
	       ASSERT_OK(
		   bpf_map_update_elem(bpf_map__fd(f->skel->maps.kars_cgroups), &cg, &pol, BPF_ANY),
		   "policy") &&
	       ASSERT_OK(bpf_map_update_elem(bpf_map__fd(f->skel->maps.kars_fqdn_cfg), &sid, &cfg,
					     BPF_ANY),
			 "cfg") &&
	       add_rule(f, "api.allowed.test", IPPROTO_TCP, 443, 443, 0) &&
	       add_rule(f, "*.wild.test", IPPROTO_TCP, 443, 444, 1);
}

static void fixture_close(struct ans_fixture *f)
{
	sandbox_bpf__destroy(f->skel);
}

static int run(int fd, const struct kst_pkt *p)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = p->buf, .data_size_in = (__u32)p->len,
		    .repeat = 1);

	if (bpf_prog_test_run_opts(fd, &opts))
		return -1;
	return (int)opts.retval;
}

/* The router asks the resolver (over IPv6 when src is). */
static void query_from(struct ans_fixture *f, const char *src, const char *dst, const char *name,
		       uint16_t qtype, uint16_t id, uint16_t sport)
{
	struct kst_msg m;
	struct kst_pkt p;

	kst_msg_header(&m, id, 0x0100, 1, 0);
	kst_msg_question(&m, name, qtype);
	p = kst_udp_frame(src, sport, dst, 53, m.b, m.n);
	ASSERT_EQ(run(f->eg, &p), 1, "egress never drops");
}

static void query(struct ans_fixture *f, const char *name, uint16_t qtype, uint16_t id)
{
	query_from(f, ROUTER, RES4, name, qtype, id, 40000);
}

static void answer_from(struct ans_fixture *f, const char *src, uint16_t sport, const char *dst,
			uint16_t dport, const struct kst_msg *m)
{
	struct kst_pkt p = kst_udp_frame(src, sport, dst, dport, m->b, m->n);

	ASSERT_EQ(run(f->in, &p), 1, "ingress never drops");
}

static void answer(struct ans_fixture *f, const struct kst_msg *m)
{
	answer_from(f, RES4, 53, ROUTER, 40000, m);
}

/* An answer to (name, A, id) with one A record per address. */
static void simple_answer(struct kst_msg *m, uint16_t id, const char *name, uint32_t ttl,
			  const char *ip)
{
	kst_msg_header(m, id, KST_DNS_QR_AA, 1, 1);
	kst_msg_question(m, name, T_A);
	kst_msg_u16(m, 0xc000 | PTR_QNAME);
	kst_msg_rr_addr(m, ttl, ip);
}

static bool entry(struct ans_fixture *f, const char *ip, struct kars_fqdn_entry *e)
{
	struct kars_fqdn_entry_key k = {.sandbox_id = SID};

	if (strchr(ip, ':')) {
		inet_pton(AF_INET6, ip, k.addr);
	} else {
		k.addr[10] = k.addr[11] = 0xff;
		inet_pton(AF_INET, ip, k.addr + 12);
	}
	return bpf_map_lookup_elem(bpf_map__fd(f->skel->maps.kars_fqdn_entries), &k, e) == 0;
}

static uint64_t counter(struct ans_fixture *f, enum kars_fqdn_counter which)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t v[512] = {0}, sum = 0;
	__u32 idx = which;

	if (ncpu <= 0 || ncpu > 512 ||
	    bpf_map_lookup_elem(bpf_map__fd(f->skel->maps.kars_fqdn_counters), &idx, v))
		return 0;
	for (int i = 0; i < ncpu; i++)
		sum += v[i];
	return sum;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

KST_TEST(dns_answer_learns_allowed_names)
{
	struct ans_fixture f;
	struct kars_fqdn_entry e;
	struct kst_msg m;
	uint64_t t0;

	if (!fixture_open(&f))
		goto cleanup;
	report_insns("kars_fqdn_egress", f.eg);
	report_insns("kars_fqdn_ingress", f.in);
	/* Exact name, mixed case in the query (0x20) and in the answer. */
	query(&f, "API.Allowed.test", T_A, 0x1111);
	ASSERT_EQ(counter(&f, KARS_FQDN_QUERY_RECORDED), 1, "query recorded");
	simple_answer(&m, 0x1111, "API.Allowed.test", 30, "198.51.100.7");
	t0 = mono_ns();
	answer(&f, &m);
	if (ASSERT_TRUE(entry(&f, "198.51.100.7", &e), "answered address learned")) {
		ASSERT_STREQ(e.name, "api.allowed.test", "entry names the question, lower case");
		ASSERT_EQ(e.slots[0].proto, IPPROTO_TCP, "rule's protocol");
		ASSERT_EQ(e.slots[0].lo, 443, "rule's port");
		ASSERT_EQ(e.slots[0].ttl, 30, "record TTL");
		ASSERT_TRUE(e.slots[0].expires_ns >= t0 + (30 + GRACE) * NS &&
				e.slots[0].expires_ns <= mono_ns() + (30 + GRACE) * NS,
			    "expires after TTL + grace");
		ASSERT_EQ(e.slots[1].proto, 0, "no other slot");
	}
	ASSERT_EQ(counter(&f, KARS_FQDN_ANSWER_LEARNED), 1, "answer counted");
	/* The query was consumed: the same answer again learns nothing new. */
	answer(&f, &m);
	ASSERT_EQ(counter(&f, KARS_FQDN_ANSWER_NO_QUERY), 1, "replayed answer: no query");

	/* Wildcards: any depth below, not the apex. */
	query(&f, "a.b.wild.test", T_A, 0x2222);
	simple_answer(&m, 0x2222, "a.b.wild.test", 30, "198.51.100.8");
	answer(&f, &m);
	if (ASSERT_TRUE(entry(&f, "198.51.100.8", &e), "*.wild.test matches a.b.wild.test"))
		ASSERT_EQ(e.slots[0].hi, 444, "wildcard's port range");
	query(&f, "wild.test", T_A, 0x2223);
	simple_answer(&m, 0x2223, "wild.test", 30, "198.51.100.9");
	answer(&f, &m);
	ASSERT_FALSE(entry(&f, "198.51.100.9", &e), "*.wild.test does not match the apex");
	/* A name on no list is not recorded, so its answer teaches nothing. */
	query(&f, "other.test", T_A, 0x3333);
	query(&f, "xapi.allowed.test", T_A, 0x3334);
	query(&f, "allowed.test", T_A, 0x3335);
	ASSERT_EQ(counter(&f, KARS_FQDN_QUERY_RECORDED), 2, "apex and unlisted names not recorded");
	simple_answer(&m, 0x3333, "other.test", 30, "203.0.113.1");
	answer(&f, &m);
	ASSERT_FALSE(entry(&f, "203.0.113.1", &e), "unlisted name: no entry");

	/* TTL clamped to the floor and the ceiling; a top-bit TTL is 0. */
	query(&f, "api.allowed.test", T_A, 0x4444);
	kst_msg_header(&m, 0x4444, KST_DNS_QR_AA, 1, 3);
	kst_msg_question(&m, "api.allowed.test", T_A);
	kst_msg_u16(&m, 0xc000 | PTR_QNAME);
	kst_msg_rr_addr(&m, 0, "198.51.100.10");
	kst_msg_u16(&m, 0xc000 | PTR_QNAME);
	kst_msg_rr_addr(&m, 1000000, "198.51.100.11");
	kst_msg_u16(&m, 0xc000 | PTR_QNAME);
	kst_msg_rr_addr(&m, 0x80000005, "198.51.100.12");
	answer(&f, &m);
	if (ASSERT_TRUE(entry(&f, "198.51.100.10", &e), "TTL 0"))
		ASSERT_EQ(e.slots[0].ttl, MIN_TTL, "raised to the floor");
	if (ASSERT_TRUE(entry(&f, "198.51.100.11", &e), "TTL 1000000"))
		ASSERT_EQ(e.slots[0].ttl, MAX_TTL, "cut to the ceiling");
	if (ASSERT_TRUE(entry(&f, "198.51.100.12", &e), "TTL with the top bit"))
		ASSERT_EQ(e.slots[0].ttl, MIN_TTL, "counts as 0");
cleanup:
	fixture_close(&f);
}

KST_TEST(dns_answer_cname_aaaa_ipv6)
{
	struct ans_fixture f;
	struct kars_fqdn_entry e;
	struct kst_msg m;
	size_t edge;

	if (!fixture_open(&f))
		goto cleanup;
	/* api.allowed.test CNAME edge.cdn.test CNAME e1.cdn.test A; TTLs along
	 * the chain: the smallest counts. An unrelated A in the same answer
	 * (owner not on the chain) is not learned. */
	query(&f, "api.allowed.test", T_A, 0x5555);
	kst_msg_header(&m, 0x5555, KST_DNS_QR_AA, 1, 4);
	kst_msg_question(&m, "api.allowed.test", T_A);
	kst_msg_u16(&m, 0xc000 | PTR_QNAME);
	{
		struct kst_msg rd = {0};

		kst_msg_name(&rd, "edge.cdn.test", -1);
		kst_msg_rr(&m, T_CNAME, 50, rd.b, (uint16_t)rd.n);
	}
	edge = m.n - 15; /* the CNAME's rdata: "edge.cdn.test" */
	kst_msg_name(&m, "unrelated.test", -1);
	kst_msg_rr_addr(&m, 60, "203.0.113.9");
	/* edge.cdn.test CNAME e1.<pointer to "cdn.test" inside the rdata above> */
	kst_msg_u16(&m, (uint16_t)(0xc000 | edge));
	{
		uint8_t rd[] = {2, 'e', '1', 0xc0, (uint8_t)(edge + 5)};

		kst_msg_rr(&m, T_CNAME, 40, rd, sizeof(rd));
	}
	kst_msg_name(&m, "e1.cdn.test", -1);
	kst_msg_rr_addr(&m, 70, "198.51.100.20");
	answer(&f, &m);
	if (ASSERT_TRUE(entry(&f, "198.51.100.20", &e), "address at the end of the chain")) {
		ASSERT_EQ(e.slots[0].ttl, 40, "the chain's smallest TTL");
		ASSERT_STREQ(e.name, "api.allowed.test", "named by the question");
	}
	ASSERT_FALSE(entry(&f, "203.0.113.9", &e), "record off the chain ignored");

	/* AAAA over IPv6 transport, to and from the resolver's IPv6 address. */
	query_from(&f, ROUTER6, RES6, "api.allowed.test", T_AAAA, 0x6666, 40001);
	kst_msg_header(&m, 0x6666, KST_DNS_QR_AA, 1, 1);
	kst_msg_question(&m, "api.allowed.test", T_AAAA);
	kst_msg_u16(&m, 0xc000 | PTR_QNAME);
	kst_msg_rr_addr(&m, 30, "2001:db8:7::7");
	answer_from(&f, RES6, 53, ROUTER6, 40001, &m);
	ASSERT_TRUE(entry(&f, "2001:db8:7::7", &e), "AAAA learned over IPv6");
	/* A question for AAAA answered as if for A: not the same question. */
	query(&f, "api.allowed.test", T_AAAA, 0x6667);
	simple_answer(&m, 0x6667, "api.allowed.test", 30, "198.51.100.21");
	answer(&f, &m);
	ASSERT_FALSE(entry(&f, "198.51.100.21", &e), "qtype differs: ignored");
cleanup:
	fixture_close(&f);
}

KST_TEST(dns_answer_forgeries_ignored)
{
	struct ans_fixture f;
	struct kars_fqdn_entry e;
	struct kst_msg m;

	if (!fixture_open(&f))
		goto cleanup;
	query(&f, "api.allowed.test", T_A, 0x7777);
	simple_answer(&m, 0x7777, "api.allowed.test", 30, "203.0.113.66");
	answer_from(&f, "192.0.2.99", 53, ROUTER, 40000, &m); /* not the resolver */
	answer_from(&f, RES4, 5353, ROUTER, 40000, &m);	      /* not its port */
	answer_from(&f, RES4, 53, ROUTER, 40001, &m);	      /* not the query's port */
	answer_from(&f, RES4, 53, "10.0.0.2", 40000, &m);     /* not the query's address */
	simple_answer(&m, 0x7778, "api.allowed.test", 30, "203.0.113.66");
	answer(&f, &m); /* not its id */
	simple_answer(&m, 0x7777, "evil.test", 30, "203.0.113.66");
	answer(&f, &m); /* another question */
	ASSERT_FALSE(entry(&f, "203.0.113.66", &e), "no forgery learned");
	ASSERT_EQ(counter(&f, KARS_FQDN_ANSWER_MISMATCH), 1, "the other question counted");
	/* A query's own address as the answer's source (a reflected packet). */
	simple_answer(&m, 0x7777, "api.allowed.test", 30, "203.0.113.66");
	answer_from(&f, ROUTER, 40000, RES4, 53, &m);
	ASSERT_FALSE(entry(&f, "203.0.113.66", &e), "reflected query not learned");
	/* A query, not an answer, from the resolver. */
	kst_msg_header(&m, 0x7777, 0x0100, 1, 1);
	kst_msg_question(&m, "api.allowed.test", T_A);
	kst_msg_u16(&m, 0xc000 | PTR_QNAME);
	kst_msg_rr_addr(&m, 30, "203.0.113.66");
	answer(&f, &m);
	ASSERT_FALSE(entry(&f, "203.0.113.66", &e), "QR unset: not an answer");
	/* The real answer still counts: forgeries did not consume the query. */
	simple_answer(&m, 0x7777, "api.allowed.test", 30, "198.51.100.30");
	answer(&f, &m);
	ASSERT_TRUE(entry(&f, "198.51.100.30", &e), "the real answer learned");
	/* Unsolicited: no query at all. */
	simple_answer(&m, 0x7779, "api.allowed.test", 30, "203.0.113.67");
	answer(&f, &m);
	ASSERT_FALSE(entry(&f, "203.0.113.67", &e), "unsolicited answer ignored");
	/* Errors and truncated answers teach nothing, and end the query. */
	query(&f, "api.allowed.test", T_A, 0x7780);
	kst_msg_header(&m, 0x7780, KST_DNS_QR_AA | 0x0200, 1, 1); /* TC */
	kst_msg_question(&m, "api.allowed.test", T_A);
	kst_msg_u16(&m, 0xc000 | PTR_QNAME);
	kst_msg_rr_addr(&m, 30, "203.0.113.68");
	answer(&f, &m);
	ASSERT_FALSE(entry(&f, "203.0.113.68", &e), "TC answer ignored");
	query(&f, "api.allowed.test", T_A, 0x7781);
	m.b[0] = 0x77;
	m.b[1] = 0x81;
	m.b[2] = 0x84;
	m.b[3] = 0x03; /* NXDOMAIN */
	answer(&f, &m);
	ASSERT_FALSE(entry(&f, "203.0.113.68", &e), "NXDOMAIN ignored");
	/* A query of an older fqdn generation: its answer is stale. */
	query(&f, "api.allowed.test", T_A, 0x7782);
	{
		struct kars_fqdn_cfg cfg = {.since_gen = GEN + 1,
					    .min_ttl = MIN_TTL,
					    .max_ttl = MAX_TTL,
					    .grace = GRACE,
					    .max_entries = KARS_FQDN_MAX_ENTRIES};
		__u32 sid = SID;

		bpf_map_update_elem(bpf_map__fd(f.skel->maps.kars_fqdn_cfg), &sid, &cfg, BPF_ANY);
	}
	simple_answer(&m, 0x7782, "api.allowed.test", 30, "203.0.113.69");
	answer(&f, &m);
	ASSERT_FALSE(entry(&f, "203.0.113.69", &e), "query from before the fqdns changed");
cleanup:
	fixture_close(&f);
}

KST_TEST(dns_answer_parser_edges)
{
	struct ans_fixture f;
	struct kars_fqdn_entry e;
	struct kst_msg m;
	size_t at;

	if (!fixture_open(&f))
		goto cleanup;
	/* A pointer to itself (a loop) ends the records: nothing after it. */
	query(&f, "api.allowed.test", T_A, 0x8001);
	kst_msg_header(&m, 0x8001, KST_DNS_QR_AA, 1, 2);
	kst_msg_question(&m, "api.allowed.test", T_A);
	at = m.n;
	kst_msg_u16(&m, (uint16_t)(0xc000 | at)); /* points at itself */
	kst_msg_rr_addr(&m, 30, "203.0.113.70");
	kst_msg_u16(&m, 0xc000 | PTR_QNAME);
	kst_msg_rr_addr(&m, 30, "203.0.113.71");
	answer(&f, &m);
	ASSERT_FALSE(entry(&f, "203.0.113.70", &e), "pointer loop: record refused");
	ASSERT_FALSE(entry(&f, "203.0.113.71", &e), "and parsing stopped");
	ASSERT_EQ(counter(&f, KARS_FQDN_ANSWER_BAD), 1, "counted as unreadable");
	/* Two pointers pointing at each other. */
	query(&f, "api.allowed.test", T_A, 0x8002);
	kst_msg_header(&m, 0x8002, KST_DNS_QR_AA, 1, 2);
	kst_msg_question(&m, "api.allowed.test", T_A);
	at = m.n;
	kst_msg_u16(&m, (uint16_t)(0xc000 | (at + 2 + 14)));
	kst_msg_rr_addr(&m, 30, "203.0.113.72");
	kst_msg_u16(&m, (uint16_t)(0xc000 | at));
	kst_msg_rr_addr(&m, 30, "203.0.113.73");
	answer(&f, &m);
	ASSERT_FALSE(entry(&f, "203.0.113.72", &e), "forward pointer refused");
	ASSERT_FALSE(entry(&f, "203.0.113.73", &e), "mutual pointers refused");
	/* A pointer into the header, and a pointer past the end. */
	query(&f, "api.allowed.test", T_A, 0x8003);
	kst_msg_header(&m, 0x8003, KST_DNS_QR_AA, 1, 1);
	kst_msg_question(&m, "api.allowed.test", T_A);
	kst_msg_u16(&m, 0xc000 | 2);
	kst_msg_rr_addr(&m, 30, "203.0.113.74");
	answer(&f, &m);
	ASSERT_FALSE(entry(&f, "203.0.113.74", &e), "pointer into the header refused");
	query(&f, "api.allowed.test", T_A, 0x8004);
	kst_msg_header(&m, 0x8004, KST_DNS_QR_AA, 1, 1);
	kst_msg_question(&m, "api.allowed.test", T_A);
	kst_msg_u16(&m, 0xc000 | 1500);
	kst_msg_rr_addr(&m, 30, "203.0.113.75");
	answer(&f, &m);
	ASSERT_FALSE(entry(&f, "203.0.113.75", &e), "pointer past the end refused");
	/* Truncated: the second record is cut short; the first still counts. */
	query(&f, "api.allowed.test", T_A, 0x8005);
	kst_msg_header(&m, 0x8005, KST_DNS_QR_AA, 1, 2);
	kst_msg_question(&m, "api.allowed.test", T_A);
	kst_msg_u16(&m, 0xc000 | PTR_QNAME);
	kst_msg_rr_addr(&m, 30, "198.51.100.40");
	kst_msg_u16(&m, 0xc000 | PTR_QNAME);
	kst_msg_rr_addr(&m, 30, "203.0.113.76");
	m.n -= 2;
	answer(&f, &m);
	ASSERT_TRUE(entry(&f, "198.51.100.40", &e), "whole record before the cut learned");
	ASSERT_FALSE(entry(&f, "203.0.113.76", &e), "cut record not learned");
	/* ANCOUNT larger than the records there: the same. */
	query(&f, "api.allowed.test", T_A, 0x8006);
	simple_answer(&m, 0x8006, "api.allowed.test", 30, "198.51.100.41");
	m.b[7] = 9;
	answer(&f, &m);
	ASSERT_TRUE(entry(&f, "198.51.100.41", &e), "record before a missing one learned");
	/* An A record with 5 bytes of rdata is not an address. */
	query(&f, "api.allowed.test", T_A, 0x8007);
	kst_msg_header(&m, 0x8007, KST_DNS_QR_AA, 1, 1);
	kst_msg_question(&m, "api.allowed.test", T_A);
	kst_msg_u16(&m, 0xc000 | PTR_QNAME);
	kst_msg_rr(&m, T_A, 30, "\xcb\x00\x71\x4d\x00", 5);
	answer(&f, &m);
	ASSERT_FALSE(entry(&f, "203.0.113.77", &e), "A with 5 bytes ignored");
	/* A CNAME whose target runs past its rdata. */
	query(&f, "api.allowed.test", T_A, 0x8008);
	kst_msg_header(&m, 0x8008, KST_DNS_QR_AA, 1, 2);
	kst_msg_question(&m, "api.allowed.test", T_A);
	kst_msg_u16(&m, 0xc000 | PTR_QNAME);
	kst_msg_rr(&m, T_CNAME, 30,
		   "\x03"
		   "cdn\x04"
		   "test\x00",
		   4); /* rdlen too short */
	kst_msg_name(&m, "cdn.test", -1);
	kst_msg_rr_addr(&m, 30, "203.0.113.78");
	answer(&f, &m);
	ASSERT_FALSE(entry(&f, "203.0.113.78", &e), "CNAME target past its rdata refused");
	/* 40 records: the first 32 are read. */
	query(&f, "api.allowed.test", T_A, 0x8009);
	kst_msg_header(&m, 0x8009, KST_DNS_QR_AA, 1, 40);
	kst_msg_question(&m, "api.allowed.test", T_A);
	for (int i = 0; i < 40; i++) {
		char ip[32];

		snprintf(ip, sizeof(ip), "198.51.101.%d", i);
		kst_msg_u16(&m, 0xc000 | PTR_QNAME);
		kst_msg_rr_addr(&m, 30, ip);
	}
	answer(&f, &m);
	ASSERT_TRUE(entry(&f, "198.51.101.31", &e), "32nd record learned");
	ASSERT_FALSE(entry(&f, "198.51.101.32", &e), "33rd record not read");
	/* A record of class CH is not an address of the internet. */
	query(&f, "api.allowed.test", T_A, 0x800a);
	kst_msg_header(&m, 0x800a, KST_DNS_QR_AA, 1, 1);
	kst_msg_question(&m, "api.allowed.test", T_A);
	kst_msg_u16(&m, 0xc000 | PTR_QNAME);
	kst_msg_rr_addr(&m, 30, "203.0.113.79");
	m.b[m.n - 4 - 6 - 1] = 3; /* class IN -> CH */
	answer(&f, &m);
	ASSERT_FALSE(entry(&f, "203.0.113.79", &e), "class CH ignored");
cleanup:
	fixture_close(&f);
}

/* The sandbox's entry quota: a new address past it is refused and counted;
 * an address already held is still refreshed; each new key counts once. */
KST_TEST(dns_answer_entry_quota)
{
	struct ans_fixture f;
	struct kars_fqdn_entry e;
	struct kars_fqdn_cfg cfg;
	struct kst_msg m;
	__u32 sid = SID;
	int cfd;

	if (!fixture_open(&f))
		goto cleanup;
	cfd = bpf_map__fd(f.skel->maps.kars_fqdn_cfg);
	if (!ASSERT_OK(bpf_map_lookup_elem(cfd, &sid, &cfg), "cfg"))
		goto cleanup;
	cfg.max_entries = 2;
	ASSERT_OK(bpf_map_update_elem(cfd, &sid, &cfg, BPF_ANY), "quota 2");
	query(&f, "api.allowed.test", T_A, 0x5101);
	kst_msg_header(&m, 0x5101, KST_DNS_QR_AA, 1, 3);
	kst_msg_question(&m, "api.allowed.test", T_A);
	kst_msg_u16(&m, 0xc000 | PTR_QNAME);
	kst_msg_rr_addr(&m, 30, "203.0.113.1");
	kst_msg_u16(&m, 0xc000 | PTR_QNAME);
	kst_msg_rr_addr(&m, 30, "203.0.113.2");
	kst_msg_u16(&m, 0xc000 | PTR_QNAME);
	kst_msg_rr_addr(&m, 30, "203.0.113.3");
	answer(&f, &m);
	ASSERT_TRUE(entry(&f, "203.0.113.1", &e), "first address learned");
	ASSERT_TRUE(entry(&f, "203.0.113.2", &e), "second address learned");
	ASSERT_FALSE(entry(&f, "203.0.113.3", &e), "third address: over the quota");
	ASSERT_EQ(counter(&f, KARS_FQDN_ENTRY_QUOTA), 1, "refusal counted");
	if (ASSERT_OK(bpf_map_lookup_elem(cfd, &sid, &cfg), "cfg"))
		ASSERT_EQ(cfg.n_entries, 2, "two keys counted");
	/* Held addresses are refreshed at the quota, and not counted again. */
	query(&f, "api.allowed.test", T_A, 0x5102);
	simple_answer(&m, 0x5102, "api.allowed.test", 40, "203.0.113.1");
	answer(&f, &m);
	if (ASSERT_TRUE(entry(&f, "203.0.113.1", &e), "held address"))
		ASSERT_EQ(e.slots[0].ttl, 40, "refreshed at the quota");
	ASSERT_EQ(counter(&f, KARS_FQDN_ENTRY_QUOTA), 1, "no refusal for a held address");
	if (ASSERT_OK(bpf_map_lookup_elem(cfd, &sid, &cfg), "cfg"))
		ASSERT_EQ(cfg.n_entries, 2, "still two keys");
	/* Without a count (karsd's sweep found fewer), the next one gets in. */
	cfg.n_entries = 1;
	ASSERT_OK(bpf_map_update_elem(cfd, &sid, &cfg, BPF_ANY), "recount");
	query(&f, "api.allowed.test", T_A, 0x5103);
	simple_answer(&m, 0x5103, "api.allowed.test", 30, "203.0.113.3");
	answer(&f, &m);
	ASSERT_TRUE(entry(&f, "203.0.113.3", &e), "under the quota again: learned");
cleanup:
	fixture_close(&f);
}
