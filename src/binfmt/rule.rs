//! One binfmt_misc register line, `:name:type:offset:magic:mask:interpreter:flags`, checked the
//! way the kernel's `create_entry()` checks it (fs/binfmt_misc.c), so that a bad rule is reported
//! with the field at fault before any namespace exists, not as a bare EINVAL from `register`.
//!
//! The first byte is the delimiter (usually `:`). Type `M` matches `magic` (bytes, `\xHH`
//! escapes, optionally under a `mask` of the same length) at `offset` in the first 256 bytes of
//! the file; type `E` matches the file name's extension `magic` (offset and mask are ignored).

/// The kernel's limit on one write to `register` (MAX_REGISTER_LENGTH).
pub(crate) const MAX_LINE: usize = 1920;
/// The kernel's shortest accepted rule.
const MIN_LINE: usize = 11;
/// Bytes of a file the kernel can match a magic in (BINPRM_BUF_SIZE).
const MATCH_WINDOW: usize = 256;
/// Longest file name in the binfmt_misc directory (NAME_MAX).
const MAX_NAME: usize = 255;

/// The fields that matter after checking, as slices of the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fields<'a> {
    pub(crate) name: &'a [u8],
    pub(crate) interpreter: &'a [u8],
    pub(crate) flags: &'a [u8],
}

impl Fields<'_> {
    /// Whether the rule already asks the kernel to open the interpreter at registration.
    pub(crate) fn has_fix_binary(&self) -> bool {
        self.flags.contains(&b'F')
    }
}

/// Why a rule is malformed: each message names the field.
pub(crate) type Bad = &'static str;

/// Checks `line` (no trailing newline); returns its fields or the reason it is malformed.
pub(crate) fn parse(line: &[u8]) -> Result<Fields<'_>, Bad> {
    if line.contains(&0) {
        return Err("rule contains a NUL byte");
    }
    if line.len() < MIN_LINE {
        return Err("rule too short (a register line is :name:type:offset:magic:mask:interpreter:flags)");
    }
    let (&del, rest) = line.split_first().ok_or("empty rule")?;
    let mut fields = Splitter { rest, del };

    let name = fields.plain().ok_or("name: missing delimiter after it")?;
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
        return Err("name: must not be empty, '.', '..' or contain '/'");
    }
    if name.len() > MAX_NAME {
        return Err("name: longer than 255 bytes");
    }
    if name == b"register" || name == b"status" {
        return Err("name: 'register' and 'status' are the kernel's own files");
    }

    let kind = fields.plain().ok_or("type: missing delimiter after it")?;
    match kind {
        b"M" => {
            let offset = fields.plain().ok_or("offset: missing delimiter after it")?;
            let offset = decimal(offset).ok_or("offset: not a decimal number")?;
            let magic = fields.escaped().ok_or("magic: missing delimiter, or \\x without two hex digits")?;
            if magic.is_empty() {
                return Err("magic: empty");
            }
            let mask = fields.escaped().ok_or("mask: missing delimiter, or \\x without two hex digits")?;
            let size = unescaped_len(magic);
            if !mask.is_empty() && unescaped_len(mask) != size {
                return Err("mask: not as long as magic");
            }
            if size > MATCH_WINDOW || offset > MATCH_WINDOW - size {
                return Err("offset: offset plus magic length exceeds 256 bytes");
            }
        }
        b"E" => {
            fields.plain().ok_or("offset: missing delimiter after it")?;
            let extension = fields.plain().ok_or("magic: missing delimiter after it")?;
            if extension.is_empty() || extension.contains(&b'/') {
                return Err("magic: an extension must not be empty or contain '/'");
            }
            fields.plain().ok_or("mask: missing delimiter after it")?;
        }
        _ => return Err("type: must be M (magic) or E (extension)"),
    }

    let interpreter = fields.plain().ok_or("interpreter: missing delimiter after it")?;
    if interpreter.first() != Some(&b'/') {
        return Err("interpreter: not an absolute path");
    }
    let flags = fields.rest;
    if !flags.iter().all(|f| matches!(f, b'P' | b'O' | b'C' | b'F')) {
        return Err("flags: only P, O, C and F are allowed");
    }
    Ok(Fields { name, interpreter, flags })
}

/// Splits fields off the front of a rule.
struct Splitter<'a> {
    rest: &'a [u8],
    del: u8,
}

impl<'a> Splitter<'a> {
    /// The next field, up to the delimiter (the kernel's `strchr()`).
    fn plain(&mut self) -> Option<&'a [u8]> {
        let end = self.rest.iter().position(|&b| b == self.del)?;
        let (field, rest) = self.rest.split_at(end);
        self.rest = &rest[1..];
        Some(field)
    }

    /// The next field, where `\xHH` may hide the delimiter (the kernel's `scanarg()`).
    fn escaped(&mut self) -> Option<&'a [u8]> {
        let bytes = self.rest;
        let mut at = 0;
        loop {
            let b = *bytes.get(at)?;
            if b == self.del {
                self.rest = &bytes[at + 1..];
                return Some(&bytes[..at]);
            }
            if b == b'\\' && bytes.get(at + 1) == Some(&b'x') {
                let hex = bytes.get(at + 2..at + 4)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                at += 4;
            } else {
                at += 1;
            }
        }
    }
}

/// The length of a magic or mask after `\xHH` escapes are decoded (each is one byte).
fn unescaped_len(field: &[u8]) -> usize {
    let mut len = 0;
    let mut at = 0;
    while at < field.len() {
        at += if field[at] == b'\\' && field.get(at + 1) == Some(&b'x') { 4 } else { 1 };
        len += 1;
    }
    len
}

/// An offset: empty means 0, as for the kernel.
fn decimal(s: &[u8]) -> Option<usize> {
    if s.is_empty() { Some(0) } else { crate::decimal::parse(s).map(|n| n as usize) }
}

/// The comments and blank lines of a binfmt.d(5) file skipped; each rule with its line number.
pub(crate) fn rules_of_file(text: &[u8]) -> impl Iterator<Item = (u32, &[u8])> {
    text.split(|&b| b == b'\n').zip(1u32..).filter_map(|(line, number)| {
        let line = line.trim_ascii();
        let comment = matches!(line.first(), Some(b'#' | b';'));
        (!line.is_empty() && !comment).then_some((number, line))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const QEMU_AARCH64: &[u8] = b":qemu-aarch64:M::\\x7f\\x45\\x4c\\x46\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xb7\\x00:\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff:/usr/libexec/qemu-binfmt/aarch64-binfmt-P:OCPF";

    #[test]
    fn debian_qemu_rule_parses() {
        let f = parse(QEMU_AARCH64).unwrap();
        assert_eq!(f.name, b"qemu-aarch64");
        assert_eq!(f.interpreter, b"/usr/libexec/qemu-binfmt/aarch64-binfmt-P");
        assert_eq!(f.flags, b"OCPF");
        assert!(f.has_fix_binary());
    }

    #[test]
    fn extension_rules_and_other_delimiters() {
        let f = parse(b":DOSWin:E::exe::/usr/bin/wine:").unwrap();
        assert_eq!((f.name, f.interpreter, f.flags), (&b"DOSWin"[..], &b"/usr/bin/wine"[..], &b""[..]));
        assert!(!f.has_fix_binary());
        // Any first byte is the delimiter; an escaped one may appear in magic.
        let f = parse(b",x,M,2,\\x2c\\x2c,,/bin/i,").unwrap();
        assert_eq!(f.name, b"x");
        // A backslash not followed by x is one plain byte (as the kernel decodes it).
        assert!(parse(b":y:M::\\\\x41:\\xff\\xff:/bin/i:").is_ok());
    }

    fn bad(line: &str) -> &'static str {
        parse(line.as_bytes()).unwrap_err()
    }

    #[test]
    fn each_malformed_field_is_named() {
        assert!(bad(":a:E::x:").starts_with("rule too short"));
        assert!(bad("::M::\\x7f::/bin/i:").starts_with("name:"));
        assert!(bad(":..:M::\\x7f::/bin/i:").starts_with("name:"));
        assert!(bad(":a/b:M::\\x7f::/bin/i:").starts_with("name:"));
        assert!(bad(":status:M::\\x7f::/bin/i:").starts_with("name:"));
        assert!(bad(&format!(":{}:M::\\x7f::/bin/i:", "n".repeat(256))).starts_with("name:"));
        assert!(bad(":a:X::\\x7f::/bin/i:").starts_with("type:"));
        assert!(bad(":a:MM::\\x7f::/bin/i:").starts_with("type:"));
        assert!(bad(":a:M:-1:\\x7f::/bin/i:").starts_with("offset:"));
        assert!(bad(":a:M:x:\\x7f::/bin/i:").starts_with("offset:"));
        assert!(bad(":a:M:255:\\x7f\\x45::/bin/i:").starts_with("offset:"));
        assert!(bad(":a:M:::\\xff:/bin/i:").starts_with("magic:"));
        assert!(bad(":a:M::\\x7g::/bin/i:").starts_with("magic:"));
        assert!(bad(":a:M::\\x7f:\\xff\\xff:/bin/i:").starts_with("mask:"));
        assert!(bad(":a:M::\\x7f:\\xf:/bin/i:").starts_with("mask:"));
        assert!(bad(":a:E::a/b::/bin/i:").starts_with("magic:"));
        assert!(bad(":a:M::\\x7f::bin/i:").starts_with("interpreter:"));
        assert!(bad(":a:M::\\x7f::/bin/i").starts_with("interpreter:"));
        assert!(bad(":a:M::\\x7f::/bin/i:FX").starts_with("flags:"));
        assert!(bad(":a:M::\\x7f::/bin/i:F\n").starts_with("flags:"));
        assert!(bad(":a:M::\\x7f::/bin/\0:F").starts_with("rule contains a NUL"));
    }

    #[test]
    fn magic_fills_at_most_the_match_window() {
        let magic = "\\x00".repeat(256);
        assert!(parse(format!(":a:M::{magic}::/bin/i:").as_bytes()).is_ok());
        assert!(bad(&format!(":a:M:1:{magic}::/bin/i:")).starts_with("offset:"));
        assert!(bad(&format!(":a:M::{magic}\\x00::/bin/i:")).starts_with("offset:"));
    }

    #[test]
    fn binfmt_d_files_skip_comments_and_blank_lines() {
        let text = b"# comment\n\n  ; another\n :a:E::x::/bin/i:  \r\n:b:E::y::/bin/j:";
        let rules: Vec<_> = rules_of_file(text).collect();
        assert_eq!(rules, [(4, &b":a:E::x::/bin/i:"[..]), (5, &b":b:E::y::/bin/j:"[..])]);
        assert_eq!(rules_of_file(b"").count(), 0);
    }
}
