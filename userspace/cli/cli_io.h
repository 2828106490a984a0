/* cli_io.h - reading a command's input file ("-" is stdin), shared by the
 * kars subcommands that take -f FILE. */
#ifndef KARS_CLI_IO_H
#define KARS_CLI_IO_H

#include <stddef.h>

/* The whole file (NUL-terminated, malloc'd), at most 64 MiB. On failure
 * prints "kars: FILE: why" and returns NULL. */
char *kars_cli_read(const char *path, size_t *len);

#endif
