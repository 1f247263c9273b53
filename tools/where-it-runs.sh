#!/bin/sh
# Writes README.md's "Where it runs" table from the rows the suites print with WHERE_IT_RUNS set
# (tests/initramfs/expect.sh, tests/confined.rs): "KERNEL<TAB>ENVIRONMENT<TAB>RESULT". Rows with
# the same environment and result are merged, their kernels listed in the order first seen.
# Usage: where-it-runs.sh ROWS README.md   (`make where-it-runs` runs the suites, then this)
set -eu
rows=$1 readme=$2
grep -q '^<!-- where-it-runs -->$' "$readme" && grep -q '^<!-- /where-it-runs -->$' "$readme" ||
	{ echo "where-it-runs: no <!-- where-it-runs --> markers in $readme" >&2; exit 1; }
table=$(mktemp)
trap 'rm -f "$table" "$table.new"' EXIT
awk -F '\t' '
	NF == 3 {
		key = $2 "\t" $3
		if (!(key in kernels)) { order[++n] = key; kernels[key] = $1 }
		else if (index(", " kernels[key] ", ", ", " $1 ", ") == 0) kernels[key] = kernels[key] ", " $1
	}
	END {
		print "| Environment | Kernels | What the user sees |"
		print "|---|---|---|"
		for (i = 1; i <= n; i++) {
			split(order[i], f, "\t")
			gsub(/\|/, "\\|", f[2]); gsub(/\|/, "\\|", f[1])
			print "| " f[1] " | " kernels[order[i]] " | " f[2] " |"
		}
	}' "$rows" > "$table"
awk -v table="$table" '
	/^<!-- where-it-runs -->$/ { print; while ((getline line < table) > 0) print line; skip = 1; next }
	/^<!-- \/where-it-runs -->$/ { skip = 0 }
	!skip' "$readme" > "$table.new"
cat "$table.new" > "$readme"
