//! Privileges: whether a user namespace is needed, the namespaces to unshare, the uid/gid maps,
//! and the capabilities passed on to the command.

use rustix::fs::{CWD, Mode, OFlags};
use rustix::process::DumpableBehavior;
use rustix::thread::{CapabilitySet, CapabilitySets};

use crate::containers::Bytes;
use crate::decimal;
use crate::error::{During, Result, Syscall};
use crate::sys::{self, Namespaces};

/// The caller's identity and capabilities, read once (one capget() instead of reading
/// /proc/self/status as the original does).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caller {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) sys_admin: bool,
    pub(crate) net_admin: bool,
}

impl Caller {
    pub(crate) fn current() -> Result<Self> {
        let caps = rustix::thread::capabilities(None).during(Syscall::Capget)?;
        Ok(Self {
            uid: rustix::process::getuid().as_raw(),
            gid: rustix::process::getgid().as_raw(),
            sys_admin: caps.effective.contains(CapabilitySet::SYS_ADMIN),
            net_admin: caps.effective.contains(CapabilitySet::NET_ADMIN),
        })
    }

    /// No user namespace when already privileged: CAP_SYS_ADMIN, and root or no `--become-root`.
    /// The one answer to "does the sandbox get a user namespace of its own"; options that give
    /// one (id ranges) extend it here, and `--binfmt-register` relies on it.
    pub(crate) fn needs_userns(&self, become_root: bool) -> bool {
        !(self.sys_admin && (self.uid == 0 || !become_root))
    }
}

/// The namespaces to unshare in one call. With a user namespace, the kernel creates it first and
/// the others are owned by it, so an unprivileged caller gets `--unshare-net` too (the original
/// checked CAP_NET_ADMIN before creating the user namespace and silently skipped it).
pub(crate) fn namespaces(caller: &Caller, userns: bool, unshare_net: bool, unshare_ipc: bool) -> Namespaces {
    let net = unshare_net && (caller.net_admin || userns);
    Namespaces { mount: true, user: userns, net, ipc: unshare_ipc, pid: false }
}

/// After `unshare(CLONE_NEWUSER)`: map the caller to root (`--become-root`) or to itself. The
/// process writes its own single-id maps, which the kernel allows for its own euid/egid; no helper
/// process is needed.
pub(crate) fn write_maps(caller: &Caller, become_root: bool) -> Result<()> {
    // A process that changed ids without exec is not dumpable, and then its /proc files belong to
    // root and the maps cannot be written.
    rustix::process::set_dumpable_behavior(DumpableBehavior::Dumpable).during(Syscall::Prctl)?;
    let inside = |id: u32| if become_root { 0 } else { id };
    write_proc_file(c"/proc/self/setgroups", b"deny")?;
    let mut line = MapLine::new();
    line.format(inside(caller.gid), caller.gid);
    write_proc_file(c"/proc/self/gid_map", line.as_bytes())?;
    line.format(inside(caller.uid), caller.uid);
    write_proc_file(c"/proc/self/uid_map", line.as_bytes())
}

/// Without `--become-root`: the caller keeps its uid, so its capabilities in the new namespace
/// would be lost at exec. Make them inheritable and ambient, so the command can mount too.
pub(crate) fn raise_ambient() -> Result<()> {
    let caps = rustix::thread::capabilities(None).during(Syscall::Capget)?;
    let sets = CapabilitySets { effective: caps.effective, permitted: caps.permitted, inheritable: caps.permitted };
    rustix::thread::set_capabilities(None, sets).during(Syscall::Capset)?;
    let bits = caps.effective.bits();
    for cap in 0..64u32 {
        if bits & (1u64 << cap) != 0 {
            rustix::thread::configure_capability_in_ambient_set(CapabilitySet::from_bits_retain(1 << cap), true)
                .during(Syscall::Prctl)?;
        }
    }
    Ok(())
}

/// Whether /proc/self/uid_map maps exactly one user (then chown() cannot work either).
pub(crate) fn uid_map_has_single_user() -> bool {
    let Ok(fd) = rustix::fs::openat(CWD, c"/proc/self/uid_map", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) else {
        return false;
    };
    let mut buf = [0u8; 512];
    let Ok(n) = rustix::io::read(&fd, &mut buf) else {
        return false;
    };
    single_user_map(&buf[..n])
}

fn single_user_map(text: &[u8]) -> bool {
    let mut lines = text.split(|&b| b == b'\n').filter(|l| !l.is_empty());
    let (Some(first), None) = (lines.next(), lines.next()) else {
        return false;
    };
    first.split(|&b| b == b' ' || b == b'\t').rfind(|f| !f.is_empty()) == Some(b"1")
}

fn write_proc_file(path: &core::ffi::CStr, data: &[u8]) -> Result<()> {
    let fd = rustix::fs::openat(CWD, path, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty()).during(Syscall::Open)?;
    sys::write_whole(&fd, data).during(Syscall::Write)
}

/// "INSIDE OUTSIDE 1\n" without formatting machinery.
struct MapLine(Bytes<32>);

impl MapLine {
    fn new() -> Self {
        Self(Bytes::new())
    }

    fn format(&mut self, inside: u32, outside: u32) {
        self.0.clear();
        let mut digits = [0u8; decimal::MAX_DIGITS];
        self.0.push(decimal::format(inside.into(), &mut digits));
        self.0.push(b" ");
        self.0.push(decimal::format(outside.into(), &mut digits));
        self.0.push(b" 1\n");
    }

    fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_lines() {
        let mut l = MapLine::new();
        l.format(0, 4294967295);
        assert_eq!(l.as_bytes(), b"0 4294967295 1\n");
        l.format(1000, 1000);
        assert_eq!(l.as_bytes(), b"1000 1000 1\n");
    }

    #[test]
    fn single_user_maps() {
        assert!(single_user_map(b"         0       1000          1\n"));
        assert!(!single_user_map(b"         0          0 4294967295\n"));
        assert!(!single_user_map(b"0 1000 1\n1 100000 65536\n"));
        assert!(!single_user_map(b""));
    }

    #[test]
    fn userns_decision_matches_the_original() {
        let root = Caller { uid: 0, gid: 0, sys_admin: true, net_admin: true };
        let user = Caller { uid: 1000, gid: 1000, sys_admin: false, net_admin: false };
        let capable_user = Caller { uid: 1000, gid: 1000, sys_admin: true, net_admin: true };
        assert!(!root.needs_userns(false) && !root.needs_userns(true));
        assert!(user.needs_userns(false) && user.needs_userns(true));
        assert!(!capable_user.needs_userns(false) && capable_user.needs_userns(true));
    }

    #[test]
    fn unprivileged_callers_get_a_network_namespace() {
        let user = Caller { uid: 1000, gid: 1000, sys_admin: false, net_admin: false };
        assert!(namespaces(&user, true, true, false).net);
        assert!(!namespaces(&user, false, true, false).net);
        assert_eq!(
            namespaces(&user, true, false, true),
            Namespaces { mount: true, user: true, net: false, ipc: true, pid: false }
        );
    }
}
