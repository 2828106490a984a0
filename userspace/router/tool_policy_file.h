/* tool_policy_file.h - the ToolPolicy file as kars-controller delivers it.
 *
 * The controller compiles a ToolPolicy to one JSON object (docs/compiled-policy.md):
 *
 *   {"kind":"ToolPolicy","name":"tools","namespace":"team-a",
 *    "profile":{<the AGT profile>},"schemaVersion":1}
 *
 * and the router's governance.profileFile names it. This reader takes the
 * profile out for the governance loader and computes the digest the router
 * reports on /kars/v1/policy-status: over "<namespace>/<name>" and the bytes
 * exactly as read, like the InferencePolicy's. A file that is not such an
 * object (a hand-written AGT profile, YAML or JSON: the router also runs
 * without a controller) is handed to the loader as it is and has no digest.
 */
#ifndef KARS_ROUTER_TOOL_POLICY_FILE_H
#define KARS_ROUTER_TOOL_POLICY_FILE_H

#include <stddef.h>

#include "err.h"
#include "policy_compile.h"

#define KARS_TOOL_POLICY_MAX_BYTES (1u << 20)

struct kars_tool_policy_file {
	char *profile; /* what the governance loader reads (malloc'd, NUL-terminated) */
	size_t profile_len;
	char name[256];		      /* "<namespace>/<name>"; "" for a hand-written profile */
	char digest[KARS_DIGEST_LEN]; /* "" for a hand-written profile */
};

/* Parses the len bytes of buf read from path (named in errors). */
int kars_tool_policy_file_parse(const char *buf, size_t len, const char *path, const char *sandbox,
				struct kars_tool_policy_file *out, struct kars_err *err);

/* Reads path. sandbox is the router's ("ns/name" or "name"): a compiled
 * ToolPolicy of another namespace is refused (delivered to the wrong
 * router). 0, or -errno with err naming the file and the field. */
int kars_tool_policy_file_read(const char *path, const char *sandbox,
			       struct kars_tool_policy_file *out, struct kars_err *err);
void kars_tool_policy_file_free(struct kars_tool_policy_file *f);

#endif
