#!/bin/bash
# `make dist` is reproducible: two clean clones of the committed HEAD, in directories of different
# names and depths, built one after the other, give the same tarballs byte for byte. On a
# difference it names the files inside that differ.
# Usage: reproducible.sh   (from the checkout)
set -euo pipefail
repo=$(git rev-parse --show-toplevel)
work=$(mktemp -d /tmp/mkosi-sandbox-repro.XXXXXX)
trap 'rm -rf "$work"' EXIT
a=$work/a b=$work/somewhere/much/deeper/b
git -c advice.detachedHead=false clone -q --no-local "$repo" "$a"
git -c advice.detachedHead=false clone -q --no-local "$repo" "$b"
[ -z "$(git -C "$repo" status --porcelain --untracked-files=no)" ] ||
	echo "reproducible: note: uncommitted changes are not part of this test (it builds HEAD)"
for clone in "$a" "$b"; do
	make -s -C "$clone" dist >"$work/log" 2>&1 || { tail -n 30 "$work/log"; echo "reproducible: make dist failed in $clone"; exit 1; }
done
pass=0 fail=0
for t in "$a"/dist/*; do
	f=${t##*/}
	if cmp -s "$t" "$b/dist/$f"; then pass=$((pass + 1)); continue; fi
	fail=$((fail + 1))
	echo "FAIL: dist/$f differs between $a and $b"
	case $f in *.tar.gz)
		mkdir -p "$work/x/a" "$work/x/b"
		tar -xzf "$t" -C "$work/x/a"; tar -xzf "$b/dist/$f" -C "$work/x/b"
		diff -r "$work/x/a" "$work/x/b" | sed 's/^/  /' || true
		rm -rf "$work/x" ;;
	esac
done
[ $((pass + fail)) -gt 2 ] || { echo "FAIL: make dist made $((pass + fail)) files"; fail=$((fail + 1)); }
echo "reproducible: $pass identical, $fail different ($(ls "$a/dist" | tr '\n' ' '))"
[ $fail = 0 ]
