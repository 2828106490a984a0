/* config.c - see config.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "parse.h"
#include "policy.h"

static int copy_field(char *dst, size_t len, const char *src, const char *path,
		      struct kars_err *err)
{
	if (strlen(src) >= len)
		return kars_err_set(err, EINVAL, "%s: longer than %zu characters", path, len - 1);
	strcpy(dst, src);
	return 0;
}

static int parse_listen(const char *s, struct kars_router_config *c, struct kars_err *err)
{
	const char *colon = strrchr(s, ':');

	if (!colon || colon == s || (size_t)(colon - s) >= sizeof(c->listen_addr))
		return kars_err_set(err, EINVAL, "listen: \"%s\" is not ADDRESS:PORT", s);
	memcpy(c->listen_addr, s, (size_t)(colon - s));
	c->listen_addr[colon - s] = '\0';
	return kars_parse_port(colon + 1, &c->listen_port, "listen", err);
}

static int parse_upstream(const json_t *root, struct kars_router_config *c, struct kars_err *err)
{
	static const char *const keys[] = {
	    "kind", "baseUrl", "apiKeyFile", "connectTimeoutMs", "idleTimeoutSeconds", NULL};
	const char *kind = "openai", *base = NULL, *key_file = NULL;
	uint64_t connect_ms = 10000, idle_s = 120;
	size_t n;
	int ret;
	const json_t *up = kars_json_get_object(root, "", "upstream", true, &ret, err);

	if (!up)
		return ret;
	ret = kars_json_only_keys(up, "upstream", keys, err);
	if (!ret)
		ret = kars_json_get_string(up, "upstream", "kind", false, &kind, err);
	if (!ret)
		ret = kars_json_get_string(up, "upstream", "baseUrl", true, &base, err);
	if (!ret)
		ret = kars_json_get_string(up, "upstream", "apiKeyFile", true, &key_file, err);
	if (!ret)
		ret = kars_json_get_uint(up, "upstream", "connectTimeoutMs", false, 1, 600000,
					 &connect_ms, err);
	if (!ret)
		ret = kars_json_get_uint(up, "upstream", "idleTimeoutSeconds", false, 1, 86400,
					 &idle_s, err);
	if (ret)
		return ret;
	if (strcmp(kind, "openai") == 0)
		c->kind = KARS_UPSTREAM_OPENAI;
	else if (strcmp(kind, "azure") == 0)
		c->kind = KARS_UPSTREAM_AZURE;
	else
		return kars_err_set(err, EINVAL,
				    "upstream.kind: Unsupported value \"%s\": supported values: "
				    "\"openai\", \"azure\"",
				    kind);
	if (strncmp(base, "https://", 8) && strncmp(base, "http://", 7))
		return kars_err_set(err, EINVAL,
				    "upstream.baseUrl: \"%s\" must start with https:// or http://",
				    base);
	if (strpbrk(base, " \t\r\n?#"))
		return kars_err_set(
		    err, EINVAL,
		    "upstream.baseUrl: must not contain spaces, a query or a fragment");
	ret = copy_field(c->base_url, sizeof(c->base_url), base, "upstream.baseUrl", err);
	if (!ret)
		ret = copy_field(c->api_key_file, sizeof(c->api_key_file), key_file,
				 "upstream.apiKeyFile", err);
	if (ret)
		return ret;
	n = strlen(c->base_url);
	while (n && c->base_url[n - 1] == '/')
		c->base_url[--n] = '\0';
	c->connect_timeout_ms = (long)connect_ms;
	c->idle_timeout_s = (long)idle_s;
	return 0;
}

int kars_router_config_load(const char *path, struct kars_router_config *out, struct kars_err *err)
{
	static const char *const keys[] = {"sandbox", "listen", "agentUid", "upstream", NULL};
	const char *sandbox = NULL, *listen = "127.0.0.1:8443";
	uint64_t agent_uid;
	json_error_t jerr;
	json_t *root;
	int ret;

	memset(out, 0, sizeof(*out));
	root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return kars_err_set(err, EINVAL, "%s: line %d, column %d: %s", path, jerr.line,
				    jerr.column, jerr.text);
	ret = kars_json_only_keys(root, "", keys, err);
	if (!ret)
		ret = kars_json_get_string(root, "", "sandbox", true, &sandbox, err);
	if (!ret)
		ret = kars_sandbox_name_check(sandbox, "sandbox", err);
	if (!ret)
		ret = copy_field(out->sandbox, sizeof(out->sandbox), sandbox, "sandbox", err);
	if (!ret)
		ret = kars_json_get_string(root, "", "listen", false, &listen, err);
	if (!ret)
		ret = parse_listen(listen, out, err);
	if (!ret)
		ret = kars_json_get_uint(root, "", "agentUid", true, 0, UINT32_MAX - 1, &agent_uid,
					 err);
	if (!ret)
		ret = parse_upstream(root, out, err);
	if (!ret)
		out->agent_uid = (uid_t)agent_uid;
	json_decref(root);
	return ret;
}

int kars_router_read_api_key(const struct kars_router_config *c, char **key, struct kars_err *err)
{
	char buf[4096];
	struct stat st;
	ssize_t n;
	int fd;

	*key = NULL;
	fd = open(c->api_key_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return kars_err_set(err, errno, "upstream.apiKeyFile: %s: %s", c->api_key_file,
				    strerror(errno));
	if (fstat(fd, &st)) {
		close(fd);
		return kars_err_set(err, errno, "upstream.apiKeyFile: %s", strerror(errno));
	}
	/* The agent must never hold the credential: not as owner, not as
	 * anyone (a group check needs the agent's groups; 0600 is the rule). */
	if (st.st_uid == c->agent_uid || (st.st_mode & (S_IRWXG | S_IRWXO))) {
		close(fd);
		return kars_err_set(
		    err, EPERM,
		    "upstream.apiKeyFile: %s is mode %04o owned by uid %u: it must be "
		    "0600 (or 0400) and not owned by the agent's uid %u",
		    c->api_key_file, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid,
		    (unsigned)c->agent_uid);
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return kars_err_set(err, errno, "upstream.apiKeyFile: %s", strerror(errno));
	buf[n] = '\0';
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	if (n == 0 || strpbrk(buf, "\r\n"))
		return kars_err_set(err, EINVAL,
				    "upstream.apiKeyFile: %s must hold one non-empty line",
				    c->api_key_file);
	*key = strdup(buf);
	explicit_bzero(buf, sizeof(buf));
	return *key ? 0 : kars_err_set(err, ENOMEM, "out of memory");
}
