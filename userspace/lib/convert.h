/* convert.h - translating other projects' agent manifests into kars objects
 * and back: kagent.dev/v1alpha2 Agent (convert_kagent.c) and
 * agents.x-k8s.io/v1alpha1 Sandbox <-> KarsSandbox (convert_sandbox.c).
 *
 * Pure functions from JSON trees to JSON trees (the CLI's `kars migrate
 * from-kagent` and `kars convert` are their only I/O). Every field of the
 * input is accounted for: a converter takes the fields it maps out of a
 * copy of the input, and whatever is left is reported field by field in a
 * kars_conv_report, by path, with the reason it could not be carried
 * (convert_report.c). So a field nobody thought of is reported too, never
 * dropped in silence. Server-written fields (status, metadata.uid,
 * resourceVersion, ...) are not user data and are ignored.
 *
 * Every object a converter returns passes kars_convert_validate(); emitting
 * an invalid manifest is a bug (the original emitted InferencePolicies with
 * no model and overlay manifests without the required fields).
 */
#ifndef KARS_CONVERT_H
#define KARS_CONVERT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define KAGENT_API_VERSION   "kagent.dev/v1alpha2"
#define UPSTREAM_API_VERSION "agents.x-k8s.io/v1alpha1"

/* The label every migrated sandbox carries; ToolPolicies select on it. */
#define KARS_SANDBOX_LABEL "kars.azure.com/sandbox"
/* Annotations recording where an object came from. */
#define KARS_ANN_MIGRATED_FROM "kars.io/migrated-from"
#define KARS_ANN_MIGRATED_AT   "kars.io/migration-date"
#define KARS_ANN_KAGENT_AGENT  "kars.io/kagent-agent"
#define KARS_ANN_KAGENT_DESC   "kars.io/kagent-description"
#define KARS_ANN_CONVERTED     "kars.io/converted-from"

enum kars_conv_kind {
	KARS_CONV_LOSSY = 1, /* a field of the input is not in the output */
	KARS_CONV_NOTE,	     /* kept elsewhere, or a behaviour the user must know */
};

struct kars_conv_note {
	enum kars_conv_kind kind;
	char *doc;    /* "Agent kagent/k8s-agent" */
	char *path;   /* "spec.declarative.stream" */
	char *reason; /* why it is not carried */
};

struct kars_conv_report {
	size_t count, lossy;
	struct kars_conv_note *v;
};

void kars_conv_report_free(struct kars_conv_report *r);

/* Relation of the KarsSandbox to an upstream Sandbox
 * (spec.upstreamCompatibility.sigsAgentSandbox). */
enum kars_conv_mode {
	KARS_MODE_NATIVE = 0, /* "off": kars owns the workload */
	KARS_MODE_TRANSLATE,  /* kars owns it and emits an upstream Sandbox */
	KARS_MODE_OBSERVE,    /* kars mirrors an upstream Sandbox's status */
	KARS_MODE_OVERLAY,    /* the upstream Sandbox owns the pod; kars governs */
};

struct kars_conv_opts {
	const char *ns;		 /* -n: namespace of every output (NULL: the input's) */
	const char *isolation;	 /* --isolation (NULL: from the input, else enhanced) */
	const char *model;	 /* --model [PROVIDER/]DEPLOYMENT (NULL: from ModelConfig) */
	const char *image;	 /* --image for a Declarative Agent's OpenClaw runtime */
	const char *date;	 /* YYYY-MM-DD for kars.io/migration-date (NULL: none) */
	const char *sandbox_ref; /* --sandbox-ref [NS/]NAME (NULL: the Sandbox itself) */
	enum kars_conv_mode mode;
};

/* docs: every document of the input (array). Each kagent Agent becomes a
 * KarsSandbox, an InferencePolicy, one ToolPolicy per MCP tool reference
 * and an McpServer per referenced RemoteMCPServer found in docs; the model
 * comes from the Agent's ModelConfig in docs, else from o->model. *out is a
 * new array of the objects in emission order. -EINVAL with err naming the
 * document and field for input that is not a convertible Agent. */
int kars_convert_kagent(const json_t *docs, const struct kars_conv_opts *o, json_t **out,
			struct kars_conv_report *r, struct kars_err *err);

/* One agents.x-k8s.io Sandbox -> a KarsSandbox in mode o->mode (plus an
 * InferencePolicy when o->model is set). */
int kars_convert_sandbox_to_kars(const json_t *sandbox, const struct kars_conv_opts *o,
				 json_t **out, struct kars_conv_report *r, struct kars_err *err);

/* One KarsSandbox -> an agents.x-k8s.io Sandbox. */
int kars_convert_kars_to_sandbox(const json_t *ks, const struct kars_conv_opts *o, json_t **out,
				 struct kars_conv_report *r, struct kars_err *err);

/* Checks every object of objs: kars kinds with the kars validator (on a
 * copy: no defaults are added to objs), upstream Sandboxes against the
 * fields of their CRD that kars writes. 0, or -EINVAL naming the object
 * and field. */
int kars_convert_validate(const json_t *objs, struct kars_err *err);

/* The first document's apiVersion/kind as "apiVersion/kind" into buf. */
const char *kars_conv_type_of(const json_t *doc, char *buf, size_t len);

/* RFC 7386 JSON merge patch: a new value, target with patch applied. */
json_t *kars_json_merge_patch(const json_t *target, const json_t *patch);

/* "[PROVIDER/]DEPLOYMENT" -> {"provider":..,"deployment":..} (new ref), or
 * NULL with err when it cannot make a valid modelPreference.primary. */
json_t *kars_conv_parse_model(const char *model, struct kars_err *err);

#endif
