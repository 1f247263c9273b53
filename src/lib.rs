//! mkosi-sandbox: a drop-in, static re-implementation of mkosi's namespace sandbox.
//!
//! [`run`] is the whole program, one typed stage after the other, data flowing one way:
//!
//! ```text
//! argv ─ cli::parse ─→ Parsed (Request: settings + operations, borrowing argv)
//!      ─ enter:  plan::plan ─→ Plan (de-duplicated, ordered operations)
//!                process::prepare ─→ Prepared (cwd, terminal, --pack-fds; caller's namespaces)
//!                namespaces::enter (binfmt rules, seccomp, unshare, uid/gid maps) ─→ Entered
//!      ─ pidns::start (with --unshare-pid: this process and the init wait from here on; the
//!                      command's process goes on below)
//!      ─ Entered::build: process::name_listener, mounts::setup (the new root), process::finish
//!      ─ Entered::exec: process::exec::execvp
//! ```
//!
//! [`enter`] and [`Entered::build`] are the stages an entry point that stops before the exec
//! reuses: [`enter_in_process`], the shared library's (`ffi/`), with `pidns::split_returning`
//! in place of `pidns::start`. Each stage owns its working storage (`cli::Storage`,
//! `plan::Storage`, ...); [`Storage`] holds them all, and `main.rs` keeps the one static
//! instance. There is no heap.
//!
//! Layers, bottom to top; a module uses only modules in layers below its own (checked by
//! `make check`, see `tests/layers.sh`):
//!
//! 1. [`containers`], [`decimal`], [`options`]: fixed-capacity storage, numbers, the one table of
//!    options (no crate imports)
//! 2. [`sys`]: the raw syscall boundary (argv/environ, fork, descriptors, processes sharing memory)
//! 3. [`line`](mod@line): one line of output on stderr
//! 4. [`error`]: errors and their one-line rendering
//! 5. [`path`], [`subid`], [`foreign_uid`], [`report`]: path buffers and resolution inside a root;
//!    subordinate id ranges; mkosi 27's foreign-UID options (`--map-foreign`, ...); the report
//!    of an error that ends the program
//! 6. [`request`]: what a command line asks for (operations, settings), as later stages read it
//! 7. [`cli`]: argv into a request
//! 8. [`plan`]: the order of operations
//! 9. [`process`]: argv for the parser, environment, descriptors, exec
//! 10. [`seccomp`], [`userns`], [`binfmt`], [`mapper`]: the filter, ids and capabilities;
//!     binfmt_misc rules and the sandbox's own instance; the helper that writes multi-range maps
//! 11. [`namespaces`], [`pidns`]: leaving the caller's namespaces; the PID namespace's init and
//!     `--die-with-parent`
//! 12. [`mounts`]: the sandbox's filesystem
//! 13. this file and its [`proptests`](self#property-tests) (tests only): [`run`] and its stages,
//!     [`Storage`]; property tests of the stages before the namespaces
//!
//! # Property tests
//!
//! `proptests` (a test-only module) runs generated command lines and environments through
//! [`cli::parse`], [`Environment::inherit`] and `prepare` (the plan, the environment's edits,
//! [`process::prepare`]) as [`enter`] does: no panic, a plan or a one-line error, capacities
//! refused cleanly, the same result for the same input.
//!
//! `unsafe` is denied everywhere but at the boundaries: [`sys`] (raw syscalls, argv/environ
//! pointers, inherited descriptors, processes sharing memory), [`containers`] (uninitialised
//! storage) and `main.rs` (the C entry point, which alone can make [`sys::Entry`]'s tokens).

#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
// The modules are private (rustc then reports what is unused); these docs are for the crate's
// developers, and `make check` documents private items, so the links resolve.
#![allow(rustdoc::private_intra_doc_links)]

mod binfmt;
mod cli;
mod containers;
mod decimal;
mod error;
mod foreign_uid;
mod line;
mod mapper;
mod mounts;
mod namespaces;
pub mod options;
mod path;
mod pidns;
mod plan;
mod process;
#[cfg(test)]
mod proptests;
mod report;
mod request;
pub mod seccomp;
mod subid;
pub mod sys;
mod userns;

use core::ffi::CStr;

use cli::Parsed;
use containers::Bump;
use error::{Cause, Error, Syscall};
use line::Line;
use plan::Plan;
use process::Prepared;
use process::env::Environment;
use request::{Request, Settings};
use rustix::fs::Mode;
use rustix::io::Errno;
use sys::Argv;
use sys::args::{CArgs, CEnv};

/// Exit status when the command does not exist, as shells (and the original) use.
pub(crate) const EXIT_NOT_FOUND: i32 = 127;

/// Bytes for derived strings: sort keys, `NAME=VALUE` pairs, the cwd. Larger than the kernel's
/// limit on argv plus environ (ARG_MAX at the default stack rlimit is 2 MiB) so that every key of
/// the largest possible command line fits.
pub(crate) const MAX_DERIVED_BYTES: usize = 6 << 20;

/// The working storage of every stage, in one place.
pub struct Storage {
    cli: cli::Storage,
    plan: plan::Storage,
    env: process::env::Storage,
    fds: process::fds::Storage,
    namespaces: namespaces::Storage,
    mounts: mounts::Storage,
    exec: process::exec::Storage,
    binfmt: binfmt::Storage,
    pidns: pidns::Storage,
    derived: [u8; MAX_DERIVED_BYTES],
}

impl Storage {
    pub const fn new() -> Self {
        Self {
            cli: cli::Storage::new(),
            plan: plan::Storage::new(),
            env: process::env::Storage::new(),
            fds: process::fds::Storage::new(),
            namespaces: namespaces::Storage::new(),
            mounts: mounts::Storage::new(),
            exec: process::exec::Storage::new(),
            binfmt: binfmt::Storage::new(),
            pidns: pidns::Storage::new(),
            derived: [0; MAX_DERIVED_BYTES],
        }
    }
}

impl Default for Storage {
    fn default() -> Self {
        Self::new()
    }
}

/// Runs the sandbox; returns the exit status when it does not exec. `entry` is what only the
/// program's entry can vouch for (see [`sys::Entry`]).
pub fn run(args: &CArgs, environ: &CEnv, entry: sys::Entry, storage: &'static mut Storage) -> i32 {
    let Storage { cli, plan, env, fds, namespaces, mounts, exec, binfmt, pidns, derived } = storage;
    let bump = Bump::new(derived);

    let request = match cli::parse(args, cli) {
        Ok(Parsed::Run(request)) => request,
        Ok(Parsed::Help) => {
            let highlight = rustix::termios::isatty(sys::stderr());
            let mut line = Line::new();
            for part in cli::help(highlight) {
                line.push(part.as_bytes());
            }
            line.flush_to_stderr();
            return 0;
        }
        Ok(Parsed::Version) => {
            let mut line = Line::new();
            line.push(cli::VERSION.as_bytes());
            line.push(b"\n");
            line.flush_to_stderr();
            return 0;
        }
        Err(e) => return report::report(&e),
    };
    let env = match Environment::inherit(environ.iter(), env) {
        Ok(env) => env,
        Err(e) => return report::report(&e),
    };
    let sys::Entry { single_threaded, inherited } = entry;
    let stages = Stages { plan, fds, namespaces, binfmt, mounts, exec };
    let command = args.command(request.settings.command);
    let mut sandbox = match enter(&request, command, env, Some(single_threaded), inherited, stages, bump) {
        Ok(sandbox) => sandbox,
        Err(e) => return exit_status(&e),
    };
    if request.settings.unshare_pid {
        // This process and the PID namespace's init only wait from here on, and exit with the
        // command's status; the command's process goes on with `build_and_exec`.
        let e = pidns::start(single_threaded, pidns, build_and_exec, &mut sandbox);
        return exit_status(&e);
    }
    build_and_exec(&mut sandbox, Ok(()))
}

/// The in-process entry (the shared library's, `ffi/`): the stages of [`run`] applied to the
/// calling process, stopping where `run` would exec. `args` are the options (`argv[0]` aside: a
/// command line without a command); on success `environment` gets the environment the command
/// would have had (for the caller to make its own) and the calling process is in the sandbox.
/// With `--unshare-pid` that process is a new one (see [`pidns::split_returning`]); the
/// caller's process never returns. An error is returned, never reported or exited on; after one
/// the process may be half inside (namespaces entered, some mounts made): a caller exits then.
pub fn enter_in_process(
    args: &CArgs,
    environ: &CEnv,
    caller: sys::InProcess,
    storage: &'static mut Storage,
    environment: impl FnOnce(&[&'static CStr]),
) -> Result<(), Error> {
    let Storage { cli, plan, env, fds, namespaces, mounts, exec, binfmt, pidns, derived } = storage;
    let bump = Bump::new(derived);
    let request = match cli::parse(args, cli)? {
        Parsed::Run(request) => request,
        Parsed::Help => return Err(Error::invalid(InProcessRefusal::NotHere).for_option("--help", None, None)),
        Parsed::Version => return Err(Error::invalid(InProcessRefusal::NotHere).for_option("--version", None, None)),
    };
    let (command, argv) = args.command(request.settings.command);
    if request.settings.command < args.count() {
        return Err(Error::invalid(InProcessRefusal::Command).for_argument(command));
    }
    let env = Environment::inherit(environ.iter(), env)?;
    let sys::InProcess { single_threaded, inherited, fork } = caller;
    let stages = Stages { plan, fds, namespaces, binfmt, mounts, exec };
    let mut sandbox = enter(&request, (command, argv), env, single_threaded, inherited, stages, bump)?;
    if request.settings.unshare_pid {
        pidns::split_returning(single_threaded, pidns, fork)?;
    }
    sandbox.build()?;
    environment(sandbox.env.entries());
    Ok(())
}

/// What the in-process entry refuses that the binary takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InProcessRefusal {
    /// `--help`, `--version`: the library prints nothing.
    NotHere,
    /// An argument that is not an option: the caller goes on instead of a command.
    Command,
}

impl error::Reason for InProcessRefusal {
    fn text(self) -> &'static str {
        match self {
            InProcessRefusal::NotHere => "not an option of the in-process entry",
            InProcessRefusal::Command => "not an option: the in-process entry takes options only, no command",
        }
    }
}

/// The stages' storage that [`enter`] and [`Entered`] work in.
pub(crate) struct Stages<'s> {
    pub(crate) plan: &'s mut plan::Storage,
    pub(crate) fds: &'s mut process::fds::Storage,
    pub(crate) namespaces: &'s mut namespaces::Storage,
    pub(crate) binfmt: &'s mut binfmt::Storage,
    pub(crate) mounts: &'s mut mounts::Storage,
    pub(crate) exec: &'s mut process::exec::Storage,
}

/// A sandbox whose namespaces are entered: everything the command's process needs to build the
/// root and exec.
pub(crate) struct Entered<'s> {
    settings: &'s Settings,
    plan: Plan<'s>,
    env: Environment<'s>,
    prepared: Prepared,
    floor: Option<&'s binfmt::Instance>,
    mounts: &'s mut mounts::Storage,
    exec: &'s mut process::exec::Storage,
    bump: Bump<'static>,
    command: (&'static CStr, Argv),
}

/// Everything up to the PID namespace's processes, in the caller's process: the plan, the
/// environment, what must be learnt in the caller's namespaces, then the namespaces themselves.
/// `command` is what [`Entered::exec`] runs.
pub(crate) fn enter<'s>(
    request: &'s Request<'s>,
    command: (&'static CStr, Argv),
    mut env: Environment<'s>,
    single_threaded: Option<sys::SingleThreaded>,
    inherited: sys::InheritedFds,
    stages: Stages<'s>,
    mut bump: Bump<'static>,
) -> error::Result<Entered<'s>> {
    let settings = &request.settings;
    // Before the set-up, so that a caller dying during it is noticed (`pidns::die_with`).
    let parent = pidns::parent(settings.die_with_parent);
    let (plan, prepared) = prepare(request, settings, &mut env, stages.plan, stages.fds, inherited, &mut bump)?;
    let floor = namespaces::enter(request, stages.namespaces, stages.binfmt, single_threaded, &mut bump)?;
    if let Some(parent) = parent {
        pidns::die_with(parent)?;
    }
    Ok(Entered { settings, plan, env, prepared, floor, mounts: stages.mounts, exec: stages.exec, bump, command })
}

/// The stages between the command line and the namespaces: the plan, the environment's edits
/// and what must be learnt in the caller's namespaces. They need no privilege and change nothing
/// outside this process but, with `settings.pack_fds`, its descriptors: the property tests
/// (`proptests`) run them for every generated input, as [`enter`] does.
#[inline(always)]
fn prepare<'s>(
    request: &'s Request<'s>,
    settings: &Settings,
    env: &mut Environment<'s>,
    plan: &'s mut plan::Storage,
    fds: &mut process::fds::Storage,
    inherited: sys::InheritedFds,
    bump: &mut Bump<'static>,
) -> error::Result<(Plan<'s>, Prepared)> {
    let plan = plan::plan(request, plan, bump)?;
    env.apply_edits(bump, request.setenv, request.unsetenv)?;
    let prepared = process::prepare(settings, &plan, env, fds, inherited, bump)?;
    Ok((plan, prepared))
}

impl Entered<'_> {
    /// In the command's process: the new root, then the process itself; ready to exec.
    pub(crate) fn build(&mut self) -> error::Result<()> {
        let settings = self.settings;
        process::name_listener(&mut self.env, &mut self.bump, self.prepared.listener)?;
        let umask = rustix::process::umask(Mode::empty());
        let context = mounts::Context {
            ttyname: self.prepared.ttyname,
            umask,
            debug: settings.debug,
            floor: self.floor,
            new_proc: settings.unshare_pid,
        };
        mounts::setup(&self.plan, self.mounts, &context)?;
        process::finish(settings, &self.prepared, umask)
    }

    /// The command, in place of this process; returns only the error that prevented it.
    pub(crate) fn exec(&mut self) -> Error {
        let (command, argv) = self.command;
        let errno = process::exec::execvp(command, argv, &self.env, self.exec, self.mounts.spare_path());
        Error::sys(Syscall::Execvp, errno).for_argument(command)
    }
}

/// The command's process: `started` is the PID namespace's word on it (always `Ok` without one).
fn build_and_exec(sandbox: &mut Entered<'_>, started: error::Result<()>) -> i32 {
    let e = match started.and_then(|()| sandbox.build()) {
        Ok(()) => sandbox.exec(),
        Err(e) => e,
    };
    exit_status(&e)
}

/// An error's exit status, after its one line: 127 when the command does not exist.
fn exit_status(e: &Error) -> i32 {
    let not_found = e.errno() == Some(Errno::NOENT) && matches!(e.cause, Cause::Sys { syscall: Syscall::Execvp, .. });
    let status = report::report(e);
    if not_found { EXIT_NOT_FOUND } else { status }
}
