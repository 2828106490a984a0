/* fqdn.h - karsd's side of the router's FQDN allowlist: the rules and
 * settings an apply writes, the learned entries it lists and expires.
 *
 * An apply writes the policy's fqdns as rules of its new generation (each
 * folded with the ranges of the wildcards above it), then the sandbox's
 * settings (kars_fqdn_cfg): TTL floor, ceiling and grace, and since_gen,
 * which moves to the new generation when the fqdns or the knobs changed, so
 * that every query and entry of the old list counts for nothing at once.
 * The kernel fills kars_fqdn_entries (kars_dns_answer.bpf.h); karsd lists
 * them, deletes the expired and the stale, and recounts each sandbox's
 * entries for its quota ("fqdnMaxEntries"). docs/dns.md.
 */
#ifndef KARSD_FQDN_H
#define KARSD_FQDN_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "kars_fqdn.h"
#include "loader.h"
#include "policy.h"

/* Draws the node's hash keys on first start; reuses the pinned ones after. */
int kars_fqdn_key_init(struct kars_loader *l, struct kars_err *err);

/* Writes the rules of p->fqdns under gen. */
int kars_fqdn_write_rules(struct kars_loader *l, uint32_t gen, const struct kars_policy *p,
			  struct kars_err *err);
/* Stores the sandbox's settings for generation gen (deletes them when p has
 * no fqdns); *saved / *had keep what was there for kars_fqdn_restore_cfg. */
int kars_fqdn_store_cfg(struct kars_loader *l, uint32_t sandbox_id, uint32_t gen,
			const struct kars_policy *p, struct kars_fqdn_cfg *saved, bool *had,
			struct kars_err *err);
void kars_fqdn_restore_cfg(struct kars_loader *l, uint32_t sandbox_id,
			   const struct kars_fqdn_cfg *saved, bool had);
/* Deletes everything of a removed sandbox. */
void kars_fqdn_forget(struct kars_loader *l, uint32_t sandbox_id);
/* Deletes expired entries and those of an fqdn list no longer in force. */
void kars_fqdn_gc(struct kars_loader *l);

/* The sandbox's live entries (array), or their count alone when out is NULL. */
size_t kars_fqdn_entries(struct kars_loader *l, uint32_t sandbox_id, json_t *out);
uint32_t kars_fqdn_rules(struct kars_loader *l, uint32_t sandbox_id);
/* Node-wide: live entries, keys stored (live, expired or stale, until karsd
 * deletes them), and the kars_fqdn_counters sums. status and metrics. */
struct kars_fqdn_stats {
	uint64_t entries, stored;
	uint64_t counters[KARS_FQDN_COUNTER__COUNT];
};
void kars_fqdn_stats(struct kars_loader *l, struct kars_fqdn_stats *st);
/* The same for status: {"entries": N, "counters": {...}}. */
json_t *kars_fqdn_status(struct kars_loader *l);

/* Adds "qname" (and "ttl" for a learned record) to an event's JSON when the
 * event carries an FQDN tail. */
void kars_fqdn_event_json(json_t *o, const void *data, size_t size);

#endif
