#!/bin/bash
# No module imports a module above it: the layer order is the numbered list in src/lib.rs's doc
# comment ("//! N. [`a`], [`b`]: ..."); a module may use modules of lower layers (and itself).
# Also: `unsafe` is allowed only at the boundaries (sys, containers; main.rs is its own crate
# root), as Cargo.toml's comment says; and README's "Where things are" names every source file.
# Usage: tests/layers.sh   (from the repository root; `make check` runs it)
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A layer
while read -r n mods; do
	for m in $mods; do layer[$m]=$n; done
done < <(grep '^//! [0-9]\+\. ' src/lib.rs | sed 's/: .*//' |
	awk '{ n = $2 + 0; out = n; s = $0
		while (match(s, /\[`[a-z_]+`\]/)) { out = out " " substr(s, RSTART + 2, RLENGTH - 4); s = substr(s, RSTART + RLENGTH) }
		print out }')

[ ${#layer[@]} -gt 0 ] || { echo "layers.sh: no layer list found in src/lib.rs" >&2; exit 1; }
bad=0
for file in $(find src -name '*.rs' ! -path src/lib.rs ! -path src/main.rs | sort); do
	rel=${file#src/}
	module=${rel%%/*}
	module=${module%.rs}
	own=${layer[$module]:-}
	if [ -z "$own" ]; then
		echo "layers.sh: $file: module '$module' is not in the layer list of src/lib.rs" >&2
		bad=1
		continue
	fi
	# Every crate path this file names: crate::x, and crate::{x, y::z}.
	used=$(grep -v '^\s*//' "$file" | grep -o 'crate::\({[^}]*}\|[a-z_]*\)' |
		sed 's/^crate:://; s/[{}]//g' | tr ',' '\n' | sed 's/^ *//; s/::.*//' | grep -v '^$' | sort -u || true)
	for dep in $used; do
		[ "$dep" = "$module" ] && continue
		theirs=${layer[$dep]:-}
		if [ -z "$theirs" ]; then
			# An item of lib.rs itself (the top): always above.
			echo "layers.sh: $file ($module, layer $own) uses crate::$dep, which is lib.rs (the top)" >&2
			bad=1
		elif [ "$theirs" -ge "$own" ]; then
			echo "layers.sh: $file ($module, layer $own) uses $dep (layer $theirs): not below" >&2
			bad=1
		fi
	done
done

# The unsafe boundary.
for file in $(grep -rl 'allow(unsafe_code)' src | sort); do
	case $file in
		src/sys.rs | src/sys/*.rs | src/containers.rs) ;;
		*) echo "layers.sh: $file allows unsafe_code outside sys and containers" >&2; bad=1 ;;
	esac
done

# README's map of the code: every file, by its path or its directory's (`src/seccomp/`).
where=$(sed -n '/^## Where things are/,/^## /p' README.md)
for file in $(find src -name '*.rs' | sort); do
	dir=${file%/*}/
	if ! grep -qF "\`$file\`" <<<"$where" && ! grep -qF "\`$dir\`" <<<"$where"; then
		echo "layers.sh: $file is not in README's \"Where things are\"" >&2
		bad=1
	fi
done

[ $bad = 0 ] && echo "layers.sh: ${#layer[@]} modules, no module uses one above it; unsafe only in sys and containers; README names every file"
exit $bad
