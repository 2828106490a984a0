/* policy_status.h - reading a kars-router's /kars/v1/policy-status answer.
 *
 * The bytes come over a socket from a process the controller does not
 * control, so they are parsed strictly and fuzzed (fuzz/policy_status): the
 * answer must be a JSON object with schemaVersion 1 and the sandbox the
 * controller asked about (a router answering for another sandbox is not
 * believed), and the digest is taken only from the entry of the right kind
 * and name, only if it looks like one ("sha256:" and 64 lowercase hex).
 */
#ifndef KARS_CONTROLLER_POLICY_STATUS_H
#define KARS_CONTROLLER_POLICY_STATUS_H

#include <stddef.h>

#include "policy_compile.h"

/* 0 with digest set; -ENOENT (no such entry) or -EINVAL (not believed),
 * with why (why_len bytes) saying what. */
int kars_policy_status_digest(const char *buf, size_t len, const char *sandbox, const char *kind,
			      const char *name, char digest[KARS_DIGEST_LEN], char *why,
			      size_t why_len);

#endif
