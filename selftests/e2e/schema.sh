#!/usr/bin/env bash
# schema.sh - the kars commands built on the schema, as a user runs them:
# kars validate (files, stdin, multi-document, errors with file:line and the
# field), kars explain, and kars crds (its output is deploy/crds/ exactly).
# Usage: selftests/e2e/schema.sh [BUILD_DIR]. Prints "e2e/schema: N passed, N failed".
set -u

cd "$(dirname "$0")/../.." || exit 2
# shellcheck source=selftests/e2e/lib.sh
. selftests/e2e/lib.sh
E2E_NAME=e2e/schema

kars=${1:-build}/bin/kars
tmp=$(mktemp -d /tmp/kars-schema.XXXXXX) || exit 2
trap 'rm -rf "$tmp"' EXIT

for f in selftests/schema/spec-examples/*.yaml; do
	check "spec example $(basename "$f") validates" 0 ' valid$' -- "$kars" validate -f "$f"
done

cat >"$tmp/multi.yaml" <<'YAML'
apiVersion: kars.azure.com/v1alpha1
kind: InferencePolicy
metadata: {name: bot-inference, namespace: kars-bot}
spec:
  appliesTo: {sandboxName: bot}
  modelPreference: {primary: {deployment: gpt-4.1}}
---
apiVersion: kars.azure.com/v1alpha1
kind: KarsSandbox
metadata: {name: bot, namespace: kars-bot}
spec:
  runtime:
    kind: BYO
    byo: {image: "myacr.azurecr.io/agent:1.0"}
  sandbox: {isolation: enhanced}
  inferenceRef: {name: bot-inference}
---
apiVersion: kars.azure.com/v1alpha1
kind: EgressApproval
metadata: {name: gh, namespace: kars-bot}
spec: {sandbox: bot, hosts: [{host: api.github.com}], reason: "x", ttl: P0D, tiket: T-1}
YAML
check "multi-document: the good one is valid" 1 '^inferencepolicy/bot-inference valid$' -- "$kars" validate -f "$tmp/multi.yaml"
check "multi-document: file:line and the missing field" 1 'multi.yaml:8: The KarsSandbox "bot" is invalid: spec.runtime.byo.contractVersion: Required value' -- "$kars" validate -f "$tmp/multi.yaml"
check "multi-document: a misspelt field is refused, not pruned" 1 'multi.yaml:18: The EgressApproval "gh" is invalid: unknown field "spec.tiket"$' -- "$kars" validate -f "$tmp/multi.yaml"
check "stdin" 0 'karssandbox/worker valid' -- sh -c "\"$kars\" validate -f - <selftests/schema/spec-examples/03-worker.yaml"
printf 'apiVersion: kars.azure.com/v1alpha1\nkind: KarsSandbox\nmetadata:\n  name: x\n   bad: indent\n' >"$tmp/syntax.yaml"
check "YAML syntax error: the line" 1 'syntax.yaml: YAML line 5' -- "$kars" validate -f "$tmp/syntax.yaml"
printf 'apiVersion: kars.azure.com/v1alpha1\nkind: KarsSandbox\nmetadata: {name: x}\nspec:\n  upstreamCompatibility: {sigsAgentSandbox: off}\n' >"$tmp/off.yaml"
check "an unquoted off is a boolean, as under kubectl" 1 'spec.upstreamCompatibility.sigsAgentSandbox: Invalid value: "boolean"' -- "$kars" validate -f "$tmp/off.yaml"
check "a missing file" 1 'nope.yaml: No such file' -- "$kars" validate -f "$tmp/nope.yaml"
check "an empty file" 1 'no objects' -- "$kars" validate -f /dev/null
check "validate without -f: usage, exit 2" 2 'usage: kars validate' -- "$kars" validate

check "explain a kind" 0 'KIND: +KarsSandbox' -- "$kars" explain karssandbox
check "explain by short name lists spec" 0 'spec	<Object> -required-' -- "$kars" explain cs
check "explain a field: required children" 0 'contractVersion	<string> -required-' -- "$kars" explain karssandbox.spec.runtime.byo
check "explain a field: its CEL rules" 0 'CEL: self.kind != .BYO. \|\| has\(self.byo\)' -- "$kars" explain KarsSandbox.spec.runtime
check "explain shows enums and defaults" 0 'enum: standard, enhanced, confidential. default: "enhanced"' -- "$kars" explain karssandbox.spec.sandbox
check "explain --recursive" 0 '^    allowedCallers	<\[\]Object>' -- "$kars" explain karssandbox.spec --recursive
check "explain: a map of quantities" 0 'limits	<map\[string\]IntOrString>' -- "$kars" explain karssandbox.spec.resources
check "explain through a list" 0 'FIELD: port <integer>' -- "$kars" explain egressapproval.spec.hosts.port
check "explain an unknown field" 1 'field "spec.nope" does not exist in KarsSandbox' -- "$kars" explain karssandbox.spec.nope
check "explain an unknown kind" 1 "doesn't have a resource type \"pods\"" -- "$kars" explain pods

check "kars crds --out" 0 '^$' -- "$kars" crds --out "$tmp/crds"
check "kars crds output is deploy/crds exactly" 0 '^$' -- diff -r deploy/crds "$tmp/crds"
check "kars crds to stdout: twelve documents" 0 '^12$' -- sh -c "\"$kars\" crds | grep -c '^kind: CustomResourceDefinition'"

e2e_summary
