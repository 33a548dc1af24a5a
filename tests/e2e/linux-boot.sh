#!/bin/bash
# e2e: fvm boots a real Linux guest from an initramfs with 2 vCPUs; the
# guest reports its CPU count and powers off; fvm must exit 0.
#
#   linux-boot.sh FVM bzimage|vmlinux|distro [poweroff|reboot]
#     bzimage  the project's kernel, bzImage (16-bit boot protocol header)
#     vmlinux  the project's kernel as an ELF, entered in 64-bit mode
#     distro   Debian's cloud kernel with its virtio modules in the initramfs
#     poweroff the guest ends with poweroff -f (default), through ACPI
#     reboot   the guest ends with reboot -f (reboot=k: the i8042 reset line)
#
# Runs itself again (with --inner) inside the kvm host from emuhost.sh.
set -euo pipefail

# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The guest's command prints one line that says all we check.
# shellcheck disable=SC2016 # expanded by the guest's shell
guest_command='echo "nproc=$(nproc)"'
expected_line="nproc=2"

usage() {
	echo "usage: $0 FVM bzimage|vmlinux|distro [poweroff|reboot]" >&2
	exit 2
}

outer() {
	local fvm=$1 image=$2 ending=${3:-poweroff} kernel initrd self
	[[ $image =~ ^(bzimage|vmlinux|distro)$ && $ending =~ ^(poweroff|reboot)$ ]] || usage
	e2e_check_fvm "$fvm"
	e2e_check_host
	e2e_build_guest
	case $image in
	bzimage) kernel=$kernel_dir/bzImage initrd=$guest_dir/initramfs.cpio.gz ;;
	vmlinux) kernel=$kernel_dir/vmlinux initrd=$guest_dir/initramfs.cpio.gz ;;
	distro)
		[[ -f $guest_dir/distro-kernel ]] ||
			e2e_unavailable "no Debian cloud kernel (apt-get install linux-image-cloud-amd64)"
		kernel=$(cat "$guest_dir/distro-kernel")
		initrd=$guest_dir/initramfs-distro.cpio.gz
		;;
	esac
	self=$(realpath "${BASH_SOURCE[0]}")
	e2e_log "kernel $kernel, initrd $initrd"
	exec "$e2e_dir/emuhost.sh" --timeout 300 \
		--ship "$fvm" --ship "$kernel" --ship "$initrd" \
		--ship "$self" --ship "$e2e_dir/lib.sh" \
		-- /bin/bash "$self" --inner "$fvm" "$kernel" "$initrd" "$ending"
}

inner() {
	local fvm=$1 kernel=$2 initrd=$3 ending=$4 out
	out=$(mktemp -d)
	# shellcheck disable=SC2064 # expand $out now: it is local
	trap "rm -rf '$out'" EXIT
	e2e_run_vmm "$out" 180 "$fvm" --kernel "$kernel" --initrd "$initrd" \
		--vcpus 2 --mem 256M --cmdline "$(e2e_guest_cmdline "$guest_command") fvm.exit=$ending"
	e2e_show_run "$out"
	e2e_check_guest_run "$out" fvm "$expected_line"
	echo "PASS: $(basename "$kernel") booted to '$E2E_READY', guest saw 2 CPUs, $ending, fvm exited 0"
}

if [[ ${1:-} == --inner ]]; then
	shift
	inner "$@"
else
	(($# == 2 || $# == 3)) || usage
	outer "$@"
fi
