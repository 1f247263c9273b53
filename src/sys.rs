//! The raw syscall boundary: the calls rustix does not offer (or not in the shape we need), made
//! with `sc`, and the standard descriptors. Every wrapper here is sound: what it accepts cannot
//! make the kernel write through a pointer it was not given or invalidate memory or descriptors.
//! Constants and structures come from `linux-raw-sys`.

#![allow(unsafe_code)]

use core::ffi::CStr;

use linux_raw_sys::general::{AT_EMPTY_PATH, AT_RECURSIVE, F_DUPFD, mount_attr};
use linux_raw_sys::prctl::PR_SET_SECCOMP;
use linux_raw_sys::ptrace::{SECCOMP_MODE_FILTER, SECCOMP_SET_MODE_FILTER, sock_fprog};
use rustix::fd::{AsRawFd, BorrowedFd};
use rustix::io::Errno;

pub(crate) use linux_raw_sys::general::MOUNT_ATTR_RDONLY;

pub mod args;
pub(crate) mod supervise;

pub(crate) type SysResult<T> = Result<T, Errno>;

fn check(ret: usize) -> SysResult<usize> {
    // The kernel returns -errno in [-4095, -1].
    if ret > (-4096isize) as usize { Err(Errno::from_raw_os_error(-(ret as isize) as i32)) } else { Ok(ret) }
}

/// fd 2. This process never closes descriptors 0 to 2 (`--pack-fds` moves from 3 up), so the
/// borrow is valid for the life of the process.
pub fn stderr() -> BorrowedFd<'static> {
    // SAFETY: fd 2 stays open (or stays closed, then calls fail with EBADF) for the whole process;
    // nothing in this crate closes or replaces it.
    unsafe { rustix::stdio::stderr() }
}

/// `mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, {attr_set})`: applies `attr_set` to a whole
/// detached tree, which the old mount API cannot do recursively.
pub(crate) fn mount_setattr_recursive(fd: BorrowedFd<'_>, attr_set: u32) -> SysResult<()> {
    let attr = mount_attr { attr_set: attr_set.into(), attr_clr: 0, propagation: 0, userns_fd: 0 };
    // SAFETY: `attr` is a valid mount_attr of the size passed, alive for the call; the path is an
    // empty C string.
    let ret = unsafe {
        sc::syscall!(
            MOUNT_SETATTR,
            fd.as_raw_fd(),
            c"".as_ptr(),
            AT_EMPTY_PATH | AT_RECURSIVE,
            &attr as *const mount_attr,
            core::mem::size_of::<mount_attr>()
        )
    };
    check(ret).map(drop)
}

/// `fcntl(fd, F_DUPFD, min)`: the duplicate is *not* close-on-exec, as `--pack-fds` needs (rustix
/// offers only F_DUPFD_CLOEXEC).
pub(crate) fn dup_at_least(fd: i32, min: i32) -> SysResult<i32> {
    // SAFETY: F_DUPFD takes integer arguments only and creates a new descriptor; a number that is
    // not an open descriptor fails with EBADF.
    let ret = unsafe { sc::syscall!(FCNTL, fd, F_DUPFD, min) };
    check(ret).map(|fd| fd as i32)
}

/// `getcwd(2)` into `buf`; returns the path without its NUL (rustix's needs an allocator).
pub(crate) fn getcwd(buf: &mut [u8]) -> SysResult<&[u8]> {
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
    let ret = unsafe { sc::syscall!(GETCWD, buf.as_mut_ptr(), buf.len()) };
    let len = check(ret)?;
    // The kernel's length includes the NUL; "(unreachable)" paths do not start with '/'.
    let path = buf.get(..len.saturating_sub(1)).unwrap_or(&[]);
    if path.first() != Some(&b'/') {
        return Err(Errno::NOENT);
    }
    Ok(path)
}

/// One `write()` that must take all of `data`: kernel files that act on each write (uid maps,
/// binfmt_misc's `register`) take a part of it as nothing, so a short write is EIO.
pub(crate) fn write_whole(fd: impl rustix::fd::AsFd, data: &[u8]) -> SysResult<()> {
    match rustix::io::write(fd, data) {
        Ok(n) if n == data.len() => Ok(()),
        Ok(_) => Err(Errno::IO),
        Err(e) => Err(e),
    }
}

/// `fcntl(fd, F_SETFD, FD_CLOEXEC)` on a descriptor number the caller named (`--exec-fd`).
pub(crate) fn set_cloexec(fd: i32) -> SysResult<()> {
    // SAFETY: the borrow lasts for this one call, which only changes the descriptor's flags; a
    // number that is not an open descriptor fails with EBADF.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::CLOEXEC)
}

/// `struct sock_filter`: one classic-BPF instruction, as the kernel reads it.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

const _: () = assert!(core::mem::size_of::<SockFilter>() == core::mem::size_of::<linux_raw_sys::ptrace::sock_filter>());

/// `seccomp(SECCOMP_SET_MODE_FILTER, 0, prog)`, falling back to `prctl(PR_SET_SECCOMP)` on
/// kernels without the seccomp syscall.
pub(crate) fn install_seccomp_filter(filter: &[SockFilter]) -> SysResult<()> {
    let len = u16::try_from(filter.len()).map_err(|_| Errno::INVAL)?;
    let prog = sock_fprog { len, filter: filter.as_ptr().cast_mut().cast() };
    // SAFETY: `prog` points at `filter.len()` valid instructions for the duration of the call; the
    // kernel copies the program and never writes through the pointer.
    let ret = unsafe { sc::syscall!(SECCOMP, SECCOMP_SET_MODE_FILTER, 0usize, &prog as *const sock_fprog) };
    match check(ret) {
        Err(Errno::NOSYS) => {
            // SAFETY: as above, through the older prctl interface.
            let ret = unsafe {
                sc::syscall!(PRCTL, PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog as *const sock_fprog, 0usize, 0usize)
            };
            check(ret).map(drop)
        }
        other => other.map(drop),
    }
}

/// The namespaces this program unshares. Only namespace flags: they change what the process sees
/// of the system, never its memory or descriptor table, so unsharing them is sound (unlike
/// CLONE_FILES, for which rustix's `unshare_unsafe` is unsafe).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Namespaces {
    pub(crate) mount: bool,
    pub(crate) user: bool,
    pub(crate) net: bool,
    pub(crate) ipc: bool,
    /// Only the children move into a new PID namespace.
    pub(crate) pid: bool,
}

impl Namespaces {
    pub(crate) fn flags(self) -> rustix::thread::UnshareFlags {
        use rustix::thread::UnshareFlags;
        let mut flags = UnshareFlags::empty();
        for (on, flag) in [
            (self.mount, UnshareFlags::NEWNS),
            (self.user, UnshareFlags::NEWUSER),
            (self.net, UnshareFlags::NEWNET),
            (self.ipc, UnshareFlags::NEWIPC),
            (self.pid, UnshareFlags::NEWPID),
        ] {
            if on {
                flags |= flag;
            }
        }
        flags
    }
}

/// `unshare(2)` of namespaces, in one call.
pub(crate) fn unshare(namespaces: Namespaces) -> SysResult<()> {
    // SAFETY: only namespace flags (see `Namespaces`): no descriptor table or memory is unshared,
    // so no descriptor any code holds becomes invalid.
    unsafe { rustix::thread::unshare_unsafe(namespaces.flags()) }
}

/// What holds at the program's entry and nowhere else, made once by `main` (the C entry point):
/// the tokens that make [`fork`] and the take-over of inherited descriptors sound.
pub struct Entry {
    pub(crate) single_threaded: SingleThreaded,
    pub(crate) inherited: InheritedFds,
}

impl Entry {
    /// # Safety
    /// Call once, at the program's entry: the process has one thread and will never start
    /// another, and no handle in it owns a descriptor from 3 up (all of those were inherited).
    pub unsafe fn claim() -> Self {
        Self { single_threaded: SingleThreaded(core::marker::PhantomData), inherited: InheritedFds(()) }
    }
}

/// How an in-process caller's process forks ([`InProcess`]): the C library's `fork()`, so that
/// the library's own state (its cached thread id, its locks, `pthread_atfork` handlers) follows
/// into the child that returns to the caller. None in the child, the child's pid in the parent.
pub type ForkFn = fn() -> Result<Option<rustix::process::Pid>, Errno>;

/// What an entry point inside another program (the shared library) can vouch for: the tokens of
/// [`Entry`], the single thread only when the process has one, and how the caller forks.
pub struct InProcess {
    pub(crate) single_threaded: Option<SingleThreaded>,
    pub(crate) inherited: InheritedFds,
    pub(crate) fork: ForkFn,
}

impl InProcess {
    /// Counts the process's threads (`/proc/self/task`); one that cannot be counted is taken
    /// for several.
    ///
    /// # Safety
    /// Call once per process, from the thread that enters the sandbox, and start no thread while
    /// the stages run; `fork` must be a fork (see [`ForkFn`]). With `--pack-fds`, no handle in the
    /// process may own a descriptor from 3 up that it uses afterwards: they are renumbered.
    pub unsafe fn claim(fork: ForkFn) -> Self {
        let single = thread_count() == Ok(1);
        Self {
            single_threaded: single.then_some(SingleThreaded(core::marker::PhantomData)),
            inherited: InheritedFds(()),
            fork,
        }
    }
}

/// The number of threads of this process: the entries of `/proc/self/task`.
fn thread_count() -> SysResult<usize> {
    use rustix::fs::{CWD, Mode, OFlags};
    let dir = rustix::fs::openat(
        CWD,
        c"/proc/self/task",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut buf = [core::mem::MaybeUninit::<u8>::uninit(); 1024];
    let mut entries = rustix::fs::RawDir::new(&dir, &mut buf);
    let mut count = 0;
    while let Some(entry) = entries.next() {
        if entry?.file_name().to_bytes().first().is_some_and(u8::is_ascii_digit) {
            count += 1;
        }
    }
    Ok(count)
}

/// Proof that the process has a single thread, and will keep it so (see [`Entry::claim`]).
/// Processes that share the memory (`supervise`) are not threads: each has its own thread
/// state, and the proof holds in each.
#[derive(Clone, Copy)]
pub(crate) struct SingleThreaded(core::marker::PhantomData<*const ()>);

// SAFETY: moving the proof into a process that shares this memory (`supervise::spawn_*`) keeps
// it true there: such a process starts with one thread, and by `Entry::claim`'s contract no
// thread is ever started.
unsafe impl Send for SingleThreaded {}

/// Proof that every descriptor from 3 up was inherited and belongs to no handle (see
/// [`Entry::claim`]): `--pack-fds` takes them over. Used up by that one take-over; its methods
/// are the crate's own, used by `process::fds::pack` on inherited numbers only.
pub(crate) struct InheritedFds(());

impl InheritedFds {
    /// Whether inherited descriptor `fd` is close-on-exec.
    pub(crate) fn is_cloexec(&self, fd: i32) -> SysResult<bool> {
        // SAFETY: the borrow lasts for this one call, which only reads the descriptor's flags; a
        // number that is not open fails with EBADF.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        rustix::io::fcntl_getfd(borrowed).map(|flags| flags.contains(rustix::io::FdFlags::CLOEXEC))
    }

    /// A token for tests that run the stages in the test process without `--pack-fds`
    /// (`proptests`): there it is never spent, so no descriptor of the test harness is touched.
    #[cfg(test)]
    pub(crate) fn unspent_in_tests() -> Self {
        Self(())
    }

    /// Closes inherited descriptor `fd`.
    pub(crate) fn close(&self, fd: i32) {
        // SAFETY: by the token's contract no handle owns `fd` (from 3 up, inherited), so closing
        // it invalidates nothing another part of the process holds.
        drop(unsafe { <rustix::fd::OwnedFd as rustix::fd::FromRawFd>::from_raw_fd(fd) });
    }
}

/// A NULL-terminated array of C-string pointers (an argv), valid for the life of the process.
#[derive(Clone, Copy)]
pub(crate) struct Argv(*const *const u8);

// SAFETY: the array and its strings are never written and live for the whole process (the
// constructor's contract), so they may be read from any thread or process sharing the memory.
unsafe impl Send for Argv {}
// SAFETY: as for Send: read-only data that outlives every use.
unsafe impl Sync for Argv {}

impl Argv {
    /// # Safety
    /// `ptr` must point at a NULL-terminated array of C strings that outlive every use.
    pub(crate) const unsafe fn new(ptr: *const *const u8) -> Self {
        Self(ptr)
    }
}

/// `["bash", NULL]`: the default command's argv.
struct DefaultArgv([*const u8; 2]);
// SAFETY: the pointers refer to a string literal; nothing ever writes through them.
unsafe impl Sync for DefaultArgv {}
static DEFAULT_ARGV: DefaultArgv = DefaultArgv([c"bash".as_ptr().cast(), core::ptr::null()]);

impl Argv {
    /// `["bash"]`, the default command.
    pub(crate) fn bash() -> Self {
        Self(DEFAULT_ARGV.0.as_ptr())
    }
}

/// Room for an [`Envp`]'s pointers, kept in static storage.
pub(crate) struct EnvpSlots<const N: usize>([*const u8; N]);

// SAFETY: the slots hold only what `Envp::new` puts there: pointers to 'static C strings that
// are never written, readable from any thread or process sharing the memory.
unsafe impl<const N: usize> Send for EnvpSlots<N> {}

impl<const N: usize> EnvpSlots<N> {
    pub(crate) const fn new() -> Self {
        Self([core::ptr::null(); N])
    }
}

impl<const N: usize> Default for EnvpSlots<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// A NULL-terminated environment for `execve()`, built only from C strings that live as long as
/// the process.
pub(crate) struct Envp<'a>(&'a [*const u8]);

impl<'a> Envp<'a> {
    /// Fills `storage` with `entries` and a NULL; None when they do not fit.
    pub(crate) fn new<const N: usize>(storage: &'a mut EnvpSlots<N>, entries: &[&'static CStr]) -> Option<Self> {
        Self::in_slice(&mut storage.0, entries)
    }

    fn in_slice(storage: &'a mut [*const u8], entries: &[&'static CStr]) -> Option<Self> {
        let slots = storage.get_mut(..=entries.len())?;
        let (terminator, used) = slots.split_last_mut()?;
        for (slot, entry) in used.iter_mut().zip(entries) {
            *slot = entry.as_ptr().cast();
        }
        *terminator = core::ptr::null();
        Some(Self(slots))
    }
}

/// `execve(2)`; returns only on failure.
pub(crate) fn execve(path: &CStr, argv: Argv, envp: &Envp<'_>) -> Errno {
    // SAFETY: `path` is a C string; `argv` is valid by its constructor's contract; `envp` is
    // NULL-terminated and its entries are 'static C strings (by its constructor).
    let ret = unsafe { sc::syscall!(EXECVE, path.as_ptr(), argv.0, envp.0.as_ptr()) };
    check(ret).err().unwrap_or(Errno::INVAL)
}

/// `execve(2)` with the arguments laid end to end in `args` (each NUL-terminated) and an empty
/// environment; `slots` is the room for the pointer array. Returns only on failure.
pub(crate) fn execve_packed(path: &CStr, args: &[u8], slots: &mut [*const u8]) -> Errno {
    if args.last() != Some(&0) {
        return Errno::INVAL;
    }
    let mut count = 0;
    for arg in args.split_inclusive(|&b| b == 0) {
        if count + 1 >= slots.len() {
            return Errno::TOOBIG;
        }
        slots[count] = arg.as_ptr();
        count += 1;
    }
    slots[count] = core::ptr::null();
    let mut no_env = [core::ptr::null(); 1];
    let Some(envp) = Envp::in_slice(&mut no_env, &[]) else { return Errno::INVAL };
    // SAFETY: each of the first `count` pointers points at a NUL-terminated piece of `args`, which
    // outlives the call; the array ends with NULL.
    execve(path, unsafe { Argv::new(slots.as_ptr()) }, &envp)
}

/// `fork()`: a raw `clone(SIGCHLD)`. Returns None in the child, which must end by exec or exit
/// without returning into the parent's flow; the child's pid in the parent.
pub(crate) fn fork(_: SingleThreaded) -> SysResult<Option<rustix::process::Pid>> {
    // SAFETY: clone without CLONE_VM gives the child its own copy of the address space and of the
    // descriptor table, so no memory or descriptor of the parent is shared. The process is
    // single-threaded (the token: no lock can be held by a thread missing in the child), and the
    // child makes raw syscalls only, never musl's cached-pid functions.
    let ret = unsafe { sc::syscall!(CLONE, linux_raw_sys::general::SIGCHLD as usize, 0usize, 0usize, 0usize, 0usize) };
    match check(ret)? {
        0 => Ok(None),
        pid => rustix::process::Pid::from_raw(pid as i32).map(Some).ok_or(Errno::INVAL),
    }
}

/// `exit_group(2)`: ends the process at once (used where no clean return is possible).
pub fn exit_group(status: i32) -> ! {
    loop {
        // SAFETY: exit_group takes an integer and does not return.
        unsafe { sc::syscall!(EXIT_GROUP, status) };
    }
}

/// The kernel's `SIG_IGN`: handler value 1 (linux-raw-sys types the handler as an optional
/// function pointer and has no constant for it).
const SIG_IGN: usize = 1;

/// A signal disposition as `rt_sigaction()` reports it, to be put back later.
#[derive(Clone, Copy)]
pub(crate) struct Disposition(linux_raw_sys::general::kernel_sigaction);

impl Disposition {
    /// Whether it is SIG_IGN: handlers do not survive exec, so what a caller left this process is
    /// SIG_DFL (a None handler) or SIG_IGN.
    pub(crate) fn ignored(&self) -> bool {
        self.0.sa_handler_kernel.is_some()
    }
}

/// Restores the default disposition of SIGCHLD, so that `waitpid()` sees the exit status even
/// when the caller left SIGCHLD ignored; returns the caller's, for [`restore_sigchld`].
pub(crate) fn default_sigchld() -> Disposition {
    // SAFETY: all-zero is a valid kernel_sigaction: SIG_DFL (a None handler), no flags, an empty
    // mask, no restorer; `old` is overwritten by the kernel.
    let (dfl, mut old) = unsafe { (core::mem::zeroed(), core::mem::zeroed()) };
    // Cannot fail with these arguments; if it did, `old` stays SIG_DFL.
    let _ = set_sigaction(linux_raw_sys::general::SIGCHLD, &dfl, Some(&mut old));
    Disposition(old)
}

/// Puts back what [`default_sigchld`] replaced (before the command's exec).
pub(crate) fn restore_sigchld(old: &Disposition) {
    let _ = set_sigaction(linux_raw_sys::general::SIGCHLD, &old.0, None);
}

/// Ignores SIGXFSZ and returns the caller's disposition: a `--write` past RLIMIT_FSIZE then fails
/// with EFBIG (reported in one line) instead of killing the sandbox without a word.
pub(crate) fn ignore_sigxfsz() -> SysResult<Disposition> {
    use linux_raw_sys::general::{__kernel_sighandler_t, SIGXFSZ, kernel_sigaction};
    // SAFETY: all-zero is a valid kernel_sigaction: SIG_DFL (a None handler), no flags, an empty
    // mask, no restorer.
    let mut new: kernel_sigaction = unsafe { core::mem::zeroed() };
    // SAFETY: SIG_IGN is non-null, so a valid `Option<fn>` (Some); it is never called, only passed
    // to the kernel, which reads it as the number it is. Both types are pointer-sized.
    new.sa_handler_kernel = unsafe { core::mem::transmute::<usize, __kernel_sighandler_t>(SIG_IGN) };
    // SAFETY: as above; the kernel overwrites it with the old disposition.
    let mut old: kernel_sigaction = unsafe { core::mem::zeroed() };
    set_sigaction(SIGXFSZ, &new, Some(&mut old))?;
    Ok(Disposition(old))
}

/// Puts back what `ignore_sigxfsz` returned (before exec, which keeps SIG_IGN but not handlers).
pub(crate) fn restore_sigxfsz(old: &Disposition) -> SysResult<()> {
    set_sigaction(linux_raw_sys::general::SIGXFSZ, &old.0, None)
}

fn set_sigaction(
    signal: u32,
    new: &linux_raw_sys::general::kernel_sigaction,
    old: Option<&mut linux_raw_sys::general::kernel_sigaction>,
) -> SysResult<()> {
    let old = old.map_or(core::ptr::null_mut(), |o| o as *mut linux_raw_sys::general::kernel_sigaction);
    let set_size = core::mem::size_of::<linux_raw_sys::general::kernel_sigset_t>();
    // SAFETY: `new` and `old` (or NULL) point to kernel_sigaction structures of the kernel's
    // layout, alive for the call, with a signal set of the size passed.
    let ret = unsafe {
        sc::syscall!(RT_SIGACTION, signal, new as *const linux_raw_sys::general::kernel_sigaction, old, set_size)
    };
    check(ret).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envp_is_null_terminated_and_refuses_overflow() {
        let mut storage = EnvpSlots::<3>::new();
        let envp = Envp::new(&mut storage, &[c"A=1", c"B=2"]).unwrap();
        assert_eq!(envp.0.len(), 3);
        assert!(envp.0[2].is_null());
        assert!(Envp::new(&mut storage, &[c"A", c"B", c"C"]).is_none());
    }

    #[test]
    fn namespaces_map_to_clone_flags() {
        let ns = Namespaces { mount: true, user: true, net: false, ipc: true, pid: true };
        let raw = linux_raw_sys::general::CLONE_NEWNS
            | linux_raw_sys::general::CLONE_NEWUSER
            | linux_raw_sys::general::CLONE_NEWIPC
            | linux_raw_sys::general::CLONE_NEWPID;
        assert_eq!(ns.flags().bits(), raw);
    }
}
