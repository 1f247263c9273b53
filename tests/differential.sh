#!/bin/bash
# Differential suite: the same command lines under the Python original (mkosi 25.3's sandbox.py,
# fetched from Debian) and under this binary, comparing what the sandbox looks like from inside
# (mounts, file tree, modes, links, ids, maps, capabilities, environment, cwd) and the exit codes.
# Only options that the 25.3 original has are used. Run as root; some cases run as nobody.
# Usage: differential.sh BINARY
ours=$1
# shellcheck source=tests/differential-lib.sh
. "$(dirname "$0")/differential-lib.sh"

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
# The `## ns` lines compare something: new namespaces here, the host's in plain-ns.
expect_ns() { grep -q -x "$1" <<< "$last_out" || { fail=$((fail + 1)); echo "FAIL $2: no '$1' in ## ns"; }; }
expect_ns "ipc new" unshare; expect_ns "net new" unshare
run_inspect plain-ns root "${base[@]}"
expect_ns "ipc shared" plain-ns; expect_ns "net shared" plain-ns
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

# Edge cases of the last parity round (issue 12).
mkdir -p "$scratch"/edge/root/usr "$scratch"/edge/root/real
ln -s loop2 "$scratch/edge/root/loop1"; ln -s loop1 "$scratch/edge/root/loop2"
for l in bin lib lib64 sbin; do ln -s usr/$l "$scratch/edge/root/$l"; done
edge=(--bind "$scratch/edge/root" / --ro-bind /usr /usr --proc /proc --dev /dev)
run_inspect dot-sorts-first root "${base[@]}" --dir /x/./y/z --tmpfs /x/y
compare dot-write-then-dir root "${base[@]}" --write hello /c/tmp --dir /c/./tmp -- true
compare dot-dir-then-write root "${base[@]}" --dir /c/./tmp --write hello /c/tmp/f -- cat /c/tmp/f
run_inspect chdir-empty root "${base[@]}" --chdir ""
run_inspect same-dir-then-chdir-empty root "${base[@]}" --same-dir --chdir ""
compare bind-try-too-long root "${base[@]}" --bind-try "/$(printf 'x%.0s' $(seq 5000))" /long -- sh -c 'test -e /long || echo skipped'
compare bind-too-long root "${base[@]}" --bind "/$(printf 'x%.0s' $(seq 5000))" /long -- true
compare dir-on-loop root "${edge[@]}" --dir /loop1 -- true
compare tmpfs-on-loop root "${edge[@]}" --tmpfs /loop1 -- true
compare write-on-loop root "${edge[@]}" --write x /loop1 -- true
compare bind-on-loop root "${edge[@]}" --bind "$scratch/data" /loop1 -- true
# The source appears when DST is made, through the writable bind of the root.
before=(rm -rf "$scratch/edge/root/made")
compare source-made-by-dst root "${edge[@]}" --bind "$scratch/edge/root/made" /made/sub -- sh -c 'ls -d /made/sub /made/sub/sub'
before=(true)
wrap=(prlimit --nofile=4 --)
compare nofile-4 root "${base[@]}" --dir /a/b --write x /a/b/c --bind "$scratch/data" /a/d --tmpfs /t --dir /t/u/v \
	--symlink c /a/b/l --overlay-lowerdir "$scratch/lower1" --overlay-lowerdir "$scratch/lower2" --overlay /o \
	-- cat /a/b/l /a/d/file /o/a /o/b
wrap=()
# Binds through `..`: implied when really nested (the same mount tree as the original's).
mkdir -p "$scratch/vt/x" "$scratch/vt/y"
run_inspect dotdot-nested root "${base[@]}" --bind "$scratch/vt" /home --bind "$scratch/vt/x/../y" /home/x/../y

# Found by tests/fuzz.py (minimised), kept fixed here.
run_inspect symlink-over-absolute-link root "${base[@]}" --symlink /usr/share /var --symlink ../b /var
run_inspect symlink-through-file-dotdot root "${base[@]}" --bind-try /etc/os-release //tmp --symlink /usr/share /tmp/../tmp
run_inspect loop-then-dotdot root "${base[@]}" --symlink tmp /tmp --dir /tmp/../c
run_inspect islink-through-missing-dotdot root "${base[@]}" --bind-try /etc/os-release /var/../c --symlink /c /c

echo "differential: $pass passed, $fail failed, $notcompared not compared"
[ $fail = 0 ]
