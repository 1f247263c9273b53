#!/bin/sh
# Fetches the Python original for comparison: mkosi/sandbox.py from Debian's mkosi package
# (suite trixie, version 25.3). The archive address comes from this machine's apt sources.
# Usage: fetch-original.sh [DEST_DIR]   (default: bench/cache). Prints the path of sandbox.py.
set -eu
dest=${1:-$(dirname "$0")/cache}
suite=trixie
want=25.3
out="$dest/mkosi-$want/sandbox.py"
if [ -s "$out" ]; then echo "$out"; exit 0; fi
mkdir -p "$dest"

# The first Debian archive (not the security one) named in the apt sources, deb822 or one-line.
mirror=$( { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | sed 's/^URIs:[[:space:]]*//' | tr ' ' '\n';
            grep -hs '^deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{for(i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; break}}'; } |
          grep -v -e security -e '^$' | grep '/debian/*$' | head -n 1)
[ -n "$mirror" ] || { echo "fetch-original: no Debian archive in the apt sources" >&2; exit 1; }
mirror=${mirror%/}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
curl -fsSL "$mirror/dists/$suite/main/binary-all/Packages.xz" | xz -dc > "$tmp/Packages"
stanza=$(awk -v RS= '/(^|\n)Package: mkosi\n/' "$tmp/Packages")
version=$(printf '%s\n' "$stanza" | sed -n 's/^Version: //p' | head -n 1)
file=$(printf '%s\n' "$stanza" | sed -n 's/^Filename: //p' | head -n 1)
case "$version" in
	$want|$want-*) ;;
	*) echo "fetch-original: $suite has mkosi $version, not $want" >&2; exit 1 ;;
esac
curl -fsSL "$mirror/$file" -o "$tmp/mkosi.deb"
dpkg-deb -x "$tmp/mkosi.deb" "$tmp/root"
found=$(find "$tmp/root" -path '*/mkosi/sandbox.py' | head -n 1)
[ -n "$found" ] || { echo "fetch-original: no mkosi/sandbox.py in $file" >&2; exit 1; }
mkdir -p "$dest/mkosi-$want"
cp "$found" "$out"
echo "$out"
