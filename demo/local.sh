#!/usr/bin/env bash
# local.sh - `make demo`: local mode on this host, offline, nothing faked.
# kars up --local starts karsd and the controller; kars add runs the sample
# agent (demo/sample-agent) in a sandbox of its own: its own UID and cgroup,
# kars-strict seccomp, a router holding the (here: absent) credentials. The
# agent calls its router as an OpenAI client and tries one allowed and one
# denied destination; kars trace --network shows what the kernel decided.
# Then everything is torn down.
#
# Usage: demo/local.sh [BUILD_DIR]   (root; router ports from
# $KARS_DEMO_PORT_BASE, default 18000)
set -euo pipefail

build=${1:-build}
kars_bin="$build/bin/kars"
tmp=$(mktemp -d /tmp/kars-demo.XXXXXX)
chmod 0755 "$tmp"
dir=$tmp/kars
sock=$tmp/karsd.sock
pins=/sys/fs/bpf/kars-demo-$$
kars=("$kars_bin" --socket "$sock")
st=(--state-dir "$dir")
trace_pid=

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

cleanup() {
	set +e
	[ -n "$trace_pid" ] && kill "$trace_pid" 2>/dev/null
	if [ -e "$dir/run/up.pid" ]; then
		say "teardown: kars delete demo; kars down"
		"${kars[@]}" delete demo "${st[@]}"
		"${kars[@]}" down "${st[@]}"
	fi
	rm -rf "$pins" "$tmp"
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || { echo "demo: run as root (karsd loads BPF programs, sandboxes get UIDs)"; exit 1; }
command -v curl >/dev/null || { echo "demo: curl missing (make deps installs it)"; exit 1; }

say "kars up --local: karsd and kars-controller as supervised services"
"${kars[@]}" up --local "${st[@]}" --pin-dir "$pins" --router-port-base "${KARS_DEMO_PORT_BASE:-18000}"

say "kars trace --network: every verdict of the sandbox, as it happens"
"${kars[@]}" trace --network --sandbox default/demo >"$tmp/trace.txt" 2>&1 &
trace_pid=$!

say "kars add demo --command demo/sample-agent"
"${kars[@]}" add demo "${st[@]}" --command "$PWD/demo/sample-agent"
for _ in $(seq 150); do
	"${kars[@]}" status demo "${st[@]}" >/dev/null 2>&1 && break
	sleep 0.2
done
"${kars[@]}" status demo "${st[@]}" || true

say "the sample agent's log (kars logs demo --role agent)"
for _ in $(seq 100); do
	grep -q "denied destination:" "$dir/sandboxes/default/demo/logs/agent.log" 2>/dev/null && break
	sleep 0.2
done
"${kars[@]}" logs demo "${st[@]}" --role agent
echo
echo "(no upstream is configured for this sandbox: the router refuses inference and"
echo " says so, upstream-not-configured.invalid; the agent never holds a credential)"

say "kars trace --network: its router (allowed: 8443 sent to its own router port) and the denied destination"
sleep 0.5
kill "$trace_pid" 2>/dev/null || true
wait "$trace_pid" 2>/dev/null || true
trace_pid=
cat "$tmp/trace.txt"
