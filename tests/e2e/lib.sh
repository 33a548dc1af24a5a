# shellcheck shell=bash
# Helpers shared by the e2e tests and the benchmarks that boot real Linux
# guests. Source it; it expects `set -euo pipefail`.
#
# Outside (on the machine): find prerequisites, build the guest kernel and
# root file systems, hand a command to emuhost.sh.
# Inside (wherever /dev/kvm works): run a VMM bounded in time, capture the
# guest's console and the VMM's stderr, check marker lines precisely.

e2e_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
e2e_src=$(cd "$e2e_dir/../.." && pwd)
e2e_name=${E2E_NAME:-$(basename "$0" .sh)}

# Markers printed by guest/init.
E2E_READY="fvm-guest: ready"
E2E_EXIT_PREFIX="fvm-guest: exit="

e2e_log() { echo "$e2e_name: $*" >&2; }

# A prerequisite is missing: skip locally (77), fail in CI.
e2e_unavailable() {
	e2e_log "cannot run: $*"
	[[ ${CI:-} == true ]] && exit 1
	exit 77
}

# A test failed: say in which stage, exit 1.
e2e_fail() {
	local stage=$1
	shift
	echo "FAIL [$stage]: $*"
	exit 1
}

# Exits 77 (or 1 in CI) unless emuhost.sh can run a command somewhere.
e2e_check_host() {
	local rc=0 mode
	mode=$("$e2e_dir/emuhost.sh" --check) || rc=$?
	((rc == 0)) || exit "$rc"
	e2e_log "kvm host: $mode"
}

e2e_check_fvm() {
	local fvm=$1
	[[ -x $fvm ]] || e2e_unavailable "fvm executable $fvm not built"
}

# Sets kernel_dir and guest_dir (both cached, built on first use).
# shellcheck disable=SC2034 # for the caller
e2e_build_guest() {
	kernel_dir=$("$e2e_src/guest-kernel-config/build-kernel.sh") ||
		e2e_fail "guest kernel build" "guest-kernel-config/build-kernel.sh failed"
	guest_dir=$("$e2e_src/guest/build-rootfs.sh") ||
		e2e_fail "guest rootfs build" "guest/build-rootfs.sh failed"
}

# Kernel command line for a test guest that runs the shell command $1.
# No acpi=off: fvm describes the machine in ACPI.
e2e_guest_cmdline() {
	local run
	run=$(printf '%s' "$1" | base64 -w0)
	echo "console=ttyS0 reboot=k panic=1 quiet fvm.run=$run"
}

# --- inside the kvm host ---

# Runs a VMM with a time bound: e2e_run_vmm OUTDIR SECONDS CMD [ARG]...
# Leaves OUTDIR/console (stdout, \r stripped), OUTDIR/stderr and
# OUTDIR/status (the exit status; 124 when it timed out).
e2e_run_vmm() {
	local out=$1 secs=$2 rc=0
	shift 2
	mkdir -p "$out"
	timeout -s KILL "$secs" "$@" </dev/null >"$out/console.raw" 2>"$out/stderr" || rc=$?
	tr -d '\r' <"$out/console.raw" >"$out/console"
	# timeout -s KILL (busybox's and coreutils') reports the kill as 137.
	if ((rc == 137)); then rc=124; fi
	echo "$rc" >"$out/status"
}

# Shows what a VMM run left, for the log of a failed or passed test.
e2e_show_run() {
	local out=$1
	echo "--- guest console ---"
	sed 's/^/  | /' "$out/console"
	echo "--- vmm stderr ---"
	sed 's/^/  ! /' "$out/stderr"
	echo "--- vmm exit status: $(cat "$out/status") ---"
}

# True when the console has a line exactly equal to $2.
e2e_has_line() {
	grep -qxF -- "$2" "$1/console"
}

# The usual verdict for a guest that ran a command: the VMM exited 0, the
# guest became ready, the command exited 0, and every further argument is
# a line that must appear exactly on the console. Names the failing stage.
e2e_check_guest_run() {
	local out=$1 vmm=$2 status line
	shift 2
	status=$(cat "$out/status")
	((status != 124)) || e2e_fail "$vmm" "timed out (guest console and stderr above)"
	if ! e2e_has_line "$out" "$E2E_READY"; then
		((status == 0)) || e2e_fail "$vmm" "$vmm exited with status $status before the guest was ready"
		e2e_fail "guest boot" "$vmm exited 0 but the guest never printed '$E2E_READY'"
	fi
	e2e_has_line "$out" "${E2E_EXIT_PREFIX}0" ||
		e2e_fail "guest command" "no '${E2E_EXIT_PREFIX}0' line on the console"
	for line in "$@"; do
		e2e_has_line "$out" "$line" ||
			e2e_fail "guest command" "expected line '$line' not on the console"
	done
	((status == 0)) || e2e_fail "$vmm" "$vmm exited with status $status after the guest finished"
}

# --- VMs driven by fvmctl, inside the kvm host ---

# A runtime directory for fvmctl (FVM_RUNTIME_DIR), with fvm on the PATH
# (fvmctl starts the fvm beside itself or on the PATH); on exit every VM
# in it is killed and the directory removed.
e2e_fvmctl_setup() {
	local fvm=$1
	export FVM_RUNTIME_DIR
	FVM_RUNTIME_DIR=$(mktemp -d)
	PATH=$(dirname "$fvm"):$PATH
	trap e2e_fvmctl_cleanup EXIT
}

e2e_fvmctl_cleanup() {
	local pidfile
	for pidfile in "$FVM_RUNTIME_DIR"/*.pid; do
		[[ -f $pidfile ]] && kill -9 "$(cat "$pidfile")" 2>/dev/null || true
	done
	rm -rf "$FVM_RUNTIME_DIR"
}

# The lines of VM $1's console log matching the extended regex $2.
e2e_vm_lines() {
	tr -d '\r' <"$FVM_RUNTIME_DIR/$1.log" 2>/dev/null | grep -E -- "$2" || true
}

# Wait (30 s at most) until VM $1's console has $3 lines matching $2; else
# show the end of its log and fail, naming stage $4.
e2e_wait_vm_lines() {
	local name=$1 regex=$2 want=$3 stage=$4 i
	for ((i = 0; i < 300; i++)); do
		(($(e2e_vm_lines "$name" "$regex" | wc -l) >= want)) && return 0
		sleep 0.1
	done
	echo "--- $name.log ---"
	tail -n 20 "$FVM_RUNTIME_DIR/$name.log" 2>/dev/null | sed 's/^/  | /'
	e2e_fail "$stage" "$name printed fewer than $want lines matching '$regex'"
}
