/* egress_learned.h - the destinations the egress proxy allowed only because
 * the mode is learn: what an operator reviews before approving hosts into
 * the allowlist and switching to strict. One entry per (host, port), with a
 * count and first and last seen, at most learnMax entries; past the bound,
 * destinations are still allowed but not recorded (and counted as dropped),
 * as the data plane's kars_learned does.
 */
#ifndef KARS_EGRESS_LEARNED_H
#define KARS_EGRESS_LEARNED_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "dns_name.h"

struct kars_egress_learned_entry {
	char host[KARS_DNS_NAME_BUF];
	uint16_t port;
	uint64_t count;
	time_t first, last;
};

struct kars_egress_learned {
	struct kars_egress_learned_entry *entries;
	size_t n, cap, max;
	uint64_t dropped;
};

void kars_egress_learned_init(struct kars_egress_learned *l, size_t max);
void kars_egress_learned_record(struct kars_egress_learned *l, const char *host, uint16_t port,
				time_t now);
/* Removes (host, port) if present (after it was approved). */
void kars_egress_learned_remove(struct kars_egress_learned *l, const char *host, uint16_t port);
/* [{"host","port","count","firstSeen","lastSeen"}], RFC 3339 times. */
json_t *kars_egress_learned_json(const struct kars_egress_learned *l);
void kars_egress_learned_free(struct kars_egress_learned *l);

#endif
