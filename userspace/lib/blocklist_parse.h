/* blocklist_parse.h - one line of a domain blocklist file.
 *
 * Three formats, told apart per line, so files may be concatenated:
 *   - OISD "domainswild": "*.example.com" or "example.com";
 *   - hosts files: "0.0.0.0 a.example b.example" (also 127.0.0.1, :: and ::1);
 *   - plain: one name per line.
 * "#" starts a comment (at the start of a line or after blank space), "!"
 * at the start of a line too (adblock-style headers). Every entry blocks the
 * name and every name below it: "*.x" and "x" mean the same (OISD's meaning).
 */
#ifndef KARS_BLOCKLIST_PARSE_H
#define KARS_BLOCKLIST_PARSE_H

#include <stddef.h>

#include "dns_name.h"
#include "err.h"

/* Called with each normalised name of a line; non-zero stops the parse. */
typedef int (*kars_blocklist_emit_fn)(void *arg, const char *name);

/* Parses one line (len bytes, no newline needed). Returns the number of
 * names emitted (0 for a blank or comment line) or -errno with err naming
 * what is wrong with the line. */
int kars_blocklist_parse_line(const char *line, size_t len, kars_blocklist_emit_fn emit, void *arg,
			      struct kars_err *err);

#endif
