/* make test-lib: the C ABI from C (built for x86_64, and for aarch64 run under qemu-user). */
#include <errno.h>
#include <stdio.h>

#include "mkosi-sandbox.h"

int main(void) {
        const char *options[] = { "--frobnicate" };
        char message[256];
        int r = mkosi_sandbox_enter(options, 1, message, sizeof message);
        printf("%s %s\n", r == EINVAL ? "EINVAL" : "other", message);
        r = mkosi_sandbox_enter(options, 1, NULL, 0);
        printf("%s\n", r == EALREADY ? "EALREADY" : "other");
        return 0;
}
