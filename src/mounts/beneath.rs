//! Creating and writing below the new root so that the kernel cannot be led out of it.
//!
//! During set-up the caller's whole tree is reachable at `/oldroot`, so a build root holding
//! `etc -> /oldroot/home/user` (or `-> ../oldroot/...`) would, if a destination path were simply
//! handed to `mkdirat(AT_FDCWD, "newroot/etc/x")`, make the kernel create `x` on the host. The
//! original (and bubblewrap) do exactly that for `--symlink`. Here, `chase()` (`path::resolve`)
//! first decides where a destination lies, inside the new root; then every call that creates or
//! writes goes through this module:
//!
//! - the parent directory is opened with RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH, so a symlink that
//!   is there anyway (one that appeared since the walk, a chain longer than the walk follows) is
//!   refused with ELOOP, never followed;
//! - missing parents are made one at a time, each relative to the descriptor of the one before;
//! - the entry itself is made relative to the parent's descriptor (`mkdirat`, `mknodat`,
//!   `symlinkat` never follow a last component; `write` opens with RESOLVE_NO_SYMLINKS).
//!
//! Mount targets are chased paths too. A mount cannot write anything, and set-up runs in a
//! mount namespace whose mounts never propagate to the caller's, so even a target redirected by a
//! concurrent writer could not change the host.

use core::ffi::CStr;

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{CWD, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::path::PathBuf;

/// No symlink (magic links included) anywhere, and no step above the starting directory.
pub(crate) const CONTAINED: ResolveFlags = ResolveFlags::NO_SYMLINKS.union(ResolveFlags::BENEATH);

/// Opens the directory `dir/path` for use as a parent (`O_PATH`), refusing any symlink.
pub(crate) fn open_dir(dir: BorrowedFd<'_>, path: &CStr) -> Result<OwnedFd, Errno> {
    open(dir, path, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
}

/// Opens `dir/path` with `flags` (and `mode` when creating), refusing any symlink.
pub(crate) fn open(dir: BorrowedFd<'_>, path: &CStr, flags: OFlags, mode: Mode) -> Result<OwnedFd, Errno> {
    match rustix::fs::openat2(dir, path, flags, mode, CONTAINED) {
        Err(Errno::NOSYS) => open_walking(dir, path, flags, mode),
        other => other,
    }
}

/// `open` without `openat2()` (Linux before 5.6, qemu-user): the same refusals by hand, one
/// component at a time, each opened with O_NOFOLLOW (an intermediate symlink is then ENOTDIR).
fn open_walking(dir: BorrowedFd<'_>, path: &CStr, flags: OFlags, mode: Mode) -> Result<OwnedFd, Errno> {
    let bytes = path.to_bytes();
    if bytes.first() == Some(&b'/') {
        return Err(Errno::XDEV);
    }
    let mut names = bytes.split(|&b| b == b'/').filter(|c| !c.is_empty() && *c != b".").peekable();
    let mut at: Option<OwnedFd> = None;
    let mut name = [0u8; 256];
    while let Some(component) = names.next() {
        if component == b".." {
            return Err(Errno::XDEV);
        }
        let len = component.len();
        if len >= name.len() {
            return Err(Errno::NAMETOOLONG);
        }
        name[..len].copy_from_slice(component);
        name[len] = 0;
        let c_name = CStr::from_bytes_with_nul(&name[..=len]).map_err(|_| Errno::INVAL)?;
        let parent = at.as_ref().map_or(dir, |d| d.as_fd());
        let next = if names.peek().is_some() {
            rustix::fs::openat(
                parent,
                c_name,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
        } else {
            rustix::fs::openat(parent, c_name, flags | OFlags::NOFOLLOW, mode)
        };
        at = Some(next?);
    }
    match at {
        Some(fd) => Ok(fd),
        None => rustix::fs::openat(dir, c".", flags, mode),
    }
}

/// Runs `create(parent, name)` for a chased `path` (relative to `base`, the workspace), after
/// opening its parent without following symlinks, and making it first (mode 0755, like
/// `os.makedirs(dirname(path))`) when it is missing.
pub(crate) fn create<T>(
    base: BorrowedFd<'_>,
    path: &mut PathBuf,
    mut create: impl FnMut(BorrowedFd<'_>, &CStr) -> Result<T, Errno>,
) -> Result<T, Errno> {
    let mut made = None;
    in_parent(base, path, true, &mut |dir, name| create(dir, name).map(|t| made = Some(t)))?;
    made.ok_or(Errno::INVAL)
}

/// Runs `act(parent, name)` for a chased `path` whose parent must exist (`--symlink`).
pub(crate) fn at<T>(
    base: BorrowedFd<'_>,
    path: &mut PathBuf,
    mut act: impl FnMut(BorrowedFd<'_>, &CStr) -> Result<T, Errno>,
) -> Result<T, Errno> {
    let mut done = None;
    in_parent(base, path, false, &mut |dir, name| act(dir, name).map(|t| done = Some(t)))?;
    done.ok_or(Errno::INVAL)
}

/// What `in_parent` runs in the parent (not generic: one copy of the walk in the binary).
type Act<'a> = dyn FnMut(BorrowedFd<'_>, &CStr) -> Result<(), Errno> + 'a;

fn in_parent(base: BorrowedFd<'_>, path: &mut PathBuf, make: bool, act: &mut Act<'_>) -> Result<(), Errno> {
    let Some(slash) = path.as_bytes().iter().rposition(|&b| b == b'/') else {
        // A name in the workspace itself (never a chased destination, which is below newroot).
        return act(base, path.as_cstr());
    };
    match in_parent_holding(base, path, slash, make, act) {
        // Out of descriptors (RLIMIT_NOFILE): the same walk, holding one at a time.
        Err(Errno::MFILE) if is_cwd(base) => in_parent_by_cwd(path, slash, make, act),
        other => other,
    }
}

fn in_parent_holding(
    base: BorrowedFd<'_>,
    path: &mut PathBuf,
    slash: usize,
    make: bool,
    act: &mut Act<'_>,
) -> Result<(), Errno> {
    let parent = match with_prefix(path, slash, |p| open_dir(base, p)) {
        Err(Errno::NOENT) if make => make_dirs(base, path, slash, 0o755)?,
        other => other?,
    };
    act(parent.as_fd(), name_after(path, slash)?)
}

/// The fallback with a single descriptor: enter each directory (`fchdir()`), act relative to the
/// cwd, and return to the workspace, which is `/` during set-up.
fn in_parent_by_cwd(path: &mut PathBuf, slash: usize, make: bool, act: &mut Act<'_>) -> Result<(), Errno> {
    let result = match with_prefix(path, slash, |p| open_dir(CWD, p)) {
        Ok(dir) => rustix::process::fchdir(&dir),
        Err(Errno::NOENT) if make => enter_dirs(path, slash, 0o755),
        Err(e) => Err(e),
    }
    .and_then(|()| act(CWD, name_after(path, slash)?));
    let back = rustix::process::chdir(c"/");
    result.and_then(|made| back.map(|()| made))
}

fn name_after(path: &mut PathBuf, slash: usize) -> Result<&CStr, Errno> {
    CStr::from_bytes_with_nul(&path.raw_mut()[slash + 1..]).map_err(|_| Errno::INVAL)
}

fn is_cwd(dir: BorrowedFd<'_>) -> bool {
    use rustix::fd::AsRawFd;
    dir.as_raw_fd() == CWD.as_raw_fd()
}

/// Creates the directory `path` (chased) and any missing parents, like `os.makedirs(path,
/// exist_ok=True)`: an existing directory is fine, anything else there is EEXIST.
pub(crate) fn make_all(base: BorrowedFd<'_>, path: &mut PathBuf, mode: u32) -> Result<(), Errno> {
    let len = path.len();
    match make_dirs(base, path, len, mode) {
        Err(Errno::MFILE) if is_cwd(base) => {
            let result = enter_dirs(path, len, mode);
            let back = rustix::process::chdir(c"/");
            result.and(back)
        }
        other => other.map(drop),
    }
}

/// `mkdir -p` of the first `end` bytes of `path`, one component at a time relative to the
/// previous one's descriptor; returns the last directory, opened. The walk starts at the deepest
/// directory that exists (found going up, usually one step); missing ones are made with `mode`.
/// A symlink on the way is ELOOP, and a last component that exists but is no directory (a
/// symlink included) is EEXIST, as for `os.makedirs()`.
fn make_dirs(base: BorrowedFd<'_>, path: &mut PathBuf, end: usize, mode: u32) -> Result<OwnedFd, Errno> {
    let mut dir: Option<OwnedFd> = None;
    let mut from = 0;
    let mut cut = end;
    while let Some(slash) = path.as_bytes()[..cut].iter().rposition(|&b| b == b'/') {
        match with_prefix(path, slash, |p| open_dir(base, p)) {
            Ok(found) => {
                dir = Some(found);
                from = slash + 1;
                break;
            }
            Err(Errno::NOENT) => cut = slash,
            Err(e) => return Err(e),
        }
    }
    walk(path, from, end, |name, last| {
        let next = make_dir(dir.as_ref().map_or(base, |d| d.as_fd()), name, mode, last)?;
        dir = Some(next);
        Ok(())
    })?;
    match dir {
        Some(dir) => Ok(dir),
        None => open_dir(base, c"."),
    }
}

/// `make_dirs` holding one descriptor at a time: each directory becomes the cwd in turn.
fn enter_dirs(path: &mut PathBuf, end: usize, mode: u32) -> Result<(), Errno> {
    walk(path, 0, end, |name, last| rustix::process::fchdir(make_dir(CWD, name, mode, last)?))
}

/// Opens `parent/name` as a directory, making it first when missing.
fn make_dir(parent: BorrowedFd<'_>, name: &CStr, mode: u32, last: bool) -> Result<OwnedFd, Errno> {
    let not_a_dir = |e: Errno| if last && (e == Errno::LOOP || e == Errno::NOTDIR) { Errno::EXIST } else { e };
    if name.to_bytes() == b".." || name.to_bytes() == b"." {
        // Chased paths hold neither; refuse rather than step anywhere unplanned.
        return Err(Errno::INVAL);
    }
    match open_dir(parent, name) {
        Err(Errno::NOENT) => {}
        other => return other.map_err(not_a_dir),
    }
    match rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(mode)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(e),
    }
    open_dir(parent, name).map_err(not_a_dir)
}

/// Calls `step(name, is_last)` for each component of bytes `from..end` of `path`.
fn walk(
    path: &mut PathBuf,
    from: usize,
    end: usize,
    mut step: impl FnMut(&CStr, bool) -> Result<(), Errno>,
) -> Result<(), Errno> {
    let mut at = from;
    while at < end {
        let start = at;
        while at < end && path.as_bytes()[at] != b'/' {
            at += 1;
        }
        let stop = at;
        at += 1;
        if stop > start {
            with_span(path, start, stop, |name| step(name, stop >= end))?;
        }
    }
    Ok(())
}

/// Calls `f` with the first `end` bytes of `path` as a C string (cut with a NUL for the call).
fn with_prefix<T>(path: &mut PathBuf, end: usize, f: impl FnOnce(&CStr) -> Result<T, Errno>) -> Result<T, Errno> {
    with_span(path, 0, end, f)
}

/// Calls `f` with bytes `start..stop` of `path` as a C string.
fn with_span<T>(
    path: &mut PathBuf,
    start: usize,
    stop: usize,
    f: impl FnOnce(&CStr) -> Result<T, Errno>,
) -> Result<T, Errno> {
    let raw = path.raw_mut();
    let saved = raw[stop];
    raw[stop] = 0;
    let result = match CStr::from_bytes_until_nul(&raw[start..=stop]) {
        Ok(span) => f(span),
        Err(_) => Err(Errno::INVAL),
    };
    raw[stop] = saved;
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::tests::tempdir;
    use std::os::unix::fs::symlink;

    fn at(rel: &str) -> PathBuf {
        let mut p = PathBuf::new();
        p.set(rel.as_bytes()).unwrap();
        p
    }

    #[test]
    fn creates_parents_and_refuses_symlinks_anywhere() {
        let dir = tempdir();
        let root = dir.as_path();
        let outside = tempdir();
        symlink(outside.as_path(), root.join("abs")).unwrap();
        std::fs::create_dir(root.join("real")).unwrap();
        let root_c = std::ffi::CString::new(root.to_str().unwrap()).unwrap();
        let base = rustix::fs::open(root_c.as_c_str(), OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
        let base = base.as_fd();

        let mut p = at("a/b/c");
        create(base, &mut p, |d, n| rustix::fs::mkdirat(d, n, Mode::from_raw_mode(0o755))).unwrap();
        assert!(root.join("a/b/c").is_dir());
        make_all(base, &mut at("a/b/c/d/e"), 0o755).unwrap();
        assert!(root.join("a/b/c/d/e").is_dir());
        make_all(base, &mut at("real"), 0o755).unwrap();

        let mkdir = |d: BorrowedFd<'_>, n: &CStr| rustix::fs::mkdirat(d, n, Mode::from_raw_mode(0o755));
        assert_eq!(create(base, &mut at("abs/x"), mkdir), Err(Errno::LOOP));
        assert_eq!(create(base, &mut at("abs/x/y"), mkdir), Err(Errno::LOOP));
        assert_eq!(make_all(base, &mut at("abs/x"), 0o755), Err(Errno::LOOP));
        assert_eq!(make_all(base, &mut at("../escape"), 0o755), Err(Errno::XDEV));
        // `..` that stays below the base is the kernel's to resolve (RESOLVE_BENEATH).
        assert_eq!(make_all(base, &mut at("a/../inside"), 0o755), Ok(()));
        assert!(root.join("inside").is_dir());
        // makedirs(exist_ok=True) on a symlink: EEXIST, as in Python.
        assert_eq!(make_all(base, &mut at("abs"), 0o755), Err(Errno::EXIST));
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::CLOEXEC;
        let write = |d: BorrowedFd<'_>, n: &CStr| open(d, n, flags, Mode::from_raw_mode(0o644));
        assert_eq!(create(base, &mut at("abs/f"), write).err(), Some(Errno::LOOP));
        assert_eq!(std::fs::read_dir(outside.as_path()).unwrap().count(), 0, "nothing made outside");
    }

    #[test]
    fn without_openat2_the_walk_refuses_the_same() {
        let dir = tempdir();
        let root = dir.as_path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        symlink("/", root.join("a/up")).unwrap();
        let root_c = std::ffi::CString::new(root.to_str().unwrap()).unwrap();
        let base = rustix::fs::open(root_c.as_c_str(), OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
        let base = base.as_fd();
        let dir_flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        assert!(open_walking(base, c"a/./b/", dir_flags, Mode::empty()).is_ok());
        assert_eq!(open_walking(base, c"a/up/tmp", dir_flags, Mode::empty()).err(), Some(Errno::NOTDIR));
        assert_eq!(open_walking(base, c"a/up", dir_flags, Mode::empty()).err(), Some(Errno::NOTDIR));
        assert_eq!(open_walking(base, c"a/../a", dir_flags, Mode::empty()).err(), Some(Errno::XDEV));
        assert_eq!(open_walking(base, c"/a", dir_flags, Mode::empty()).err(), Some(Errno::XDEV));
        let write = OFlags::WRONLY | OFlags::CREATE | OFlags::CLOEXEC;
        assert_eq!(open_walking(base, c"a/up", write, Mode::from_raw_mode(0o644)).err(), Some(Errno::LOOP));
    }
}
