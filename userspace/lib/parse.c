/* parse.c - see parse.h. */
#include "parse.h"

#include <errno.h>

int kars_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out, const char *what,
		   struct kars_err *err)
{
	uint64_t v = 0;
	const char *p;

	if (!s || !*s)
		return kars_err_set(err, EINVAL, "%s: empty value, expected a number", what);
	for (p = s; *p; p++) {
		unsigned d;

		if (*p < '0' || *p > '9')
			return kars_err_set(err, EINVAL,
					    "%s: invalid character '%c' at byte %zu of \"%s\"",
					    what, *p, (size_t)(p - s), s);
		d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return kars_err_set(err, ERANGE, "%s: \"%s\" is too large", what, s);
		v = v * 10 + d;
	}
	if (p - s > 1 && s[0] == '0')
		return kars_err_set(err, EINVAL, "%s: leading zero in \"%s\"", what, s);
	if (v < min || v > max)
		return kars_err_set(err, ERANGE, "%s: %llu is outside [%llu, %llu]", what,
				    (unsigned long long)v, (unsigned long long)min,
				    (unsigned long long)max);
	*out = v;
	return 0;
}

int kars_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out, const char *what,
		   struct kars_err *err)
{
	uint64_t v;
	int ret = kars_parse_u64(s, min, max, &v, what, err);

	if (!ret)
		*out = (uint32_t)v;
	return ret;
}

int kars_parse_port(const char *s, uint16_t *out, const char *what, struct kars_err *err)
{
	uint32_t v;
	int ret = kars_parse_u32(s, 1, 65535, &v, what, err);

	if (!ret)
		*out = (uint16_t)v;
	return ret;
}
