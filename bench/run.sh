#!/bin/bash
# Start-up benchmark: this binary against the Python original, bubblewrap and the payload alone,
# interleaved in one run, medians and ratios. Writes bench/RESULTS.md.
# Usage: bench/run.sh BINARY   (as root; `make bench`)
set -euo pipefail
ours=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
cache="$here/cache"
mkdir -p "$cache"
command -v bwrap >/dev/null || apt-get install -y -qq bubblewrap >/dev/null
command -v valgrind >/dev/null || apt-get install -y -qq valgrind >/dev/null
orig=$(realpath "$("$here/fetch-original.sh")")
py=/usr/bin/python3
gcc -O2 -o "$cache/timer" "$here/timer.c"
gcc -O2 -static -nostdlib -fno-stack-protector -o "$cache/floor" "$here/floor.c"

W=$(mktemp -d /tmp/mkosi-bench.XXXXXX)
chmod 755 "$W"
trap 'umount -R "$W" 2>/dev/null || true; rm -rf "$W"' EXIT
gcc -O2 -static -nostdlib -o "$W/payload" "$here/payload.c"
mkdir -p "$W/vartmp" "$W/root/etc" "$W/specs" "$W/cg"
chmod 777 "$W/vartmp" "$W/cg"
chown -R 65534:65534 "$W/root"   # mkosi's image roots belong to the building user

QUICK=${QUICK:-0}
R() { if [ "$QUICK" = 1 ]; then echo $(( ($1 + 9) / 10 )); else echo "$1"; fi; }

# spec NAME ARGV... : writes a contestant file, prints its path.
spec() { local f="$W/specs/$1"; printf '%s\n' "$@" > "$f"; echo "$f"; }

out="$here/RESULTS.md"
tmp=$(mktemp)
emit() { echo "$*" >> "$tmp"; }

# table TITLE ROUNDS [-u UID] SPECS... : interleaved timing, a markdown table with ratios to ours.
table() {
	local title=$1 rounds=$2; shift 2
	local opts=()
	if [ "$1" = -u ]; then opts=(-u "$2"); shift 2; fi
	echo "== $title" >&2
	local res
	res=$("$cache/timer" "${opts[@]}" "$rounds" "$@")
	local base
	base=$(echo "$res" | awk -F'\t' '$1 == "ours" {print $2}')
	emit ""
	emit "### $title"
	emit ""
	emit "$rounds rounds. Median, p10–p90 in µs; ratio = ours / them (lower is better for us)."
	emit ""
	emit "| contestant | median µs | p10–p90 µs | ours ÷ this | max RSS KiB | failed runs |"
	emit "|---|---:|---:|---:|---:|---:|"
	echo "$res" | awk -F'\t' -v base="$base" '{ printf "| %s | %.0f | %.0f–%.0f | %.3f | %d | %d |\n", $1, $2, $3, $4, base / $2, $5, $6 }' >> "$tmp"
	echo "$res" >&2
}

BASE_OPTS=(--proc /proc --unsetenv TMPDIR --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/sbin /sbin
	--symlink usr/lib /lib --symlink usr/lib64 /lib64 --dir /var/tmp --dir /var/log --unshare-ipc --dev /dev
	--setenv PATH /usr/bin:/usr/sbin --bind "$W/vartmp" /var/tmp --dir /etc --dir /var --dir /tmp --dir /run
	--ro-bind "$W/payload" /payload)

emit "# Benchmark results"
emit ""
emit "Machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, kernel $(uname -r), $(date -u +%Y-%m-%d). Command: \`make bench\` (bench/run.sh)."
emit "Contestants: this binary ($(stat -c %s "$ours") bytes); the Python original (mkosi 25.3 sandbox.py, \`$py -SI\`);"
emit "$(bwrap --version); the payload alone (a static do-nothing program, bound into each sandbox and run there)."
emit "\"floor\" (bench/floor.c) makes exactly the syscalls of workloads 2 and 3 with no parsing, no path resolution and no libc, then execs the payload: the kernel's own cost."
emit "All runs of one table are interleaved round-robin; absolute times on this shared machine are noisy, ratios less so."

# 1. --version
table "1. --version" "$(R 300)" \
	"$(spec ours "$ours" --version)" "$(spec python "$py" -SI "$orig" --version)" \
	"$(spec bwrap /usr/bin/bwrap --version)" "$(spec payload "$W/payload")"

# 2. mkosi's tools sandbox, as root.
table "2. tools sandbox as root" "$(R 300)" \
	"$(spec ours "$ours" "${BASE_OPTS[@]}" -- /payload)" \
	"$(spec python "$py" -SI "$orig" "${BASE_OPTS[@]}" -- /payload)" \
	"$(spec bwrap /usr/bin/bwrap "${BASE_OPTS[@]}" -- /payload)" \
	"$(spec floor "$cache/floor" "$W/vartmp" "$W/payload")" \
	"$(spec payload "$W/payload")"

# 3. The same as an unprivileged user, mapped to root.
table "3. tools sandbox as uid 65534 with --become-root" "$(R 300)" -u 65534 \
	"$(spec ours "$ours" "${BASE_OPTS[@]}" --become-root -- /payload)" \
	"$(spec python "$py" -SI "$orig" "${BASE_OPTS[@]}" --become-root -- /payload)" \
	"$(spec bwrap /usr/bin/bwrap --unshare-user --uid 0 --gid 0 "${BASE_OPTS[@]}" -- /payload)" \
	"$(spec floor "$cache/floor" "$W/vartmp" "$W/payload" userns)" \
	"$(spec payload "$W/payload")"

# 4. mkosi's chroot shape, unprivileged.
CHROOT=(--bind "$W/root" / --tmpfs /run --tmpfs /tmp --proc /proc --dev /dev --dir /run/user/0
	--ro-bind "$W/payload" /payload --setenv container mkosi --setenv HOME /)
table "4. chroot shape as uid 65534 (--become-root --suppress-chown)" "$(R 300)" -u 65534 \
	"$(spec ours "$ours" "${CHROOT[@]}" --write mkosi /run/host/container-manager --become-root --suppress-chown -- /payload)" \
	"$(spec python "$py" -SI "$orig" "${CHROOT[@]}" --write mkosi /run/host/container-manager --become-root --suppress-chown -- /payload)" \
	"$(spec bwrap /usr/bin/bwrap --unshare-user --uid 0 --gid 0 "${CHROOT[@]}" -- /payload)" \
	"$(spec payload "$W/payload")"

# 4b. Subordinate id ranges: one helper and two setuid tools per start, against util-linux
# unshare doing the same for the same user (a throw-away login with /etc/subuid ranges).
bench_user="mksbxbench$$"
if command -v newuidmap >/dev/null || apt-get install -y -qq uidmap >/dev/null; then
	useradd -M -s /usr/sbin/nologin -U "$bench_user"
	trap 'userdel "$bench_user" 2>/dev/null || true; umount -R "$W" 2>/dev/null || true; rm -rf "$W"' EXIT
	bu=$(id -u "$bench_user")
	if [ "$(id -g "$bench_user")" = "$bu" ] && grep -q "^$bench_user:" /etc/subuid; then
		table "4b. subordinate ranges as a user with /etc/subuid: --become-root --map-auto" "$(R 200)" -u "$bu" \
			"$(spec ours "$ours" --ro-bind "$W/payload" /payload --become-root --map-auto -- /payload)" \
			"$(spec unshare /usr/bin/unshare --map-auto --map-root-user --mount "$W/payload")" \
			"$(spec ours-single-id "$ours" --ro-bind "$W/payload" /payload --become-root -- /payload)" \
			"$(spec unshare-single-id /usr/bin/unshare --map-root-user --mount "$W/payload")" \
			"$(spec payload "$W/payload")"
	fi
	userdel "$bench_user"
fi

# 5. Scaling with the number of binds.
for n in 10 100 1000 4096; do
	mkdir -p "$W/binds"
	extra=()
	for i in $(seq 1 $n); do mkdir -p "$W/binds/$i"; extra+=(--bind "$W/binds/$i" "/b/$i"); done
	specs=("$(spec ours "$ours" "${BASE_OPTS[@]}" "${extra[@]}" -- /payload)"
		"$(spec floor "$cache/floor" "$W/vartmp" "$W/payload" root "$W/binds" "$n")")
	# bubblewrap 0.8 refuses more than 9000 arguments.
	[ $n -le 1000 ] && specs+=("$(spec bwrap /usr/bin/bwrap "${BASE_OPTS[@]}" "${extra[@]}" -- /payload)")
	# The original's planning is quadratic: 1000 binds take it many seconds per start.
	[ $n -le 100 ] && specs+=("$(spec python "$py" -SI "$orig" "${BASE_OPTS[@]}" "${extra[@]}" -- /payload)")
	case $n in 10) r=100 ;; 100) r=30 ;; 1000) r=5 ;; *) r=3 ;; esac
	table "5. tools sandbox + $n extra --bind (root)" "$r" "${specs[@]}"
done

# 6. Scaling with mounts already present in the caller's mount namespace (a private one).
for m in 0 100 1000; do
	spec_ours=$(spec ours "$ours" "${BASE_OPTS[@]}" -- /payload)
	spec_py=$(spec python "$py" -SI "$orig" "${BASE_OPTS[@]}" -- /payload)
	spec_bw=$(spec bwrap /usr/bin/bwrap "${BASE_OPTS[@]}" -- /payload)
	echo "== 6. $m mounts" >&2
	res=$(unshare -m --propagation private bash -c '
		set -e; for i in $(seq 1 '"$m"'); do mkdir -p '"$W"'/mnt/$i; mount -t tmpfs -o size=64k tmpfs '"$W"'/mnt/$i; done
		'"$cache"'/timer '"$(R 100)"' '"$spec_ours $spec_py $spec_bw"'')
	base=$(echo "$res" | awk -F'\t' '$1 == "ours" {print $2}')
	emit ""
	emit "### 6. tools sandbox as root with $m extra mounts in the caller's namespace"
	emit ""
	emit "| contestant | median µs | p10–p90 µs | ours ÷ this |"
	emit "|---|---:|---:|---:|"
	echo "$res" | awk -F'\t' -v base="$base" '{ printf "| %s | %.0f | %.0f–%.0f | %.3f |\n", $1, $2, $3, $4, base / $2 }' >> "$tmp"
	echo "$res" >&2
done

# 7. Throughput: many sandboxes in parallel on both cores.
echo "== 7. throughput" >&2
res=$("$cache/timer" -j "$(nproc)" "$(R 500)" "$(spec ours "$ours" "${BASE_OPTS[@]}" -- /payload)" \
	"$(spec bwrap /usr/bin/bwrap "${BASE_OPTS[@]}" -- /payload)" "$(spec payload "$W/payload")")
res_py=$("$cache/timer" -j "$(nproc)" "$(R 50)" "$(spec python "$py" -SI "$orig" "${BASE_OPTS[@]}" -- /payload)")
emit ""
emit "### 7. throughput: tools sandbox as root, $(nproc) parallel workers"
emit ""
emit "| contestant | starts per second | failed workers |"
emit "|---|---:|---:|"
printf '%s\n%s\n' "$res" "$res_py" | awk -F'\t' '{ printf "| %s | %s | %d |\n", $1, $2, $3 }' >> "$tmp"
echo "$res" >&2; echo "$res_py" >&2

# 8. A PID namespace (--unshare-pid): the init of our own and two more processes, against
# bubblewrap's on the same workload, and our run without it. bench/pidns-skeleton.c makes the
# same three processes with nothing else: its two forms bound what the structure costs.
gcc -O2 -static -nostdlib -fno-stack-protector -o "$cache/pidns-skeleton" "$here/pidns-skeleton.c"
for who in root 65534; do
	if [ $who = root ]; then u=(); extra=(); bw=(); title="as root with"
	else u=(-u 65534); extra=(--become-root); bw=(--unshare-user --uid 0 --gid 0); title="as uid 65534 with --become-root"; fi
	table "8. tools sandbox $title --unshare-pid" "$(R 300)" "${u[@]}" \
		"$(spec ours "$ours" "${BASE_OPTS[@]}" "${extra[@]}" --unshare-pid -- /payload)" \
		"$(spec ours-without "$ours" "${BASE_OPTS[@]}" "${extra[@]}" -- /payload)" \
		"$(spec bwrap /usr/bin/bwrap "${bw[@]}" --unshare-pid "${BASE_OPTS[@]}" -- /payload)" \
		"$(spec skeleton "$cache/pidns-skeleton" --unshare-pid "$W/payload")" \
		"$(spec skeleton-without "$cache/pidns-skeleton" "$W/payload")"
done

# Size and user-space instructions per start (callgrind counts are stable on a noisy machine).
# valgrind 3.19 does not know open_tree()/mount_setattr(), so the instruction count uses the
# writable variant of workload 2 (binds through mount(2)); it stops at exec (of a missing command).
RW_OPTS=("${BASE_OPTS[@]/--ro-bind/--bind}")
count() { # NAME ARGS...
	local name=$1; shift
	rm -f "$W/cg/out"
	valgrind --tool=callgrind --callgrind-out-file="$W/cg/out" "$@" >/dev/null 2>&1 || true
	local n
	n=$(awk '/^summary:/ {print $2}' "$W/cg/out" 2>/dev/null || true)
	emit "| $name | ${n:-n/a} |"
}
emit ""
emit "### Size and user-space instructions"
emit ""
emit "Binary: $(stat -c %s "$ours") bytes stripped ($(file -b "$ours" | cut -d, -f1-2))."
emit ""
emit "| start | instructions (callgrind) |"
emit "|---|---:|"
count "ours --version" "$ours" --version
count "ours, workload 2 (writable binds) up to exec" "$ours" "${RW_OPTS[@]}" --bind "$W/cg" "$W/cg" -- /nonexistent
count "python original --version" "$py" -SI "$orig" --version

# Peak memory of the sandbox itself: stopped by --suspend right before exec, VmHWM read then.
"$ours" "${BASE_OPTS[@]}" --suspend -- /payload &
pid=$!
for _ in $(seq 200); do grep -q '^State:.*stopped' /proc/$pid/status 2>/dev/null && break; sleep 0.01; done
hwm=$(awk '/^VmHWM/ {print $2}' /proc/$pid/status)
kill -CONT $pid; wait $pid || true
emit ""
emit "Peak RSS of the sandbox process (workload 2, VmHWM right before exec, via --suspend): $hwm KiB."
emit "(The \"max RSS\" columns above are wait4()'s ru_maxrss, which also counts the spawning timer's image; they are not the sandbox's own.)"

# `make bench-mkosi`'s section (whole image builds, minutes per round) is kept as it was.
if [ -f "$out" ] && grep -q '^## Real mkosi builds' "$out"; then
	emit ""
	sed -n '/^## Real mkosi builds/,$p' "$out" >> "$tmp"
fi
mv "$tmp" "$out"
echo "wrote $out" >&2
