/* fqdn_name.h - the hash of a name for the router's FQDN allowlist, as
 * bpf/include/kars_dns_answer.bpf.h computes it in the kernel: label by
 * label, folded from the last label to the first (kars_fqdn.h says why).
 */
#ifndef KARS_FQDN_NAME_H
#define KARS_FQDN_NAME_H

#include <stddef.h>
#include <stdint.h>

#include "kars_fqdn.h"

/* H(label): SipHash-2-4 (label key) of len bytes, ASCII lower-cased. */
uint64_t kars_fqdn_label_hash(const struct kars_fqdn_key *k, const char *label, size_t len);

/* S(name) of a name in text form ("api.example.com", no trailing dot);
 * the empty name (the root) is 0. */
uint64_t kars_fqdn_name_hash(const struct kars_fqdn_key *k, const char *name);

#endif
