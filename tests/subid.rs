//! Subordinate id ranges end to end: `--map-users`, `--map-groups`, `--map-auto`, as a real
//! unprivileged user with /etc/subuid and /etc/subgid ranges (created per test, removed after,
//! even on failure) and as root; the maps compared with util-linux `unshare` on the same user;
//! chown to mapped ids; every error as one line with nothing run and nothing left behind.

mod common;
use common::*;

use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};

const PREFIX: &str = "mksbx8";

/// A throw-away login with subordinate ranges; `userdel` (which also drops its /etc/subuid and
/// /etc/subgid lines) runs when it goes out of scope, panics included.
struct TestUser {
    name: String,
    uid: u32,
    gid: u32,
    subuid: (u32, u32),
    subgid: (u32, u32),
}

/// Runs a shadow tool, retrying while another process holds the passwd lock (engineers and test
/// threads create users concurrently).
fn shadow_tool(tool: &str, args: &[&str]) -> std::process::Output {
    for _ in 0..100 {
        let out = Command::new(tool).args(args).output().unwrap_or_else(|e| panic!("{tool}: {e}"));
        if out.status.success() {
            return out;
        }
        let err = String::from_utf8_lossy(&out.stderr);
        if !err.contains("lock") && !err.contains("try again") {
            return out;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("{tool} {args:?}: lock never released");
}

/// Removes users an earlier, killed run of these tests left behind (their pid is gone).
fn remove_stale_users() {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    for name in passwd.lines().filter_map(|l| l.split(':').next()).filter(|n| n.starts_with(PREFIX)) {
        let pid = name[PREFIX.len()..].split('x').next().unwrap_or("");
        if !pid.is_empty() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            shadow_tool("userdel", &[name]);
        }
    }
}

fn first_range(file: &str, name: &str) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string(file).unwrap();
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() == 3 && f[0] == name).then(|| (f[1].parse().unwrap(), f[2].parse().unwrap()))
    })
}

impl TestUser {
    /// `extra`: more useradd options (a fixed uid, the size of the subordinate ranges).
    fn new(tag: &str, extra: &[&str]) -> TestUser {
        require_root();
        remove_stale_users();
        let name = format!("{PREFIX}{}x{tag}", std::process::id());
        let mut args = vec!["-M", "-s", "/usr/sbin/nologin"];
        args.extend_from_slice(extra);
        args.push(&name);
        let out = shadow_tool("useradd", &args);
        assert!(out.status.success(), "useradd {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        let mut user = TestUser { name, uid: 0, gid: 0, subuid: (0, 0), subgid: (0, 0) };
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, &user.name]).output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        };
        user.uid = id("-u");
        user.gid = id("-g");
        // useradd allocates ranges when /etc/subuid exists (Debian's login.defs); add them if not.
        if first_range("/etc/subuid", &user.name).is_none() {
            let start = 1_000_000 + (std::process::id() % 1000) * 70_000;
            let span = format!("{start}-{}", start + 65535);
            let out = shadow_tool("usermod", &["--add-subuids", &span, "--add-subgids", &span, &user.name]);
            assert!(out.status.success(), "usermod: {}", String::from_utf8_lossy(&out.stderr));
        }
        user.subuid = first_range("/etc/subuid", &user.name).expect("subuid range");
        user.subgid = first_range("/etc/subgid", &user.name).expect("subgid range");
        user
    }

    fn command(&self, program: &std::path::Path) -> Command {
        let mut c = Command::new("setpriv");
        c.args([&format!("--reuid={}", self.uid), &format!("--regid={}", self.gid), "--clear-groups", "--"]);
        c.arg(program).current_dir("/").stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Run {
        finish(self.command(&binary()).args(args).output().unwrap())
    }

    /// Processes still running as this user (a stray helper would be one).
    fn processes(&self) -> String {
        let out = Command::new("pgrep").args(["-u", &self.uid.to_string(), "-a"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = Command::new("pkill").args(["-KILL", "-u", &self.uid.to_string()]).status();
        shadow_tool("userdel", &[&self.name]);
    }
}

fn finish(out: std::process::Output) -> Run {
    use std::os::unix::process::ExitStatusExt;
    Run {
        status: out.status.code().unwrap_or_else(|| 128 + out.status.signal().unwrap_or(0)),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The lines of a map as numbers.
fn map_lines(text: &str) -> Vec<[u64; 3]> {
    text.lines()
        .map(|l| {
            let f: Vec<u64> = l.split_whitespace().map(|n| n.parse().unwrap()).collect();
            [f[0], f[1], f[2]]
        })
        .collect()
}

const SHOW_MAPS: &str = "cat /proc/self/uid_map; echo --; cat /proc/self/gid_map; echo --; cat /proc/self/setgroups";

/// (uid map, gid map, setgroups) from the output of SHOW_MAPS.
fn maps(text: &str) -> (Vec<[u64; 3]>, Vec<[u64; 3]>, String) {
    let parts: Vec<&str> = text.split("--\n").collect();
    assert_eq!(parts.len(), 3, "{text}");
    (map_lines(parts[0]), map_lines(parts[1]), parts[2].trim().to_string())
}

fn sorted(mut v: Vec<[u64; 3]>) -> Vec<[u64; 3]> {
    v.sort();
    v
}

#[test]
fn map_auto_writes_what_util_linux_unshare_writes() {
    needs_root!();
    // A usual user (uid below its range), and one whose uid lies past the inside span of a small
    // range, where unshare's splitting takes its other branch.
    let odd_uid = (70_000 + std::process::id() % 20_000).to_string();
    let users = [
        TestUser::new("a", &[]),
        TestUser::new("b", &["-u", &odd_uid, "-K", "SUB_UID_COUNT=1000", "-K", "SUB_GID_COUNT=1000"]),
    ];
    for user in &users {
        for (ours, theirs) in [(&["--become-root"][..], "--map-root-user"), (&[][..], "--map-current-user")] {
            let mut args: Vec<String> = ours.iter().map(|s| s.to_string()).collect();
            args.push("--map-auto".into());
            let out = user.run(&refs(&sh(&refs(&args), SHOW_MAPS)));
            let mine = maps(out.ok());
            let unshare = user
                .command(std::path::Path::new("unshare"))
                .args(["--map-auto", theirs, "sh", "-c", SHOW_MAPS])
                .output()
                .unwrap();
            let unshare = finish(unshare);
            let reference = maps(unshare.ok());
            assert_eq!(mine, reference, "{} ({theirs}): ours vs util-linux", user.name);
            assert_eq!(mine.2, "allow");
        }
    }
    // The usual user's maps, spelled out: 0 is the caller, the range follows (65535 of it).
    let u = &users[0];
    let out = u.run(&refs(&sh(&["--become-root", "--map-auto"], SHOW_MAPS)));
    let (uid_map, _, _) = maps(out.ok());
    assert_eq!(uid_map, [[0, u.uid as u64, 1], [1, u.subuid.0 as u64, u.subuid.1 as u64 - 1]]);
}

/// The seed's layout (0 → the caller, 1..9999, 12345 and 10000 to three host ids), placed in
/// the test user's range.
#[test]
fn the_seeds_layout_as_options() {
    needs_root!();
    let u = TestUser::new("seed", &[]);
    let (s, g) = (u.subuid.0, u.subgid.0);
    let mut args = vec!["--become-root".to_string()];
    for (opt, base) in [("--map-users", s), ("--map-groups", g)] {
        for (inner, offset, count) in [(1, 0, 9999), (12345, 10000, 1), (10000, 20000, 1)] {
            args.push(opt.into());
            args.push(format!("{inner}:{}:{count}", base + offset));
        }
    }
    let out = u.run(&refs(&sh(&refs(&args), &format!("{SHOW_MAPS}; echo --; id -u; id -g"))));
    let text = out.ok();
    let (head, ids) = text.rsplit_once("--\n").unwrap();
    let (uid_map, gid_map, setgroups) = maps(head);
    let want = |own: u32, base: u32| {
        sorted(vec![
            [0, own as u64, 1],
            [1, base as u64, 9999],
            [12345, base as u64 + 10000, 1],
            [10000, base as u64 + 20000, 1],
        ])
    };
    assert_eq!(sorted(uid_map), want(u.uid, s));
    assert_eq!(sorted(gid_map), want(u.gid, g));
    assert_eq!(setgroups, "allow", "newgidmap needs setgroups");
    assert_eq!(ids, "0\n0\n");
}

#[test]
fn chown_to_a_mapped_id_owns_the_file_on_the_host() {
    needs_root!();
    let u = TestUser::new("chown", &[]);
    let s = Scratch::new("subid-chown");
    let dir = s.join("");
    // --become-root --map-auto: inside 1.. is the range, so 1000 is host start + 999.
    let script = "touch /out/a /out/b && chown 1000:2000 /out/a && chown 12345 /out/b && stat -c '%u %g' /out/a /out/b";
    let out = u.run(&refs(&sh(&["--become-root", "--map-auto", "--bind", &dir, "/out"], script)));
    assert_eq!(out.ok(), "1000 2000\n12345 0\n");
    let a = std::fs::metadata(s.path().join("a")).unwrap();
    let b = std::fs::metadata(s.path().join("b")).unwrap();
    assert_eq!((a.uid(), a.gid()), (u.subuid.0 + 999, u.subgid.0 + 1999));
    assert_eq!((b.uid(), b.gid()), (u.subuid.0 + 12344, u.gid));
    // An id outside the map still cannot be used.
    let out = u.run(&refs(&sh(&["--become-root", "--map-auto", "--bind", &dir, "/out"], "chown 70000 /out/a")));
    assert_ne!(out.status, 0);
    assert!(out.stderr.contains("Invalid argument"), "{}", out.stderr);
}

#[test]
fn root_writes_the_maps_itself() {
    needs_root!();
    // Ranges no /etc/subuid grants: only a direct write by root can set them up.
    let s = Scratch::new("subid-root");
    let dir = s.join("");
    let out = run(&refs(&sh(
        &["--map-users", "1:3000000:100", "--map-groups", "1:3000000:100", "--bind", &dir, "/out"],
        &format!("{SHOW_MAPS}; echo --; touch /out/f; chown 7:8 /out/f; id -u"),
    )));
    let text = out.ok();
    let (head, id) = text.rsplit_once("--\n").unwrap();
    let (uid_map, gid_map, setgroups) = maps(head);
    assert_eq!(uid_map, [[0, 0, 1], [1, 3000000, 100]]);
    assert_eq!(gid_map, [[0, 0, 1], [1, 3000000, 100]]);
    assert_eq!(setgroups, "allow");
    assert_eq!(id, "0\n");
    let f = std::fs::metadata(s.path().join("f")).unwrap();
    assert_eq!((f.uid(), f.gid()), (3000006, 3000007));
}

/// Runs `args` as `user` with a command that would leave a marker; asserts one line, exit 1,
/// the command not run, and no process of the user left; returns the line.
fn refused_as(user: Option<&TestUser>, args: &[&str]) -> String {
    let s = Scratch::new("subid-bad");
    let marker = s.join("ran");
    let dir = s.join("");
    let mut full: Vec<String> = BASE.iter().map(|a| a.to_string()).collect();
    full.extend(["--bind".into(), dir.clone(), dir.clone()]);
    full.extend(args.iter().map(|a| a.to_string()));
    full.extend(["--".into(), "touch".into(), marker.clone()]);
    let out = match user {
        Some(u) => u.run(&refs(&full)),
        None => run(&refs(&full)),
    };
    assert_eq!(out.status, 1, "stderr: {}", out.stderr);
    assert!(!std::path::Path::new(&marker).exists(), "the command ran");
    assert_eq!(out.stderr.lines().count(), 1, "one line: {:?}", out.stderr);
    if let Some(u) = user {
        assert_eq!(u.processes(), "", "a helper was left behind");
    }
    out.stderr
}

#[test]
fn bad_ranges_are_one_line_errors() {
    needs_root!();
    for (arg, why) in [
        ("1:2", "expected INNER:OUTER:COUNT (decimal numbers)"),
        ("1:2:3:4", "expected INNER:OUTER:COUNT (decimal numbers)"),
        ("-1:2:3", "expected INNER:OUTER:COUNT (decimal numbers)"),
        ("x:2:3", "expected INNER:OUTER:COUNT (decimal numbers)"),
        ("1:2:4294967296", "expected INNER:OUTER:COUNT (decimal numbers)"),
        ("1:2:0", "COUNT must be at least 1"),
        ("4294967290:2:10", "range runs past id 4294967294"),
        ("2:4294967290:6", "range runs past id 4294967294"),
    ] {
        assert_eq!(refused_as(None, &["--map-users", arg]), format!("mkosi-sandbox: --map-users {arg}: {why}\n"));
        assert_eq!(refused_as(None, &["--map-groups", arg]), format!("mkosi-sandbox: --map-groups {arg}: {why}\n"));
    }
    let out = run(&["--map-users"]);
    assert_eq!((out.status, out.stderr.as_str()), (1, "mkosi-sandbox: --map-users: missing argument\n"));
    assert_eq!(
        refused_as(None, &["--map-users", "1:100000:10", "--map-users", "10:200000:1"]),
        "mkosi-sandbox: --map-users 1:100000:10 10:200000:1: ranges overlap inside the namespace\n"
    );
    assert_eq!(
        refused_as(None, &["--map-groups", "1:100000:10", "--map-groups", "20:100009:1"]),
        "mkosi-sandbox: --map-groups 1:100000:10 20:100009:1: ranges overlap outside the namespace\n"
    );
    // Root is mapped to itself: inside 0 is taken.
    assert_eq!(
        refused_as(None, &["--map-users", "0:100000:10"]),
        "mkosi-sandbox: --map-users (the caller's own id) 0:100000:10: ranges overlap inside the namespace\n"
    );
    let mut many = Vec::new();
    for i in 0..=340u32 {
        many.push("--map-users".to_string());
        many.push(format!("{}:{}:1", i + 1, 100000 + i));
    }
    assert_eq!(refused_as(None, &refs(&many)), "mkosi-sandbox: too many --map-users (max 340)\n");
}

#[test]
fn ranges_the_caller_does_not_own_are_refused_by_newuidmap() {
    needs_root!();
    let u = TestUser::new("deny", &[]);
    let outside = u.subuid.0 + u.subuid.1; // just past the user's range
    let err = refused_as(Some(&u), &["--become-root", "--map-users", &format!("1:{outside}:10")]);
    assert!(
        err.starts_with("mkosi-sandbox: --map-users: newuidmap: ") && err.contains("not allowed (exit status 1)"),
        "{err}"
    );
    let outside = u.subgid.0 + u.subgid.1;
    let err = refused_as(Some(&u), &["--map-groups", &format!("5:{outside}:1")]);
    assert!(err.starts_with("mkosi-sandbox: --map-groups: newgidmap: ") && err.contains("not allowed"), "{err}");
}

#[test]
fn map_auto_without_a_subordinate_range() {
    needs_root!();
    // nobody has no line in /etc/subuid.
    let out = run_as_nobody(&refs(&sh(&["--map-auto"], "echo ran")));
    assert_eq!(out.status, 1);
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr, "mkosi-sandbox: --map-auto /etc/subuid: no range for the caller\n");
}

#[test]
fn missing_newuidmap_names_the_package() {
    needs_root!();
    let u = TestUser::new("tools", &[]);
    let s = Scratch::new("subid-tools");
    // A private mount namespace where /usr/bin is empty: setpriv and the sandbox run from copies.
    let setpriv = s.join("setpriv");
    std::fs::copy("/usr/bin/setpriv", &setpriv).unwrap();
    let script = format!(
        "mount -t tmpfs tmpfs /usr/bin && exec {setpriv} --reuid={} --regid={} --clear-groups -- {} --map-users 1:{}:1 /nonexistent",
        u.uid,
        u.gid,
        binary().display(),
        u.subuid.0
    );
    let out = Command::new("unshare").args(["-m", "--propagation", "private", "sh", "-c", &script]).output().unwrap();
    let out = finish(out);
    assert_eq!(out.status, 1);
    assert_eq!(
        out.stderr,
        "mkosi-sandbox: --map-users /usr/bin/newuidmap: not installed (it comes with the package uidmap on \
         Debian and Ubuntu, shadow-utils on Fedora, shadow elsewhere)\n"
    );
}

#[test]
fn without_the_options_nothing_forks() {
    needs_root!();
    // The plain start-up path is unchanged: no helper, no pipe, a single-id map.
    let mut args: Vec<&str> = BASE.to_vec();
    args.extend(["--become-root", "--", "/usr/bin/true"]);
    let out = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=clone,clone3,fork,vfork,pipe2,wait4", "-o", "/dev/stdout"])
        .arg(binary())
        .args(&args)
        .output();
    let Ok(out) = out else { panic!("strace is needed (apt-get install strace)") };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(["clone", "fork", "pipe2", "wait4"].iter().all(|call| !text.contains(call)), "{text}");
}

#[test]
fn suppress_chown_with_ranges_lets_mapped_chowns_happen() {
    needs_root!();
    let u = TestUser::new("supp", &[]);
    let s = Scratch::new("subid-suppress");
    let dir = s.join("");
    // Every chown entry point (chown, fchown, lchown, fchownat): mapped ids really change the
    // owner; an unmapped one succeeds without effect, as --suppress-chown always made it.
    let script = "import os\n\
        for n in 'abcde': open('/out/' + n, 'w').close()\n\
        os.chown('/out/a', 1000, 2000)\n\
        fd = os.open('/out/b', os.O_RDONLY); os.fchown(fd, 12345, -1)\n\
        os.lchown('/out/c', -1, 3000)\n\
        os.chown('e', 4000, 4000, dir_fd=os.open('/out', os.O_RDONLY))\n\
        os.chown('/out/d', 70000, 70000)\n\
        print('ok')\n";
    let out = u.run(&refs(&sh(
        &["--become-root", "--map-auto", "--suppress-chown", "--bind", &dir, "/out"],
        &format!("python3 -c \"{script}\""),
    )));
    assert_eq!(out.ok(), "ok\n");
    let owner = |n: &str| {
        let m = std::fs::metadata(s.path().join(n)).unwrap();
        (m.uid(), m.gid())
    };
    let (su, sg) = (u.subuid.0, u.subgid.0);
    assert_eq!(owner("a"), (su + 999, sg + 1999));
    assert_eq!(owner("b"), (su + 12344, u.gid));
    assert_eq!(owner("c"), (u.uid, sg + 2999));
    assert_eq!(owner("e"), (su + 3999, sg + 3999));
    assert_eq!(owner("d"), (u.uid, u.gid), "the unmapped chown was a no-op");
    // Without --suppress-chown the unmapped one fails, as the kernel says.
    let out = u.run(&refs(&sh(&["--become-root", "--map-auto", "--bind", &dir, "/out"], "chown 70000 /out/d")));
    assert_ne!(out.status, 0);
}

/// Runs the sandbox as `u` with `args` under strace, expects it to fail, and asserts that the
/// sandbox itself reaped its helper before exiting (the helper's pid comes back from the
/// sandbox's own wait4()), so no zombie or stray process is left.
fn fails_and_reaps_its_helper(u: &TestUser, args: &[&str]) {
    let trace = Scratch::new("subid-reap");
    let log = trace.join("log");
    // -ff: one file per process, so no call is split by another process's lines.
    let out = Command::new("strace")
        .args(["-ff", "-qq", "-e", "trace=execve,clone,wait4", "-o", &log, "setpriv"])
        .args([&format!("--reuid={}", u.uid), &format!("--regid={}", u.gid), "--clear-groups", "--"])
        .arg(binary())
        .args(args)
        .arg("/nonexistent")
        .current_dir("/")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    // The process that ran setpriv and then the sandbox.
    let sandbox = std::fs::read_dir(trace.path())
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .find(|text| text.contains("execve(\"/usr/bin/setpriv\""))
        .expect("trace of the sandbox");
    let helper = sandbox
        .lines()
        .find_map(|l| l.strip_prefix("clone(")?.rsplit_once("= ").map(|(_, pid)| pid.trim().to_string()))
        .expect("the sandbox forked a helper");
    assert!(
        sandbox
            .lines()
            .any(|l| l.starts_with(&format!("wait4({helper},")) && l.trim_end().ends_with(&format!("= {helper}"))),
        "the sandbox did not reap its helper:\n{sandbox}"
    );
}

#[test]
fn a_refused_map_leaves_no_zombie() {
    needs_root!();
    let u = TestUser::new("reap", &[]);
    let outside = (u.subuid.0 + u.subuid.1).to_string();
    fails_and_reaps_its_helper(&u, &["--map-users", &format!("1:{outside}:1")]);
}

/// Linux 6.7 and newer give each user namespace its own binfmt_misc.
fn kernel_has_private_binfmt() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut v = release.trim().split(['.', '-']).map(|n| n.parse::<u32>().unwrap_or(0));
    (v.next().unwrap_or(0), v.next().unwrap_or(0)) >= (6, 7)
}

#[test]
fn binfmt_register_with_ranges_needs_no_become_root() {
    needs_root!();
    if !kernel_has_private_binfmt() {
        return;
    }
    // A rule with an extension that matches nothing: registering is what is checked.
    let rule = ":mksbx8:E::mksbx8::/usr/bin/true:F";
    let show = "cat /binfmt/mksbx8 | head -1";
    // --map-auto without --become-root maps inside 0 (to the range's start): the instance's
    // root user exists, so the caller (who keeps its id) may register.
    let u = TestUser::new("binfmt", &[]);
    let out = u.run(&refs(&sh(&["--map-auto", "--binfmt-register", rule, "--binfmt-misc", "/binfmt"], show)));
    assert_eq!(out.ok(), "enabled\n");
    // Root with ranges has a user namespace of its own, so it may register too.
    let out =
        run(&refs(&sh(&["--map-users", "1:3000000:10", "--binfmt-register", rule, "--binfmt-misc", "/binfmt"], show)));
    assert_eq!(out.ok(), "enabled\n");
    // Neither touched the host's.
    assert!(!std::path::Path::new("/proc/sys/fs/binfmt_misc/mksbx8").exists());
    // Without inside 0 mapped, the refusal stands.
    let out = u.run(&refs(&sh(&["--map-users", &format!("1:{}:10", u.subuid.0), "--binfmt-register", rule], "true")));
    assert_eq!(out.status, 1);
    assert!(out.stderr.contains("belongs to its root user"), "{}", out.stderr);
}

#[test]
fn an_ignored_sigchld_changes_nothing() {
    needs_root!();
    // A caller that ignores SIGCHLD passes that on: the kernel then reaps children by itself, and
    // exit statuses would be lost. The verdict still arrives, and the tools' statuses too.
    let u = TestUser::new("sigign", &[]);
    let ignoring = |args: &[&str]| -> Run {
        let mut c = u.command(std::path::Path::new("/usr/bin/python3"));
        c.args([
            "-c",
            "import os, signal, sys; signal.signal(signal.SIGCHLD, signal.SIG_IGN); os.execv(sys.argv[1], sys.argv[1:])",
        ]);
        c.arg(binary()).args(args);
        finish(c.output().unwrap())
    };
    // cat, not sh: a shell resets SIGCHLD for itself.
    let mut args: Vec<&str> = BASE.to_vec();
    args.extend(["--become-root", "--map-auto", "--", "cat", "/proc/self/status", "/proc/self/uid_map"]);
    let out = ignoring(&args);
    let text = out.ok();
    let ignored = text.lines().find_map(|l| l.strip_prefix("SigIgn:")).unwrap().trim();
    let ignored = u64::from_str_radix(ignored, 16).unwrap();
    assert_ne!(ignored & (1 << (libc::SIGCHLD - 1)), 0, "SIGCHLD was ignored all along");
    let uid_map: Vec<&str> = text.lines().rev().take(2).collect();
    assert_eq!(
        map_lines(&format!("{}\n{}\n", uid_map[1], uid_map[0])),
        [[0, u.uid as u64, 1], [1, u.subuid.0 as u64, u.subuid.1 as u64 - 1]]
    );
    let outside = u.subuid.0 + u.subuid.1;
    let out = ignoring(&["--map-users", &format!("1:{outside}:1"), "true"]);
    assert_eq!(out.status, 1);
    assert!(out.stderr.contains("not allowed (exit status 1)"), "{}", out.stderr);
}

#[test]
fn a_failure_after_the_helper_started_leaves_nothing_behind() {
    needs_root!();
    // Too many separate spans for the --suppress-chown filter: refused after the helper was
    // forked (it must exist before the filter) and before unshare(); the helper is told to give
    // up and reaped.
    let u = TestUser::new("late", &[]);
    let mut args = vec!["--become-root".to_string(), "--suppress-chown".to_string()];
    for i in 0..60u32 {
        args.push("--map-users".into());
        args.push(format!("{}:{}:1", 2 * i + 1, u.subuid.0 + i));
    }
    assert_eq!(
        refused_as(Some(&u), &refs(&args)),
        "mkosi-sandbox: --suppress-chown: too many id ranges for the seccomp filter\n"
    );
    fails_and_reaps_its_helper(&u, &refs(&args));
}

/// The sandbox three deep as mkosi-chroot nests it: ranges (`--map-auto`, `--become-root`)
/// outside, plain sandboxes inside, `--suppress-chown` at the innermost. The inner ones run as
/// root of the outer user namespace, so they make no user namespace of their own: chown to a
/// mapped id really happens, and one to an unmapped id fails as the kernel says (the original
/// suppresses chown only in a user namespace of the sandbox's own).
#[test]
fn nested_inside_a_mapped_range() {
    needs_root!();
    let u = TestUser::new("nest", &[]);
    let s = Scratch::new("subid-nest");
    let dir = s.join("");
    let bin = binary();
    let bin_dir = bin.parent().unwrap().to_str().unwrap().to_string();
    let mut args: Vec<String> = Vec::new();
    // The outer level binds the scratch directory to /out, the inner ones /out to itself.
    let level = |args: &mut Vec<String>, out: &str, extra: &[&str]| {
        args.extend(BASE.iter().map(|a| a.to_string()));
        args.extend(["--ro-bind", &bin_dir, &bin_dir, "--bind", out, "/out"].map(String::from));
        args.extend(extra.iter().map(|a| a.to_string()));
    };
    level(&mut args, &dir, &["--become-root", "--map-auto", "--", bin.to_str().unwrap()]);
    level(&mut args, "/out", &["--", bin.to_str().unwrap()]);
    level(&mut args, "/out", &["--suppress-chown", "--"]);
    args.extend(["sh", "-c"].map(String::from));
    args.push(
        "id -u; touch /out/a /out/b; chown 1000:2000 /out/a && echo mapped-ok; \
         chown 70000:70000 /out/b 2>/dev/null || echo unmapped-refused"
            .into(),
    );
    let out = u.run(&refs(&args));
    assert_eq!(out.ok(), "0\nmapped-ok\nunmapped-refused\n");
    let owner = |n: &str| {
        let m = std::fs::metadata(s.path().join(n)).unwrap();
        (m.uid(), m.gid())
    };
    assert_eq!(owner("a"), (u.subuid.0 + 999, u.subgid.0 + 1999));
    assert_eq!(owner("b"), (u.uid, u.gid));
}
