#!/bin/bash
# Builds the fvm guest kernel (bzImage and ELF vmlinux) from Debian's
# linux-source-6.1 package: `make tinyconfig`, then microvm.config merged on
# top and resolved with olddefconfig.
#
# The result goes to a cache directory outside the checkout,
#   ${FVM_CACHE_DIR:-$HOME/.cache/fvm}/kernel-<hash>/
# keyed by a hash of the fragment, the build steps and the kernel source version,
# so the kernel is built once per machine and rebuilt whenever one of them
# changes. Concurrent builds are safe: one holds a lock, builds in a temporary
# directory and renames it into place; the others wait and reuse the result.
#
# Prints the result directory on stdout; progress and errors go to stderr.
#
# Environment:
#   FVM_CACHE_DIR        cache root (default $HOME/.cache/fvm)
#   FVM_LINUX_SOURCE     kernel source tarball
#                        (default /usr/src/linux-source-6.1.tar.xz)
#   FVM_KERNEL_JOBS      make -j value (default: number of CPUs)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
fragment=$here/microvm.config
cache_root=${FVM_CACHE_DIR:-$HOME/.cache/fvm}
source_tarball=${FVM_LINUX_SOURCE:-/usr/src/linux-source-6.1.tar.xz}
jobs=${FVM_KERNEL_JOBS:-$(nproc)}

log() { echo "build-kernel: $*" >&2; }
die() { log "error: $*"; exit 1; }

check_tools() {
	local tool missing=()
	for tool in make gcc bc bison flex lz4 tar xz flock sha256sum; do
		command -v "$tool" >/dev/null || missing+=("$tool")
	done
	[[ -f /usr/include/libelf.h ]] || missing+=("libelf-dev")
	[[ -f /usr/include/openssl/ssl.h ]] || missing+=("libssl-dev")
	((${#missing[@]} == 0)) ||
		die "missing build tools: ${missing[*]} (apt-get install build-essential bc bison flex lz4 libelf-dev libssl-dev xz-utils)"
	[[ -r $source_tarball ]] ||
		die "kernel source $source_tarball not found (apt-get install linux-source-6.1, or set FVM_LINUX_SOURCE)"
}

# The package version identifies the source cheaply; a tarball that does not
# come from a package is identified by its content.
source_version() {
	local pkg
	pkg=$(dpkg-query -S "$source_tarball" 2>/dev/null | cut -d: -f1) || true
	if [[ -n $pkg ]]; then
		echo "$pkg $(dpkg-query -W -f '${Version}' "$pkg")"
	else
		sha256sum <"$source_tarball" | cut -d' ' -f1
	fi
}

# Keyed by what decides the result: the fragment, the functions that
# configure and build, the source. Editing a comment here rebuilds nothing.
cache_key() {
	{
		cat "$fragment"
		declare -f build check_config
		source_version
	} | sha256sum | cut -c1-16
}

is_complete() {
	[[ -f $1/bzImage && -f $1/vmlinux && -f $1/config ]]
}

# Every CONFIG_ line of the fragment must appear verbatim in the resolved
# .config; a "# CONFIG_X is not set" line must not have turned into a value.
check_config() {
	local config=$1 line sym bad=0
	while IFS= read -r line; do
		if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)= ]]; then
			grep -qxF -- "$line" "$config" && continue
			log "fragment asks '$line', resolved config has '$(grep -E "^(# )?${BASH_REMATCH[1]}[= ]" "$config" || echo "nothing")'"
			bad=1
		elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set ]]; then
			sym=${BASH_REMATCH[1]}
			grep -qE "^${sym}=" "$config" || continue
			log "fragment disables $sym, resolved config has '$(grep -E "^${sym}=" "$config")'"
			bad=1
		fi
	done <"$fragment"
	((bad == 0)) || die "kernel config does not match microvm.config (missing dependency?)"
}

build() {
	local tmp=$1 src=$1/src started elapsed
	mkdir -p "$src" "$tmp/out"
	log "extracting $source_tarball"
	tar -xf "$source_tarball" -C "$src" --strip-components=1

	log "configuring (tinyconfig + microvm.config)"
	(
		cd "$src"
		make -s tinyconfig
		scripts/kconfig/merge_config.sh -m .config "$fragment"
		make -s olddefconfig
	) >"$tmp/config.log" 2>&1 || {
		tail -n 30 "$tmp/config.log" >&2
		die "kernel configuration failed (log above)"
	}
	check_config "$src/.config"

	log "building bzImage and vmlinux with make -j$jobs (about 5 minutes on 2 CPUs)"
	started=$(date +%s)
	(
		cd "$src"
		# Fixed build identity: the same inputs give the same banner.
		export KBUILD_BUILD_USER=fvm KBUILD_BUILD_HOST=fvm
		make -j"$jobs" bzImage
	) >"$tmp/build.log" 2>&1 || {
		tail -n 40 "$tmp/build.log" >&2
		die "kernel build failed (last lines above)"
	}
	elapsed=$(($(date +%s) - started))

	cp "$src/arch/x86/boot/bzImage" "$src/vmlinux" "$tmp/out/"
	cp "$src/.config" "$tmp/out/config"
	cp "$src/System.map" "$tmp/out/System.map"
	{
		echo "source: $(source_version)"
		echo "build_seconds: $elapsed"
		echo "bzImage_bytes: $(stat -c %s "$tmp/out/bzImage")"
		echo "vmlinux_bytes: $(stat -c %s "$tmp/out/vmlinux")"
	} >"$tmp/out/build-info"
	log "built in ${elapsed}s: bzImage $(stat -c %s "$tmp/out/bzImage") bytes, vmlinux $(stat -c %s "$tmp/out/vmlinux") bytes"
}

# Builds for other inputs (an older config, another branch) pile up: drop
# those unused for a week. A cache hit touches its directory.
prune_stale() {
	find "$cache_root" -maxdepth 1 -name 'kernel-*' -mtime +7 -exec rm -rf {} + 2>/dev/null || true
}

main() {
	local key out tmp
	check_tools
	key=$(cache_key)
	out=$cache_root/kernel-$key
	if is_complete "$out"; then
		touch "$out"
		echo "$out"
		return 0
	fi

	mkdir -p "$cache_root"
	exec 9>"$cache_root/kernel-$key.lock"
	flock 9
	# Another build may have finished while we waited for the lock.
	if is_complete "$out"; then
		echo "$out"
		return 0
	fi

	tmp=$(mktemp -d "$cache_root/.kernel-$key.XXXXXX")
	# shellcheck disable=SC2064 # expand $tmp now: it is local
	trap "rm -rf '$tmp'" EXIT
	build "$tmp"
	# A leftover incomplete directory (a crash between mkdir and rename
	# cannot leave one, but a hand-made one can) would make mv nest into it.
	rm -rf "$out"
	mv -T "$tmp/out" "$out"
	prune_stale
	echo "$out"
}

main "$@"
