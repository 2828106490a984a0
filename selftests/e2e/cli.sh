#!/usr/bin/env bash
# cli.sh - end-to-end test of the kars CLI against a real karsd: exit codes,
# errors that name the bad field, and peer-credential refusal of other UIDs.
# Usage: selftests/e2e/cli.sh BUILD_DIR (KARSD_ARGS: extra karsd options).
# Prints "e2e/cli: N passed, N failed".
set -u

# shellcheck source=selftests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
E2E_NAME=e2e/cli

build=${1:-build}
kars=$build/bin/kars
karsd=$build/bin/karsd
tmp=$(mktemp -d /tmp/kars-cli.XXXXXX)
pins=/sys/fs/bpf/kars-cli-$$
cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
cg=$cg2/kars-cli-$$
group=kars-e2e-$$
metrics_port=$(e2e_port 0)
karsd_pid=


cleanup() {
	[ -n "$karsd_pid" ] && KARSD_SOCKET=$tmp/karsd.sock "$kars" dataplane remove cli/test >/dev/null 2>&1
	[ -n "$karsd_pid" ] && kill "$karsd_pid" 2>/dev/null && wait "$karsd_pid" 2>/dev/null
	rmdir "$cg/agent" "$cg/router" "$cg" 2>/dev/null
	rm -rf "$pins" "$tmp"
	groupdel "$group" 2>/dev/null
}
trap cleanup EXIT

mkdir -p "$cg/agent" "$cg/router"
chmod 755 "$tmp"
groupadd "$group" || e2e_abort "groupadd $group failed"
gid=$(getent group "$group" | cut -d: -f3)
# shellcheck disable=SC2086 # KARSD_ARGS: extra options, split on purpose
"$karsd" --socket "$tmp/karsd.sock" --pin-dir "$pins" --group "$group" \
	--metrics "127.0.0.1:$metrics_port" ${KARSD_ARGS:-} 2>"$tmp/karsd.log" &
karsd_pid=$!
for _ in $(seq 100); do [ -S "$tmp/karsd.sock" ] && break; sleep 0.05; done
export KARSD_SOCKET=$tmp/karsd.sock

cat >"$tmp/good.json" <<JSON
{"sandbox": "cli/test", "mode": "learn",
 "agent": {"cgroup": "$cg/agent", "uid": 1000}, "router": {"cgroup": "$cg/router", "uid": 1001},
 "rules": [{"ip": "192.0.2.1", "port": 443}, {"cidr": "198.51.100.0/24", "ports": "80-90"}]}
JSON
sed 's/"port": 443/"port": 70000/' "$tmp/good.json" >"$tmp/bad-port.json"
printf '{"sandbox": "cli/test",\n "agent": {"cgroup": "x"} ' >"$tmp/truncated.json"
cat >"$tmp/fqdn.json" <<JSON
{"sandbox": "cli/test", "mode": "learn",
 "agent": {"cgroup": "$cg/agent", "uid": 1000}, "router": {"cgroup": "$cg/router", "uid": 1001},
 "resolver": {"ipv4": "192.0.2.53"},
 "rules": [{"ip": "192.0.2.1", "port": 443}, {"cidr": "198.51.100.0/24", "ports": "80-90"}],
 "fqdns": [{"name": "api.example.com", "port": 443}, {"name": "*.example.com", "ports": "443-444"}]}
JSON
sed 's/"\*.example.com"/"a.*.example.com"/' "$tmp/fqdn.json" >"$tmp/bad-fqdn.json"

check "status reports the enforcement level" 0 '"enforcement": "(full|no-lsm)"' -- "$kars" dataplane status
check "status reports how socket cgroups are found" 0 '"socketCgroup": "(socket|creation-stamp)"' -- "$kars" dataplane status
check "apply a valid policy" 0 'sandbox cli/test applied \(id [0-9]+, generation 1\)' -- "$kars" dataplane apply -f "$tmp/good.json"
check "apply from stdin" 0 'generation 2' -- sh -c "\"$kars\" dataplane apply -f - <\"$tmp/good.json\""
check "list shows it" 0 'cli/test +[0-9]+ +2 learn +1 +1' -- "$kars" dataplane list
check "a bad field is named, exit 1" 1 'rules\[0\]\.port: expected an integer in \[1, 65535\]' -- "$kars" dataplane apply -f "$tmp/bad-port.json"
check "the refused apply changed nothing" 0 'cli/test +[0-9]+ +2 ' -- "$kars" dataplane list
check "truncated JSON: line and column" 1 'invalid JSON at line 2' -- "$kars" dataplane apply -f "$tmp/truncated.json"
check "a missing file" 1 'No such file' -- "$kars" dataplane apply -f "$tmp/nope.json"
check "learned on a known sandbox" 0 'ROLE +PROTO +DESTINATION' -- "$kars" dataplane learned cli/test
check "learned on an unknown sandbox" 1 'sandbox: nope/nope not found' -- "$kars" dataplane learned nope/nope
check "apply with fqdns" 0 'generation 3' -- "$kars" dataplane apply -f "$tmp/fqdn.json"
check "list shows the fqdn rules and learned entries" 0 'cli/test +[0-9]+ +3 learn +1 +1 +2 +0 ' -- "$kars" dataplane list
check "fqdn entries of a sandbox" 0 'ADDRESS +PROTO +PORTS +TTL +EXPIRES +NAME' -- "$kars" dataplane fqdn cli/test
check "fqdn entries of an unknown sandbox" 1 'sandbox: nope/nope not found' -- "$kars" dataplane fqdn nope/nope
check "a bad fqdn is named, exit 1" 1 'fqdns\[1\]\.name: a wildcard is allowed only as a leading' -- "$kars" dataplane apply -f "$tmp/bad-fqdn.json"
check "metrics" 0 'kars_sandboxes 1' -- "$kars" dataplane metrics
check "another UID is refused by peer credentials" 1 'permission denied: uid 1000' -- setpriv --reuid 1000 --regid 1000 --clear-groups "$kars" dataplane list
check "a member of --group may use karsd" 0 'cli/test' -- setpriv --reuid 1000 --regid 1000 --groups "$gid" "$kars" dataplane list
check "metrics over HTTP" 0 'kars_sandboxes 1' -- curl -sS --max-time 5 "http://127.0.0.1:$metrics_port/metrics"
check "HTTP: only /metrics" 0 '^404$' -- curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$metrics_port/other"
check "unknown command: usage, exit 2" 2 'unknown command' -- "$kars" frobnicate
check "trace without --network: exit 2" 2 'only --network' -- "$kars" trace
check "trace -o bogus: exit 2" 2 'is not json or wide' -- "$kars" trace --network -o bogus
check "no karsd: a clear error" 1 'connect .*nowhere.sock' -- env KARSD_SOCKET="$tmp/nowhere.sock" "$kars" dataplane list
check "remove" 0 'sandbox cli/test removed' -- "$kars" dataplane remove cli/test
check "list no longer has it" 1 '^0$' -- sh -c "\"$kars\" dataplane list | grep -c cli/test"

e2e_summary
