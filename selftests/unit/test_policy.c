/* test_policy.c - unit tests for the "apply" request parser (userspace/tracer/policy.h).
 *
 * karsd parses a whole apply request before touching any map, so a request it
 * accepts must carry exactly what docs/karsd-api.md says (defaults included),
 * and one it refuses must name the offending field and leave nothing behind.
 */
#include "unit.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>

#include "json.h"
#include "kars_fqdn.h"
#include "policy.h"

/* The example of docs/karsd-api.md. */
static const char docs_request[] =
    "{\"op\": \"apply\",\n"
    " \"sandbox\": \"team-a/research-bot\",\n"
    " \"mode\": \"strict\",\n"
    " \"agent\":  {\"cgroup\": \"kars/team-a/research-bot/agent\",  \"uid\": 1000},\n"
    " \"router\": {\"cgroup\": \"kars/team-a/research-bot/router\", \"uid\": 1001},\n"
    " \"routerPort\": 8443, \"proxyPort\": 8444,\n"
    " \"resolver\": {\"ipv4\": \"10.0.0.10\", \"ipv6\": \"fd00::10\", \"port\": 53},\n"
    " \"learnMax\": 1024,\n"
    " \"rules\": [\n"
    "   {\"ip\": \"192.0.2.10\", \"port\": 443, \"protocol\": \"tcp\"},\n"
    "   {\"cidr\": \"198.51.100.0/24\", \"ports\": \"8000-8100\", \"protocol\": \"tcp\"},\n"
    "   {\"ip\": \"10.0.0.10\", \"port\": 53, \"protocol\": \"udp\"}\n"
    " ]}\n";

static json_t *load(const char *s)
{
	struct kars_err err = {0};
	json_t *j = kars_json_parse(s, strlen(s), &err);

	if (!j)
		fail_msg("test JSON does not parse: %s", err.msg);
	return j;
}

/* The docs request with each top-level field of patch (a JSON object) put in
 * its place; a null in patch removes the field. */
static json_t *request(const char *patch)
{
	json_t *req = load(docs_request);
	json_t *p = load(patch);
	const char *key;
	json_t *v;

	json_object_foreach(p, key, v)
	{
		if (json_is_null(v))
			json_object_del(req, key);
		else
			json_object_set(req, key, v);
	}
	json_decref(p);
	return req;
}

static void assert_addr(const struct kars_addr *a, const char *text)
{
	struct kars_err err = {0};
	struct kars_addr want;

	assert_int_equal(kars_addr_parse(text, &want, "want", &err), 0);
	assert_memory_equal(a->bytes, want.bytes, 16);
}

static bool all_zero(const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++) {
		if (c[i])
			return false;
	}
	return true;
}

/* Applies patch to the docs request and expects kars_policy_parse to refuse
 * it (with -EINVAL or -ERANGE, as the parsers report a bad value) with a
 * message starting with want, leaving the policy zeroed. */
static void expect_refused(const char *patch, const char *want)
{
	json_t *req = request(patch);
	struct kars_err err = {0};
	struct kars_policy p;
	int ret;

	memset(&p, 0xa5, sizeof(p));
	ret = kars_policy_parse(req, &p, &err);
	json_decref(req);
	if ((ret != -EINVAL && ret != -ERANGE) || err.code != -ret) {
		kars_policy_free(&p);
		fail_msg("patch %s: returned %d, error %d \"%s\"", patch, ret, err.code, err.msg);
	}
	if (strncmp(err.msg, want, strlen(want)) != 0)
		fail_msg("patch %s: error \"%s\" does not start with \"%s\"", patch, err.msg, want);
	if (!all_zero(&p, sizeof(p)))
		fail_msg("patch %s: refused policy not left zeroed", patch);
	kars_policy_free(&p); /* must be harmless */
	assert_true(all_zero(&p, sizeof(p)));
}

/* Parses the docs request with patch applied; the caller frees p. */
static void parse_ok(const char *patch, struct kars_policy *p)
{
	json_t *req = request(patch);
	struct kars_err err = {0};
	int ret;

	memset(p, 0xa5, sizeof(*p));
	ret = kars_policy_parse(req, p, &err);
	json_decref(req);
	if (ret)
		fail_msg("patch %s: refused: %s", patch, err.msg);
}

static void test_docs_request(void **state)
{
	struct kars_policy p;

	parse_ok("{}", &p);
	assert_string_equal(p.sandbox, "team-a/research-bot");
	assert_int_equal(p.mode, KARS_MODE_STRICT);
	assert_true(p.agent.present);
	assert_string_equal(p.agent.cgroup, "kars/team-a/research-bot/agent");
	assert_int_equal(p.agent.uid, 1000);
	assert_true(p.router.present);
	assert_string_equal(p.router.cgroup, "kars/team-a/research-bot/router");
	assert_int_equal(p.router.uid, 1001);
	assert_int_equal(p.router_port, 8443);
	assert_int_equal(p.proxy_port, 8444);
	assert_true(p.has_resolver4);
	assert_addr(&p.resolver4, "10.0.0.10");
	assert_true(p.has_resolver6);
	assert_addr(&p.resolver6, "fd00::10");
	assert_int_equal(p.resolver_port, 53);
	assert_int_equal(p.learn_max, 1024);

	assert_int_equal(p.n_exact, 2);
	assert_addr(&p.exact[0].addr, "192.0.2.10");
	assert_int_equal(p.exact[0].port, 443);
	assert_int_equal(p.exact[0].proto, IPPROTO_TCP);
	assert_addr(&p.exact[1].addr, "10.0.0.10");
	assert_int_equal(p.exact[1].port, 53);
	assert_int_equal(p.exact[1].proto, IPPROTO_UDP);

	assert_int_equal(p.n_cidr, 1);
	assert_addr(&p.cidr[0].addr, "198.51.100.0");
	assert_int_equal(p.cidr[0].prefix128, 96 + 24);
	assert_int_equal(p.cidr[0].port_lo, 8000);
	assert_int_equal(p.cidr[0].port_hi, 8100);
	assert_int_equal(p.cidr[0].proto, IPPROTO_TCP);
	kars_policy_free(&p);
}

static void test_defaults(void **state)
{
	struct kars_policy p;

	parse_ok("{\"mode\": null, \"router\": null, \"routerPort\": null, \"proxyPort\": null,"
		 " \"resolver\": null, \"learnMax\": null, \"rules\": null, \"op\": null,"
		 " \"agent\": {\"cgroup\": \"/sys/fs/cgroup/kars/a\"}}",
		 &p);
	assert_string_equal(p.sandbox, "team-a/research-bot");
	assert_int_equal(p.mode, KARS_MODE_STRICT);
	assert_true(p.agent.present);
	assert_string_equal(p.agent.cgroup, "/sys/fs/cgroup/kars/a");
	assert_true(p.agent.uid == KARS_UID_ANY);
	assert_false(p.router.present);
	assert_int_equal(p.router_port, KARS_CONTRACT_ROUTER_PORT);
	assert_int_equal(p.router_port, 8443);
	assert_int_equal(p.proxy_port, 8444);
	assert_false(p.has_resolver4);
	assert_false(p.has_resolver6);
	assert_int_equal(p.resolver_port, 53);
	assert_int_equal(p.learn_max, 1024);
	assert_int_equal(p.n_exact, 0);
	assert_int_equal(p.n_cidr, 0);
	kars_policy_free(&p);
}

static void test_variants_accepted(void **state)
{
	struct kars_policy p;

	parse_ok("{\"mode\": \"learn\", \"agent\": null, \"router\": {\"cgroup\": \"kars/r\"},"
		 " \"routerPort\": 9000, \"proxyPort\": 9001, \"learnMax\": 0,"
		 " \"resolver\": {\"ipv6\": \"fd00::53\", \"port\": 5353},"
		 " \"rules\": [{\"cidr\": \"2001:db8::/32\", \"port\": 443},"
		 "            {\"ip\": \"::ffff:192.0.2.1\", \"port\": 80, \"protocol\": \"udp\"},"
		 "            {\"cidr\": \"0.0.0.0/0\", \"ports\": \"53\", \"protocol\": \"udp\"},"
		 "            {\"cidr\": \"10.0.0.0/8\", \"ports\": \"1-65535\"}]}",
		 &p);
	assert_int_equal(p.mode, KARS_MODE_LEARN);
	assert_false(p.agent.present);
	assert_true(p.router.present);
	assert_true(p.router.uid == KARS_UID_ANY);
	assert_int_equal(p.router_port, 9000);
	assert_int_equal(p.proxy_port, 9001);
	assert_int_equal(p.learn_max, 0);
	assert_false(p.has_resolver4);
	assert_true(p.has_resolver6);
	assert_addr(&p.resolver6, "fd00::53");
	assert_int_equal(p.resolver_port, 5353);

	assert_int_equal(p.n_exact, 1);
	assert_addr(&p.exact[0].addr, "192.0.2.1");
	assert_int_equal(p.exact[0].port, 80);
	assert_int_equal(p.exact[0].proto, IPPROTO_UDP);

	assert_int_equal(p.n_cidr, 3);
	assert_addr(&p.cidr[0].addr, "2001:db8::");
	assert_int_equal(p.cidr[0].prefix128, 32);
	assert_int_equal(p.cidr[0].port_lo, 443);
	assert_int_equal(p.cidr[0].port_hi, 443);
	assert_int_equal(p.cidr[0].proto, IPPROTO_TCP);
	assert_int_equal(p.cidr[1].prefix128, 96);
	assert_int_equal(p.cidr[1].port_lo, 53);
	assert_int_equal(p.cidr[1].port_hi, 53);
	assert_int_equal(p.cidr[1].proto, IPPROTO_UDP);
	assert_int_equal(p.cidr[2].prefix128, 104);
	assert_int_equal(p.cidr[2].port_lo, 1);
	assert_int_equal(p.cidr[2].port_hi, 65535);
	kars_policy_free(&p);

	/* uid 0 is a real UID, not "any" */
	parse_ok("{\"agent\": {\"cgroup\": \"a\", \"uid\": 0}, \"router\": {\"cgroup\": \"b\","
		 " \"uid\": 4294967294}}",
		 &p);
	assert_int_equal(p.agent.uid, 0);
	assert_true(p.router.uid == 4294967294u);
	kars_policy_free(&p);
}

static void test_sandbox_names(void **state)
{
	static const char *const good[] = {"a/b", "team-a/bot.v2", "0/9", "a-b/c-d.e-f.g"};
	static const char *const bad[] = {
	    "Team/x", "team/X", "teamx", "a/b/c", "/b",	    "a/",    "-a/b",  "a-/b",
	    "a/-b",   "a/b-",	"a/.b",	 "a/b.",  "a/b..c", "a_b/c", "a/b c", "a.b/c",
	};
	char patch[512];
	struct kars_policy p;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(patch, sizeof(patch), "{\"sandbox\": \"%s\"}", good[i]);
		parse_ok(patch, &p);
		assert_string_equal(p.sandbox, good[i]);
		kars_policy_free(&p);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(patch, sizeof(patch), "{\"sandbox\": \"%s\"}", bad[i]);
		expect_refused(patch, "sandbox: ");
	}
	expect_refused("{\"sandbox\": null}", "sandbox: Required value");
	expect_refused("{\"sandbox\": 1}", "sandbox: expected a string");
}

/* A name is stored in a fixed buffer (and in the BPF metadata map): a long
 * one must be refused, never cut short or written past the buffer. */
static void test_sandbox_name_length(void **state)
{
	char name[400], patch[512];
	struct kars_policy p;

	/* 63-character namespace, '/', name up to KARS_SANDBOX_NAME_MAX in all */
	memset(name, 'n', 63);
	name[63] = '/';
	for (size_t i = 64; i < KARS_SANDBOX_NAME_MAX; i++)
		name[i] = i % 60 == 0 ? '.' : 'x';
	name[KARS_SANDBOX_NAME_MAX] = '\0';
	assert_int_equal(kars_sandbox_name_check(name, "sandbox", NULL), 0);
	snprintf(patch, sizeof(patch), "{\"sandbox\": \"%s\"}", name);
	parse_ok(patch, &p);
	assert_string_equal(p.sandbox, name);
	assert_string_equal(p.agent.cgroup, "kars/team-a/research-bot/agent");
	kars_policy_free(&p);

	/* one more character */
	strcpy(name + KARS_SANDBOX_NAME_MAX, "x");
	snprintf(patch, sizeof(patch), "{\"sandbox\": \"%s\"}", name);
	expect_refused(patch, "sandbox: ");

	/* the longest namespace and the longest DNS subdomain: what Kubernetes
	 * allows fits */
	for (size_t i = 64; i < 64 + 253; i++)
		name[i] = i % 60 == 0 ? '.' : 'x';
	name[64 + 253] = '\0';
	snprintf(patch, sizeof(patch), "{\"sandbox\": \"%s\"}", name);
	parse_ok(patch, &p);
	assert_string_equal(p.sandbox, name);
	kars_policy_free(&p);
}

static void test_unknown_fields(void **state)
{
	expect_refused("{\"sandbx\": \"a/b\"}", "sandbx: unknown field");
	expect_refused("{\"agent\": {\"cgroup\": \"a\", \"gid\": 1}}", "agent.gid: unknown field");
	expect_refused("{\"resolver\": {\"ipv4\": \"10.0.0.1\", \"ipv5\": \"x\"}}",
		       "resolver.ipv5: unknown field");
	expect_refused("{\"rules\": [{\"ip\": \"192.0.2.1\", \"port\": 1},"
		       " {\"ip\": \"192.0.2.1\", \"port\": 1, \"proto\": \"udp\"}]}",
		       "rules[1].proto: unknown field");
}

static void test_request_shape(void **state)
{
	json_t *req = load("[{\"sandbox\": \"a/b\"}]");
	struct kars_err err = {0};
	struct kars_policy p;

	memset(&p, 0xa5, sizeof(p));
	assert_int_equal(kars_policy_parse(req, &p, &err), -EINVAL);
	assert_err_contains(&err, "expected an object");
	assert_true(all_zero(&p, sizeof(p)));
	json_decref(req);

	expect_refused("{\"agent\": \"kars/a\"}", "agent: expected an object");
	expect_refused("{\"resolver\": [\"10.0.0.1\"]}", "resolver: expected an object");
	expect_refused("{\"rules\": {\"ip\": \"192.0.2.1\"}}", "rules: expected an array");
	expect_refused("{\"rules\": [\"192.0.2.1:443\"]}", "rules[0]: expected an object");
}

static void test_roles(void **state)
{
	expect_refused("{\"agent\": null, \"router\": null}", "agent: Required value");
	expect_refused(
	    "{\"agent\": {\"cgroup\": \"kars/x\"}, \"router\": {\"cgroup\": \"kars/x\"}}",
	    "router.cgroup: must differ from agent.cgroup");
	expect_refused("{\"agent\": {\"cgroup\": \"kars/../etc\"}}", "agent.cgroup: ");
	expect_refused("{\"router\": {\"cgroup\": \"..\"}}", "router.cgroup: ");
	expect_refused("{\"agent\": {\"cgroup\": \"\"}}", "agent.cgroup: ");
	expect_refused("{\"agent\": {\"uid\": 1000}}", "agent.cgroup: Required value");
	expect_refused("{\"agent\": {\"cgroup\": 7}}", "agent.cgroup: expected a string");
	expect_refused("{\"agent\": {\"cgroup\": \"a\", \"uid\": \"1000\"}}", "agent.uid: ");
	expect_refused("{\"agent\": {\"cgroup\": \"a\", \"uid\": -1}}", "agent.uid: ");
	/* the "any UID" value is not a UID one may name */
	expect_refused("{\"router\": {\"cgroup\": \"b\", \"uid\": 4294967295}}", "router.uid: ");
}

static void test_mode(void **state)
{
	expect_refused("{\"mode\": \"Strict\"}", "mode: Unsupported value \"Strict\"");
	expect_refused("{\"mode\": \"\"}", "mode: Unsupported value");
	expect_refused("{\"mode\": true}", "mode: expected a string");
}

static void test_ports(void **state)
{
	expect_refused("{\"routerPort\": 9000, \"proxyPort\": 9000}",
		       "proxyPort: must differ from routerPort");
	/* the default proxy port counts too */
	expect_refused("{\"routerPort\": 8444, \"proxyPort\": null}",
		       "proxyPort: must differ from routerPort");
	expect_refused("{\"routerPort\": \"8443\"}",
		       "routerPort: expected an integer in [1, 65535]");
	expect_refused("{\"proxyPort\": 0}", "proxyPort: expected an integer in [1, 65535]");
	expect_refused("{\"proxyPort\": 65536}", "proxyPort: expected an integer in [1, 65535]");
	expect_refused("{\"routerPort\": 8443.0}", "routerPort: expected an integer");
	expect_refused("{\"learnMax\": 65537}", "learnMax: expected an integer in [0, 65536]");
	expect_refused("{\"learnMax\": \"1024\"}", "learnMax: ");
}

static void test_resolver(void **state)
{
	expect_refused("{\"resolver\": {\"ipv4\": \"fd00::10\"}}", "resolver.ipv4: ");
	expect_refused("{\"resolver\": {\"ipv4\": \"::ffff:10.0.0.1\", \"ipv6\": \"10.0.0.1\"}}",
		       "resolver.ipv6: ");
	expect_refused("{\"resolver\": {\"ipv6\": \"::ffff:10.0.0.1\"}}", "resolver.ipv6: ");
	expect_refused("{\"resolver\": {\"ipv4\": \"10.0.0.256\"}}", "resolver.ipv4: ");
	expect_refused("{\"resolver\": {\"ipv4\": 167772170}}", "resolver.ipv4: expected a string");
	expect_refused("{\"resolver\": {\"ipv4\": \"10.0.0.1\", \"port\": 0}}", "resolver.port: ");
}

static void test_rules(void **state)
{
	/* the bad rule comes second: the index must be the right one */
#define RULES(bad) "{\"rules\": [{\"ip\": \"192.0.2.1\", \"port\": 443}, " bad "]}"
	expect_refused(RULES("{\"ip\": \"192.0.2.1\", \"cidr\": \"10.0.0.0/8\", \"port\": 1}"),
		       "rules[1]: exactly one of ip, cidr");
	expect_refused(RULES("{\"port\": 1}"), "rules[1]: exactly one of ip, cidr");
	expect_refused(RULES("{\"ip\": \"192.0.2.1\"}"), "rules[1].port: ");
	expect_refused(RULES("{\"ip\": \"192.0.2.1\", \"ports\": \"80-90\"}"), "rules[1].port: ");
	expect_refused(RULES("{\"ip\": \"192.0.2.1\", \"port\": 80, \"ports\": \"80-90\"}"),
		       "rules[1].port: ");
	expect_refused(RULES("{\"ip\": \"192.0.2.1\", \"port\": 0}"),
		       "rules[1].port: expected an integer in [1, 65535]");
	expect_refused(RULES("{\"ip\": \"192.0.2.1\", \"port\": 65536}"),
		       "rules[1].port: expected an integer in [1, 65535]");
	expect_refused(RULES("{\"ip\": \"192.0.2.1\", \"port\": \"443\"}"),
		       "rules[1].port: expected an integer in [1, 65535]");
	expect_refused(RULES("{\"ip\": \"192.0.2.0/24\", \"port\": 1}"), "rules[1].ip: ");
	expect_refused(RULES("{\"cidr\": \"10.0.0.0/8\", \"port\": 1, \"ports\": \"1-2\"}"),
		       "rules[1]: exactly one of port, ports");
	expect_refused(RULES("{\"cidr\": \"10.0.0.0/8\"}"), "rules[1]: exactly one of port, ports");
	expect_refused(RULES("{\"cidr\": \"10.0.0.0/8\", \"ports\": \"90-80\"}"),
		       "rules[1].ports: range \"90-80\" is reversed");
	expect_refused(RULES("{\"cidr\": \"10.0.0.0/8\", \"ports\": \"80-\"}"), "rules[1].ports: ");
	expect_refused(RULES("{\"cidr\": \"10.0.0.0/8\", \"ports\": \"-80\"}"), "rules[1].ports: ");
	expect_refused(RULES("{\"cidr\": \"10.0.0.0/8\", \"ports\": \"0-80\"}"),
		       "rules[1].ports: ");
	expect_refused(RULES("{\"cidr\": \"10.0.0.0/8\", \"ports\": \"80-65536\"}"),
		       "rules[1].ports: ");
	expect_refused(RULES("{\"cidr\": \"10.0.0.0/8\", \"ports\": \"80 - 90\"}"),
		       "rules[1].ports: ");
	expect_refused(RULES("{\"cidr\": \"10.0.0.0/8\", \"ports\": \"\"}"), "rules[1].ports: ");
	expect_refused(RULES("{\"cidr\": \"10.0.0.0/8\", \"ports\": 80}"),
		       "rules[1].ports: expected a string");
	expect_refused(RULES("{\"cidr\": \"10.0.0.1/8\", \"port\": 1}"), "rules[1].cidr: ");
	expect_refused(RULES("{\"cidr\": \"10.0.0.0\", \"port\": 1}"), "rules[1].cidr: ");
	expect_refused(RULES("{\"ip\": \"192.0.2.1\", \"port\": 1, \"protocol\": \"icmp\"}"),
		       "rules[1].protocol: Unsupported value \"icmp\"");
	expect_refused(RULES("{\"ip\": \"192.0.2.1\", \"port\": 1, \"protocol\": \"TCP\"}"),
		       "rules[1].protocol: Unsupported value \"TCP\"");
	expect_refused(RULES("{\"ip\": \"192.0.2.1\", \"port\": 1, \"protocol\": 6}"),
		       "rules[1].protocol: expected a string");
#undef RULES
}

static void test_cidr_rule_limit(void **state)
{
	json_t *req = load(docs_request);
	json_t *rules = json_array();
	json_t *cidr = load("{\"cidr\": \"10.0.0.0/8\", \"port\": 1}");
	struct kars_err err = {0};
	struct kars_policy p;
	char want[64];

	for (int i = 0; i < KARS_MAX_CIDRS_PER_SANDBOX; i++)
		json_array_append(rules, cidr);
	json_object_set(req, "rules", rules);
	assert_int_equal(kars_policy_parse(req, &p, &err), 0);
	assert_int_equal(p.n_cidr, KARS_MAX_CIDRS_PER_SANDBOX);
	kars_policy_free(&p);

	json_array_append(rules, cidr);
	assert_int_equal(kars_policy_parse(req, &p, &err), -E2BIG);
	snprintf(want, sizeof(want), "rules[%d]: ", KARS_MAX_CIDRS_PER_SANDBOX);
	assert_err_contains(&err, want);
	assert_true(all_zero(&p, sizeof(p)));

	json_decref(cidr);
	json_decref(rules);
	json_decref(req);
}

static void test_rule_count_limit(void **state)
{
	json_t *req = load(docs_request);
	json_t *rules = json_array();
	json_t *rule = load("{\"ip\": \"192.0.2.1\", \"port\": 1}");
	struct kars_err err = {0};
	struct kars_policy p;

	for (int i = 0; i < KARS_MAX_RULES_PER_SANDBOX; i++)
		json_array_append(rules, rule);
	json_object_set(req, "rules", rules);
	assert_int_equal(kars_policy_parse(req, &p, &err), 0);
	assert_int_equal(p.n_exact, KARS_MAX_RULES_PER_SANDBOX);
	kars_policy_free(&p);

	json_array_append(rules, rule);
	assert_int_equal(kars_policy_parse(req, &p, &err), -E2BIG);
	assert_err_contains(&err, "rules: ");
	assert_true(all_zero(&p, sizeof(p)));

	json_decref(rule);
	json_decref(rules);
	json_decref(req);
}

static void test_names(void **state)
{
	assert_string_equal(kars_mode_name(KARS_MODE_STRICT), "strict");
	assert_string_equal(kars_mode_name(KARS_MODE_LEARN), "learn");
	assert_string_equal(kars_proto_name(IPPROTO_TCP), "tcp");
	assert_string_equal(kars_proto_name(IPPROTO_UDP), "udp");

	assert_string_equal(kars_verdict_name(KARS_VERDICT_ALLOW), "allow");
	assert_string_equal(kars_verdict_name(KARS_VERDICT_DENY), "deny");
	assert_string_equal(kars_verdict_name(KARS_VERDICT_LEARN), "learn");
	assert_string_equal(kars_reason_name(KARS_REASON_NOT_ALLOWED), "not_allowed");
	assert_string_equal(kars_role_name(KARS_ROLE_AGENT), "agent");
	assert_string_equal(kars_role_name(KARS_ROLE_ROUTER), "router");
	assert_string_equal(kars_hook_name(KARS_HOOK_CONNECT4), "connect4");
	assert_string_equal(kars_hook_name(KARS_HOOK_SOCK_CREATE), "sock_create");
	assert_string_equal(kars_hook_name(KARS_HOOK_LSM_UNIX), "lsm_unix");

	/* every value of each enum has a name of its own */
	for (int i = 0; i < KARS_VERDICT__COUNT; i++)
		assert_string_not_equal(kars_verdict_name((uint8_t)i), "unknown");
	for (int i = 0; i < KARS_REASON__COUNT; i++)
		assert_string_not_equal(kars_reason_name((uint8_t)i), "unknown");
	for (int i = KARS_ROLE_NONE; i <= KARS_ROLE_ROUTER; i++)
		assert_string_not_equal(kars_role_name((uint8_t)i), "unknown");
	for (int i = KARS_HOOK_CONNECT4; i < KARS_HOOK__COUNT; i++)
		assert_string_not_equal(kars_hook_name((uint8_t)i), "unknown");

	/* and anything else is "unknown", never a neighbour's name or a crash */
	assert_string_equal(kars_verdict_name(KARS_VERDICT__COUNT), "unknown");
	assert_string_equal(kars_verdict_name(255), "unknown");
	assert_string_equal(kars_reason_name(KARS_REASON__COUNT), "unknown");
	assert_string_equal(kars_reason_name(255), "unknown");
	assert_string_equal(kars_role_name(KARS_ROLE_ROUTER + 1), "unknown");
	assert_string_equal(kars_role_name(255), "unknown");
	assert_string_equal(kars_hook_name(0), "unknown");
	assert_string_equal(kars_hook_name(KARS_HOOK__COUNT), "unknown");
	assert_string_equal(kars_hook_name(255), "unknown");
}

/* "fqdns" and "fqdnTtl" (fqdn_policy.c): names normalised, wildcards only
 * in front, errors naming the entry. */
static void test_fqdns(void **state)
{
	struct kars_policy p;

	parse_ok("{\"fqdns\": [{\"name\": \"API.Example.COM.\", \"port\": 443},"
		 " {\"name\": \"*.b\u00fccher.example\", \"ports\": \"8000-8001\","
		 " \"protocol\": \"udp\"}]}",
		 &p);
	assert_int_equal(p.n_fqdns, 2);
	assert_string_equal(p.fqdns[0].name, "api.example.com");
	assert_false(p.fqdns[0].wildcard);
	assert_int_equal(p.fqdns[0].proto, IPPROTO_TCP);
	assert_int_equal(p.fqdns[0].port_lo, 443);
	assert_int_equal(p.fqdns[0].port_hi, 443);
	assert_string_equal(p.fqdns[1].name, "xn--bcher-kva.example");
	assert_true(p.fqdns[1].wildcard);
	assert_int_equal(p.fqdns[1].proto, IPPROTO_UDP);
	assert_int_equal(p.fqdns[1].port_hi, 8001);
	assert_int_equal(p.fqdn_min_ttl, KARS_FQDN_DEFAULT_MIN_TTL);
	assert_int_equal(p.fqdn_max_ttl, KARS_FQDN_DEFAULT_MAX_TTL);
	assert_int_equal(p.fqdn_grace, KARS_FQDN_DEFAULT_GRACE);
	kars_policy_free(&p);
	parse_ok("{\"fqdns\": [], \"fqdnTtl\": {\"minSeconds\": 0, \"maxSeconds\": 5,"
		 " \"graceSeconds\": 1}}",
		 &p);
	assert_int_equal(p.n_fqdns, 0);
	assert_int_equal(p.fqdn_max_ttl, 5);
	assert_int_equal(p.fqdn_grace, 1);
	kars_policy_free(&p);

	expect_refused("{\"fqdns\": [{\"name\": \"a..b\", \"port\": 1}]}", "fqdns[0].name: ");
	expect_refused("{\"fqdns\": [{\"name\": \"ok.test\", \"port\": 1},"
		       " {\"name\": \"a.*.test\", \"port\": 1}]}",
		       "fqdns[1].name: a wildcard is allowed only as a leading");
	expect_refused("{\"fqdns\": [{\"name\": \"*\", \"port\": 1}]}", "fqdns[0].name: ");
	expect_refused("{\"fqdns\": [{\"name\": \"*.\", \"port\": 1}]}", "fqdns[0].name: ");
	expect_refused("{\"fqdns\": [{\"name\": \"ok.test\"}]}",
		       "fqdns[0]: exactly one of port, ports");
	expect_refused("{\"fqdns\": [{\"name\": \"ok.test\", \"port\": 1, \"ports\": \"1-2\"}]}",
		       "fqdns[0]: exactly one of port, ports");
	expect_refused("{\"fqdns\": [{\"name\": \"ok.test\", \"ports\": \"9-1\"}]}",
		       "fqdns[0].ports: ");
	expect_refused(
	    "{\"fqdns\": [{\"name\": \"ok.test\", \"port\": 1, \"protocol\": \"icmp\"}]}",
	    "fqdns[0].protocol: ");
	expect_refused("{\"fqdns\": [{\"port\": 1}]}", "fqdns[0].name: ");
	expect_refused("{\"fqdns\": [\"ok.test\"]}", "fqdns[0]: expected an object");
	expect_refused("{\"fqdns\": {}}", "fqdns: ");
	expect_refused("{\"fqdnTtl\": {\"minSeconds\": 10, \"maxSeconds\": 5}}",
		       "fqdnTtl.maxSeconds: 5 is below minSeconds 10");
	expect_refused("{\"fqdnTtl\": {\"graceSeconds\": 3601}}", "fqdnTtl.graceSeconds: ");
	expect_refused("{\"fqdnTtl\": {\"ttl\": 1}}", "fqdnTtl");
	expect_refused("{\"resolver\": null, \"fqdns\": [{\"name\": \"ok.test\", \"port\": 1}]}",
		       "fqdns: need resolver.ipv4 or resolver.ipv6");
	expect_refused("{\"router\": null, \"fqdns\": [{\"name\": \"ok.test\", \"port\": 1}]}",
		       "fqdns: need a router role");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_docs_request),
    cmocka_unit_test(test_defaults),
    cmocka_unit_test(test_variants_accepted),
    cmocka_unit_test(test_sandbox_names),
    cmocka_unit_test(test_sandbox_name_length),
    cmocka_unit_test(test_unknown_fields),
    cmocka_unit_test(test_request_shape),
    cmocka_unit_test(test_roles),
    cmocka_unit_test(test_mode),
    cmocka_unit_test(test_ports),
    cmocka_unit_test(test_resolver),
    cmocka_unit_test(test_rules),
    cmocka_unit_test(test_cidr_rule_limit),
    cmocka_unit_test(test_rule_count_limit),
    cmocka_unit_test(test_names),
    cmocka_unit_test(test_fqdns),
};

KARS_UNIT_MAIN(tests)
