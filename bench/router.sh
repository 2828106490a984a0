#!/bin/bash
# router.sh - kars-router against nginx proxy_pass, both in front of kars's
# fake model server, measured with wrk in one run; then the audit chain's
# group-commit rate (bench/audit).
#
# usage: bench/router.sh BUILD_DIR     (root; `make bench-router` runs it)
#
# Three targets, same wrk settings, same request (bench/router.lua: a small
# non-streaming POST /v1/chat/completions):
#   direct  the fake upstream itself, with its key: the baseline
#   nginx   Debian's nginx, proxy_pass to the fake with upstream keepalive,
#           setting the credential as the router does
#   router  kars-router, the same fake as its upstream
# Each round measures every target twice, at CONNS connections each:
#   saturated  every connection sends its next request as soon as it has its
#              answer: the most requests/s a target gives (the rps figures)
#   paced      every connection waits a random 0-2 x PACE_MS ms between
#              requests: about the same requests/s offered to every target,
#              well below what any of them saturates at, so the latency
#              difference is what a request pays going through the proxy
#              rather than queueing (the added-latency figures)
# starting one target further along each round so that drift hits all alike.
# Figures are medians over rounds. See bench/README.md for the method and how
# to read it.
#
# Environment (all optional):
#   ROUNDS=5           interleaved rounds
#   DURATION=3         seconds per wrk run
#   CONNS=64           connections of every run (wrk -t1)
#   PACE_MS=20         mean wait between requests of a connection, paced runs
#   CLIENT_CPU, SERVER_CPU   the CPUs for wrk and for the servers (default:
#                      wrk on CPU 0, the fake, nginx and kars-router on the last)
#   RT=1               run wrk and the servers SCHED_FIFO (priority 1), so
#                      that other work on the machine does not delay their
#                      wake-ups; RT=0 runs them as ordinary processes
#   AUDIT_REPS=3       rounds of `bench/audit run`
#   PROFILE=perf|callgrind|strace   afterwards, profile kars-router under the
#                      same load and print its hot spots (strace: its system
#                      calls per request) on stderr
#
# The run happens in a network namespace of its own (unshare -n), so its TCP
# counters count only its own connections (how many upstream connections each
# proxy opened) and nothing of it is reachable from outside. Everything
# listens on its 127.0.0.1 and lives in a temporary directory; the processes
# it starts are stopped by their pid at exit, and the namespace goes with them. nginx runs in the
# foreground with its own prefix, config, pid and logs, never as the system
# service. Exits non-zero when a step fails (a target that does not answer
# 200, a wrk run with errors); whatever the figures are, a completed
# measurement exits 0.
set -euo pipefail

build=${1:?usage: bench/router.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
fake=$build/bin/fake-upstream
router=$build/bin/kars-router
audit=$build/bench/audit
lua=$here/router.lua
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-3}
CONNS=${CONNS:-64}
PACE_MS=${PACE_MS:-20}
AUDIT_REPS=${AUDIT_REPS:-3}
PROFILE=${PROFILE:-}
ncpu=$(nproc)
CLIENT_CPU=${CLIENT_CPU:-0}
SERVER_CPU=${SERVER_CPU:-$((ncpu - 1))}
RT=${RT:-1}

# The upstream's key (held by nginx and kars-router) and the agent's key
# (sent to the proxies, refused by the fake).
UPSTREAM_KEY=sk-kars-bench-upstream
AGENT_KEY=sk-kars-bench-agent
TARGETS=(direct nginx router)

log() { echo "router.sh: $*" >&2; }
die() {
	log "$*"
	exit 1
}

[ "$(id -u)" = 0 ] || die "must run as root (its own network namespace)"
if [ -z "${KARS_BENCH_NETNS:-}" ]; then
	command -v unshare >/dev/null || die "unshare not found (util-linux)"
	exec unshare --net -- env KARS_BENCH_NETNS=1 bash -c \
		'ip link set lo up && exec "$0" "$@"' "$0" "$@"
fi

for f in "$fake" "$router" "$audit"; do
	[ -x "$f" ] || die "$f is missing: make all"
done
case $RT in
0 | 1) ;;
*) die "RT=$RT: expected 0 or 1" ;;
esac
for cmd in nginx wrk curl taskset chrt ss; do
	command -v "$cmd" >/dev/null || die "$cmd not found (make deps)"
done
[ -r "$lua" ] || die "$lua is missing"
case $PROFILE in
"" | perf | callgrind | strace) ;;
*) die "PROFILE=$PROFILE: expected perf, callgrind or strace" ;;
esac

tmp=$(mktemp -d /tmp/kars-bench-router.XXXXXX)
fake_pid=""
router_pid=""
nginx_pid=""

stop() { # pid
	[ -n "$1" ] || return 0
	kill "$1" 2>/dev/null || return 0
	for _ in $(seq 50); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null
	return 0
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	stop "$router_pid"
	stop "$nginx_pid" # SIGTERM to the master: it stops its worker
	stop "$fake_pid"
	rm -rf "$tmp"
	[ $rc = 0 ] || log "failed (exit $rc); the processes this run started are stopped"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs a command on a CPU, SCHED_FIFO when RT=1. It execs, so that the pid of
# "on_cpu ... &" is the command's own: only call it with & or inside $(...).
on_cpu() { # cpu command...
	local cpu=$1
	shift
	if [ "$RT" = 1 ]; then
		exec chrt -f 1 taskset -c "$cpu" "$@"
	fi
	exec taskset -c "$cpu" "$@"
}

# A loopback port nobody listens on (for the servers that need one given).
free_port() {
	local p
	for _ in $(seq 100); do
		p=$((20000 + RANDOM % 40000))
		[ -z "$(ss -Htln "sport = :$p")" ] && echo "$p" && return 0
	done
	die "no free loopback port found"
}

wait_http() { # name pid url
	for _ in $(seq 100); do
		curl -s -o /dev/null "$3" && return 0
		kill -0 "$2" 2>/dev/null || break
		sleep 0.05
	done
	cat "$tmp/$1.log" >&2 2>/dev/null
	die "$1 did not start"
}

# --- the fake upstream -------------------------------------------------------------
# It insists on UPSTREAM_KEY: a proxy that forwarded the agent's key gets 401.
on_cpu "$SERVER_CPU" "$fake" --listen 127.0.0.1:0 --port-file "$tmp/fake.port" \
	--api-key "$UPSTREAM_KEY" --created 1700000000 2>"$tmp/fake.log" &
fake_pid=$!
for _ in $(seq 100); do
	[ -s "$tmp/fake.port" ] && break
	kill -0 "$fake_pid" 2>/dev/null || break
	sleep 0.05
done
[ -s "$tmp/fake.port" ] || {
	cat "$tmp/fake.log" >&2
	die "fake-upstream did not start"
}
fake_port=$(cat "$tmp/fake.port")

# --- kars-router ---------------------------------------------------------------------
# The router's credential: one line, 0600, as the router insists.
printf '%s\n' "$UPSTREAM_KEY" >"$tmp/api-key"
chmod 600 "$tmp/api-key"
router_port=$(free_port)
# ---- kars-router configuration: the one place to change (docs/router.md) ----------
# The router enforces as it would in a sandbox: a policy that allows
# gpt-4o-mini (the model bench/router.lua asks for) with a per-request cap and
# budgets the run cannot reach, so every request passes every gate; the budget
# file and the audit chain (one record per request, group commit) are under
# $tmp, so the figures include them. The ToolPolicy gate runs too (the default
# profile, the monitor), with rate limits the run cannot reach.
cat >"$tmp/inference-policy.json" <<JSON
{"schemaVersion": 1, "kind": "InferencePolicy", "namespace": "bench", "name": "router",
 "allowedModels": ["gpt-4o-mini"],
 "tokenBudget": {"perRequestTokens": 4096, "dailyTokens": 1000000000000, "monthlyTokens": 1000000000000}}
JSON
cat >"$tmp/router.json" <<JSON
{"sandbox": "bench/router", "listen": "127.0.0.1:$router_port", "agentUid": 65534,
 "upstream": {"kind": "openai", "baseUrl": "http://127.0.0.1:$fake_port/v1",
              "apiKeyFile": "$tmp/api-key"},
 "policy": {"file": "$tmp/inference-policy.json"},
 "budget": {"file": "$tmp/budget.json"},
 "audit": {"file": "$tmp/audit.jsonl", "keyFile": "$tmp/audit.key"},
 "governance": {"rateLimit": {"globalPerSecond": 1000000, "globalBurst": 100000000,
                              "principalPerSecond": 1000000, "principalBurst": 100000000}}}
JSON
# ---- end of the kars-router configuration ------------------------------------------
on_cpu "$SERVER_CPU" "$router" --config "$tmp/router.json" --log-level warn \
	2>"$tmp/router.log" &
router_pid=$!
wait_http router "$router_pid" "http://127.0.0.1:$router_port/healthz"

# --- nginx ---------------------------------------------------------------------------
# As an operator would put it in front of a model API: one worker (kars-router
# is one event loop too), upstream keepalive, HTTP/1.1 to the upstream, the
# agent's credentials replaced by the upstream's key, no response buffering
# (server-sent events must flow as they come, which the router does too), and
# a buffered access log. Own prefix, pid, temp and log paths under $tmp.
nginx_port=$(free_port)
mkdir -p "$tmp/nginx/logs"
cat >"$tmp/nginx/nginx.conf" <<NGINX
daemon off;
worker_processes 1;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log $tmp/nginx/logs/access.log combined buffer=64k flush=1s;
    client_body_temp_path $tmp/nginx/client_body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    upstream model {
        server 127.0.0.1:$fake_port;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$nginx_port;
        client_max_body_size 16m;
        client_body_buffer_size 1m;
        location /v1/ {
            proxy_pass http://model;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host 127.0.0.1:$fake_port;
            proxy_set_header Authorization "Bearer $UPSTREAM_KEY";
            proxy_set_header api-key "";
            proxy_set_header Cookie "";
            proxy_set_header OpenAI-Organization "";
            proxy_set_header OpenAI-Project "";
            proxy_buffering off;
            proxy_connect_timeout 10s;
        }
    }
}
NGINX
nginx -p "$tmp/nginx/" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/logs/error.log" -t \
	>"$tmp/nginx.log" 2>&1 || {
	cat "$tmp/nginx.log" >&2
	die "nginx refused the generated configuration"
}
on_cpu "$SERVER_CPU" nginx -p "$tmp/nginx/" -c "$tmp/nginx/nginx.conf" \
	-e "$tmp/nginx/logs/error.log" >"$tmp/nginx.log" 2>&1 &
nginx_pid=$!
wait_http nginx "$nginx_pid" "http://127.0.0.1:$nginx_port/"

# The pids are the servers' own (their CPU time is read from /proc/PID).
for pc in "$fake_pid:fake-upstream" "$router_pid:kars-router" "$nginx_pid:nginx"; do
	[ "$(cat "/proc/${pc%%:*}/comm" 2>/dev/null)" = "${pc#*:}" ] ||
		die "process ${pc%%:*} is not ${pc#*:}"
done

declare -A url auth
url[direct]=http://127.0.0.1:$fake_port
url[nginx]=http://127.0.0.1:$nginx_port
url[router]=http://127.0.0.1:$router_port
auth[direct]=$UPSTREAM_KEY
auth[nginx]=$AGENT_KEY
auth[router]=$AGENT_KEY

# --- every target answers the request, with the key it is meant to hold ------------
check() { # target key expected-status
	local code
	code=$(curl -s -o "$tmp/check.json" -w '%{http_code}' -X POST \
		-H 'Content-Type: application/json' -H "Authorization: Bearer $2" \
		-d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello."}]}' \
		"${url[$1]}/v1/chat/completions") || die "$1: request failed"
	[ "$code" = "$3" ] || die "$1: HTTP $code with key $2, expected $3: $(head -c 300 "$tmp/check.json")"
	if [ "$3" = 200 ]; then
		grep -q '"object": *"chat.completion"' "$tmp/check.json" &&
			grep -q 'Hello! This is kars fake-upstream.' "$tmp/check.json" ||
			die "$1: not a chat completion: $(head -c 300 "$tmp/check.json")"
	fi
}
check direct "$AGENT_KEY" 401
for t in "${TARGETS[@]}"; do
	check "$t" "${auth[$t]}" 200
done
log "all three answer; the fake refuses the agent's key, so both proxies replace it"

# --- CPU time of the servers, from /proc ---------------------------------------------
clk_tck=$(getconf CLK_TCK)
procs_of() { # target -> pids whose CPU time counts for it
	case $1 in
	direct) echo "$fake_pid" ;;
	nginx) echo "$nginx_pid $(cat "/proc/$nginx_pid/task/"*/children 2>/dev/null)" ;;
	router) echo "$router_pid" ;;
	esac
}
ticks() { # pids -> utime + stime, in clock ticks
	local p sum=0 f
	for p in "$@"; do
		# The fields after the command name, which is in parentheses.
		f=$(sed 's/.*) //' "/proc/$p/stat") || die "process $p is gone"
		sum=$((sum + $(awk '{ print $12 + $13 }' <<<"$f")))
	done
	echo $sum
}

# The servers' CPU, from /proc/stat: "user+nice+system all steal" in ticks.
cpu_stat() {
	awk -v c="cpu$SERVER_CPU" '$1 == c { print $2 + $3 + $4, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9, $9 }' \
		/proc/stat
}

# TCP connections opened in this namespace so far (wrk's and the proxies').
active_opens() {
	awk '$1 == "Tcp:" { if (!h) { for (i = 2; i <= NF; i++) if ($i == "ActiveOpens") c = i; h = 1 }
		else print $c }' /proc/net/snmp
}

# One wrk run: prints "rps p50 p99 requests fake_ticks proxy_ticks upstream_opens
# foreign_share steal_share", the last two of the servers' CPU: the share of
# its time that processes other than this run's servers used (other work on
# the machine), and the share the hypervisor took.
measure() { # target seconds pace_ms
	local out res fake0 prox0 fake1 prox1 pids opens0 opens1 cpu0 cpu1 ours
	pids=$(procs_of "$1")
	opens0=$(active_opens)
	cpu0=$(cpu_stat)
	fake0=$(ticks "$fake_pid")
	# shellcheck disable=SC2086
	prox0=$(ticks $pids)
	out=$(BENCH_AUTH=${auth[$1]} BENCH_PACE_MS=$3 on_cpu "$CLIENT_CPU" \
		wrk -t1 -c"$CONNS" -d"$2"s --timeout 10s -s "$lua" "${url[$1]}" 2>&1) ||
		die "$1: wrk failed: $out"
	opens1=$(active_opens)
	cpu1=$(cpu_stat)
	fake1=$(ticks "$fake_pid")
	# shellcheck disable=SC2086
	prox1=$(ticks $pids)
	res=$(grep '^wrk_result ' <<<"$out") || die "$1: no result from wrk: $out"
	get() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$res"; }
	[ "$(get errors)" = 0 ] && [ "$(get status_errors)" = 0 ] ||
		die "$1: wrk saw errors: $res"
	[ "$(get requests)" -gt 0 ] || die "$1: no requests completed"
	# wrk opens CONNS connections (more if a target closed some); the rest
	# are the proxy's connections to the upstream.
	ours=$((prox1 - prox0))
	[ "$1" = direct ] || ours=$((ours + fake1 - fake0))
	echo "$(get rps) $(get p50_us) $(get p99_us) $(get requests) $((fake1 - fake0))" \
		"$((prox1 - prox0)) $((opens1 - opens0 - CONNS))" \
		"$(awk -v a="$cpu0" -v b="$cpu1" -v o="$ours" 'BEGIN { split(a, x, " "); split(b, y, " ")
			t = y[2] - x[2]; f = (y[1] - x[1] - o) / t; if (f < 0) f = 0
			printf "%.3f %.3f", f, (y[3] - x[3]) / t }')"
}

for t in "${TARGETS[@]}"; do # warm-up: connections, caches, upstream keepalive
	measure "$t" 1 0 >/dev/null
done

# --- interleaved rounds ------------------------------------------------------------------
declare -A vals round_rps
declare -A pace_of=([saturated]=0 [paced]=$PACE_MS)
LOADS=(saturated paced)
log "measuring: $ROUNDS rounds x ${#TARGETS[@]} targets x ${LOADS[*]}, $CONNS connections," \
	"${DURATION}s each; wrk on CPU $CLIENT_CPU, the servers on CPU $SERVER_CPU"
for r in $(seq 0 $((ROUNDS - 1))); do
	for c in "${LOADS[@]}"; do
		line=""
		for k in $(seq 0 $((${#TARGETS[@]} - 1))); do
			t=${TARGETS[$(((r + k) % ${#TARGETS[@]}))]}
			read -r rps p50 p99 n ft pt opens foreign steal <<<"$(measure "$t" "$DURATION" "${pace_of[$c]}")"
			vals[$t,$c,rps]+=" $rps"
			round_rps[$t,$c,$r]=$rps
			vals[$t,$c,p50]+=" $p50"
			vals[$t,$c,p99]+=" $p99"
			# CPU per request in µs; for direct the fake is the process measured.
			vals[$t,$c,fake_us]+=" $(awk -v t="$ft" -v n="$n" -v h="$clk_tck" \
				'BEGIN { printf "%.2f", t * 1e6 / h / n }')"
			vals[$t,$c,proxy_us]+=" $(awk -v t="$pt" -v n="$n" -v h="$clk_tck" \
				'BEGIN { printf "%.2f", t * 1e6 / h / n }')"
			vals[$t,$c,fake_busy]+=" $(awk -v t="$ft" -v h="$clk_tck" -v d="$DURATION" \
				'BEGIN { printf "%.3f", t / h / d }')"
			vals[$t,$c,foreign]+=" $foreign"
			vals[$t,$c,steal]+=" $steal"
			vals[$t,$c,opens_per_kreq]+=" $(awk -v o="$opens" -v n="$n" \
				'BEGIN { printf "%.2f", o * 1000 / n }')"
			line+=" $t=${rps%.*}rps/p50=${p50}us/p99=${p99}us/opens=$opens"
		done
		log "round $((r + 1))/$ROUNDS, $c:$line"
	done
done

median() { # fmt < numbers
	tr ' ' '\n' | grep . | sort -g | awk -v fmt="$1" '{ v[NR] = $1 } END {
		printf fmt, NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
spread() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END {
	printf "min %s max %s n %d", v[1], v[NR], NR }'; }
declare -A med
for t in "${TARGETS[@]}"; do
	for c in "${LOADS[@]}"; do
		for m in rps p50 p99 fake_us proxy_us fake_busy opens_per_kreq foreign steal; do
			med[$t,$c,$m]=$(median %.2f <<<"${vals[$t,$c,$m]}")
		done
		log "$t, $c: rps ${med[$t,$c,rps]} ($(spread <<<"${vals[$t,$c,rps]}")), p50" \
			"${med[$t,$c,p50]} us ($(spread <<<"${vals[$t,$c,p50]}")), p99 ${med[$t,$c,p99]}" \
			"us; CPU per request: fake ${med[$t,$c,fake_us]} us, $t ${med[$t,$c,proxy_us]} us;" \
			"fake busy ${med[$t,$c,fake_busy]} of a CPU; upstream connections opened" \
			"per 1000 requests ${med[$t,$c,opens_per_kreq]}; CPU $SERVER_CPU used by other" \
			"work ${med[$t,$c,foreign]}, stolen ${med[$t,$c,steal]}"
	done
done

# Cross-check against drift: the median over rounds of each round's own ratio.
paired=""
for r in $(seq 0 $((ROUNDS - 1))); do
	paired+=" $(awk -v a="${round_rps[router,saturated,$r]}" -v b="${round_rps[nginx,saturated,$r]}" \
		'BEGIN { printf "%.4f", a / b }')"
done
log "router/nginx rps: per-round ratios$paired; their median $(median %.3f <<<"$paired")"

# --- optional: where kars-router spends its time, under the same load -----------------
if [ "$PROFILE" = perf ]; then
	command -v perf >/dev/null || die "perf not found (apt-get install linux-perf)"
	log "perf: recording kars-router for ${DURATION}s at $CONNS connections"
	perf record -q -g -o "$tmp/perf.data" -p "$router_pid" -- sleep "$DURATION" \
		>"$tmp/perf.log" 2>&1 &
	perf_pid=$!
	read -r _ _ _ n _ <<<"$(measure router "$DURATION" 0)"
	wait "$perf_pid" || die "perf record failed: $(cat "$tmp/perf.log")"
	log "perf: $n requests"
	perf report -i "$tmp/perf.data" --no-children --sort dso --stdio 2>/dev/null |
		grep -E '^ +[0-9.]+%' | sed -n '1,12p' | sed 's/^/router.sh: perf: by library: /' >&2
	perf report -i "$tmp/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null |
		grep -E '^ +[0-9.]+%' | sed -n '1,40p' | sed 's/^/router.sh: perf: /' >&2
	perf report -i "$tmp/perf.data" --children --sort symbol --stdio -g none 2>/dev/null |
		grep -E '^ +[0-9.]+%' | sed -n '1,40p' | sed 's/^/router.sh: perf: inclusive: /' >&2
elif [ "$PROFILE" = strace ]; then
	command -v strace >/dev/null || die "strace not found"
	log "strace: counting kars-router's system calls for ${DURATION}s at $CONNS connections"
	strace -c -f -o "$tmp/strace.out" -p "$router_pid" >"$tmp/strace.log" 2>&1 &
	strace_pid=$!
	sleep 0.5 # attached before the load starts
	read -r _ _ _ n _ <<<"$(measure router "$DURATION" 0)"
	kill -INT "$strace_pid"
	wait "$strace_pid" || true
	log "strace: $n requests (strace slows the router: only the counts mean something)"
	awk -v n="$n" '$1 ~ /^[0-9.]+$/ && NF >= 5 { c = $4; name = $NF;
		printf "router.sh: strace: %-16s %6.2f per request\n", name, c / n }' \
		"$tmp/strace.out" >&2
elif [ "$PROFILE" = callgrind ]; then
	command -v valgrind >/dev/null || die "valgrind not found"
	log "callgrind: kars-router under valgrind, ${DURATION}s at $CONNS connections"
	stop "$router_pid"
	on_cpu "$SERVER_CPU" valgrind --tool=callgrind --callgrind-out-file="$tmp/callgrind.out" \
		"$router" --config "$tmp/router.json" --log-level warn 2>"$tmp/router.log" &
	router_pid=$!
	for _ in $(seq 200); do
		curl -s -o /dev/null "${url[router]}/healthz" && break
		sleep 0.1
	done
	read -r _ _ _ n _ <<<"$(measure router "$DURATION" 0)"
	stop "$router_pid"
	router_pid=""
	log "callgrind: $n requests in ${DURATION}s (start-up is in the totals too)"
	callgrind_annotate --inclusive=no "$tmp/callgrind.out" 2>/dev/null | grep -E '^ *[0-9,]+ ' |
		sed -n '1,40p' | sed 's/^/router.sh: callgrind: /' >&2
	callgrind_annotate --inclusive=yes "$tmp/callgrind.out" 2>/dev/null | grep -E '^ *[0-9,]+ ' |
		sed -n '1,40p' | sed 's/^/router.sh: callgrind: inclusive: /' >&2
fi

# --- the audit chain's group commit (bench/audit, on the file system of BUILD_DIR) ------
log "audit: $audit run --dir $build --reps $AUDIT_REPS"
"$audit" run --dir "$build" --reps "$AUDIT_REPS" >"$tmp/audit.out" 2>"$tmp/audit.log" || {
	cat "$tmp/audit.log" "$tmp/audit.out" >&2
	die "bench/audit failed"
}
sed 's/^/router.sh: audit: /' "$tmp/audit.out" >&2
audit_line=$(grep '^bench: audit_records_per_s=' "$tmp/audit.out") ||
	die "bench/audit printed no audit_records_per_s"

# --- results ---------------------------------------------------------------------------------
S=saturated
P=paced
# The paced runs compare latency only if every target got the same load.
for t in nginx router; do
	awk -v a="${med[$t,$P,rps]}" -v b="${med[direct,$P,rps]}" 'BEGIN { exit !(a < 0.95 * b) }' &&
		log "warning: $t served ${med[$t,$P,rps]} requests/s paced, direct" \
			"${med[direct,$P,rps]}: it could not keep up, its added latency includes queueing"
done
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
echo "bench: router_env kernel=$(uname -r) cpus=$ncpu cpu=\"${cpu_model:-unknown}\"" \
	"nginx=$(nginx -v 2>&1 | sed 's/.*nginx\///') wrk=$(dpkg-query -W -f='${Version}' wrk 2>/dev/null)" \
	"wrk_cpu=$CLIENT_CPU servers_cpu=$SERVER_CPU rt=$RT conns=$CONNS pace_ms=$PACE_MS" \
	"duration_s=$DURATION rounds=$ROUNDS loadavg=\"$(cut -d' ' -f1-3 /proc/loadavg)\"" \
	"servers_cpu_foreign_share=$(median %.2f <<<"${vals[direct,saturated,foreign]} ${vals[nginx,saturated,foreign]} ${vals[router,saturated,foreign]}")"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
added() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", a - b }'; }
# Saturated: throughput, and the latency that goes with it.
for t in "${TARGETS[@]}"; do
	printf 'bench: %s_rps=%.0f\n' "$t" "${med[$t,$S,rps]}"
done
for t in "${TARGETS[@]}"; do
	printf 'bench: %s_saturated_p50_us=%.0f\n' "$t" "${med[$t,$S,p50]}"
	printf 'bench: %s_saturated_p99_us=%.0f\n' "$t" "${med[$t,$S,p99]}"
done
echo "bench: router_vs_nginx_rps_ratio=$(ratio "${med[router,$S,rps]}" "${med[nginx,$S,rps]}")"
echo "bench: nginx_vs_direct_rps_ratio=$(ratio "${med[nginx,$S,rps]}" "${med[direct,$S,rps]}")"
echo "bench: router_vs_direct_rps_ratio=$(ratio "${med[router,$S,rps]}" "${med[direct,$S,rps]}")"
# Paced: the same offered load for all three; latency added by each proxy.
for t in "${TARGETS[@]}"; do
	printf 'bench: %s_paced_rps=%.0f\n' "$t" "${med[$t,$P,rps]}"
	printf 'bench: %s_p50_us=%.0f\n' "$t" "${med[$t,$P,p50]}"
	printf 'bench: %s_p99_us=%.0f\n' "$t" "${med[$t,$P,p99]}"
done
echo "bench: router_added_p50_us=$(added "${med[router,$P,p50]}" "${med[direct,$P,p50]}")"
echo "bench: router_added_p99_us=$(added "${med[router,$P,p99]}" "${med[direct,$P,p99]}")"
echo "bench: nginx_added_p50_us=$(added "${med[nginx,$P,p50]}" "${med[direct,$P,p50]}")"
echo "bench: nginx_added_p99_us=$(added "${med[nginx,$P,p99]}" "${med[direct,$P,p99]}")"
# CPU time per request (saturated, from /proc): each proxy's own, and the fake's.
printf 'bench: fake_cpu_us_per_req=%.1f\n' "${med[direct,$S,proxy_us]}"
printf 'bench: nginx_cpu_us_per_req=%.1f\n' "${med[nginx,$S,proxy_us]}"
printf 'bench: router_cpu_us_per_req=%.1f\n' "${med[router,$S,proxy_us]}"
printf 'bench: fake_busy_direct=%.2f\n' "${med[direct,$S,fake_busy]}"
# Upstream connections each proxy opened per 1000 requests (saturated).
printf 'bench: nginx_upstream_conns_per_kreq=%.2f\n' "${med[nginx,$S,opens_per_kreq]}"
printf 'bench: router_upstream_conns_per_kreq=%.2f\n' "${med[router,$S,opens_per_kreq]}"
echo "$audit_line"
