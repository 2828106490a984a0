#!/usr/bin/env bash
# controller.sh - kars-controller end to end: the real local store (written
# by `kars apply`), the real kars-controller process and a real kars-router
# in front of the fake upstream.
#
# Covered: an InferencePolicy applied with `kars apply` is compiled and its
# file appears in the sandbox's router directory; the router loads it and
# serves the digest on /kars/v1/policy-status; the controller, asking the
# router, turns Ready=True with that digest, and not before (a router that
# does not answer keeps it False with the reason); a model change is a new
# digest enforced by the same router process; a change made while the
# controller is stopped is reconciled after its restart (list, then watch);
# SIGTERM exits 0; the KarsSandbox says plainly it is not run (NoBackend);
# deletion removes the delivered file, then the object. ToolPolicy: compiled
# to tool-policy.json (the router's governance.profileFile), Ready only once
# the router reports its digest, enforced by the router (/agt/evaluate); a
# profile the governance loader refuses is Degraded, never delivered, and the
# router keeps the good one; a sandbox without the policy's labels is not
# given it. EgressApproval: compiled and delivered, but no enforcer reports
# it (karsd applies hosts), so it stays Pending, never Active.
#
# Usage: selftests/e2e/controller.sh [BUILD_DIR]
# Prints "e2e/controller: N passed, N failed".
set -u

# shellcheck source=selftests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
E2E_NAME=e2e/controller

cd "$(dirname "$0")/../.." || exit 2
build=${1:-build}
fake=$build/bin/fake-upstream
router=$build/bin/kars-router
controller=$build/bin/kars-controller
kars=$build/bin/kars
tmp=$(mktemp -d /tmp/kars-controller.XXXXXX) || exit 2
fake_pid='' router_pid='' ctl_pid=''

cleanup() {
	e2e_stop "$ctl_pid" "$router_pid" "$fake_pid"
	rm -rf "$tmp"
}
trap cleanup EXIT

for bin in "$fake" "$router" "$controller" "$kars"; do
	[ -x "$bin" ] || e2e_abort "$bin is missing (make all)"
done
[ "$(id -u)" = 0 ] || e2e_abort "needs root (the router's control endpoints allow root)"

start_fake_upstream

port=$(e2e_port 0)
base=http://127.0.0.1:$port
state=$tmp/state
out=$tmp/out
policy_file=$out/team-a/bot/inference-policy.json
tp_file=$out/team-a/bot/tool-policy.json
router_api_key
cat >"$tmp/router.json" <<JSON
{"sandbox": "team-a/bot", "listen": "127.0.0.1:$port", "agentUid": 1000,
 "upstream": {"kind": "openai", "baseUrl": "$upstream/v1", "apiKeyFile": "$tmp/api-key"},
 "policy": {"file": "$policy_file", "pollMs": 100},
 "governance": {"profileFile": "$tp_file", "pollMs": 100},
 "budget": {"file": "$tmp/budget.json", "persistIntervalMs": 50},
 "audit": {"file": "$tmp/audit.jsonl", "keyFile": "$tmp/audit.key", "checkpointEvery": 64}}
JSON

start_controller() {
	"$controller" --state-dir "$state" --out-dir "$out" --router "team-a/bot=$base" \
		--router "team-a/bot2=$base" --dns-resolver 127.0.0.53 --dns-max-qps 50 \
		--dns-max-name-length 100 --log-level debug 2>>"$tmp/controller.log" &
	ctl_pid=$!
}

ctl_exit=
stop_controller() { # sets ctl_exit (not in a subshell: wait needs the child)
	kill -TERM "$ctl_pid"
	wait "$ctl_pid"
	ctl_exit=$?
	ctl_pid=
}

# until CMD... succeeds (or 10 s)
until_ok() { e2e_wait 50 "$@"; } # CMD...: until it succeeds (at most 10 s)

ip_json() { "$kars" get ip bot-inference -n team-a --state "$state" -o json; }
cond() { # TYPE FIELD: of the InferencePolicy
	ip_json | jq -r ".status.conditions[] | select(.type == \"$1\") | .$2"
}
router_digest() { curl -s "$base/kars/v1/policy-status" | jq -r '.entries[0].digest'; }
is_ready_with() { [ "$(cond Ready status)" = True ] && [ "$(ip_json | jq -r .status.loadedDigest)" = "sha256:$1" ]; }
chat() {
	curl -s -H 'Content-Type: application/json' \
		--data-binary '{"messages":[{"role":"user","content":"hi"}]}' "$base/v1/chat/completions"
}
command -v jq >/dev/null || e2e_abort "jq is missing"

manifests() { # MODEL
	cat <<YAML
apiVersion: kars.azure.com/v1alpha1
kind: KarsSandbox
metadata: {name: bot, namespace: team-a, labels: {app: bot}}
spec:
  runtime: {kind: OpenAIAgents}
  sandbox: {isolation: standard}
  inferenceRef: {name: bot-inference}
  governance: {toolPolicyRef: {name: bot-tools}}
  networkPolicy:
    egressMode: Strict
    allowedEndpoints: [{host: api.github.com}]
---
apiVersion: kars.azure.com/v1alpha1
kind: InferencePolicy
metadata: {name: bot-inference, namespace: team-a}
spec:
  appliesTo: {action: chat}
  modelPreference:
    primary: {provider: openai, deployment: $1}
  tokenBudget: {perRequestTokens: 500}
YAML
}

# --- karsd egress options: a bad value is refused, naming the flag ------------
check "--dns-max-qps 0 is refused" 1 '--dns-max-qps: "0" is not a number from 1 to 1000000' -- "$controller" --state-dir "$state" --dns-max-qps 0
check "--dns-max-name-length 254 is refused" 1 '--dns-max-name-length: "254"' -- "$controller" --state-dir "$state" --dns-max-name-length 254
check "--dns-resolver that is not IPv4 is refused" 1 '--dns-resolver: "::1" is not an IPv4 address' -- "$controller" --state-dir "$state" --dns-resolver ::1
check "--dns-resolver-port 70000 is refused" 1 '--dns-resolver-port: "70000"' -- "$controller" --state-dir "$state" --dns-resolver-port 70000

# --- the controller before the router: not Ready, with the reason ------------
start_controller
check "apply the sandbox and its InferencePolicy" 0 'created' -- \
	bash -c "$(declare -f manifests); manifests gpt-4o | '$kars' apply --state '$state' -f -"
check "the compiled file appears in the sandbox's router directory" 0 '' -- until_ok test -s "$policy_file"
check "no router yet: Ready=False, AwaitingRouterEnforcement" 0 '' -- until_ok \
	bash -c "[ \"\$('$kars' get ip bot-inference -n team-a --state '$state' -o json | jq -r '.status.conditions[] | select(.type==\"Ready\") | .reason')\" = AwaitingRouterEnforcement ]"
check "the message says the router did not answer" 0 'routers report sha256:[0-9a-f]{64}; bot: router at http://127.0.0.1:[0-9]+: (Couldn|Could not connect|Connection refused)' -- cond Ready message
check "the KarsSandbox says it is not run: NoBackend" 0 '^False NoBackend$' -- \
	bash -c "'$kars' get cs bot -n team-a --state '$state' -o json | jq -r '.status.conditions[] | select(.type==\"RuntimeReady\") | \"\\(.status) \\(.reason)\"'"
check "(and what was not run is not called Running)" 0 '^Pending$' -- \
	bash -c "'$kars' get cs bot -n team-a --state '$state' -o json | jq -r .status.phase"

tp_json() { "$kars" get tp bot-tools -n team-a --state "$state" -o json; }
tp_cond() { tp_json | jq -r ".status.conditions[] | select(.type == \"$1\") | .$2"; }
tp_manifest() { # DENIED-KEY (denied_actions, or a typo the loader refuses)
	cat <<YAML
apiVersion: kars.azure.com/v1alpha1
kind: ToolPolicy
metadata: {name: bot-tools, namespace: team-a}
spec:
  appliesTo: {tool: shell_exec, sandboxMatchLabels: {app: bot}}
  agtProfile:
    inline:
      version: "1.0"
      agent: bot
      policies:
        - {name: no-shell, type: capability, $1: ["tool.invoke:shell*"]}
YAML
}
evaluate() { curl -s -H 'Content-Type: application/json' --data-binary "{\"action\":\"$1\"}" "$base/agt/evaluate"; }
router_entry() { # KIND FIELD
	curl -s "$base/kars/v1/policy-status" | jq -r ".entries[] | select(.kind == \"$1\") | .$2"
}
check "apply a ToolPolicy for the sandbox's labels" 0 'created' -- \
	bash -c "$(declare -f tp_manifest); tp_manifest denied_actions | '$kars' apply --state '$state' -f -"
check "it is compiled to the router's governance.profileFile" 0 '' -- until_ok test -s "$tp_file"
check "no router yet: the ToolPolicy is not Ready (AwaitingRouterEnforcement)" 0 '' -- until_ok \
	bash -c "$(declare -f tp_json tp_cond); kars='$kars' state='$state'; [ \"\$(tp_cond Ready reason)\" = AwaitingRouterEnforcement ]"

# --- the router starts: it loads the file, the controller sees the digest -------
start_router
d1=$(digest "$policy_file" team-a/bot-inference)
check "the router loads the compiled file (same digest as computed here)" 0 '' -- \
	until_ok bash -c "[ \"\$(curl -s '$base/kars/v1/policy-status' | jq -r '.entries[0].digest')\" = sha256:$d1 ]"
check "compiledDigest is that digest" 0 "^sha256:$d1\$" -- bash -c "$(declare -f ip_json); kars='$kars' state='$state' ip_json | jq -r .status.compiledDigest"
check "the controller turns Ready=True with the router's digest" 0 '' -- \
	until_ok bash -c "$(declare -f ip_json cond is_ready_with); kars='$kars' state='$state' is_ready_with $d1"
check "phase Ready, reason RouterEnforcing" 0 '^Ready RouterEnforcing$' -- \
	bash -c "'$kars' get ip bot-inference -n team-a --state '$state' -o json | jq -r '\"\\(.status.phase) \" + (.status.conditions[] | select(.type==\"Ready\") | .reason)'"
check "the agent's chat goes to the policy's model" 0 '"model": ?"gpt-4o"' -- chat

tp1=$(digest "$tp_file" team-a/bot-tools)
check "the router reports the ToolPolicy's digest (as computed here)" 0 '' -- \
	until_ok bash -c "$(declare -f router_entry); base='$base'; [ \"\$(router_entry ToolPolicy digest)\" = sha256:$tp1 ]"
check "(under its name)" 0 '^team-a/bot-tools$' -- router_entry ToolPolicy name
check "the ToolPolicy turns Ready=True with that digest" 0 '' -- until_ok \
	bash -c "$(declare -f tp_json tp_cond); kars='$kars' state='$state'; [ \"\$(tp_cond Ready status)\" = True ] && [ \"\$(tp_json | jq -r .status.loadedDigest)\" = sha256:$tp1 ]"
check "the router enforces it: a denied tool" 0 '"allowed":false,"decision":"deny","matched_rule":"no-shell"' -- evaluate tool.invoke:shell_exec
check "(another tool is not matched by it)" 0 '"allowed":true' -- evaluate tool.invoke:web_search

# --- a ToolPolicy the governance loader refuses: Degraded, never delivered -------
check "apply a ToolPolicy with a key the AGT loader refuses" 0 'configured' -- \
	bash -c "$(declare -f tp_manifest); tp_manifest denied_action | '$kars' apply --state '$state' -f -"
check "it is Degraded, SpecInvalid, not Ready" 0 '' -- until_ok \
	bash -c "$(declare -f tp_json tp_cond); kars='$kars' state='$state'; [ \"\$(tp_json | jq -r .status.phase)\" = Degraded ] && [ \"\$(tp_cond Ready status)\" = False ] && [ \"\$(tp_cond Degraded reason)\" = SpecInvalid ]"
check "the message is the loader's" 0 'denied_action' -- tp_cond Degraded message
check "the good file stays: same digest on the router" 0 "^sha256:$tp1\$" -- router_entry ToolPolicy digest
check "(and the deny still holds)" 0 '"allowed":false' -- evaluate tool.invoke:shell_exec
check "fixed again: Ready=True with the first digest" 0 '' -- bash -c "$(declare -f tp_manifest); tp_manifest denied_actions | '$kars' apply --state '$state' -f - >/dev/null && for i in \$(seq 200); do [ \"\$('$kars' get tp bot-tools -n team-a --state '$state' -o json | jq -r '.status.conditions[] | select(.type==\"Ready\") | .status')\" = True ] && exit 0; sleep 0.05; done; exit 1"

# --- an EgressApproval: delivered, but nothing reports it enforced ---------------
check "apply an EgressApproval for the sandbox" 0 'created' -- bash -c "'$kars' apply --state '$state' -f - <<'YAML'
apiVersion: kars.azure.com/v1alpha1
kind: EgressApproval
metadata: {name: gh, namespace: team-a}
spec:
  sandbox: bot
  hosts: [{host: api.github.com, port: 443}]
  ttl: PT1H
  reason: e2e
YAML"
check "its file is delivered" 0 '' -- until_ok test -s "$out/team-a/bot/egress-approvals/gh.json"
check "not reported by any enforcer: Pending, never Active" 0 '' -- until_ok bash -c "[ \"\$('$kars' get egressapproval gh -n team-a --state '$state' -o json | jq -r '.status.phase + \" \" + (.status.conditions[] | select(.type==\"Ready\") | .reason)')\" = 'Pending AwaitingRouterEnforcement' ]"

# --- a model change: new digest, same router process -----------------------------
check "apply a new model" 0 'configured' -- \
	bash -c "$(declare -f manifests); manifests gpt-4.1-mini | '$kars' apply --state '$state' -f -"
check "the file changes" 0 '' -- until_ok grep -q gpt-4.1-mini "$policy_file"
d2=$(digest "$policy_file" team-a/bot-inference)
check "the new digest differs" 1 '' -- test "$d1" = "$d2"
check "Ready=True again with the new digest" 0 '' -- \
	until_ok bash -c "$(declare -f ip_json cond is_ready_with); kars='$kars' state='$state' is_ready_with $d2"
check "the router reports the new digest" 0 "^sha256:$d2\$" -- router_digest
check "the same router process enforces it (no restart)" 0 '' -- kill -0 "$router_pid"
check "the agent's chat goes to the new model" 0 '"model": ?"gpt-4.1-mini"' -- chat
rv1=$(ip_json | jq -r .metadata.resourceVersion)
sleep 1
check "once Ready, the controller writes nothing (no status churn)" 0 "^$rv1\$" -- bash -c "$(declare -f ip_json); kars='$kars' state='$state' ip_json | jq -r .metadata.resourceVersion"
check "observedGeneration follows the spec" 0 '^2$' -- bash -c "$(declare -f ip_json cond); kars='$kars' state='$state' cond Ready observedGeneration"

# --- SIGTERM, a change while stopped, restart --------------------------------------
stop_controller
check "SIGTERM: the controller exits 0" 0 '^0$' -- echo "$ctl_exit"
manifests o4-mini | "$kars" apply --state "$state" -f - >/dev/null
sleep 0.5
check "while it is stopped nothing is delivered" 1 '' -- grep -q o4-mini "$policy_file"
start_controller
check "after the restart the change is delivered" 0 '' -- until_ok grep -q o4-mini "$policy_file"
d3=$(digest "$policy_file" team-a/bot-inference)
check "and enforced: Ready=True with the third digest" 0 '' -- \
	until_ok bash -c "$(declare -f ip_json cond is_ready_with); kars='$kars' state='$state' is_ready_with $d3"
check "the restarted controller listed, it did not replay the log" 0 'resourceVersion [0-9]+' -- \
	grep -E 'kars-controller: store .* \(resourceVersion [0-9]+\)' "$tmp/controller.log"

# --- a router answering for another sandbox is not believed ------------------------
# (bot2's router URL points at bot's router, which says it is team-a/bot)
check "a second sandbox using the policy" 0 'created' -- bash -c "sed -e 's/name: bot, namespace/name: bot2, namespace/' <<'YAML' | '$kars' apply --state '$state' -f -
apiVersion: kars.azure.com/v1alpha1
kind: KarsSandbox
metadata: {name: bot, namespace: team-a}
spec:
  runtime: {kind: OpenAIAgents}
  sandbox: {isolation: standard}
  inferenceRef: {name: bot-inference}
YAML"
check "its file is delivered" 0 '' -- until_ok test -s "$out/team-a/bot2/inference-policy.json"
check "the wrong router's answer is not taken: Ready=False" 0 '' -- \
	until_ok bash -c "$(declare -f ip_json cond); kars='$kars' state='$state'; [ \"\$(cond Ready reason)\" = AwaitingRouterEnforcement ]"
check "the message names the mismatch" 0 '1 of 2 routers report .*bot2: .*for sandbox team-a/bot, not 1 for team-a/bot2' -- cond Ready message
check "bot2 deleted: its file is taken back and Ready again" 0 '' -- bash -c "'$kars' delete cs bot2 -n team-a --state '$state' >/dev/null"
check "bot2's file is removed" 0 '' -- until_ok bash -c "! test -e '$out/team-a/bot2/inference-policy.json'"
check "Ready=True again" 0 '' -- \
	until_ok bash -c "$(declare -f ip_json cond is_ready_with); kars='$kars' state='$state' is_ready_with $d3"

# --- deletion: the file goes, then the object ----------------------------------------
check "delete the InferencePolicy: held by the finalizer" 0 'marked for deletion' -- "$kars" delete ip bot-inference -n team-a --state "$state"
check "the delivered file is removed" 0 '' -- until_ok bash -c "! test -e '$policy_file'"
check "the object is gone once the finalizer is removed" 0 '' -- \
	until_ok bash -c "! '$kars' get ip bot-inference -n team-a --state '$state'"
check "the router no longer has a policy: inference refused" 0 '"policy_not_loaded"' -- \
	bash -c "for i in \$(seq 100); do out=\$(curl -s -H 'Content-Type: application/json' --data-binary '{\"messages\":[]}' '$base/v1/chat/completions'); case \$out in *policy_not_loaded*) echo \"\$out\"; exit 0;; esac; sleep 0.05; done; echo \"\$out\""
check "the sandbox, without its policy: Degraded, InferencePolicyNotFound" 0 '' -- \
	until_ok bash -c "'$kars' get cs bot -n team-a --state '$state' -o json | jq -r '.status.conditions[] | select(.type==\"Ready\") | .reason' | grep -q InferencePolicyNotFound"
stop_controller
check "SIGTERM again: exit 0" 0 '^0$' -- echo "$ctl_exit"
check "it logged why it stopped" 0 'signal 15: stopping' -- cat "$tmp/controller.log"

e2e_summary
