#!/bin/bash
# Builds the test guest's root file system from busybox-static, guest/init
# and the guest agent (/sbin/fvm-agent, built by meson):
#   initramfs.cpio.gz         for the project's kernel (drivers built in)
#   rootfs.ext4               the same tree as an ext4 image (mke2fs -d, no
#                             root privileges needed)
#   initramfs-distro.cpio.gz  the same tree plus the virtio and vsock modules
#                             of Debian's cloud kernel, loaded by init
#   distro-kernel             a text file: the path of that cloud kernel
# into ${FVM_CACHE_DIR:-$HOME/.cache/fvm}/guest-<hash>/, keyed by a hash of
# the inputs. Built once, race-safe (lock, temporary directory, rename).
# Prints the result directory on stdout.
#
# Environment:
#   FVM_CACHE_DIR              cache root (default $HOME/.cache/fvm)
#   FVM_BUSYBOX                static busybox (default /bin/busybox)
#   FVM_AGENT                  static fvm-agent (default
#                              <repo>/build/guest/fvm-agent: ninja -C build)
#   FVM_DISTRO_KERNEL_VERSION  cloud kernel release (default: newest
#                              /lib/modules/*-cloud-amd64); "none" skips
#                              the distro variant
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache_root=${FVM_CACHE_DIR:-$HOME/.cache/fvm}
busybox=${FVM_BUSYBOX:-/bin/busybox}
agent=${FVM_AGENT:-$(dirname "$here")/build/guest/fvm-agent}
# Drivers a test guest may use, by module name; their dependencies are found
# with modinfo.
distro_modules=(virtio_mmio virtio_blk virtio_net virtio_rng vmw_vsock_virtio_transport)

log() { echo "build-rootfs: $*" >&2; }
die() { log "error: $*"; exit 1; }

check_tools() {
	local tool missing=()
	for tool in cpio gzip mke2fs flock sha256sum; do
		command -v "$tool" >/dev/null || missing+=("$tool")
	done
	((${#missing[@]} == 0)) ||
		die "missing tools: ${missing[*]} (apt-get install cpio gzip e2fsprogs)"
	[[ -x $busybox ]] || die "$busybox not found (apt-get install busybox-static)"
	# A dynamic busybox would need its libraries in the guest.
	if ldd "$busybox" >/dev/null 2>&1; then
		die "$busybox is dynamically linked (apt-get install busybox-static)"
	fi
	[[ -f $agent && -x $agent ]] ||
		die "guest agent $agent not found (build it: ninja -C build; or set FVM_AGENT)"
	if ldd "$agent" >/dev/null 2>&1; then
		die "$agent is dynamically linked (the guest has no libc)"
	fi
}

distro_kernel_version() {
	local v=${FVM_DISTRO_KERNEL_VERSION:-}
	if [[ -z $v ]]; then
		v=$(find /lib/modules -maxdepth 1 -name '*-cloud-amd64' -printf '%f\n' 2>/dev/null |
			sort -V | tail -n1)
	fi
	echo "${v:-none}"
}

# Keyed by what decides the result (not by comments in this script).
cache_key() {
	{
		declare -f build make_tree cpio_entry make_cpio make_ext4 resolve_module add_distro_modules
		echo "${distro_modules[*]}"
		cat "$here/init"
		sha256sum <"$busybox"
		sha256sum <"$agent"
		distro_kernel_version
	} | sha256sum | cut -c1-16
}

is_complete() {
	[[ -f $1/initramfs.cpio.gz && -f $1/rootfs.ext4 ]]
}

# The common tree: busybox with one symlink per applet, our init both as
# /init (initramfs) and /sbin/init (ext4 root), and the agent.
make_tree() {
	local root=$1 applet
	mkdir -p "$root"/{bin,sbin,etc/fvm,proc,sys,dev,tmp,run,root,lib/modules}
	cp "$busybox" "$root/bin/busybox"
	for applet in $("$busybox" --list); do
		case $applet in busybox | init | linuxrc) continue ;; esac
		ln -sf busybox "$root/bin/$applet"
	done
	install -m 0755 "$here/init" "$root/init"
	install -m 0755 "$agent" "$root/sbin/fvm-agent"
	ln -s ../init "$root/sbin/init"
	echo "root:x:0:0:root:/root:/bin/sh" >"$root/etc/passwd"
	echo "root:x:0:" >"$root/etc/group"
}

# One newc cpio entry, written by hand because a device node cannot be put
# into a staging directory without root. Fields: ino mode uid gid nlink
# mtime filesize devmajor devminor rdevmajor rdevminor namesize check.
cpio_entry() {
	local name=$1 mode=$2 rmajor=$3 rminor=$4 header
	header=$(printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
		0 "$mode" 0 0 1 0 0 0 0 "$rmajor" "$rminor" $((${#name} + 1)) 0)
	printf '%s%s\0' "$header" "$name"
	# Header (110 bytes) plus name plus NUL, padded to a multiple of 4.
	head -c $(((4 - (110 + ${#name} + 1) % 4) % 4)) /dev/zero
}

# The tree as a gzip'd newc archive, with /dev/console appended so that the
# kernel can open init's stdin/stdout before /dev is mounted. The kernel
# unpacks concatenated archives in order.
make_cpio() {
	local root=$1 out=$2
	{
		(cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
			cpio --quiet -o -H newc -R 0:0)
		cpio_entry dev/console $((0020000 | 0600)) 5 1
		cpio_entry TRAILER!!! 0 0 0
	} | gzip -9 >"$out"
}

make_ext4() {
	local root=$1 out=$2
	# An existing file keeps mke2fs from announcing that it creates one.
	truncate -s 32M "$out"
	mke2fs -q -t ext4 -L fvm-root -d "$root" -E root_owner=0:0 "$out" >&2 ||
		die "mke2fs -d failed"
}

# Appends name's dependencies (depth first) and then name to the ordered,
# duplicate-free list in the global array load_order.
resolve_module() {
	local kver=$1 name=$2 dep
	local deps
	[[ " ${load_order[*]-} " == *" $name "* ]] && return 0
	deps=$(modinfo -k "$kver" -F depends "$name") ||
		die "module $name not found for kernel $kver"
	for dep in ${deps//,/ }; do
		resolve_module "$kver" "$dep"
	done
	load_order+=("$name")
}

add_distro_modules() {
	local root=$1 kver=$2 name path dest
	load_order=()
	for name in "${distro_modules[@]}"; do
		resolve_module "$kver" "$name"
	done
	mkdir -p "$root/lib/modules/$kver"
	: >"$root/etc/fvm/modules"
	for name in "${load_order[@]}"; do
		path=$(modinfo -k "$kver" -n "$name")
		dest=/lib/modules/$kver/$(basename "$path")
		# busybox insmod loads plain .ko files only.
		case $path in
		*.ko) cp "$path" "$root$dest" ;;
		*.ko.xz) xz -dc "$path" >"$root${dest%.xz}" && dest=${dest%.xz} ;;
		*.ko.zst) zstd -qdc "$path" >"$root${dest%.zst}" && dest=${dest%.zst} ;;
		*.ko.gz) gzip -dc "$path" >"$root${dest%.gz}" && dest=${dest%.gz} ;;
		*) die "unknown module format: $path" ;;
		esac
		echo "$dest" >>"$root/etc/fvm/modules"
	done
	log "distro modules for $kver: ${load_order[*]}"
}

build() {
	local tmp=$1 kver
	make_tree "$tmp/tree"
	make_cpio "$tmp/tree" "$tmp/out/initramfs.cpio.gz"
	make_ext4 "$tmp/tree" "$tmp/out/rootfs.ext4"

	kver=$(distro_kernel_version)
	if [[ $kver != none ]]; then
		[[ -f /boot/vmlinuz-$kver ]] || die "/boot/vmlinuz-$kver not found"
		cp -a "$tmp/tree" "$tmp/distro"
		add_distro_modules "$tmp/distro" "$kver"
		make_cpio "$tmp/distro" "$tmp/out/initramfs-distro.cpio.gz"
		echo "/boot/vmlinuz-$kver" >"$tmp/out/distro-kernel"
	fi
}

# Builds for other inputs (an older config, another branch) pile up: drop
# those unused for a week. A cache hit touches its directory.
prune_stale() {
	find "$cache_root" -maxdepth 1 -name 'guest-*' -mtime +7 -exec rm -rf {} + 2>/dev/null || true
}

main() {
	local key out tmp
	check_tools
	key=$(cache_key)
	out=$cache_root/guest-$key
	if is_complete "$out"; then
		touch "$out"
		echo "$out"
		return 0
	fi

	mkdir -p "$cache_root"
	exec 9>"$cache_root/guest-$key.lock"
	flock 9
	if is_complete "$out"; then
		echo "$out"
		return 0
	fi

	tmp=$(mktemp -d "$cache_root/.guest-$key.XXXXXX")
	# shellcheck disable=SC2064 # expand $tmp now: it is local
	trap "rm -rf '$tmp'" EXIT
	mkdir -p "$tmp/out"
	build "$tmp"
	rm -rf "$out"
	mv -T "$tmp/out" "$out"
	prune_stale
	log "built $out"
	echo "$out"
}

main "$@"
