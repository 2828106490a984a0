#!/bin/bash
# run.sh - builds and runs every libFuzzer target in selftests/fuzz/.
#
# Usage: selftests/fuzz/run.sh [SECONDS]   (default 30, for each target)
#
# Each selftests/fuzz/fuzz_<name>.c is built with clang's libFuzzer, ASan and
# UBSan (Debian package libclang-rt-14-dev) into build/fuzz/fuzz_<name>,
# together with all of libkars (userspace/lib/*.c) and the extra sources
# extra_srcs() names for it, and runs for SECONDS from its seed corpus in
# selftests/fuzz/corpus/<name>/, with selftests/fuzz/<name>.dict when there is
# one. For each target it prints a summary line for selftests/run.sh:
# "fuzz/<name>: 1 passed, 0 failed" on a clean finish, "fuzz/<name>: 0 passed,
# 1 failed" on a crash, leak, timeout or build failure; a failing target does
# not stop the others. New inputs go to build/fuzz/corpus/<name>/ (the
# checked-in seeds are never written); a failing input is saved as
# build/fuzz/<kind>-<sha1>.

set -u

cd "$(dirname "$0")/../.." || exit 2
secs=${1:-30}
out=build/fuzz

case $secs in
'' | *[!0-9]* | 0) echo "usage: $0 [SECONDS]" >&2 && exit 2 ;;
esac

# Sources a target needs beyond libkars (a daemon's parser it drives).
extra_srcs() {
	case $1 in
	policy) echo userspace/tracer/policy.c userspace/tracer/fqdn_policy.c ;;
	token_response) echo userspace/router/token_response.c ;;
	inference_policy) echo userspace/router/inference_policy.c ;;
	policy_status) echo userspace/controller/policy_status.c ;;
	upstream_http) echo userspace/router/upstream_http.c ;;
	tool_policy_file) echo userspace/router/tool_policy_file.c ;;
	tls_sni) echo userspace/router/tls_sni.c ;;
	http_head) echo userspace/router/http_head.c ;;
	run_file) echo userspace/cli/sandbox_ref.c ;;
	http_request) echo userspace/router/http_request.c ;;
	esac
}

# Libraries a target needs beyond libkars's.
extra_libs() {
	case $1 in
	upstream_http) echo -levent -levent_openssl -lssl ;;
	esac
}

# Targets that run BPF programs in the kernel (BPF_PROG_TEST_RUN): root only.
needs_root() {
	case $1 in
	dns_query | dns_answer) return 0 ;;
	esac
	return 1
}

# fuzz_one NAME: builds, runs and reports one target; returns 1 if it failed.
fuzz_one() {
	local name=$1 bin=$out/fuzz_$1 dict=selftests/fuzz/$1.dict seeds=selftests/fuzz/corpus/$1 status
	local -a dictopt=() seedopt=()

	fail() {
		echo "fuzz/$name: $*"
		echo "fuzz/$name: 0 passed, 1 failed"
	}
	if needs_root "$name" && [ "$(id -u)" -ne 0 ]; then
		echo "fuzz/$name: skipped: runs BPF programs in the kernel, needs root"
		echo "fuzz/$name: 0 passed, 0 failed, 1 skipped"
		return 0
	fi
	mkdir -p "$out/corpus/$name" || {
		fail "cannot create $out/corpus/$name"
		return 1
	}
	# shellcheck disable=SC2046 # extra_srcs and extra_libs are lists
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -Wmissing-prototypes -Wshadow \
		-D_GNU_SOURCE -Iuserspace/lib -Ibpf/include -Iuserspace/tracer -I"$out/../bpf" \
		"selftests/fuzz/fuzz_$name.c" userspace/lib/*.c $(extra_srcs "$name") \
		-o "$bin" -ljansson -lbpf -lsodium -lcrypto -lyaml -lidn2 -lm -lseccomp $(extra_libs "$name") || {
		fail "build failed (libFuzzer is in libclang-rt-14-dev)"
		return 1
	}
	[ -f "$dict" ] && dictopt=(-dict="$dict")
	[ -d "$seeds" ] && seedopt=("$seeds")

	# libFuzzer exits non-zero on a crash, sanitizer report, leak or timeout.
	"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		"${dictopt[@]}" -artifact_prefix="$out/" \
		"$out/corpus/$name" "${seedopt[@]}" 2>&1
	status=$?
	if [ $status -ne 0 ]; then
		fail "$bin exited with status $status; reproduce with: $bin $out/<artifact named above>"
		return 1
	fi
	echo "fuzz/$name: 1 passed, 0 failed"
}

mkdir -p "$out" || exit 2
any_failed=0
for src in selftests/fuzz/fuzz_*.c; do
	name=${src#selftests/fuzz/fuzz_}
	fuzz_one "${name%.c}" || any_failed=1
done
exit $any_failed
