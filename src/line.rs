//! One line (or one block) of output for stderr: error messages, `--help`, `--version` and
//! `--debug`. A fixed buffer, written with one `write()` so that lines from parallel sandboxes do
//! not mix; overlong text is cut, never a crash.
//!
//! Values that come from outside (paths, `--write`'s data, the environment, another program's
//! words) go in through [`Line::push_value`]: whatever bytes they hold, the line stays one line of
//! bounded length. Control characters and bytes that are not UTF-8 are escaped as the original's
//! Python `repr()` shows them (`\n`, `\t`, `\x1b`, `\x85`, `\u2028`; a byte that is not UTF-8
//! as `\xff`, where Python would say `\udcff`), and a value longer than [`VALUE_WHOLE`] bytes is
//! shown as its head and tail around `…`. Everything else is copied as it is, backslashes too:
//! paths often hold systemd's escapes (`\x2d`), and no message that was one line changes.

use crate::containers::Bytes;
use crate::decimal;

/// Bytes one message may take.
pub(crate) const LINE_CAP: usize = 8192;

/// Bytes of a value shown whole; of a longer one, the first and the last [`VALUE_PART`] (at most,
/// cut between characters) are shown around `…`.
pub(crate) const VALUE_WHOLE: usize = 256;
pub(crate) const VALUE_PART: usize = 100;

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

    /// A value from outside, escaped and shortened (see the module's documentation).
    pub(crate) fn push_value(&mut self, value: &[u8]) {
        if value.len() <= VALUE_WHOLE {
            return self.push_escaped(value);
        }
        // Cut between characters: past UTF-8 continuation bytes (at most three).
        let continues = |at: usize| value.get(at).is_some_and(|&b| b & 0xc0 == 0x80);
        let mut head = VALUE_PART;
        while head > VALUE_PART - 3 && continues(head) {
            head -= 1;
        }
        let mut tail = value.len() - VALUE_PART;
        while tail < value.len() - VALUE_PART + 3 && continues(tail) {
            tail += 1;
        }
        self.push_escaped(&value[..head]);
        self.push("…".as_bytes());
        self.push_escaped(&value[tail..]);
    }

    fn push_escaped(&mut self, value: &[u8]) {
        let mut rest = value;
        while let [first, ..] = *rest {
            // A byte that is not UTF-8 becomes U+DC80..U+DCFF, as Python's surrogateescape has it.
            let (code, len) = decode(rest).unwrap_or((0xdc00 | u32::from(first), 1));
            match code {
                0x0a => self.push(b"\\n"),
                0x0d => self.push(b"\\r"),
                0x09 => self.push(b"\\t"),
                // C0, DEL and C1 controls; bytes that are not UTF-8; the Unicode line and
                // paragraph separators.
                0..0x20 | 0x7f..0xa0 | 0xdc80..0xdd00 => self.push_hex(b"\\x", code & 0xff, 2),
                0x2028 | 0x2029 => self.push_hex(b"\\u", code, 4),
                _ => self.push(&rest[..len]),
            }
            rest = &rest[len..];
        }
    }

    fn push_hex(&mut self, prefix: &[u8], value: u32, digits: u32) {
        self.push(prefix);
        for i in (0..digits).rev() {
            self.push(&[b"0123456789abcdef"[(value >> (4 * i)) as usize & 0xf]]);
        }
    }

    /// Ends the line: a newline, which a full buffer keeps in place of its last byte.
    pub(crate) fn end_line(&mut self) {
        if self.0.as_bytes().len() == LINE_CAP {
            self.0.pop();
        }
        self.push(b"\n");
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

/// The character that `bytes` start with in UTF-8, and its length; None when they start with
/// none (a stray or truncated sequence, an overlong form, a surrogate, past U+10FFFF).
fn decode(bytes: &[u8]) -> Option<(u32, usize)> {
    let first = u32::from(*bytes.first()?);
    let (len, min, mut code) = match first {
        0..0x80 => return Some((first, 1)),
        0xc2..0xe0 => (2, 0x80, first & 0x1f),
        0xe0..0xf0 => (3, 0x800, first & 0x0f),
        0xf0..0xf5 => (4, 0x1_0000, first & 0x07),
        _ => return None,
    };
    for &b in bytes.get(1..len)? {
        if b & 0xc0 != 0x80 {
            return None;
        }
        code = code << 6 | u32::from(b & 0x3f);
    }
    let valid = code >= min && code <= 0x10_ffff && !(0xd800..0xe000).contains(&code);
    valid.then_some((code, len))
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

    fn value(bytes: &[u8]) -> Vec<u8> {
        let mut line = Line::new();
        line.push_value(bytes);
        line.as_bytes().to_vec()
    }

    #[test]
    fn control_characters_are_escaped_as_python_repr_shows_them() {
        // Each as Python's repr() of the decoded str shows it (quotes left out).
        for (raw, shown) in [
            (&b"/a\nb"[..], &b"/a\\nb"[..]),
            (b"\t\r", b"\\t\\r"),
            (b"\x1b[31m", b"\\x1b[31m"),
            (b"\0\x01\x0b\x0c\x1f\x7f", b"\\x00\\x01\\x0b\\x0c\\x1f\\x7f"),
            // C1 controls (U+0085 is NEL), the line and paragraph separators.
            ("\u{85}\u{9f}".as_bytes(), b"\\x85\\x9f"),
            ("a\u{2028}b\u{2029}".as_bytes(), b"a\\u2028b\\u2029"),
            // Not UTF-8: each byte (Python: \udcff and so on, from surrogateescape).
            (b"\xff\xfe/x\xc3", b"\\xff\\xfe/x\\xc3"),
            (b"\xed\xa0\x80", b"\\xed\\xa0\\x80"),
            (b"\xe0\x80\xaf\xf4\x90\x80\x80", b"\\xe0\\x80\\xaf\\xf4\\x90\\x80\\x80"),
        ] {
            assert_eq!(value(raw), shown, "{raw:?}");
        }
    }

    #[test]
    fn printable_text_is_unchanged() {
        for raw in ["/usr/lib/os-release", "/run/systemd/system/a\\x2db.mount", "ünïcödé ✓ 日本 😀", "", " "]
        {
            assert_eq!(value(raw.as_bytes()), raw.as_bytes());
        }
    }

    #[test]
    fn decoding_agrees_with_the_standard_library() {
        // Every one- and two-byte input, and the edges of the multi-byte forms.
        let mut inputs: Vec<Vec<u8>> = (0..=0xffffu32).map(|n| n.to_be_bytes()[2..].to_vec()).collect();
        for lead in [0xe0u8, 0xed, 0xef, 0xf0, 0xf4, 0xf5] {
            for second in [0x7fu8, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0] {
                inputs.push(vec![lead, second, 0x80, 0x80]);
            }
        }
        for bytes in inputs {
            let std = bytes.utf8_chunks().next().and_then(|c| c.valid().chars().next());
            let ours = decode(&bytes).map(|(code, len)| (char::from_u32(code).unwrap(), len));
            assert_eq!(ours, std.map(|c| (c, c.len_utf8())), "{bytes:x?}");
        }
    }

    #[test]
    fn long_values_are_shortened_between_characters() {
        let whole = vec![b'a'; VALUE_WHOLE];
        assert_eq!(value(&whole), whole);
        let mut long = vec![b'h'; VALUE_PART];
        long.extend(std::iter::repeat_n(b'm', 5000));
        long.extend(std::iter::repeat_n(b't', VALUE_PART));
        let shown = String::from_utf8(value(&long)).unwrap();
        assert_eq!(shown, format!("{}…{}", "h".repeat(VALUE_PART), "t".repeat(VALUE_PART)));
        // A cut inside a character moves to its edge; the value stays valid UTF-8.
        let long = "é".repeat(VALUE_WHOLE);
        let shown = String::from_utf8(value(long.as_bytes())).unwrap();
        let (head, tail) = shown.split_once('…').unwrap();
        assert!(head.len() <= VALUE_PART && tail.len() <= VALUE_PART && head.starts_with("éé"), "{shown}");
        // Escaped bytes count once each in the input: four times the bound at most.
        assert_eq!(value(&vec![b'\n'; 10_000]).len(), 2 * VALUE_PART * 2 + "…".len());
    }

    #[test]
    fn a_full_line_still_ends_in_a_newline() {
        let mut line = Line::new();
        line.push(&[b'a'; 10000]);
        line.end_line();
        assert_eq!(line.as_bytes().len(), LINE_CAP);
        assert_eq!(line.as_bytes().last(), Some(&b'\n'));
        let mut line = Line::new();
        line.push(b"x");
        line.end_line();
        assert_eq!(line.as_bytes(), b"x\n");
    }

    #[test]
    fn numbers() {
        let mut line = Line::new();
        line.push(b"max ");
        line.push_u64(8192);
        assert_eq!(line.as_bytes(), b"max 8192");
    }
}
