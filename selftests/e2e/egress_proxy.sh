#!/bin/bash
# egress_proxy.sh - kars-router's egress proxy end to end, with real
# processes in a network namespace of its own: curl as the agent's UID with
# HTTPS_PROXY / http_proxy, nginx serving TLS with a test CA on "public"
# addresses (documentation ranges on the namespace's loopback), dnsmasq as the
# resolver the router uses. Checked: an allowed name over CONNECT and plain
# HTTP; refused (403 with the reason): a name off the allowlist, an IP
# literal, names resolving to a private and to the metadata address (DNS
# rebinding), an allowed name on a port it is not allowed, a CONNECT whose
# Host names another host, a second request on a kept-alive connection to
# another host (curl, and pipelined by hand: never forwarded), a caller that
# is not the agent's UID; closed: a CONNECT tunnel whose SNI names another
# host, a ClientHello without SNI, bytes that are not TLS, TLS sent straight
# to the proxy when karsd has no original destination. The control
# endpoints: the agent may not switch to learn mode, approve or read; root
# can, and learn mode still refuses the blocklist and private addresses.
# Limits: an unreachable address is a 502; past maxTunnels a connection is
# closed at once; a silent connection is closed after idleTimeoutSeconds.
# Every decision is
# in the audit chain and the refusals in /metrics.
#
# Usage: selftests/e2e/egress_proxy.sh [BUILD_DIR]
# Prints "e2e/egress-proxy: N passed, N failed". Needs root, nginx, dnsmasq,
# openssl, socat, curl, setpriv. Ports 24000-24999 (its own netns anyway).
set -u

# shellcheck source=selftests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=selftests/e2e/egress_servers.sh
. "$(dirname "$0")/egress_servers.sh"
E2E_NAME=e2e/egress-proxy

if [ -z "${KARS_EGRESS_NETNS:-}" ]; then
	[ "$(id -u)" = 0 ] || e2e_abort "needs root (a network namespace of its own)"
	# shellcheck disable=SC2016 # expanded by the inner bash
	exec unshare --net -- env KARS_EGRESS_NETNS=1 bash -c \
		'ip link set lo up && exec "$0" "$@"' "$0" "$@"
fi

cd "$(dirname "$0")/../.." || exit 2
build=${1:-build}
router=$build/bin/kars-router
tmp=$(mktemp -d /tmp/issue7p-egress.XXXXXX) || exit 2
chmod 755 "$tmp"
agent_uid=24001
proxy=http://127.0.0.1:24444
api=http://127.0.0.1:24443
router_pid='' nginx_pid='' dns_pid='' router2_pid='' held_pid=''

cleanup() {
	for pid in $held_pid $router2_pid $router_pid $nginx_pid $dns_pid; do
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

[ -x "$router" ] || e2e_abort "$router is missing (make all)"
for cmd in nginx dnsmasq openssl socat curl setpriv; do
	command -v "$cmd" >/dev/null || e2e_abort "$cmd is missing (make deps)"
done

# "Public" addresses of the test servers, and a private one for rebinding,
# on this namespace's loopback device.
if ! { ip addr add 198.51.100.10/32 dev lo && ip addr add 10.99.0.5/32 dev lo &&
	ip addr add 2001:db8::10/128 dev lo nodad; }; then
	e2e_abort "cannot set up the test addresses"
fi

egress_certs "$tmp" allowed.test other.test rebind.test meta.test ||
	e2e_abort "cannot make the test certificates"
egress_nginx "$tmp" "198.51.100.10:443 ssl" "[2001:db8::10]:443 ssl" "198.51.100.10:80" \
	"198.51.100.10:8443 ssl" "10.99.0.5:443 ssl"
egress_dnsmasq "$tmp" allowed.test=198.51.100.10 allowed.test=2001:db8::10 \
	other.test=198.51.100.10 denied.test=198.51.100.10 rebind.test=10.99.0.5 \
	meta.test=169.254.169.254 down.test=198.51.100.12

printf 'sk-test\n' >"$tmp/api-key"
chmod 600 "$tmp/api-key"
printf '{"schemaVersion": 1, "kind": "InferencePolicy", "namespace": "t", "name": "e",
 "allowedModels": ["gpt-4o-mini"]}\n' >"$tmp/policy.json"
printf 'blocked.test\n' >"$tmp/blocklist.txt"
cat >"$tmp/router.json" <<JSON
{"sandbox": "t/egress", "listen": "127.0.0.1:24443", "agentUid": $agent_uid,
 "upstream": {"kind": "openai", "baseUrl": "http://127.0.0.1:24999/v1", "apiKeyFile": "$tmp/api-key"},
 "policy": {"file": "$tmp/policy.json"}, "budget": {"file": "$tmp/budget.json"},
 "audit": {"file": "$tmp/audit.jsonl", "keyFile": "$tmp/audit.key"},
 "egressProxy": {"listen": ["127.0.0.1:24444", "[::1]:24444"], "mode": "strict",
   "resolver": "127.0.0.1:24053", "blocklistFile": "$tmp/blocklist.txt",
   "karsdSocket": "$tmp/no-karsd.sock",
   "allow": [{"name": "allowed.test", "ports": "80"}, {"name": "allowed.test", "port": 443},
             {"name": "*.example.test", "port": 443}, {"name": "rebind.test", "port": 443},
             {"name": "meta.test", "port": 443}, {"name": "blocked.test", "port": 443},
             {"name": "down.test", "port": 443}]}}
JSON
"$router" --config "$tmp/router.json" --log-level debug 2>"$tmp/router.log" &
router_pid=$!
for _ in $(seq 100); do
	curl -s "$api/healthz" >/dev/null 2>&1 && break
	sleep 0.05
done
curl -s "$api/healthz" >/dev/null 2>&1 || e2e_abort "kars-router did not start: $(cat "$tmp/router.log")"
for _ in $(seq 100); do
	curl -s --cacert "$tmp/ca.pem" --resolve allowed.test:443:198.51.100.10 \
		https://allowed.test/ >/dev/null 2>&1 && break
	sleep 0.05
done

# as_agent CMD...: runs CMD as the agent's UID.
as_agent() { setpriv --reuid "$agent_uid" --regid "$agent_uid" --clear-groups -- "$@"; }
# https_code URL [CURL-ARGS]: the CONNECT answer's code and the server's, as "connect/http".
https_code() {
	local url=$1
	shift
	as_agent env HTTPS_PROXY="$proxy" curl -s -o /dev/null --cacert "$tmp/ca.pem" \
		-w '%{http_connect}/%{http_code}' "$@" "$url"
}
# audit PATTERN: the audit chain, once a record matching PATTERN is in it
# (records are group-committed; waits up to 5 s, then prints it anyway).
audit() {
	for _ in $(seq 100); do
		grep -qE -- "$1" "$tmp/audit.jsonl" && break
		sleep 0.05
	done
	cat "$tmp/audit.jsonl"
}

check "allowed name over CONNECT" 0 '^200/200$' -- https_code https://allowed.test/
check "allowed name, body from the server" 0 'served allowed.test' -- \
	as_agent env HTTPS_PROXY="$proxy" curl -s --cacert "$tmp/ca.pem" https://allowed.test/
check "allowed name over plain HTTP" 0 'served allowed.test' -- \
	as_agent env http_proxy="$proxy" curl -s http://allowed.test/
check "IPv6 listener, allowed name" 0 '^200/200$' -- \
	as_agent env HTTPS_PROXY="http://[::1]:24444" curl -s -o /dev/null --cacert "$tmp/ca.pem" \
	-w '%{http_connect}/%{http_code}' https://allowed.test/
check "name off the allowlist: 403" 56 '^403/000$' -- https_code https://denied.test/
check "denial names its reason" 0 'X-Kars-Reason: not_allowed' -- \
	bash -c "printf 'CONNECT denied.test:443 HTTP/1.1\r\nHost: denied.test:443\r\n\r\n' |
	setpriv --reuid $agent_uid --regid $agent_uid --clear-groups socat -t 3 - TCP:127.0.0.1:24444"
check "plain HTTP off the allowlist: 403" 0 '^403$' -- \
	as_agent env http_proxy="$proxy" curl -s -o /dev/null -w '%{http_code}' http://denied.test/
check "IP literal: 403" 56 '^403/000$' -- https_code https://198.51.100.10/
check "IPv6 literal: 403" 56 '^403/000$' -- https_code 'https://[2001:db8::10]/'
check "blocklisted though allowlisted: 403" 56 '^403/000$' -- https_code https://blocked.test/
check "rebinding to a private address: 403" 56 '^403/000$' -- https_code https://rebind.test/
check "rebinding to the metadata address: 403" 56 '^403/000$' -- https_code https://meta.test/
pat='refused_address rebind.test:443.*10.99.0.5 is private'
check "refused address named in the audit chain" 0 "$pat" -- audit "$pat"
check "allowed name on a port not allowed: 403" 56 '^403/000$' -- \
	https_code https://allowed.test:8443/
check "CONNECT whose Host names another host: 400" 0 '^HTTP/1.1 400 .*another host' -- \
	bash -c "printf 'CONNECT allowed.test:443 HTTP/1.1\r\nHost: denied.test:443\r\n\r\n' |
	setpriv --reuid $agent_uid --regid $agent_uid --clear-groups socat -t 3 - TCP:127.0.0.1:24444 | tr -d '\r' | tr '\n' ' '"
check "SNI of another host in the tunnel: closed" 35 '^200/000$' -- \
	https_code https://other.test/ --connect-to other.test:443:allowed.test:443
pat='sni_mismatch allowed.test:443.*other.test'
check "sni_mismatch audited" 0 "$pat" -- audit "$pat"
check "ClientHello without SNI: closed" 1 'CONNECTED' -- \
	as_agent openssl s_client -proxy 127.0.0.1:24444 -connect allowed.test:443 -noservername \
	-CAfile "$tmp/ca.pem" </dev/null
check "sni_missing audited" 0 'sni_missing allowed.test:443' -- audit 'sni_missing allowed.test:443' 
check "plain bytes in a CONNECT tunnel: closed" 0 '^HTTP/1.1 200 Connection established' -- \
	bash -c "(printf 'CONNECT allowed.test:443 HTTP/1.1\r\n\r\n'; sleep 0.5; printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n') |
	setpriv --reuid $agent_uid --regid $agent_uid --clear-groups socat -t 3 - TCP:127.0.0.1:24444"
check "not_tls audited" 0 'not_tls allowed.test:443' -- audit 'not_tls allowed.test:443' 
check "kept-alive second request to another host: 403" 0 'served allowed.test +200 .*not_allowed: denied.test:80 +403' -- \
	bash -c "setpriv --reuid $agent_uid --regid $agent_uid --clear-groups env http_proxy=$proxy \
	curl -s -w ' %{http_code} ' http://allowed.test/ http://denied.test/ | tr '\n' ' '"
pipelined="GET http://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\n\r\nGET http://denied.test/ HTTP/1.1\r\nHost: denied.test\r\n\r\n"
check "pipelined second request is never forwarded" 0 '^1 served allowed.test$' -- \
	bash -c "printf '$pipelined' | setpriv --reuid $agent_uid --regid $agent_uid --clear-groups \
	socat -t 3 - TCP:127.0.0.1:24444 | tr -d '\r' | awk '/^HTTP\/1/ {n++} /^served/ {b=\$0} END {print n, b}'"
check "denied.test never reached the server" 1 '^0$' -- grep -c 'denied' "$tmp/access.log"
check "a caller that is not the agent: 403" 56 '^403/000$' -- \
	env HTTPS_PROXY="$proxy" curl -s -o /dev/null --cacert "$tmp/ca.pem" \
	-w '%{http_connect}/%{http_code}' https://allowed.test/
check "malformed head: 400" 0 '^HTTP/1.1 400 .*bare LF' -- \
	bash -c "printf 'GET http://allowed.test/ HTTP/1.1\nHost: allowed.test\r\n\r\n' |
	setpriv --reuid $agent_uid --regid $agent_uid --clear-groups socat -t 3 - TCP:127.0.0.1:24444 | tr -d '\r' | tr '\n' ' '"
pat='"action":"egress.connect","decision":"allow"'
# The transparent path fails closed without the data plane's record.
check "TLS without CONNECT and no orig_dst: closed" 35 '^000$' -- \
	as_agent curl -s -o /dev/null -w '%{http_code}' --cacert "$tmp/ca.pem" \
	--connect-to allowed.test:443:127.0.0.1:24444 https://allowed.test/
check "orig_dst_unavailable audited" 0 'egress.tls.*orig_dst_unavailable allowed.test' -- \
	audit 'orig_dst_unavailable allowed.test'
check "allow audited" 0 "$pat" -- audit "$pat"
# The control endpoints: the agent may not touch them.
ctl() { # METHOD PATH [BODY]
	curl -s -X "$1" ${3:+-d "$3"} "$api/kars/v1/$2"
}
check "the agent switching the mode to learn: 403" 0 'control_forbidden' -- \
	as_agent curl -s -X PUT -d '{"mode":"learn"}' "$api/kars/v1/egress/mode"
check "the agent approving a host: 403" 0 'control_forbidden' -- \
	as_agent curl -s -X POST -d '{"host":"denied.test","port":80}' "$api/kars/v1/egress/approve"
check "the agent reading the egress state: 403" 0 'control_forbidden' -- \
	as_agent curl -s "$api/kars/v1/egress"
check "still strict after the agent's attempt" 0 '^403$' -- \
	as_agent env http_proxy="$proxy" curl -s -o /dev/null -w '%{http_code}' http://denied.test/
check "the agent's attempt audited" 0 'control.egress.mode","decision":"deny' -- \
	audit 'control.egress.mode","decision":"deny'
check "root reads the state" 0 '"mode":"strict".*"name":"allowed.test","portLo":80' -- ctl GET egress
check "root switches to learn" 0 '"mode":"learn"' -- ctl PUT egress/mode '{"mode":"learn"}'
check "learn mode allows an unlisted name" 0 'served denied.test' -- \
	as_agent env http_proxy="$proxy" curl -s http://denied.test/
check "learn mode still refuses the blocklist" 56 '^403/000$' -- https_code https://blocked.test/
check "learn mode still refuses a private address" 56 '^403/000$' -- https_code https://rebind.test/
check "the learned list" 0 '"learned":\[\{"host":"denied.test","port":80,"count":1' -- ctl GET egress
check "approve" 0 '"host":"denied.test","port":80' -- ctl POST egress/approve '{"host":"Denied.Test.","port":80}'
check "approving a blocklisted name: 400" 0 'cannot approve blocked.test:443: blocklisted' -- \
	ctl POST egress/approve '{"host":"blocked.test","port":443}'
check "approving an IP literal: 400" 0 'ip_literal' -- \
	ctl POST egress/approve '{"host":"10.0.0.1","port":443}'
check "enforce" 0 '"mode":"strict"' -- ctl POST egress/enforce
check "approved name allowed in strict mode" 0 'served denied.test' -- \
	as_agent env http_proxy="$proxy" curl -s http://denied.test/
check "approved on its port only" 56 '^403/000$' -- https_code https://denied.test/
check "the approval left the learned list" 0 '"learned":\[\]' -- ctl GET egress
check "metrics: refusals by reason" 0 'kars_router_egress_denied_total\{sandbox="t/egress",reason="ip_literal"\} 2' -- \
	curl -s "$api/metrics"
check "metrics: limits" 0 'kars_router_egress_tunnels_max\{sandbox="t/egress"\} 256' -- \
	curl -s "$api/metrics"
check "metrics: bytes relayed" 0 'kars_router_egress_bytes_total\{sandbox="t/egress",direction="down"\} [1-9]' -- \
	curl -s "$api/metrics"
check "an address that cannot be reached: 502" 0 'HTTP/1.1 502 .*connect_failed' -- \
	bash -c "printf 'CONNECT down.test:443 HTTP/1.1\r\n\r\n' |
	setpriv --reuid $agent_uid --regid $agent_uid --clear-groups socat -t 5 - TCP:127.0.0.1:24444 | tr -d '\r' | tr '\n' ' '"

# Limits: a second router with room for one tunnel and a 2 s idle timeout.
sed -e 's/127.0.0.1:24443/127.0.0.1:24446/' -e 's/"127.0.0.1:24444", "\[::1\]:24444"/"127.0.0.1:24445"/' \
	-e 's/"mode": "strict",/"mode": "strict", "maxTunnels": 1, "idleTimeoutSeconds": 2,/' \
	-e "s|$tmp/audit|$tmp/audit2|; s|$tmp/budget|$tmp/budget2|" "$tmp/router.json" >"$tmp/router2.json"
"$router" --config "$tmp/router2.json" 2>"$tmp/router2.log" &
router2_pid=$!
for _ in $(seq 100); do
	curl -s http://127.0.0.1:24446/healthz >/dev/null 2>&1 && break
	sleep 0.05
done
# metric NAME-REGEX: the second router's /metrics line, once it matches
# (waits up to 10 s: the limits act on their own time).
metric() {
	for _ in $(seq 200); do
		curl -s http://127.0.0.1:24446/metrics | grep -qE -- "$1" && break
		sleep 0.05
	done
	curl -s http://127.0.0.1:24446/metrics | grep -E 'kars_router_egress_(tunnels|refused|timeouts)'
}
sleep 30 | as_agent socat - TCP:127.0.0.1:24445 >/dev/null 2>&1 &
held_pid=$!
check "one tunnel open" 0 'kars_router_egress_tunnels\{sandbox="t/egress"\} 1' -- \
	metric 'kars_router_egress_tunnels\{sandbox="t/egress"\} 1'
check "maxTunnels: the next connection is closed" 56 '^000$' -- \
	as_agent env HTTPS_PROXY=http://127.0.0.1:24445 curl -s -o /dev/null -w '%{http_connect}' \
	--cacert "$tmp/ca.pem" https://allowed.test/
check "maxTunnels counted" 0 'refused_full_total\{sandbox="t/egress"\} 1' -- \
	metric 'refused_full_total\{sandbox="t/egress"\} 1'
check "idle timeout closes the silent connection" 0 'kind="idle"\} 1' -- metric 'kind="idle"\} 1'
check "the slot is free again" 0 '^200/200$' -- \
	as_agent env HTTPS_PROXY=http://127.0.0.1:24445 curl -s -o /dev/null --cacert "$tmp/ca.pem" \
	-w '%{http_connect}/%{http_code}' https://allowed.test/

e2e_summary
