//! The filesystem plan: the original's `optimize()` — de-duplication of bind mounts, dropping of
//! binds implied by another bind, and the stable order in which operations run — in
//! O(n log n · depth) instead of the original's O(n²).
//!
//! Every path is turned once into a normalized key (components joined by NUL), so that all the
//! comparisons below are plain byte-slice comparisons.

use core::ffi::CStr;

use crate::cli::MAX_OPS;
use crate::containers::{Bump, FixedVec};
use crate::error::{Limit, Overflow, Result};
use crate::path::{components, key_len, key_shape, write_key, write_normalized_key};
use crate::request::{Op, OpKind, Request};

/// The planner's working storage: a key per operation, the order, the binds being compared.
pub(crate) struct Storage {
    keys: FixedVec<Keys, MAX_OPS>,
    order: [u32; MAX_OPS],
    binds: [u32; MAX_OPS],
}

impl Storage {
    pub(crate) const fn new() -> Self {
        Self { keys: FixedVec::new(), order: [0; MAX_OPS], binds: [0; MAX_OPS] }
    }
}

impl Default for Storage {
    fn default() -> Self {
        Self::new()
    }
}

/// The operations to run, de-duplicated and in the order to run them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan<'a> {
    ops: &'a [Op],
    lowerdirs: &'a [&'static CStr],
    /// Indices into `ops`; every one is in range (made by `plan` from `ops` itself).
    order: &'a [u32],
}

impl<'a> Plan<'a> {
    /// The operations, in the order they run.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &'a Op> + 'a {
        let ops = self.ops;
        self.order.iter().map(move |&i| &ops[i as usize])
    }

    /// The operations' indices in the request, in order.
    #[cfg(test)]
    fn indices(&self) -> &[u32] {
        self.order
    }

    /// The lower directories of an `OpKind::Overlay`, top first.
    pub(crate) fn lowerdirs(&self, start: u32, len: u32) -> &'a [&'static CStr] {
        let (start, len) = (start as usize, len as usize);
        self.lowerdirs.get(start..start.saturating_add(len)).unwrap_or(&[])
    }
}

/// Derived, per-operation data used by the planner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Keys {
    /// DST and SRC as Python's `splitpath()` splits them: identity and order.
    dst: &'static [u8],
    src: &'static [u8],
    /// The same normalized (`.` dropped, `..` applied, as `relpath()` sees them): implication.
    /// The same slices unless a path holds a `.` or `..`.
    dst_implied: &'static [u8],
    src_implied: &'static [u8],
    /// SRC (resp. DST) is written exactly as Python's `commonpath()` would print it, so that
    /// `is_relative_to(x, it)` can be true (no `//`, no `.`, no trailing `/`).
    src_plain: bool,
    dst_plain: bool,
    /// SRC or DST holds a `..`: implied only when really nested (see `implied`), and never
    /// implying another.
    dotdot: bool,
    src_absolute: bool,
    /// Removed as a duplicate of an earlier, equal bind.
    duplicate: bool,
}

/// (readonly, required, follow, relative) of a bind.
fn flags(op: &Op) -> (bool, bool, bool, bool) {
    match op.kind {
        OpKind::Bind { readonly, required, relative, follow } => (readonly, required, follow, relative),
        _ => (false, false, true, false),
    }
}

fn is_plain(path: &[u8]) -> bool {
    let absolute = path.first() == Some(&b'/');
    let body = if absolute { &path[1..] } else { path };
    if body.is_empty() {
        return absolute;
    }
    body.split(|&b| b == b'/').all(|c| !c.is_empty() && c != b".")
}

fn make_key(path: &[u8], len: usize, keep_dots: bool, bump: &mut Bump<'static>) -> Result<&'static [u8]> {
    let buf = bump.alloc(len).overflow(Limit::DerivedStrings)?;
    write_key(path, keep_dots, buf);
    Ok(buf)
}

/// The `splitpath()` key of `path` and its `normpath()` key (the same slice when `path` has
/// neither `.` nor `..`).
fn make_keys(path: &[u8], bump: &mut Bump<'static>) -> Result<(&'static [u8], &'static [u8])> {
    let (len, dot) = key_shape(path, true);
    let key = make_key(path, len, true, bump)?;
    if dot || components(path).any(|c| c == b"..") {
        let buf = bump.alloc(key_len(path, false)).overflow(Limit::DerivedStrings)?;
        let len = write_normalized_key(path, buf);
        return Ok((key, &buf[..len]));
    }
    Ok((key, key))
}

/// The identity used for de-duplication and implication lookups: (readonly, required, follow,
/// src, dst). As in the original, the relative flag is not part of it.
type Identity<'k> = (bool, bool, bool, &'k [u8], &'k [u8]);

fn identity<'k>(op: &Op, keys: &'k Keys) -> Identity<'k> {
    let (readonly, required, follow, _) = flags(op);
    (readonly, required, follow, keys.src, keys.dst)
}

/// Plans `request`'s operations: drops duplicate and implied binds, and orders the rest.
pub(crate) fn plan<'a>(request: &Request<'a>, storage: &'a mut Storage, bump: &mut Bump<'static>) -> Result<Plan<'a>> {
    let Storage { keys, order, binds } = storage;
    let ops = request.ops;
    keys.truncate(0);
    let mut nbinds = 0;
    for (index, op) in ops.iter().enumerate() {
        let dst = op.dst.to_bytes();
        let (dst_key, dst_implied) = make_keys(dst, bump)?;
        let mut k = Keys {
            dst: dst_key,
            src: &[],
            dst_implied,
            src_implied: &[],
            src_plain: false,
            dst_plain: is_plain(dst),
            dotdot: components(dst).any(|c| c == b".."),
            src_absolute: false,
            duplicate: false,
        };
        if op.is_bind() {
            let src = op.src.to_bytes();
            (k.src, k.src_implied) = make_keys(src, bump)?;
            k.src_plain = is_plain(src);
            k.dotdot |= components(src).any(|c| c == b"..");
            k.src_absolute = src.first() == Some(&b'/');
            binds[nbinds] = index as u32;
            nbinds += 1;
        }
        // As many keys as operations, whose capacity parsing enforced.
        keys.push(k).overflow(Limit::Operations)?;
    }
    let binds = &mut binds[..nbinds];

    // De-duplicate: sort by identity, then CLI position; the first of each run of equal
    // identities is the one Python's dict keeps. Comparisons borrow, never copy.
    {
        let all = keys.as_slice();
        binds.sort_unstable_by(|&a, &b| (identity_of(ops, all, a), a).cmp(&(identity_of(ops, all, b), b)));
    }
    for w in 1..binds.len() {
        let (prev, cur) = (binds[w - 1], binds[w]);
        let all = keys.as_slice();
        if identity_of(ops, all, prev) == identity_of(ops, all, cur)
            && let Some(mut k) = keys.get(cur as usize)
        {
            k.duplicate = true;
            keys.set(cur as usize, k);
        }
    }

    // The final list: non-binds in CLI order, then the surviving binds in CLI order, then a
    // stable sort by (relative, dst). Stability comes from the (is_bind, index) tie-break.
    let keys = keys.as_slice();
    let mut n = 0;
    for (index, (op, k)) in ops.iter().zip(keys).enumerate() {
        if op.is_bind() && (k.duplicate || implied(index as u32, op, k, ops, keys, binds)) {
            continue;
        }
        order[n] = index as u32;
        n += 1;
    }
    let order = &mut order[..n];
    let sort_key = |i: u32| {
        let i = i as usize;
        (ops.get(i).map(Op::is_relative), keys.get(i).map(|k| k.dst), ops.get(i).map(Op::is_bind), i)
    };
    order.sort_unstable_by(|&a, &b| sort_key(a).cmp(&sort_key(b)));
    Ok(Plan { ops, lowerdirs: request.lowerdirs, order })
}

/// The identity of bind `i` (None only for an index out of range, which the planner never makes).
fn identity_of<'k>(ops: &[Op], keys: &'k [Keys], i: u32) -> Option<Identity<'k>> {
    Some(identity(ops.get(i as usize)?, keys.get(i as usize)?))
}

/// Whether bind `m` is implied by another (de-duplicated) bind `n`: same flags, `m.src` below
/// `n.src`, `m.dst` below `n.dst`, at the same offset. Candidates are found by cutting the common
/// suffix of m's normalized SRC and DST components (as `relpath()` normalizes them) and looking
/// the prefixes up (binary search). A parent `n` must be written as `commonpath()` prints it
/// (plain, without `..`), so its `splitpath()` key is the prefix itself.
///
/// When `m` holds `..`, the original compares its components as written (`commonpath()` keeps
/// `..`) but their offsets normalized (`relpath()`), and so drops binds that are not below `n` at
/// all (`--bind W/vt /home --bind W/vt/../d1 /home/../d1` loses `/d1`). Such a bind is dropped
/// here only when it is really nested: normalized, below `n`, and `n`'s components a literal
/// prefix of its own.
fn implied(m_index: u32, m: &Op, mk: &Keys, ops: &[Op], keys: &[Keys], sorted: &[u32]) -> bool {
    let (readonly, required, follow, relative) = flags(m);
    let implies = |src: &[u8], dst: &[u8]| {
        let want = Some((readonly, required, follow, src, dst));
        let at = sorted.partition_point(|&i| identity_of(ops, keys, i) < want);
        let Some(&n_index) = sorted.get(at) else {
            return false;
        };
        if n_index == m_index || identity_of(ops, keys, n_index) != want {
            return false;
        }
        let (Some(n), Some(nk)) = (ops.get(n_index as usize), keys.get(n_index as usize)) else {
            return false;
        };
        flags(n).3 == relative
            && nk.src_plain
            && nk.dst_plain
            && !nk.dotdot
            && nk.src_absolute == mk.src_absolute
            && (!mk.dotdot || (literal_prefix(n.src, m.src) && literal_prefix(n.dst, m.dst)))
    };
    let mut src = mk.src_implied;
    let mut dst = mk.dst_implied;
    // With a `.` or `..` in SRC or DST, the same paths written plainly are another bind, at
    // relpath ".". (Without, they are m's own identity: a duplicate, not an implication.)
    let dotted = !core::ptr::eq(src, mk.src) || !core::ptr::eq(dst, mk.dst);
    if dotted && implies(src, dst) {
        return true;
    }
    loop {
        // Drop the last component from both, while they are equal.
        let (Some(s_cut), Some(d_cut)) = (last_component(src), last_component(dst)) else {
            return false;
        };
        if src[s_cut.1..] != dst[d_cut.1..] {
            return false;
        }
        src = &src[..s_cut.0];
        dst = &dst[..d_cut.0];
        if implies(src, dst) {
            return true;
        }
    }
}

/// Whether `prefix`'s components start `path`'s, compared as written (`.` dropped, `..` kept),
/// as `commonpath()` compares them.
fn literal_prefix(prefix: &CStr, path: &CStr) -> bool {
    let mut have = components(path.to_bytes());
    components(prefix.to_bytes()).all(|c| have.next() == Some(c))
}

/// For a key, (end of the prefix before the last component, start of the last
/// component); None for the empty key.
fn last_component(key: &[u8]) -> Option<(usize, usize)> {
    if key.is_empty() {
        return None;
    }
    match key.iter().rposition(|&b| b == 0) {
        Some(sep) => Some((sep, sep + 1)),
        None => Some((0, 0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::tests::Store;

    pub(crate) fn planned(args: &[&str]) -> Vec<String> {
        let mut store = Store::new();
        let request = store.request(args);
        let mut storage = Box::new(Storage::new());
        let strings: &'static mut [u8] = Box::leak(vec![0u8; 1 << 20].into_boxed_slice());
        let mut bump = Bump::new(strings);
        let plan = plan(&request, &mut storage, &mut bump).unwrap();
        plan.iter()
            .map(|op| match op.given {
                Some(src) => format!("{} {} {}", op.option(), src.to_str().unwrap(), op.dst.to_str().unwrap()),
                None => format!("{} {}", op.option(), op.dst.to_str().unwrap()),
            })
            .collect()
    }

    #[test]
    fn duplicates_keep_the_first_and_ignore_slashes_and_relative() {
        assert_eq!(planned(&["--bind", "/x", "/y", "--bind", "+/x", "/y"]), ["--bind /x /y"]);
        assert_eq!(planned(&["--bind", "/x/", "/y", "--bind", "//x", "/y//"]), ["--bind /x/ /y"]);
        assert_eq!(planned(&["--bind", "/x", "/y", "--ro-bind", "/x", "/y"]), ["--bind /x /y", "--ro-bind /x /y"]);
    }

    #[test]
    fn implied_binds_are_dropped() {
        assert_eq!(
            planned(&["--ro-bind", "/usr", "/usr", "--ro-bind", "/usr/lib", "/usr/lib"]),
            ["--ro-bind /usr /usr"]
        );
        assert_eq!(
            planned(&["--ro-bind", "/usr/lib", "/usr/lib", "--ro-bind", "/usr", "/usr"]),
            ["--ro-bind /usr /usr"]
        );
        assert_eq!(planned(&["--bind", "/", "/", "--bind", "/a/b", "/a/b"]), ["--bind / /"]);
        assert_eq!(planned(&["--bind", "/a", "/x", "--bind", "/a/b/c", "/x/b/c"]), ["--bind /a /x"]);
    }

    #[test]
    fn binds_that_are_not_implied_are_kept() {
        // Different flags.
        assert_eq!(
            planned(&["--ro-bind", "/usr", "/usr", "--bind", "/usr/lib", "/usr/lib"]),
            ["--ro-bind /usr /usr", "--bind /usr/lib /usr/lib"]
        );
        assert_eq!(planned(&["--bind", "/", "/", "--bind-try", "/a", "/a"]), ["--bind / /", "--bind-try /a /a"]);
        // Different offsets.
        assert_eq!(planned(&["--bind", "/a", "/x", "--bind", "/a/b", "/x/c"]), ["--bind /a /x", "--bind /a/b /x/c"]);
        // The parent is not in commonpath() form.
        assert_eq!(
            planned(&["--bind", "/usr/", "/usr", "--bind", "/usr/lib", "/usr/lib"]),
            ["--bind /usr/ /usr", "--bind /usr/lib /usr/lib"]
        );
        // Relative flag differs.
        assert_eq!(
            planned(&["--bind", "+/usr", "/usr", "--bind", "/usr/lib", "/usr/lib"]),
            ["--bind /usr/lib /usr/lib", "--bind +/usr /usr"]
        );
    }

    #[test]
    fn order_is_parents_first_binds_last_relative_last() {
        assert_eq!(
            planned(&[
                "--bind",
                "+/buildroot/x",
                "/a",
                "--ro-bind",
                "/t/usr",
                "/usr",
                "--symlink",
                "usr/bin",
                "/bin",
                "--dir",
                "/usr",
                "--tmpfs",
                "/a-b",
                "--dir",
                "/a/b",
                "--dev",
                "/dev",
            ]),
            [
                "--dir /a/b",
                "--tmpfs /a-b",
                "--symlink usr/bin /bin",
                "--dev /dev",
                "--dir /usr",
                "--ro-bind /t/usr /usr",
                "--bind +/buildroot/x /a",
            ]
        );
    }

    #[test]
    fn nofollow_binds_are_their_own_identity() {
        assert_eq!(
            planned(&["--ro-bind", "/etc/x", "/etc/x", "--ro-bind-nofollow", "/etc/x", "/etc/x"]),
            ["--ro-bind /etc/x /etc/x", "--ro-bind-nofollow /etc/x /etc/x"]
        );
        assert_eq!(planned(&["--ro-bind", "/etc", "/etc", "--ro-bind-nofollow", "/etc/x", "/etc/x"]).len(), 2);
        assert_eq!(planned(&["--bind-nofollow", "/a", "/b", "--bind-nofollow", "/a", "/b"]), ["--bind-nofollow /a /b"]);
    }

    #[test]
    fn dot_components_count_as_python_splitpath_counts_them() {
        // splitpath() keeps `.`: another destination, sorted before ("." < "b").
        assert_eq!(planned(&["--dir", "/a/b", "--dir", "/a/./b"]), ["--dir /a/./b", "--dir /a/b"]);
        // commonpath()/relpath() drop it: the plainly written twin implies the bind.
        assert_eq!(planned(&["--bind", "/x", "/./y", "--bind", "/x", "/y"]), ["--bind /x /y"]);
        assert_eq!(planned(&["--bind", "/x", "/y", "--bind", "/x", "/./y"]), ["--bind /x /y"]);
        assert_eq!(planned(&["--bind", "/x", "/y", "--bind", "/x/./z", "/y/z"]), ["--bind /x /y"]);
    }

    #[test]
    fn dotdot_binds_are_implied_only_when_really_nested() {
        // Not below /home at all: the original drops it (lexical commonpath()), we keep it.
        assert_eq!(
            planned(&["--bind", "/w/vt", "/home", "--bind", "/w/vt/../d1", "/home/../d1"]),
            ["--bind /w/vt /home", "--bind /w/vt/../d1 /home/../d1"]
        );
        // Really nested, written with `..`: dropped, as there.
        assert_eq!(
            planned(&["--bind", "/w/vt", "/home", "--bind", "/w/vt/x/../y", "/home/x/../y"]),
            ["--bind /w/vt /home"]
        );
        assert_eq!(
            planned(&["--bind", "/w/vt", "/home", "--bind", "/w/vt/x/..", "/home/x/.."]),
            ["--bind /w/vt /home"]
        );
        // Nested once normalized, but not literally below (commonpath() differs): kept, as there.
        assert_eq!(planned(&["--bind", "/w/vt", "/home", "--bind", "/w/q/../vt/y", "/home/y"]).len(), 2);
    }

    #[test]
    fn cli_order_is_kept_for_equal_destinations() {
        assert_eq!(
            planned(&["--write", "b", "/f", "--bind", "/s", "/f", "--write", "a", "/f", "--tmpfs", "/f"]),
            ["--write b /f", "--write a /f", "--tmpfs /f", "--bind /s /f"]
        );
    }

    #[test]
    fn four_thousand_binds_plan_correctly() {
        let mut args: Vec<String> = Vec::new();
        for i in (0..4096).rev() {
            args.extend(["--bind".into(), format!("/src/{i:05}"), format!("/dst/{i:05}")]);
        }
        // An implied one and a duplicate.
        args.extend(["--bind".into(), "/src/00001/sub".into(), "/dst/00001/sub".into()]);
        args.extend(["--bind".into(), "/src/00002".into(), "/dst/00002".into()]);
        let refs: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let out = planned(&refs);
        assert_eq!(out.len(), 4096);
        assert_eq!(out[0], "--bind /src/00000 /dst/00000");
        assert_eq!(out[4095], "--bind /src/04095 /dst/04095");
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::cli::tests::Store;

    /// Random command lines from a vocabulary of options and awkward paths: parsing and planning
    /// return a result or a clean error, never a panic (debug builds also check overflow).
    #[test]
    fn random_command_lines_never_panic() {
        const WORDS: &[&str] = &[
            "--bind",
            "--ro-bind",
            "--bind-try",
            "--ro-bind-try",
            "--tmpfs",
            "--dev",
            "--proc",
            "--dir",
            "--symlink",
            "--write",
            "--overlay",
            "--overlay-lowerdir",
            "--overlay-upperdir",
            "--overlay-workdir",
            "--setenv",
            "--unsetenv",
            "--chdir",
            "--same-dir",
            "--become-root",
            "--exec-fd",
            "--",
            "-x",
            "",
            "/",
            "//",
            "/a",
            "/a/",
            "/a/b",
            "/a/./b",
            "/a/../b",
            "/..",
            "+/a",
            "+",
            "+/",
            "a",
            "../a",
            "/a-b",
            "/a/b/c",
            "/tmp",
            "/var/tmp",
            "7",
            "tmpfs",
            "cmd",
        ];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..3000 {
            let len = (next() % 24) as usize;
            let args: Vec<&str> = (0..len).map(|_| WORDS[(next() % WORDS.len() as u64) as usize]).collect();
            let mut store = Store::new();
            if let Ok(crate::cli::Parsed::Run(request)) = store.parse(&args) {
                let mut storage = Box::new(Storage::new());
                let strings: &'static mut [u8] = Box::leak(vec![0u8; 1 << 16].into_boxed_slice());
                let planned = plan(&request, &mut storage, &mut Bump::new(strings)).unwrap();
                assert!(planned.iter().count() <= request.ops.len(), "{args:?}");
            }
        }
    }

    /// The original's `optimize()` ported naively, pair by pair in O(n²), as the reference the
    /// planner must agree with. Python's rules: binds are de-duplicated by (split components of
    /// SRC and DST, readonly, required) — plus `follow`, as newer mkosi's `-nofollow` binds are
    /// their own kind — keeping the first; a bind is dropped when another with the same flags
    /// (relative included) has `commonpath()` parents of its SRC and DST at the same `relpath()`;
    /// the rest is sorted stably by (relative, split DST) after the non-binds. Our documented
    /// deviations: a bind whose SRC or DST holds `..` is implied only when it is really below the
    /// other (Python's `relpath()` also lets `..` climb out of it), a bind with `..` implies none,
    /// and a relative and an absolute SRC are not compared (Python raises ValueError).
    fn reference(ops: &[Op]) -> Vec<u32> {
        fn split(p: &[u8]) -> Vec<&[u8]> {
            p.split(|&b| b == b'/').filter(|c| !c.is_empty()).collect()
        }
        fn absolute(p: &[u8]) -> bool {
            p.first() == Some(&b'/')
        }
        // os.path.commonpath((one, two)) == two; None where Python raises ValueError.
        fn is_relative_to(one: &[u8], two: &[u8]) -> Option<bool> {
            if absolute(one) != absolute(two) {
                return None;
            }
            let parts = |p: &[u8]| -> Vec<Vec<u8>> {
                p.split(|&b| b == b'/').filter(|c| !c.is_empty() && *c != b".").map(|c| c.to_vec()).collect()
            };
            let (a, b) = (parts(one), parts(two));
            let common: Vec<Vec<u8>> = a.iter().zip(&b).take_while(|(x, y)| x == y).map(|(x, _)| x.clone()).collect();
            let mut text = if absolute(one) { b"/".to_vec() } else { Vec::new() };
            text.extend(common.join(&b'/'));
            Some(text == two)
        }
        // os.path.relpath(one, two) when normpath(one) is at or below normpath(two), else None.
        fn relpath(one: &[u8], two: &[u8]) -> Option<Vec<Vec<u8>>> {
            let normpath = |p: &[u8]| -> Vec<Vec<u8>> {
                let mut out: Vec<Vec<u8>> = Vec::new();
                for c in p.split(|&b| b == b'/').filter(|c| !c.is_empty() && *c != b".") {
                    if c != b".." {
                        out.push(c.to_vec());
                    } else if out.last().is_some_and(|l| l != b"..") {
                        out.pop();
                    } else if !absolute(p) {
                        out.push(c.to_vec());
                    }
                }
                out
            };
            let (a, b) = (normpath(one), normpath(two));
            a.starts_with(&b).then(|| a[b.len()..].to_vec())
        }
        let flags = |op: &Op| match op.kind {
            OpKind::Bind { readonly, required, relative, follow } => (readonly, required, relative, follow),
            _ => unreachable!(),
        };
        let identity = |op: &Op| {
            let (readonly, required, _, follow) = flags(op);
            (split(op.src.to_bytes()), split(op.dst.to_bytes()), readonly, required, follow)
        };
        let dotdot =
            |op: &Op| split(op.src.to_bytes()).contains(&&b".."[..]) || split(op.dst.to_bytes()).contains(&&b".."[..]);
        let mut binds: Vec<usize> = Vec::new();
        let mut rest: Vec<usize> = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            if !op.is_bind() {
                rest.push(i);
            } else if !binds.iter().any(|&j| identity(&ops[j]) == identity(op)) {
                binds.push(i);
            }
        }
        let implied = |m: &Op, n: &Op| {
            let (ms, md, ns, nd) = (m.src.to_bytes(), m.dst.to_bytes(), n.src.to_bytes(), n.dst.to_bytes());
            identity(m) != identity(n)
                && flags(m) == flags(n)
                && !dotdot(n)
                && is_relative_to(ms, ns) == Some(true)
                && is_relative_to(md, nd) == Some(true)
                && relpath(ms, ns).is_some()
                && relpath(ms, ns) == relpath(md, nd)
        };
        let optimized = binds.iter().copied().filter(|&m| !binds.iter().any(|&n| implied(&ops[m], &ops[n])));
        let mut all: Vec<usize> = rest.iter().copied().chain(optimized).collect();
        all.sort_by_key(|&i| (ops[i].is_relative(), split(ops[i].dst.to_bytes())));
        all.into_iter().map(|i| i as u32).collect()
    }

    /// Random bind-heavy command lines over paths that nest, repeat, and are written in every
    /// awkward way: the planner and the naive port of the original agree on every one.
    #[test]
    fn planner_matches_the_original_optimize() {
        const OPTIONS: &[&str] = &[
            "--bind",
            "--ro-bind",
            "--bind-try",
            "--ro-bind-try",
            "--bind-nofollow",
            "--ro-bind-nofollow",
            "--dir",
            "--tmpfs",
            "--symlink",
        ];
        const SOURCES: &[&str] = &[
            "/",
            "/a",
            "/a/",
            "//a",
            "/a/b",
            "/a//b/",
            "/a/b/c",
            "/a/./b",
            "/a/../b",
            "/b",
            "/b/c",
            "/x",
            "/x/b",
            "/x/b/c",
            "+/a",
            "+/a/b",
            "+/x",
            "a",
            "a/b",
            "/a-b",
            "/usr",
            "/usr/lib",
            "/a/b/../c",
            "/a/c/../b",
            "/a/b/c/..",
        ];
        const DESTINATIONS: &[&str] = &[
            "/",
            "/a",
            "/a/",
            "//a",
            "/a/b",
            "/a/b/",
            "/a/b/c",
            "/a/./b",
            "/a/../b",
            "/a/b/../c",
            "/x/b/../c",
            "/x/c/../b/c",
            "/x",
            "/x/b",
            "/x/b/c",
            "/x/c",
            "/a-b",
            "/usr",
            "/usr/lib",
            "/usr/lib/x",
        ];
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let mut storage = Box::new(Storage::new());
        for _ in 0..4000 {
            let mut store = Store::new();
            let mut args: Vec<&str> = Vec::new();
            for _ in 0..1 + next(12) {
                let option = OPTIONS[next(OPTIONS.len())];
                args.push(option);
                if option.contains("bind") || option == "--symlink" {
                    args.push(SOURCES[next(SOURCES.len())]);
                }
                args.push(DESTINATIONS[next(DESTINATIONS.len())]);
            }
            let request = store.request(&args);
            let mut bump = Bump::new(Box::leak(vec![0u8; 4096].into_boxed_slice()));
            let planned = plan(&request, &mut storage, &mut bump).unwrap();
            assert_eq!(planned.indices(), reference(request.ops), "{args:?}");
        }
    }
}
