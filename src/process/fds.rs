//! `--pack-fds`: the inherited descriptors moved to 3, 4, ... as systemd's `pack_fds()` does.
//! Inherited descriptors are raw numbers the kernel hands over, like argv: they are taken over
//! with the token [`InheritedFds`] that only the program's entry can make.

use rustix::fd::AsRawFd;
use rustix::fs::{CWD, Mode, OFlags};
use rustix::io::Errno;

use crate::containers::{FixedVec, insert_sorted_by_key};
use crate::decimal;
use crate::error::{During, Limit, Overflow, Result, Syscall};
use crate::sys::{self, InheritedFds};

/// Descriptors that `--pack-fds` can move.
pub(crate) const MAX_FDS: usize = 4096;

pub(crate) struct Storage {
    fds: FixedVec<u32, MAX_FDS>,
}

impl Storage {
    pub(crate) const fn new() -> Self {
        Self { fds: FixedVec::new() }
    }
}

impl Default for Storage {
    fn default() -> Self {
        Self::new()
    }
}

/// Moves the inherited descriptors to 3, 4, ...; returns how many there are. Descriptors marked
/// close-on-exec would vanish at exec and are closed instead of packed. Takes `inherited`: every
/// descriptor from 3 up is inherited and nothing else in this process refers to one.
// Never inlined: its 16 KiB list would join the caller's stack frame, whose every page the stack
// probes touch on each start, with or without --pack-fds.
#[inline(never)]
pub(crate) fn pack(storage: &mut Storage, inherited: InheritedFds) -> Result<usize> {
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

    // Sorted, without the ones that are close-on-exec.
    let mut list = [0i32; MAX_FDS];
    let mut n = 0;
    for fd in fds.iter() {
        let fd = fd as i32;
        match inherited.is_cloexec(fd) {
            Ok(true) => {
                inherited.close(fd);
                continue;
            }
            Ok(false) => {}
            // Closed meanwhile.
            Err(_) => continue,
        }
        insert_sorted_by_key(&mut list[..=n], fd, |&fd| fd);
        n += 1;
    }
    let list = &mut list[..n];
    move_down(list, |fd, want| {
        let new = sys::dup_at_least(fd, want)?;
        inherited.close(fd);
        Ok(new)
    })
    .during(Syscall::Fcntl)
    .map_err(|e| e.for_option("--pack-fds", None, None))?;
    Ok(list.len())
}

/// The first descriptor after stdin, stdout, stderr.
const START: i32 = 3;

/// Moves the sorted descriptors of `list` to 3, 4, ... with `dup(fd, want)`, which returns the
/// lowest free descriptor from `want` up (and closes `fd`). One that lands above its place (the
/// place was taken by a later one) is moved again on the next pass, once the later ones left.
fn move_down(
    list: &mut [i32],
    mut dup: impl FnMut(i32, i32) -> core::result::Result<i32, Errno>,
) -> core::result::Result<(), Errno> {
    let mut start = 0;
    loop {
        let mut restart_from = None;
        for (i, fd) in list.iter_mut().enumerate().skip(start) {
            let want = START + i as i32;
            if *fd == want {
                continue;
            }
            *fd = dup(*fd, want)?;
            if *fd != want && restart_from.is_none() {
                restart_from = Some(i);
            }
        }
        match restart_from {
            Some(i) => start = i,
            None => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A descriptor table: `dup(fd, want)` takes the lowest free number from `want` up.
    struct Table(std::collections::BTreeSet<i32>);

    impl Table {
        fn dup(&mut self, fd: i32, want: i32) -> core::result::Result<i32, Errno> {
            assert!(self.0.contains(&fd), "dup of a closed descriptor {fd}");
            let new = (want..).find(|n| !self.0.contains(n)).unwrap();
            self.0.insert(new);
            self.0.remove(&fd);
            Ok(new)
        }
    }

    fn packed(open: &[i32]) -> Vec<i32> {
        let mut list = vec![0; open.len()];
        for (n, &fd) in open.iter().enumerate() {
            insert_sorted_by_key(&mut list[..=n], fd, |&fd| fd);
        }
        let mut table = Table(open.iter().copied().chain([0, 1, 2]).collect());
        move_down(&mut list, |fd, want| table.dup(fd, want)).unwrap();
        assert_eq!(table.0.iter().copied().filter(|&fd| fd >= START).collect::<Vec<_>>(), list);
        list
    }

    #[test]
    fn descriptors_end_up_at_3_4_5_in_their_order() {
        assert_eq!(packed(&[3, 4, 5]), [3, 4, 5]);
        assert_eq!(packed(&[7, 9, 12]), [3, 4, 5]);
        assert_eq!(packed(&[12, 7, 9]), [3, 4, 5]);
    }

    #[test]
    fn a_descriptor_in_the_way_is_moved_first() {
        // 4 is taken by the second one, so the first moves to 3 and the rest follow.
        assert_eq!(packed(&[4, 5, 100]), [3, 4, 5]);
        // 3 is free but 4 and 5 are held by later ones: the second pass settles them.
        assert_eq!(packed(&[6, 4, 5, 10]), [3, 4, 5, 6]);
    }

    #[test]
    fn a_failed_dup_stops_the_packing() {
        let mut list = [8, 9];
        let err = move_down(&mut list, |_, _| Err(Errno::MFILE));
        assert_eq!(err, Err(Errno::MFILE));
    }
}
