#!/bin/sh
# Runs the aarch64 build: natively on aarch64, else under qemu-user. Checks that it starts,
# parses, reports errors as one line, and exits with the right codes.
set -eu
bin=$1
file "$bin" 2>/dev/null | grep -q 'statically linked' || { echo "cross-smoke: $bin is not static"; exit 1; }
case "$(uname -m)" in
	aarch64) run="" ;;
	*) run=$(command -v qemu-aarch64-static || command -v qemu-aarch64 || true)
	   [ -n "$run" ] || { echo "cross-smoke: qemu-aarch64 missing (apt-get install qemu-user-static)"; exit 1; } ;;
esac
fail=0; pass=0
check() { # name expected-status expected-stderr args...
	name=$1 want_status=$2 want_err=$3; shift 3
	set +e; err=$($run "$bin" "$@" 2>&1 >/dev/null); status=$?; set -e
	if [ "$status" = "$want_status" ] && [ "$err" = "$want_err" ]; then pass=$((pass+1)); else
		echo "FAIL $name: status=$status stderr=$err"; fail=$((fail+1)); fi
}
check version 0 "26~devel" --version
check unknown 1 "mkosi-sandbox: --nope: unrecognized option" --nope
check missing 1 "mkosi-sandbox: --bind /x: missing argument" --bind /x
check relative 1 "mkosi-sandbox: --dir x: destination is not an absolute path" --dir x
# A real sandbox (tmpfs, dirs, files, pivot_root) up to exec. qemu-user lacks open_tree(), so
# no binds here; that path reports ENOSYS in one line.
check sandbox-exec 127 "mkosi-sandbox: /nonexistent: execvp: No such file or directory" \
	--tmpfs /tmp --dir /var/tmp --write hi /etc/x --symlink usr/bin /bin -- /nonexistent
# --unshare-pid: the init and the command's process (raw clone, signal mask, sigtimedwait) on aarch64.
check pidns-exec 127 "mkosi-sandbox: /nonexistent: execvp: No such file or directory" \
	--tmpfs /tmp --proc /proc --unshare-pid --die-with-parent -- /nonexistent
# qemu-user lacks open_tree(): the read-only bind reports ENOSYS in one line naming the call.
set +e; err=$($run "$bin" --ro-bind /usr /usr -- /nonexistent 2>&1 >/dev/null); status=$?; set -e
case "$err" in
	"mkosi-sandbox: --ro-bind /usr /usr: open_tree: Function not implemented (this kernel lacks it, or a seccomp filter or emulator refuses it: open_tree needs Linux 5.2 or newer and a container runtime or emulator that lets it through)")
		[ "$status" = 1 ] && pass=$((pass+1)) || { echo "FAIL enosys: status $status"; fail=$((fail+1)); } ;;
	*) echo "FAIL enosys: $err"; fail=$((fail+1)) ;;
esac
echo "cross-smoke aarch64: $pass passed, $fail failed"
[ "$fail" = 0 ]
