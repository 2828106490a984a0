/* fuzz_convert.c - libFuzzer target for the converters (convert.h): YAML
 * in, kagent Agent / Sandbox / KarsSandbox conversion, validation out.
 *
 * `kars migrate from-kagent` and `kars convert` read manifests from other
 * projects, often piped from `kubectl get`. Whatever the bytes, a converter
 * must not crash or leak, and every bundle it returns must pass the
 * validator: a conversion that succeeds with an invalid object is a bug,
 * so it aborts here.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"
#include "yamljson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

static void check_bundle(json_t *out)
{
	struct kars_err err = {};

	if (kars_convert_validate(out, &err)) {
		fprintf(stderr, "converted bundle is invalid: %s\n", err.msg);
		abort();
	}
	json_decref(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum kars_conv_mode modes[] = {KARS_MODE_NATIVE, KARS_MODE_TRANSLATE,
						    KARS_MODE_OBSERVE, KARS_MODE_OVERLAY};
	struct kars_yaml_docs docs;
	struct kars_err err = {};
	json_t *all, *out;

	if (size > 1 << 16)
		return 0;
	if (kars_yaml_load_all((const char *)data, size, &docs, &err))
		return 0;
	all = json_array();
	for (size_t i = 0; i < docs.count; i++)
		json_array_append(all, docs.docs[i].value);
	for (int with_model = 0; with_model < 2; with_model++) {
		struct kars_conv_opts o = {.model = with_model ? "azure-openai/gpt-4o" : NULL,
					   .date = "2026-04-30"};
		struct kars_conv_report r = {};

		if (kars_convert_kagent(all, &o, &out, &r, &err) == 0)
			check_bundle(out);
		kars_conv_report_free(&r);
	}
	for (size_t i = 0; i < docs.count; i++) {
		for (size_t m = 0; m < 4; m++) {
			struct kars_conv_opts o = {.mode = modes[m], .model = m ? NULL : "x"};
			struct kars_conv_report r = {};

			if (kars_convert_sandbox_to_kars(docs.docs[i].value, &o, &out, &r, &err) ==
			    0)
				check_bundle(out);
			kars_conv_report_free(&r);
		}
		{
			struct kars_conv_opts o = {};
			struct kars_conv_report r = {};

			if (kars_convert_kars_to_sandbox(docs.docs[i].value, &o, &out, &r, &err) ==
			    0)
				check_bundle(out);
			kars_conv_report_free(&r);
		}
	}
	json_decref(all);
	kars_yaml_docs_free(&docs);
	return 0;
}
