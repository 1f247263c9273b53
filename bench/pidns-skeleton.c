/* The kernel's own cost of --unshare-pid's process structure, for bench/run.sh's table 8.
 *
 *   pidns-skeleton [--unshare-pid] PAYLOAD
 *
 * unshare(CLONE_NEWNS [| CLONE_NEWUSER when not root] [| CLONE_NEWPID]), then either exec
 * PAYLOAD, or (with --unshare-pid) fork an init that forks PAYLOAD's process and waits for it,
 * while this process waits for the init: the sandbox's three processes with no parsing, no
 * mounts and no signal handling. The difference between the two forms is the floor for what
 * --unshare-pid adds to a start. No libc (as bench/floor.c): x86_64 only.
 */
enum { FORK = 57, EXECVE = 59, WAIT4 = 61, GETEUID = 107, UNSHARE = 272, EXIT = 231 };
#define CLONE_NEWNS 0x00020000
#define CLONE_NEWUSER 0x10000000
#define CLONE_NEWPID 0x20000000

static long sys(long n, long a, long b, long c, long d) {
	long ret;
	register long r10 __asm__("r10") = d;
	__asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
	return ret;
}

static void quit(long status) { sys(EXIT, status, 0, 0, 0); for (;;) {} }

/* Waits for `pid` and exits with its status (128+N for signal N). */
static void wait_and_quit(long pid) {
	int status = 0;
	if (sys(WAIT4, pid, (long)&status, 0, 0) < 0) quit(2);
	quit((status & 0x7f) ? 128 + (status & 0x7f) : (status >> 8) & 0xff);
}

void run(long argc, char **argv, char **envp) {
	int pidns = argc > 2 && argv[1][0] == '-';
	char *payload = argv[argc - 1];
	char *args[] = { payload, 0 };
	long flags = CLONE_NEWNS | (sys(GETEUID, 0, 0, 0, 0) ? CLONE_NEWUSER : 0) | (pidns ? CLONE_NEWPID : 0);
	if (argc < 2 || sys(UNSHARE, flags, 0, 0, 0) < 0) quit(2);
	if (pidns) {
		long init = sys(FORK, 0, 0, 0, 0);
		if (init < 0) quit(2);
		if (init > 0) wait_and_quit(init);
		long command = sys(FORK, 0, 0, 0, 0);
		if (command < 0) quit(2);
		if (command > 0) wait_and_quit(command);
	}
	sys(EXECVE, (long)payload, (long)args, (long)envp, 0);
	quit(127);
}

__asm__(".global _start\n_start:\n\tmov (%rsp), %rdi\n\tlea 8(%rsp), %rsi\n\tlea 16(%rsp,%rdi,8), %rdx\n\tand $-16, %rsp\n\tcall run\n\thlt\n");
