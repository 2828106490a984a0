/* events.c - the ring buffer of data-plane events, read into JSON lines.
 *
 * The BPF side counts every event it could not reserve room for; this side
 * counts every line a slow subscriber could not take. Both show in metrics.
 */
#include "events.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <linux/netlink.h>
#include <sys/socket.h>

#include "blocklist.h"
#include "fqdn.h"
#include "karsd.h"
#include "log.h"
#include "policy.h"
#include "sandbox.skel.h"

/* The socket family of an event, by name. Socket hooks only see IPv4 and
 * IPv6; the LSM programs report any family, and none (0) for file_open. */
static const char *family_name(uint8_t family)
{
	switch (family) {
	case 0:
		return "none";
	case AF_UNIX:
		return "unix";
	case AF_INET:
		return "ipv4";
	case AF_INET6:
		return "ipv6";
	case AF_NETLINK:
		return "netlink";
	case AF_PACKET:
		return "packet";
	case AF_VSOCK:
		return "vsock";
	case AF_ALG:
		return "alg";
	default:
		return "other";
	}
}

static const char *netlink_name(uint8_t proto)
{
	switch (proto) {
	case NETLINK_ROUTE:
		return "route";
	case NETLINK_SOCK_DIAG:
		return "sock_diag";
	case NETLINK_AUDIT:
		return "audit";
	case NETLINK_GENERIC:
		return "generic";
	case NETLINK_KOBJECT_UEVENT:
		return "uevent";
	default:
		return "other";
	}
}

static bool is_lsm_hook(uint8_t hook)
{
	return hook >= KARS_HOOK_LSM_SOCKET_CREATE && hook <= KARS_HOOK_LSM_FILE_LINK;
}

json_t *kars_event_json(const struct kars_event *e, const struct kars_sandboxes *s)
{
	const struct kars_sandbox *sb = s ? kars_sandboxes_by_id(s, e->sandbox_id) : NULL;
	struct kars_addr orig, repl;
	char orig_s[64], repl_s[64], comm[sizeof(e->comm) + 1];

	memcpy(orig.bytes, e->orig_addr, 16);
	memcpy(repl.bytes, e->new_addr, 16);
	memcpy(comm, e->comm, sizeof(e->comm));
	comm[sizeof(e->comm)] = '\0';
	if (is_lsm_hook(e->hook))
		/* No destination: the family (and its protocol) is the point. */
		return json_pack(
		    "{s:I,s:s,s:I,s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:s}", "ts",
		    (json_int_t)e->ts_ns, "sandbox", sb ? sb->meta.name : "", "sandboxId",
		    (json_int_t)e->sandbox_id, "generation", (json_int_t)e->gen, "role",
		    kars_role_name(e->role), "hook", kars_hook_name(e->hook), "verdict",
		    kars_verdict_name(e->verdict), "reason", kars_reason_name(e->reason), "family",
		    family_name(e->family), "protocol",
		    e->family == AF_NETLINK			    ? netlink_name(e->protocol)
		    : e->family == AF_INET || e->family == AF_INET6 ? kars_proto_name(e->protocol)
								    : "-",
		    "cgroupId", (json_int_t)e->cgroup_id, "pid", (json_int_t)e->pid, "tgid",
		    (json_int_t)e->tgid, "uid", (json_int_t)e->uid, "comm", comm);
	return json_pack(
	    "{s:I,s:s,s:I,s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:i,s:s,s:i,s:I,s:I,s:I,"
	    "s:I,s:s,s:I}",
	    "ts", (json_int_t)e->ts_ns, "sandbox", sb ? sb->meta.name : "", "sandboxId",
	    (json_int_t)e->sandbox_id, "generation", (json_int_t)e->gen, "role",
	    kars_role_name(e->role), "hook", kars_hook_name(e->hook), "verdict",
	    kars_verdict_name(e->verdict), "reason", kars_reason_name(e->reason), "family",
	    e->family == AF_INET6 ? "ipv6" : "ipv4", "protocol", kars_proto_name(e->protocol),
	    "dst", kars_addr_str(&orig, orig_s, sizeof(orig_s)), "dport", e->orig_port, "newDst",
	    kars_addr_str(&repl, repl_s, sizeof(repl_s)), "newDport", e->new_port, "cgroupId",
	    (json_int_t)e->cgroup_id, "pid", (json_int_t)e->pid, "tgid", (json_int_t)e->tgid, "uid",
	    (json_int_t)e->uid, "comm", comm, "cookie", (json_int_t)e->cookie);
}

static int on_event(void *ctx, void *data, size_t size)
{
	struct karsd *d = ctx;
	json_t *o;
	char *line;

	if (size < sizeof(struct kars_event))
		return 0;
	d->events_total++;
	o = kars_event_json(data, &d->sandboxes);
	if (o) {
		karsd_blocklist_event_json(o, data, size); /* a DNS verdict's name */
		kars_fqdn_event_json(o, data, size);	   /* the name of an FQDN entry */
	}
	line = o ? json_dumps(o, JSON_COMPACT) : NULL;
	if (line) {
		size_t len = strlen(line);

		line[len] = '\n'; /* json_dumps leaves room: replace the NUL */
		karsd_control_broadcast(d, line, len + 1);
	}
	free(line);
	json_decref(o);
	return 0;
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct karsd *d = arg;

	ring_buffer__consume(d->ringbuf);
}

int karsd_events_start(struct karsd *d, struct kars_err *err)
{
	int map_fd = bpf_map__fd(d->loader.skel->maps.kars_events);

	d->ringbuf = ring_buffer__new(map_fd, on_event, d, NULL);
	if (!d->ringbuf)
		return kars_err_set(err, errno, "ring buffer: %s", strerror(errno));
	d->ringbuf_ev = event_new(d->base, ring_buffer__epoll_fd(d->ringbuf), EV_READ | EV_PERSIST,
				  on_readable, d);
	if (!d->ringbuf_ev || event_add(d->ringbuf_ev, NULL))
		return kars_err_set(err, ENOMEM, "cannot watch the ring buffer");
	return 0;
}

void karsd_events_stop(struct karsd *d)
{
	if (d->ringbuf_ev)
		event_free(d->ringbuf_ev);
	ring_buffer__free(d->ringbuf);
	d->ringbuf_ev = NULL;
	d->ringbuf = NULL;
}
