#!/bin/bash
# e2e, run first: builds what the other e2e tests share (the guest kernel,
# the guest root file systems, the emulated host's initramfs), so that the
# one-off kernel build (minutes) is not charged to the first real test.
set -euo pipefail

# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_check_host
started=$(date +%s)
e2e_build_guest
"$e2e_dir/emuhost.sh" --prepare ||
	e2e_fail "emulated host initramfs" "emuhost.sh --prepare failed"
echo "kernel: $kernel_dir"
cat "$kernel_dir/build-info"
echo "guest: $guest_dir"
ls -l "$guest_dir"
echo "PASS: prepared in $(($(date +%s) - started))s"
