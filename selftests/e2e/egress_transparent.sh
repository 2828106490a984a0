#!/bin/bash
# egress_transparent.sh - the egress proxy's transparent path through the
# real data plane: karsd attaches its programs to a test sandbox's cgroups,
# kars-router runs in the router cgroup as the router UID, and curl runs in
# the agent cgroup as the agent UID *without* proxy settings: its TCP 443 is
# redirected to the proxy by connect4/6, the proxy reads the SNI, asks karsd
# orig_dst, and dials the original address from the router cgroup (where a
# rule lets it reach the test server). Checked: an allowed name is served;
# closed and audited: a name off the allowlist, an address the name does not
# resolve to (orig_dst_mismatch), no SNI (an IP URL), a blocklisted name.
# Everything runs in a network namespace of its own.
#
# Usage: selftests/e2e/egress_transparent.sh [BUILD_DIR]
# Prints "e2e/egress-transparent: N passed, N failed". Needs root (BPF,
# cgroups), nginx, dnsmasq, openssl, socat, curl, setpriv.
set -u

# shellcheck source=selftests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=selftests/e2e/egress_servers.sh
. "$(dirname "$0")/egress_servers.sh"
E2E_NAME=e2e/egress-transparent

if [ -z "${KARS_EGRESS_NETNS:-}" ]; then
	[ "$(id -u)" = 0 ] || e2e_abort "needs root (BPF, cgroups, a network namespace)"
	# shellcheck disable=SC2016 # expanded by the inner bash
	exec unshare --net -- env KARS_EGRESS_NETNS=1 bash -c \
		'ip link set lo up && exec "$0" "$@"' "$0" "$@"
fi

cd "$(dirname "$0")/../.." || exit 2
build=${1:-build}
router=$build/bin/kars-router
karsd=$build/bin/karsd
tmp=$(mktemp -d /tmp/issue7p-transparent.XXXXXX) || exit 2
chmod 755 "$tmp"
pins=/sys/fs/bpf/issue7p-transparent-$$
cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
cg=$cg2/issue7p-transparent-$$
agent_uid=24011 router_uid=24012
api=http://127.0.0.1:24443
router_pid='' nginx_pid='' dns_pid='' karsd_pid=''

cleanup() {
	[ -n "$karsd_pid" ] && printf '{"op":"remove","sandbox":"t/transparent"}\n' |
		socat -t 2 - "UNIX-CONNECT:$tmp/karsd.sock" >/dev/null 2>&1
	for pid in $router_pid $nginx_pid $dns_pid $karsd_pid; do
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	rmdir "$cg/agent" "$cg/router" "$cg" 2>/dev/null
	rm -rf "$pins" "$tmp"
}
trap cleanup EXIT

for bin in "$router" "$karsd"; do
	[ -x "$bin" ] || e2e_abort "$bin is missing (make all)"
done
for cmd in nginx dnsmasq openssl socat curl setpriv; do
	command -v "$cmd" >/dev/null || e2e_abort "$cmd is missing (make deps)"
done
[ -n "$cg2" ] || e2e_abort "no cgroup v2 mount"

if ! { ip addr add 198.51.100.10/32 dev lo && ip addr add 198.51.100.11/32 dev lo; }; then
	e2e_abort "cannot add the test addresses"
fi

egress_certs "$tmp" allowed.test denied.test blocked.test ||
	e2e_abort "cannot make the test certificates"
egress_nginx "$tmp" "198.51.100.10:443 ssl" "198.51.100.11:443 ssl"
egress_dnsmasq "$tmp" allowed.test=198.51.100.10 denied.test=198.51.100.10 \
	blocked.test=198.51.100.10

mkdir -p "$cg/agent" "$cg/router" || e2e_abort "cannot create the test cgroups"
"$karsd" --socket "$tmp/karsd.sock" --pin-dir "$pins" 2>"$tmp/karsd.log" &
karsd_pid=$!
for _ in $(seq 200); do [ -S "$tmp/karsd.sock" ] && break; sleep 0.05; done
[ -S "$tmp/karsd.sock" ] || e2e_abort "karsd did not start: $(cat "$tmp/karsd.log")"
apply=$(
	cat <<JSON
{"op": "apply", "sandbox": "t/transparent", "mode": "strict",
 "agent": {"cgroup": "$cg/agent", "uid": $agent_uid},
 "router": {"cgroup": "$cg/router", "uid": $router_uid},
 "routerPort": 24443, "proxyPort": 24444,
 "rules": [{"ip": "198.51.100.10", "port": 443, "protocol": "tcp"},
           {"ip": "198.51.100.11", "port": 443, "protocol": "tcp"},
           {"ip": "127.0.0.1", "port": 24053, "protocol": "udp"}]}
JSON
)
out=$(printf '%s\n' "$(tr -d '\n' <<<"$apply")" | socat -t 5 - "UNIX-CONNECT:$tmp/karsd.sock")
grep -q '"ok":true' <<<"$out" || e2e_abort "apply failed: $out $(tail -5 "$tmp/karsd.log")"

mkdir "$tmp/router" && chown "$router_uid:$router_uid" "$tmp/router"
printf 'sk-test\n' >"$tmp/router/api-key"
chown "$router_uid:$router_uid" "$tmp/router/api-key" && chmod 600 "$tmp/router/api-key"
printf '{"schemaVersion": 1, "kind": "InferencePolicy", "namespace": "t", "name": "e",
 "allowedModels": ["gpt-4o-mini"]}\n' >"$tmp/policy.json"
printf 'blocked.test\n' >"$tmp/blocklist.txt"
chmod 644 "$tmp/policy.json" "$tmp/blocklist.txt"
cat >"$tmp/router.json" <<JSON
{"sandbox": "t/transparent", "listen": "127.0.0.1:24443", "agentUid": $agent_uid,
 "upstream": {"kind": "openai", "baseUrl": "http://127.0.0.1:24999/v1",
              "apiKeyFile": "$tmp/router/api-key"},
 "policy": {"file": "$tmp/policy.json"}, "budget": {"file": "$tmp/router/budget.json"},
 "audit": {"file": "$tmp/router/audit.jsonl", "keyFile": "$tmp/router/audit.key"},
 "egressProxy": {"listen": ["127.0.0.1:24444", "[::1]:24444"],
   "resolver": "127.0.0.1:24053", "karsdSocket": "$tmp/karsd.sock",
   "blocklistFile": "$tmp/blocklist.txt",
   "allow": [{"name": "allowed.test", "port": 443}, {"name": "blocked.test", "port": 443}]}}
JSON
chmod 644 "$tmp/router.json"
# The router: in its cgroup, as its UID.
bash -c "echo \$\$ >'$cg/router/cgroup.procs' && exec setpriv --reuid $router_uid \
	--regid $router_uid --clear-groups '$router' --config '$tmp/router.json' --log-level debug" \
	2>"$tmp/router.log" &
router_pid=$!
for _ in $(seq 100); do
	curl -s "$api/healthz" >/dev/null 2>&1 && break
	sleep 0.05
done
curl -s "$api/healthz" >/dev/null 2>&1 ||
	e2e_abort "kars-router did not start: $(cat "$tmp/router.log")"

# agent CMD...: runs CMD in the agent cgroup as the agent's UID.
agent() {
	bash -c 'echo $$ >"$0/cgroup.procs" && exec setpriv --reuid "$1" --regid "$1" \
		--clear-groups -- "${@:2}"' "$cg/agent" "$agent_uid" "$@"
}
# get NAME ADDR: curl as the agent, no proxy settings, NAME pinned to ADDR.
get() {
	agent curl -s --max-time 10 --cacert "$tmp/ca.pem" --resolve "$1:443:$2" "https://$1/"
}
audit() {
	for _ in $(seq 100); do
		grep -qE -- "$1" "$tmp/router/audit.jsonl" && break
		sleep 0.05
	done
	cat "$tmp/router/audit.jsonl"
}

check "the agent cannot reach the server past the data plane" 7 '^$' -- \
	agent curl -s --max-time 5 --cacert "$tmp/ca.pem" --resolve allowed.test:8443:198.51.100.10 \
	https://allowed.test:8443/
check "allowed name through the redirect" 0 '^served allowed.test$' -- get allowed.test 198.51.100.10
check "audited as egress.tls with the original destination" 0 \
	'"action":"egress.tls","decision":"allow","reason":"allowed allowed.test:443 198.51.100.10"' -- \
	audit 'egress.tls","decision":"allow'
check "name off the allowlist: closed" 35 '^$' -- get denied.test 198.51.100.10
check "not_allowed audited" 0 'egress.tls","decision":"deny","reason":"not_allowed denied.test:443' -- \
	audit 'not_allowed denied.test:443'
check "an address the name does not resolve to: closed" 35 '^$' -- get allowed.test 198.51.100.11
check "orig_dst_mismatch audited" 0 'orig_dst_mismatch allowed.test:443 198.51.100.11' -- \
	audit 'orig_dst_mismatch allowed.test:443'
check "blocklisted name: closed" 35 '^$' -- get blocked.test 198.51.100.10
check "blocklisted audited" 0 'blocklisted blocked.test:443' -- audit 'blocklisted blocked.test:443'
check "IP URL (no SNI): closed" 35 '^$' -- \
	agent curl -s --max-time 10 --cacert "$tmp/ca.pem" https://198.51.100.10/
check "sni_missing audited" 0 'egress.tls","decision":"deny","reason":"sni_missing' -- \
	audit 'sni_missing'
check "denied.test never reached the server" 1 '^0$' -- grep -c 'denied' "$tmp/access.log"

e2e_summary
