//! Decimal numbers without formatting machinery: the one formatter (messages, `LISTEN_FDS`,
//! `LISTEN_PID`, uid/gid maps) and the one parser, [`parse_u32`] (uid/gid ranges, /etc/subuid and
//! /etc/passwd fields), with [`parse`] its descriptor-sized form (`--exec-fd`, `--map-delegate`,
//! binfmt offsets, `/proc/self/fd` names). Nothing else in the crate reads digits.

/// Room for the digits of any `u64`.
pub(crate) const MAX_DIGITS: usize = 20;

/// The decimal digits of `n`, written at the end of `buf`.
pub(crate) fn format(n: u64, buf: &mut [u8; MAX_DIGITS]) -> &[u8] {
    let mut at = buf.len();
    let mut n = n;
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[at..]
}

/// A descriptor-sized number: 1 to 9 ASCII digits, nothing else (so it always fits an `i32`).
pub(crate) fn parse(s: &[u8]) -> Option<u32> {
    if s.len() > 9 {
        return None;
    }
    parse_u32(s)
}

/// Any `u32`: 1 to 10 ASCII digits (leading zeros allowed) whose value fits, nothing else (uid
/// and gid ranges, /etc/subuid and /etc/passwd fields).
pub(crate) fn parse_u32(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 10 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    u32::try_from(s.iter().fold(0u64, |n, &b| n * 10 + u64::from(b - b'0'))).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let mut b = [0u8; MAX_DIGITS];
        assert_eq!(format(0, &mut b), b"0");
        assert_eq!(format(4194304, &mut b), b"4194304");
        assert_eq!(format(u64::MAX, &mut b), b"18446744073709551615");
    }

    #[test]
    fn parses_descriptor_numbers_only() {
        assert_eq!(parse(b"7"), Some(7));
        assert_eq!(parse(b"007"), Some(7));
        assert_eq!(parse(b"999999999"), Some(999_999_999));
        for bad in [&b""[..], b"1234567890", b"-1", b"+1", b"1x", b" 1"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn parses_u32s() {
        assert_eq!(parse_u32(b"4294967295"), Some(u32::MAX));
        assert_eq!(parse_u32(b"0000000001"), Some(1));
        assert_eq!(parse_u32(b"04294967295"), None);
        assert_eq!(parse_u32(b"4294967296"), None);
        assert_eq!(parse_u32(b""), None);
        assert_eq!(parse_u32(b"+1"), None);
    }
}
