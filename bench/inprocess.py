#!/usr/bin/python3
"""make bench-lib: what one sandbox start costs a Python caller of mkosi's size, per path.

The driver is a Python process that has imported mkosi 27.1 (Debian's package, fetched by
tests/fetch-mkosi.sh: ~200 modules, ~38 MiB resident, as mkosi's own process), plus the
`mkosi_sandbox` module. Contestants, interleaved round by round, each timed from the call to the
moment the caller has the exit status:

mkosi's path (a command in a sandbox; the command is bench/payload.c, a static exit(0)):
  - preexec_fn + Python enter(): subprocess.Popen with a preexec_fn that calls mkosi 27.1's
    mkosi.sandbox.enter() and execs (what stock 27.1's spawn() does);
  - preexec_fn + the library: the same preexec_fn calling mkosi_sandbox.enter();
  - posix_spawn of the binary: os.posix_spawn(mkosi-sandbox OPTIONS -- /payload);
  - subprocess.Popen of the binary (what patch-mkosi's copy does; Python picks vfork).
In-process entry as pmbootstrap makes it (the process goes on in Python inside the sandbox, here
it only exits): unshare(NEWNS|NEWPID), fork, mounts:
  - stock Python: the seed (pmbootstrap's pmb/init/sandbox.py, from ../shared/fixtures) as
    pmbootstrap's _setup_sandbox() calls it, in a forked child;
  - the library: mkosi_sandbox.enter(OPTIONS + --unshare-pid) in a forked child;
  - re-run through the binary: mkosi-sandbox OPTIONS --unshare-pid -- python3 -c 'import the
    same modules' (the process starts again inside the sandbox, as pmbootstrap re-executing
    itself must).

As root, then as nobody (--become-root; the seed's unprivileged entry needs /etc/subuid ranges
for its fixed map and is left out). Writes bench/INPROCESS.md. Usage: inprocess.py BINARY LIBDIR
[ROUNDS]
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
PY = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else shutil.which("python3")
# ../shared beside the checkout (a worktree's is one level further up).
FIXTURE = next((p for p in (os.path.join(TOP, up, "shared", "fixtures", "pmbootstrap-fab411c5.tar.gz")
                            for up in ("..", "../..")) if os.path.exists(p)), "")
FIXTURE_SHA = "2077d533291dc13c61f3bc5c763f3ba3747c7c1e6d0ed00d60b4d3b6e801e71d"
MODULES = "mkosi, mkosi.run, mkosi.sandbox, mkosi.config, mkosi.qemu, mkosi.installer"

# The driver: runs in a fresh Python (root, or nobody through setpriv), prints one TSV line per
# contestant: name, then every sample in µs.
DRIVER = r'''
import functools, os, subprocess, sys, time
W, BIN, ROUNDS, UNPRIV = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
sys.path[:0] = [W + "/mkosi", W + "/lib"]
import mkosi, mkosi.run, mkosi.sandbox, mkosi.config, mkosi.qemu, mkosi.installer
import mkosi_sandbox
seed = None
if os.path.exists(W + "/seed/sandbox.py") and not UNPRIV:
    sys.path.insert(0, W + "/seed")
    import sandbox as seed
OPTS = ["--proc", "/proc", "--unsetenv", "TMPDIR", "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin",
        "--symlink", "usr/sbin", "/sbin", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
        "--dir", "/var/tmp", "--dir", "/var/log", "--dev", "/dev", "--setenv", "PATH", "/usr/bin:/usr/sbin",
        "--dir", "/etc", "--dir", "/var", "--dir", "/tmp", "--dir", "/run", "--ro-bind", W + "/payload", "/payload"]
if UNPRIV:
    OPTS.append("--become-root")
# mkosi 27.1's enter() has no --proc (mkosi binds /proc): its path binds /proc in every contestant.
MKOSI_OPTS = ["--bind", "/proc", "/proc", *OPTS[2:]]
env = dict(os.environ)

def preexec(enter):
    enter(MKOSI_OPTS)
    os.execv("/payload", ["/payload"])

def popen_preexec(enter):
    p = subprocess.Popen(["/payload"], preexec_fn=functools.partial(preexec, enter), env=env)
    assert p.wait() == 0

def posix_spawn_binary():
    pid = os.posix_spawn(BIN, [BIN, *MKOSI_OPTS, "--", "/payload"], env)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0

def popen_binary():
    assert subprocess.Popen([BIN, *MKOSI_OPTS, "--", "/payload"], env=env).wait() == 0

def forked(body):
    pid = os.fork()
    if pid == 0:
        try:
            body()
            os._exit(0)
        except BaseException as e:
            os.write(2, f"{e}\n".encode())
            os._exit(1)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0

def seed_entry():
    # pmbootstrap's PmbSandboxBuilder._setup_sandbox(), with these options as operations.
    s = seed
    fsops = [s.ProcOperation("/proc"), s.BindOperation("/usr", "/usr", readonly=True, required=True, relative=False)]
    fsops += [s.SymlinkOperation(f"usr/{d}", f"/{d}") for d in ("bin", "sbin", "lib", "lib64")]
    fsops += [s.DirOperation(d) for d in ("/var/tmp", "/var/log")] + [s.DevOperation("", "/dev")]
    fsops += [s.DirOperation(d) for d in ("/etc", "/var", "/tmp", "/run")]
    fsops += [s.BindOperation(W + "/payload", "/payload", readonly=True, required=True, relative=False)]
    os.environ.pop("TMPDIR", None)
    os.environ["PATH"] = "/usr/bin:/usr/sbin"
    s.acquire_privileges(become_root=False)
    s.unshare(s.CLONE_NEWNS | s.CLONE_NEWPID)
    pid = os.fork()
    if pid > 0:
        _, st = os.waitpid(pid, 0)
        os._exit(os.waitstatus_to_exitcode(st))
    s.setup_mounts(s.FSOperation.optimize(fsops))

def library_entry():
    mkosi_sandbox.enter(OPTS + ["--unshare-pid"])

RERUN = [BIN, *OPTS, "--unshare-pid", "--ro-bind", W, W, "--", sys.executable, "-c",
         f"import sys; sys.path[:0] = [{W + '/mkosi'!r}]; import " + sys.argv[5]]

def rerun():
    pid = os.posix_spawn(BIN, RERUN, env)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0

contestants = [
    ("mkosi: preexec_fn + Python enter() (mkosi 27.1)", lambda: popen_preexec(mkosi.sandbox.enter)),
    ("mkosi: preexec_fn + the library", lambda: popen_preexec(mkosi_sandbox.enter)),
    ("mkosi: posix_spawn of the binary", posix_spawn_binary),
    ("mkosi: subprocess.Popen of the binary (patch-mkosi)", popen_binary),
    ("in-process: stock Python (pmbootstrap's seed)", (lambda: forked(seed_entry)) if seed else None),
    ("in-process: the library", lambda: forked(library_entry)),
    ("in-process: re-run through the binary", rerun),
]
contestants = [(n, f) for n, f in contestants if f]
for _, f in contestants:   # warm up, and fail early
    f()
samples = {n: [] for n, _ in contestants}
for _ in range(ROUNDS):
    for n, f in contestants:
        t = time.perf_counter_ns()
        f()
        samples[n].append((time.perf_counter_ns() - t) / 1000)
rss = [l.split()[1] for l in open("/proc/self/status") if l.startswith("VmRSS")][0]
print(f"#rss\t{rss}\t{len(sys.modules)}")
for n, v in samples.items():
    print(n + "\t" + "\t".join(f"{x:.0f}" for x in v))
'''


def main() -> None:
    binary, libdir = (os.path.abspath(a) for a in sys.argv[1:3])
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    if os.getuid() != 0:
        sys.exit("bench-lib: run as root (it also runs as nobody)")
    w = tempfile.mkdtemp(prefix="mkosi-bench-inprocess.", dir="/tmp")
    try:
        os.chmod(w, 0o755)
        os.makedirs(f"{w}/lib")
        shutil.copytree(f"{libdir}/python/mkosi_sandbox", f"{w}/lib/mkosi_sandbox")
        shutil.copy(binary, f"{w}/mkosi-sandbox")
        subprocess.run(["cc", "-static", "-nostdlib", "-O2", "-o", f"{w}/payload", f"{HERE}/payload.c"], check=True)
        cache = os.environ.get("MKOSI_BENCH_CACHE", f"{HERE}/cache/mkosi")
        dist = subprocess.run([f"{TOP}/tests/fetch-mkosi.sh", "sid,testing,trixie-backports", "27.1", cache],
                              check=True, capture_output=True, text=True).stdout.strip()
        shutil.copytree(f"{dist}/mkosi", f"{w}/mkosi/mkosi")
        seed = "absent (no ../shared/fixtures)"
        if FIXTURE and hashlib.sha256(open(FIXTURE, "rb").read()).hexdigest() == FIXTURE_SHA:
            os.makedirs(f"{w}/seed")
            subprocess.run(["tar", "-xzf", FIXTURE, "-C", f"{w}/seed", "--strip-components=3",
                            "pmbootstrap-fab411c5/pmb/init/sandbox.py"], check=True)
            seed = "pmb/init/sandbox.py of pmbootstrap fab411c5"
        with open(f"{w}/driver.py", "w") as f:
            f.write(DRIVER)
        subprocess.run(["chmod", "-R", "a+rX", w], check=True)
        tables = []
        for user, prefix in (("root", []), ("nobody (--become-root)", ["setpriv", "--reuid=65534", "--regid=65534",
                                                                         "--clear-groups", "--"])):
            out = subprocess.run([*prefix, PY, f"{w}/driver.py", w, f"{w}/mkosi-sandbox", str(rounds),
                                  "1" if prefix else "0", MODULES], cwd="/", check=True, stdout=subprocess.PIPE,
                                 text=True).stdout
            tables.append((user, out))
        write(tables, rounds, binary, seed)
    finally:
        shutil.rmtree(w, ignore_errors=True)


def pct(v: list[float], p: float) -> float:
    v = sorted(v)
    return v[min(len(v) - 1, int(p * len(v)))]


def write(tables, rounds: int, binary: str, seed: str) -> None:
    import platform
    import time
    lines = ["# In-process entry and mkosi's paths: per-start cost for a Python caller", "",
             f"`make bench-lib` (bench/inprocess.py), {time.strftime('%Y-%m-%d', time.gmtime())}, "
             f"{os.cpu_count()} cores, kernel {platform.release()}, {rounds} rounds interleaved; "
             f"binary {os.path.getsize(binary)} bytes; seed: {seed}. Medians and p10–p90 in ms, from the "
             "call to the caller having the exit status. The caller is a Python process that has "
             "imported mkosi 27.1.", ""]
    for user, out in tables:
        rows = [l.split("\t") for l in out.splitlines() if l.count("\t") > 1 and not l.startswith("#")]
        rss = next((l.split("\t") for l in out.splitlines() if l.startswith("#rss")), ["", "?", "?"])
        lines += [f"## As {user}", "",
                  f"Caller: {rss[1]} KiB resident, {rss[2]} modules.", "",
                  "| path | median ms | p10–p90 ms | ÷ the library's |", "|---|---:|---:|---:|"]
        med = {r[0]: pct([float(x) for x in r[1:]], 0.5) for r in rows}
        for r in rows:
            v = [float(x) for x in r[1:]]
            group = r[0].split(":")[0]
            lib = next((m for n, m in med.items() if n.startswith(group) and "the library" in n), None)
            ratio = f"{med[r[0]] / lib:.2f}×" if lib else ""
            lines.append(f"| {r[0]} | {med[r[0]] / 1000:.2f} | {pct(v, 0.1) / 1000:.2f}–{pct(v, 0.9) / 1000:.2f} | {ratio} |")
        lines.append("")
    text = "\n".join(lines)
    with open(os.path.join(HERE, "INPROCESS.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
