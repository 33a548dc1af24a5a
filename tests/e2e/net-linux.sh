#!/bin/bash
# e2e: virtio-net on a TAP, and a network namespace per clone.
#
# 1. A Linux guest boots with --net tap=fvmtap0,ip=10.0.0.2/24,gw=10.0.0.1
#    (fvm creates the TAP; the guest agent sets the address). The host
#    gives the TAP 10.0.0.1: host and guest ping each other.
# 2. The guest, paused, forks NR_CLONES clones. Clone n opens its own TAP,
#    again named fvmtap0, inside network namespace /run/netns/fvm-n
#    (clone-tap=, clone-netns=), so every clone keeps the guest address
#    10.0.0.2 behind the same gateway 10.0.0.1. Each namespace is joined
#    to the host by a veth pair and translates (tc act_nat, stateless) the
#    clone's outside address 192.168.200.n to 10.0.0.2 and back. From the
#    host, 192.168.200.n must answer for every n, and the MAC behind it
#    must be clone n's own (the agent set 06:f0:00:00:00:0n).
#
#   net-linux.sh FVM FVMCTL
set -euo pipefail

# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NR_CLONES=3
CMDLINE="console=ttyS0 reboot=k panic=1 quiet fvm.exit=wait"

outer() {
	local fvm=$1 fvmctl=$2 self tool
	e2e_check_fvm "$fvm"
	[[ -x $fvmctl ]] || e2e_unavailable "fvmctl executable $fvmctl not built"
	for tool in /usr/sbin/ip /usr/sbin/tc; do
		[[ -x $tool ]] || e2e_unavailable "$tool not found (apt-get install iproute2)"
	done
	e2e_check_host
	e2e_build_guest
	self=$(realpath "${BASH_SOURCE[0]}")
	# iproute2's ip and tc: busybox's know neither namespaces nor tc actions.
	exec "$e2e_dir/emuhost.sh" --timeout 540 \
		--ship "$fvm" --ship "$fvmctl" --ship "$kernel_dir/vmlinux" \
		--ship /usr/sbin/ip --ship /usr/sbin/tc \
		--ship "$guest_dir/initramfs.cpio.gz" --ship "$self" --ship "$e2e_dir/lib.sh" \
		-- /bin/bash "$self" --inner "$fvm" "$fvmctl" "$kernel_dir/vmlinux" \
		"$guest_dir/initramfs.cpio.gz"
}

IP=/usr/sbin/ip
TC=/usr/sbin/tc

# Run a command in clone n's namespace.
in_ns() {
	local n=$1
	shift
	nsenter --net="/run/netns/fvm-$n" "$@"
}

# Namespace fvm-n, joined to the host by vo<n> (host, 172.16.n.1) and
# vi<n> (inside, 172.16.n.2), translating 192.168.200.n <-> 10.0.0.2.
make_clone_ns() {
	local n=$1
	touch "/run/netns/fvm-$n"
	unshare --net="/run/netns/fvm-$n" true || e2e_fail "netns" "cannot create namespace fvm-$n"
	$IP link add "vo$n" type veth peer name "vi$n"
	$IP link set "vi$n" netns "fvm-$n"
	$IP addr add "172.16.$n.1/24" dev "vo$n"
	$IP link set "vo$n" up
	$IP route add "192.168.200.$n/32" via "172.16.$n.2"
	in_ns "$n" $IP link set lo up
	in_ns "$n" $IP addr add "172.16.$n.2/24" dev "vi$n"
	in_ns "$n" $IP link set "vi$n" up
	in_ns "$n" $IP route add default via "172.16.$n.1"
	in_ns "$n" sysctl -qw net.ipv4.ip_forward=1
	in_ns "$n" $TC qdisc add dev "vi$n" clsact
	in_ns "$n" $TC filter add dev "vi$n" ingress matchall action nat ingress "192.168.200.$n/32" 10.0.0.2
	in_ns "$n" $TC filter add dev "vi$n" egress matchall action nat egress 10.0.0.2/32 "192.168.200.$n"
}

# The TAP a clone opened in its namespace: the gateway's side.
wait_clone_tap() {
	local n=$1 i
	for ((i = 0; i < 100; i++)); do
		in_ns "$n" $IP link show fvmtap0 >/dev/null 2>&1 && break
		sleep 0.1
	done
	in_ns "$n" $IP addr add 10.0.0.1/24 dev fvmtap0 || e2e_fail "clone $n" "no fvmtap0 in namespace fvm-$n"
	in_ns "$n" $IP link set fvmtap0 up
}

inner() {
	local fvm=$1 fvmctl=$2 kernel=$3 initrd=$4 n out mac
	e2e_fvmctl_setup "$fvm"
	local dir=$FVM_RUNTIME_DIR
	mkdir -p /run/netns

	"$fvmctl" run vm --kernel "$kernel" --initrd "$initrd" --mem 256M --cmdline "$CMDLINE" \
		--vsock "cid=3,uds=$dir/vm.vsock" \
		--net "tap=fvmtap0,ip=10.0.0.2/24,gw=10.0.0.1,clone-tap=fvmtap0,clone-netns=/run/netns/fvm-{n}" ||
		e2e_fail "fvmctl run" "the VM did not start: $(tail -n 5 "$dir/vm.log")"
	$IP addr add 10.0.0.1/24 dev fvmtap0 || e2e_fail "tap" "fvm did not create fvmtap0"
	$IP link set fvmtap0 up
	out=$("$fvmctl" exec --timeout 150 vm -- ip -4 addr show dev eth0) ||
		e2e_fail "guest address" "exec failed"
	grep -q 'inet 10.0.0.2/24' <<<"$out" || e2e_fail "guest address" "the agent did not set 10.0.0.2/24: $out"

	"$fvmctl" exec vm -- ping -c 3 -W 5 10.0.0.1 || e2e_fail "guest to host" "the guest cannot ping 10.0.0.1"
	ping -c 3 -W 5 10.0.0.2 || e2e_fail "host to guest" "the host cannot ping 10.0.0.2"
	# Two megabytes of TCP each way over HTTP (busybox httpd and wget), with
	# segmentation and checksum offloads on the way; md5 sums must match.
	mkdir -p "$dir/www"
	head -c 2000000 /dev/urandom >"$dir/www/blob"
	httpd -p 10.0.0.1:8080 -h "$dir/www" || e2e_fail "tcp" "cannot start httpd on the host"
	out=$("$fvmctl" exec --timeout 60 vm -- sh -c 'wget -q -O /tmp/blob http://10.0.0.1:8080/blob && md5sum /tmp/blob') ||
		e2e_fail "tcp host to guest" "the guest could not fetch 2 MB from the host"
	[[ ${out%% *} == "$(md5sum <"$dir/www/blob" | cut -d' ' -f1)" ]] ||
		e2e_fail "tcp host to guest" "the guest's copy differs: $out"
	"$fvmctl" exec vm -- sh -c 'mkdir -p /tmp/www && mv /tmp/blob /tmp/www/ && httpd -p 8080 -h /tmp/www' ||
		e2e_fail "tcp guest to host" "cannot start httpd in the guest"
	wget -q -O "$dir/back" http://10.0.0.2:8080/blob ||
		e2e_fail "tcp guest to host" "the host could not fetch 2 MB from the guest"
	cmp -s "$dir/back" "$dir/www/blob" || e2e_fail "tcp guest to host" "the host's copy differs"

	for ((n = 1; n <= NR_CLONES; n++)); do make_clone_ns "$n"; done
	"$fvmctl" pause vm >/dev/null || e2e_fail "pause" "fvmctl pause failed"
	"$fvmctl" fork vm "$NR_CLONES" >/dev/null || e2e_fail "fork" "fvmctl fork failed"
	for ((n = 1; n <= NR_CLONES; n++)); do
		wait_clone_tap "$n"
		# The agent gave the clone its identity: same address, its own MAC.
		mac=$(printf '06:f0:00:00:00:%02x' "$n")
		out=$("$fvmctl" exec --timeout 60 "vm-$n" -- cat /sys/class/net/eth0/address) ||
			e2e_fail "clone vm-$n" "exec failed"
		[[ $out == "$mac" ]] || e2e_fail "clone vm-$n" "eth0 has MAC $out, expected $mac"
		out=$("$fvmctl" exec "vm-$n" -- ip -4 addr show dev eth0)
		grep -q 'inet 10.0.0.2/24' <<<"$out" || e2e_fail "clone vm-$n" "address: $out"
		ping -c 2 -W 5 "192.168.200.$n" ||
			e2e_fail "clone vm-$n" "192.168.200.$n (clone vm-$n's outside address) does not answer"
		out=$(in_ns "$n" $IP neigh show 10.0.0.2)
		grep -q "$mac" <<<"$out" || e2e_fail "clone vm-$n" "10.0.0.2 in fvm-$n is not clone vm-$n: $out"
		echo "vm-$n: 192.168.200.$n -> 10.0.0.2 at $mac"
	done
	for ((n = 1; n <= NR_CLONES; n++)); do "$fvmctl" stop "vm-$n" >/dev/null; done
	"$fvmctl" stop vm >/dev/null
	echo "PASS: host and guest ping over a TAP; $NR_CLONES clones share the guest address 10.0.0.2, each in its own namespace behind its own outside address"
}

if [[ ${1:-} == --inner ]]; then
	shift
	inner "$@"
else
	(($# == 2)) || { echo "usage: $0 FVM FVMCTL" >&2; exit 2; }
	outer "$@"
fi
