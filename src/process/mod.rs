//! The process around the sandbox: what must be learnt in the caller's namespaces before they are
//! left ([`prepare`]), what is done after the mounts ([`finish`]), and the command's environment,
//! descriptors and exec. Submodules by concern:
//!
//! - `args`: argv as the parser reads it;
//! - `env`: the new environment;
//! - `fds`: `--pack-fds`;
//! - `exec`: `execvp()`.
//!
//! With `--unshare-pid`, [`finish`] and the exec run in the command's process, which the PID
//! namespace's init starts before the mounts (see `pidns`); [`prepare`] runs before, in the
//! caller's process.

pub(crate) mod args;
pub(crate) mod env;
pub(crate) mod exec;
pub(crate) mod fds;

use core::ffi::CStr;

use rustix::fs::{AtFlags, CWD, Mode};

use crate::containers::Bump;
use crate::decimal;
use crate::error::{During, Limit, Overflow, Result, Syscall};
use crate::path::{PATH_CAP, PathBuf};
use crate::plan::Plan;
use crate::request::{Chdir, OpKind, Settings};
use crate::sys::{self, InheritedFds};
use env::Environment;

/// What was learnt in the caller's namespaces, for later stages.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Prepared {
    /// The host path of the terminal on stderr, for `/dev/console`.
    pub(crate) ttyname: Option<&'static CStr>,
    /// The working directory to change to in the sandbox.
    pub(crate) cwd: Option<&'static CStr>,
    /// Whom `LISTEN_PID` names (see [`name_listener`]).
    pub(crate) listener: Listener,
}

/// Whom `LISTEN_PID` must name: the process that receives the descriptors is the one the
/// command replaces.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Listener {
    /// No descriptors are passed: `LISTEN_PID` stays as the caller left it.
    #[default]
    Nobody,
    /// This process (pid read in the caller's namespaces): the command replaces it.
    This(u64),
    /// The command's process of a PID namespace, made later (PID 2 as it sees itself).
    CommandProcess,
}

/// Descriptors are passed when `--pack-fds` moved some or the caller set `LISTEN_FDS` itself (as
/// mkosi 25 does: its sandbox fixed the pid). With `--unshare-pid` a `LISTEN_PID` the caller set
/// names the sandbox's outer process, never the command's: it is rewritten too.
fn listener_wanted(packed: usize, listen_fds_set: bool, listen_pid_set: bool, unshare_pid: bool) -> bool {
    packed > 0 || listen_fds_set || (unshare_pid && listen_pid_set)
}

/// With `--unshare-pid` the command's process is made later; else it is this one, whose pid is
/// read now, in the caller's PID namespace.
fn listener(wanted: bool, unshare_pid: bool, getpid: impl FnOnce() -> u64) -> Listener {
    match (wanted, unshare_pid) {
        (false, _) => Listener::Nobody,
        (true, true) => Listener::CommandProcess,
        (true, false) => Listener::This(getpid()),
    }
}

/// Sets `LISTEN_PID` (once, in the command's process) as `prepare` decided.
pub(crate) fn name_listener(env: &mut Environment<'_>, bump: &mut Bump<'static>, listener: Listener) -> Result<()> {
    let pid = match listener {
        Listener::Nobody => return Ok(()),
        Listener::This(pid) => pid,
        Listener::CommandProcess => rustix::process::getpid().as_raw_nonzero().get() as u64,
    };
    let mut digits = [0u8; decimal::MAX_DIGITS];
    env.set(bump, b"LISTEN_PID", decimal::format(pid, &mut digits))
}

/// Work that must happen in the caller's namespaces: the cwd for `--same-dir`, the terminal name
/// for `/dev/console`, and `--pack-fds` (with `LISTEN_FDS`; `LISTEN_PID` is decided here).
pub(crate) fn prepare(
    settings: &Settings,
    plan: &Plan<'_>,
    env: &mut Environment<'_>,
    fds: &mut fds::Storage,
    inherited: InheritedFds,
    bump: &mut Bump<'static>,
) -> Result<Prepared> {
    let cwd = match settings.chdir {
        Some(Chdir::Path(p)) => Some(p),
        Some(Chdir::SameDir) => Some(same_dir(bump)?),
        None => None,
    };
    let has_dev = plan.iter().any(|op| op.kind == OpKind::Dev);
    let ttyname = if has_dev { stderr_ttyname(bump) } else { None };
    let packed = if settings.pack_fds { fds::pack(fds, inherited)? } else { 0 };
    if packed > 0 {
        let mut digits = [0u8; decimal::MAX_DIGITS];
        env.set(bump, b"LISTEN_FDS", decimal::format(packed as u64, &mut digits))?;
    }
    let wanted = listener_wanted(
        packed,
        env.get(b"LISTEN_FDS").is_some(),
        env.get(b"LISTEN_PID").is_some(),
        settings.unshare_pid,
    );
    let listener = listener(wanted, settings.unshare_pid, || rustix::process::getpid().as_raw_nonzero().get() as u64);
    Ok(Prepared { ttyname, cwd, listener })
}

/// The caller's working directory, for `--same-dir`. Never inlined, for the reason `fds::pack`
/// is not: the 4 KiB buffer stays out of the frame of every start.
#[inline(never)]
fn same_dir(bump: &mut Bump<'static>) -> Result<&'static CStr> {
    let mut buf = [0u8; PATH_CAP];
    let cwd = sys::getcwd(&mut buf).during(Syscall::Getcwd).map_err(|e| e.for_option("--same-dir", None, None))?;
    bump.cstr(&[cwd]).overflow(Limit::DerivedStrings)
}

/// After the mounts: the working directory, the caller's umask, `--exec-fd`, `--suspend`.
pub(crate) fn finish(settings: &Settings, prepared: &Prepared, umask: Mode) -> Result<()> {
    if let Some(dir) = prepared.cwd {
        let option = chdir_option(settings.chdir);
        rustix::process::chdir(dir).during(Syscall::Chdir).map_err(|e| e.for_option(option, Some(dir), None))?;
    }
    rustix::process::umask(umask);
    if let Some(fd) = settings.exec_fd {
        sys::set_cloexec(fd).during(Syscall::Fcntl).map_err(|e| e.for_option("--exec-fd", None, None))?;
    }
    if settings.suspend {
        rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::STOP)
            .during(Syscall::Kill)
            .map_err(|e| e.for_option("--suspend", None, None))?;
    }
    Ok(())
}

/// The option a failing change of directory is blamed on.
fn chdir_option(chdir: Option<Chdir>) -> &'static str {
    if matches!(chdir, Some(Chdir::SameDir)) { "--same-dir" } else { "--chdir" }
}

/// The host path of the terminal on stderr (`os.ttyname(2)`), or None when stderr is not a
/// terminal or its device node is not reachable under that name (then there is no console).
fn stderr_ttyname(bump: &mut Bump<'static>) -> Option<&'static CStr> {
    let stderr = sys::stderr();
    if !rustix::termios::isatty(stderr) {
        return None;
    }
    let mut path = PathBuf::new();
    crate::path::read_link(c"/proc/self/fd/2", &mut path).ok()?;
    let (ours, named) =
        (rustix::fs::fstat(stderr).ok()?, rustix::fs::statat(CWD, path.as_cstr(), AtFlags::empty()).ok()?);
    if ours.st_dev != named.st_dev || ours.st_ino != named.st_ino || ours.st_rdev != named.st_rdev {
        return None;
    }
    bump.cstr(&[path.as_bytes()]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_pid_is_set_when_descriptors_are_passed() {
        assert!(!listener_wanted(0, false, false, false));
        assert!(listener_wanted(2, false, false, false), "--pack-fds moved some");
        assert!(listener_wanted(0, true, false, false), "the caller's LISTEN_FDS (mkosi 25)");
        assert!(!listener_wanted(0, false, true, false), "the caller's LISTEN_PID alone is left alone");
        assert!(listener_wanted(0, false, true, true), "... but names the command's process in a PID namespace");
    }

    #[test]
    fn listen_pid_names_the_process_the_command_replaces() {
        let never = || -> u64 { panic!("no getpid() needed") };
        assert_eq!(listener(false, false, never), Listener::Nobody);
        assert_eq!(listener(false, true, never), Listener::Nobody);
        assert_eq!(listener(true, true, never), Listener::CommandProcess);
        assert_eq!(listener(true, false, || 42), Listener::This(42));
    }

    #[test]
    fn listen_pid_is_written_once_with_the_pid() {
        let mut storage = env::Storage::new();
        let mut bump = Bump::new(Box::leak(vec![0u8; 256].into_boxed_slice()));
        let mut env = Environment::inherit([c"LISTEN_PID=1", c"A=b"].into_iter(), &mut storage).unwrap();
        name_listener(&mut env, &mut bump, Listener::Nobody).unwrap();
        assert_eq!(env.get(b"LISTEN_PID"), Some(&b"1"[..]));
        name_listener(&mut env, &mut bump, Listener::This(4321)).unwrap();
        assert_eq!(env.get(b"LISTEN_PID"), Some(&b"4321"[..]));
        assert_eq!(env.entries().len(), 2);
    }

    #[test]
    fn a_failed_chdir_blames_the_option_given() {
        assert_eq!(chdir_option(Some(Chdir::SameDir)), "--same-dir");
        assert_eq!(chdir_option(Some(Chdir::Path(c"/x"))), "--chdir");
    }
}
