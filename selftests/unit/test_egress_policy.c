/* test_egress_policy.c - unit tests for the egress proxy's decision
 * (userspace/router/egress_policy.c) and the address classes it refuses
 * after resolution (userspace/lib/addr_class.c), as tables: exact and
 * "*.suffix" names, ports, normalisation (case, trailing dot, punycode), the
 * blocklist in both modes, IP literals in every spelling getaddrinfo reads,
 * and every refused class in IPv4, IPv6 and the forms carrying IPv4. */
#include "unit.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "addr_class.h"
#include "egress_policy.h"
#include "json.h"

static const char allow_json[] =
    "[{\"name\": \"api.example.com\", \"port\": 443},"
    " {\"name\": \"*.cdn.example\", \"ports\": \"443-444\"},"
    " {\"name\": \"Bücher.example\", \"port\": 443},"
    " {\"name\": \"plain.example\", \"port\": 80, \"protocol\": \"tcp\"},"
    " {\"name\": \"evil.example\", \"port\": 443}]";

static void load(struct kars_egress_policy *p, enum kars_egress_mode mode)
{
	char path[] = "/tmp/issue7p-blockXXXXXX";
	struct kars_err err = {0};
	json_t *arr = kars_json_parse(allow_json, strlen(allow_json), &err);
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");

	assert_non_null(arr);
	assert_non_null(f);
	fputs("# test\n*.tracker.example\nevil.example\n0.0.0.0 ads.cdn.example\n", f);
	fclose(f);
	memset(p, 0, sizeof(*p));
	p->mode = mode;
	assert_int_equal(kars_egress_policy_parse_allow(arr, "allow", p, &err), 0);
	assert_int_equal(kars_egress_policy_load_blocklist(p, path, &err), 0);
	unlink(path);
	json_decref(arr);
}

static const struct {
	const char *host;
	uint16_t port;
	bool strict_allow, learn_allow;
	const char *reason;
} cases[] = {
    {"api.example.com", 443, true, true, "allowed"},
    {"API.Example.COM.", 443, true, true, "allowed"},
    {"api.example.com", 80, false, true, "port_not_allowed"},
    {"api.example.com", 8443, false, true, "port_not_allowed"},
    {"x.api.example.com", 443, false, true, "not_allowed"}, /* exact means exact */
    {"example.com", 443, false, true, "not_allowed"},
    {"xapi.example.com", 443, false, true, "not_allowed"},
    {"a.cdn.example", 444, true, true, "allowed"},
    {"a.b.cdn.example", 443, true, true, "allowed"},  /* any depth */
    {"cdn.example", 443, false, true, "not_allowed"}, /* not the suffix itself */
    {"xcdn.example", 443, false, true, "not_allowed"},
    {"a.cdn.example", 445, false, true, "port_not_allowed"},
    {"xn--bcher-kva.example", 443, true, true, "allowed"}, /* punycode of the entry */
    {"plain.example", 80, true, true, "allowed"},
    {"evil.example", 443, false, false, "blocklisted"}, /* allowlisted, blocked wins */
    {"a.tracker.example", 443, false, false, "blocklisted"},
    {"tracker.example", 443, false, false, "blocklisted"},
    {"ads.cdn.example", 443, false, false, "blocklisted"},
    {"x.ads.cdn.example", 443, false, false, "blocklisted"},
    {"EVIL.example.", 443, false, false, "blocklisted"},
    {"192.0.2.1", 443, false, true, "ip_literal"},
    {"2001:db8::1", 443, false, true, "ip_literal"},
    {"::ffff:10.0.0.1", 443, false, true, "ip_literal"},
    {"2130706433", 443, false, true, "ip_literal"}, /* inet_aton: 127.0.0.1 */
    {"0x7f.1", 443, false, true, "ip_literal"},
    {"127.1", 443, false, true, "ip_literal"},
    {"a..example", 443, false, false, "bad_name"},
    {"", 443, false, false, "bad_name"},
};

static void test_decisions(void **state)
{
	struct kars_egress_policy strict, learn;
	struct kars_egress_decision d;

	load(&strict, KARS_EGRESS_STRICT);
	load(&learn, KARS_EGRESS_LEARN);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		kars_egress_decide(&strict, cases[i].host, cases[i].port, &d);
		if (d.allow != cases[i].strict_allow || strcmp(d.reason, cases[i].reason) ||
		    d.learn)
			fail_msg("strict %s:%u: allow %d reason %s", cases[i].host, cases[i].port,
				 d.allow, d.reason);
		kars_egress_decide(&learn, cases[i].host, cases[i].port, &d);
		if (d.allow != cases[i].learn_allow || strcmp(d.reason, cases[i].reason) ||
		    d.learn != (d.allow && strcmp(d.reason, "allowed") != 0))
			fail_msg("learn %s:%u: allow %d learn %d reason %s", cases[i].host,
				 cases[i].port, d.allow, d.learn, d.reason);
	}
	kars_egress_decide(&strict, "API.Example.COM.", 443, &d);
	assert_string_equal(d.host, "api.example.com");
	kars_egress_policy_free(&strict);
	kars_egress_policy_free(&learn);
}

static void test_approve_adds_exact(void **state)
{
	struct kars_egress_policy p;
	struct kars_egress_decision d;

	load(&p, KARS_EGRESS_STRICT);
	kars_egress_decide(&p, "new.example", 443, &d);
	assert_false(d.allow);
	assert_int_equal(kars_egress_policy_add(&p, "new.example", 443), 0);
	kars_egress_decide(&p, "new.example", 443, &d);
	assert_true(d.allow);
	kars_egress_decide(&p, "new.example", 80, &d);
	assert_false(d.allow);
	kars_egress_decide(&p, "a.new.example", 443, &d);
	assert_false(d.allow);
	kars_egress_policy_free(&p);
}

static void test_bad_allow_entries(void **state)
{
	static const struct {
		const char *json, *want;
	} bad[] = {
	    {"[{\"name\": \"a.example\"}]", "exactly one of port, ports"},
	    {"[{\"name\": \"a.example\", \"port\": 1, \"ports\": \"1-2\"}]", "exactly one"},
	    {"[{\"name\": \"a.*.example\", \"port\": 443}]", "allow[0].name: a wildcard"},
	    {"[{\"name\": \"a.example\", \"port\": 443, \"protocol\": \"udp\"}]", "tcp only"},
	    {"[{\"name\": \"a.example\", \"ports\": \"9-1\"}]", "ends below"},
	    {"[{\"name\": \"a.example\", \"port\": 0}]", "allow[0].port"},
	    {"[{\"name\": \"a..example\", \"port\": 1}]", "allow[0].name: label 2 is empty"},
	    {"[{\"name\": \"a.example\", \"port\": 1, \"typo\": 1}]", "typo"},
	    {"[1]", "allow[0]: expected an object"},
	};
	struct kars_egress_policy p = {0};
	struct kars_err err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *arr;

		kars_err_clear(&err);
		arr = kars_json_parse(bad[i].json, strlen(bad[i].json), &err);
		assert_non_null(arr);
		if (kars_egress_policy_parse_allow(arr, "allow", &p, &err) == 0)
			fail_msg("accepted %s", bad[i].json);
		assert_err_contains(&err, bad[i].want);
		json_decref(arr);
	}
	kars_egress_policy_free(&p);
}

static void test_bad_blocklist_line_named(void **state)
{
	char path[] = "/tmp/issue7p-blockXXXXXX";
	struct kars_egress_policy p = {0};
	struct kars_err err = {0};
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "ok.example\n||adblock^\n", 22), 22);
	close(fd);
	assert_true(kars_egress_policy_load_blocklist(&p, path, &err) < 0);
	assert_err_contains(&err, ":2: ");
	unlink(path);
	kars_egress_policy_free(&p);
}

static const struct {
	const char *addr, *class; /* NULL: public, dialled */
} classes[] = {
    {"8.8.8.8", NULL},
    {"192.0.2.1", NULL}, /* documentation ranges are not refused (test nets) */
    {"198.51.100.7", NULL},
    {"2606:4700::1111", NULL},
    {"2001:db8::1", NULL},
    {"0.0.0.0", "unspecified"},
    {"0.1.2.3", "unspecified"},
    {"10.0.0.5", "private"},
    {"172.16.0.1", "private"},
    {"172.31.255.255", "private"},
    {"172.32.0.1", NULL},
    {"192.168.1.1", "private"},
    {"127.0.0.1", "loopback"},
    {"127.255.0.9", "loopback"},
    {"169.254.1.1", "link_local"},
    {"169.254.169.254", "metadata"},
    {"169.254.170.2", "metadata"},
    {"100.100.100.200", "metadata"},
    {"100.64.0.1", "cgnat"},
    {"100.127.255.255", "cgnat"},
    {"100.128.0.1", NULL},
    {"224.0.0.1", "multicast"},
    {"255.255.255.255", "reserved"},
    {"198.18.0.1", "reserved"},
    {"::", "unspecified"},
    {"::1", "loopback"},
    {"fe80::1", "link_local"},
    {"febf::1", "link_local"},
    {"fec0::1", "private"},
    {"fc00::1", "ula"},
    {"fd12:3456::1", "ula"},
    {"fd00:ec2::254", "metadata"},
    {"ff02::1", "multicast"},
    {"100::1", "reserved"},
    {"2001::1", "reserved"}, /* Teredo */
    {"::ffff:127.0.0.1", "loopback"},
    {"::ffff:169.254.169.254", "metadata"},
    {"::ffff:10.1.1.1", "private"},
    {"::ffff:8.8.8.8", NULL},
    {"::10.0.0.1", "reserved"}, /* v4-compatible */
    {"64:ff9b::10.0.0.1", "private"},
    {"64:ff9b::a9fe:a9fe", "metadata"},
    {"64:ff9b::8.8.8.8", NULL},
    {"2002:7f00:1::1", "loopback"}, /* 6to4 of 127.0.0.1 */
    {"2002:c0a8:101::1", "private"},
    {"2002:808:808::1", NULL},
};

static void test_address_classes(void **state)
{
	for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
		struct kars_addr a;
		struct kars_err err = {0};
		const char *got;

		assert_int_equal(kars_addr_parse(classes[i].addr, &a, "addr", &err), 0);
		got = kars_addr_refused_class(&a);
		if ((got == NULL) != (classes[i].class == NULL) ||
		    (got && strcmp(got, classes[i].class)))
			fail_msg("%s: class %s, want %s", classes[i].addr, got ? got : "(public)",
				 classes[i].class ? classes[i].class : "(public)");
	}
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_decisions),	      cmocka_unit_test(test_approve_adds_exact),
    cmocka_unit_test(test_bad_allow_entries), cmocka_unit_test(test_bad_blocklist_line_named),
    cmocka_unit_test(test_address_classes),
};

KARS_UNIT_MAIN(tests)
