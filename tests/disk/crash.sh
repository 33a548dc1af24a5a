#!/bin/bash
# Crash safety: a storm of writes, zeroes, discards and flushes through the
# engine, killed with SIGKILL at a random instant, several times. After each
# kill, `qemu-img check` must find no corruption (leaks are tolerated), and
# every 4 KiB block must hold what the storm had flushed, or something a
# later operation wrote (never garbage, never another block's data). Then
# the image must take more writes cleanly.
# CRASH_ITERATIONS (default 12) and CRASH_SEED change the run.
source "$(dirname "$0")/lib.sh"

iterations=${CRASH_ITERATIONS:-12}
RANDOM=${CRASH_SEED:-$$}
echo "seed ${CRASH_SEED:-$$}"

# Each configuration: name, cluster size, refcount bits, base kind.
configs=(
	"c512-r64-qcow2base 512 64 qcow2"
	"c4k-r16-rawbase 4k 16 raw"
	"c64k-r16-nobase 64k 16 none"
	"c512-r1-rawbase 512 1 raw"
)

make_base() {
	local cs=$1
	rm -f base.qcow2 base.raw
	"$TOOL" create -s 16M -c "$cs" base.qcow2
	"$TOOL" base.qcow2 -c fill-base
	"$TOOL" -n base.qcow2 -c "export base.raw"
}

for ((i = 0; i < iterations; i++)); do
	read -r name cs rb base <<<"${configs[i % ${#configs[@]}]}"
	seed=$((RANDOM * 32768 + RANDOM))
	delay_ms=$((100 + RANDOM % 1400))
	step "iteration $i: $name seed $seed, kill after ${delay_ms} ms"

	rm -f ov.qcow2 synced.txt
	unset STORM_EMPTY_BASE
	case $base in
	qcow2) make_base "$cs"; "$TOOL" create -b base.qcow2 -c "$cs" -r "$rb" ov.qcow2 ;;
	raw) make_base "$cs"; "$TOOL" create -b base.raw -c "$cs" -r "$rb" ov.qcow2 ;;
	none) export STORM_EMPTY_BASE=1; "$TOOL" create -s 16M -c "$cs" -r "$rb" ov.qcow2 ;;
	esac

	"$TOOL" ov.qcow2 -c "storm $seed 0" >synced.txt &
	pid=$!
	sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
	kill -9 $pid 2>/dev/null || fail "the storm ended before the kill"
	wait $pid 2>/dev/null || true

	synced=$(tail -n 1 synced.txt | awk '$1 == "synced" { print $2 }')
	synced=${synced:-0}
	echo "   killed after $(wc -l <synced.txt) flushes, last synced op $synced"

	qcheck ov.qcow2 yes
	"$TOOL" -n ov.qcow2 -c check >/dev/null || fail "fvm's check finds corruption"
	"$TOOL" -n ov.qcow2 -c "verify $seed $synced" || fail "data lost or garbled"

	# The crashed image takes more work, and ends clean except old leaks.
	"$TOOL" ov.qcow2 -c "write 0 1M 0x7e" -c "discard 4M 1M" -c "zero 8M 300k" \
		-c "write 12M 200k 0x7f" -c "read 0 1M 0x7e" -c "read 12M 200k 0x7f"
	qcheck ov.qcow2 yes
done

echo "PASS"
