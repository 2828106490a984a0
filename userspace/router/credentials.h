/* credentials.h - the upstream credential of kars-router, for one audience.
 *
 * The router is the only principal of a sandbox that holds a credential; the
 * agent never sees it. Three sources, chosen by upstream.auth.kind:
 *
 *   apiKeyFile        a key read at start and again when the file changes
 *                     ("Authorization: Bearer KEY", or "api-key: KEY" for
 *                     Azure OpenAI); a replacement that fails the checks
 *                     leaves the old key in use.
 *   workloadIdentity  Azure AD federated credentials: the projected
 *                     service-account token (re-read on every refresh, the
 *                     kubelet rotates it) is exchanged at
 *                     {authorityHost}/{tenantId}/oauth2/v2.0/token for an
 *                     access token (client_credentials + client_assertion).
 *   imds              the node's managed identity: GET {endpoint}
 *                     /metadata/identity/oauth2/token?api-version=2018-02-01
 *                     &resource=R[&client_id=C] with "Metadata: true".
 *
 * Access tokens are fetched on the router's event loop through upstream.h
 * (never blocking), with a timeout on every call. The source honours the
 * token's expires_in (IMDS: expires_in or expires_on), refreshes early (at
 * lifetime - max(20%, 5 min), but not before half of it), and keeps exactly
 * one refresh in flight: callers that need a token meanwhile wait for it and
 * are all called back when it ends. A failed refresh is retried with
 * exponential backoff (1 s doubling up to 60 s, or Retry-After) while the
 * old token stays in use; once no valid token is left, callers get an error
 * at once saying why. The token is never logged and is wiped from memory
 * when replaced or freed.
 *
 * Credential files (the API key, the projected token) must not be readable
 * by the agent: mode 0600 or 0400 (no group/other bits) and not owned by the
 * agent's UID, checked at start and at every read.
 */
#ifndef KARS_ROUTER_CREDENTIALS_H
#define KARS_ROUTER_CREDENTIALS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "err.h"

struct event_base;
struct kars_upstream;
struct kars_credential;

enum kars_credential_kind {
	KARS_CREDENTIAL_API_KEY_FILE = 0,
	KARS_CREDENTIAL_WORKLOAD_IDENTITY,
	KARS_CREDENTIAL_IMDS,
};

/* How an API key is sent; tokens from Azure AD are always Bearer. */
enum kars_credential_header_style {
	KARS_CREDENTIAL_BEARER = 0, /* Authorization: Bearer KEY */
	KARS_CREDENTIAL_API_KEY,    /* api-key: KEY (Azure OpenAI keys) */
};

#define KARS_CREDENTIAL_DEFAULT_AUTHORITY  "https://login.microsoftonline.com"
#define KARS_CREDENTIAL_DEFAULT_SCOPE	   "https://cognitiveservices.azure.com/.default"
#define KARS_CREDENTIAL_DEFAULT_RESOURCE   "https://cognitiveservices.azure.com"
#define KARS_CREDENTIAL_DEFAULT_TOKEN_FILE "/var/run/secrets/azure/tokens/azure-identity-token"
#define KARS_CREDENTIAL_DEFAULT_IMDS	   "http://169.254.169.254"
#define KARS_CREDENTIAL_DEFAULT_TIMEOUT_MS 10000

struct kars_credential_config {
	enum kars_credential_kind kind;
	uid_t agent_uid;
	char file[1024];	  /* apiKeyFile: file; workloadIdentity: tokenFile */
	char tenant_id[128];	  /* workloadIdentity */
	char client_id[128];	  /* workloadIdentity (required), imds (optional) */
	char authority_host[512]; /* workloadIdentity, no trailing slash */
	char scope[512];	  /* workloadIdentity */
	char resource[512];	  /* imds */
	char endpoint[512];	  /* imds, no trailing slash */
	long timeout_ms;	  /* every token call, connect to last byte */
	char path[128];		  /* where the object was, for messages */
	char file_field[160];	  /* the file's field, e.g. "upstream.auth.tokenFile" */
};

/* Parses an auth object strictly (unknown keys refused; errors name the
 * field, e.g. "upstream.auth.tenantId: ..."), path being where it sits
 * ("upstream.auth"). Checks the credential file as the agent's UID would see
 * it: missing or agent-readable is an error here, so the router refuses to
 * start. Objects:
 *   {"kind":"apiKeyFile","file":F}
 *   {"kind":"workloadIdentity","tenantId":T,"clientId":C,"tokenFile":F,
 *    "authorityHost":A,"scope":S,"timeoutMs":N}
 *   {"kind":"imds","resource":R,"clientId":C,"endpoint":E,"timeoutMs":N}
 * See docs/router.md "Upstream credentials" for defaults and limits. */
int kars_credential_config_parse(const json_t *auth, const char *path,
				 struct kars_credential_config *out, uid_t agent_uid,
				 struct kars_err *err);

/* The shorthand "upstream.apiKeyFile": F, as {"kind":"apiKeyFile","file":F}
 * with field (e.g. "upstream.apiKeyFile") named in errors; checks the file. */
int kars_credential_config_api_key_file(const char *file, const char *field, uid_t agent_uid,
					struct kars_credential_config *out, struct kars_err *err);

/* Reads a credential file (one line, trailing newline/space dropped; up to
 * 16 KiB), refusing one the agent could read. *out is malloc'd; the caller
 * wipes and frees it. what names the field in errors. */
int kars_credential_read_file(const char *file, uid_t agent_uid, const char *what, char **out,
			      struct kars_err *err);

/* Creates the source. apiKeyFile: reads the key now (an error is fatal).
 * Token kinds: schedules the first token call on the loop at once, so the
 * first request usually finds a token. The config is copied; up must
 * outlive the credential. */
struct kars_credential *kars_credential_new(struct event_base *base, struct kars_upstream *up,
					    const struct kars_credential_config *cfg,
					    enum kars_credential_header_style style,
					    struct kars_err *err);
/* Fails every waiting caller ("credential source closed"), stops the token
 * call in flight, wipes the token. Must not be called from a callback. */
void kars_credential_free(struct kars_credential *c);

/* header: a whole header line ("Authorization: Bearer ...", "api-key: ..."),
 * valid only during the call (copy it, e.g. curl_slist_append), or NULL and
 * error saying why no valid token exists. */
typedef void (*kars_credential_fn)(const char *header, const char *error, void *arg);

/* One waiting caller; embed it in the request's state. */
struct kars_credential_wait {
	TAILQ_ENTRY(kars_credential_wait) link;
	kars_credential_fn fn;
	void *arg;
	bool queued;
};

/* Asks for the header. If a valid token is cached, or none can be had now
 * (the last refresh failed and the retry is not due), fn runs before this
 * returns and the result is 0. Otherwise w is queued behind the one refresh
 * in flight, the result is 1, and fn runs exactly once when that refresh
 * ends (or kars_credential_free) unless kars_credential_cancel comes first.
 * fn may call kars_credential_get/cancel again. */
int kars_credential_get(struct kars_credential *c, struct kars_credential_wait *w,
			kars_credential_fn fn, void *arg);
/* Forgets a waiting caller (its request went away); a no-op if not queued. */
void kars_credential_cancel(struct kars_credential *c, struct kars_credential_wait *w);

/* For /readyz and /metrics. */
struct kars_credential_stats {
	bool valid;	       /* a usable token (or key) is held now */
	uint64_t refreshes;    /* token calls started */
	uint64_t failures;     /* token calls that failed */
	int64_t expires_in_ms; /* of the current token; -1 for a key or none */
	char last_error[256];  /* of the last failed call, "" if none */
};
void kars_credential_get_stats(const struct kars_credential *c, struct kars_credential_stats *s);
const char *kars_credential_kind_name(enum kars_credential_kind kind);

#endif
