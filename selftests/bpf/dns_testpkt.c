/* dns_testpkt.c - see dns_testpkt.h. */
#include "dns_testpkt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "net_helpers.h"

#define ETH_LEN	  14
#define IP4_LEN	  20
#define IP6_LEN	  40
#define UDP_LEN	  8
#define TCP_LEN	  20
#define DNS_HDR	  12
#define RTHDR_LEN 8

static size_t put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return 2;
}

static size_t wire_name(uint8_t *out, const char *name)
{
	size_t n = 0, start = 0, len = strlen(name);

	if (len == 0) {
		out[0] = 0;
		return 1;
	}
	for (size_t i = 0; i <= len; i++) {
		if (name[i] != '.' && name[i] != '\0')
			continue;
		out[n++] = (uint8_t)(i - start);
		memcpy(out + n, name + start, i - start);
		n += i - start;
		start = i + 1;
	}
	out[n++] = 0;
	return n;
}

static size_t header(uint8_t *p, int qdcount, int flags, int arcount)
{
	uint16_t f = 0x0100; /* RD */

	if (flags & KST_DNS_TC)
		f |= 0x0200;
	if (flags & KST_DNS_QR)
		f |= 0x8000;
	if (flags & KST_DNS_OPCODE_UPDATE)
		f |= 5 << 11;
	put16(p, 0x1234);
	put16(p + 2, f);
	put16(p + 4, (uint16_t)qdcount);
	put16(p + 6, 0);
	put16(p + 8, 0);
	put16(p + 10, (uint16_t)arcount);
	return DNS_HDR;
}

size_t kst_dns_message(uint8_t *out, const char *name, int qdcount, int flags)
{
	size_t n = header(out, qdcount, flags, flags & KST_DNS_EDNS0 ? 1 : 0);

	for (int q = 0; q < (qdcount > 1 ? qdcount : 1); q++) {
		n += wire_name(out + n, name);
		n += put16(out + n, 1); /* A */
		n += put16(out + n, 1); /* IN */
	}
	if (flags & KST_DNS_EDNS0) {
		out[n++] = 0;		   /* root */
		n += put16(out + n, 41);   /* OPT */
		n += put16(out + n, 1232); /* UDP payload size */
		n += put16(out + n, 0);
		n += put16(out + n, 0);
		n += put16(out + n, 0); /* rdlen */
	}
	return n;
}

/* Ethernet + IPv4 + UDP headers around payload already at buf + 42. */
static struct kst_pkt *frame4(struct kst_pkt *p, uint8_t proto, size_t l4_len)
{
	uint8_t *ip = p->buf + ETH_LEN;

	memset(p->buf, 0, ETH_LEN + IP4_LEN);
	put16(p->buf + 12, 0x0800);
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(IP4_LEN + l4_len));
	ip[8] = 64;
	ip[9] = proto;
	memcpy(ip + 12, "\x0a\x00\x00\x01", 4);
	memcpy(ip + 16, "\xc0\x00\x02\x35", 4); /* 192.0.2.53 */
	p->len = ETH_LEN + IP4_LEN + l4_len;
	return p;
}

static void udp(uint8_t *u, uint16_t dport, size_t payload)
{
	put16(u, 40000);
	put16(u + 2, dport);
	put16(u + 4, (uint16_t)(UDP_LEN + payload));
	put16(u + 6, 0);
}

static struct kst_pkt udp4(const uint8_t *payload, size_t len, uint16_t dport)
{
	struct kst_pkt p;
	uint8_t *u = p.buf + ETH_LEN + IP4_LEN;

	udp(u, dport, len);
	memcpy(u + UDP_LEN, payload, len);
	frame4(&p, 17, UDP_LEN + len);
	return p;
}

struct kst_pkt kst_dns4_query(const char *name, int qdcount, int flags)
{
	uint8_t msg[1500];

	return udp4(msg, kst_dns_message(msg, name, qdcount, flags), 53);
}

struct kst_pkt kst_dns4_raw(const char *bytes, size_t len, int qdcount)
{
	uint8_t msg[1500];
	size_t n = header(msg, qdcount, 0, 0);

	memcpy(msg + n, bytes, len);
	return udp4(msg, n + len, 53);
}

struct kst_pkt kst_dns4_short_header(void)
{
	uint8_t msg[6] = {0x12, 0x34, 0x01, 0x00, 0x00, 0x01};

	return udp4(msg, sizeof(msg), 53);
}

struct kst_pkt kst_dns4_long_wire(size_t min)
{
	uint8_t msg[1500];
	size_t n = header(msg, 1, 0, 0), start = n;

	while (n - start < min) {
		msg[n++] = 63;
		memset(msg + n, 'a', 63);
		n += 63;
	}
	msg[n++] = 0;
	n += put16(msg + n, 1);
	n += put16(msg + n, 1);
	return udp4(msg, n, 53);
}

struct kst_pkt kst_udp4_garbage(uint16_t port)
{
	uint8_t junk[32];

	memset(junk, 0xc0, sizeof(junk));
	return udp4(junk, sizeof(junk), port);
}

struct kst_pkt kst_dns6_query(const char *name, bool routing_header)
{
	struct kst_pkt p;
	uint8_t *ip = p.buf + ETH_LEN, *l4 = ip + IP6_LEN, msg[1500];
	size_t len = kst_dns_message(msg, name, 1, 0), ext = routing_header ? RTHDR_LEN : 0;

	memset(p.buf, 0, ETH_LEN + IP6_LEN + ext);
	put16(p.buf + 12, 0x86dd);
	ip[0] = 0x60;
	put16(ip + 4, (uint16_t)(ext + UDP_LEN + len));
	ip[6] = routing_header ? 43 : 17;
	ip[7] = 64;
	ip[8] = 0x20, ip[9] = 0x01, ip[10] = 0x0d, ip[11] = 0xb8, ip[23] = 1;
	ip[24] = 0x20, ip[25] = 0x01, ip[26] = 0x0d, ip[27] = 0xb8, ip[39] = 0x53;
	if (routing_header) {
		l4[0] = 17; /* next: UDP */
		l4[1] = 0;  /* 8 bytes */
		l4[2] = 0;  /* type 0, no segments left */
		l4 += RTHDR_LEN;
	}
	udp(l4, 53, len);
	memcpy(l4 + UDP_LEN, msg, len);
	p.len = ETH_LEN + IP6_LEN + ext + UDP_LEN + len;
	return p;
}

struct kst_pkt kst_dns4_tcp(const char *name, int extra)
{
	struct kst_pkt p;
	uint8_t *t = p.buf + ETH_LEN + IP4_LEN, msg[1500];
	size_t len = name ? kst_dns_message(msg, name, 1, 0) : 0, payload = 0;

	memset(t, 0, TCP_LEN);
	put16(t, 40000);
	put16(t + 2, 53);
	t[12] = (TCP_LEN / 4) << 4;
	t[13] = 0x18; /* PSH ACK */
	if (name) {
		put16(t + TCP_LEN, (uint16_t)(len + (size_t)extra));
		memcpy(t + TCP_LEN + 2, msg, len);
		payload = 2 + len;
	}
	frame4(&p, 6, TCP_LEN + payload);
	return p;
}

void kst_dns_long_name(char *out, size_t len, const char *suffix)
{
	size_t slen = strlen(suffix), need = len - slen, n = 0;

	/* Labels of up to 63 'a's, each followed by a dot, then the suffix. */
	while (need > 0) {
		size_t l = need - 1 > 63 ? 63 : need - 1;

		if (need - (l + 1) == 1) /* never leave a 1-byte gap: no empty label */
			l--;
		memset(out + n, 'a', l);
		n += l;
		out[n++] = '.';
		need -= l + 1;
	}
	memcpy(out + n, suffix, slen + 1);
}

int kst_dns_sendto(int fd, const char *name, const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t slen;
	uint8_t msg[600];
	size_t len = kst_dns_message(msg, name, 1, 0);
	ssize_t n;

	if (kst_sockaddr(ip, port, &ss, &slen))
		return EINVAL;
	n = sendto(fd, msg, len, 0, (struct sockaddr *)&ss, slen);
	if (n < 0)
		return errno;
	return n == (ssize_t)len ? 0 : EMSGSIZE;
}

int kst_dns_send(int fd, const char *name)
{
	uint8_t msg[600];
	size_t len = kst_dns_message(msg, name, 1, 0);
	ssize_t n = send(fd, msg, len, MSG_NOSIGNAL);

	if (n < 0)
		return errno;
	return n == (ssize_t)len ? 0 : EMSGSIZE;
}

bool kst_dns_qname(const uint8_t *msg, size_t len, char *out, size_t outlen)
{
	char name[256];
	size_t pos = DNS_HDR, n = 0;

	if (len < DNS_HDR + 5 || (msg[2] & 0x80) || msg[4] != 0 || msg[5] != 1)
		return false;
	while (pos < len && msg[pos] != 0) {
		size_t l = msg[pos];

		if (l > 63 || pos + 1 + l >= len || n + l + 2 > sizeof(name))
			return false;
		if (n)
			name[n++] = '.';
		memcpy(name + n, msg + pos + 1, l);
		n += l;
		pos += 1 + l;
	}
	if (pos >= len || n >= outlen)
		return false;
	name[n] = '\0';
	memcpy(out, name, n + 1);
	return true;
}
