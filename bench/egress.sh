#!/bin/bash
# egress.sh - HTTPS through kars-router's egress proxy (CONNECT) against the
# same downloads direct, in one run, interleaved.
#
# usage: bench/egress.sh BUILD_DIR     (root; `make bench-egress` runs it)
#
# In a network namespace of its own: nginx serves a SIZE_MB file over TLS
# on 198.51.100.10 (selftests/e2e/egress_servers.sh), dnsmasq resolves its
# name, kars-router's egress proxy allows it. Each round downloads the file
# once direct and once through the proxy (curl as the agent's UID, HTTPS_PROXY),
# alternating which goes first, then makes CONNECTS small requests each way.
# Prints:
#   bench: egress_proxy_throughput_ratio=R     median proxy/direct download speed
#   bench: egress_proxy_added_connect_us_p50=U p50 of curl's time_appconnect
#                                              (TCP + TLS handshake done) through
#                                              the proxy minus direct
# and the medians they come from. Timings vary with the machine's load: the
# figures are what one run measured, not assertions.
#
# Environment (all optional): ROUNDS=5, SIZE_MB=256, CONNECTS=100.
set -euo pipefail

build=${1:?usage: bench/egress.sh BUILD_DIR}
ROUNDS=${ROUNDS:-5}
SIZE_MB=${SIZE_MB:-256}
CONNECTS=${CONNECTS:-100}

if [ -z "${KARS_EGRESS_BENCH_NETNS:-}" ]; then
	[ "$(id -u)" = 0 ] || {
		echo "egress.sh: needs root (a network namespace of its own)" >&2
		exit 1
	}
	# shellcheck disable=SC2016 # expanded by the inner bash
	exec unshare --net -- env KARS_EGRESS_BENCH_NETNS=1 bash -c \
		'ip link set lo up && exec "$0" "$@"' "$0" "$@"
fi

cd "$(dirname "$0")/.."
# shellcheck source=selftests/e2e/egress_servers.sh
. selftests/e2e/egress_servers.sh
router=$build/bin/kars-router
tmp=$(mktemp -d /tmp/kars-bench-egress.XXXXXX)
chmod 755 "$tmp"
agent_uid=24021
nginx_pid='' dns_pid='' router_pid=''

cleanup() {
	for pid in $router_pid $nginx_pid $dns_pid; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
log() { echo "egress.sh: $*" >&2; }

ip addr add 198.51.100.10/32 dev lo
egress_certs "$tmp" bench.test
egress_nginx "$tmp" "198.51.100.10:443 ssl"
egress_dnsmasq "$tmp" bench.test=198.51.100.10
head -c "$((SIZE_MB * 1024 * 1024))" /dev/zero >"$tmp/www/big"
printf 'x' >"$tmp/www/small"

printf 'sk-bench\n' >"$tmp/api-key"
chmod 600 "$tmp/api-key"
printf '{"schemaVersion": 1, "kind": "InferencePolicy", "namespace": "b", "name": "e",
 "allowedModels": ["gpt-4o-mini"]}\n' >"$tmp/policy.json"
cat >"$tmp/router.json" <<JSON
{"sandbox": "b/egress", "listen": "127.0.0.1:24543", "agentUid": $agent_uid,
 "upstream": {"kind": "openai", "baseUrl": "http://127.0.0.1:24999/v1", "apiKeyFile": "$tmp/api-key"},
 "policy": {"file": "$tmp/policy.json"}, "budget": {"file": "$tmp/budget.json"},
 "audit": {"file": "$tmp/audit.jsonl", "keyFile": "$tmp/audit.key"},
 "egressProxy": {"listen": ["127.0.0.1:24544"], "resolver": "127.0.0.1:24053",
   "allow": [{"name": "bench.test", "port": 443}]}}
JSON
"$router" --config "$tmp/router.json" --log-level warn 2>"$tmp/router.log" &
router_pid=$!
for _ in $(seq 100); do
	curl -s http://127.0.0.1:24543/healthz >/dev/null 2>&1 && break
	sleep 0.05
done

# fetch direct|proxy PATH FORMAT: one curl as the agent, printing FORMAT.
fetch() {
	local -a env=(env)
	[ "$1" = proxy ] && env+=(HTTPS_PROXY=http://127.0.0.1:24544)
	setpriv --reuid "$agent_uid" --regid "$agent_uid" --clear-groups -- "${env[@]}" \
		curl -sf -o /dev/null --cacert "$tmp/ca.pem" --resolve bench.test:443:198.51.100.10 \
		-w "$3\n" "https://bench.test/$2"
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

fetch proxy small '%{http_code}' | grep -q 200 || {
	log "the proxy does not serve bench.test: $(cat "$tmp/router.log")"
	exit 1
}
: >"$tmp/speed.direct"
: >"$tmp/speed.proxy"
: >"$tmp/conn.direct"
: >"$tmp/conn.proxy"
for r in $(seq "$ROUNDS"); do
	order="direct proxy"
	[ $((r % 2)) = 0 ] && order="proxy direct"
	for way in $order; do
		fetch "$way" big '%{speed_download}' >>"$tmp/speed.$way"
	done
	for _ in $(seq "$CONNECTS"); do
		for way in $order; do
			fetch "$way" small '%{time_appconnect}' >>"$tmp/conn.$way"
		done
	done
	log "round $r/$ROUNDS done"
done

d=$(median <"$tmp/speed.direct")
p=$(median <"$tmp/speed.proxy")
cd_=$(median <"$tmp/conn.direct")
cp_=$(median <"$tmp/conn.proxy")
echo "bench: egress_direct_download_mib_s=$(awk -v v="$d" 'BEGIN { printf "%.1f", v / 1048576 }')"
echo "bench: egress_proxy_download_mib_s=$(awk -v v="$p" 'BEGIN { printf "%.1f", v / 1048576 }')"
echo "bench: egress_proxy_throughput_ratio=$(awk -v d="$d" -v p="$p" 'BEGIN { printf "%.3f", p / d }')"
echo "bench: egress_direct_connect_us_p50=$(awk -v v="$cd_" 'BEGIN { printf "%.0f", v * 1e6 }')"
echo "bench: egress_proxy_connect_us_p50=$(awk -v v="$cp_" 'BEGIN { printf "%.0f", v * 1e6 }')"
echo "bench: egress_proxy_added_connect_us_p50=$(awk -v d="$cd_" -v p="$cp_" 'BEGIN { printf "%.0f", (p - d) * 1e6 }')"
