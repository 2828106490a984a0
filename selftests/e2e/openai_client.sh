#!/usr/bin/env bash
# openai_client.sh - the real `openai` npm client against kars's fake upstream.
#
# The router's tests trust the fake upstream to speak the real API's wire
# format; this is the check that it does: the official SDK (pinned in
# selftests/e2e/openai/package-lock.json) with nothing changed but its base
# URL does chat, responses, completions (streamed and not), embeddings and
# models, and must parse every field. The fake listens on a free loopback
# port and is stopped at the end.
#
# Usage: selftests/e2e/openai_client.sh [BUILD_DIR] [router]   (default build)
# With "router", kars-router sits between the client and the fake, as it sits
# between an agent and its model: the client changes nothing but its base URL,
# and the fake must see the router's credential, never the agent's.
# Prints "e2e/openai: N passed, N failed" ("e2e/openai[router]: ..."). Installs
# the SDK with `npm ci` into selftests/e2e/openai/node_modules when the lock
# file changed.
set -u

# shellcheck source=selftests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

cd "$(dirname "$0")/../.." || exit 2
build=${1:-build}
mode=${2:-direct}
fake=$build/bin/fake-upstream
router=$build/bin/kars-router
dir=selftests/e2e/openai
name=e2e/openai
[ "$mode" = router ] && name="e2e/openai[router]"
E2E_NAME=$name
tmp=$(mktemp -d /tmp/kars-openai.XXXXXX) || exit 2
fake_pid=
router_pid=

cleanup() {
	e2e_stop "$router_pid" "$fake_pid"
	rm -rf "$tmp"
}
trap cleanup EXIT

[ -x "$fake" ] || e2e_abort "$fake is not built (make all)"
{ command -v node && command -v npm; } >/dev/null || e2e_abort "node and npm are needed (make deps)"

stamp=$dir/node_modules/.kars-lock.sha256
lock=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$lock" ]; then
	if ! (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) >"$tmp/npm.log" 2>&1; then
		cat "$tmp/npm.log"
		e2e_abort "npm ci failed in $dir"
	fi
	echo "$lock" >"$stamp"
fi

start_fake_upstream
port=$(cat "$tmp/fake.port")

if [ "$mode" = router ]; then
	[ -x "$router" ] || e2e_abort "$router is not built (make all)"
	router_api_key
	router_port=$(e2e_port 0)
	base=http://127.0.0.1:$router_port
	cat >"$tmp/router.json" <<JSON
{"sandbox": "e2e/openai", "listen": "127.0.0.1:$router_port", "agentUid": 1000,
 "upstream": {"kind": "openai", "baseUrl": "http://127.0.0.1:$port/v1",
              "apiKeyFile": "$tmp/api-key"},
 "policy": {"file": "$tmp/inference-policy.json"},
 "budget": {"file": "$tmp/budget.json"},
 "audit": {"file": "$tmp/audit.jsonl", "keyFile": "$tmp/audit.key"}}
JSON
	# Every model the client uses, nothing else: the SDK's own requests
	# must pass the gates unchanged.
	cat >"$tmp/inference-policy.json" <<JSON
{"schemaVersion": 1, "kind": "InferencePolicy", "namespace": "e2e", "name": "openai",
 "allowedModels": ["gpt-4o-mini", "gpt-4o", "gpt-4.1",
  "gpt-3.5-turbo-instruct", "text-embedding-3-small"]}
JSON
	router_log_level=info
	start_router
	for _ in $(seq 100); do
		curl -sf "$base/readyz" >/dev/null 2>&1 && break
		sleep 0.05
	done
	curl -sf "$base/readyz" >/dev/null 2>&1 ||
		{ cat "$tmp/router.log"; e2e_abort "kars-router is not ready"; }
	node "$dir/client.mjs" --base-url "http://127.0.0.1:$router_port/v1" \
		--upstream "http://127.0.0.1:$port" \
		--expect-upstream-auth "Bearer sk-router-secret" \
		--forbid-upstream-auth "Bearer sk-kars-e2e-agent-key" >"$tmp/client.log" 2>&1
else
	node "$dir/client.mjs" --base-url "http://127.0.0.1:$port/v1" \
		--azure-base-url "http://127.0.0.1:$port/openai/v1" >"$tmp/client.log" 2>&1
fi
status=$?
cat "$tmp/client.log"
passed=$(grep -c '^PASS ' "$tmp/client.log")
failed=$(grep -c '^FAIL ' "$tmp/client.log")
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
	echo "FAIL client.mjs exited with status $status"
	failed=1
fi
if ! kill -0 "$fake_pid" 2>/dev/null; then
	echo "FAIL fake-upstream is no longer running:"
	cat "$tmp/fake.log"
	failed=$((failed + 1))
fi
if [ -n "$router_pid" ] && ! kill -0 "$router_pid" 2>/dev/null; then
	echo "FAIL kars-router is no longer running:"
	cat "$tmp/router.log"
	failed=$((failed + 1))
fi
echo "$name: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
