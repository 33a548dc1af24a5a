#!/bin/bash
# Images created and written by QEMU read back through fvm's engine exactly
# as QEMU reads them: several cluster sizes, refcount widths, zero clusters,
# discards, version 2 images, preallocated metadata and backing chains.
source "$(dirname "$0")/lib.sh"

# The same writes, for the qcow2 image and a raw reference.
ops=(
	"write -P 0x11 0 64k"
	"write -P 0x22 100k 12k"
	"write -P 0x33 1020k 8k"
	"write -P 0x44 3M 1M"
	"write -z 3200k 256k"
	"write -P 0x55 7M 4097"
	"write -z 7M 512"
	"write -P 0x66 4M 2M"
	"discard 4M 2M"
)

check_image() {
	local img=$1 ref=$2
	"$TOOL" -n "$img" -c "export out.raw"
	cmp out.raw "$ref" || fail "$img reads differently through fvm"
	"$TOOL" -n "$img" -c check >/dev/null || fail "fvm's check finds $img corrupt"
}

qemu-img create -q -f raw ref.raw 8M
qio ref.raw raw "${ops[@]}"

for cs in 512 4k 64k 2M; do
	for rb in 1 16 64; do
		step "cluster_size=$cs refcount_bits=$rb"
		rm -f img.qcow2
		qemu-img create -q -f qcow2 -o cluster_size=$cs,refcount_bits=$rb img.qcow2 8M
		qio img.qcow2 qcow2 "${ops[@]}"
		check_image img.qcow2 ref.raw
	done
done

step "version 2 image (read-only)"
rm -f v2.qcow2
qemu-img create -q -f qcow2 -o compat=0.10 v2.qcow2 8M
qio v2.qcow2 qcow2 "write -P 0x11 0 64k" "write -P 0x22 100k 12k" "write -P 0x33 1020k 8k" \
	"write -P 0x44 3M 1M" "write -P 0 3200k 256k" "write -P 0x55 7M 4097" "write -P 0 7M 512" \
	"write -P 0 4M 2M"
check_image v2.qcow2 ref.raw
if "$TOOL" v2.qcow2 -c "write 0 512 1" 2>/dev/null; then
	fail "a version 2 image opened for writing"
fi

step "preallocation=metadata, lazy_refcounts=on: fvm writes in place"
rm -f pre.qcow2
qemu-img create -q -f qcow2 -o preallocation=metadata,lazy_refcounts=on pre.qcow2 8M
fvm pre.qcow2 "write 0 64k 0x11" "write 100k 12k 0x22" "write 1020k 8k 0x33" \
	"write 3M 1M 0x44" "zero 3200k 256k" "write 7M 4097 0x55" "zero 7M 512" "write 4M 2M 0x66" \
	"discard 4M 2M"
qcheck pre.qcow2
"$TOOL" -n pre.qcow2 -c "export out.raw"
cmp out.raw ref.raw || fail "preallocated image reads wrong"
qemu-img compare -q pre.qcow2 ref.raw || fail "QEMU reads the preallocated image differently"

step "backing chain: raw <- qcow2 <- qcow2 <- qcow2 (QEMU-made)"
rm -f base.raw l1.qcow2 l2.qcow2 l3.qcow2
qemu-img create -q -f raw base.raw 6M
qio base.raw raw "write -P 0xa1 0 6M"
qemu-img create -q -f qcow2 -b base.raw -F raw -o cluster_size=4k l1.qcow2 8M
qio l1.qcow2 qcow2 "write -P 0xb2 64k 64k" "write -z 1M 1M" "write -P 0xb3 5M 2M"
qemu-img create -q -f qcow2 -b l1.qcow2 -F qcow2 l2.qcow2
qio l2.qcow2 qcow2 "write -P 0xc4 96k 8k" "discard 5M 64k" "write -P 0xc5 1536k 4k"
qemu-img create -q -f qcow2 -b l2.qcow2 -F qcow2 l3.qcow2
qio l3.qcow2 qcow2 "write -P 0xd6 4000k 300k"
qemu-img convert -O raw l3.qcow2 chain-ref.raw
check_image l3.qcow2 chain-ref.raw
"$TOOL" -n l3.qcow2 -c "read 0 64k 0xa1" -c "read 96k 8k 0xc4" -c "read 1M 512k 0" \
	-c "read 7M 1M 0" -c "read 5M 64k 0" -c "read 5184k 64k 0xb3"

step "fvm reads what QEMU reads past a shorter backing file"
rm -f short.raw long.qcow2
qemu-img create -q -f raw short.raw 1M
qio short.raw raw "write -P 0x77 0 1M"
qemu-img create -q -f qcow2 -b short.raw -F raw long.qcow2 4M
"$TOOL" -n long.qcow2 -c "read 0 1M 0x77" -c "read 1M 3M 0"
fvm long.qcow2 "write 1020k 8k 0x78"
"$TOOL" -n long.qcow2 -c "read 0 1020k 0x77" -c "read 1020k 8k 0x78" -c "read 1028k 3068k 0"
qcheck long.qcow2

echo "PASS"
