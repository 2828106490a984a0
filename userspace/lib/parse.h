/* parse.h - strict number parsing.
 *
 * The whole string must be a decimal number in [min, max]: no sign, no
 * leading or trailing space, no hex, no empty string. atoi() and strtoul()
 * accept all of those, and a policy file is no place for guessing.
 */
#ifndef KARS_PARSE_H
#define KARS_PARSE_H

#include <stdint.h>

#include "err.h"

/* what names the value in error messages ("--port", "spec.port"). */
int kars_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out, const char *what,
		   struct kars_err *err);
int kars_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out, const char *what,
		   struct kars_err *err);
int kars_parse_port(const char *s, uint16_t *out, const char *what, struct kars_err *err);

#endif
