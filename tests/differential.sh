#!/bin/bash
# Differential suite: the same command lines under the Python original (mkosi 25.3's sandbox.py,
# fetched from Debian) and under this binary, comparing what the sandbox looks like from inside
# (mounts, file tree, modes, links, ids, maps, capabilities, environment, cwd) and the exit codes.
# Only options that the 25.3 original has are used. Run as root; some cases run as nobody.
# Usage: differential.sh BINARY
set -u
ours=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
orig=$("$here/../bench/fetch-original.sh") || { echo "differential: cannot fetch the original"; exit 1; }
orig=$(realpath "$orig")
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3)

scratch=$(mktemp -d /tmp/mkosi-diff.XXXXXX)
chmod 755 "$scratch"
trap 'umount -R "$scratch" 2>/dev/null; rm -rf "$scratch"' EXIT
# Run copies that uid 65534 can reach wherever the checkout is (/root is 0700).
mkdir -m 755 "$scratch/bin"
cp "$ours" "$scratch/bin/mkosi-sandbox"; cp "$orig" "$scratch/bin/sandbox.py"
chmod 755 "$scratch/bin/mkosi-sandbox"; chmod 644 "$scratch/bin/sandbox.py"
ours=$scratch/bin/mkosi-sandbox orig=$scratch/bin/sandbox.py
mkdir -p "$scratch"/{etc,data/sub,lower1,lower2,upper,work,tools}
echo "ID=host" > "$scratch/etc/os-release"
echo data > "$scratch/data/file"
echo l1 > "$scratch/lower1/a"; echo l2 > "$scratch/lower2/a"; echo l2b > "$scratch/lower2/b"
ln -s ../lib/os-release "$scratch/etc/link"
printf '#!/bin/sh\necho tool-ran "$@"\n' > "$scratch/tools/mytool"; chmod 755 "$scratch/tools/mytool"

# What a user would check from inside, normalized (mount ids and peer-group numbers vary).
inspect='
echo "## ids"; id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map 2>&1 | tr -s " "
echo "## caps"; grep -E "^Cap(Inh|Prm|Eff|Amb)" /proc/self/status
echo "## cwd"; pwd
echo "## env"; env | grep -v -E "^(_|SHLVL|OLDPWD)=" | sed "s/^LISTEN_PID=$$\$/LISTEN_PID=<the command>/" | sort
echo "## mounts"; while read -r id parent dev root mp opts rest; do
	opt=${rest%% - *}; fs=${rest#* - }; set -- $fs
	echo "$mp ${opts%%,*} $(echo $opt | sed "s/[0-9]\+//g") $1 $root"; done < /proc/self/mountinfo
echo "## tree"; find / -mindepth 1 \( -path /proc -o -path /usr -o -path /sys -o -path /dev/pts \) -prune -o -printf "%p %y %m %u:%g %l\n" 2>/dev/null | sort
echo "## files"; for f in /etc/x /etc/deep/y /ovl/a /ovl/b /data/file /etc/os-release; do [ -f $f ] && echo "$f: $(cat $f)"; done
echo "## ns"; for n in ipc net; do [ "$(readlink /proc/self/ns/$n)" = "$(cat /tmp/.host-ns-$n 2>/dev/null)" ] && echo "$n shared" || echo "$n new"; done
'
readlink /proc/self/ns/ipc > /dev/null

pass=0; fail=0
base=(--ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/sbin /sbin --symlink usr/lib /lib --symlink usr/lib64 /lib64 --proc /proc --dev /dev)

# compare NAME USER OPTIONS... -- COMMAND...
compare() {
	local name=$1 user=$2; shift 2
	local as=()
	[ "$user" = nobody ] && as=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
	local a b sa sb
	a=$(cd "$scratch" && "${as[@]}" "$py" -SI "$orig" "$@" 2>/dev/null </dev/null); sa=$?
	b=$(cd "$scratch" && "${as[@]}" "$ours" "$@" 2>/dev/null </dev/null); sb=$?
	if [ "$a" == "$b" ] && [ $sa = $sb ]; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		echo "FAIL $name (exit: original $sa, ours $sb)"
		diff <(echo "$a") <(echo "$b") | head -n 20
	fi
}

run_inspect() { local name=$1 user=$2; shift 2; compare "$name" "$user" "$@" -- sh -c "$inspect"; }

run_inspect tools-tree root "${base[@]}" --unsetenv TMPDIR --dir /var/tmp --dir /var/log --unshare-ipc \
	--setenv PATH /usr/bin:/usr/sbin --bind "$scratch/data" /var/tmp --dir /etc --dir /var --dir /tmp --dir /run
run_inspect tools-tree-nobody nobody "${base[@]}" --dir /var/tmp --tmpfs /tmp --setenv PATH /usr/bin:/usr/sbin
run_inspect become-root nobody "${base[@]}" --become-root --tmpfs /run --tmpfs /tmp --dir /run/user/0 \
	--write mkosi /run/host/container-manager
run_inspect operations root "${base[@]}" --write hello /etc/x --write deep /etc/deep/y --dir /a/b/c --dir /a/tmp \
	--tmpfs /var/tmp --bind-try /does/not/exist /nope --ro-bind "$scratch/etc" /etc --symlink ../usr/lib/os-release /etc/os-release \
	--bind "$scratch/data/file" /new/file --symlink target /dangling
run_inspect dedup root "${base[@]}" "${base[@]}" --ro-bind /usr/lib /usr/lib --bind /usr/share /usr/share \
	--ro-bind "$scratch/data" /d --ro-bind "$scratch/data/sub" /d/sub --bind "$scratch/data/sub" /d/sub
run_inspect overlay-tmpfs root "${base[@]}" --overlay-lowerdir "$scratch/lower1" --overlay-lowerdir "$scratch/lower2" \
	--overlay-upperdir tmpfs --overlay /ovl
run_inspect overlay-dirs root "${base[@]}" --overlay-lowerdir "$scratch/lower1" --overlay-upperdir "$scratch/upper" \
	--overlay-workdir "$scratch/work" --overlay /ovl
run_inspect chdir root "${base[@]}" --dir /w/x --chdir /w/x
run_inspect same-dir root "${base[@]}" --bind "$scratch" "$scratch" --same-dir
run_inspect unshare root "${base[@]}" --unshare-net --unshare-ipc
run_inspect env root "${base[@]}" --setenv A 1 --setenv B 2 --setenv A 3 --unsetenv B --unsetenv HOME
LISTEN_FDS=1 run_inspect listen-fds root "${base[@]}" --setenv LISTEN_PID 1
compare path-search root "${base[@]}" --bind "$scratch/tools" /tools --setenv PATH /tools:/usr/bin -- mytool x y
compare exit-status root "${base[@]}" -- sh -c 'exit 7'
compare not-found root "${base[@]}" -- no-such-command
compare missing-source root "${base[@]}" --ro-bind /nope /x -- true
compare unknown-option root --frobnicate -- true
compare relative-dst root --dir rel -- true
compare version root --version
compare no-dashdash root "${base[@]}" echo --tmpfs /x

echo "differential: $pass passed, $fail failed"
[ $fail = 0 ]
