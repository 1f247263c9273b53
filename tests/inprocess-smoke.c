/* make test-lib: the C ABI from C (built for x86_64, and for aarch64 run under qemu-user).
 * Without arguments: an error's errno and line, then a second call's EALREADY.
 * With "enter" ("enter-pid": and a PID namespace): enters a sandbox of a tmpfs, /x and /etc/x,
 * and says what it sees. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mkosi-sandbox.h"

int main(int argc, char **argv) {
        char message[256];
        struct stat st;
        if (argc > 1 && strncmp(argv[1], "enter", 5) == 0) {
                /* No binds: qemu-user lacks open_tree(). "enter-pid" adds --unshare-pid. */
                const char *options[] = { "--tmpfs", "/tmp", "--dir", "/x", "--write", "hi", "/etc/x",
                                          "--chdir", "/x", "--proc", "/proc", "--unshare-pid" };
                size_t count = sizeof options / sizeof *options - (strcmp(argv[1], "enter-pid") == 0 ? 0 : 1);
                int r = mkosi_sandbox_enter(options, count, message, sizeof message);
                if (r != 0) {
                        printf("errno %d %s\n", r, message);
                        return 1;
                }
                printf("entered /x %s /usr %s pid %s\n", stat("/x", &st) == 0 ? "exists" : "missing",
                       stat("/usr", &st) == 0 ? "exists" : "missing", getpid() == 2 ? "2" : "not 2");
                fflush(stdout);
                return 0;
        }
        const char *options[] = { "--frobnicate" };
        int r = mkosi_sandbox_enter(options, 1, message, sizeof message);
        printf("%s %s\n", r == EINVAL ? "EINVAL" : "other", message);
        r = mkosi_sandbox_enter(options, 1, NULL, 0);
        printf("%s\n", r == EALREADY ? "EALREADY" : "other");
        return 0;
}
