/* yamljson.h - YAML in and out of jansson trees, the way kubectl reads YAML.
 *
 * Every kars object is JSON-tree code (ARCHITECTURE.md §5); YAML is only a
 * way in and out. The loader reads a multi-document stream with libyaml and
 * resolves plain scalars as kubectl's YAML library (go-yaml v2, YAML 1.1)
 * does: null/~/empty -> null, true/false/yes/no/on/off/y/n -> boolean,
 * decimal and 0x integers, floats; quoted scalars are always strings. So an
 * unquoted `off` is a boolean here exactly as it is under kubectl apply.
 * Anchors/aliases and duplicate keys are refused (billion-laughs, silent
 * overrides); errors name the line. The emitter writes kubectl-style block
 * YAML that the loader reads back to the same tree.
 */
#ifndef KARS_YAMLJSON_H
#define KARS_YAMLJSON_H

#include <jansson.h>
#include <stddef.h>

#include "err.h"

struct kars_yaml_doc {
	json_t *value; /* owned */
	int line;      /* 1-based line where the document starts */
};

struct kars_yaml_docs {
	size_t count;
	struct kars_yaml_doc *docs;
};

/* Parses every document of buf; empty documents are skipped. On error
 * returns -EINVAL with "line N, column C: what" in err and docs empty. */
int kars_yaml_load_all(const char *buf, size_t len, struct kars_yaml_docs *docs,
		       struct kars_err *err);
void kars_yaml_docs_free(struct kars_yaml_docs *docs);

/* The scalar text as a go-yaml v2 plain scalar would resolve it (new ref). */
json_t *kars_yaml_resolve_plain(const char *s, size_t len);

/* Block YAML for v (no leading "---"), malloc'd; NULL on allocation failure. */
char *kars_yaml_dump(const json_t *v);

#endif
