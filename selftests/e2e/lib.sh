# shellcheck shell=bash
# lib.sh - what every e2e shell test shares: check a command's exit status and
# output, count, and print the summary line selftests/run.sh adds up.
# Source it, set E2E_NAME (e.g. "e2e/cli"), call check ..., end with e2e_summary.

passed=0
failed=0

# check NAME EXPECTED-STATUS OUTPUT-REGEX -- CMD...
check() {
	local name=$1 want=$2 pattern=$3 out status
	shift 4
	out=$("$@" 2>&1)
	status=$?
	if [ "$status" = "$want" ] && grep -qE -- "$pattern" <<<"$out"; then
		passed=$((passed + 1))
		echo "PASS $name"
	else
		failed=$((failed + 1))
		echo "FAIL $name: exit $status (want $want), output:"
		sed 's/^/    /' <<<"$out"
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
