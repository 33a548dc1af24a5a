#!/bin/bash
# Runs a command on a machine with a usable /dev/kvm, for the e2e tests and
# the benchmarks that boot real Linux guests.
#
#   emuhost.sh [--ship PATH]... [--timeout SEC] [--log FILE] -- COMMAND [ARG]...
#   emuhost.sh --check      prints "direct" or "emulated", or why neither
#                           can run (exit 77, or 1 when CI=true)
#   emuhost.sh --prepare    builds the emulated host's cached initramfs
#
# Where /dev/kvm is backed by hardware, COMMAND runs right here. Elsewhere
# (this project's development machines have kvm_pvm, a software hypervisor
# that cannot run a Linux guest at a useful speed) it runs inside an
# emulated KVM host: QEMU TCG with -cpu max (which exposes AMD SVM) boots
# Debian's cloud kernel from an initramfs holding busybox, bash, the kvm
# modules and every --ship PATH, loads kvm-amd, runs COMMAND and powers off.
# A shipped PATH appears inside at the same absolute path, so COMMAND reads
# the same in both modes; an ELF executable brings the libraries ldd lists.
#
# COMMAND's output goes to stdout and its exit status becomes ours. When the
# emulated host itself fails, the message names the stage (test host boot,
# kvm module load, command) and the exit status is 125; a run longer than
# --timeout is killed and fails the same way.
#
# Environment:
#   FVM_E2E_EMULATE=1        always use the emulated host; =0 never
#   FVM_E2E_HOST_KERNEL      emulated host's kernel (default: newest
#                            /boot/vmlinuz-*-cloud-amd64, modules to match)
#   FVM_E2E_HOST_MEM         emulated host's memory (default 4G)
#   FVM_E2E_HOST_CPUS        emulated host's CPUs (default 2)
#   FVM_E2E_SHIP             more paths to ship, separated by ':' (say, a
#                            debugging tool)
#   FVM_CACHE_DIR            cache for the host's base initramfs
#   CI=true                  a missing prerequisite is an error, not a skip
set -euo pipefail

cache_root=${FVM_CACHE_DIR:-$HOME/.cache/fvm}
qemu=${FVM_E2E_QEMU:-qemu-system-x86_64}
busybox=${FVM_BUSYBOX:-/bin/busybox}
host_mem=${FVM_E2E_HOST_MEM:-4G}
host_cpus=${FVM_E2E_HOST_CPUS:-2}
# Modules the emulated host loads, in this order (kvm needs irqbypass); the
# rest serve the network tests (TAPs, veth pairs, stateless NAT with tc) and
# QEMU's vhost-vsock in bench/run invoke.
host_modules=(irqbypass kvm kvm-amd tun veth sch_ingress cls_matchall act_nat
	vsock vmw_vsock_virtio_transport_common vhost_iotlb vhost vhost_vsock)
# Markers between the host's init and us; a nonce keeps a guest's output
# from ever passing for one.
nonce=$RANDOM$RANDOM
marker=@@emuhost-$nonce

timeout_sec=300
log_file=
ships=()
tmp=
staging=
base_cpio=
qemu_pid=

log() { echo "emuhost: $*" >&2; }

# A prerequisite is missing: skip (77), but never silently in CI.
unavailable() {
	log "cannot run: $*"
	[[ ${CI:-} == true ]] && exit 1
	exit 77
}

# Infrastructure failure: name the stage, show the end of the console log.
stage_failed() {
	local stage=$1
	shift
	log "stage '$stage' failed: $*"
	if [[ -n $tmp && -s $tmp/console.log ]]; then
		log "last lines of the emulated host's console:"
		tr -d '\r' <"$tmp/console.log" | tail -n 40 | sed 's/^/  | /' >&2
	fi
	exit 125
}

usage() {
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
}

# "direct" when /dev/kvm is backed by hardware virtualization.
kvm_is_hardware() {
	[[ -c /dev/kvm && -w /dev/kvm ]] || return 1
	[[ ! -d /sys/module/kvm_pvm ]] || return 1
	grep -qwE 'vmx|svm' /proc/cpuinfo
}

choose_mode() {
	case ${FVM_E2E_EMULATE:-} in
	1) echo emulated ;;
	0) echo direct ;;
	*) if kvm_is_hardware; then echo direct; else echo emulated; fi ;;
	esac
}

host_kernel() {
	local k=${FVM_E2E_HOST_KERNEL:-}
	if [[ -z $k ]]; then
		k=$(find /boot -maxdepth 1 -name 'vmlinuz-*-cloud-amd64' 2>/dev/null | sort -V | tail -n1)
	fi
	echo "$k"
}

host_kernel_version() {
	basename "$1" | sed 's/^vmlinuz-//'
}

check_emulation_prereqs() {
	local k kver m
	command -v "$qemu" >/dev/null ||
		unavailable "$qemu not found (apt-get install qemu-system-x86)"
	command -v cpio >/dev/null || unavailable "cpio not found (apt-get install cpio)"
	if [[ ! -x $busybox ]] || ldd "$busybox" >/dev/null 2>&1; then
		unavailable "static $busybox not found (apt-get install busybox-static)"
	fi
	k=$(host_kernel)
	[[ -n $k && -r $k ]] ||
		unavailable "no emulated-host kernel /boot/vmlinuz-*-cloud-amd64 (apt-get install linux-image-cloud-amd64)"
	kver=$(host_kernel_version "$k")
	for m in "${host_modules[@]}"; do
		modinfo -k "$kver" -n "$m" >/dev/null 2>&1 ||
			unavailable "module $m for $kver not found (apt-get install kmod linux-image-cloud-amd64)"
	done
}

check_direct_prereqs() {
	[[ -c /dev/kvm && -w /dev/kvm ]] || unavailable "/dev/kvm is missing or not writable"
}

# Copies PATH (a file or a directory) to the same path under dest; an ELF
# executable or library also brings its dynamic dependencies and loader.
# Parent directories are created as directories even where the machine has
# symlinks (/lib -> usr/lib): the host's tree only needs the paths to work.
ship_path() {
	local path=$1 dest=$2 lib
	[[ -e $path ]] || stage_failed "prepare" "--ship $path: no such file"
	path=$(realpath -s "$path")
	mkdir -p "$dest$(dirname "$path")"
	if [[ -d $path ]]; then
		cp -aL "$path" "$dest$(dirname "$path")/"
		return 0
	fi
	cp -L "$path" "$dest$path"
	# ldd lines: "libx.so => /lib/.../libx.so (0x...)" and
	# "/lib64/ld-linux-x86-64.so.2 (0x...)".
	for lib in $(ldd "$path" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
		[[ -e $dest$lib ]] && continue
		mkdir -p "$dest$(dirname "$lib")"
		cp -L "$lib" "$dest$lib"
	done
}

# The host's own init. Loads the kvm modules and runs COMMAND (from
# /emuhost/cmd), announcing each stage with the run's marker (from
# /emuhost/marker, in the per-run archive).
write_host_init() {
	cat >"$1" <<'EOF'
#!/bin/sh
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH HOME=/root TMPDIR=/tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /tmp /run
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
marker=$(cat /emuhost/marker)
echo "$marker:booted"

fail() {
	echo "$marker:failed $1"
	dmesg | tail -n 30
	stty -F /dev/console onlcr 2>/dev/null
	poweroff -f
}

for m in $(cat /emuhost/modules); do
	insmod "$m" || fail "insmod $m"
done
[ -c /dev/kvm ] || fail "no /dev/kvm after loading the modules"
echo "$marker:kvm-ready"

cd /
/bin/bash /emuhost/cmd </dev/null
rc=$?
# The command's last line may lack its newline.
echo
echo "$marker:end rc=$rc"
# Drain the console before powering off (tcsetattr TCSADRAIN).
stty -F /dev/console onlcr 2>/dev/null
poweroff -f
EOF
	chmod 0755 "$1"
}

# Base initramfs: busybox, bash, the kvm modules, init. Cached, keyed by the
# host kernel, busybox, bash and the functions that build it; uncompressed, because the emulated CPU
# unpacks plain cpio much faster than it inflates gzip. Sets base_cpio.
base_initramfs() {
	local k=$1 kver key dir
	kver=$(host_kernel_version "$k")
	key=$({
		declare -f write_host_init build_base ship_path make_cpio
		echo "${host_modules[*]} $k $kver"
		sha256sum <"$busybox"
		sha256sum </bin/bash
	} | sha256sum | cut -c1-16)
	dir=$cache_root/emuhost-$key
	base_cpio=$dir/base.cpio
	[[ -f $base_cpio ]] && return 0

	mkdir -p "$cache_root"
	exec 8>"$cache_root/emuhost-$key.lock"
	flock 8
	if [[ ! -f $base_cpio ]]; then
		staging=$(mktemp -d "$cache_root/.emuhost-$key.XXXXXX")
		build_base "$kver" "$staging"
		rm -rf "$dir"
		mv -T "$staging/out" "$dir"
		rm -rf "$staging"
		staging=
	fi
	exec 8>&-
}

build_base() {
	local kver=$1 stage=$2 m path name applet
	mkdir -p "$stage"/root/{bin,sbin,dev,proc,sys,tmp,run,root,emuhost,lib/modules} "$stage/out"
	cp "$busybox" "$stage/root/bin/busybox"
	for applet in $("$busybox" --list); do
		# bash is the real one, shipped below.
		case $applet in busybox | init | linuxrc | bash) continue ;; esac
		ln -sf busybox "$stage/root/bin/$applet"
	done
	ship_path /bin/bash "$stage/root"
	for m in "${host_modules[@]}"; do
		path=$(modinfo -k "$kver" -n "$m")
		name=$(basename "$path")
		name=${name%.xz}
		name=${name%.zst}
		# busybox insmod loads plain .ko files only.
		case $path in
		*.ko) cp "$path" "$stage/root/lib/modules/$name" ;;
		*.ko.xz) xz -dc "$path" >"$stage/root/lib/modules/$name" ;;
		*.ko.zst) zstd -qdc "$path" >"$stage/root/lib/modules/$name" ;;
		*) stage_failed "prepare" "unknown module format: $path" ;;
		esac
		echo "/lib/modules/$name" >>"$stage/root/emuhost/modules"
	done
	write_host_init "$stage/root/init"
	make_cpio "$stage/root" "$stage/out/base.cpio"
}

make_cpio() {
	(cd "$1" && find . -mindepth 1 | LC_ALL=C sort |
		cpio --quiet -o -H newc -R 0:0) >"$2"
}

# Kernel parameters for the emulated host's clock. Under TCG the guest's TSC
# reads the machine's TSC, but the kernel's calibration against the
# emulated PIT fails now and then, and the boot then hangs; passing the
# frequency skips it. The TSC is as stable as the machine's: tell the kernel
# so, or it falls back to a 4 ms jiffies clock.
host_clock_params() {
	local mhz
	mhz=$(awk -F': *' '/^cpu MHz/ { print $2; exit }' /proc/cpuinfo)
	[[ -n $mhz ]] || return 0
	echo "tsc_early_khz=$(awk -v m="$mhz" 'BEGIN { printf "%d", m * 1000 }') tsc=reliable"
}

# Per-run archive: the marker, the command and every shipped path.
payload_initramfs() {
	local out=$1 root=$tmp/payload path
	shift
	mkdir -p "$root/emuhost"
	echo "$marker" >"$root/emuhost/marker"
	{
		echo "# generated by emuhost.sh"
		printf '%q ' "$@"
		echo
	} >"$root/emuhost/cmd"
	for path in "${ships[@]}"; do
		ship_path "$path" "$root"
	done
	make_cpio "$root" "$out"
}

cleanup() {
	if [[ -n $qemu_pid ]]; then
		kill -TERM "$qemu_pid" 2>/dev/null || true
		wait "$qemu_pid" 2>/dev/null || true
	fi
	[[ -n $tmp ]] && rm -rf "$tmp"
	[[ -n $staging ]] && rm -rf "$staging"
	return 0
}

# Passes the command's lines (between the begin and end markers) to stdout,
# strips the serial console's \r, records stage markers in $tmp/stages.
filter_console() {
	local line printing=0 held_blank=0
	while IFS= read -r line || [[ -n $line ]]; do
		line=${line%$'\r'}
		printf '%s\n' "$line" >>"$tmp/console.log"
		case $line in
		*"$marker:booted"*) echo booted >>"$tmp/stages" ;;
		*"$marker:failed "*) echo "failed ${line#*"$marker:failed "}" >>"$tmp/stages" ;;
		*"$marker:kvm-ready"*)
			echo kvm-ready >>"$tmp/stages"
			printing=1
			;;
		*"$marker:end rc="*)
			# The blank line before the marker is init's own (it ends a
			# last line that may lack its newline): drop it.
			echo "end ${line#*"$marker:end rc="}" >>"$tmp/stages"
			printing=0
			held_blank=0
			;;
		"")
			if ((held_blank)); then echo; fi
			held_blank=$printing
			;;
		*)
			if ((held_blank)); then echo; fi
			held_blank=0
			if ((printing)); then printf '%s\n' "$line"; fi
			;;
		esac
	done
}

run_emulated() {
	local k initrd started rc stages
	check_emulation_prereqs
	k=$(host_kernel)
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/emuhost.XXXXXX")
	trap cleanup EXIT
	trap 'exit 130' INT TERM
	: >"$tmp/stages"
	: >"$tmp/console.log"
	base_initramfs "$k"
	payload_initramfs "$tmp/payload.cpio" "$@"
	initrd=$tmp/initrd.cpio
	cat "$base_cpio" "$tmp/payload.cpio" >"$initrd"

	started=$(date +%s%N)
	# QEMU runs in the background so that cleanup can stop it when we are
	# interrupted; timeout forwards our TERM to it.
	# -no-reboot with panic=-1: a panicking host ends QEMU at once.
	# loglevel=1 keeps kernel messages out of the command's output.
	# mitigations=off: a throwaway test host; spectre mitigations cost
	# about a fifth of its boot under emulation.
	mkfifo "$tmp/console"
	timeout --kill-after=5 "$timeout_sec" "$qemu" \
		-M microvm -accel tcg,thread=multi -cpu max \
		-smp "$host_cpus" -m "$host_mem" \
		-nodefaults -no-user-config -display none -monitor none \
		-serial stdio -no-reboot \
		-kernel "$k" -initrd "$initrd" \
		-append "console=ttyS0 loglevel=1 panic=-1 mitigations=off $(host_clock_params) rdinit=/init" \
		</dev/null >"$tmp/console" 2>"$tmp/qemu.err" &
	qemu_pid=$!
	filter_console <"$tmp/console"
	rc=0
	wait "$qemu_pid" || rc=$?
	qemu_pid=
	log "emulated host ran $(( ($(date +%s%N) - started) / 1000000 )) ms"
	[[ -n $log_file ]] && cp "$tmp/console.log" "$log_file"

	stages=$(cat "$tmp/stages")
	if ((rc == 124 || rc == 137)); then
		case $stages in
		*kvm-ready*) stage_failed "command" "timed out after ${timeout_sec}s" ;;
		*booted*) stage_failed "kvm module load" "timed out after ${timeout_sec}s" ;;
		*) stage_failed "test host boot" "timed out after ${timeout_sec}s" ;;
		esac
	fi
	if ((rc != 0)); then
		[[ -s $tmp/qemu.err ]] && sed 's/^/  qemu: /' "$tmp/qemu.err" >&2
		stage_failed "test host boot" "$qemu exited with status $rc"
	fi
	case $stages in
	*"end "*) return "$(sed -n 's/^end //p' "$tmp/stages" | tail -n1)" ;;
	*failed*) stage_failed "kvm module load" "$(sed -n 's/^failed //p' "$tmp/stages")" ;;
	*kvm-ready*) stage_failed "command" "the host powered off before the command finished" ;;
	*booted*) stage_failed "kvm module load" "the host powered off while loading modules" ;;
	*) stage_failed "test host boot" "the host's init never started" ;;
	esac
}

run_direct() {
	check_direct_prereqs
	local rc=0
	timeout --kill-after=5 "$timeout_sec" "$@" </dev/null || rc=$?
	((rc == 124 || rc == 137)) && { log "command timed out after ${timeout_sec}s"; exit 125; }
	return "$rc"
}

main() {
	local mode extra
	while (($#)); do
		case $1 in
		--ship) ships+=("$2"); shift 2 ;;
		--timeout) timeout_sec=$2; shift 2 ;;
		--log) log_file=$2; shift 2 ;;
		--prepare)
			if [[ $(choose_mode) == emulated ]]; then
				check_emulation_prereqs
				base_initramfs "$(host_kernel)"
				log "host initramfs: $base_cpio"
			fi
			exit 0
			;;
		--check)
			mode=$(choose_mode)
			if [[ $mode == emulated ]]; then check_emulation_prereqs; else check_direct_prereqs; fi
			echo "$mode"
			exit 0
			;;
		--) shift; break ;;
		-h | --help) usage ;;
		*) usage ;;
		esac
	done
	(($#)) || usage
	if [[ -n ${FVM_E2E_SHIP:-} ]]; then
		IFS=: read -r -a extra <<<"$FVM_E2E_SHIP"
		ships+=("${extra[@]}")
	fi
	mode=$(choose_mode)
	if [[ $mode == direct ]]; then
		run_direct "$@"
	else
		run_emulated "$@"
	fi
}

main "$@"
