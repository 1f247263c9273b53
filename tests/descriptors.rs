//! Inherited descriptors, as the command sees them (its own /proc/self/fd, probed from inside
//! with fstat so that probing opens nothing): `--pack-fds` with gaps, descriptors marked
//! close-on-exec among them, closed 0/1/2, many descriptors (hundreds, and past the 4096 the
//! sandbox can pack), `O_PATH` descriptors; without `--pack-fds` the descriptors stay where they
//! are. As root and as nobody, with and without `--unshare-pid`.
//!
//! The original's semantics (`pack_file_descriptors`, systemd's `pack_fds`): the valid descriptors
//! from 3 up, sorted, move to 3, 4, ... in that order; if there are any, `LISTEN_FDS` is their
//! number and `LISTEN_PID` the command's pid; with none the environment stays as it was. The
//! documented deviation (README): descriptors marked close-on-exec are closed, not packed. A
//! caller's own `LISTEN_FDS` passes descriptors too: `LISTEN_PID` then names the command (as
//! mkosi 25's sandbox does), and with `--unshare-pid` a caller's `LISTEN_PID` is rewritten.
//! Descriptors 0, 1 and 2 are the caller's: a closed one stays closed (nothing of the sandbox's own
//! may take its place).
//!
//! A Python launcher sets the descriptors up (numbers, close-on-exec flags, O_PATH) and execs the
//! sandbox; a Python probe is the command, and writes what it saw to a file in a bound directory.

mod common;
use common::*;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

const PY: &str = "/usr/bin/python3";

/// The launcher: argv[1] a file with a JSON plan, argv[2..] the sandbox and its arguments. The plan: `close`
/// (descriptors to close), `open` ([fd, path, "path"|"read", cloexec]), `nofile` (soft limit).
const LAUNCHER: &str = r#"
import json, os, resource, sys
plan = json.load(open(sys.argv[1]))
# Only the plan's descriptors: not what the test's own caller left open (cargo's jobserver pipe).
os.closerange(3, 1 << 20)
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(plan["nofile"], hard), hard))
for fd, path, how, cloexec in plan["open"]:
    flags = os.O_PATH if how == "path" else os.O_RDONLY
    tmp = os.open(path, flags | os.O_CLOEXEC)
    if tmp != fd:
        os.dup2(tmp, fd, inheritable=not cloexec)
        os.close(tmp)
    else:
        os.set_inheritable(fd, not cloexec)
for fd in plan["close"]:
    try:
        os.close(fd)
    except OSError:
        pass
os.execv(sys.argv[2], sys.argv[2:])
"#;

/// The command: every open descriptor (by fstat, which opens nothing), its target and whether it
/// is O_PATH, the LISTEN_* variables and its pid; written to /out/report.
const PROBE: &str = r#"
import json, os
seen = []
for fd in range(0, 6000):
    try:
        os.fstat(fd)
    except OSError:
        continue
    seen.append(fd)
fds = {}
for fd in seen:
    try:
        target = os.readlink("/proc/self/fd/%d" % fd)
    except OSError as e:
        target = "?" + e.strerror
    try:
        with open("/proc/self/fdinfo/%d" % fd) as f:
            flags = int([l for l in f if l.startswith("flags:")][0].split()[1], 8)
    except OSError:
        flags = -1
    fds[str(fd)] = [target, bool(flags & 0o10000000)]
report = {"fds": fds, "pid": os.getpid(), "env": {k: os.environ.get(k) for k in ("LISTEN_FDS", "LISTEN_PID")}}
with open("/out/report", "w") as f:
    json.dump(report, f)
"#;

struct Seen {
    status: i32,
    stderr: String,
    /// fd -> (target, O_PATH); None when the command did not run.
    fds: Option<BTreeMap<i32, (String, bool)>>,
    pid: i64,
    listen_fds: Option<String>,
    listen_pid: Option<String>,
}

/// A plan's descriptor: number, path, O_PATH, close-on-exec.
type Fd = (i32, String, bool, bool);

fn launch(
    s: &Scratch,
    nobody: bool,
    open: &[Fd],
    close: &[i32],
    nofile: u64,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Seen {
    let out = s.join("out");
    let _ = std::fs::remove_file(s.path().join("out/report"));
    let plan = format!(
        r#"{{"nofile": {nofile}, "close": {close:?}, "open": [{}]}}"#,
        open.iter()
            .map(|(fd, p, path, cloexec)| format!(
                r#"[{fd}, "{p}", "{}", {cloexec}]"#,
                if *path { "path" } else { "read" }
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut cmd = if nobody {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--", PY]);
        c
    } else {
        Command::new(PY)
    };
    let plan_file = s.join("plan.json");
    std::fs::write(&plan_file, plan).unwrap();
    cmd.args(["-S", "-I", "-c", LAUNCHER, &plan_file]).arg(binary()).args(BASE);
    cmd.args(["--bind", &out, "/out"]).args(extra).args(["--", PY, "-S", "-I", "-c", PROBE]);
    cmd.env_remove("LISTEN_FDS").env_remove("LISTEN_PID").envs(env.iter().copied());
    // stderr is piped (fd 2 open) unless the plan closes it; stdout is the test's.
    let o = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).output().expect("spawn python3");
    let status = o.status.code().unwrap_or(-1);
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    let Ok(report) = std::fs::read_to_string(s.path().join("out/report")) else {
        return Seen { status, stderr, fds: None, pid: 0, listen_fds: None, listen_pid: None };
    };
    // A small JSON reader for the probe's fixed shape.
    let fds_part = report.split(r#""fds": {"#).nth(1).unwrap().split("}, \"pid\"").next().unwrap();
    let mut fds = BTreeMap::new();
    for item in fds_part.split("], ").filter(|i| !i.is_empty()) {
        let (k, v) = item.split_once(": [").unwrap();
        let fd: i32 = k.trim_matches('"').parse().unwrap();
        let v = v.trim_end_matches(']');
        let (target, opath) = v.rsplit_once(", ").unwrap();
        fds.insert(fd, (target.trim_matches('"').to_string(), opath == "true"));
    }
    let pid: i64 = report.split(r#""pid": "#).nth(1).unwrap().split(',').next().unwrap().parse().unwrap();
    let var = |name: &str| {
        let v = report.split(&format!(r#""{name}": "#)).nth(1).unwrap();
        if v.starts_with("null") { None } else { Some(v[1..].split('"').next().unwrap().to_string()) }
    };
    Seen { status, stderr, fds: Some(fds), pid, listen_fds: var("LISTEN_FDS"), listen_pid: var("LISTEN_PID") }
}

fn scratch(tag: &str) -> Scratch {
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new(tag);
    std::fs::create_dir(s.path().join("out")).unwrap();
    std::fs::set_permissions(s.path().join("out"), std::fs::Permissions::from_mode(0o777)).unwrap();
    for i in 0..8 {
        std::fs::write(s.path().join(format!("f{i}")), "x").unwrap();
    }
    std::fs::create_dir(s.path().join("d")).unwrap();
    s
}

/// The command's descriptors from 3 up.
fn from_three(seen: &Seen) -> Vec<(i32, String, bool)> {
    seen.fds.as_ref().unwrap().iter().filter(|(fd, _)| **fd >= 3).map(|(fd, (t, p))| (*fd, t.clone(), *p)).collect()
}

/// The caller's own `LISTEN_FDS` passes descriptors: it stays, and `LISTEN_PID` names the command
/// (mkosi 25's sandbox fixes the pid the same way; src/process/mod.rs).
fn caller_listen_vars(seen: &Seen, extra: &[&str]) {
    assert_eq!(seen.status, 0, "{}", seen.stderr);
    let pid = seen.pid.to_string();
    assert_eq!((seen.listen_fds.as_deref(), seen.listen_pid.as_deref()), (Some("7"), Some(pid.as_str())), "{extra:?}");
}

/// The caller's `LISTEN_PID` alone stays as it is, unless `--unshare-pid`: then it names the
/// sandbox's outer process, never the command's, and is rewritten to the command's pid.
fn caller_listen_pid_alone(seen: &Seen, extra: &[&str]) {
    assert_eq!(seen.status, 0, "{}", seen.stderr);
    let want = if extra.contains(&"--unshare-pid") { seen.pid.to_string() } else { "1".to_string() };
    assert_eq!((seen.listen_fds.as_deref(), seen.listen_pid.as_deref()), (None, Some(want.as_str())), "{extra:?}");
}

fn ways() -> [(bool, &'static [&'static str]); 4] {
    [(false, &[]), (true, &[]), (false, &["--unshare-pid"]), (true, &["--become-root", "--unshare-pid"])]
}

#[test]
fn pack_fds_closes_gaps_in_order_and_drops_close_on_exec() {
    needs_root!();
    for (nobody, extra) in ways() {
        let s = scratch("fds-gaps");
        let f = |i: usize| s.join(&format!("f{i}"));
        // Numbers out of order in the plan, with gaps; 7 and 12 close-on-exec.
        let open = [
            (40, f(2), false, false),
            (5, f(0), false, false),
            (7, f(5), false, true),
            (9, f(1), false, false),
            (12, f(6), false, true),
            (300, f(3), false, false),
        ];
        let mut args = vec!["--pack-fds"];
        args.extend(extra);
        let seen = launch(&s, nobody, &open, &[], 1024, &args, &[]);
        assert_eq!(seen.status, 0, "{nobody} {extra:?}: {}", seen.stderr);
        let want: Vec<(i32, String, bool)> =
            [0, 1, 2, 3].iter().enumerate().map(|(i, f_)| (3 + i as i32, f(*f_), false)).collect();
        assert_eq!(from_three(&seen), want, "{nobody} {extra:?}");
        assert_eq!(seen.listen_fds.as_deref(), Some("4"));
        assert_eq!(seen.listen_pid, Some(seen.pid.to_string()), "LISTEN_PID is the command's pid");
        // 0, 1, 2 are the caller's: /dev/null, the test's stdout, a pipe.
        let fds = seen.fds.as_ref().unwrap();
        assert_eq!(fds.get(&0).map(|t| t.0.as_str()), Some("/dev/null"), "{fds:?}");
        assert!(fds.get(&2).is_some_and(|t| t.0.starts_with("pipe:")), "{fds:?}");
    }
}

#[test]
fn without_pack_fds_descriptors_stay_where_they_are() {
    needs_root!();
    for (nobody, extra) in ways() {
        let s = scratch("fds-stay");
        let f = |i: usize| s.join(&format!("f{i}"));
        let open =
            [(5, f(0), false, false), (7, f(5), false, true), (40, f(2), false, false), (41, s.join("d"), true, false)];
        let seen = launch(&s, nobody, &open, &[], 1024, extra, &[("LISTEN_FDS", "7"), ("LISTEN_PID", "1")]);
        assert_eq!(seen.status, 0, "{nobody} {extra:?}: {}", seen.stderr);
        assert_eq!(
            from_three(&seen),
            [(5, f(0), false), (40, f(2), false), (41, s.join("d"), true)],
            "{nobody} {extra:?}"
        );
        caller_listen_vars(&seen, extra);
        let seen = launch(&s, nobody, &open, &[], 1024, extra, &[("LISTEN_PID", "1")]);
        caller_listen_pid_alone(&seen, extra);
    }
}

#[test]
fn pack_fds_with_nothing_to_pack_leaves_the_environment() {
    needs_root!();
    for (nobody, extra) in ways() {
        let s = scratch("fds-none");
        let mut args = vec!["--pack-fds"];
        args.extend(extra);
        // Only a close-on-exec descriptor: nothing to pack.
        let open = [(9, s.join("f0"), false, true)];
        let seen = launch(&s, nobody, &open, &[], 1024, &args, &[("LISTEN_FDS", "7"), ("LISTEN_PID", "1")]);
        assert_eq!(seen.status, 0, "{}", seen.stderr);
        assert_eq!(from_three(&seen), []);
        caller_listen_vars(&seen, extra);
        let seen = launch(&s, nobody, &open, &[], 1024, &args, &[("LISTEN_PID", "1")]);
        caller_listen_pid_alone(&seen, extra);
        let seen = launch(&s, nobody, &[], &[], 1024, &args, &[]);
        assert_eq!((seen.status, seen.listen_fds, seen.listen_pid), (0, None, None), "{}", seen.stderr);
    }
}

#[test]
fn o_path_descriptors_are_packed_as_they_are() {
    needs_root!();
    for (nobody, extra) in ways() {
        let s = scratch("fds-opath");
        let mut args = vec!["--pack-fds"];
        args.extend(extra);
        let open = [(6, s.join("d"), true, false), (8, s.join("f1"), true, false), (11, s.join("f2"), false, false)];
        let seen = launch(&s, nobody, &open, &[], 1024, &args, &[]);
        assert_eq!(seen.status, 0, "{}", seen.stderr);
        assert_eq!(from_three(&seen), [(3, s.join("d"), true), (4, s.join("f1"), true), (5, s.join("f2"), false)]);
        assert_eq!(seen.listen_fds.as_deref(), Some("3"));
    }
}

#[test]
fn closed_standard_descriptors_stay_closed() {
    needs_root!();
    for (nobody, extra) in ways() {
        for pack in [false, true] {
            for close in [&[0][..], &[1], &[2], &[0, 1, 2]] {
                let s = scratch("fds-closed");
                let mut args = if pack { vec!["--pack-fds"] } else { vec![] };
                args.extend(extra);
                let open = [(4, s.join("f0"), false, false), (6, s.join("f1"), true, false)];
                let seen = launch(&s, nobody, &open, close, 1024, &args, &[]);
                let what = format!("nobody {nobody} {args:?} closed {close:?}");
                assert_eq!(seen.status, 0, "{what}: {}", seen.stderr);
                let fds = seen.fds.as_ref().unwrap();
                for fd in close {
                    assert!(!fds.contains_key(fd), "{what}: the command has {fd}: {fds:?}");
                }
                let want = if pack {
                    vec![(3, s.join("f0"), false), (4, s.join("f1"), true)]
                } else {
                    vec![(4, s.join("f0"), false), (6, s.join("f1"), true)]
                };
                assert_eq!(from_three(&seen), want, "{what}");
            }
        }
    }
}

#[test]
fn many_descriptors_are_packed_up_to_the_capacity() {
    needs_root!();
    for (nobody, extra) in [(false, &[][..]), (true, &["--become-root", "--unshare-pid"][..])] {
        let s = scratch("fds-many");
        let mut args = vec!["--pack-fds"];
        args.extend(extra);
        // 700 descriptors at every other number from 10, alternately O_PATH, every tenth
        // close-on-exec (70 of them).
        let open: Vec<Fd> =
            (0..700).map(|i| (10 + 2 * i, s.join(&format!("f{}", i % 8)), i % 2 == 1, i % 10 == 3)).collect();
        let seen = launch(&s, nobody, &open, &[], 2000, &args, &[]);
        assert_eq!(seen.status, 0, "{}", seen.stderr);
        let want: Vec<(i32, String, bool)> =
            open.iter().filter(|o| !o.3).enumerate().map(|(i, o)| (3 + i as i32, o.1.clone(), o.2)).collect();
        assert_eq!(want.len(), 630);
        assert_eq!(from_three(&seen), want);
        assert_eq!(seen.listen_fds.as_deref(), Some("630"));

        // Past the capacity (4096): one line naming --pack-fds, and the command never runs.
        let open: Vec<Fd> = (0..4097).map(|i| (3 + i, s.join("f0"), true, false)).collect();
        let seen = launch(&s, nobody, &open, &[], 5000, &args, &[]);
        assert_eq!(seen.status, 1, "{}", seen.stderr);
        assert!(seen.fds.is_none(), "the command ran");
        assert_eq!(seen.stderr.lines().count(), 1, "{}", seen.stderr);
        assert!(seen.stderr.starts_with("mkosi-sandbox: ") && seen.stderr.contains("--pack-fds"), "{}", seen.stderr);
        // Exactly the capacity is fine.
        let open: Vec<Fd> = (0..4096).map(|i| (3 + i, s.join("f0"), true, false)).collect();
        let seen = launch(&s, nobody, &open, &[], 5000, &args, &[]);
        assert_eq!(seen.status, 0, "{}", seen.stderr);
        assert_eq!(seen.listen_fds.as_deref(), Some("4096"));
        assert_eq!(from_three(&seen).len(), 4096);
    }
}
