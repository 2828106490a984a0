#!/usr/bin/env bash
# store.sh - kars apply / get / delete against the local object store, as a
# user runs them: kubectl's words (created, configured, unchanged, deleted,
# NotFound), tables with the CRD's printer columns, -o yaml that applies back
# unchanged, errors naming the field and the file:line, finalizers holding a
# deletion, and `get -w --resource-version` resuming a watch in another process.
# Usage: selftests/e2e/store.sh [BUILD_DIR]. Prints "e2e/store: N passed, N failed".
set -u

cd "$(dirname "$0")/../.." || exit 2
# shellcheck source=selftests/e2e/lib.sh
. selftests/e2e/lib.sh
E2E_NAME=e2e/store

kars=${1:-build}/bin/kars
tmp=$(mktemp -d /tmp/kars-store.XXXXXX) || exit 2
watch_pid=
cleanup() {
	[ -n "$watch_pid" ] && kill "$watch_pid" 2>/dev/null && wait "$watch_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
export KARS_STATE_DIR=$tmp/state
ex=selftests/schema/spec-examples

check "apply creates" 0 '^karssandbox.kars.azure.com/worker created$' -- "$kars" apply -f $ex/03-worker.yaml
check "apply again: unchanged" 0 '^karssandbox.kars.azure.com/worker unchanged$' -- "$kars" apply -f $ex/03-worker.yaml
sed 's/trustThreshold: 500/trustThreshold: 700/' $ex/03-worker.yaml >"$tmp/worker2.yaml"
check "apply a spec change: configured" 0 '^karssandbox.kars.azure.com/worker configured$' -- "$kars" apply -f "$tmp/worker2.yaml"
check "generation counts spec changes" 0 '^  generation: 2$' -- "$kars" get cs worker -n kars-worker -o yaml
check "apply from stdin, many documents" 0 'custom-agent created' -- sh -c "cat $ex/0[46]-*.yaml | sed 's/^apiVersion/---\napiVersion/' | \"$kars\" apply -f -"
check "get: the CRD's printer columns" 0 '^NAMESPACE +NAME +PHASE +RUNTIME +INFERENCEPOLICY +ISOLATION +AGE$' -- "$kars" get karssandboxes -A
check "get: a row" 0 '^kars-custom-agent +custom-agent +BYO +custom-agent-inference +enhanced +[0-9]+s$' -- "$kars" get cs -A
check "get -o wide adds priority columns" 0 'ALLOWLIST' -- "$kars" get cs -A -o wide
check "get in an empty namespace" 0 'No resources found in default namespace.' -- "$kars" get cs
check "get a missing object" 1 'Error from server \(NotFound\): karssandboxes.kars.azure.com "nope" not found' -- "$kars" get cs nope -n kars-worker
check "get -o json: a List" 0 '"kind": "List"' -- "$kars" get cs -A -o json
"$kars" get cs worker -n kars-worker -o yaml >"$tmp/worker.out.yaml"
check "get -o yaml applies back unchanged" 0 'worker unchanged' -- "$kars" apply -f "$tmp/worker.out.yaml"
check "get -o yaml keeps the defaults the store applied" 0 'seccompProfile: kars-strict' -- cat "$tmp/worker.out.yaml"

printf 'apiVersion: kars.azure.com/v1alpha1\nkind: EgressApproval\nmetadata: {name: gh, namespace: kars-worker}\nspec: {sandbox: worker, hosts: [{host: api.github.com}], reason: "release", ttl: P0D}\n' >"$tmp/bad.yaml"
check "apply refuses an invalid object, naming the field and line" 1 'bad.yaml:1: Error from server \(Invalid\): EgressApproval.kars.azure.com "gh" is invalid: spec.ttl: Invalid value: "object": ttl must be a nonzero' -- "$kars" apply -f "$tmp/bad.yaml"
check "nothing was stored" 0 'No resources found in kars-worker namespace' -- "$kars" get eappr -n kars-worker

# A finalizer holds the deletion until it is removed.
sed 's/^  namespace: kars-worker$/  namespace: kars-worker\n  finalizers: [kars.azure.com\/namespace-cleanup]/' $ex/03-worker.yaml | sed 's/name: worker$/name: held/' >"$tmp/held.yaml"
check "apply with a finalizer" 0 'held created' -- "$kars" apply -f "$tmp/held.yaml"
check "delete with a finalizer only marks it" 0 'karssandbox.kars.azure.com "held" marked for deletion \(waiting for finalizers \["kars.azure.com/namespace-cleanup"\]\)' -- "$kars" delete cs held -n kars-worker
check "it is still there, with a deletionTimestamp" 0 'deletionTimestamp' -- "$kars" get cs held -n kars-worker -o yaml

# Watch: resume from a resourceVersion, then live from another process.
rv=$("$kars" get cs -A -o json | sed -n 's/.*"resourceVersion": "\([0-9]*\)".*/\1/p' | tail -1)
"$kars" get cs -A -w --resource-version "$rv" -o json >"$tmp/watch.out" 2>&1 &
watch_pid=$!
check "delete by file" 0 'karssandbox.kars.azure.com "worker" deleted' -- "$kars" delete -f $ex/03-worker.yaml
check "apply while watching" 0 'my-agent created' -- "$kars" apply -f $ex/08-kagent-migrated.yaml
for _ in $(seq 100); do [ "$(wc -l <"$tmp/watch.out")" -ge 2 ] && break; sleep 0.05; done
check "watch saw only what came after its resourceVersion" 0 '^2$' -- sh -c "wc -l <$tmp/watch.out"
check "watch: the deletion first" 0 '^\{"type":"DELETED".*"name":"worker"' -- head -1 "$tmp/watch.out"
check "watch: then the new object" 0 '"type":"ADDED".*"name":"my-agent"' -- sed -n 2p "$tmp/watch.out"
kill "$watch_pid" 2>/dev/null
wait "$watch_pid" 2>/dev/null
watch_pid=
check "watch from 0 replays the history" 0 '"type":"ADDED".*"name":"worker"' -- sh -c "timeout 1 \"$kars\" get cs -A -w --resource-version 0 -o json | head -1"

check "delete a missing object" 1 'Error from server \(NotFound\)' -- "$kars" delete cs nope -n kars-worker
check "get an unknown kind" 1 "doesn't have a resource type \"pods\"" -- "$kars" get pods
check "apply without -f: usage" 2 'usage: kars apply' -- "$kars" apply
check "a state dir that cannot be made" 1 'store: /proc/kars' -- "$kars" get cs --state /proc/kars

e2e_summary
