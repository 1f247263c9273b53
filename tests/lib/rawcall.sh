# Tiny static ELF programs that make ONE raw system call with a bad descriptor (-1, which is also
# a bad pointer) and all other arguments 0, then exit with the call's result (low 8 bits). So a
# call that the seccomp filter turns into a no-op exits 0, and the same call without the filter
# exits non-zero (EBADF, EFAULT, EINVAL): a missing filter cannot pass. No compiler needed.
# Sourced by test scripts (bash). ABIs: x86_64, i386, aarch64, arm (32-bit EABI, A32 code).

# le32 VALUE / le16 VALUE / le64 VALUE: little-endian hex.
le16() { printf '%02x%02x' $(($1 & 255)) $(($1 >> 8 & 255)); }
le32() { printf '%s%s' "$(le16 $(($1 & 65535)))" "$(le16 $(($1 >> 16 & 65535)))"; }
le64() { printf '%s%s' "$(le32 $(($1 & 0xffffffff)))" "$(le32 $(($1 >> 32 & 0xffffffff)))"; }

# rawcall_code ABI NR: the machine code, hex.
rawcall_code() {
	local nr=$2
	case $1 in
	x86_64) # mov eax,NR; mov rdi,-1; xor esi/edx/r10d/r8d/r9d; syscall; mov edi,eax; mov eax,60; syscall
		echo "b8$(le32 "$nr")48c7c7ffffffff31f631d24531d24531c04531c90f0589c7b83c0000000f05" ;;
	i386) # mov eax,NR; mov ebx,-1; xor ecx/edx/esi/edi/ebp; int 0x80; mov ebx,eax; mov eax,1; int 0x80
		echo "b8$(le32 "$nr")bbffffffff31c931d231f631ff31edcd8089c3b801000000cd80" ;;
	aarch64) # movz x8,NR; movn x0,0; movz x1..x5,0; svc 0; movz x8,93 (exit); svc 0
		printf '%s' "$(le32 $((0xd2800008 | nr << 5)))$(le32 0x92800000)"
		for r in 1 2 3 4 5; do printf '%s' "$(le32 $((0xd2800000 | r)))"; done
		echo "$(le32 0xd4000001)$(le32 $((0xd2800008 | 93 << 5)))$(le32 0xd4000001)" ;;
	arm) # movw r7,NR; mvn r0,0; mov r1..r5,0; svc 0; mov r7,1 (exit); svc 0
		printf '%s' "$(le32 $((0xe3007000 | (nr >> 12) << 16 | (nr & 0xfff))))$(le32 0xe3e00000)"
		for r in 1 2 3 4 5; do printf '%s' "$(le32 $((0xe3a00000 | r << 12)))"; done
		echo "$(le32 0xef000000)$(le32 0xe3a07001)$(le32 0xef000000)" ;;
	*) echo "rawcall: unknown ABI $1" >&2; return 1 ;;
	esac
}

# rawcall_elf ABI NR OUT: writes the executable.
rawcall_elf() {
	local abi=$1 code hdr base=$((0x400000)) machine flags=0 size
	code=$(rawcall_code "$abi" "$2") || return 1
	case $abi in x86_64) machine=62 ;; i386) machine=3 ;; aarch64) machine=183 ;; arm) machine=40 flags=$((0x05000000)) ;; esac
	case $abi in
	x86_64 | aarch64) # ELF64 header (64 bytes) + one PT_LOAD program header (56 bytes), code at 120.
		size=$((120 + ${#code} / 2))
		hdr="7f454c46020101000000000000000000$(le16 2)$(le16 $machine)$(le32 1)$(le64 $((base + 120)))"
		hdr+="$(le64 64)$(le64 0)$(le32 $flags)$(le16 64)$(le16 56)$(le16 1)$(le16 0)$(le16 0)$(le16 0)"
		hdr+="$(le32 1)$(le32 5)$(le64 0)$(le64 $base)$(le64 $base)$(le64 $size)$(le64 $size)$(le64 4096)" ;;
	*) # ELF32 header (52 bytes) + one PT_LOAD program header (32 bytes), code at 84.
		size=$((84 + ${#code} / 2))
		hdr="7f454c46010101000000000000000000$(le16 2)$(le16 $machine)$(le32 1)$(le32 $((base + 84)))"
		hdr+="$(le32 52)$(le32 0)$(le32 $flags)$(le16 52)$(le16 32)$(le16 1)$(le16 0)$(le16 0)$(le16 0)"
		hdr+="$(le32 1)$(le32 0)$(le32 $base)$(le32 $base)$(le32 $size)$(le32 $size)$(le32 5)$(le32 4096)" ;;
	esac
	printf "$(printf '%s%s' "$hdr" "$code" | sed 's/\(..\)/\\x\1/g')" > "$3"
	chmod 755 "$3"
}

# rawcall_table TSV ABI GROUP: "name number" for each call of GROUP (chown, sync) that ABI has,
# from the seccomp table. sync() itself is left out: it returns 0 with or without the filter.
rawcall_table() {
	awk -F'\t' -v abi="$2" -v group="$3" '
		$1 == "#" && $2 == "name" { for (i = 4; i <= NF; i++) col[$i] = i }
		$1 == "syscall" && $3 == group && $2 != "sync" && $(col[abi]) != "-" { print $2, $(col[abi]) }' "$1"
}
