//! Errors: one line on stderr naming the option, its paths and the cause; the original's
//! explanations for ENOSYS and for a forbidden `unshare()`.

use core::ffi::CStr;

use rustix::io::Errno;

use crate::containers::Full;
use crate::line::Line;

/// What went wrong, without the subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// A syscall failed.
    Sys { syscall: &'static str, errno: Errno },
    /// Bad input or a broken invariant, described in words.
    Text(&'static str),
    /// A fixed capacity was exceeded.
    Capacity { what: &'static str, max: usize },
}

/// An error with its subject: the option (or stage) and up to two of its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Error {
    pub subject: &'static str,
    pub args: [Option<&'static CStr>; 2],
    pub cause: Cause,
}

pub type Result<T> = core::result::Result<T, Error>;

impl Error {
    pub const fn sys(syscall: &'static str, errno: Errno) -> Self {
        Self { subject: "", args: [None, None], cause: Cause::Sys { syscall, errno } }
    }

    pub const fn message(subject: &'static str, text: &'static str) -> Self {
        Self { subject, args: [None, None], cause: Cause::Text(text) }
    }

    pub const fn capacity(what: &'static str, max: usize) -> Self {
        Self { subject: "", args: [None, None], cause: Cause::Capacity { what, max } }
    }

    /// Names the subject unless a more precise one was already named.
    pub fn about(mut self, subject: &'static str, a: Option<&'static CStr>, b: Option<&'static CStr>) -> Self {
        if self.subject.is_empty() {
            self.subject = subject;
            self.args = [a, b];
        }
        self
    }

    pub fn errno(&self) -> Option<Errno> {
        match self.cause {
            Cause::Sys { errno, .. } => Some(errno),
            _ => None,
        }
    }

    /// Writes the one-line message into `out`; returns the length used.
    pub fn render(&self, out: &mut Line) {
        out.push(b"mkosi-sandbox: ");
        let mut any = false;
        if !self.subject.is_empty() {
            out.push(self.subject.as_bytes());
            any = true;
        }
        for arg in self.args.iter().flatten() {
            if any {
                out.push(b" ");
            }
            out.push(arg.to_bytes());
            any = true;
        }
        if any {
            out.push(b": ");
        }
        match self.cause {
            Cause::Sys { syscall, errno } => {
                // Operations name their option; stages also name the failing syscall.
                if self.subject != syscall && !self.subject.starts_with("--") {
                    out.push(syscall.as_bytes());
                    out.push(b": ");
                }
                out.push(strerror(errno).as_bytes());
            }
            Cause::Text(text) => out.push(text.as_bytes()),
            Cause::Capacity { what, max } => {
                out.push(b"too many ");
                out.push(what.as_bytes());
                out.push(b" (max ");
                out.push_u64(max as u64);
                out.push(b")");
            }
        }
        out.push(b"\n");
    }
}

/// Names the syscall behind a raw kernel error.
pub trait During<T> {
    fn during(self, syscall: &'static str) -> Result<T>;
}

impl<T> During<T> for core::result::Result<T, Errno> {
    fn during(self, syscall: &'static str) -> Result<T> {
        self.map_err(|errno| Error::sys(syscall, errno))
    }
}

/// What a full byte bump (`containers::Bump`) ran out of.
pub const DERIVED_STRINGS: &str = "bytes for derived strings";

/// Turns a full container into the error naming its capacity.
pub trait Overflow<T> {
    fn overflow(self, what: &'static str) -> Result<T>;
}

impl<T> Overflow<T> for core::result::Result<T, Full> {
    fn overflow(self, what: &'static str) -> Result<T> {
        self.map_err(|full| Error::capacity(what, full.capacity))
    }
}

/// Terminal styling as the original decides it: only when stdout and stderr are terminals and
/// `TERM` is not `dumb`.
pub fn styles(term_is_dumb: bool) -> (&'static str, &'static str) {
    let ttys = rustix::termios::isatty(crate::sys::stdout()) && rustix::termios::isatty(crate::sys::stderr());
    if ttys && !term_is_dumb { ("\x1b[31;1m", "\x1b[0m") } else { ("", "") }
}

/// The original's explanation printed before an ENOSYS error.
pub fn explain_enosys(out: &mut Line, syscall: &str, (red, reset): (&str, &str)) {
    let uts = rustix::system::uname();
    out.push(red.as_bytes());
    out.push(b"mkosi was unable to invoke the ");
    out.push(syscall.as_bytes());
    out.push(b"() system call.");
    out.push(reset.as_bytes());
    out.push(b"\nThis probably means either the system call is not implemented by the running kernel version (");
    out.push(uts.version().to_bytes());
    out.push(b") or the\nsystem call is prohibited via seccomp if mkosi is being executed inside a containerized environment.\n");
}

/// The original's explanation printed when `unshare()` fails with EPERM.
pub fn explain_unshare_eperm(out: &mut Line, (red, reset): (&str, &str)) {
    out.push(red.as_bytes());
    out.push(b"mkosi was forbidden to unshare namespaces");
    out.push(reset.as_bytes());
    out.push(b".\nThis probably means your distribution has restricted unprivileged user namespaces.\n");
    out.push(b"Please consult the REQUIREMENTS section of the mkosi man page, e.g. via \"mkosi\ndocumentation\", for workarounds.\n");
}

/// glibc's wording for the errors this program can meet (what the Python original printed).
pub fn strerror(errno: Errno) -> &'static str {
    match errno.raw_os_error() {
        1 => "Operation not permitted",
        2 => "No such file or directory",
        3 => "No such process",
        4 => "Interrupted system call",
        5 => "Input/output error",
        6 => "No such device or address",
        7 => "Argument list too long",
        8 => "Exec format error",
        9 => "Bad file descriptor",
        10 => "No child processes",
        11 => "Resource temporarily unavailable",
        12 => "Cannot allocate memory",
        13 => "Permission denied",
        14 => "Bad address",
        15 => "Block device required",
        16 => "Device or resource busy",
        17 => "File exists",
        18 => "Invalid cross-device link",
        19 => "No such device",
        20 => "Not a directory",
        21 => "Is a directory",
        22 => "Invalid argument",
        23 => "Too many open files in system",
        24 => "Too many open files",
        25 => "Inappropriate ioctl for device",
        26 => "Text file busy",
        27 => "File too large",
        28 => "No space left on device",
        30 => "Read-only file system",
        31 => "Too many links",
        32 => "Broken pipe",
        36 => "File name too long",
        38 => "Function not implemented",
        39 => "Directory not empty",
        40 => "Too many levels of symbolic links",
        61 => "No data available",
        75 => "Value too large for defined data type",
        95 => "Operation not supported",
        110 => "Connection timed out",
        116 => "Stale file handle",
        122 => "Disk quota exceeded",
        _ => "Unknown error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(e: Error) -> String {
        let mut line = Line::new();
        e.render(&mut line);
        String::from_utf8(line.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn op_errors_name_option_paths_and_cause() {
        let e = Error::sys("open_tree", Errno::NOENT).about("--ro-bind", Some(c"/nope"), Some(c"/x"));
        assert_eq!(text(e), "mkosi-sandbox: --ro-bind /nope /x: No such file or directory\n");
    }

    #[test]
    fn stage_errors_name_the_syscall() {
        let e = Error::sys("pivot_root", Errno::INVAL).about("setup", None, None);
        assert_eq!(text(e), "mkosi-sandbox: setup: pivot_root: Invalid argument\n");
        let e = Error::sys("unshare", Errno::PERM).about("unshare", None, None);
        assert_eq!(text(e), "mkosi-sandbox: unshare: Operation not permitted\n");
    }

    #[test]
    fn capacity_errors_give_the_limit() {
        assert_eq!(text(Error::capacity("operations", 8192)), "mkosi-sandbox: too many operations (max 8192)\n");
    }

    #[test]
    fn first_subject_wins() {
        let e = Error::message("--dir", "x").about("--bind", None, None);
        assert_eq!(e.subject, "--dir");
    }
}
