#!/bin/bash
# fvm's commit leaves the same backing image as `qemu-img commit` on an
# identical chain, and empties the overlay so that it reads through.
source "$(dirname "$0")/lib.sh"

overlay_ops=(
	"write -P 0x11 0 64k" "write -P 0x22 100k 12k" "write -z 1M 1M" "write -P 0x33 3M 5000"
	"discard 4M 128k" "write -P 0x44 5M 2M" "write -z 5M 64k" "write -P 0x55 7M 1M"
)

# make_chain DIR BASEFMT: base (raw or qcow2 over a raw) <- overlay, by QEMU.
make_chain() {
	local d=$1 fmt=$2
	mkdir -p "$d"
	qemu-img create -q -f raw "$d/bottom.raw" 8M
	qio "$d/bottom.raw" raw "write -P 0xa0 0 8M"
	if [[ $fmt == raw ]]; then
		mv "$d/bottom.raw" "$d/base"
	else
		qemu-img create -q -f qcow2 -b bottom.raw -F raw -o cluster_size=4k "$d/base"
		qio "$d/base" qcow2 "write -P 0xb0 2M 2M" "write -z 6M 1M"
	fi
	qemu-img create -q -f qcow2 -b base -F "$fmt" "$d/overlay"
	qio "$d/overlay" qcow2 "${overlay_ops[@]}"
}

for fmt in raw qcow2; do
	step "commit into a $fmt base"
	rm -rf q f
	make_chain q $fmt
	make_chain f $fmt
	qemu-img convert -O raw f/overlay before.raw

	qemu-img commit -q q/overlay
	"$TOOL" -w f/overlay -c commit

	if [[ $fmt == raw ]]; then
		cmp q/base f/base || fail "raw bases differ after commit"
	else
		qcheck f/base
		qemu-img compare -q q/base f/base || fail "qcow2 bases differ after commit"
	fi
	qemu-img compare -q f/base before.raw || fail "the base lost data"
	# The overlay is empty: it reads its backing image, and owns nothing.
	qcheck f/overlay
	qemu-img compare -q f/overlay f/base || fail "the overlay does not read through"
	[[ $(qemu-img map --output=json f/overlay | grep -c '"depth": 0') == 0 ]] ||
		fail "the overlay still owns clusters"
	# And it is usable again.
	"$TOOL" f/overlay -c "write 1M 4k 0x99" -c "read 1M 4k 0x99"
	qcheck f/overlay
done

step "commit needs a writable backing image and a backing file"
rm -rf f && make_chain f raw
if "$TOOL" f/overlay -c commit 2>/dev/null; then fail "commit into a read-only base"; fi
"$TOOL" create -s 1M lone.qcow2
if "$TOOL" -w lone.qcow2 -c commit 2>/dev/null; then fail "commit without a backing file"; fi

step "commit grows a smaller raw base, as qemu-img does"
rm -rf q f
for d in q f; do
	mkdir $d
	qemu-img create -q -f raw $d/base 1M
	qio $d/base raw "write -P 0xa0 0 1M"
	qemu-img create -q -f qcow2 -b base -F raw $d/overlay 3M
	qio $d/overlay qcow2 "write -P 0xc0 512k 2M"
done
qemu-img commit -q q/overlay
"$TOOL" -w f/overlay -c commit
cmp q/base f/base || fail "grown raw bases differ"

echo "PASS"
