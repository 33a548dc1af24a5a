# Shared by the disk test scripts: tool discovery, a scratch folder, and
# failure reporting. Source it; $1 of the script is the qcow2-tool path.
set -euo pipefail

TOOL=$(realpath "${1:?usage: $0 QCOW2_TOOL}")
for t in qemu-img qemu-io; do
	if ! command -v "$t" >/dev/null; then
		echo "SKIP: $t is not installed (apt-get install qemu-utils)"
		exit 77
	fi
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/fvm-disk-test.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

step() {
	echo "== $*"
}

# qemu-img check must find no corruption; leaks (status 3) are allowed
# only where the caller says so.
qcheck() {
	local img=$1 allow_leaks=${2:-no} rc=0
	qemu-img check -q "$img" >/dev/null 2>&1 || rc=$?
	if [[ $rc -eq 0 || ($rc -eq 3 && $allow_leaks == yes) ]]; then
		return 0
	fi
	qemu-img check "$img" >&2 || true
	fail "qemu-img check $img: status $rc"
}

# qio IMAGE FORMAT 'cmd' ...: qemu-io with several commands, quietly.
qio() {
	local img=$1 fmt=$2
	shift 2
	local args=()
	for c in "$@"; do args+=(-c "$c"); done
	qemu-io -f "$fmt" "${args[@]}" "$img" >/dev/null
}

# fvm IMAGE 'cmd' ...: the same through the engine.
fvm() {
	local img=$1
	shift
	local args=()
	for c in "$@"; do args+=(-c "$c"); done
	"$TOOL" "${args[@]}" "$img"
}
