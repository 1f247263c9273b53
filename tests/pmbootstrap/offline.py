#!/usr/bin/python3
"""Run pmbootstrap (the fixture at PMB_SRC) offline, for tests/pmbootstrap.sh and bench/pmbootstrap.sh.

The one stub: pmbootstrap's sysroot set-up (PmbSandboxBuilder.enter() -> apk_static.init())
reads Alpine's APKINDEX and downloads apk-tools-static from an Alpine mirror, which no test
machine reaches. Exactly that is stubbed: pmb.helpers.apk_static.init() does nothing (the test
lays out an already-initialised sysroot skeleton instead). Everything else is pmbootstrap as
it is; the test also passes pmbootstrap's own --offline (no APKINDEX refresh).

Usage: offline.py ARGS...   (as the `pmbootstrap` console script, pmb:main, runs)

PMB_PROBE=probe|pytest replaces the action (run_command, which runs after the sandbox is
entered) with a look from inside the sandbox: `probe` prints the uid/gid maps, capabilities,
the mounts at the places the operation list names, then mounts a chroot's /dev and /proc with
pmbootstrap's own helpers (DevOperation through mount_dev_tmpfs(), mount_rbind() through
pmb.helpers.mount.bind()) and unmounts them (umount_all(): umount2); with PMB_PROBE_REGISTER=1
it also registers a binfmt_misc rule at /tmp/pmb_binfmt_misc and removes it. `pytest` runs
pmbootstrap's own test suite (PMB_SRC/test) inside the sandbox and prints how the process entered
it (library, re-run or in-process) and the suite's summary line.
"""

import os
import stat
import subprocess
import sys

sys.path.insert(0, os.environ["PMB_SRC"])

import pmb  # noqa: E402
import pmb.helpers.apk_static  # noqa: E402


def no_alpine_download() -> None:
    """Stub of apk_static.init(): no APKINDEX, no apk-tools-static download."""


pmb.helpers.apk_static.init = no_alpine_download

PLACES = ("/", "/usr", "/tmp", "/tmp/pmb_binfmt_misc", "/etc/passwd", "/etc/resolv.conf",
          "/var/cache/apk", "/cache", "/work")
REGISTER = ":pmbprobe:E::pmbprobe::/bin/true:"


def mounts() -> list[tuple[str, str]]:
    """(mount point, fstype) of /proc/self/mountinfo, in order."""
    out = []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            out.append((fields[4].replace("\\040", " "), fields[sep + 1]))
    return out


def probe() -> None:
    from pathlib import Path

    import pmb.chroot.mount
    import pmb.helpers.mount
    from pmb.core import Chroot

    for name in ("uid_map", "gid_map"):
        with open(f"/proc/self/{name}", encoding="utf-8") as f:
            print(f"{name}:", "; ".join(" ".join(line.split()) for line in f))
    with open("/proc/self/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith(("Cap", "NoNewPrivs", "Seccomp:")):
                print(" ".join(line.split()))
    print("pid:", os.getpid())
    table = mounts()
    for place in PLACES:
        kinds = [t for p, t in table if p == place]
        print(f"mount {place}: {kinds[-1] if kinds else '-'}")
    print("/etc/passwd is a", "symlink" if os.path.islink("/etc/passwd") else "file",
          "whose first user is", open("/etc/passwd", encoding="utf-8").readline().split(":")[0] == os.getlogin())

    binfmt = Path("/tmp/pmb_binfmt_misc")
    if os.environ.get("PMB_PROBE_REGISTER") == "1":
        try:
            (binfmt / "register").write_text(REGISTER)
            print("binfmt register: ok, entry", (binfmt / "pmbprobe").exists())
            (binfmt / "pmbprobe").write_text("-1")
        except OSError as e:
            print("binfmt register:", e.strerror)

    chroot = Chroot.native()
    chroot.path.mkdir(parents=True, exist_ok=True)
    pmb.chroot.mount.mount_dev_tmpfs(chroot)
    null = chroot.path / "dev/null"
    print("chroot /dev/null is a char device:", stat.S_ISCHR(null.stat().st_mode))
    with open(null, "w") as f:
        f.write("x")
    print("chroot /dev/pts:", [t for p, t in mounts() if p == str(chroot.path / "dev/pts")])
    pmb.helpers.mount.bind("/proc", chroot.path / "proc")
    print("chroot /proc/self/status readable:", (chroot.path / "proc/self/status").is_file())
    under = [p for p, _ in mounts() if p.startswith(str(chroot.path) + "/")]
    print("mounts under the chroot:", len(under))
    pmb.helpers.mount.umount_all(chroot.path)
    left = [p for p, _ in mounts() if p.startswith(str(chroot.path) + "/")]
    print("mounts under the chroot after umount_all:", len(left))


def pytest() -> None:
    src = os.environ["PMB_SRC"]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--continue-on-collection-errors",
         "--basetemp", os.path.join(os.environ["PMB_PYTEST_TMP"], "basetemp"), "test"],
        cwd=src, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False,
    )
    lines = [line for line in run.stdout.splitlines() if line.strip()]
    # How this process got inside: the module imported (the library mode), the binary's mark in the
    # environment (the re-run), else the branch's own entry. A mode that fell back shows here.
    how = "library" if "mkosi_sandbox" in sys.modules else "in-process"
    if how != "library" and os.environ.get("PMB_SANDBOX_OUTER_MNTNS"):
        how = "re-run"
    print("entered by:", how)
    print("pytest:", lines[-1] if lines else f"no output, exit {run.returncode}")


what = os.environ.get("PMB_PROBE")
if what:
    def probe_instead(args: object, parser: object) -> None:
        sys.stdout.flush()
        {"probe": probe, "pytest": pytest}[what]()
        sys.stdout.flush()

    pmb.run_command = probe_instead

sys.exit(pmb.main())
