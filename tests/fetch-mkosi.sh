#!/bin/bash
# Fetches Debian's mkosi package (architecture all) of a suite and unpacks it, through
# tests/lib/debian.sh: the archive comes from this machine's apt sources (never a host name here),
# the .deb is checked against the SHA256 in the suite's index.
# Usage: fetch-mkosi.sh SUITES VERSION DEST_DIR   Prints the package's dist-packages directory.
# SUITES: one suite, or several separated by commas, tried in order (a version leaves unstable but
# may stay in testing or backports). With only `--mirror`, prints the archive address and exits.
set -eu
. "$(dirname "$0")/lib/debian.sh"
if [ "${1:-}" = --mirror ]; then deb_mirror; exit; fi

suites=$1 want=$2 dest=$3
out="$dest/mkosi-$want"
dist="$out/usr/lib/python3/dist-packages"
if [ -s "$dist/mkosi/sandbox.py" ]; then echo "$dist"; exit 0; fi

found="" seen=""
for suite in ${suites//,/ }; do
	version=$(deb_field "$suite" all mkosi Version) ||
		{ echo "fetch-mkosi: cannot reach the Debian archive $(deb_mirror) for $suite" >&2; exit 1; }
	seen="${seen:+$seen, }$suite has ${version:-none}"
	case "$version" in
		"$want"|"$want"-*) found=$suite; break ;;
	esac
done
[ -n "$found" ] || { echo "fetch-mkosi: no mkosi $want in the archive ($seen)" >&2; exit 1; }
deb=$(deb_fetch "$found" all mkosi) || exit 1
tmp=$(mktemp -d "$dest/.mkosi-$want.XXXXXX" 2>/dev/null || { mkdir -p "$dest" && mktemp -d "$dest/.mkosi-$want.XXXXXX"; })
trap 'rm -rf "$tmp"' EXIT
dpkg-deb -x "$deb" "$tmp/root"
[ -s "$tmp/root/usr/lib/python3/dist-packages/mkosi/sandbox.py" ] ||
	{ echo "fetch-mkosi: no mkosi/sandbox.py in $deb" >&2; exit 1; }
rm -rf "$out"
mv "$tmp/root" "$out"
echo "$dist"
