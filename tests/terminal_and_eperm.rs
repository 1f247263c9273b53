//! /dev/console when stderr is a terminal (and no crash when its node is unreachable), `--help`'s
//! highlighted summary there, and the one line naming the call and the remedy when the kernel
//! forbids a user namespace.

mod common;
use common::*;
use std::process::Command;

fn under_pty(command: &str) -> String {
    require_root();
    // script(1) gives the command a pseudo-terminal on stdin, stdout and stderr.
    let out = Command::new("script").args(["-qec", command, "/dev/null"]).output().expect("script(1) from util-linux");
    String::from_utf8_lossy(&out.stdout).replace('\r', "")
}

#[test]
fn console_is_the_callers_terminal() {
    needs_root!();
    let cmd = format!(
        "{} {} -- sh -c 'test -c /dev/console && echo console-is-a-tty; grep -c \" /dev/console \" /proc/self/mountinfo'",
        binary().display(),
        BASE.join(" ")
    );
    assert_eq!(under_pty(&cmd).trim(), "console-is-a-tty\n1");
}

#[test]
fn help_on_a_terminal_highlights_its_summary_as_the_original_does() {
    needs_root!();
    let help = under_pty(&format!("{} --help", binary().display()));
    assert!(
        help.starts_with(
            "mkosi-sandbox [OPTIONS...] COMMAND [ARGUMENTS...]\n\n\
             \x1b[0;1;39mRun the specified command in a custom sandbox.\x1b[0m\n\n  -h --help "
        ),
        "{help:?}"
    );
}

#[test]
fn unreachable_terminal_node_means_no_console() {
    needs_root!();
    // Hide /dev/pts in a private mount namespace: stderr's pty has no reachable node any more.
    let cmd = format!(
        "unshare -m --propagation private sh -c 'mount -t tmpfs tmpfs /dev/pts && exec {} {} -- sh -c \"test -e /dev/console || echo no-console\"'",
        binary().display(),
        BASE.join(" ")
    );
    assert_eq!(under_pty(&cmd).trim(), "no-console");
}

#[test]
fn forbidden_user_namespace_is_one_line_with_the_remedy() {
    needs_root!();
    // The kernel refuses CLONE_NEWUSER to a chrooted process: EPERM, as with restricted userns.
    let s = Scratch::new("chroot");
    let root = s.join("root");
    std::fs::create_dir(&root).unwrap();
    let script = format!(
        "mount --rbind / {root} && exec chroot {root} setpriv --reuid=65534 --regid=65534 --clear-groups -- {} --become-root -- true",
        binary().display()
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .env("TERM", "dumb")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr,
        "mkosi-sandbox: unshare: Operation not permitted (unprivileged user namespaces are refused here: by \
         kernel.unprivileged_userns_clone=0, kernel.apparmor_restrict_unprivileged_userns=1, a chroot, or a \
         container's seccomp profile (Docker's default without CAP_SYS_ADMIN); allow them or run as root)\n"
    );
}
