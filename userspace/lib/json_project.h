/* json_project.h - parse only the parts of a JSON object that are needed.
 *
 * kars-router reads every answer of the model upstream for its usage and
 * content-filter annotations, a few small fields, while the rest (the text,
 * an embedding's thousands of floats) is relayed untouched. Parsing it all
 * with jansson was 40% of the router's instructions per request in
 * bench-router. kars_json_project() walks the bytes once, checks that what
 * it skips is well-formed JSON (RFC 8259 structure, strings, escapes and
 * numbers), and builds jansson values only for the keys in keep.
 *
 * It answers NULL (and the caller parses the whole document as before) for
 * anything it does not take on itself: a top level that is not an object,
 * malformed bytes, nesting deeper than jansson's limit, or an escaped key
 * it cannot decode. For a document jansson accepts the kept values are the
 * ones jansson builds (last duplicate key wins, as in jansson); the fuzz
 * target fuzz_json_project checks that. It does not check UTF-8 or the
 * range of numbers in the parts it skips, which jansson does.
 */
#ifndef KARS_JSON_PROJECT_H
#define KARS_JSON_PROJECT_H

#include <jansson.h>
#include <stddef.h>

/* One key to keep. sub NULL: its whole value. Otherwise the value, when an
 * object, is projected by sub; when an array, each object in it is (other
 * elements whole); any other value is kept whole. Lists end with key NULL. */
struct kars_json_keep {
	const char *key;
	const struct kars_json_keep *sub;
};

/* A new object with the kept keys of the object in buf, or NULL (see above). */
json_t *kars_json_project(const char *buf, size_t len, const struct kars_json_keep *keep);

/* The whole object or array in buf, built the same way, duplicate keys
 * refused; or NULL, for whatever it refuses or does not take on (the caller
 * then has kars_json_parse() parse it and name the error). For any input
 * jansson (JSON_REJECT_DUPLICATES) accepts, the value is json_equal to
 * jansson's; fuzz_json_project checks that. kars-router's request bodies. */
json_t *kars_json_build(const char *buf, size_t len);

#endif
