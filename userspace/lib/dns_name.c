/* dns_name.c - see dns_name.h. */
#include "dns_name.h"

#include <ctype.h>
#include <errno.h>
#include <idn2.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static bool label_char_ok(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static int check_labels(const char *name, struct kars_err *err)
{
	size_t len = strlen(name), start = 0;
	int label = 1;

	if (len == 0)
		return kars_err_set(err, EINVAL, "empty name");
	if (len > KARS_DNS_MAX_TEXT)
		return kars_err_set(err, ENAMETOOLONG, "name is %zu characters long, more than %d",
				    len, KARS_DNS_MAX_TEXT);
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c != '.' && c != '\0') {
			if (!label_char_ok(c))
				return kars_err_set(err, EINVAL,
						    "byte %zu (0x%02x) is not a letter, digit, '-' "
						    "or '_'",
						    i + 1, c);
			continue;
		}
		if (i == start)
			return kars_err_set(err, EINVAL, "label %d is empty", label);
		if (i - start > 63)
			return kars_err_set(err, EINVAL, "label %d is longer than 63 characters",
					    label);
		label++;
		start = i + 1;
	}
	return 0;
}

int kars_dns_name_normalize(const char *in, size_t len, char *out, struct kars_err *err)
{
	char buf[4 * KARS_DNS_NAME_BUF];
	bool ascii = true;
	int ret;

	while (len && isspace((unsigned char)in[0]))
		in++, len--;
	while (len && isspace((unsigned char)in[len - 1]))
		len--;
	if (len && in[len - 1] == '.')
		len--;
	if (len == 0)
		return kars_err_set(err, EINVAL, "empty name");
	if (len >= sizeof(buf))
		return kars_err_set(err, ENAMETOOLONG, "name is longer than %d characters",
				    KARS_DNS_MAX_TEXT);
	memcpy(buf, in, len);
	buf[len] = '\0';
	for (size_t i = 0; i < len; i++) {
		if (buf[i] == '\0')
			return kars_err_set(err, EINVAL, "byte %zu is a NUL", i + 1);
		if ((unsigned char)buf[i] >= 0x80)
			ascii = false;
	}
	if (!ascii) {
		char *puny = NULL;

		ret = idn2_to_ascii_8z(buf, &puny, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
		if (ret != IDN2_OK)
			return kars_err_set(err, EINVAL, "not a valid internationalised name: %s",
					    idn2_strerror(ret));
		len = strlen(puny);
		if (len >= sizeof(buf)) {
			idn2_free(puny);
			return kars_err_set(err, ENAMETOOLONG, "name is longer than %d characters",
					    KARS_DNS_MAX_TEXT);
		}
		memcpy(buf, puny, len + 1);
		idn2_free(puny);
	}
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)tolower((unsigned char)buf[i]);
	ret = check_labels(buf, err);
	if (ret)
		return ret;
	memcpy(out, buf, len + 1);
	return 0;
}

size_t kars_dns_name_wire(const char *name, uint8_t *wire)
{
	size_t n = 0, start = 0, len = strlen(name);

	for (size_t i = 0; i <= len; i++) {
		if (name[i] != '.' && name[i] != '\0')
			continue;
		wire[n++] = (uint8_t)(i - start);
		memcpy(wire + n, name + start, i - start);
		n += i - start;
		start = i + 1;
	}
	return n;
}

static uint64_t load_le64(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

uint64_t kars_dns_siphash(const uint64_t key[2], const uint8_t *data, size_t len)
{
	struct kars_sip s;
	size_t i;

	kars_sip_init(&s, key[0], key[1]);
	for (i = 0; i + 8 <= len; i += 8)
		kars_sip_absorb(&s, load_le64(data + i, 8));
	return kars_sip_final(&s, load_le64(data + i, len - i), len);
}

uint64_t kars_dns_name_hash(const uint64_t key[2], const char *name)
{
	uint8_t wire[KARS_DNS_MAX_WIRE], rev[KARS_DNS_MAX_WIRE];
	size_t n = kars_dns_name_wire(name, wire);

	for (size_t i = 0; i < n; i++)
		rev[n - 1 - i] = wire[i];
	return kars_dns_siphash(key, rev, n);
}

size_t kars_dns_suffix_hashes(const uint64_t key[2], const char *name,
			      uint64_t hashes[KARS_DNS_MAX_WIRE], size_t starts[KARS_DNS_MAX_WIRE])
{
	size_t len = strlen(name), n = 0;

	for (size_t i = len; i-- > 0;) {
		if (i == 0 || name[i - 1] == '.') {
			starts[n] = i;
			hashes[n] = kars_dns_name_hash(key, name + i);
			n++;
		}
	}
	return n;
}
