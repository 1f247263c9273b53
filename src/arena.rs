//! The fixed-capacity arena: every piece of derived data lives here, in static memory.
//!
//! The binary has no heap allocator. argv strings are borrowed for the life of the process; what
//! is derived from them (the operation list, its order, normalized sort keys, the new environment,
//! paths built while executing) goes into the capacities below. Exceeding one is a clean error,
//! never a crash. The storage is zero-initialised so that it lands in `.bss`: it costs neither
//! binary size nor memory until a page is touched.

use core::ffi::CStr;
use core::mem::MaybeUninit;

use crate::cli::Op;
use crate::error::Error;
use crate::mounts::ParentCache;
use crate::path::PathBuf;

/// Filesystem operations (`--bind`, `--dir`, ...). mkosi's largest calls carry a few hundred.
pub const MAX_OPS: usize = 8192;
/// `--overlay-lowerdir` entries over the whole command line.
pub const MAX_LOWERDIRS: usize = 1024;
/// `--setenv` and `--unsetenv` entries each.
pub const MAX_ENV_EDITS: usize = 1024;
/// Entries of the environment handed to the command.
pub const MAX_ENV: usize = 4096;
/// Bytes for derived strings: sort keys, `NAME=VALUE` pairs, overlay options, the cwd.
/// Larger than the kernel's limit on argv plus environ (ARG_MAX at the default stack rlimit is 2 MiB)
/// so that every key of the largest possible command line fits.
pub const MAX_BYTES: usize = 6 << 20;
/// Descriptors that `--pack-fds` can move.
pub const MAX_FDS: usize = 4096;

/// A vector with a capacity fixed at compile time.
///
/// The storage is `MaybeUninit`, so that an empty vector is "uninitialised" memory, which the
/// compiler places in `.bss` (an `Option<T>` array would not be all zeroes for most `T`, and would
/// put megabytes into the binary's `.data`). Slots below `len` are always initialised.
// repr(C) with `len` first: the length and the first items share a page, so a small vector
// costs one page fault, not two.
#[repr(C)]
pub struct FixedVec<T: Copy, const N: usize> {
    len: usize,
    items: [MaybeUninit<T>; N],
}

/// A push found the vector full; `what` names the capacity in the error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

impl<T: Copy, const N: usize> FixedVec<T, N> {
    pub const fn new() -> Self {
        Self { len: 0, items: [const { MaybeUninit::uninit() }; N] }
    }

    pub const fn capacity(&self) -> usize {
        N
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, item: T) -> Result<usize, Full> {
        let slot = self.items.get_mut(self.len).ok_or(Full)?;
        slot.write(item);
        self.len += 1;
        Ok(self.len - 1)
    }

    /// The initialised elements.
    pub fn as_slice(&self) -> &[T] {
        // SAFETY: every slot below `len` was written by `push` or `set` (the invariant of this
        // type), and `MaybeUninit<T>` has the layout of `T`.
        unsafe { core::slice::from_raw_parts(self.items.as_ptr().cast::<T>(), self.len) }
    }

    pub fn get(&self, index: usize) -> Option<T> {
        self.as_slice().get(index).copied()
    }

    pub fn set(&mut self, index: usize, item: T) {
        if index < self.len {
            self.items[index].write(item);
        }
    }

    /// Removes element `index`, moving the last element into its place (order not kept).
    pub fn swap_remove(&mut self, index: usize) {
        if index < self.len {
            self.items.swap(index, self.len - 1);
            self.len -= 1;
        }
    }

    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = T> + '_ {
        self.as_slice().iter().copied()
    }
}

impl<T: Copy, const N: usize> Default for FixedVec<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

/// A bump allocator over a static byte buffer. Slices it hands out live as long as the buffer.
pub struct Bump<'a> {
    rest: &'a mut [u8],
}

impl<'a> Bump<'a> {
    pub fn new(storage: &'a mut [u8]) -> Self {
        Self { rest: storage }
    }

    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    pub fn alloc(&mut self, len: usize) -> Result<&'a mut [u8], Error> {
        if len > self.rest.len() {
            return Err(Error::capacity("bytes for derived strings", MAX_BYTES));
        }
        let (head, tail) = core::mem::take(&mut self.rest).split_at_mut(len);
        self.rest = tail;
        Ok(head)
    }

    /// Copies the concatenation of `parts` plus a terminating NUL; returns it as a C string.
    pub fn cstr(&mut self, parts: &[&[u8]]) -> Result<&'a CStr, Error> {
        let len = parts.iter().map(|p| p.len()).sum::<usize>();
        let buf = self.alloc(len + 1)?;
        let mut at = 0;
        for part in parts {
            buf[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        buf[len] = 0;
        CStr::from_bytes_until_nul(buf).map_err(|_| Error::message("", "string contains a NUL byte"))
    }
}

/// Scratch paths used while executing operations (resolved source, resolved destination,
/// symlink expansion, options).
pub struct Scratch {
    pub a: PathBuf,
    pub b: PathBuf,
    pub pending: PathBuf,
    pub link: PathBuf,
    /// Mount options being assembled (overlay).
    pub opts: PathBuf,
    /// The fast paths' parent, last component and scratch (see `mounts::fresh`).
    pub parent: PathBuf,
    pub name: PathBuf,
    pub tmp: PathBuf,
    /// Open parent directories of the current run of sources and destinations.
    pub src_parent: ParentCache,
    pub dst_parent: ParentCache,
}

impl Scratch {
    pub const fn new() -> Self {
        Self {
            a: PathBuf::new(),
            b: PathBuf::new(),
            pending: PathBuf::new(),
            link: PathBuf::new(),
            opts: PathBuf::new(),
            parent: PathBuf::new(),
            name: PathBuf::new(),
            tmp: PathBuf::new(),
            src_parent: ParentCache::new(),
            dst_parent: ParentCache::new(),
        }
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

/// Everything the process derives from its arguments, in one place.
pub struct Arena {
    pub ops: FixedVec<Op, MAX_OPS>,
    /// Indices into `ops`: the planner's result, and its working space for the binds.
    pub order: [u32; MAX_OPS],
    pub binds: [u32; MAX_OPS],
    pub keys: FixedVec<crate::plan::Keys, MAX_OPS>,
    pub lowerdirs: FixedVec<&'static CStr, MAX_LOWERDIRS>,
    pub setenv: FixedVec<(&'static CStr, &'static CStr), MAX_ENV_EDITS>,
    pub unsetenv: FixedVec<&'static CStr, MAX_ENV_EDITS>,
    pub env: FixedVec<&'static CStr, MAX_ENV>,
    pub fds: FixedVec<u32, MAX_FDS>,
    pub scratch: Scratch,
    pub bytes: [u8; MAX_BYTES],
    /// The NULL-terminated environment handed to execve().
    pub envp: [*const u8; MAX_ENV + 1],
}

impl Arena {
    pub const fn new() -> Self {
        Self {
            ops: FixedVec::new(),
            order: [0; MAX_OPS],
            binds: [0; MAX_OPS],
            keys: FixedVec::new(),
            lowerdirs: FixedVec::new(),
            setenv: FixedVec::new(),
            unsetenv: FixedVec::new(),
            env: FixedVec::new(),
            fds: FixedVec::new(),
            scratch: Scratch::new(),
            bytes: [0; MAX_BYTES],
            envp: [core::ptr::null(); MAX_ENV + 1],
        }
    }
}

impl Default for Arena {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_vec_refuses_past_capacity() {
        let mut v: FixedVec<u32, 3> = FixedVec::new();
        assert_eq!(v.push(1), Ok(0));
        assert_eq!(v.push(2), Ok(1));
        assert_eq!(v.push(3), Ok(2));
        assert_eq!(v.push(4), Err(Full));
        assert_eq!(v.len(), 3);
        assert_eq!(v.iter().collect::<Vec<_>>(), vec![1, 2, 3]);
        v.swap_remove(0);
        assert_eq!(v.iter().collect::<Vec<_>>(), vec![3, 2]);
        v.truncate(1);
        assert_eq!(v.get(0), Some(3));
        assert_eq!(v.get(1), None);
    }

    #[test]
    fn bump_hands_out_disjoint_slices_and_fails_cleanly() {
        let mut storage = [0u8; 16];
        let mut bump = Bump::new(&mut storage);
        let a = bump.cstr(&[b"ab", b"cd"]).unwrap();
        let b = bump.cstr(&[b"xyz"]).unwrap();
        assert_eq!(a.to_bytes(), b"abcd");
        assert_eq!(b.to_bytes(), b"xyz");
        assert_eq!(bump.remaining(), 7);
        assert!(bump.alloc(8).is_err());
        assert!(bump.alloc(7).is_ok());
    }
}
