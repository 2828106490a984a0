/* router_status.c - see router_status.h. */
#include "router_status.h"

#include "policy_status.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ROUTERS 256
#define MAX_ANSWER  (1u << 20)
#define TIMEOUT_MS  2000
#define STATUS_PATH "/kars/v1/policy-status"

struct router {
	char sandbox[320]; /* "ns/name" */
	char url[512];
	char digest[KARS_DIGEST_LEN];
};

struct kars_routers {
	struct router r[MAX_ROUTERS];
	size_t n;
	char local_dir[4096]; /* "": no local backend */
	struct router local;  /* the last sandbox found there */
};

struct answer {
	char *buf;
	size_t len;
	bool too_big;
};

struct kars_routers *kars_routers_new(void)
{
	return calloc(1, sizeof(struct kars_routers));
}

void kars_routers_free(struct kars_routers *r)
{
	free(r);
}

void kars_routers_set_local(struct kars_routers *r, const char *dir)
{
	snprintf(r->local_dir, sizeof(r->local_dir), "%s", dir ? dir : "");
}

/* The local backend's contract file names the sandbox's router port. */
static struct router *local_router(struct kars_routers *r, const char *ns, const char *sandbox)
{
	char path[4096 + 600];
	json_t *k;
	json_int_t port;

	if (!r->local_dir[0])
		return NULL;
	snprintf(path, sizeof(path), "%s/sandboxes/%s/%s/run/router.json", r->local_dir, ns,
		 sandbox);
	k = json_load_file(path, 0, NULL);
	port = json_integer_value(json_object_get(k, "routerPort"));
	json_decref(k);
	if (port < 1 || port > 65535)
		return NULL;
	snprintf(r->local.sandbox, sizeof(r->local.sandbox), "%s/%s", ns, sandbox);
	snprintf(r->local.url, sizeof(r->local.url), "http://127.0.0.1:%d", (int)port);
	return &r->local;
}

int kars_routers_add(struct kars_routers *r, const char *spec, struct kars_err *err)
{
	const char *eq = strchr(spec, '='), *slash = strchr(spec, '/');
	struct router *e;

	if (!eq || !slash || slash > eq || slash == spec || slash + 1 == eq)
		return kars_err_set(err, EINVAL, "--router %s: expected NAMESPACE/SANDBOX=URL",
				    spec);
	if (strncmp(eq + 1, "http://", 7) && strncmp(eq + 1, "https://", 8))
		return kars_err_set(err, EINVAL, "--router %s: the URL must be http:// or https://",
				    spec);
	if ((size_t)(eq - spec) >= sizeof(e->sandbox) || strlen(eq + 1) >= sizeof(e->url))
		return kars_err_set(err, EINVAL, "--router %s: too long", spec);
	if (r->n == MAX_ROUTERS)
		return kars_err_set(err, E2BIG, "--router: at most %d", MAX_ROUTERS);
	e = &r->r[r->n++];
	snprintf(e->sandbox, sizeof(e->sandbox), "%.*s", (int)(eq - spec), spec);
	snprintf(e->url, sizeof(e->url), "%s", eq + 1);
	if (e->url[strlen(e->url) - 1] == '/')
		e->url[strlen(e->url) - 1] = '\0';
	return 0;
}

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct answer *a = arg;
	size_t len = size * n;
	char *grown;

	if (a->len + len > MAX_ANSWER) {
		a->too_big = true;
		return 0;
	}
	grown = realloc(a->buf, a->len + len + 1);
	if (!grown)
		return 0;
	a->buf = grown;
	memcpy(a->buf + a->len, p, len);
	a->len += len;
	a->buf[a->len] = '\0';
	return len;
}

/* GET the status document into a; 0, or -1 with why set. */
static int fetch(const struct router *e, struct answer *a, char *why, size_t why_len)
{
	char url[600];
	long code = 0;
	CURLcode rc;
	CURL *h = curl_easy_init();

	if (!h) {
		snprintf(why, why_len, "curl: out of memory");
		return -1;
	}
	snprintf(url, sizeof(url), "%s%s", e->url, STATUS_PATH);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(h);
	if (a->too_big)
		snprintf(why, why_len, "router at %s: answer larger than %u bytes", e->url,
			 MAX_ANSWER);
	else if (rc != CURLE_OK)
		snprintf(why, why_len, "router at %s: %s", e->url, curl_easy_strerror(rc));
	else if (code != 200)
		snprintf(why, why_len, "router at %s: %s answered %ld", e->url, STATUS_PATH, code);
	else
		return 0;
	free(a->buf);
	a->buf = NULL;
	return -1;
}

const char *kars_routers_loaded(void *ctx, const char *kind, const char *ns, const char *sandbox,
				const char *name, char *why, size_t why_len)
{
	struct kars_routers *r = ctx;
	struct router *e = NULL;
	struct answer a = {0};
	char want[320], reason[300];
	int ret;

	snprintf(want, sizeof(want), "%s/%s", ns, sandbox);
	for (size_t i = 0; i < r->n && !e; i++)
		if (!strcmp(r->r[i].sandbox, want))
			e = &r->r[i];
	if (!e)
		e = local_router(r, ns, sandbox);
	if (!e) {
		snprintf(why, why_len, "no router known for %s (--router, or the local backend)",
			 want);
		return NULL;
	}
	if (fetch(e, &a, why, why_len))
		return NULL;
	ret = kars_policy_status_digest(a.buf ? a.buf : "", a.len, want, kind, name, e->digest,
					reason, sizeof(reason));
	free(a.buf);
	if (ret) {
		snprintf(why, why_len, "router at %s: %s", e->url, reason);
		return NULL;
	}
	return e->digest;
}
