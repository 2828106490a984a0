/* gov_profile.c - the AGT profile format, read strictly.
 *
 * A profile is {version, agent, policies: [rule, ...]} with each rule
 * {name, type, allowed_actions, denied_actions, actions, min_approvals,
 * max_calls, window, conditions, priority, scope}, plus "description" (kept
 * for humans, ignored) and the kars extension "unmatched: allow|deny" at the
 * top. AGT's serde reader ignores unknown keys and rule types, so a typo such
 * as "denied_action:" or "type: capabilty" silently drops a deny rule there;
 * here every key, type and value is checked, and an error names the file,
 * line and field: "agt-profile.yaml:14: policies[2].window: ...".
 * docs/governance.md lists each refusal beside what AGT would have done.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gov_priv.h"

struct ctx {
	const char *file;
	struct kars_err *err;
};

#define PATH_MAX_LEN 96

static int field_err(const struct ctx *c, const struct gov_node *n, const char *path,
		     const char *what)
{
	return kars_err_set(c->err, EINVAL, "%s:%zu: %s: %s", c->file, n->line, path, what);
}

static void strv_free(struct gov_strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

static void rule_free(struct gov_rule *r)
{
	free(r->name);
	strv_free(&r->allowed);
	strv_free(&r->denied);
	strv_free(&r->actions);
	for (size_t i = 0; i < r->n_conds; i++) {
		free(r->conds[i].key);
		strv_free(&r->conds[i].values);
	}
	free(r->conds);
}

void gov_ruleset_free(struct gov_ruleset *rs)
{
	for (size_t i = 0; i < rs->n; i++)
		rule_free(&rs->rules[i]);
	free(rs->rules);
	for (size_t i = 0; i < rs->n_files; i++)
		free(rs->files[i]);
	free(rs->files);
	free(rs->agent);
	free(rs->version);
	memset(rs, 0, sizeof(*rs));
}

/* A string field: any non-null scalar, taken as written. */
static int get_string(const struct ctx *c, const struct gov_node *n, const char *path, size_t max,
		      bool allow_empty, char **out)
{
	if (n->kind != GOV_SCALAR || gov_doc_is_null(n))
		return field_err(c, n, path, "expected a string");
	if (!allow_empty && n->len == 0)
		return field_err(c, n, path, "must not be empty");
	if (n->len > max)
		return kars_err_set(c->err, EINVAL, "%s:%zu: %s: longer than %zu bytes", c->file,
				    n->line, path, max);
	for (size_t i = 0; i < n->len; i++) {
		unsigned char ch = (unsigned char)n->text[i];

		if (ch < 0x20 || ch == 0x7f)
			return kars_err_set(c->err, EINVAL,
					    "%s:%zu: %s: control byte 0x%02x at offset %zu",
					    c->file, n->line, path, ch, i);
	}
	*out = strdup(n->text);
	if (!*out)
		return kars_err_set(c->err, ENOMEM, "out of memory");
	return 0;
}

/* An unsigned integer: a plain scalar of decimal digits (a quoted "5" is a
 * string, as for AGT's serde reader). */
static int get_uint(const struct ctx *c, const struct gov_node *n, const char *path, uint64_t min,
		    uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (n->kind != GOV_SCALAR || !n->plain || n->len == 0 || gov_doc_is_null(n))
		return field_err(c, n, path, "expected an unquoted integer");
	for (size_t i = 0; i < n->len; i++) {
		char ch = n->text[i];

		if (ch < '0' || ch > '9' || v > (UINT64_MAX - 9) / 10)
			return kars_err_set(c->err, EINVAL,
					    "%s:%zu: %s: expected an integer in [%llu, %llu], got "
					    "\"%.40s\"",
					    c->file, n->line, path, (unsigned long long)min,
					    (unsigned long long)max, n->text);
		v = v * 10 + (uint64_t)(ch - '0');
	}
	if (v < min || v > max)
		return kars_err_set(c->err, EINVAL,
				    "%s:%zu: %s: expected an integer in [%llu, %llu], got %llu",
				    c->file, n->line, path, (unsigned long long)min,
				    (unsigned long long)max, (unsigned long long)v);
	*out = v;
	return 0;
}

int gov_pattern_check(const char *pat, const char **why)
{
	size_t len = strlen(pat);
	const char *star = strchr(pat, '*');

	if (len == 0) {
		*why = "an empty pattern matches nothing; AGT would compare it literally";
		return -EINVAL;
	}
	if (pat[0] == ' ' || pat[len - 1] == ' ') {
		*why = "leading or trailing space (AGT would compare it literally)";
		return -EINVAL;
	}
	if (star && star != pat + len - 1) {
		*why = "'*' is allowed only as the last character (\"x*\", \"x.*\", \"*\"); AGT "
		       "would compare this literally";
		return -EINVAL;
	}
	if (strpbrk(pat, "?[]{}")) {
		*why = "glob characters ? [ ] { } are not supported (AGT would compare them "
		       "literally)";
		return -EINVAL;
	}
	return 0;
}

static int get_patterns(const struct ctx *c, const struct gov_node *n, const char *path,
			struct gov_strv *out)
{
	char where[PATH_MAX_LEN + 16];
	int ret;

	if (n->kind != GOV_SEQ)
		return field_err(c, n, path,
				 gov_doc_is_null(n) ? "is null; write [] for an empty list"
						    : "expected a list of action patterns");
	out->v = calloc(n->n ? n->n : 1, sizeof(*out->v));
	if (!out->v)
		return kars_err_set(c->err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n->n; i++) {
		const char *why;

		snprintf(where, sizeof(where), "%s[%zu]", path, i);
		ret = get_string(c, n->items[i], where, KARS_GOV_ACTION_MAX, true, &out->v[i]);
		if (ret)
			return ret;
		out->n++;
		if (gov_pattern_check(out->v[i], &why))
			return kars_err_set(c->err, EINVAL, "%s:%zu: %s: \"%.80s\": %s", c->file,
					    n->items[i]->line, where, out->v[i], why);
	}
	return 0;
}

/* "<n>[s|m|h]", bare digits being seconds, as AGT's parse_duration; n >= 1. */
static int get_window(const struct ctx *c, const struct gov_node *n, const char *path,
		      uint64_t *out_ns)
{
	uint64_t mult = 1, v = 0;
	size_t digits;

	if (n->kind != GOV_SCALAR || gov_doc_is_null(n) || n->len == 0)
		return field_err(c, n, path, "expected a duration such as \"60s\", \"5m\", \"1h\"");
	digits = n->len;
	switch (n->text[n->len - 1]) {
	case 's':
		digits--;
		break;
	case 'm':
		mult = 60;
		digits--;
		break;
	case 'h':
		mult = 3600;
		digits--;
		break;
	}
	if (digits == 0 || digits > 9)
		goto bad;
	for (size_t i = 0; i < digits; i++) {
		if (n->text[i] < '0' || n->text[i] > '9')
			goto bad;
		v = v * 10 + (uint64_t)(n->text[i] - '0');
	}
	v *= mult;
	if (v == 0 || v > KARS_GOV_WINDOW_MAX_S)
		return kars_err_set(c->err, EINVAL, "%s:%zu: %s: \"%s\" must be 1s to %us", c->file,
				    n->line, path, n->text, KARS_GOV_WINDOW_MAX_S);
	*out_ns = v * 1000000000ull;
	return 0;
bad:
	return kars_err_set(
	    c->err, EINVAL,
	    "%s:%zu: %s: \"%.40s\" is not <digits>[s|m|h] (\"60s\", \"5m\", \"1h\")", c->file,
	    n->line, path, n->text);
}

static int get_conditions(const struct ctx *c, const struct gov_node *n, const char *path,
			  struct gov_rule *r)
{
	char where[PATH_MAX_LEN + 200];
	int ret;

	if (n->kind != GOV_MAP)
		return field_err(c, n, path, "expected a mapping of context key to value(s)");
	r->conds = calloc(n->n / 2 + 1, sizeof(*r->conds));
	if (!r->conds)
		return kars_err_set(c->err, ENOMEM, "out of memory");
	for (size_t i = 0; i + 1 < n->n; i += 2) {
		const struct gov_node *k = n->items[i], *v = n->items[i + 1];
		struct gov_cond *cd = &r->conds[r->n_conds];

		snprintf(where, sizeof(where), "%s.%.128s", path, k->text);
		ret = get_string(c, k, where, KARS_GOV_NAME_MAX, false, &cd->key);
		if (ret)
			return ret;
		r->n_conds++;
		if (v->kind == GOV_SCALAR) {
			cd->values.v = calloc(1, sizeof(char *));
			if (!cd->values.v)
				return kars_err_set(c->err, ENOMEM, "out of memory");
			ret = get_string(c, v, where, KARS_GOV_ACTION_MAX, true, &cd->values.v[0]);
			if (ret)
				return ret;
			cd->values.n = 1;
			continue;
		}
		if (v->kind != GOV_SEQ || v->n == 0)
			return field_err(c, v, where,
					 "expected a string or a non-empty list of strings");
		cd->values.v = calloc(v->n, sizeof(char *));
		if (!cd->values.v)
			return kars_err_set(c->err, ENOMEM, "out of memory");
		for (size_t j = 0; j < v->n; j++) {
			char item[sizeof(where) + 24];

			snprintf(item, sizeof(item), "%s[%zu]", where, j);
			ret = get_string(c, v->items[j], item, KARS_GOV_ACTION_MAX, true,
					 &cd->values.v[j]);
			if (ret)
				return ret;
			cd->values.n++;
		}
	}
	return 0;
}

static const char *const rule_keys[] = {
    "name",	 "type",   "allowed_actions", "denied_actions", "actions", "min_approvals",
    "max_calls", "window", "conditions",      "priority",	"scope",   "description",
    NULL,
};

static const char *const type_names[] = {
    [GOV_RULE_CAPABILITY] = "capability",
    [GOV_RULE_APPROVAL] = "approval",
    [GOV_RULE_RATE_LIMIT] = "rate_limit",
};

static const char *const scope_names[] = {"global", "tenant", "organization", "agent"};

/* Which keys a rule type gives a meaning to; any other present is refused. */
static bool key_fits_type(const char *key, enum gov_rule_type t)
{
	if (!strcmp(key, "allowed_actions") || !strcmp(key, "denied_actions"))
		return t == GOV_RULE_CAPABILITY;
	if (!strcmp(key, "actions"))
		return t != GOV_RULE_CAPABILITY;
	if (!strcmp(key, "min_approvals"))
		return t == GOV_RULE_APPROVAL;
	if (!strcmp(key, "max_calls") || !strcmp(key, "window"))
		return t == GOV_RULE_RATE_LIMIT;
	return true;
}

static int check_keys(const struct ctx *c, const struct gov_node *map, const char *path,
		      const char *const allowed[])
{
	for (size_t i = 0; i + 1 < map->n; i += 2) {
		const char *key = map->items[i]->text;
		bool known = false;

		for (size_t j = 0; allowed[j] && !known; j++)
			known = strcmp(key, allowed[j]) == 0;
		if (!known)
			return kars_err_set(c->err, EINVAL, "%s:%zu: %s%s%.64s: unknown field",
					    c->file, map->items[i]->line, path, *path ? "." : "",
					    key);
	}
	return 0;
}

static int parse_rule(const struct ctx *c, const struct gov_node *n, const char *path,
		      struct gov_rule *r)
{
	char where[PATH_MAX_LEN + 64];
	const struct gov_node *v;
	uint64_t u;
	char *type = NULL;
	int ret;

	if (n->kind != GOV_MAP)
		return field_err(c, n, path, "expected a mapping (a rule)");
	r->line = n->line;
	ret = check_keys(c, n, path, rule_keys);
	if (ret)
		return ret;

#define AT(key) (snprintf(where, sizeof(where), "%s.%s", path, key), where)
	v = gov_doc_get(n, "name");
	if (!v)
		return field_err(c, n, AT("name"), "required");
	ret = get_string(c, v, AT("name"), KARS_GOV_NAME_MAX, false, &r->name);
	if (ret)
		return ret;

	v = gov_doc_get(n, "type");
	if (!v)
		return field_err(c, n, AT("type"), "required (capability, approval or rate_limit)");
	ret = get_string(c, v, AT("type"), 32, false, &type);
	if (ret)
		return ret;
	ret = -1;
	for (size_t i = 0; i < 3; i++) {
		if (strcmp(type, type_names[i]) == 0) {
			r->type = (enum gov_rule_type)i;
			ret = 0;
		}
	}
	free(type);
	if (ret)
		return field_err(c, v, AT("type"),
				 "unknown rule type (capability, approval or rate_limit); AGT "
				 "would skip the rule silently");

	for (size_t i = 0; i + 1 < n->n; i += 2) {
		const char *key = n->items[i]->text;

		if (!key_fits_type(key, r->type))
			return kars_err_set(c->err, EINVAL,
					    "%s:%zu: %s.%s: has no meaning on a %s rule", c->file,
					    n->items[i]->line, path, key, type_names[r->type]);
	}

	if ((v = gov_doc_get(n, "allowed_actions")) &&
	    (ret = get_patterns(c, v, AT("allowed_actions"), &r->allowed)))
		return ret;
	if ((v = gov_doc_get(n, "denied_actions")) &&
	    (ret = get_patterns(c, v, AT("denied_actions"), &r->denied)))
		return ret;
	if ((v = gov_doc_get(n, "actions")) &&
	    (ret = get_patterns(c, v, AT("actions"), &r->actions)))
		return ret;
	if (r->type == GOV_RULE_CAPABILITY && r->allowed.n == 0 && r->denied.n == 0)
		return field_err(c, n, path,
				 "a capability rule needs allowed_actions or denied_actions (it "
				 "would decide nothing)");
	if (r->type != GOV_RULE_CAPABILITY && r->actions.n == 0)
		return field_err(c, n, AT("actions"),
				 "required and non-empty on this rule type (it would decide "
				 "nothing)");

	if ((v = gov_doc_get(n, "min_approvals"))) {
		ret = get_uint(c, v, AT("min_approvals"), 0, 1000, &u);
		if (ret)
			return ret;
		r->min_approvals = (uint32_t)u;
	}
	if (r->type == GOV_RULE_RATE_LIMIT) {
		v = gov_doc_get(n, "max_calls");
		if (!v)
			return field_err(c, n, AT("max_calls"), "required on a rate_limit rule");
		/* AGT skips a rate_limit rule with max_calls 0: "no limit" or "none
		 * allowed" cannot be told apart, so it is refused. */
		ret = get_uint(c, v, AT("max_calls"), 1, UINT32_MAX, &u);
		if (ret)
			return ret;
		r->max_calls = (uint32_t)u;
		v = gov_doc_get(n, "window");
		if (!v)
			return field_err(c, n, AT("window"), "required on a rate_limit rule");
		ret = get_window(c, v, AT("window"), &r->window_ns);
		if (ret)
			return ret;
	}
	if ((v = gov_doc_get(n, "priority"))) {
		ret = get_uint(c, v, AT("priority"), 0, UINT32_MAX, &u);
		if (ret)
			return ret;
		r->priority = (uint32_t)u;
	}
	if ((v = gov_doc_get(n, "scope"))) {
		char *s = NULL;

		ret = get_string(c, v, AT("scope"), 32, false, &s);
		if (ret)
			return ret;
		ret = -1;
		for (size_t i = 0; i < 4; i++) {
			if (strcmp(s, scope_names[i]) == 0) {
				r->scope = (uint8_t)i;
				ret = 0;
			}
		}
		free(s);
		if (ret)
			return field_err(c, v, AT("scope"),
					 "expected global, tenant, organization or agent");
	}
	if ((v = gov_doc_get(n, "description"))) {
		char *s = NULL;

		ret = get_string(c, v, AT("description"), 4096, true, &s);
		free(s);
		if (ret)
			return ret;
	}
	if ((v = gov_doc_get(n, "conditions")) && (ret = get_conditions(c, v, AT("conditions"), r)))
		return ret;
#undef AT
	return 0;
}

static const char *const top_keys[] = {"version", "agent", "policies", "unmatched", NULL};

static int grow(struct gov_ruleset *rs, size_t more, struct kars_err *err)
{
	struct gov_rule *rules;
	size_t cap;

	if (rs->n + more > KARS_GOV_RULES_MAX)
		return kars_err_set(err, E2BIG, "more than %u rules", KARS_GOV_RULES_MAX);
	if (rs->n + more <= rs->cap)
		return 0;
	cap = rs->cap ? rs->cap : 16;
	while (cap < rs->n + more)
		cap *= 2;
	rules = realloc(rs->rules, cap * sizeof(*rules));
	if (!rules)
		return kars_err_set(err, ENOMEM, "out of memory");
	rs->rules = rules;
	rs->cap = cap;
	return 0;
}

/* Version, agent and unmatched of one file, checked against the files before. */
static int parse_header(const struct ctx *c, struct gov_ruleset *rs, const struct gov_node *root)
{
	const struct gov_node *v;
	char *s = NULL;
	int ret;

	v = gov_doc_get(root, "version");
	if (!v)
		return field_err(c, root, "version", "required (\"1.0\")");
	ret = get_string(c, v, "version", 16, false, &s);
	if (ret)
		return ret;
	if (strcmp(s, "1.0") != 0 && strcmp(s, "1") != 0) {
		free(s);
		return field_err(c, v, "version", "unsupported (this reader knows \"1.0\")");
	}
	if (!rs->version)
		rs->version = s;
	else
		free(s);

	v = gov_doc_get(root, "agent");
	if (!v)
		return field_err(c, root, "agent", "required");
	ret = get_string(c, v, "agent", KARS_GOV_NAME_MAX, false, &s);
	if (ret)
		return ret;
	if (rs->agent && strcmp(rs->agent, s) != 0) {
		ret = kars_err_set(c->err, EINVAL,
				   "%s:%zu: agent: \"%s\" differs from \"%s\" in %s; one profile "
				   "has one agent",
				   c->file, v->line, s, rs->agent, rs->files[0]);
		free(s);
		return ret;
	}
	if (!rs->agent)
		rs->agent = s;
	else
		free(s);

	v = gov_doc_get(root, "unmatched");
	if (v) {
		enum kars_gov_unmatched u;

		ret = get_string(c, v, "unmatched", 16, false, &s);
		if (ret)
			return ret;
		if (strcmp(s, "allow") == 0) {
			u = KARS_GOV_UNMATCHED_ALLOW;
		} else if (strcmp(s, "deny") == 0) {
			u = KARS_GOV_UNMATCHED_DENY;
		} else {
			free(s);
			return field_err(c, v, "unmatched", "expected allow or deny");
		}
		free(s);
		if (rs->unmatched_set && rs->unmatched != u)
			return field_err(c, v, "unmatched",
					 "differs from an earlier file of the same profile");
		rs->unmatched_set = true;
		rs->unmatched = u;
	}
	return 0;
}

int gov_ruleset_add_doc(struct gov_ruleset *rs, const struct gov_node *root, const char *name,
			struct kars_err *err)
{
	struct ctx c = {.err = err};
	const struct gov_node *pol;
	char **files;
	int ret;

	if (rs->n_files >= KARS_GOV_FILES_MAX)
		return kars_err_set(err, E2BIG, "more than %u profile files", KARS_GOV_FILES_MAX);
	files = realloc(rs->files, (rs->n_files + 1) * sizeof(*files));
	if (!files)
		return kars_err_set(err, ENOMEM, "out of memory");
	rs->files = files;
	rs->files[rs->n_files] = strdup(name ? name : "profile");
	if (!rs->files[rs->n_files])
		return kars_err_set(err, ENOMEM, "out of memory");
	c.file = rs->files[rs->n_files++];

	if (root->kind != GOV_MAP)
		return field_err(&c, root, "(root)",
				 "expected a mapping {version, agent, policies}");
	ret = check_keys(&c, root, "", top_keys);
	if (ret)
		return ret;
	ret = parse_header(&c, rs, root);
	if (ret)
		return ret;
	pol = gov_doc_get(root, "policies");
	if (!pol)
		return field_err(&c, root, "policies", "required (a list of rules; [] for none)");
	if (pol->kind != GOV_SEQ)
		return field_err(&c, pol, "policies",
				 gov_doc_is_null(pol) ? "is null; write [] for no rules"
						      : "expected a list of rules");
	ret = grow(rs, pol->n, err);
	if (ret)
		return ret;
	for (size_t i = 0; i < pol->n; i++) {
		struct gov_rule *r = &rs->rules[rs->n];
		char path[PATH_MAX_LEN];

		memset(r, 0, sizeof(*r));
		r->file = c.file;
		r->file_index = rs->n_files - 1;
		r->position = i;
		rs->n++; /* counted now, so that a failure frees what was parsed */
		snprintf(path, sizeof(path), "policies[%zu]", i);
		ret = parse_rule(&c, pol->items[i], path, r);
		if (ret)
			return ret;
	}
	return 0;
}
