#!/bin/sh
# Fetches Debian's static busybox for a foreign architecture (busybox-static:ARCH) and prints
# its path; cached in bench/cache. The package comes straight from the archive in the apt sources
# (tests/lib/debian.sh: SHA-256 checked, retried), so the host's apt and dpkg stay as they are.
# Usage: foreign-busybox.sh DEBIAN_ARCH   (e.g. arm64 on x86_64 hosts, amd64 on aarch64 hosts)
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -eu
arch=$1
here=$(cd "$(dirname "$0")" && pwd)
cache="$here/../bench/cache/busybox-$arch"
out="$cache/busybox"
if [ -s "$out" ]; then echo "$out"; exit 0; fi
mkdir -p "$cache"
. "$here/lib/debian.sh"

deb=$(deb_fetch bookworm "$arch" busybox-static) ||
	{ echo "foreign-busybox: no busybox-static:$arch in the archive" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
deb_extract "$deb" "$tmp" ./bin/busybox
file "$tmp/bin/busybox" | grep -q 'statically linked' ||
	{ echo "foreign-busybox: busybox-static:$arch is not static" >&2; exit 1; }
chmod 755 "$tmp/bin/busybox"
mv "$tmp/bin/busybox" "$out.$$" && mv "$out.$$" "$out"   # atomic: test threads run this at once
echo "$out"
