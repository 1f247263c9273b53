#!/bin/bash
# A/B start-up benchmark of two builds of this binary, interleaved round-robin in one run:
# medians and the ratio B/A per workload (below 1.00: B is faster). For a change that must not
# slow anything down, A is the build before it.
# Usage: bench/ab.sh A_BINARY B_BINARY [ROUNDS]   (as root; ROUNDS defaults to 300)
# To build A from a commit: git archive COMMIT | tar -x -C DIR && make -C DIR build
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rounds=${3:-300}
cache="$here/cache"
mkdir -p "$cache"
gcc -O2 -o "$cache/timer" "$here/timer.c"

W=$(mktemp -d /tmp/mkosi-ab.XXXXXX)
chmod 755 "$W"
trap 'umount -R "$W" 2>/dev/null || true; rm -rf "$W"' EXIT
# Both under paths of the same length, readable by uid 65534.
mkdir -p "$W/a" "$W/b" "$W/vartmp" "$W/specs" "$W/binds"
install -m 755 "$1" "$W/a/mkosi-sandbox"
install -m 755 "$2" "$W/b/mkosi-sandbox"
gcc -O2 -static -nostdlib -o "$W/payload" "$here/payload.c"
chmod 777 "$W/vartmp"

# mkosi's tools sandbox (bench/run.sh's workload 2).
BASE_OPTS=(--proc /proc --unsetenv TMPDIR --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/sbin /sbin
	--symlink usr/lib /lib --symlink usr/lib64 /lib64 --dir /var/tmp --dir /var/log --unshare-ipc --dev /dev
	--setenv PATH /usr/bin:/usr/sbin --bind "$W/vartmp" /var/tmp --dir /etc --dir /var --dir /tmp --dir /run
	--ro-bind "$W/payload" /payload)
BINDS=()
for i in $(seq 1 1000); do mkdir -p "$W/binds/$i"; BINDS+=(--bind "$W/binds/$i" "/b/$i"); done

spec() { local f="$W/specs/$1"; printf '%s\n' "$@" > "$f"; echo "$f"; }

echo "| workload | A median µs | B median µs | B ÷ A | failed runs A/B |"
echo "|---|---:|---:|---:|---:|"
# row TITLE [-u UID] ARGS... : A and B interleaved with the same arguments.
row() {
	local title=$1; shift
	local opts=()
	if [ "$1" = -u ]; then opts=(-u "$2"); shift 2; fi
	local res
	res=$("$cache/timer" "${opts[@]}" "$rounds" "$(spec A "$W/a/mkosi-sandbox" "$@")" "$(spec B "$W/b/mkosi-sandbox" "$@")")
	echo "$res" | awk -F'\t' -v t="$title" '
		$1 == "A" { a = $2; fa = $6 } $1 == "B" { b = $2; fb = $6 }
		END { printf "| %s | %.0f | %.0f | %.3f | %d/%d |\n", t, a, b, b / a, fa, fb }'
}
row "--version" --version
row "tools sandbox, root" "${BASE_OPTS[@]}" -- /payload
row "tools sandbox, uid 65534 --become-root" -u 65534 "${BASE_OPTS[@]}" --become-root -- /payload
row "tools sandbox + 1000 --bind, root" "${BASE_OPTS[@]}" "${BINDS[@]}" -- /payload
row "tools sandbox --unshare-pid, root" "${BASE_OPTS[@]}" --unshare-pid -- /payload
row "tools sandbox --unshare-pid, uid 65534 --become-root" -u 65534 "${BASE_OPTS[@]}" --become-root --unshare-pid -- /payload
