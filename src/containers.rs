//! Fixed-capacity containers: the binary has no heap, so everything derived from the arguments
//! lives in vectors and a byte bump of capacities fixed at compile time. This module imports
//! nothing from the crate; the stages own their storage built from these types, and the one
//! static instance that holds it all is assembled at the top (`Storage` in `lib.rs`).
//!
//! Empty containers are all zeroes, so the static storage lands in `.bss`: it costs neither binary
//! size nor memory until a page is touched. A full container says which capacity overflowed.

#![allow(unsafe_code)]

use core::ffi::CStr;
use core::mem::MaybeUninit;

/// A push found the container full; `capacity` is the limit that was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Full {
    pub(crate) capacity: usize,
}

/// A vector with a capacity fixed at compile time.
///
/// The storage is `MaybeUninit`, so that an empty vector is "uninitialised" memory, which the
/// compiler places in `.bss` (an `Option<T>` array would not be all zeroes for most `T`, and would
/// put megabytes into the binary's `.data`). Slots below `len` are always initialised.
// repr(C) with `len` first: the length and the first items share a page, so a small vector
// costs one page fault, not two.
#[repr(C)]
pub(crate) struct FixedVec<T: Copy, const N: usize> {
    len: usize,
    items: [MaybeUninit<T>; N],
}

impl<T: Copy, const N: usize> FixedVec<T, N> {
    pub(crate) const fn new() -> Self {
        Self { len: 0, items: [const { MaybeUninit::uninit() }; N] }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn push(&mut self, item: T) -> Result<usize, Full> {
        let slot = self.items.get_mut(self.len).ok_or(Full { capacity: N })?;
        slot.write(item);
        self.len += 1;
        Ok(self.len - 1)
    }

    /// The initialised elements.
    pub(crate) fn as_slice(&self) -> &[T] {
        // SAFETY: every slot below `len` was written by `push` or `set` (the invariant of this
        // type), and `MaybeUninit<T>` has the layout of `T`.
        unsafe { core::slice::from_raw_parts(self.items.as_ptr().cast::<T>(), self.len) }
    }

    /// The initialised elements, for in-place edits (reordering, replacing).
    pub(crate) fn as_mut_slice(&mut self) -> &mut [T] {
        // SAFETY: as in `as_slice`; the exclusive borrow of `self` makes the slice unique.
        unsafe { core::slice::from_raw_parts_mut(self.items.as_mut_ptr().cast::<T>(), self.len) }
    }

    pub(crate) fn get(&self, index: usize) -> Option<T> {
        self.as_slice().get(index).copied()
    }

    pub(crate) fn set(&mut self, index: usize, item: T) {
        if index < self.len {
            self.items[index].write(item);
        }
    }

    /// Removes element `index`, keeping the order of the others.
    pub(crate) fn remove(&mut self, index: usize) {
        if index < self.len {
            self.as_mut_slice()[index..].rotate_left(1);
            self.len -= 1;
        }
    }

    pub(crate) fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = T> + '_ {
        self.as_slice().iter().copied()
    }
}

impl<T: Copy, const N: usize> Default for FixedVec<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

/// A bump allocator over a byte buffer. Slices it hands out live as long as the buffer.
pub(crate) struct Bump<'a> {
    rest: &'a mut [u8],
    capacity: usize,
}

impl<'a> Bump<'a> {
    pub(crate) fn new(storage: &'a mut [u8]) -> Self {
        let capacity = storage.len();
        Self { rest: storage, capacity }
    }

    pub(crate) fn alloc(&mut self, len: usize) -> Result<&'a mut [u8], Full> {
        if len > self.rest.len() {
            return Err(Full { capacity: self.capacity });
        }
        let (head, tail) = core::mem::take(&mut self.rest).split_at_mut(len);
        self.rest = tail;
        Ok(head)
    }

    /// Copies the concatenation of `parts` plus a terminating NUL; returns it as a C string (cut
    /// at the first NUL, should a part hold one).
    pub(crate) fn cstr(&mut self, parts: &[&[u8]]) -> Result<&'a CStr, Full> {
        let len = parts.iter().map(|p| p.len()).sum::<usize>();
        let buf = self.alloc(len + 1)?;
        let mut at = 0;
        for part in parts {
            buf[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        buf[len] = 0;
        Ok(CStr::from_bytes_until_nul(buf).unwrap_or(c""))
    }
}

/// Text of at most `N` bytes, built by appending; what does not fit is cut, never a crash.
#[derive(Clone, Copy)]
pub(crate) struct Bytes<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Bytes<N> {
    pub(crate) const fn new() -> Self {
        Self { buf: [0; N], len: 0 }
    }

    pub(crate) fn push(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(N - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    /// Drops the last byte.
    pub(crate) fn pop(&mut self) {
        self.len = self.len.saturating_sub(1);
    }
}

impl<const N: usize> Default for Bytes<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// Inserts `item` into `slots`, whose last slot is free and the rest sorted by `key`, after any
/// equal keys: an insertion sort, for the short and almost sorted lists it serves (inherited
/// descriptors, id ranges).
pub(crate) fn insert_sorted_by_key<T: Copy, K: PartialOrd>(slots: &mut [T], item: T, key: impl Fn(&T) -> K) {
    let Some(mut at) = slots.len().checked_sub(1) else { return };
    let new = key(&item);
    while at > 0 && key(&slots[at - 1]) > new {
        slots[at] = slots[at - 1];
        at -= 1;
    }
    slots[at] = item;
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
        assert_eq!(v.push(4), Err(Full { capacity: 3 }));
        assert_eq!(v.len(), 3);
        assert_eq!(v.iter().collect::<Vec<_>>(), vec![1, 2, 3]);
        v.truncate(1);
        assert_eq!(v.get(0), Some(1));
        assert_eq!(v.get(1), None);
    }

    #[test]
    fn insertion_keeps_the_list_sorted_and_stable() {
        let mut slots = [(0u32, 'x'); 5];
        for (n, item) in [(3, 'a'), (1, 'b'), (3, 'c'), (2, 'd'), (0, 'e')].into_iter().enumerate() {
            insert_sorted_by_key(&mut slots[..=n], item, |&(k, _)| k);
        }
        assert_eq!(slots, [(0, 'e'), (1, 'b'), (2, 'd'), (3, 'a'), (3, 'c')]);
        insert_sorted_by_key(&mut [0u8; 0], 1, |&k| k);
    }

    #[test]
    fn bytes_cut_what_does_not_fit() {
        let mut b = Bytes::<4>::new();
        b.push(b"ab");
        b.push(b"cde");
        assert_eq!(b.as_bytes(), b"abcd");
        b.push(b"f");
        assert_eq!(b.as_bytes(), b"abcd");
        b.clear();
        assert_eq!(b.as_bytes(), b"");
    }

    #[test]
    fn remove_keeps_order() {
        let mut v: FixedVec<u32, 4> = FixedVec::new();
        for x in [1, 2, 3, 4] {
            v.push(x).unwrap();
        }
        v.remove(1);
        assert_eq!(v.as_slice(), [1, 3, 4]);
        v.remove(2);
        assert_eq!(v.as_slice(), [1, 3]);
        v.remove(5);
        assert_eq!(v.as_slice(), [1, 3]);
    }

    #[test]
    fn bump_hands_out_disjoint_slices_and_fails_cleanly() {
        let mut storage = [0u8; 16];
        let mut bump = Bump::new(&mut storage);
        let a = bump.cstr(&[b"ab", b"cd"]).unwrap();
        let b = bump.cstr(&[b"xyz"]).unwrap();
        assert_eq!(a.to_bytes(), b"abcd");
        assert_eq!(b.to_bytes(), b"xyz");
        // 16 - 5 - 4 = 7 bytes left.
        assert_eq!(bump.alloc(8).err(), Some(Full { capacity: 16 }));
        assert!(bump.alloc(7).is_ok());
    }
}
