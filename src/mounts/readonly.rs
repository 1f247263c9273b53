//! Read-only binds where `mount_setattr()` is missing (Linux before 5.12, or a seccomp profile
//! that answers ENOSYS): as bubblewrap does, the tree is bound as it is, then every mount at or
//! under the destination is remounted `MS_REMOUNT | MS_BIND | MS_RDONLY`. Each keeps the flags it
//! has: in a user namespace the kernel refuses to clear nosuid, nodev, noexec or change the atime
//! setting of a mount that came from a more privileged namespace. The mounts and their flags come
//! from `/proc/self/mountinfo`. Only taken after mount_setattr() failed with ENOSYS.

use core::ffi::CStr;

use rustix::fs::{CWD, Mode, OFlags};
use rustix::io::Errno;
use rustix::mount::MountFlags;

use crate::error::{During, Result, Syscall};
use crate::path::PathBuf;

/// The caller's procfs: the workspace is `/` while the operations run.
const MOUNTINFO: &CStr = c"oldroot/proc/self/mountinfo";

/// Remounts read-only every mount at `dst` (a path relative to the workspace, which is `/`) and
/// below it.
pub(super) fn remount_tree(dst: &CStr) -> Result<()> {
    let file =
        rustix::fs::openat(CWD, MOUNTINFO, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).during(Syscall::Open)?;
    let mut buf = [0u8; 8192];
    let mut point = PathBuf::new();
    let (mut len, mut skipping) = (0usize, false);
    loop {
        let n = rustix::io::read(&file, &mut buf[len..]).during(Syscall::Read)?;
        len += n;
        let mut start = 0;
        while let Some(end) = buf[start..len].iter().position(|&b| b == b'\n').map(|i| start + i) {
            if !skipping {
                remount_if_under(&buf[start..end], dst.to_bytes(), &mut point)?;
            }
            skipping = false;
            start = end + 1;
        }
        if n == 0 {
            return Ok(());
        }
        if start == 0 && len == buf.len() {
            // One line longer than the buffer (long overlay options): its first fields are here.
            if !skipping {
                remount_if_under(&buf[..len], dst.to_bytes(), &mut point)?;
            }
            skipping = true;
            len = 0;
        } else {
            buf.copy_within(start..len, 0);
            len -= start;
        }
    }
}

fn remount_if_under(line: &[u8], dst: &[u8], point: &mut PathBuf) -> Result<()> {
    let mut fields = line.split(|&b| b == b' ');
    let (Some(escaped), Some(options)) = (fields.nth(4), fields.next()) else {
        return Ok(());
    };
    if unescape(escaped, point).is_err() || !at_or_under(point.as_bytes(), dst) {
        return Ok(());
    }
    let flags = MountFlags::BIND | MountFlags::RDONLY | kept_flags(options);
    rustix::mount::mount_remount(point.as_cstr(), flags, c"").during(Syscall::Mount)
}

/// Whether mountinfo's `point` (absolute, from the workspace) is `dst` (relative) or below it.
fn at_or_under(point: &[u8], dst: &[u8]) -> bool {
    let Some(rest) = point.strip_prefix(b"/").and_then(|p| p.strip_prefix(dst)) else {
        return false;
    };
    rest.is_empty() || rest.first() == Some(&b'/')
}

/// mountinfo's per-mount options as the flags a bind remount must repeat.
fn kept_flags(options: &[u8]) -> MountFlags {
    let mut flags = MountFlags::empty();
    let mut atime_given = false;
    for option in options.split(|&b| b == b',') {
        flags |= match option {
            b"nosuid" => MountFlags::NOSUID,
            b"nodev" => MountFlags::NODEV,
            b"noexec" => MountFlags::NOEXEC,
            b"nodiratime" => MountFlags::NODIRATIME,
            b"noatime" => {
                atime_given = true;
                MountFlags::NOATIME
            }
            b"relatime" => {
                atime_given = true;
                MountFlags::RELATIME
            }
            _ => MountFlags::empty(),
        };
    }
    // Neither shown means strictatime; without the flag the kernel would make it relatime.
    if !atime_given {
        flags |= MountFlags::STRICTATIME;
    }
    flags
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &[u8], out: &mut PathBuf) -> core::result::Result<(), Errno> {
    out.clear();
    let mut i = 0;
    while let Some(&b) = field.get(i) {
        let octal = field.get(i + 1..i + 4).filter(|d| b == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                let value = d.iter().fold(0u32, |v, c| v * 8 + u32::from(c - b'0'));
                out.push(&[u8::try_from(value).map_err(|_| Errno::INVAL)?])?;
                i += 4;
            }
            None => {
                out.push(&[b])?;
                i += 1;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_destination_and_what_lies_below_it() {
        assert!(at_or_under(b"/newroot/usr", b"newroot/usr"));
        assert!(at_or_under(b"/newroot/usr/lib/x", b"newroot/usr"));
        assert!(!at_or_under(b"/newroot/usrlocal", b"newroot/usr"));
        assert!(!at_or_under(b"/newroot", b"newroot/usr"));
        assert!(!at_or_under(b"/oldroot/newroot/usr", b"newroot/usr"));
    }

    #[test]
    fn locked_flags_and_the_atime_setting_are_repeated() {
        let f = kept_flags(b"rw,nosuid,nodev,noexec,relatime");
        assert_eq!(f, MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC | MountFlags::RELATIME);
        assert_eq!(kept_flags(b"ro,noatime,nodiratime"), MountFlags::NOATIME | MountFlags::NODIRATIME);
        assert_eq!(kept_flags(b"rw"), MountFlags::STRICTATIME);
    }

    #[test]
    fn escapes_are_undone() {
        let mut out = PathBuf::new();
        unescape(br"/newroot/a\040b\134c\011", &mut out).unwrap();
        assert_eq!(out.as_bytes(), b"/newroot/a b\\c\t");
        unescape(br"/x\09", &mut out).unwrap();
        assert_eq!(out.as_bytes(), br"/x\09");
    }
}
