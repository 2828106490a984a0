#!/usr/bin/env bash
# router_policy.sh - every gate of kars-router, end to end: a real router
# process, the fake upstream, curl as the agent (UID 1000, through setpriv) and
# as root (the controller), and the files the controller would write.
#
# Covered: no policy (refused, not ready); the policy digest the controller
# compares; hot reload through a Kubernetes-style symlink swap; a bad file
# (old policy stays, error reported); route coverage; model allowlist, deny
# and override; failover on 503 and on a dropped connection (streamed too);
# the per-request token cap (refused above, injected when absent); budgets
# (429 with Retry-After, persisted across a restart, reset by root only); the
# content-safety floor (whole and mid-stream); the agent's UID refused on every
# control endpoint; reload under load without a failed request; and the audit
# chain of it all verifying with `kars audit verify`.
#
# Usage: selftests/e2e/router_policy.sh [BUILD_DIR]
# Prints "e2e/router-policy: N passed, N failed". Needs root (setpriv).
set -u

# shellcheck source=selftests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
E2E_NAME=e2e/router-policy

cd "$(dirname "$0")/../.." || exit 2
build=${1:-build}
router_test_init "$build" router-policy 0
# A ConfigMap-style mount: policy/inference-policy.json -> ..data/..., with
# ..data a symlink the "kubelet" swaps.
mkdir -p "$tmp/policy"
ln -s ..data/inference-policy.json "$tmp/policy/inference-policy.json"
cat >"$tmp/router.json" <<JSON
{"sandbox": "team-a/bot", "listen": "127.0.0.1:$port", "agentUid": $agent_uid,
 "upstream": {"kind": "openai", "baseUrl": "$upstream/v1", "apiKeyFile": "$tmp/api-key"},
 "policy": {"file": "$tmp/policy/inference-policy.json", "pollMs": 200},
 "budget": {"file": "$tmp/budget.json", "persistIntervalMs": 50},
 "audit": {"file": "$tmp/audit.jsonl", "keyFile": "$tmp/audit.key", "checkpointEvery": 64}}
JSON

# flat CMD...: CMD's output on one line.
flat() {
	"$@" | tr '\n' ' '
	echo
}

# as_agent CMD...: runs CMD as the sandbox's agent.
as_agent() {
	setpriv --reuid "$agent_uid" --regid "$agent_uid" --clear-groups -- "$@"
}

# call [-H header]... METHOD PATH [BODY]: prints the body, then "status=N",
# on one line (so one pattern can match both).
call() {
	local -a hdr=()
	while [ "$1" = -H ]; do
		hdr+=(-H "$2")
		shift 2
	done
	curl -s -X "$1" "${hdr[@]}" -H 'Content-Type: application/json' ${3:+--data-binary "$3"} \
		-w '\nstatus=%{http_code}' "$base$2" | tr '\n' ' '
	echo
}

chat() { # chat BODY-JSON-FIELDS: a chat request with these extra fields
	call POST /v1/chat/completions "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]$1}"
}

last_upstream() { curl -s "$upstream/_fake/last-request"; }

# install_policy JSON: a new ..data directory, swapped in atomically.
generation=0
install_policy() {
	generation=$((generation + 1))
	mkdir "$tmp/policy/..gen$generation"
	printf '%s\n' "$1" >"$tmp/policy/..gen$generation/inference-policy.json"
	ln -sfn "..gen$generation" "$tmp/policy/..data_tmp"
	mv -T "$tmp/policy/..data_tmp" "$tmp/policy/..data"
}

# wait_digest SHA: until policy-status serves it (or 5 s).
wait_digest() {
	for _ in $(seq 100); do
		call GET /kars/v1/policy-status | grep -q "sha256:$1" && return 0
		sleep 0.05
	done
	return 1
}

start_router

# --- no policy: fail closed ---------------------------------------------------
check "no policy: inference refused (503 policy_not_loaded)" 0 '"policy_not_loaded".*status=503' -- chat ''
check "no policy: not ready" 0 'status=503' -- call GET /readyz
check "healthz still answers" 0 'status=200' -- call GET /healthz

# --- a policy arrives by symlink swap -----------------------------------------
policy1='{"schemaVersion": 1, "kind": "InferencePolicy", "namespace": "team-a", "name": "default", "appliesTo": {"sandboxName": "bot", "action": ["chat", "completions", "embeddings"]},
 "modelPreference": {"primary": {"provider": "openai", "deployment": "gpt-4o"},
                     "fallback": [{"deployment": "gpt-4o-mini"}, {"deployment": "gpt-4.1-mini"}]},
 "allowedModels": ["text-embedding-3-small", "o4-mini"],
 "tokenBudget": {"perRequestTokens": 500}}'
install_policy "$policy1"
d1=$(digest "$tmp/policy/inference-policy.json" team-a/default)
check "the policy loads and policy-status serves its digest" 0 '' -- wait_digest "$d1"
check "ready once enforcing" 0 'status=200' -- call GET /readyz

# --- models --------------------------------------------------------------------
check "no model in the request: the primary" 0 '"model": ?"gpt-4o".*status=200' -- chat ''
check "an allowed model is used as asked" 0 '"model": ?"o4-mini".*status=200' -- chat ',"model":"o4-mini"'
check "a model outside the policy: 403 model_not_allowed" 0 '"model_not_allowed".*status=403' -- chat ',"model":"gpt-5-pro"'
check "model of the wrong type: 400" 0 'model: expected a string.*status=400' -- chat ',"model":7'
check "embeddings with an allowed model" 0 '"object": ?"list".*status=200' -- call POST /v1/embeddings '{"model":"text-embedding-3-small","input":"x"}'
check "embeddings never get the chat primary" 0 '"model_required".*status=400' -- call POST /v1/embeddings '{"input":"x"}'
check "a route the policy does not cover: 403 route_not_allowed" 0 '"route_not_allowed".*status=403' -- call POST /v1/responses '{"input":"hi"}'

# --- failover ------------------------------------------------------------------
check "primary answers 503: the first fallback answers" 0 '"model": ?"gpt-4o-mini".*status=200' -- chat ',"metadata":{"x-fake-status":"503","x-fake-only-models":"gpt-4o"}'
check "primary and first fallback 429: the second" 0 '"model": ?"gpt-4.1-mini".*status=200' -- chat ',"metadata":{"x-fake-status":"429","x-fake-only-models":"gpt-4o,gpt-4o-mini"}'
check "every model fails: the last answer is the agent's" 0 'status=503' -- chat ',"metadata":{"x-fake-status":"503"}'
check "a hang-up before the reply fails over (streamed)" 0 'data: \{.*"model": ?"gpt-4o-mini".*data: \[DONE\].*status=200' -- chat ',"stream":true,"metadata":{"x-fake-drop-after":"0","x-fake-only-models":"gpt-4o"}'
check "a 4xx is not failed over" 0 'status=400' -- chat ',"metadata":{"x-fake-status":"400","x-fake-only-models":"gpt-4o"}'

# --- the per-request cap --------------------------------------------------------
check "max_tokens above perRequestTokens: 403" 0 '"per_request_tokens_exceeded".*status=403' -- chat ',"max_tokens":501'
check "max_completion_tokens above it: 403" 0 '"per_request_tokens_exceeded".*status=403' -- chat ',"max_completion_tokens":100000'
check "at the cap: allowed" 0 'status=200' -- chat ',"max_tokens":500'
chat '' >/dev/null
check "no cap in the request: the policy's is sent upstream" 0 'max_completion_tokens\\":500' -- last_upstream

# --- streaming usage --------------------------------------------------------------
check "include_usage asked: the agent gets the usage chunk" 0 '"choices":\[\],.*"usage":\{.*data: \[DONE\]' -- chat ',"stream":true,"stream_options":{"include_usage":true}'
chat ',"stream":true' >"$tmp/stream.out"
check "include_usage not asked: counted, but withheld from the agent" 1 '' -- grep -qE '"usage":\{' "$tmp/stream.out"
check "(the stream itself is whole)" 0 'data: \[DONE\].*status=200' -- cat "$tmp/stream.out"
chat ',"stream":true' >/dev/null
check "(the router asked the upstream for it)" 0 'include_usage\\":true' -- last_upstream

# --- content-safety floor ---------------------------------------------------------
policy2='{"schemaVersion": 1, "kind": "InferencePolicy", "namespace": "team-a", "name": "default", "modelPreference": {"primary": {"deployment": "gpt-4o"}},
 "contentSafety": {"sexual": "Low", "hate": "Safe"}}'
install_policy "$policy2"
d2=$(digest "$tmp/policy/inference-policy.json" team-a/default)
check "a changed policy is picked up" 0 '' -- wait_digest "$d2"
check "safe annotations pass the floor" 0 'status=200' -- chat ',"metadata":{"x-fake-content-filter":"annotate"}'
check "output filtered above the ceiling: 403, decision headers" 0 'sexual severity medium is above.*"content_policy_violation".*status=403' -- chat ',"metadata":{"x-fake-content-filter":"completion"}'
check "mid-stream: the stream ends with an error event" 0 '"content_policy_violation".*data: \[DONE\].*status=200' -- chat ',"stream":true,"metadata":{"x-fake-content-filter":"completion"}'
install_policy '{"schemaVersion": 1, "kind": "InferencePolicy", "namespace": "team-a", "name": "default", "modelPreference": {"primary": {"deployment": "gpt-4o"}}, "contentSafety": {"requirePromptShields": true}}'
wait_digest "$(digest "$tmp/policy/inference-policy.json" team-a/default)"
check "prompt shields required, none sent: 403" 0 'requires prompt shields.*status=403' -- chat ''

# --- a bad policy file ---------------------------------------------------------------
good=$(digest "$tmp/policy/inference-policy.json" team-a/default)
install_policy '{"schemaVersion": 1, "kind": "InferencePolicy", "namespace": "team-a", "name": "default", "modelPreference": {"primary": {"deployment": "gpt 4o"}}}'
sleep 0.5
check "a bad file: the old policy stays, the error is reported" 0 "sha256:$good.*\"lastError\":\".*modelPreference.primary.deployment: .*not a model" -- call GET /kars/v1/policy-status
check "(and is still enforced)" 0 'requires prompt shields.*status=403' -- chat ''
install_policy '{"schemaVersion": 1, "kind": "InferencePolicy", "namespace": "team-a", "name": "other", "appliesTo": {"sandboxName": "someone-else"}, "allowedModels": ["gpt-4o"]}'
sleep 0.5
check "another sandbox's policy is refused" 0 'appliesTo.sandboxName: the policy applies to sandbox' -- call GET /kars/v1/policy-status

# --- budgets -------------------------------------------------------------------------
install_policy '{"schemaVersion": 1, "kind": "InferencePolicy", "namespace": "team-a", "name": "default", "modelPreference": {"primary": {"deployment": "gpt-4o"}}, "tokenBudget": {"dailyTokens": 30, "monthlyTokens": 1000}}'
wait_digest "$(digest "$tmp/policy/inference-policy.json" team-a/default)"
call POST /kars/v1/budget/reset >/dev/null
check "within the daily budget: allowed" 0 'status=200' -- chat ''
check "a streamed answer is charged too" 0 'status=200' -- chat ',"stream":true'
check "the daily budget spent: 429, not to be retried today" 0 '"daily_budget_exceeded".*status=429' -- chat ''
check "(Retry-After and x-should-retry: false)" 0 'Retry-After: [0-9]+.*x-should-retry: false' -- bash -c "curl -s -D - -o /dev/null -H 'Content-Type: application/json' --data-binary '{\"messages\":[]}' $base/v1/chat/completions | tr -d '\r' | tr '\n' ' '"
check "a header naming another sandbox changes nothing" 0 'status=429' -- call -H 'x-kars-sandbox: fresh' POST /v1/chat/completions '{"messages":[{"role":"user","content":"hi"}]}'
sleep 0.2
check "the usage is persisted" 0 '"sandbox":"team-a/bot".*"dailyTokens":[0-9]{2}' -- cat "$tmp/budget.json"
stop_router
start_router
wait_digest "$(digest "$tmp/policy/inference-policy.json" team-a/default)"
check "after a restart the budget is still spent" 0 'status=429' -- chat ''

# --- control endpoints: the agent's UID is refused ---------------------------------
check "agent: budget reset refused" 0 'uid 1000 is the sandbox.s agent.*status=403' -- flat as_agent curl -s -X POST -w '\nstatus=%{http_code}\n' "$base/kars/v1/budget/reset"
check "agent: model override refused" 0 'status=403' -- as_agent curl -s -X PUT --data-binary '{"model":"gpt-4o"}' -w '\nstatus=%{http_code}\n' "$base/kars/v1/model"
check "agent: policy status refused" 0 'status=403' -- as_agent curl -s -w '\nstatus=%{http_code}\n' "$base/kars/v1/policy-status"
check "another non-listed UID: refused" 0 'uid 4242 is not in control.allowedUids.*status=403' -- flat setpriv --reuid 4242 --regid 4242 --clear-groups -- curl -s -w '\nstatus=%{http_code}\n' "$base/kars/v1/policy-status"
check "(the agent can still call the model API)" 0 'status=429' -- as_agent curl -s -H 'Content-Type: application/json' --data-binary '{"messages":[]}' -w '\nstatus=%{http_code}\n' "$base/v1/chat/completions"
check "root: budget reset" 0 '"dailyUsed":0.*status=200' -- call POST /kars/v1/budget/reset
check "after the reset: allowed again" 0 'status=200' -- chat ''
check "root: override to a model the policy does not allow: 403" 0 'status=403' -- call PUT /kars/v1/model '{"model":"gpt-5-pro"}'
install_policy '{"schemaVersion": 1, "kind": "InferencePolicy", "namespace": "team-a", "name": "default", "modelPreference": {"primary": {"deployment": "gpt-4o"}}, "allowedModels": ["gpt-4.1"]}'
wait_digest "$(digest "$tmp/policy/inference-policy.json" team-a/default)"
check "root: override to an allowed model" 0 '"modelOverride":"gpt-4.1".*status=200' -- call PUT /kars/v1/model '{"model":"gpt-4.1"}'
check "the override replaces the primary" 0 '"model": ?"gpt-4.1".*status=200' -- chat ''

# --- reload under load -----------------------------------------------------------------
policyA='{"schemaVersion": 1, "kind": "InferencePolicy", "namespace": "team-a", "name": "default", "modelPreference": {"primary": {"deployment": "gpt-4o"}}, "allowedModels": ["gpt-4.1"], "displayName": "A"}'
policyB='{"schemaVersion": 1, "kind": "InferencePolicy", "namespace": "team-a", "name": "default", "modelPreference": {"primary": {"deployment": "gpt-4o"}}, "allowedModels": ["gpt-4.1"], "displayName": "B"}'
(
	for i in $(seq 40); do
		chat ',"metadata":{"x-fake-delay-ms":"5"}' | tail -1
	done >"$tmp/load1"
) &
load1=$!
(
	for i in $(seq 40); do
		chat ',"stream":true,"metadata":{"x-fake-delay-ms":"2"}' | tail -1
	done >"$tmp/load2"
) &
load2=$!
for i in $(seq 20); do
	if [ $((i % 2)) = 0 ]; then install_policy "$policyA"; else install_policy "$policyB"; fi
	sleep 0.05
done
wait $load1 $load2
check "80 requests during 20 reloads: every one answered 200" 0 '^80$' -- bash -c "cat $tmp/load1 $tmp/load2 | grep -c 'status=200$'"
check "the last policy is the one in force" 0 '' -- wait_digest "$(digest "$tmp/policy/inference-policy.json" team-a/default)"

# --- policy removed: fail closed ----------------------------------------------------------
rm "$tmp/policy/..data"
sleep 0.5
check "the policy removed: inference refused again" 0 '"policy_not_loaded".*status=503' -- chat ''

# --- the audit chain ---------------------------------------------------------------------
stop_router
check "the audit chain verifies" 0 'valid: [0-9]+ records' -- "$kars" audit verify "$tmp/audit.jsonl" --pubkey "$tmp/audit.key.pub"
check "denials are recorded with their reason" 0 '"action":"inference.chat","decision":"deny","reason":"model \\"gpt-5-pro\\" is not allowed' -- cat "$tmp/audit.jsonl"
check "answers with their tokens" 0 '"action":"inference.chat","decision":"allow".*"tokensIn":[1-9]' -- cat "$tmp/audit.jsonl"
check "reloads, refused reloads and the clearing" 0 '' -- bash -c "grep -q '\"action\":\"policy.reload\",\"decision\":\"allow\"' $tmp/audit.jsonl && grep -q '\"action\":\"policy.reload\",\"decision\":\"deny\"' $tmp/audit.jsonl && grep -q '\"action\":\"policy.reload\",\"decision\":\"cleared\"' $tmp/audit.jsonl"
check "control calls, refused ones with the caller's UID" 0 '"principal":"uid:1000","action":"control.budget.reset","decision":"deny"' -- cat "$tmp/audit.jsonl"
check "the credential never appears in the log" 1 '' -- grep -q sk-router-secret "$tmp/audit.jsonl" "$tmp/router.log"

# --- workload identity: the router's token, never the agent's --------------------
idp=$build/bin/fake-identity
if [ -x "$idp" ]; then
	"$idp" --listen 127.0.0.1:0 --port-file "$tmp/idp.port" --tenant t1 --client-id c1 \
		--lifetime 2 2>"$tmp/idp.log" &
	idp_pid=$!
	for _ in $(seq 100); do [ -s "$tmp/idp.port" ] && break; sleep 0.05; done
	idp_url=http://127.0.0.1:$(cat "$tmp/idp.port")
	printf 'eyJhbGciOiJSUzI1NiJ9.service-account-token.sig\n' >"$tmp/sa-token"
	chmod 600 "$tmp/sa-token"
	install_policy '{"schemaVersion": 1, "kind": "InferencePolicy", "namespace": "team-a", "name": "default", "allowedModels": ["gpt-4o"]}'
	cat >"$tmp/router.json" <<JSON
{"sandbox": "team-a/bot", "listen": "127.0.0.1:$port", "agentUid": $agent_uid,
 "upstream": {"kind": "openai", "baseUrl": "$upstream/v1",
   "auth": {"kind": "workloadIdentity", "tenantId": "t1", "clientId": "c1",
            "tokenFile": "$tmp/sa-token", "authorityHost": "$idp_url", "timeoutMs": 2000}},
 "policy": {"file": "$tmp/policy/inference-policy.json", "pollMs": 200},
 "budget": {"file": "$tmp/budget2.json"},
 "audit": {"file": "$tmp/audit2.jsonl", "keyFile": "$tmp/audit.key"}}
JSON
	start_router
	check "workload identity: the agent gets its answer" 0 'status=200' -- chat ',"model":"gpt-4o","metadata":{"x-fake-reply":"ok"}'
	check "(the upstream saw the AAD token, sent by the router)" 0 'Bearer fake-aad-1' -- last_upstream
	curl -s -X POST "$idp_url/_fake/config?fail_status=400&fail_count=-1" >/dev/null
	sleep 2.2
	check "the token expired and AAD refuses: 502, no AAD text for the agent" 0 '"upstream_credential_unavailable".*status=502' -- chat ',"model":"gpt-4o"'
	check "(the service's error is in the router's log)" 0 'AADSTS' -- cat "$tmp/router.log"
	check "(and readyz: not ready, no valid credential, with the service's error)" 0 '"ready":false,"reason":"no valid upstream credential: .*AADSTS.*status=503' -- call GET /readyz
	stop_router
	kill "$idp_pid" 2>/dev/null
	wait "$idp_pid" 2>/dev/null
else
	echo "SKIP workload identity: $idp is not built"
fi

e2e_summary
