# The checks, run as root and as nobody (uid 65534, via su) from PID 1 of the test initramfs.
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
done
sandbox nobody binfmt --become-root --binfmt-register ":t:E::t::/bin/busybox:" -- busybox echo registered
