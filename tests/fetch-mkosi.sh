#!/bin/sh
# Fetches Debian's mkosi package (architecture all) of a suite and unpacks it. The archive address
# comes from this machine's apt sources (the first Debian archive named there, not the security
# one): never a host name here. The .deb is checked against the SHA256 in the suite's index.
# Usage: fetch-mkosi.sh SUITES VERSION DEST_DIR   Prints the package's dist-packages directory.
# SUITES: one suite, or several separated by commas, tried in order (a version leaves unstable but
# may stay in testing or backports). With only `--mirror`, prints the archive address and exits.
set -eu

# The first Debian archive (not the security one) named in the apt sources, deb822 or one-line.
mirror=$( { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | sed 's/^URIs:[[:space:]]*//' | tr ' ' '\n';
            grep -hs '^deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{for(i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; break}}'; } |
          grep -v -e security -e '^$' | grep '/debian/*$' | head -n 1) || true
[ -n "$mirror" ] || { echo "fetch-mkosi: no Debian archive in the apt sources" >&2; exit 1; }
mirror=${mirror%/}
if [ "${1:-}" = --mirror ]; then echo "$mirror"; exit 0; fi

suites=$1 want=$2 dest=$3
out="$dest/mkosi-$want"
dist="$out/usr/lib/python3/dist-packages"
if [ -s "$dist/mkosi/sandbox.py" ]; then echo "$dist"; exit 0; fi
mkdir -p "$dest"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
found=""
for suite in $(echo "$suites" | tr ',' ' '); do
	index="$mirror/dists/$suite/main/binary-all/Packages.xz"
	err=$(curl -fsSL --retry 2 "$index" -o "$tmp/Packages.xz" 2>&1) ||
		{ echo "fetch-mkosi: cannot reach the Debian archive: $index: ${err:-curl failed}" | head -n 1 >&2; exit 1; }
	xz -dc "$tmp/Packages.xz" > "$tmp/Packages"
	stanza=$(awk -v RS= '/(^|\n)Package: mkosi\n/' "$tmp/Packages")
	version=$(printf '%s\n' "$stanza" | sed -n 's/^Version: //p' | head -n 1)
	seen="${seen:+$seen, }$suite has ${version:-none}"
	case "$version" in
		"$want"|"$want"-*) found=$suite; break ;;
	esac
done
[ -n "$found" ] || { echo "fetch-mkosi: no mkosi $want in the archive ($seen)" >&2; exit 1; }
file=$(printf '%s\n' "$stanza" | sed -n 's/^Filename: //p' | head -n 1)
sha=$(printf '%s\n' "$stanza" | sed -n 's/^SHA256: //p' | head -n 1)
err=$(curl -fsSL --retry 2 "$mirror/$file" -o "$tmp/mkosi.deb" 2>&1) ||
	{ echo "fetch-mkosi: cannot download $mirror/$file: ${err:-curl failed}" | head -n 1 >&2; exit 1; }
echo "$sha  $tmp/mkosi.deb" | sha256sum -c --quiet - >/dev/null 2>&1 ||
	{ echo "fetch-mkosi: $file does not match the SHA256 in $found's index" >&2; exit 1; }
dpkg-deb -x "$tmp/mkosi.deb" "$tmp/root"
[ -s "$tmp/root/usr/lib/python3/dist-packages/mkosi/sandbox.py" ] ||
	{ echo "fetch-mkosi: no mkosi/sandbox.py in $file" >&2; exit 1; }
rm -rf "$out"
mv "$tmp/root" "$out"
echo "$dist"
