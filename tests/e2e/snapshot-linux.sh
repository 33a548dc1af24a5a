#!/bin/bash
# e2e: snapshot a running Linux guest to files, restore it in a new fvm
# process, and the guest continues where it was: its tick counter goes on
# from the snapshot's value (no second boot), and its kernel saw one VM
# generation ID interrupt (a restored VM is a new instance of the machine).
#
#   snapshot-linux.sh FVM FVMCTL
set -euo pipefail

# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

guest_command='i=0; while :; do i=$((i+1)); set -- $(grep Ged /proc/interrupts); echo "tick $i ged=$2"; sleep 0.3; done'

outer() {
	local fvm=$1 fvmctl=$2 self
	e2e_check_fvm "$fvm"
	[[ -x $fvmctl ]] || e2e_unavailable "fvmctl executable $fvmctl not built"
	e2e_check_host
	e2e_build_guest
	self=$(realpath "${BASH_SOURCE[0]}")
	exec "$e2e_dir/emuhost.sh" --timeout 300 \
		--ship "$fvm" --ship "$fvmctl" --ship "$kernel_dir/vmlinux" \
		--ship "$guest_dir/initramfs.cpio.gz" --ship "$self" --ship "$e2e_dir/lib.sh" \
		-- /bin/bash "$self" --inner "$fvm" "$fvmctl" "$kernel_dir/vmlinux" \
		"$guest_dir/initramfs.cpio.gz"
}

TICK='^tick [0-9]+ ged=[0-9]+$'

ticks() {
	e2e_vm_lines "$1" "$TICK"
}

wait_ticks() {
	e2e_wait_vm_lines "$1" "$TICK" "$2" "$3"
}

inner() {
	local fvm=$1 fvmctl=$2 kernel=$3 initrd=$4 snap_tick first size alloc
	e2e_fvmctl_setup "$fvm"

	"$fvmctl" run orig --kernel "$kernel" --initrd "$initrd" --mem 256M \
		--cmdline "$(e2e_guest_cmdline "$guest_command")" >/dev/null ||
		e2e_fail "fvmctl run" "the guest did not start"
	wait_ticks orig 3 "guest boot"
	"$fvmctl" pause orig >/dev/null || e2e_fail "pause" "fvmctl pause failed"
	snap_tick=$(ticks orig | tail -n 1 | cut -d' ' -f2)
	"$fvmctl" snapshot --keep-paused orig "$FVM_RUNTIME_DIR/s.state" "$FVM_RUNTIME_DIR/s.mem" ||
		e2e_fail "snapshot" "fvmctl snapshot failed"
	size=$(stat -c %s "$FVM_RUNTIME_DIR/s.mem")
	alloc=$(($(stat -c %b "$FVM_RUNTIME_DIR/s.mem") * 512))
	((size == 256 << 20)) || e2e_fail "snapshot" "memory file is $size bytes, not 256 MiB"
	((alloc < size / 2)) || e2e_fail "snapshot" "memory file is not sparse ($alloc of $size bytes allocated)"
	echo "memory file: $((alloc >> 20)) MiB allocated of $((size >> 20)) MiB"
	"$fvmctl" stop orig >/dev/null || e2e_fail "stop" "fvmctl stop failed"

	"$fvmctl" restore --resume copy "$FVM_RUNTIME_DIR/s.state" "$FVM_RUNTIME_DIR/s.mem" >/dev/null ||
		e2e_fail "restore" "fvmctl restore failed"
	wait_ticks copy 2 "restored guest runs"
	grep -q "$E2E_READY" "$FVM_RUNTIME_DIR/copy.log" &&
		e2e_fail "restore" "the restored guest booted again"
	first=$(ticks copy | head -n 1)
	[[ $first == "tick $((snap_tick + 1)) "* ]] ||
		e2e_fail "restore" "expected the first tick after restore to be $((snap_tick + 1)), got '$first'"
	ticks copy | tail -n 1 | grep -q ' ged=1$' ||
		e2e_fail "restore" "the restored guest saw no VM generation ID change: $(ticks copy | tail -n 1)"
	"$fvmctl" stop copy >/dev/null || e2e_fail "stop" "fvmctl stop failed"
	echo "PASS: snapshot at tick $snap_tick, restored in a new process, went on with '$first'"
}

if [[ ${1:-} == --inner ]]; then
	shift
	inner "$@"
else
	(($# == 2)) || { echo "usage: $0 FVM FVMCTL" >&2; exit 2; }
	outer "$@"
fi
