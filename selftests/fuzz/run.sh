#!/bin/bash
# run.sh - builds and runs the libFuzzer target for karsd's request parser.
#
# Usage: selftests/fuzz/run.sh [SECONDS]   (default 30)
#
# Builds selftests/fuzz/fuzz_policy.c with clang's libFuzzer, ASan and UBSan
# (Debian package libclang-rt-14-dev) into build/fuzz/, runs it for SECONDS
# from the seed corpus in selftests/fuzz/corpus/policy/, and prints a summary
# line for selftests/run.sh: "fuzz/policy: 1 passed, 0 failed" on a clean
# finish, "fuzz/policy: 0 passed, 1 failed" on a crash, leak, timeout or
# build failure. New inputs go to build/fuzz/corpus/policy/ (the checked-in
# seeds are never written); a failing input is saved as build/fuzz/<kind>-<sha1>.

set -u

cd "$(dirname "$0")/../.." || exit 2
secs=${1:-30}
out=build/fuzz
bin=$out/fuzz_policy

fail() {
	echo "fuzz/policy: $*"
	echo "fuzz/policy: 0 passed, 1 failed"
	exit 1
}

case $secs in
'' | *[!0-9]* | 0) echo "usage: $0 [SECONDS]" >&2 && exit 2 ;;
esac

mkdir -p "$out/corpus/policy" || fail "cannot create $out"
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -Wmissing-prototypes -Wshadow \
	-D_GNU_SOURCE -Iuserspace/lib -Ibpf/include -Iuserspace/tracer \
	selftests/fuzz/fuzz_policy.c userspace/lib/*.c userspace/tracer/policy.c \
	-o "$bin" -ljansson -lbpf ||
	fail "build failed (libFuzzer is in libclang-rt-14-dev)"

# libFuzzer exits non-zero on a crash, sanitizer report, leak or timeout.
"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	-dict=selftests/fuzz/policy.dict -artifact_prefix="$out/" \
	"$out/corpus/policy" selftests/fuzz/corpus/policy 2>&1
status=$?
[ $status -eq 0 ] ||
	fail "$bin exited with status $status; reproduce with: $bin $out/<artifact named above>"
echo "fuzz/policy: 1 passed, 0 failed"
