/* audit_key.c - the audit chain's signing key, and the file helpers the
 * writer shares with it.
 *
 * The checkpoint key is a 32-byte Ed25519 seed in a file only its owner can
 * read, created on first use, with the public half written beside it for
 * whoever verifies the log. A key that others can read is refused: anyone
 * holding it can forge checkpoints, and a readable key is how that starts.
 */
#include "audit_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

int audit_write_full(int fd, const void *buf, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t w = write(fd, (const char *)buf + done, n - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		done += (size_t)w;
	}
	return 0;
}

/* Makes a new directory entry durable: fsync() of the directory holding path. */
int audit_fsync_dir(const char *path, struct kars_err *err)
{
	char dir[PATH_MAX];
	char *slash;
	int fd, ret = 0;

	if ((size_t)snprintf(dir, sizeof(dir), "%s", path) >= sizeof(dir))
		return kars_err_set(err, ENAMETOOLONG, "%s: path too long", path);
	slash = strrchr(dir, '/');
	if (!slash)
		strcpy(dir, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd))
		ret = kars_err_set(err, errno, "fsync of directory %s: %s", dir, strerror(errno));
	if (fd >= 0)
		close(fd);
	return ret;
}

static int read_seed(const char *path, int fd, uint8_t seed[crypto_sign_SEEDBYTES],
		     struct kars_err *err)
{
	uint8_t buf[crypto_sign_SEEDBYTES + 1];
	struct stat st;
	size_t n = 0;
	ssize_t r;

	if (fstat(fd, &st))
		return kars_err_set(err, errno, "%s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return kars_err_set(err, EINVAL, "%s: the signing key is not a regular file", path);
	if (st.st_mode & 077)
		return kars_err_set(err, EPERM,
				    "%s: mode %04o lets group or others read the signing key "
				    "(chmod 600 it)",
				    path, (unsigned int)(st.st_mode & 07777));
	while (n < sizeof(buf) && (r = read(fd, buf + n, sizeof(buf) - n)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return kars_err_set(err, errno, "%s: %s", path, strerror(errno));
		n += (size_t)r;
	}
	if (n != crypto_sign_SEEDBYTES) {
		sodium_memzero(buf, sizeof(buf));
		return kars_err_set(err, EINVAL,
				    "%s: expected a %d-byte Ed25519 seed, found %s%zu bytes", path,
				    crypto_sign_SEEDBYTES, n > crypto_sign_SEEDBYTES ? "over " : "",
				    n > crypto_sign_SEEDBYTES ? n - 1 : n);
	}
	memcpy(seed, buf, crypto_sign_SEEDBYTES);
	sodium_memzero(buf, sizeof(buf));
	return 0;
}

static int create_seed(const char *path, uint8_t seed[crypto_sign_SEEDBYTES], struct kars_err *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int ret;

	if (fd < 0)
		return -errno; /* EEXIST: someone else made it; the caller reads it */
	randombytes_buf(seed, crypto_sign_SEEDBYTES);
	ret = audit_write_full(fd, seed, crypto_sign_SEEDBYTES);
	if (!ret && fsync(fd))
		ret = -errno;
	close(fd);
	if (ret) {
		unlink(path);
		return kars_err_set(err, ret, "%s: cannot write the signing key: %s", path,
				    strerror(-ret));
	}
	log_info("audit: created the signing key %s", path);
	return audit_fsync_dir(path, err);
}

/* "<key>.pub" holds the public key in hex for `kars audit verify --pubkey`.
 * Where it cannot be written (a read-only Secret mount), every checkpoint
 * still carries the key, so that is a warning, not a failure. */
static int write_pub(const char *key_path, const uint8_t pk[KARS_AUDIT_PUBKEY_LEN],
		     struct kars_err *err)
{
	char path[PATH_MAX], tmp[PATH_MAX], hex[2 * KARS_AUDIT_PUBKEY_LEN + 2];
	uint8_t old[KARS_AUDIT_PUBKEY_LEN];
	struct kars_err e = {0};
	int fd, ret;

	if ((size_t)snprintf(path, sizeof(path), "%s.pub", key_path) >= sizeof(path) ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s.tmp%d", path, (int)getpid()) >= sizeof(tmp))
		return kars_err_set(err, ENAMETOOLONG, "%s: path too long", key_path);
	if (kars_audit_pubkey_read(path, old, &e) == 0) {
		if (memcmp(old, pk, sizeof(old)))
			return kars_err_set(err, EINVAL,
					    "%s does not hold the public key of %s (remove it to "
					    "have it written again)",
					    path, key_path);
		return 0;
	}
	if (e.code != ENOENT)
		return kars_err_set(err, e.code, "%s", e.msg);
	kars_audit_hex(pk, KARS_AUDIT_PUBKEY_LEN, hex);
	strcat(hex, "\n");
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ret = fd < 0 ? -errno : audit_write_full(fd, hex, strlen(hex));
	if (!ret && fsync(fd))
		ret = -errno;
	if (fd >= 0)
		close(fd);
	if (!ret && rename(tmp, path))
		ret = -errno;
	if (ret) {
		unlink(tmp);
		log_warn("audit: cannot write %s (%s); the public key is %s", path, strerror(-ret),
			 hex);
	}
	return 0;
}

int audit_key_load(const char *path, uint8_t pk[KARS_AUDIT_PUBKEY_LEN],
		   uint8_t sk[2 * KARS_AUDIT_PUBKEY_LEN], struct kars_err *err)
{
	uint8_t seed[crypto_sign_SEEDBYTES];
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		ret = create_seed(path, seed, err);
		if (ret != -EEXIST)
			goto derive;
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0)
		return kars_err_set(err, errno, "%s: %s", path, strerror(errno));
	ret = read_seed(path, fd, seed, err);
	close(fd);
derive:
	if (!ret) {
		crypto_sign_seed_keypair(pk, sk, seed);
		ret = write_pub(path, pk, err);
	}
	sodium_memzero(seed, sizeof(seed));
	return ret;
}
