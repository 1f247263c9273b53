//! The command's environment: the inherited one (borrowed, not copied), edited by `--setenv`,
//! `--unsetenv` and `--pack-fds` as the original edits it: its `os.environ` writes through to the
//! C environment with glibc's setenv() and unsetenv(), and its execvp() hands that on, entries
//! without `=`, with an empty name, repeated names and any bytes included.

use core::ffi::CStr;

use crate::cli::Refusal;
use crate::containers::{Bump, FixedVec};
use crate::error::{Error, Limit, Overflow, Result};

/// Entries of the environment handed to the command.
pub(crate) const MAX_ENV: usize = 4096;

pub(crate) struct Storage {
    entries: FixedVec<&'static CStr, MAX_ENV>,
}

impl Storage {
    pub(crate) const fn new() -> Self {
        Self { entries: FixedVec::new() }
    }
}

impl Default for Storage {
    fn default() -> Self {
        Self::new()
    }
}

/// The environment being built, `NAME=VALUE` entries in order.
pub(crate) struct Environment<'s> {
    entries: &'s mut FixedVec<&'static CStr, MAX_ENV>,
}

/// The name and value of a `NAME=VALUE` entry (split at the first `=`, so the name may be empty),
/// or None for an entry without `=`, which execve() allows (a bare `TERM`): such an entry is no
/// variable, as for CPython's `os.environ` and glibc's getenv(), and is passed on untouched.
fn split(entry: &CStr) -> Option<(&[u8], &[u8])> {
    let bytes = entry.to_bytes();
    let eq = bytes.iter().position(|&b| b == b'=')?;
    Some((&bytes[..eq], &bytes[eq + 1..]))
}

/// Whether `entry` is a variable named `name`.
fn named(entry: &CStr, name: &[u8]) -> bool {
    split(entry).is_some_and(|(n, _)| n == name)
}

impl<'s> Environment<'s> {
    /// Starts from the inherited entries, all of them as they are: entries without `=`, with an
    /// empty name, repeated names, any bytes (the original hands the C environment on unchanged).
    pub(crate) fn inherit(inherited: impl Iterator<Item = &'static CStr>, storage: &'s mut Storage) -> Result<Self> {
        let entries = &mut storage.entries;
        entries.truncate(0);
        for entry in inherited {
            entries.push(entry).overflow(Limit::Environment)?;
        }
        Ok(Self { entries })
    }

    pub(crate) fn entries(&self) -> &[&'static CStr] {
        self.entries.as_slice()
    }

    /// The value of `name`: its first entry's, as getenv() and `os.environ` answer.
    pub(crate) fn get(&self, name: &[u8]) -> Option<&'static [u8]> {
        self.entries.iter().find_map(|e| split(e).filter(|&(n, _)| n == name).map(|(_, value)| value))
    }

    /// Sets `name=value` as the original's `os.environ[name] = value` does (glibc's setenv()):
    /// the first entry of that name is replaced in place, later ones stay; a new name goes last.
    /// `name` is not empty and holds no `=` (`cli` refuses those for `--setenv`).
    pub(crate) fn set(&mut self, bump: &mut Bump<'static>, name: &[u8], value: &[u8]) -> Result<()> {
        let entry = bump.cstr(&[name, b"=", value]).overflow(Limit::DerivedStrings)?;
        let env = &mut *self.entries;
        let first = env.as_slice().iter().position(|e| named(e, name));
        match first {
            Some(i) => env.set(i, entry),
            None => drop(env.push(entry).overflow(Limit::Environment)?),
        }
        Ok(())
    }

    /// Unsets `name` as the original's `if name in os.environ: del os.environ[name]` does:
    /// nothing unless some entry has that name, then every entry of it goes (glibc's unsetenv());
    /// entries without `=` stay. An empty name that some entry has (`=x`) fails there (unsetenv()
    /// refuses it) and fails here.
    pub(crate) fn unset(&mut self, name: &[u8]) -> Result<()> {
        let env = &mut *self.entries;
        if name.is_empty() && env.iter().any(|e| named(e, name)) {
            return Err(Error::invalid(Refusal::VariableName));
        }
        let mut i = 0;
        while i < env.len() {
            match env.get(i) {
                Some(e) if named(e, name) => env.remove(i),
                _ => i += 1,
            }
        }
        Ok(())
    }

    /// `--setenv` in order, then `--unsetenv` (unset wins).
    pub(crate) fn apply_edits(
        &mut self,
        bump: &mut Bump<'static>,
        set: &[(&'static CStr, &'static CStr)],
        unset: &[&'static CStr],
    ) -> Result<()> {
        for (name, value) in set {
            self.set(bump, name.to_bytes(), value.to_bytes())?;
        }
        for name in unset {
            self.unset(name.to_bytes()).map_err(|e| e.for_option("--unsetenv", Some(name), None))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(entries: &[&[u8]]) -> (Environment<'static>, Bump<'static>) {
        let storage = Box::leak(Box::new(Storage::new()));
        let entries = entries.iter().map(|e| &*Box::leak(std::ffi::CString::new(*e).unwrap().into_boxed_c_str()));
        let env = Environment::inherit(entries, storage).unwrap();
        (env, Bump::new(Box::leak(vec![0u8; 1 << 16].into_boxed_slice())))
    }

    fn list(env: &Environment<'_>) -> Vec<Vec<u8>> {
        env.entries().iter().map(|e| e.to_bytes().to_vec()).collect()
    }

    fn edits(
        env: &mut Environment<'static>,
        bump: &mut Bump<'static>,
        set: &[(&str, &str)],
        unset: &[&str],
    ) -> Result<()> {
        let c = |s: &str| &*Box::leak(std::ffi::CString::new(s).unwrap().into_boxed_c_str());
        let set: Vec<_> = set.iter().map(|&(n, v)| (c(n), c(v))).collect();
        let unset: Vec<_> = unset.iter().map(|&n| c(n)).collect();
        env.apply_edits(bump, &set, &unset)
    }

    // What CPython 3.11 running the original hands on, seen by the command (a raw execve() with
    // these entries, the command printing /proc/self/environ): every case below was run so.
    const ODD: &[&[u8]] = &[b"TERM", b"=x", b"A=1", b"A=2", b"B=\xff\xfe", b"PATH=/usr/bin:/bin", b"==y", b""];

    #[test]
    fn odd_entries_pass_unchanged() {
        let (env, _) = env_of(ODD);
        assert_eq!(list(&env), ODD);
        // A bare name is no variable (this sliced past the entry once: every start failed).
        assert_eq!(env.get(b"TERM"), None);
        assert_eq!(env.get(b"A"), Some(&b"1"[..]), "the first of a repeated name");
        assert_eq!(env.get(b""), Some(&b"x"[..]));
        assert_eq!(env.get(b"B"), Some(&b"\xff\xfe"[..]));
    }

    #[test]
    fn setenv_replaces_the_first_of_a_name_and_keeps_the_rest() {
        let (mut env, mut bump) = env_of(ODD);
        edits(&mut env, &mut bump, &[("A", "3")], &[]).unwrap();
        assert_eq!(
            list(&env),
            [&b"TERM"[..], b"=x", b"A=3", b"A=2", b"B=\xff\xfe", b"PATH=/usr/bin:/bin", b"==y", b""]
        );
        // A bare TERM is no TERM variable: the new one goes last, the bare one stays.
        let (mut env, mut bump) = env_of(ODD);
        edits(&mut env, &mut bump, &[("TERM", "t")], &[]).unwrap();
        assert_eq!(list(&env).last().unwrap(), b"TERM=t");
        assert_eq!(list(&env)[..ODD.len()], *ODD);
    }

    #[test]
    fn unsetenv_removes_every_entry_of_a_name_and_no_bare_one() {
        let (mut env, mut bump) = env_of(ODD);
        edits(&mut env, &mut bump, &[], &["A"]).unwrap();
        assert_eq!(list(&env), [&b"TERM"[..], b"=x", b"B=\xff\xfe", b"PATH=/usr/bin:/bin", b"==y", b""]);
        for name in ["TERM", "A=1", "=y", "NOPE"] {
            let (mut env, mut bump) = env_of(ODD);
            edits(&mut env, &mut bump, &[], &[name]).unwrap();
            assert_eq!(list(&env), ODD, "--unsetenv {name} changes nothing");
        }
    }

    #[test]
    fn a_name_is_what_comes_before_the_first_eq() {
        // `A=1=` is A, set to `1=`: --unsetenv A=1 leaves it (glibc's unsetenv("A=1") alone
        // would drop it; the original asks `os.environ` first), --unsetenv A drops it.
        let (mut env, mut bump) = env_of(&[b"A=1=", b"B=2"]);
        edits(&mut env, &mut bump, &[], &["A=1"]).unwrap();
        assert_eq!(list(&env), [&b"A=1="[..], b"B=2"]);
        assert_eq!(env.get(b"A"), Some(&b"1="[..]));
        edits(&mut env, &mut bump, &[], &["A"]).unwrap();
        assert_eq!(list(&env), [&b"B=2"[..]]);
    }

    #[test]
    fn unsetenv_of_an_empty_name_fails_only_where_an_entry_has_it() {
        let (mut env, mut bump) = env_of(ODD);
        let e = edits(&mut env, &mut bump, &[], &[""]).unwrap_err();
        let mut line = crate::line::Line::new();
        e.render(&mut line);
        assert_eq!(line.as_bytes(), b"mkosi-sandbox: --unsetenv : invalid variable name\n");
        let (mut env, mut bump) = env_of(&[b"A=1", b"TERM"]);
        edits(&mut env, &mut bump, &[], &[""]).unwrap();
        assert_eq!(list(&env), [&b"A=1"[..], b"TERM"]);
    }

    #[test]
    fn setenv_keeps_position_and_appends_new() {
        let (mut env, mut bump) = env_of(&[b"A=1", b"PATH=/x", b"B=2"]);
        env.set(&mut bump, b"A", b"new").unwrap();
        env.set(&mut bump, b"C", b"3").unwrap();
        assert_eq!(list(&env), [&b"A=new"[..], b"PATH=/x", b"B=2", b"C=3"]);
        env.unset(b"PATH").unwrap();
        assert_eq!(list(&env), [&b"A=new"[..], b"B=2", b"C=3"]);
        assert_eq!(env.get(b"B"), Some(&b"2"[..]));
        assert_eq!(env.get(b"PATH"), None);
    }

    #[test]
    fn unset_wins_over_set() {
        let (mut env, mut bump) = env_of(&[b"X=1"]);
        edits(&mut env, &mut bump, &[("Y", "v")], &["Y", "X"]).unwrap();
        assert!(list(&env).is_empty());
    }

    #[test]
    fn a_full_environment_is_a_clean_error() {
        let many: Vec<Vec<u8>> = (0..MAX_ENV).map(|i| format!("V{i}=x").into_bytes()).collect();
        let many: Vec<&[u8]> = many.iter().map(|v| &v[..]).collect();
        let (mut env, mut bump) = env_of(&many);
        env.set(&mut bump, b"V7", b"y").unwrap();
        let e = env.set(&mut bump, b"NEW", b"y").unwrap_err();
        assert_eq!(e.cause, crate::error::Cause::Capacity { what: Limit::Environment, max: MAX_ENV });
    }
}
