/* addr_class.c - see addr_class.h. Ranges from the IANA IPv4 and IPv6
 * special-purpose address registries (RFC 6890) and the cloud metadata
 * services' documented addresses. */
#include "addr_class.h"

#include <string.h>

struct range {
	uint8_t net[16];
	uint8_t prefix; /* bits of net that must match */
	const char *class;
};

/* IPv4 ranges on the 32-bit scale, in the last 4 bytes of net. */
#define V4(a, b, c, d, len, cl)                                                                    \
	{                                                                                          \
		{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, a, b, c, d}, len, cl                          \
	}

/* Most specific first: the first match names the class. */
static const struct range v4_ranges[] = {
    V4(169, 254, 169, 254, 32, "metadata"), /* AWS, GCP, Azure, OpenStack */
    V4(169, 254, 170, 2, 32, "metadata"),   /* ECS task metadata */
    V4(100, 100, 100, 200, 32, "metadata"), /* Alibaba Cloud */
    V4(0, 0, 0, 0, 8, "unspecified"),
    V4(10, 0, 0, 0, 8, "private"),
    V4(100, 64, 0, 0, 10, "cgnat"),
    V4(127, 0, 0, 0, 8, "loopback"),
    V4(169, 254, 0, 0, 16, "link_local"),
    V4(172, 16, 0, 0, 12, "private"),
    V4(192, 0, 0, 0, 24, "reserved"), /* IETF protocol assignments */
    V4(192, 168, 0, 0, 16, "private"),
    V4(198, 18, 0, 0, 15, "reserved"), /* benchmarking */
    V4(224, 0, 0, 0, 4, "multicast"),
    V4(240, 0, 0, 0, 4, "reserved"), /* and 255.255.255.255 */
};

static const struct range v6_ranges[] = {
    {{0xfd, 0, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54}, 128, "metadata"}, /* AWS */
    {{0}, 128, "unspecified"},
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, "loopback"},
    {{0xfc}, 7, "ula"},
    {{0xfe, 0x80}, 10, "link_local"},
    {{0xfe, 0xc0}, 10, "private"}, /* site-local, deprecated */
    {{0xff}, 8, "multicast"},
    {{0x01, 0x00}, 64, "reserved"},		/* discard-only */
    {{0x20, 0x01, 0x00, 0x00}, 23, "reserved"}, /* IETF protocol assignments, Teredo */
};

static bool in_range(const uint8_t *a, const struct range *r)
{
	unsigned full = r->prefix / 8, rest = r->prefix % 8;

	if (memcmp(a, r->net, full))
		return false;
	return !rest || ((a[full] ^ r->net[full]) & (0xff << (8 - rest))) == 0;
}

static const char *v4_class(const uint8_t v4[4])
{
	uint8_t a[16] = {0};

	memcpy(a + 12, v4, 4);
	for (size_t i = 0; i < sizeof(v4_ranges) / sizeof(v4_ranges[0]); i++) {
		const struct range *r = &v4_ranges[i];
		struct range r96 = *r;

		r96.prefix = (uint8_t)(96 + r->prefix);
		if (in_range(a, &r96))
			return r->class;
	}
	return NULL;
}

const char *kars_addr_refused_class(const struct kars_addr *a)
{
	static const uint8_t compat[12] = {0}, nat64[12] = {0, 0x64, 0xff, 0x9b};
	const uint8_t *b = a->bytes;

	if (kars_addr_is_v4(a))
		return v4_class(b + 12);
	for (size_t i = 0; i < sizeof(v6_ranges) / sizeof(v6_ranges[0]); i++)
		if (in_range(b, &v6_ranges[i]))
			return v6_ranges[i].class;
	/* Forms that carry an IPv4 address: judged by it. */
	if (memcmp(b, nat64, 12) == 0)
		return v4_class(b + 12);
	if (memcmp(b, compat, 12) == 0) /* ::a.b.c.d, deprecated: never dialled */
		return "reserved";
	if (b[0] == 0x20 && b[1] == 0x02) /* 6to4 */
		return v4_class(b + 2);
	return NULL;
}
