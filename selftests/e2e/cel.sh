#!/usr/bin/env bash
# cel.sh - every CEL rule of the kars CRDs, run by a real CEL evaluator
# (@bufbuild/cel, pinned in selftests/e2e/cel/package-lock.json) on the
# same nodes as the rule's C half, must give the same verdict. The cases are
# the validation table of unit/test_validate (KARS_CEL_CASES); the rule text
# is the text deploy/crds/ carries, so the API server and kars agree.
#
# Usage: selftests/e2e/cel.sh [BUILD_DIR]   Prints "e2e/cel: N passed, N failed".
# Installs the evaluator with `npm ci` into selftests/e2e/cel/node_modules
# when the lock file changed.
set -u

cd "$(dirname "$0")/../.." || exit 2
build=${1:-build}
dir=selftests/e2e/cel
tmp=$(mktemp -d /tmp/kars-cel.XXXXXX) || exit 2
trap 'rm -rf "$tmp"' EXIT

fail() {
	echo "e2e/cel: $*"
	echo "e2e/cel: 0 passed, 1 failed"
	exit 1
}

if ! cmp -s "$dir/package-lock.json" "$dir/node_modules/.package-lock.json" 2>/dev/null; then
	(cd "$dir" && npm ci --no-audit --no-fund --silent) >"$tmp/npm.log" 2>&1 ||
		fail "npm ci failed: $(tail -3 "$tmp/npm.log")"
fi
KARS_CEL_CASES="$tmp/cases.jsonl" "$build/tests/unit/test_validate" >"$tmp/unit.log" 2>&1 ||
	fail "unit/test_validate failed: $(tail -3 "$tmp/unit.log")"
node "$dir/check.mjs" "$tmp/cases.jsonl"
