#!/bin/sh
# Fetches Debian's static busybox for a foreign architecture (busybox-static:ARCH) and prints
# its path; cached in bench/cache. apt runs with a private state directory and that one
# architecture (-o options only), so the host's apt configuration and lists stay as they are.
# Usage: foreign-busybox.sh DEBIAN_ARCH   (e.g. arm64 on x86_64 hosts, amd64 on aarch64 hosts)
set -eu
arch=$1
here=$(cd "$(dirname "$0")" && pwd)
cache="$here/../bench/cache/busybox-$arch"
out="$cache/busybox"
if [ -s "$out" ]; then echo "$out"; exit 0; fi
mkdir -p "$cache"

state=$(mktemp -d)
trap 'rm -rf "$state"' EXIT
mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$state/deb"
chmod 755 "$state" "$state/deb"
set -- -o "APT::Architecture=$arch" -o "APT::Architectures::=$arch" \
	-o "Dir::State::Lists=$state/lists" -o "Dir::Cache=$state/cache" -o "APT::Sandbox::User=root"
apt-get "$@" -qq update >&2 || { echo "foreign-busybox: apt-get update for $arch failed" >&2; exit 1; }
(cd "$state/deb" && apt-get "$@" -qq download busybox-static >&2) ||
	{ echo "foreign-busybox: no busybox-static:$arch in the apt sources" >&2; exit 1; }
dpkg-deb --fsys-tarfile "$state"/deb/busybox-static_*.deb | tar -x -C "$state" ./bin/busybox
file "$state/bin/busybox" | grep -q 'statically linked' ||
	{ echo "foreign-busybox: busybox-static:$arch is not static" >&2; exit 1; }
cp "$state/bin/busybox" "$out.tmp"
chmod 755 "$out.tmp"
mv "$out.tmp" "$out"
echo "$out"
