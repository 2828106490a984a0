/* test_egress_config.c - unit tests for the "egressProxy" object of
 * kars-router's config (userspace/router/egress_config.c): absent means no
 * proxy, the defaults, and every bad field named. */
#include "unit.h"

#include <arpa/inet.h>
#include <errno.h>

#include "egress_config.h"
#include "json.h"

static int parse(const char *text, struct kars_egress_config *c, struct kars_err *err)
{
	json_t *root = kars_json_parse(text, strlen(text), err);
	int ret;

	assert_non_null(root);
	memset(c, 0, sizeof(*c));
	kars_err_clear(err);
	ret = kars_egress_config_parse(root, c, err);
	json_decref(root);
	return ret;
}

static void test_absent_is_off(void **state)
{
	struct kars_egress_config c;
	struct kars_err err;

	assert_int_equal(parse("{}", &c, &err), 0);
	assert_false(c.enabled);
}

static void test_defaults(void **state)
{
	struct kars_egress_config c;
	struct kars_err err;
	const struct sockaddr_in *v4 = (const struct sockaddr_in *)&c.listen[0];
	const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&c.listen[1];

	assert_int_equal(parse("{\"egressProxy\": {}}", &c, &err), 0);
	assert_true(c.enabled);
	assert_int_equal(c.n_listen, 2);
	assert_int_equal(v4->sin_family, AF_INET);
	assert_int_equal(ntohs(v4->sin_port), 8444);
	assert_int_equal(ntohl(v4->sin_addr.s_addr), INADDR_LOOPBACK);
	assert_int_equal(v6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(v6->sin6_port), 8444);
	assert_true(IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr));
	assert_int_equal(c.policy.mode, KARS_EGRESS_STRICT);
	assert_int_equal(c.policy.nallow, 0);
	assert_string_equal(c.resolver, "");
	assert_string_equal(c.karsd_socket, "/run/kars/karsd.sock");
	assert_int_equal(c.max_tunnels, 256);
	assert_int_equal(c.connect_timeout_ms, 10000);
	assert_int_equal(c.idle_timeout_s, 300);
	assert_int_equal(c.max_lifetime_s, 3600);
	assert_int_equal(c.learn_max, 1024);
	kars_egress_policy_free(&c.policy);
}

static void test_fields(void **state)
{
	struct kars_egress_config c;
	struct kars_err err;

	assert_int_equal(parse("{\"egressProxy\": {\"listen\": [\"[::1]:24444\"], \"mode\": "
			       "\"learn\", \"allow\": [{\"name\": \"*.a.example\", \"ports\": "
			       "\"443-444\"}], \"maxTunnels\": 2, \"idleTimeoutSeconds\": 5}}",
			       &c, &err),
			 0);
	assert_int_equal(c.n_listen, 1);
	assert_int_equal(c.policy.mode, KARS_EGRESS_LEARN);
	assert_int_equal(c.policy.nallow, 1);
	assert_true(c.policy.allow[0].wildcard);
	assert_string_equal(c.policy.allow[0].name, "a.example");
	assert_int_equal(c.policy.allow[0].port_hi, 444);
	assert_int_equal(c.max_tunnels, 2);
	assert_int_equal(c.idle_timeout_s, 5);
	kars_egress_policy_free(&c.policy);
}

static void test_bad_fields(void **state)
{
	static const struct {
		const char *json, *want;
	} bad[] = {
	    {"{\"egressProxy\": {\"lisen\": []}}", "egressProxy.lisen: unknown field"},
	    {"{\"egressProxy\": {\"listen\": []}}", "egressProxy.listen: 1 to 4"},
	    {"{\"egressProxy\": {\"listen\": [\"localhost:8444\"]}}",
	     "egressProxy.listen[0]: \"localhost\" is not an IP address"},
	    {"{\"egressProxy\": {\"listen\": [\"::1:8444\"]}}", "egressProxy.listen[0]"},
	    {"{\"egressProxy\": {\"listen\": [\"127.0.0.1:0\"]}}", "egressProxy.listen[0]"},
	    {"{\"egressProxy\": {\"listen\": [1]}}", "egressProxy.listen[0]: expected a string"},
	    {"{\"egressProxy\": {\"mode\": \"off\"}}",
	     "egressProxy.mode: Unsupported value \"off\""},
	    {"{\"egressProxy\": {\"allow\": [{\"name\": \"a\"}]}}",
	     "egressProxy.allow[0]: exactly one of port, ports"},
	    {"{\"egressProxy\": {\"blocklistFile\": \"/nonexistent/issue7p\"}}",
	     "/nonexistent/issue7p"},
	    {"{\"egressProxy\": {\"karsdSocket\": \"relative.sock\"}}",
	     "egressProxy.karsdSocket: an absolute path"},
	    {"{\"egressProxy\": {\"maxTunnels\": 0}}", "egressProxy.maxTunnels"},
	    {"{\"egressProxy\": {\"connectTimeoutMs\": 0}}", "egressProxy.connectTimeoutMs"},
	    {"{\"egressProxy\": {\"idleTimeoutSeconds\": 0}}", "egressProxy.idleTimeoutSeconds"},
	    {"{\"egressProxy\": {\"maxLifetimeSeconds\": 0}}", "egressProxy.maxLifetimeSeconds"},
	    {"{\"egressProxy\": []}", "egressProxy"},
	};
	struct kars_egress_config c;
	struct kars_err err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(bad[i].json, &c, &err) == 0)
			fail_msg("accepted %s", bad[i].json);
		assert_err_contains(&err, bad[i].want);
		kars_egress_policy_free(&c.policy);
	}
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_absent_is_off),
    cmocka_unit_test(test_defaults),
    cmocka_unit_test(test_fields),
    cmocka_unit_test(test_bad_fields),
};

KARS_UNIT_MAIN(tests)
