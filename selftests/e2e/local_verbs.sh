#!/usr/bin/env bash
# local_verbs.sh - the per-sandbox verbs against the real local backend:
# kars up --local, kars add of a sandbox in learn mode, then kars connect
# (a shell as the agent, in its sandbox), a name on karsd's DNS blocklist
# dropped from inside, learn -> egress --learned ->
# --approve -> --enforce as the kernel sees it, kars model set served by the
# same router process, kars credentials update surviving the backend's next
# reconcile, kars trace NAME, kars audit verify|tail NAME; delete and down.
# sandbox_ops.sh checks each verb's edge cases against a hand-started
# router; this script checks that they work on what kars up really runs.
#
# Root. Usage: selftests/e2e/local_verbs.sh [BUILD_DIR]
# Router ports from $KARS_E2E_PORT_BASE (default 21600).
# Prints "e2e/local_verbs: N passed, N failed".
set -u

# shellcheck source=selftests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
E2E_NAME=e2e/local_verbs

cd "$(dirname "$0")/../.." || exit 2
build=${1:-build}
[ "$(id -u)" = 0 ] || e2e_abort "skipped: needs root (karsd, cgroups, UIDs)"
tmp=$(mktemp -d /tmp/kars-verbs-e2e.XXXXXX) || exit 2
chmod 0755 "$tmp"
dir=$tmp/kars
pins=/sys/fs/bpf/kars-verbs-e2e-$$
sock=$tmp/karsd.sock
ns=e2everbs$$
ports=${KARS_E2E_PORT_BASE:-21600}
K=("$build/bin/kars" --socket "$sock")
S=(--state-dir "$dir" -n "$ns")

pids=()
cleanup() {
	if [ "${failed:-0}" != 0 ]; then # what the services said, for the failures above
		for f in "$dir"/logs/*.log; do
			[ -f "$f" ] && { echo "--- $f"; tail -n 15 "$f"; }
		done
	fi
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	"${K[@]}" delete v "${S[@]}" >/dev/null 2>&1
	"${K[@]}" down --state-dir "$dir" >/dev/null 2>&1
	rm -rf "$pins" "$tmp"
}
trap cleanup EXIT

field() { # field KEY: from the backend's run file of sandbox v
	jq -r ".$1" "$dir/sandboxes/$ns/v/run/router.json" 2>/dev/null
}
running() { "${K[@]}" status v "${S[@]}" >/dev/null; }
inside() { "${K[@]}" connect v "${S[@]}" -- "$@"; }
reach() { # reach PORT: what the agent gets from the host server on PORT
	inside /bin/sh -c "curl -sS -m 5 http://$host_ip:$1/ 2>/dev/null || echo denied"
}
chat() { # the model the router sent upstream, or the error code
	curl -s -H 'Content-Type: application/json' \
		--data-binary '{"messages":[{"role":"user","content":"hi"}]}' \
		"http://127.0.0.1:$(field routerPort)/v1/chat/completions" | jq -r '.model // .error.code'
}

# Two servers on the host's own address (loopback is never the way out).
host_ip=$(ip -4 route get 192.0.2.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p')
[ -n "$host_ip" ] || host_ip=$(hostname -I | awk '{print $1}')
[ -n "$host_ip" ] || e2e_abort "skipped: this host has no IPv4 address besides loopback"
port_a=$((ports + 90)) port_b=$((ports + 91))
mkdir -p "$tmp/www"
echo hello >"$tmp/www/index.html"
for p in $port_a $port_b; do
	python3 -m http.server "$p" --bind "$host_ip" --directory "$tmp/www" >/dev/null 2>&1 &
	pids+=($!)
	e2e_wait 50 curl -sS -m 2 "http://$host_ip:$p/" || e2e_abort "the host server on $p did not start"
done

# The upstream: a fake model server (the remote service; real wire format)
# that takes one key, configured by root in upstream.json.
"$build/bin/fake-upstream" --listen 127.0.0.1:0 --port-file "$tmp/fake.port" \
	--api-key sk-good --reply "hello" 2>"$tmp/fake.log" &
pids+=($!)
e2e_wait 50 test -s "$tmp/fake.port" || e2e_abort "fake upstream did not start"
printf 'sk-good\n' >"$tmp/good-key"
printf 'sk-wrong\n' >"$tmp/wrong-key"
chmod 0600 "$tmp/good-key" "$tmp/wrong-key"
mkdir -p "$dir/sandboxes/$ns/v"
printf '{"kind":"openai","baseUrl":"http://127.0.0.1:%s/v1","apiKeyFile":"%s"}\n' \
	"$(cat "$tmp/fake.port")" "$tmp/good-key" >"$dir/sandboxes/$ns/v/upstream.json"

check "kars up --local" 0 "kars is up" -- "${K[@]}" up --local --state-dir "$dir" --pin-dir "$pins" --router-port-base "$ports"
check "kars add v, learn mode" 0 "sandbox $ns/v added" -- "${K[@]}" add v "${S[@]}" --command "/bin/sleep 1000000" --learn-egress --model gpt-4o-mini
e2e_wait 150 running || e2e_abort "sandbox v did not run: $("${K[@]}" status v "${S[@]}" 2>&1)"
e2e_wait 100 test "$(chat)" = gpt-4o-mini

# --- connect: a shell as the agent, in its sandbox ---------------------------------
check "connect: the agent's UID" 0 "^$(field agentUid)$" -- inside /usr/bin/id -u
check "connect: in the agent's cgroup" 0 "^0::/kars/$ns/v/agent$" -- inside /bin/cat /proc/self/cgroup
check "connect: the agent's /sandbox" 0 "^/sandbox$" -- inside /bin/pwd
check "connect: the router's key is not in view" 0 "^hidden$" -- inside /bin/sh -c "cat '$dir/sandboxes/$ns/v/router/api-key' 2>/dev/null || echo hidden"
check "connect: the exit status comes back" 3 "" -- inside /bin/sh -c "exit 3"

# --- the DNS blocklist: a blocked name's query is dropped in the kernel -------------------
printf '# e2e\nblocked.kars-e2e.test\n' >"$tmp/blocklist.txt"
check "kars blocklist load" 0 "" -- "${K[@]}" blocklist load "$tmp/blocklist.txt"
"${K[@]}" trace v "${S[@]}" --network -o json >"$tmp/dns-trace.json" 2>&1 &
dns_trace=$!
pids+=("$dns_trace")
sleep 0.5 # the subscription is in place before the lookup (the check below decides)
check "inside: the blocked name does not resolve" 0 "^dropped$" -- inside /bin/sh -c "getent hosts blocked.kars-e2e.test >/dev/null 2>&1 && echo RESOLVED || echo dropped"
e2e_wait 50 grep -q dns_blocked "$tmp/dns-trace.json"
check "trace v: the query dropped, with its name" 0 "dns_blocked.*blocked.kars-e2e.test|blocked.kars-e2e.test.*dns_blocked" -- cat "$tmp/dns-trace.json"
kill "$dns_trace" 2>/dev/null

# --- learn -> --learned -> --approve -> --enforce ----------------------------------
"${K[@]}" trace v "${S[@]}" --network -o json >"$tmp/trace.json" 2>&1 &
pids+=($!)
sleep 0.5 # the subscription is in place before the traffic (what follows checks it)
check "learn: the agent reaches host server A" 0 "^hello$" -- reach "$port_a"
check "learn: and host server B" 0 "^hello$" -- reach "$port_b"
check "egress --learned: A is listed" 0 "$host_ip +$port_a" -- "${K[@]}" egress v "${S[@]}" --learned
check "egress --approve A" 0 "" -- "${K[@]}" egress v "${S[@]}" --approve "$host_ip:$port_a"
check "egress --enforce" 0 "" -- "${K[@]}" egress v "${S[@]}" --enforce
e2e_wait 150 test "$(reach "$port_b")" = denied
check "enforced: B, never approved, is denied" 0 "^denied$" -- reach "$port_b"
# The approval is the router's (the allowlist is the router role's: the agent
# reaches only its router, and in learn mode what it is learning).
check "enforced: karsd has v in strict mode" 0 "^$ns/v +[0-9]+ +[0-9]+ +strict " -- "${K[@]}" dataplane list
check "enforced: the restarted router answers" 0 "ok" -- curl -sS -m 5 "http://127.0.0.1:$(field routerPort)/healthz"
check "enforced: A is in v's allowlist" 0 "\"host\":\"$host_ip\",\"port\":$port_a" -- sh -c "'${K[0]}' get karssandbox v -n '$ns' --state '$dir/state' -o json | jq -c .spec.networkPolicy.allowedEndpoints"
check "trace v: the denial of B" 0 "\"dport\": ?$port_b" -- grep '"deny' "$tmp/trace.json"

# --- model set: a policy change, the same router process ------------------------------
rpid=$(field routerPid) apid=$(field agentPid)
check "model set v gpt-4o" 0 "model gpt-4o" -- "${K[@]}" model set v "${S[@]}" gpt-4o
e2e_wait 150 test "$(chat)" = gpt-4o
check "the router serves gpt-4o" 0 "^gpt-4o$" -- chat
check "... the same router process" 0 "^$rpid$" -- field routerPid
check "... which is alive" 0 "" -- kill -0 "$rpid"
check "... and the agent was not restarted either" 0 "^$apid$" -- field agentPid

# --- credentials update: the key stays across the backend's next reconcile ----------------
check "credentials update with a wrong key" 0 "upstream key replaced" -- "${K[@]}" credentials update v "${S[@]}" --api-key-file "$tmp/wrong-key"
e2e_wait 100 test "$(chat)" = invalid_api_key
check "the router uses it: the upstream refuses" 0 "^invalid_api_key$" -- chat
# A spec change makes the backend apply v again (its router config rewritten
# with the upstream); the status reaches the new generation only after that.
gen_done() {
	local doc
	doc=$("${K[0]}" get karssandbox v -n "$ns" --state "$dir/state" -o json) &&
		jq -e '.status.observedGeneration == .metadata.generation' <<<"$doc" >/dev/null
}
gen=$("${K[0]}" get karssandbox v -n "$ns" --state "$dir/state" -o json | jq .metadata.generation)
"${K[@]}" egress v "${S[@]}" --approve "$host_ip:$((port_a + 2))" >/dev/null
check "the approval is a new generation" 0 "^$((gen + 1))$" -- sh -c "'${K[0]}' get karssandbox v -n '$ns' --state '$dir/state' -o json | jq .metadata.generation"
e2e_wait 150 gen_done
check "... which the backend applied" 0 "" -- gen_done
check "after the next reconcile the router still holds the new key" 0 "^sk-wrong$" -- cat "$dir/sandboxes/$ns/v/router/api-key"
check "credentials update back to the good key" 0 "upstream key replaced" -- "${K[@]}" credentials update v "${S[@]}" --api-key-file "$tmp/good-key"
e2e_wait 100 test "$(chat)" = gpt-4o
check "the upstream accepts it again" 0 "^gpt-4o$" -- chat

# --- audit: the router's chain, by the sandbox's name ----------------------------------
check "audit verify v" 0 "valid: [0-9]+ records" -- "${K[@]}" audit verify v "${S[@]}"
check "audit tail v: the inference records" 0 "inference.chat" -- "${K[@]}" audit tail v "${S[@]}" --lines 50

# --- delete, down ----------------------------------------------------------------------
check "kars delete v" 0 "" -- "${K[@]}" delete v "${S[@]}"
check "connect after delete: not running" 1 "not running locally" -- inside /bin/true
check "kars down" 0 "" -- "${K[@]}" down --state-dir "$dir"

e2e_summary
