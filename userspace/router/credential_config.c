/* credential_config.c - upstream.auth, parsed strictly, and the credential
 * file rule (see credentials.h).
 *
 * Parsing happens at start: a typo, an identifier that cannot be one, or a
 * credential file the agent could read stops the router before it serves a
 * request, with the field named.
 */
#include "credentials.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"

#define MAX_CREDENTIAL_FILE (16 << 10)

const char *kars_credential_kind_name(enum kars_credential_kind kind)
{
	switch (kind) {
	case KARS_CREDENTIAL_API_KEY_FILE:
		return "apiKeyFile";
	case KARS_CREDENTIAL_WORKLOAD_IDENTITY:
		return "workloadIdentity";
	case KARS_CREDENTIAL_IMDS:
		return "imds";
	}
	return "?";
}

static int copy_value(char *dst, size_t len, const char *src, const char *path, const char *key,
		      struct kars_err *err)
{
	char where[256];

	if (strlen(src) >= len)
		return kars_err_set(err, EINVAL, "%s: longer than %zu characters",
				    kars_json_path(where, sizeof(where), path, key), len - 1);
	strcpy(dst, src);
	return 0;
}

/* A tenant or client id: a GUID, or a tenant's domain name. It is pasted
 * into a URL path and a form, so only these characters. */
static int check_id(const char *s, const char *path, const char *key, struct kars_err *err)
{
	char where[256];

	if (!*s || strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") !=
		       strlen(s))
		return kars_err_set(err, EINVAL,
				    "%s: \"%s\" is not an Azure AD id (a GUID or a domain name)",
				    kars_json_path(where, sizeof(where), path, key), s);
	return 0;
}

static bool loopback_http(const char *url)
{
	static const char *const hosts[] = {"http://127.0.0.1", "http://localhost", "http://[::1]",
					    NULL};

	for (int i = 0; hosts[i]; i++) {
		size_t n = strlen(hosts[i]);

		if (!strncmp(url, hosts[i], n) &&
		    (url[n] == '\0' || url[n] == ':' || url[n] == '/'))
			return true;
	}
	return false;
}

/* A base URL: https:// (plain http only if allowed, or to loopback for
 * tests), no query, fragment or space; a trailing '/' is dropped. */
static int take_url(char *dst, size_t len, const char *s, bool http_ok, const char *path,
		    const char *key, struct kars_err *err)
{
	char where[256];
	size_t n;
	int ret;

	kars_json_path(where, sizeof(where), path, key);
	if (strncmp(s, "https://", 8) &&
	    !(strncmp(s, "http://", 7) == 0 && (http_ok || loopback_http(s))))
		return kars_err_set(err, EINVAL, "%s: \"%s\" must start with https://%s", where, s,
				    http_ok ? " or http://" : " (http:// only to loopback)");
	if (strpbrk(s, " \t\r\n?#") || strlen(s) <= (s[4] == 's' ? 8u : 7u))
		return kars_err_set(err, EINVAL,
				    "%s: must be a base URL with a host and no query, fragment or "
				    "space",
				    where);
	ret = copy_value(dst, len, s, path, key, err);
	if (ret)
		return ret;
	n = strlen(dst);
	while (n && dst[n - 1] == '/')
		dst[--n] = '\0';
	return 0;
}

static int take_text(char *dst, size_t len, const char *s, const char *path, const char *key,
		     struct kars_err *err)
{
	char where[256];

	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= ' ' || *p >= 0x7f)
			return kars_err_set(err, EINVAL,
					    "%s: only printable ASCII without spaces is allowed",
					    kars_json_path(where, sizeof(where), path, key));
	if (!*s)
		return kars_err_set(err, EINVAL, "%s: must not be empty",
				    kars_json_path(where, sizeof(where), path, key));
	return copy_value(dst, len, s, path, key, err);
}

int kars_credential_read_file(const char *file, uid_t agent_uid, const char *what, char **out,
			      struct kars_err *err)
{
	char *buf;
	struct stat st;
	ssize_t n;
	int fd;

	*out = NULL;
	/* Symlinks are followed: the kubelet mounts secrets and projected tokens
	 * as NAME -> ..data/NAME, ..data -> ..TIMESTAMP/, and rotates them by
	 * swapping ..data. What is checked is the file actually opened. */
	fd = open(file, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return kars_err_set(err, errno, "%s: %s: %s", what, file, strerror(errno));
	if (fstat(fd, &st)) {
		int e = errno;

		close(fd);
		return kars_err_set(err, e, "%s: %s: %s", what, file, strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return kars_err_set(err, EINVAL, "%s: %s is not a regular file", what, file);
	}
	/* The agent must never hold the credential: not as owner, not as
	 * anyone (a group check needs the agent's groups; 0600 is the rule). */
	if (st.st_uid == agent_uid || (st.st_mode & (S_IRWXG | S_IRWXO))) {
		close(fd);
		return kars_err_set(err, EPERM,
				    "%s: %s is mode %04o owned by uid %u: it must be 0600 (or "
				    "0400) and not owned by the agent's uid %u",
				    what, file, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid,
				    (unsigned)agent_uid);
	}
	buf = malloc(MAX_CREDENTIAL_FILE + 1);
	if (!buf) {
		close(fd);
		return kars_err_set(err, ENOMEM, "out of memory");
	}
	n = read(fd, buf, MAX_CREDENTIAL_FILE + 1);
	close(fd);
	if (n < 0 || n > MAX_CREDENTIAL_FILE) {
		int e = n < 0 ? errno : EFBIG;

		explicit_bzero(buf, MAX_CREDENTIAL_FILE + 1);
		free(buf);
		return kars_err_set(err, e, "%s: %s: %s", what, file,
				    n < 0 ? strerror(e) : "larger than 16 KiB");
	}
	buf[n] = '\0';
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	for (ssize_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)buf[i];

		/* It goes into a header or a form: one line of visible bytes. */
		if (c < 0x20 || c == 0x7f) {
			n = 0;
			break;
		}
	}
	if (n == 0) {
		explicit_bzero(buf, MAX_CREDENTIAL_FILE + 1);
		free(buf);
		return kars_err_set(err, EINVAL,
				    "%s: %s must hold one non-empty line of printable text", what,
				    file);
	}
	*out = buf;
	return 0;
}

/* Names the file's field and checks the file as the router will read it. */
static int check_file(struct kars_credential_config *c, const char *path, const char *key,
		      struct kars_err *err)
{
	char *secret = NULL;
	int ret;

	kars_json_path(c->file_field, sizeof(c->file_field), path, key);
	ret = kars_credential_read_file(c->file, c->agent_uid, c->file_field, &secret, err);

	if (secret) {
		explicit_bzero(secret, strlen(secret));
		free(secret);
	}
	return ret;
}

static int parse_api_key_file(const json_t *auth, const char *path,
			      struct kars_credential_config *c, struct kars_err *err)
{
	static const char *const keys[] = {"kind", "file", NULL};
	const char *file = NULL;
	int ret = kars_json_only_keys(auth, path, keys, err);

	if (!ret)
		ret = kars_json_get_string(auth, path, "file", true, &file, err);
	if (!ret)
		ret = copy_value(c->file, sizeof(c->file), file, path, "file", err);
	return ret ? ret : check_file(c, path, "file", err);
}

static int get_timeout(const json_t *auth, const char *path, struct kars_credential_config *c,
		       struct kars_err *err)
{
	uint64_t ms = KARS_CREDENTIAL_DEFAULT_TIMEOUT_MS;
	int ret = kars_json_get_uint(auth, path, "timeoutMs", false, 100, 120000, &ms, err);

	c->timeout_ms = (long)ms;
	return ret;
}

static int parse_workload_identity(const json_t *auth, const char *path,
				   struct kars_credential_config *c, struct kars_err *err)
{
	static const char *const keys[] = {"kind",  "tenantId",	     "clientId",  "tokenFile",
					   "scope", "authorityHost", "timeoutMs", NULL};
	const char *tenant = NULL, *client = NULL, *file = KARS_CREDENTIAL_DEFAULT_TOKEN_FILE;
	const char *authority = KARS_CREDENTIAL_DEFAULT_AUTHORITY;
	const char *scope = KARS_CREDENTIAL_DEFAULT_SCOPE;
	char where[256];
	size_t n;
	int ret = kars_json_only_keys(auth, path, keys, err);

	if (!ret)
		ret = kars_json_get_string(auth, path, "tenantId", true, &tenant, err);
	if (!ret)
		ret = check_id(tenant, path, "tenantId", err);
	if (!ret)
		ret = copy_value(c->tenant_id, sizeof(c->tenant_id), tenant, path, "tenantId", err);
	if (!ret)
		ret = kars_json_get_string(auth, path, "clientId", true, &client, err);
	if (!ret)
		ret = check_id(client, path, "clientId", err);
	if (!ret)
		ret = copy_value(c->client_id, sizeof(c->client_id), client, path, "clientId", err);
	if (!ret)
		ret = kars_json_get_string(auth, path, "tokenFile", false, &file, err);
	if (!ret)
		ret = copy_value(c->file, sizeof(c->file), file, path, "tokenFile", err);
	if (!ret)
		ret = kars_json_get_string(auth, path, "authorityHost", false, &authority, err);
	if (!ret)
		ret = take_url(c->authority_host, sizeof(c->authority_host), authority, false, path,
			       "authorityHost", err);
	if (!ret)
		ret = kars_json_get_string(auth, path, "scope", false, &scope, err);
	if (!ret)
		ret = take_text(c->scope, sizeof(c->scope), scope, path, "scope", err);
	if (!ret)
		ret = get_timeout(auth, path, c, err);
	if (ret)
		return ret;
	/* The client-credentials grant takes one resource's ".default" scope;
	 * anything else fails at Azure AD with a less helpful message. */
	n = strlen(c->scope);
	if (n < 9 || strcmp(c->scope + n - 9, "/.default"))
		return kars_err_set(err, EINVAL,
				    "%s: \"%s\" must be a resource's \"/.default\" scope, e.g. "
				    "\"" KARS_CREDENTIAL_DEFAULT_SCOPE "\"",
				    kars_json_path(where, sizeof(where), path, "scope"), c->scope);
	return check_file(c, path, "tokenFile", err);
}

static int parse_imds(const json_t *auth, const char *path, struct kars_credential_config *c,
		      struct kars_err *err)
{
	static const char *const keys[] = {"kind",     "resource",  "clientId",
					   "endpoint", "timeoutMs", NULL};
	const char *resource = KARS_CREDENTIAL_DEFAULT_RESOURCE, *client = NULL;
	const char *endpoint = KARS_CREDENTIAL_DEFAULT_IMDS;
	int ret = kars_json_only_keys(auth, path, keys, err);

	if (!ret)
		ret = kars_json_get_string(auth, path, "resource", false, &resource, err);
	if (!ret)
		ret = take_text(c->resource, sizeof(c->resource), resource, path, "resource", err);
	if (!ret)
		ret = kars_json_get_string(auth, path, "clientId", false, &client, err);
	if (!ret && client)
		ret = check_id(client, path, "clientId", err);
	if (!ret && client)
		ret = copy_value(c->client_id, sizeof(c->client_id), client, path, "clientId", err);
	if (!ret)
		ret = kars_json_get_string(auth, path, "endpoint", false, &endpoint, err);
	/* IMDS is plain http on a link-local address; nothing secret is sent. */
	if (!ret)
		ret = take_url(c->endpoint, sizeof(c->endpoint), endpoint, true, path, "endpoint",
			       err);
	if (!ret)
		ret = get_timeout(auth, path, c, err);
	return ret;
}

int kars_credential_config_api_key_file(const char *file, const char *field, uid_t agent_uid,
					struct kars_credential_config *out, struct kars_err *err)
{
	char *secret = NULL;
	int ret;

	memset(out, 0, sizeof(*out));
	out->kind = KARS_CREDENTIAL_API_KEY_FILE;
	out->agent_uid = agent_uid;
	out->timeout_ms = KARS_CREDENTIAL_DEFAULT_TIMEOUT_MS;
	snprintf(out->path, sizeof(out->path), "%s", field);
	snprintf(out->file_field, sizeof(out->file_field), "%s", field);
	if (strlen(file) >= sizeof(out->file))
		return kars_err_set(err, EINVAL, "%s: longer than %zu characters", field,
				    sizeof(out->file) - 1);
	strcpy(out->file, file);
	ret = kars_credential_read_file(out->file, agent_uid, field, &secret, err);
	if (secret) {
		explicit_bzero(secret, strlen(secret));
		free(secret);
	}
	return ret;
}

int kars_credential_config_parse(const json_t *auth, const char *path,
				 struct kars_credential_config *out, uid_t agent_uid,
				 struct kars_err *err)
{
	const char *kind = NULL;
	char where[256];
	int ret;

	memset(out, 0, sizeof(*out));
	out->agent_uid = agent_uid;
	out->timeout_ms = KARS_CREDENTIAL_DEFAULT_TIMEOUT_MS;
	snprintf(out->path, sizeof(out->path), "%s", path);
	if (!json_is_object(auth))
		return kars_err_set(err, EINVAL, "%s: expected an object", path);
	ret = kars_json_get_string(auth, path, "kind", true, &kind, err);
	if (ret)
		return ret;
	if (!strcmp(kind, "apiKeyFile")) {
		out->kind = KARS_CREDENTIAL_API_KEY_FILE;
		return parse_api_key_file(auth, path, out, err);
	}
	if (!strcmp(kind, "workloadIdentity")) {
		out->kind = KARS_CREDENTIAL_WORKLOAD_IDENTITY;
		return parse_workload_identity(auth, path, out, err);
	}
	if (!strcmp(kind, "imds")) {
		out->kind = KARS_CREDENTIAL_IMDS;
		return parse_imds(auth, path, out, err);
	}
	return kars_err_set(err, EINVAL,
			    "%s: Unsupported value \"%s\": supported values: \"apiKeyFile\", "
			    "\"workloadIdentity\", \"imds\"",
			    kars_json_path(where, sizeof(where), path, "kind"), kind);
}
