/* control_client.c - see control_client.h. */
#include "control_client.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "json.h"

#define MAX_LINE (16u << 20)

int kars_control_connect(const char *path, struct kars_err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return kars_err_set(err, ENAMETOOLONG, "socket path too long: %s", path);
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return kars_err_set(err, errno, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int e = errno;

		close(fd);
		return kars_err_set(err, e, "connect %s: %s", path, strerror(e));
	}
	return fd;
}

int kars_control_send(int fd, const json_t *req, struct kars_err *err)
{
	char *s = json_dumps(req, JSON_COMPACT);
	size_t len, off = 0;

	if (!s)
		return kars_err_set(err, ENOMEM, "cannot encode request");
	len = strlen(s);
	s[len++] = '\n'; /* json_dumps leaves room: replace the NUL */
	while (off < len) {
		ssize_t n = send(fd, s + off, len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			free(s);
			return kars_err_set(err, e, "send: %s", strerror(e));
		}
		off += (size_t)n;
	}
	free(s);
	return 0;
}

int kars_control_recv(int fd, int timeout_ms, json_t **out, struct kars_err *err)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	int ret = 0;

	*out = NULL;
	if (!buf)
		return kars_err_set(err, ENOMEM, "out of memory");
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (len == cap) {
			char *bigger = cap >= MAX_LINE ? NULL : realloc(buf, cap * 2);

			if (!bigger) {
				ret = kars_err_set(err, E2BIG, "response line longer than %u bytes",
						   MAX_LINE);
				break;
			}
			buf = bigger;
			cap *= 2;
		}
		n = poll(&pfd, 1, timeout_ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0) {
			ret = kars_err_set(err, ETIMEDOUT, "no response within %d ms", timeout_ms);
			break;
		}
		/* One byte at a time: a stream may carry more lines after this one,
		 * and they belong to the next call. Responses are small. */
		n = recv(fd, buf + len, 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret =
			    kars_err_set(err, n ? errno : ECONNRESET, "connection closed by karsd");
			break;
		}
		if (buf[len] == '\n') {
			*out = kars_json_parse(buf, len, err);
			ret = *out ? 0 : -EINVAL;
			break;
		}
		len++;
	}
	free(buf);
	return ret;
}

int kars_control_call(const char *path, const json_t *req, json_t **resp, struct kars_err *err)
{
	json_t *r = NULL;
	int fd, ret;

	*resp = NULL;
	fd = kars_control_connect(path, err);
	if (fd < 0)
		return fd;
	ret = kars_control_send(fd, req, err);
	/* karsd refuses an unauthorised peer as soon as it connects, with one
	 * line, and closes: the send may then fail (EPIPE) with that line
	 * waiting to be read. The line says more than EPIPE does. */
	if (!ret || ret == -EPIPE || ret == -ECONNRESET) {
		struct kars_err recv_err = {};

		if (kars_control_recv(fd, 30000, &r, &recv_err) == 0) {
			kars_err_clear(err);
			ret = 0;
		} else if (!ret) {
			ret = kars_err_set(err, recv_err.code, "%s", recv_err.msg);
		}
	}
	close(fd);
	if (ret)
		return ret;
	*resp = r;
	if (!json_is_true(json_object_get(r, "ok"))) {
		const char *msg = json_string_value(json_object_get(r, "error"));

		return kars_err_set(err, EPROTO, "karsd: %s", msg ? msg : "request failed");
	}
	return 0;
}

int kars_control_subscribe(const char *path, struct kars_err *err)
{
	json_t *req = json_pack("{s:s}", "op", "subscribe"), *line = NULL;
	int fd = kars_control_connect(path, err), ret;

	if (fd < 0) {
		json_decref(req);
		return fd;
	}
	ret = kars_control_send(fd, req, err);
	json_decref(req);
	if (!ret)
		ret = kars_control_recv(fd, 30000, &line, err);
	if (!ret && !json_is_true(json_object_get(line, "ok"))) {
		const char *why = json_string_value(json_object_get(line, "error"));

		ret = kars_err_set(err, EPROTO, "karsd: %s", why ? why : "-");
	}
	json_decref(line);
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}
