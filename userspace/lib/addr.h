/* addr.h - IP addresses and CIDRs as the data plane stores them.
 *
 * Every address is 16 bytes; IPv4 is kept in its v4-mapped IPv6 form
 * (::ffff:a.b.c.d) so that one map and one comparison cover both families,
 * and so that an IPv6 socket dialling ::ffff:a.b.c.d meets the same rule as
 * an IPv4 socket dialling a.b.c.d.
 */
#ifndef KARS_ADDR_H
#define KARS_ADDR_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

struct kars_addr {
	uint8_t bytes[16];
};

/* Parses "192.0.2.1", "2001:db8::1" or "::ffff:192.0.2.1". */
int kars_addr_parse(const char *s, struct kars_addr *out, const char *what, struct kars_err *err);
/* Parses "10.0.0.0/8" or "2001:db8::/32"; the prefix is returned on the
 * 128-bit scale (an IPv4 /8 becomes 104). Host bits must be zero. */
int kars_cidr_parse(const char *s, struct kars_addr *out, uint8_t *prefix128, const char *what,
		    struct kars_err *err);
bool kars_addr_is_v4(const struct kars_addr *a);
void kars_addr_from_v4(struct kars_addr *a, uint32_t v4_be);
/* Writes the address as text (IPv4 for mapped addresses); buf >= 46 bytes. */
const char *kars_addr_str(const struct kars_addr *a, char *buf, unsigned len);

#endif
