/* egress_control.c - the egress proxy's control endpoints, under
 * /kars/v1/egress (docs/egress-proxy.md):
 *
 *   GET  /kars/v1/egress          mode, allowlist, learned destinations
 *   PUT  /kars/v1/egress/mode     {"mode": "learn" | "strict"}
 *   POST /kars/v1/egress/enforce  the same as mode strict
 *   POST /kars/v1/egress/approve  {"host": "name", "port": 443}: an exact
 *                                 allow entry, in memory until restart
 *
 * The caller is identified as for every control endpoint (control.c:
 * sock_diag, control.allowedUids); the agent's UID is refused, so the agent
 * cannot turn strict mode off or approve its own destinations. Mutations
 * are audited, refused or not.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "egress_learned.h"
#include "egress_proxy.h"
#include "http_server.h"
#include "json.h"
#include "log.h"
#include "router.h"

static const char *mode_name(enum kars_egress_mode m)
{
	return m == KARS_EGRESS_LEARN ? "learn" : "strict";
}

static json_t *state(struct kars_router *r)
{
	const struct kars_egress_policy *p = &r->cfg.egress.policy;
	struct kars_egress_learned *l = kars_egress_proxy_learned(r->egress);
	json_t *allow = json_array();

	for (size_t i = 0; allow && i < p->nallow; i++) {
		const struct kars_egress_allow *a = &p->allow[i];
		char name[KARS_DNS_NAME_BUF + 2];

		snprintf(name, sizeof(name), "%s%s", a->wildcard ? "*." : "", a->name);
		json_array_append_new(allow, json_pack("{s:s,s:i,s:i}", "name", name, "portLo",
						       a->port_lo, "portHi", a->port_hi));
	}
	return json_pack("{s:s,s:o,s:o,s:I}", "mode", mode_name(p->mode), "allow", allow, "learned",
			 kars_egress_learned_json(l), "learnDropped", (json_int_t)l->dropped);
}

static json_t *body_json(struct kars_hreq *req, const char *const keys[], struct kars_err *err)
{
	size_t len;
	const char *in = kars_hreq_body(req, &len);
	json_t *body = kars_json_parse(in, len, err);

	if (body && (!json_is_object(body) || kars_json_only_keys(body, "", keys, err))) {
		if (!err->msg[0])
			kars_err_set(err, EINVAL, "expected a JSON object");
		json_decref(body);
		return NULL;
	}
	return body;
}

static void set_mode(struct kars_router *r, struct kars_hreq *req, uint32_t uid, const char *forced)
{
	static const char *const keys[] = {"mode", NULL};
	struct kars_egress_policy *p = &r->cfg.egress.policy;
	struct kars_err err = {0};
	const char *mode = forced;
	json_t *body = NULL;
	char reason[96];

	if (!mode) {
		body = body_json(req, keys, &err);
		if (body && kars_json_get_string(body, "", "mode", true, &mode, &err))
			mode = NULL;
		if (mode && strcmp(mode, "learn") && strcmp(mode, "strict")) {
			kars_err_set(&err, EINVAL, "mode: \"%s\" is not \"learn\" or \"strict\"",
				     mode);
			mode = NULL;
		}
		if (!mode) {
			kars_router_send_error(req, 400, "invalid_request_error", "invalid_value",
					       "expected {\"mode\": \"learn\" | \"strict\"}: %s",
					       err.msg);
			json_decref(body);
			return;
		}
	}
	snprintf(reason, sizeof(reason), "egress mode %s (was %s)", mode, mode_name(p->mode));
	p->mode = strcmp(mode, "learn") == 0 ? KARS_EGRESS_LEARN : KARS_EGRESS_STRICT;
	log_info("%s by uid %u", reason, uid);
	kars_router_audit_control(r, uid, "control.egress.mode", "allow", reason);
	kars_router_reply_json(req, 200, json_pack("{s:s}", "mode", mode));
	json_decref(body);
}

static void approve(struct kars_router *r, struct kars_hreq *req, uint32_t uid)
{
	static const char *const keys[] = {"host", "port", NULL};
	struct kars_egress_policy *p = &r->cfg.egress.policy;
	struct kars_egress_decision d;
	struct kars_err err = {0};
	const char *host = NULL;
	uint64_t port = 0;
	char reason[320];
	json_t *body = body_json(req, keys, &err);

	if (!body || kars_json_get_string(body, "", "host", true, &host, &err) ||
	    kars_json_get_uint(body, "", "port", true, 1, 65535, &port, &err)) {
		kars_router_send_error(req, 400, "invalid_request_error", "invalid_value",
				       "expected {\"host\": \"name\", \"port\": N}: %s", err.msg);
		json_decref(body);
		return;
	}
	/* Strict, so that the answer says what an approval can change. */
	{
		enum kars_egress_mode mode = p->mode;

		p->mode = KARS_EGRESS_STRICT;
		kars_egress_decide(p, host, (uint16_t)port, &d);
		p->mode = mode;
	}
	if (!d.allow && strcmp(d.reason, "not_allowed") && strcmp(d.reason, "port_not_allowed")) {
		snprintf(reason, sizeof(reason), "cannot approve %.253s:%u: %s", d.host,
			 (unsigned)port, d.reason);
		kars_router_audit_control(r, uid, "control.egress.approve", "deny", reason);
		kars_router_send_error(req, 400, "invalid_request_error", d.reason, "%s", reason);
		json_decref(body);
		return;
	}
	if (!d.allow && kars_egress_policy_add(p, d.host, (uint16_t)port)) {
		kars_router_send_error(req, 500, "server_error", "out_of_memory", "out of memory");
		json_decref(body);
		return;
	}
	kars_egress_learned_remove(kars_egress_proxy_learned(r->egress), d.host, (uint16_t)port);
	snprintf(reason, sizeof(reason), "approved %.253s:%u%s", d.host, (unsigned)port,
		 d.allow ? " (already allowed)" : "");
	log_info("egress %s by uid %u", reason, uid);
	kars_router_audit_control(r, uid, "control.egress.approve", "allow", reason);
	kars_router_reply_json(req, 200,
			       json_pack("{s:s,s:I}", "host", d.host, "port", (json_int_t)port));
	json_decref(body);
}

void kars_egress_control(struct kars_router *r, struct kars_hreq *req, const char *path)
{
	enum kars_http_method method = kars_hreq_method(req);
	uint32_t uid;

	if (!r->egress) {
		kars_router_send_error(req, 404, "invalid_request_error", "no_egress_proxy",
				       "this router runs no egress proxy (no egressProxy in its "
				       "config)");
	} else if (strcmp(path, "egress") == 0 && method == KARS_HTTP_GET) {
		if (kars_router_authorise(r, req, "control.egress", false, false, &uid) == 0)
			kars_router_reply_json(req, 200, state(r));
	} else if (strcmp(path, "egress/mode") == 0 && method == KARS_HTTP_PUT) {
		if (kars_router_authorise(r, req, "control.egress.mode", true, false, &uid) == 0)
			set_mode(r, req, uid, NULL);
	} else if (strcmp(path, "egress/enforce") == 0 && method == KARS_HTTP_POST) {
		if (kars_router_authorise(r, req, "control.egress.mode", true, false, &uid) == 0)
			set_mode(r, req, uid, "strict");
	} else if (strcmp(path, "egress/approve") == 0 && method == KARS_HTTP_POST) {
		if (kars_router_authorise(r, req, "control.egress.approve", true, false, &uid) == 0)
			approve(r, req, uid);
	} else {
		kars_router_send_error(req, 404, "invalid_request_error", "unknown_url",
				       "no control endpoint /kars/v1/%s (served: GET egress, PUT "
				       "egress/mode, POST egress/enforce, POST egress/approve)",
				       path);
	}
}
