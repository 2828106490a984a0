/* deliver.c - see deliver.h. */
#include "deliver.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int kars_mkdir_p(const char *path)
{
	char buf[PATH_MAX];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return mkdir(buf, 0755) && errno != EEXIST ? -errno : 0;
}

int kars_read_file(const char *path, size_t max, char **out, size_t *len)
{
	struct stat st;
	size_t got = 0;
	ssize_t n;
	int fd, ret = 0;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		ret = -errno;
		goto out;
	}
	if ((size_t)st.st_size > max) {
		ret = -EFBIG;
		goto out;
	}
	*out = malloc((size_t)st.st_size + 1);
	if (!*out) {
		ret = -ENOMEM;
		goto out;
	}
	while (got < (size_t)st.st_size) {
		n = read(fd, *out + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	(*out)[got] = '\0';
	*len = got;
out:
	if (ret) {
		free(*out);
		*out = NULL;
	}
	close(fd);
	return ret;
}

int kars_deliver_file(const char *path, const void *bytes, size_t len, struct kars_err *err)
{
	char dir[PATH_MAX], tmp[PATH_MAX + 8], *have = NULL, *slash;
	size_t have_len = 0;
	int fd, ret;

	if (kars_read_file(path, len, &have, &have_len) == 0 && have_len == len &&
	    !memcmp(have, bytes, len)) {
		free(have);
		return 0;
	}
	free(have);
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		ret = kars_mkdir_p(dir);
		if (ret)
			return kars_err_set(err, -ret, "deliver: mkdir %s: %s", dir,
					    strerror(-ret));
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	errno = 0;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ret = fd < 0 || write(fd, bytes, len) != (ssize_t)len || fsync(fd) ? -1 : 0;
	if (fd >= 0 && close(fd))
		ret = -1;
	if (!ret && rename(tmp, path))
		ret = -1;
	if (ret) {
		ret = kars_err_set(err, errno ? errno : EIO, "deliver: %s: %s", path,
				   strerror(errno ? errno : EIO));
		unlink(tmp);
		return ret;
	}
	/* the rename is durable once the directory is */
	fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	return 1;
}
