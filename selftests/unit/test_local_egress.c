/* test_local_egress.c - unit tests for a local sandbox's egressProxy object
 * (userspace/lib/local_egress.c): made from karsd's egress request, and
 * accepted by the router's own parser with the same names, ports and mode. */
#include "unit.h"

#include <errno.h>

#include "egress_config.h"
#include "json.h"
#include "local_egress.h"

static json_t *req(const char *text)
{
	struct kars_err err;
	json_t *j = kars_json_parse(text, strlen(text), &err);

	assert_non_null(j);
	return j;
}

/* egress -> egressProxy -> the router's parser. */
static void convert_v(const char *egress, bool ipv6, const char *r4, json_t **proxy,
		      struct kars_egress_config *c)
{
	struct kars_err err = {0};
	json_t *e = req(egress), *root;

	if (kars_local_egress_proxy(e, 18001, ipv6, r4, "/run/kars/karsd.sock", proxy, &err))
		fail_msg("convert: %s", err.msg);
	root = json_pack("{s:O}", "egressProxy", *proxy);
	memset(c, 0, sizeof(*c));
	if (kars_egress_config_parse(root, c, &err))
		fail_msg("the router refuses it: %s", err.msg);
	json_decref(root);
	json_decref(e);
}

static void convert(const char *egress, const char *r4, json_t **proxy,
		    struct kars_egress_config *c)
{
	convert_v(egress, true, r4, proxy, c);
}

static void test_strict_allowlist(void **state)
{
	struct kars_egress_config c;
	json_t *p;

	convert("{\"op\":\"apply\",\"mode\":\"strict\",\"rules\":[{\"ip\":\"192.0.2.10\","
		"\"port\":443,\"protocol\":\"tcp\"}],\"fqdns\":[{\"name\":\"api.example.com\","
		"\"port\":443,\"protocol\":\"tcp\"},{\"name\":\"*.example.org\",\"port\":80,"
		"\"protocol\":\"tcp\"},{\"name\":\"dns.example\",\"port\":53,\"protocol\":"
		"\"udp\"}]}",
		"192.0.2.53", &p, &c);
	assert_true(c.enabled);
	assert_int_equal(c.n_listen, 2);
	assert_string_equal(c.listen_text[0], "127.0.0.1:18001");
	assert_string_equal(c.listen_text[1], "[::1]:18001");
	assert_int_equal(c.policy.mode, KARS_EGRESS_STRICT);
	/* the two TCP names; the IP rule and the UDP name are karsd's alone */
	assert_int_equal(c.policy.nallow, 2);
	assert_int_equal(json_array_size(json_object_get(p, "allow")), 2);
	assert_string_equal(json_string_value(json_object_get(
				json_array_get(json_object_get(p, "allow"), 0), "name")),
			    "api.example.com");
	assert_int_equal(json_integer_value(json_object_get(
			     json_array_get(json_object_get(p, "allow"), 1), "port")),
			 80);
	assert_string_equal(c.resolver, "192.0.2.53:53");
	assert_string_equal(c.karsd_socket, "/run/kars/karsd.sock");
	assert_int_equal(c.max_tunnels, 256); /* limits: the router's defaults */
	assert_int_equal(c.learn_max, 1024);
	kars_egress_policy_free(&c.policy);
	json_decref(p);
}

static void test_learn_and_resolver(void **state)
{
	struct kars_egress_config c;
	json_t *p;

	/* the request's resolver wins over the host's, port included */
	convert("{\"mode\":\"learn\",\"fqdns\":[],\"resolver\":{\"ipv4\":\"127.0.0.1\","
		"\"port\":27053}}",
		"192.0.2.53", &p, &c);
	assert_int_equal(c.policy.mode, KARS_EGRESS_LEARN);
	assert_int_equal(c.policy.nallow, 0);
	assert_string_equal(c.resolver, "127.0.0.1:27053");
	kars_egress_policy_free(&c.policy);
	json_decref(p);
	/* IPv6 only */
	convert("{\"mode\":\"strict\",\"resolver\":{\"ipv6\":\"2001:db8::53\",\"port\":53}}",
		"192.0.2.53", &p, &c);
	assert_string_equal(c.resolver, "[2001:db8::53]:53");
	kars_egress_policy_free(&c.policy);
	json_decref(p);
	/* no resolver anywhere: the proxy reads /etc/resolv.conf; no IPv6
	 * loopback: 127.0.0.1 only */
	convert_v("{}", false, NULL, &p, &c);
	assert_int_equal(c.policy.mode, KARS_EGRESS_STRICT);
	assert_string_equal(c.resolver, "");
	assert_int_equal(c.n_listen, 1);
	assert_string_equal(c.listen_text[0], "127.0.0.1:18001");
	kars_egress_policy_free(&c.policy);
	json_decref(p);
}

static void test_bad_input(void **state)
{
	static const struct {
		const char *egress;
		unsigned port;
		const char *want;
	} bad[] = {
	    {"{\"mode\":\"open\"}", 18001, "egress.mode: \"open\""},
	    {"{\"fqdns\":[{\"port\":443}]}", 18001, "egress.fqdns[0]: needs name and port"},
	    {"{\"fqdns\":[{\"name\":\"a.example\"}]}", 18001, "egress.fqdns[0]"},
	    {"{}", 0, "proxy port 0"},
	    {"{}", 65536, "proxy port 65536"},
	};
	struct kars_err err;
	json_t *p, *e;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		e = req(bad[i].egress);
		kars_err_clear(&err);
		if (kars_local_egress_proxy(e, bad[i].port, true, NULL, NULL, &p, &err) == 0)
			fail_msg("accepted %s", bad[i].egress);
		assert_null(p);
		assert_err_contains(&err, bad[i].want);
		json_decref(e);
	}
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_strict_allowlist),
    cmocka_unit_test(test_learn_and_resolver),
    cmocka_unit_test(test_bad_input),
};

KARS_UNIT_MAIN(tests)
