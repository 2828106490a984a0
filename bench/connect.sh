#!/bin/bash
# connect.sh - connect() rate without programs, under kars (10 and 100,000
# allow rules) and under an iptables owner-match chain (10 and 10,000 rules),
# all measured in one run, interleaved, with the ratios to the baseline.
#
# usage: bench/connect.sh BUILD_DIR     (root; `make bench-connect` runs it)
#
# Environment (all optional):
#   ROUNDS=15        interleaved rounds; every round measures every configuration
#   ITERS=10000      connects per timed repetition (ITERS_SLOW=1000 for iptables_10k)
#   REPS=3           timed repetitions per configuration and round
#   IPTABLES=nft     iptables backend: nft (Debian 12's `iptables`) or legacy
#
# Everything lives in namespaces and cgroups this script creates: the peer
# listens in its own netns on 192.0.2.0/24 (TEST-NET-1), each client
# configuration has its own netns joined to it by a veth pair, and the kars
# rules that are not the peer use 198.18.0.0/15 addresses that are never
# dialled. The host's own network and firewall are not touched. Exits non-zero
# when a step fails; whatever the figures are, a completed measurement exits 0.
set -euo pipefail

build=${1:?usage: bench/connect.sh BUILD_DIR}
tool=$build/bench/connect
karsd=$build/bin/karsd
ROUNDS=${ROUNDS:-15}
ITERS=${ITERS:-10000}
ITERS_SLOW=${ITERS_SLOW:-1000}
REPS=${REPS:-3}
IPTABLES=${IPTABLES:-nft}

UID_BENCH=61001 # the router UID; needs no passwd entry
PORT=7000
TAG=kars-bench-$$
CONFIGS=(baseline kars_10 kars_100k iptables_10 iptables_10k)

log() { echo "connect.sh: $*" >&2; }
die() {
	log "$*"
	exit 1
}

[ "$(id -u)" = 0 ] || die "must run as root (netns, cgroups, BPF, iptables)"
[ -x "$tool" ] || die "$tool is missing: make $build/bench/connect"
[ -x "$karsd" ] || die "$karsd is missing: make $build/bin/karsd"
case $IPTABLES in
nft | legacy) ;;
*) die "IPTABLES=$IPTABLES: expected nft or legacy" ;;
esac
ipt=iptables-$IPTABLES
for cmd in ip taskset "$ipt" "$ipt-restore"; do
	command -v "$cmd" >/dev/null || die "$cmd not found"
done

cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
bpffs=$(awk '$3 == "bpf" { print $2; exit }' /proc/mounts)
[ -n "$cg2" ] || die "no cgroup v2 mount in /proc/mounts"
[ -n "$bpffs" ] || die "no bpffs mount in /proc/mounts"

# The benchmark (client and peer) runs on the last CPU; karsd and this
# script stay off it. Client and peer share one CPU on purpose: see README.
ncpu=$(nproc)
cpu=$((ncpu - 1))
other=0
[ "$ncpu" -gt 1 ] || other=""

tmp=$(mktemp -d /tmp/kars-bench.XXXXXX)
pin=$bpffs/$TAG
cg=$cg2/$TAG
ns_srv=$TAG-srv
server_pid=""
karsd_pid=""
netns_made=()

# --- cleanup, on every exit ---------------------------------------------------
cleanup() {
	local rc=$? p s n
	trap - EXIT INT TERM
	set +e
	if [ -n "$server_pid" ]; then
		kill "$server_pid" 2>/dev/null
		wait "$server_pid" 2>/dev/null
	fi
	if [ -n "$karsd_pid" ]; then
		for s in connect-10 connect-100k; do
			timeout 10 "$tool" remove --socket "$tmp/karsd.sock" \
				--sandbox "kars-bench/$s" >/dev/null 2>&1
		done
		kill "$karsd_pid" 2>/dev/null
		for _ in $(seq 50); do
			kill -0 "$karsd_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$karsd_pid" 2>/dev/null
		wait "$karsd_pid" 2>/dev/null
	fi
	# Pinned links hold the programs on the cgroups: unpinning detaches them.
	[ -d "$pin" ] && rm -rf "$pin"
	if [ -d "$cg" ]; then
		# Only processes this script started can be in these cgroups.
		find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null | while read -r p; do
			kill -9 "$p" 2>/dev/null
		done
		sleep 0.1
		find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
	fi
	# A netns takes its veth ends and iptables rules with it.
	for n in "${netns_made[@]}"; do
		ip netns del "$n" 2>/dev/null
	done
	rm -rf "$tmp"
	[ $rc = 0 ] || log "failed (exit $rc); everything this run created is removed"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- network: one peer netns, one client netns per configuration ---------------
# Client netns i gets 192.0.2.(4i+2)/30, the peer's end 192.0.2.(4i+1)/30.
declare -A ns_of peer_of
ip netns add "$ns_srv"
netns_made+=("$ns_srv")
ip -n "$ns_srv" link set lo up
i=0
for c in kars ipt10 ipt10k; do
	n=$TAG-$c
	ip netns add "$n"
	netns_made+=("$n")
	ip -n "$n" link set lo up
	ip -n "$n" link add eth0 type veth peer name "c$i" netns "$ns_srv"
	ip -n "$n" addr add "192.0.2.$((4 * i + 2))/30" dev eth0
	ip -n "$ns_srv" addr add "192.0.2.$((4 * i + 1))/30" dev "c$i"
	ip -n "$n" link set eth0 up
	ip -n "$ns_srv" link set "c$i" up
	ns_of[$c]=/run/netns/$n
	peer_of[$c]=192.0.2.$((4 * i + 1))
	i=$((i + 1))
done

"$tool" serve --peer "0.0.0.0:$PORT" --netns "/run/netns/$ns_srv" --cpu "$cpu" \
	>"$tmp/serve.out" &
server_pid=$!
for _ in $(seq 100); do
	grep -q ready "$tmp/serve.out" 2>/dev/null && break
	kill -0 "$server_pid" 2>/dev/null || die "the peer failed to start"
	sleep 0.05
done
grep -q ready "$tmp/serve.out" || die "the peer did not get ready"

# --- cgroups -----------------------------------------------------------------
# Same depth for all, siblings under one parent: same inherited programs.
mkdir -p "$cg/plain/task" "$cg/connect-10/router" "$cg/connect-100k/router"

# --- kars ----------------------------------------------------------------------
${other:+taskset -c $other} "$karsd" --socket "$tmp/karsd.sock" --pin-dir "$pin" \
	>"$tmp/karsd.log" 2>&1 &
karsd_pid=$!
for _ in $(seq 100); do
	[ -S "$tmp/karsd.sock" ] && break
	kill -0 "$karsd_pid" 2>/dev/null || {
		cat "$tmp/karsd.log" >&2
		die "karsd exited during start-up"
	}
	sleep 0.1
done
[ -S "$tmp/karsd.sock" ] || die "karsd did not create its socket within 10 s"

apply() { # sandbox rules
	"$tool" apply --socket "$tmp/karsd.sock" --sandbox "kars-bench/$1" \
		--cgroup "$cg/$1/router" --uid $UID_BENCH --peer "${peer_of[kars]}:$PORT" \
		--rules "$2" | sed 's/^/connect.sh: /' >&2
}
# Two sandboxes, so that rounds can alternate between them without touching
# karsd while anything is being measured. The big one is applied small first
# and then re-applied with 100,000 rules: the replace path, as in production.
apply connect-10 10
apply connect-100k 10
apply connect-100k 100000

# --- iptables -------------------------------------------------------------------
# OUTPUT, filter table, one owner-match rule per destination, the peer's rule
# last (worst case for a linear chain), then a DROP for the UID.
ipt_rules() { # n peer
	echo "*filter"
	echo ":INPUT ACCEPT [0:0]"
	echo ":FORWARD ACCEPT [0:0]"
	echo ":OUTPUT ACCEPT [0:0]"
	awk -v n="$1" -v u=$UID_BENCH 'BEGIN {
		for (i = 0; i < n - 1; i++)
			printf "-A OUTPUT -m owner --uid-owner %d -d 198.%d.%d.%d/32 -p tcp --dport 443 -j ACCEPT\n",
				u, 18 + int(i / 65536), int(i / 256) % 256, i % 256
	}'
	echo "-A OUTPUT -m owner --uid-owner $UID_BENCH -d $2/32 -p tcp --dport $PORT -j ACCEPT"
	echo "-A OUTPUT -m owner --uid-owner $UID_BENCH -j DROP"
	echo "COMMIT"
}
for c in ipt10:10 ipt10k:10000; do
	name=${c%%:*}
	n=${c#*:}
	ipt_rules "$n" "${peer_of[$name]}" >"$tmp/$name.rules"
	ip netns exec "$TAG-$name" "$ipt-restore" <"$tmp/$name.rules"
	got=$(ip netns exec "$TAG-$name" "$ipt" -S OUTPUT | grep -c '^-A OUTPUT')
	[ "$got" = $((n + 1)) ] || die "$name: expected $((n + 1)) OUTPUT rules, found $got"
	log "$name: $n owner-match rules + DROP in the OUTPUT chain ($ipt)"
done

# --- what each configuration runs ----------------------------------------------
declare -A cg_of net_of peer iters warmup
for c in "${CONFIGS[@]}"; do
	iters[$c]=$ITERS
	warmup[$c]=1000
done
cg_of[baseline]=$cg/plain/task net_of[baseline]=kars
cg_of[kars_10]=$cg/connect-10/router net_of[kars_10]=kars
cg_of[kars_100k]=$cg/connect-100k/router net_of[kars_100k]=kars
cg_of[iptables_10]=$cg/plain/task net_of[iptables_10]=ipt10
cg_of[iptables_10k]=$cg/plain/task net_of[iptables_10k]=ipt10k
iters[iptables_10k]=$ITERS_SLOW
warmup[iptables_10k]=100
for c in "${CONFIGS[@]}"; do
	peer[$c]=${peer_of[${net_of[$c]}]}:$PORT
done

# A probe proves the configuration is in the path before it is measured: the
# peer must answer, the next port must be refused by the policy (kars: EPERM at
# connect(); iptables: the SYN dropped). The baseline has no policy to probe.
probe() { # config peer expect
	"$tool" probe --peer "$2" --expect "$3" --cgroup "${cg_of[$1]}" \
		--netns "${ns_of[${net_of[$1]}]}" --uid $UID_BENCH | sed "s/^/connect.sh: $1: /" >&2
}
probe baseline "${peer[baseline]}" allow
for c in kars_10 kars_100k iptables_10 iptables_10k; do
	probe $c "${peer[$c]}" allow
	probe $c "${peer[$c]%:*}:$((PORT + 1))" deny
done

measure() { # config -> "rate=.. iters=.. rounds=r1,r2,.."
	"$tool" run --peer "${peer[$1]}" --cgroup "${cg_of[$1]}" --netns "${ns_of[${net_of[$1]}]}" \
		--uid $UID_BENCH --cpu "$cpu" --iters "${iters[$1]}" --warmup "${warmup[$1]}" \
		--rounds "$REPS"
}

# --- interleaved rounds -----------------------------------------------------------
# Every round measures every configuration once, starting one further along the
# list each round, so slow drift of the machine hits them all alike.
declare -A all round_rate
log "measuring: $ROUNDS rounds x ${#CONFIGS[@]} configurations x $REPS repetitions"
for r in $(seq 0 $((ROUNDS - 1))); do
	line=""
	for k in $(seq 0 $((${#CONFIGS[@]} - 1))); do
		c=${CONFIGS[$(((r + k) % ${#CONFIGS[@]}))]}
		out=$(measure "$c") || die "$c: the measurement failed"
		rate=$(sed -n 's/^rate=\([0-9]*\) .*/\1/p' <<<"$out")
		reps=$(sed -n 's/.* rounds=\([0-9,]*\)$/\1/p' <<<"$out")
		if [ -z "$rate" ] || [ -z "$reps" ]; then
			die "$c: unexpected output: $out"
		fi
		all[$c]="${all[$c]:-} ${reps//,/ }"
		round_rate[$c,$r]=$rate
		line+=" $c=$rate"
	done
	log "round $((r + 1))/$ROUNDS:$line"
done

# Every measured connect ran through the programs: karsd's own counters.
"$tool" metrics --socket "$tmp/karsd.sock" 2>/dev/null | grep -v '^#' |
	grep -E 'kars-bench/|map="rules_exact"' | sed 's/^/connect.sh: karsd: /' >&2 ||
	log "karsd: no metrics"

# --- results ----------------------------------------------------------------------
median() { # fmt < numbers
	tr ' ' '\n' | grep . | sort -g | awk -v fmt="$1\n" '{ v[NR] = $1 } END {
		printf fmt, NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
quartiles() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END {
	printf "min %d q1 %d q3 %d max %d n %d", v[1], v[int((NR + 3) / 4)],
		v[int((3 * NR + 3) / 4)], v[NR], NR }'; }

declare -A med
for c in "${CONFIGS[@]}"; do
	med[$c]=$(median %.0f <<<"${all[$c]}")
	log "$c: median ${med[$c]} connects/s ($(quartiles <<<"${all[$c]}"))"
done
# Cross-check against drift: the median over rounds of each round's own ratio.
for c in "${CONFIGS[@]:1}"; do
	paired=""
	for r in $(seq 0 $((ROUNDS - 1))); do
		paired+=" $(awk -v a="${round_rate[$c,$r]}" -v b="${round_rate[baseline,$r]}" \
			'BEGIN { printf "%.4f", a / b }')"
	done
	log "$c: median of per-round ratios $(median %.3f <<<"$paired")"
done

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
echo "bench: connect_env kernel=$(uname -r) cpus=$ncpu cpu=\"${cpu_model:-unknown}\"" \
	"iptables_backend=$IPTABLES ($($ipt --version))"
for c in "${CONFIGS[@]}"; do
	echo "bench: connect_rate_$c=${med[$c]}"
done
for c in "${CONFIGS[@]:1}"; do
	echo "bench: connect_ratio_$c=$(awk -v a="${med[$c]}" -v b="${med[baseline]}" \
		'BEGIN { printf "%.3f", a / b }')"
done
