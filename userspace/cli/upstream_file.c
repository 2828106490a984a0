/* upstream_file.c - upstream.json follows the installed key
 * (upstream_file.h). */
#include "upstream_file.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int kars_upstream_follow_key(const struct kars_sbref *ref, const char *key_file,
			     struct kars_err *err)
{
	char path[PATH_MAX + 32], tmp[PATH_MAX + 48];
	json_error_t jerr;
	const char *was;
	json_t *up;
	int fd = -1, ret = 0;

	snprintf(path, sizeof(path), "%s/upstream.json", ref->dir);
	snprintf(tmp, sizeof(tmp), "%s/.upstream.json.%ld", ref->dir, (long)getpid());
	if (access(path, F_OK))
		return errno == ENOENT ? 1
				       : kars_err_set(err, errno, "%s: %s", path, strerror(errno));
	up = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!up) {
		ret = kars_err_set(err, EINVAL, "%s: line %d: %s", path, jerr.line, jerr.text);
		goto cleanup;
	}
	if (!json_is_object(up)) {
		ret = kars_err_set(err, EINVAL, "%s: not a JSON object", path);
		goto cleanup;
	}
	was = json_string_value(json_object_get(up, "apiKeyFile"));
	if (was && strcmp(was, key_file) == 0)
		goto cleanup;
	json_object_set_new(up, "apiKeyFile", json_string(key_file));
	errno = 0;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || json_dumpfd(up, fd, JSON_INDENT(2)) || write(fd, "\n", 1) != 1 || fsync(fd) ||
	    rename(tmp, path)) {
		ret = kars_err_set(err, errno ? errno : EIO, "%s: %s", path,
				   strerror(errno ? errno : EIO));
		unlink(tmp);
	}
cleanup:
	if (fd >= 0)
		close(fd);
	json_decref(up);
	return ret;
}
