/* dns_answerpkt.c - see dns_answerpkt.h. */
#include "dns_answerpkt.h"

#include <arpa/inet.h>
#include <string.h>

void kst_msg_u8(struct kst_msg *m, uint8_t v)
{
	if (m->n < sizeof(m->b))
		m->b[m->n++] = v;
}

void kst_msg_u16(struct kst_msg *m, uint16_t v)
{
	kst_msg_u8(m, (uint8_t)(v >> 8));
	kst_msg_u8(m, (uint8_t)v);
}

void kst_msg_u32(struct kst_msg *m, uint32_t v)
{
	kst_msg_u16(m, (uint16_t)(v >> 16));
	kst_msg_u16(m, (uint16_t)v);
}

void kst_msg_header(struct kst_msg *m, uint16_t id, uint16_t flags, uint16_t qd, uint16_t an)
{
	m->n = 0;
	kst_msg_u16(m, id);
	kst_msg_u16(m, flags);
	kst_msg_u16(m, qd);
	kst_msg_u16(m, an);
	kst_msg_u16(m, 0);
	kst_msg_u16(m, 0);
}

size_t kst_msg_name(struct kst_msg *m, const char *name, int ptr)
{
	size_t at = m->n, start = 0, len = strlen(name);

	for (size_t i = 0; len && i <= len; i++) {
		if (name[i] != '.' && name[i] != '\0')
			continue;
		kst_msg_u8(m, (uint8_t)(i - start));
		for (size_t j = start; j < i; j++)
			kst_msg_u8(m, (uint8_t)name[j]);
		start = i + 1;
	}
	if (ptr >= 0)
		kst_msg_u16(m, (uint16_t)(0xc000 | ptr));
	else
		kst_msg_u8(m, 0);
	return at;
}

void kst_msg_question(struct kst_msg *m, const char *name, uint16_t qtype)
{
	kst_msg_name(m, name, -1);
	kst_msg_u16(m, qtype);
	kst_msg_u16(m, 1);
}

void kst_msg_rr(struct kst_msg *m, uint16_t type, uint32_t ttl, const void *rdata, uint16_t len)
{
	kst_msg_u16(m, type);
	kst_msg_u16(m, 1);
	kst_msg_u32(m, ttl);
	kst_msg_u16(m, len);
	for (uint16_t i = 0; i < len; i++)
		kst_msg_u8(m, ((const uint8_t *)rdata)[i]);
}

void kst_msg_rr_addr(struct kst_msg *m, uint32_t ttl, const char *ip)
{
	uint8_t a[16];

	if (strchr(ip, ':')) {
		inet_pton(AF_INET6, ip, a);
		kst_msg_rr(m, 28, ttl, a, 16);
	} else {
		inet_pton(AF_INET, ip, a);
		kst_msg_rr(m, 1, ttl, a, 4);
	}
}

static void put16(uint8_t *p, size_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

struct kst_pkt kst_udp_frame(const char *src, uint16_t sport, const char *dst, uint16_t dport,
			     const uint8_t *msg, size_t len)
{
	bool v6 = strchr(src, ':') != NULL;
	size_t ip_len = v6 ? 40 : 20;
	struct kst_pkt p;
	uint8_t *ip = p.buf + 14, *u = ip + ip_len;

	memset(p.buf, 0, 14 + ip_len + 8);
	if (len > sizeof(p.buf) - 14 - ip_len - 8)
		len = sizeof(p.buf) - 14 - ip_len - 8;
	if (v6) {
		put16(p.buf + 12, 0x86dd);
		ip[0] = 0x60;
		put16(ip + 4, 8 + len);
		ip[6] = 17;
		ip[7] = 64;
		inet_pton(AF_INET6, src, ip + 8);
		inet_pton(AF_INET6, dst, ip + 24);
	} else {
		put16(p.buf + 12, 0x0800);
		ip[0] = 0x45;
		put16(ip + 2, 20 + 8 + len);
		ip[8] = 64;
		ip[9] = 17;
		inet_pton(AF_INET, src, ip + 12);
		inet_pton(AF_INET, dst, ip + 16);
	}
	put16(u, sport);
	put16(u + 2, dport);
	put16(u + 4, 8 + len);
	memcpy(u + 8, msg, len);
	p.len = 14 + ip_len + 8 + len;
	return p;
}
