#!/bin/sh
# local_probe.sh - the agent of local_mode.sh's probe sandbox: each time the
# test creates /sandbox/go, runs /sandbox/checks.sh inside the sandbox and
# leaves its output in /sandbox/out.N (N counts from 1).
n=0
while :; do
	if [ -e /sandbox/go ]; then
		n=$((n + 1))
		rm -f /sandbox/go
		# shellcheck disable=SC1091
		. /sandbox/checks.sh >/sandbox/out.tmp 2>&1
		mv /sandbox/out.tmp /sandbox/out.$n
	fi
	sleep 0.2
done
