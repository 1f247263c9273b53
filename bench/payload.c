/* The benchmark payload: a static program that does nothing but exit(0). */
void _start(void) {
#if defined(__x86_64__)
	__asm__ volatile("mov $231, %eax\n\txor %edi, %edi\n\tsyscall");
#elif defined(__aarch64__)
	__asm__ volatile("mov x8, #94\n\tmov x0, #0\n\tsvc #0");
#else
#error "payload: unsupported architecture"
#endif
	for (;;) {}
}
