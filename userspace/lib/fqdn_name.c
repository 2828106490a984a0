/* fqdn_name.c - see fqdn_name.h. */
#include "fqdn_name.h"

#include <string.h>

#include "dns_name.h"

uint64_t kars_fqdn_label_hash(const struct kars_fqdn_key *k, const char *label, size_t len)
{
	uint8_t buf[64];

	if (len > sizeof(buf))
		len = sizeof(buf);
	for (size_t i = 0; i < len; i++) {
		uint8_t c = (uint8_t)label[i];

		buf[i] = c >= 'A' && c <= 'Z' ? (uint8_t)(c + 'a' - 'A') : c;
	}
	return kars_dns_siphash((const uint64_t *)k->label, buf, len);
}

uint64_t kars_fqdn_name_hash(const struct kars_fqdn_key *k, const char *name)
{
	size_t end = strlen(name);
	uint64_t s = 0;

	/* From the last label to the first. */
	while (end > 0) {
		size_t start = end;

		while (start > 0 && name[start - 1] != '.')
			start--;
		s = kars_fqdn_mix(k->chain, s, kars_fqdn_label_hash(k, name + start, end - start));
		end = start ? start - 1 : 0;
	}
	return s;
}
