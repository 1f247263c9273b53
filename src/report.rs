//! The one-line report of an error that ends the program, and its exit status.

use rustix::io::Errno;

use crate::error::{self, Cause, Error, Syscall};
use crate::line::Line;

/// Prints the error (with the original's explanations for ENOSYS and a forbidden unshare);
/// returns the exit status 1.
pub(crate) fn report(error: &Error, term_is_dumb: bool) -> i32 {
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
