#!/bin/bash
# Real clients: unmodified Debian packages of mkosi 25.3 (trixie) and 27.1 (sid) build a Debian
# bookworm directory image (coreutils, less; the post-install script runs mkosi-chroot) with their
# own sandbox and through this binary (contrib/mkosi/patch-mkosi); each pair of images must be
# identical file by file (paths, types, modes, owners, sizes, link targets). Also: every sandbox
# of a patched build ran this binary (counted with tracefs when available), mkosi-chroot ran in
# the image as root, and 27.1's glob_in_sandbox()/exists_in_sandbox() agree with the stock ones.
# With LIBDIR (make lib's target/lib/python) 27.1 builds the image a third way, "library"
# (patch-mkosi --library: fork_and_wait() and spawn()'s preexec_fn enter through the library).
# Run as root. Usage: mkosi.sh BINARY [LIBDIR]   (work directory: $MKOSI_TEST_DIR, see tests/mkosi-lib.sh)
set -u
source "$(dirname "$0")/mkosi-lib.sh"
[ $# = 1 ] || [ $# = 2 ] || die "usage: mkosi.sh BINARY [LIBDIR]"
start=$(date +%s)
mkosi_setup "$1" "${2:-}"
variants() { # the variants of version $1
	echo stock patched
	[ -d "$W/variants/$1-library" ] && echo library
}

pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

# patch-mkosi refuses code it does not know, in one line naming the anchor, and writes nothing;
# it never writes into SRC (mkosi_setup just patched both versions).
for pair in "${MKOSI_VERSIONS[@]}"; do
	read -r version _ <<< "$pair"
	src=$(readlink -f "$W/variants/$version-stock")
	changed=$(find "$src" -name __pycache__ -prune -o -newer "$W/variants/$version-patched/mkosi/run.py" -print -quit)
	[ -z "$changed" ] && ok || bad "patch-mkosi $version wrote into SRC: $changed"
	odd=$(mktemp -d)
	mkdir "$odd/src"; cp -r "$src/mkosi" "$odd/src/"
	sed -i 's/"--ro-bind", module \/ "sandbox.py", "\/sandbox.py",/"--ro-bind", module \/ "sandbox.py", "\/mkosi-sandbox.py",/' "$odd/src/mkosi/run.py"
	err=$("$top/contrib/mkosi/patch-mkosi" "$odd/src" "$odd/dst" "$W/bin/mkosi-sandbox" 2>&1); rc=$?
	if [ $rc = 1 ] && [ "$(echo "$err" | wc -l)" = 1 ] && [[ $err == *"anchor 'sandbox.py bound at /sandbox.py' in run.py found 0 times"* ]] && [ ! -e "$odd/dst/mkosi" ]; then
		ok
	else
		bad "patch-mkosi on changed $version code: status $rc: $err"
	fi
	rm -rf "$odd"
done

for pair in "${MKOSI_VERSIONS[@]}"; do
	read -r version _ <<< "$pair"
	for variant in $(variants "$version"); do
		mkosi_build "$version" "$variant" "$version-$variant" || exit 1
		echo "mkosi $version $variant: ${BUILD_WALL} ms wall, ${BUILD_CPU} ms CPU, sandbox starts: ${BUILD_STARTS:-not counted}"
		mkosi_manifest "$W/out/$version-$variant/image" > "$W/out/$version-$variant.manifest"
		case $variant in
			# Every start went through this binary: as mkosi-sandbox, or as /sandbox.py (mkosi-chroot).
			patched) comms=${BUILD_STARTS#* } ;;
			stock | library) comms="" ;;
		esac
		if [ -n "$comms" ] && echo "$comms" | tr ',' '\n' | grep -v -e '^mkosi-sandbox=' -e '^sandbox.py=' | grep -q .; then
			bad "$version patched: sandboxes not started by this binary: $comms"
		fi
		# The library's entries are made in mkosi's own forked processes, which call pivot_root()
		# before any exec (counted as "unknown": no binary named them).
		if [ $variant = library ] && [ -n "$BUILD_STARTS" ] &&
			! echo "${BUILD_STARTS#* }" | tr ',' '\n' | grep -q '^unknown='; then
			bad "$version library: no in-process entry seen: $BUILD_STARTS"
		fi
		chroot_test=$W/out/$version-$variant/image/etc/mkosi-chroot-test
		if [ "$(cat "$chroot_test" 2>/dev/null)" = "$(printf 'uid=0 container=mkosi\ncoreutils\nless')" ]; then
			ok
		else
			bad "$version $variant: mkosi-chroot in the post-install script: $(head -c 200 "$chroot_test" 2>&1)"
		fi
	done
	digest=$(sha256sum < "$W/out/$version-stock.manifest" | cut -d' ' -f1)
	files=$(wc -l < "$W/out/$version-stock.manifest")
	for variant in $(variants "$version"); do
		[ $variant = stock ] && continue
		if cmp -s "$W/out/$version-stock.manifest" "$W/out/$version-$variant.manifest"; then
			ok
			echo "mkosi $version: stock and $variant images identical: $files entries, manifest sha256 $digest"
		else
			bad "mkosi $version: the images differ (stock <, $variant >):"
			diff "$W/out/$version-stock.manifest" "$W/out/$version-$variant.manifest" | head -n 20
		fi
	done
done

# 27.x enters the sandbox in-process for glob_in_sandbox()/exists_in_sandbox() (RHEL, openSUSE
# builds only); the patched copy runs them as commands through this binary: same answers.
# Unbuffered (-u): stock forks in-process, and a child would print a buffered line again.
probe='
from mkosi.run import exists_in_sandbox, glob_in_sandbox, sandbox_cmd
print(exists_in_sandbox("/usr/bin/env", sandbox=sandbox_cmd()), exists_in_sandbox("/nonexistent", sandbox=sandbox_cmd()))
print(glob_in_sandbox("usr/lib/os-rel*", "usr/bin/tru[e]", "nothing*", sandbox=sandbox_cmd()))
'
stock=$(cd / && PYTHONPATH="$W/variants/27.1-stock" /usr/bin/python3 -u -c "$probe" 2>&1)
patched=$(cd / && PYTHONPATH="$W/variants/27.1-patched" /usr/bin/python3 -u -c "$probe" 2>&1)
if [ "$stock" = "$patched" ] && [ "$(echo "$stock" | head -n 1)" = "True False" ] && echo "$stock" | grep -q "/usr/bin/true"; then
	ok
else
	bad "27.1 glob_in_sandbox/exists_in_sandbox: stock: $stock; patched: $patched"
fi
if [ -d "$W/variants/27.1-library" ]; then
	library=$(cd / && PYTHONPATH="$W/variants/27.1-library" /usr/bin/python3 -u -c "$probe" 2>&1)
	[ "$stock" = "$library" ] && ok || bad "27.1 glob_in_sandbox/exists_in_sandbox: stock: $stock; library: $library"
fi

echo "mkosi: $pass passed, $fail failed ($(( $(date +%s) - start )) s)"
# Keep the caches, manifests and logs; the images only when something failed.
[ $fail = 0 ] && rm -rf "$W"/out/*/image
[ $fail = 0 ]
