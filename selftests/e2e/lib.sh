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
