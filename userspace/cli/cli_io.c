/* cli_io.c - see cli_io.h. */
#include "cli_io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READ_MAX (64u << 20)

char *kars_cli_read(const char *path, size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	size_t cap = 1 << 16;
	char *buf;

	if (!f) {
		fprintf(stderr, "kars: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	buf = malloc(cap + 1);
	*len = 0;
	while (buf) {
		size_t n = fread(buf + *len, 1, cap - *len, f);

		*len += n;
		if (n == 0)
			break;
		if (*len == cap) {
			char *bigger = cap >= READ_MAX ? NULL : realloc(buf, cap * 2 + 1);

			if (!bigger) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = bigger;
			cap *= 2;
		}
	}
	if (buf && ferror(f)) {
		free(buf);
		buf = NULL;
	}
	if (f != stdin)
		fclose(f);
	if (!buf) {
		fprintf(stderr, "kars: %s: unreadable or larger than 64 MiB\n", path);
		return NULL;
	}
	buf[*len] = '\0';
	return buf;
}
