//! `--pack-fds`: the inherited descriptors moved to 3, 4, ... as systemd's `pack_fds()` does.
//! Inherited descriptors are raw numbers the kernel hands over, like argv: this is where they
//! become owned, so this module may use `unsafe` for that step.

#![allow(unsafe_code)]

use rustix::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use rustix::fs::{CWD, Mode, OFlags};
use rustix::io::FdFlags;

use crate::containers::FixedVec;
use crate::decimal;
use crate::error::{During, Limit, Overflow, Result, Syscall};
use crate::sys;

/// Descriptors that `--pack-fds` can move.
pub const MAX_FDS: usize = 4096;

pub struct Storage {
    fds: FixedVec<u32, MAX_FDS>,
}

impl Storage {
    pub const fn new() -> Self {
        Self { fds: FixedVec::new() }
    }
}

impl Default for Storage {
    fn default() -> Self {
        Self::new()
    }
}

/// Moves the inherited descriptors to 3, 4, ...; returns how many there are. Descriptors marked
/// close-on-exec would vanish at exec and are closed instead of packed. Runs before anything in
/// this process opens a descriptor of its own that must survive: every descriptor from 3 up is
/// inherited.
// Never inlined: its 16 KiB list would join the caller's stack frame, whose every page the stack
// probes touch on each start, with or without --pack-fds.
#[inline(never)]
pub fn pack(storage: &mut Storage) -> Result<usize> {
    const START: i32 = 3;
    let fds = &mut storage.fds;
    let dir =
        rustix::fs::openat(CWD, c"/proc/self/fd", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .during(Syscall::Open)
            .map_err(|e| e.for_option("--pack-fds", Some(c"/proc/self/fd"), None))?;
    let own = dir.as_raw_fd();
    let mut buf = [core::mem::MaybeUninit::<u8>::uninit(); 4096];
    let mut entries = rustix::fs::RawDir::new(&dir, &mut buf);
    while let Some(entry) = entries.next() {
        let entry = entry.during(Syscall::Getdents64).map_err(|e| e.for_option("--pack-fds", None, None))?;
        let Some(fd) = decimal::parse(entry.file_name().to_bytes()) else {
            continue;
        };
        if (fd as i32) < START || fd as i32 == own {
            continue;
        }
        fds.push(fd).overflow(Limit::PackFds)?;
    }
    drop(dir);

    // Sort (insertion sort: the list comes from the kernel almost sorted) and drop the ones
    // that are close-on-exec.
    let mut list = [0i32; MAX_FDS];
    let mut n = 0;
    for fd in fds.iter() {
        let fd = fd as i32;
        // SAFETY: `fd` was listed in /proc/self/fd; borrowing it for F_GETFD is harmless even if it
        // was closed meanwhile (the call then fails with EBADF).
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        match rustix::io::fcntl_getfd(borrowed) {
            Ok(flags) if flags.contains(FdFlags::CLOEXEC) => {
                // SAFETY: an inherited descriptor that nothing in this process refers to.
                drop(unsafe { OwnedFd::from_raw_fd(fd) });
                continue;
            }
            Ok(_) => {}
            Err(_) => continue,
        }
        let mut at = n;
        while at > 0 && list[at - 1] > fd {
            list[at] = list[at - 1];
            at -= 1;
        }
        list[at] = fd;
        n += 1;
    }
    let list = &mut list[..n];

    let mut start = 0;
    loop {
        let mut restart_from = None;
        for (i, fd) in list.iter_mut().enumerate().skip(start) {
            let want = START + i as i32;
            if *fd == want {
                continue;
            }
            let new = sys::dup_at_least(*fd, want)
                .during(Syscall::Fcntl)
                .map_err(|e| e.for_option("--pack-fds", None, None))?;
            // SAFETY: the old descriptor was inherited, is owned by this process and now duplicated.
            drop(unsafe { OwnedFd::from_raw_fd(*fd) });
            *fd = new;
            if new != want && restart_from.is_none() {
                restart_from = Some(i);
            }
        }
        match restart_from {
            Some(i) => start = i,
            None => break,
        }
    }
    Ok(list.len())
}
