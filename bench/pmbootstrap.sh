#!/bin/bash
# make bench-pmbootstrap: pmbootstrap's start-up (`pmbootstrap --offline config device`, which
# enters the sandbox and prints one line), stock (the branch's in-process sandbox) against patched
# (re-run through BIN, contrib/pmbootstrap), and the library mode when `make lib` exists; as a
# user with subordinate ranges and as root; ROUNDS rounds interleaved, medians, ratios. The re-run
# starts Python a second time: its price is shown beside a bare `python3 -c 'import pmb'`.
# Usage: bench/pmbootstrap.sh BIN   (root; uses ../shared's fixture like tests/pmbootstrap.sh)
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
SUITE=bench-pmbootstrap
PMB_TEST_USER=pmbbench18
. "$repo/tests/pmbootstrap/lib.sh"
ROUNDS=${ROUNDS:-9}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
ms() { awk -v us="$1" 'BEGIN { printf "%.0f ms", us / 1000 }'; }

variants=(stock patched)
[ $lib = yes ] && variants+=(lib)
echo "pmbootstrap start-up, $ROUNDS rounds interleaved, medians of the wall time and of the CPU time (user + system, 10 ms"
echo "resolution) of all the run's processes; $(nproc) cores, Linux $(uname -r), load average before: $(cut -d' ' -f1 /proc/loadavg)"
echo
echo "| as | stock (in-process) | patched (re-run through the binary) | patched/stock | library mode | python3 -c 'import pmb' | the binary alone, same options |"
echo "|---|---:|---:|---:|---:|---:|---:|"
# The binary alone, with the options pmbootstrap gives it: a wrapper records them once (NUL-separated)
# and the rounds run them with `true` as the command.
printf '%s\n' '#!/bin/bash' 'for a in "$@"; do [ "$a" = -- ] && break; printf "%s\0" "$a"; done >"$RECORD"' \
	"exec $T/bin/mkosi-sandbox \"\$@\"" >"$T/bin/record"
chmod 755 "$T/bin/record"
for who in user root; do
	setup $who
	touch "$T/out/argv-$who" && chmod 666 "$T/out/argv-$who"
	pmb $who patched private "$T/out/record-$who" PMB_SANDBOX_BINARY="$T/bin/record" RECORD="$T/out/argv-$who" -- config device
	mapfile -d '' opts <"$T/out/argv-$who"
	[ "$(cat "$T/out/record-$who.rc")" = 0 ] && [ ${#opts[@]} -gt 10 ] || { echo "bench-pmbootstrap: recording the options failed" >&2; exit 1; }
	for r in $(seq "$ROUNDS"); do
		pmb $who raw private "$T/out/$who-binary-$r" -- "$T/bin/mkosi-sandbox" "${opts[@]}" -- /bin/true
		for v in "${variants[@]}"; do
			pmb $who $v private "$T/out/$who-$v-$r" -- config device
			[ "$(cat "$T/out/$who-$v-$r.rc")" = 0 ] || { echo "bench-pmbootstrap: $who $v failed:" >&2; tail -3 "$T/out/$who-$v-$r" >&2; exit 1; }
		done
		pmb $who raw private "$T/out/$who-import-$r" -- $PY -c "import sys; sys.path.insert(0, '$T/stock'); import pmb"
	done
	declare -A med=() cpu=()
	for v in "${variants[@]}" import binary; do
		med[$v]=$(cat "$T"/out/$who-$v-*.us | median)
		cpu[$v]=$(cat "$T"/out/$who-$v-*.cpu | median)
	done
	libcell=-
	[ $lib = yes ] && libcell="$(ms "${med[lib]}") ($(awk -v a="${med[lib]}" -v b="${med[stock]}" 'BEGIN { printf "%.2f×", a / b }'))"
	printf '| %s | %s | %s | %s | %s | %s | %s |\n' $who "$(ms "${med[stock]}")" "$(ms "${med[patched]}")" \
		"$(awk -v a="${med[patched]}" -v b="${med[stock]}" 'BEGIN { printf "%.2f×", a / b }')" "$libcell" "$(ms "${med[import]}")" \
		"$(awk -v us="${med[binary]}" 'BEGIN { printf "%.1f ms", us / 1000 }')"
	[ $lib = yes ] && libcell="$(ms "${cpu[lib]}") ($(awk -v a="${cpu[lib]}" -v b="${cpu[stock]}" 'BEGIN { printf "%.2f×", a / b }'))"
	printf '| %s, CPU time | %s | %s | %s | %s | %s | %s |\n' $who "$(ms "${cpu[stock]}")" "$(ms "${cpu[patched]}")" \
		"$(awk -v a="${cpu[patched]}" -v b="${cpu[stock]}" 'BEGIN { printf "%.2f×", a / b }')" "$libcell" "$(ms "${cpu[import]}")" \
		"$(awk -v us="${cpu[binary]}" 'BEGIN { printf "%.0f ms", us / 1000 }')"
	unset med cpu
done
[ $lib = yes ] || echo "(library mode: no target/lib/python; run make lib first)"
