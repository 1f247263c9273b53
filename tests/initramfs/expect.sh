# What tests/initramfs.sh expects of one kernel's console output (sourced, bash).
# expect_all LABEL FILE: counts in $pass and $fail, prints each failure and, when any, the end of
# the console; with WHERE_IT_RUNS set, appends that kernel's rows of the "Where it runs" table.
# Returns non-zero when a check failed.

expect_all() {
	local out phase label user id map rootmap userns p r want b release new_binfmt
	kernel_label=$1
	out=$(cat "$2")
	pass=0 fail=0
	release=$(sed -n 's/^kernel: //p' <<<"$out" | head -n 1)
	# Private binfmt_misc instances arrived in 6.7.
	new_binfmt=no
	if [ -n "$release" ] && ! printf '%s\n6.7\n' "${release%%-*}" | sort -V -C; then new_binfmt=yes; fi
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
		expect "$phase root userns-off exit: 0"
		expect "$phase nobody userns-off mkosi-sandbox: unshare: No space left on device (no user namespace may be made: user namespaces are switched off (sysctl user.max_user_namespaces=0) or the limit is reached; raise user.max_user_namespaces)"
		expect "$phase nobody userns-off exit: 1"
		if [ $new_binfmt = no ]; then
			# Before 6.7 a user namespace gets no binfmt_misc of its own: one line, nothing runs.
			for label in binfmt binfmt-foreign; do
				expect "$phase nobody $label mkosi-sandbox: --binfmt-register: this kernel gives user namespaces no binfmt_misc of their own (Linux 6.7 and newer do); not registering in the host's"
				expect "$phase nobody $label exit: 1"
			done
		else
			expect "$phase nobody binfmt registered"
			expect "$phase nobody binfmt exit: 0"
			expect "$phase nobody binfmt-foreign machine: $foreign_machine"
			expect "$phase nobody binfmt-foreign exit: 0"
		fi
		expect "$phase vm binfmt entries: register status "
		expect_status "$phase vm foreign outside" nonzero
	done
	local before=$fail nested_fail missing_fail
	for phase in initramfs tmpfs; do
		for user in root nobody; do
			expect "$phase $user nested ids: 0:0"
			expect "$phase $user nested greeting: hello"
			expect "$phase $user nested exit: 0"
			expect "$phase $user nested-pid pid: 2"
			expect "$phase $user nested-pid init: mkosi-sandbox"
			expect "$phase $user nested-pid exit: 5"
		done
	done
	nested_fail=$((fail - before)) before=$fail
	for phase in initramfs tmpfs; do
		expect "$phase missing binfmt_misc mounts: 0"
		for user in root nobody; do
			expect "$phase $user missing-pieces fuse: no"
			expect "$phase $user missing-pieces tmp: writable"
			expect "$phase $user missing-pieces host-tmp: ro"
			expect "$phase $user missing-pieces exit: 0"
		done
	done
	missing_fail=$((fail - before))
	if [ $fail != 0 ]; then echo "--- console output ($kernel_label):"; tail -n 60 <<<"$out"; fi
	if [ -n "${WHERE_IT_RUNS:-}" ]; then
		where "$kernel_label" "the whole check list: root and unprivileged, in an initramfs and after switch_root" \
			"$([ $fail = 0 ] && echo works || echo "$fail of $((pass + fail)) checks fail")"
		where "$kernel_label" "nested three deep, --become-root or --unshare-pid at every level, root and unprivileged" \
			"$([ $nested_fail = 0 ] && echo works || echo "$nested_fail checks fail")"
		where "$kernel_label" "no /dev/fuse, no binfmt_misc mounted, read-only /tmp" \
			"$([ $missing_fail = 0 ] && echo works || echo "$missing_fail checks fail")"
		where "$kernel_label" "--binfmt-register" "$([ $new_binfmt = yes ] && echo "works: a 32-bit busybox of another architecture ($foreign_machine) runs through qemu-user in the sandbox's own instance" ||
			echo "one line: \`$(grep -m 1 -F 'initramfs nobody binfmt mkosi-sandbox:' <<<"$out" | sed 's/^initramfs nobody binfmt //')\`")"
		where "$kernel_label" "user.max_user_namespaces=0, unprivileged" \
			"one line: \`$(grep -m 1 -F 'initramfs nobody userns-off mkosi-sandbox:' <<<"$out" | sed 's/^initramfs nobody userns-off //')\`"
	fi
	[ $fail = 0 ]
}

where() { printf '%s\t%s\t%s\n' "$@" >> "$WHERE_IT_RUNS"; }

bad() { fail=$((fail + 1)); echo "FAIL ($kernel_label): $*"; }

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
