/* egress_learned.c - see egress_learned.h. A linear list: learnMax is small
 * (1024 by default) and a lookup costs less than the connection it records. */
#include "egress_learned.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void kars_egress_learned_init(struct kars_egress_learned *l, size_t max)
{
	memset(l, 0, sizeof(*l));
	l->max = max;
}

void kars_egress_learned_record(struct kars_egress_learned *l, const char *host, uint16_t port,
				time_t now)
{
	struct kars_egress_learned_entry *e;

	for (size_t i = 0; i < l->n; i++) {
		e = &l->entries[i];
		if (e->port == port && strcmp(e->host, host) == 0) {
			e->count++;
			e->last = now;
			return;
		}
	}
	if (l->n == l->max) {
		l->dropped++;
		return;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;

		e = realloc(l->entries, cap * sizeof(*e));
		if (!e) {
			l->dropped++;
			return;
		}
		l->entries = e;
		l->cap = cap;
	}
	e = &l->entries[l->n++];
	snprintf(e->host, sizeof(e->host), "%s", host);
	e->port = port;
	e->count = 1;
	e->first = e->last = now;
}

void kars_egress_learned_remove(struct kars_egress_learned *l, const char *host, uint16_t port)
{
	for (size_t i = 0; i < l->n; i++) {
		if (l->entries[i].port == port && strcmp(l->entries[i].host, host) == 0) {
			l->entries[i] = l->entries[--l->n];
			return;
		}
	}
}

static json_t *rfc3339(time_t t)
{
	char buf[32];
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(buf);
}

json_t *kars_egress_learned_json(const struct kars_egress_learned *l)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < l->n; i++) {
		const struct kars_egress_learned_entry *e = &l->entries[i];

		json_array_append_new(arr,
				      json_pack("{s:s,s:i,s:I,s:o,s:o}", "host", e->host, "port",
						e->port, "count", (json_int_t)e->count, "firstSeen",
						rfc3339(e->first), "lastSeen", rfc3339(e->last)));
	}
	return arr;
}

void kars_egress_learned_free(struct kars_egress_learned *l)
{
	free(l->entries);
	memset(l, 0, sizeof(*l));
}
