/* fuzz_dns_answer.c - random DNS answers through the router's query
 * recorder and answer snooper (kars_fqdn_egress, kars_fqdn_ingress,
 * BPF_PROG_TEST_RUN), the addresses the kernel learned compared with a
 * reference parser written here in plain C from the rules of docs/dns.md.
 *
 * Each input is answered to one recorded query (api.allowed.test, A, id
 * 0x1234, from 10.0.0.1:40000 to the resolver 192.0.2.53:53). Byte 0 bit 0
 * set: the rest is the whole message (header and question too); clear: bytes
 * 1-2 are the flags, byte 3 the answer count, and the rest the records after
 * the harness's header and question. The reference compares names as text,
 * the kernel by keyed hashes; any difference in the learned addresses or
 * their TTLs aborts with both. Needs root; selftests/fuzz/run.sh skips it
 * otherwise.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fqdn_name.h"
#include "kars_dataplane.h"
#include "sandbox.skel.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SID	7
#define GEN	5
#define MIN_TTL 2
#define MAX_TTL 100
#define QNAME	"api.allowed.test"

static struct sandbox_bpf *skel;
static int eg, in;

/* The cgroup v2 id of this process: BPF_PROG_TEST_RUN gives the packet a
 * socket of the calling task's cgroup, where the policy must be. */
static int self_cgroup_id(uint64_t *id)
{
	char line[4096], mnt[1024] = "", path[5200], dev[64], type[64];
	struct {
		struct file_handle fh;
		uint64_t id;
	} h = {.fh.handle_bytes = sizeof(uint64_t)};
	int mount_id;
	bool found = false;
	FILE *f = fopen("/proc/mounts", "r");

	while (f && fscanf(f, "%63s %1023s %63s %*[^\n]", dev, mnt, type) == 3)
		if (strcmp(type, "cgroup2") == 0) {
			found = true;
			break;
		}
	if (f)
		fclose(f);
	f = fopen("/proc/self/cgroup", "r");
	while (found && f && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3))
			continue;
		line[strcspn(line, "\n")] = '\0';
		snprintf(path, sizeof(path), "%s%s", mnt, line + 3);
		fclose(f);
		if (name_to_handle_at(AT_FDCWD, path, &h.fh, &mount_id, 0))
			return -1;
		*id = h.id;
		return 0;
	}
	if (f)
		fclose(f);
	return -1;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct kars_cgroup_policy pol = {.sandbox_id = SID,
					 .gen = GEN,
					 .role = KARS_ROLE_ROUTER,
					 .has_resolver4 = 1,
					 .uid = KARS_UID_ANY,
					 .resolver_port = 53,
					 .resolver4 = 0x350200c0}; /* 192.0.2.53 */
	struct kars_fqdn_cfg cfg = {.since_gen = GEN,
				    .min_ttl = MIN_TTL,
				    .max_ttl = MAX_TTL,
				    .max_entries = KARS_FQDN_MAX_ENTRIES};
	struct kars_fqdn_key key = {{1, 2}, {3, 4}};
	struct kars_fqdn_rule_key rk = {.gen = GEN};
	struct kars_fqdn_rule rule = {.ranges = {{.proto = 6, .lo = 443, .hi = 443}}};
	struct bpf_program *p;
	uint64_t cg;
	__u32 zero = 0, sid = SID;

	libbpf_set_print(NULL);
	skel = sandbox_bpf__open();
	if (!skel)
		abort();
	bpf_object__for_each_program(p, skel->obj) bpf_program__set_autoload(
	    p, p == skel->progs.kars_fqdn_egress || p == skel->progs.kars_fqdn_ingress);
	if (sandbox_bpf__load(skel) || self_cgroup_id(&cg)) {
		fprintf(stderr, "fuzz_dns_answer: cannot load the programs (root needed)\n");
		abort();
	}
	eg = bpf_program__fd(skel->progs.kars_fqdn_egress);
	in = bpf_program__fd(skel->progs.kars_fqdn_ingress);
	rk.hash = kars_fqdn_name_hash(&key, QNAME);
	if (bpf_map_update_elem(bpf_map__fd(skel->maps.kars_fqdn_key), &zero, &key, 0) ||
	    bpf_map_update_elem(bpf_map__fd(skel->maps.kars_cgroups), &cg, &pol, 0) ||
	    bpf_map_update_elem(bpf_map__fd(skel->maps.kars_fqdn_cfg), &sid, &cfg, 0) ||
	    bpf_map_update_elem(bpf_map__fd(skel->maps.kars_fqdn_rules), &rk, &rule, 0))
		abort();
	return 0;
}

/* --- the reference ------------------------------------------------------- */

/* A name as labels, each its length and lower-cased bytes, decompressed:
 * comparable whatever bytes a label holds (dots, NULs). */
struct ref_name {
	size_t len;
	uint8_t b[KARS_DNS_MAX_WIRE + 64];
};

static bool same_name(const struct ref_name *a, const struct ref_name *b)
{
	return a->len == b->len && !memcmp(a->b, b->b, a->len);
}

/* The name at off; *end: where it ends where written. */
static int ref_name(const uint8_t *m, size_t len, size_t off, struct ref_name *out, size_t *end)
{
	size_t pos = off, limit = off, wire = 0, n = 0, hops = 0, t = 0;
	bool jumped = false;

	for (;;) {
		uint8_t l;

		if (pos >= len)
			return -1;
		l = m[pos];
		if ((l & 0xc0) == 0xc0) {
			size_t target;

			if (pos + 2 > len || ++hops > KARS_FQDN_MAX_HOPS)
				return -1;
			target = ((size_t)(l & 0x3f) << 8) | m[pos + 1];
			if (target >= limit || target < 12)
				return -1;
			if (!jumped)
				*end = pos + 2;
			jumped = true;
			pos = limit = target;
			continue;
		}
		if (l & 0xc0)
			return -1;
		if (l == 0) {
			if (!jumped)
				*end = pos + 1;
			out->len = t;
			return 0;
		}
		wire += l + 1u;
		if (n >= KARS_DNS_MAX_LABELS || wire > KARS_DNS_MAX_WIRE - 1 || pos + 1 + l > len)
			return -1;
		out->b[t++] = l;
		for (size_t i = 0; i < l; i++) {
			uint8_t c = m[pos + 1 + i];

			out->b[t++] = (uint8_t)(c >= 'A' && c <= 'Z' ? c + 32 : c);
		}
		n++;
		pos += 1u + l;
	}
}

static unsigned u16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

struct learned {
	uint8_t addr[16];
	uint32_t ttl;
};

/* The addresses the rules learn from message m, with their last TTL. */
static size_t reference(const uint8_t *m, size_t len, struct learned *out)
{
	static const struct ref_name qname = {17, "\x03"
						  "api\x07"
						  "allowed\x04"
						  "test"};
	struct ref_name chain[KARS_FQDN_MAX_CHAIN], name;
	uint32_t chain_ttl[KARS_FQDN_MAX_CHAIN];
	size_t n_chain = 1, n_out = 0, end = 0, off, rr;
	unsigned flags;

	if (len < 12 || u16(m) != 0x1234)
		return 0;
	flags = u16(m + 2);
	if (!(flags & 0x8000) || (flags & 0x7800) || u16(m + 4) != 1 || (flags & 0x020f))
		return 0;
	if (ref_name(m, len, 12, &chain[0], &end) || end + 4 > len ||
	    !same_name(&chain[0], &qname) || u16(m + end) != 1 || u16(m + end + 2) != 1)
		return 0;
	chain_ttl[0] = 0xffffffff;
	off = end + 4;
	rr = u16(m + 6) < KARS_FQDN_MAX_RRS ? u16(m + 6) : KARS_FQDN_MAX_RRS;
	for (size_t r = 0; r < rr; r++) {
		unsigned type, class, rdlen;
		uint32_t ttl;
		size_t p, next, on;

		if (ref_name(m, len, off, &name, &p) || p + 10 > len)
			break;
		type = u16(m + p);
		class = u16(m + p + 2);
		ttl = (uint32_t)u16(m + p + 4) << 16 | u16(m + p + 6);
		rdlen = u16(m + p + 8);
		next = p + 10 + rdlen;
		if (next > len)
			break;
		off = next;
		for (on = 0; on < n_chain && !same_name(&chain[on], &name); on++)
			;
		if (class != 1 || on == n_chain)
			continue;
		if (ttl > 0x7fffffff)
			ttl = 0;
		if (ttl > chain_ttl[on])
			ttl = chain_ttl[on];
		if (type == 5) {
			size_t tend = 0;

			if (n_chain >= KARS_FQDN_MAX_CHAIN)
				continue;
			if (ref_name(m, len, p + 10, &chain[n_chain], &tend) || tend > next)
				break;
			chain_ttl[n_chain++] = ttl;
			continue;
		}
		if ((type == 1 && rdlen == 4) || (type == 28 && rdlen == 16)) {
			struct learned l = {.ttl = ttl < MIN_TTL   ? MIN_TTL
						   : ttl > MAX_TTL ? MAX_TTL
								   : ttl};
			size_t i;

			if (rdlen == 4) {
				l.addr[10] = l.addr[11] = 0xff;
				memcpy(l.addr + 12, m + p + 10, 4);
			} else {
				memcpy(l.addr, m + p + 10, 16);
			}
			for (i = 0; i < n_out && memcmp(out[i].addr, l.addr, 16); i++)
				;
			out[i] = l;
			if (i == n_out)
				n_out++;
		}
	}
	return n_out;
}

/* --- the kernel ------------------------------------------------------------ */

static size_t frame(uint8_t *buf, const uint8_t *msg, size_t len, bool query)
{
	static const uint8_t router[4] = {10, 0, 0, 1}, resolver[4] = {192, 0, 2, 53};
	size_t n = 14 + 20 + 8 + len;

	memset(buf, 0, 14 + 20 + 8);
	buf[12] = 0x08;
	buf[14] = 0x45;
	buf[16] = (uint8_t)((n - 14) >> 8);
	buf[17] = (uint8_t)(n - 14);
	buf[22] = 64;
	buf[23] = 17;
	memcpy(buf + 26, query ? router : resolver, 4);
	memcpy(buf + 30, query ? resolver : router, 4);
	buf[34] = query ? 0x9c : 0;
	buf[35] = query ? 0x40 : 53;
	buf[36] = query ? 0 : 0x9c;
	buf[37] = query ? 53 : 0x40; /* 40000 <-> 53 */
	buf[38] = (uint8_t)((8 + len) >> 8);
	buf[39] = (uint8_t)(8 + len);
	memcpy(buf + 42, msg, len);
	return n;
}

static void run(int fd, const uint8_t *buf, size_t n)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = buf, .data_size_in = (__u32)n, .repeat = 1);

	if (bpf_prog_test_run_opts(fd, &opts) || opts.retval != 1)
		abort();
}

static size_t kernel(struct learned *out, size_t cap)
{
	int fd = bpf_map__fd(skel->maps.kars_fqdn_entries);
	struct kars_fqdn_entry_key k, next;
	struct kars_fqdn_entry e;
	size_t n = 0;

	while (bpf_map_get_next_key(fd, NULL, &next) == 0) {
		k = next;
		if (bpf_map_lookup_elem(fd, &k, &e) == 0 && n < cap) {
			memcpy(out[n].addr, k.addr, 16);
			out[n++].ttl = e.slots[0].ttl;
		}
		bpf_map_delete_elem(fd, &k);
	}
	{
		/* The entries are gone: so is the sandbox's count of them (what
		 * karsd's sweep does), or the quota would stop learning. */
		struct kars_fqdn_cfg c;
		__u32 sid = SID;
		int cfd = bpf_map__fd(skel->maps.kars_fqdn_cfg);

		if (bpf_map_lookup_elem(cfd, &sid, &c) == 0 && c.n_entries) {
			c.n_entries = 0;
			bpf_map_update_elem(cfd, &sid, &c, BPF_ANY);
		}
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t question[] = "\x03"
					  "api\x07"
					  "allowed\x04"
					  "test\x00\x00\x01\x00\x01";
	static uint8_t buf[2048], msg[1600];
	struct learned want[KARS_FQDN_MAX_RRS], got[KARS_FQDN_MAX_RRS + 1];
	size_t len, n_want, n_got, n;

	if (size < 1 || size > 1400)
		return 0;
	/* The query, recorded (again) by the egress program. */
	memcpy(msg, "\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", 12);
	memcpy(msg + 12, question, sizeof(question) - 1);
	run(eg, buf, frame(buf, msg, 12 + sizeof(question) - 1, true));
	if (data[0] & 1) {
		len = size - 1;
		memcpy(msg, data + 1, len);
	} else {
		if (size < 4)
			return 0;
		msg[2] = data[1];
		msg[3] = data[2];
		msg[6] = 0;
		msg[7] = data[3];
		len = 12 + sizeof(question) - 1 + size - 4;
		memcpy(msg + 12 + sizeof(question) - 1, data + 4, size - 4);
	}
	run(in, buf, frame(buf, msg, len, false));
	n_got = kernel(got, KARS_FQDN_MAX_RRS + 1);
	n_want = reference(msg, len, want);
	n = 0;
	for (size_t i = 0; i < n_want; i++)
		for (size_t j = 0; j < n_got; j++)
			if (!memcmp(want[i].addr, got[j].addr, 16) && want[i].ttl == got[j].ttl)
				n++;
	if (n_got != n_want || n != n_want) {
		fprintf(stderr, "fuzz_dns_answer: kernel learned %zu, reference %zu (%zu agree)\n",
			n_got, n_want, n);
		abort();
	}
	return 0;
}
