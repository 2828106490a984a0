# shellcheck shell=bash
# shellcheck disable=SC2034,SC2154 # the start-up helpers read and set the caller's variables, as each says
# lib.sh - what every e2e shell test shares: check a command's exit status and
# output, count, and print the summary line selftests/run.sh adds up; and the
# start-up of the fake upstream and of kars-router the router tests share.
# Source it, set E2E_NAME (e.g. "e2e/cli"), call check ..., end with e2e_summary.

passed=0
failed=0

# check NAME EXPECTED-STATUS OUTPUT-REGEX -- CMD...
check() {
	local name=$1 want=$2 pattern=$3 out status line
	shift 4
	out=$("$@" 2>&1)
	status=$?
	if [ "$status" = "$want" ] && grep -qE -- "$pattern" <<<"$out"; then
		passed=$((passed + 1))
		echo "PASS $name"
	else
		failed=$((failed + 1))
		echo "FAIL $name: exit $status (want $want), output:"
		while IFS= read -r line; do echo "    $line"; done <<<"$out"
	fi
}

# wait_grep FILE REGEX: until FILE has a line matching REGEX (something
# written asynchronously, like the audit chain's group commit), at most 10 s.
# The check after it says what was missing.
wait_grep() {
	for _ in $(seq 200); do grep -qE -- "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
	return 1
}

# Set-up failed: one failure with the reason, and stop.
e2e_abort() {
	echo "$E2E_NAME: $*"
	echo "$E2E_NAME: 0 passed, 1 failed"
	exit 1
}

e2e_summary() {
	echo "$E2E_NAME: $passed passed, $failed failed"
	[ "$failed" = 0 ]
}

# e2e_stop PID...: stops processes the test started (SIGTERM, then reaped);
# empty arguments are skipped.
e2e_stop() {
	local pid
	for pid in "$@"; do
		[ -n "$pid" ] || continue
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
}

# e2e_port N: a TCP port for a listener the test opens, the N-th of this run:
# KARS_E2E_PORT_BASE (default 21000) plus (pid + N) modulo KARS_E2E_PORT_SPAN
# (default 20000). Runs that share the machine set the two to ranges of
# their own.
e2e_port() {
	echo $((${KARS_E2E_PORT_BASE:-21000} + ($$ + $1) % ${KARS_E2E_PORT_SPAN:-20000}))
}

# start_fake_upstream: $fake (fake-upstream) on a free loopback port, logging
# to $tmp/fake.log. Sets fake_pid and upstream (its http:// URL); aborts the
# test if it does not start.
start_fake_upstream() {
	"$fake" --listen 127.0.0.1:0 --port-file "$tmp/fake.port" 2>"$tmp/fake.log" &
	fake_pid=$!
	for _ in $(seq 100); do [ -s "$tmp/fake.port" ] && break; sleep 0.05; done
	[ -s "$tmp/fake.port" ] || e2e_abort "fake-upstream did not start: $(cat "$tmp/fake.log")"
	upstream=http://127.0.0.1:$(cat "$tmp/fake.port")
}

# router_api_key: the upstream key the router's config names, $tmp/api-key,
# mode 0600 as the router insists.
router_api_key() {
	printf 'sk-router-secret\n' >"$tmp/api-key"
	chmod 600 "$tmp/api-key"
}

# start_router: $router (kars-router) with $tmp/router.json, appending to
# $tmp/router.log at $router_log_level (default debug). Sets router_pid;
# returns once $base/healthz answers; aborts the test if it exits or never
# answers.
start_router() {
	"$router" --config "$tmp/router.json" --log-level "${router_log_level:-debug}" \
		2>>"$tmp/router.log" &
	router_pid=$!
	for _ in $(seq 100); do
		curl -s "$base/healthz" >/dev/null 2>&1 && return 0
		kill -0 "$router_pid" 2>/dev/null || break
		sleep 0.05
	done
	e2e_abort "kars-router did not start: $(tail -5 "$tmp/router.log")"
}

# stop_router: the router start_router started.
stop_router() {
	e2e_stop "$router_pid"
	router_pid=
}
