#!/bin/bash
# run.sh - runs test commands and adds up their results; used by `make check`.
#
# Usage: selftests/run.sh CMD [CMD...]   (each CMD is one shell command string)
#
# Every test runner prints one or more summary lines "<name>: N passed, N failed"
# (optionally ", N skipped"). This script runs each command in turn, shows its
# output as it comes, sums the summary lines, and ends with one line
# "N passed, N failed[, N skipped]"; it exits 1 if anything failed.
#
# A runner that dies (sanitizer abort, signal, crash before its summary) must
# not look like success: a command that exits non-zero while its summary shows
# no failures, or that prints no summary line at all, counts as 1 failure.

set -u

if [ $# -eq 0 ]; then
	echo "usage: $0 CMD [CMD...]" >&2
	exit 2
fi

log=$(mktemp) || exit 2
trap 'rm -f "$log"' EXIT

# "<name>: N passed, N failed[, N skipped]", the name without ':' or leading space.
summary_re='^[^[:space:]:][^:]*: [0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?[[:space:]]*$'

passed=0 failed=0 skipped=0
for cmd in "$@"; do
	# stdin from /dev/null so that no test can wait on the terminal.
	bash -c "$cmd" </dev/null 2>&1 | tee "$log"
	status=${PIPESTATUS[0]}

	# -> "<lines> <passed> <failed> <skipped>"
	read -r n p f s < <(awk -v re="$summary_re" '
		$0 ~ re {
			n++
			sub(/^[^:]*: /, "")	# leaves "N passed, N failed[, N skipped]"
			p += $1; f += $3; s += $5
		}
		END { printf "%d %d %d %d\n", n, p, f, s }' "$log")

	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
	if [ "$n" -eq 0 ]; then
		echo "run.sh: '$cmd' printed no summary line (exit status $status): counted as 1 failure"
		failed=$((failed + 1))
	elif [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "run.sh: '$cmd' exited with status $status but reported no failures: counted as 1 failure"
		failed=$((failed + 1))
	fi
done

if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
