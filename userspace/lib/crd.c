/* crd.c - see crd.h. Schema table -> OpenAPI v3 + CRD object. */
#include "crd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yamljson.h"

static json_t *rules_json(const struct kars_rule *rules)
{
	json_t *arr = json_array();

	for (const struct kars_rule *r = rules; r && r->cel; r++) {
		json_t *o = json_pack("{s:s,s:s}", "rule", r->cel, "message", r->message);

		if (r->field_path)
			json_object_set_new(o, "fieldPath", json_string(r->field_path));
		json_array_append_new(arr, o);
	}
	return arr;
}

static json_t *strings(const char *const *list)
{
	json_t *arr = json_array();

	for (; list && *list; list++)
		json_array_append_new(arr, json_string(*list));
	return arr;
}

json_t *kars_crd_field_schema(const struct kars_field *f)
{
	json_t *s = json_object();
	bool is_array = f->type == KT_ARRAY;

	if (f->desc)
		json_object_set_new(s, "description", json_string(f->desc));
	if (f->type == KT_INT_OR_STRING) {
		json_object_set_new(s, "x-kubernetes-int-or-string", json_true());
	} else {
		json_object_set_new(s, "type", json_string(kars_type_name(f->type)));
	}
	if (f->type == KT_OBJECT) {
		json_t *props = json_object(), *req = json_array();

		for (const struct kars_field *c = f->props; c && c->name; c++) {
			json_object_set_new(props, c->name, kars_crd_field_schema(c));
			if (c->flags & KF_REQUIRED)
				json_array_append_new(req, json_string(c->name));
		}
		if (json_array_size(req))
			json_object_set_new(s, "required", req);
		else
			json_decref(req);
		json_object_set_new(s, "properties", props);
	}
	if (f->type == KT_FREEFORM)
		json_object_set_new(s, "x-kubernetes-preserve-unknown-fields", json_true());
	if (is_array)
		json_object_set_new(s, "items", kars_crd_field_schema(f->items));
	if (f->type == KT_MAP)
		json_object_set_new(s, "additionalProperties", kars_crd_field_schema(f->items));
	if (f->enums)
		json_object_set_new(s, "enum", strings(f->enums));
	if (f->dflt)
		json_object_set_new(s, "default", json_loads(f->dflt, JSON_DECODE_ANY, NULL));
	if (f->format)
		json_object_set_new(s, "format", json_string(f->format));
	if (f->pattern)
		json_object_set_new(s, "pattern", json_string(f->pattern));
	if (f->flags & KF_MIN)
		json_object_set_new(s, "minimum", json_integer(f->min));
	if (f->flags & KF_MAX)
		json_object_set_new(s, "maximum", json_integer(f->max));
	if (f->min_len)
		json_object_set_new(s, "minLength", json_integer(f->min_len));
	if (f->max_len)
		json_object_set_new(s, "maxLength", json_integer(f->max_len));
	if (f->min_items)
		json_object_set_new(s, is_array ? "minItems" : "minProperties",
				    json_integer(f->min_items));
	if (f->max_items)
		json_object_set_new(s, is_array ? "maxItems" : "maxProperties",
				    json_integer(f->max_items));
	if (f->flags & KF_SET)
		json_object_set_new(s, "x-kubernetes-list-type", json_string("set"));
	if (f->list_map_key) {
		json_object_set_new(s, "x-kubernetes-list-type", json_string("map"));
		json_object_set_new(s, "x-kubernetes-list-map-keys",
				    json_pack("[s]", f->list_map_key));
	}
	if (f->rules)
		json_object_set_new(s, "x-kubernetes-validations", rules_json(f->rules));
	return s;
}

static json_t *columns_json(const struct kars_column *cols)
{
	json_t *arr = json_array();

	for (const struct kars_column *c = cols; c && c->name; c++) {
		json_t *o = json_pack("{s:s,s:s,s:s,s:s}", "name", c->name, "type", c->type,
				      "jsonPath", c->json_path, "description", c->desc);

		if (c->priority)
			json_object_set_new(o, "priority", json_integer(c->priority));
		json_array_append_new(arr, o);
	}
	return arr;
}

json_t *kars_crd_build(const struct kars_kind *k)
{
	char name[128], list_kind[64];
	json_t *root, *names, *version, *openapi, *props;

	snprintf(name, sizeof(name), "%s.%s", k->plural, KARS_GROUP);
	snprintf(list_kind, sizeof(list_kind), "%sList", k->kind);
	names = json_pack("{s:s,s:s,s:s,s:s,s:o,s:[s]}", "kind", k->kind, "listKind", list_kind,
			  "plural", k->plural, "singular", k->singular, "shortNames",
			  strings(k->short_names), "categories", "kars");
	props = json_object();
	json_object_set_new(props, "apiVersion",
			    json_pack("{s:s,s:s}", "description",
				      "APIVersion of the object: " KARS_API_VERSION ".", "type",
				      "string"));
	json_object_set_new(
	    props, "kind",
	    json_pack("{s:s,s:s}", "description", "Kind of the object.", "type", "string"));
	json_object_set_new(props, "metadata", json_pack("{s:s}", "type", "object"));
	json_object_set_new(props, "spec", kars_crd_field_schema(k->spec));
	json_object_set_new(props, "status", kars_crd_field_schema(k->status));
	openapi = json_pack("{s:s,s:s,s:[s],s:o}", "description", k->desc, "type", "object",
			    "required", "spec", "properties", props);
	if (k->root_rules)
		json_object_set_new(openapi, "x-kubernetes-validations", rules_json(k->root_rules));
	version = json_pack("{s:s,s:b,s:b,s:{s:{}},s:o,s:{s:o}}", "name", KARS_VERSION, "served", 1,
			    "storage", 1, "subresources", "status", "additionalPrinterColumns",
			    columns_json(k->columns), "schema", "openAPIV3Schema", openapi);
	root = json_pack("{s:s,s:s,s:{s:s},s:{s:s,s:o,s:s,s:[o]}}", "apiVersion",
			 "apiextensions.k8s.io/v1", "kind", "CustomResourceDefinition", "metadata",
			 "name", name, "spec", "group", KARS_GROUP, "names", names, "scope",
			 k->cluster_scoped ? "Cluster" : "Namespaced", "versions", version);
	return root;
}

void kars_crd_file_name(const struct kars_kind *k, char *buf, size_t len)
{
	snprintf(buf, len, "%s_%s.yaml", KARS_GROUP, k->plural);
}

char *kars_crd_render(const struct kars_kind *k)
{
	static const char header[] =
	    "# Generated by `kars crds` from the kars schema (userspace/lib/schema_*.c).\n"
	    "# Do not edit: change the schema and run `make crds`.\n";
	json_t *crd = kars_crd_build(k);
	char *yaml = crd ? kars_yaml_dump(crd) : NULL;
	char *out = NULL;

	json_decref(crd);
	if (yaml && asprintf(&out, "%s%s", header, yaml) < 0)
		out = NULL;
	free(yaml);
	return out;
}
