/* crd.h - CustomResourceDefinitions generated from the schema (schema.h).
 *
 * deploy/crds/ is the output of kars_crd_build() for every kind, written by
 * `kars crds --out deploy/crds`; a test regenerates it and fails on any
 * difference, so the checked-in YAML is always what the code validates.
 */
#ifndef KARS_CRD_H
#define KARS_CRD_H

#include <jansson.h>

#include "schema.h"

/* The apiextensions.k8s.io/v1 CustomResourceDefinition of k (new ref). */
json_t *kars_crd_build(const struct kars_kind *k);

/* The OpenAPI v3 schema of one field (new ref), as it appears in the CRD. */
json_t *kars_crd_field_schema(const struct kars_field *f);

/* "kars.azure.com_karssandboxes.yaml" */
void kars_crd_file_name(const struct kars_kind *k, char *buf, size_t len);

/* The file's full text: a header comment and the YAML (malloc'd). */
char *kars_crd_render(const struct kars_kind *k);

#endif
