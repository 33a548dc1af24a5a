#!/bin/bash
# e2e: the guest agent over virtio-vsock. A Linux guest boots with vsock
# and virtio-rng and waits (fvm.exit=wait) while its agent serves. Checked:
#  - exec: stdout, stderr, exit status, stdin, environment, a timeout;
#    the guest's hostname is the VM's name (the identity fvm sent);
#  - virtio-rng is the guest's hardware RNG and gives bytes;
#  - the agent survives garbage and a truncated frame, and serves on;
#  - a guest connection to host port 5000 reaches a listener on
#    <uds>_5000 and gets its answer back, in the VM and in a clone;
#  - the template, paused, forks 10 clones: each answers exec with its
#    own hostname (tpl-N) and distinct random bytes (fvm's entropy reached
#    the guest RNG), over its own vsock socket;
#  - a snapshot of the template restored as a new VM answers exec over a
#    new socket (vsock_override's path), after the transport reset.
#
#   agent-linux.sh FVM FVMCTL VSOCK_PROBE
set -euo pipefail

# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NR_CLONES=10
CMDLINE="console=ttyS0 reboot=k panic=1 quiet fvm.exit=wait"

outer() {
	local fvm=$1 fvmctl=$2 probe=$3 self
	e2e_check_fvm "$fvm"
	[[ -x $fvmctl && -x $probe ]] || e2e_unavailable "fvmctl or vsock-probe not built"
	e2e_check_host
	e2e_build_guest
	self=$(realpath "${BASH_SOURCE[0]}")
	exec "$e2e_dir/emuhost.sh" --timeout 540 \
		--ship "$fvm" --ship "$fvmctl" --ship "$probe" --ship "$kernel_dir/vmlinux" \
		--ship "$guest_dir/initramfs.cpio.gz" --ship "$self" --ship "$e2e_dir/lib.sh" \
		-- /bin/bash "$self" --inner "$fvm" "$fvmctl" "$probe" "$kernel_dir/vmlinux" \
		"$guest_dir/initramfs.cpio.gz"
}

# expect_exec STAGE WANT_STATUS WANT_STDOUT [fvmctl exec args...]
expect_exec() {
	local stage=$1 want_rc=$2 want_out=$3 out rc=0
	shift 3
	out=$("$fvmctl" exec "$@" 2>"$FVM_RUNTIME_DIR/exec.err") || rc=$?
	((rc == want_rc)) ||
		e2e_fail "$stage" "exit status $rc, expected $want_rc (stdout '$out', stderr '$(cat "$FVM_RUNTIME_DIR/exec.err")')"
	[[ $out == "$want_out" ]] || e2e_fail "$stage" "stdout '$out', expected '$want_out'"
}

# guest_to_host VM PATH: the guest's vsock connection to host port 5000
# reaches a listener on PATH, and its answer comes back.
guest_to_host() {
	local vm=$1 path=$2 out
	"$probe" listen "$path" >"$FVM_RUNTIME_DIR/listen.out" 2>&1 &
	for ((i = 0; i < 50; i++)); do [[ -S $path ]] && break; sleep 0.1; done
	out=$("$fvmctl" exec --timeout 30 "$vm" -- sh -c "echo hello-from-$vm | fvm-agent --connect-host 5000") ||
		e2e_fail "guest to host ($vm)" "exec failed: $out $(cat "$FVM_RUNTIME_DIR/listen.out")"
	wait $! || e2e_fail "guest to host ($vm)" "the host listener failed: $(cat "$FVM_RUNTIME_DIR/listen.out")"
	[[ $out == "echo: hello-from-$vm" ]] || e2e_fail "guest to host ($vm)" "the guest got back '$out'"
	echo "$vm: guest-to-host vsock answered '$out'"
}

inner() {
	local fvm=$1 fvmctl=$2 probe=$3 kernel=$4 initrd=$5 n name bytes out t0 t1
	e2e_fvmctl_setup "$fvm"
	local dir=$FVM_RUNTIME_DIR

	"$fvmctl" run tpl --kernel "$kernel" --initrd "$initrd" --mem 256M --cmdline "$CMDLINE" \
		--vsock "cid=3,uds=$dir/tpl.vsock" --rng || e2e_fail "fvmctl run" "the VM did not start"

	# The first exec waits for the boot and the agent's identity.
	t0=${EPOCHREALTIME/./}
	expect_exec "agent identity" 0 tpl --timeout 150 tpl -- hostname
	t1=${EPOCHREALTIME/./}
	echo "boot to the first exec answer: $(((t1 - t0) / 1000)) ms"
	e2e_vm_lines tpl 'fvm-agent: listening' | grep -q . ||
		e2e_fail "agent start" "no 'fvm-agent: listening' line on the console"

	expect_exec "exec stdout and status" 3 out tpl -- sh -c 'echo out; echo err >&2; exit 3'
	grep -qx err "$dir/exec.err" || e2e_fail "exec stderr" "stderr was '$(cat "$dir/exec.err")'"
	out=$(printf 'line one\nline two\n' | "$fvmctl" exec --stdin tpl -- cat) ||
		e2e_fail "exec stdin" "fvmctl exec --stdin failed"
	[[ $out == $'line one\nline two' ]] || e2e_fail "exec stdin" "cat gave back '$out'"
	expect_exec "exec env" 0 "bar baz" -e FOO=bar -e BAR=baz tpl -- sh -c 'echo "$FOO $BAR"'
	expect_exec "exec timeout" 124 "" --timeout 2 tpl -- sleep 30
	expect_exec "exec missing command" 127 "" tpl -- /no/such/command
	out=$("$fvmctl" exec tpl -- sh -c 'head -c 4096 /dev/zero | od -An -v -tx1 | wc -l')
	[[ $out == 256 ]] || e2e_fail "exec large output" "od printed $out lines, expected 256"

	# virtio-rng: the guest's hardware RNG, and it gives bytes.
	expect_exec "virtio-rng" 0 virtio_rng.0 tpl -- cat /sys/class/misc/hw_random/rng_current
	out=$("$fvmctl" exec tpl -- sh -c 'head -c 32 /dev/hwrng | od -An -tx1 | tr -d " \n"')
	[[ $out =~ ^[0-9a-f]{64}$ && $out != "$(printf '0%.0s' {1..64})" ]] ||
		e2e_fail "virtio-rng" "/dev/hwrng gave '$out'"

	# Hostile input: the agent answers or hangs up, and serves the next request.
	"$probe" garbage "$dir/tpl.vsock" 52 || e2e_fail "agent garbage" "vsock-probe garbage failed"
	"$probe" truncated "$dir/tpl.vsock" 52 || e2e_fail "agent truncated" "vsock-probe truncated failed"
	"$probe" bad-version "$dir/tpl.vsock" 52 || e2e_fail "agent version" "vsock-probe bad-version failed"
	expect_exec "agent after garbage" 0 still-here tpl -- echo still-here

	# Guest to host: the guest connects to host port 5000, fvm hands the
	# stream to whoever listens on <uds>_5000.
	guest_to_host tpl "$dir/tpl.vsock_5000"

	# Clones: their own names, sockets and random bytes.
	"$fvmctl" pause tpl >/dev/null || e2e_fail "pause" "fvmctl pause failed"
	"$fvmctl" fork tpl "$NR_CLONES" >/dev/null || e2e_fail "fork" "fvmctl fork failed"
	declare -A seen=()
	for ((n = 1; n <= NR_CLONES; n++)); do
		name=tpl-$n
		[[ -S $dir/$name.vsock ]] || e2e_fail "clone $name" "no vsock socket $dir/$name.vsock"
		expect_exec "clone $name hostname" 0 "$name" --timeout 60 "$name" -- hostname
		bytes=$("$fvmctl" exec "$name" -- sh -c 'od -An -N16 -tx1 /dev/urandom | tr -d " \n"')
		[[ $bytes =~ ^[0-9a-f]{32}$ ]] || e2e_fail "clone $name entropy" "read '$bytes'"
		[[ -z ${seen[$bytes]:-} ]] ||
			e2e_fail "clone entropy" "$name and ${seen[$bytes]} read the same random bytes"
		seen[$bytes]=$name
		echo "$name: hostname $name, random $bytes"
	done
	guest_to_host tpl-1 "$dir/tpl-1.vsock_5000"
	# The clones are independent: stopping half leaves the rest answering.
	for ((n = 1; n <= NR_CLONES / 2; n++)); do "$fvmctl" stop "tpl-$n" >/dev/null; done
	expect_exec "clone after siblings stopped" 0 "tpl-$NR_CLONES" "tpl-$NR_CLONES" -- hostname
	for ((n = NR_CLONES / 2 + 1; n <= NR_CLONES; n++)); do "$fvmctl" stop "tpl-$n" >/dev/null; done

	# Snapshot and restore: a new VM, a new vsock socket, the agent answers.
	"$fvmctl" snapshot tpl "$dir/tpl.state" "$dir/tpl.mem" >/dev/null ||
		e2e_fail "snapshot" "fvmctl snapshot failed"
	"$fvmctl" restore --resume copy "$dir/tpl.state" "$dir/tpl.mem" \
		--vsock "cid=3,uds=$dir/copy.vsock" --rng >/dev/null ||
		e2e_fail "restore" "fvmctl restore failed: $(tail -n 5 "$dir/copy.log")"
	expect_exec "restored VM" 0 restored --timeout 60 copy -- echo restored
	expect_exec "restored VM hostname" 0 copy copy -- hostname
	"$fvmctl" stop copy >/dev/null
	"$fvmctl" stop tpl >/dev/null
	echo "PASS: exec (output, status, stdin, env, timeout), virtio-rng, a hardened agent, guest-to-host vsock, $NR_CLONES clones with their own identity and entropy, vsock after restore"
}

if [[ ${1:-} == --inner ]]; then
	shift
	inner "$@"
else
	(($# == 3)) || { echo "usage: $0 FVM FVMCTL VSOCK_PROBE" >&2; exit 2; }
	outer "$@"
fi
