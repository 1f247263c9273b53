//! The command's environment: the inherited one (borrowed, not copied), edited by `--setenv`,
//! `--unsetenv` and `--pack-fds`, in the order Python's `os.environ` keeps.

use core::ffi::CStr;

use crate::containers::{Bump, FixedVec};
use crate::error::{Limit, Overflow, Result};

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

fn name_of(entry: &CStr) -> &[u8] {
    let bytes = entry.to_bytes();
    &bytes[..bytes.iter().position(|&b| b == b'=').unwrap_or(bytes.len())]
}

impl<'s> Environment<'s> {
    /// Starts from the inherited entries.
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

    /// The value of `name`.
    pub(crate) fn get(&self, name: &[u8]) -> Option<&'static [u8]> {
        self.entries.iter().find(|e| name_of(e) == name).map(|e| &e.to_bytes()[name.len() + 1..])
    }

    /// Sets `name=value`: an existing variable keeps its place (as in Python's `os.environ`), a
    /// new one goes last; later duplicates of the name are dropped.
    pub(crate) fn set(&mut self, bump: &mut Bump<'static>, name: &[u8], value: &[u8]) -> Result<()> {
        let entry = bump.cstr(&[name, b"=", value]).overflow(Limit::DerivedStrings)?;
        let env = &mut *self.entries;
        let mut placed = false;
        let mut i = 0;
        while i < env.len() {
            match env.get(i) {
                Some(e) if name_of(e) == name => {
                    if placed {
                        env.remove(i);
                        continue;
                    }
                    env.set(i, entry);
                    placed = true;
                }
                _ => {}
            }
            i += 1;
        }
        if !placed {
            env.push(entry).overflow(Limit::Environment)?;
        }
        Ok(())
    }

    pub(crate) fn unset(&mut self, name: &[u8]) {
        let env = &mut *self.entries;
        let mut i = 0;
        while i < env.len() {
            match env.get(i) {
                Some(e) if name_of(e) == name => env.remove(i),
                _ => i += 1,
            }
        }
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
            self.unset(name.to_bytes());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(entries: &[&str]) -> (Environment<'static>, Bump<'static>) {
        let storage = Box::leak(Box::new(Storage::new()));
        let env = Environment::inherit(crate::cli::tests::leak(entries).into_iter(), storage).unwrap();
        (env, Bump::new(Box::leak(vec![0u8; 1 << 16].into_boxed_slice())))
    }

    fn list(env: &Environment<'_>) -> Vec<String> {
        env.entries().iter().map(|e| e.to_str().unwrap().to_string()).collect()
    }

    #[test]
    fn setenv_keeps_position_and_appends_new() {
        let (mut env, mut bump) = env_of(&["A=1", "PATH=/x", "B=2", "A=dup"]);
        env.set(&mut bump, b"A", b"new").unwrap();
        env.set(&mut bump, b"C", b"3").unwrap();
        assert_eq!(list(&env), ["A=new", "PATH=/x", "B=2", "C=3"]);
        env.unset(b"PATH");
        assert_eq!(list(&env), ["A=new", "B=2", "C=3"]);
        assert_eq!(env.get(b"B"), Some(&b"2"[..]));
        assert_eq!(env.get(b"PATH"), None);
    }

    #[test]
    fn unset_wins_over_set() {
        let (mut env, mut bump) = env_of(&["X=1"]);
        let names = crate::cli::tests::leak(&["Y", "v", "Y", "X"]);
        env.apply_edits(&mut bump, &[(names[0], names[1])], &[names[2], names[3]]).unwrap();
        assert!(list(&env).is_empty());
    }
}
