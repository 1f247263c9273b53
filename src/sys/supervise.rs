//! What a supervising process needs (`--unshare-pid`) and rustix offers only through its unstable,
//! libc-implementer `runtime` module: the signal mask, synchronous signal waits, and
//! `close_range`; and the processes of a PID namespace that share the sandbox process's memory.
//! (`fork` and SIGCHLD's disposition are in [`super`].)

#![allow(unsafe_code)]

use core::ffi::{c_int, c_void};
use core::mem::{MaybeUninit, align_of, size_of};

use linux_raw_sys::general::{SIG_BLOCK, SIG_SETMASK, kernel_sigset_t, siginfo_t};
use rustix::io::Errno;

use super::{SingleThreaded, SysResult, check};

/// A kernel signal set (`_NSIG` = 64 on the 64-bit targets we build for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub(crate) struct SigSet(u64);

const _: () = assert!(size_of::<SigSet>() == size_of::<kernel_sigset_t>());

impl SigSet {
    pub(crate) const fn of(signals: &[u32]) -> Self {
        let mut bits = 0u64;
        let mut i = 0;
        while i < signals.len() {
            bits |= 1 << (signals[i] - 1);
            i += 1;
        }
        Self(bits)
    }

    pub(crate) const fn with(self, signal: u32) -> Self {
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
pub(crate) fn block(set: &SigSet) -> SysResult<SigSet> {
    sigprocmask(SIG_BLOCK, set)
}

pub(crate) fn set_mask(set: &SigSet) -> SysResult<()> {
    sigprocmask(SIG_SETMASK, set).map(drop)
}

/// A signal taken from the pending set: its number and `si_code` (who sent it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Received {
    pub(crate) signo: u32,
    pub(crate) code: i32,
}

/// `sigwaitinfo()`: waits until one of `set` (which must be blocked) is pending and takes it.
/// Retries when a stop and continue interrupt the wait.
pub(crate) fn wait_signal(set: &SigSet) -> SysResult<Received> {
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
unsafe fn close_from(first: u32) -> SysResult<()> {
    // SAFETY: close_range takes integers only; what the closing means for handles is the
    // caller's contract (above).
    let ret = unsafe { sc::syscall!(CLOSE_RANGE, first, u32::MAX, 0usize) };
    check(ret).map(drop)
}

/// For a process that from now on only waits, signals and exits: closes every descriptor from
/// `first` up, then goes on with `then`, which gets `arg` and the outcome of the closing.
///
/// Sound because nothing that owns a descriptor is ever reached again: the frames below this
/// call are never returned to (`then` never returns), and `then` is a plain function whose only
/// input is a `Copy + Send + 'static` value, which can hold no borrowed handle. (A handle in a
/// static: this crate has none that safe code reaches, `main`'s storage takes `unsafe`; hence
/// crate-only.)
pub(crate) fn close_from_then<A: Copy + Send + 'static>(first: u32, then: fn(A, SysResult<()>) -> !, arg: A) -> ! {
    // SAFETY: no handle to a descriptor from `first` up is used or dropped afterwards (above).
    let closed = unsafe { close_from(first) };
    then(arg, closed)
}

unsafe extern "C" {
    /// musl's `clone(3)`: the child calls `func(arg)` on `stack` (its highest address; the
    /// stack grows down) and exits with the result; -1 and errno in the parent on failure.
    fn clone(
        func: extern "C" fn(*mut c_void) -> c_int,
        stack: *mut c_void,
        flags: c_int,
        arg: *mut c_void,
        ...
    ) -> c_int;
    fn __errno_location() -> *mut c_int;
}

/// The largest page size of the kernels we run on (aarch64 may use 64 KiB pages).
const MAX_PAGE: usize = 64 << 10;

/// The stack of a process that shares this one's memory. Its lowest 64 KiB (the largest page) are made
/// inaccessible before use, so that an overflow faults instead of writing over what lies below.
#[repr(C, align(65536))]
pub(crate) struct Stack<const N: usize> {
    guard: [MaybeUninit<u8>; MAX_PAGE],
    usable: [MaybeUninit<u8>; N],
}

const _: () = assert!(align_of::<Stack<0>>() == MAX_PAGE);

impl<const N: usize> Stack<N> {
    pub(crate) const fn new() -> Self {
        Self { guard: [const { MaybeUninit::uninit() }; MAX_PAGE], usable: [const { MaybeUninit::uninit() }; N] }
    }

    /// Protects the guard. Best done before any process shares this memory: a change of
    /// protection in a memory that runs on two CPUs interrupts the other to flush its TLB.
    pub(crate) fn guarded(&mut self) -> SysResult<Guarded<'_, N>> {
        // SAFETY: the guard is page-aligned (the struct's alignment), a whole number of pages, and
        // never read or written; mprotect takes no other pointer.
        let ret =
            unsafe { sc::syscall!(MPROTECT, self.guard.as_mut_ptr(), MAX_PAGE, linux_raw_sys::general::PROT_NONE) };
        check(ret)?;
        Ok(Guarded(self))
    }
}

/// A [`Stack`] whose guard is in place.
pub(crate) struct Guarded<'a, const N: usize>(&'a mut Stack<N>);

impl<const N: usize> Guarded<'_, N> {
    /// The top of the stack (stacks grow down).
    fn top(&mut self) -> *mut c_void {
        self.0.usable.as_mut_ptr_range().end.cast()
    }
}

impl<const N: usize> Default for Stack<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// The child's side of [`clone_vm`]: runs the closure; with `PID_ONE`, only in the init of a PID
/// namespace (else it exits with status 1 at once).
extern "C" fn run_child<F: FnMut() -> i32 + Send, const PID_ONE: bool>(arg: *mut c_void) -> c_int {
    if PID_ONE && rustix::process::getpid().as_raw_nonzero().get() != 1 {
        return 1;
    }
    // SAFETY: `arg` is the `&mut F` that `clone_vm` passed; its callers keep it borrowed (and
    // unused by the parent) for as long as this child can run.
    let child = unsafe { &mut *arg.cast::<F>() };
    child()
}

/// clone(CLONE_VM | SIGCHLD): a new process, in this one's memory, runs `child` on `stack`.
///
/// # Safety
/// The parent must not touch `stack` or what `child` borrows while the child may still run.
unsafe fn clone_vm<F: FnMut() -> i32 + Send, const PID_ONE: bool, const N: usize>(
    one_thread: SingleThreaded,
    stack: &mut Guarded<'_, N>,
    child: &mut F,
) -> SysResult<rustix::process::Pid> {
    let top = stack.top();
    let flags = (linux_raw_sys::general::CLONE_VM | linux_raw_sys::general::SIGCHLD) as c_int;
    let null = core::ptr::null_mut::<c_void>();
    // SAFETY: the child runs on a stack of its own, guarded below (musl aligns the top), with a
    // closure that the caller's contract keeps alive and to the child; the unused optional
    // arguments are NULL. Without CLONE_SETTLS the child shares this thread's pointer: harmless,
    // as neither process starts threads or uses musl's thread state (raw syscalls only; errno,
    // read below, is written by this clone() in the parent alone, on failure).
    let pid = unsafe { clone(run_child::<F, PID_ONE>, top, flags, (child as *mut F).cast(), null, null, null) };
    if pid >= 0 {
        return rustix::process::Pid::from_raw(pid).ok_or(Errno::INVAL);
    }
    // SAFETY: musl's errno location for this, the only, thread.
    let errno = Errno::from_raw_os_error(unsafe { *__errno_location() });
    if errno != Errno::INVAL {
        return Err(errno);
    }
    // qemu-user refuses CLONE_VM without CLONE_THREAD: a plain fork then, whose child has its own
    // copy of the memory and runs `child` on its copy of this stack.
    match super::fork(one_thread)? {
        None => super::exit_group(run_child::<F, PID_ONE>((child as *mut F).cast())),
        Some(pid) => Ok(pid),
    }
}

/// Starts a process in this one's memory that runs `child` on `stack`, while this one goes on
/// with `parent` (given its pid and `arg`), which never returns: `child` and `stack` stay
/// borrowed for good, so nothing in this process touches them again (its exit leaves the memory
/// to the child). With `PID_ONE` the child must be the init of the PID namespace that
/// `unshare(CLONE_NEWPID)` prepared (no child may have been made since); one that is not exits
/// with status 1 at once. Returns only when the process cannot be made.
///
/// Why this is sound: `child` is `Send`, so whatever it shares with `parent` is `Sync` (the two
/// run at the same time, as threads would); `parent` is a plain function whose input is a
/// `Copy + Send + 'static` value, so it reaches neither `stack` nor `child`'s borrows.
pub(crate) fn spawn_sharing_memory<
    F: FnMut() -> i32 + Send,
    A: Copy + Send + 'static,
    const PID_ONE: bool,
    const N: usize,
>(
    one_thread: SingleThreaded,
    stack: &mut Guarded<'_, N>,
    child: &mut F,
    parent: fn(rustix::process::Pid, A) -> !,
    arg: A,
) -> Errno {
    // SAFETY: `parent` never returns and reaches neither `stack` nor `child` (above).
    match unsafe { clone_vm::<F, PID_ONE, N>(one_thread, stack, child) } {
        Ok(pid) => parent(pid, arg),
        Err(e) => e,
    }
}

/// As [`spawn_sharing_memory`], then this process forks with `fork` (the C library's: see
/// [`super::ForkFn`]): the copy returns `Ok(())` and goes on in the caller's frames, this process
/// goes on with `parent` (given the pids of the process in its memory and of the copy), which
/// never returns. When the fork fails, the process in this memory is killed and reaped before the
/// error is returned. For an in-process caller's `--unshare-pid` (`pidns::split_returning`).
///
/// Why this is sound: the copy has a memory of its own, in which nothing runs `child` or uses
/// `stack` (they are only this memory's); `parent` is as in [`spawn_sharing_memory`]; and on
/// failure nothing runs `child` any more when `stack` and `child` are given back.
pub(crate) fn spawn_sharing_memory_then_fork<F: FnMut() -> i32 + Send, const PID_ONE: bool, const N: usize>(
    one_thread: SingleThreaded,
    stack: &mut Guarded<'_, N>,
    child: &mut F,
    fork: super::ForkFn,
    parent: fn(rustix::process::Pid, rustix::process::Pid) -> !,
) -> SysResult<()> {
    // SAFETY: until `parent` (which never returns and reaches neither) or the kill and reap
    // below, this process touches neither `stack` nor `child`; the copy made by `fork` has its
    // own memory.
    let first = unsafe { clone_vm::<F, PID_ONE, N>(one_thread, stack, child) }?;
    match fork() {
        Ok(None) => Ok(()),
        Ok(Some(copy)) => parent(first, copy),
        Err(e) => {
            let _ = rustix::process::kill_process(first, rustix::process::Signal::KILL);
            let _ = rustix::process::waitpid(Some(first), rustix::process::WaitOptions::empty());
            Err(e)
        }
    }
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
