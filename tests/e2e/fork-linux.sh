#!/bin/bash
# e2e: fork a running Linux guest. A template boots the project's kernel;
# its init prints a line every 0.3 s with 8 fresh bytes from /dev/urandom
# and the count of its Generic Event Device interrupts. fvmctl forks 10
# clones, paused; one at a time (the emulated host has two CPUs), each is
# resumed and must go on printing (it continues the template's run: no
# second boot), must see exactly one GED interrupt (the VM
# generation ID changed), and the first random bytes it prints after that
# must differ from every other clone's (the guest kernel reseeded its RNG;
# without the new generation ID the clones print identical bytes). The
# template, forked while running, runs on (on memory its clones do not
# share), and it can be forked again.
#
#   fork-linux.sh FVM FVMCTL
set -euo pipefail

# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# One line per tick: "tick N RANDOMHEX ged=COUNT". Fresh bytes every time.
guest_command='i=0; while :; do i=$((i+1)); set -- $(od -An -N8 -tx1 /dev/urandom); hex="$1$2$3$4$5$6$7$8"; set -- $(grep Ged /proc/interrupts); echo "tick $i $hex ged=$2"; sleep 0.3; done'
NR_CLONES=10

outer() {
	local fvm=$1 fvmctl=$2 self
	e2e_check_fvm "$fvm"
	[[ -x $fvmctl ]] || e2e_unavailable "fvmctl executable $fvmctl not built"
	e2e_check_host
	e2e_build_guest
	self=$(realpath "${BASH_SOURCE[0]}")
	exec "$e2e_dir/emuhost.sh" --timeout 400 \
		--ship "$fvm" --ship "$fvmctl" --ship "$kernel_dir/vmlinux" \
		--ship "$guest_dir/initramfs.cpio.gz" --ship "$self" --ship "$e2e_dir/lib.sh" \
		-- /bin/bash "$self" --inner "$fvm" "$fvmctl" "$kernel_dir/vmlinux" \
		"$guest_dir/initramfs.cpio.gz"
}

TICK='^tick [0-9]+ [0-9a-f]{16} ged=[0-9]+$'

ticks() {
	e2e_vm_lines "$1" "$TICK"
}

# Ticks printed once the VM had seen $2 GED interrupts.
ticks_after_ged() {
	ticks "$1" | grep -E " ged=$2\$" || true
}

wait_ticks() {
	e2e_wait_vm_lines "$1" "$TICK" "$2" "$3"
}

inner() {
	local fvm=$1 fvmctl=$2 kernel=$3 initrd=$4 t0 t1 before n name first
	e2e_fvmctl_setup "$fvm"

	"$fvmctl" run tpl --kernel "$kernel" --initrd "$initrd" --mem 256M \
		--cmdline "$(e2e_guest_cmdline "$guest_command")" ||
		e2e_fail "fvmctl run" "the template did not start"
	wait_ticks tpl 3 "template boot"

	# bash's clock: busybox date has no %N.
	t0=${EPOCHREALTIME/./}
	"$fvmctl" --json fork --paused tpl "$NR_CLONES" >"$FVM_RUNTIME_DIR/fork.json" ||
		e2e_fail "fork" "fvmctl fork failed: $(cat "$FVM_RUNTIME_DIR/fork.json")"
	t1=${EPOCHREALTIME/./}
	echo "forked $NR_CLONES clones in $(((t1 - t0) / 1000)) ms (fvmctl round trip)"
	before=$(ticks tpl | wc -l)

	declare -A seen=()
	for ((n = 1; n <= NR_CLONES; n++)); do
		name=tpl-$n
		[[ -S $FVM_RUNTIME_DIR/$name.sock ]] || e2e_fail "fork" "no API socket for $name"
		"$fvmctl" --json info "$name" | grep -q '"Paused"' ||
			e2e_fail "clone $name" "a clone forked with --paused is not paused"
		"$fvmctl" resume "$name" >/dev/null || e2e_fail "clone $name" "fvmctl resume failed"
		# The clone's log holds only what it printed after the fork.
		wait_ticks "$name" 4 "clone $name runs"
		grep -q "$E2E_READY" "$FVM_RUNTIME_DIR/$name.log" &&
			e2e_fail "clone $name" "the clone booted again instead of continuing"
		ticks "$name" | grep -qvE ' ged=[01]$' &&
			e2e_fail "clone $name" "more than one generation-ID interrupt: $(ticks "$name" | tail -n 1)"
		# The reseed runs deferred (threaded IRQ, then ACPI notify work):
		# judge the bytes printed once the interrupt has been counted.
		first=$(ticks_after_ged "$name" 1 | sed -n 2p | cut -d' ' -f3)
		[[ -n $first ]] || e2e_fail "clone $name" "no generation-ID interrupt seen: $(ticks "$name" | tail -n 1)"
		[[ -z ${seen[$first]:-} ]] ||
			e2e_fail "clone entropy" "$name and ${seen[$first]} printed the same random bytes $first"
		seen[$first]=$name
		echo "$name: $(ticks_after_ged "$name" 1 | sed -n 2p)"
		# Verified: stop it, so the emulated host's two CPUs go to the rest.
		"$fvmctl" stop "$name" >/dev/null || e2e_fail "stop" "fvmctl stop $name failed"
	done

	"$fvmctl" --json info tpl | grep -q '"Running"' || e2e_fail "template" "the template does not run on after the fork"
	wait_ticks tpl $((before + 2)) "template runs on after the fork"

	"$fvmctl" fork tpl 2 >/dev/null || e2e_fail "second fork" "fvmctl fork failed"
	for name in "tpl-$((NR_CLONES + 1))" "tpl-$((NR_CLONES + 2))"; do
		wait_ticks "$name" 2 "second-generation clone $name runs"
	done
	for ((n = NR_CLONES + 1; n <= NR_CLONES + 2; n++)); do
		"$fvmctl" stop "tpl-$n" >/dev/null || e2e_fail "stop" "fvmctl stop tpl-$n failed"
	done
	"$fvmctl" stop tpl >/dev/null || e2e_fail "stop" "fvmctl stop tpl failed"
	echo "PASS: $NR_CLONES clones of a running Linux guest continued it, each with its own random bytes; the template ran on and forked again"
}

if [[ ${1:-} == --inner ]]; then
	shift
	inner "$@"
else
	(($# == 2)) || { echo "usage: $0 FVM FVMCTL" >&2; exit 2; }
	outer "$@"
fi
