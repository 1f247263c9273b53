#!/bin/bash
# Makes sure a test suite can run on this machine, then runs it.
# Usage: prereqs.sh SUITE [-- COMMAND [ARGS...]]
# Reads SUITE's line in tests/prereqs.list; installs the missing Debian packages (apt-get, as
# root, retrying transient mirror errors such as "Mirror sync in progress"; an index that fails
# to download is tolerated as long as the packages are still found) and rustup targets. When a
# need cannot be met (not root, no apt-get, no rustup) it prints one "SKIP SUITE: why" line and
# exits 0 without running COMMAND; a failed installation is an error (exit 1).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
suite=${1:?usage: prereqs.sh SUITE [-- COMMAND...]}
shift
[ "${1:-}" != -- ] || shift

needs=$(awk -v s="$suite" '$1 == s { $1 = ""; print; found = 1 } END { exit !found }' "$here/prereqs.list") ||
	{ echo "prereqs: no suite '$suite' in tests/prereqs.list" >&2; exit 1; }

skip() { echo "SKIP $suite: $*"; exit 0; }
root=no; [ "$(id -u)" = 0 ] && root=yes
apt=() targets=() components=()
for need in $needs; do
	case $need in
	root) [ $root = yes ] || skip "runs as root (it also switches to uid 65534)" ;;
	rustup:*) rustup target list --installed 2>/dev/null | grep -qx "${need#rustup:}" || targets+=("${need#rustup:}") ;;
	component:*) rustup component list --installed 2>/dev/null | grep -q "^${need#component:}" || components+=("${need#component:}") ;;
	*) [ "$(dpkg-query -W -f '${db:Status-Status}' "$need" 2>/dev/null)" = installed ] || apt+=("$need") ;;
	esac
done

if [ ${#targets[@]} -gt 0 ] || [ ${#components[@]} -gt 0 ]; then
	command -v rustup >/dev/null || skip "needs rustup for ${targets[*]} ${components[*]}"
	for t in "${targets[@]}"; do rustup target add "$t" || { echo "prereqs $suite: rustup target add $t failed" >&2; exit 1; }; done
	for c in "${components[@]}"; do rustup component add "$c" || { echo "prereqs $suite: rustup component add $c failed" >&2; exit 1; }; done
fi

# apt_install PACKAGES...: up to three rounds of (update if needed, install).
apt_install() {
	local apt=(apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3 -q) log round update=no p
	log=$(mktemp)
	export DEBIAN_FRONTEND=noninteractive
	for p in "$@"; do # an empty or stale package list: the package has no candidate
		apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [0-9]' || update=yes
	done
	for round in 1 2 3; do
		if [ $update = yes ] && ! "${apt[@]}" update >"$log" 2>&1; then
			# Often a foreign-architecture index caught mid-sync; the install below says whether
			# what this suite needs was found anyway.
			echo "prereqs $suite: apt-get update had errors (round $round): $(grep -m1 '^E:' "$log")"
		fi
		if "${apt[@]}" install -y --no-install-recommends "$@" >"$log" 2>&1; then rm -f "$log"; return 0; fi
		echo "prereqs $suite: apt-get install failed (round $round): $(grep -m1 '^E:' "$log")"
		update=yes
		[ $round = 3 ] || sleep $((round * 15))
	done
	tail -n 20 "$log" >&2; rm -f "$log"
	return 1
}
if [ ${#apt[@]} -gt 0 ]; then
	command -v apt-get >/dev/null || skip "needs the packages ${apt[*]} (no apt-get here to install them)"
	[ $root = yes ] || skip "needs the packages ${apt[*]} (run as root to install them)"
	echo "prereqs $suite: installing ${apt[*]}"
	apt_install "${apt[@]}" || { echo "prereqs $suite: cannot install ${apt[*]}" >&2; exit 1; }
fi
[ $# = 0 ] || exec "$@"
