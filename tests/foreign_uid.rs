//! mkosi 27's foreign-UID options: accepted where its own sandbox needs no systemd service (root
//! with CAP_SYS_ADMIN and CAP_CHOWN: `--map-foreign` is nothing to do; `--map-delegate 0`), refused
//! in one line naming the service otherwise, and then the command never runs.

mod common;
use common::*;

use std::process::{Command, Stdio};

/// What the command saw: its uid map and its effective capabilities, one line each.
const PROBE: &str = "tr -s ' ' < /proc/self/uid_map; grep ^CapEff /proc/self/status";

#[test]
fn map_foreign_as_root_is_nothing_to_do() {
    needs_root!();
    let plain = run(&refs(&sh(&[], PROBE)));
    let foreign = run(&refs(&sh(&["--map-foreign", "--map-delegate", "0"], PROBE)));
    assert_eq!(foreign.ok(), plain.ok());
    assert!(foreign.stdout.starts_with(" 0 0 4294967295\n"), "no user namespace: {}", foreign.stdout);
    // With --become-root too: root already is root, no user namespace either (as 27.1).
    let become_root = run(&refs(&sh(&["--map-foreign", "--become-root"], PROBE)));
    assert_eq!(become_root.ok(), plain.stdout);
}

/// Runs the sandbox (as root, or as nobody) with `args`, then a command that would leave a
/// marker on the host; asserts the one-line refusal and that the command never ran.
fn refused(nobody: bool, setpriv: &[&str], args: &[&str]) -> String {
    let s = Scratch::new("foreign");
    let marker = s.join("ran");
    let mut full: Vec<String> = BASE.iter().map(|a| a.to_string()).collect();
    full.extend(["--bind".into(), s.join(""), s.join("")]);
    full.extend(args.iter().map(|a| a.to_string()));
    full.extend(["--".into(), "touch".into(), marker.clone()]);
    let out = if nobody {
        run_as_nobody(&refs(&full))
    } else {
        let mut cmd = Command::new("setpriv");
        cmd.args(setpriv).arg("--").arg(binary()).args(&full).stdin(Stdio::null());
        let out = cmd.output().expect("spawn setpriv");
        Run {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    };
    assert_eq!(out.status, 1, "stderr: {}", out.stderr);
    assert!(!std::path::Path::new(&marker).exists(), "the command ran");
    assert_eq!(out.stderr.lines().count(), 1, "one line: {:?}", out.stderr);
    out.stderr
}

#[test]
fn map_foreign_unprivileged_needs_nsresourced() {
    needs_root!();
    let e = refused(true, &[], &["--map-foreign"]);
    assert!(e.starts_with("mkosi-sandbox: --map-foreign: needs systemd-nsresourced"), "{e}");
    let e = refused(true, &[], &["--become-root", "--map-foreign"]);
    assert!(e.starts_with("mkosi-sandbox: --map-foreign: needs systemd-nsresourced"), "{e}");
}

#[test]
fn map_foreign_as_root_without_cap_chown_needs_nsresourced() {
    needs_root!();
    let e = refused(false, &["--bounding-set=-chown", "--inh-caps=-chown"], &["--map-foreign"]);
    assert!(e.starts_with("mkosi-sandbox: --map-foreign: needs systemd-nsresourced"), "{e}");
    // The same root without --map-foreign is fine: the refusal is the option's, not the caps'.
    let out = Command::new("setpriv")
        .args(["--bounding-set=-chown", "--"])
        .arg(binary())
        .args(BASE)
        .args(["--", "true"])
        .status()
        .unwrap();
    assert!(out.success());
}

#[test]
fn foreign_binds_and_delegation_name_the_services() {
    needs_root!();
    for nobody in [false, true] {
        let e = refused(nobody, &[], &["--bind-foreign", "/usr", "/mnt"]);
        assert_eq!(
            e,
            "mkosi-sandbox: --bind-foreign /usr /mnt: needs systemd-mountfsd and systemd-nsresourced, which this sandbox does not use\n"
        );
        let e = refused(nobody, &[], &["--ro-bind-foreign", "/usr", "/mnt"]);
        assert!(e.starts_with("mkosi-sandbox: --ro-bind-foreign /usr /mnt: needs systemd-mountfsd"), "{e}");
        let e = refused(nobody, &[], &["--map-delegate", "1"]);
        assert!(e.starts_with("mkosi-sandbox: --map-delegate 1: needs systemd-nsresourced"), "{e}");
    }
}

#[test]
fn help_documents_the_foreign_options() {
    // Needs no root: --help is answered before anything else.
    let out = Command::new(binary()).arg("--help").stdin(Stdio::null()).output().expect("spawn");
    let out = Run {
        status: out.status.code().unwrap_or(-1),
        stdout: String::new(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    };
    assert_eq!(out.status, 0, "{}", out.stderr);
    for option in ["--map-foreign", "--map-delegate N", "--bind-foreign SRC DST", "--ro-bind-foreign SRC DST"] {
        assert!(out.stderr.contains(option), "{option} missing from --help");
    }
}
