//! Thin, typed wrappers for the syscalls rustix does not offer in the shape we need, made with
//! `sc`. Every `unsafe` block of the crate that talks to the kernel directly lives here.

use core::ffi::CStr;
use core::ptr;

use rustix::io::Errno;

pub type SysResult<T> = Result<T, Errno>;

fn check(ret: usize) -> SysResult<usize> {
    // The kernel returns -errno in [-4095, -1].
    if ret > (-4096isize) as usize { Err(Errno::from_raw_os_error(-(ret as isize) as i32)) } else { Ok(ret) }
}

fn opt_ptr(s: Option<&CStr>) -> *const u8 {
    s.map_or(ptr::null(), |s| s.as_ptr().cast())
}

pub const MS_BIND: u64 = 4096;
pub const MS_MOVE: u64 = 8192;
pub const MS_REC: u64 = 16384;
pub const MS_SLAVE: u64 = 1 << 19;
pub const MS_SHARED: u64 = 1 << 20;

/// `mount(2)` with the optional arguments as NULL, as the original passes them.
pub fn mount(
    source: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: u64,
    data: Option<&CStr>,
) -> SysResult<()> {
    // SAFETY: every pointer is NULL or a NUL-terminated string that outlives the call.
    let ret = unsafe { sc::syscall!(MOUNT, opt_ptr(source), target.as_ptr(), opt_ptr(fstype), flags, opt_ptr(data)) };
    check(ret).map(drop)
}

/// `struct mount_attr` (MOUNT_ATTR_SIZE_VER0).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

pub const MOUNT_ATTR_RDONLY: u64 = 1;
const AT_EMPTY_PATH: usize = 0x1000;
const AT_RECURSIVE: usize = 0x8000;

/// `mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, {attr_set})`: applies `attr_set` to a whole
/// detached tree, which the old mount API cannot do recursively.
pub fn mount_setattr_recursive(fd: rustix::fd::BorrowedFd<'_>, attr_set: u64) -> SysResult<()> {
    use rustix::fd::AsRawFd;
    let attr = MountAttr { attr_set, attr_clr: 0, propagation: 0, userns_fd: 0 };
    // SAFETY: `attr` is a valid mount_attr of the size passed; the path is an empty C string.
    let ret = unsafe {
        sc::syscall!(
            MOUNT_SETATTR,
            fd.as_raw_fd(),
            c"".as_ptr(),
            AT_EMPTY_PATH | AT_RECURSIVE,
            &attr as *const MountAttr,
            core::mem::size_of::<MountAttr>()
        )
    };
    check(ret).map(drop)
}

pub fn unshare(flags: u32) -> SysResult<()> {
    // SAFETY: unshare takes no pointers; the process is single-threaded, so CLONE_NEWUSER is allowed
    // and no other thread can observe the change of namespaces.
    let ret = unsafe { sc::syscall!(UNSHARE, flags) };
    check(ret).map(drop)
}

pub fn prctl(option: u32, arg2: usize, arg3: usize) -> SysResult<usize> {
    // SAFETY: only called with options whose arguments are integers (no pointers).
    let ret = unsafe { sc::syscall!(PRCTL, option, arg2, arg3, 0usize, 0usize) };
    check(ret)
}

/// `fcntl(fd, F_DUPFD, min)`: the duplicate is *not* close-on-exec, as `--pack-fds` needs.
pub fn dup_at_least(fd: i32, min: i32) -> SysResult<i32> {
    // SAFETY: F_DUPFD takes integer arguments only.
    let ret = unsafe {
        sc::syscall!(FCNTL, fd, 0usize /* F_DUPFD */, min)
    };
    check(ret).map(|fd| fd as i32)
}

/// `getcwd(2)` into `buf`; returns the path without its NUL.
pub fn getcwd(buf: &mut [u8]) -> SysResult<&[u8]> {
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
    let ret = unsafe { sc::syscall!(GETCWD, buf.as_mut_ptr(), buf.len()) };
    let len = check(ret)?;
    // The kernel's length includes the NUL; "(unreachable)" paths do not start with '/'.
    let path = &buf[..len.saturating_sub(1)];
    if path.first() != Some(&b'/') {
        return Err(Errno::NOENT);
    }
    Ok(path)
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, 0, prog)`, falling back to `prctl(PR_SET_SECCOMP)` on
/// kernels without the seccomp syscall.
pub fn install_seccomp_filter(filter: &[crate::seccomp::SockFilter]) -> SysResult<()> {
    #[repr(C)]
    struct SockFprog {
        len: u16,
        filter: *const crate::seccomp::SockFilter,
    }
    let prog = SockFprog { len: filter.len() as u16, filter: filter.as_ptr() };
    // SAFETY: `prog` points at `filter.len()` valid instructions for the duration of the call; the
    // kernel copies the program.
    let ret = unsafe {
        sc::syscall!(SECCOMP, 1usize /* SECCOMP_SET_MODE_FILTER */, 0usize, &prog as *const SockFprog)
    };
    match check(ret) {
        Err(Errno::NOSYS) => {
            // SAFETY: as above, through the older prctl interface.
            let ret = unsafe {
                sc::syscall!(
                    PRCTL,
                    22usize, /* PR_SET_SECCOMP */
                    2usize,  /* FILTER */
                    &prog as *const SockFprog,
                    0usize,
                    0usize
                )
            };
            check(ret).map(drop)
        }
        other => other.map(drop),
    }
}

/// A NULL-terminated array of C-string pointers (an argv), valid for the life of the process.
#[derive(Clone, Copy)]
pub struct Argv(*const *const u8);

impl Argv {
    /// # Safety
    /// `ptr` must point at a NULL-terminated array of C strings that outlive every use.
    pub const unsafe fn new(ptr: *const *const u8) -> Self {
        Self(ptr)
    }
}

/// `execve(2)`; returns only on failure. `envp` must end with a NULL pointer and its other entries
/// point at C strings (the arena's environment).
pub fn execve(path: &CStr, argv: Argv, envp: &[*const u8]) -> Errno {
    if envp.last().is_none_or(|last| !last.is_null()) {
        return Errno::INVAL;
    }
    // SAFETY: `path` is a C string; `argv` is valid by its constructor's contract; `envp` is
    // NULL-terminated (checked above) and its entries point at C strings in static memory.
    let ret = unsafe { sc::syscall!(EXECVE, path.as_ptr(), argv.0, envp.as_ptr()) };
    check(ret).err().unwrap_or(Errno::INVAL)
}

/// `exit_group(2)`: ends the process at once (used where no clean return is possible).
pub fn exit_group(status: i32) -> ! {
    loop {
        // SAFETY: exit_group takes an integer and does not return.
        unsafe { sc::syscall!(EXIT_GROUP, status) };
    }
}
