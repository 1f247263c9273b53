/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libmkosi-sandbox: the mkosi-sandbox binary's stages, applied to the calling process. */
#ifndef MKOSI_SANDBOX_H
#define MKOSI_SANDBOX_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Enters the sandbox that `options` describe in the calling process: `count` strings in the
 * option language of `mkosi-sandbox(1)`, without argv[0] and without a command. Namespaces, id
 * maps (newuidmap/newgidmap for --map-users/--map-groups/--map-auto), mounts, the pivot into the
 * new root, capabilities, the seccomp filter, the working directory, --pack-fds and the
 * environment (--setenv, --unsetenv, LISTEN_FDS/LISTEN_PID, applied with setenv()/unsetenv()).
 *
 * Returns 0, or an errno with the one line the binary would print in `message` (NUL-terminated,
 * cut to `size`; `message` may be NULL). Never exits and never aborts on bad input. After a
 * failure the process may be half inside (namespaces entered, some mounts made): exit then.
 *
 * Once per process: a second call fails with EALREADY. A user namespace (an unprivileged
 * caller, --become-root, id ranges) and --unshare-pid need a single-threaded process (EINVAL
 * otherwise); a multi-threaded root caller without them gets the mount namespace, root,
 * capabilities, filter and working directory in the calling thread only (Linux keeps them per
 * thread), the other threads stay outside.
 *
 * --unshare-pid: the call returns in a new process, PID 2 of the new PID namespace, made with
 * fork(3) (one fork of the caller's memory). The namespace's init (PID 1) runs in the calling
 * process's memory on a stack of its own and only reaps orphans. The calling process never
 * returns: it blocks SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT and
 * SIGCHLD, forwards the first eight to the returning process (signals that a terminal sends to
 * the whole process group are not forwarded again), and when that process exits it kills the
 * init (and with it whatever is left in the namespace) and ends with an _exit()-like
 * exit_group() and that status (128+N when killed by signal N): no atexit handlers, no stdio
 * flush there. The returning process gets the signal mask and SIGCHLD disposition back; when
 * the calling process dies (even by SIGKILL) the init and with it the namespace die too.
 *
 * Contract: the strings stay valid during the call; with --pack-fds the caller uses no
 * descriptor from 3 up afterwards (they are renumbered from 3); no thread is started meanwhile.
 */
int mkosi_sandbox_enter(const char *const *options, size_t count, char *message, size_t size);

/* The library's version (the crate's, as in `mkosi-sandbox --help`'s "Build:" line). */
const char *mkosi_sandbox_version(void);

#ifdef __cplusplus
}
#endif

#endif
