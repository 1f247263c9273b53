# The checks, run as root and as nobody (uid 65534, via su) from PID 1 of the test initramfs;
# then the environments (user namespaces switched off, missing pieces), set up as root in the VM.
# Every line is "PHASE USER WHAT: VALUE"; tests/initramfs.sh compares them with what it expects.
# Usage: sh /checks.sh PHASE
set -f  # the options below hold "net:[...]"
phase=$1
echo  # the firmware leaves the console mid-line
echo "$phase root-fs: $(awk '$2 == "/" {print $3}' /proc/mounts | tail -n 1)"
hostnet=$(readlink /proc/self/ns/net)
base="--ro-bind /bin /bin --ro-bind /raw /raw --proc /proc --dev /dev --tmpfs /tmp --write hello /etc/greeting
	--dir /usr --symlink ../bin /usr/bin --dir /var/tmp --setenv HOSTNET $hostnet"
inspect='
	echo "greeting: $(cat /etc/greeting)"
	echo "root: $(awk "\$5 == \"/\" {print \$9}" /proc/self/mountinfo | tail -n 1)"
	echo "bin-ro: $(awk "\$5 == \"/bin\" {print substr(\$6, 1, 2)}" /proc/self/mountinfo)"
	echo "var-tmp: $(stat -c %a /var/tmp)"
	echo "entries: $(ls / | tr "\n" " ")"
	test -e /oldroot && echo "oldroot leaked" || echo "oldroot gone"
	echo "devnull: $(stat -c %t:%T /dev/null)"
	echo "ids: $(id -u):$(id -g)"
	echo "uid_map: $(awk "{print \$1, \$2, \$3}" /proc/self/uid_map)"
	echo "gid_map: $(awk "{print \$1, \$2, \$3}" /proc/self/gid_map)"
	[ "$(readlink /proc/self/ns/net)" = "$HOSTNET" ] && echo "net: host" || echo "net: new"'
# Each raw call of /raw/ABI/GROUP/NAME, with its exit status; then chown(1) of both busyboxes.
calls='
	for f in /raw/*/*/*; do "$f"; echo "raw $f: $?"; done
	touch /tmp/f
	busybox chown 4242:4242 /tmp/f; echo "busybox-chown native: $?"
	busybox-compat chown 4242:4242 /tmp/f; echo "busybox-chown compat: $?"
	echo "sync-ran: $(busybox sync && busybox-compat sync && echo yes)"'

# sandbox USER LABEL OPTIONS... -- COMMAND...: runs it, prefixes each output line.
sandbox() {
	user=$1 label=$2; shift 2
	if [ "$user" = root ]; then
		out=$(mkosi-sandbox "$@" 2>&1)
	else
		out=$(su -s /bin/sh -c 'exec "$@"' -- nobody sh mkosi-sandbox "$@" 2>&1)
	fi
	status=$?
	printf '%s\n' "$out" "exit: $status" | sed "s|^|$phase $user $label |"
}

for user in root nobody; do
	sandbox $user plain $base -- sh -c "$inspect"
	sandbox $user become-root $base --become-root -- sh -c "$inspect"
	sandbox $user unshare-net $base --unshare-net -- sh -c "$inspect"
	sandbox $user calls $base -- sh -c "$calls"
	sandbox $user suppress $base --suppress-chown --suppress-sync -- sh -c "$calls"
	sandbox $user suppress-root $base --become-root --suppress-chown --suppress-sync -- sh -c "$calls"
	sandbox $user unshare-pid $base --unshare-pid -- sh -c 'echo "pid: $$"; echo "init: $(cat /proc/1/comm)"; exit 7'
	sandbox $user missing --ro-bind /nope /x -- true
	# Three levels deep: --become-root at every level, then --unshare-pid at every level.
	sandbox $user nested $base --become-root -- mkosi-sandbox $base --become-root -- \
		mkosi-sandbox $base --become-root -- sh -c 'echo "ids: $(id -u):$(id -g)"; echo "greeting: $(cat /etc/greeting)"'
	sandbox $user nested-pid $base --unshare-pid -- mkosi-sandbox $base --unshare-pid -- \
		mkosi-sandbox $base --unshare-pid -- sh -c 'echo "pid: $$"; echo "init: $(cat /proc/1/comm)"; exit 5'
done
sandbox nobody binfmt $base --become-root --binfmt-register ":t:E::t::/bin/busybox:" -- busybox echo registered
# A 32-bit binary of another architecture through the emulator registered in the sandbox's own
# instance; then the VM's own instance, which must hold no entry, and the binary outside.
sandbox nobody binfmt-foreign $base --become-root --binfmt-register /foreign.conf -- \
	sh -c 'echo "machine: $(busybox-foreign uname -m)"'
mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
echo "$phase vm binfmt entries: $(ls /proc/sys/fs/binfmt_misc | tr '\n' ' ')"
umount /proc/sys/fs/binfmt_misc
busybox-foreign true 2>/dev/null; echo "$phase vm foreign outside: $?"

# User namespaces switched off: the unprivileged sandbox says so, root's (none needed) runs.
saved=$(cat /proc/sys/user/max_user_namespaces)
echo 0 > /proc/sys/user/max_user_namespaces
for user in root nobody; do sandbox $user userns-off $base -- true; done
echo "$saved" > /proc/sys/user/max_user_namespaces

# Missing pieces: no /dev/fuse, no binfmt_misc mounted, a read-only /tmp.
fuse=$(stat -c %t:%T /dev/fuse 2>/dev/null || true)
rm -f /dev/fuse
mount -t tmpfs -o ro,mode=1777 tmpfs /tmp
echo "$phase missing binfmt_misc mounts: $(grep -c binfmt_misc /proc/mounts)"
for user in root nobody; do
	sandbox $user missing-pieces $base --bind /tmp /host-tmp -- sh -c \
		'echo "fuse: $(test -e /dev/fuse && echo yes || echo no)"; echo "tmp: $(touch /tmp/x && echo writable)"; echo "host-tmp: $(awk "\$5 == \"/host-tmp\" {print substr(\$6, 1, 2)}" /proc/self/mountinfo)"'
done
umount /tmp
[ -z "$fuse" ] || mknod /dev/fuse c $((0x${fuse%:*})) $((0x${fuse#*:}))
