#!/bin/bash
# e2e: the serverless path. A Linux template boots with vsock, its agent
# comes up, and it is paused. Then 50 `fvmctl invoke` calls run at once:
# each forks a clone, runs `echo request-<i> $(hostname)` in it and
# destroys it. Every call must print its own request number and the name
# of a distinct clone; afterwards no clone process or clone file is left.
#
#   invoke-linux.sh FVM FVMCTL
set -euo pipefail

# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NR_INVOKES=50
CMDLINE="console=ttyS0 reboot=k panic=1 quiet fvm.exit=wait"

outer() {
	local fvm=$1 fvmctl=$2 self
	e2e_check_fvm "$fvm"
	[[ -x $fvmctl ]] || e2e_unavailable "fvmctl executable $fvmctl not built"
	e2e_check_host
	e2e_build_guest
	self=$(realpath "${BASH_SOURCE[0]}")
	exec "$e2e_dir/emuhost.sh" --timeout 540 \
		--ship "$fvm" --ship "$fvmctl" --ship "$kernel_dir/vmlinux" \
		--ship "$guest_dir/initramfs.cpio.gz" --ship "$self" --ship "$e2e_dir/lib.sh" \
		-- /bin/bash "$self" --inner "$fvm" "$fvmctl" "$kernel_dir/vmlinux" \
		"$guest_dir/initramfs.cpio.gz"
}

inner() {
	local fvm=$1 fvmctl=$2 kernel=$3 initrd=$4 i out rc t0 t1 left
	e2e_fvmctl_setup "$fvm"
	local dir=$FVM_RUNTIME_DIR

	"$fvmctl" run fn --kernel "$kernel" --initrd "$initrd" --mem 256M --cmdline "$CMDLINE" \
		--vsock "cid=3,uds=$dir/fn.vsock" || e2e_fail "fvmctl run" "the template did not start"
	out=$("$fvmctl" exec --timeout 150 fn -- echo warm) || e2e_fail "template agent" "exec failed"
	[[ $out == warm ]] || e2e_fail "template agent" "exec printed '$out'"
	"$fvmctl" pause fn >/dev/null || e2e_fail "pause" "fvmctl pause failed"

	# A single invoke first: its output, its status.
	out=$("$fvmctl" invoke --timeout 60 fn -- sh -c 'echo one; exit 7') && rc=0 || rc=$?
	[[ $out == one && $rc == 7 ]] || e2e_fail "invoke" "printed '$out' with status $rc, expected 'one' and 7"

	t0=${EPOCHREALTIME/./}
	for ((i = 1; i <= NR_INVOKES; i++)); do
		"$fvmctl" invoke --timeout 120 fn -- sh -c "echo request-$i \$(hostname)" \
			>"$dir/invoke-$i.out" 2>"$dir/invoke-$i.err" &
	done
	rc=0
	wait || rc=$?
	t1=${EPOCHREALTIME/./}
	echo "$NR_INVOKES concurrent invokes took $(((t1 - t0) / 1000)) ms"

	declare -A clones=()
	for ((i = 1; i <= NR_INVOKES; i++)); do
		out=$(cat "$dir/invoke-$i.out")
		[[ $out =~ ^request-$i\ (fn-inv-[0-9]+)$ ]] ||
			e2e_fail "invoke $i" "printed '$out' (stderr: $(cat "$dir/invoke-$i.err"))"
		[[ -z ${clones[${BASH_REMATCH[1]}]:-} ]] ||
			e2e_fail "invoke $i" "ran in ${BASH_REMATCH[1]}, like invoke ${clones[${BASH_REMATCH[1]}]}"
		clones[${BASH_REMATCH[1]}]=$i
	done

	# Nothing left behind: no clone processes, sockets, logs or overlays.
	left=$(find "$dir" -name 'fn-inv-*' | head -n 5)
	[[ -z $left ]] || e2e_fail "cleanup" "clone files left: $left"
	out=$("$fvmctl" --json ls)
	grep -q 'fn-inv-' <<<"$out" && e2e_fail "cleanup" "clones still listed: $out"
	"$fvmctl" --json info fn | grep -q '"Paused"' || e2e_fail "template" "the template is not paused any more"
	"$fvmctl" stop fn >/dev/null
	echo "PASS: $NR_INVOKES concurrent invokes, each in its own clone, with the right output, and no clone left"
}

if [[ ${1:-} == --inner ]]; then
	shift
	inner "$@"
else
	(($# == 2)) || { echo "usage: $0 FVM FVMCTL" >&2; exit 2; }
	outer "$@"
fi
