//! Bad input: one line on stderr naming the option, the path and the error; exit 1; the command
//! never runs; no mount reaches the caller's namespace.

mod common;
use common::*;

/// Runs `args` followed by a command that would leave a marker on the host if it ran.
fn refused(args: &[&str]) -> String {
    let s = Scratch::new("bad");
    let marker = s.join("ran");
    let before = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut full: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let d = s.join("");
    full.splice(0..0, ["--bind".to_string(), d.clone(), d.clone()]);
    full.splice(0..0, BASE.iter().map(|s| s.to_string()));
    full.extend(["--".into(), "touch".into(), marker.clone()]);
    let out = run(&refs(&full));
    assert_eq!(out.status, 1, "stderr: {}", out.stderr);
    assert!(!std::path::Path::new(&marker).exists(), "the command ran");
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr.lines().count(), 1, "one line: {:?}", out.stderr);
    assert!(!out.stderr.contains("panicked") && !out.stderr.contains("Traceback"));
    // Nothing reached the caller's namespace: not the workspace, not the bind of this test's own
    // directory (a path no other test, here or in a parallel checkout, mounts).
    let after = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let ours = |text: &str| text.lines().filter(|l| l.contains(d.trim_end_matches('/'))).count();
    assert_eq!((ours(&before), ours(&after)), (0, 0), "a mount leaked: {after}");
    assert!(!after.contains("newroot"), "the workspace leaked: {after}");
    out.stderr
}

#[test]
fn missing_arguments() {
    needs_root!();
    for (args, want) in [
        (&["--bind", "/x"][..], "mkosi-sandbox: --bind /x: missing argument\n"),
        (&["--ro-bind"][..], "mkosi-sandbox: --ro-bind: missing argument\n"),
        (&["--setenv", "A"][..], "mkosi-sandbox: --setenv A: missing argument\n"),
        (&["--chdir"][..], "mkosi-sandbox: --chdir: missing argument\n"),
        (&["--overlay-lowerdir"][..], "mkosi-sandbox: --overlay-lowerdir: missing argument\n"),
    ] {
        let out = run(args);
        assert_eq!(out.status, 1);
        assert_eq!(out.stderr, want);
    }
}

#[test]
fn unknown_options_and_relative_destinations() {
    needs_root!();
    assert_eq!(refused(&["--frobnicate"]), "mkosi-sandbox: --frobnicate: unrecognized option\n");
    assert_eq!(refused(&["--tmpfs", "tmp"]), "mkosi-sandbox: --tmpfs tmp: destination is not an absolute path\n");
    assert_eq!(
        refused(&["--ro-bind", "/usr", "usr"]),
        "mkosi-sandbox: --ro-bind /usr usr: destination is not an absolute path\n"
    );
    assert_eq!(refused(&["--dir", ""]), "mkosi-sandbox: --dir : destination is not an absolute path\n");
}

#[test]
fn missing_bind_sources() {
    needs_root!();
    assert_eq!(
        refused(&["--ro-bind", "/nope", "/x"]),
        "mkosi-sandbox: --ro-bind /nope /x: No such file or directory\n"
    );
    assert_eq!(refused(&["--bind", "+/nope", "/x"]), "mkosi-sandbox: --bind +/nope /x: No such file or directory\n");
}

#[test]
fn failing_syscalls_name_the_operation() {
    needs_root!();
    // A write into a read-only bind.
    assert_eq!(
        refused(&["--write", "x", "/usr/new-file"]),
        "mkosi-sandbox: --write x /usr/new-file: Read-only file system\n"
    );
    // A chdir to nowhere.
    assert_eq!(refused(&["--chdir", "/nowhere"]), "mkosi-sandbox: --chdir /nowhere: No such file or directory\n");
    // An overlay without lower directories.
    let e = refused(&["--overlay", "/o"]);
    assert!(e.starts_with("mkosi-sandbox: --overlay /o: "), "{e}");
}

#[test]
fn any_bytes_in_the_arguments_give_one_line() {
    needs_root!();
    // Control characters escaped as Python's repr() shows them, bytes that are not UTF-8 as \xNN.
    assert_eq!(refused(&["--ro-bind", "3", "/a\nb"]), "mkosi-sandbox: --ro-bind 3 /a\\nb: No such file or directory\n");
    assert_eq!(
        refused(&["--dir", "x\ty\x1b[2J"]),
        "mkosi-sandbox: --dir x\\ty\\x1b[2J: destination is not an absolute path\n"
    );
    // pmbootstrap's passwd into a read-only /usr: the data once, escaped, its middle left out.
    let passwd = "root:x:0:0:root:/root:/bin/sh\n".repeat(4) + &"pmos:x:10000:10000::/home/pmos:/bin/sh\n".repeat(6);
    let e = refused(&["--write", &passwd, "/usr/passwd"]);
    assert!(e.starts_with("mkosi-sandbox: --write root:x:0:0:root:/root:/bin/sh\\nroot:x:0:0:root:"), "{e}");
    assert!(e.contains("…") && e.ends_with("/home/pmos:/bin/sh\\n /usr/passwd: Read-only file system\n"), "{e}");
    assert!(e.len() < 300, "{e}");
}

#[test]
fn over_full_arena_is_a_clean_error() {
    needs_root!();
    let mut args: Vec<String> = Vec::new();
    for _ in 0..=1024 {
        args.extend(["--overlay-lowerdir".into(), "/usr".into()]);
    }
    let e = refused(&refs(&args));
    assert_eq!(e, "mkosi-sandbox: too many --overlay-lowerdir entries (max 1024)\n");
    let mut args: Vec<String> = Vec::new();
    for _ in 0..=8192 {
        args.extend(["--dir".into(), "/a".into()]);
    }
    assert_eq!(refused(&refs(&args)), "mkosi-sandbox: too many operations (max 8192)\n");
}

#[test]
fn help_and_version_exit_zero_on_stderr() {
    needs_root!();
    let out = run(&["--version"]);
    assert_eq!((out.status, out.stdout.as_str(), out.stderr.as_str()), (0, "", "26~devel\n"));
    let out = run(&["--help"]);
    assert_eq!(out.status, 0);
    assert!(out.stderr.starts_with("mkosi-sandbox [OPTIONS...] COMMAND [ARGUMENTS...]\n"));
    assert!(out.stderr.contains("--ro-bind SRC DST") && out.stderr.contains("Limits: 8192 operations"));
}
