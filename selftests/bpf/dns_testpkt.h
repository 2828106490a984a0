/* dns_testpkt.h - crafted Ethernet frames carrying DNS messages, for
 * BPF_PROG_TEST_RUN of the DNS query check (test_dns_parser.c). Names are
 * written as given (case kept, no normalisation); checksums are left zero
 * (no program here reads them).
 */
#ifndef KST_DNS_TESTPKT_H
#define KST_DNS_TESTPKT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kst_pkt {
	uint8_t buf[2048];
	size_t len;
};

/* Flags of kst_dns4_query. */
#define KST_DNS_TC	      0x1 /* truncation bit set */
#define KST_DNS_EDNS0	      0x2 /* an OPT record in the additional section */
#define KST_DNS_QR	      0x4 /* a response, not a query */
#define KST_DNS_OPCODE_UPDATE 0x8 /* opcode 5 */

/* UDP/IPv4 to port 53: a header with qdcount, then the question for name
 * once (twice when qdcount is 2). */
struct kst_pkt kst_dns4_query(const char *name, int qdcount, int flags);
/* UDP/IPv4 to port 53: a header with qdcount, then len raw bytes. */
struct kst_pkt kst_dns4_raw(const char *bytes, size_t len, int qdcount);
/* UDP/IPv4 to port 53 with only 6 bytes of payload. */
struct kst_pkt kst_dns4_short_header(void);
/* A question whose name takes more than 255 octets on the wire (>= min). */
struct kst_pkt kst_dns4_long_wire(size_t min);
/* 32 bytes that are not DNS, UDP/IPv4 to port. */
struct kst_pkt kst_udp4_garbage(uint16_t port);
/* UDP/IPv6 query, optionally behind a routing extension header. */
struct kst_pkt kst_dns6_query(const char *name, bool routing_header);
/* TCP/IPv4 segment to port 53 holding one length-prefixed query; the length
 * prefix claims extra bytes more than the segment holds. name NULL: a
 * segment without payload. */
struct kst_pkt kst_dns4_tcp(const char *name, int extra);
/* Writes a name of exactly len characters ending in suffix (63-char labels). */
void kst_dns_long_name(char *out, size_t len, const char *suffix);
/* A DNS query message (no transport) for name; returns its length. */
size_t kst_dns_message(uint8_t *out, const char *name, int qdcount, int flags);

/* sendto()/send() of a DNS query for name (A, IN, RD); 0 or the errno. */
int kst_dns_sendto(int fd, const char *name, const char *ip, uint16_t port);
int kst_dns_send(int fd, const char *name);
/* If msg is a DNS query, rewrites out (outlen bytes; may be msg) to its
 * question name in text form and returns true; else leaves out alone. */
bool kst_dns_qname(const uint8_t *msg, size_t len, char *out, size_t outlen);

#endif
