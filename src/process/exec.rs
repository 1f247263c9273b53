//! The end of the sandbox: `execvp()` of the command in the new environment.

use core::ffi::CStr;

use rustix::io::Errno;

use super::env::{Environment, MAX_ENV};
use crate::path::PathBuf;
use crate::sys::{self, Argv, Envp, EnvpSlots};

pub struct Storage {
    /// The NULL-terminated environment handed to execve().
    envp: EnvpSlots<{ MAX_ENV + 1 }>,
}

impl Storage {
    pub const fn new() -> Self {
        Self { envp: EnvpSlots::new() }
    }
}

impl Default for Storage {
    fn default() -> Self {
        Self::new()
    }
}

/// `os.execvp()`: a PATH search in the new environment (default `/bin:/usr/bin`), without the
/// shell fallback for ENOEXEC. Returns the error that decides the outcome: the first one other
/// than ENOENT/ENOTDIR, else the last. `path` holds each candidate: a buffer that set-up has
/// already touched will do (see `mounts::Storage::spare_path`), so the search costs no page fault.
pub fn execvp(command: &CStr, argv: Argv, env: &Environment<'_>, storage: &mut Storage, path: &mut PathBuf) -> Errno {
    let Storage { envp } = storage;
    // The environment cannot outgrow its storage; the array has room for it and the NULL.
    let Some(envp) = Envp::new(envp, env.entries()) else { return Errno::TOOBIG };

    let name = command.to_bytes();
    if name.contains(&b'/') {
        return sys::execve(command, argv, &envp);
    }
    let search = env.get(b"PATH").unwrap_or(b"/bin:/usr/bin");
    let mut saved: Option<Errno> = None;
    let mut last = Errno::NOENT;
    for dir in search.split(|&b| b == b':') {
        path.clear();
        if !dir.is_empty() {
            if path.push(dir).is_err() || path.push_component(name).is_err() {
                last = Errno::NAMETOOLONG;
                continue;
            }
        } else if path.push(name).is_err() {
            continue;
        }
        let err = sys::execve(path.as_cstr(), argv, &envp);
        if err != Errno::NOENT && err != Errno::NOTDIR && saved.is_none() {
            saved = Some(err);
        }
        last = err;
    }
    saved.unwrap_or(last)
}
