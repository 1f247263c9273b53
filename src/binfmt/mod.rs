//! Foreign-architecture sandboxes: `--binfmt-register RULE` registers emulators (qemu-user) in
//! the sandbox's own binfmt_misc instance, never in the host's.
//!
//! Since Linux 6.7 every user namespace can have its own binfmt_misc instance: it is created by
//! the first binfmt_misc mount made in that namespace, and exec() in the namespace (and in its
//! children) consults the nearest instance instead of the host's. The rules are
//!
//! 1. read and checked on the host, before any namespace exists ([`load`]);
//! 2. written, right after `unshare()`, into a detached instance made with
//!    fsopen()/fsmount() ([`register`]): the host's tree is still the root then, so the kernel
//!    opens each interpreter there (flag `F` is added), and the sandbox's root needs no emulator;
//! 3. kept alive by the mount: an instance and its registrations vanish with its last mount, so
//!    the instance becomes the floor the sandbox's root is stacked on (`mounts`' root set-up).
//!    Nothing shows inside: the floor is below the root, not in mountinfo, and `/..` stays `/`.
//!    Everything goes when the sandbox's mount namespace goes.
//!
//! A `--binfmt-misc DST` in the same sandbox mounts the same instance (the kernel keys it by the
//! user namespace). Without a user namespace of its own, or on kernels that give none, the
//! sandbox refuses: the registrations would land in the host's instance.

pub(crate) mod rule;

use core::ffi::CStr;

use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags};
use rustix::io::Errno;
use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags};

use crate::containers::{Bump, FixedVec};
use crate::decimal;
use crate::error::{During, Error, Limit, Overflow, Reason, Result, Syscall};
use crate::sys;

/// Rules over all `--binfmt-register` arguments (a file may hold several).
pub(crate) const MAX_RULES: usize = 256;
/// Largest binfmt.d file read.
const MAX_FILE: usize = 1 << 20;
const OPTION: &str = "--binfmt-register";

/// The checked rules and the instance (static memory, touched only when the option is given;
/// the instance's descriptor is close-on-exec).
pub(crate) struct Storage {
    rules: FixedVec<Rule, MAX_RULES>,
    instance: Option<Instance>,
}

impl Storage {
    pub(crate) const fn new() -> Self {
        Self { rules: FixedVec::new(), instance: None }
    }
}

impl Default for Storage {
    fn default() -> Self {
        Self::new()
    }
}

/// One checked rule, ready for the kernel.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rule {
    /// The register line as given (trimmed); `F` is appended when missing.
    pub(crate) line: &'static [u8],
    pub(crate) name: &'static [u8],
    pub(crate) add_fix_binary: bool,
    /// Where it came from, for messages: the argument, or `FILE:LINE`.
    pub(crate) origin: &'static CStr,
}

/// Why `--binfmt-register` is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A rule or its file, worded by the check at fault (the field first, as `rule` does).
    Rule(rule::Bad),
    /// No user namespace of the sandbox's own.
    NoUserNamespace,
    /// A user namespace whose root user is not mapped.
    RootUnmapped,
    /// The kernel gives user namespaces no binfmt_misc instance (before Linux 6.7).
    KernelTooOld,
    /// The kernel has no binfmt_misc at all.
    Missing,
    /// The instance the kernel gave is not a fresh, private one.
    NotPrivate,
}

impl Reason for Refusal {
    fn text(self) -> &'static str {
        match self {
            Refusal::Rule(why) => why,
            Refusal::NoUserNamespace => {
                "needs a user namespace of the sandbox's own, or the host's binfmt_misc would change; \
                 a root caller's sandbox has none without id ranges: add --map-users and --map-groups \
                 (or --map-auto), or run as a regular user with --become-root"
            }
            Refusal::RootUnmapped => {
                "the sandbox's binfmt_misc belongs to its root user, who exists only with --become-root: \
                 pass --become-root"
            }
            Refusal::KernelTooOld => {
                "this kernel gives user namespaces no binfmt_misc of their own (Linux 6.7 and newer do); \
                 not registering in the host's"
            }
            Refusal::Missing => "the kernel has no binfmt_misc (CONFIG_BINFMT_MISC)",
            Refusal::NotPrivate => {
                "the kernel gave the host's binfmt_misc instance, not a private one; not registering"
            }
        }
    }
}

fn bad(why: rule::Bad) -> Error {
    Error::invalid(Refusal::Rule(why))
}

/// Reads each argument (a register line starting with `:`, or a binfmt.d(5) file of them),
/// checks every rule and its interpreter on the host, and refuses duplicate names.
#[cold]
#[inline(never)]
pub(crate) fn load(args: &[&'static CStr], storage: &mut Storage, bump: &mut Bump<'static>) -> Result<()> {
    let rules = &mut storage.rules;
    for &arg in args {
        let given = arg.to_bytes();
        if given.first() == Some(&b':') {
            add(rules, given.trim_ascii(), arg, bump)?;
            continue;
        }
        let text = read_file(arg, bump).map_err(|e| e.for_option(OPTION, Some(arg), None))?;
        let before = rules.len();
        for (number, line) in rule::rules_of_file(text) {
            let mut digits = [0u8; decimal::MAX_DIGITS];
            let number = decimal::format(u64::from(number), &mut digits);
            let origin = bump.cstr(&[given, b":", number]).overflow(Limit::DerivedStrings)?;
            add(rules, line, origin, bump)?;
        }
        if rules.len() == before {
            return Err(bad("no register line in this file").for_option(OPTION, Some(arg), None));
        }
    }
    let all = rules.as_slice();
    for (i, later) in all.iter().enumerate() {
        if all[..i].iter().any(|earlier| earlier.name == later.name) {
            let duplicate = bad("name: already registered by an earlier rule");
            return Err(duplicate.for_option(OPTION, Some(later.origin), None));
        }
    }
    Ok(())
}

fn add(
    rules: &mut FixedVec<Rule, MAX_RULES>,
    line: &'static [u8],
    origin: &'static CStr,
    bump: &mut Bump<'static>,
) -> Result<()> {
    let blame = |e: Error| e.for_option(OPTION, Some(origin), None);
    let fields = rule::parse(line).map_err(|why| blame(bad(why)))?;
    let add_fix_binary = !fields.has_fix_binary();
    if line.len() + usize::from(add_fix_binary) > rule::MAX_LINE {
        return Err(blame(bad("rule longer than the kernel's 1920 bytes")));
    }
    // The kernel opens the interpreter itself (flag F); checking here names it when it is missing.
    let interpreter = bump.cstr(&[fields.interpreter]).overflow(Limit::DerivedStrings)?;
    let blame_interpreter = |e: Error| e.for_option(OPTION, Some(origin), Some(interpreter));
    match rustix::fs::statat(CWD, interpreter, AtFlags::empty()) {
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile => {}
        Ok(_) => return Err(blame_interpreter(bad("interpreter: not a regular file"))),
        Err(e) => return Err(blame_interpreter(Error::sys(Syscall::Stat, e))),
    }
    let rule = Rule { line, name: fields.name, add_fix_binary, origin };
    rules.push(rule).map(drop).overflow(Limit::BinfmtRules)
}

fn read_file(path: &CStr, bump: &mut Bump<'static>) -> Result<&'static [u8]> {
    let fd = rustix::fs::openat(CWD, path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).during(Syscall::Open)?;
    let st = rustix::fs::fstat(&fd).during(Syscall::Stat)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(bad("neither a register line (starting with ':') nor a file"));
    }
    let size = usize::try_from(st.st_size).unwrap_or(usize::MAX);
    if size > MAX_FILE {
        return Err(bad("file larger than 1 MiB"));
    }
    let buf = bump.alloc(size).overflow(Limit::DerivedStrings)?;
    let mut len = 0;
    while len < buf.len() {
        match rustix::io::read(&fd, &mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(Errno::INTR) => {}
            Err(e) => return Err(Error::sys(Syscall::Read, e)),
        }
    }
    Ok(&buf[..len])
}

/// Whether this sandbox may register: it needs a user namespace of its own (else the host's
/// instance would change; root's sandboxes have none, as in the original, even with
/// `--become-root`), and its root user mapped, because the kernel makes the instance's
/// `register` file belong to that user (a caller mapped only to itself gets EACCES).
#[cold]
#[inline(never)]
pub(crate) fn may_register(own_user_namespace: bool, root_mapped: bool) -> Result<()> {
    let refusal = if !own_user_namespace {
        Refusal::NoUserNamespace
    } else if !root_mapped {
        Refusal::RootUnmapped
    } else {
        return Ok(());
    };
    Err(Error::invalid(refusal).for_option(OPTION, None, None))
}

/// The sandbox's binfmt_misc instance: a mount of it, detached until it becomes the floor of
/// the sandbox's root (`mounts`).
#[derive(Debug)]
pub(crate) struct Instance(OwnedFd);

impl AsFd for Instance {
    fn as_fd(&self) -> rustix::fd::BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// Creates the sandbox's private binfmt_misc instance and registers the loaded rules in it. Runs
/// after `unshare()` of the user and mount namespaces, while `/` is still the host's root.
#[cold]
#[inline(never)]
pub(crate) fn register(storage: &mut Storage) -> Result<&Instance> {
    let blame = |e: Error| e.for_option(OPTION, None, None);
    let fs = rustix::mount::fsopen(c"binfmt_misc", FsOpenFlags::FSOPEN_CLOEXEC).map_err(|e| match e {
        Errno::NODEV => blame(Error::invalid(Refusal::Missing)),
        e => blame(Error::sys(Syscall::Fsopen, e)),
    })?;
    // Before Linux 6.7 binfmt_misc is the host's only, and only the host's root may mount it.
    rustix::mount::fsconfig_create(&fs).map_err(|e| match e {
        Errno::PERM => blame(Error::invalid(Refusal::KernelTooOld)),
        e => blame(Error::sys(Syscall::Fsconfig, e)),
    })?;
    let mount = rustix::mount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())
        .during(Syscall::Fsmount)
        .map_err(blame)?;
    drop(fs);
    ensure_private(&mount).map_err(blame)?;

    let register = rustix::fs::openat(&mount, c"register", OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())
        .during(Syscall::Open)
        .map_err(blame)?;
    let mut line = [0u8; rule::MAX_LINE];
    for rule in storage.rules.iter() {
        let len = rule.line.len();
        let Some(dst) = line.get_mut(..len) else { continue };
        dst.copy_from_slice(rule.line);
        let len = if rule.add_fix_binary {
            let Some(flag) = line.get_mut(len) else { continue };
            *flag = b'F';
            len + 1
        } else {
            len
        };
        // One write() is one rule for the kernel; its refusal is passed on as it is.
        sys::write_whole(&register, &line[..len])
            .during(Syscall::Write)
            .map_err(|e| e.for_option(OPTION, Some(rule.origin), None))?;
    }
    Ok(storage.instance.insert(Instance(mount)))
}

/// The instance must be a fresh one, of the user namespace made a moment ago: it holds nothing
/// but `register` and `status`, and it is not what the host has on /proc/sys/fs/binfmt_misc.
/// Should a kernel ever hand out the host's instance here, nothing is registered.
fn ensure_private(mount: &OwnedFd) -> Result<()> {
    let refuse = || Error::invalid(Refusal::NotPrivate);
    let ours = rustix::fs::fstat(mount).during(Syscall::Stat)?;
    let hosts = rustix::fs::statat(CWD, c"/proc/sys/fs/binfmt_misc", AtFlags::NO_AUTOMOUNT | AtFlags::SYMLINK_NOFOLLOW);
    if hosts.is_ok_and(|h| h.st_dev == ours.st_dev) {
        return Err(refuse());
    }
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let dir = rustix::fs::openat(mount, c".", flags, Mode::empty()).during(Syscall::Open)?;
    let mut buf = [core::mem::MaybeUninit::<u8>::uninit(); 512];
    let mut entries = rustix::fs::RawDir::new(&dir, &mut buf);
    while let Some(entry) = entries.next() {
        let entry = entry.during(Syscall::Getdents64)?;
        if !matches!(entry.file_name().to_bytes(), b"." | b".." | b"register" | b"status") {
            return Err(refuse());
        }
    }
    Ok(())
}
