#!/bin/sh
# Fetches the Python original for comparison: mkosi/sandbox.py from Debian's mkosi package
# (suite trixie, version 25.3), via tests/fetch-mkosi.sh (archive taken from the apt sources).
# Usage: fetch-original.sh [DEST_DIR]   (default: bench/cache). Prints the path of sandbox.py.
set -eu
here=$(dirname "$0")
dest=${1:-$here/cache}
want=25.3
out="$dest/mkosi-$want/sandbox.py"
if [ -s "$out" ]; then echo "$out"; exit 0; fi
dist=$("$here/../tests/fetch-mkosi.sh" trixie "$want" "$dest/packages")
mkdir -p "$dest/mkosi-$want"
cp "$dist/mkosi/sandbox.py" "$out"
echo "$out"
