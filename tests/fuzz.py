#!/usr/bin/env python3
"""Differential fuzzer: random but plausible command lines, each run under the Python original
and under this binary (through tests/differential-lib.sh, the machinery of the differential
suite), comparing exit status and the inside view. A divergence is minimised (option groups
removed while it persists) and printed as a command line. A minimised divergence that an entry of
README's "Differences from the original, on purpose" explains (its `(fuzz: NAME)` tag) is counted
as accepted, not failed; that README list is the only list of accepted deviations.

Usage: fuzz.py BINARY [--cases N] [--seed S] [--batch B] [--jobs J]
Run as root (cases also run as uid 65534). Exit status 1 when an unexplained divergence remains.
"""

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)

# What every case starts with: a usable root for `sh` and the inspection (as differential.sh).
BASE = [["--ro-bind", "/usr", "/usr"], ["--symlink", "usr/bin", "/bin"], ["--symlink", "usr/sbin", "/sbin"],
        ["--symlink", "usr/lib", "/lib"], ["--symlink", "usr/lib64", "/lib64"]]

NAMES = ["a", "b", "c", "tmp", "var"]
# Sources a writable bind may name: fixtures, made afresh before each run (labs is an absolute
# link to one). The host's own files are bound read-only only: a writable bind would let a
# random --write or --dir change them (it did: /usr/lib/os-release emptied).
SOURCES = ["@S/fx/dir", "@S/fx/dir/sub", "@S/fx/file", "@S/fx/dir/inner", "@S/fx/nope", "@S/fx/ldir",
           "@S/fx/lfile", "@S/fx/ldangling", "@S/fx/labs", "@S/fx/dir/../file", "@S/fx/./dir", "@S/fx//dir/",
           "/nonexistent"]
HOST_SOURCES = ["/usr/share", "/usr/share/doc", "/etc/os-release"]
ENV_NAMES = ["A", "B", "C", "HOME", "TERM", "LANG"]


def dst(rng, depth=None):
    """A destination: short names, so that paths nest and repeat, with `.`, `..` and `//`."""
    depth = depth or rng.choice([1, 1, 2, 2, 3])
    parts = [rng.choice(NAMES) for _ in range(depth)]
    path = "/" + "/".join(parts)
    r = rng.random()
    if r < 0.08:
        i = rng.randrange(len(parts))
        path = "/" + "/".join(parts[:i] + ["."] + parts[i:])
    elif r < 0.14:
        i = rng.randrange(len(parts))
        path = "/" + "/".join(parts[:i] + [rng.choice(NAMES), ".."] + parts[i:])
    elif r < 0.18:
        path = path.replace("/", "//", 1)
    elif r < 0.21:
        path += "/"
    return path


def group(rng, relative_sources):
    """One option with its arguments."""
    kind = rng.choices(
        ["bind", "tmpfs", "dir", "symlink", "write", "overlay", "proc", "dev", "env", "chdir"],
        [30, 10, 14, 10, 10, 5, 3, 3, 8, 4])[0]
    if kind == "bind":
        opt = rng.choice(["--bind", "--ro-bind", "--bind-try", "--ro-bind-try"])
        if relative_sources and rng.random() < 0.2:
            return [opt, "+" + dst(rng), dst(rng)]
        if rng.random() < 0.2:
            return [opt.replace("--bind", "--ro-bind"), rng.choice(HOST_SOURCES), dst(rng)]
        return [opt, rng.choice(SOURCES), dst(rng)]
    if kind == "tmpfs":
        return ["--tmpfs", dst(rng)]
    if kind == "dir":
        return ["--dir", dst(rng)]
    if kind == "symlink":
        target = rng.choice(["a", "../b", "/c", "x/y", "/usr/share", "tmp"])
        # Mostly where the parent exists (the original does not make a link's parents).
        return ["--symlink", target, dst(rng, 1 if rng.random() < 0.7 else None)]
    if kind == "write":
        return ["--write", rng.choice(["data", "", "two\nlines"]), dst(rng)]
    if kind == "overlay":
        g = ["--overlay-lowerdir", "@S/fx/lower1"]
        if rng.random() < 0.7:
            g += ["--overlay-lowerdir", "@S/fx/lower2"]
        r = rng.random()
        if r < 0.4:
            g += ["--overlay-upperdir", "tmpfs"]
        elif r < 0.7:
            g += ["--overlay-upperdir", "@S/fx/upper", "--overlay-workdir", "@S/fx/work"]
        return g + ["--overlay", dst(rng)]
    if kind == "proc":
        return ["--proc", rng.choice(["/proc", dst(rng)])]
    if kind == "dev":
        return ["--dev", rng.choice(["/dev", dst(rng)])]
    if kind == "env":
        if rng.random() < 0.6:
            return ["--setenv", rng.choice(ENV_NAMES), rng.choice(["1", "", "x y"])]
        return ["--unsetenv", rng.choice(ENV_NAMES)]
    return ["--chdir", rng.choice([dst(rng), "", "/"])]


def case(rng, relative_sources):
    user = "nobody" if rng.random() < 0.3 else "root"
    groups = [list(g) for g in BASE]
    if rng.random() < 0.7:
        groups.append(["--proc", "/proc"])
    groups += [group(rng, relative_sources) for _ in range(rng.randint(1, 7))]
    if user == "nobody" and rng.random() < 0.6 or rng.random() < 0.1:
        groups.append(["--become-root"])
    return user, groups


def flat(groups):
    return [a for g in groups for a in g]


class Runner:
    """Runs batches of cases through differential-lib.sh."""

    def __init__(self, binary, original, jobs):
        self.jobs = jobs
        self.binary = binary
        self.original = original
        self.statuses = {}  # the original's exit statuses seen, to tell a fuzzer that only fails

    def run(self, cases):
        """Runs the cases, split over `jobs` batches at once (each with its own scratch)."""
        if self.jobs > 1 and len(cases) > 1:
            size = (len(cases) + self.jobs - 1) // self.jobs
            chunks = [cases[i:i + size] for i in range(0, len(cases), size)]
            procs = [self.start(chunk) for chunk in chunks]
            return [r for proc, chunk in zip(procs, chunks) for r in self.finish(proc, chunk)]
        return self.finish(self.start(cases), cases)

    def start(self, cases):
        lines = []
        for user, groups in cases:
            args = flat(groups)
            lines.append("".join(field.replace("\n", " ") + "\x1f" for field in [user] + args))
        cmd = ["bash", os.path.join(HERE, "differential-lib.sh"), "--batch", self.binary]
        if self.original:
            cmd.append(self.original)
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        proc.stdin.write("\n".join(lines) + "\n")
        proc.stdin.close()
        return proc

    def finish(self, proc, cases):
        out = proc.stdout.read()
        proc.wait()
        results, current = [], None
        for line in out.splitlines():
            m = re.match(r"RESULT (\d+) (PASS|FAIL|NOTCOMPARED) (\d+) (\d+)", line)
            if m:
                # None: not compared (a shell inside could not fork; the batch says why).
                current = [{"PASS": True, "FAIL": False}.get(m.group(2)), []]
                results.append(current)
                self.statuses[m.group(3)] = self.statuses.get(m.group(3), 0) + 1
            elif current is not None and line.startswith("| "):
                current[1].append(line[2:])
        if len(results) != len(cases):
            sys.exit(f"fuzz: the batch gave {len(results)} results for {len(cases)} cases:\n{out[-2000:]}")
        return results


def minimise(runner, user, groups):
    """Removes option groups while the divergence persists. Each round tries every single removal
    at once (in parallel), then all the ones that kept it together, else the first of them."""
    while len(groups) > 1:
        candidates = [(user, groups[:i] + groups[i + 1:]) for i in range(len(groups))]
        keep = [i for i, (passed, _) in enumerate(runner.run(candidates)) if passed is False]
        if not keep:
            break
        together = [g for i, g in enumerate(groups) if i not in keep]
        if len(keep) > 1 and together and runner.run([(user, together)])[0][0] is False:
            groups = together
        else:
            groups = candidates[keep[0]][1]
    # --become-root may be what matters; so may the user: try root for nobody.
    if user == "nobody" and runner.run([("root", groups)])[0][0] is False:
        user = "root"
    return user, groups


def norm(path):
    return os.path.normpath(path.replace("//", "/"))


def below(path, top):
    p, t = norm(path), norm(top)
    return p != t and (p + "/").startswith(t.rstrip("/") + "/")


# Predicates for the deviations README documents, by tag. Each gets the minimised case.
def dotdot_bind(user, groups):
    """A bind with `..` that the original's lexical test drops as implied by another bind."""
    def parts(p):
        return [c for c in p.split("/") if c and c != "."]

    def literal_prefix(prefix, path):
        return parts(path)[:len(parts(prefix))] == parts(prefix)

    binds = [g for g in groups if g[0].startswith("--") and "bind" in g[0]]
    return any(".." in parts(m[1]) + parts(m[2]) and ".." not in parts(n[1]) + parts(n[2])
               and literal_prefix(n[1], m[1]) and literal_prefix(n[2], m[2])
               for m in binds for n in binds if m is not n)


def symlink_parent(user, groups):
    links = [(g[1], g[2]) for g in groups if g[0] == "--symlink"]
    dsts = [g[-1] for g in groups if g[0] not in ("--setenv", "--unsetenv", "--become-root")]
    return any(below(d, link) or norm(d) == norm(link) and d.endswith("/") for _, link in links for d in dsts)


DEVIATIONS = {"dotdot-bind": dotdot_bind, "symlink-parent": symlink_parent}


def readme_tags():
    text = open(os.path.join(TOP, "README.md")).read()
    section = text.split("## Differences from the original, on purpose", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"\(fuzz: ([a-z0-9-]+)\)", section))


def show(user, groups):
    as_user = "setpriv --reuid=65534 --regid=65534 --clear-groups -- " if user == "nobody" else ""
    quoted = " ".join(a if re.fullmatch(r"[\w@/.+=:,-]+", a) else repr(a) for a in flat(groups))
    return f"{as_user}mkosi-sandbox {quoted} -- sh -c \"$inspect\""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--cases", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    binary = os.path.realpath(args.binary)

    tags = readme_tags()
    unknown = set(DEVIATIONS) - tags
    if unknown:
        sys.exit(f"fuzz: deviations accepted here but not in README's list: {sorted(unknown)}")
    accepted = {name: pred for name, pred in DEVIATIONS.items() if name in tags}

    # mkosi 25.3, as differential.sh. It has no relative (`+`) sources, and Debian has no later
    # original with mkosi 25's command line: those are left to tests/edge_cases.rs.
    original = subprocess.run([os.path.join(TOP, "bench", "fetch-original.sh")], capture_output=True, text=True)
    if original.returncode != 0:
        sys.exit("fuzz: cannot fetch the original")
    originals = [("25.3", original.stdout.strip(), False)]

    rng = random.Random(args.seed)
    counts = {"cases": 0, "passed": 0, "accepted": 0, "failed": 0, "not compared": 0}
    per_deviation = {}
    failures = []
    per_original = args.cases // len(originals)
    for index, (version, original, relative) in enumerate(originals):
        runner = Runner(binary, original, args.jobs)
        todo = per_original if index < len(originals) - 1 else args.cases - per_original * index
        while todo > 0:
            n = min(args.batch, todo)
            todo -= n
            cases = [case(rng, relative) for _ in range(n)]
            for (user, groups), (passed, diff) in zip(cases, runner.run(cases)):
                counts["cases"] += 1
                if passed:
                    counts["passed"] += 1
                    continue
                if passed is None:
                    counts["not compared"] += 1
                    print(f"NOT COMPARED: {show(user, groups)}: {' '.join(diff)}", flush=True)
                    continue
                m_user, m_groups = minimise(runner, user, groups)
                why = next((name for name, pred in accepted.items() if pred(m_user, m_groups)), None)
                if why:
                    print(f"accepted ({why}): {show(m_user, m_groups)}", flush=True)
                    counts["accepted"] += 1
                    per_deviation[why] = per_deviation.get(why, 0) + 1
                    continue
                counts["failed"] += 1
                _, m_diff = runner.run([(m_user, m_groups)])[0]
                failures.append((version, m_user, m_groups, m_diff or diff))
                print(f"DIVERGENCE (original {version}): {show(m_user, m_groups)}", flush=True)
                for line in (m_diff or diff)[:15]:
                    print("   " + line, flush=True)
            print(f"fuzz: {counts['cases']} cases so far ({version}): {counts}, "
                  f"original's exit statuses {runner.statuses}", flush=True)
    print(f"fuzz: seed {args.seed}: {counts['cases']} cases, {counts['passed']} identical, "
          f"{counts['accepted']} accepted deviations {per_deviation}, {counts['failed']} divergences, "
          f"{counts['not compared']} not compared")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
