//! The one-line report of an error that ends the program, and its exit status.

use crate::error::Error;
use crate::line::Line;

/// Prints the error's one line; returns the exit status 1.
pub(crate) fn report(error: &Error) -> i32 {
    // Made here, not up front: an 8 KiB buffer costs page faults on every start otherwise.
    let mut line = Line::new();
    error.render(&mut line);
    line.flush_to_stderr();
    1
}
