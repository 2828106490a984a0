/* key_install.c - an API key into the router's directory, atomically
 * (key_install.h). */
#include "key_install.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_MAX (16 << 10)

/* The key, without its trailing newline or spaces, into buf. */
static int read_key(const char *src, char *buf, size_t *len, struct kars_err *err)
{
	int fd = open(src, O_RDONLY | O_CLOEXEC | O_NOCTTY), ret = 0;
	struct stat st;
	ssize_t n;

	if (fd < 0)
		return kars_err_set(err, errno, "--api-key-file %s: %s", src, strerror(errno));
	if (fstat(fd, &st)) {
		ret = kars_err_set(err, errno, "--api-key-file %s: %s", src, strerror(errno));
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = kars_err_set(err, EINVAL, "--api-key-file %s: not a regular file", src);
		goto cleanup;
	}
	if (st.st_mode & 077) {
		ret = kars_err_set(err, EPERM,
				   "--api-key-file %s: mode %04o lets group or others read the "
				   "key; it may have leaked: rotate it, keep the new one 0600 "
				   "(chmod 600 %s) and run this again",
				   src, (unsigned)(st.st_mode & 07777), src);
		goto cleanup;
	}
	n = read(fd, buf, KEY_MAX + 1);
	if (n < 0) {
		ret = kars_err_set(err, errno, "--api-key-file %s: %s", src, strerror(errno));
		goto cleanup;
	}
	if (n > KEY_MAX) {
		ret = kars_err_set(err, EFBIG, "--api-key-file %s: larger than 16 KiB", src);
		goto cleanup;
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		n--;
	if (n == 0) {
		ret = kars_err_set(err, EINVAL, "--api-key-file %s: empty", src);
		goto cleanup;
	}
	for (ssize_t i = 0; i < n; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f) {
			/* the byte's offset only, never the key around it */
			ret = kars_err_set(err, EINVAL,
					   "--api-key-file %s: expected one line; a control byte "
					   "(0x%02x) at offset %zd",
					   src, (unsigned char)buf[i], i);
			goto cleanup;
		}
	*len = (size_t)n;
cleanup:
	close(fd);
	return ret;
}

static int check_target(const struct kars_sbref *ref, const struct kars_sbrun *run, int *dirfd,
			const char **base, struct kars_err *err)
{
	char copy[PATH_MAX];
	struct stat st;

	snprintf(copy, sizeof(copy), "%s", run->api_key_file);
	if (strcmp(dirname(copy), ref->router_dir))
		return kars_err_set(err, EINVAL,
				    "sandbox %s: the router's key file %s is not in its directory "
				    "%s; refusing to write it there",
				    ref->owner, run->api_key_file, ref->router_dir);
	*base = strrchr(run->api_key_file, '/') + 1;
	*dirfd = open(ref->router_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (*dirfd < 0)
		return kars_err_set(err, errno, "sandbox %s: router directory %s: %s", ref->owner,
				    ref->router_dir, strerror(errno));
	if (fstat(*dirfd, &st) || st.st_uid != run->router_uid || (st.st_mode & 077)) {
		close(*dirfd);
		*dirfd = -1;
		return kars_err_set(err, EPERM,
				    "sandbox %s: router directory %s is not the router's (uid %u, "
				    "mode 0700 expected)",
				    ref->owner, ref->router_dir, (unsigned)run->router_uid);
	}
	return 0;
}

int kars_key_install(const char *src, const struct kars_sbref *ref, const struct kars_sbrun *run,
		     struct kars_err *err)
{
	char *buf = malloc(KEY_MAX + 2), tmp[64] = "";
	int dirfd = -1, fd = -1, ret;
	const char *base = NULL;
	unsigned char rnd[8];
	size_t len = 0;

	if (!buf)
		return kars_err_set(err, ENOMEM, "out of memory");
	if ((ret = read_key(src, buf, &len, err)) ||
	    (ret = check_target(ref, run, &dirfd, &base, err)))
		goto cleanup;
	buf[len++] = '\n';
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) {
		ret = kars_err_set(err, errno, "getrandom: %s", strerror(errno));
		goto cleanup;
	}
	snprintf(tmp, sizeof(tmp), ".api-key.%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
		 rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = kars_err_set(err, errno, "%s/%s: %s", ref->router_dir, tmp, strerror(errno));
		tmp[0] = '\0'; /* not ours: leave it */
		goto cleanup;
	}
	if (fchown(fd, run->router_uid, run->router_uid) || fchmod(fd, 0600) ||
	    write(fd, buf, len) != (ssize_t)len || fsync(fd)) {
		ret = kars_err_set(err, errno ? errno : EIO, "%s/%s: %s", ref->router_dir, tmp,
				   strerror(errno ? errno : EIO));
		goto cleanup;
	}
	if (renameat(dirfd, tmp, dirfd, base)) {
		ret = kars_err_set(err, errno, "%s: %s", run->api_key_file, strerror(errno));
		goto cleanup;
	}
	tmp[0] = '\0';
	fsync(dirfd);
cleanup:
	if (fd >= 0)
		close(fd);
	if (tmp[0] && dirfd >= 0)
		unlinkat(dirfd, tmp, 0);
	if (dirfd >= 0)
		close(dirfd);
	explicit_bzero(buf, KEY_MAX + 2);
	free(buf);
	return ret;
}
