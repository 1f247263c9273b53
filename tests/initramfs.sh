#!/bin/bash
# The sandbox under real Debian kernels booted by qemu (TCG): a matrix of kernel generations for
# x86_64 and aarch64. PID 1 of the initramfs runs tests/initramfs/checks.sh twice: with `/` on
# rootfs, where pivot_root() fails and the sandbox must take the original's MS_MOVE + chroot
# fallback, and after switch_root onto a tmpfs, where pivot_root() works. Each time as root and as
# uid 65534: mounts, modes, /dev, uid/gid maps, --unshare-net, --unshare-pid, and
# --suppress-chown/--suppress-sync for the native ABI and the 32-bit one (i386, 32-bit ARM), with
# busybox and with raw calls that fail without the filter; the sandbox three levels deep; what a
# user sees with user namespaces switched off, with no /dev/fuse, no binfmt_misc mounted and a
# read-only /tmp; and --binfmt-register: refused before 6.7, and from 6.7 a foreign 32-bit busybox
# run through a static qemu-user registered in the sandbox's own instance, the VM's untouched.
#
# Kernels are found in Debian's package indexes, never by a name or version written here: the
# suite's kernel meta-package depends on the image package (sid lists linux-base-* first), which
# holds the kernel and its modules itself or depends on linux-binary-* and linux-modules-* that
# do. Packages are checked against the index (tests/lib/debian.sh); kernel and binfmt_misc module
# are cached by package and version. Userland (busybox, qemu-user) comes from bookworm.
#
# Usage: initramfs.sh x86_64|aarch64 BINARY [SUITE...]   (default: the architecture's whole matrix)
# Prints one line per kernel: "initramfs ARCH VERSION (SUITE): N passed, M failed (qemu ran Ts)".
# With WHERE_IT_RUNS=FILE, appends "ARCH VERSION (SUITE)<TAB>ENVIRONMENT<TAB>RESULT" lines for
# README's "Where it runs" table (tools/where-it-runs.sh). With INITRAMFS_LOG=PREFIX, keeps each
# console in PREFIX.ARCH-SUITE. INITRAMFS_JOBS: boots at a time (default: the number of cores).
set -euo pipefail
arch=$1
ours=$(realpath "$2")
shift 2
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/debian.sh"
. "$here/lib/rawcall.sh"

userland=bookworm
case $arch in
x86_64)
	matrix=(bullseye bookworm trixie sid)
	debarch=amd64 compat_debarch=i386 abis="x86_64 i386" kernel_meta=linux-image-amd64
	# The foreign binary for --binfmt-register: 32-bit ARM, under qemu-arm.
	foreign_debarch=armhf foreign_qemu=arm foreign_machine=armv7l
	# Nested KVM on these machines hangs the guest's early boot (default CPU) or trips qemu's MSR
	# assertion (-cpu host); TCG boots a kernel in ten to twenty seconds.
	qemu=(qemu-system-x86_64 -accel tcg) console=ttyS0 append_extra="edd=off" ;;
aarch64)
	matrix=(bookworm sid)
	# The cloud kernel has USER_NS, SECCOMP_FILTER and COMPAT (32-bit ARM processes). With
	# pauth-impdef=on TCG emulates pointer authentication several times faster than the default.
	debarch=arm64 compat_debarch=armhf abis="aarch64 arm" kernel_meta=linux-image-cloud-arm64
	foreign_debarch=i386 foreign_qemu=i386 foreign_machine=i686
	qemu=(qemu-system-aarch64 -M virt -cpu max,pauth-impdef=on -accel tcg) console=ttyAMA0 append_extra="" ;;
*) echo "initramfs: unknown architecture $arch"; exit 1 ;;
esac
[ $# = 0 ] || matrix=("$@")
command -v "${qemu[0]}" >/dev/null || { echo "initramfs $arch: ${qemu[0]} missing"; exit 1; }

# dependency_names: package names of a Depends field on stdin, one a line, without versions.
dependency_names() { tr ',|' '\n\n' | sed 's/^ *//; s/[ (].*//' | grep -v '^$'; }

# kernel_fetch SUITE: sets kernel (image path), module (binfmt_misc.ko, empty when built in) and
# version (the upstream version, from the image package's).
kernel_fetch() {
	local suite=$1 image key tmp deb found
	image=$(deb_field "$suite" $debarch $kernel_meta Depends | dependency_names | grep -m 1 '^linux-image-' || true)
	[ -n "$image" ] || { echo "initramfs $arch: no $kernel_meta in $suite" >&2; return 1; }
	version=$(deb_field "$suite" $debarch "$image" Version)
	key="${image#linux-image-}_$version"
	version=${version%-*}
	kernel="$DEB_CACHE/vmlinuz-$key" module="$DEB_CACHE/binfmt_misc-$key.ko"
	[ -s "$kernel" ] && [ -e "$module" ] && return 0
	tmp=$(mktemp -d)
	for p in "$image" $(deb_field "$suite" $debarch "$image" Depends | dependency_names | grep -E '^linux-(binary|modules)-' || true); do
		deb=$(deb_fetch "$suite" $debarch "$p")
		# Each package holds the image, the module, both or neither: tar names the ones it lacks.
		deb_extract "$deb" "$tmp" '*/vmlinuz*' '*/binfmt_misc.ko*' 2>/dev/null || true
		rm -f "$deb"
	done
	found=$(find "$tmp" -name 'vmlinuz*' -type f | head -n 1)
	[ -n "$found" ] || { rm -rf "$tmp"; echo "initramfs $arch: no kernel image in $image" >&2; return 1; }
	module_found=$(find "$tmp" -name 'binfmt_misc.ko*' | head -n 1)
	case "$module_found" in
		*.xz) xz -dc "$module_found" ;;
		*.zst) zstd -qdc "$module_found" ;;
		"") ;;
		*) cat "$module_found" ;;
	esac > "$module.tmp.$$" && mv "$module.tmp.$$" "$module"
	cp "$found" "$kernel.tmp.$$" && mv "$kernel.tmp.$$" "$kernel"
	rm -rf "$tmp"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One initramfs per architecture, the same for every kernel.
root="$work/root"
mkdir -p "$root"/{bin,dev,proc,tmp,etc}
for a in $debarch $compat_debarch $foreign_debarch; do
	[ -e "$work/$a/bin/busybox" ] || deb_extract "$(deb_fetch $userland $a busybox-static)" "$work/$a" ./bin/busybox
done
cp "$work/$debarch/bin/busybox" "$root/bin/busybox"
cp "$work/$compat_debarch/bin/busybox" "$root/bin/busybox-compat"
cp "$work/$foreign_debarch/bin/busybox" "$root/bin/busybox-foreign"
# The emulator and its binfmt.d rule, pointed at where the initramfs has it. Flag P is dropped
# (that needs qemu's *-binfmt-P name); busybox takes its applet from the next argument anyway.
qemu_user="$DEB_CACHE/qemu-$foreign_qemu-static-$debarch"
if [ ! -s "$qemu_user" ] || [ ! -s "$qemu_user.conf" ]; then
	deb_extract "$(deb_fetch $userland $debarch qemu-user-static)" "$work/qemu" \
		"./usr/bin/qemu-$foreign_qemu-static" "./usr/lib/binfmt.d/qemu-$foreign_qemu.conf"
	cp "$work/qemu/usr/lib/binfmt.d/qemu-$foreign_qemu.conf" "$qemu_user.conf.$$" && mv "$qemu_user.conf.$$" "$qemu_user.conf"
	cp "$work/qemu/usr/bin/qemu-$foreign_qemu-static" "$qemu_user.$$" && mv "$qemu_user.$$" "$qemu_user"
fi
cp "$qemu_user" "$root/bin/qemu-foreign"
awk -F: -v OFS=: '/^:/ { $7 = "/bin/qemu-foreign"; $8 = "F"; print }' "$qemu_user.conf" > "$root/foreign.conf"
grep -q '^:' "$root/foreign.conf" || { echo "initramfs $arch: no rule in qemu-$foreign_qemu.conf"; exit 1; }
cp "$ours" "$root/bin/mkosi-sandbox"
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
(cd "$root" && find . | sort | cpio -o -H newc --quiet | gzip -1) > "$work/root.cpio.gz"

# boot SUITE: boots the suite's kernel with the initramfs (plus its binfmt_misc module), leaves
# the console in $work/SUITE.out, the kernel's version in $work/SUITE.version, qemu's seconds in
# $work/SUITE.took.
boot() {
	local suite=$1 dir="$work/boot-$1" start
	kernel_fetch "$suite" || return 1
	echo "$version" > "$work/$suite.version"
	mkdir -p "$dir"
	cp "$module" "$dir/binfmt_misc.ko"
	# Two archives back to back form one initramfs: the shared root, then this kernel's module.
	{ cat "$work/root.cpio.gz"; (cd "$dir" && echo binfmt_misc.ko | cpio -o -H newc --quiet | gzip -1); } > "$dir/initrd.gz"
	start=$(date +%s)
	timeout 900 "${qemu[@]}" -m 512 -nographic -no-reboot -net none -kernel "$kernel" -initrd "$dir/initrd.gz" \
		-append "console=$console quiet loglevel=0 panic=-1 $append_extra" 2>&1 | tr -d '\r' > "$work/$suite.out" || true
	echo $(($(date +%s) - start)) > "$work/$suite.took"
}

# Boots run side by side, INITRAMFS_JOBS at a time (default: one per core; TCG keeps a guest
# on one core).
jobs_max=${INITRAMFS_JOBS:-$(nproc)}
for suite in "${matrix[@]}"; do
	while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n || true; done
	boot "$suite" > "$work/$suite.boot-log" 2>&1 &
done
wait

. "$here/initramfs/expect.sh"
status=0
for suite in "${matrix[@]}"; do
	if [ ! -s "$work/$suite.version" ]; then
		echo "initramfs $arch ($suite): no kernel: $(tail -n 1 "$work/$suite.boot-log")"; status=1; continue
	fi
	label="$arch $(cat "$work/$suite.version") ($suite)"
	[ -z "${INITRAMFS_LOG:-}" ] || cp "$work/$suite.out" "$INITRAMFS_LOG.$arch-$suite"
	expect_all "$label" "$work/$suite.out" || status=1
	echo "initramfs $label: $pass passed, $fail failed (qemu ran $(cat "$work/$suite.took")s)"
done
exit $status
