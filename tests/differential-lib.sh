#!/bin/bash
# The differential machinery, shared by tests/differential.sh (fixed cases) and tests/fuzz.py
# (random ones): a scratch directory with copies of both programs and fixtures, the script that
# inspects a sandbox from inside, and `compare`, which runs one command line under the Python
# original and under this binary and compares exit status and inside view.
# Source it with ours=BINARY (and optionally orig=sandbox.py; default mkosi 25.3 from Debian), or
# run it as `differential-lib.sh --batch BINARY [ORIGINAL]`: one case per line on stdin, each
# field followed by \x1f (so that empty arguments survive): USER (root|nobody), then the
# arguments; @S stands for the scratch directory.
# Prints "RESULT <n> PASS|FAIL <original status> <our status>" per case, a failure's diff after it.
set -u
batch=0
if [ "${1:-}" = --batch ]; then batch=1; ours=$2; orig=${3:-}; fi
ours=$(realpath "$ours")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -z "${orig:-}" ]; then
	orig=$("$here/../bench/fetch-original.sh") || { echo "differential: cannot fetch the original"; exit 1; }
fi
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
echo "## mounts"; awk "{ split(\$0, side, \" - \"); n = split(side[1], f, \" \"); tags = \"\"
	for (i = 7; i <= n; i++) tags = tags \" \" f[i]; gsub(/[0-9]+/, \"\", tags); split(side[2], fs, \" \")
	sub(/,.*/, \"\", f[6]); print f[5], f[6] tags, fs[1], f[4] }" /proc/self/mountinfo
# sort -S: in memory, or its temporary files in /tmp would be listed too.
echo "## tree"; find / -mindepth 1 \( -fstype proc -o -fstype sysfs -o -fstype devpts -o -path /usr \) -prune -o -printf "%p %y %m %u:%g %l\n" 2>/dev/null | sort -S 64M
echo "## files"; for f in /etc/x /etc/deep/y /ovl/a /ovl/b /data/file /etc/os-release; do [ -f $f ] && echo "$f: $(cat $f)"; done
echo "## ns"
'
# The host'"'"'s namespaces, written into the script: nothing of the host is readable inside.
for n in ipc net; do
	host_ns=$(readlink /proc/self/ns/$n) || { echo "differential: cannot read /proc/self/ns/$n"; exit 1; }
	inspect+="[ \"\$(readlink /proc/self/ns/$n)\" = '$host_ns' ] && echo '$n shared' || echo '$n new'
"
done

pass=0; fail=0; notcompared=0
wrap=()   # a command both run under (prlimit)
before=(true)   # a command run before each of the two
base=(--ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/sbin /sbin --symlink usr/lib /lib --symlink usr/lib64 /lib64 --proc /proc --dev /dev)

# compare NAME USER OPTIONS... -- COMMAND...
compare() {
	local name=$1 user=$2; shift 2
	local as=()
	[ "$user" = nobody ] && as=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
	local a b sa sb
	"${before[@]}"
	a=$(cd "$scratch" && "${as[@]}" "${wrap[@]}" "$py" -SI "$orig" "$@" 2>"$scratch/.stderr-a" </dev/null); sa=$?
	"${before[@]}"
	b=$(cd "$scratch" && "${as[@]}" "${wrap[@]}" "$ours" "$@" 2>"$scratch/.stderr-b" </dev/null); sb=$?
	last_status="$sa $sb" last_out=$b verdict=
	# A shell inside that could not fork (dash: "Cannot fork", exit 2) saw no sandbox of either
	# program: fork() failed with EAGAIN/ENOMEM (the machine's process or memory limit, under
	# load). Nothing was compared; say so instead of passing, failing or retrying.
	local why
	why=$(grep -h -m1 -E 'Cannot fork|fork: (Resource temporarily unavailable|Cannot allocate memory)' \
		"$scratch/.stderr-a" "$scratch/.stderr-b" | head -n 1)
	if [ -n "$why" ]; then
		notcompared=$((notcompared + 1)) verdict=NOTCOMPARED
		echo "NOT COMPARED $name (exit: original $sa, ours $sb): a shell could not fork: $why"
	elif [ "$a" == "$b" ] && [ $sa = $sb ]; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		echo "FAIL $name (exit: original $sa, ours $sb)"
		diff <(echo "$a") <(echo "$b") | head -n 20
	fi
}

run_inspect() { local name=$1 user=$2; shift 2; compare "$name" "$user" "$@" -- sh -c "$inspect"; }

# Fixtures a random command line may name (and, through writable binds, change): made afresh
# before each run.
fixtures() {
	rm -rf "$scratch/fx"
	mkdir -p "$scratch"/fx/{dir/sub,lower1,lower2,upper,work}
	echo file > "$scratch/fx/file"; echo inner > "$scratch/fx/dir/inner"
	echo l1 > "$scratch/fx/lower1/a"; echo l2 > "$scratch/fx/lower2/a"; echo l2b > "$scratch/fx/lower2/b"
	ln -s dir "$scratch/fx/ldir"; ln -s file "$scratch/fx/lfile"; ln -s nowhere "$scratch/fx/ldangling"
	ln -s "$scratch/fx/dir" "$scratch/fx/labs"   # absolute, but never to the host's own files
	chmod -R a+rX "$scratch/fx"
}

if [ $batch = 1 ]; then
	before=(fixtures)
	n=0
	while IFS=$'\x1f' read -r -a fields; do
		n=$((n + 1))
		user=${fields[0]}
		args=("${fields[@]:1}")
		args=("${args[@]//@S/$scratch}")
		run_inspect "$n" "$user" "${args[@]}" > "$scratch/result"
		if [ "$verdict" = NOTCOMPARED ]; then
			echo "RESULT $n NOTCOMPARED $last_status"
			sed 's/^/| /' "$scratch/result"
		elif [ $fail = 0 ]; then
			echo "RESULT $n PASS $last_status"
		else
			echo "RESULT $n FAIL $last_status"
			sed 's/^/| /' "$scratch/result"
		fi
		fail=0
	done
	exit 0
fi
