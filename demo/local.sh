#!/usr/bin/env bash
# local.sh - `make demo`: local mode on this host, offline, nothing faked.
# kars up --local starts karsd and the controller; kars add runs the sample
# agent (demo/sample-agent) in a sandbox of its own: its own UID and cgroup,
# kars-strict seccomp, a router holding the (here: absent) credentials. The
# agent calls its router as an OpenAI client and tries one allowed and one
# denied destination, then plain HTTP to two names without proxy settings:
# the data plane sends both to the router's egress proxy, which lets the
# allowed name through and answers 403 for the other. The names are this
# demo's (a dnsmasq on loopback), served from a network namespace of its own
# (203.0.113.2, TEST-NET-3). kars trace --network shows what the kernel
# decided. Then everything is torn down.
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
trace_pid='' dns_pid=''
base=${KARS_DEMO_PORT_BASE:-18000}
netns=kars-demo-$$ veth=kdemo$$
ok_name=docs.demo.test no_name=exfil.demo.test blocked_name=tracker.demo.test

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

cleanup() {
	set +e
	[ -n "$trace_pid" ] && kill "$trace_pid" 2>/dev/null
	[ -n "$dns_pid" ] && kill "$dns_pid" 2>/dev/null
	if [ -e "$dir/run/up.pid" ]; then
		say "teardown: kars delete demo; kars down"
		"${kars[@]}" delete demo "${st[@]}"
		"${kars[@]}" down "${st[@]}"
	fi
	ip netns pids "$netns" 2>/dev/null | xargs -r kill 2>/dev/null
	ip link del "$veth" 2>/dev/null
	ip netns del "$netns" 2>/dev/null
	rm -rf "$pins" "$tmp"
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || { echo "demo: run as root (karsd loads BPF programs, sandboxes get UIDs)"; exit 1; }
for c in curl dnsmasq python3; do
	command -v "$c" >/dev/null || { echo "demo: $c missing (make deps installs it)"; exit 1; }
done

say "a web server for the agent to reach by name: http://$ok_name/ and http://$no_name/"
ip netns add "$netns"
ip link add "$veth" type veth peer name "${veth}p"
ip link set "${veth}p" netns "$netns"
ip addr add 203.0.113.1/24 dev "$veth" && ip link set "$veth" up
ip -n "$netns" addr add 203.0.113.2/24 dev "${veth}p"
ip -n "$netns" link set "${veth}p" up && ip -n "$netns" link set lo up
mkdir -p "$tmp/www" && echo "hello from $ok_name" >"$tmp/www/index.html"
ip netns exec "$netns" python3 -m http.server 80 --bind 203.0.113.2 --directory "$tmp/www" >/dev/null 2>&1 &
dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces --listen-address=127.0.0.1 \
	--port=$((base + 98)) --pid-file= --address="/$ok_name/203.0.113.2" \
	--address="/$no_name/203.0.113.2" --address=/#/ 2>"$tmp/dnsmasq.log" &
dns_pid=$!
echo "both names lead to 203.0.113.2 (dnsmasq on 127.0.0.1:$((base + 98)), the sandboxes' resolver)"

say "kars up --local: karsd and kars-controller as supervised services"
"${kars[@]}" up --local "${st[@]}" --pin-dir "$pins" --router-port-base "$base" \
	--dns-resolver 127.0.0.1 --dns-resolver-port $((base + 98))

say "kars blocklist load: a DNS blocklist in karsd (OISD, hosts or plain lines; here one name)"
printf '# the demo blocklist\n%s\n' "$blocked_name" >"$tmp/blocklist.txt"
"${kars[@]}" blocklist load "$tmp/blocklist.txt"

say "kars trace --network: every verdict of the sandbox, as it happens"
"${kars[@]}" trace --network --sandbox default/demo >"$tmp/trace.txt" 2>&1 &
trace_pid=$!

say "kars add demo --allow $ok_name:80 --command demo/sample-agent -- ..."
"${kars[@]}" add demo "${st[@]}" --allow "$ok_name:80" --command "$PWD/demo/sample-agent" -- \
	"http://$ok_name/" 192.0.2.1:22 "http://$no_name/" "$blocked_name"
for _ in $(seq 150); do
	"${kars[@]}" status demo "${st[@]}" >/dev/null 2>&1 && break
	sleep 0.2
done
"${kars[@]}" status demo "${st[@]}" || true

say "the sample agent's log (kars logs demo --role agent)"
for _ in $(seq 200); do
	grep -q "blocked name: [^r]" "$dir/sandboxes/default/demo/logs/agent.log" 2>/dev/null && break
	sleep 0.2
done
"${kars[@]}" logs demo "${st[@]}" --role agent
echo
echo "(no upstream is configured for this sandbox: the router refuses inference and"
echo " says so, upstream-not-configured.invalid; the agent never holds a credential)"
echo "(http://$ok_name/ and http://$no_name/: no proxy settings; the data plane sent both"
echo " to the router's egress proxy, which allowed the one name and refused the other)"
echo "($blocked_name: on karsd's blocklist; its DNS query was dropped in the kernel)"

say "kars trace --network: its router (8443 sent to its own router port), port 80 redirected to its proxy, the router's dial of $ok_name, the denied destination, the dropped DNS query for $blocked_name"
sleep 0.5
kill "$trace_pid" 2>/dev/null || true
wait "$trace_pid" 2>/dev/null || true
trace_pid=
cat "$tmp/trace.txt"
