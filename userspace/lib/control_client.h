/* control_client.h - talks to karsd's control socket.
 *
 * The protocol is JSON lines over a unix stream socket: one request object per
 * line, one response object per line ({"ok":true,...} or {"ok":false,
 * "error":"..."}); "subscribe" turns the connection into a stream of event
 * lines. docs/karsd-api.md has every operation.
 */
#ifndef KARS_CONTROL_CLIENT_H
#define KARS_CONTROL_CLIENT_H

#include <jansson.h>

#include "err.h"

#define KARSD_DEFAULT_SOCKET "/run/kars/karsd.sock"

/* Connects; returns an fd or -errno. */
int kars_control_connect(const char *path, struct kars_err *err);
/* Sends one request line. */
int kars_control_send(int fd, const json_t *req, struct kars_err *err);
/* Reads one line and parses it; *out is a new reference. timeout_ms < 0 waits. */
int kars_control_recv(int fd, int timeout_ms, json_t **out, struct kars_err *err);
/* connect + send + recv + close. Returns 0 only for {"ok":true}; for
 * {"ok":false} returns -EPROTO with the server's error in err (and *resp set). */
int kars_control_call(const char *path, const json_t *req, json_t **resp, struct kars_err *err);
/* connect + {"op":"subscribe"} + its {"ok":true}: an fd to read events from
 * with kars_control_recv, or -errno. */
int kars_control_subscribe(const char *path, struct kars_err *err);

#endif
