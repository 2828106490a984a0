/* unit.h - shared glue for the cmocka unit tests.
 *
 * Each test file ends with KARS_UNIT_MAIN(tests). The resulting binary runs
 * the group and then prints the one summary line selftests/run.sh adds up:
 *
 *	unit/test_parse: 12 passed, 0 failed
 *	unit/test_parse[asan]: 12 passed, 0 failed	(with --tag asan)
 *
 * and exits non-zero if any test failed.
 */
#ifndef KARS_UNIT_H
#define KARS_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "err.h"

/* Asserts that a kars_err message contains needle, printing it if not. */
#define assert_err_contains(err, needle)                                                           \
	do {                                                                                       \
		if (!strstr((err)->msg, (needle)))                                                 \
			fail_msg("error \"%s\" does not contain \"%s\"", (err)->msg, (needle));    \
	} while (0)

/* "selftests/unit/test_parse.c" -> "test_parse" into buf. */
static inline const char *kars_unit_name(const char *file, char *buf, size_t len)
{
	const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
	size_t n = strcspn(base, ".");

	snprintf(buf, len, "%.*s", (int)n, base);
	return buf;
}

static inline int kars_unit_main(const char *file, const struct CMUnitTest *tests, size_t n,
				 int argc, char **argv)
{
	const char *tag = NULL;
	char name[128];
	int failed;

	kars_unit_name(file, name, sizeof(name));
	if (argc == 3 && strcmp(argv[1], "--tag") == 0) {
		tag = argv[2];
	} else if (argc != 1) {
		fprintf(stderr, "usage: %s [--tag TAG]\n", argv[0]);
		printf("unit/%s: 0 passed, 1 failed\n", name);
		return 2;
	}
	/* Line-buffered even into a pipe, so run.sh shows progress as it happens
	 * and a sanitizer report on stderr lands next to the test that caused it. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	failed = _cmocka_run_group_tests(name, tests, n, NULL, NULL);
	if (failed < 0 || (size_t)failed > n)
		failed = (int)n;
	printf("unit/%s%s%s%s: %zu passed, %d failed\n", name, tag ? "[" : "", tag ? tag : "",
	       tag ? "]" : "", n - (size_t)failed, failed);
	fflush(stdout);
	return failed ? 1 : 0;
}

#define KARS_UNIT_MAIN(tests)                                                                      \
	int main(int argc, char **argv)                                                            \
	{                                                                                          \
		return kars_unit_main(__FILE__, tests, sizeof(tests) / sizeof(tests[0]), argc,     \
				      argv);                                                       \
	}

#endif
