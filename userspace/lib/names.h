/* names.h - the names kars objects go by, checked one way everywhere.
 *
 * A sandbox is "namespace/name" as in Kubernetes: a DNS-1123 label (63
 * characters at most) and a DNS-1123 subdomain (253 at most).
 */
#ifndef KARS_NAMES_H
#define KARS_NAMES_H

#include "err.h"

#define KARS_SANDBOX_NAME_MAX (63 + 1 + 253)

/* Validates "namespace/name"; path names the field in the error. */
int kars_sandbox_name_check(const char *name, const char *path, struct kars_err *err);

#endif
