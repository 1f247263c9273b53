#!/bin/bash
# make test-pmbootstrap: pmbootstrap (branch casey/unshare at fab411c5, ../shared's fixture, GPL;
# unpacked into a temporary directory, never copied into the repository) run stock and patched by
# contrib/pmbootstrap/patch-pmbootstrap to enter its sandbox through BIN, over the same commands,
# as root and as a user with subordinate ranges; they must agree on exit codes and normalised
# output; what each sees from inside (maps, capabilities, mounts) may differ only as documented;
# pmbootstrap's own pytest suite gives the same counts inside each (stock, re-run, and the library
# mode when `make lib` has run) as outside; nothing leaks.
#
# Usage: tests/pmbootstrap.sh BIN        (as root; prints one SKIP line without ../shared)
#
# Offline: pmbootstrap's only download on these commands is Alpine's APKINDEX and apk-tools-static
# (apk_static.init()); tests/pmbootstrap/offline.py stubs exactly that, and the sysroot is an
# already-initialised skeleton. Each run happens in its own mount namespace (made here, with a
# private /tmp, / private or shared as asked), with /proc/self/loginuid set to the caller, as a
# login session has it (the branch calls os.getlogin(), which fails without a terminal otherwise).
# The host needs /var/cache/apk (the branch's mount point): made when absent, removed at exit.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
SUITE=test-pmbootstrap
. "$repo/tests/pmbootstrap/lib.sh"
START=$SECONDS
LIMIT=${PMB_TEST_LIMIT:-900} # seconds for the whole suite; every run has its own timeout too
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
passes=0
ok() { echo "ok: $*"; passes=$((passes + 1)); }

# pytest: Debian's python3-pytest, else pip; without either (offline), the pytest part SKIPs.
if ! $PY -c 'import pytest' 2>/dev/null; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-pytest >/dev/null 2>&1 ||
		$PY -m pip install -q pytest >/dev/null 2>&1 || true
fi
have_pytest=no; $PY -c 'import pytest' 2>/dev/null && have_pytest=yes

# The patcher refuses what it does not know, in one line.
mkdir -p "$T/bad/pmb/init" && echo 'def enter(self): pass' >"$T/bad/pmb/init/sysroot.py"
msg=$("$repo/contrib/pmbootstrap/patch-pmbootstrap" "$T/bad" "$T/bad-out" 2>&1) && fail "patcher accepted an unknown tree"
[ "$(printf '%s\n' "$msg" | wc -l)" = 1 ] && [[ $msg == *"anchor 'PmbSandboxBuilder.enter()'"* ]] && ok "patcher refuses an unknown tree in one line: $msg" ||
	fail "patcher's refusal: $msg"

COMMANDS=("config" "config device" "work_migrate" "status" "apkbuild_parse hello-world" "-y zap")
table=$T/table
printf '| as | command | stock exit | patched exit | output | library mode exit | output |\n|---|---|---:|---:|---|---:|---|\n' >"$table"

# compare WHO: every command, then the probe, stock against patched (each on a fresh home).
compare() {
	local who=$1 variant c i n=0 variants=(stock patched)
	[ $lib = yes ] && variants+=(lib)
	for variant in "${variants[@]}"; do
		setup "$who" || { fail "setup $who"; return; }
		i=0
		for c in "${COMMANDS[@]}"; do
			# shellcheck disable=SC2086 # the command's words
			pmb "$who" $variant private "$T/out/$who-$variant-$i" -- $c
			i=$((i + 1))
		done
		# The library mode's probe runs below (against the re-run's); its pytest here, as the others'.
		[ $variant = lib ] || pmb "$who" $variant private "$T/out/$who-$variant-probe" PMB_PROBE=probe -- status
		[ $have_pytest = yes ] && pmb "$who" $variant private "$T/out/$who-$variant-pytest" PMB_PROBE=pytest -- status
	done
	i=0
	for c in "${COMMANDS[@]}"; do
		local s=$T/out/$who-stock-$i p=$T/out/$who-patched-$i l=$T/out/$who-lib-$i same=same lrc=- lsame=-
		cmp -s <(normalise "$s") <(normalise "$p") || same=DIFFERENT
		if [ $lib = yes ]; then
			lrc=$(cat "$l.rc") lsame=same
			cmp -s <(normalise "$s") <(normalise "$l") || lsame=DIFFERENT
			[ "$lrc" = "$(cat "$s.rc")" ] && [ $lsame = same ] ||
				{ fail "$who '$c' in the library mode: exit $lrc, output $lsame"; diff <(normalise "$s") <(normalise "$l") | head; }
		fi
		printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$who" "$c" "$(cat "$s.rc")" "$(cat "$p.rc")" "$same" "$lrc" "$lsame" >>"$table"
		if [ "$(cat "$s.rc")" = "$(cat "$p.rc")" ] && [ $same = same ] && [ "$(cat "$s.rc")" = 0 ]; then
			n=$((n + 1))
		else
			fail "$who '$c': stock exit $(cat "$s.rc"), patched exit $(cat "$p.rc"), output $same"
			diff <(normalise "$s") <(normalise "$p") | head -20
		fi
		i=$((i + 1))
	done
	ok "$who: $n of ${#COMMANDS[@]} commands agree (exit 0, same normalised output)"
}

probe_check() {
	local who=$1 s=$T/out/$1-stock-probe p=$T/out/$1-patched-probe variant
	# Both bind over the host's /etc/passwd: a concurrent useradd/userdel on this shared machine
	# (another suite) renames a new file over it and the mount stays on the old one. Retried once.
	if ! grep -q '^/etc/passwd is a symlink whose first user is True$' "$p" ||
		! grep -q '^/etc/passwd is a file whose first user is True$' "$s"; then
		echo "   ($who: /etc/passwd replaced on the host during the probe; probing again)"
		setup "$who"
		pmb "$who" stock private "$s" PMB_PROBE=probe -- status
		setup "$who"
		pmb "$who" patched private "$p" PMB_PROBE=probe -- status
	fi
	for f in "$s" "$p"; do
		[ "$(cat "$f.rc")" = 0 ] || { fail "$who probe ($(basename "$f")) exit $(cat "$f.rc")"; tail -5 "$f"; }
	done
	# Expected differences (README "Using it with pmbootstrap"): the branch's 8th operation binds the
	# host's / over the new root, so its /tmp tmpfs, binfmt_misc and read-only resolv.conf are
	# hidden (host /tmp, nothing at /tmp/pmb_binfmt_misc, the host's resolv.conf unmounted) and
	# its /etc/passwd is a bind of a file it wrote into the host's /tmp; through the binary /
	# comes first, /tmp is a tmpfs with the sandbox's binfmt_misc, resolv.conf a read-only bind,
	# /etc/passwd a symlink into /tmp. In the branch pmbootstrap is PID 1 of its namespace (the
	# fork's child is its first process), through the binary PID 2 under the binary's init. The
	# branch raises every capability into the ambient set; the binary does not (uid 0 inside gets
	# them at execve() anyway). Everything else must be the same.
	local diffs
	diffs=$(diff <(normalise "$s") <(normalise "$p") | grep '^[<>]' |
		grep -v -e '^[<>] mount /tmp: ' -e '^[<>] mount /tmp/pmb_binfmt_misc: ' -e '^[<>] /etc/passwd is a ' \
			-e '^< mount /etc/resolv.conf: -$' -e '^> mount /etc/resolv.conf: ' -e '^< pid: 1$' -e '^> pid: 2$' \
			-e '^< Cap\(Inh\|Amb\): 000001ffffffffff$' -e '^> Cap\(Inh\|Amb\): 0000000000000000$' || true)
	[ -z "$diffs" ] && ok "$who probe: maps, capabilities, chroot /dev and /proc through pmbootstrap's helpers agree" ||
		{ fail "$who probe: unexplained differences"; echo "$diffs"; }
	grep -q '^mount /tmp: tmpfs$' "$p" && grep -q '^mount /tmp/pmb_binfmt_misc: binfmt_misc$' "$p" &&
		grep -q '^/etc/passwd is a symlink whose first user is True$' "$p" &&
		ok "$who patched: /tmp is a tmpfs with binfmt_misc at /tmp/pmb_binfmt_misc, /etc/passwd the stub" ||
		fail "$who patched: the listed /tmp, binfmt_misc or passwd missing"
	grep -q '^mount /tmp/pmb_binfmt_misc: -$' "$s" && echo "   (stock $who: binfmt_misc hidden by the branch's bind of /, as documented)"
	grep -q '^mounts under the chroot after umount_all: 0$' "$p" && grep -q '^chroot /dev/null is a char device: True$' "$p" ||
		fail "$who patched: chroot /dev or umount_all"
	[ "$(cat "$p.passwd")" = absent ] && ok "$who patched: nothing written into the caller's /tmp" ||
		fail "$who patched: wrote /tmp/passwd in the caller's namespace"
	[ "$(cat "$s.passwd")" = written ] && echo "   (stock $who: the branch wrote its stub passwd into the caller's /tmp, as documented)"
	sed -n -e 's/^/   patched: /' -e '/uid_map\|gid_map\|CapEff\|CapBnd\|CapAmb\|pid:/p' "$p"
	if [ $have_pytest = yes ]; then
		local outside
		outside=$(cd "$T/stock" && "${as[@]}" env -i PATH=/usr/bin:/bin HOME="$D/home" LANG=C.UTF-8 \
			timeout 300 $PY -m pytest -q -p no:cacheprovider --continue-on-collection-errors \
			--basetemp "$D/pytest/outside" test 2>&1 | grep -v '^$' | tail -1)
		local variants=(stock patched)
		[ $lib = yes ] && variants+=(lib)
		for variant in "${variants[@]}"; do
			local inside name=$variant how=in-process
			[ $variant = lib ] && name="library-mode" how=library
			[ $variant = patched ] && how=re-run
			inside=$(sed -n 's/^pytest: //p' "$T/out/$who-$variant-pytest")
			# Each mode is the one asked for (a library mode that fell back would look like stock).
			grep -qx "entered by: $how" "$T/out/$who-$variant-pytest" ||
				fail "$who pytest in the $name sandbox: $(grep -m1 '^entered by: ' "$T/out/$who-$variant-pytest" || echo 'no "entered by" line'), not $how"
			[ -n "$inside" ] && [ "$(counts "$inside")" = "$(counts "$outside")" ] &&
				ok "$who pytest inside the $name sandbox: $inside; outside: $outside" ||
				{ fail "$who pytest: inside the $name sandbox '$inside', outside '$outside'"; tail -3 "$T/out/$who-$variant-pytest"; }
		done
	fi
}
# pytest's summary without its time: "1 failed, 37 passed, ... in 0.97s" -> "1 failed, 37 passed, ...".
counts() { sed -e 's/ in [0-9.]*s.*$//' -e 's/=//g' -e 's/^ *//' <<<"$1"; }

for who in root user; do
	as=()
	[ $who = user ] && as=(setpriv --reuid="$uid" --regid="$gid" --clear-groups)
	[ $((SECONDS - START)) -lt "$LIMIT" ] || { fail "time limit ${LIMIT}s reached before $who"; break; }
	compare $who
	probe_check $who
done

# Root, with / shared in the caller's namespace (every systemd host): through the binary nothing
# leaks; the branch's in-process entry (measured, reported) leaks and fails with EINVAL.
setup root
pmb root patched shared "$T/out/leak-patched" -- status
pmb root stock shared "$T/out/leak-stock" -- status
read -r b a <"$T/out/leak-patched.mounts"
[ "$(cat "$T/out/leak-patched.rc")" = 0 ] && [ "$b" = "$a" ] && ok "root, / shared: patched exits 0, the caller's namespace keeps its $b mounts" ||
	fail "root, / shared: patched exit $(cat "$T/out/leak-patched.rc"), mounts $b -> $a"
read -r b a <"$T/out/leak-stock.mounts"
einval=$(grep -m1 -o 'Invalid argument\|EINVAL' "$T/out/leak-stock")
echo "   (stock, root, / shared: exit $(cat "$T/out/leak-stock.rc"), the caller's mounts $b -> $a${einval:+; it failed with $einval})"

# Unprivileged: a register at /tmp/pmb_binfmt_misc lands in the sandbox's own instance (Linux >= 6.7).
kernel=$(uname -r)
if [ "$(printf '%s\n6.7\n' "${kernel%%-*}" | sort -V | head -1)" = 6.7 ]; then
	setup user
	pmb user patched private "$T/out/binfmt" PMB_PROBE=probe PMB_PROBE_REGISTER=1 -- status
	grep -q '^binfmt register: ok, entry True$' "$T/out/binfmt" && [ ! -e /proc/sys/fs/binfmt_misc/pmbprobe ] &&
		ok "user: a register at /tmp/pmb_binfmt_misc lands in the sandbox's own binfmt_misc (Linux $kernel)" ||
		{ fail "user: binfmt register"; grep binfmt "$T/out/binfmt"; }
else
	echo "SKIP test-pmbootstrap binfmt register: Linux $kernel < 6.7 (binfmt_misc is not per user namespace)"
fi
[ "$(ls /proc/sys/fs/binfmt_misc 2>/dev/null | sort | tr '\n' ' ')" = "$host_binfmt_before" ] &&
	ok "the host's binfmt_misc is untouched" || fail "the host's binfmt_misc changed"

# --map-auto (what a user whose /etc/subuid grants some other range gets): 0 -> caller, 1.. -> range.
setup user
pmb user patched private "$T/out/auto" PMB_SANDBOX_MAP=auto PMB_PROBE=probe -- status
grep -q "^uid_map: 0 $uid 1; 1 100000 65535$" "$T/out/auto" && [ "$(cat "$T/out/auto.rc")" = 0 ] &&
	ok "user, PMB_SANDBOX_MAP=auto: $(grep '^uid_map' "$T/out/auto")" || { fail "map-auto"; grep -m3 'map\|ERROR' "$T/out/auto"; }

# A re-run does not re-enter: the patched pmbootstrap inside sees it is inside (one sandbox,
# one PID namespace: pmbootstrap is PID 2 under the binary's init).
grep -q '^pid: 2$' "$T/out/user-patched-probe" && ok "user patched: entered once (pid 2 under the binary's init)" ||
	fail "user patched: pid $(sed -n 's/^pid: //p' "$T/out/user-patched-probe")"

# The library mode (i20's `make lib`): the same options applied in-process, no second Python start.
if [ $lib = yes ]; then
	for who in root user; do
		setup $who
		pmb $who lib private "$T/out/lib-$who" PMB_PROBE=probe -- status
		diffs=$(diff <(normalise "$T/out/$who-patched-probe") <(normalise "$T/out/lib-$who") | grep '^[<>]' || true)
		[ "$(cat "$T/out/lib-$who.rc")" = 0 ] && [ -z "$diffs" ] && ok "$who library mode: the probe sees what the re-run sees" ||
			{ fail "$who library mode: exit $(cat "$T/out/lib-$who.rc")"; echo "$diffs" | head; tail -3 "$T/out/lib-$who"; }
	done
	# PMB_SANDBOX_BINARY set and the module importable, PMB_SANDBOX_LIBRARY unset: the library wins
	# (no second Python start), as a user who installed both gets.
	if [ $have_pytest = yes ]; then
		setup user
		pmb user installed private "$T/out/user-installed" PMB_PROBE=pytest -- status
		grep -qx 'entered by: library' "$T/out/user-installed" && [ "$(cat "$T/out/user-installed.rc")" = 0 ] &&
			ok "user, binary named and library installed: enters through the library" ||
			{ fail "user, binary named and library installed: exit $(cat "$T/out/user-installed.rc"), $(grep -m1 '^entered by: ' "$T/out/user-installed" || echo 'no "entered by" line')"; tail -3 "$T/out/user-installed"; }
	fi
else
	echo "SKIP test-pmbootstrap library mode: no target/lib/python (make lib builds it)"
fi

echo
cat "$table"
# Nothing left behind: no mount under the test directory in this namespace.
grep -q " $T" /proc/self/mountinfo && fail "a mount under $T is left"
echo "test-pmbootstrap: $((SECONDS - START)) s"
echo "test-pmbootstrap: $passes passed, $fails failed"
[ $fails = 0 ]
