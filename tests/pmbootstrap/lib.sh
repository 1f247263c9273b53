# Shared by tests/pmbootstrap.sh and bench/pmbootstrap.sh (sourced; SUITE names the caller):
# the fixture checked and unpacked, patched, a user with subordinate ranges, a pmbootstrap home,
# one run in its own mount namespace. Everything lives under $T, removed at exit with the user.
BIN=$(realpath "${1:?usage: $0 BIN}")
SHA=2077d533291dc13c61f3bc5c763f3ba3747c7c1e6d0ed00d60b4d3b6e801e71d
NAME=pmbootstrap-fab411c5.tar.gz

# ../shared beside the repository (CI's layout), or beside the main worktree of a linked one.
fixture=$repo/../shared/fixtures/$NAME
if [ ! -f "$fixture" ]; then
	common=$(git -C "$repo" rev-parse --path-format=absolute --git-common-dir 2>/dev/null || true)
	[ -n "$common" ] && fixture=$(dirname "$(dirname "$common")")/shared/fixtures/$NAME
fi
[ -f "$fixture" ] || { echo "SKIP $SUITE: ../shared/fixtures/$NAME is absent"; exit 0; }
[ "$(id -u)" = 0 ] || { echo "SKIP $SUITE: runs as root (it also creates a user)"; exit 0; }
echo "$SHA  $fixture" | sha256sum -c --quiet - || { echo "$SUITE: $fixture: sha256 mismatch" >&2; exit 1; }

PY=/usr/bin/python3
[ -x $PY ] || PY=$(command -v python3)
USERNAME=${PMB_TEST_USER:-pmbsbx18}

T=$(mktemp -d /var/tmp/pmbootstrap-test.XXXXXX)
chmod 755 "$T"
made_apk_cache=no
host_binfmt_before=$(ls /proc/sys/fs/binfmt_misc 2>/dev/null | sort | tr '\n' ' ')
# useradd, usermod and userdel take the shadow lock themselves (other suites add users at the
# same time); userdel also removes the user's /etc/subuid and /etc/subgid lines.
cleanup() {
	userdel "$USERNAME" >/dev/null 2>&1
	[ $made_apk_cache = yes ] && rmdir /var/cache/apk 2>/dev/null
	[ -n "${PMB_TEST_KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The test user: subordinate ranges covering the branch's hard-coded layout (100000-120000).
# Exactly one range each (no automatic one from login.defs' SUB_UID_COUNT), so --map-auto's
# "first range" is this one.
userdel "$USERNAME" >/dev/null 2>&1
useradd -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 -M -d /nonexistent -s /usr/sbin/nologin "$USERNAME" &&
	usermod --add-subuids 100000-165535 --add-subgids 100000-165535 "$USERNAME" ||
	{ echo "$SUITE: useradd/usermod failed" >&2; exit 1; }
uid=$(id -u "$USERNAME") gid=$(id -g "$USERNAME")
[ -d /var/cache/apk ] || { mkdir -p /var/cache/apk && made_apk_cache=yes; }

mkdir -p "$T/bin" "$T/out"
install -m 755 "$BIN" "$T/bin/mkosi-sandbox"
install -m 644 "$repo/tests/pmbootstrap/offline.py" "$T/offline.py"
tar -xzf "$fixture" -C "$T" && mv "$T/pmbootstrap-fab411c5" "$T/stock" || exit 1
"$repo/contrib/pmbootstrap/patch-pmbootstrap" "$T/stock" "$T/patched" || { echo "test-pmbootstrap: patch-pmbootstrap refused the fixture" >&2; exit 1; }
# Byte-compiled once, as root: the user cannot write __pycache__ here, and would otherwise compile
# every module on every start (the benchmark would measure that).
$PY -m compileall -q "$T/stock" "$T/patched" "$T/offline.py" >/dev/null
chmod -R a+rX "$T"

# The library mode: `make lib`'s target/lib (python/ makes `import mkosi_sandbox` work), or
# PMB_TEST_LIB naming such a directory.
lib=no libdir=${PMB_TEST_LIB:-$repo/target/lib}
if [ -f "$libdir/python/mkosi_sandbox/__init__.py" ] || [ -f "$libdir/python/mkosi_sandbox.py" ]; then
	cp -r "$libdir" "$T/lib" && chmod -R a+rX "$T/lib" && lib=yes
fi

# A pmbootstrap home for WHO (root|user) at $T/h: config, a pmaports skeleton (git, one device,
# one package), channels.cfg (PMB_CHANNELS_CFG), an initialised sysroot skeleton, work version 8.
D=$T/h
setup() {
	local owner=root:root
	[ "$1" = user ] && owner=$uid:$gid
	rm -rf "$D"
	mkdir -p "$D/home/.config" "$D/work/sysroot/etc/apk" "$D/work/sysroot/usr/bin" "$D/work/cache" "$D/cwd" \
		"$D/pmaports/device/testing/device-qemu-amd64" "$D/pmaports/main/hello-world" "$D/pytest"
	cat >"$D/home/.config/pmbootstrap_v3.cfg" <<-EOF
		[pmbootstrap]
		work = $D/work
		cache = $D/work/cache
		aports = $D/pmaports
		device = qemu-amd64
	EOF
	printf '[safe]\n\tdirectory = *\n' >"$D/home/.gitconfig"
	printf '[pmaports]\nversion = 7\npmbootstrap_min_version = 3.0.0\nchannel = edge\n' >"$D/pmaports/pmaports.cfg"
	printf '[channels.cfg]\nrecommended = edge\n\n[edge]\ndescription = Rolling\nbranch_pmaports = master\nbranch_aports = master\nmirrordir_alpine = edge\n' >"$D/channels.cfg"
	local k
	for k in 'format_version="0"' 'name="QEMU amd64"' 'manufacturer="QEMU"' 'codename="qemu-amd64"' 'year="2017"' \
		'chassis="vm"' 'arch="x86_64"' 'keyboard="true"' 'external_storage="false"' 'flash_method="none"'; do
		echo "deviceinfo_$k"
	done >"$D/pmaports/device/testing/device-qemu-amd64/deviceinfo"
	printf '%s\n' 'pkgname=device-qemu-amd64' 'pkgver=1' 'pkgrel=0' 'pkgdesc="QEMU amd64"' 'url="https://example.org"' \
		'arch="x86_64"' 'license="MIT"' 'depends="postmarketos-base"' 'options="!check !archcheck"' \
		'package() { mkdir -p "$pkgdir"; }' >"$D/pmaports/device/testing/device-qemu-amd64/APKBUILD"
	printf '%s\n' 'pkgname=hello-world' 'pkgver=1' 'pkgrel=0' 'pkgdesc="hello world"' 'url="https://example.org"' \
		'arch="all"' 'license="MIT"' 'source=""' 'options="!check"' 'package() { mkdir -p "$pkgdir"; }' \
		>"$D/pmaports/main/hello-world/APKBUILD"
	(cd "$D/pmaports" && git init -q -b master && git add -A && git -c user.name=t -c user.email=t@t commit -qm init) || return 1
	echo x86_64 >"$D/work/sysroot/etc/apk/arch"
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n' >"$D/work/sysroot/etc/passwd"
	echo 8 >"$D/work/version"
	chown -R "$owner" "$D"
}

# pmb WHO VARIANT PROPAGATION OUT [VAR=VALUE...] -- ARGS...: one pmbootstrap run in a new mount
# namespace (its / made PROPAGATION, a private /tmp, loginuid set); OUT, OUT.rc, OUT.mounts
# (the namespace's mount count before and after), OUT.passwd (whether /tmp/passwd appeared there),
# OUT.us (the run's wall time in microseconds, the namespace's set-up excluded), OUT.cpu (its
# processes' CPU time, user and system, in microseconds: `times` of the harness's children).
pmb() {
	local who=$1 variant=$2 prop=$3 out=$4 login=0 env=() as=()
	shift 4
	while [ "$1" != -- ]; do env+=("$1"); shift; done
	shift
	[ "$who" = user ] && login=$uid && as=(setpriv --reuid="$uid" --regid="$gid" --clear-groups)
	local src=$T/stock cmd=($PY "$T/offline.py" --offline)
	case $variant in
	raw) cmd=() ;; # ARGS is the whole command
	# The re-run even where the library is installed (make install): PMB_SANDBOX_LIBRARY=0.
	patched) src=$T/patched env=(PMB_SANDBOX_LIBRARY=0 PMB_SANDBOX_BINARY="$T/bin/mkosi-sandbox" "${env[@]}") ;;
	lib) src=$T/patched env=(PMB_SANDBOX_LIBRARY=1 PYTHONPATH="$T/lib/python" "${env[@]}") ;;
	# The binary named and the library installed, nothing chosen: the library is taken.
	installed) src=$T/patched env=(PMB_SANDBOX_BINARY="$T/bin/mkosi-sandbox" PYTHONPATH="$T/lib/python" "${env[@]}") ;;
	esac
	(cd "$D/cwd" && timeout -k 5 120 unshare -m --propagation unchanged -- sh -c '
		out=$1 prop=$2 login=$3; shift 3
		mount --make-r"$prop" / && mount -t tmpfs -o mode=1777 tmpfs /tmp || exit 99
		echo "$login" >/proc/self/loginuid || exit 98
		before=$(wc -l </proc/self/mountinfo)
		times >"$out.times0"
		t0=$(date +%s%N)
		"$@" >"$out" 2>&1 </dev/null
		rc=$?
		t1=$(date +%s%N)
		echo $(((t1 - t0) / 1000)) >"$out.us"
		times >"$out.times" # in this shell: a pipe would run it in a subshell without children
		echo "$before $(wc -l </proc/self/mountinfo)" >"$out.mounts"
		[ -e /tmp/passwd ] && echo written >"$out.passwd" || echo absent >"$out.passwd"
		exit $rc' sh "$out" "$prop" "$login" "${as[@]}" env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
		LANG=C.UTF-8 HOME="$D/home" PWD="$D/cwd" PMB_SRC="$src" PMB_CHANNELS_CFG="$D/channels.cfg" \
		PMB_PYTEST_TMP="$D/pytest" "${env[@]}" "${cmd[@]}" "$@")
	echo $? >"$out.rc"
	# The children's line of `times` ("0m0.41s 0m0.09s"), after less before, in microseconds.
	cat "$out.times0" "$out.times" 2>/dev/null | tr 'ms' '  ' |
		awk '{ t = ($1 * 60 + $2 + $3 * 60 + $4) * 1000000 } NR == 2 { t0 = t } NR == 4 { printf "%d\n", t - t0 }' >"$out.cpu"
}

# The branch's debug prints (setup_mounts' "Execute fsop", WriteOperation's), colours and times go.
normalise() {
	sed -e 's/\x1b\[[0-9;]*m//g' -e 's/^\[[0-9:]\{8\}\] //' "$1" |
		grep -v -e '^Execute fsop: ' -e '^WriteOp execute ' -e '^write newroot/' -e '^Setup mount!$' || true
}
