//! `--unshare-pid` (a PID namespace with an init of our own) and `--die-with-parent`.
//!
//! With `--unshare-pid` the process tree is
//!
//! ```text
//! caller ── sandbox (this process: forwards signals, exits with the command's status)
//!             └── init (PID 1: reaps orphans, forwards signals)
//!                   └── command (PID 2 as it sees itself: builds the sandbox, --suspend, exec)
//! ```
//!
//! `unshare(CLONE_NEWPID)` moves only the children into the new namespace, and a procfs shows the
//! namespace of the process that mounts it, so the command's process makes the mounts (the init
//! forks it first thing, while forking is cheapest). When the command exits the init exits with
//! its status, and the kernel kills whatever is left in the namespace. The init also dies with
//! the sandbox process (PDEATHSIG, checked through a pidfd), so killing the sandbox, even with
//! SIGKILL, ends the namespace.
//!
//! Signals: the forwarded ones and SIGCHLD are blocked before the first fork and taken with
//! `sigwaitinfo()` by the sandbox and the init alike; nothing is lost before a loop waits, and no
//! handler ever runs. The command gets the caller's mask back before exec. A signal the terminal
//! sent (`si_code` SI_KERNEL) went to the whole foreground process group, the command included,
//! and is not forwarded a second time.

use linux_raw_sys::general::{
    SI_KERNEL, SIGCHLD, SIGCONT, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH,
};
use rustix::event::{PollFd, PollFlags};
use rustix::fd::OwnedFd;
use rustix::process::{Pid, PidfdFlags, Signal, WaitOptions, WaitStatus};

use crate::containers::Bump;
use crate::decimal;
use crate::error::{During, Error, Result, Syscall};
use crate::process::env::Environment;
use crate::sys;
use crate::sys::Disposition;
use crate::sys::supervise::{self, SigSet};

/// Forwarded to the command: the issue's list, plus SIGCONT so that a caller can resume a
/// `--suspend`ed command through the sandbox.
const FORWARDED: [u32; 8] = [SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT];

/// What the sandbox and the init wait for: the forwarded signals and their children's exits.
const WAITED: SigSet = SigSet::of(&FORWARDED).with(SIGCHLD);

/// The exit status reported for a command killed by signal N, as shells report it.
const SIGNALLED: i32 = 128;

fn unshare_pid(e: Error) -> Error {
    e.for_option("--unshare-pid", None, None)
}

fn die_with_parent(e: Error) -> Error {
    e.for_option("--die-with-parent", None, None)
}

/// `--die-with-parent`, part one: the caller's pid, read first thing (None without the option).
pub fn parent(wanted: bool) -> Option<Option<Pid>> {
    wanted.then(rustix::process::getppid)
}

/// `--die-with-parent`, part two: SIGKILL when the caller dies; then, closing the window before
/// it was set, make sure the caller is still the parent (else it died and we were reparented).
/// Called after the user namespace exists (creating one may reset the setting).
pub fn die_with(parent: Option<Pid>) -> Result<()> {
    rustix::process::set_parent_process_death_signal(Some(Signal::KILL))
        .during(Syscall::Prctl)
        .map_err(die_with_parent)?;
    if rustix::process::getppid() != parent {
        sys::exit_group(SIGNALLED + Signal::KILL.as_raw());
    }
    Ok(())
}

/// The caller's signal state, restored in the command before exec.
#[derive(Clone, Copy)]
struct Saved {
    mask: SigSet,
    chld: Disposition,
}

/// What [`start`] makes of this process.
pub enum Role {
    /// The sandbox process, after the init exited: the exit status for the caller.
    Sandbox(i32),
    /// The command's process (PID 2 as it sees itself), which goes on to build the sandbox and
    /// exec the command.
    Command,
}

/// Forks the init into the PID namespace that `unshare(CLONE_NEWPID)` prepared, which forks the
/// command's process at once (a fork is cheapest before the mounts touch more memory). Returns in
/// the sandbox process once the init is gone, with the exit status, and in the command's process;
/// the init never returns. The init dies with the sandbox process, so that even a SIGKILL to the
/// sandbox ends everything in it.
pub fn start(env: &mut Environment<'_>, bump: &mut Bump<'static>) -> Result<Role> {
    let mask = supervise::block(&WAITED).during(Syscall::RtSigprocmask).map_err(unshare_pid)?;
    let chld = sys::default_sigchld();
    let saved = Saved { mask, chld };
    // The init cannot use getppid() (its parent is outside its namespace): it watches a pidfd.
    let sandbox = rustix::process::pidfd_open(rustix::process::getpid(), PidfdFlags::empty())
        .during(Syscall::PidfdOpen)
        .map_err(unshare_pid)?;
    match sys::fork().during(Syscall::Fork).map_err(unshare_pid)? {
        None => {
            init_dies_with(sandbox)?;
            spawn_command(saved, env, bump)?;
            Ok(Role::Command)
        }
        Some(init) => {
            drop(sandbox);
            match release_and_supervise(init) {
                Ok(status) => Ok(Role::Sandbox(status)),
                Err(e) => {
                    // Never leave a half-built sandbox behind.
                    let _ = rustix::process::kill_process(init, Signal::KILL);
                    let _ = rustix::process::waitpid(Some(init), WaitOptions::empty());
                    Err(unshare_pid(e))
                }
            }
        }
    }
}

/// The init dies with the sandbox process; if that died before the setting took, exit now.
fn init_dies_with(sandbox: OwnedFd) -> Result<()> {
    rustix::process::set_parent_process_death_signal(Some(Signal::KILL)).during(Syscall::Prctl).map_err(unshare_pid)?;
    let mut fds = [PollFd::new(&sandbox, PollFlags::IN)];
    let gone = rustix::event::poll(&mut fds, Some(&rustix::event::Timespec { tv_sec: 0, tv_nsec: 0 }))
        .during(Syscall::Poll)
        .map_err(unshare_pid)?;
    if gone > 0 {
        sys::exit_group(SIGNALLED + Signal::KILL.as_raw());
    }
    Ok(())
}

/// The sandbox process lets go of what the command alone should hold (descriptors such as
/// `--exec-fd`'s, the caller's directory), then waits.
fn release_and_supervise(init: Pid) -> Result<i32> {
    // SAFETY: from here on this process only waits, signals and exits: it never uses or drops a
    // descriptor handle again (the static storage that holds some is never dropped).
    #[allow(unsafe_code)]
    unsafe { supervise::close_from(3) }.during(Syscall::CloseRange)?;
    // Its cwd would pin the caller's mount tree, copied into the new mount namespace; "/"
    // follows the command's pivot_root() into the sandbox.
    rustix::process::chdir(c"/").during(Syscall::Chdir)?;
    loop {
        let got = supervise::wait_signal(&WAITED).during(Syscall::RtSigtimedwait)?;
        if got.signo == SIGCHLD {
            if let Some((_, status)) =
                rustix::process::waitpid(Some(init), WaitOptions::NOHANG).during(Syscall::Wait4)?
            {
                return Ok(exit_status(status));
            }
        } else {
            forward(got, init);
        }
    }
}

/// In the init: forks the command's process. Returns in it, after it got the caller's signal
/// state back and `LISTEN_PID` names it; the init never returns from here.
fn spawn_command(saved: Saved, env: &mut Environment<'_>, bump: &mut Bump<'static>) -> Result<()> {
    match sys::fork().during(Syscall::Fork).map_err(unshare_pid)? {
        None => {
            if saved.chld.ignored() {
                sys::restore_sigchld(&saved.chld);
            }
            supervise::set_mask(&saved.mask).during(Syscall::RtSigprocmask).map_err(unshare_pid)?;
            if env.get(b"LISTEN_PID").is_some() {
                let mut digits = [0u8; decimal::MAX_DIGITS];
                let pid = rustix::process::getpid().as_raw_nonzero().get() as u64;
                env.set(bump, b"LISTEN_PID", decimal::format(pid, &mut digits))?;
            }
            Ok(())
        }
        Some(command) => reap(command),
    }
}

/// PID 1: forwards signals to the command, reaps every orphan, and exits with the command's
/// status as soon as it has one (the kernel then kills the rest of the namespace).
fn reap(command: Pid) -> ! {
    // The command has its own copies; descriptors kept here would outlive it (a pipe would not
    // see EOF, `--exec-fd` would not close at exec).
    // SAFETY: as in the sandbox process: the init only waits, signals and exits from here on.
    #[allow(unsafe_code)]
    let _ = unsafe { supervise::close_from(3) };
    // As in the sandbox process: "/" follows the command's pivot_root() into the sandbox.
    let _ = rustix::process::chdir(c"/");
    loop {
        let Ok(got) = supervise::wait_signal(&WAITED) else {
            sys::exit_group(1);
        };
        if got.signo != SIGCHLD {
            forward(got, command);
            continue;
        }
        while let Ok(Some((pid, status))) = rustix::process::waitpid(None, WaitOptions::NOHANG) {
            if pid == command {
                sys::exit_group(exit_status(status));
            }
        }
    }
}

/// Passes a signal on, unless the terminal sent it to the whole process group (the command is
/// in it and got its own). A target that is already gone is not an error.
fn forward(got: supervise::Received, to: Pid) {
    if got.code == SI_KERNEL as i32 || !FORWARDED.contains(&got.signo) {
        return;
    }
    if let Some(signal) = Signal::from_named_raw(got.signo as i32) {
        let _ = rustix::process::kill_process(to, signal);
    }
}

/// The command's exit status, or 128+N for death by signal N.
fn exit_status(status: WaitStatus) -> i32 {
    match (status.exit_status(), status.terminating_signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => SIGNALLED + signal,
        (None, None) => 1,
    }
}
