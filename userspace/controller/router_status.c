/* router_status.c - see router_status.h. */
#include "router_status.h"

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

/* GET the status document; NULL with why set. */
static json_t *fetch(const struct router *e, char *why, size_t why_len)
{
	char url[600];
	struct answer a = {0};
	long code = 0;
	json_t *doc = NULL;
	CURLcode rc;
	CURL *h = curl_easy_init();

	if (!h) {
		snprintf(why, why_len, "curl: out of memory");
		return NULL;
	}
	snprintf(url, sizeof(url), "%s%s", e->url, STATUS_PATH);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &a);
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(h);
	if (a.too_big)
		snprintf(why, why_len, "router at %s: answer larger than %u bytes", e->url,
			 MAX_ANSWER);
	else if (rc != CURLE_OK)
		snprintf(why, why_len, "router at %s: %s", e->url, curl_easy_strerror(rc));
	else if (code != 200)
		snprintf(why, why_len, "router at %s: %s answered %ld", e->url, STATUS_PATH, code);
	else if (!(doc = json_loadb(a.buf ? a.buf : "", a.len, 0, NULL)) || !json_is_object(doc))
		snprintf(why, why_len, "router at %s: %s is not a JSON object", e->url,
			 STATUS_PATH);
	free(a.buf);
	if (doc && !json_is_object(doc)) {
		json_decref(doc);
		doc = NULL;
	}
	return doc;
}

const char *kars_routers_loaded(void *ctx, const char *kind, const char *ns, const char *sandbox,
				const char *name, char *why, size_t why_len)
{
	struct kars_routers *r = ctx;
	struct router *e = NULL;
	char want[320];
	const json_t *entry;
	json_t *doc;
	size_t i;

	snprintf(want, sizeof(want), "%s/%s", ns, sandbox);
	for (i = 0; i < r->n && !e; i++)
		if (!strcmp(r->r[i].sandbox, want))
			e = &r->r[i];
	if (!e) {
		snprintf(why, why_len, "no router known for %s (--router)", want);
		return NULL;
	}
	doc = fetch(e, why, why_len);
	if (!doc)
		return NULL;
	if (json_integer_value(json_object_get(doc, "schemaVersion")) != 1 ||
	    strcmp(json_string_value(json_object_get(doc, "sandbox")) ?: "", want)) {
		snprintf(why, why_len,
			 "router at %s: reports schemaVersion %lld for sandbox %.64s, "
			 "not 1 for %s",
			 e->url, json_integer_value(json_object_get(doc, "schemaVersion")),
			 json_string_value(json_object_get(doc, "sandbox")) ?: "(none)", want);
		json_decref(doc);
		return NULL;
	}
	json_array_foreach(json_object_get(doc, "entries"), i, entry)
	{
		const char *d = json_string_value(json_object_get(entry, "digest"));

		if (strcmp(json_string_value(json_object_get(entry, "kind")) ?: "", kind) ||
		    strcmp(json_string_value(json_object_get(entry, "name")) ?: "", name))
			continue;
		if (d && strlen(d) < sizeof(e->digest)) {
			snprintf(e->digest, sizeof(e->digest), "%s", d);
			json_decref(doc);
			return e->digest;
		}
	}
	snprintf(why, why_len, "router reports no %s %s loaded", kind, name);
	json_array_foreach(json_object_get(doc, "entries"), i, entry)
	{
		const char *last = json_string_value(json_object_get(entry, "lastError"));

		if (last &&
		    !strcmp(json_string_value(json_object_get(entry, "kind")) ?: "", kind)) {
			snprintf(why + strlen(why), why_len - strlen(why), " (last error: %.200s)",
				 last);
			break;
		}
	}
	json_decref(doc);
	return NULL;
}
