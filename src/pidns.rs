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
//! starts it first thing). The init and the command's process run in the sandbox process's
//! memory, each on a stack of its own, until the exec (see [`start`]). When the command exits the
//! init exits with its status, and the kernel kills whatever is left in the namespace. The init
//! also dies with the sandbox process (PDEATHSIG, checked through a pidfd), so killing the
//! sandbox, even with SIGKILL, ends the namespace.
//!
//! Signals: the forwarded ones and SIGCHLD are blocked before the init starts and taken with
//! `sigwaitinfo()` by the sandbox and the init alike; nothing is lost before a loop waits, and no
//! handler ever runs. The command gets the caller's mask back before exec. A signal the terminal
//! sent (`si_code` SI_KERNEL) went to the whole foreground process group, the command included,
//! and is not forwarded a second time.

use linux_raw_sys::general::{
    SI_KERNEL, SIGCHLD, SIGCONT, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH,
};
use rustix::event::{PollFd, PollFlags};

use rustix::fd::{AsFd, BorrowedFd};
use rustix::process::{Pid, PidfdFlags, Signal, WaitOptions, WaitStatus};

use crate::error::{During, Error, Result, Syscall};
use crate::report;
use crate::sys::supervise::{self, Guarded, SigSet, Stack};
use crate::sys::{self, Disposition, SingleThreaded};

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
pub(crate) fn parent(wanted: bool) -> Option<Option<Pid>> {
    wanted.then(rustix::process::getppid)
}

/// `--die-with-parent`, part two: SIGKILL when the caller dies; then, closing the window before
/// it was set, make sure the caller is still the parent (else it died and we were reparented).
/// Called after the user namespace exists (creating one may reset the setting).
pub(crate) fn die_with(parent: Option<Pid>) -> Result<()> {
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

/// The stacks of the init and of the command's process, which run in the sandbox process's
/// memory (see [`start`]). Untouched pages cost nothing; the command's needs the depth of the
/// mounts, the exec and an error report.
pub(crate) struct Storage {
    init: Stack<INIT_STACK>,
    command: Stack<COMMAND_STACK>,
}

const INIT_STACK: usize = 64 << 10;
const COMMAND_STACK: usize = 1 << 20;

impl Storage {
    pub(crate) const fn new() -> Self {
        Self { init: Stack::new(), command: Stack::new() }
    }
}

impl Default for Storage {
    fn default() -> Self {
        Self::new()
    }
}

/// Starts the init in the PID namespace that `unshare(CLONE_NEWPID)` prepared, which starts the
/// command's process at once; that process runs `command` with `state` (with `Ok`, or with the
/// init's error, in the init) and its return value is the exit status. The sandbox process
/// never comes back: it waits and exits with the command's status (the init dies with it, so
/// that even a SIGKILL to the sandbox ends everything in it). Returns only an error, in the
/// sandbox process, when the init cannot be started; then no other process exists.
///
/// Both processes share the sandbox process's memory (clone(CLONE_VM) on stacks of their own)
/// instead of copies of it: a fork would copy the page tables twice and every page the command's
/// process then writes would take a copy-on-write fault, and faults are the dearest part of a
/// start. The sandbox process and the init only wait on their own stacks meanwhile; the command's
/// process gets a memory of its own at exec. (This is why the command's part is a function and
/// not the rest of the caller's code: a process on a stack of its own cannot return into the
/// caller's frames, which the sandbox process's stack still holds.)
pub(crate) fn start<T: Send>(
    one_thread: SingleThreaded,
    stacks: &mut Storage,
    command: fn(&mut T, Result<()>) -> i32,
    state: &mut T,
) -> Error {
    let mask = match supervise::block(&WAITED).during(Syscall::RtSigprocmask) {
        Ok(mask) => mask,
        Err(e) => return unshare_pid(e),
    };
    let chld = sys::default_sigchld();
    let saved = Saved { mask, chld };
    // The init cannot use getppid() (its parent is outside its namespace): it watches a pidfd.
    let sandbox =
        match rustix::process::pidfd_open(rustix::process::getpid(), PidfdFlags::empty()).during(Syscall::PidfdOpen) {
            Ok(fd) => fd,
            Err(e) => return unshare_pid(e),
        };
    let watched = sandbox.as_fd();
    // Guarded now, while no other process shares the memory.
    let (mut init_stack, mut command_stack) = match (stacks.init.guarded(), stacks.command.guarded()) {
        (Ok(init), Ok(command)) => (init, command),
        (Err(e), _) | (_, Err(e)) => return unshare_pid(Error::sys(Syscall::Mprotect, e)),
    };
    let mut init = move || match init_dies_with(watched) {
        Ok(()) => spawn_command(one_thread, saved, &mut command_stack, command, state),
        Err(e) => command(state, Err(e)),
    };
    let errno = supervise::spawn_sharing_memory::<_, _, true, INIT_STACK>(
        one_thread,
        &mut init_stack,
        &mut init,
        sandbox_waits,
        (),
    );
    unshare_pid(Error::sys(Syscall::Clone, errno))
}

/// `--unshare-pid` for an in-process caller (the library), which goes on inside the sandbox when
/// the stages return. The process tree is
///
/// ```text
/// caller's process (forwards signals; exits with the status of the process below, then
/// │                 the init is killed, and with it the rest of the namespace)
/// ├── init (PID 1, in the caller's memory: reaps orphans, dies with the caller's process)
/// └── the caller's process in the namespace (PID 2 as it sees itself): returns Ok
/// ```
///
/// The init shares the caller's memory on a stack of its own, as in [`start`]; the process that
/// returns is a real fork, made with `fork` (the C library's, see [`sys::ForkFn`]), since it
/// goes on in the caller's own frames. So a caller pays one fork of its memory, as pmbootstrap's
/// own entry does. The caller's process never returns: it waits as the binary's sandbox process
/// does (the same signals forwarded) and ends with `exit_group()`, so no `atexit` handler runs
/// and no stdio buffer is flushed there (the process that returns holds copies of those
/// buffers). The returning process gets the caller's signal mask and SIGCHLD disposition back.
/// Returns an error in the caller's process when a process cannot be made (none is left then).
/// Refused when the process may have other threads: a process-directed SIGCHLD could be taken by
/// one of them, and the wait would never end.
pub(crate) fn split_returning(
    one_thread: Option<SingleThreaded>,
    stacks: &mut Storage,
    fork: sys::ForkFn,
) -> Result<()> {
    let Some(one_thread) = one_thread else {
        return Err(unshare_pid(Error::invalid(Refusal::Threads)));
    };
    let mask = supervise::block(&WAITED).during(Syscall::RtSigprocmask).map_err(unshare_pid)?;
    let saved = Saved { mask, chld: sys::default_sigchld() };
    let restore = |result: Result<()>| -> Result<()> {
        if saved.chld.ignored() {
            sys::restore_sigchld(&saved.chld);
        }
        let restored = supervise::set_mask(&saved.mask).during(Syscall::RtSigprocmask).map_err(unshare_pid);
        result.and(restored)
    };
    // The init cannot use getppid() (its parent is outside its namespace): it watches a pidfd.
    let caller =
        match rustix::process::pidfd_open(rustix::process::getpid(), PidfdFlags::empty()).during(Syscall::PidfdOpen) {
            Ok(fd) => fd,
            Err(e) => return restore(Err(unshare_pid(e))),
        };
    let watched = caller.as_fd();
    let mut init_stack = match stacks.init.guarded() {
        Ok(stack) => stack,
        Err(e) => return restore(Err(unshare_pid(Error::sys(Syscall::Mprotect, e)))),
    };
    let mut init = move || match init_dies_with(watched) {
        Ok(()) => supervise::close_from_then(3, reap_orphans, ()),
        Err(e) => sys::exit_group(report::report(&e)),
    };
    let made = supervise::spawn_sharing_memory_then_fork::<_, true, INIT_STACK>(
        one_thread,
        &mut init_stack,
        &mut init,
        fork,
        caller_waits,
    );
    drop(caller);
    restore(made.during(Syscall::Fork).map_err(unshare_pid))
}

/// The caller's process, once the init and the process that returns run: lets go of its
/// descriptors (the returning process has its own), then waits.
fn caller_waits(init: Pid, command: Pid) -> ! {
    supervise::close_from_then(3, supervise_command, (init, command))
}

/// Forwards signals to the returning process until it exits, then ends the namespace (kills the
/// init) and exits with its status. On an error, kills both and reports.
fn supervise_command((init, command): (Pid, Pid), closed: sys::SysResult<()>) -> ! {
    let status = closed.during(Syscall::CloseRange).and_then(|()| wait_for(command));
    let _ = rustix::process::kill_process(init, Signal::KILL);
    match status {
        Ok(status) => {
            let _ = rustix::process::waitpid(Some(init), WaitOptions::empty());
            sys::exit_group(status)
        }
        Err(e) => {
            let _ = rustix::process::kill_process(command, Signal::KILL);
            let _ = rustix::process::waitpid(Some(init), WaitOptions::empty());
            let _ = rustix::process::waitpid(Some(command), WaitOptions::empty());
            sys::exit_group(report::report(&unshare_pid(e)))
        }
    }
}

/// PID 1 of an in-process caller's namespace: reaps every orphan until it is killed (by the
/// caller's process once the returning process exited, or by its death).
fn reap_orphans((): (), _closed: sys::SysResult<()>) -> ! {
    let _ = rustix::process::chdir(c"/");
    loop {
        match supervise::wait_signal(&WAITED) {
            Ok(got) if got.signo == SIGCHLD => {
                while let Ok(Some(_)) = rustix::process::waitpid(None, WaitOptions::NOHANG) {}
            }
            Ok(_) => {}
            Err(_) => sys::exit_group(1),
        }
    }
}

/// Why [`split_returning`] refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Threads,
}

impl crate::error::Reason for Refusal {
    fn text(self) -> &'static str {
        match self {
            Refusal::Threads => {
                "the calling process has more than one thread; its fork into the PID namespace needs a \
                 single-threaded one"
            }
        }
    }
}

/// The init dies with the sandbox process; if that died before the setting took, exit now.
fn init_dies_with(sandbox: BorrowedFd<'_>) -> Result<()> {
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

/// The sandbox process, once the init runs: lets go of what the command alone should hold
/// (descriptors such as `--exec-fd`'s), then waits.
fn sandbox_waits(init: Pid, (): ()) -> ! {
    supervise::close_from_then(3, supervise_init, init)
}

/// Forwards signals to the init until it exits, then exits with its status. On an error, kills
/// the init (never leave a half-built sandbox behind) and reports.
fn supervise_init(init: Pid, closed: sys::SysResult<()>) -> ! {
    match closed.during(Syscall::CloseRange).and_then(|()| wait_for(init)) {
        Ok(status) => sys::exit_group(status),
        Err(e) => {
            let _ = rustix::process::kill_process(init, Signal::KILL);
            let _ = rustix::process::waitpid(Some(init), WaitOptions::empty());
            sys::exit_group(report::report(&unshare_pid(e)))
        }
    }
}

fn wait_for(init: Pid) -> Result<i32> {
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

/// In the init: starts the command's process, which gets the caller's signal state back and runs
/// `command`; the init reaps. Returns only when the process cannot be made, with `command`'s
/// report of that.
fn spawn_command<T: Send>(
    one_thread: SingleThreaded,
    saved: Saved,
    stack: &mut Guarded<'_, COMMAND_STACK>,
    command: fn(&mut T, Result<()>) -> i32,
    state: &mut T,
) -> i32 {
    let mut run = || {
        if saved.chld.ignored() {
            sys::restore_sigchld(&saved.chld);
        }
        let restored = supervise::set_mask(&saved.mask).during(Syscall::RtSigprocmask).map_err(unshare_pid);
        command(state, restored)
    };
    let errno =
        supervise::spawn_sharing_memory::<_, _, false, COMMAND_STACK>(one_thread, stack, &mut run, init_waits, ());
    command(state, Err(unshare_pid(Error::sys(Syscall::Clone, errno))))
}

/// The init, once the command's process runs: the command has its own copies of the
/// descriptors; kept here they would outlive it (a pipe would not see EOF, `--exec-fd` would not
/// close at exec).
fn init_waits(command: Pid, (): ()) -> ! {
    supervise::close_from_then(3, reap, command)
}

/// PID 1: forwards signals to the command, reaps every orphan, and exits with the command's
/// status as soon as it has one (the kernel then kills the rest of the namespace).
fn reap(command: Pid, _closed: sys::SysResult<()>) -> ! {
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
    if let Some(signal) = forwarded(got) {
        let _ = rustix::process::kill_process(to, signal);
    }
}

fn forwarded(got: supervise::Received) -> Option<Signal> {
    if got.code == SI_KERNEL as i32 || !FORWARDED.contains(&got.signo) {
        return None;
    }
    Signal::from_named_raw(got.signo as i32)
}

/// The command's exit status, or 128+N for death by signal N.
fn exit_status(status: WaitStatus) -> i32 {
    status_of(status.exit_status(), status.terminating_signal())
}

fn status_of(exit: Option<i32>, signal: Option<i32>) -> i32 {
    match (exit, signal) {
        (Some(code), _) => code,
        (None, Some(signal)) => SIGNALLED + signal,
        (None, None) => 1,
    }
}

#[cfg(test)]
mod tests {
    use linux_raw_sys::general::{SI_USER, SIGKILL, SIGSTOP};

    use super::*;

    fn got(signo: u32, code: u32) -> supervise::Received {
        supervise::Received { signo, code: code as i32 }
    }

    #[test]
    fn signals_sent_to_the_sandbox_are_forwarded() {
        for signo in FORWARDED {
            assert_eq!(forwarded(got(signo, SI_USER)).map(Signal::as_raw), Some(signo as i32));
        }
    }

    #[test]
    fn the_terminal_s_signals_are_not_forwarded_twice() {
        assert_eq!(forwarded(got(SIGINT, SI_KERNEL)), None);
        assert_eq!(forwarded(got(SIGWINCH, SI_KERNEL)), None);
    }

    #[test]
    fn only_the_listed_signals_are_forwarded() {
        assert_eq!(forwarded(got(SIGCHLD, SI_USER)), None);
        assert_eq!(forwarded(got(SIGKILL, SI_USER)), None);
        assert_eq!(forwarded(got(SIGSTOP, SI_USER)), None);
    }

    #[test]
    fn waited_holds_the_forwarded_signals_and_sigchld() {
        assert_eq!(
            WAITED,
            SigSet::of(&[SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT, SIGCHLD])
        );
    }

    #[test]
    fn exit_statuses_are_the_shell_s() {
        assert_eq!(status_of(Some(0), None), 0);
        assert_eq!(status_of(Some(3), None), 3);
        assert_eq!(status_of(None, Some(9)), 137);
        assert_eq!(status_of(None, Some(15)), 143);
        assert_eq!(status_of(None, None), 1);
    }
}
