/* control.c - karsd's control API: JSON lines on a unix socket.
 *
 * Every connection is authenticated by SO_PEERCRED when it is accepted, never
 * by where it comes from: root or the --group may do everything; a sandbox's
 * router UID may ask for original destinations of its own sandbox; anyone
 * else (an agent) is refused and disconnected. docs/karsd-api.md.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "blocklist.h"
#include "events.h"
#include "fqdn.h"
#include "json.h"
#include "karsd.h"
#include "log.h"
#include "policy.h"

#define MAX_REQUEST_BYTES      (32u << 20) /* 200k rules fit comfortably */
#define MAX_SUBSCRIBER_BACKLOG (4u << 20)  /* beyond this a subscriber loses events */

struct karsd_client {
	struct karsd *d;
	struct bufferevent *bev;
	struct karsd_client *next;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	bool admin;
	bool subscribed;
};

static void client_free(struct karsd_client *c)
{
	struct karsd_client **pp = &c->d->clients;

	while (*pp && *pp != c)
		pp = &(*pp)->next;
	if (*pp)
		*pp = c->next;
	bufferevent_free(c->bev);
	free(c);
}

static void reply(struct karsd_client *c, json_t *resp)
{
	char *s = json_dumps(resp, JSON_COMPACT);

	if (s) {
		bufferevent_write(c->bev, s, strlen(s));
		bufferevent_write(c->bev, "\n", 1);
	}
	free(s);
	json_decref(resp);
}

static json_t *error_json(const struct kars_err *err)
{
	return json_pack("{s:b,s:s}", "ok", 0, "error", err->msg[0] ? err->msg : "failed");
}

static json_t *op_status(struct karsd *d)
{
	json_t *o = kars_probe_json(&d->probe);

	json_object_set_new(o, "ok", json_true());
	json_object_set_new(o, "pinDir", json_string(d->loader.pin_dir));
	json_object_set_new(
	    o, "socketCgroup",
	    json_string(d->loader.socket_cgroup_by_btf ? "socket" : "creation-stamp"));
	json_object_set_new(o, "sandboxes", json_integer((json_int_t)d->sandboxes.n));
	json_object_set_new(o, "lsm", kars_lsm_json(&d->lsm));
	json_object_set_new(o, "fqdn", kars_fqdn_status(&d->loader));
	kars_lsm_gaps(&d->lsm, &d->probe, json_object_get(o, "openGaps"));
	return o;
}

static json_t *dispatch(struct karsd_client *c, const json_t *req, struct kars_err *err)
{
	struct karsd *d = c->d;
	const char *op = NULL, *name = NULL;
	json_t *resp = NULL, *data = NULL;
	int ret;

	if (!json_is_object(req)) {
		kars_err_set(err, EINVAL, "request: expected a JSON object");
		return NULL;
	}
	if (kars_json_get_string(req, "", "op", true, &op, err))
		return NULL;
	if (strcmp(op, "orig_dst") == 0) {
		static const char *const keys[] = {"op", "cookie", NULL};
		uint64_t cookie;

		if (kars_json_only_keys(req, "", keys, err) ||
		    kars_json_get_uint(req, "", "cookie", true, 1, UINT64_MAX >> 1, &cookie, err))
			return NULL;
		if (kars_sandboxes_orig_dst(&d->sandboxes, cookie, c->uid, c->admin, &resp, err))
			return NULL;
		return resp;
	}
	if (!c->admin) {
		kars_err_set(err, EACCES, "permission denied: op %s needs root or the karsd group",
			     op);
		return NULL;
	}
	if (strcmp(op, "apply") == 0) {
		struct kars_policy p;

		if (kars_policy_parse(req, &p, err))
			return NULL;
		ret = kars_sandboxes_apply(&d->sandboxes, &p, &resp, err);
		kars_policy_free(&p);
		return ret ? NULL : resp;
	}
	if (strncmp(op, "blocklist_", 10) == 0)
		return karsd_blocklist_op(d, op, req, c->uid, c->gid, err);
	if (strcmp(op, "remove") == 0 || strcmp(op, "learned") == 0 ||
	    strcmp(op, "fqdn_entries") == 0) {
		static const char *const keys[] = {"op", "sandbox", NULL};

		if (kars_json_only_keys(req, "", keys, err) ||
		    kars_json_get_string(req, "", "sandbox", true, &name, err))
			return NULL;
		if (op[0] == 'r')
			return kars_sandboxes_remove(&d->sandboxes, name, err)
				   ? NULL
				   : json_pack("{s:b,s:s}", "ok", 1, "removed", name);
		if (op[0] == 'f') {
			if (kars_sandboxes_fqdn(&d->sandboxes, name, &data, err))
				return NULL;
			return json_pack("{s:b,s:s,s:o}", "ok", 1, "sandbox", name, "entries",
					 data);
		}
		if (kars_sandboxes_learned(&d->sandboxes, name, &data, err))
			return NULL;
		return json_pack("{s:b,s:s,s:o}", "ok", 1, "sandbox", name, "learned", data);
	}
	{
		static const char *const keys[] = {"op", NULL};

		if (kars_json_only_keys(req, "", keys, err))
			return NULL;
	}
	if (strcmp(op, "list") == 0)
		return json_pack("{s:b,s:o}", "ok", 1, "sandboxes",
				 kars_sandboxes_list(&d->sandboxes));
	if (strcmp(op, "status") == 0)
		return op_status(d);
	if (strcmp(op, "metrics") == 0) {
		char *text = karsd_metrics_text(d);

		resp = json_pack("{s:b,s:s}", "ok", 1, "text", text ? text : "");
		free(text);
		return resp;
	}
	if (strcmp(op, "subscribe") == 0) {
		c->subscribed = true;
		return json_pack("{s:b}", "ok", 1);
	}
	kars_err_set(
	    err, EINVAL,
	    "op: Unsupported value \"%s\": supported values: \"apply\", \"remove\", "
	    "\"list\", \"learned\", \"fqdn_entries\", \"orig_dst\", \"status\", \"metrics\", "
	    "\"subscribe\", "
	    "\"blocklist_load\", \"blocklist_check\", \"blocklist_status\"",
	    op);
	return NULL;
}

static void close_after_reply(struct karsd_client *c);

static void on_read(struct bufferevent *bev, void *arg)
{
	struct karsd_client *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len;
	char *line;

	while ((line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF))) {
		struct kars_err err = {};
		json_t *req = kars_json_parse(line, len, &err);
		json_t *resp = req ? dispatch(c, req, &err) : NULL;

		json_decref(req);
		free(line);
		if (!resp) {
			log_debug("control: uid %u pid %d: %s", c->uid, c->pid, err.msg);
			resp = error_json(&err);
		}
		reply(c, resp);
	}
	if (evbuffer_get_length(in) > MAX_REQUEST_BYTES) {
		struct kars_err err = {};

		kars_err_set(&err, E2BIG, "request: longer than %u bytes without a newline",
			     MAX_REQUEST_BYTES);
		reply(c, error_json(&err));
		close_after_reply(c);
	}
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		client_free(arg);
}

/* After a refusal the connection closes once the reply is out. */
static void on_reply_written(struct bufferevent *bev, void *arg)
{
	client_free(arg);
}

static void close_after_reply(struct karsd_client *c)
{
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_setcb(c->bev, NULL, on_reply_written, on_event, c);
	bufferevent_enable(c->bev, EV_WRITE);
}

static bool peer_in_group(int fd, gid_t gid, gid_t primary)
{
	gid_t groups[256];
	socklen_t len = sizeof(groups);

	if (primary == gid)
		return true;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len))
		return false;
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == gid)
			return true;
	return false;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
		      void *arg)
{
	struct karsd *d = arg;
	struct karsd_client *c = calloc(1, sizeof(*c));
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (!c) {
		close(fd);
		return;
	}
	c->d = d;
	c->bev = bufferevent_socket_new(d->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len)) {
		if (c->bev)
			bufferevent_free(c->bev);
		else
			close(fd);
		free(c);
		return;
	}
	c->uid = cred.uid;
	c->gid = cred.gid;
	c->pid = cred.pid;
	c->admin =
	    cred.uid == 0 || (d->have_admin_gid && peer_in_group(fd, d->admin_gid, cred.gid));
	c->next = d->clients;
	d->clients = c;
	if (!c->admin && !kars_sandboxes_is_router_uid(&d->sandboxes, cred.uid)) {
		struct kars_err err = {};

		log_warn("control: refused uid %u pid %d (not root, not in the karsd group, not a "
			 "sandbox router)",
			 cred.uid, cred.pid);
		kars_err_set(&err, EACCES, "permission denied: uid %u may not use karsd", cred.uid);
		reply(c, error_json(&err));
		close_after_reply(c);
		return;
	}
	bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

void karsd_control_broadcast(struct karsd *d, const char *line, size_t len)
{
	for (struct karsd_client *c = d->clients; c; c = c->next) {
		if (!c->subscribed)
			continue;
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) > MAX_SUBSCRIBER_BACKLOG) {
			d->subscriber_drops++;
			continue;
		}
		bufferevent_write(c->bev, line, len);
	}
}

int karsd_control_start(struct karsd *d, struct kars_err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char dir[sizeof(sa.sun_path)];
	char *slash;
	int fd;

	if (strlen(d->socket_path) >= sizeof(sa.sun_path))
		return kars_err_set(err, ENAMETOOLONG, "--socket: path too long");
	strcpy(sa.sun_path, d->socket_path);
	strcpy(dir, d->socket_path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) && errno != EEXIST)
			return kars_err_set(err, errno, "mkdir %s: %s", dir, strerror(errno));
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return kars_err_set(err, errno, "socket: %s", strerror(errno));
	/* A socket file left by a killed karsd: nobody listens on it. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		close(fd);
		return kars_err_set(err, EADDRINUSE, "another karsd is serving %s", d->socket_path);
	}
	unlink(d->socket_path);
	/* Anyone may connect: who may do what is decided per connection by
	 * SO_PEERCRED (sandbox routers, which are in no group, need orig_dst). */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || chmod(d->socket_path, 0666)) {
		int e = errno;

		close(fd);
		return kars_err_set(err, e, "binding %s: %s", d->socket_path, strerror(e));
	}
	d->listener = evconnlistener_new(d->base, on_accept, d,
					 LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 64, fd);
	if (!d->listener) {
		close(fd);
		return kars_err_set(err, errno, "listening on %s: %s", d->socket_path,
				    strerror(errno));
	}
	return 0;
}

void karsd_control_stop(struct karsd *d)
{
	while (d->clients)
		client_free(d->clients);
	if (d->listener)
		evconnlistener_free(d->listener);
	d->listener = NULL;
	unlink(d->socket_path);
}
