#!/usr/bin/env bash
# local_mode.sh - local mode end to end, real processes: kars up --local
# (karsd, kars-controller --backend local), kars add of two sandboxes (the
# sample agent, and a probe that runs checks inside its sandbox when the
# test drops a file in its /sandbox), then, from inside: the agent's UID and
# cgroup, its router answering (and refusing the unconfigured upstream), no
# router credential or kars state in view, an allowed destination (its
# router) and denied ones (outside, another sandbox's router) as the kernel
# and kars trace see them; HTTP, HTTPS and CONNECT by name without proxy
# settings, redirected to the router's egress proxy: an allowed name served,
# a name not allowed refused, both in the router's audit and kars trace
# (the test's dnsmasq resolves the names to a network namespace of its own, where
# it serves ports 80 and 443); a controller restart and a karsd restart keep
# the processes, the policy and its enforcement; delete removes cgroups,
# processes, karsd's policy and pins, directories and UIDs; bad flags and
# bad manifests are refused and change nothing; kars down. The systemd
# units pass systemd-analyze verify.
#
# Root. Usage: selftests/e2e/local_mode.sh [BUILD_DIR]
# Router ports from $KARS_E2E_PORT_BASE (default 21200; dnsmasq on +98, a
# server on +99, and ports 80 and 443 of the host's address).
# Prints "e2e/local_mode: N passed, N failed".
set -u

# shellcheck source=selftests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
E2E_NAME=e2e/local_mode

cd "$(dirname "$0")/../.." || exit 2
build=${1:-build}
[ "$(id -u)" = 0 ] || e2e_abort "skipped: needs root (karsd, cgroups, UIDs)"
tmp=$(mktemp -d /tmp/kars-local-e2e.XXXXXX) || exit 2
chmod 0755 "$tmp"
dir=$tmp/kars
pins=/sys/fs/bpf/kars-local-e2e-$$
# karsd's socket outside /tmp: the router's /tmp is private, and its egress
# proxy asks karsd orig_dst there.
sockdir=/run/kars-local-e2e-$$
sock=$sockdir/karsd.sock
ns=e2elocal$$
ports=${KARS_E2E_PORT_BASE:-21200}
cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
K=("$build/bin/kars" --socket "$sock")
S=(--state-dir "$dir" -n "$ns")

srv_pid='' fake_pid='' web_pids='' dns_pid=''
web_ns=kars-local-e2e-$$ web_veth=kle2e$$ web_ip=198.51.100.2
cleanup() {
	[ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null
	for p in $web_pids $dns_pid; do kill "$p" 2>/dev/null; done
	ip netns pids "$web_ns" 2>/dev/null | xargs -r kill 2>/dev/null
	ip link del "$web_veth" 2>/dev/null
	ip netns del "$web_ns" 2>/dev/null
	[ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null
	"${K[@]}" delete probe "${S[@]}" >/dev/null 2>&1
	"${K[@]}" delete demo "${S[@]}" >/dev/null 2>&1
	"${K[@]}" delete oa "${S[@]}" >/dev/null 2>&1
	"${K[@]}" delete learner "${S[@]}" >/dev/null 2>&1
	"${K[@]}" down --state-dir "$dir" >/dev/null 2>&1
	rm -rf "$pins" "$tmp" "$sockdir"
}
trap cleanup EXIT
mkdir -m 0755 "$sockdir" || exit 2

field() { # field SANDBOX KEY: from the backend's contract file
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
		"$dir/sandboxes/$ns/$1/run/router.json" "$2" 2>/dev/null
}

running() { "${K[@]}" status "$1" "${S[@]}" >/dev/null; }

# probe: runs local_probe.sh (in the repository: /tmp is private in a
# sandbox), which runs checks inside its sandbox each time the test creates
# /sandbox/go, its output in /sandbox/out.N.
probe_script=$PWD/selftests/e2e/local_probe.sh
echo 0 >"$tmp/runs"
# inside CHECKS: runs the sh snippet CHECKS in the probe sandbox, prints its
# output. (check runs it in a subshell: the count lives in a file.)
inside() {
	local sbdir=$dir/sandboxes/$ns/probe/sandbox run_n
	run_n=$(($(cat "$tmp/runs") + 1))
	echo "$run_n" >"$tmp/runs"
	printf '%s\n' "$1" >"$sbdir/checks.sh"
	touch "$sbdir/go"
	e2e_wait 100 test -e "$sbdir/out.$run_n" || {
		echo "probe did not answer"
		return 1
	}
	cat "$sbdir/out.$run_n"
}

# --- bad flags and bad manifests: refused, nothing written -----------------
check "kars up without --local is usage" 2 "--local is required" -- "${K[@]}" up --state-dir "$dir"
check "kars add without --command is usage" 2 "--command CMD is required" -- "${K[@]}" add x "${S[@]}"
check "kars add with a bad --allow names it" 2 '--allow: "a:b:c"' -- "${K[@]}" add x "${S[@]}" --command /bin/true --allow a:b:c
check "kars add with port 0 is usage" 2 '--allow: "h:0"' -- "${K[@]}" add x "${S[@]}" --command /bin/true --allow h:0
check "kars add with a bad name: the validator names the field" 1 "metadata.name: Invalid value" -- "${K[@]}" add Bad_Name "${S[@]}" --command /bin/true
check "kars add --token-budget-daily 0 is usage" 2 "--token-budget-daily: \"0\"" -- "${K[@]}" add x "${S[@]}" --command /bin/true --token-budget-daily 0
check "kars add --runtime openai-agents is refused" 2 "byo only" -- "${K[@]}" add x "${S[@]}" --command /bin/true --runtime openai-agents
check "kars add: an argument outside -- is usage" 2 'unexpected argument "extra"' -- "${K[@]}" add x extra "${S[@]}" --command /bin/true
check "kars add: the validator refuses a bad provider, naming the field" 1 "InferencePolicy \"x\" is invalid: spec.modelPreference.primary.provider" -- "${K[@]}" add x "${S[@]}" --command /bin/true --model Bad_Provider/m
check "kars add: a bad --allow host is refused by the validator" 1 "is invalid: spec.networkPolicy.allowedEndpoints" -- "${K[@]}" add x "${S[@]}" --command /bin/true --allow 'bad host'
check "kars status without NAME is usage" 2 "NAME is required" -- "${K[@]}" status "${S[@]}"
check "kars logs --role other is usage" 2 '--role: "other"' -- "${K[@]}" logs x "${S[@]}" --role other
check "kars status of a missing sandbox fails, saying so" 1 "no sandbox $ns/x" -- "${K[@]}" status x "${S[@]}"
check "kars-controller --backend other is refused" 1 '--backend: "other"' -- "$build/bin/kars-controller" --backend other
check "kars add --dry-run prints both objects and writes nothing" 0 "kind: InferencePolicy" -- "${K[@]}" add x "${S[@]}" --command /bin/true --allow api.example.com:8443 --token-budget-daily 1000 --dry-run -o yaml
check "... nothing was written: no store" 1 "" -- test -e "$dir/state"

# --- the systemd units (their binaries pointed at this build) ------------
if command -v systemd-analyze >/dev/null; then
	mkdir -p "$tmp/units"
	for u in karsd kars-controller; do
		sed "s#/usr/local/sbin#$(cd "$build/bin" && pwd)#g" "deploy/systemd/$u.service" >"$tmp/units/$u.service"
	done
	check "systemd-analyze verify of the units" 0 "" -- systemd-analyze verify "$tmp/units/karsd.service" "$tmp/units/kars-controller.service"
else
	echo "SKIP systemd-analyze verify: systemd-analyze is not installed"
fi

# --- the names the sandboxes resolve: the test's dnsmasq -------------------
# Both names lead to $web_ip (TEST-NET-2), a network namespace of the test's
# own behind a veth (not this host's address, which may be in a class the
# proxy refuses, such as 10/8; not loopback, which it always refuses), where
# the test serves HTTP on 80 and HTTPS on 443 (the ports the data plane
# redirects to the egress proxy). Only allowed.* is allowed.
host_ip=$(ip -4 route get 192.0.2.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p')
[ -n "$host_ip" ] || host_ip=$(hostname -I | awk '{print $1}')
if ! { ip netns add "$web_ns" && ip link add "$web_veth" type veth peer name "${web_veth}p" &&
	ip link set "${web_veth}p" netns "$web_ns" &&
	ip addr add 198.51.100.1/24 dev "$web_veth" && ip link set "$web_veth" up &&
	ip -n "$web_ns" addr add "$web_ip/24" dev "${web_veth}p" &&
	ip -n "$web_ns" link set "${web_veth}p" up && ip -n "$web_ns" link set lo up; }; then
	e2e_abort "could not make the web servers' network namespace"
fi
dns_port=$((ports + 98))
ok_name=allowed.kars-e2e.test no_name=denied.kars-e2e.test
command -v dnsmasq >/dev/null || e2e_abort "dnsmasq missing (make deps installs it)"
dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces --listen-address=127.0.0.1 \
	--port="$dns_port" --pid-file= --address="/$ok_name/$web_ip" --address="/$no_name/$web_ip" --address=/#/ \
	2>"$tmp/dnsmasq.log" &
dns_pid=$!
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$ok_name" \
	-addext "subjectAltName=DNS:$ok_name,DNS:$no_name" -keyout "$tmp/web.key" -out "$tmp/web.pem" \
	>/dev/null 2>&1 || e2e_abort "openssl could not make the test certificate"
mkdir -p "$tmp/www" && echo hello >"$tmp/www/index.html"
ip netns exec "$web_ns" python3 -m http.server 80 --bind "$web_ip" --directory "$tmp/www" >/dev/null 2>&1 &
web_pids=$!
ip netns exec "$web_ns" python3 - "$web_ip" "$tmp/web.pem" "$tmp/web.key" "$tmp/www" >/dev/null 2>&1 <<'PY' &
import functools, http.server, ssl, sys
h = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[4])
s = http.server.ThreadingHTTPServer((sys.argv[1], 443), h)
c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
c.load_cert_chain(sys.argv[2], sys.argv[3])
s.socket = c.wrap_socket(s.socket, server_side=True)
s.serve_forever()
PY
web_pids="$web_pids $!"
e2e_wait 50 curl -sS -m 2 --resolve "$ok_name:443:$web_ip" --cacert "$tmp/web.pem" "https://$ok_name/"
check "the web HTTP server answers from the host" 0 "^hello$" -- curl -sS -m 5 "http://$web_ip/"
check "the web HTTPS server answers from the host" 0 "^hello$" -- curl -sS -m 5 --resolve "$ok_name:443:$web_ip" --cacert "$tmp/web.pem" "https://$ok_name/"
e2e_wait 50 bash -c "ss -ulnH 'sport = :$dns_port' | grep -q ."

# --- up -------------------------------------------------------------------
check "kars up --dns-resolver-port without --dns-resolver is usage" 2 "needs --dns-resolver" -- "${K[@]}" up --local --state-dir "$dir" --dns-resolver-port 53
check "kars up --dns-resolver of a name is usage" 2 '--dns-resolver: "dns.example" is not an IPv4' -- "${K[@]}" up --local --state-dir "$dir" --dns-resolver dns.example
check "kars up --local starts karsd and the controller" 0 "kars is up: state $dir" -- "${K[@]}" up --local --state-dir "$dir" --pin-dir "$pins" --router-port-base "$ports" --dns-resolver 127.0.0.1 --dns-resolver-port "$dns_port"
check "a second kars up is refused" 1 "already up" -- "${K[@]}" up --local --state-dir "$dir" --pin-dir "$pins" --router-port-base "$ports"
cat >"$tmp/mine.yaml" <<YAML
apiVersion: kars.azure.com/v1alpha1
kind: InferencePolicy
metadata: {name: mine, namespace: $ns}
spec:
  appliesTo: {action: chat}
  modelPreference: {primary: {provider: openai, deployment: my-model}}
YAML
"$build/bin/kars" apply --state "$dir/state" -f "$tmp/mine.yaml" >/dev/null
check "kars add over someone's InferencePolicy is refused" 1 "InferencePolicy $ns/mine exists and was not made by kars add" -- "${K[@]}" add mine "${S[@]}" --command /bin/true
check "... which is left as it was" 0 "my-model" -- "$build/bin/kars" get ip mine -n "$ns" --state "$dir/state" -o yaml
check "... and no sandbox was written" 1 "" -- "$build/bin/kars" get ks mine -n "$ns" --state "$dir/state"
check "kars add demo (the sample agent)" 0 "sandbox $ns/demo added" -- "${K[@]}" add demo "${S[@]}" --command "$PWD/demo/sample-agent"
# The probe's upstream, configured by root: a fake model server on loopback
# (the remote service; the wire format is real), its key copied to the router only.
"$build/bin/fake-upstream" --listen 127.0.0.1:0 --port-file "$tmp/fake.port" --api-key sk-e2e-local --reply "hello from upstream" 2>"$tmp/fake.log" &
fake_pid=$!
e2e_wait 50 test -s "$tmp/fake.port"
echo sk-e2e-local >"$tmp/api-key"
chmod 0600 "$tmp/api-key"
mkdir -p "$dir/sandboxes/$ns/probe"
printf '{"kind":"openai","baseUrl":"http://127.0.0.1:%s/v1","apiKeyFile":"%s"}\n' "$(cat "$tmp/fake.port")" "$tmp/api-key" >"$dir/sandboxes/$ns/probe/upstream.json"
check "kars add probe" 0 "sandbox $ns/probe added" -- "${K[@]}" add probe "${S[@]}" --command "$probe_script" --allow 192.0.2.10:443 --allow "$ok_name:80" --allow "$ok_name:443"
e2e_wait 150 running demo
e2e_wait 150 running probe
check "kars status demo: Running, Ready" 0 "Ready +True +Running" -- "${K[@]}" status demo "${S[@]}"
check "kars list shows both, Running" 0 "probe +Running +True" -- "${K[@]}" list "${S[@]}"

apid=$(field probe agentPid)
rport=$(field probe routerPort)
demo_rport=$(field demo routerPort)
auid=$(field probe agentUid)
check "the agent runs as its own UID" 0 "^Uid:\s+$auid\s" -- grep "^Uid:" "/proc/$apid/status"
check "the agent runs in its agent cgroup" 0 "^0::/kars/$ns/probe/agent$" -- cat "/proc/$apid/cgroup"
check "the router answers /healthz on its port" 0 "ok" -- curl -sS -m 5 "http://127.0.0.1:$rport/healthz"
ip_ready() {
	"$build/bin/kars" get ip probe -n "$ns" --state "$dir/state" -o json |
		jq -e '.status.conditions[] | select(.type == "Ready" and .status == "True")'
}
e2e_wait 100 ip_ready
check "its InferencePolicy is Ready: the router (found by the backend) reports its digest" 0 '"status": "True"' -- ip_ready
check "the router config is the router's, 0600" 0 "^600 $(field probe routerUid)$" -- stat -c '%a %u' "$dir/sandboxes/$ns/probe/router/config.json"
e2e_wait 300 grep -q "denied destination:" "$dir/sandboxes/$ns/demo/logs/agent.log"
check "the sample agent: the router refuses the unconfigured upstream, saying so" 0 "upstream-not-configured.invalid" -- "${K[@]}" logs demo "${S[@]}" --role agent
check "the sample agent: its denied destination is refused" 0 "denied destination: refused" -- "${K[@]}" logs demo "${S[@]}" --role agent

"${K[@]}" logs demo "${S[@]}" -f >"$tmp/follow.log" 2>&1 &
follow_pid=$!
e2e_wait 50 grep -q "router |" "$tmp/follow.log"
kill "$follow_pid"
wait "$follow_pid" 2>/dev/null
check "kars logs -f follows both logs, each line with its role" 0 "agent  \| sample-agent: sandbox demo" -- cat "$tmp/follow.log"

# --- from inside the probe sandbox ---------------------------------------
# A real server on this host's own address, outside every policy: reachable
# from the host, so that a refusal from inside the sandbox is the policy's.
srv_port=$((ports + 99))
python3 -m http.server "$srv_port" --bind "$host_ip" --directory "$tmp/www" >/dev/null 2>&1 &
srv_pid=$!
e2e_wait 50 curl -sS -m 2 "http://$host_ip:$srv_port/"
check "the host server answers from the host" 0 "^hello$" -- curl -sS -m 5 "http://$host_ip:$srv_port/"
"${K[@]}" trace --network --sandbox "$ns/probe" -o json >"$tmp/trace.json" 2>&1 &
trace_pid=$!
sleep 0.5
check "inside: no router credential in view" 0 "^no-key$" -- inside "cat $dir/sandboxes/$ns/probe/router/api-key 2>/dev/null || echo no-key"
check "inside: kars state is an empty directory" 0 "^empty$" -- inside "[ -z \"\$(ls -A $dir)\" ] && echo empty"
check "inside: the store is not there" 0 "^no-store$" -- inside "ls $dir/state >/dev/null 2>&1 || echo no-store"
check "inside: the router serves the configured upstream, with the key only it holds" 0 "hello from upstream" -- inside "curl -sS -m 10 -H 'content-type: application/json' -d '{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}' http://127.0.0.1:8443/v1/chat/completions"
check "the key is the router's: its UID, 0600" 0 "^600 $(field probe routerUid)$" -- stat -c '%a %u' "$dir/sandboxes/$ns/probe/router/api-key"
check "inside: its router (contract port 8443) is allowed" 0 "^ok$" -- inside "curl -sS -m 5 http://127.0.0.1:8443/healthz"
check "inside: the host server, outside the policy, is denied" 0 "^denied$" -- inside "curl -sS -m 5 http://$host_ip:$srv_port/ >/dev/null 2>&1 && echo CONNECTED || echo denied"
check "inside: another sandbox's router is denied" 0 "^denied$" -- inside "curl -sS -m 5 http://127.0.0.1:$demo_rport/healthz >/dev/null 2>&1 && echo CONNECTED || echo denied"

# --- from inside: HTTP(S) without proxy settings, redirected to the egress proxy
cp "$tmp/web.pem" "$dir/sandboxes/$ns/probe/sandbox/ca.pem" && chmod 0644 "$dir/sandboxes/$ns/probe/sandbox/ca.pem"
"${K[@]}" trace probe "${S[@]}" --network -o json >"$tmp/trace-name.json" 2>&1 &
trace2_pid=$!
sleep 0.5
check "inside: http://$ok_name/ (allowed name), redirected to the proxy, answers" 0 "^hello$" -- inside "curl -sS -m 10 http://$ok_name/"
check "inside: http://$no_name/ (not allowed) is refused by the proxy: 403 not_allowed" 0 "^403 not_allowed$" -- inside "curl -sS -m 10 -o /dev/null -D - http://$no_name/ | tr -d '\r' | awk '/^HTTP/ { c = \$2 } /^X-Kars-Reason:/ { r = \$2 } END { print c, r }'"
check "inside: https://$ok_name/ (allowed name), redirected, TLS end to end" 0 "^hello$" -- inside "curl -sS -m 10 --cacert /sandbox/ca.pem https://$ok_name/"
check "inside: https://$no_name/ (not allowed) is closed" 0 "^refused$" -- inside "curl -sS -m 10 --cacert /sandbox/ca.pem https://$no_name/ >/dev/null 2>&1 && echo CONNECTED || echo refused"
check "inside: HTTPS_PROXY=http://127.0.0.1:8444, CONNECT to the allowed name" 0 "^hello$" -- inside "HTTPS_PROXY=http://127.0.0.1:8444 curl -sS -m 10 --cacert /sandbox/ca.pem https://$ok_name/"
check "inside: CONNECT to the name not allowed: 403" 0 "CONNECT tunnel failed, response 403" -- inside "HTTPS_PROXY=http://127.0.0.1:8444 curl -sS -m 10 --cacert /sandbox/ca.pem https://$no_name/ 2>&1"
sleep 0.5
kill "$trace_pid" "$trace2_pid" 2>/dev/null
wait "$trace_pid" "$trace2_pid" 2>/dev/null
audit=$dir/sandboxes/$ns/probe/router/audit.jsonl
check "router audit: the redirected HTTP to the allowed name, allowed" 0 "egress\\.http.*allow.*$ok_name:80" -- grep -E "\"decision\": ?\"allow\"" "$audit"
check "router audit: the name not allowed, denied" 0 "not_allowed $no_name:80" -- grep -E "\"decision\": ?\"deny\"" "$audit"
check "router audit: the redirected TLS to the name not allowed, denied" 0 "egress\\.tls.*not_allowed $no_name:443" -- grep -E "\"decision\": ?\"deny\"" "$audit"
check "router audit: the CONNECT to the name not allowed, denied" 0 "egress\\.connect.*not_allowed $no_name:443" -- grep -E "\"decision\": ?\"deny\"" "$audit"
check "router audit: the redirected TLS, allowed" 0 "egress\\.tls.*$ok_name:443" -- grep -E "\"decision\": ?\"allow\"" "$audit"
check "router audit: the CONNECT, allowed" 0 "egress\\.connect.*$ok_name:443" -- grep -E "\"decision\": ?\"allow\"" "$audit"
proxy_port=$(field probe proxyPort)
check "kars trace probe --network: the agent's port 80, redirected to its proxy" 0 "\"verdict\": ?\"redirect\".*\"dport\": ?80,.*\"newDport\": ?$proxy_port," -- cat "$tmp/trace-name.json"
check "kars trace probe --network: its port 443, redirected to its proxy" 0 "\"verdict\": ?\"redirect\".*\"dport\": ?443,.*\"newDport\": ?$proxy_port," -- cat "$tmp/trace-name.json"
check "kars trace probe --network: the router's dial of the allowed name, by its FQDN entry" 0 "\"role\": ?\"router\".*\"verdict\": ?\"allow\",\"reason\": ?\"rule_fqdn\".*\"dstName\": ?\"$ok_name\"" -- cat "$tmp/trace-name.json"
check "kars trace: the router connection, rewritten" 0 '"verdict": ?"rewrite".*"reason": ?"router_port"|"reason": ?"router_port".*"verdict": ?"rewrite"' -- cat "$tmp/trace.json"
check "kars trace: the denied destination" 0 "\"dst\": ?\"$host_ip\".*\"dport\": ?$srv_port" -- grep -E '"deny"' "$tmp/trace.json"

# --- a kind local mode cannot run; learn mode -----------------------------
cat >"$tmp/oa.yaml" <<YAML
apiVersion: kars.azure.com/v1alpha1
kind: KarsSandbox
metadata: {name: oa, namespace: $ns}
spec:
  runtime: {kind: OpenAIAgents}
  sandbox: {isolation: enhanced}
  inferenceRef: {name: probe}
YAML
check "kars apply of an OpenAIAgents sandbox" 0 "karssandbox.kars.azure.com/oa created" -- "$build/bin/kars" apply --state "$dir/state" -f "$tmp/oa.yaml"
oa_says() { "${K[@]}" status oa "${S[@]}" | grep -q "cannot run in local mode"; }
e2e_wait 100 oa_says
check "OpenAIAgents: RuntimeReady=False, saying why; no agent started" 3 "RuntimeReady +False +WorkloadNotRunning +runtime kind OpenAIAgents cannot run in local mode" -- "${K[@]}" status oa "${S[@]}"
check "OpenAIAgents: no agent process" 3 '"agentPid": 0' -- "${K[@]}" status oa "${S[@]}" -o json
check "kars delete oa" 0 "sandbox $ns/oa deleted" -- "${K[@]}" delete oa "${S[@]}"
check "kars add --learn-egress" 0 "sandbox $ns/learner added" -- "${K[@]}" add learner "${S[@]}" --learn-egress --command /bin/sleep -- infinity
e2e_wait 150 running learner
check "learn mode reaches karsd" 0 "$ns/learner +[0-9]+ +[0-9]+ learn" -- "${K[@]}" dataplane list
check "kars delete learner" 0 "sandbox $ns/learner deleted" -- "${K[@]}" delete learner "${S[@]}"

# --- restarts keep processes, policy and enforcement ------------------------
cpid=$(cat "$dir/run/kars-controller.pid")
kill "$cpid"
e2e_wait 100 bash -c "[ -s $dir/run/kars-controller.pid ] && [ \"\$(cat $dir/run/kars-controller.pid)\" != $cpid ]"
check "controller restart: a new controller runs" 0 "." -- bash -c "cat $dir/run/kars-controller.pid | grep -vx $cpid"
sleep 2
check "controller restart: the agent is the same process" 0 "^$apid$" -- field probe agentPid
check "controller restart: still Running" 0 "Phase: +Running" -- "${K[@]}" status probe "${S[@]}"
kpid=$(cat "$dir/run/karsd.pid")
kill "$kpid"
e2e_wait 150 bash -c "[ -s $dir/run/karsd.pid ] && [ \"\$(cat $dir/run/karsd.pid)\" != $kpid ] && \"$build/bin/kars\" --socket $sock dataplane status"
check "karsd restart: karsd has the policy again" 0 "$ns/probe +[0-9]+ +[0-9]+ strict" -- "${K[@]}" dataplane list
check "karsd restart: the host server is still denied" 0 "^denied$" -- inside "curl -sS -m 5 http://$host_ip:$srv_port/ >/dev/null 2>&1 && echo CONNECTED || echo denied"
check "karsd restart: its router is still reachable" 0 "^ok$" -- inside "curl -sS -m 5 http://127.0.0.1:8443/healthz"
check "karsd restart: the agent is the same process" 0 "^$apid$" -- field probe agentPid

# --- delete -------------------------------------------------------------------
rpid=$(field probe routerPid)
check "kars delete probe" 0 "sandbox $ns/probe deleted" -- "${K[@]}" delete probe "${S[@]}"
check "delete: the agent is gone" 1 "" -- kill -0 "$apid"
check "delete: the router is gone" 1 "" -- kill -0 "$rpid"
check "delete: its cgroups are gone" 1 "" -- test -e "$cg2/kars/$ns/probe"
check "delete: karsd has no policy for it" 1 "" -- bash -c "\"$build/bin/kars\" --socket $sock dataplane list | grep $ns/probe"
check "delete: its directories are gone" 1 "" -- test -e "$dir/sandboxes/$ns/probe"
check "delete: its UIDs are free" 1 "" -- grep "$ns/probe" "$dir/uids"
check "delete: its InferencePolicy went with it" 1 "" -- bash -c "\"$build/bin/kars\" get inferencepolicy probe -n $ns --state $dir/state"
check "kars delete demo" 0 "sandbox $ns/demo deleted" -- "${K[@]}" delete demo "${S[@]}"
check "delete: no pinned links are left" 0 "^$" -- bash -c "ls $pins/cgroups 2>/dev/null"
check "delete: the namespace's cgroup is gone" 1 "" -- test -e "$cg2/kars/$ns"
check "kars delete of a missing sandbox fails, saying so" 1 "no sandbox $ns/probe" -- "${K[@]}" delete probe "${S[@]}"

# --- down ---------------------------------------------------------------------
kpid=$(cat "$dir/run/karsd.pid")
cpid=$(cat "$dir/run/kars-controller.pid")
check "kars down" 0 "kars is down" -- "${K[@]}" down --state-dir "$dir"
check "down: karsd is gone" 1 "" -- kill -0 "$kpid"
check "down: the controller is gone" 1 "" -- kill -0 "$cpid"
check "down: no pid files are left" 1 "" -- bash -c "compgen -G '$dir/run/*.pid'"
check "kars down again is fine" 0 "not up" -- "${K[@]}" down --state-dir "$dir"

# --- up --foreground: the supervisor in the caller; SIGTERM stops it all ----
"${K[@]}" up --local --foreground --state-dir "$dir" --pin-dir "$pins" --router-port-base "$ports" 2>"$tmp/fg.log" &
fg_pid=$!
e2e_wait 150 "$build/bin/kars" --socket "$sock" dataplane status
e2e_wait 50 test -s "$dir/run/kars-controller.pid"
kpid=$(cat "$dir/run/karsd.pid")
check "up --foreground: karsd runs" 0 "" -- kill -0 "$kpid"
kill "$fg_pid"
wait "$fg_pid"
check "up --foreground: SIGTERM exits 0" 0 "" -- test "$?" = 0
check "up --foreground: karsd is gone with it" 1 "" -- kill -0 "$kpid"
check "up --foreground: its log says what it did" 0 "stopped karsd" -- cat "$tmp/fg.log"
e2e_summary
