#!/usr/bin/env bash
# router_governance.sh - ToolPolicy in kars-router, end to end: a real router
# process, the fake upstream, curl as the agent (UID 1000, through setpriv) and
# as root (the controller), and the AGT profile file the controller writes.
#
# Covered: no profile file (the default profile: nothing stripped); a profile
# arriving by a ConfigMap-style symlink swap; denied tools stripped from chat
# and Responses requests, and audited; a tool_choice forcing a denied tool
# (or requiring a call when none is left) refused with 403; a denied
# inference refused with 403 in the OpenAI error shape; /agt/evaluate for the
# agent (allow, deny, requires_approval, bad input) and refused for a UID that
# is not listed; /agt/trust read by the agent, changed by root only, persisted
# across a restart, a corrupt trust file stopping the router; a bad profile
# (the old one stays, the error is reported); a bad first profile (readyz
# 503 with the reason, until a good one arrives); the profile removed (the
# default again); the principal token bucket (429 with Retry-After on
# inference, rate_limited on evaluate); the behaviour monitor escalating to
# deny; and the audit chain of it all verifying.
#
# Usage: selftests/e2e/router_governance.sh [BUILD_DIR]
# Prints "e2e/router-governance: N passed, N failed". Needs root (setpriv).
set -u

# shellcheck source=selftests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
E2E_NAME=e2e/router-governance

cd "$(dirname "$0")/../.." || exit 2
build=${1:-build}
router_test_init "$build" router-gov 7
printf '%s\n' '{"schemaVersion": 1, "kind": "InferencePolicy", "namespace": "team-a", "name": "default", "appliesTo": {"sandboxName": "bot", "action": ["chat", "responses"]}, "modelPreference": {"primary": {"deployment": "gpt-4o"}, "fallback": [{"deployment": "gpt-4.1"}, {"deployment": "gpt-4o-mini"}]}}' >"$tmp/inference-policy.json"
# The profile: a ConfigMap-style mount, agt/agt-profile.yaml -> ..data/...
mkdir -p "$tmp/agt"
ln -s ..data/agt-profile.yaml "$tmp/agt/agt-profile.yaml"

# write_config GOVERNANCE-JSON-FIELDS
write_config() {
	cat >"$tmp/router.json" <<JSON
{"sandbox": "team-a/bot", "listen": "127.0.0.1:$port", "agentUid": $agent_uid,
 "upstream": {"kind": "openai", "baseUrl": "$upstream/v1", "apiKeyFile": "$tmp/api-key"},
 "policy": {"file": "$tmp/inference-policy.json", "pollMs": 200},
 "budget": {"file": "$tmp/budget.json"},
 "audit": {"file": "$tmp/audit.jsonl", "keyFile": "$tmp/audit.key"},
 "governance": {"profileFile": "$tmp/agt/agt-profile.yaml", "pollMs": 200,
                "trust": {"file": "$tmp/trust.json"}$1}}
JSON
}

as_agent() { setpriv --reuid "$agent_uid" --regid "$agent_uid" --clear-groups -- "$@"; }

# call [-a] METHOD PATH [BODY]: the body, then "status=N", on one line; -a as the agent.
call() {
	local -a pre=()
	if [ "$1" = -a ]; then
		pre=(setpriv --reuid "$agent_uid" --regid "$agent_uid" --clear-groups --)
		shift
	fi
	"${pre[@]}" curl -s -X "$1" -H 'Content-Type: application/json' ${3:+--data-binary "$3"} \
		-w '\nstatus=%{http_code}' "$base$2" | tr '\n' ' '
	echo
}

chat() { call -a POST /v1/chat/completions "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]$1}"; }
evaluate() { call -a POST /agt/evaluate "$1"; }
last_upstream() { curl -s "$upstream/_fake/last-request"; }

generation=0
install_profile() {
	generation=$((generation + 1))
	mkdir "$tmp/agt/..gen$generation"
	printf '%s\n' "$1" >"$tmp/agt/..gen$generation/agt-profile.yaml"
	ln -sfn "..gen$generation" "$tmp/agt/..data_tmp"
	mv -T "$tmp/agt/..data_tmp" "$tmp/agt/..data"
}

# wait_status PATTERN: until /agt/status matches (or 5 s).
wait_status() {
	for _ in $(seq 100); do
		call GET /agt/status | grep -qE "$1" && return 0
		sleep 0.05
	done
	call GET /agt/status
	return 1
}

tools='"tools":[{"type":"function","function":{"name":"web_search","parameters":{}}},{"type":"function","function":{"name":"shell_exec"}},{"type":"function","function":{"name":"delete_file"}}]'

write_config ''
start_router

check "--help says the default rate limits are on" 0 'on without any configuration: 50 .* per agent \(burst 100\), 500 a second for the whole router \(burst 1000\)' -- bash -c "\"$router\" --help | tr '\n' ' '"
check "so does the start-up log" 0 'rate limits per principal 50/s \(burst 100\), router-wide 500/s \(burst 1000\)' -- cat "$tmp/router.log"

# --- no profile file: the default profile -------------------------------------
check "no profile file: the default profile is in force" 0 '"default":true.*"rules":0' -- call GET /agt/status
chat ",$tools" >/dev/null
check "(nothing is stripped)" 0 'shell_exec.*delete_file' -- last_upstream

# --- a profile arrives by symlink swap -------------------------------------------
install_profile 'version: "1.0"
agent: research-bot
policies:
  - name: no-shell
    type: capability
    denied_actions: ["tool.invoke:shell*", "tool.invoke:delete_*", "tool.invoke:mcp:evil*"]
  - name: no-gpt-4.1
    type: capability
    denied_actions: ["inference:chat_completions:gpt-4.1"]
  - name: deploy-approval
    type: approval
    actions: ["deploy.*"]
    min_approvals: 2
  - name: web-calls
    type: rate_limit
    actions: ["tool.invoke:web*"]
    max_calls: 2
    window: 1h'
check "the profile loads" 0 '' -- wait_status '"default":false.*"agent":"research-bot","rules":4'

# --- tools -------------------------------------------------------------------------
check "a request with allowed and denied tools is answered" 0 'status=200' -- chat ",$tools"
check "(the allowed tool reached the upstream)" 0 'web_search' -- last_upstream
check "(the denied tools did not)" 1 '' -- bash -c "curl -s $upstream/_fake/last-request | grep -qE 'shell_exec|delete_file'"
# The agent names the primary model and no other gate edits the body: the
# router would send the agent's bytes as they came, unless the strip says so.
chat ',"model":"gpt-4o","tools":[{"type":"function","function":{"name":"calc"}},{"type":"function","function":{"name":"shell_exec"}}]' >/dev/null
check "body otherwise untouched: the allowed tool reached the upstream" 0 'calc' -- last_upstream
check "(and the denied one did not: the stripped body is what went)" 1 '' -- bash -c "curl -s $upstream/_fake/last-request | grep -q shell_exec"
seq_before=$(last_upstream | grep -o '"seq": *[0-9]*')
check "a tool_choice forcing a denied tool: 403 naming the tool and the rule" 0 '"message":"ToolPolicy: tool.invoke:shell_exec: rule \\"no-shell\\".*"code":"policy_denied".*status=403' -- chat ",$tools,\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"shell_exec\"}}"
check "(nothing went upstream)" 0 "^$seq_before\$" -- bash -c "curl -s $upstream/_fake/last-request | grep -o '\"seq\": *[0-9]*'"
check "Responses API: a forced denied tool is refused too" 0 'tool.invoke:shell_run.*status=403' -- call -a POST /v1/responses '{"input":"hi","tools":[{"type":"function","name":"shell_run"}],"tool_choice":{"type":"function","name":"shell_run"}}'
check "allowed_tools naming a denied tool: refused" 0 'tool.invoke:delete_file.*status=403' -- chat ",$tools,\"tool_choice\":{\"type\":\"allowed_tools\",\"mode\":\"auto\",\"tools\":[{\"type\":\"function\",\"name\":\"web_search\"},{\"type\":\"function\",\"name\":\"delete_file\"}]}"
check "a tool_choice forcing an allowed tool goes as written" 0 'status=200' -- chat ",$tools,\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"web_search\"}}"
check "(with its tool_choice)" 0 'tool_choice' -- last_upstream
check "tool_choice required, every tool removed: 403 listing them" 0 'tool.invoke:shell_rm \(no-shell: denied_action\).*requires a tool call.*status=403' -- chat ',"tools":[{"type":"function","function":{"name":"shell_rm"}}],"tool_choice":"required"'
chat ',"tools":[{"type":"function","function":{"name":"shell_rm"}}],"tool_choice":"auto","parallel_tool_calls":true' >/dev/null
check "tool_choice auto, every tool removed: no tools, tool_choice or parallel_tool_calls upstream" 1 '' -- bash -c "curl -s $upstream/_fake/last-request | grep -qE 'tools|tool_choice|parallel_tool_calls'"
check "(the request itself still went)" 0 '"seq"' -- last_upstream
check "Responses API: a denied function tool stripped, a built-in kept" 0 'status=200' -- call -a POST /v1/responses '{"input":"hi","tools":[{"type":"function","name":"shell_run"},{"type":"web_search_preview"}]}'
check "(upstream saw only web_search_preview)" 0 'web_search_preview' -- last_upstream
check "(and not shell_run)" 1 '' -- bash -c "curl -s $upstream/_fake/last-request | grep -q shell_run"
call -a POST /v1/responses '{"input":"hi","tools":[{"type":"mcp","server_label":"evil-corp","server_url":"https://x"},{"type":"mcp","server_label":"github","server_url":"https://y"}]}' >/dev/null
check "an MCP tool is governed as mcp:<server_label>" 0 'github' -- last_upstream
check "(the denied server is gone)" 1 '' -- bash -c "curl -s $upstream/_fake/last-request | grep -q evil-corp"
chat ',"functions":[{"name":"shell_exec"},{"name":"lookup"}],"function_call":{"name":"lookup"}' >/dev/null
check "legacy functions[]: the denied one stripped" 0 'lookup' -- last_upstream
check "(not shell_exec)" 1 '' -- bash -c "curl -s $upstream/_fake/last-request | grep -q shell_exec"
check "legacy function_call forcing a denied function: refused" 0 'tool.invoke:shell_exec.*status=403' -- chat ',"functions":[{"name":"shell_exec"},{"name":"lookup"}],"function_call":{"name":"shell_exec"}'
chat ',"tools":["shell_exec",{"type":"function"},{"type":"function","function":{"name":"ok_tool"}}]' >/dev/null
check "tool entries without a name are stripped, named ones kept" 0 'ok_tool' -- last_upstream
check "(the nameless ones are gone: one function tool left, no shell_exec)" 0 '^1 0$' -- bash -c "echo \$(curl -s $upstream/_fake/last-request | grep -oF '\\\"type\\\":\\\"function\\\"' | wc -l) \$(curl -s $upstream/_fake/last-request | grep -c shell_exec)"

# --- inference ---------------------------------------------------------------------
check "a denied inference: 403 in the OpenAI error shape" 0 '^\{"error":\{"message":"ToolPolicy: inference:chat_completions:gpt-4.1: rule \\"no-gpt-4.1\\".*","type":"policy_violation","code":"policy_denied","param":null\}\} +status=403' -- chat ',"model":"gpt-4.1"'
check "(decision headers name ToolPolicy and the rule)" 0 'x-kars-decision-by: ToolPolicy.*x-kars-rule: no-gpt-4.1' -- bash -c "as_agent() { setpriv --reuid $agent_uid --regid $agent_uid --clear-groups -- \"\$@\"; }; as_agent curl -s -D - -o /dev/null -H 'Content-Type: application/json' --data-binary '{\"model\":\"gpt-4.1\",\"messages\":[]}' $base/v1/chat/completions | tr -d '\r' | tr '\n' ' '"
check "the same route with another model is allowed" 0 'status=200' -- chat ',"model":"gpt-4o"'
check "a denied fallback leaves the chain: failover skips it" 0 '"model": ?"gpt-4o-mini".*status=200' -- chat ',"metadata":{"x-fake-status":"503","x-fake-only-models":"gpt-4o"}'
fallback_audit='"action":"inference.fallback","decision":"deny","reason":"fallbacks removed from the chain: inference:chat_completions:gpt-4.1 \(no-gpt-4.1: denied_action\)'
wait_grep "$tmp/audit.jsonl" "$fallback_audit" # the audit chain's group commit
check "(and it is audited)" 0 "$fallback_audit" -- cat "$tmp/audit.jsonl"

# --- /agt/evaluate -------------------------------------------------------------------
check "evaluate (agent): a denied tool" 0 '"allowed":false,"decision":"deny","matched_rule":"no-shell".*"why":"denied_action".*status=200' -- evaluate '{"action":"tool.invoke:shell_exec"}'
check "evaluate (agent): an allowed tool" 0 '"allowed":true,"decision":"allow".*"why":"unmatched_allow"' -- evaluate '{"action":"tool.invoke:web_search","context":{"environment":"dev"}}'
check "evaluate (agent): approval" 0 '"decision":"requires_approval","matched_rule":"deploy-approval".*"min_approvals":2' -- evaluate '{"action":"deploy.prod"}'
check "advertising a tool charged nothing: a second call passes" 0 '"allowed":true' -- evaluate '{"action":"tool.invoke:web_search"}'
check "the third hits the rule's window" 0 '"decision":"rate_limited","matched_rule":"web-calls".*"retry_after_ms":[1-9]' -- evaluate '{"action":"tool.invoke:web_search"}'
chat ",$tools" >/dev/null
check "(a tool whose window is used up is stripped while it lasts)" 1 '' -- bash -c "curl -s $upstream/_fake/last-request | grep -q web_search"
check "evaluate: an unknown field is refused, named" 0 'actionz.*status=400' -- evaluate '{"actionz":"x"}'
check "evaluate: a context value that is not a string" 0 'context.environment: expected a string.*status=400' -- evaluate '{"action":"x","context":{"environment":5}}'
check "evaluate: a control byte in the action is denied (bad_action)" 0 '"decision":"deny".*"why":"bad_action"' -- evaluate '{"action":"tool.invoke:a\u0001b"}'
check "evaluate: a UID not listed is refused" 0 'uid 4242 is not in control.allowedUids.*status=403' -- bash -c "setpriv --reuid 4242 --regid 4242 --clear-groups -- curl -s -X POST --data-binary '{\"action\":\"x\"}' -w '\nstatus=%{http_code}' $base/agt/evaluate | tr '\n' ' '"

# --- /agt/trust ------------------------------------------------------------------------
check "trust (agent): an unknown agent reads 500" 0 '"agent":"peer-a","score":500,"tier":"known","known":false' -- call -a GET '/agt/trust?agent=peer-a'
check "trust (agent): an update is refused" 0 'uid 1000 is the sandbox.s agent.*status=403' -- call -a POST /agt/trust '{"agent":"peer-a","change":"set","score":1000}'
check "trust (root): reward" 0 '"score":510,"tier":"known","known":true.*status=200' -- call POST /agt/trust '{"agent":"peer-a","change":"reward","reason":"handoff ok"}'
check "trust (root): set" 0 '"score":900,"tier":"sovereign".*status=200' -- call POST /agt/trust '{"agent":"peer-a","change":"set","score":900}'
check "trust (root): penalty on another" 0 '"score":450' -- call POST /agt/trust '{"agent":"peer-b","change":"penalty"}'
check "trust: a score past 1000 is refused" 0 'score: expected.*status=400' -- call POST /agt/trust '{"agent":"peer-a","change":"set","score":1001}'
check "trust: score with reward is refused" 0 'score: Forbidden.*status=400' -- call POST /agt/trust '{"agent":"peer-a","change":"reward","score":3}'
check "trust (agent): the list" 0 '"count":2,"agents":\[.*peer-a.*peer-b' -- call -a GET /agt/trust

# --- a bad profile, then none ----------------------------------------------------------
install_profile 'version: "1.0"
agent: research-bot
policies:
  - name: typo
    type: capabilty
    denied_actions: ["tool.invoke:web_search"]'
wait_status '"lastError":"' >/dev/null
check "a bad profile: the old one stays, the error names the field" 0 '"rules":4.*"lastError":".*policies\[0\]\.type' -- call GET /agt/status
check "(and is still enforced)" 0 '"matched_rule":"no-shell"' -- evaluate '{"action":"tool.invoke:shell_exec"}'
rm "$tmp/agt/..data"
check "the profile removed: the default profile" 0 '' -- wait_status '"default":true'
check "(nothing denied now)" 0 '"allowed":true' -- evaluate '{"action":"tool.invoke:shell_exec"}'

check "readyz: ready with a profile in force" 0 '^\{"ready":true\} status=200' -- call GET /readyz

# --- restart: trust persisted; a corrupt trust file stops the router -------------------
stop_router
# A first profile the loader refuses: nothing is allowed, and readyz says so.
install_profile 'version: "1.0"
agent: research-bot
policies:
  - {name: typo, type: capabilty, denied_actions: ["x"]}'
start_router
check "a bad first profile: readyz 503 with the reason" 0 '"ready":false,"reason":"governance denies every action: .*policies\[0\]\.type.*status=503' -- call GET /readyz
check "(and governance does deny)" 0 '"decision":"deny".*"why":"no_profile"' -- evaluate '{"action":"tool.invoke:web_search"}'
install_profile 'version: "1.0"
agent: research-bot
policies: []'
# (the agent's name: with no profile in force, status also says default false, rules 0)
check "a good profile arrives" 0 '' -- wait_status '"default":false.*"agent":"research-bot".*"rules":0'
check "readyz: ready again" 0 '^\{"ready":true\} status=200' -- call GET /readyz
rm "$tmp/agt/..data"
stop_router
start_router
check "after a restart the trust scores are back" 0 '"agent":"peer-a","score":900,"tier":"sovereign","known":true' -- call -a GET '/agt/trust?agent=peer-a'
stop_router
# refused_start: the router, expected to exit at once; its stderr in refused.log.
refused_start() {
	"$router" --config "$tmp/router.json" 2>"$tmp/refused.log" &
	local pid=$!
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
	e2e_stop "$pid"
}
cp "$tmp/trust.json" "$tmp/trust.good"
sed -i 's/"milli":900000/"milli":100000/' "$tmp/trust.json"
refused_start
check "an edited trust file: the router refuses to start, saying why" 0 'sha256 does not match.*torn or corrupt' -- cat "$tmp/refused.log"
head -c 40 "$tmp/trust.good" >"$tmp/trust.json"
refused_start
check "a torn trust file: refused too" 0 'invalid JSON.*torn or corrupt' -- cat "$tmp/refused.log"
cp "$tmp/trust.good" "$tmp/trust.json"

# --- rate limits and the monitor ------------------------------------------------------
install_profile 'version: "1.0"
agent: research-bot
policies:
  - {name: no-shell, type: capability, denied_actions: ["tool.invoke:shell*"]}'
write_config ', "rateLimit": {"principalPerSecond": 1, "principalBurst": 5},
 "monitor": {"denials": 2, "escalate": true, "blockSeconds": 60}'
start_router
wait_status '"rules":1' >/dev/null
check "principal bucket: 5 calls pass" 0 '^(.*"allowed":true.*){5}$' -- bash -c "for i in 1 2 3 4 5; do setpriv --reuid $agent_uid --regid $agent_uid --clear-groups -- curl -s --data-binary '{\"action\":\"tool.invoke:web_search\"}' $base/agt/evaluate; done | tr '\n' ' '"
check "the 6th is rate_limited, with retry_after_ms" 0 '"decision":"rate_limited".*"why":"principal_rate_limit","retry_after_ms":[1-9]' -- evaluate '{"action":"tool.invoke:web_search"}'
check "inference by the same principal: 429 with Retry-After" 0 'HTTP/1.1 429.*Retry-After: [1-9].*"code":"rate_limit_exceeded"' -- bash -c "setpriv --reuid $agent_uid --regid $agent_uid --clear-groups -- curl -s -D - -H 'Content-Type: application/json' --data-binary '{\"messages\":[]}' $base/v1/chat/completions | tr -d '\r' | tr '\n' ' '"
check "another principal (root) is not limited" 0 '"allowed":true' -- call POST /agt/evaluate '{"action":"tool.invoke:web_search"}'
call POST /agt/evaluate '{"action":"tool.invoke:shell_a"}' >/dev/null
call POST /agt/evaluate '{"action":"tool.invoke:shell_b"}' >/dev/null
call POST /agt/evaluate '{"action":"tool.invoke:shell_c"}' >/dev/null
check "3 denials: the monitor blocks root's next allowed call" 0 '"decision":"deny".*"why":"monitor_denials","retry_after_ms":[1-9]' -- call POST /agt/evaluate '{"action":"tool.invoke:web_search"}'
check "/metrics has the governance counters" 0 'kars_router_governance_rate_limited_total\{sandbox="team-a/bot"\} [1-9].*kars_router_governance_monitor_anomalies_total\{sandbox="team-a/bot"\} 1' -- bash -c "curl -s $base/metrics | tr '\n' ' '"
check "(status shows the block)" 0 '"denialAnomalies":1.*"blockedWhy":"monitor_denials"' -- call GET /agt/status
stop_router

# --- the audit chain -----------------------------------------------------------------------
check "the audit chain verifies" 0 'valid: [0-9]+ records' -- "$kars" audit verify "$tmp/audit.jsonl" --pubkey "$tmp/audit.key.pub"
check "stripped tools are audited with their rules" 0 '"action":"tool.invoke","decision":"deny","reason":"removed from the request: tool.invoke:shell_exec \(no-shell: denied_action\), tool.invoke:delete_file \(no-shell: denied_action\)' -- cat "$tmp/audit.jsonl"
check "(a rate-limited one too)" 0 'tool.invoke:web_search \(web-calls: rule_rate_limit\)' -- cat "$tmp/audit.jsonl"
check "the denied inference is audited" 0 '"action":"inference.chat","decision":"deny","reason":"ToolPolicy: inference:chat_completions:gpt-4.1' -- cat "$tmp/audit.jsonl"
check "evaluations are audited" 0 '"principal":"agent","action":"tool.invoke:shell_exec","decision":"deny"' -- cat "$tmp/audit.jsonl"
check "trust changes are audited, with who made them" 0 '"principal":"uid:0","action":"trust.update","decision":"sovereign","reason":"peer-a: 510 -> 900 \(set\)' -- cat "$tmp/audit.jsonl"
check "the agent's refused trust update is audited" 0 '"principal":"uid:1000","action":"trust.update","decision":"deny"' -- cat "$tmp/audit.jsonl"
check "profile loads, refusals and the default" 0 '' -- bash -c "grep -q '\"action\":\"governance.reload\",\"decision\":\"allow\"' $tmp/audit.jsonl && grep -q '\"action\":\"governance.reload\",\"decision\":\"deny\"' $tmp/audit.jsonl && grep -q '\"action\":\"governance.reload\",\"decision\":\"default\"' $tmp/audit.jsonl"

e2e_summary
