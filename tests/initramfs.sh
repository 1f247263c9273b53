#!/bin/bash
# The root dance's fallback, for real: in an initramfs `/` is rootfs, pivot_root() fails, and the
# sandbox must move the workspace onto `/` instead (MS_MOVE + chroot), as the original does.
# Boots Debian's kernel (fetched with apt) under qemu with an initramfs that
# holds busybox and this binary, runs sandboxes from /init and checks what they print.
# Usage: initramfs.sh BINARY
set -euo pipefail
ours=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
cache="$here/../bench/cache/kernel"
mkdir -p "$cache"

# The kernel, and its binfmt_misc module (Debian builds it as one): this kernel predates private
# binfmt_misc instances (Linux 6.7), so it shows what --binfmt-register says there.
kernel=$(ls "$cache"/vmlinuz-* 2>/dev/null | head -n 1 || true)
if [ -z "$kernel" ] || [ ! -e "$cache/binfmt_misc.ko" ]; then
	pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image/ {print $2; exit}')
	[ -n "$pkg" ] || { echo "initramfs: no linux-image-amd64 in apt (run apt-get update)"; exit 1; }
	tmp=$(mktemp -d)
	(cd "$tmp" && apt-get download "$pkg" >/dev/null && dpkg-deb --fsys-tarfile ./*.deb |
		tar -x --wildcards './boot/vmlinuz-*' './lib/modules/*/kernel/fs/binfmt_misc.ko*')
	module=$(find "$tmp/lib/modules" -name 'binfmt_misc.ko*' | head -n 1)
	case "$module" in
		*.xz) xz -dc "$module" > "$cache/binfmt_misc.ko" ;;
		*.zst) zstd -qdc "$module" > "$cache/binfmt_misc.ko" ;;
		"") : > "$cache/binfmt_misc.ko" ;;   # built in
		*) cp "$module" "$cache/binfmt_misc.ko" ;;
	esac
	rm -f "$cache"/vmlinuz-*
	cp "$tmp"/boot/vmlinuz-* "$cache/"
	rm -rf "$tmp"
	kernel=$(ls "$cache"/vmlinuz-* | head -n 1)
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root"/{bin,dev,proc,tmp,etc}
busybox=$(command -v busybox) || { echo "initramfs: busybox missing (apt-get install busybox-static)"; exit 1; }
file -L "$busybox" | grep -q 'statically linked' || { echo "initramfs: $busybox is not static (apt-get install busybox-static)"; exit 1; }
cp "$busybox" "$root/bin/busybox"
cp "$ours" "$root/bin/mkosi-sandbox"
cp "$cache/binfmt_misc.ko" "$root/binfmt_misc.ko"
ln -s busybox "$root/bin/sh"
echo 'root:x:0:0::/:/bin/sh' > "$root/etc/passwd"
echo 'nobody:x:65534:65534::/:/bin/sh' >> "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
cat > "$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t devtmpfs devtmpfs /dev
echo "root-fs: $(/bin/busybox awk '$2 == "/" {print $3}' /proc/mounts | /bin/busybox head -n 1)"
/bin/mkosi-sandbox --ro-bind /bin /bin --proc /proc --dev /dev --tmpfs /tmp --write hello /etc/greeting \
	--dir /usr --symlink ../bin /usr/bin --dir /var/tmp -- /bin/busybox sh -c '
	echo "greeting: $(cat /etc/greeting)"
	echo "root: $(awk "\$5 == \"/\" {print \$9}" /proc/self/mountinfo | tail -n 1)"
	echo "bin-ro: $(awk "\$5 == \"/bin\" {print substr(\$6, 1, 2)}" /proc/self/mountinfo)"
	echo "var-tmp: $(stat -c %a /var/tmp)"
	echo "entries: $(ls / | tr "\n" " ")"
	test -e /oldroot && echo "oldroot leaked" || echo "oldroot gone"
	echo "devnull: $(stat -c %t:%T /dev/null)"'
echo "sandbox-exit: $?"
/bin/mkosi-sandbox --ro-bind /nope /x -- /bin/busybox true
echo "error-exit: $?"
[ -s /binfmt_misc.ko ] && /bin/busybox insmod /binfmt_misc.ko
echo "kernel: $(/bin/busybox uname -r)"
/bin/busybox su nobody -c '/bin/mkosi-sandbox --become-root --binfmt-register ":t:E::t::/bin/busybox:" -- /bin/busybox echo registered'
echo "binfmt-exit: $?"
/bin/busybox poweroff -f
INIT
chmod 755 "$root/init" "$root/bin/busybox" "$root/bin/mkosi-sandbox"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/initrd.gz"

# Software emulation: nested KVM on these machines hangs the guest's early boot (default CPU) or
# trips qemu's MSR assertion (-cpu host); TCG boots this kernel in about ten seconds.
out=$(timeout 240 qemu-system-x86_64 -accel tcg -m 512 -nographic -no-reboot -net none -kernel "$kernel" \
	-initrd "$work/initrd.gz" -append "console=ttyS0 quiet loglevel=0 panic=-1 edd=off" 2>&1 | tr -d '\r' || true)

pass=0; fail=0
expect() {
	if grep -qF -- "$1" <<<"$out"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: expected line: $1"; fi
}
expect "root-fs: rootfs"
expect "greeting: hello"
expect "root: tmpfs"
expect "bin-ro: ro"
expect "var-tmp: 1777"
expect "entries: bin dev etc proc tmp usr var "
expect "oldroot gone"
expect "devnull: 1:3"
expect "sandbox-exit: 0"
expect "mkosi-sandbox: --ro-bind /nope /x: No such file or directory"
expect "error-exit: 1"
# Before 6.7 a user namespace gets no binfmt_misc of its own: one line, nothing runs.
release=$(sed -n 's/^kernel: //p' <<<"$out" | head -n 1)
if [ -n "$release" ] && printf '%s\n6.7\n' "${release%%-*}" | sort -V -C; then
	expect "mkosi-sandbox: --binfmt-register: this kernel gives user namespaces no binfmt_misc of their own (Linux 6.7 and newer do); not registering in the host's"
	expect "binfmt-exit: 1"
else
	expect "registered"
	expect "binfmt-exit: 0"
fi
[ $fail = 0 ] || { echo "--- console output:"; echo "$out" | tail -n 40; }
echo "initramfs: $pass passed, $fail failed"
[ $fail = 0 ]
