#!/usr/bin/env bash
# store.sh - kars apply / get / delete against the local object store, as a
# user runs them: kubectl's words (created, configured, unchanged, deleted,
# NotFound), tables with the CRD's printer columns, -o yaml that applies back
# unchanged, errors naming the field and the file:line, finalizers holding a
# deletion, `get -w --resource-version` resuming a watch in another process,
# and `get -w` without it listing the current objects first, like kubectl.
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
# wait_lines FILE N: until FILE has N lines (a watch has printed them), at
# most 10 s; the checks after it say what was missing.
wait_lines() {
	for _ in $(seq 200); do [ "$(wc -l <"$1")" -ge "$2" ] && return; sleep 0.05; done
}
stop_watch() {
	kill "$watch_pid" 2>/dev/null
	wait "$watch_pid" 2>/dev/null
	watch_pid=
}
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
wait_lines "$tmp/watch.out" 2
check "watch saw only what came after its resourceVersion" 0 '^2$' -- sh -c "wc -l <$tmp/watch.out"
check "watch: the deletion first" 0 '^\{"type":"DELETED".*"name":"worker"' -- head -1 "$tmp/watch.out"
check "watch: then the new object" 0 '"type":"ADDED".*"name":"my-agent"' -- sed -n 2p "$tmp/watch.out"
stop_watch
check "watch from 0 replays the history" 0 '"type":"ADDED".*"name":"worker"' -- sh -c "timeout 1 \"$kars\" get cs -A -w --resource-version 0 -o json | head -1"

# Watch without --resource-version: like kubectl, the current objects first
# (ADDED, never the history: worker was deleted), then the changes.
n=$("$kars" get cs -A -o json | grep -c '"kind": "KarsSandbox"')
"$kars" get cs -A -w -o json >"$tmp/watch2.out" 2>&1 &
watch_pid=$!
wait_lines "$tmp/watch2.out" "$n"
check "watch lists first: one ADDED per current object" 0 "^$n\$" -- sh -c "grep -c '^{\"type\":\"ADDED\"' $tmp/watch2.out"
check "watch lists first: not the deleted object of the history" 1 '' -- grep -q '"name":"worker"' "$tmp/watch2.out"
check "delete while watching" 0 'deleted' -- "$kars" delete -f $ex/06-custom-agent.yaml
wait_lines "$tmp/watch2.out" $((n + 1))
check "watch: then the change after the list" 0 '^\{"type":"DELETED".*"name":"custom-agent"' -- sed -n "$((n + 1))p" "$tmp/watch2.out"
stop_watch

# Watch one object by name: only its events, not its namespace's.
sed 's/name: my-agent /name: other-agent /' $ex/08-kagent-migrated.yaml >"$tmp/other.yaml"
check "another object in the namespace" 0 'other-agent created' -- "$kars" apply -f "$tmp/other.yaml"
"$kars" get cs my-agent -n kars-my-agent -w -o json >"$tmp/watch3.out" 2>&1 &
watch_pid=$!
wait_lines "$tmp/watch3.out" 1
"$kars" delete -f "$tmp/other.yaml" >/dev/null 2>&1
sed 's/sigsAgentSandbox: "off"/sigsAgentSandbox: "observe"/' $ex/08-kagent-migrated.yaml >"$tmp/my-agent2.yaml"
check "apply a change to the watched object" 0 'configured' -- "$kars" apply -f "$tmp/my-agent2.yaml"
wait_lines "$tmp/watch3.out" 2
check "watch NAME: the object first" 0 '^\{"type":"ADDED".*"name":"my-agent"' -- head -1 "$tmp/watch3.out"
check "watch NAME: its change, not the other object's deletion" 0 '^\{"type":"MODIFIED".*"name":"my-agent"' -- sed -n 2p "$tmp/watch3.out"
stop_watch

# The table form: the header once, then a row per object.
"$kars" get cs -A -w >"$tmp/watch4.out" 2>&1 &
watch_pid=$!
wait_lines "$tmp/watch4.out" 2
check "watch as a table: header, then the rows" 0 '^NAMESPACE +NAME +PHASE' -- head -1 "$tmp/watch4.out"
check "watch as a table: a current object" 0 '^kars-my-agent +my-agent ' -- cat "$tmp/watch4.out"
stop_watch

check "delete a missing object" 1 'Error from server \(NotFound\)' -- "$kars" delete cs nope -n kars-worker
check "get an unknown kind" 1 "doesn't have a resource type \"pods\"" -- "$kars" get pods
check "apply without -f: usage" 2 'usage: kars apply' -- "$kars" apply
check "a state dir that cannot be made" 1 'store: /proc/kars' -- "$kars" get cs --state /proc/kars

e2e_summary
