/* test_gov_profile.c - the profile loader: what it accepts, what it refuses
 * and how it says so (file, line, field).
 *
 * Each refusal is a case where AGT would have given the document a meaning
 * silently (skipped the rule, compared a glob literally, let a later key or
 * file win); docs/governance.md lists them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "governance.h"
#include "unit.h"

#define HDR "version: \"1.0\"\nagent: t\n"

struct bad {
	const char *doc;
	const char *msg; /* a substring of the error */
};

static const struct bad bad_docs[] = {
    {"", "empty document"},
    {"- a\n- b\n", "(root): expected a mapping"},
    {"agent: t\npolicies: []\n", "version: required"},
    {"version: \"2.0\"\nagent: t\npolicies: []\n", "t.yaml:1: version: unsupported"},
    {"version: \"1.0\"\npolicies: []\n", "agent: required"},
    {HDR, "policies: required"},
    {HDR "policies:\n", "policies: is null"},
    {HDR "policies: []\nextra: 1\n", "t.yaml:4: extra: unknown field"},
    {HDR "policies: []\nunmatched: maybe\n", "unmatched: expected allow or deny"},
    {HDR "agent: u\npolicies: []\n", "t.yaml:3: duplicate key \"agent\" (first at line 2)"},
    {HDR "policies:\n  - {type: capability, denied_actions: [a]}\n",
     "t.yaml:4: policies[0].name: required"},
    {HDR "policies:\n  - {name: r, denied_actions: [a]}\n", "policies[0].type: required"},
    {HDR "policies:\n  - {name: r, type: capabilty, denied_actions: [a]}\n",
     "policies[0].type: unknown rule type"},
    {HDR "policies:\n  - {name: r, type: capability, denied_action: [a]}\n",
     "policies[0].denied_action: unknown field"},
    {HDR "policies:\n  - {name: r, type: capability}\n", "needs allowed_actions or denied_actions"},
    {HDR "policies:\n  - {name: r, type: capability, denied_actions: }\n",
     "policies[0].denied_actions: is null"},
    {HDR "policies:\n  - {name: r, type: capability, denied_actions: \"shell:*\"}\n",
     "denied_actions: expected a list"},
    {HDR "policies:\n  - {name: r, type: capability, actions: [a]}\n",
     "policies[0].actions: has no meaning on a capability rule"},
    {HDR "policies:\n  - {name: r, type: approval, actions: [a], max_calls: 3}\n",
     "max_calls: has no meaning on a approval rule"},
    {HDR "policies:\n  - {name: r, type: approval, actions: []}\n",
     "policies[0].actions: required and non-empty"},
    {HDR "policies:\n  - {name: r, type: rate_limit, actions: [a], window: 60s}\n",
     "policies[0].max_calls: required"},
    {HDR "policies:\n  - {name: r, type: rate_limit, actions: [a], max_calls: 0, window: 60s}\n",
     "max_calls: expected an integer in [1, 4294967295], got 0"},
    {HDR
     "policies:\n  - {name: r, type: rate_limit, actions: [a], max_calls: \"5\", window: 60s}\n",
     "max_calls: expected an unquoted integer"},
    {HDR "policies:\n  - {name: r, type: rate_limit, actions: [a], max_calls: -1, window: 60s}\n",
     "max_calls: expected an integer"},
    {HDR "policies:\n  - {name: r, type: rate_limit, actions: [a], max_calls: 5}\n",
     "policies[0].window: required"},
    {HDR "policies:\n  - {name: r, type: rate_limit, actions: [a], max_calls: 5, window: 5x}\n",
     "window: \"5x\" is not <digits>[s|m|h]"},
    {HDR "policies:\n  - {name: r, type: rate_limit, actions: [a], max_calls: 5, window: 0s}\n",
     "window: \"0s\" must be 1s to"},
    {HDR "policies:\n  - {name: r, type: rate_limit, actions: [a], max_calls: 5, window: 1d}\n",
     "is not <digits>[s|m|h]"},
    {HDR "policies:\n  - {name: r, type: capability, denied_actions: [\"*rm\"]}\n",
     "policies[0].denied_actions[0]: \"*rm\": '*' is allowed only as the last character"},
    {HDR "policies:\n  - {name: r, type: capability, denied_actions: [\"a*b*\"]}\n",
     "'*' is allowed only as the last character"},
    {HDR "policies:\n  - {name: r, type: capability, denied_actions: [\"**\"]}\n",
     "'*' is allowed only as the last character"},
    {HDR "policies:\n  - {name: r, type: capability, denied_actions: [\"shell:r?\"]}\n",
     "glob characters"},
    {HDR "policies:\n  - {name: r, type: capability, denied_actions: [\"\"]}\n",
     "an empty pattern"},
    {HDR "policies:\n  - {name: r, type: capability, denied_actions: [\" shell:rm\"]}\n",
     "leading or trailing space"},
    {HDR "policies:\n  - {name: r, type: capability, denied_actions: [\"a\\tb\"]}\n",
     "control byte 0x09"},
    {HDR "policies:\n  - {name: r, type: capability, denied_actions: [a], priority: high}\n",
     "priority: expected an integer"},
    {HDR "policies:\n  - {name: r, type: capability, denied_actions: [a], scope: planet}\n",
     "scope: expected global, tenant, organization or agent"},
    {HDR "policies:\n  - {name: r, type: capability, denied_actions: [a], conditions: [x]}\n",
     "conditions: expected a mapping"},
    {HDR
     "policies:\n  - {name: r, type: capability, denied_actions: [a], conditions: {k: {x: 1}}}\n",
     "conditions.k: expected a string or a non-empty list"},
    {HDR "policies:\n  - {name: r, type: capability, denied_actions: [a], conditions: {k: []}}\n",
     "conditions.k: expected a string or a non-empty list"},
    {HDR "policies:\n  - {name: r, type: capability, denied_actions: [a]}\n"
	 "  - {name: r, type: capability, denied_actions: [b]}\n",
     "t.yaml:5: policies[1].name: \"r\" is also the name of the rule at t.yaml:4"},
    {HDR "policies:\n  - &x {name: r, type: capability, denied_actions: [a]}\n  - *x\n",
     "anchors are not supported"},
    {HDR "policies: !!seq []\n", "tags are not supported"},
    {HDR "policies: []\n---\n" HDR "policies: []\n", "only one YAML document"},
    {HDR "policies: [\n", "t.yaml:4:1: invalid YAML"},
    {"{\"version\": \"1.0\", \"agent\": \"t\", \"policies\": [], \"agent\": \"u\"}",
     "duplicate key \"agent\""},
};

static void test_refusals(void **state)
{
	for (size_t i = 0; i < sizeof(bad_docs) / sizeof(*bad_docs); i++) {
		struct kars_gov_profile *p = (void *)1;
		struct kars_err err = {0};
		int ret = kars_gov_profile_load_buf(bad_docs[i].doc, strlen(bad_docs[i].doc),
						    "t.yaml", NULL, &p, NULL, &err);

		if (ret == 0)
			fail_msg("case %zu loaded but should not:\n%s", i, bad_docs[i].doc);
		assert_null(p);
		if (!strstr(err.msg, bad_docs[i].msg))
			fail_msg("case %zu: error \"%s\" does not contain \"%s\"", i, err.msg,
				 bad_docs[i].msg);
	}
}

static void test_deep_nesting_refused(void **state)
{
	char doc[400];
	struct kars_gov_profile *p = NULL;
	struct kars_err err = {0};
	size_t n = 0;

	n += (size_t)snprintf(doc, sizeof(doc), HDR "policies: ");
	for (int i = 0; i < 40; i++)
		doc[n++] = '[';
	for (int i = 0; i < 40; i++)
		doc[n++] = ']';
	doc[n] = '\0';
	assert_int_not_equal(kars_gov_profile_load_buf(doc, n, "t.yaml", NULL, &p, NULL, &err), 0);
	assert_err_contains(&err, "nested too deeply");
}

/* What AGT profiles in the wild contain loads: quoted and unquoted values,
 * description, min_approvals, scope, bare-second windows, "1" versions. */
static void test_accepts(void **state)
{
	static const char *const good[] = {
	    HDR "policies: []\n",
	    "version: 1.0\nagent: t\npolicies: []\n",
	    "version: \"1\"\nagent: t\nunmatched: deny\npolicies: []\n",
	    HDR "policies:\n"
		"  - name: r\n    description: why\n    type: rate_limit\n    actions: [\"a:*\"]\n"
		"    max_calls: 5\n    window: 90\n    scope: agent\n    priority: 4294967295\n",
	    HDR
	    "policies:\n  - name: a\n    type: approval\n    actions: [x]\n    min_approvals: 0\n",
	    "{\"version\":\"1.0\",\"agent\":\"t\",\"policies\":[{\"name\":\"r\",\"type\":"
	    "\"capability\",\"allowed_actions\":[\"*\"],\"conditions\":{\"k\":[\"a\",\"b\"]}}]}",
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++) {
		struct kars_gov_profile *p = NULL;
		struct kars_err err = {0};

		if (kars_gov_profile_load_buf(good[i], strlen(good[i]), "t.yaml", NULL, &p, NULL,
					      &err) != 0)
			fail_msg("case %zu refused: %s", i, err.msg);
		assert_string_equal(kars_gov_profile_agent(p), "t");
		kars_gov_profile_free(p);
	}
}

static int write_file(const char *dir, const char *name, const char *body)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		return -1;
	fputs(body, f);
	return fclose(f);
}

/* Several files are one profile, merged; conflicts are refused; an empty
 * directory is -ENOENT, for the caller to decide. */
static void test_directory(void **state)
{
	char dir[] = "/tmp/kars-gov-XXXXXX";
	char cmd[300];
	struct kars_gov_profile *p = NULL;
	struct kars_gov_decision d;
	struct kars_gov_request req = {.action = "shell:rm"};
	struct kars_err err = {0};

	assert_non_null(mkdtemp(dir));
	assert_int_equal(kars_gov_profile_load_dir(dir, NULL, &p, NULL, &err), -ENOENT);

	assert_int_equal(write_file(dir, "a.yaml",
				    HDR "policies:\n  - {name: allow-shell, type: capability, "
					"allowed_actions: [\"shell:*\"]}\n"),
			 0);
	assert_int_equal(write_file(dir, "b.json",
				    "{\"version\":\"1.0\",\"agent\":\"t\",\"policies\":[{\"name\":"
				    "\"no-rm\",\"type\":\"capability\",\"denied_actions\":["
				    "\"shell:rm\"],\"priority\":5}]}"),
			 0);
	assert_int_equal(write_file(dir, "notes.txt", "not a profile"), 0);
	assert_int_equal(write_file(dir, ".hidden.yaml", "garbage: ["), 0);
	kars_err_clear(&err);
	assert_int_equal(kars_gov_profile_load_dir(dir, NULL, &p, NULL, &err), 0);
	assert_int_equal(kars_gov_profile_rule_count(p), 2);
	/* AGT: b.json, loaded last, would have replaced a.yaml; here both
	 * count, and no-rm's priority puts it first */
	kars_gov_profile_evaluate(p, &req, &d);
	assert_int_equal(d.verdict, KARS_GOV_DENY);
	assert_string_equal(d.rule, "no-rm");
	req.action = "shell:ls";
	kars_gov_profile_evaluate(p, &req, &d);
	assert_string_equal(d.rule, "allow-shell");
	kars_gov_profile_free(p);

	/* a rule name in two files */
	assert_int_equal(write_file(dir, "c.yaml",
				    HDR "policies:\n  - {name: no-rm, type: capability, "
					"denied_actions: [x]}\n"),
			 0);
	kars_err_clear(&err);
	assert_int_equal(kars_gov_profile_load_dir(dir, NULL, &p, NULL, &err), -EINVAL);
	assert_err_contains(&err, "c.yaml:4: policies[0].name: \"no-rm\" is also the name");
	assert_err_contains(&err, "b.json:1");
	/* two agents */
	assert_int_equal(
	    write_file(dir, "c.yaml", "version: \"1.0\"\nagent: other\npolicies: []\n"), 0);
	kars_err_clear(&err);
	assert_int_equal(kars_gov_profile_load_dir(dir, NULL, &p, NULL, &err), -EINVAL);
	assert_err_contains(&err, "c.yaml:2: agent: \"other\" differs from \"t\"");
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_refusals),
    cmocka_unit_test(test_deep_nesting_refused),
    cmocka_unit_test(test_accepts),
    cmocka_unit_test(test_directory),
};

KARS_UNIT_MAIN(tests)
