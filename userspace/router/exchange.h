/* exchange.h - one agent request and its upstream attempts.
 *
 * proxy.c admits a request (its gates) and hands it here with the models to
 * try in order. An attempt that fails before the agent has received a byte
 * (429, 5xx, a transport error) moves on to the next model; once a byte has
 * been relayed the agent sees whatever happens next.
 *
 * Answers are relayed in one of two ways:
 *   - whole: a non-streamed answer is read to the end (at most 64 MiB), its
 *     usage and content-filter annotations are read, and it is sent with a
 *     Content-Length, or replaced by a policy error;
 *   - by event: a text/event-stream answer is cut into SSE events as they
 *     arrive; each whole event is counted (sse_usage), checked against the
 *     content floor, and forwarded, so the floor can stop a stream between
 *     events and the usage chunk the router asked for can be withheld from
 *     an agent that did not.
 * At the end the tokens are charged to the sandbox's budget and the decision
 * is written to the audit chain.
 */
#ifndef KARS_ROUTER_EXCHANGE_H
#define KARS_ROUTER_EXCHANGE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "router.h"

struct kars_hreq;

struct kars_exchange_request {
	enum kars_route route;
	const char *item; /* GET /v1/models/{item}, else NULL */
	json_t *body;	  /* POST body (the exchange takes it), else NULL */
	char *raw;	  /* its bytes as the agent sent them (taken too) */
	size_t raw_len;
	bool body_changed;		      /* a gate edited body: it is sent re-serialised */
	const uint8_t *payload_sha256;	      /* of the agent's body as sent (32 bytes) */
	struct kars_inference_policy *policy; /* the snapshot (the exchange refs it) */
	const char *models[1 + KARS_POLICY_MAX_FALLBACKS];
	size_t n_models;     /* 0: send the body as it is (GET /v1/models) */
	bool stream;	     /* the agent asked for a stream */
	bool withhold_usage; /* drop the usage-only chunk the agent did not ask for */
};

/* Starts the first attempt; on failure the agent has been answered. */
void kars_exchange_start(struct kars_router *r, struct kars_hreq *req,
			 const struct kars_exchange_request *xr);

#endif
