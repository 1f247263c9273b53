//! End to end: foreign-architecture sandboxes. An emulator registered with `--binfmt-register`
//! lands in the sandbox's own binfmt_misc instance (Linux >= 6.7), runs a foreign static
//! busybox from a root that holds nothing else, and never shows up in the host's instance.
//!
//! Needs Debian's busybox-static for the foreign architecture (fetched by foreign-busybox.sh)
//! and qemu-user-static's binfmt.d rule for it.

mod common;
use common::*;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const HOST_BINFMT: &str = "/proc/sys/fs/binfmt_misc";

/// The other architecture: what `uname -m` prints there, its rule and its busybox.
struct Foreign {
    machine: &'static str,
    rule_name: &'static str,
    rule_file: &'static str,
    busybox: String,
}

/// arm64 on x86_64 hosts, x86_64 on aarch64 hosts; None (with a message) where that cannot run.
fn foreign() -> Option<Foreign> {
    let (debian_arch, machine, rule_name) = match std::env::consts::ARCH {
        "x86_64" => ("arm64", "aarch64", "qemu-aarch64"),
        "aarch64" => ("amd64", "x86_64", "qemu-x86_64"),
        other => {
            eprintln!("binfmt: skipped, no foreign-architecture case for {other} hosts");
            return None;
        }
    };
    let rule_file = match rule_name {
        "qemu-aarch64" => "/usr/lib/binfmt.d/qemu-aarch64.conf",
        _ => "/usr/lib/binfmt.d/qemu-x86_64.conf",
    };
    if !Path::new(rule_file).exists() {
        // x86_64 is the case the project must cover: CI installs qemu-user-static.
        assert_ne!(machine, "aarch64", "{rule_file} missing: apt-get install qemu-user-static");
        eprintln!("binfmt: skipped, {rule_file} missing (qemu-user-static with {rule_name})");
        return None;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/foreign-busybox.sh");
    let out = Command::new("sh").args([script, debian_arch]).stderr(Stdio::inherit()).output().expect("spawn sh");
    if !out.status.success() {
        assert_ne!(machine, "aarch64", "cannot fetch busybox-static:{debian_arch}");
        eprintln!("binfmt: skipped, no busybox-static:{debian_arch} (and so no {machine} binary to run)");
        return None;
    }
    let cached = String::from_utf8(out.stdout).unwrap().trim().to_string();
    // The cache is in the checkout, which nobody may not reach (a clone in a 0700 home): stage a
    // world-readable copy beside the binary's, as binary() does.
    let busybox = stage(Path::new(&cached), &format!("busybox-{debian_arch}"));
    Some(Foreign { machine, rule_name, rule_file, busybox })
}

/// Copies `file` (mode 755) into the world-readable directory that holds the binary under test.
fn stage(file: &Path, name: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let dir = binary().parent().unwrap().to_path_buf();
    let staging = dir.join(format!(".{name}.{}", std::process::id()));
    std::fs::copy(file, &staging).unwrap_or_else(|e| panic!("copy {}: {e}", file.display()));
    std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o755)).unwrap();
    let target = dir.join(name);
    std::fs::rename(&staging, &target).unwrap();
    target.to_str().unwrap().to_string()
}

/// A root directory holding only the foreign busybox (and an empty /x for hand-shakes).
fn foreign_root(f: &Foreign) -> Scratch {
    use std::os::unix::fs::PermissionsExt;
    let root = Scratch::new("foreign-root");
    std::fs::create_dir(root.path().join("bin")).unwrap();
    std::fs::copy(&f.busybox, root.path().join("bin/busybox")).unwrap();
    std::fs::create_dir(root.path().join("x")).unwrap();
    for (p, mode) in [("bin", 0o755), ("bin/busybox", 0o755), ("x", 0o777)] {
        std::fs::set_permissions(root.path().join(p), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    root
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// The entries of the host's binfmt_misc instance. Where the host has none mounted, it is
/// mounted in a throwaway mount namespace (that changes nothing the host sees).
fn host_entries() -> Vec<String> {
    // Where systemd set up an automount, this access mounts it, as any reader's would.
    let _ = std::fs::read_dir(HOST_BINFMT);
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    if mount_entry(&mountinfo, HOST_BINFMT).is_some_and(|e| e.0 == "binfmt_misc") {
        return names_in(Path::new(HOST_BINFMT));
    }
    let script = format!("mount -t binfmt_misc binfmt_misc {HOST_BINFMT} && ls -1 {HOST_BINFMT}");
    let out =
        Command::new("unshare").args(["--mount", "--propagation", "private", "sh", "-c", &script]).output().unwrap();
    assert!(out.status.success(), "cannot read the host's binfmt_misc: {}", String::from_utf8_lossy(&out.stderr));
    let mut names: Vec<String> = String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect();
    names.sort();
    names
}

fn bind_root<'a>(root: &'a Scratch, f: &'a Foreign, extra: &[&'a str], command: &[&'a str]) -> Vec<String> {
    let mut args: Vec<String> = vec!["--bind".into(), root.0.to_str().unwrap().into(), "/".into()];
    args.extend(["--binfmt-register".into(), f.rule_file.into()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push("--".into());
    args.extend(command.iter().map(|s| s.to_string()));
    args
}

const SCRIPT: &str = "for i in 1 2 3; do echo $((i * i)); done; echo \"$(busybox uname -m) $(busybox id -u)\"";

#[test]
fn a_foreign_busybox_runs_from_a_root_without_an_emulator() {
    needs_root!();
    let Some(f) = foreign() else { return };
    let root = foreign_root(&f);
    let as_nobody = run_as_nobody(&refs(&bind_root(&root, &f, &["--become-root"], &["/bin/busybox", "uname", "-m"])));
    assert_eq!(as_nobody.ok().trim(), f.machine);
    let script = run_as_nobody(&refs(&bind_root(&root, &f, &["--become-root"], &["/bin/busybox", "sh", "-c", SCRIPT])));
    assert_eq!(script.ok(), format!("1\n4\n9\n{} 0\n", f.machine));
    // Nothing but busybox in the root: the emulator was opened on the host.
    assert_eq!(names_in(root.path()), ["bin", "x"]);
    assert_eq!(names_in(&root.path().join("bin")), ["busybox"]);

    // Without the rule the same binary cannot run (unless the host registered an emulator).
    if !host_entries().iter().any(|e| e == f.rule_name) {
        let root_arg = root.0.to_str().unwrap();
        let plain = run_as_nobody(&["--bind", root_arg, "/", "--become-root", "--", "/bin/busybox", "true"]);
        assert_eq!(plain.status, 1, "{}", plain.stderr);
        assert_eq!(plain.stderr, "mkosi-sandbox: /bin/busybox: execvp: Exec format error\n");
    }
}

#[test]
fn the_hosts_registrations_stay_as_they_are() {
    needs_root!();
    let Some(f) = foreign() else { return };
    let root = foreign_root(&f);
    let before = host_entries();
    let wait = "busybox uname -m > /x/ready; n=0; while [ ! -e /x/done ] && [ $n -lt 300 ]; do busybox sleep 0.1; \
                n=$((n + 1)); done";
    let mut child = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(binary())
        .args(bind_root(&root, &f, &["--become-root"], &["/bin/busybox", "sh", "-c", wait]))
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let ready = root.path().join("x/ready");
    let start = Instant::now();
    while !ready.exists() && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let during = host_entries();
    std::fs::write(root.path().join("x/done"), "").unwrap();
    let status = child.wait().unwrap();
    assert!(status.success());
    assert_eq!(std::fs::read_to_string(&ready).unwrap().trim(), f.machine, "the emulator ran while we looked");
    let after = host_entries();

    assert_eq!(during, before, "the host's instance changed while the sandbox ran");
    assert_eq!(after, before, "the host's instance changed");
    if !before.iter().any(|e| e == f.rule_name) {
        assert!(!during.iter().any(|e| e == f.rule_name));
    }
}

/// A host-backed root (/usr and friends) with the foreign busybox at /foreign/busybox.
fn host_backed<'a>(f: &'a Foreign, extra: &[&'a str], script: &str) -> Vec<String> {
    let mut args = vec!["--ro-bind", f.busybox.as_str(), "/foreign/busybox", "--binfmt-register", f.rule_file];
    args.extend(extra);
    sh(&args, script)
}

#[test]
fn binfmt_misc_inside_is_the_instance_with_the_rule() {
    needs_root!();
    let Some(f) = foreign() else { return };
    let script = format!(
        "cat {HOST_BINFMT}/status; cat {HOST_BINFMT}/{}; ls {HOST_BINFMT} | tr '\\n' ' '; echo; \
         stat -c %a {HOST_BINFMT}; /foreign/busybox uname -m",
        f.rule_name
    );
    {
        let result = run_as_nobody(&refs(&host_backed(&f, &["--binfmt-misc", HOST_BINFMT, "--become-root"], &script)));
        let out = result.ok();
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some("enabled"));
        assert_eq!(lines.next(), Some("enabled"));
        let interpreter = std::fs::read_to_string(f.rule_file).unwrap();
        let interpreter = interpreter.trim().split(':').nth(6).unwrap().to_string();
        assert_eq!(lines.next(), Some(format!("interpreter {interpreter}").as_str()));
        let flags = lines.next().unwrap();
        assert!(flags.starts_with("flags: ") && flags.contains('F'), "{flags}");
        let listing = out.lines().find(|l| l.contains("register")).unwrap();
        assert_eq!(listing.trim(), format!("{} register status", f.rule_name));
        assert!(out.ends_with(&format!("\n755\n{}\n", f.machine)), "{out}");
    }
}

#[test]
fn binfmt_misc_alone_is_private_in_a_user_namespace() {
    needs_root!();
    let script = "stat -c %a /t/a /t/a/b; cat /t/a/b/status; ls /t/a/b | tr '\\n' ' '";
    let out = run_as_nobody(&refs(&sh(&["--tmpfs", "/t", "--binfmt-misc", "/t/a/b"], script)));
    assert_eq!(out.ok(), "755\n755\nenabled\nregister status ");
    // Root without a user namespace gets the host's instance, as with the original.
    let out = run(&refs(&sh(&["--binfmt-misc", "/b"], "grep ' /b ' /proc/self/mountinfo")));
    assert!(out.ok().contains(" - binfmt_misc "), "{}", out.stdout);
}

#[test]
fn the_instance_leaves_no_trace_inside() {
    needs_root!();
    let Some(f) = foreign() else { return };
    let script = "grep -c binfmt_misc /proc/self/mountinfo; ls -a / | tr '\\n' ' '; echo; ls -a /.. | tr '\\n' ' '; \
                  echo; unshare --user --map-root-user /foreign/busybox uname -m";
    let out = run_as_nobody(&refs(&host_backed(&f, &["--become-root"], script)));
    let text = out.ok();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "0", "no binfmt_misc mount is visible");
    assert_eq!(lines[1], lines[2], "/.. is /");
    // A nested user namespace may be made (the sandbox is not chrooted for the kernel) and
    // inherits the instance.
    assert_eq!(lines[3], f.machine);
}

/// Runs as nobody unless `as_root`; asserts one line on stderr, status 1, and that the command
/// did not run.
fn refused(as_root: bool, extra: &[&str]) -> String {
    let marker = Scratch::new("binfmt-marker");
    let m = marker.join("ran");
    let mut args = vec!["--bind", marker.0.to_str().unwrap(), marker.0.to_str().unwrap()];
    args.extend(extra);
    let script = format!("echo ran > {m}");
    let argv = sh(&args, &script);
    let out = if as_root { run(&refs(&argv)) } else { run_as_nobody(&refs(&argv)) };
    assert_eq!(out.status, 1, "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(!Path::new(&m).exists(), "the command ran");
    out.stderr
}

#[test]
fn without_a_root_user_namespace_registering_is_refused() {
    needs_root!();
    let Some(f) = foreign() else { return };
    let before = host_entries();
    // Root's sandbox has no user namespace, with or without --become-root (as in the original).
    for extra in [&[][..], &["--become-root"][..]] {
        let mut args = vec!["--binfmt-register", f.rule_file];
        args.extend(extra);
        assert_eq!(
            refused(true, &args),
            "mkosi-sandbox: --binfmt-register: needs a user namespace of the sandbox's own, or the host's \
             binfmt_misc would change; a root caller's sandbox has none without id ranges: add --map-users and \
             --map-groups (or --map-auto), or run as a regular user with --become-root\n"
        );
    }
    assert_eq!(
        refused(false, &["--binfmt-register", f.rule_file]),
        "mkosi-sandbox: --binfmt-register: the sandbox's binfmt_misc belongs to its root user, who exists only \
         with --become-root: pass --become-root\n"
    );
    assert_eq!(host_entries(), before);
}

#[test]
fn bad_rules_are_one_line_naming_the_field() {
    needs_root!();
    let dir = Scratch::new("binfmt-rules");
    let bad_file = dir.join("bad.conf");
    std::fs::write(&bad_file, "# comment\n\n:ok:E::ok::/bin/sh:\n:x:M:1:\\x7f:\\xff\\xff:/bin/sh:\n").unwrap();
    let not_executable = dir.join("not-executable");
    std::fs::write(&not_executable, "#!/bin/sh\n").unwrap();
    let comments = dir.join("comments.conf");
    std::fs::write(&comments, "# only\n; comments\n").unwrap();
    let cases: Vec<(Vec<String>, String)> = vec![
        (
            vec![":x:Q::ab::/bin/sh:".into()],
            "--binfmt-register :x:Q::ab::/bin/sh:: type: must be M (magic) or E (extension)".into(),
        ),
        (
            vec![":x:M::\\x7g::/bin/sh:".into()],
            "--binfmt-register :x:M::\\x7g::/bin/sh:: magic: missing delimiter, or \\x without two hex digits".into(),
        ),
        (
            vec![":x:E::ab::/bin/sh:Z".into()],
            "--binfmt-register :x:E::ab::/bin/sh:Z: flags: only P, O, C and F are allowed".into(),
        ),
        (vec![bad_file.clone()], format!("--binfmt-register {bad_file}:4: mask: not as long as magic")),
        (vec![comments.clone()], format!("--binfmt-register {comments}: no register line in this file")),
        (
            vec![dir.join("missing.conf")],
            format!("--binfmt-register {}: No such file or directory", dir.join("missing.conf")),
        ),
        (
            vec![":x:E::ab::/nonexistent/qemu:".into()],
            "--binfmt-register :x:E::ab::/nonexistent/qemu: /nonexistent/qemu: No such file or directory".into(),
        ),
        (
            vec![":x:E::ab::/bin/sh:".into(), ":x:E::cd::/bin/sh:".into()],
            "--binfmt-register :x:E::cd::/bin/sh:: name: already registered by an earlier rule".into(),
        ),
        (
            vec![":x:E::ab::/usr:".into()],
            "--binfmt-register :x:E::ab::/usr: /usr: interpreter: not a regular file".into(),
        ),
        // The kernel's own refusal (an interpreter it may not execute) passes its errno on.
        (
            vec![format!(":x:E::ab::{not_executable}:")],
            format!("--binfmt-register :x:E::ab::{not_executable}:: Permission denied"),
        ),
    ];
    for (rules, want) in cases {
        let mut extra: Vec<&str> = vec!["--become-root"];
        for r in &rules {
            extra.extend(["--binfmt-register", r.as_str()]);
        }
        assert_eq!(refused(false, &extra), format!("mkosi-sandbox: {want}\n"), "{rules:?}");
    }
    let out = run(&["--binfmt-register"]);
    assert_eq!((out.status, out.stderr.as_str()), (1, "mkosi-sandbox: --binfmt-register: missing argument\n"));
}
