#!/usr/bin/env bash
# dataplane.sh - `make demo` until local mode exists: the kars data plane on
# this host, nothing faked. karsd loads the BPF programs; a sandbox's agent
# (curl as UID 1000 in the sandbox's agent cgroup) tries to get out, and the
# kernel answers. `kars trace --network` shows each verdict as it happens.
#
# Everything runs in a network namespace of its own (kars-demo) with the
# documentation address 192.0.2.1 as "the internet"; the script removes all
# it created on exit.
set -euo pipefail

build=${1:-build}
kars="$build/bin/kars"
karsd="$build/bin/karsd"
ns=kars-demo
tmp=$(mktemp -d /tmp/kars-demo.XXXXXX)
sock=$tmp/karsd.sock
pins=/sys/fs/bpf/kars-demo-$$
cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
cg=$cg2/kars-demo-$$
pids=()

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

cleanup() {
	set +e
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for d in "$cg/agent" "$cg/router"; do
		[ -d "$d" ] && for p in $(cat "$d/cgroup.procs"); do kill -9 "$p"; done
	done
	sleep 0.2
	[ -S "$sock" ] && KARSD_SOCKET=$sock "$kars" dataplane remove demo/research-bot >/dev/null 2>&1
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	rmdir "$cg/agent" "$cg/router" "$cg" 2>/dev/null
	rm -rf "$pins" "$tmp"
	ip netns del "$ns" 2>/dev/null
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || { echo "demo: run as root (it loads BPF programs)"; exit 1; }
[ -n "$cg2" ] || { echo "demo: no cgroup v2 mount"; exit 1; }
for tool in curl socat setpriv; do
	command -v $tool >/dev/null || { echo "demo: $tool missing (make deps installs it)"; exit 1; }
done

# Run a command in the demo netns, inside a cgroup, as a UID.
in_sandbox() { # cgroup uid cmd...
	local cgroup=$1 uid=$2
	shift 2
	# Join the cgroup first: `ip netns exec` remounts /sys, hiding cgroupfs.
	sh -c 'cg=$0 ns=$1 uid=$2; shift 2; echo $$ >"$cg/cgroup.procs" &&
		exec ip netns exec "$ns" setpriv --reuid "$uid" --regid "$uid" --clear-groups -- "$@"' \
		"$cgroup" "$ns" "$uid" "$@"
}

say "karsd: probe the kernel, load and pin the programs"
"$karsd" --socket "$sock" --pin-dir "$pins" 2>"$tmp/karsd.log" &
pids+=($!)
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
export KARSD_SOCKET=$sock
"$kars" dataplane status | grep -E '"enforcement"|not vetoed' || true

say "a network namespace with 192.0.2.1 as the outside world"
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add outside0 type veth peer name outside1
ip -n "$ns" addr add 192.0.2.1/24 dev outside0
ip -n "$ns" link set outside0 up
ip -n "$ns" link set outside1 up
chmod 755 "$tmp"
# It drains what the client sent (curl's telnet negotiation) before it closes,
# for the same reason as the proxy below.
printf '#!/bin/sh\necho "hello from the outside world (192.0.2.1 port 9000)"\ntimeout 0.3 cat >/dev/null\n' >"$tmp/remote.sh"
# The stand-in proxy reads the request before it answers: closing with unread
# data would reset the connection and could lose the answer.
cat >"$tmp/proxy.sh" <<'SH'
#!/bin/bash
while IFS= read -r line && [ "${line%$'\r'}" != "" ]; do :; done
printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n'
echo "answered by the sandbox egress proxy (the router decides from here)"
SH
chmod 755 "$tmp/remote.sh" "$tmp/proxy.sh"
ip netns exec "$ns" socat -T2 TCP-LISTEN:9000,bind=192.0.2.1,fork,reuseaddr EXEC:"$tmp/remote.sh" &
pids+=($!)

say "the sandbox: cgroups demo/research-bot/{agent,router}, its policy"
mkdir -p "$cg/agent" "$cg/router"
# The router's egress proxy (a stand-in that only answers), in the router cgroup.
in_sandbox "$cg/router" 1001 socat -T2 TCP-LISTEN:18444,bind=127.0.0.1,fork,reuseaddr \
	EXEC:"$tmp/proxy.sh" &
pids+=($!)
# Both stand-ins listen before anything dials them.
for port in 9000 18444; do
	addr=127.0.0.1
	[ $port = 9000 ] && addr=192.0.2.1
	for _ in $(seq 50); do
		ip netns exec "$ns" bash -c "echo >/dev/tcp/$addr/$port" 2>/dev/null && break
		sleep 0.1
	done
done
cat >"$tmp/policy.json" <<JSON
{"sandbox": "demo/research-bot", "mode": "strict",
 "agent":  {"cgroup": "$cg/agent",  "uid": 1000},
 "router": {"cgroup": "$cg/router", "uid": 1001},
 "routerPort": 18443, "proxyPort": 18444,
 "rules": [{"ip": "192.0.2.1", "port": 9000, "protocol": "tcp"}]}
JSON
cat "$tmp/policy.json"
"$kars" dataplane apply -f "$tmp/policy.json"
"$kars" dataplane list

say "kars trace --network (running in the background)"
"$kars" trace --network &
pids+=($!)
sleep 0.3

say "agent (UID 1000): TCP straight to 192.0.2.1:9000 -> refused by the kernel"
in_sandbox "$cg/agent" 1000 curl -sS --max-time 3 telnet://192.0.2.1:9000 </dev/null || true
sleep 0.3
say "agent: HTTP to 192.0.2.1:80 -> transparently sent to the sandbox's egress proxy"
in_sandbox "$cg/agent" 1000 curl -sS --max-time 3 http://192.0.2.1/ || true
sleep 0.3
say "agent: UDP to 192.0.2.1:5353 -> refused"
in_sandbox "$cg/agent" 1000 socat -u - UDP-SENDTO:192.0.2.1:5353 <<<"exfil" || true
sleep 0.3
say "router (UID 1001): 192.0.2.1:9000 is in its rules -> allowed"
in_sandbox "$cg/router" 1001 curl -sS --max-time 3 telnet://192.0.2.1:9000 </dev/null || true
sleep 0.3
say "router: 192.0.2.1:9001 is not -> refused"
in_sandbox "$cg/router" 1001 curl -sS --max-time 3 telnet://192.0.2.1:9001 </dev/null || true
sleep 0.3
say "a process in the router cgroup that is not the router's UID -> refused"
in_sandbox "$cg/router" 1000 curl -sS --max-time 3 telnet://192.0.2.1:9000 </dev/null || true
sleep 0.3

say "metrics (kars dataplane metrics)"
"$kars" dataplane metrics | grep -E '^kars_verdicts_total|^kars_enforcement' || true
say "done: the demo removes its sandbox, namespace and programs"
