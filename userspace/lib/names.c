/* names.c - see names.h. */
#include "names.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

static bool dns_label_ok(const char *s, size_t len)
{
	if (len == 0 || len > 63)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

		if (!alnum && !(c == '-' && i > 0 && i < len - 1))
			return false;
	}
	return true;
}

int kars_sandbox_name_check(const char *name, const char *path, struct kars_err *err)
{
	const char *slash = strchr(name, '/');
	const char *label, *end;

	if (strlen(name) > KARS_SANDBOX_NAME_MAX)
		return kars_err_set(err, EINVAL, "%s: must be at most %d characters", path,
				    KARS_SANDBOX_NAME_MAX);
	if (!slash || strchr(slash + 1, '/'))
		return kars_err_set(err, EINVAL, "%s: \"%s\" must be namespace/name", path, name);
	if (!dns_label_ok(name, (size_t)(slash - name)))
		return kars_err_set(err, EINVAL,
				    "%s: namespace must be a DNS-1123 label (a-z, 0-9, '-')", path);
	if (strlen(slash + 1) == 0 || strlen(slash + 1) > 253)
		return kars_err_set(err, EINVAL, "%s: name must be 1-253 characters", path);
	/* every label, the empty one after a trailing '.' included */
	for (label = slash + 1;; label = end + 1) {
		end = strchr(label, '.');
		if (!end)
			end = label + strlen(label);
		if (!dns_label_ok(label, (size_t)(end - label)))
			return kars_err_set(
			    err, EINVAL,
			    "%s: name must be a DNS-1123 subdomain (a-z, 0-9, '-', '.')", path);
		if (!*end)
			break;
	}
	return 0;
}
