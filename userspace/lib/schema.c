/* schema.c - the list of kinds and look-ups into the schema tables. */
#include "schema.h"

#include <string.h>
#include <strings.h>

extern const struct kars_kind kars_kind_karssandbox, kars_kind_a2aagent, kars_kind_mcpserver,
    kars_kind_toolpolicy, kars_kind_inferencepolicy, kars_kind_karsmemory, kars_kind_karseval,
    kars_kind_trustgraph, kars_kind_egressapproval, kars_kind_karssreaction,
    kars_kind_karsauthconfig, kars_kind_karspairing;

const struct kars_kind *const kars_kinds[] = {
    &kars_kind_karssandbox,
    &kars_kind_a2aagent,
    &kars_kind_mcpserver,
    &kars_kind_toolpolicy,
    &kars_kind_inferencepolicy,
    &kars_kind_karsmemory,
    &kars_kind_karseval,
    &kars_kind_trustgraph,
    &kars_kind_egressapproval,
    &kars_kind_karssreaction,
    &kars_kind_karsauthconfig,
    &kars_kind_karspairing,
    NULL,
};

const struct kars_kind *kars_kind_find(const char *name)
{
	for (size_t i = 0; kars_kinds[i]; i++) {
		const struct kars_kind *k = kars_kinds[i];

		if (!strcasecmp(name, k->kind) || !strcasecmp(name, k->plural) ||
		    !strcasecmp(name, k->singular))
			return k;
		for (size_t j = 0; k->short_names && k->short_names[j]; j++)
			if (!strcasecmp(name, k->short_names[j]))
				return k;
	}
	return NULL;
}

static const struct kars_field *child(const struct kars_field *f, const char *name, size_t len)
{
	/* Arrays and maps are transparent: "hosts.port" is a field of each host. */
	while (f && (f->type == KT_ARRAY || f->type == KT_MAP))
		f = f->items;
	if (!f || f->type != KT_OBJECT)
		return NULL;
	for (const struct kars_field *c = f->props; c && c->name; c++)
		if (strlen(c->name) == len && memcmp(c->name, name, len) == 0)
			return c;
	return NULL;
}

const struct kars_field *kars_field_find(const struct kars_kind *k, const char *path)
{
	const struct kars_field *f = NULL;
	const char *p = path;

	while (*p) {
		size_t len = strcspn(p, ".");

		if (len == 0)
			return NULL;
		if (!f) {
			if (len == 4 && !memcmp(p, "spec", 4))
				f = k->spec;
			else if (len == 6 && !memcmp(p, "status", 6))
				f = k->status;
			else
				return NULL;
		} else {
			f = child(f, p, len);
			if (!f)
				return NULL;
		}
		p += len;
		if (*p == '.')
			p++;
	}
	return f;
}

const char *kars_type_name(enum kars_type t)
{
	switch (t) {
	case KT_OBJECT:
	case KT_MAP:
	case KT_FREEFORM:
		return "object";
	case KT_STRING:
		return "string";
	case KT_INTEGER:
		return "integer";
	case KT_BOOLEAN:
		return "boolean";
	case KT_ARRAY:
		return "array";
	case KT_INT_OR_STRING:
		return "int-or-string";
	}
	return "?";
}
