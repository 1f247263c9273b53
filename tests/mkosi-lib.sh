# Shared by tests/mkosi.sh (make test-mkosi) and bench/mkosi.sh (make bench-mkosi); sourced by bash.
# mkosi 25.3 (trixie) and 27.1 (sid), unmodified Debian packages, build the same Debian bookworm
# directory image (Packages=coreutils less; a post-install script that runs mkosi-chroot) in three
# variants: "stock" (mkosi's own sandbox), "nocopy" (its own sandbox, without the per-start copy of
# the mkosi package) and "patched" (every sandbox through this binary, contrib/mkosi/patch-mkosi).
# Work directory: $MKOSI_TEST_DIR (default /var/tmp/mkosi-sandbox-test-mkosi): fetched packages,
# the package cache shared by all builds, one metadata cache per mkosi version, images, logs.

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
W=${MKOSI_TEST_DIR:-/var/tmp/mkosi-sandbox-test-mkosi}
# "version suites" pairs; the Debian suites by name (tried in order), the archive from the apt sources.
MKOSI_VERSIONS=("25.3 trixie" "27.1 sid,testing,trixie-backports")
APT_GET=(apt-get -o DPkg::Lock::Timeout=600 -y -qq --no-install-recommends)

die() { echo "$*" >&2; exit 1; }

# What mkosi runs on the host for a Debian directory image without a tools tree (python3 for
# mkosi itself; apt, dpkg-deb and tar to install; systemctl, systemd-tmpfiles, systemd-sysusers,
# kernel-install from systemd; the archive keyring), plus curl and xz for the fetch.
mkosi_install_needs() {
	local need=()
	[ -x /usr/bin/python3 ] || need+=(python3)
	command -v apt-get >/dev/null || need+=(apt)
	command -v dpkg-deb >/dev/null || need+=(dpkg)
	command -v tar >/dev/null || need+=(tar)
	command -v systemd-sysusers >/dev/null && command -v systemctl >/dev/null || need+=(systemd)
	[ -s /usr/share/keyrings/debian-archive-keyring.gpg ] || need+=(debian-archive-keyring)
	command -v curl >/dev/null || need+=(curl ca-certificates)
	command -v xz >/dev/null || need+=(xz-utils)
	[ ${#need[@]} = 0 ] && return 0
	echo "mkosi: installing ${need[*]}"
	DEBIAN_FRONTEND=noninteractive "${APT_GET[@]}" update >/dev/null &&
		DEBIAN_FRONTEND=noninteractive "${APT_GET[@]}" install "${need[@]}" >/dev/null ||
		die "mkosi: cannot install ${need[*]} with apt-get"
}

# mkosi_setup BINARY [LIBDIR]: fetch both versions, make the variants, write the project. With
# LIBDIR (make lib's target/lib/python), 27.x also gets "library" (patch-mkosi --library: its
# in-process entries through libmkosi-sandbox.so, the commands through BINARY).
mkosi_setup() {
	[ "$(id -u)" = 0 ] || die "mkosi: run as root"
	mkosi_install_needs
	mkdir -p "$W"/{bin,variants,cache/pkg,out,logs}
	install -m 755 "$1" "$W/bin/mkosi-sandbox"
	MIRROR=$("$here/fetch-mkosi.sh" --mirror) || exit 1
	local pair version suite src
	for pair in "${MKOSI_VERSIONS[@]}"; do
		read -r version suite <<< "$pair"
		src=$("$here/fetch-mkosi.sh" "$suite" "$version" "$W/packages") || exit 1
		rm -rf "$W/variants/$version-stock"
		ln -s "$src" "$W/variants/$version-stock"
		"$top/contrib/mkosi/patch-mkosi" --drop-copy-only "$src" "$W/variants/$version-nocopy" || exit 1
		"$top/contrib/mkosi/patch-mkosi" "$src" "$W/variants/$version-patched" "$W/bin/mkosi-sandbox" || exit 1
		case $version in 25.*) ;; *)
			[ -z "${2:-}" ] || "$top/contrib/mkosi/patch-mkosi" --library="$2" "$src" "$W/variants/$version-library" \
				"$W/bin/mkosi-sandbox" || exit 1 ;;
		esac
	done
	mkosi_project "$W/project"
}

# The image: bookworm from the apt sources' archive only (mkosi's default list adds
# debian-debug and security hosts), so that every build sees the same packages.
mkosi_project() {
	local p=$1
	rm -rf "$p"
	mkdir -p "$p/sandbox/etc/apt/sources.list.d"
	cat > "$p/mkosi.conf" <<-EOF
	[Distribution]
	Distribution=debian
	Release=bookworm
	Mirror=$MIRROR

	[Output]
	Format=directory

	[Content]
	Packages=coreutils
	         less

	[Build]
	SandboxTrees=sandbox
	EOF
	cat > "$p/sandbox/etc/apt/sources.list.d/mkosi.sources" <<-EOF
	Types: deb
	URIs: $MIRROR
	Suites: bookworm
	Components: main
	Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	EOF
	# mkosi-chroot is a sandbox started from inside mkosi's sandbox (/sandbox.py there).
	cat > "$p/mkosi.postinst" <<-'EOF'
	#!/bin/sh
	set -e
	mkosi-chroot sh -c 'echo "uid=$(id -u) container=$container"; dpkg-query -W -f="\${Package}\n" coreutils less' \
		> "$BUILDROOT/etc/mkosi-chroot-test"
	EOF
	chmod 755 "$p/mkosi.postinst"
}

# mkosi_build VERSION VARIANT NAME: builds into $W/out/NAME/image, log in $W/logs/NAME.log. The
# first build of a version syncs the repository metadata (again after 6 hours); later ones reuse it.
# Sets BUILD_WALL, BUILD_CPU (ms; CPU of the whole process tree) and BUILD_STARTS (sandbox starts,
# "" when tracefs is not available).
mkosi_build() {
	local version=$1 variant=$2 name=$3
	local synced="$W/cache/$version/.synced" only=never
	[ -n "$(find "$synced" -mmin -360 2>/dev/null)" ] && only=metadata
	local args=(--cache-only="$only" --package-cache-dir "$W/cache/pkg" --cache-dir "$W/cache/$version"
		--output-directory "$W/out/$name" --force)
	case $version in 25.*) ;; *) args+=(--tools-tree=no) ;; esac
	rm -rf "$W/out/$name"
	mkdir -p "$W/out/$name" "$W/cache/$version"
	trace_begin
	local t0 c0 c1 rc=0
	t0=$(date +%s%N); children_cpu_ms; c0=$CPU_MS
	(cd "$W/project" && PYTHONPATH="$W/variants/$version-$variant" exec /usr/bin/python3 -m mkosi "${args[@]}" build) \
		> "$W/logs/$name.log" 2>&1 || rc=$?
	children_cpu_ms; c1=$CPU_MS
	BUILD_WALL=$(( ($(date +%s%N) - t0) / 1000000 )); BUILD_CPU=$((c1 - c0))
	trace_end
	if [ $rc != 0 ]; then
		if grep -q -e 'Failed to fetch' -e 'Could not resolve' -e 'Temporary failure' "$W/logs/$name.log"; then
			echo "mkosi: $name: cannot reach the Debian archive $MIRROR (see $W/logs/$name.log)" >&2
		else
			echo "mkosi: $name: mkosi $version ($variant) failed with status $rc; the end of $W/logs/$name.log:" >&2
			tail -n 15 "$W/logs/$name.log" >&2
		fi
		return 1
	fi
	[ $only = never ] && touch "$synced"
	return 0
}

# CPU_MS: CPU time (user + system, ms) of this shell's waited-for children so far. `times` must
# run in this shell, not in a command substitution (a forked subshell starts from zero).
children_cpu_ms() {
	times > "$W/.times"
	CPU_MS=$(tail -n 1 "$W/.times" |
		awk '{ t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60000 + a[2] * 1000 } printf "%d\n", t }')
}

# File by file: path, type, mode, owner, size (not for directories: that depends on the
# filesystem's history) and link target; sorted.
mkosi_manifest() {
	(cd "$1" && find . -mindepth 1 -printf '%P\t%y\t%m\t%U:%G\t%s\t%l\n') |
		awk -F '\t' -v OFS='\t' '$2 == "d" { $5 = "-" } 1' | LC_ALL=C sort
}

# Sandbox starts: processes of this shell's tree that call pivot_root() (each start does, once or
# twice, in its own process), counted with a private tracefs instance: BUILD_STARTS="COUNT COMMS".
TRACE=""
trace_begin() {
	TRACE=""
	[ -z "${TRACE_OFF:-}" ] || return 0
	local t=/sys/kernel/tracing
	TRACE_MOUNTED=""
	if [ ! -d $t/events ]; then
		mount -t tracefs nodev $t 2>/dev/null || return 0
		TRACE_MOUNTED=$t
	fi
	[ -d $t/events/syscalls/sys_enter_pivot_root ] || { [ -z "$TRACE_MOUNTED" ] || umount $t; return 0; }
	TRACE=$t/instances/mkosi-sandbox-test-$$
	rmdir "$TRACE" 2>/dev/null
	mkdir "$TRACE" || { TRACE=""; [ -z "$TRACE_MOUNTED" ] || umount $t; return 0; }
	# Interrupted mid-build: still remove the instance (and tracefs, if mounted here).
	trap trace_end EXIT
	echo 4096 > "$TRACE/buffer_size_kb"
	echo 1 > "$TRACE/options/event-fork"
	echo $BASHPID > "$TRACE/set_event_pid"
	echo 1 > "$TRACE/events/syscalls/sys_enter_pivot_root/enable"
	# The comm a trace line shows comes from a small cache of recent pids ("<...>" or another
	# process's name when it overflowed); the exec event names the binary for sure.
	echo 1 > "$TRACE/events/sched/sched_process_exec/enable"
	echo 1 > "$TRACE/tracing_on"
}

trace_end() {
	BUILD_STARTS=""
	[ -n "$TRACE" ] || return 0
	echo 0 > "$TRACE/tracing_on"
	# Lines "  comm-pid  [cpu] flags  timestamp: EVENT", in order. Each pid that called pivot_root()
	# is named by the last binary it exec'd before (sched_process_exec: filename=PATH pid=N ...).
	BUILD_STARTS=$(grep -v '^#' "$TRACE/trace" | awk '
		/sched_process_exec: / {
			for (i = 1; i <= NF; i++) {
				if ($i ~ /^filename=/) { f = substr($i, 10); sub(/.*\//, "", f) }
				if ($i ~ /^pid=/) p = substr($i, 5)
			}
			bin[p] = f
			next
		}
		/sys_pivot_root\(/ {
			if (!match($0, /-[0-9]+ +\[/)) next
			p = substr($0, RSTART + 1, RLENGTH - 1); sub(/ +\[$/, "", p)
			if (p in seen) next
			seen[p] = 1; n++
			c[(p in bin) ? bin[p] : "unknown"]++
		}
		END { s = ""; for (k in c) s = s sprintf("%s%s=%d", s == "" ? "" : ",", k, c[k]); print n + 0, s }')
	echo 0 > "$TRACE/events/syscalls/sys_enter_pivot_root/enable"
	echo 0 > "$TRACE/events/sched/sched_process_exec/enable"
	rmdir "$TRACE" 2>/dev/null
	TRACE=""
	# Leave the machine as it was: unmount tracefs if this mounted it.
	[ -z "$TRACE_MOUNTED" ] || umount "$TRACE_MOUNTED" 2>/dev/null
	trap - EXIT
}
