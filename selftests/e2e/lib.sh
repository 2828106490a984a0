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

# e2e_wait N CMD...: until CMD succeeds, at most N tries 0.2 s apart (a
# wait for something asynchronous, not a timed assertion: the check after it
# decides). Returns 1 when it never did.
e2e_wait() {
	local n=$1 i
	shift
	for ((i = 0; i < n; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
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

# digest FILE NAMESPACE/NAME: a compiled policy's digest as the controller
# computes it (docs/compiled-policy.md), computed here to check it:
# sha256(u64be(len name) name u64be(len body) body), in hex.
be64() {
	local n=$1 i out=''
	for i in 7 6 5 4 3 2 1 0; do out+=$(printf '\\x%02x' $(((n >> (8 * i)) & 255))); done
	printf '%b' "$out"
}
digest() {
	{
		be64 ${#2}
		printf '%s' "$2"
		be64 "$(stat -L -c %s "$1")"
		cat "$1"
	} | sha256sum | cut -c1-64
}

# router_test_init BUILD NAME PORT-N: the set-up router_policy.sh and
# router_governance.sh share. Sets fake, router and kars (from BUILD),
# agent_uid (1000), tmp (a fresh /tmp/kars-NAME.XXXXXX the agent's UID may
# enter), port (e2e_port PORT-N) and base; on EXIT stops router_pid and
# fake_pid and removes tmp; aborts unless the binaries exist and it runs as
# root with setpriv (the agent is UID 1000); starts the fake upstream and
# writes the router's API key.
router_test_init() {
	fake=$1/bin/fake-upstream
	router=$1/bin/kars-router
	kars=$1/bin/kars
	agent_uid=1000
	tmp=$(mktemp -d "/tmp/kars-$2.XXXXXX") || exit 2
	chmod 755 "$tmp"
	fake_pid='' router_pid=''
	trap 'e2e_stop "$router_pid" "$fake_pid"; rm -rf "$tmp"' EXIT
	for bin in "$fake" "$router" "$kars"; do
		[ -x "$bin" ] || e2e_abort "$bin is missing (make all)"
	done
	[ "$(id -u)" = 0 ] || e2e_abort "needs root (to run the agent as UID $agent_uid)"
	command -v setpriv >/dev/null || e2e_abort "setpriv (util-linux) is missing"
	start_fake_upstream
	port=$(e2e_port "$3")
	base=http://127.0.0.1:$port
	router_api_key
}
