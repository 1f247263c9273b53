//! Path helpers: a fixed-size path buffer, component splitting, normalized sort keys, and
//! `resolve`, the original's `chase()` done with one `readlinkat()` per component instead of
//! `chroot()` + `realpath()`.

use core::ffi::CStr;

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// Room for PATH_MAX bytes plus the terminating NUL.
pub(crate) const PATH_CAP: usize = 4096;

/// Symlinks followed in one resolution before giving up (the kernel's own limit).
const MAX_LINKS: u32 = 40;

/// A NUL-terminated path in a fixed buffer. repr(C) with `len` first: a short path touches one
/// page of the arena, not the buffer's first page and its last.
#[repr(C)]
pub(crate) struct PathBuf {
    len: usize,
    buf: [u8; PATH_CAP + 1],
}

impl PathBuf {
    pub(crate) const fn new() -> Self {
        Self { len: 0, buf: [0; PATH_CAP + 1] }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    pub(crate) fn as_cstr(&self) -> &CStr {
        // The buffer always holds a NUL at `len` and none before it (pushes reject NULs).
        CStr::from_bytes_until_nul(&self.buf[..=self.len]).unwrap_or(c"")
    }

    pub(crate) fn clear(&mut self) {
        self.truncate(0);
    }

    pub(crate) fn truncate(&mut self, len: usize) {
        if len <= self.len {
            self.len = len;
            self.buf[len] = 0;
        }
    }

    pub(crate) fn set(&mut self, bytes: &[u8]) -> core::result::Result<(), Errno> {
        self.clear();
        self.push(bytes)
    }

    /// Appends raw bytes.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> core::result::Result<(), Errno> {
        if self.len + bytes.len() > PATH_CAP {
            return Err(Errno::NAMETOOLONG);
        }
        if bytes.contains(&0) {
            return Err(Errno::INVAL);
        }
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
        self.buf[self.len] = 0;
        Ok(())
    }

    /// Appends `/name` (no separator is doubled).
    pub(crate) fn push_component(&mut self, name: &[u8]) -> core::result::Result<(), Errno> {
        if self.len > 0 && self.buf[self.len - 1] != b'/' {
            self.push(b"/")?;
        }
        self.push(name)
    }

    /// Removes the last component, never going below `floor` bytes.
    pub(crate) fn pop_component(&mut self, floor: usize) {
        let mut at = self.len;
        while at > floor && self.buf[at - 1] == b'/' {
            at -= 1;
        }
        while at > floor && self.buf[at - 1] != b'/' {
            at -= 1;
        }
        while at > floor && self.buf[at - 1] == b'/' {
            at -= 1;
        }
        self.truncate(at);
    }

    /// The path with its NUL, for callers that cut it temporarily at a separator (`mkdir -p`).
    pub(crate) fn raw_mut(&mut self) -> &mut [u8] {
        &mut self.buf[..=self.len]
    }
}

impl Default for PathBuf {
    fn default() -> Self {
        Self::new()
    }
}

/// The components of `path`, skipping empty ones and `.` (as the original's `splitpath()` and
/// `commonpath()` do).
pub(crate) fn components(path: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> + Clone {
    path.split(|&b| b == b'/').filter(|c| !c.is_empty() && *c != b".")
}

/// True when the original's suffix rule makes DST world-writable with the sticky bit.
pub(crate) fn is_tmp_dir(path: &[u8]) -> bool {
    path.ends_with(b"/tmp") || path.ends_with(b"/var/tmp")
}

/// The components the key of `path` is made of: Python's `splitpath()` (empty ones dropped, `.`
/// kept: the original's identity and order of operations) or, with `keep_dots` false, those of
/// `commonpath()` and `relpath()` (`.` dropped too).
fn key_components(path: &[u8], keep_dots: bool) -> impl Iterator<Item = &[u8]> {
    path.split(|&b| b == b'/').filter(move |c| !c.is_empty() && (keep_dots || *c != b"."))
}

/// Length of the key of `path`: its components joined by NUL bytes. Comparing keys bytewise
/// orders paths exactly like Python compares `splitpath()` tuples (NUL sorts below every byte a
/// component can hold, and a proper prefix sorts first).
pub(crate) fn key_len(path: &[u8], keep_dots: bool) -> usize {
    key_shape(path, keep_dots).0
}

/// [`key_len`], and whether `path` has a `.` component (in the same walk).
pub(crate) fn key_shape(path: &[u8], keep_dots: bool) -> (usize, bool) {
    let (mut len, mut dot) = (0, false);
    for (i, c) in key_components(path, keep_dots).enumerate() {
        len += c.len() + usize::from(i > 0);
        dot |= c == b".";
    }
    (len, dot)
}

pub(crate) fn write_key(path: &[u8], keep_dots: bool, out: &mut [u8]) {
    let mut at = 0;
    for (i, c) in key_components(path, keep_dots).enumerate() {
        if i > 0 {
            out[at] = 0;
            at += 1;
        }
        out[at..at + c.len()].copy_from_slice(c);
        at += c.len();
    }
}

/// Writes the key of `path` normalized as Python's `normpath()` does (`.` dropped, `..` applied
/// lexically, never above `/`) into `out` (at least `key_len(path, false)` bytes); returns its
/// length. What `relpath()` compares.
pub(crate) fn write_normalized_key(path: &[u8], out: &mut [u8]) -> usize {
    let absolute = path.first() == Some(&b'/');
    let mut len = 0;
    for c in components(path) {
        let last = out[..len].iter().rposition(|&b| b == 0).map_or(0, |sep| sep + 1);
        if c == b".." && len > 0 && &out[last..len] != b".." {
            len = last.saturating_sub(1);
            continue;
        }
        if c == b".." && absolute {
            continue;
        }
        if len > 0 {
            out[len] = 0;
            len += 1;
        }
        out[len..len + c.len()].copy_from_slice(c);
        len += c.len();
    }
    len
}

/// What `resolve` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Resolved {
    /// Every component existed: the resolved path exists (the original's `os.path.exists()`).
    pub(crate) exists: bool,
    /// Whether `root` + `path` *as written* is a symlink, when the walk tells: `Some(true)` when
    /// the first symlink met was the path's own last component, `Some(false)` when the written
    /// path met no symlink at all, `None` when a parent was a symlink (then only an `lstat()` of
    /// the written path, whose parents the kernel resolves from the real root, can tell).
    pub(crate) written_is_link: Option<bool>,
}

/// Scratch space for `resolve`.
pub(crate) struct ResolveScratch<'a> {
    pub(crate) pending: &'a mut PathBuf,
    pub(crate) link: &'a mut PathBuf,
}

/// Resolves `path` as if `root` were `/` and writes `root` + the result into `out`: the original's
/// `chase(root, path)`, a non-strict `realpath()` inside `chroot(root)`.
///
/// Symlinks are followed inside the root (absolute targets restart at `root`, `..` stops at it);
/// a component that does not exist ends the lookups and the rest is appended as written, with
/// `..` applied lexically, as Python's non-strict `realpath()` does. One `readlinkat()` per
/// existing component, and no `chroot()`.
pub(crate) fn resolve(
    root: &[u8],
    path: &[u8],
    out: &mut PathBuf,
    scratch: ResolveScratch<'_>,
) -> Result<Resolved, Errno> {
    let ResolveScratch { pending, link } = scratch;
    if let Some(resolved) = resolve_without_symlinks(root, path, out)? {
        return Ok(resolved);
    }
    out.set(root)?;
    let floor = out.len();
    pending.set(path)?;
    let mut cursor = 0;
    // Components pushed since (and including) the first missing one; `..` can climb back out.
    let mut missing_depth = 0usize;
    let mut links = 0;
    let mut written_is_link = Some(false);
    // Past MAX_LINKS (a loop): the rest is applied by the letter, no more lookups.
    let mut gave_up = false;

    while cursor < pending.len() {
        let rest = &pending.as_bytes()[cursor..];
        let (name_len, next) = match rest.iter().position(|&b| b == b'/') {
            Some(slash) => (slash, cursor + slash + 1),
            None => (rest.len(), pending.len()),
        };
        let name_start = cursor;
        cursor = next;
        let name = &pending.as_bytes()[name_start..name_start + name_len];
        if name.is_empty() || name == b"." {
            continue;
        }
        if name == b".." {
            if out.len() > floor {
                missing_depth = missing_depth.saturating_sub(1);
            }
            out.pop_component(floor);
            continue;
        }
        let before = out.len();
        out.push_component(name)?;
        if gave_up {
            continue;
        }
        if missing_depth > 0 {
            // Below a missing component nothing exists: no more lookups.
            missing_depth += 1;
            continue;
        }
        match read_link(out.as_cstr(), link) {
            Ok(()) => {}
            Err(Errno::INVAL) => continue,
            Err(_) => {
                missing_depth = 1;
                continue;
            }
        }
        if links == 0 {
            let last_written = pending.as_bytes()[cursor..].iter().all(|&b| b == b'/');
            written_is_link = if last_written { Some(true) } else { None };
        }
        links += 1;
        if links > MAX_LINKS {
            // A loop: Python's realpath() gives up and returns the link and the rest unresolved,
            // which abspath() normalizes by the letter; the link stays in `out`, the rest follows.
            gave_up = true;
            continue;
        }
        out.truncate(before);
        if link.as_bytes().first() == Some(&b'/') {
            out.truncate(floor);
        }
        // Continue with the link target followed by what was left of the path.
        let rest_start = cursor;
        if rest_start < pending.len() {
            link.push(b"/")?;
            link.push(&pending.as_bytes()[rest_start..])?;
        }
        pending.set(link.as_bytes())?;
        cursor = 0;
    }
    if gave_up {
        return Ok(Resolved { exists: exists_in_root(out, root.len()), written_is_link });
    }
    Ok(Resolved { exists: missing_depth == 0, written_is_link })
}

/// Whether `out` (`root` + a path) exists, its symlinks followed by the kernel inside `root`
/// (RESOLVE_IN_ROOT): the original's `os.path.exists()` of a path `realpath()` gave up on.
#[cold]
#[inline(never)]
fn exists_in_root(out: &mut PathBuf, root_len: usize) -> bool {
    if root_len > out.len {
        return false;
    }
    // `root` is cut from `out` with a NUL for the first open; the rest (from its `/`, or `.` when
    // empty) is relative to it.
    let saved = out.buf[root_len];
    out.buf[root_len] = 0;
    let dir_flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let dir = CStr::from_bytes_until_nul(&out.buf[..=root_len])
        .map_err(|_| Errno::INVAL)
        .and_then(|root| rustix::fs::openat(rustix::fs::CWD, root, dir_flags, Mode::empty()));
    out.buf[root_len] = saved;
    let Ok(dir) = dir else { return false };
    let rest = if root_len == out.len {
        c"."
    } else {
        match CStr::from_bytes_until_nul(&out.buf[root_len..=out.len]) {
            Ok(rest) => rest,
            Err(_) => return false,
        }
    };
    let in_root = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    rustix::fs::openat2(&dir, rest, OFlags::PATH | OFlags::CLOEXEC, Mode::empty(), in_root).is_ok()
}

/// The fast path of `resolve`: most paths hold no symlink at all, and one `openat2()` with
/// RESOLVE_NO_SYMLINKS proves it (or finds the path missing) in a single walk, where `resolve`
/// needs one `readlinkat()`, each a walk from the start, per component. Returns None when a
/// symlink is met (ELOOP) or the kernel cannot tell; the component walk then decides.
fn resolve_without_symlinks(root: &[u8], path: &[u8], out: &mut PathBuf) -> Result<Option<Resolved>, Errno> {
    // With one component the walk costs one syscall too; `..` needs the walk's lexical rules.
    if components(path).nth(1).is_none() || components(path).any(|c| c == b"..") {
        return Ok(None);
    }
    out.set(root)?;
    for c in components(path) {
        out.push_component(c)?;
    }
    // No O_NOFOLLOW: with it a trailing symlink would be opened itself instead of refused.
    let flags = OFlags::PATH | OFlags::CLOEXEC;
    let resolve = ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    match rustix::fs::openat2(rustix::fs::CWD, out.as_cstr(), flags, Mode::empty(), resolve) {
        Ok(_fd) => Ok(Some(Resolved { exists: true, written_is_link: Some(false) })),
        // The walk stops at the first missing component or non-directory; no symlink came before
        // it (that would be ELOOP), and nothing below it exists.
        Err(Errno::NOENT) | Err(Errno::NOTDIR) => Ok(Some(Resolved { exists: false, written_is_link: Some(false) })),
        Err(_) => Ok(None),
    }
}

/// `readlinkat(AT_FDCWD, path)` into `out`. EINVAL means "exists, not a symlink".
pub(crate) fn read_link(path: &CStr, out: &mut PathBuf) -> core::result::Result<(), Errno> {
    read_link_at(rustix::fs::CWD, path, out)
}

/// `readlinkat(dir, path)` into `out`.
pub(crate) fn read_link_at(
    dir: rustix::fd::BorrowedFd<'_>,
    path: &CStr,
    out: &mut PathBuf,
) -> core::result::Result<(), Errno> {
    let len = rustix::fs::readlinkat_raw(dir, path, &mut out.buf[..PATH_CAP])?;
    if len >= PATH_CAP {
        return Err(Errno::NAMETOOLONG);
    }
    out.len = len;
    out.buf[len] = 0;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn key(p: &str) -> Vec<u8> {
        let mut v = vec![0; key_len(p.as_bytes(), true)];
        write_key(p.as_bytes(), true, &mut v);
        v
    }

    #[test]
    fn keys_order_like_python_splitpath_tuples() {
        assert!(key("/a/b") < key("/a-b"));
        assert!(key("/a") < key("/a/b"));
        assert!(key("/") < key("/a"));
        assert_eq!(key("//usr///lib/"), key("/usr/lib"));
        // splitpath() keeps `.`: "/usr/./lib" is another path, and sorts before "/usr/lib".
        assert!(key("/usr/./lib") < key("/usr/lib"));
        assert_ne!(key("/usr/../lib"), key("/lib"));
    }

    #[test]
    fn normalized_keys_apply_dot_and_dotdot_like_normpath() {
        let norm = |p: &str| {
            let mut v = vec![0; key_len(p.as_bytes(), false)];
            let n = write_normalized_key(p.as_bytes(), &mut v);
            v.truncate(n);
            v
        };
        assert_eq!(norm("/usr/./lib"), key("/usr/lib"));
        assert_eq!(norm("/usr/../lib"), key("/lib"));
        assert_eq!(norm("/../../lib/"), key("/lib"));
        assert_eq!(norm("/a/b/../.."), key("/"));
        assert_eq!(norm("a/../../b"), key("../b"));
        assert_eq!(norm("../../b"), key("../../b"));
    }

    #[test]
    fn tmp_suffix_rule() {
        assert!(is_tmp_dir(b"newroot/tmp"));
        assert!(is_tmp_dir(b"newroot/var/tmp"));
        assert!(!is_tmp_dir(b"newroot/tmpx"));
        assert!(!is_tmp_dir(b"newroot/mytmp"));
    }

    #[test]
    fn pop_component_stops_at_floor() {
        let mut p = PathBuf::new();
        p.set(b"root/a/b").unwrap();
        p.pop_component(4);
        assert_eq!(p.as_bytes(), b"root/a");
        p.pop_component(4);
        p.pop_component(4);
        assert_eq!(p.as_bytes(), b"root");
    }

    #[test]
    fn path_buffer_refuses_overlong_paths() {
        let mut p = PathBuf::new();
        assert_eq!(p.push(&[b'a'; PATH_CAP + 1]), Err(Errno::NAMETOOLONG));
        assert_eq!(p.push(&[b'a'; PATH_CAP]), Ok(()));
        assert_eq!(p.as_cstr().to_bytes().len(), PATH_CAP);
    }

    fn run(root: &std::path::Path, path: &str) -> (String, bool) {
        let (p, r) = run_full(root, path);
        (p, r.exists)
    }

    fn run_full(root: &std::path::Path, path: &str) -> (String, Resolved) {
        let (mut out, mut pending, mut link) = (PathBuf::new(), PathBuf::new(), PathBuf::new());
        let r = resolve(
            root.to_str().unwrap().as_bytes(),
            path.as_bytes(),
            &mut out,
            ResolveScratch { pending: &mut pending, link: &mut link },
        )
        .unwrap();
        let full = String::from_utf8(out.as_bytes().to_vec()).unwrap();
        let rel = full.strip_prefix(root.to_str().unwrap()).unwrap().to_string();
        (rel, r)
    }

    #[test]
    fn resolve_reports_existence_and_written_links() {
        let dir = tempdir();
        let root = dir.as_path();
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        symlink("usr/lib", root.join("lib")).unwrap();
        let r = |p: &str| run_full(root, p).1;
        let resolved = |exists, written_is_link| Resolved { exists, written_is_link };
        assert_eq!(r("/usr/lib"), resolved(true, Some(false)));
        assert_eq!(r("/usr"), resolved(true, Some(false)));
        assert_eq!(r("/usr/new"), resolved(false, Some(false)));
        assert_eq!(r("/usr/new/deeper"), resolved(false, Some(false)));
        assert_eq!(r("/lib"), resolved(true, Some(true)));
        assert_eq!(r("/lib/"), resolved(true, Some(true)));
        assert_eq!(r("/lib/x"), resolved(false, None));
        assert_eq!(r("/missing/../usr"), resolved(true, Some(false)));
        assert_eq!(r("/usr/../usr/lib"), resolved(true, Some(false)));
        // A trailing symlink two levels down: the single-walk check must refuse it, not open it.
        symlink("lib", root.join("usr/liblink")).unwrap();
        assert_eq!(r("/usr/liblink"), resolved(true, Some(true)));
        assert_eq!(run(root, "/usr/liblink"), ("/usr/lib".into(), true));
        // A symlink deep in the path: the fast path steps aside and the walk resolves it.
        assert_eq!(run(root, "/usr/../lib/x"), ("/usr/lib/x".into(), false));
        assert_eq!(run(root, "//usr//lib//"), ("/usr/lib".into(), true));
        assert_eq!(run(root, "/missing/../usr"), ("/usr".into(), true));
    }

    #[test]
    fn resolve_follows_links_inside_the_root() {
        let dir = tempdir();
        let root = dir.as_path();
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        symlink("usr/lib", root.join("lib")).unwrap();
        symlink("/usr/lib", root.join("abslib")).unwrap();
        symlink("../../../..", root.join("etc/up")).unwrap();
        symlink("loop2", root.join("loop1")).unwrap();
        symlink("loop1", root.join("loop2")).unwrap();
        symlink("/nonexistent/target", root.join("dangling")).unwrap();

        assert_eq!(run(root, "/usr/lib"), ("/usr/lib".into(), true));
        assert_eq!(run(root, "/lib"), ("/usr/lib".into(), true));
        assert_eq!(run(root, "/abslib/x/y"), ("/usr/lib/x/y".into(), false));
        assert_eq!(run(root, "/etc/up/usr"), ("/usr".into(), true));
        assert_eq!(run(root, "/missing/a/../b"), ("/missing/b".into(), false));
        assert_eq!(run(root, "/dangling"), ("/nonexistent/target".into(), false));
        assert_eq!(run(root, "/"), ("".into(), true));
        assert_eq!(run(root, "relative/./x"), ("/relative/x".into(), false));
        // After a loop the rest applies by the letter (realpath() + abspath()), and existence is
        // the kernel's, inside the root.
        assert_eq!(run(root, "/loop1/../usr"), ("/usr".into(), true));
        assert_eq!(run(root, "/loop1/../lib"), ("/lib".into(), true));
        assert_eq!(run(root, "/loop1/../nope"), ("/nope".into(), false));
        let (_, exists) = run(root, "/loop1/x");
        assert!(!exists);
    }

    pub(crate) fn tempdir() -> TempDir {
        let base = std::env::temp_dir().join(format!(
            "mkosi-sandbox-unit-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&base).unwrap();
        TempDir(base)
    }

    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

    pub(crate) struct TempDir(std::path::PathBuf);
    impl TempDir {
        pub(crate) fn as_path(&self) -> &std::path::Path {
            &self.0
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
