//! One line (or one block) of output for stderr: error messages, `--help`, `--version` and
//! `--debug`. A fixed buffer, written with one `write()` so that lines from parallel sandboxes do
//! not mix; overlong text is cut, never a crash.

use crate::containers::Bytes;
use crate::decimal;

/// Bytes one message may take.
pub(crate) const LINE_CAP: usize = 8192;

pub(crate) struct Line(Bytes<LINE_CAP>);

impl Line {
    pub(crate) const fn new() -> Self {
        Self(Bytes::new())
    }

    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.0.push(bytes);
    }

    pub(crate) fn push_u64(&mut self, value: u64) {
        let mut digits = [0u8; decimal::MAX_DIGITS];
        self.push(decimal::format(value, &mut digits));
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }

    /// Writes the line to stderr in one `write()` (more only if the kernel takes part of it).
    pub(crate) fn flush_to_stderr(&mut self) {
        let mut rest = self.as_bytes();
        while !rest.is_empty() {
            match rustix::io::write(crate::sys::stderr(), rest) {
                Ok(0) | Err(_) => break,
                Ok(n) => rest = &rest[n..],
            }
        }
        self.clear();
    }
}

impl Default for Line {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlong_lines_are_cut_not_crashed() {
        let mut line = Line::new();
        line.push(&[b'a'; 10000]);
        assert_eq!(line.as_bytes().len(), LINE_CAP);
    }

    #[test]
    fn numbers() {
        let mut line = Line::new();
        line.push(b"max ");
        line.push_u64(8192);
        assert_eq!(line.as_bytes(), b"max 8192");
    }
}
