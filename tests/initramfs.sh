#!/bin/bash
# The sandbox under a real Debian kernel booted by qemu (TCG), for x86_64 and aarch64. PID 1 of
# the initramfs runs tests/initramfs/checks.sh twice: with `/` on rootfs, where pivot_root()
# fails and the sandbox must take the original's MS_MOVE + chroot fallback, and after
# switch_root onto a tmpfs, where pivot_root() works. Each time as root and as uid 65534: mounts,
# modes, /dev, uid/gid maps, --unshare-net, --unshare-pid, and --suppress-chown/--suppress-sync
# for the native ABI and the 32-bit one (i386, 32-bit ARM), with busybox and with raw calls that
# fail without the filter; --binfmt-register's refusal on a kernel before 6.7. Kernel and static
# busybox (native and 32-bit) come from Debian's archive.
# Usage: initramfs.sh x86_64|aarch64 BINARY
set -euo pipefail
arch=$1
ours=$(realpath "$2")
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/debian.sh"
. "$here/lib/rawcall.sh"

suite=bookworm
case $arch in
x86_64)
	debarch=amd64 compat_debarch=i386 abis="x86_64 i386" kernel_meta=linux-image-amd64
	# Nested KVM on these machines hangs the guest's early boot (default CPU) or trips qemu's MSR
	# assertion (-cpu host); TCG boots this kernel in about ten seconds.
	qemu=(qemu-system-x86_64 -accel tcg) console=ttyS0 append_extra="edd=off" ;;
aarch64)
	# The cloud kernel has USER_NS, SECCOMP_FILTER and COMPAT (32-bit ARM processes). With
	# pauth-impdef=on TCG emulates pointer authentication several times faster than the default.
	debarch=arm64 compat_debarch=armhf abis="aarch64 arm" kernel_meta=linux-image-cloud-arm64
	qemu=(qemu-system-aarch64 -M virt -cpu max,pauth-impdef=on -accel tcg) console=ttyAMA0 append_extra="" ;;
*) echo "initramfs: unknown architecture $arch"; exit 1 ;;
esac
command -v "${qemu[0]}" >/dev/null || { echo "initramfs $arch: ${qemu[0]} missing"; exit 1; }

# The kernel, the package the meta-package depends on, and its binfmt_misc module (empty when
# built in), cached by version. 6.1 predates private binfmt_misc instances (Linux 6.7), so it
# shows what --binfmt-register says there.
kernel_pkg=$(deb_field $suite $debarch $kernel_meta Depends | sed 's/[ ,(].*//')
[ -n "$kernel_pkg" ] || { echo "initramfs $arch: no $kernel_meta in $suite"; exit 1; }
kernel="$DEB_CACHE/vmlinuz-${kernel_pkg#linux-image-}"
binfmt_module="$DEB_CACHE/binfmt_misc-${kernel_pkg#linux-image-}.ko"
if [ ! -s "$kernel" ] || [ ! -e "$binfmt_module" ]; then
	deb=$(deb_fetch $suite $debarch "$kernel_pkg")
	tmp=$(mktemp -d)
	deb_extract "$deb" "$tmp" './boot/vmlinuz-*'
	deb_extract "$deb" "$tmp" './lib/modules/*/kernel/fs/binfmt_misc.ko*' 2>/dev/null || true
	module=$(find "$tmp" -name 'binfmt_misc.ko*' | head -n 1)
	case "$module" in
		*.xz) xz -dc "$module" ;;
		*.zst) zstd -qdc "$module" ;;
		"") ;;
		*) cat "$module" ;;
	esac > "$binfmt_module.tmp" && mv "$binfmt_module.tmp" "$binfmt_module"
	cp "$tmp"/boot/vmlinuz-* "$kernel.tmp" && mv "$kernel.tmp" "$kernel"
	rm -rf "$tmp" "$deb"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root"/{bin,dev,proc,tmp,etc}
for a in $debarch $compat_debarch; do
	deb_extract "$(deb_fetch $suite $a busybox-static)" "$work/$a" ./bin/busybox
done
cp "$work/$debarch/bin/busybox" "$root/bin/busybox"
cp "$work/$compat_debarch/bin/busybox" "$root/bin/busybox-compat"
cp "$ours" "$root/bin/mkosi-sandbox"
cp "$binfmt_module" "$root/binfmt_misc.ko"
cp "$here/initramfs/init" "$here/initramfs/checks.sh" "$root/"
printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
raw=()
for abi in $abis; do
	for group in chown sync; do
		mkdir -p "$root/raw/$abi/$group"
		while read -r name nr; do
			rawcall_elf "$abi" "$nr" "$root/raw/$abi/$group/$name"
			raw+=("$abi/$group/$name")
		done < <(rawcall_table "$here/../src/seccomp/syscalls.tsv" "$abi" $group)
	done
done
chmod 755 "$root"/init "$root"/bin/*
(cd "$root" && find . | sort | cpio -o -H newc --quiet | gzip -1) > "$work/initrd.gz"

start=$(date +%s)
out=$(timeout 900 "${qemu[@]}" -m 512 -nographic -no-reboot -net none -kernel "$kernel" -initrd "$work/initrd.gz" \
	-append "console=$console quiet loglevel=0 panic=-1 $append_extra" 2>&1 | tr -d '\r' || true)
took=$(($(date +%s) - start))
[ -z "${INITRAMFS_LOG:-}" ] || printf "%s\n" "$out" > "$INITRAMFS_LOG"

pass=0; fail=0
bad() { fail=$((fail + 1)); echo "FAIL ($arch): $*"; }
expect() { # an exact line
	if grep -qxF -- "$1" <<<"$out"; then pass=$((pass + 1)); else bad "expected line: $1"; fi
}
expect_status() { # PREFIX zero|nonzero: the line "PREFIX: N" is there, with N as wanted
	local line n
	line=$(grep -F -- "$1: " <<<"$out" | head -n 1 || true)
	n=${line##*: }
	case "$2:$n" in
	zero:0) pass=$((pass + 1)) ;;
	nonzero:[1-9]*) pass=$((pass + 1)) ;;
	*) bad "expected $1: ${2} status, got '${n:-no line}'" ;;
	esac
}
for phase in initramfs tmpfs; do
	expect "$phase root-fs: $([ $phase = initramfs ] && echo rootfs || echo tmpfs)"
	for user in root nobody; do
		if [ $user = root ]; then id=0:0 map="0 0 4294967295" rootmap="0 0 4294967295" userns=no
		else id=65534:65534 map="65534 65534 1" rootmap="0 65534 1" userns=yes; fi
		for label in plain become-root unshare-net; do
			p="$phase $user $label"
			expect "$p greeting: hello"
			expect "$p root: tmpfs"
			expect "$p bin-ro: ro"
			expect "$p var-tmp: 1777"
			expect "$p entries: bin dev etc proc raw tmp usr var "
			expect "$p oldroot gone"
			expect "$p devnull: 1:3"
			if [ $label = become-root ]; then
				expect "$p ids: 0:0"; expect "$p uid_map: $rootmap"; expect "$p gid_map: $rootmap"
			else
				expect "$p ids: $id"; expect "$p uid_map: $map"; expect "$p gid_map: $map"
			fi
			expect "$p net: $([ $label = unshare-net ] && echo new || echo host)"
			expect "$p exit: 0"
		done
		for label in calls suppress suppress-root; do
			p="$phase $user $label"
			for r in "${raw[@]}"; do
				# Without a user namespace (root) chown is never suppressed, as in the original.
				want=nonzero
				case $label:$r:$userns in suppress*:*/sync/*:* | suppress*:*/chown/*:yes) want=zero ;; esac
				expect_status "$p raw /raw/$r" $want
			done
			for b in native compat; do
				case $label:$userns in calls:yes) want=nonzero ;; *) want=zero ;; esac
				expect_status "$p busybox-chown $b" $want
			done
			expect "$p sync-ran: yes"
			expect "$p exit: 0"
		done
		# --unshare-pid: the command is pid 2 under this binary as init, whose status it passes on.
		expect "$phase $user unshare-pid pid: 2"
		expect "$phase $user unshare-pid init: mkosi-sandbox"
		expect "$phase $user unshare-pid exit: 7"
		expect "$phase $user missing mkosi-sandbox: --ro-bind /nope /x: No such file or directory"
		expect "$phase $user missing exit: 1"
	done
	# Before 6.7 a user namespace gets no binfmt_misc of its own: one line, nothing runs.
	release=$(sed -n 's/^kernel: //p' <<<"$out" | head -n 1)
	if [ -n "$release" ] && printf '%s\n6.7\n' "${release%%-*}" | sort -V -C; then
		expect "$phase nobody binfmt mkosi-sandbox: --binfmt-register: this kernel gives user namespaces no binfmt_misc of their own (Linux 6.7 and newer do); not registering in the host's"
		expect "$phase nobody binfmt exit: 1"
	else
		expect "$phase nobody binfmt registered"
		expect "$phase nobody binfmt exit: 0"
	fi
done
[ $fail = 0 ] || { echo "--- console output:"; echo "$out" | tail -n 60; }
echo "initramfs $arch: $pass passed, $fail failed (qemu ran ${took}s)"
[ $fail = 0 ]
