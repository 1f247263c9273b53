#!/bin/bash
# mkosi 25.3 and 27.1 (Debian packages) building the image of tests/mkosi.sh, interleaved: each
# round builds every version in every variant (stock: mkosi's own sandbox; nocopy: the same
# without the per-start copy of the mkosi package; patched: through this binary), in a rotating
# order. The first round fills the caches and counts sandbox starts (tracefs); it is not timed.
# Prints a Markdown table of medians: wall and CPU time (the whole process tree) per build.
# Run as root. Usage: mkosi.sh BINARY   (env: ROUNDS, default 4 including the first)
set -u
source "$(dirname "$0")/../tests/mkosi-lib.sh"
[ $# = 1 ] || die "usage: mkosi.sh BINARY"
rounds=${ROUNDS:-4}
mkosi_setup "$1"
variants=(stock nocopy patched)
declare -A wall cpu starts

for round in $(seq 1 "$rounds"); do
	for pair in "${MKOSI_VERSIONS[@]}"; do
		read -r version _ <<< "$pair"
		for k in 0 1 2; do
			variant=${variants[$(( (k + round) % 3 ))]}
			[ "$round" = 1 ] || TRACE_OFF=1
			mkosi_build "$version" "$variant" "bench-$version-$variant" || exit 1
			if [ "$round" = 1 ]; then
				starts[$version-$variant]=${BUILD_STARTS%% *}
			else
				wall[$version-$variant]+=" $BUILD_WALL"; cpu[$version-$variant]+=" $BUILD_CPU"
			fi
			echo "round $round: mkosi $version $variant: $BUILD_WALL ms wall, $BUILD_CPU ms CPU" >&2
		done
	done
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
secs() { awk -v ms="$1" 'BEGIN { printf "%.2f s", ms / 1000 }'; }

echo "| mkosi | variant | sandbox starts | wall | CPU | CPU vs stock |"
echo "|---|---|---:|---:|---:|---:|"
for pair in "${MKOSI_VERSIONS[@]}"; do
	read -r version _ <<< "$pair"
	base=$(echo "${cpu[$version-stock]}" | median)
	for variant in "${variants[@]}"; do
		w=$(echo "${wall[$version-$variant]}" | median); c=$(echo "${cpu[$version-$variant]}" | median)
		echo "| $version | $variant | ${starts[$version-$variant]:-?} | $(secs "$w") | $(secs "$c") | $(awk -v a="$c" -v b="$base" 'BEGIN { printf "%.2f×", a / b }') |"
	done
done
echo
echo "$((rounds - 1)) timed rounds (medians), interleaved; first round discarded. CPU = user + system of the whole build."
rm -rf "$W"/out/bench-*/image
