/* test_router_config.c - kars-router's configuration and credential checks.
 *
 * The router refuses to start half-configured: every malformed field is named,
 * and a credential file the agent's UID could read (group/other bits, or owned
 * by the agent) is refused. Files are written to a fresh temporary directory.
 */
#include "unit.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "router_paths.h"

static char dir[64];
static char cfg_path[256], key_path[256];

#define FIXED_KEY "/tmp/kars-router-config-test.key"

static int write_key(const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs("sk-secret\n", f) < 0 || fclose(f) || chmod(path, 0600))
		return -1;
	return 0;
}

static int setup(void **state)
{
	strcpy(dir, "/tmp/kars-router-config.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(cfg_path, sizeof(cfg_path), "%s/router.json", dir);
	snprintf(key_path, sizeof(key_path), "%s/api-key", dir);
	/* Key files are checked at load (not readable by the agent); the
	 * configs written inline name FIXED_KEY. */
	return write_key(key_path) || write_key(FIXED_KEY);
}

static int teardown(void **state)
{
	unlink(cfg_path);
	unlink(key_path);
	unlink(FIXED_KEY);
	return rmdir(dir);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

/* The required state fields, valid. */
#define STATE                                                                                      \
	", \"policy\": {\"file\": \"/etc/kars/inference/inference-policy.json\"},"                 \
	" \"budget\": {\"file\": \"/var/lib/kars/budget.json\"},"                                  \
	" \"audit\": {\"file\": \"/var/lib/kars/audit.jsonl\", \"keyFile\": \"/var/lib/kars/k\"}"

static void write_config(const char *upstream_extra)
{
	char text[2048];

	snprintf(
	    text, sizeof(text),
	    "{\"sandbox\": \"team-a/bot\", \"listen\": \"127.0.0.1:18443\", \"agentUid\": 1000,"
	    " \"upstream\": {\"baseUrl\": \"https://example.invalid/v1/\", \"apiKeyFile\": \"%s\"%s}" STATE
	    "}",
	    key_path, upstream_extra);
	write_file(cfg_path, text, 0600);
}

static void expect_refused(const char *text, const char *needle)
{
	struct kars_router_config c;
	struct kars_err err = {0};

	write_file(cfg_path, text, 0600);
	assert_true(kars_router_config_load(cfg_path, &c, &err) < 0);
	assert_err_contains(&err, needle);
}

static void test_valid(void **state)
{
	struct kars_router_config c;
	struct kars_err err = {0};

	write_config(", \"kind\": \"azure\", \"idleTimeoutSeconds\": 30");
	assert_int_equal(kars_router_config_load(cfg_path, &c, &err), 0);
	assert_string_equal(c.sandbox, "team-a/bot");
	assert_string_equal(c.listen_addr, "127.0.0.1");
	assert_int_equal(c.listen_port, 18443);
	assert_int_equal(c.agent_uid, 1000);
	assert_int_equal(c.kind, KARS_UPSTREAM_AZURE);
	assert_string_equal(c.base_url, "https://example.invalid/v1"); /* trailing / gone */
	assert_int_equal(c.idle_timeout_s, 30);
	assert_int_equal(c.connect_timeout_ms, 10000);
}

static void test_defaults(void **state)
{
	struct kars_router_config c;
	struct kars_err err = {0};
	char text[1024];

	snprintf(text, sizeof(text),
		 "{\"sandbox\": \"a/b\", \"agentUid\": 1000, \"upstream\": {\"baseUrl\": "
		 "\"http://127.0.0.1:9000/v1\", \"apiKeyFile\": \"%s\"}" STATE "}",
		 key_path);
	write_file(cfg_path, text, 0600);
	assert_int_equal(kars_router_config_load(cfg_path, &c, &err), 0);
	assert_string_equal(c.listen_addr, "127.0.0.1");
	assert_int_equal(c.listen_port, 8443);
	assert_int_equal(c.kind, KARS_UPSTREAM_OPENAI);
	assert_int_equal(c.idle_timeout_s, 120);
	assert_string_equal(c.policy_file, "/etc/kars/inference/inference-policy.json");
	assert_int_equal(c.policy_poll_ms, 5000);
	assert_int_equal(c.budget_persist_ms, 1000);
	assert_int_equal(c.audit_flush_ms, 10);
	assert_int_equal(c.checkpoint_every, 1024);
	assert_int_equal(c.n_control_uids, 1); /* root only */
	assert_int_equal(c.control_uids[0], 0);
}

/* The state sections: each required, each field named when wrong, and the
 * agent can never be a control UID. */
static void test_state_fields(void **state)
{
#define UP                                                                                                                    \
	"\"sandbox\": \"a/b\", \"agentUid\": 1000, \"upstream\": {\"baseUrl\": \"http://x/v1\", \"apiKeyFile\": \"" FIXED_KEY \
	"\"}"
	struct kars_router_config c;
	struct kars_err err = {0};

	expect_refused("{" UP "}", "policy: Required value");
	expect_refused("{" UP ", \"policy\": {}}", "policy.file: Required value");
	expect_refused("{" UP ", \"policy\": {\"file\": \"/p\", \"pollMs\": 1}}",
		       "policy.pollMs: expected an integer in [100, 3600000]");
	expect_refused("{" UP ", \"policy\": {\"file\": \"/p\"}}", "budget: Required value");
	expect_refused("{" UP ", \"policy\": {\"file\": \"/p\"}, \"budget\": {\"file\": \"/b\", "
		       "\"persist\": 1}}",
		       "budget.persist: unknown field");
	expect_refused("{" UP ", \"policy\": {\"file\": \"/p\"}, \"budget\": {\"file\": \"/b\"}}",
		       "audit: Required value");
	expect_refused("{" UP ", \"policy\": {\"file\": \"/p\"}, \"budget\": {\"file\": \"/b\"}, "
		       "\"audit\": {\"file\": \"/a\"}}",
		       "audit.keyFile: Required value");
	expect_refused("{" UP STATE ", \"control\": {\"allowedUids\": [0, 1000]}}",
		       "control.allowedUids[1]: Forbidden: 1000 is agentUid");
	expect_refused("{" UP STATE ", \"control\": {\"allowedUids\": [-1]}}",
		       "control.allowedUids[0]: expected a UID");
	expect_refused("{\"sandbox\": \"a/b\", \"agentUid\": 0, \"upstream\": {\"baseUrl\": "
		       "\"http://x/v1\", \"apiKeyFile\": \"" FIXED_KEY "\"}" STATE "}",
		       "agentUid: Invalid value: 0");

	write_file(cfg_path, "{" UP STATE ", \"control\": {\"allowedUids\": [0, 990]}}", 0600);
	assert_int_equal(kars_router_config_load(cfg_path, &c, &err), 0);
	assert_int_equal(c.n_control_uids, 2);
	assert_int_equal(c.control_uids[1], 990);
#undef UP
}

static void test_bad_fields(void **state)
{
	expect_refused("{\"sandbox\": \"a/b\", \"agentUid\": 1000, \"upstrem\": {}}",
		       "upstrem: unknown field");
	expect_refused("{\"agentUid\": 1000, \"upstream\": {}}", "sandbox: Required value");
	expect_refused("{\"sandbox\": \"A/b\", \"agentUid\": 1000, \"upstream\": {}}",
		       "sandbox: namespace must be a DNS-1123 label");
	expect_refused("{\"sandbox\": \"a/b\", \"upstream\": {}}", "agentUid: Required value");
	expect_refused("{\"sandbox\": \"a/b\", \"agentUid\": 1000, \"listen\": \"8443\", "
		       "\"upstream\": {}}",
		       "listen: \"8443\" is not ADDRESS:PORT");
	expect_refused("{\"sandbox\": \"a/b\", \"agentUid\": 1000, \"listen\": \"127.0.0.1:0\", "
		       "\"upstream\": {}}",
		       "listen: 0 is outside");
	expect_refused("{\"sandbox\": \"a/b\", \"agentUid\": 1000}", "upstream: Required value");
	expect_refused("{\"sandbox\": \"a/b\", \"agentUid\": 1000, \"upstream\": {\"apiKeyFile\": "
		       "\"" FIXED_KEY "\"}}",
		       "upstream.baseUrl: Required value");
	expect_refused("{\"sandbox\": \"a/b\", \"agentUid\": 1000, \"upstream\": {\"baseUrl\": "
		       "\"ftp://x\", \"apiKeyFile\": \"" FIXED_KEY "\"}}",
		       "upstream.baseUrl: \"ftp://x\" must start with https:// or http://");
	expect_refused("{\"sandbox\": \"a/b\", \"agentUid\": 1000, \"upstream\": {\"baseUrl\": "
		       "\"https://x/v1?k=1\", \"apiKeyFile\": \"" FIXED_KEY "\"}}",
		       "must not contain spaces, a query or a fragment");
	expect_refused("{\"sandbox\": \"a/b\", \"agentUid\": 1000, \"upstream\": {\"baseUrl\": "
		       "\"https://x\", \"apiKeyFile\": \"" FIXED_KEY "\", \"kind\": \"bedrock\"}}",
		       "upstream.kind: Unsupported value \"bedrock\"");
	expect_refused("{\"sandbox\": \"a/b\", \"agentUid\": 1000, \"upstream\": {\"baseUrl\": "
		       "\"https://x\", \"apiKeyFile\": \"" FIXED_KEY
		       "\", \"idleTimeoutSeconds\": 0}}",
		       "upstream.idleTimeoutSeconds: expected an integer in [1, 86400]");
	expect_refused("{\"sandbox\": \"a/b\", \"sandbox\": \"c/d\"}", "line 1");
}

static void test_key_file(void **state)
{
	struct kars_router_config c;
	struct kars_err err = {0};
	char *key = NULL;

	write_config("");
	assert_int_equal(kars_router_config_load(cfg_path, &c, &err), 0);

	write_file(key_path, "sk-secret\n", 0600);
	assert_int_equal(
	    kars_credential_read_file(c.auth.file, c.agent_uid, "upstream.apiKeyFile", &key, &err),
	    0);
	assert_string_equal(key, "sk-secret");
	free(key);

	kars_err_clear(&err);
	write_file(key_path, "sk-secret\n", 0644);
	assert_int_equal(
	    kars_credential_read_file(c.auth.file, c.agent_uid, "upstream.apiKeyFile", &key, &err),
	    -EPERM);
	assert_err_contains(&err, "must be 0600 (or 0400)");
	assert_null(key);

	kars_err_clear(&err);
	write_file(key_path, "sk-secret\n", 0640);
	assert_int_equal(
	    kars_credential_read_file(c.auth.file, c.agent_uid, "upstream.apiKeyFile", &key, &err),
	    -EPERM);

	if (getuid() == 0) {
		kars_err_clear(&err);
		write_file(key_path, "sk-secret\n", 0600);
		assert_int_equal(chown(key_path, 1000, 1000), 0);
		assert_int_equal(kars_credential_read_file(c.auth.file, c.agent_uid,
							   "upstream.apiKeyFile", &key, &err),
				 -EPERM);
		assert_err_contains(&err, "owned by uid 1000");
		assert_int_equal(chown(key_path, 0, 0), 0);
	}

	kars_err_clear(&err);
	write_file(key_path, "\n", 0600);
	assert_int_equal(
	    kars_credential_read_file(c.auth.file, c.agent_uid, "upstream.apiKeyFile", &key, &err),
	    -EINVAL);
	assert_err_contains(&err, "upstream.apiKeyFile: ");
	assert_err_contains(&err, "must hold one non-empty line");

	kars_err_clear(&err);
	write_file(key_path, "two\nlines\n", 0600);
	assert_int_equal(
	    kars_credential_read_file(c.auth.file, c.agent_uid, "upstream.apiKeyFile", &key, &err),
	    -EINVAL);

	kars_err_clear(&err);
	unlink(key_path);
	assert_true(kars_credential_read_file(c.auth.file, c.agent_uid, "upstream.apiKeyFile", &key,
					      &err) < 0);
	assert_err_contains(&err, "No such file");
}

/* "governance": optional; AGT's limits when absent; every field checked. */
static void test_governance(void **state)
{
#define UP                                                                                         \
	"\"sandbox\": \"a/b\", \"agentUid\": 1000, \"upstream\": {\"baseUrl\": \"http://x/v1\", "  \
	"\"apiKeyFile\": \"" FIXED_KEY "\"}"
	struct kars_router_config c;
	struct kars_err err = {0};

	write_file(cfg_path, "{" UP STATE "}", 0600);
	assert_int_equal(kars_router_config_load(cfg_path, &c, &err), 0);
	assert_string_equal(c.gov_profile_file, "");
	assert_int_equal((int)c.gov_limits.principal_rate, 50);
	assert_int_equal(c.gov_limits.principal_burst, 100);
	assert_int_equal((int)c.gov_limits.global_rate, 500);
	assert_int_equal(c.gov_limits.global_burst, 1000);
	assert_false(c.gov_limits.escalate);
	assert_string_equal(c.trust_file, "");

	write_file(cfg_path,
		   "{" UP STATE ", \"governance\": {\"profileFile\": \"/etc/agt/p.yaml\", "
		   "\"unmatched\": \"deny\", \"rateLimit\": {\"principalPerSecond\": 0}, "
		   "\"monitor\": {\"escalate\": true, \"blockSeconds\": 5}, \"trust\": "
		   "{\"file\": \"/t.json\", \"decayPerHour\": 0.5}}}",
		   0600);
	assert_int_equal(kars_router_config_load(cfg_path, &c, &err), 0);
	assert_string_equal(c.gov_profile_file, "/etc/agt/p.yaml");
	assert_int_equal(c.gov_unmatched, 1);
	assert_int_equal((int)c.gov_limits.principal_rate, 0); /* off */
	assert_true(c.gov_limits.escalate);
	assert_int_equal(c.gov_limits.block_ns, 5000000000ull);
	assert_string_equal(c.trust_file, "/t.json");
	assert_true(c.trust_decay_per_hour == 0.5);

	expect_refused("{" UP STATE ", \"governance\": {\"profile\": \"/p\"}}",
		       "governance.profile: unknown field");
	expect_refused("{" UP STATE ", \"governance\": {\"unmatched\": \"maybe\"}}",
		       "governance.unmatched: Unsupported value \"maybe\"");
	expect_refused("{" UP STATE ", \"governance\": {\"rateLimit\": {\"globalPerSecond\": -1}}}",
		       "governance.rateLimit.globalPerSecond");
	expect_refused("{" UP STATE ", \"governance\": {\"monitor\": {\"blockSeconds\": 0}}}",
		       "governance.monitor.blockSeconds");
	expect_refused("{" UP STATE ", \"governance\": {\"trust\": {\"decayPerHour\": 1.5}}}",
		       "governance.trust.decayPerHour: expected a number in (0, 1]");
	expect_refused("{" UP STATE ", \"governance\": {\"profileFile\": \"\"}}",
		       "governance.profileFile");

	/* the controller's helper points the router at the files the
	 * InferencePolicy and ToolPolicy reconcilers deliver */
	{
		json_t *cfg = json_loads("{" UP STATE "}", 0, NULL);
		char *text, longdir[1100];

		assert_non_null(cfg);
		assert_int_equal(kars_router_config_set_policy_files(cfg, "/srv/team-a/bot", &err),
				 0);
		text = json_dumps(cfg, 0);
		write_file(cfg_path, text, 0600);
		free(text);
		assert_int_equal(kars_router_config_load(cfg_path, &c, &err), 0);
		assert_string_equal(c.policy_file, "/srv/team-a/bot/" KARS_IP_FILE);
		assert_string_equal(c.gov_profile_file, "/srv/team-a/bot/" KARS_TP_FILE);
		memset(longdir, 'd', sizeof(longdir) - 1);
		longdir[0] = '/';
		longdir[sizeof(longdir) - 1] = '\0';
		assert_int_equal(kars_router_config_set_policy_files(cfg, longdir, &err),
				 -ENAMETOOLONG);
		assert_err_contains(&err, "policy.file: ");
		json_decref(cfg);
	}
#undef UP
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_valid, setup, teardown),
    cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
    cmocka_unit_test_setup_teardown(test_bad_fields, setup, teardown),
    cmocka_unit_test_setup_teardown(test_state_fields, setup, teardown),
    cmocka_unit_test_setup_teardown(test_governance, setup, teardown),
    cmocka_unit_test_setup_teardown(test_key_file, setup, teardown),
};

KARS_UNIT_MAIN(tests)
