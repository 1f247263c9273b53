//! Fast paths for the common case: sources that exist without symlinks and destinations that do
//! not exist yet. They make the same decisions as the original's `chase()`-based code, with fewer
//! and shorter path walks:
//!
//! - the parent directory of a source or destination is opened once (`O_PATH`, with
//!   RESOLVE_NO_SYMLINKS) and kept while consecutive operations use the same parent, as mkosi's
//!   long lists of binds below one directory do;
//! - a source is then one `lstat()` of its last component, relative to that parent;
//! - a destination is made with one `mkdirat()`/`mknodat()`/`openat(O_EXCL)` relative to its
//!   parent: success proves it did not exist, so there was nothing to resolve.
//!
//! Anything else (a symlink, an existing destination, `..`) returns None and the caller resolves
//! the path component by component, as the original does.

use core::ffi::CStr;

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::error::{Error, Result, Syscall};
use crate::path::{PathBuf, components};

/// An open parent directory and the written path it was opened for.
pub(crate) struct ParentCache {
    key: PathBuf,
    fd: Option<OwnedFd>,
    /// Out of descriptors once (RLIMIT_NOFILE): keep none open from then on.
    disabled: bool,
}

impl ParentCache {
    pub(crate) const fn new() -> Self {
        Self { key: PathBuf::new(), fd: None, disabled: false }
    }

    pub(crate) fn forget(&mut self) {
        self.fd = None;
    }

    /// Closes the descriptor and opens none again: every slot may be needed elsewhere.
    pub(crate) fn disable(&mut self) {
        self.fd = None;
        self.disabled = true;
    }

    /// Whether `path` (written) lies strictly below the cached parent: operations there cannot
    /// change what the parent is.
    pub(crate) fn covers(&self, path: &[u8]) -> bool {
        if self.fd.is_none() {
            return false;
        }
        let key = self.key.as_bytes();
        let mut want = components(key);
        let mut have = components(path);
        loop {
            match (want.next(), have.next()) {
                (None, Some(_)) => return true,
                (Some(a), Some(b)) if a == b => {}
                _ => return false,
            }
        }
    }

    /// The parent directory `root/parent`, opened once per run of operations below it.
    fn open(&mut self, root: &[u8], parent: &[u8], tmp: &mut PathBuf) -> Option<BorrowedFd<'_>> {
        if self.disabled {
            return None;
        }
        if self.fd.is_none() || self.key.as_bytes() != parent {
            self.fd = None;
            tmp.set(root).ok()?;
            tmp.push_component(parent).ok()?;
            let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
            let resolve = ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
            let fd = rustix::fs::openat2(CWD, tmp.as_cstr(), flags, Mode::empty(), resolve).ok()?;
            self.key.set(parent).ok()?;
            self.fd = Some(fd);
        }
        self.fd.as_ref().map(|fd| fd.as_fd())
    }
}

impl Default for ParentCache {
    fn default() -> Self {
        Self::new()
    }
}

/// `path` split into its normalized parent (components joined by `/`, written into `parent`)
/// and its last component; None for `/` and for paths with `..`.
fn split<'p>(path: &'p [u8], parent: &mut PathBuf) -> Option<&'p [u8]> {
    if components(path).any(|c| c == b"..") {
        return None;
    }
    let last = components(path).next_back()?;
    parent.clear();
    let depth = components(path).count();
    for c in components(path).take(depth - 1) {
        parent.push_component(c).ok()?;
    }
    Some(last)
}

/// `name` as a C string, in `buf`.
fn c_name<'b>(name: &[u8], buf: &'b mut PathBuf) -> Option<&'b CStr> {
    buf.set(name).ok()?;
    Some(buf.as_cstr())
}

/// Scratch the fast paths need.
pub(crate) struct Buffers<'a> {
    pub(crate) parent: &'a mut PathBuf,
    pub(crate) name: &'a mut PathBuf,
    pub(crate) tmp: &'a mut PathBuf,
}

/// A bind source below `root` (the caller's root): Some(Some(type)) when it exists and no
/// component is a symlink, Some(None) when it is missing below a symlink-free parent, None when
/// the full resolution must decide. On Some(Some(_)), `out` holds `root/src`.
pub(crate) fn source(
    cache: &mut ParentCache,
    root: &[u8],
    src: &CStr,
    out: &mut PathBuf,
    b: Buffers<'_>,
) -> Option<Option<FileType>> {
    let last = split(src.to_bytes(), b.parent)?;
    let name = c_name(last, b.name)?;
    let stat = if b.parent.is_empty() {
        out.set(root).ok()?;
        out.push_component(last).ok()?;
        rustix::fs::statat(CWD, out.as_cstr(), AtFlags::SYMLINK_NOFOLLOW)
    } else {
        let dir = cache.open(root, b.parent.as_bytes(), b.tmp)?;
        rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
    };
    match stat {
        Ok(st) => match FileType::from_raw_mode(st.st_mode) {
            FileType::Symlink => None,
            kind => {
                out.set(root).ok()?;
                out.push_component(b.parent.as_bytes()).ok()?;
                out.push_component(last).ok()?;
                Some(Some(kind))
            }
        },
        Err(Errno::NOENT) => Some(None),
        Err(_) => None,
    }
}

/// Makes a destination below `root` (the new root) that must not exist yet. `create` gets the
/// directory, the name and the full path (for the mode rules). Returns Some(made) with `out`
/// holding `root/dst`; None when it exists already or the parent needs resolving.
pub(crate) fn create<T>(
    cache: &mut ParentCache,
    root: &[u8],
    dst: &CStr,
    syscall: Syscall,
    out: &mut PathBuf,
    b: Buffers<'_>,
    create: impl FnOnce(BorrowedFd<'_>, &CStr, &[u8]) -> core::result::Result<T, Errno>,
) -> Result<Option<T>> {
    let Some(last) = split(dst.to_bytes(), b.parent) else { return Ok(None) };
    if out
        .set(root)
        .and_then(|_| out.push_component(b.parent.as_bytes()))
        .and_then(|_| out.push_component(last))
        .is_err()
    {
        return Ok(None);
    }
    let made = if b.parent.is_empty() {
        // Directly below the root, which holds no symlink: the workspace path will do.
        create(CWD, out.as_cstr(), out.as_bytes())
    } else {
        let Some(name) = c_name(last, b.name) else { return Ok(None) };
        let Some(dir) = cache.open(root, b.parent.as_bytes(), b.tmp) else { return Ok(None) };
        create(dir, name, out.as_bytes())
    };
    match made {
        Ok(made) => Ok(Some(made)),
        Err(Errno::EXIST) => Ok(None),
        Err(e) => Err(Error::sys(syscall, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_only_paths_strictly_below() {
        let mut cache = ParentCache::new();
        cache.key.set(b"var/lib").unwrap();
        cache.fd = Some(rustix::fs::openat(CWD, c"/", OFlags::PATH | OFlags::CLOEXEC, Mode::empty()).unwrap());
        assert!(cache.covers(b"/var/lib/x"));
        assert!(cache.covers(b"//var//lib/x/y"));
        assert!(!cache.covers(b"/var/lib"));
        assert!(!cache.covers(b"/var/lib2/x"));
        assert!(!cache.covers(b"/var"));
        cache.forget();
        assert!(!cache.covers(b"/var/lib/x"));
    }

    #[test]
    fn split_gives_parent_and_name() {
        let mut parent = PathBuf::new();
        assert_eq!(split(b"/usr/lib//x/", &mut parent), Some(&b"x"[..]));
        assert_eq!(parent.as_bytes(), b"usr/lib");
        assert_eq!(split(b"/usr", &mut parent), Some(&b"usr"[..]));
        assert_eq!(parent.as_bytes(), b"");
        assert_eq!(split(b"/", &mut parent), None);
        assert_eq!(split(b"/a/../b", &mut parent), None);
    }
}
