//! The end of the sandbox: `execvp()` of the command in the new environment.

use core::ffi::CStr;

use rustix::io::Errno;

use super::env::{Environment, MAX_ENV};
use crate::path::PathBuf;
use crate::sys::{self, Argv, Envp, EnvpSlots};

pub(crate) struct Storage {
    /// The NULL-terminated environment handed to execve().
    envp: EnvpSlots<{ MAX_ENV + 1 }>,
}

impl Storage {
    pub(crate) const fn new() -> Self {
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
pub(crate) fn execvp(
    command: &CStr,
    argv: Argv,
    env: &Environment<'_>,
    storage: &mut Storage,
    path: &mut PathBuf,
) -> Errno {
    let Storage { envp } = storage;
    // The environment cannot outgrow its storage; the array has room for it and the NULL.
    let Some(envp) = Envp::new(envp, env.entries()) else { return Errno::TOOBIG };
    search(command, env.get(b"PATH"), path, |candidate| sys::execve(candidate, argv, &envp))
}

/// The search itself: tries each candidate with `exec` (which returns only its error).
fn search(command: &CStr, search: Option<&[u8]>, path: &mut PathBuf, mut exec: impl FnMut(&CStr) -> Errno) -> Errno {
    let name = command.to_bytes();
    if name.contains(&b'/') {
        return exec(command);
    }
    let search = search.unwrap_or(b"/bin:/usr/bin");
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
        let err = exec(path.as_cstr());
        if err != Errno::NOENT && err != Errno::NOTDIR && saved.is_none() {
            saved = Some(err);
        }
        last = err;
    }
    saved.unwrap_or(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The candidates tried, and the outcome, when `fails` gives each candidate's error.
    fn tried(command: &CStr, search: Option<&[u8]>, fails: impl Fn(&[u8]) -> Errno) -> (Vec<String>, Errno) {
        let mut path = PathBuf::new();
        let mut seen = Vec::new();
        let outcome = super::search(command, search, &mut path, |c| {
            seen.push(String::from_utf8(c.to_bytes().to_vec()).unwrap());
            fails(c.to_bytes())
        });
        (seen, outcome)
    }

    #[test]
    fn a_name_with_a_slash_is_not_searched() {
        let (seen, outcome) = tried(c"./run", Some(b"/bin"), |_| Errno::ACCESS);
        assert_eq!((seen, outcome), (vec!["./run".into()], Errno::ACCESS));
    }

    #[test]
    fn without_path_the_default_is_bin_then_usr_bin() {
        let (seen, outcome) = tried(c"sh", None, |_| Errno::NOENT);
        assert_eq!((seen, outcome), (vec!["/bin/sh".into(), "/usr/bin/sh".into()], Errno::NOENT));
    }

    #[test]
    fn an_empty_entry_means_the_working_directory() {
        let (seen, _) = tried(c"sh", Some(b"/a::/b"), |_| Errno::NOENT);
        assert_eq!(seen, ["/a/sh", "sh", "/b/sh"]);
    }

    #[test]
    fn the_first_error_other_than_not_found_decides() {
        let fails = |c: &[u8]| match c {
            b"/a/sh" => Errno::NOTDIR,
            b"/b/sh" => Errno::ACCESS,
            b"/c/sh" => Errno::NOEXEC,
            _ => Errno::NOENT,
        };
        let (seen, outcome) = tried(c"sh", Some(b"/a:/b:/c:/d"), fails);
        assert_eq!(seen.len(), 4, "every candidate is tried: {seen:?}");
        assert_eq!(outcome, Errno::ACCESS);
    }

    #[test]
    fn only_not_found_reports_the_last() {
        let fails = |c: &[u8]| if c == b"/a/sh" { Errno::NOTDIR } else { Errno::NOENT };
        assert_eq!(tried(c"sh", Some(b"/a:/b"), fails).1, Errno::NOENT);
        assert_eq!(tried(c"sh", Some(b"/b:/a"), fails).1, Errno::NOTDIR);
    }

    #[test]
    fn a_directory_too_long_is_skipped_and_reported_when_nothing_else_is_found() {
        let long = [b'/'].into_iter().chain(std::iter::repeat_n(b'x', crate::path::PATH_CAP)).collect::<Vec<u8>>();
        let (seen, outcome) = tried(c"sh", Some(&long), |_| Errno::NOENT);
        assert!(seen.is_empty());
        assert_eq!(outcome, Errno::NAMETOOLONG);
    }
}
