//! End to end: the sandbox confined as container runtimes confine it, by a seccomp filter this
//! test installs before exec (inherited by everything after). Docker's default profile, for a
//! container without CAP_SYS_ADMIN, answers EPERM to the new mount API and to a user namespace
//! (unshare or clone with CLONE_NEWUSER) and ENOSYS to clone3; gVisor-like runtimes and qemu-user
//! answer ENOSYS to calls they do not know. Each refusal must be one line naming the option, the
//! call, the errno and what would make it work; and where only mount_setattr() is missing (as on
//! Linux 5.10), `--ro-bind` must still give a read-only tree, submounts included.

mod common;
use common::*;

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// The calls of the new mount API.
const MOUNT_API: &[libc::c_long] = &[
    libc::SYS_open_tree,
    libc::SYS_move_mount,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_mount_setattr,
];

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xc000_003e; // AUDIT_ARCH_X86_64: EM_X86_64 | __AUDIT_ARCH_64BIT | LE
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xc000_00b7; // AUDIT_ARCH_AARCH64

/// A seccomp program: `calls` fail with `errno`; with `newuser`, unshare() and clone() asking
/// for CLONE_NEWUSER fail with that errno (and clone3, whose flags a filter cannot read, with
/// ENOSYS, as Docker does it); everything else is allowed.
fn filter(calls: &[libc::c_long], errno: i32, newuser: Option<i32>) -> Vec<libc::sock_filter> {
    let stmt = |code: u32, k: u32| libc::sock_filter { code: code as u16, jt: 0, jf: 0, k };
    let jeq = |k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    };
    let load = |offset: u32| stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, offset);
    let ret = |k: u32| stmt(libc::BPF_RET | libc::BPF_K, k);
    let fail = |e: i32| ret(libc::SECCOMP_RET_ERRNO | e as u32);
    let mut p = vec![load(4), jeq(AUDIT_ARCH, 1, 0), ret(libc::SECCOMP_RET_ALLOW), load(0)];
    for &nr in calls {
        p.extend([jeq(nr as u32, 0, 1), fail(errno)]);
    }
    if let Some(e) = newuser {
        p.extend([jeq(libc::SYS_clone3 as u32, 0, 1), fail(libc::ENOSYS)]);
        for nr in [libc::SYS_unshare, libc::SYS_clone] {
            // nr matches: look at the low word of the first argument (the flags).
            p.extend([
                jeq(nr as u32, 0, 4),
                load(16),
                libc::sock_filter {
                    code: (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16,
                    jt: 0,
                    jf: 1,
                    k: libc::CLONE_NEWUSER as u32,
                },
                fail(e),
                ret(libc::SECCOMP_RET_ALLOW),
            ]);
        }
    }
    p.push(ret(libc::SECCOMP_RET_ALLOW));
    p
}

/// `command` confined by `program` from exec on.
fn confined(mut command: Command, program: Vec<libc::sock_filter>) -> Run {
    let prog: &'static [libc::sock_filter] = Box::leak(program.into_boxed_slice());
    // SAFETY: between fork and exec only two raw syscalls run, on memory that lives forever
    // (leaked above), with no allocation and no lock.
    unsafe {
        command.pre_exec(move || {
            let fprog = libc::sock_fprog { len: prog.len() as u16, filter: prog.as_ptr().cast_mut() };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, &fprog as *const libc::sock_fprog)
                    != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = command.stdin(Stdio::null()).output().expect("spawn");
    Run {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn sandbox(nobody: bool, args: &[&str]) -> Command {
    let mut c = if nobody {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]).arg(binary());
        c
    } else {
        Command::new(binary())
    };
    c.args(args).current_dir("/");
    c
}

/// The one line a refused or missing call gives, and nothing run.
fn assert_one_line(run: &Run, want: &str) {
    assert_eq!(
        (run.status, run.stdout.as_str(), run.stderr.as_str()),
        (1, "", format!("{want}\n").as_str()),
        "{run:?}"
    );
}

const RAN: &[&str] = &["--", "sh", "-c", "echo ran"];

#[test]
fn docker_like_profile_refusing_user_namespaces_gives_one_line() {
    needs_root!();
    let args = [BASE, RAN].concat();
    let run = confined(sandbox(true, &args), filter(MOUNT_API, libc::EPERM, Some(libc::EPERM)));
    assert_one_line(
        &run,
        "mkosi-sandbox: unshare: Operation not permitted (unprivileged user namespaces are refused here: by \
         kernel.unprivileged_userns_clone=0, kernel.apparmor_restrict_unprivileged_userns=1, a chroot, or a \
         container's seccomp profile (Docker's default without CAP_SYS_ADMIN); allow them or run as root)",
    );
    where_it_runs("seccomp profile refusing user namespaces (EPERM), unprivileged", &run.stderr);
}

#[test]
fn docker_like_profile_refusing_the_mount_api_gives_one_line() {
    needs_root!();
    let args = [BASE, RAN].concat();
    let run = confined(sandbox(false, &args), filter(MOUNT_API, libc::EPERM, Some(libc::EPERM)));
    assert_one_line(
        &run,
        "mkosi-sandbox: --ro-bind /usr /usr: open_tree: Operation not permitted (it needs CAP_SYS_ADMIN, and a \
         container's seccomp profile without it refuses open_tree (Docker's default does): grant CAP_SYS_ADMIN or \
         a profile that allows it)",
    );
    where_it_runs("seccomp profile refusing the new mount API (EPERM), root", &run.stderr);
    // Without a read-only bind the old mount API suffices: the sandbox runs.
    let mut writable = [BASE, RAN].concat();
    assert_eq!(writable[0], "--ro-bind");
    writable[0] = "--bind";
    let run = confined(sandbox(false, &writable), filter(MOUNT_API, libc::EPERM, None));
    assert_eq!((run.status, run.stdout.as_str()), (0, "ran\n"), "{run:?}");
}

#[test]
fn gvisor_like_enosys_gives_one_line() {
    needs_root!();
    let args = [BASE, RAN].concat();
    for nobody in [false, true] {
        let run = confined(sandbox(nobody, &args), filter(MOUNT_API, libc::ENOSYS, None));
        assert_one_line(
            &run,
            "mkosi-sandbox: --ro-bind /usr /usr: open_tree: Function not implemented (this kernel lacks it, or a \
             seccomp filter or emulator refuses it: open_tree needs Linux 5.2 or newer and a container runtime or \
             emulator that lets it through)",
        );
        let who = if nobody { "unprivileged" } else { "root" };
        where_it_runs(&format!("seccomp filter answering ENOSYS to the new mount API, {who}"), &run.stderr);
    }
    let run = confined(sandbox(true, &args), filter(&[libc::SYS_unshare], libc::ENOSYS, None));
    assert_one_line(
        &run,
        "mkosi-sandbox: unshare: Function not implemented (this kernel lacks it, or a seccomp filter or emulator \
         refuses it: the container runtime or emulator must let unshare through)",
    );
}

/// Without mount_setattr() (Linux before 5.12, or a filter): `--ro-bind` of a tree with a
/// submount makes both read-only, keeps the submount's nosuid/nodev, as root and unprivileged.
#[test]
fn without_mount_setattr_ro_bind_still_makes_the_whole_tree_read_only() {
    needs_root!();
    let s = Scratch::new("no-setattr");
    let tree = s.join("tree");
    std::fs::create_dir_all(format!("{tree}/sub")).unwrap();
    std::fs::write(format!("{tree}/file"), "x").unwrap();
    let check = "for d in /t /t/sub; do touch $d/new 2>/dev/null && echo \"$d writable\" || echo \"$d read-only\"; done; \
                 grep ' /t/sub ' /proc/self/mountinfo | cut -d' ' -f6";
    for nobody in [false, true] {
        let who = if nobody { "setpriv --reuid=65534 --regid=65534 --clear-groups -- " } else { "" };
        // A private mount namespace holds the submount, so nothing is left on the host.
        let script = format!(
            "mount -t tmpfs -o nosuid,nodev,mode=0755 tmpfs {tree}/sub && exec {who}{} {} --ro-bind {tree} /t -- sh -c '{}'",
            binary().display(),
            BASE.join(" "),
            check.replace('\'', "'\\''")
        );
        let mut c = Command::new("unshare");
        c.args(["-m", "--propagation", "private", "sh", "-c", &script]);
        let run = confined(c, filter(&[libc::SYS_mount_setattr], libc::ENOSYS, None));
        assert_eq!(run.status, 0, "{run:?}");
        let lines: Vec<&str> = run.stdout.lines().collect();
        assert_eq!(lines[..2], ["/t read-only", "/t/sub read-only"], "{run:?}");
        assert!(lines[2].starts_with("ro,nosuid,nodev"), "{run:?}");
        let who = if nobody { "unprivileged" } else { "root" };
        where_it_runs(&format!("no mount_setattr() (ENOSYS), {who}"), "works: --ro-bind remounts each mount read-only");
    }
}

/// One row of README's "Where it runs" table (tools/where-it-runs.sh), when asked for.
fn where_it_runs(environment: &str, result: &str) {
    use std::io::Write;
    let Some(path) = std::env::var_os("WHERE_IT_RUNS") else { return };
    let result = result.trim();
    let result =
        if result.starts_with("mkosi-sandbox:") { format!("one line: `{result}`") } else { result.to_string() };
    let mut f = std::fs::OpenOptions::new().append(true).create(true).open(path).unwrap();
    writeln!(f, "host {}\t{environment}\t{result}", rustix::system::uname().release().to_string_lossy()).unwrap();
}
