/* blocklist.h - karsd's side of the DNS blocklist: load files into a new
 * generation, check a name, report status.
 *
 * A load reads every file (as the caller: a file the caller may not read is
 * refused), parses each line (blocklist_parse.h), hashes every name with a
 * fresh random key, builds the table off to the side and switches the
 * kernel to it with one map update (dns_table.h). Bad lines are counted and
 * reported as FILE:LINE: reason; the rest is loaded. A file that cannot be
 * read refuses the whole load and the generation in force stays.
 * docs/dns.md, docs/karsd-api.md.
 */
#ifndef KARSD_BLOCKLIST_H
#define KARSD_BLOCKLIST_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

struct karsd;

/* Handles the control ops blocklist_load, blocklist_check and
 * blocklist_status; returns the response or NULL with err set. uid and gid
 * are the caller's (files are opened with them). */
json_t *karsd_blocklist_op(struct karsd *d, const char *op, const json_t *req, uid_t uid, gid_t gid,
			   struct kars_err *err);

/* The generation in force, as blocklist_status and the metrics report it
 * (all zero when no list is loaded). memory_bytes is the kernel's own
 * accounting of the generation's map (memlock in its fdinfo). */
struct karsd_blocklist_info {
	bool loaded;
	uint32_t entries, generation, buckets, max_name_len;
	uint64_t memory_bytes, loaded_ns;
};
int karsd_blocklist_info(struct karsd *d, struct karsd_blocklist_info *out, struct kars_err *err);

/* Stores (or, both 0, deletes) a sandbox's DNS tunnelling caps. */
int karsd_dns_caps_store(struct karsd *d, uint32_t sandbox_id, uint32_t max_name_len,
			 uint32_t max_qps, struct kars_err *err);
int kars_dns_caps_store_fd(int caps_fd, uint32_t sandbox_id, uint32_t max_name_len,
			   uint32_t max_qps, struct kars_err *err);

/* Adds "qname" and "qtype" to an event's JSON when the event is a DNS
 * verdict carrying a name (size is the ring buffer record's). */
void karsd_blocklist_event_json(json_t *o, const void *data, size_t size);

#endif
