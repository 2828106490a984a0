/* upstream.h - libcurl transfers driven by the router's libevent loop: the
 * token-service calls of credentials.c (the model upstream has its own
 * client, upstream_http.h).
 *
 * The classic multi-socket pattern: libcurl says which sockets to watch and
 * when to wake it; libevent watches them. Every transfer runs on the one
 * event loop, so the router never blocks on an upstream.
 */
#ifndef KARS_ROUTER_UPSTREAM_H
#define KARS_ROUTER_UPSTREAM_H

#include <curl/curl.h>

struct event_base;
struct kars_upstream;

/* Called once per transfer when it ends (result CURLE_OK or an error). */
typedef void (*kars_upstream_done_fn)(CURL *easy, CURLcode result, void *arg);

struct kars_upstream *kars_upstream_new(struct event_base *base);
void kars_upstream_free(struct kars_upstream *u);
/* Starts easy (configured by the caller); done runs when it ends. */
int kars_upstream_start(struct kars_upstream *u, CURL *easy, kars_upstream_done_fn done, void *arg);
/* Stops a running transfer; done is not called. */
void kars_upstream_cancel(struct kars_upstream *u, CURL *easy);

#endif
