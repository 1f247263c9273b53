# SPDX-License-Identifier: LGPL-2.1-or-later
# Part of mkosi-sandbox (static Rust); installed into a pmbootstrap tree as pmb/init/sandbox_binary.py
# by contrib/pmbootstrap/patch-pmbootstrap.
"""Enter pmbootstrap's sandbox through the mkosi-sandbox binary (or its library) instead of in-process.

PmbSandboxBuilder.enter() (pmb/init/sysroot.py) calls enter() here when wanted() says so:

- PMB_SANDBOX_BINARY=/path/to/mkosi-sandbox: pmbootstrap re-runs itself (the same interpreter and
  arguments, sys.orig_argv) as the command of the binary, with the operation list translated
  into options. Unset or empty: nothing changes, the branch's in-process sandbox runs.
- When the library is installed (`import mkosi_sandbox` works: mkosi-sandbox's `make install`,
  or its target/lib/python on PYTHONPATH), mkosi_sandbox.enter(options) applies the same options
  to this very process instead (no second Python start). PMB_SANDBOX_LIBRARY=1 asks for that
  without naming the binary; PMB_SANDBOX_LIBRARY=0 keeps the re-run although the module is
  there. Not importable: as if the library were not asked for.
- PMB_SANDBOX_MAP=layout|auto (unprivileged callers): the uid/gid layout; unset: `layout` when
  /etc/subuid and /etc/subgid grant the caller all of its host ranges, else `auto` when they
  grant it any range, else `layout` (newuidmap then refuses in one line, as the branch fails).
    layout: --map-users/--map-groups 1:100000:9999, 12345:110000:1, 10000:120000:1 with
            --become-root: the branch's hard-coded newuidmap/newgidmap lines (0 -> the caller).
    auto:   --map-auto --become-root: 0 -> the caller, 1.. -> the caller's first range
            (so 12345, the chroots' build user, is range start + 12344, not 110000).
  Root (euid 0 with CAP_SYS_ADMIN) gets no user namespace, as the branch's
  acquire_privileges() returns early for root.

inside() is how a re-run (or the library's caller, after enter()) knows it is already in the
sandbox: PMB_SANDBOX_OUTER_MNTNS holds the mount namespace the re-run was started from, and
inside() is true only while /proc/self/ns/mnt differs from it (a variable leaked into a host
shell does not stop the next run from sandboxing itself).

The operation list, option by option (the binary orders operations by destination, parents
first, while the branch runs the list in its order; which result each keeps):

- BindOperation(os.curdir, os.curdir): chase() resolves "." against each root to the root
  itself, so the branch binds the host's whole / on the new root, 8th in the list, hiding
  everything mounted before it. Here: --bind / /, which the binary mounts first.
- the sysroot's /usr on /usr (the FIXME: hidden in the branch by the bind above): the
  branch's result is kept, the host's /usr, because the re-run starts the host's Python from
  it and the Alpine sysroot has none. The sysroot stays reachable at $WORK/sysroot.
- the cache on /cache and the work directory on /work (hidden in the branch): the branch's
  result, not there. Under the host's / the binary would have to create /cache and /work in the
  host's root directory, which an unprivileged caller cannot (EACCES) and root should not; in
  the branch they were made on the new root's tmpfs, then hidden. Nothing outside the chroots
  uses them: the chroots get the cache at their own /cache (pmb.config.chroot_mount_bind).
- the /tmp tmpfs and the binfmt_misc at /tmp/pmb_binfmt_misc (hidden in the branch): the
  list's result: a private /tmp, the sandbox's own binfmt_misc instance (Linux >= 6.7 with a
  user namespace; as root, without one, it is the host's). Paths the
  re-run needs (its sources, $PWD, $HOME, the work, cache and pmaports directories) that lie
  beneath a replaced tree such as /tmp are bound back at their own path (--bind-try, so that
  the binary's planner does not drop them as implied by the / bind).
- resolv.conf and ~/.ssh (read-only), /var/cache/apk: the same in both (like the branch, the
  host must have /var/cache/apk: it is the mount point).
- WriteOperation(passwd, /tmp/passwd) + the relative BindOperation(/tmp/passwd, /etc/passwd):
  the branch writes the stub into the host's /tmp (its tmpfs is hidden) and binds it; the
  binary's binds come from the host, so the stub is written into the sandbox's /tmp and
  /etc/passwd becomes a symlink to it (--write, --symlink): nothing is written on the host.
- unshare(NEWNS|NEWPID) + fork: --unshare-pid (the binary is PID 1 and waits), plus
  --die-with-parent; $PWD: --chdir.
"""

import logging
import os
import sys

from . import sandbox

BINARY_ENV = "PMB_SANDBOX_BINARY"
LIBRARY_ENV = "PMB_SANDBOX_LIBRARY"
MAP_ENV = "PMB_SANDBOX_MAP"
MARK_ENV = "PMB_SANDBOX_OUTER_MNTNS"

# sandbox.become_user()'s newuidmap/newgidmap lines after "0 <caller> 1": inside, outside, count.
LAYOUT = ((1, 100000, 9999), (12345, 110000, 1), (10000, 120000, 1))


def _mntns() -> str:
    return os.readlink("/proc/self/ns/mnt")


def inside() -> bool:
    outer = os.environ.get(MARK_ENV)
    if not outer:
        return False
    try:
        return _mntns() != outer
    except OSError:
        return False


def _library():
    choice = os.environ.get(LIBRARY_ENV, "")
    if choice == "0" or (choice == "" and not os.environ.get(BINARY_ENV)):
        return None
    try:
        import mkosi_sandbox
    except ImportError:
        return None
    return mkosi_sandbox


def wanted() -> bool:
    return bool(os.environ.get(BINARY_ENV)) or _library() is not None


def _subid_ranges(path: str, name: str, uid: int) -> list[tuple[int, int]]:
    ranges = []
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return ranges
    for line in lines:
        fields = line.strip().split(":")
        if len(fields) != 3 or fields[0] not in (name, str(uid)):
            continue
        try:
            start, count = int(fields[1]), int(fields[2])
        except ValueError:
            continue
        if count > 0:
            ranges.append((start, count))
    return ranges


def _grants(ranges: list[tuple[int, int]]) -> bool:
    return all(
        any(start <= outer and outer + count <= start + n for start, n in ranges)
        for _, outer, count in LAYOUT
    )


def map_options() -> list[str]:
    if os.geteuid() == 0 and sandbox.have_effective_cap(sandbox.CAP_SYS_ADMIN):
        return []
    uid = os.getuid()
    try:
        import pwd

        name = pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        name = str(uid)
    users = _subid_ranges("/etc/subuid", name, uid)
    groups = _subid_ranges("/etc/subgid", name, uid)
    mode = os.environ.get(MAP_ENV, "")
    if mode not in ("", "layout", "auto"):
        raise RuntimeError(f"{MAP_ENV}={mode}: expected 'layout' or 'auto'")
    if not mode:
        mode = "layout" if _grants(users) and _grants(groups) else "auto" if users and groups else "layout"
    if mode == "auto":
        return ["--become-root", "--map-auto"]
    opts = ["--become-root"]
    for option in ("--map-users", "--map-groups"):
        for inner, outer, count in LAYOUT:
            opts += [option, f"{inner}:{outer}:{count}"]
    return opts


def _beneath(path: str, top: str) -> bool:
    return top != "/" and path != top and os.path.commonpath((path, top)) == top


def translate(fsops: list, sysroot: str) -> list[str]:
    """The operation list as mkosi-sandbox options (see the module's docstring)."""
    opts: list[str] = []
    replaced: list[str] = []  # destinations whose host content the sandbox replaces
    for op in fsops:
        if isinstance(op, sandbox.BindOperation):
            src, dst = os.fspath(op.src), os.fspath(op.dst)
            if op.relative:
                opts += ["--symlink", src, dst]
                continue
            if src == os.curdir and dst == os.curdir:
                src = dst = "/"
            if dst == "/usr" and os.path.normpath(src) == os.path.join(sysroot, "usr"):
                continue
            if dst in ("/cache", "/work") and os.path.normpath(src) != dst:
                continue
            name = ("--ro-bind" if op.readonly else "--bind") + ("" if op.required else "-try")
            opts += [name, src, dst]
            if os.path.normpath(src) != os.path.normpath(dst):
                replaced.append(dst)
        elif isinstance(op, sandbox.TmpfsOperation):
            opts += ["--tmpfs", op.dst]
            replaced.append(op.dst)
        elif isinstance(op, sandbox.BinfmtOperation):
            opts += ["--binfmt-misc", op.dst]
            replaced.append(op.dst)
        elif isinstance(op, sandbox.WriteOperation):
            opts += ["--write", op.data, op.dst]
        elif isinstance(op, sandbox.DirOperation):
            opts += ["--dir", op.dst]
        elif isinstance(op, sandbox.SymlinkOperation):
            opts += ["--symlink", op.src, op.dst]
        elif isinstance(op, sandbox.ProcOperation):
            opts += ["--proc", op.dst]
        elif isinstance(op, sandbox.DevOperation):
            opts += ["--dev", op.dst]
        else:
            raise RuntimeError(f"{BINARY_ENV}: no mkosi-sandbox option for {type(op).__name__}")
    return opts + _keep_visible(replaced)


def _needed_paths() -> list[str]:
    import pmb
    from pmb.core.context import get_context

    config = get_context().config
    paths = [os.getcwd(), os.path.expanduser("~"), os.path.dirname(os.path.dirname(pmb.__file__))]
    paths += [os.fspath(config.work), os.fspath(config.cache), *map(os.fspath, config.aports)]
    if sys.argv and sys.argv[0] and os.path.exists(sys.argv[0]):
        paths.append(os.path.dirname(os.path.abspath(sys.argv[0])))
    return paths


def _keep_visible(replaced: list[str]) -> list[str]:
    opts: list[str] = []
    seen: set[str] = set()
    for path in _needed_paths():
        path = os.path.realpath(path)
        if path in seen or not os.path.isdir(path):
            continue
        seen.add(path)
        if any(_beneath(path, top) for top in replaced):
            opts += ["--bind-try", path, path]
    return opts


def options(builder, stub_passwd: str) -> list[str]:
    fsops = [
        *builder.fsops,
        # _setup_sandbox()'s two operations, as it appends them.
        sandbox.WriteOperation(stub_passwd, "/tmp/passwd"),
        sandbox.BindOperation("/tmp/passwd", "/etc/passwd", readonly=True, required=True, relative=True),
    ]
    return [
        *map_options(),
        "--unshare-pid",
        "--die-with-parent",
        *translate(fsops, os.fspath(builder.sysroot)),
        "--chdir",
        os.getcwd(),
    ]


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    for handler in logging.getLogger().handlers:
        handler.flush()


def enter(builder, stub_passwd: str) -> None:
    """Re-run through the binary (does not return), or enter through the library (returns inside)."""
    opts = options(builder, stub_passwd)
    mark = _mntns()
    library = _library()
    _flush()
    if library is not None:
        os.environ[MARK_ENV] = mark
        library.enter(opts)
        return
    binary = os.environ[BINARY_ENV]
    argv = [binary, *opts, "--setenv", MARK_ENV, mark, "--", sys.executable, *sys.orig_argv[1:]]
    try:
        os.execv(binary, argv)
    except OSError as e:
        raise RuntimeError(f"{BINARY_ENV}={binary}: {e.strerror}") from None
