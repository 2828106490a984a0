/* addr.c - see addr.h. */
#include "addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "parse.h"

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool kars_addr_is_v4(const struct kars_addr *a)
{
	return memcmp(a->bytes, v4_mapped_prefix, sizeof(v4_mapped_prefix)) == 0;
}

void kars_addr_from_v4(struct kars_addr *a, uint32_t v4_be)
{
	memcpy(a->bytes, v4_mapped_prefix, sizeof(v4_mapped_prefix));
	memcpy(a->bytes + 12, &v4_be, 4);
}

int kars_addr_parse(const char *s, struct kars_addr *out, const char *what, struct kars_err *err)
{
	struct in_addr v4;

	if (!s || !*s)
		return kars_err_set(err, EINVAL, "%s: empty address", what);
	if (inet_pton(AF_INET, s, &v4) == 1) {
		kars_addr_from_v4(out, v4.s_addr);
		return 0;
	}
	if (inet_pton(AF_INET6, s, out->bytes) == 1)
		return 0;
	return kars_err_set(err, EINVAL, "%s: \"%s\" is not an IPv4 or IPv6 address", what, s);
}

int kars_cidr_parse(const char *s, struct kars_addr *out, uint8_t *prefix128, const char *what,
		    struct kars_err *err)
{
	char buf[64];
	const char *slash = s ? strchr(s, '/') : NULL;
	uint32_t prefix, max, bits;
	size_t n;
	int ret;

	if (!slash)
		return kars_err_set(err, EINVAL, "%s: \"%s\" is not a CIDR (missing '/')", what,
				    s ? s : "");
	n = (size_t)(slash - s);
	if (n >= sizeof(buf))
		return kars_err_set(err, EINVAL, "%s: address part too long", what);
	memcpy(buf, s, n);
	buf[n] = '\0';
	ret = kars_addr_parse(buf, out, what, err);
	if (ret)
		return ret;
	max = strchr(buf, ':') ? 128 : 32;
	ret = kars_parse_u32(slash + 1, 0, max, &prefix, what, err);
	if (ret)
		return ret;
	bits = max == 32 ? 96 + prefix : prefix;
	for (uint32_t i = bits; i < 128; i++) {
		if (out->bytes[i / 8] & (0x80 >> (i % 8)))
			return kars_err_set(err, EINVAL, "%s: \"%s\" has host bits set past /%u",
					    what, s, prefix);
	}
	*prefix128 = (uint8_t)bits;
	return 0;
}

const char *kars_addr_str(const struct kars_addr *a, char *buf, unsigned len)
{
	if (kars_addr_is_v4(a))
		return inet_ntop(AF_INET, a->bytes + 12, buf, len);
	return inet_ntop(AF_INET6, a->bytes, buf, len);
}
