//! The argv/environ boundary: the pointers the C runtime hands to `main`, read safely.

#![allow(unsafe_code)]

use core::ffi::{CStr, c_char};

use super::Argv;

/// argv as the kernel laid it out: `argc` pointers to C strings, then NULL.
pub struct CArgs {
    argv: *const *const c_char,
    argc: usize,
}

impl CArgs {
    /// # Safety
    /// `argv` must point at `argc` valid C-string pointers followed by NULL, alive for the whole
    /// process (true of what the C runtime passes to `main`).
    pub unsafe fn new(argc: i32, argv: *const *const c_char) -> Self {
        Self { argv, argc: argc.max(0) as usize }
    }

    /// The command that starts at option index `index` and its NULL-terminated argv; `bash` when
    /// the arguments ended before a command.
    pub(crate) fn command(&self, index: usize) -> (&'static CStr, Argv) {
        if index >= self.count() {
            return (c"bash", Argv::bash());
        }
        // SAFETY: index + 1 < argc, so the result points at one of argv's entries, and the array
        // is NULL-terminated and lives for the whole process (see `new`).
        let argv = unsafe { Argv::new(self.argv.add(index + 1).cast()) };
        (self.arg(index), argv)
    }
}

impl CArgs {
    /// The arguments after the program's name.
    pub(crate) fn count(&self) -> usize {
        self.argc.saturating_sub(1)
    }

    /// Argument `index` (argv[index + 1]); empty past the end.
    pub(crate) fn arg(&self, index: usize) -> &'static CStr {
        if index >= self.count() {
            return c"";
        }
        // SAFETY: index < count, so the pointer is one of argv's C strings, which live as long as
        // the process (see `new`).
        unsafe { CStr::from_ptr(*self.argv.add(index + 1)) }
    }
}

/// environ as the C runtime handed it over: NULL-terminated C-string pointers (or NULL).
pub struct CEnv {
    envp: *const *const c_char,
}

impl CEnv {
    /// # Safety
    /// `envp` must be NULL or a NULL-terminated array of C strings alive for the whole process.
    pub unsafe fn new(envp: *const *const c_char) -> Self {
        Self { envp }
    }

    /// The entries, in order (borrowed, not copied).
    pub(crate) fn iter(&self) -> impl Iterator<Item = &'static CStr> + '_ {
        let mut at = self.envp;
        core::iter::from_fn(move || {
            if at.is_null() {
                return None;
            }
            // SAFETY: `at` is within the NULL-terminated array: it starts at its head and stops
            // advancing at the NULL (`at` becomes NULL itself then).
            let entry = unsafe { *at };
            if entry.is_null() {
                at = core::ptr::null();
                return None;
            }
            // SAFETY: not past the NULL terminator, checked above.
            at = unsafe { at.add(1) };
            // SAFETY: a non-NULL entry of environ is a C string alive for the process.
            Some(unsafe { CStr::from_ptr(entry) })
        })
    }
}
