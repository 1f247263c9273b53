//! Subordinate id ranges: `--map-users`/`--map-groups` triples, the caller's first range in
//! `/etc/subuid` and `/etc/subgid` for `--map-auto`, and the complete uid/gid maps they make
//! together with the caller's own id. Everything is checked here, before any process is forked,
//! the way the kernel would check it: no overlap inside or outside, no id past 4294967294, at
//! most [`MAX_RANGES`] lines per map. Writing the maps is [`crate::mapper`]'s job.

use core::ffi::CStr;

use rustix::fs::{CWD, Mode, OFlags};

use crate::containers::{Bytes, FixedVec, insert_sorted_by_key};
use crate::decimal::parse_u32;
use crate::error::{During, Error, Limit, Reason, Result, Syscall};

/// Lines per map that the kernel accepts (UID_GID_MAP_MAX_EXTENTS, Linux 4.15 and later).
pub(crate) const MAX_RANGES: usize = 340;

/// Why id ranges are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `--map-users`/`--map-groups`: not three decimal numbers.
    MalformedRange,
    EmptyRange,
    /// A range runs into 4294967295, the kernel's "no id".
    RangePastEnd,
    OverlapInside,
    OverlapOutside,
    /// `--map-auto`: the caller has no line in /etc/subuid (or /etc/subgid).
    NoSubordinateRange,
}

impl Reason for Refusal {
    fn text(self) -> &'static str {
        match self {
            Refusal::MalformedRange => "expected INNER:OUTER:COUNT (decimal numbers)",
            Refusal::EmptyRange => "COUNT must be at least 1",
            Refusal::RangePastEnd => "range runs past id 4294967294",
            Refusal::OverlapInside => "ranges overlap inside the namespace",
            Refusal::OverlapOutside => "ranges overlap outside the namespace",
            Refusal::NoSubordinateRange => "no range for the caller",
        }
    }
}

/// One line of a uid or gid map: `count` ids from `outer` (in the caller's namespace) appear as
/// `inner..` inside. `given` is the option's value as typed, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Range {
    pub(crate) inner: u32,
    pub(crate) outer: u32,
    pub(crate) count: u32,
    pub(crate) given: &'static CStr,
}

impl Range {
    fn last_inner(&self) -> u64 {
        u64::from(self.inner) + u64::from(self.count) - 1
    }

    fn last_outer(&self) -> u64 {
        u64::from(self.outer) + u64::from(self.count) - 1
    }

    fn overlaps_inside(&self, other: &Range) -> bool {
        u64::from(self.inner) <= other.last_inner() && u64::from(other.inner) <= self.last_inner()
    }

    fn overlaps_outside(&self, other: &Range) -> bool {
        u64::from(self.outer) <= other.last_outer() && u64::from(other.outer) <= self.last_outer()
    }
}

/// The ranges of one map, in the order they are written.
pub(crate) type Ranges = FixedVec<Range, MAX_RANGES>;

/// Parses `INNER:OUTER:COUNT` (newuidmap's order, inside first) strictly: three unsigned decimal
/// numbers, COUNT at least 1, and neither range running past 4294967294 (the kernel reserves
/// 4294967295 as "no id").
pub(crate) fn parse_range(option: &'static str, given: &'static CStr) -> Result<Range> {
    let refuse = |why: Refusal| Error::invalid(why).for_option(option, Some(given), None);
    let mut fields = given.to_bytes().split(|&b| b == b':');
    let mut next = || fields.next().and_then(parse_u32).ok_or_else(|| refuse(Refusal::MalformedRange));
    let (inner, outer, count) = (next()?, next()?, next()?);
    if fields.next().is_some() {
        return Err(refuse(Refusal::MalformedRange));
    }
    if count == 0 {
        return Err(refuse(Refusal::EmptyRange));
    }
    let end = |start: u32| u64::from(start) + u64::from(count);
    if end(inner) > u64::from(u32::MAX) || end(outer) > u64::from(u32::MAX) {
        return Err(refuse(Refusal::RangePastEnd));
    }
    Ok(Range { inner, outer, count, given })
}

/// Which of the two maps: names the files, the helper binary and the options in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Uid,
    Gid,
}

impl Kind {
    pub(crate) fn option(self) -> &'static str {
        match self {
            Kind::Uid => "--map-users",
            Kind::Gid => "--map-groups",
        }
    }

    pub(crate) fn subid_file(self) -> &'static CStr {
        match self {
            Kind::Uid => c"/etc/subuid",
            Kind::Gid => c"/etc/subgid",
        }
    }
}

/// Given for the lines `--map-auto` and the caller's own id contribute, in messages.
const FROM_AUTO: &CStr = c"(from --map-auto)";
const CALLERS_OWN: &CStr = c"(the caller's own id)";

/// Builds one complete map: the caller's own id first (`own_outer` appears as `own_inner`), then
/// `--map-auto`'s lines from `auto` (the caller's first subordinate range: start, count), then the
/// explicit ranges. Refuses overlaps and overlong maps.
pub(crate) fn build(
    kind: Kind,
    own_inner: u32,
    own_outer: u32,
    auto: Option<(u32, u32)>,
    explicit: &[Range],
    out: &mut Ranges,
) -> Result<()> {
    out.truncate(0);
    let full = || Error::capacity(if kind == Kind::Uid { Limit::UidMapLines } else { Limit::GidMapLines }, MAX_RANGES);
    let own = Range { inner: own_inner, outer: own_outer, count: 1, given: CALLERS_OWN };
    out.push(own).map_err(|_| full())?;
    if let Some((start, count)) = auto {
        for range in auto_lines(own_inner, own_outer, start, count).into_iter().flatten() {
            out.push(range).map_err(|_| full())?;
        }
    }
    for &range in explicit {
        // Spelling out the caller's own line (as the seed's layout did) is not a conflict.
        if range.inner == own.inner && range.outer == own.outer && range.count == 1 {
            continue;
        }
        out.push(range).map_err(|_| full())?;
    }
    check_overlaps(kind, out)
}

/// util-linux 2.38's `unshare --map-auto` with `--map-root-user` or `--map-current-user`: the
/// subordinate range is mapped from 0 inside, gives up its last id when the caller's ids touch it
/// (an end counts as touching), and is split into up to three pieces that step around both the
/// caller's outside and inside id. Unsigned wrap-around is the C original's.
fn auto_lines(own_inner: u32, own_outer: u32, start: u32, count: u32) -> [Option<Range>; 3] {
    let (first_inner, first_outer) = (0u32, start);
    let touches = |id: u32, first: u32| id >= first && id <= first.wrapping_add(count);
    let count =
        if touches(own_outer, first_outer) || touches(own_inner, first_inner) { count.wrapping_sub(1) } else { count };
    let outer_offset = own_outer.saturating_sub(first_outer).min(count);
    let inner_offset = own_inner.saturating_sub(first_inner).min(count);
    let step = |id: u32, own: u32| if id == own { id.wrapping_add(1) } else { id };

    let low = (first_outer, first_inner, inner_offset.min(outer_offset));
    let mid_outer = step(low.0.wrapping_add(low.2), own_outer);
    let mid_inner = step(low.1.wrapping_add(low.2), own_inner);
    let mid = (mid_outer, mid_inner, outer_offset.abs_diff(inner_offset));
    let high_outer = step(mid.0.wrapping_add(mid.2), own_outer);
    let high_inner = step(mid.1.wrapping_add(mid.2), own_inner);
    let high = (high_outer, high_inner, count.wrapping_sub(low.2).wrapping_sub(mid.2));

    [low, mid, high].map(|(outer, inner, count)| (count > 0).then_some(Range { inner, outer, count, given: FROM_AUTO }))
}

fn check_overlaps(kind: Kind, ranges: &Ranges) -> Result<()> {
    let list = ranges.as_slice();
    for (i, a) in list.iter().enumerate() {
        if u64::from(a.inner) + u64::from(a.count) > u64::from(u32::MAX)
            || u64::from(a.outer) + u64::from(a.count) > u64::from(u32::MAX)
        {
            return Err(Error::invalid(Refusal::RangePastEnd).for_option(kind.option(), Some(a.given), None));
        }
        for b in &list[..i] {
            let why = if a.overlaps_inside(b) {
                Refusal::OverlapInside
            } else if a.overlaps_outside(b) {
                Refusal::OverlapOutside
            } else {
                continue;
            };
            return Err(Error::invalid(why).for_option(kind.option(), Some(b.given), Some(a.given)));
        }
    }
    Ok(())
}

/// The ids a map makes visible inside, as sorted inclusive (first, last) spans with neighbours
/// merged; returns how many of `out` are used.
pub(crate) fn inside_spans(map: &Ranges, out: &mut [(u32, u32); MAX_RANGES]) -> usize {
    let mut len = 0;
    for range in map.iter() {
        let span = (range.inner, range.inner + (range.count - 1));
        // Maps are short, and usually given in order.
        insert_sorted_by_key(&mut out[..=len], span, |&(first, _)| first);
        len += 1;
    }
    let mut merged = 0;
    for i in 0..len {
        if merged > 0 && out[merged - 1].1.checked_add(1) == Some(out[i].0) {
            out[merged - 1].1 = out[i].1;
        } else {
            out[merged] = out[i];
            merged += 1;
        }
    }
    merged
}

/// The caller's first range (start, count) in `/etc/subuid` or `/etc/subgid`, matched by user
/// name or by numeric uid as shadow's newuidmap matches them. `name` is the caller's login name
/// from /etc/passwd, if it has one.
pub(crate) fn first_subid_range(kind: Kind, name: Option<&[u8]>, uid: u32) -> Result<(u32, u32)> {
    let file = kind.subid_file();
    let mut found = None;
    for_each_line(file, &mut |line| {
        let mut fields = line.split(|&b| b == b':');
        let (Some(owner), Some(start), Some(count)) = (fields.next(), fields.next(), fields.next()) else {
            return true;
        };
        let owner_matches = Some(owner) == name || parse_u32(owner) == Some(uid);
        match (owner_matches, parse_u32(start), parse_u32(count.trim_ascii_end())) {
            (true, Some(start), Some(count)) if count > 0 => {
                found = Some((start, count));
                false
            }
            _ => true,
        }
    })
    .map_err(|e| e.for_option("--map-auto", Some(file), None))?;
    found.ok_or_else(|| Error::invalid(Refusal::NoSubordinateRange).for_option("--map-auto", Some(file), None))
}

/// A login name (as in /etc/passwd).
pub(crate) type Name = Bytes<256>;

/// The login name of `uid` from /etc/passwd (what getpwuid() finds for local users), or None.
pub(crate) fn user_name(uid: u32) -> Option<Name> {
    let mut name = None;
    let _ = for_each_line(c"/etc/passwd", &mut |line| {
        let mut fields = line.split(|&b| b == b':');
        let (Some(login), _, Some(id)) = (fields.next(), fields.next(), fields.next()) else {
            return true;
        };
        if parse_u32(id) != Some(uid) || login.is_empty() || login.len() > 256 {
            return true;
        }
        let mut n = Name::new();
        n.push(login);
        name = Some(n);
        false
    });
    name
}

/// Calls `each` with every line of `path` (without its newline) until it returns false. Lines
/// longer than the 4 KiB buffer are skipped: no login name or range is that long.
fn for_each_line(path: &CStr, each: &mut dyn FnMut(&[u8]) -> bool) -> Result<()> {
    let fd = rustix::fs::openat(CWD, path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).during(Syscall::Open)?;
    let mut buf = [0u8; 4096];
    let (mut len, mut skipping) = (0usize, false);
    loop {
        let n = rustix::io::read(&fd, &mut buf[len..]).during(Syscall::Read)?;
        let eof = n == 0;
        len += n;
        let mut start = 0;
        while let Some(at) = buf[start..len].iter().position(|&b| b == b'\n') {
            let line = &buf[start..start + at];
            if !skipping && !each(line) {
                return Ok(());
            }
            skipping = false;
            start += at + 1;
        }
        if eof {
            if start < len && !skipping {
                each(&buf[start..len]);
            }
            return Ok(());
        }
        if start == 0 && len == buf.len() {
            // A line longer than the buffer: drop it up to its newline.
            (len, skipping) = (0, true);
        } else {
            buf.copy_within(start..len, 0);
            len -= start;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leak(s: &str) -> &'static CStr {
        Box::leak(std::ffi::CString::new(s).unwrap().into_boxed_c_str())
    }

    fn range(s: &str) -> Result<Range> {
        parse_range("--map-users", leak(s))
    }

    fn lines(r: &Ranges) -> Vec<(u32, u32, u32)> {
        r.iter().map(|r| (r.inner, r.outer, r.count)).collect()
    }

    fn message(e: Error) -> String {
        let mut line = crate::line::Line::new();
        e.render(&mut line);
        String::from_utf8(line.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn triples_parse_strictly() {
        let r = range("1:100000:9999").unwrap();
        assert_eq!((r.inner, r.outer, r.count), (1, 100000, 9999));
        assert_eq!(range("0:4294967294:1").unwrap().outer, 4294967294);
        for bad in ["", "1:2", "1:2:3:4", "a:2:3", "-1:2:3", "+1:2:3", " 1:2:3", "1:2:3 ", "1::3", "4294967296:0:1"] {
            assert_eq!(
                message(range(bad).unwrap_err()),
                format!("mkosi-sandbox: --map-users {bad}: expected INNER:OUTER:COUNT (decimal numbers)\n")
            );
        }
        assert!(message(range("1:2:0").unwrap_err()).ends_with("COUNT must be at least 1\n"));
        assert!(message(range("4294967295:0:1").unwrap_err()).ends_with("range runs past id 4294967294\n"));
        assert!(message(range("0:4294967290:6").unwrap_err()).ends_with("range runs past id 4294967294\n"));
        assert!(range("0:4294967290:5").is_ok());
    }

    fn explicit(list: &[&str]) -> Vec<Range> {
        list.iter().map(|s| range(s).unwrap()).collect()
    }

    #[test]
    fn the_seeds_layout_builds() {
        let mut out = Box::new(Ranges::new());
        let given = explicit(&["0:1000:1", "1:100000:9999", "12345:110000:1", "10000:120000:1"]);
        build(Kind::Uid, 0, 1000, None, &given, &mut out).unwrap();
        assert_eq!(lines(&out), [(0, 1000, 1), (1, 100000, 9999), (12345, 110000, 1), (10000, 120000, 1)]);
    }

    #[test]
    fn overlaps_are_refused_with_both_ranges_named() {
        let mut out = Box::new(Ranges::new());
        let e = build(Kind::Uid, 0, 1000, None, &explicit(&["1:100000:10", "10:200000:5"]), &mut out).unwrap_err();
        assert_eq!(
            message(e),
            "mkosi-sandbox: --map-users 1:100000:10 10:200000:5: ranges overlap inside the namespace\n"
        );
        let e = build(Kind::Gid, 0, 1000, None, &explicit(&["1:100000:10", "20:100009:5"]), &mut out).unwrap_err();
        assert_eq!(
            message(e),
            "mkosi-sandbox: --map-groups 1:100000:10 20:100009:5: ranges overlap outside the namespace\n"
        );
        // The caller's own line counts: 0 is taken by --become-root, 1000 outside by the caller.
        let e = build(Kind::Uid, 0, 1000, None, &explicit(&["0:100000:10"]), &mut out).unwrap_err();
        assert!(message(e).contains("(the caller's own id) 0:100000:10: ranges overlap inside"));
        let e = build(Kind::Uid, 0, 1000, None, &explicit(&["5:995:10"]), &mut out).unwrap_err();
        assert!(message(e).contains("ranges overlap outside"));
        // Adjacent is fine.
        build(Kind::Uid, 0, 1000, None, &explicit(&["1:100000:10", "11:100010:5"]), &mut out).unwrap();
    }

    #[test]
    fn too_many_lines_is_a_clean_error() {
        let many: Vec<Range> =
            (0..MAX_RANGES as u32).map(|i| range(&format!("{}:{}:1", i + 1, 200000 + i)).unwrap()).collect();
        let mut out = Box::new(Ranges::new());
        let e = build(Kind::Uid, 0, 1000, None, &many, &mut out).unwrap_err();
        assert_eq!(message(e), "mkosi-sandbox: too many uid map lines (max 340)\n");
    }

    /// What util-linux 2.38.1's unshare writes on this machine for a user with uid 1001 and the
    /// range 100000:65536 (checked against the real binary in tests/subid.rs).
    #[test]
    fn auto_matches_util_linux() {
        let mut out = Box::new(Ranges::new());
        let none: [Range; 0] = [];
        build(Kind::Uid, 0, 1001, Some((100000, 65536)), &none, &mut out).unwrap();
        assert_eq!(lines(&out), [(0, 1001, 1), (1, 100000, 65535)]);
        build(Kind::Uid, 1001, 1001, Some((100000, 65536)), &none, &mut out).unwrap();
        assert_eq!(lines(&out), [(1001, 1001, 1), (0, 100000, 1001), (1002, 101001, 64534)]);
        // A caller whose id lies beyond the range's inside span: nothing to step around.
        build(Kind::Uid, 70000, 70000, Some((100000, 1000)), &none, &mut out).unwrap();
        assert_eq!(lines(&out), [(70000, 70000, 1), (0, 100000, 1000)]);
    }

    #[test]
    fn inside_spans_are_sorted_and_merged() {
        let mut out = Box::new(Ranges::new());
        let none: [Range; 0] = [];
        build(Kind::Uid, 1001, 1001, Some((100000, 65536)), &none, &mut out).unwrap();
        let mut spans = [(0, 0); MAX_RANGES];
        let n = inside_spans(&out, &mut spans);
        assert_eq!(&spans[..n], [(0, 65535)]);
        let given = explicit(&["12345:110000:1", "1:100000:9999", "10000:120000:1"]);
        build(Kind::Uid, 0, 1000, None, &given, &mut out).unwrap();
        let n = inside_spans(&out, &mut spans);
        assert_eq!(&spans[..n], [(0, 10000), (12345, 12345)]);
    }
}
