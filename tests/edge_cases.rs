//! Edge cases the differential suite cannot compare (options the 25.3 original lacks, and
//! deliberate differences): relative sources made by an earlier destination, `..` binds, and
//! RLIMIT_FSIZE.

mod common;
use common::*;

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

#[test]
fn relative_source_made_by_its_own_destination_is_bound() {
    needs_root!();
    // The original makes DST (and its parents) before it opens SRC.
    let out = run(&refs(&sh(
        &["--tmpfs", "/t", "--bind", "+/t/new", "/t/new/sub", "--ro-bind", "+/a", "/a"],
        "test -d /t/new/sub/sub && test -d /a && echo bound",
    )));
    assert_eq!(out.ok(), "bound\n");
    // A source that stays missing is still an error, naming the option.
    let r = run(&refs(&sh(&["--bind", "+/nope", "/elsewhere"], "true")));
    assert_eq!(r.status, 1);
    assert!(r.stderr.starts_with("mkosi-sandbox: --bind +/nope /elsewhere: "), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1);
}

#[test]
fn dotdot_binds_are_mounted_unless_really_nested() {
    needs_root!();
    let s = Scratch::new("dotdot");
    for d in ["vt/x", "vt/y", "d1"] {
        std::fs::create_dir_all(s.path().join(d)).unwrap();
    }
    std::fs::write(s.path().join("d1/marker"), "d1\n").unwrap();
    std::fs::write(s.path().join("vt/y/marker"), "y\n").unwrap();
    let (vt, d1, nested) = (s.join("vt"), s.join("vt/../d1"), s.join("vt/x/../y"));
    // Not below /home at all: the original drops it as implied; we mount it.
    let out = run(&refs(&sh(&["--bind", &vt, "/home", "--bind", &d1, "/home/../d1"], "cat /d1/marker")));
    assert_eq!(out.ok(), "d1\n");
    // Really nested: one mount, as in the original.
    let out = run(&refs(&sh(
        &["--bind", &vt, "/home", "--bind", &nested, "/home/x/../y"],
        "cat /home/y/marker; grep -c ' /home' /proc/self/mountinfo",
    )));
    assert_eq!(out.ok(), "y\n1\n");
}

/// The sandbox under RLIMIT_FSIZE=0, with SIGXFSZ ignored by the caller when `ignore`.
fn run_fsize0(args: &[&str], ignore: bool) -> (i32, String) {
    use std::os::unix::process::ExitStatusExt;
    let mut cmd = Command::new("prlimit");
    cmd.args(["--fsize=0", "--"]).arg(binary()).args(args).stdin(Stdio::null());
    if ignore {
        // SAFETY: signal() is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                Ok(())
            });
        }
    }
    let out = cmd.output().unwrap();
    let status = out.status.code().unwrap_or_else(|| 128 + out.status.signal().unwrap_or(0));
    (status, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn write_past_rlimit_fsize_is_one_line_and_the_disposition_is_restored() {
    needs_root!();
    require_root();
    let (status, stderr) = run_fsize0(&refs(&sh(&["--write", "data", "/f"], "true")), false);
    assert_eq!(status, 1, "{stderr}");
    assert_eq!(stderr, "mkosi-sandbox: --write data /f: File too large\n");
    // Set-up ignored SIGXFSZ; the command gets the caller's disposition back: default (killed) ...
    let script = "echo x > /tmp/big; echo survived $?";
    let (status, _) = run_fsize0(&refs(&sh(&["--tmpfs", "/tmp", "--write", "", "/f"], script)), false);
    assert_eq!(status, 128 + libc::SIGXFSZ, "the command must die of SIGXFSZ as it would outside");
    // ... or ignored, when the caller ignored it.
    let (status, stderr) = run_fsize0(&refs(&sh(&["--tmpfs", "/tmp", "--write", "", "/f"], script)), true);
    assert_eq!(status, 0, "{stderr}");
}
