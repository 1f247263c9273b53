# Fetching Debian packages straight from the archive named in this machine's apt sources, for any
# architecture, without touching the host's dpkg (no foreign architectures, no installs).
# Sourced by test scripts (bash). Downloads are checked against the SHA-256 in the Packages index.
# Cache: $DEB_CACHE (default bench/cache/debian).

DEB_CACHE=${DEB_CACHE:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/bench/cache/debian}

# curl that rides out a mirror in mid-sync or a dropped connection.
deb_curl() { curl -fsSL --retry 4 --retry-delay 3 --retry-all-errors "$@"; }

# The first Debian archive (not the security one) named in the apt sources, deb822 or one-line.
deb_mirror() {
	local m
	m=$( { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | sed 's/^URIs:[[:space:]]*//' | tr ' ' '\n'
		grep -hs '^deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
			awk '{for(i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; break}}'; } |
		grep -v -e security -e '^$' | grep '/debian/*$' | head -n 1)
	[ -n "$m" ] || { echo "debian: no Debian archive in the apt sources" >&2; return 1; }
	echo "${m%/}"
}

# deb_index SUITE ARCH: path of the Packages.xz index (cached for a day; checked by xz).
deb_index() {
	local suite=$1 arch=$2 out="$DEB_CACHE/$1-$2-Packages.xz" tmp
	mkdir -p "$DEB_CACHE"
	if [ -z "$(find "$out" -mmin -1440 2>/dev/null)" ]; then
		# A temporary name of its own: test threads fetch concurrently; the rename is atomic.
		tmp=$(mktemp "$out.XXXXXX")
		deb_curl "$(deb_mirror)/dists/$suite/main/binary-$arch/Packages.xz" -o "$tmp" && xz -t "$tmp" && chmod 644 "$tmp" &&
			mv "$tmp" "$out" || { rm -f "$tmp"; echo "debian: cannot fetch the $suite $arch index" >&2; return 1; }
	fi
	echo "$out"
}

# deb_field SUITE ARCH PACKAGE FIELD: one field of the package's stanza (the name is matched as a
# string: kernel package names hold '+').
deb_field() {
	local index
	index=$(deb_index "$1" "$2") || return 1
	{ xz -dc "$index" 2>/dev/null || true; } | awk -v RS= -v want="Package: $3\n" 'index($0 "\n", want) == 1 || index($0 "\n", "\n" want) { print; exit }' |
		sed -n "s/^$4: //p" | head -n 1
}

# deb_fetch SUITE ARCH PACKAGE: downloads the package (checked) into the cache, prints its path.
deb_fetch() {
	local file sum out tmp
	file=$(deb_field "$1" "$2" "$3" Filename) || return 1
	sum=$(deb_field "$1" "$2" "$3" SHA256)
	[ -n "$file" ] && [ -n "$sum" ] || { echo "debian: no $3 for $2 in $1" >&2; return 1; }
	out="$DEB_CACHE/${file##*/}"
	if ! echo "$sum  $out" | sha256sum -c --status 2>/dev/null; then
		tmp=$(mktemp "$out.XXXXXX")
		deb_curl "$(deb_mirror)/$file" -o "$tmp" || { rm -f "$tmp"; echo "debian: cannot fetch $file" >&2; return 1; }
		echo "$sum  $tmp" | sha256sum -c --status || { rm -f "$tmp"; echo "debian: $file: SHA-256 mismatch" >&2; return 1; }
		chmod 644 "$tmp" && mv "$tmp" "$out"
	fi
	echo "$out"
}

# deb_extract DEB DIR PATTERN...: unpacks the matching members of DEB under DIR.
deb_extract() {
	local deb=$1 dir=$2; shift 2
	mkdir -p "$dir"
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dir" --wildcards "$@"
}
