#!/bin/bash
# e2e: clones' disks diverge. A Linux template mounts an ext4 data disk
# (a qcow2 overlay over a raw base) and writes one small file per tick,
# named after fresh random bytes. fvmctl forks 2 clones, which go on
# writing on their own overlays. Once every VM is stopped, each image is
# read on the host (qemu-img convert, debugfs): every clone's image has
# a clean file system (after journal replay) holding the template's
# files from before the fork plus files only it wrote, no
# clone's image has a sibling's files, the template's image has none of
# the clones' files, and the raw base is untouched.
#
#   fork-disk.sh FVM FVMCTL
set -euo pipefail

# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

guest_command='mkdir -p /mnt; mount /dev/vda /mnt || exit 1; i=0; while :; do i=$((i+1)); set -- $(od -An -N6 -tx1 /dev/urandom); f=f-$1$2$3$4$5$6; echo $i > /mnt/$f; sync; echo "wrote $i $f"; sleep 0.3; done'

outer() {
	local fvm=$1 fvmctl=$2 self qemu_img debugfs
	e2e_check_fvm "$fvm"
	[[ -x $fvmctl ]] || e2e_unavailable "fvmctl executable $fvmctl not built"
	qemu_img=$(command -v qemu-img) || e2e_unavailable "qemu-img not installed"
	debugfs=$(command -v debugfs || echo /usr/sbin/debugfs)
	e2fsck=$(command -v e2fsck || echo /usr/sbin/e2fsck)
	[[ -x $debugfs ]] || e2e_unavailable "debugfs not installed (e2fsprogs)"
	e2e_check_host
	e2e_build_guest
	self=$(realpath "${BASH_SOURCE[0]}")
	exec "$e2e_dir/emuhost.sh" --timeout 400 \
		--ship "$fvm" --ship "$fvmctl" --ship "$kernel_dir/vmlinux" --ship "$qemu_img" \
		--ship "$debugfs" --ship "$e2fsck" --ship "$guest_dir/initramfs.cpio.gz" --ship "$guest_dir/rootfs.ext4" \
		--ship "$self" --ship "$e2e_dir/lib.sh" \
		-- /bin/bash "$self" --inner "$fvm" "$fvmctl" "$kernel_dir/vmlinux" \
		"$guest_dir/initramfs.cpio.gz" "$guest_dir/rootfs.ext4" "$qemu_img" "$debugfs" "$e2fsck"
}

WROTE='^wrote [0-9]+ f-[0-9a-f]+$'

# The names of the files VM $1 says it wrote.
written() {
	e2e_vm_lines "$1" "$WROTE" | cut -d' ' -f3
}

wait_written() {
	e2e_wait_vm_lines "$1" "$WROTE" "$2" "$3"
}

# The files in the root directory of an image (qcow2 or raw), one per line.
# The VMs were stopped while writing, so the journal is replayed first, as
# a mount would (e2fsck -fy); errors it cannot correct (status 4 and up)
# fail the test.
image_files() {
	local image=$1 raw=$FVM_RUNTIME_DIR/convert.raw rc=0
	"$qemu_img" convert -O raw "$image" "$raw" || e2e_fail "inspect" "qemu-img convert $image failed"
	"$e2fsck" -fy "$raw" >"$FVM_RUNTIME_DIR/fsck.out" 2>&1 || rc=$?
	if ((rc >= 4)); then
		sed 's/^/  % /' "$FVM_RUNTIME_DIR/fsck.out" >&2
		e2e_fail "inspect" "the file system in $image has errors e2fsck cannot correct (status $rc)"
	fi
	"$debugfs" -R 'ls -p /' "$raw" 2>/dev/null | awk -F/ '$6 ~ /^f-/ { print $6 }' | sort
	rm -f "$raw"
}

# Lines of $2 that are not lines of $1 (busybox has no comm, and the
# emulated host no /dev/fd for process substitution).
minus() {
	printf '%s\n' "$1" >"$FVM_RUNTIME_DIR/patterns"
	grep -vxF -f "$FVM_RUNTIME_DIR/patterns" <<<"$2" || true
}

# Lines of $2 that are also lines of $1.
common() {
	[[ -n $1 ]] || return 0
	printf '%s\n' "$1" >"$FVM_RUNTIME_DIR/patterns"
	grep -xF -f "$FVM_RUNTIME_DIR/patterns" <<<"$2" || true
}

inner() {
	local fvm=$1 fvmctl=$2 kernel=$3 initrd=$4 rootfs=$5 base sum_before
	qemu_img=$6 debugfs=$7 e2fsck=$8
	e2e_fvmctl_setup "$fvm"
	base=$FVM_RUNTIME_DIR/base.raw
	cp "$rootfs" "$base"
	sum_before=$(sha256sum "$base" | cut -d' ' -f1)

	"$fvmctl" run tpl --kernel "$kernel" --initrd "$initrd" --mem 256M \
		--drive "path=$base,overlay=$FVM_RUNTIME_DIR/tpl.qcow2,id=data" \
		--cmdline "$(e2e_guest_cmdline "$guest_command")" >/dev/null ||
		e2e_fail "fvmctl run" "the template did not start"
	wait_written tpl 2 "template writes"
	"$fvmctl" pause tpl >/dev/null
	"$fvmctl" fork tpl 2 >/dev/null || e2e_fail "fork" "fvmctl fork failed"
	for name in tpl-1 tpl-2; do
		wait_written "$name" 3 "clone $name writes"
	done
	for name in tpl-1 tpl-2 tpl; do
		"$fvmctl" stop "$name" >/dev/null || e2e_fail "stop" "fvmctl stop $name failed"
	done

	local tpl_files c1 c2 own1 own2
	tpl_files=$(image_files "$FVM_RUNTIME_DIR/tpl.qcow2")
	c1=$(image_files "$FVM_RUNTIME_DIR/tpl-1-data.qcow2")
	c2=$(image_files "$FVM_RUNTIME_DIR/tpl-2-data.qcow2")
	(($(wc -l <<<"$tpl_files") >= 2)) || e2e_fail "template image" "expected the template's files, got: $tpl_files"
	own1=$(minus "$tpl_files" "$c1")
	own2=$(minus "$tpl_files" "$c2")
	echo "template: $(wc -l <<<"$tpl_files") files; tpl-1: +$(wc -w <<<"$own1"); tpl-2: +$(wc -w <<<"$own2")"
	[[ -z $(minus "$c1" "$tpl_files") && -z $(minus "$c2" "$tpl_files") ]] ||
		e2e_fail "clone images" "a clone lost files the template wrote before the fork"
	(($(wc -w <<<"$own1") >= 2 && $(wc -w <<<"$own2") >= 2)) ||
		e2e_fail "clone images" "a clone's own writes are missing from its image"
	[[ -z $(common "$own1" "$own2") ]] ||
		e2e_fail "clone images" "the clones' images share files written after the fork"
	for f in $own1 $own2; do
		written tpl-1 | grep -qx "$f" || written tpl-2 | grep -qx "$f" ||
			e2e_fail "clone images" "$f is in a clone image but no clone wrote it"
	done
	[[ $(sha256sum "$base" | cut -d' ' -f1) == "$sum_before" ]] || e2e_fail "base" "the raw base image changed"
	echo "PASS: the clones' disks diverged from the template's and from each other; the base is unchanged"
}

if [[ ${1:-} == --inner ]]; then
	shift
	inner "$@"
else
	(($# == 2)) || { echo "usage: $0 FVM FVMCTL" >&2; exit 2; }
	outer "$@"
fi
