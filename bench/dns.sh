#!/bin/bash
# dns.sh - `make bench-dns`: the DNS blocklist at a million names.
#
# usage: bench/dns.sh BUILD_DIR     (root)
#
# Prints, each as "bench: <metric>=<value>":
#   blocklist_load_seconds_1m  `kars blocklist load` of a generated 1M-name list,
#                              end to end (read, parse, hash, build, swap); goal <= 3
#   blocklist_map_mib_1m       the generation map's memory as the kernel accounts
#                              it (fdinfo memlock, via karsd); goal <= 96
#   dns_query_qps_baseline     queries/s to dnsmasq from a cgroup without programs
#   dns_query_qps_kars         the same from a sandbox's agent cgroup (all programs)
#   dns_query_ratio            kars / baseline, the median of per-round ratios of
#                              interleaved rounds; goal >= 0.95
#   dns_query_qps_router_fqdn  the same queries from the sandbox's router cgroup,
#                              every name on its fqdns: each query recorded on
#                              egress, each answer parsed and learned on ingress
#   dns_query_ratio_router_fqdn  router / baseline, as above (the cost of the
#                              FQDN allowlist's programs; not on the agent's path)
#   blocklist_lookups_per_s    names judged per second by the DNS check with the
#                              1M list (BPF_PROG_TEST_RUN, a 4-label name)
#   dns_prog_baseline_per_s    the same program on a non-DNS packet (fixed cost)
#
# Environment: ROUNDS=9 (interleaved query rounds, the order alternating),
# SECONDS_PER=1, NAMES=1000000. dnsmasq and the query client share the last
# CPU (taskset), as in bench-connect, so that the two configurations compete
# for the same CPU and other load on the machine hits both alike.
# Everything lives in a netns and cgroups this script creates; the list is
# generated into BUILD_DIR/bench/ at run time (deterministic, never committed).
set -euo pipefail

build=${1:?usage: bench/dns.sh BUILD_DIR}
tool=$build/bench/dns
karsd=$build/bin/karsd
kars=$build/bin/kars
ROUNDS=${ROUNDS:-9}
SECONDS_PER=${SECONDS_PER:-1}
NAMES=${NAMES:-1000000}
TAG=kars-bench-dns-$$

log() { echo "dns.sh: $*" >&2; }
die() {
	log "$*"
	exit 1
}

[ "$(id -u)" = 0 ] || die "must run as root (netns, cgroups, BPF)"
for f in "$tool" "$karsd" "$kars"; do [ -x "$f" ] || die "$f is missing: make all"; done
command -v dnsmasq >/dev/null || die "dnsmasq not found (apt-get install dnsmasq-base)"
cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
bpffs=$(awk '$3 == "bpf" { print $2; exit }' /proc/mounts)
[ -n "$cg2" ] && [ -n "$bpffs" ] || die "need cgroup v2 and bpffs mounts"

cg=$cg2/$TAG
pin=$bpffs/$TAG
run=/tmp/$TAG
sock=$run/karsd.sock
list=$build/bench/dns-$NAMES.txt
karsd_pid=
dnsmasq_pid=

cleanup() {
	set +e
	[ -n "$dnsmasq_pid" ] && kill "$dnsmasq_pid" 2>/dev/null && wait "$dnsmasq_pid" 2>/dev/null
	if [ -n "$karsd_pid" ]; then
		"$kars" --socket "$sock" dataplane remove bench/dns >/dev/null 2>&1
		kill "$karsd_pid" 2>/dev/null && wait "$karsd_pid" 2>/dev/null
	fi
	rm -rf "$pin" "$run"
	for d in agent router plain; do rmdir "$cg/$d" 2>/dev/null; done
	rmdir "$cg" 2>/dev/null
	ip netns del "$TAG" 2>/dev/null
}
trap cleanup EXIT

mkdir -p "$run" "$cg/agent" "$cg/router" "$cg/plain"
ip netns add "$TAG"
ip -n "$TAG" link set lo up
ip -n "$TAG" addr add 192.0.2.53/32 dev lo

"$karsd" --socket "$sock" --pin-dir "$pin" --log-level warn 2>"$run/karsd.log" &
karsd_pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || die "karsd did not start: $(cat "$run/karsd.log")"
cat >"$run/policy.json" <<JSON
{"sandbox": "bench/dns", "agent": {"cgroup": "$cg/agent", "uid": 1000},
 "router": {"cgroup": "$cg/router", "uid": 1001},
 "resolver": {"ipv4": "192.0.2.53", "port": 53},
 "rules": [{"ip": "192.0.2.53", "port": 53, "protocol": "udp"}],
 "fqdns": [{"name": "*.allowed.test", "port": 443}]}
JSON
"$kars" --socket "$sock" dataplane apply -f "$run/policy.json" >/dev/null

cpu=$(($(nproc) - 1))
ip netns exec "$TAG" taskset -c "$cpu" dnsmasq --keep-in-foreground --conf-file=/dev/null \
	--listen-address=192.0.2.53 --port=53 --bind-interfaces --no-resolv --no-hosts \
	--user=root --pid-file= --cache-size=10000 --log-facility=/dev/null \
	--address=/allowed.test/198.51.100.7 &
dnsmasq_pid=$!

log "generating $NAMES names into $list"
"$tool" gen "$NAMES" "$list"

t0=$(date +%s.%N)
"$kars" --socket "$sock" blocklist load "$list" >"$run/load.out"
t1=$(date +%s.%N)
log "$(cat "$run/load.out")"
status=$("$kars" --socket "$sock" blocklist status)
entries=$(sed -n 's/.*"entries": \([0-9]*\).*/\1/p' <<<"$status")
mem=$(sed -n 's/.*"memoryBytes": \([0-9]*\).*/\1/p' <<<"$status")
[ "${entries:-0}" -ge $((NAMES * 99 / 100)) ] || die "only ${entries:-0} names loaded"
echo "bench: blocklist_entries=$entries"
echo "bench: blocklist_load_seconds_1m=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')"
echo "bench: blocklist_map_mib_1m=$(awk -v b="$mem" 'BEGIN {printf "%.1f", b / 1048576}')"

# A blocked name really is blocked from the agent (a sanity check, not a figure).
blocked=$(sed -n '2p' "$list" | sed 's/^\*\.//')
"$kars" --socket "$sock" blocklist check "www.$blocked" >/dev/null && die "www.$blocked not blocked"

base=()
with=()
ratios=()
qps() {
	taskset -c "$cpu" "$tool" query --server 192.0.2.53:53 --seconds "$SECONDS_PER" \
		--cgroup "$cg/$1" --netns "$TAG" --uid "${2:-1000}" | sed -n 's/^qps=//p'
}
for r in $(seq "$ROUNDS"); do
	if [ $((r % 2)) = 1 ]; then
		b=$(qps plain)
		k=$(qps agent)
	else
		k=$(qps agent)
		b=$(qps plain)
	fi
	log "round $r: baseline $b q/s, kars $k q/s"
	base+=("$b")
	with+=("$k")
	ratios+=("$(awk -v a="$k" -v b="$b" 'BEGIN {printf "%.4f", (b > 0 ? a / b : 0)}')")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mb=$(median "${base[@]}")
mk=$(median "${with[@]}")
echo "bench: dns_query_qps_baseline=$mb"
echo "bench: dns_query_qps_kars=$mk"
# The ratio is the median of each round's pair (measured back to back, so
# both met the same load from elsewhere), not the ratio of the medians.
echo "bench: dns_query_ratio=$(median "${ratios[@]}" | awk '{printf "%.3f", $1}')"

# The router: its DNS passes the FQDN query recorder and answer snooper.
rbase=()
rwith=()
rratios=()
for r in $(seq "$ROUNDS"); do
	if [ $((r % 2)) = 1 ]; then
		b=$(qps plain 1001)
		k=$(qps router 1001)
	else
		k=$(qps router 1001)
		b=$(qps plain 1001)
	fi
	log "router round $r: baseline $b q/s, kars $k q/s"
	rbase+=("$b")
	rwith+=("$k")
	rratios+=("$(awk -v a="$k" -v b="$b" 'BEGIN {printf "%.4f", (b > 0 ? a / b : 0)}')")
done
learned=$("$kars" --socket "$sock" dataplane fqdn bench/dns | grep -c 198.51.100.7 || true)
[ "$learned" -ge 1 ] || die "the router's answers taught no FQDN entry: the path was not measured"
echo "bench: dns_query_qps_router_fqdn=$(median "${rwith[@]}")"
echo "bench: dns_query_ratio_router_fqdn=$(median "${rratios[@]}" | awk '{printf "%.3f", $1}')"

link=$(ls -d "$pin"/cgroups/*/skb_egress | head -1)
out=$("$tool" lookups --link "$(dirname "$link")/dns_egress" --repeat 1000000)
lns=$(sed -n 's/^lookups_ns=//p' <<<"$out")
bns=$(sed -n 's/^baseline_ns=//p' <<<"$out")
echo "bench: blocklist_lookups_per_s=$(awk -v n="$lns" 'BEGIN {printf "%.0f", 1e9 / n}')"
echo "bench: dns_prog_baseline_per_s=$(awk -v n="$bns" 'BEGIN {printf "%.0f", 1e9 / n}')"
