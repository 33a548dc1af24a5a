#!/bin/bash
# e2e: virtio-blk under a real Linux guest. The project's kernel boots with
# its ext4 root on a qcow2 overlay over the raw root image, beside a raw
# scratch drive and a read-only drive:
#   run 1  writes a file on the root, makes an ext2 file system on the
#          scratch drive and fills a file there, discards a range of the
#          scratch drive and reads it back as zeros, checks the read-only
#          drive (its content, the kernel's ro flag, a refused write) and
#          the drives' serials (get-id), syncs and reboots;
#   run 2  (a new fvm on the same files) finds both files intact;
# then the base image is byte-identical to before (the overlay took every
# write), `fvmctl disk check` finds the overlay clean, and after `fvmctl
# disk commit` the file is in the base (debugfs reads it).
#
#   disk-qcow2.sh FVM FVMCTL
set -euo pipefail

# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MiB=$((1 << 20))
RO_PATTERN=fvm-read-only-drive

# Run 1: everything the guest checks prints one line we match exactly.
run1_command() {
	local token=$1
	cat <<EOF
set -e
echo "$token" > /persist.txt
mke2fs -q /dev/vdb 16384 >/dev/null
mkdir -p /mnt
mount /dev/vdb /mnt
dd if=/dev/urandom of=/mnt/blob bs=64k count=32 2>/dev/null
sha256sum /mnt/blob > /blob.sum
umount /mnt
dd if=/dev/urandom of=/dev/vdb bs=1M seek=20 count=2 conv=fsync 2>/dev/null
blkdiscard -o $((20 * MiB)) -l $((2 * MiB)) /dev/vdb
echo "discarded-nonzero=\$(dd if=/dev/vdb bs=1M skip=20 count=2 2>/dev/null | tr -d '\\000' | wc -c)"
echo "ro-flag=\$(cat /sys/block/vdc/ro)"
echo "ro-data=\$(head -c ${#RO_PATTERN} /dev/vdc)"
if dd if=/dev/zero of=/dev/vdc bs=512 count=1 conv=fsync 2>/dev/null; then echo ro-write=done; else echo ro-write=refused; fi
echo "serials=\$(cat /sys/block/vda/serial) \$(cat /sys/block/vdb/serial) \$(cat /sys/block/vdc/serial)"
sync
EOF
}

run2_command() {
	cat <<'EOF'
set -e
echo "persisted=$(cat /persist.txt)"
mount /dev/vdb /mnt
sha256sum -c /blob.sum >/dev/null && echo blob=intact
umount /mnt
EOF
}

outer() {
	local fvm=$1 fvmctl=$2 work self
	e2e_check_fvm "$fvm"
	[[ -x $fvmctl ]] || e2e_unavailable "fvmctl executable $fvmctl not built"
	command -v debugfs >/dev/null || e2e_unavailable "debugfs not found (apt-get install e2fsprogs)"
	e2e_check_host
	e2e_build_guest
	work=$(mktemp -d)
	# shellcheck disable=SC2064 # expand $work now
	trap "rm -rf '$work'" EXIT
	cp "$guest_dir/rootfs.ext4" "$work/base.raw"
	truncate -s $((32 * MiB)) "$work/scratch.raw"
	{ printf '%s' "$RO_PATTERN"; head -c $((MiB - ${#RO_PATTERN})) /dev/zero; } >"$work/ro.raw"
	self=$(realpath "${BASH_SOURCE[0]}")
	"$e2e_dir/emuhost.sh" --timeout 480 \
		--ship "$fvm" --ship "$fvmctl" --ship "$kernel_dir/bzImage" --ship "$work" \
		--ship "$(command -v debugfs)" --ship "$self" --ship "$e2e_dir/lib.sh" \
		-- /bin/bash "$self" --inner "$fvm" "$fvmctl" "$kernel_dir/bzImage" "$work"
}

# Boot with the three drives: run_guest OUT COMMAND
run_guest() {
	local out=$1 command=$2
	local cmdline
	cmdline="$(e2e_guest_cmdline "$command") root=/dev/vda rw fvm.exit=reboot"
	e2e_run_vmm "$out" 180 "$fvm" --kernel "$kernel" --mem 256M \
		--drive "path=$work/overlay.qcow2,id=rootdisk,root" \
		--drive "path=$work/scratch.raw,id=scratch" \
		--drive "path=$work/ro.raw,id=readonly,ro" \
		--cmdline "$cmdline"
	e2e_show_run "$out"
}

inner() {
	fvm=$1 fvmctl=$2 kernel=$3 work=$4
	local out token t0 t1 t2
	out=$(mktemp -d)
	token="fvm-e2e-$RANDOM$RANDOM"
	cp "$work/base.raw" "$work/base.orig"
	"$fvmctl" disk create --backing "$work/base.raw" --backing-format raw "$work/overlay.qcow2" ||
		e2e_fail "overlay" "fvmctl disk create failed"

	# bash's clock, in microseconds: busybox date has no %N.
	t0=${EPOCHREALTIME/./}
	run_guest "$out/run1" "$(run1_command "$token")"
	e2e_check_guest_run "$out/run1" fvm "discarded-nonzero=0" "ro-flag=1" \
		"ro-data=$RO_PATTERN" "ro-write=refused" "serials=rootdisk scratch readonly"
	t1=${EPOCHREALTIME/./}

	run_guest "$out/run2" "$(run2_command)"
	e2e_check_guest_run "$out/run2" fvm "persisted=$token" "blob=intact"
	t2=${EPOCHREALTIME/./}

	cmp "$work/base.raw" "$work/base.orig" ||
		e2e_fail "base image" "the base changed under its overlay"
	"$fvmctl" disk check "$work/overlay.qcow2" ||
		e2e_fail "overlay check" "fvmctl disk check found problems in the overlay"
	"$fvmctl" disk commit "$work/overlay.qcow2" || e2e_fail "commit" "fvmctl disk commit failed"
	[[ $(debugfs -R 'cat /persist.txt' "$work/base.raw" 2>/dev/null) == "$token" ]] ||
		e2e_fail "commit" "the file is not in the base image after the commit"
	echo "boots to reboot: first $(((t1 - t0) / 1000)) ms, second $(((t2 - t1) / 1000)) ms"
	echo "PASS: ext4 root on a qcow2 overlay survived a reboot; base unchanged until commit, then holds the file"
}

if [[ ${1:-} == --inner ]]; then
	shift
	inner "$@"
else
	(($# == 2)) || { echo "usage: $0 FVM FVMCTL" >&2; exit 2; }
	outer "$@"
fi
