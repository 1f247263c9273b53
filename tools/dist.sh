#!/bin/sh
# Release tarballs, byte-for-byte reproducible: for each TARGET=BINARY pair,
# OUTDIR/mkosi-sandbox-VERSION-ARCH.tar.gz holding the static binary, the man page, the bash
# completion, the licence, the README and a SHA256SUMS list; then OUTDIR/SHA256SUMS of the
# tarballs. Times are SOURCE_DATE_EPOCH, names sorted, owner 0:0, modes normalized, gzip -n.
# Usage: dist.sh VERSION OUTDIR ARCH=BINARY...
set -eu
version=$1 out=$2
shift 2
: "${SOURCE_DATE_EPOCH:?set SOURCE_DATE_EPOCH (the Makefile takes the last commit time)}"
top=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
for pair in "$@"; do
	arch=${pair%%=*} bin=${pair#*=}
	name=mkosi-sandbox-$version-$arch
	dir=$stage/$name
	mkdir -p "$dir"
	install -m 755 "$bin" "$dir/mkosi-sandbox"
	install -m 644 "$top/doc/mkosi-sandbox.1" "$top/LICENSE" "$top/README.md" "$dir/"
	install -m 644 "$top/completions/bash/mkosi-sandbox" "$dir/mkosi-sandbox.bash-completion"
	(cd "$dir" && LC_ALL=C sha256sum $(LC_ALL=C ls) > SHA256SUMS)
	chmod 644 "$dir/SHA256SUMS"
	LC_ALL=C tar -C "$stage" --sort=name --format=gnu --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 \
		--numeric-owner --mode='u+rwX,go=rX' -cf - "$name" | gzip -9n > "$out/$name.tar.gz"
done
(cd "$out" && LC_ALL=C sha256sum $(LC_ALL=C ls mkosi-sandbox-"$version"-*.tar.gz) > SHA256SUMS)
ls -l "$out"
