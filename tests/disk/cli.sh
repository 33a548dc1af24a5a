#!/bin/bash
# `fvmctl disk`: create, info (human and JSON), check, commit, help, and
# one-line errors with the documented exit codes.
CMD=$(realpath "${2:?usage: $0 QCOW2_TOOL FVMCTL_DISK}")
source "$(dirname "$0")/lib.sh" "$1"

expect_status() {
	local want=$1
	shift
	local rc=0
	"$@" >out.txt 2>err.txt || rc=$?
	[[ $rc == "$want" ]] || { cat out.txt err.txt >&2; fail "'$*' exited $rc, expected $want"; }
}

step "help"
expect_status 0 "$CMD" --help
grep -q "create --backing BASE OVERLAY" out.txt || fail "help lacks create"
expect_status 0 "$CMD" create --help
expect_status 2 "$CMD"
expect_status 2 "$CMD" frobnicate
grep -q "unknown command 'frobnicate'" err.txt || fail "unknown command message"

step "create"
expect_status 0 "$CMD" create --size 64M base.qcow2
qcheck base.qcow2
[[ $(qemu-img info --output=json base.qcow2 | grep '"virtual-size"') == *67108864* ]] ||
	fail "wrong size"
expect_status 1 "$CMD" create --size 64M base.qcow2
[[ $(wc -l <err.txt) == 1 ]] && grep -q "exists" err.txt || fail "overwrite error: $(cat err.txt)"
expect_status 2 "$CMD" create --size 12x new.qcow2
expect_status 2 "$CMD" create new.qcow2
expect_status 2 "$CMD" create --size 1000 new.qcow2
expect_status 2 "$CMD" create --size 1M
expect_status 2 "$CMD" create --bogus new.qcow2
mkdir sub
expect_status 0 "$CMD" create --backing ../base.qcow2 sub/overlay.qcow2
qemu-img info sub/overlay.qcow2 | grep -q "backing file: ../base.qcow2" || fail "backing name"
expect_status 1 "$CMD" create --backing missing.raw o2.qcow2
grep -q "missing.raw" err.txt || fail "missing backing message: $(cat err.txt)"
qemu-img create -q -f raw disk.raw 10M
expect_status 0 "$CMD" create --backing disk.raw --backing-format raw --cluster-size 4k o3.qcow2
qemu-img info o3.qcow2 | grep -q "backing file format: raw" || fail "backing format"
qemu-img info o3.qcow2 | grep -q "cluster_size: 4096" || fail "cluster size"

step "info"
"$TOOL" sub/overlay.qcow2 -c "write 0 128k 0x42" -c "zero 1M 64k"
expect_status 0 "$CMD" info sub/overlay.qcow2
grep -q "backing file: ../base.qcow2 (qcow2)" out.txt || fail "info backing: $(cat out.txt)"
grep -q "allocated here: 128 KiB, 1 zero clusters" out.txt || fail "info alloc: $(cat out.txt)"
expect_status 0 "$CMD" info --json sub/overlay.qcow2
python3 - out.txt <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["format"] == "qcow2" and d["virtual-size"] == 64 << 20, d
assert d["backing-filename"] == "../base.qcow2" and d["backing-filename-format"] == "qcow2", d
assert d["allocated-bytes"] == 128 << 10 and d["chain-depth"] == 1, d
assert d["format-specific"]["refcount-bits"] == 16, d
PY
expect_status 0 "$CMD" info disk.raw
grep -q "format: raw" out.txt || fail "raw info"
mv disk.raw moved.raw
expect_status 0 "$CMD" info o3.qcow2
grep -q "backing chain: broken: backing file 'disk.raw'" out.txt || fail "broken chain: $(cat out.txt)"
mv moved.raw disk.raw
expect_status 1 "$CMD" info nothere.qcow2
expect_status 2 "$CMD" info

step "check"
expect_status 0 "$CMD" check sub/overlay.qcow2
expect_status 0 "$CMD" check --json sub/overlay.qcow2
grep -q '"corruptions": 0' out.txt || fail "check json"

step "commit"
expect_status 0 "$CMD" commit sub/overlay.qcow2
qemu-io -c "read -P 0x42 0 128k" -c "read -P 0 1M 64k" base.qcow2 >/dev/null ||
	fail "commit did not reach the base"
qcheck base.qcow2
qcheck sub/overlay.qcow2
expect_status 1 "$CMD" commit base.qcow2
grep -q "no backing file" err.txt || fail "commit error: $(cat err.txt)"

step "a corrupt image gives one clear line"
printf 'QFI\xfb\0\0\0\7' > bad.qcow2
truncate -s 4k bad.qcow2
expect_status 1 "$CMD" info bad.qcow2
[[ $(wc -l <err.txt) == 1 ]] && grep -q "unsupported qcow2 version 7" err.txt ||
	fail "corrupt image message: $(cat err.txt)"

echo "PASS"
