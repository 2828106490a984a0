/* fuzz_manifest.c - libFuzzer target for manifests: YAML in, validation,
 * YAML out (yamljson.h, validate.h).
 *
 * `kars validate` and `kars apply` read whatever file they are given. The
 * loader must never crash or leak whatever the bytes, the validator must
 * cope with any tree the loader makes (wrong types anywhere, huge numbers,
 * NUL bytes in strings), and every tree that loads must dump to YAML that
 * loads back to the same tree, or `kars get -o yaml | kars apply -f -`
 * would change objects. The date-time parser behind the A2A expiry cap
 * (kars_date_time_parse) must accept exactly what format: date-time does.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "validate.h"
#include "yamljson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kars_yaml_docs docs, again;
	struct kars_err err = {};

	if (size > 1 << 16)
		return 0;
	if (size < 64) {
		char text[64];
		time_t t;

		memcpy(text, data, size);
		text[size] = '\0';
		CHECK((kars_date_time_parse(text, &t) == 0) == kars_is_date_time(text));
	}
	if (kars_yaml_load_all((const char *)data, size, &docs, &err))
		return 0;
	for (size_t i = 0; i < docs.count; i++) {
		struct kars_problems p = {};
		char *yaml = kars_yaml_dump(docs.docs[i].value);

		CHECK(yaml);
		CHECK(kars_yaml_load_all(yaml, strlen(yaml), &again, &err) == 0);
		CHECK(again.count == 1);
		CHECK(json_equal(again.docs[0].value, docs.docs[i].value));
		kars_yaml_docs_free(&again);
		free(yaml);
		kars_validate_object(docs.docs[i].value, NULL, &p);
	}
	kars_yaml_docs_free(&docs);
	return 0;
}
