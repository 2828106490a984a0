#!/bin/bash
# router_flow.sh - kars-router's upstream connection, flow control and
# shutdown, end to end, with real processes and sockets:
#   backpressure  an upstream that streams ~31 MiB of SSE as fast as it can,
#                 an agent that reads at 10 MB/s (curl --limit-rate): the
#                 router's memory stays bounded (it stops reading the upstream
#                 while the agent is behind) and the agent gets every byte;
#   drain         SIGTERM with a stream in flight: the listener closes at
#                 once, the stream finishes whole, then the router exits 0;
#   deadline      SIGTERM with a request that outlasts drainTimeoutMs: the
#                 router exits at the deadline, not when the request ends;
#   parsing       raw requests on one socket: pipelined ones answered in
#                 order; smuggling shapes (Content-Length with
#                 Transfer-Encoding, two Content-Lengths, a bare LF) refused
#                 with 400 and the connection closed, the request hidden
#                 behind them never served; a head over 64 KiB 431, a body
#                 over 16 MiB 413;
#   tls           an https upstream (socat with a test CA in front of the
#                 fake): answered with upstream.caFile, by address and by
#                 name; refused (502) for an untrusted issuer and for a
#                 certificate of another name.
#
# Usage: selftests/e2e/router_flow.sh [BUILD_DIR]
# Prints "e2e/router-flow: N passed, N failed". Needs socat, openssl and curl.
set -u

# shellcheck source=selftests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
E2E_NAME=e2e/router-flow

# Its own network namespace, with small TCP buffers: the kernel's own
# (tcp_rmem up to 32 MiB by default) would otherwise hold much of the stream
# and hide what the router buffers.
if [ -z "${KARS_FLOW_NETNS:-}" ]; then
	[ "$(id -u)" = 0 ] || e2e_abort "needs root (a network namespace of its own)"
	# shellcheck disable=SC2016 # expanded by the inner bash
	exec unshare --net -- env KARS_FLOW_NETNS=1 bash -c \
		'ip link set lo up && sysctl -qw net.ipv4.tcp_rmem="4096 65536 262144" \
		net.ipv4.tcp_wmem="4096 16384 262144" && exec "$0" "$@"' "$0" "$@"
fi

cd "$(dirname "$0")/../.." || exit 2
build=${1:-build}
fake=$build/bin/fake-upstream
router=$build/bin/kars-router
tmp=$(mktemp -d /tmp/kars-router-flow.XXXXXX) || exit 2
fake_pid='' router_pid='' flood_pid='' tls_pids=''

cleanup() {
	# shellcheck disable=SC2086 # flood_pid also lists the TLS socats
	e2e_stop "$router_pid" $flood_pid "$fake_pid"
	rm -rf "$tmp"
}
trap cleanup EXIT

for bin in "$fake" "$router"; do
	[ -x "$bin" ] || e2e_abort "$bin is missing (make all)"
done
for cmd in socat curl openssl ss; do
	command -v "$cmd" >/dev/null || e2e_abort "$cmd is missing (make deps)"
done

start_fake_upstream

# The flood: reads the request, then answers with EVENTS chat chunks of
# ~540 bytes each (~31 MiB) and [DONE], as fast as the socket takes them.
EVENTS=60000
flood_port=$(e2e_port 10)
pad=$(printf '%0400d' 0 | tr 0 x)
cat >"$tmp/flood.sh" <<SH
#!/bin/bash
len=0
while IFS= read -r line; do
	line=\${line%\$'\r'}
	[ -z "\$line" ] && break
	case "\${line,,}" in content-length:*) len=\${line#*: } ;; esac
done
head -c "\$len" >/dev/null
printf 'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n'
yes 'data: {"id":"chatcmpl-flood","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"$pad"},"finish_reason":null}]}
' | head -n $((EVENTS * 2))
printf 'data: [DONE]\n\n'
SH
chmod 755 "$tmp/flood.sh"
socat "TCP-LISTEN:$flood_port,bind=127.0.0.1,reuseaddr,fork" "EXEC:$tmp/flood.sh" \
	2>"$tmp/flood.log" &
flood_pid=$!

port=$(e2e_port 0)
router_log_level=info
base=http://127.0.0.1:$port
router_api_key
cat >"$tmp/policy.json" <<JSON
{"schemaVersion": 1, "kind": "InferencePolicy", "namespace": "t", "name": "flow",
 "allowedModels": ["gpt-4o-mini"], "tokenBudget": {"perRequestTokens": 4096}}
JSON

# start_flow_router UPSTREAM-URL DRAIN-MS
start_flow_router() {
	cat >"$tmp/router.json" <<JSON
{"sandbox": "t/flow", "listen": "127.0.0.1:$port", "agentUid": 65534, "drainTimeoutMs": $2,
 "upstream": {"kind": "openai", "baseUrl": "$1/v1", "apiKeyFile": "$tmp/api-key"},
 "policy": {"file": "$tmp/policy.json"}, "budget": {"file": "$tmp/budget.json"},
 "audit": {"file": "$tmp/audit.jsonl", "keyFile": "$tmp/audit.key"}}
JSON
	start_router
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

stream_body() { # extra metadata fields
	echo "{\"model\":\"gpt-4o-mini\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]$1}"
}

# --- backpressure --------------------------------------------------------------
start_flow_router "http://127.0.0.1:$flood_port" 30000
curl -s -o /dev/null -X POST -H 'Content-Type: application/json' \
	--data-binary "$(stream_body '')" "$base/v1/chat/completions" # warm up
rss0=$(rss_kb "$router_pid")
curl -s -N --limit-rate 10M -o "$tmp/flood.out" -w '%{http_code}' -X POST \
	-H 'Content-Type: application/json' --data-binary "$(stream_body '')" \
	"$base/v1/chat/completions" >"$tmp/flood.code" &
agent=$!
max=$rss0
while kill -0 "$agent" 2>/dev/null; do
	r=$(rss_kb "$router_pid")
	[ -n "$r" ] && [ "$r" -gt "$max" ] && max=$r
	sleep 0.1
done
wait "$agent"
grown=$(((max - rss0) / 1024))
got=$(grep -c '^data: {"id":"chatcmpl-flood"' "$tmp/flood.out")
echo "backpressure: router RSS $((rss0 / 1024)) MiB before, at most $((max / 1024)) MiB" \
	"while relaying $(($(stat -c %s "$tmp/flood.out") / 1048576)) MiB to a 10 MB/s reader"
check "a slow agent gets the whole stream" 0 "^200 $EVENTS DONE\$" -- \
	echo "$(cat "$tmp/flood.code") $got $(grep -q '^data: \[DONE\]' "$tmp/flood.out" && echo DONE)"
check "the router's memory stays bounded (grew ${grown} MiB, limit 16)" 0 '' -- \
	test "$grown" -lt 16
stop_router

# --- drain on SIGTERM ----------------------------------------------------------------
fake_url=http://127.0.0.1:$(cat "$tmp/fake.port")
start_flow_router "$fake_url" 30000
# ~3 KB of SSE, 200 bytes every 150 ms: about 2.3 s.
curl -s -N -o "$tmp/slow.out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
	--data-binary "$(stream_body ',"metadata":{"x-fake-delay-ms":"150","x-fake-chunk-bytes":"200"}')" \
	"$base/v1/chat/completions" >"$tmp/slow.code" &
agent=$!
sleep 0.5
kill -TERM "$router_pid"
sleep 0.2
check "draining: new connections are refused" 7 '' -- curl -s -o /dev/null "$base/healthz"
check "draining: the router is still running" 0 '' -- kill -0 "$router_pid"
wait "$agent"
check "the stream in flight finished whole" 0 '^200 DONE$' -- \
	echo "$(cat "$tmp/slow.code") $(grep -q '^data: \[DONE\]' "$tmp/slow.out" && echo DONE)"
for _ in $(seq 50); do kill -0 "$router_pid" 2>/dev/null || break; sleep 0.1; done
wait "$router_pid"
rc=$?
router_pid=
check "then the router exits 0" 0 '^0$' -- echo "$rc"
check "its log says it drained" 0 'drained' -- cat "$tmp/router.log"

# --- the drain deadline ------------------------------------------------------------------
start_flow_router "$fake_url" 300
curl -s -N -o "$tmp/late.out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
	--data-binary "$(stream_body ',"metadata":{"x-fake-delay-ms":"3000"}')" \
	"$base/v1/chat/completions" >"$tmp/late.code" &
agent=$!
sleep 0.3
start=$(date +%s%N)
kill -TERM "$router_pid"
wait "$router_pid"
router_pid=
ms=$((($(date +%s%N) - start) / 1000000))
check "a request past drainTimeoutMs: the router stops at the deadline (${ms} ms)" 0 '' -- \
	test "$ms" -lt 2500
check "its log names the deadline" 0 'drain deadline \(300 ms\)' -- cat "$tmp/router.log"
wait "$agent"
check "the late request did not get a whole answer" 0 '' -- \
	bash -c "! grep -qs '^data: \\[DONE\\]' '$tmp/late.out'"

# --- the agent-facing server's parsing ---------------------------------------------------
start_flow_router "$fake_url" 1000
# raw BYTES: writes them (printf %b escapes) on one connection and prints what
# comes back, CRs removed, until the router closes it.
raw() {
	printf '%b' "$1" | timeout 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port; cat >&3; cat <&3" |
		tr -d '\r'
}
# summary BYTES: how many answers came back, and their statuses.
summary() {
	local out statuses
	out=$(raw "$1")
	statuses=$(grep '^HTTP/1.1 ' <<<"$out" | cut -d' ' -f2 | paste -sd' ')
	echo "$(grep -c '^HTTP/1.1 ' <<<"$out") $statuses"
}
hidden='GET /healthz HTTP/1.1\r\nHost: r\r\n\r\n'
check "two pipelined requests: two answers, in order" 0 '^2 200 404$' -- \
	summary "GET /healthz HTTP/1.1\r\nHost: r\r\n\r\nGET /nowhere?x HTTP/1.1\r\nHost: r\r\nConnection: close\r\n\r\n"
check "Content-Length with Transfer-Encoding: 400, closed, the request behind never served" \
	0 '^1 400$' -- summary "POST /v1/chat/completions HTTP/1.1\r\nHost: r\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n$hidden"
check "(the error names it)" 0 'both Content-Length and Transfer-Encoding' -- \
	raw 'POST / HTTP/1.1\r\nHost: r\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n'
check "(and says the connection closes)" 0 '^Connection: close$' -- \
	raw 'POST / HTTP/1.1\r\nHost: r\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n'
check "two Content-Lengths: 400, one answer" 0 '^1 400$' -- \
	summary "POST /v1/chat/completions HTTP/1.1\r\nHost: r\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}$hidden"
check "a bare LF ending a header: 400, one answer" 0 '^1 400$' -- \
	summary "GET /healthz HTTP/1.1\r\nHost: r\nX: y\r\n\r\n$hidden"
check "a head over 64 KiB: 431" 0 '^1 431$' -- \
	summary "GET /healthz HTTP/1.1\r\nHost: r\r\nX: $(head -c 70000 /dev/zero | tr '\0' a)\r\n\r\n"
check "a body over 16 MiB: 413 before it is read" 0 '^413$' -- \
	curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
	-H 'Content-Length: 16777217' -X POST --data-binary '{}' "$base/v1/chat/completions"
stop_router

# --- an https upstream ----------------------------------------------------------------
# socat terminates TLS in front of the fake with a certificate for 127.0.0.1
# and localhost, issued by a CA of the test's own; another certificate, for
# another name, from the same CA.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=kars-test-ca \
	-keyout "$tmp/ca.key" -out "$tmp/ca.pem" >/dev/null 2>&1 || e2e_abort "openssl: CA"
issue() { # NAME SAN
	openssl req -newkey rsa:2048 -nodes -subj "/CN=$1" -keyout "$tmp/$1.key" \
		-out "$tmp/$1.csr" >/dev/null 2>&1 || e2e_abort "openssl: $1 request"
	openssl x509 -req -in "$tmp/$1.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" \
		-CAcreateserial -days 2 -extfile <(echo "subjectAltName=$2") \
		-out "$tmp/$1.pem" >/dev/null 2>&1 || e2e_abort "openssl: $1"
}
issue upstream "IP:127.0.0.1,DNS:localhost"
issue other "DNS:other.example"
tls_port=$(e2e_port 11)
other_port=$(e2e_port 12)
for pc in "$tls_port:upstream" "$other_port:other"; do
	socat "OPENSSL-LISTEN:${pc%%:*},bind=127.0.0.1,reuseaddr,fork,verify=0,cert=$tmp/${pc#*:}.pem,key=$tmp/${pc#*:}.key" \
		"TCP:127.0.0.1:$(cat "$tmp/fake.port")" 2>>"$tmp/socat.log" &
	tls_pids+=" $!"
done
flood_pid+="$tls_pids"
for _ in $(seq 50); do
	[ -n "$(ss -Htln "sport = :$other_port")" ] && break
	sleep 0.1
done

chat_status() {
	curl -s -o "$tmp/chat.out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
		--data-binary '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}' \
		"$base/v1/chat/completions"
	echo " $(head -c 300 "$tmp/chat.out" | tr "\n" " ")"
}

# start_tls_router URL CAFILE
start_tls_router() {
	start_flow_router "$1" 1000
	if [ -n "$2" ]; then
		stop_router
		sed -i "s|\"apiKeyFile\"|\"caFile\": \"$2\", \"apiKeyFile\"|" "$tmp/router.json"
		start_router
	fi
}

start_tls_router "https://127.0.0.1:$tls_port" "$tmp/ca.pem"
check "https upstream, its CA in upstream.caFile: answered" 0 '^200 .*chat.completion' -- chat_status
check "a second request" 0 '^200 ' -- chat_status
check "(both on one kept-alive TLS connection)" 0 '^1$' -- \
	bash -c "ss -Htn state established 'dport = :$tls_port' | wc -l"
check "(/metrics: one connect, one reuse)" 0 \
	'upstream_connects_total\{sandbox="t/flow"\} 1 .*upstream_reuses_total\{sandbox="t/flow"\} 1 ' -- \
	bash -c "curl -s '$base/metrics' | tr '\n' ' '"
stop_router
start_tls_router "https://localhost:$tls_port" "$tmp/ca.pem"
check "https upstream by host name (resolved, name checked)" 0 '^200 ' -- chat_status
stop_router
start_tls_router "https://127.0.0.1:$tls_port" ""
check "an issuer the system does not trust: 502" 0 '^502 .*upstream_unavailable' -- chat_status
check "(the router's log says why)" 0 'certificate verify failed' -- cat "$tmp/router.log"
stop_router
: >"$tmp/router.log"
start_tls_router "https://localhost:$other_port" "$tmp/ca.pem"
check "a trusted certificate for another name: 502" 0 '^502 ' -- chat_status
check "(the log says the name does not match)" 0 'certificate verify failed: (hostname mismatch|Hostname mismatch)' -- \
	cat "$tmp/router.log"
stop_router

e2e_summary
