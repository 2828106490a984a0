#!/usr/bin/env bash
# sandbox_ops.sh - the per-sandbox verbs of local mode end to end: kars
# egress, model, credentials, trace, audit and connect against a real store,
# a real kars-controller, a real kars-router in front of the fake upstream, a
# real karsd and a real local sandbox (made with the local library by
# build/tests/sandbox_tool: an agent under kars-strict in its own UID,
# cgroup, mount and PID namespaces).
#
# No local backend exists on this branch yet, so this test writes the
# sandbox's run/router.json itself (the backend's contract file) and starts
# the router and applies the karsd policy by hand; once the backend lands the
# lead switches this test to `kars up --local` and `kars add`.
#
# Covered: egress --approve/--deny/--enforce edit the KarsSandbox in the
# store (and nothing else; bad flags and unknown sandboxes change nothing);
# egress --learned reads karsd's learned list; model set changes the
# InferencePolicy, the controller delivers it and the same router process
# serves the new model; credentials update puts the key in the router's
# directory (router UID, 0600), the router uses it without a restart, a
# group-readable source is refused; trace NAME shows this sandbox's verdicts
# with its columns and -o json; audit verify/tail NAME on the router's
# chain; connect runs as the agent (UID, cgroup, seccomp, no_new_privs, the
# agent's /proc and /sandbox, the router's files hidden), on a pty when
# stdin is a terminal.
#
# Usage: selftests/e2e/sandbox_ops.sh [BUILD_DIR]
# Prints "e2e/sandbox_ops: N passed, N failed".
set -u

# shellcheck source=selftests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
E2E_NAME=e2e/sandbox_ops

cd "$(dirname "$0")/../.." || exit 2
build=${1:-build}
build=$(cd "$build" && pwd)
fake=$build/bin/fake-upstream
router=$build/bin/kars-router
controller=$build/bin/kars-controller
karsd=$build/bin/karsd
kars=$build/bin/kars
tool=$build/tests/sandbox_tool
for bin in "$fake" "$router" "$controller" "$karsd" "$kars" "$tool"; do
	[ -x "$bin" ] || e2e_abort "$bin is missing (make all)"
done
[ "$(id -u)" = 0 ] || e2e_abort "needs root (cgroups, namespaces, karsd)"

# Our own names: ports 22000-22999, UIDs 62200-62299, pins and cgroups
# prefixed with the branch name.
ns=i5c-$$
sb=$ns/bot
tmp=$(mktemp -d /var/tmp/kars-e2e-ops.XXXXXX) || exit 2
chmod 711 "$tmp"
root=$tmp/root
state=$root/state
out=$tmp/out
pins=/sys/fs/bpf/kars-e2e-ops-$$
rport=$((22000 + $$ % 400))
fport=$((rport + 400))
fake_pid='' router_pid='' ctl_pid='' karsd_pid='' tool_pid=''

cleanup() {
	[ -n "$karsd_pid" ] && KARSD_SOCKET=$tmp/karsd.sock "$kars" dataplane remove "$sb" >/dev/null 2>&1
	[ -n "$karsd_pid" ] && KARSD_SOCKET=$tmp/karsd.sock "$kars" dataplane remove "$ns/other" >/dev/null 2>&1
	for pid in $ctl_pid $router_pid $tool_pid $karsd_pid $fake_pid; do
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	[ -n "${cg_other:-}" ] && rmdir "$cg_other/a" "$cg_other/r" "$cg_other" 2>/dev/null
	rm -rf "$pins"
	if [ -n "${KEEP:-}" ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

mkdir -p "$root" "$out"
export KARS_STATE_DIR=$state KARSD_SOCKET=$tmp/karsd.sock

# --- the parts ------------------------------------------------------------------
"$fake" --listen "127.0.0.1:$fport" --api-key sk-new-key 2>"$tmp/fake.log" &
fake_pid=$!
"$karsd" --socket "$tmp/karsd.sock" --pin-dir "$pins" 2>"$tmp/karsd.log" &
karsd_pid=$!
"$tool" "$root" "$ns" bot 62200 "$tmp/sb.json" -- /bin/sleep 100000 2>"$tmp/tool.log" &
tool_pid=$!
for _ in $(seq 200); do
	[ -S "$tmp/karsd.sock" ] && [ -s "$tmp/sb.json" ] && curl -s "127.0.0.1:$fport" >/dev/null && break
	sleep 0.05
done
[ -s "$tmp/sb.json" ] || e2e_abort "sandbox_tool: $(cat "$tmp/tool.log")"
[ -S "$tmp/karsd.sock" ] || e2e_abort "karsd did not start: $(cat "$tmp/karsd.log")"
j() { jq -r ".$1" "$tmp/sb.json"; }
agent_uid=$(j agentUid) router_uid=$(j routerUid) agent_pid=$(j agentPid)
rdir=$(j routerDir) sdir=$(j sandboxDir) cg_agent=$(j cgAgent) cg_router=$(j cgRouter)

# The router's key: the old one, which the fake upstream refuses.
printf 'sk-old-key\n' >"$rdir/api-key"
chown "$router_uid:$router_uid" "$rdir/api-key"
chmod 600 "$rdir/api-key"
cat >"$rdir/router.conf" <<JSON
{"sandbox": "$sb", "listen": "127.0.0.1:$rport", "agentUid": $agent_uid,
 "upstream": {"kind": "openai", "baseUrl": "http://127.0.0.1:$fport/v1", "apiKeyFile": "$rdir/api-key"},
 "policy": {"file": "$out/$sb/inference-policy.json", "pollMs": 100},
 "budget": {"file": "$rdir/budget.json", "persistIntervalMs": 50},
 "audit": {"file": "$rdir/audit.jsonl", "keyFile": "$rdir/audit.key", "checkpointEvery": 4}}
JSON
"$router" --config "$rdir/router.conf" 2>"$tmp/router.log" &
router_pid=$!
# What the local backend will write (its contract with these verbs).
cat >"$root/sandboxes/$sb/run/router.json" <<JSON
{"routerPort": $rport, "proxyPort": $((rport + 1)), "routerUid": $router_uid,
 "agentUid": $agent_uid, "routerPid": $router_pid, "agentPid": $agent_pid}
JSON
"$kars" dataplane apply -f - >/dev/null <<JSON || e2e_abort "karsd apply failed"
{"sandbox": "$sb", "mode": "learn",
 "agent": {"cgroup": "$cg_agent", "uid": $agent_uid}, "router": {"cgroup": "$cg_router", "uid": $router_uid}}
JSON
cg_other=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)/kars-e2e-other-$$
mkdir -p "$cg_other/a" "$cg_other/r"
"$kars" dataplane apply -f - >/dev/null <<JSON || e2e_abort "karsd apply (other) failed"
{"sandbox": "$ns/other", "mode": "learn",
 "agent": {"cgroup": "$cg_other", "uid": 1000}, "router": {"cgroup": "$cg_other/r", "uid": 1001}}
JSON
"$kars" apply -f - >/dev/null <<YAML || e2e_abort "kars apply failed"
apiVersion: kars.azure.com/v1alpha1
kind: KarsSandbox
metadata: {name: bot, namespace: $ns}
spec:
  runtime: {kind: OpenAIAgents}
  sandbox: {isolation: standard}
  inferenceRef: {name: bot-inference}
  networkPolicy:
    egressMode: Learn
    allowedEndpoints: [{host: api.github.com}]
---
apiVersion: kars.azure.com/v1alpha1
kind: InferencePolicy
metadata: {name: bot-inference, namespace: $ns}
spec:
  appliesTo: {sandboxName: bot, action: chat}
  modelPreference:
    primary: {provider: openai, deployment: gpt-4o-mini}
  allowedModels: [gpt-4o]
YAML
"$controller" --state-dir "$state" --out-dir "$out" --router "$sb=http://127.0.0.1:$rport" \
	2>"$tmp/controller.log" &
ctl_pid=$!

until_ok() { e2e_wait 50 "$@"; } # CMD...: until it succeeds (at most 10 s)
sbx() { "$kars" get karssandbox bot -n "$ns" -o json; }
chat() { # the model the router sent upstream, or the error code
	curl -s -H 'Content-Type: application/json' --data-binary '{"messages":[{"role":"user","content":"hi"}]}' \
		"http://127.0.0.1:$rport/v1/chat/completions" | jq -r '.model // .error.code'
}
until_ok test -s "$out/$sb/inference-policy.json" || e2e_abort "no policy delivered: $(cat "$tmp/controller.log")"

# --- egress: the allowlist and the mode, in the store ----------------------------
before=$(sbx | jq -c .spec)
check "egress without an action: exit 2" 2 'exactly one of --learned, --approve' -- "$kars" egress bot -n "$ns"
check "egress with two actions: exit 2" 2 'exactly one of' -- "$kars" egress bot -n "$ns" --enforce --learned
check "a bad port: exit 2, named" 2 '--approve a.example.com:0: the port must be 1 to 65535' -- "$kars" egress "$sb" --approve a.example.com:0
check "a flag of another verb: exit 2" 2 '--api-key-file is not an option of egress' -- "$kars" egress "$sb" --api-key-file /etc/passwd
check "an unknown sandbox: exit 1, named" 1 "KarsSandbox $ns/nope not found" -- "$kars" egress nope -n "$ns" --approve x.example.com
check "a bad host is refused by the validator" 1 'allowedEndpoints\[1\]\.host' -- "$kars" egress "$sb" --approve 'bad host!'
check "a missing store is not created" 1 'no store at' -- "$kars" egress "$sb" --enforce --state "$tmp/nostore"
check "... and nothing was created" 0 '' -- test ! -e "$tmp/nostore"
check "none of those changed the sandbox" 0 '' -- test "$(sbx | jq -c .spec)" = "$before"
check "approve HOST:PORT" 0 "karssandbox $sb: pypi.org:8443 allowed" -- "$kars" egress "$sb" --approve pypi.org:8443
check "approve HOST (port 443)" 0 'files.example.com:443 allowed' -- "$kars" egress bot -n "$ns" --approve files.example.com
check "approve it again: already allowed" 0 'already allowed' -- "$kars" egress "$sb" --approve files.example.com:443
check "the store holds both" 0 '^3$' -- bash -c "$(declare -f sbx); kars='$kars' ns='$ns'; sbx | jq '.spec.networkPolicy.allowedEndpoints | length'"
check "deny HOST takes every port of it" 0 'files.example.com denied \(1 allowlist entry removed\); in Learn mode it is still let through' -- "$kars" egress "$sb" --deny files.example.com
check "deny a host not allowed: exit 1, nothing changed" 1 'nope.example.com is not in the allowlist' -- "$kars" egress "$sb" --deny nope.example.com
check "the allowlist after" 0 '^api.github.com:443 pypi.org:8443 $' -- bash -c "$(declare -f sbx); kars='$kars' ns='$ns'; sbx | jq -r '.spec.networkPolicy.allowedEndpoints[] | \"\\(.host):\\(.port)\"' | tr '\n' ' '"
check "enforce: Learn -> Strict" 0 'egress mode Strict \(was Learn\)' -- "$kars" egress "$sb" --enforce
check "the store says Strict" 0 '^Strict$' -- bash -c "$(declare -f sbx); kars='$kars' ns='$ns'; sbx | jq -r .spec.networkPolicy.egressMode"
check "enforce again: already Strict" 0 'already Strict' -- "$kars" egress "$sb" --enforce

# --- connect: a shell as the agent, in the agent's sandbox -------------------------
c() { "$kars" connect "$sb" --state-dir "$root" -- "$@"; }
check "connect: the agent's UID and GID, no groups" 0 "^$agent_uid $agent_uid $agent_uid\$" -- \
	bash -c "$(declare -f c); kars='$kars' sb='$sb' root='$root'; c /bin/sh -c 'echo \$(id -u) \$(id -g) \$(id -G)'"
check "connect: in the agent's cgroup" 0 "^0::/kars/$sb/agent\$" -- c /bin/cat /proc/self/cgroup
check "connect: kars-strict and no_new_privs" 0 'NoNewPrivs:.1.*Seccomp:.2' -- \
	bash -c "$(declare -f c); kars='$kars' sb='$sb' root='$root'; c /bin/grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status | tr '\n' ' '"
check "connect: the agent's PID namespace (its sleep is pid 2)" 0 '^sleep$' -- c /bin/cat /proc/2/comm
check "connect: no host process is visible" 0 '^0$' -- \
	bash -c "$(declare -f c); kars='$kars' sb='$sb' root='$root'; c /bin/sh -c 'ls /proc | grep -c \"^$$\$\"; true'"
check "connect: writes the agent's /sandbox" 0 '' -- c /bin/sh -c 'echo hi >/sandbox/from-connect'
check "... which is the sandbox's directory" 0 "^$agent_uid hi\$" -- bash -c "echo \$(stat -c %u '$sdir/from-connect') \$(cat '$sdir/from-connect')"
check "connect: the router's key is not there" 1 'No such file' -- c /bin/cat "$rdir/api-key"
check "connect: nor the run file" 1 'No such file' -- c /bin/cat "$root/sandboxes/$sb/run/router.json"
check "connect: a sock_diag netlink socket is refused (seccomp)" 1 'Operation not permitted' -- c /usr/bin/python3 -c 'import socket; socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 4)'
check "connect: the command's exit status" 7 '' -- c /bin/sh -c 'exit 7'
check "connect: on a pty when stdin is a terminal" 0 '/dev/pts/' -- script -qec "'$kars' connect '$sb' --state-dir '$root' -- /usr/bin/tty" /dev/null
# (timeout: a shell that spins, as one with job control did on getpgrp(),
# fails the check instead of hanging the run)
check "connect: an interactive shell through the pty, both ways" 4 'hi-2' -- \
	timeout 60 bash -c "printf 'echo hi-\$((1+1))\nexit 4\n' | script -qec \"'$kars' connect '$sb' --state-dir '$root'\" /dev/null"
# The caller's terminal is out of reach: with stdin not a terminal the command
# has no controlling terminal, so TIOCSTI cannot push keystrokes into the
# caller's shell through the inherited stdout (dev.tty.legacy_tiocsti=1 allows
# it on one's own controlling terminal).
check "connect: TIOCSTI into the caller's terminal is refused" 1 'PermissionError' -- \
	script -qec "'$kars' connect '$sb' --state-dir '$root' -- /usr/bin/python3 -c 'import fcntl, termios; fcntl.ioctl(1, termios.TIOCSTI, b\"X\")' </dev/null" /dev/null
check "connect: a relative command: exit 2" 2 'must be an absolute path' -- "$kars" connect "$sb" -- sh
check "connect: a sandbox not running locally: exit 1" 1 "sandbox $ns/nope is not running locally: .*run/router.json does not exist" -- "$kars" connect "$ns/nope" --state-dir "$root"

# --- trace NAME and egress --learned: karsd's view of this sandbox ---------------------
"$kars" trace "$sb" --network -o json >"$tmp/trace.json" 2>"$tmp/trace.err" &
trace_pid=$!
"$kars" trace "$sb" --network >"$tmp/trace.txt" 2>&1 &
trace2_pid=$!
"$kars" trace --network >"$tmp/trace-all.txt" 2>&1 & # every sandbox, as before
trace3_pid=$!
until_ok test -s "$tmp/trace.txt" # the headers: subscribed
until_ok test -s "$tmp/trace-all.txt"
# learn mode: allowed and recorded. Again until every trace has it (-o json
# prints no header that would say it has subscribed). Another sandbox (a bare
# cgroup with its own policy) connects too: trace NAME must not show it.
for _ in $(seq 20); do
	c /usr/bin/curl -s -o /dev/null "http://127.0.0.1:$fport/"
	bash -c "echo \$\$ >'$cg_other/cgroup.procs' && exec curl -s -o /dev/null http://127.0.0.1:$fport/"
	grep -q "\"dport\":$fport" "$tmp/trace.json" && grep -q ":$fport" "$tmp/trace.txt" &&
		grep -q ":$fport" "$tmp/trace-all.txt" && break
	sleep 0.2
done
kill "$trace_pid" "$trace2_pid" "$trace3_pid"
wait "$trace_pid" "$trace2_pid" "$trace3_pid" 2>/dev/null
check "trace -o json: this sandbox's connect, as the agent, by curl" 0 '^agent curl 127.0.0.1$' -- \
	bash -c "grep '\"dport\":$fport' '$tmp/trace.json' | head -1 | jq -r '\"\\(.role) \\(.comm) \\(.dst)\"'"
check "trace --network without NAME shows the other sandbox" 0 "$ns/other " -- cat "$tmp/trace-all.txt"
check "trace -o json: no other sandbox" 0 '^0$' -- bash -c "jq -r .sandbox '$tmp/trace.json' | grep -vcx '$sb'; true"
check "trace: no other sandbox" 1 '' -- grep -q "$ns/other" "$tmp/trace.txt"
check "trace --network without NAME still streams every sandbox" 0 "$sb +agent .*127.0.0.1:$fport" -- cat "$tmp/trace-all.txt"
check "trace: the columns" 0 'TIME +SANDBOX +ROLE +PID/COMM +DESTINATION +VERDICT +REASON' -- cat "$tmp/trace.txt"
check "trace: a row" 0 "$sb +agent +[0-9]+/curl +127.0.0.1:$fport tcp +[a-z]+ +[a-z_]+" -- cat "$tmp/trace.txt"
check "egress --learned: the destination" 0 "agent +tcp +127.0.0.1 +$fport" -- "$kars" egress "$sb" --learned
check "egress --learned -o json" 0 "^$fport\$" -- bash -c "'$kars' egress '$sb' --learned -o json | jq '.learned[] | select(.ip == \"127.0.0.1\") | .port'"
check "egress --learned -o yaml" 0 "sandbox: $sb" -- "$kars" egress "$sb" --learned -o yaml
check "trace of a sandbox karsd does not know: exit 1" 1 "sandbox $ns/nope has no data-plane policy in karsd" -- "$kars" trace "$ns/nope" --network
check "trace NAME -n NS: the per-sandbox options" 1 "sandbox $ns/nope has no data-plane policy" -- "$kars" trace nope -n "$ns" --network
check "trace -o yaml: exit 2" 2 'only json' -- "$kars" trace "$sb" --network -o yaml
check "trace --network without NAME still works (bad -o)" 2 'is not json or wide' -- "$kars" trace --network -o bogus

# --- credentials: the key reaches only the router, which uses it without a restart ---
check "the old key is refused upstream" 0 '' -- until_ok bash -c "$(declare -f chat); rport=$rport; chat | grep -q invalid_api_key"
printf 'sk-new-key\n' >"$tmp/key"
chmod 644 "$tmp/key"
check "a group/world-readable key file is refused" 1 'mode 0644 lets group or others read the key' -- "$kars" credentials update "$sb" --state-dir "$root" --api-key-file "$tmp/key"
check "... and the router's key was not touched" 0 '^sk-old-key$' -- cat "$rdir/api-key"
chmod 600 "$tmp/key"
: >"$tmp/empty-key"
printf 'sk-a\nsk-b\n' >"$tmp/two-keys"
chmod 600 "$tmp/empty-key" "$tmp/two-keys"
check "an empty key file is refused" 1 'empty-key: empty' -- "$kars" credentials update "$sb" --state-dir "$root" --api-key-file "$tmp/empty-key"
check "two lines are refused, by offset, without the key" 1 'control byte \(0x0a\) at offset 4$' -- "$kars" credentials update "$sb" --state-dir "$root" --api-key-file "$tmp/two-keys"
check "... neither touched the router's key" 0 '^sk-old-key$' -- cat "$rdir/api-key"
check "credentials update without the file: exit 2" 2 '--api-key-file FILE is required' -- "$kars" credentials update "$sb"
check "credentials update of an unknown sandbox: exit 1" 1 'is not running locally' -- "$kars" credentials update "$ns/nope" --state-dir "$root" --api-key-file "$tmp/key"
check "credentials update" 0 "upstream key replaced in $rdir/api-key" -- "$kars" credentials update "$sb" --state-dir "$root" --api-key-file "$tmp/key"
check "the output never shows the key" 1 '' -- bash -c "'$kars' credentials update '$sb' --state-dir '$root' --api-key-file '$tmp/key' 2>&1 | grep sk-new"
check "the key file: router UID, 0600, the new key" 0 "^$router_uid 600 sk-new-key\$" -- bash -c "echo \$(stat -c '%u %a' '$rdir/api-key') \$(cat '$rdir/api-key')"
check "no temporary file is left" 0 '^0$' -- bash -c "ls -A '$rdir' | grep -c '^\\.api-key'; true"
# upstream.json (root's, read by the local backend at every reconcile) must
# not bring the old key back: after an update it names the router's key file.
check "without upstream.json: a note that the router has no upstream" 0 'has no upstream .*upstream.json' -- "$kars" credentials update "$sb" --state-dir "$root" --api-key-file "$tmp/key"
printf '{"kind":"openai","baseUrl":"http://127.0.0.1:1/v1","apiKeyFile":"%s"}\n' "$tmp/old-key" >"$root/sandboxes/$sb/upstream.json"
check "with upstream.json: no note" 1 '' -- bash -c "'$kars' credentials update '$sb' --state-dir '$root' --api-key-file '$tmp/key' 2>&1 | grep 'has no upstream'"
check "... and its apiKeyFile now names the router's key file" 0 "^$rdir/api-key\$" -- jq -r .apiKeyFile "$root/sandboxes/$sb/upstream.json"
check "... the rest of it kept" 0 '^http://127.0.0.1:1/v1$' -- jq -r .baseUrl "$root/sandboxes/$sb/upstream.json"
printf '[1]\n' >"$root/sandboxes/$sb/upstream.json"
check "a bad upstream.json is named" 1 'upstream.json: not a JSON object' -- "$kars" credentials update "$sb" --state-dir "$root" --api-key-file "$tmp/key"
rm -f "$root/sandboxes/$sb/upstream.json"
check "the router uses the new key" 0 '' -- until_ok bash -c "$(declare -f chat); rport=$rport; chat | grep -q gpt-4o-mini"
check "... without a restart (same pid)" 0 '' -- kill -0 "$router_pid"

# --- model set: a policy change delivered by the controller -------------------------
check "model set without MODEL: exit 2" 2 'expected: set NAME MODEL' -- "$kars" model set "$sb"
check "model set on an unknown sandbox: exit 1" 1 "KarsSandbox $ns/nope not found" -- "$kars" model set "$ns/nope" gpt-4o
check "model set" 0 "inferencepolicy $ns/bot-inference: model gpt-4o \(was gpt-4o-mini\)" -- "$kars" model set "$sb" gpt-4o
check "the store holds it" 0 '^gpt-4o$' -- bash -c "'$kars' get ip bot-inference -n '$ns' -o json | jq -r .spec.modelPreference.primary.deployment"
check "the same router serves the new model" 0 '' -- until_ok bash -c "$(declare -f chat); rport=$rport; chat | grep -qx gpt-4o"
check "... without a restart (same pid)" 0 '' -- kill -0 "$router_pid"
check "model set again: already" 0 'already gpt-4o' -- "$kars" model set "$sb" gpt-4o

# --- audit: the router's chain, found by the sandbox's name -----------------------------
check "audit verify NAME" 0 "$rdir/audit.jsonl: valid: [0-9]+ records" -- "$kars" audit verify "$sb" --state-dir "$root"
check "audit verify NAME checks the router's public key" 0 'by the public key given' -- "$kars" audit verify "$sb" --state-dir "$root"
# (the router writes a record after its answer: until it is there)
check "audit tail NAME: the inference records" 0 '' -- \
	until_ok bash -c "'$kars' audit tail '$sb' --state-dir '$root' --lines 50 | grep -qE 'inference.chat +allow +agent +gpt-4o '"
check "audit tail --lines 2 -o json: two records" 0 '^2$' -- bash -c "'$kars' audit tail '$sb' --state-dir '$root' --lines 2 -o json | jq -s length"
check "audit verify FILE still works" 0 'valid' -- "$kars" audit verify "$rdir/audit.jsonl"
check "audit tail with --pubkey: exit 2" 2 '--pubkey goes with verify' -- "$kars" audit tail "$sb" --pubkey x
check "audit of an unknown sandbox: exit 1" 1 "no audit log for sandbox $ns/nope" -- "$kars" audit verify "$ns/nope" --state-dir "$root"
cp "$rdir/audit.jsonl" "$tmp/audit.bak"
sed -i '2s/"allow"/"deny"/; 2s/"new"/"old"/' "$rdir/audit.jsonl"
check "a tampered chain: exit 1" 1 'INVALID' -- "$kars" audit verify "$sb" --state-dir "$root"
cp "$tmp/audit.bak" "$rdir/audit.jsonl"

run_file=$root/sandboxes/$sb/run/router.json
cp "$run_file" "$tmp/run.bak"
sed -i 's/"routerPort": [0-9]*/"routerPort": 0/' "$run_file"
check "a malformed run file is named, with its field" 1 'router.json: routerPort: expected an integer in \[1, 65535\]' -- "$kars" connect "$sb" --state-dir "$root" -- /bin/true
printf '{"routerPort": 1, "proxyPort": 2, "routerUid": 5, "agentUid": 5}' >"$run_file"
check "a run file with one UID for both: refused" 1 'routerUid and agentUid are both 5' -- "$kars" credentials update "$sb" --state-dir "$root" --api-key-file "$tmp/key"
cp "$tmp/run.bak" "$run_file"

for verb in egress model credentials connect trace "audit verify" "audit tail"; do
	# shellcheck disable=SC2086 # "audit verify" is two words
	check "$verb --help: usage, exit 0" 0 'usage: kars' -- "$kars" $verb --help
done
check "kars --help lists the verbs" 0 'credentials update NAME --api-key-file FILE' -- "$kars" --help

e2e_summary
