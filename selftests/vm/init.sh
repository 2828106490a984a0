#!/bin/busybox sh
# init.sh - /init of the selftest VM (busybox sh, PID 1).
#
# Mounts what karsd and the tests need (proc, sysfs, devtmpfs, cgroup2, bpffs,
# securityfs, a tmpfs /tmp and /run), loads the kernel modules listed in
# /vmtest/modules, runs each command of /vmtest/commands in turn, and writes
# everything they print to the second serial port (/dev/ttyS1), which the host
# keeps as its own file: kernel messages go to ttyS0 and never mix in. The
# last line on ttyS1 is "VMTEST-EXIT <status>"; a run without it (a hang cut
# by the host's timeout, a panic) is a failure on the host side.
/bin/busybox --install -s /bin
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mkdir -p /proc /sys /dev /tmp /run
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
mkdir -p /sys/fs/cgroup /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t bpf bpf /sys/fs/bpf
mount -t securityfs securityfs /sys/kernel/security

out=/dev/ttyS1
say() { echo "$*" >"$out"; }

say "vm: kernel $(uname -r), lsm $(cat /sys/kernel/security/lsm)"
while read -r mod; do
	[ -n "$mod" ] || continue
	modprobe "$mod" 2>"$out" || say "vm: modprobe $mod failed"
done </vmtest/modules
ip link set lo up

cd /vmtest
status=0
while read -r cmd; do
	[ -n "$cmd" ] || continue
	say "vm: running: $cmd"
	t0=$(cut -d. -f1 /proc/uptime)
	# The tests' own output, unbuffered enough: each runner flushes per line.
	/bin/sh -c "$cmd" </dev/null >"$out" 2>&1
	rc=$?
	say "vm: exit status $rc after $(($(cut -d. -f1 /proc/uptime) - t0))s: $cmd"
	[ "$rc" -eq 0 ] || status=1
done </vmtest/commands

say "VMTEST-EXIT $status"
sync
poweroff -f
