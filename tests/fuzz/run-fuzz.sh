#!/bin/bash
# Build one libFuzzer target with clang (ASan + UBSan) and run it.
#   run-fuzz.sh NAME SECONDS SOURCE... [-- EXTRA_CFLAGS...]
# The corpus lives in the build tree so repeated runs keep what they found;
# seeds come from tests/fuzz/corpus/NAME when that folder exists.
# FVM_FUZZ_SECONDS overrides SECONDS (a longer run on demand).
set -euo pipefail
name=$1 seconds=${FVM_FUZZ_SECONDS:-$2}
shift 2
srcdir=$(cd "$(dirname "$0")/../.." && pwd)
# meson test passes FVM_FUZZ_OUT (the build tree); by hand it defaults to build/.
out=${FVM_FUZZ_OUT:-$srcdir/build/fuzz}
mkdir -p "$out/corpus-$name"
sources=() cflags=()
while (($#)); do
	if [[ $1 == -- ]]; then shift; cflags=("$@"); break; fi
	sources+=("$srcdir/$1"); shift
done
if ! command -v clang >/dev/null; then
	echo "fuzz: clang is not installed (apt-get install clang)" >&2
	exit 1
fi
clang -g -O1 -std=gnu11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=all -I"$srcdir/common" -I"$srcdir" "${cflags[@]}" \
	"${sources[@]}" "$srcdir/common/log.c" -o "$out/fuzz-$name"
seeds=()
[[ -d $srcdir/tests/fuzz/corpus/$name ]] && seeds=("$srcdir/tests/fuzz/corpus/$name")
cd "$out"
"./fuzz-$name" -max_total_time="$seconds" -print_final_stats=1 \
	"corpus-$name" "${seeds[@]}" 2>&1 | tail -n 25
