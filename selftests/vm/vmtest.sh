#!/bin/bash
# vmtest.sh - runs kars selftests inside a VM booted on another kernel.
#
# Usage: selftests/vm/vmtest.sh BUILD [CMD...]
#
# The design's "kernel selftests in a VM harness": the same binaries and the
# same CO-RE BPF objects (embedded in karsd's skeleton) that the host tests
# run, on Debian 12's own kernel (linux-image-amd64, the 6.1 series) booted
# with BPF LSM active (lsm=...,bpf). The kernel package is fetched with
# `apt-get download` into BUILD/vm/ and unpacked there, never installed.
#
# Each CMD is a shell command run inside the VM from /vmtest, where BUILD's
# bin/ and tests/bpf_selftests are copied as build/bin/ and build/tests/. The
# default is the BPF selftests (karsd's own choice of build). Inside, init.sh
# mounts proc, sysfs, cgroup2, bpffs and securityfs, runs the commands and
# writes their output to a second serial port; this script prints it with
# every summary line renamed "vm <name>: N passed, N failed" (for
# selftests/run.sh), and exits non-zero when a command failed, the VM did not
# finish within VMTEST_TIMEOUT seconds, or it never reported an exit status.
#
# When this machine cannot get the kernel (no apt source offers it, the
# archive cannot be reached), the run is a skip with the reason ("vm: 0
# passed, 0 failed, 1 skipped"), never a pass.
#
# Environment: VMTEST_TIMEOUT (seconds, default 600: a run takes about 4.5
# minutes on 2 busy cores under TCG), VMTEST_ACCEL (tcg by
# default: KVM hangs at boot on this nested host; "kvm" to try it),
# VMTEST_KERNEL_PKG (default: what linux-image-amd64 depends on), VMTEST_MEM
# (MiB, default 1024), VMTEST_KEEP=1 keeps the logs (BUILD/vm/run.*/) of a
# run that passed; a failed run's are always kept. VMTEST_FILES: more files
# (space-separated) copied into /vmtest, e.g. a script a CMD runs.
set -u

if [ $# -lt 1 ]; then
	echo "usage: $0 BUILD [CMD...]" >&2
	exit 2
fi
BUILD=$(realpath "$1")
shift
HERE=$(dirname "$(realpath "$0")")
VM=$BUILD/vm
TIMEOUT=${VMTEST_TIMEOUT:-600}
ACCEL=${VMTEST_ACCEL:-tcg}
MEM=${VMTEST_MEM:-1024}
LSM="lockdown,capability,landlock,yama,bpf"
# veth for the tests' network namespaces, inet_diag/tcp_diag for sock_diag
# (how the egress proxy finds the agent's socket), vsock for the LSM socket
# veto tests. /sbin/modprobe is there too, for the kernel's own autoloading.
MODULES="veth inet_diag tcp_diag udp_diag vsock vsock_loopback"

fail() {
	echo "vmtest: $*"
	echo "vm: 0 passed, 1 failed"
	exit 1
}

# One run: on 6.1 karsd's auto choice is the stamp build (no bpf_rdonly_cast
# before 6.2; karsd_reports_socket_cgroup_build checks it), so a second run
# with --socket-cgroup stamp would test the same programs again.
if [ $# -eq 0 ]; then
	set -- "build/tests/bpf_selftests --karsd build/bin/karsd --expect-lsm"
fi

for tool in qemu-system-x86_64 busybox cpio depmod dpkg-deb apt-get ldd; do
	command -v "$tool" >/dev/null || fail "$tool not found (make deps installs it)"
done
for f in "$BUILD/bin/karsd" "$BUILD/tests/bpf_selftests"; do
	[ -x "$f" ] || fail "$f missing: make all first"
done

# --- the kernel: Debian's own package, unpacked under BUILD/vm ---------------
# What this machine cannot do for reasons outside the tree (no apt source
# offering the package, no way to reach the archive) is a skip with the
# reason, counted as such in the summary; anything else is a failure.
skip() {
	echo "vmtest: skipped: $*"
	echo "vm: 0 passed, 0 failed, 1 skipped"
	exit 0
}

kernel_pkg() {
	if [ -n "${VMTEST_KERNEL_PKG:-}" ]; then
		echo "$VMTEST_KERNEL_PKG"
		return
	fi
	apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}'
}

# fetch PKG: downloads it and unpacks it as $VM/PKG (renamed into place once
# complete, so an interrupted fetch is never mistaken for a kernel); apt's
# output goes to $VM/apt.log. Returns 1 if the download failed.
fetch() {
	local pkg=$1 kver=${1#linux-image-}

	rm -rf "${VM:?}/$pkg" "$VM/$pkg.tmp" "$VM/$pkg"_*.deb
	echo "vmtest: fetching $pkg (apt-get download)"
	(cd "$VM" && apt-get download "$pkg") >"$VM/apt.log" 2>&1 || return 1
	dpkg-deb -x "$VM/$pkg"_*.deb "$VM/$pkg.tmp" || fail "dpkg-deb -x $VM/${pkg}_*.deb failed"
	rm -f "$VM/$pkg"_*.deb
	depmod -b "$VM/$pkg.tmp" "$kver" || fail "depmod for $kver failed"
	mv "$VM/$pkg.tmp" "$VM/$pkg"
}

mkdir -p "$VM"
PKG=$(kernel_pkg)
if [ -z "$PKG" ] || { [ ! -d "$VM/$PKG/boot" ] && ! fetch "$PKG"; }; then
	# No package lists yet (a fresh machine), or lists older than the
	# archive, whose previous kernel is gone: update them and try again.
	echo "vmtest: apt-get update (${PKG:-linux-image-amd64 unknown to apt-cache})"
	apt-get update -qq >"$VM/apt.log" 2>&1 || skip "apt-get update failed: $(tail -n 1 "$VM/apt.log")"
	PKG=$(kernel_pkg)
	[ -n "$PKG" ] || skip "no apt source offers linux-image-amd64 (Debian's kernel)"
	[ -d "$VM/$PKG/boot" ] || fetch "$PKG" ||
		skip "apt-get download $PKG failed: $(tail -n 1 "$VM/apt.log")"
fi
KVER=${PKG#linux-image-}
KDIR=$VM/$PKG
[ -f "$KDIR/boot/vmlinuz-$KVER" ] || fail "$PKG has no /boot/vmlinuz-$KVER"
echo "vmtest: kernel $PKG (unpacked under $KDIR)"

# --- the initramfs -------------------------------------------------------------
# Per run, so that two runs of one BUILD do not clobber each other.
ROOT=$(mktemp -d "$VM/root.XXXXXX") || fail "mktemp failed"
RUN=$(mktemp -d "$VM/run.XXXXXX") || fail "mktemp failed"
trap 'rm -rf "$ROOT"' EXIT
chmod 0755 "$ROOT" # it becomes the VM's / (mktemp made it 0700)
mkdir -p "$ROOT"/{bin,usr/sbin,vmtest/build/bin,vmtest/build/tests,lib/modules/"$KVER"}

# Copies an ELF binary and every shared library ldd names, at the same paths.
copy_elf() {
	local src=$1 dst=$2
	mkdir -p "$(dirname "$ROOT$dst")"
	cp -L "$src" "$ROOT$dst" || fail "cannot copy $src"
	ldd "$src" 2>/dev/null | grep -o '/[^ ]*' | while read -r lib; do
		[ -e "$ROOT$lib" ] || { mkdir -p "$(dirname "$ROOT$lib")" && cp -L "$lib" "$ROOT$lib"; }
	done
}

cp "$(command -v busybox)" "$ROOT/bin/busybox"
mkdir -p "$ROOT/sbin" && ln -s /bin/busybox "$ROOT/sbin/modprobe"
# /bin/sh is dash, not busybox: Debian's static busybox runs its own applets
# before PATH (ip among them), and the tests need iproute2's ip.
copy_elf "$(command -v dash)" /bin/sh
copy_elf "$(command -v ip)" /usr/sbin/ip
# The real-resolver test's dnsmasq (dnsmasq-base, in make deps; the test
# skips without it), run as root: it looks root up by name.
if command -v dnsmasq >/dev/null; then
	copy_elf "$(command -v dnsmasq)" /usr/sbin/dnsmasq
	mkdir -p "$ROOT/etc"
	echo "root:x:0:0:root:/root:/bin/sh" >"$ROOT/etc/passwd"
	echo "root:x:0:" >"$ROOT/etc/group"
fi
for f in "$BUILD"/bin/*; do
	copy_elf "$f" "/vmtest/build/bin/$(basename "$f")"
done
copy_elf "$BUILD/tests/bpf_selftests" /vmtest/build/tests/bpf_selftests
for f in ${VMTEST_FILES:-}; do
	cp "$f" "$ROOT/vmtest/" || fail "VMTEST_FILES: cannot copy $f"
done
cp "$HERE/init.sh" "$ROOT/init"
chmod 0755 "$ROOT/init"

# The modules we load and what they depend on, per modules.dep.
MODDIR=$KDIR/lib/modules/$KVER
cp "$MODDIR"/modules.{dep,alias,builtin,order,symbols} "$ROOT/lib/modules/$KVER/" 2>/dev/null
for m in $MODULES; do
	path=$(awk -F: -v m="/$m.ko" 'index($1, m) && substr($1, length($1) - length(m) + 1) == m {print $0; exit}' "$MODDIR/modules.dep")
	[ -n "$path" ] || fail "module $m not in $MODDIR/modules.dep"
	for ko in ${path/:/}; do
		mkdir -p "$(dirname "$ROOT/lib/modules/$KVER/$ko")"
		cp "$MODDIR/$ko" "$ROOT/lib/modules/$KVER/$ko"
	done
	echo "$m" >>"$ROOT/vmtest/modules"
done
printf '%s\n' "$@" >"$ROOT/vmtest/commands"

(cd "$ROOT" && find . | cpio -o -H newc --quiet >"$RUN/initramfs.cpio") || fail "cpio failed"

# --- boot ------------------------------------------------------------------------
echo "vmtest: booting $KVER ($ACCEL, ${MEM} MiB, timeout ${TIMEOUT}s), lsm=$LSM"
start=$(date +%s)
timeout --kill-after=10 "$TIMEOUT" qemu-system-x86_64 -accel "$ACCEL" -cpu max -smp 2 -m "$MEM" \
	-kernel "$KDIR/boot/vmlinuz-$KVER" -initrd "$RUN/initramfs.cpio" \
	-append "console=ttyS0 quiet panic=-1 oops=panic lsm=$LSM" \
	-display none -no-reboot -nodefaults \
	-serial "file:$RUN/console.log" -serial "file:$RUN/results.log" 2>"$RUN/qemu.log"
qemu_rc=$?
echo "vmtest: VM ran $(($(date +%s) - start))s (qemu exit status $qemu_rc)"

summary_re='^[^[:space:]:][^:]*: [0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?[[:space:]]*$'
tr -d '\r' <"$RUN/results.log" | grep -v '^VMTEST-EXIT ' |
	awk -v re="$summary_re" '$0 ~ re { print "vm " $0; next } { print }'

exit_line=$(tr -d '\r' <"$RUN/results.log" | grep '^VMTEST-EXIT ' | tail -1)
if [ -z "$exit_line" ]; then
	echo "vmtest: the VM reported no exit status; console tail:"
	tail -n 30 "$RUN/console.log" | tr -d '\r'
	[ "$qemu_rc" -eq 124 ] && echo "vmtest: timed out after ${TIMEOUT}s"
	cat "$RUN/qemu.log"
	rm -f "$RUN/initramfs.cpio"
	echo "vmtest: logs kept in $RUN"
	echo "vm: 0 passed, 1 failed"
	exit 1
fi
status=${exit_line#VMTEST-EXIT }
if [ "$status" != 0 ] || [ "${VMTEST_KEEP:-0}" = 1 ]; then
	rm -f "$RUN/initramfs.cpio"
	echo "vmtest: logs kept in $RUN"
else
	rm -rf "$RUN"
fi
exit "$status"
