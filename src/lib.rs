//! mkosi-sandbox: a drop-in, static re-implementation of mkosi's namespace sandbox.
//!
//! The data flows one way: argv → [`cli`] (operations and settings, borrowing argv) → [`plan`]
//! (de-duplicated, ordered) → [`userns`] and [`seccomp`] (privileges) → [`mounts`] (syscalls) →
//! [`process`] (environment and exec). All derived data lives in the static [`arena`].

#![cfg_attr(not(test), no_std)]

pub mod arena;
pub mod cli;
pub mod error;
pub mod mounts;
pub mod path;
pub mod plan;
pub mod process;
pub mod seccomp;
pub mod sys;
pub mod userns;

use core::ffi::CStr;

use arena::{Arena, Bump};
use cli::{Args, Chdir, Collect, Parsed, Settings};
use error::{Cause, During, Error, Line, Result};
use process::{CArgs, CEnv};
use rustix::io::Errno;

/// Exit status when the command does not exist, as shells (and the original) use.
pub const EXIT_NOT_FOUND: i32 = 127;

/// Runs the sandbox; returns the exit status when it does not exec.
pub fn main(args: &CArgs, environ: &CEnv, arena: &'static mut Arena) -> i32 {
    let Arena { ops, order, keys, lowerdirs, setenv, unsetenv, env, fds, scratch, bytes, binds, envp: envp_out } =
        arena;
    let mut bump = Bump::new(bytes);

    let parsed = cli::parse(args, Collect { ops, lowerdirs, setenv, unsetenv });
    let settings = match parsed {
        Ok(Parsed::Run(settings)) => settings,
        Ok(Parsed::Help) => {
            // SAFETY: fd 2 is borrowed only for the isatty ioctl.
            let highlight = rustix::termios::isatty(unsafe { rustix::stdio::stderr() });
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

    if let Err(e) = environ.inherit_into(env) {
        return report(&e, false);
    }
    let term_is_dumb = process::getenv(env, b"TERM") == Some(b"dumb");

    let result = (|| -> Result<Errno> {
        let order = plan::plan(ops, keys, order, binds, &mut bump)?;
        process::apply_env_edits(env, &mut bump, setenv, unsetenv)?;
        let ready = prepare(&settings, ops, order, env, fds, &mut bump)?;
        let mut ctx = mounts::Context { scratch, lowerdirs, ttyname: ready.ttyname, umask: 0, debug: settings.debug };
        enter_namespaces(&settings)?;
        ctx.umask = rustix::process::umask(rustix::fs::Mode::empty()).bits();
        mounts::setup(&mut ctx, ops, order)?;
        finish(&settings, ready.cwd, ctx.umask)?;

        let (command, argv) = if settings.command < args.count() {
            (args.arg(settings.command), args.tail(settings.command))
        } else {
            // SAFETY: DEFAULT_COMMAND is a static, NULL-terminated array of one string literal.
            (c"bash", unsafe { sys::Argv::new(DEFAULT_COMMAND.0.as_ptr()) })
        };
        let errno = process::execvp(command, argv, env, envp_out, &mut scratch.a);
        Err(Error::sys("execvp", errno).about("", Some(command), None))
    })();
    match result {
        Ok(_) => 0,
        Err(e) => {
            let not_found = e.errno() == Some(Errno::NOENT) && matches!(e.cause, Cause::Sys { syscall: "execvp", .. });
            let status = report(&e, term_is_dumb);
            if not_found { EXIT_NOT_FOUND } else { status }
        }
    }
}

/// `["bash", NULL]`: the default command.
struct DefaultCommand([*const u8; 2]);
// SAFETY: the pointers refer to a string literal; nothing ever writes through them.
unsafe impl Sync for DefaultCommand {}
static DEFAULT_COMMAND: DefaultCommand = DefaultCommand([c"bash".as_ptr().cast(), core::ptr::null()]);

struct Ready {
    ttyname: Option<&'static CStr>,
    cwd: Option<&'static CStr>,
}

/// Work that must happen in the caller's namespaces: the cwd for `--same-dir`, the terminal name
/// for `/dev/console`, and `--pack-fds`.
fn prepare(
    settings: &Settings,
    ops: &arena::FixedVec<cli::Op, { arena::MAX_OPS }>,
    order: &[u32],
    env: &mut arena::FixedVec<&'static CStr, { arena::MAX_ENV }>,
    fds: &mut arena::FixedVec<u32, { arena::MAX_FDS }>,
    bump: &mut Bump<'static>,
) -> Result<Ready> {
    let cwd = match settings.chdir {
        Some(Chdir::Path(p)) => Some(p),
        Some(Chdir::SameDir) => {
            let mut buf = [0u8; path::PATH_CAP];
            let cwd = sys::getcwd(&mut buf).during("getcwd").map_err(|e| e.about("--same-dir", None, None))?;
            Some(bump.cstr(&[cwd])?)
        }
        None => None,
    };
    let has_dev = order.iter().any(|&i| ops.get(i as usize).is_some_and(|op| op.kind == cli::OpKind::Dev));
    let ttyname = if has_dev { process::stderr_ttyname(bump) } else { None };
    let mut digits = [0u8; 20];
    let packed = if settings.pack_fds { process::pack_fds(fds)? } else { 0 };
    if packed > 0 {
        process::setenv(env, bump, b"LISTEN_FDS", process::decimal(packed as u64, &mut digits))?;
    }
    // The descriptors belong to this process, which the command replaces: LISTEN_PID names it.
    // Also when the caller set LISTEN_FDS itself, as mkosi 25 does (its sandbox fixed the pid).
    if packed > 0 || process::getenv(env, b"LISTEN_FDS").is_some() {
        let pid = rustix::process::getpid().as_raw_nonzero().get() as u64;
        process::setenv(env, bump, b"LISTEN_PID", process::decimal(pid, &mut digits))?;
    }
    Ok(Ready { ttyname, cwd })
}

/// Privileges and namespaces: decide on a user namespace, install the seccomp filter, unshare
/// everything in one call, then write the maps (or make `/` a slave when no user namespace).
fn enter_namespaces(settings: &Settings) -> Result<()> {
    let caller = userns::Caller::current()?;
    let userns = caller.needs_userns(settings.become_root);
    let flags = userns::namespaces(&caller, userns, settings.unshare_net, settings.unshare_ipc);
    let chown = settings.suppress_chown && (userns || userns::uid_map_has_single_user());
    seccomp::install(chown, settings.suppress_sync)?;
    sys::unshare(flags).during("unshare").map_err(|e| e.about("unshare", None, None))?;
    if userns {
        userns::write_maps(&caller, settings.become_root).map_err(|e| e.about("user namespace", None, None))?;
        if !settings.become_root {
            userns::raise_ambient().map_err(|e| e.about("capabilities", None, None))?;
        }
    } else {
        // A user namespace makes the copied mounts slaves by itself; without one, do it here so
        // that nothing done in the sandbox propagates to the host.
        sys::mount(None, c"/", None, sys::MS_SLAVE | sys::MS_REC, None)
            .during("mount")
            .map_err(|e| e.about("mount /", None, None))?;
    }
    Ok(())
}

/// After the mounts: the working directory, the caller's umask, `--exec-fd`, `--suspend`.
fn finish(settings: &Settings, cwd: Option<&'static CStr>, umask: u32) -> Result<()> {
    if let Some(dir) = cwd {
        let option = if matches!(settings.chdir, Some(Chdir::SameDir)) { "--same-dir" } else { "--chdir" };
        rustix::process::chdir(dir).during("chdir").map_err(|e| e.about(option, Some(dir), None))?;
    }
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(umask));
    if let Some(fd) = settings.exec_fd {
        // SAFETY: the caller handed us this descriptor number; we only change its flags.
        let fd = unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) };
        rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::CLOEXEC)
            .during("fcntl")
            .map_err(|e| e.about("--exec-fd", None, None))?;
    }
    if settings.suspend {
        rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::STOP)
            .during("kill")
            .map_err(|e| e.about("--suspend", None, None))?;
    }
    Ok(())
}

/// Prints the error (with the original's explanations for ENOSYS and a forbidden unshare);
/// returns the exit status 1.
fn report(error: &Error, term_is_dumb: bool) -> i32 {
    // Made here, not up front: an 8 KiB buffer costs page faults on every start otherwise.
    let mut line = Line::new();
    let line = &mut line;
    if let Cause::Sys { syscall, errno } = error.cause {
        if errno == Errno::NOSYS {
            error::explain_enosys(line, syscall, error::styles(term_is_dumb));
        } else if errno == Errno::PERM && syscall == "unshare" {
            error::explain_unshare_eperm(line, error::styles(term_is_dumb));
        }
    }
    error.render(line);
    line.flush_to_stderr();
    1
}
