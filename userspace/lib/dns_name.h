/* dns_name.h - domain names for the DNS blocklist: normalise, encode, hash.
 *
 * A name is stored and looked up in one normal form: lower case, no trailing
 * dot, Unicode converted to punycode (IDNA2008 via libidn2), labels of 1-63
 * characters, 253 characters at most. Its hash is the keyed SipHash-2-4 of
 * its byte-reversed wire form, exactly as bpf/include/kars_dns.bpf.h computes
 * it in the kernel (kars_dns.h explains why reversed).
 */
#ifndef KARS_DNS_NAME_H
#define KARS_DNS_NAME_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "kars_dns.h"

#define KARS_DNS_NAME_BUF (KARS_DNS_MAX_TEXT + 1)

/* Normalises len bytes of text into out (KARS_DNS_NAME_BUF bytes). Errors
 * name the problem ("label 2 is longer than 63 characters"). */
int kars_dns_name_normalize(const char *in, size_t len, char *out, struct kars_err *err);

/* Wire form of a normalised name without the root label (no compression);
 * wire has KARS_DNS_MAX_WIRE bytes. Returns its length. */
size_t kars_dns_name_wire(const char *name, uint8_t *wire);

/* SipHash-2-4 of len bytes (key[0], key[1] as k0, k1), with 0 mapped to 1. */
uint64_t kars_dns_siphash(const uint64_t key[2], const uint8_t *data, size_t len);

/* The stored hash of a normalised name. */
uint64_t kars_dns_name_hash(const uint64_t key[2], const char *name);

/* Hashes of every suffix of a normalised name, shortest (the TLD) first, and
 * where each suffix starts in name. Returns the number of labels. */
size_t kars_dns_suffix_hashes(const uint64_t key[2], const char *name,
			      uint64_t hashes[KARS_DNS_MAX_WIRE], size_t starts[KARS_DNS_MAX_WIRE]);

#endif
