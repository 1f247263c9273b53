#!/usr/bin/python3
"""make test-lib: the library (libmkosi-sandbox.so) and the Python module `mkosi_sandbox` against
the binary.

For each case a Python process forks; the child calls mkosi_sandbox.enter(OPTIONS) and then execs
a probe (what a user would check from inside: ids, maps, capabilities, seccomp, cwd, environment,
mounts, the file tree); the binary runs the same probe with the same OPTIONS. Both outputs, exit
statuses and error lines must be equal. Beside that, the child reports what only an in-process
caller can check: os.environ equals the C environment after enter(), os.getcwd() is the probe's
cwd, and the forking parent's mount table is unchanged afterwards (no mount leaks into the
caller's namespace). Cases run as root and as nobody (setpriv). Then the library's own rules:
errors as OSError with the binary's line and errno, refusals (a command, a second call, threads
with a user namespace or --unshare-pid), --unshare-pid's statuses and signals, subordinate id
ranges as a throw-away user with /etc/subuid and /etc/subgid ranges (--map-users/--map-groups,
--map-auto: newuidmap/newgidmap forked from the caller's process; compared with the binary and
with the maps each must give; ranges not granted as OSError with the binary's line), and the C
ABI from C, built for x86_64 and (under qemu-user) aarch64.

Usage: inprocess.py BINARY LIBDIR   (LIBDIR: `make lib`'s target/lib; run as root)
"""

import atexit
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

BIN, LIBDIR = (os.path.abspath(a) for a in sys.argv[1:3])
HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else shutil.which("python3")

if os.getuid() != 0:
    print("SKIP test-lib: runs as root (it also switches to uid 65534)")
    sys.exit(0)

S = tempfile.mkdtemp(prefix="mkosi-inprocess.", dir="/tmp")
os.chmod(S, 0o755)


def cleanup() -> None:
    subprocess.run(["umount", "-R", S], stderr=subprocess.DEVNULL)
    shutil.rmtree(S, ignore_errors=True)


atexit.register(cleanup)
# atexit's clean-ups on SIGTERM and SIGHUP too (a timeout, a closed terminal).
for sig in (signal.SIGTERM, signal.SIGHUP):
    signal.signal(sig, lambda n, _: sys.exit(128 + n))

# Copies that uid 65534 can reach wherever the checkout is.
for d in ("bin", "py/mkosi_sandbox", "data/sub", "lower1", "lower2", "upper", "work", "etc", "tools", "vt/x", "vt/y"):
    os.makedirs(f"{S}/{d}", exist_ok=True)
shutil.copy(BIN, f"{S}/bin/mkosi-sandbox")
shutil.copy(f"{LIBDIR}/python/mkosi_sandbox/__init__.py", f"{S}/py/mkosi_sandbox/")
shutil.copy(f"{LIBDIR}/python/mkosi_sandbox/libmkosi-sandbox.so", f"{S}/py/mkosi_sandbox/")
for path, text in {
    "etc/os-release": "ID=host\n",
    "data/file": "data\n",
    "lower1/a": "l1\n",
    "lower2/a": "l2\n",
    "lower2/b": "l2b\n",
}.items():
    with open(f"{S}/{path}", "w") as f:
        f.write(text)
subprocess.run(["chmod", "-R", "a+rX", S], check=True)

# The caller: forks, the child enters and execs the command; the parent checks its own mounts.
CHILD = r'''
import ctypes, os, sys, threading, time
sys.path.insert(0, sys.argv[1] + "/py")
import mkosi_sandbox
mode = sys.argv[3]
args = sys.argv[4:]
cut = args.index("--") if "--" in args else len(args)
options, command = args[:cut], args[cut + 1:]
def say(*words):
    # On stderr (what the harness reads apart): the only channel that survives the new root and
    # --pack-fds.
    os.write(2, ("#LIB " + " ".join(str(w) for w in words) + "\n").encode())
def c_environ():
    cenv = ctypes.POINTER(ctypes.c_char_p).in_dll(ctypes.CDLL(None), "environ")
    out, i = {}, 0
    while cenv[i] is not None:
        k, eq, v = cenv[i].partition(b"=")
        if eq:  # an entry without "=" is no variable, in os.environ either
            out.setdefault(k, v)
        i += 1
    return out
def watched():
    # Where a leak would show: the workspace tmpfs on /tmp, the root (pivot_root), the scratch
    # directory. Not the whole table: other work on the machine mounts elsewhere meanwhile.
    out = []
    for line in open("/proc/self/mountinfo"):
        point = line.split()[4]
        if point in ("/", "/tmp") or point.startswith(sys.argv[1]):
            out.append(line)
    return out
before = watched()
if mode == "signal":
    r, w = os.pipe()
pid = os.fork()
if pid == 0:
    if mode == "thread":
        threading.Thread(target=time.sleep, args=(5,), daemon=True).start()
    try:
        mkosi_sandbox.enter(options)
    except OSError as e:
        say("errno", e.errno)
        sys.stderr.write(e.strerror + "\n")
        os._exit(1)
    say("environ-sync", "ok" if dict(os.environb) == c_environ() else "differs")
    say("cwd", os.getcwd())
    say("pid", os.getpid())
    if mode == "twice":
        try:
            mkosi_sandbox.enter(options)
            say("second", "accepted")
        except OSError as e:
            say("second", e.errno, e.strerror)
    if mode == "signal":
        os.write(w, b"r")
        time.sleep(30)
        os._exit(0)
    try:
        os.execvp(command[0], command)
    except OSError as e:
        os._exit(127)
if mode == "signal":
    os.close(w)
    os.read(r, 1)
    os.kill(pid, 15)
_, status = os.waitpid(pid, 0)
code = os.waitstatus_to_exitcode(status)
say("leak", "none" if watched() == before else "MOUNTS CHANGED")
os._exit(code if code >= 0 else 128 - code)
'''
with open(f"{S}/child.py", "w") as f:
    f.write(CHILD)
os.chmod(f"{S}/child.py", 0o644)

# What a user would check from inside (tests/differential-lib.sh's probe, plus the filter).
INSPECT = r'''
echo "## ids"; id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map 2>&1 | tr -s " "
echo "## caps"; grep -E "^Cap(Inh|Prm|Eff|Amb)" /proc/self/status
echo "## seccomp"; grep -E "^(NoNewPrivs|Seccomp)" /proc/self/status
echo "## cwd"; pwd
echo "## env"; env | grep -v -E "^(_|SHLVL|OLDPWD|PWD)=" | sed "s/^LISTEN_PID=$$\$/LISTEN_PID=<the command>/" | sort
echo "## mounts"; awk "{ split(\$0, side, \" - \"); n = split(side[1], f, \" \"); tags = \"\"
	for (i = 7; i <= n; i++) tags = tags \" \" f[i]; gsub(/[0-9]+/, \"\", tags); split(side[2], fs, \" \")
	sub(/,.*/, \"\", f[6]); print f[5], f[6] tags, fs[1], f[4] }" /proc/self/mountinfo
echo "## tree"; find / -mindepth 1 \( -fstype proc -o -fstype sysfs -o -fstype devpts -o -path /usr \) -prune -o -printf "%p %y %m %u:%g %l\n" 2>/dev/null | sort -S 64M
echo "## files"; for f in /etc/x /etc/deep/y /ovl/a /ovl/b /data/file /etc/os-release; do [ -f $f ] && echo "$f: $(cat $f)"; done
echo "## fds"; ls /proc/self/fd | sort -n | tr "\n" " "; echo
if [ -w /tmp ] && [ "$(id -u)" = 0 ]; then
	echo "## chown"; : > /tmp/.probe; chown 12:12 /tmp/.probe; echo "chown $? $(stat -c %u:%g /tmp/.probe)"; rm -f /tmp/.probe
	sync; echo "sync $?"
fi
'''

ENV = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": "/root", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TMPDIR": "/tmp", "TERM": "dumb"}
BASE = ["--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin",
        "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64", "--proc", "/proc", "--dev", "/dev"]
AS = {"root": [], "nobody": ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]}

passed = failed = 0
count = 0


def fail(name: str, why: str) -> None:
    global failed
    failed += 1
    print(f"FAIL {name}: {why}")


def run(argv: list[str], user: str, env: dict, fds: tuple = ()) -> subprocess.CompletedProcess:
    return subprocess.run(AS[user] + argv, cwd=S, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          pass_fds=fds, timeout=60)


def lib_run(user: str, options: list[str], command: list[str], mode: str = "exec", env: dict | None = None,
            fds: tuple = ()) -> tuple[subprocess.CompletedProcess, dict]:
    global count
    count += 1
    r = run([PY, "-I", "-S", "-B", f"{S}/child.py", S, "-", mode, *options, "--", *command], user, env or ENV, fds)
    said: dict[str, str] = {}
    stderr = []
    for line in r.stderr.splitlines(keepends=True):
        if line.startswith(b"#LIB "):
            key, _, rest = line[5:].decode(errors="replace").rstrip("\n").partition(" ")
            said[key] = rest
        else:
            stderr.append(line)
    r.stderr = b"".join(stderr)
    return r, said


def compare(name: str, user: str, options: list[str], command: list[str] | None = None, env: dict | None = None,
            fds: tuple = (), errno: int | None = None) -> subprocess.CompletedProcess:
    """The binary and enter() + exec with the same options: same output, status, error line. Returns
    the library's run (its stderr without the child's #LIB lines)."""
    global passed
    options = [o.replace("@S", S) for o in options]
    command = command or ["sh", "-c", INSPECT]
    env = env or ENV
    b = run([f"{S}/bin/mkosi-sandbox", *options, "--", *command], user, env, fds)
    l, said = lib_run(user, options, command, env=env, fds=fds)
    problems = []
    if (b.returncode, b.stdout, b.stderr) != (l.returncode, l.stdout, l.stderr):
        problems.append(f"binary exit {b.returncode}, library {l.returncode}")
        bl, ll = b.stdout.decode(errors="replace").splitlines(), l.stdout.decode(errors="replace").splitlines()
        diff = [f"- {x}" for x in bl if x not in ll] + [f"+ {x}" for x in ll if x not in bl]
        problems += diff[:20]
        if b.stderr != l.stderr:
            problems += [f"binary stderr: {b.stderr!r}", f"library stderr: {l.stderr!r}"]
    if said.get("leak") != "none":
        problems.append(f"the caller's mounts: {said.get('leak')}")
    if b.returncode == 0 or "environ-sync" in said:
        if said.get("environ-sync") != "ok":
            problems.append(f"os.environ after enter(): {said.get('environ-sync')}")
        out = b.stdout.decode(errors="replace").splitlines()
        if "## cwd" in out and said.get("cwd") != out[out.index("## cwd") + 1]:
            problems.append(f"os.getcwd() {said.get('cwd')!r}, the probe's {out[out.index('## cwd') + 1]!r}")
    if errno is not None and said.get("errno") != str(errno):
        problems.append(f"errno {said.get('errno')}, expected {errno}")
    if problems:
        fail(f"{name} ({user})", "\n  ".join(problems))
    else:
        passed += 1
    return l


def check(name: str, ok: bool, detail: str = "") -> None:
    global passed
    if ok:
        passed += 1
    else:
        fail(name, detail)


# The differential cases (tests/differential.sh), as root and as nobody where they can run so.
os.makedirs(f"{S}/fx", exist_ok=True)
both = ["root", "nobody"]
cases = [
    ("tools-tree", both, BASE + ["--unsetenv", "TMPDIR", "--dir", "/var/tmp", "--dir", "/var/log", "--unshare-ipc",
                                 "--setenv", "PATH", "/usr/bin:/usr/sbin", "--bind", "@S/data", "/var/tmp", "--dir", "/etc",
                                 "--dir", "/var", "--dir", "/tmp", "--dir", "/run"]),
    ("tools-tree-tmpfs", both, BASE + ["--dir", "/var/tmp", "--tmpfs", "/tmp", "--setenv", "PATH", "/usr/bin:/usr/sbin"]),
    ("become-root", both, BASE + ["--become-root", "--tmpfs", "/run", "--tmpfs", "/tmp", "--dir", "/run/user/0",
                                  "--write", "mkosi", "/run/host/container-manager"]),
    ("operations", both, BASE + ["--write", "hello", "/etc/x", "--write", "deep", "/etc/deep/y", "--dir", "/a/b/c",
                                 "--dir", "/a/tmp", "--tmpfs", "/var/tmp", "--bind-try", "/does/not/exist", "/nope",
                                 "--ro-bind", "@S/etc", "/etc", "--symlink", "../usr/lib/os-release", "/etc/os-release",
                                 "--bind", "@S/data/file", "/new/file", "--symlink", "target", "/dangling"]),
    ("dedup", both, BASE + BASE + ["--ro-bind", "/usr/lib", "/usr/lib", "--bind", "/usr/share", "/usr/share",
                                   "--ro-bind", "@S/data", "/d", "--ro-bind", "@S/data/sub", "/d/sub",
                                   "--bind", "@S/data/sub", "/d/sub"]),
    ("overlay-tmpfs", ["root"], BASE + ["--overlay-lowerdir", "@S/lower1", "--overlay-lowerdir", "@S/lower2",
                                        "--overlay-upperdir", "tmpfs", "--overlay", "/ovl"]),
    ("overlay-dirs", ["root"], BASE + ["--overlay-lowerdir", "@S/lower1", "--overlay-upperdir", "@S/upper",
                                       "--overlay-workdir", "@S/work", "--overlay", "/ovl"]),
    ("chdir", both, BASE + ["--dir", "/w/x", "--chdir", "/w/x"]),
    ("same-dir", both, BASE + ["--bind", "@S", "@S", "--same-dir"]),
    ("unshare", both, BASE + ["--unshare-net", "--unshare-ipc"]),
    ("env", both, BASE + ["--setenv", "A", "1", "--setenv", "B", "2", "--setenv", "A", "3", "--unsetenv", "B",
                          "--unsetenv", "HOME"]),
    ("dot-sorts-first", ["root"], BASE + ["--dir", "/x/./y/z", "--tmpfs", "/x/y"]),
    ("chdir-empty", ["root"], BASE + ["--chdir", ""]),
    ("dotdot-nested", ["root"], BASE + ["--bind", "@S/vt", "/home", "--bind", "@S/vt/x/../y", "/home/x/../y"]),
    ("symlink-over-absolute-link", ["root"], BASE + ["--symlink", "/usr/share", "/var", "--symlink", "../b", "/var"]),
    # The seccomp filter: chown() a no-op, sync() a no-op; as root in a single-user namespace too.
    ("suppress-chown", both, BASE + ["--tmpfs", "/tmp", "--suppress-chown", "--become-root"]),
    ("suppress-chown-sync", ["root"], BASE + ["--tmpfs", "/tmp", "--suppress-chown", "--suppress-sync"]),
    ("suppress-sync", both, BASE + ["--tmpfs", "/tmp", "--suppress-sync", "--become-root"]),
    # Id ranges: the helper process writes the maps (root writes /proc/PID/*_map itself).
    ("map-users", ["root"], BASE + ["--map-users", "1:100000:10", "--map-groups", "1:100000:10", "--become-root",
                                    "--tmpfs", "/tmp"]),
    ("map-users-unshare-pid", ["root"], BASE + ["--map-users", "1:100000:10", "--map-groups", "1:100000:10",
                                                "--unshare-pid"]),
    # The PID namespace: the probe sees a fresh /proc.
    ("unshare-pid", both, BASE + ["--tmpfs", "/tmp", "--unshare-pid", "--become-root"]),
    ("unshare-pid-die-with-parent", ["root"], BASE + ["--unshare-pid", "--die-with-parent", "--setenv", "X", "y"]),
]
for name, users, options in cases:
    for user in users:
        compare(name, user, options)

# LISTEN_FDS from the caller, and --pack-fds with descriptors passed in.
compare("listen-fds", "root", BASE + ["--setenv", "LISTEN_PID", "1"], env={**ENV, "LISTEN_FDS": "1"})
r1, w1 = os.pipe()
r2, w2 = os.pipe()
for user in both:
    compare("pack-fds", user, BASE + ["--pack-fds"], fds=(r1, w2))
    compare("pack-fds-unshare-pid", user, BASE + ["--pack-fds", "--unshare-pid", "--become-root"], fds=(r1, w2))
for fd in (r1, w1, r2, w2):
    os.close(fd)

# Exit statuses through the library's --unshare-pid fork, and PATH search with the new PATH.
for user in both:
    compare("status", user, BASE + ["--unshare-pid", "--become-root"], ["sh", "-c", "exit 7"])
    compare("status-plain", user, BASE, ["sh", "-c", "exit 9"])
    compare("killed", user, BASE + ["--unshare-pid"], ["sh", "-c", "kill -TERM $$"])
with open(f"{S}/tools/mytool", "w") as f:
    f.write('#!/bin/sh\necho tool-ran "$@"\n')
os.chmod(f"{S}/tools/mytool", 0o755)
compare("path-search", "root", BASE + ["--bind", "@S/tools", "/tools", "--setenv", "PATH", "/tools:/usr/bin"], ["mytool", "x"])

# An environment CPython cannot make (a repeated name, an entry without "="), put in place as the
# C environment before the entry: the command gets what the binary would give it, entry for entry
# (the library once turned A=1 A=2 with --setenv A 3 into A=2 A=2, and a bare TERM into TERM=).
ODD_ENV = r'''
import ctypes, os, sys
sys.path.insert(0, sys.argv[1] + "/py")
import mkosi_sandbox
libc = ctypes.CDLL(None)
odd = [b"A=1", b"A=2", b"TERM", b"PATH=/usr/bin:/bin", b"B=x"]
envp = (ctypes.c_char_p * (len(odd) + 1))(*odd, None)
cat = [b"/usr/bin/cat", b"/proc/self/environ"]
options = sys.argv[3:]
if sys.argv[2] == "binary":
    argv = [sys.argv[1].encode() + b"/bin/mkosi-sandbox", *map(os.fsencode, options), b"--", *cat]
    libc.execve(argv[0], (ctypes.c_char_p * (len(argv) + 1))(*argv, None), envp)
    os._exit(99)
ctypes.c_void_p.in_dll(libc, "environ").value = ctypes.cast(envp, ctypes.c_void_p).value
mkosi_sandbox.enter(options)
libc.execv(cat[0], (ctypes.c_char_p * 3)(*cat, None))
os._exit(99)
'''
with open(f"{S}/odd_env.py", "w") as f:
    f.write(ODD_ENV)
os.chmod(f"{S}/odd_env.py", 0o644)
for user in both:
    options = BASE + ["--setenv", "A", "3", "--unsetenv", "B"] + (["--become-root"] if user == "nobody" else [])
    seen = {way: run([PY, "-I", f"{S}/odd_env.py", S, way, *options], user, ENV) for way in ("binary", "library")}
    want = b"A=3\0A=2\0TERM\0PATH=/usr/bin:/bin\0"
    check(f"odd environment ({user})", all((r.returncode, r.stdout) == (0, want) for r in seen.values()),
          "; ".join(f"{way}: exit {r.returncode} {r.stdout!r} {r.stderr[-200:]!r}" for way, r in seen.items()))

# Errors: OSError(errno, the binary's line).
ENOENT, EEXIST, EINVAL, ENAMETOOLONG, ELOOP = 2, 17, 22, 36, 40
os.makedirs(f"{S}/edge/root/usr", exist_ok=True)
for a, b in (("loop1", "loop2"), ("loop2", "loop1")):
    os.symlink(b, f"{S}/edge/root/{a}")
for d in ("bin", "lib", "lib64", "sbin"):
    os.symlink(f"usr/{d}", f"{S}/edge/root/{d}")
EDGE = ["--bind", "@S/edge/root", "/", "--ro-bind", "/usr", "/usr", "--proc", "/proc", "--dev", "/dev"]
for user in both:
    compare("missing-source", user, BASE + ["--ro-bind", "/nope", "/x"], ["true"], errno=ENOENT)
    compare("unknown-option", user, ["--frobnicate"], ["true"], errno=EINVAL)
    compare("relative-dst", user, ["--dir", "rel"], ["true"], errno=EINVAL)
    compare("chdir-missing", user, BASE + ["--chdir", "/nonexistent"], ["true"], errno=ENOENT)
    # Raised in PID 2 of the namespace; the caller's process exits with its status.
    compare("chdir-missing-unshare-pid", user, BASE + ["--unshare-pid", "--become-root", "--chdir", "/nonexistent"],
            ["true"], errno=ENOENT)
compare("bind-too-long", "root", BASE + ["--bind", "/" + "x" * 5000, "/long"], ["true"], errno=ENAMETOOLONG)
for op, errno in ((["--dir", "/loop1"], EEXIST), (["--tmpfs", "/loop1"], EEXIST), (["--write", "x", "/loop1"], ELOOP),
                  (["--bind", "@S/data", "/loop1"], EEXIST)):
    compare(f"on-loop {op[0]}", "root", EDGE + op, ["true"], errno=errno)


# The library's own rules.
def refusal(name: str, user: str, options: list[str], mode: str, errno: int, words: str) -> None:
    r, said = lib_run(user, options, ["true"], mode)
    key = "second" if mode == "twice" else "errno"
    text = said.get(key, "") + " " + r.stderr.decode(errors="replace")
    check(f"{name} ({user})", said.get(key, "").split(" ")[0] == str(errno) and words in text and said.get("leak") == "none",
          f"said {said}, stderr {r.stderr!r}")


EALREADY = 114
for user in both:
    refusal("a second call", user, BASE, "twice", EALREADY, "already called in this process")
    # Root needs a user namespace for id ranges (nobody for --become-root already).
    userns = ["--map-users", "1:100000:10", "--map-groups", "1:100000:10"] if user == "root" else ["--become-root"]
    refusal("threads and a user namespace", user, BASE + userns, "thread", EINVAL,
            "user namespace: the calling process has more than one thread")
    refusal("a command", user, BASE + ["echo", "hi"], "exec", EINVAL, "mkosi-sandbox: echo: not an option")
refusal("threads and --unshare-pid", "root", BASE + ["--unshare-pid"], "thread", EINVAL,
        "--unshare-pid: the calling process has more than one thread")
refusal("--help", "root", ["--help"], "exec", EINVAL, "mkosi-sandbox: --help: not an option of the in-process entry")
# Root without a user namespace may have threads: the calling thread enters.
r, said = lib_run("root", BASE, ["sh", "-c", "test -d /proc/self && ! test -e /etc/passwd"], "thread")
check("threads without a user namespace (root)", r.returncode == 0 and said.get("leak") == "none", f"{r} {said}")

# --unshare-pid: the caller's process forwards SIGTERM; the process in the namespace is PID 2.
for user in both:
    r, said = lib_run(user, BASE + ["--unshare-pid", "--become-root"], [], "signal")
    check(f"SIGTERM through --unshare-pid ({user})", r.returncode == 143 and said.get("pid") == "2",
          f"exit {r.returncode}, said {said}, stderr {r.stderr!r}")

# Subordinate id ranges as the user who has them: --map-users/--map-groups and --map-auto, whose
# maps newuidmap and newgidmap write (the library forks that helper from the caller's process).
# A throw-away login with ranges in /etc/subuid and /etc/subgid, removed at exit (failures and
# SIGTERM included); the account files are then restored to what they were (see SubUser.remove).
SUB_PREFIX = "mksbxlib"
ACCOUNTS = [f"/etc/{n}{s}" for n in ("passwd", "group", "shadow", "gshadow", "subuid", "subgid") for s in ("", "-")]


def shadow_tool(*argv: str) -> subprocess.CompletedProcess:
    """useradd/usermod/userdel, retried while another process holds the account files' lock."""
    for _ in range(100):
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        if r.returncode == 0 or not any(w in r.stderr for w in ("lock", "try again")):
            return r
        time.sleep(0.1)
    return r


def read_bytes(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def first_range(path: str, name: str) -> tuple[int, int] | None:
    for line in (read_bytes(path) or b"").decode().splitlines():
        f = line.split(":")
        if len(f) == 3 and f[0] == name:
            return int(f[1]), int(f[2])
    return None


class SubUser:
    def __init__(self) -> None:
        # Users an earlier, killed run left behind (the pid in their name is gone).
        for line in (read_bytes("/etc/passwd") or b"").decode().splitlines():
            name = line.split(":")[0]
            if name.startswith(SUB_PREFIX) and not os.path.exists(f"/proc/{name[len(SUB_PREFIX):]}"):
                shadow_tool("userdel", name)
        self.name = f"{SUB_PREFIX}{os.getpid()}"
        self.before = {p: read_bytes(p) for p in ACCOUNTS}
        self.made = False
        r = shadow_tool("useradd", "-M", "-d", "/nonexistent", "-s", "/usr/sbin/nologin", self.name)
        if r.returncode != 0:
            raise RuntimeError(f"useradd: {r.stderr.strip()}")
        self.made = True
        self.uid, self.gid = (int(subprocess.check_output(["id", flag, self.name])) for flag in ("-u", "-g"))
        # useradd allocates ranges where login.defs says so (Debian's); else we add them.
        if first_range("/etc/subuid", self.name) is None or first_range("/etc/subgid", self.name) is None:
            start = 1_000_000 + (os.getpid() % 1000) * 70_000
            span = f"{start}-{start + 65535}"
            r = shadow_tool("usermod", "--add-subuids", span, "--add-subgids", span, self.name)
            if r.returncode != 0:
                raise RuntimeError(f"usermod: {r.stderr.strip()}")
        self.subuid = first_range("/etc/subuid", self.name)
        self.subgid = first_range("/etc/subgid", self.name)

    def remove(self) -> None:
        """userdel (after its processes, by pid), then the account files as they were: byte for byte
        when nothing else changed them meanwhile (another suite on this machine may add users at
        the same time: then only our lines go). Under lckpwdf(), the lock useradd/userdel take."""
        if not self.made:
            return
        self.made = False
        for pid in subprocess.run(["pgrep", "-u", str(self.uid)], capture_output=True, text=True).stdout.split():
            try:
                os.kill(int(pid), 9)
            except ProcessLookupError:
                pass
        r = shadow_tool("userdel", self.name)
        if r.returncode != 0:
            print(f"test-lib: userdel {self.name}: {r.stderr.strip()}")
        libc = ctypes.CDLL(None, use_errno=True)
        locked = libc.lckpwdf() == 0
        try:
            primary = [p for p in ACCOUNTS if not p.endswith("-")]
            untouched = all(read_bytes(p) == self.before[p] for p in primary)
            for path in ACCOUNTS:
                now, was = read_bytes(path), self.before[path]
                if now is None or now == was:
                    continue
                if untouched and was is not None:
                    new = was
                else:
                    new = b"".join(l for l in now.splitlines(keepends=True) if l.split(b":")[0] != self.name.encode())
                if new != now:
                    st = os.stat(path)
                    tmp = f"{path}.{SUB_PREFIX}"
                    with open(tmp, "wb") as f:
                        f.write(new)
                    os.chown(tmp, st.st_uid, st.st_gid)
                    os.chmod(tmp, st.st_mode & 0o7777)
                    os.rename(tmp, path)
            left = [p for p in ACCOUNTS if self.name.encode() in (read_bytes(p) or b"")]
            if left:
                print(f"test-lib: {self.name} still named in {' '.join(left)}")
            elif not untouched:
                print(f"test-lib: the account files changed meanwhile (another suite): only {self.name}'s lines removed")
        finally:
            if locked:
                libc.ulckpwdf()


def sub_cases(u: SubUser) -> None:
    su, sn = u.subuid
    sg, gn = u.subgid
    AS["sub"] = ["setpriv", f"--reuid={u.uid}", f"--regid={u.gid}", "--clear-groups", "--"]
    # The whole probe, then the maps alone (what each case must give, not only the binary's).
    maps = INSPECT + 'echo "## maps"; cat /proc/self/uid_map; echo --; cat /proc/self/gid_map'
    uid, gid = u.uid, u.gid

    def auto(inner_caller: int, own: int, start: int, count: int) -> set:
        # util-linux 2.38's layout: COUNT ids inside in all, the caller's among them. With
        # --become-root (--map-root-user) 0 -> the caller, 1.. -> the range; without
        # (--map-current-user) the caller keeps its id and the range fills 0.. around it (useradd's
        # ids are below COUNT).
        if inner_caller == 0:
            return {(0, own, 1), (1, start, count - 1)}
        return {(0, start, own), (own, own, 1), (own + 1, start + own, count - own - 1)}

    cases = [
        ("map-users --become-root", ["--become-root", "--map-users", f"1:{su}:10", "--map-groups", f"1:{sg}:10",
                                     "--tmpfs", "/tmp"],
         "0", {(0, uid, 1), (1, su, 10)}, {(0, gid, 1), (1, sg, 10)}),
        ("map-users, own id kept", ["--map-users", f"0:{su + 100}:5", "--map-users", f"10:{su + 200}:1",
                                    "--map-groups", f"0:{sg + 100}:5"],
         str(uid), {(uid, uid, 1), (0, su + 100, 5), (10, su + 200, 1)}, {(gid, gid, 1), (0, sg + 100, 5)}),
        ("map-users --suppress-chown", ["--become-root", "--map-users", f"1:{su}:100", "--map-groups", f"1:{sg}:100",
                                        "--tmpfs", "/tmp", "--suppress-chown"],
         "0", {(0, uid, 1), (1, su, 100)}, {(0, gid, 1), (1, sg, 100)}),
        ("map-auto --become-root", ["--map-auto", "--become-root", "--tmpfs", "/tmp"],
         "0", auto(0, uid, su, sn), auto(0, gid, sg, gn)),
        ("map-auto", ["--map-auto"], str(uid), auto(uid, uid, su, sn), auto(gid, gid, sg, gn)),
        ("map-auto --unshare-pid", ["--map-auto", "--become-root", "--unshare-pid", "--tmpfs", "/tmp"],
         "0", auto(0, uid, su, sn), auto(0, gid, sg, gn)),
    ]
    for name, options, want_uid, want_umap, want_gmap in cases:
        out = compare(name, "sub", BASE + options, ["sh", "-c", maps]).stdout.decode(errors="replace")
        lines = out.splitlines()
        ids = lines[lines.index("## ids") + 1:lines.index("## ids") + 2] if "## ids" in lines else []
        tail = "\n".join(lines[lines.index("## maps") + 1:]) if "## maps" in lines else ""
        umap, _, gmap = tail.partition("--")
        triples = lambda text: {tuple(int(n) for n in l.split()) for l in text.splitlines() if l.strip()}
        caps = [l for l in lines if l.startswith("CapEff:")]
        # Every capability in its user namespace: root's, or the caller's kept as ambient ones.
        want_caps = "CapEff:\t000001ffffffffff"
        check(f"{name} (sub): the maps, id and capabilities it must give", ids == [want_uid] and triples(umap) == want_umap
              and triples(gmap) == want_gmap and caps == [want_caps],
              f"id -u {ids}, uid_map {sorted(triples(umap))} (want {sorted(want_umap)}), "
              f"gid_map {sorted(triples(gmap))} (want {sorted(want_gmap)}), {caps}")
        if "--suppress-chown" in options:
            check(f"{name} (sub): a chown to a mapped id happens", "chown 0 12:12" in lines, out[-300:])

    # Ranges not granted: newuidmap or newgidmap refuses; OSError(EPERM) with the binary's one line.
    EPERM = 1
    for name, options, tool in (
        ("a uid range past the grant", ["--become-root", "--map-users", f"1:{su + sn}:10", "--map-groups", f"1:{sg}:10"],
         "newuidmap"),
        ("a gid range below the grant", ["--become-root", "--map-users", f"1:{su}:10", "--map-groups", f"1:{sg - 10}:20"],
         "newgidmap"),
    ):
        r = compare(name, "sub", BASE + options, ["true"], errno=EPERM)
        line = r.stderr.decode(errors="replace")
        check(f"{name} (sub): one line naming {tool}", r.returncode == 1 and line.count("\n") == 1 and tool in line,
              f"exit {r.returncode}, stderr {line!r}")
    # --map-auto for a caller without a range (nobody): refused before anything, EINVAL.
    if first_range("/etc/subuid", "nobody") is None and first_range("/etc/subuid", "65534") is None:
        r = compare("map-auto without a range", "nobody", BASE + ["--map-auto"], ["true"], errno=EINVAL)
        check("map-auto without a range (nobody): the line", r.stderr == b"mkosi-sandbox: --map-auto /etc/subuid: no range "
              b"for the caller\n", f"{r.stderr!r}")


try:
    sub_user = SubUser()
except (RuntimeError, OSError, subprocess.SubprocessError, ValueError) as e:
    sub_user = None
    fail("a user with subordinate ranges", str(e))
if sub_user is not None:
    atexit.register(sub_user.remove)
    sub_cases(sub_user)

# The C ABI from C: x86_64 here, aarch64 under qemu-user (an error and a second call: loads and runs).
SMOKE = f"{HERE}/inprocess-smoke.c"
expect = {(): b"EINVAL mkosi-sandbox: --frobnicate: unrecognized option\nEALREADY\n",
          ("enter",): b"entered /x exists /usr missing pid not 2\n",
          ("enter-pid",): b"entered /x exists /usr missing pid 2\n"}


def smoke(name: str, cc: str, libdir: str, runner: list[str], differs: dict | None = None) -> None:
    built = subprocess.run([cc, "-Wall", "-Werror", "-I", f"{LIBDIR}/include", "-o", f"{S}/{name}", SMOKE,
                            f"-L{libdir}", "-lmkosi-sandbox"], capture_output=True)
    for args, want in {**expect, **(differs or {})}.items():
        r = subprocess.run([*runner, f"{S}/{name}", *args], env={"LD_LIBRARY_PATH": libdir}, capture_output=True,
                           cwd="/", timeout=60) if built.returncode == 0 else built
        check(f"C ABI: {name} {' '.join(args)}", r.returncode == int(want.startswith(b"errno")) and r.stdout == want,
              f"{r}")


smoke("x86_64", "cc", LIBDIR, [])
arm = f"{LIBDIR}/aarch64"
qemu = shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")
if os.path.exists(f"{arm}/libmkosi-sandbox.so") and shutil.which("aarch64-linux-gnu-gcc") and qemu:
    # qemu-user runs threads of its own in the process: --unshare-pid is refused there, in one line.
    threads = (b"errno 22 mkosi-sandbox: --unshare-pid: the calling process has more than one thread; its fork "
               b"into the PID namespace needs a single-threaded one\n")
    smoke("aarch64 (qemu-user)", "aarch64-linux-gnu-gcc", arm, [qemu, "-L", "/usr/aarch64-linux-gnu"],
          {("enter-pid",): threads})
else:
    print("SKIP test-lib aarch64: no aarch64 library, cross compiler or qemu-user")

print(f"test-lib: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
