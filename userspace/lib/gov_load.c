/* gov_load.c - loading profiles from a buffer, files or a mounted directory.
 *
 * Several files make ONE profile: their rules are merged, ordered by priority
 * and then by file and position (AGT instead let the last file loaded replace
 * the others, silently). A directory is read as a Kubernetes ConfigMap mount
 * is laid out: "..data" and other dot-entries are skipped, symlinks followed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gov_priv.h"

static int compile_set(struct gov_ruleset *rs, const struct kars_gov_load_opts *opts,
		       struct kars_gov_profile **out, struct kars_gov_load_notes *notes,
		       struct kars_err *err)
{
	if (!rs->unmatched_set)
		rs->unmatched = opts ? opts->unmatched : KARS_GOV_UNMATCHED_ALLOW;
	return gov_compile(rs, out, notes, err);
}

static int add_buf(struct gov_ruleset *rs, const char *buf, size_t len, const char *name,
		   struct kars_err *err)
{
	struct gov_node *root = gov_doc_parse(buf, len, name, err);
	int ret;

	if (!root)
		return err && err->code ? -err->code : -EINVAL;
	ret = gov_ruleset_add_doc(rs, root, name, err);
	gov_doc_free(root);
	return ret;
}

int kars_gov_profile_load_buf(const char *buf, size_t len, const char *name,
			      const struct kars_gov_load_opts *opts, struct kars_gov_profile **out,
			      struct kars_gov_load_notes *notes, struct kars_err *err)
{
	struct gov_ruleset rs = {0};
	int ret;

	*out = NULL;
	ret = add_buf(&rs, buf, len, name ? name : "profile", err);
	if (!ret)
		ret = compile_set(&rs, opts, out, notes, err);
	gov_ruleset_free(&rs);
	return ret;
}

static int read_file(const char *path, char **buf, size_t *len, struct kars_err *err)
{
	struct stat st;
	ssize_t n;
	size_t got = 0;
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kars_err_set(err, errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0) {
		ret = kars_err_set(err, errno, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = kars_err_set(err, EINVAL, "%s: not a regular file", path);
		goto out;
	}
	if ((uint64_t)st.st_size > KARS_GOV_PROFILE_MAX) {
		ret = kars_err_set(err, EFBIG, "%s: larger than %u bytes", path,
				   KARS_GOV_PROFILE_MAX);
		goto out;
	}
	*buf = malloc((size_t)st.st_size + 1);
	if (!*buf) {
		ret = kars_err_set(err, ENOMEM, "out of memory");
		goto out;
	}
	while (got < (size_t)st.st_size) {
		n = read(fd, *buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = kars_err_set(err, errno, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break; /* shrank while read: parse what is there */
		got += (size_t)n;
	}
	*len = got;
out:
	if (ret) {
		free(*buf);
		*buf = NULL;
	}
	close(fd);
	return ret;
}

int kars_gov_profile_load_files(const char *const *paths, size_t n,
				const struct kars_gov_load_opts *opts,
				struct kars_gov_profile **out, struct kars_gov_load_notes *notes,
				struct kars_err *err)
{
	struct gov_ruleset rs = {0};
	int ret = 0;

	*out = NULL;
	if (n == 0)
		return kars_err_set(err, ENOENT, "no profile files");
	if (n > KARS_GOV_FILES_MAX)
		return kars_err_set(err, E2BIG, "more than %u profile files", KARS_GOV_FILES_MAX);
	for (size_t i = 0; i < n && !ret; i++) {
		char *buf = NULL;
		size_t len = 0;

		ret = read_file(paths[i], &buf, &len, err);
		if (!ret)
			ret = add_buf(&rs, buf, len, paths[i], err);
		free(buf);
	}
	if (!ret)
		ret = compile_set(&rs, opts, out, notes, err);
	gov_ruleset_free(&rs);
	return ret;
}

static bool profile_name(const char *name)
{
	size_t len = strlen(name);

	if (name[0] == '.')
		return false;
	return (len > 5 && strcmp(name + len - 5, ".yaml") == 0) ||
	       (len > 4 && strcmp(name + len - 4, ".yml") == 0) ||
	       (len > 5 && strcmp(name + len - 5, ".json") == 0);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int kars_gov_profile_load_dir(const char *dir, const struct kars_gov_load_opts *opts,
			      struct kars_gov_profile **out, struct kars_gov_load_notes *notes,
			      struct kars_err *err)
{
	char *paths[KARS_GOV_FILES_MAX];
	size_t n = 0;
	struct dirent *de;
	DIR *d;
	int ret = 0;

	*out = NULL;
	d = opendir(dir);
	if (!d)
		return kars_err_set(err, errno, "%s: %s", dir, strerror(errno));
	while ((de = readdir(d))) {
		struct stat st;
		char *path;

		if (!profile_name(de->d_name))
			continue;
		if (asprintf(&path, "%s/%s", dir, de->d_name) < 0) {
			ret = kars_err_set(err, ENOMEM, "out of memory");
			break;
		}
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
			free(path);
			continue;
		}
		if (n == KARS_GOV_FILES_MAX) {
			free(path);
			ret = kars_err_set(err, E2BIG, "%s: more than %u profile files", dir,
					   KARS_GOV_FILES_MAX);
			break;
		}
		paths[n++] = path;
	}
	closedir(d);
	if (!ret && n == 0)
		ret = kars_err_set(err, ENOENT, "%s: no *.yaml, *.yml or *.json profile", dir);
	if (!ret) {
		qsort(paths, n, sizeof(*paths), cmp_str);
		ret = kars_gov_profile_load_files((const char *const *)paths, n, opts, out, notes,
						  err);
	}
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	return ret;
}
