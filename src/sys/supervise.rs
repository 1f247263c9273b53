//! What a supervising process needs (`--unshare-pid`) and rustix offers only through its unstable,
//! libc-implementer `runtime` module: the signal mask, synchronous signal waits, and
//! `close_range`. (`fork` and SIGCHLD's disposition are in [`super`].)

#![allow(unsafe_code)]

use core::mem::{MaybeUninit, size_of};

use linux_raw_sys::general::{SIG_BLOCK, SIG_SETMASK, kernel_sigset_t, siginfo_t};
use rustix::io::Errno;

use super::{SysResult, check};

/// A kernel signal set (`_NSIG` = 64 on the 64-bit targets we build for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub struct SigSet(u64);

const _: () = assert!(size_of::<SigSet>() == size_of::<kernel_sigset_t>());

impl SigSet {
    pub const fn of(signals: &[u32]) -> Self {
        let mut bits = 0u64;
        let mut i = 0;
        while i < signals.len() {
            bits |= 1 << (signals[i] - 1);
            i += 1;
        }
        Self(bits)
    }

    pub const fn with(self, signal: u32) -> Self {
        Self(self.0 | 1 << (signal - 1))
    }
}

fn sigprocmask(how: u32, set: &SigSet) -> SysResult<SigSet> {
    let mut old = SigSet(0);
    // SAFETY: both pointers refer to live sigsets of the size passed.
    let ret = unsafe {
        sc::syscall!(RT_SIGPROCMASK, how, set as *const SigSet, &mut old as *mut SigSet, size_of::<SigSet>())
    };
    check(ret).map(|_| old)
}

/// Adds `set` to the blocked signals; returns the previous mask.
pub fn block(set: &SigSet) -> SysResult<SigSet> {
    sigprocmask(SIG_BLOCK, set)
}

pub fn set_mask(set: &SigSet) -> SysResult<()> {
    sigprocmask(SIG_SETMASK, set).map(drop)
}

/// A signal taken from the pending set: its number and `si_code` (who sent it).
#[derive(Debug, Clone, Copy)]
pub struct Received {
    pub signo: u32,
    pub code: i32,
}

/// `sigwaitinfo()`: waits until one of `set` (which must be blocked) is pending and takes it.
/// Retries when a stop and continue interrupt the wait.
pub fn wait_signal(set: &SigSet) -> SysResult<Received> {
    loop {
        let mut info = MaybeUninit::<siginfo_t>::zeroed();
        // SAFETY: `set` is a live sigset of the size passed; the kernel writes one siginfo_t into
        // `info`; a NULL timeout means wait indefinitely.
        let ret = unsafe {
            sc::syscall!(
                RT_SIGTIMEDWAIT,
                set as *const SigSet,
                info.as_mut_ptr(),
                core::ptr::null::<u8>(),
                size_of::<SigSet>()
            )
        };
        match check(ret) {
            Ok(signo) => {
                // SAFETY: zero-initialised and filled in by the kernel; every siginfo starts with
                // signo, errno, code.
                let code = unsafe { info.assume_init().__bindgen_anon_1.__bindgen_anon_1.si_code };
                return Ok(Received { signo: signo as u32, code });
            }
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// `close_range(first, ~0, 0)`: closes every descriptor from `first` up.
///
/// # Safety
/// Descriptors owned by Rust handles are closed too: the process must never use, close or drop a
/// handle to a descriptor from `first` up afterwards (it may open new ones).
pub unsafe fn close_from(first: u32) -> SysResult<()> {
    // SAFETY: close_range takes integers only; what the closing means for handles is the
    // caller's contract (above).
    let ret = unsafe { sc::syscall!(CLOSE_RANGE, first, u32::MAX, 0usize) };
    check(ret).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_have_one_bit_per_signal() {
        use linux_raw_sys::general::{SIGCHLD, SIGHUP, SIGWINCH};
        assert_eq!(SigSet::of(&[SIGHUP]), SigSet(1));
        assert_eq!(SigSet::of(&[SIGHUP, SIGCHLD, SIGWINCH]), SigSet(1 | 1 << 16 | 1 << 27));
        assert_eq!(SigSet::of(&[SIGHUP, SIGWINCH]).with(SIGCHLD), SigSet::of(&[SIGHUP, SIGCHLD, SIGWINCH]));
    }
}
