//! mkosi-sandbox: a drop-in, static re-implementation of mkosi's namespace sandbox.
//!
//! [`run`] is the whole program, one typed stage after the other, data flowing one way:
//!
//! ```text
//! argv ─ cli::parse ─→ Parsed (Request: settings + operations, borrowing argv)
//!      ─ plan::plan ─→ Plan (de-duplicated, ordered operations)
//!      ─ process::prepare ─→ Prepared (cwd, terminal; --pack-fds, in the caller's namespaces)
//!      ─ namespaces::enter (seccomp, unshare, uid/gid maps)
//!      ─ pidns::start (with --unshare-pid: start the init, which starts the command's process)
//!      ─ mounts::setup(&Plan) (the new root)
//!      ─ process::finish, process::exec::execvp
//! ```
//!
//! Each stage owns its working storage (`cli::Storage`, `plan::Storage`, ...); [`Storage`] holds
//! them all, and `main.rs` keeps the one static instance. There is no heap.
//!
//! Layers, bottom to top; a module uses only modules in layers below its own (checked by
//! `make check`, see `tests/layers.sh`):
//!
//! 1. [`containers`], [`decimal`], [`options`]: fixed-capacity storage, numbers, the one table of
//!    options (no crate imports)
//! 2. [`sys`]: the raw syscall boundary
//! 3. [`line`](mod@line): one line of output on stderr
//! 4. [`error`]: errors and their one-line rendering
//! 5. [`path`], [`subid`], [`foreign_uid`]: path buffers and resolution inside a root; subordinate
//!    id ranges; mkosi 27's foreign-UID options (`--map-foreign`, ...)
//! 6. [`request`]: what a command line asks for (operations, settings), as later stages read it
//! 7. [`cli`]: argv into a request
//! 8. [`plan`]: the order of operations
//! 9. [`process`]: argv/environ, environment, descriptors, exec
//! 10. [`seccomp`], [`userns`], [`binfmt`], [`mapper`]: the filter, ids and capabilities;
//!     binfmt_misc rules and the sandbox's own instance; the helper that writes multi-range maps
//! 11. [`namespaces`], [`pidns`]: leaving the caller's namespaces; the PID namespace's init and
//!     `--die-with-parent`
//! 12. [`mounts`]: the sandbox's filesystem
//! 13. this file: [`run`] and [`Storage`]
//!
//! `unsafe` is denied everywhere but at the boundaries: [`sys`] (raw syscalls),
//! [`process::args`] (argv/environ pointers), [`process::fds`] (inherited descriptor numbers),
//! [`containers`] (uninitialised storage), `main.rs`, and the two `close_range()` calls of
//! [`pidns`] (the processes that only wait let go of every descriptor from 3 up).

#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

pub mod binfmt;
pub mod cli;
pub mod containers;
pub mod decimal;
pub mod error;
pub mod foreign_uid;
pub mod line;
pub mod mapper;
pub mod mounts;
pub mod namespaces;
pub mod options;
pub mod path;
pub mod pidns;
pub mod plan;
pub mod process;
pub mod request;
pub mod seccomp;
pub mod subid;
pub mod sys;
pub mod userns;

use cli::Parsed;
use containers::Bump;
use error::{Cause, Error, Syscall};
use line::Line;
use process::args::{CArgs, CEnv};
use process::env::Environment;
use rustix::fs::Mode;
use rustix::io::Errno;

/// Exit status when the command does not exist, as shells (and the original) use.
pub const EXIT_NOT_FOUND: i32 = 127;

/// Bytes for derived strings: sort keys, `NAME=VALUE` pairs, the cwd. Larger than the kernel's
/// limit on argv plus environ (ARG_MAX at the default stack rlimit is 2 MiB) so that every key of
/// the largest possible command line fits.
pub const MAX_DERIVED_BYTES: usize = 6 << 20;

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

/// Runs the sandbox; returns the exit status when it does not exec.
pub fn run(args: &CArgs, environ: &CEnv, storage: &'static mut Storage) -> i32 {
    let Storage { cli, plan, env, fds, namespaces: ids, mounts, exec, binfmt, pidns, derived } = storage;
    let mut bump = Bump::new(derived);

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
        Err(e) => return report(&e, false),
    };
    let settings = &request.settings;

    let mut env = match Environment::inherit(environ.iter(), env) {
        Ok(env) => env,
        Err(e) => return report(&e, false),
    };
    let term_is_dumb = env.get(b"TERM") == Some(b"dumb");
    // Before the set-up, so that a caller dying during it is noticed (`pidns::die_with`).
    let parent = pidns::parent(settings.die_with_parent);

    // An error's exit status, after its one line.
    let outcome = move |result: error::Result<i32>| match result {
        Ok(status) => status,
        Err(e) => {
            let not_found =
                e.errno() == Some(Errno::NOENT) && matches!(e.cause, Cause::Sys { syscall: Syscall::Execvp, .. });
            let status = report(&e, term_is_dumb);
            if not_found { EXIT_NOT_FOUND } else { status }
        }
    };
    let result = (|| -> error::Result<i32> {
        let plan = plan::plan(&request, plan, &mut bump)?;
        env.apply_edits(&mut bump, request.setenv, request.unsetenv)?;
        let prepared = process::prepare(settings, &plan, &mut env, fds, &mut bump)?;
        if settings.binfmt_register {
            binfmt::load(request.binfmt_rules, binfmt, &mut bump)?;
        }
        namespaces::enter(&request, ids, &mut bump)?;
        if let Some(parent) = parent {
            pidns::die_with(parent)?;
        }
        let floor = if settings.binfmt_register { Some(binfmt::register(binfmt)?) } else { None };
        let mut command = || -> error::Result<i32> {
            if settings.unshare_pid {
                pidns::announce(&mut env, &mut bump)?;
            }
            let umask = rustix::process::umask(Mode::empty());
            let context = mounts::Context {
                ttyname: prepared.ttyname,
                umask,
                debug: settings.debug,
                floor,
                new_proc: settings.unshare_pid,
            };
            mounts::setup(&plan, mounts, &context)?;
            process::finish(settings, &prepared, umask)?;

            let (command, argv) = args.command(settings.command);
            let errno = process::exec::execvp(command, argv, &env, exec, mounts.spare_path());
            Err(Error::sys(Syscall::Execvp, errno).for_argument(command))
        };
        if settings.unshare_pid {
            // The sandbox process waits here; the command runs in its grandchild.
            return pidns::start(pidns, &mut |started| outcome(started.and_then(|()| command())));
        }
        command()
    })();
    outcome(result)
}

/// Prints the error (with the original's explanations for ENOSYS and a forbidden unshare);
/// returns the exit status 1.
fn report(error: &Error, term_is_dumb: bool) -> i32 {
    // Made here, not up front: an 8 KiB buffer costs page faults on every start otherwise.
    let mut line = Line::new();
    let line = &mut line;
    if let Cause::Sys { syscall, errno } = error.cause {
        if errno == Errno::NOSYS {
            error::explain_enosys(line, syscall.name(), error::styles(term_is_dumb));
        } else if errno == Errno::PERM && syscall == Syscall::Unshare {
            error::explain_unshare_eperm(line, error::styles(term_is_dumb));
        }
    }
    error.render(line);
    line.flush_to_stderr();
    1
}
