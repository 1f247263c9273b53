/* The kernel floor for workloads 2 and 3: exactly the syscalls that sandbox needs, in the order
 * mkosi-sandbox makes them, with no parsing, no path resolution and no checks beyond "did it
 * fail", then exec of the payload. No libc: its start-up is not part of the floor.
 *
 *   floor VARTMP PAYLOAD [userns|root] [BINDS_DIR N]
 *
 * With BINDS_DIR and N, also binds BINDS_DIR/1..N onto /b/1..N (workload 5's extra binds).
 * x86_64 only (the benchmark machine). Exits 1 at the first failing syscall.
 */
typedef unsigned long u64;

static long sys6(long n, long a, long b, long c, long d, long e, long f) {
	long ret;
	register long r10 __asm__("r10") = d, r8 __asm__("r8") = e, r9 __asm__("r9") = f;
	__asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9) : "rcx", "r11", "memory");
	return ret;
}
#define S(n, a, b, c, d, e) do { if (sys6(n, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), 0) < 0) die(); } while (0)

enum { READ = 0, WRITE = 1, OPEN = 2, CLOSE = 3, EXIT = 231, CHDIR = 80, MKDIR = 83, SYMLINK = 88, MKNOD = 133,
       UMASK = 95, PRCTL = 157, PIVOT = 155, MOUNT = 165, UMOUNT2 = 166, EXECVE = 59, UNSHARE = 272, GETUID = 102,
       GETGID = 104, OPEN_TREE = 428, MOVE_MOUNT = 429, MOUNT_SETATTR = 442 };
#define MS_BIND 4096
#define MS_REC 16384
#define MS_SLAVE (1 << 19)
#define MS_SHARED (1 << 20)

static void die(void) { sys6(EXIT, 1, 0, 0, 0, 0, 0); for (;;) {} }

static unsigned len(const char *s) { unsigned n = 0; while (s[n]) n++; return n; }
static char *cat(char *out, const char *a, const char *b) {
	char *p = out;
	while (*a) *p++ = *a++;
	while (*b) *p++ = *b++;
	*p = 0;
	return out;
}

static void write_file(const char *path, const char *data) {
	long fd = sys6(OPEN, (long)path, 1 /* O_WRONLY */, 0, 0, 0, 0);
	if (fd < 0 || sys6(WRITE, fd, (long)data, len(data), 0, 0, 0) < 0) die();
	sys6(CLOSE, fd, 0, 0, 0, 0, 0);
}

static void utoa(char *out, u64 v) {
	char tmp[24]; int n = 0;
	do { tmp[n++] = '0' + v % 10; v /= 10; } while (v);
	while (n) *out++ = tmp[--n];
	*out = 0;
}

static void rbind_ro(const char *src, const char *dst) {
	struct { u64 set, clr, prop, userns; } attr = { 1, 0, 0, 0 };
	long fd = sys6(OPEN_TREE, -100, (long)src, 0x800 | 0x8000 | 0x100 | 1 | 02000000, 0, 0, 0);
	if (fd < 0) die();
	S(MOUNT_SETATTR, fd, "", 0x1000 | 0x8000, &attr, sizeof attr);
	S(MOVE_MOUNT, fd, "", -100, dst, 4);
	sys6(CLOSE, fd, 0, 0, 0, 0, 0);
}

static void node(const char *name) {
	char src[64], dst[64];
	cat(src, "oldroot/dev/", name);
	cat(dst, "newroot/dev/", name);
	S(MKNOD, dst, 0100644, 0, 0, 0);
	S(MOUNT, src, dst, 0, MS_BIND, 0);
}

void run(long argc, char **argv, char **envp) {
	if (argc < 3) die();
	char vartmp[4096], payload[4096];
	cat(vartmp, "oldroot", argv[1]);
	cat(payload, "oldroot", argv[2]);
	int userns = argc > 3 && argv[3][0] == 'u';
	if (userns) {
		u64 uid = sys6(GETUID, 0, 0, 0, 0, 0, 0), gid = sys6(GETGID, 0, 0, 0, 0, 0, 0);
		char line[64];
		S(UNSHARE, 0x10000000 | 0x00020000 | 0x08000000, 0, 0, 0, 0);
		S(PRCTL, 4 /* PR_SET_DUMPABLE */, 1, 0, 0, 0);
		write_file("/proc/self/setgroups", "deny");
		line[0] = '0'; line[1] = ' '; utoa(line + 2, gid); cat(line, line, " 1\n");
		write_file("/proc/self/gid_map", line);
		line[0] = '0'; line[1] = ' '; utoa(line + 2, uid); cat(line, line, " 1\n");
		write_file("/proc/self/uid_map", line);
	} else {
		S(UNSHARE, 0x00020000 | 0x08000000, 0, 0, 0, 0);
		S(MOUNT, 0, "/", 0, MS_SLAVE | MS_REC, 0);
	}
	sys6(UMASK, 0, 0, 0, 0, 0, 0);
	S(MOUNT, "tmpfs", "/tmp", "tmpfs", 0, 0);
	S(CHDIR, "/tmp", 0, 0, 0, 0);
	S(MKDIR, "newroot", 0755, 0, 0, 0);
	S(MKDIR, "oldroot", 0755, 0, 0, 0);
	S(MOUNT, "newroot", "newroot", 0, MS_BIND | MS_REC, 0);
	S(PIVOT, ".", "oldroot", 0, 0, 0);

	S(SYMLINK, "usr/bin", "newroot/bin", 0, 0, 0);
	S(MKDIR, "newroot/dev", 0755, 0, 0, 0);
	S(MOUNT, "tmpfs", "newroot/dev", "tmpfs", 0, "mode=0755");
	node("null"); node("zero"); node("full"); node("random"); node("urandom"); node("tty"); node("fuse");
	S(SYMLINK, "/proc/self/fd/0", "newroot/dev/stdin", 0, 0, 0);
	S(SYMLINK, "/proc/self/fd/1", "newroot/dev/stdout", 0, 0, 0);
	S(SYMLINK, "/proc/self/fd/2", "newroot/dev/stderr", 0, 0, 0);
	S(SYMLINK, "/proc/self/fd", "newroot/dev/fd", 0, 0, 0);
	S(SYMLINK, "/proc/kcore", "newroot/dev/core", 0, 0, 0);
	S(MKDIR, "newroot/dev/shm", 01777, 0, 0, 0);
	S(MKDIR, "newroot/dev/pts", 0755, 0, 0, 0);
	S(MOUNT, "devpts", "newroot/dev/pts", "devpts", 0, "newinstance,ptmxmode=0666,mode=620");
	S(SYMLINK, "pts/ptmx", "newroot/dev/ptmx", 0, 0, 0);
	S(MKDIR, "newroot/etc", 0755, 0, 0, 0);
	S(SYMLINK, "usr/lib", "newroot/lib", 0, 0, 0);
	S(SYMLINK, "usr/lib64", "newroot/lib64", 0, 0, 0);
	S(MKNOD, "newroot/payload", 0100644, 0, 0, 0);
	rbind_ro(payload, "newroot/payload");
	S(MKDIR, "newroot/proc", 0755, 0, 0, 0);
	S(MOUNT, "oldroot/proc", "newroot/proc", 0, MS_BIND | MS_REC, 0);
	S(MKDIR, "newroot/run", 0755, 0, 0, 0);
	S(SYMLINK, "usr/sbin", "newroot/sbin", 0, 0, 0);
	S(MKDIR, "newroot/tmp", 01777, 0, 0, 0);
	S(MKDIR, "newroot/usr", 0755, 0, 0, 0);
	rbind_ro("oldroot/usr", "newroot/usr");
	S(MKDIR, "newroot/var", 0755, 0, 0, 0);
	S(MKDIR, "newroot/var/log", 0755, 0, 0, 0);
	S(MKDIR, "newroot/var/tmp", 01777, 0, 0, 0);
	S(MOUNT, vartmp, "newroot/var/tmp", 0, MS_BIND | MS_REC, 0);
	if (argc > 5) {
		u64 n = 0;
		for (const char *p = argv[5]; *p; p++) n = n * 10 + (*p - '0');
		static char src[4096], dst[64], num[24];
		S(MKDIR, "newroot/b", 0755, 0, 0, 0);
		for (u64 i = 1; i <= n; i++) {
			utoa(num, i);
			cat(src, "oldroot", argv[4]);
			cat(src, src, "/");
			cat(src, src, num);
			cat(dst, "newroot/b/", num);
			S(MKDIR, dst, 0755, 0, 0, 0);
			S(MOUNT, src, dst, 0, MS_BIND | MS_REC, 0);
		}
	}

	S(CHDIR, "newroot", 0, 0, 0, 0);
	S(PIVOT, ".", ".", 0, 0, 0);
	S(UMOUNT2, ".", 2, 0, 0, 0);
	S(MOUNT, 0, ".", 0, MS_SHARED | MS_REC, 0);
	sys6(UMASK, 022, 0, 0, 0, 0, 0);
	char *args[] = { "/payload", 0 };
	sys6(EXECVE, (long)"/payload", (long)args, (long)envp, 0, 0, 0);
	die();
}

__asm__(".global _start\n_start:\n\tmov (%rsp), %rdi\n\tlea 8(%rsp), %rsi\n\tlea 16(%rsp,%rdi,8), %rdx\n\tand $-16, %rsp\n\tcall run\n\thlt\n");
