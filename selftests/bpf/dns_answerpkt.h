/* dns_answerpkt.h - crafted DNS answers (compression pointers, CNAME
 * chains, truncation) and the UDP frames around them, for
 * BPF_PROG_TEST_RUN of the router's query recorder and answer snooper
 * (test_dns_answer.c, fuzz_dns_answer.c). Big-endian fields, no checksums.
 */
#ifndef KST_DNS_ANSWERPKT_H
#define KST_DNS_ANSWERPKT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns_testpkt.h"

struct kst_msg {
	uint8_t b[1800];
	size_t n;
};

#define KST_DNS_QR_AA 0x8400 /* response, authoritative, NOERROR */

void kst_msg_u8(struct kst_msg *m, uint8_t v);
void kst_msg_u16(struct kst_msg *m, uint16_t v);
void kst_msg_u32(struct kst_msg *m, uint32_t v);
/* Header: id, flags, counts of questions, answers, authority, additional. */
void kst_msg_header(struct kst_msg *m, uint16_t id, uint16_t flags, uint16_t qd, uint16_t an);
/* Writes name's labels (no trailing root when ptr >= 0: a pointer to ptr
 * ends it); returns the offset the name starts at. */
size_t kst_msg_name(struct kst_msg *m, const char *name, int ptr);
/* The question section entry: name, qtype, class IN. */
void kst_msg_question(struct kst_msg *m, const char *name, uint16_t qtype);
/* A record after its owner: type, class IN, ttl, rdata. */
void kst_msg_rr(struct kst_msg *m, uint16_t type, uint32_t ttl, const void *rdata, uint16_t len);
/* An A or AAAA record (owner written by the caller) for a text address. */
void kst_msg_rr_addr(struct kst_msg *m, uint32_t ttl, const char *ip);

/* UDP in IPv4 or IPv6 (by the addresses' family) from src:sport to
 * dst:dport carrying the message. */
struct kst_pkt kst_udp_frame(const char *src, uint16_t sport, const char *dst, uint16_t dport,
			     const uint8_t *msg, size_t len);

#endif
