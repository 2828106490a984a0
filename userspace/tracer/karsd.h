/* karsd.h - the state of one karsd process, shared by its parts.
 *
 * karsd (the per-node data-plane agent): probe the kernel, load and pin the
 * programs, apply sandbox policies to maps, stream events, serve metrics.
 * Its parts: loader (programs, links), sandboxes (policy in maps), control
 * (the unix socket API), events (ringbuf to subscribers), metrics.
 */
#ifndef KARSD_H
#define KARSD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "loader.h"
#include "lsm.h"
#include "probe.h"
#include "sandboxes.h"

struct event_base;
struct event;
struct evconnlistener;
struct evhttp;
struct ring_buffer;
struct karsd_client;

struct karsd {
	struct event_base *base;
	struct kars_probe probe;
	struct kars_loader loader;
	struct kars_lsm lsm;
	struct kars_sandboxes sandboxes;

	const char *socket_path;
	bool have_admin_gid;
	gid_t admin_gid;
	struct evconnlistener *listener;
	struct karsd_client *clients;

	struct ring_buffer *ringbuf;
	struct event *ringbuf_ev;
	uint64_t events_total;
	uint64_t subscriber_drops;

	struct evhttp *http;
};

int karsd_control_start(struct karsd *d, struct kars_err *err);
void karsd_control_stop(struct karsd *d);
/* Sends one event line to every subscriber (dropping, counted, for the slow). */
void karsd_control_broadcast(struct karsd *d, const char *line, size_t len);

int karsd_events_start(struct karsd *d, struct kars_err *err);
void karsd_events_stop(struct karsd *d);

/* The sum over CPUs of a per-CPU map's __u64 value at key. */
uint64_t karsd_percpu_sum(int fd, const void *key);

/* Prometheus text exposition; caller frees. */
char *karsd_metrics_text(struct karsd *d);
int karsd_metrics_http_start(struct karsd *d, const char *addr_port, struct kars_err *err);

#endif
