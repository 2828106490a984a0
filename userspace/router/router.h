/* router.h - the state of one kars-router process.
 *
 * kars-router is the sandbox's only way to a model: the agent calls it at
 * 127.0.0.1:8443 as it would call the OpenAI API, and it forwards to the
 * configured upstream with the sandbox's credential, which the agent never
 * sees. This first version forwards; policy, budgets and the audit chain
 * build on it (issue "kars-router v1").
 */
#ifndef KARS_ROUTER_H
#define KARS_ROUTER_H

#include <stdint.h>

#include "config.h"

struct event_base;
struct evhttp;
struct kars_upstream;

enum kars_route {
	KARS_ROUTE_CHAT = 0,
	KARS_ROUTE_RESPONSES,
	KARS_ROUTE_COMPLETIONS,
	KARS_ROUTE_EMBEDDINGS,
	KARS_ROUTE_MODELS,
	KARS_ROUTE__COUNT,
};

struct kars_router {
	struct event_base *base;
	struct evhttp *http;
	struct kars_upstream *upstream;
	struct kars_router_config cfg;
	char *credential_header; /* "Authorization: Bearer ..." or "api-key: ..." */
	/* metrics: requests by route and status class (1xx..5xx), upstream errors */
	uint64_t requests[KARS_ROUTE__COUNT][6];
	uint64_t upstream_errors;
	uint64_t rejected;
};

/* Registers the HTTP handlers on r->http. */
void kars_router_routes_init(struct kars_router *r);

#endif
