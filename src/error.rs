//! Errors: what failed (the [`Cause`]) and about what (the [`Subject`]), rendered as one line on
//! stderr naming the option, its paths and the cause; for a call that a kernel or a container may
//! lack or refuse, the call, its errno and what would make it work, on the same line.

use core::ffi::CStr;

use rustix::io::Errno;

use crate::containers::Full;
use crate::line::Line;

/// A syscall that was made and failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Syscall {
    Access,
    Capget,
    Capset,
    Chdir,
    Chroot,
    Clone,
    CloseRange,
    /// `execve()` of each candidate of the PATH search, named as the original names it.
    Execvp,
    Fchdir,
    Fcntl,
    Fork,
    Fsconfig,
    Fsmount,
    Fsopen,
    Getcwd,
    Getdents64,
    Kill,
    Mkdir,
    Mknod,
    Mount,
    MountSetattr,
    MoveMount,
    Mprotect,
    Open,
    OpenTree,
    Pipe,
    PidfdOpen,
    PivotRoot,
    Poll,
    Prctl,
    Read,
    RtSigaction,
    RtSigprocmask,
    RtSigtimedwait,
    Seccomp,
    Stat,
    Symlink,
    Umount2,
    Unshare,
    Wait4,
    Write,
}

impl Syscall {
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Syscall::Access => "access",
            Syscall::Capget => "capget",
            Syscall::Capset => "capset",
            Syscall::Chdir => "chdir",
            Syscall::Chroot => "chroot",
            Syscall::Clone => "clone",
            Syscall::CloseRange => "close_range",
            Syscall::Execvp => "execvp",
            Syscall::Fchdir => "fchdir",
            Syscall::Fcntl => "fcntl",
            Syscall::Fork => "fork",
            Syscall::Fsconfig => "fsconfig",
            Syscall::Fsmount => "fsmount",
            Syscall::Fsopen => "fsopen",
            Syscall::Getcwd => "getcwd",
            Syscall::Getdents64 => "getdents64",
            Syscall::Kill => "kill",
            Syscall::Mkdir => "mkdir",
            Syscall::Mknod => "mknod",
            Syscall::Mount => "mount",
            Syscall::MountSetattr => "mount_setattr",
            Syscall::MoveMount => "move_mount",
            Syscall::Mprotect => "mprotect",
            Syscall::Open => "open",
            Syscall::OpenTree => "open_tree",
            Syscall::Pipe => "pipe2",
            Syscall::PidfdOpen => "pidfd_open",
            Syscall::PivotRoot => "pivot_root",
            Syscall::Poll => "poll",
            Syscall::Prctl => "prctl",
            Syscall::Read => "read",
            Syscall::RtSigaction => "rt_sigaction",
            Syscall::RtSigprocmask => "rt_sigprocmask",
            Syscall::RtSigtimedwait => "rt_sigtimedwait",
            Syscall::Seccomp => "seccomp",
            Syscall::Stat => "stat",
            Syscall::Symlink => "symlink",
            Syscall::Umount2 => "umount2",
            Syscall::Unshare => "unshare",
            Syscall::Wait4 => "wait4",
            Syscall::Write => "write",
        }
    }
}

/// A module's reasons for refusing input or giving up: an enum beside that module's checks
/// (`cli::Refusal`, `subid::Refusal`, `seccomp::Refusal`, ...) that words each reason itself.
pub(crate) trait Reason: Copy {
    /// The reason, as the last part of the one line.
    fn text(self) -> &'static str;
}

/// A fixed capacity (see the `MAX_*` constants of the stages that own the storage).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    Operations,
    Lowerdirs,
    Setenv,
    Unsetenv,
    Environment,
    PackFds,
    BinfmtRules,
    /// The byte bump for sort keys, `NAME=VALUE` pairs and the cwd.
    DerivedStrings,
    MapUsers,
    MapGroups,
    UidMapLines,
    GidMapLines,
}

impl Limit {
    pub(crate) const fn text(self) -> &'static str {
        match self {
            Limit::Operations => "operations",
            Limit::Lowerdirs => "--overlay-lowerdir entries",
            Limit::Setenv => "--setenv entries",
            Limit::Unsetenv => "--unsetenv entries",
            Limit::Environment => "environment entries",
            Limit::PackFds => "descriptors for --pack-fds",
            Limit::BinfmtRules => "--binfmt-register rules",
            Limit::DerivedStrings => "bytes for derived strings",
            Limit::MapUsers => "--map-users",
            Limit::MapGroups => "--map-groups",
            Limit::UidMapLines => "uid map lines",
            Limit::GidMapLines => "gid map lines",
        }
    }
}

/// What went wrong, without the subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cause {
    /// A syscall failed.
    Sys { syscall: Syscall, errno: Errno },
    /// A path grew longer than PATH_MAX while it was being built (no syscall was made).
    PathTooLong,
    /// A required bind source does not exist.
    SourceMissing,
    /// Bad input, or something the sandbox refuses to do: a module's [`Reason`] in its words.
    Invalid(&'static str),
    /// A fixed capacity was exceeded.
    Capacity { what: Limit, max: usize },
    /// Words from another process (the id-mapping helper and the tools it runs), verbatim.
    Report(&'static CStr),
}

/// A stage of the set-up that is not an option's operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// The root dance around the operations (`mounts::setup`).
    Setup,
    /// Making `/` a slave when there is no user namespace.
    RootPropagation,
    Unshare,
    UserNamespace,
    Capabilities,
}

impl Stage {
    pub(crate) const fn label(self) -> &'static str {
        match self {
            Stage::Setup => "setup",
            Stage::RootPropagation => "mount /",
            Stage::Unshare => "unshare",
            Stage::UserNamespace => "user namespace",
            Stage::Capabilities => "capabilities",
        }
    }

    /// Whether the stage is that one syscall (then naming the syscall again says nothing).
    const fn is(self, syscall: Syscall) -> bool {
        matches!((self, syscall), (Stage::Unshare, Syscall::Unshare))
    }
}

/// What the error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Subject {
    /// Not named (yet): the first `for_*` call names it.
    Unnamed,
    /// An option and its arguments as given: the option says what was done, so the failing
    /// syscall is not named.
    Option(&'static str),
    /// A stage: the failing syscall is named after it.
    Stage(Stage),
    /// The command to execute, or an argument that is not an option (only the argument is shown).
    Argument,
}

/// An error with its subject: the option (or stage) and up to two of its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Error {
    pub(crate) subject: Subject,
    pub(crate) args: [Option<&'static CStr>; 2],
    pub(crate) cause: Cause,
}

pub type Result<T> = core::result::Result<T, Error>;

impl Error {
    pub(crate) const fn new(cause: Cause) -> Self {
        Self { subject: Subject::Unnamed, args: [None, None], cause }
    }

    pub(crate) const fn sys(syscall: Syscall, errno: Errno) -> Self {
        Self::new(Cause::Sys { syscall, errno })
    }

    pub(crate) fn invalid(why: impl Reason) -> Self {
        Self::new(Cause::Invalid(why.text()))
    }

    pub(crate) const fn capacity(what: Limit, max: usize) -> Self {
        Self::new(Cause::Capacity { what, max })
    }

    /// Names the subject unless a more precise one was already named.
    fn about(mut self, subject: Subject, args: [Option<&'static CStr>; 2]) -> Self {
        if self.subject == Subject::Unnamed {
            self.subject = subject;
            self.args = args;
        }
        self
    }

    /// About option `option` with its arguments `a` and `b`.
    pub(crate) fn for_option(self, option: &'static str, a: Option<&'static CStr>, b: Option<&'static CStr>) -> Self {
        self.about(Subject::Option(option), [a, b])
    }

    /// About a stage of the set-up.
    pub(crate) fn in_stage(self, stage: Stage) -> Self {
        self.about(Subject::Stage(stage), [None, None])
    }

    /// About a stage of the set-up, at `path`.
    pub(crate) fn in_stage_at(self, stage: Stage, path: &'static CStr) -> Self {
        self.about(Subject::Stage(stage), [Some(path), None])
    }

    /// About an argument: the command, or a word that is not an option.
    pub(crate) fn for_argument(self, argument: &'static CStr) -> Self {
        self.about(Subject::Argument, [Some(argument), None])
    }

    pub(crate) fn errno(&self) -> Option<Errno> {
        match self.cause {
            Cause::Sys { errno, .. } => Some(errno),
            _ => None,
        }
    }

    /// Writes the one-line message into `out`.
    pub(crate) fn render(&self, out: &mut Line) {
        out.push(b"mkosi-sandbox: ");
        let label = match self.subject {
            Subject::Option(option) => option,
            Subject::Stage(stage) => stage.label(),
            Subject::Unnamed | Subject::Argument => "",
        };
        let mut any = false;
        if !label.is_empty() {
            out.push(label.as_bytes());
            any = true;
        }
        for arg in self.args.iter().flatten() {
            if any {
                out.push(b" ");
            }
            out.push_value(arg.to_bytes());
            any = true;
        }
        if any {
            out.push(b": ");
        }
        match self.cause {
            Cause::Sys { syscall, errno } => {
                let remedy = Remedy::of(syscall, errno);
                // An option names what was done, but not which call a kernel or container lacks.
                let named = match self.subject {
                    Subject::Option(_) => remedy.is_some(),
                    Subject::Stage(stage) => !stage.is(syscall),
                    Subject::Unnamed | Subject::Argument => true,
                };
                if named {
                    out.push(syscall.name().as_bytes());
                    out.push(b": ");
                }
                out.push(strerror(errno).as_bytes());
                if let Some(remedy) = remedy {
                    out.push(b" (");
                    remedy.render(syscall, out);
                    out.push(b")");
                }
            }
            Cause::PathTooLong => out.push(strerror(Errno::NAMETOOLONG).as_bytes()),
            Cause::SourceMissing => out.push(strerror(Errno::NOENT).as_bytes()),
            Cause::Invalid(why) => out.push(why.as_bytes()),
            Cause::Report(text) => out.push_value(text.to_bytes()),
            Cause::Capacity { what, max } => {
                out.push(b"too many ");
                out.push(what.text().as_bytes());
                out.push(b" (max ");
                out.push_u64(max as u64);
                out.push(b")");
            }
        }
        out.end_line();
    }
}

impl Error {
    /// The errno an in-process caller gets with the message: the failed call's, else the one
    /// that says the same (ENOENT for a missing source, EINVAL for refused input, E2BIG for a
    /// capacity, EPERM for the id-mapping helper's words).
    pub fn os_errno(&self) -> i32 {
        let errno = match self.cause {
            Cause::Sys { errno, .. } => errno,
            Cause::PathTooLong => Errno::NAMETOOLONG,
            Cause::SourceMissing => Errno::NOENT,
            Cause::Invalid(_) => Errno::INVAL,
            Cause::Capacity { .. } => Errno::TOOBIG,
            Cause::Report(_) => Errno::PERM,
        };
        errno.raw_os_error()
    }

    /// The one line the binary prints for this error, without its newline, into `out` (cut to
    /// fit); returns its length.
    pub fn message(&self, out: &mut [u8]) -> usize {
        let mut line = Line::new();
        self.render(&mut line);
        let text = line.as_bytes();
        let text = text.strip_suffix(b"\n").unwrap_or(text);
        let n = text.len().min(out.len());
        out[..n].copy_from_slice(&text[..n]);
        n
    }
}

/// Names the syscall behind a raw kernel error.
pub(crate) trait During<T> {
    fn during(self, syscall: Syscall) -> Result<T>;
}

impl<T> During<T> for core::result::Result<T, Errno> {
    fn during(self, syscall: Syscall) -> Result<T> {
        self.map_err(|errno| Error::sys(syscall, errno))
    }
}

/// A path buffer that overflowed while a path was built: no syscall was made.
pub(crate) trait TooLong<T> {
    fn too_long(self) -> Result<T>;
}

impl<T> TooLong<T> for core::result::Result<T, Errno> {
    fn too_long(self) -> Result<T> {
        self.map_err(|_| Error::new(Cause::PathTooLong))
    }
}

/// Turns a full container into the error naming its capacity.
pub(crate) trait Overflow<T> {
    fn overflow(self, what: Limit) -> Result<T>;
}

impl<T> Overflow<T> for core::result::Result<T, Full> {
    fn overflow(self, what: Limit) -> Result<T> {
        self.map_err(|full| Error::capacity(what, full.capacity))
    }
}

/// What would make a call work that a kernel may lack, or a container's seccomp profile (Docker's
/// default without CAP_SYS_ADMIN answers EPERM, gVisor-like runtimes and qemu-user ENOSYS) or the
/// system's policy may refuse. Appended to the error's one line, which then names the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Remedy {
    /// ENOSYS: the kernel has no such call (it arrived in that Linux version), or a filter or an
    /// emulator pretends so.
    Missing(Option<&'static str>),
    /// EPERM from a call that needs CAP_SYS_ADMIN in its namespace, which container profiles
    /// refuse outright.
    NeedsSysAdmin,
    /// EPERM from unshare(): user namespaces are restricted.
    UserNamespacesRestricted,
    /// ENOSPC from unshare(): no user namespace may be made (`user.max_user_namespaces`).
    UserNamespacesOff,
}

impl Remedy {
    fn of(syscall: Syscall, errno: Errno) -> Option<Self> {
        match (syscall, errno) {
            (_, Errno::NOSYS) => Some(Remedy::Missing(match syscall {
                Syscall::OpenTree | Syscall::MoveMount | Syscall::Fsopen | Syscall::Fsconfig | Syscall::Fsmount => {
                    Some("5.2")
                }
                Syscall::PidfdOpen => Some("5.3"),
                Syscall::CloseRange => Some("5.9"),
                Syscall::MountSetattr => Some("5.12"),
                _ => None,
            })),
            (Syscall::Unshare, Errno::PERM) => Some(Remedy::UserNamespacesRestricted),
            (Syscall::Unshare, Errno::NOSPC) => Some(Remedy::UserNamespacesOff),
            (
                Syscall::OpenTree
                | Syscall::MoveMount
                | Syscall::Fsopen
                | Syscall::Fsconfig
                | Syscall::Fsmount
                | Syscall::MountSetattr,
                Errno::PERM,
            ) => Some(Remedy::NeedsSysAdmin),
            _ => None,
        }
    }

    fn render(self, syscall: Syscall, out: &mut Line) {
        let name = syscall.name().as_bytes();
        match self {
            Remedy::Missing(since) => {
                out.push(b"this kernel lacks it, or a seccomp filter or emulator refuses it: ");
                if let Some(version) = since {
                    out.push(name);
                    out.push(b" needs Linux ");
                    out.push(version.as_bytes());
                    out.push(b" or newer and a container runtime or emulator that lets it through");
                } else {
                    out.push(b"the container runtime or emulator must let ");
                    out.push(name);
                    out.push(b" through");
                }
            }
            Remedy::NeedsSysAdmin => {
                out.push(b"it needs CAP_SYS_ADMIN, and a container's seccomp profile without it refuses ");
                out.push(name);
                out.push(b" (Docker's default does): grant CAP_SYS_ADMIN or a profile that allows it");
            }
            Remedy::UserNamespacesRestricted => out.push(
                b"unprivileged user namespaces are refused here: by kernel.unprivileged_userns_clone=0, \
                  kernel.apparmor_restrict_unprivileged_userns=1, a chroot, or a container's seccomp profile \
                  (Docker's default without CAP_SYS_ADMIN); allow them or run as root",
            ),
            Remedy::UserNamespacesOff => out.push(
                b"no user namespace may be made: user namespaces are switched off (sysctl user.max_user_namespaces=0) \
                  or the limit is reached; raise user.max_user_namespaces",
            ),
        }
    }
}

/// glibc's wording for the errors this program can meet (what the Python original printed).
pub(crate) fn strerror(errno: Errno) -> &'static str {
    match errno.raw_os_error() {
        1 => "Operation not permitted",
        2 => "No such file or directory",
        3 => "No such process",
        4 => "Interrupted system call",
        5 => "Input/output error",
        6 => "No such device or address",
        7 => "Argument list too long",
        8 => "Exec format error",
        9 => "Bad file descriptor",
        10 => "No child processes",
        11 => "Resource temporarily unavailable",
        12 => "Cannot allocate memory",
        13 => "Permission denied",
        14 => "Bad address",
        15 => "Block device required",
        16 => "Device or resource busy",
        17 => "File exists",
        18 => "Invalid cross-device link",
        19 => "No such device",
        20 => "Not a directory",
        21 => "Is a directory",
        22 => "Invalid argument",
        23 => "Too many open files in system",
        24 => "Too many open files",
        25 => "Inappropriate ioctl for device",
        26 => "Text file busy",
        27 => "File too large",
        28 => "No space left on device",
        30 => "Read-only file system",
        31 => "Too many links",
        32 => "Broken pipe",
        36 => "File name too long",
        38 => "Function not implemented",
        39 => "Directory not empty",
        40 => "Too many levels of symbolic links",
        61 => "No data available",
        75 => "Value too large for defined data type",
        95 => "Operation not supported",
        110 => "Connection timed out",
        116 => "Stale file handle",
        122 => "Disk quota exceeded",
        _ => "Unknown error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(e: Error) -> String {
        let mut line = Line::new();
        e.render(&mut line);
        String::from_utf8(line.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn op_errors_name_option_paths_and_cause() {
        let e = Error::sys(Syscall::OpenTree, Errno::NOENT).for_option("--ro-bind", Some(c"/nope"), Some(c"/x"));
        assert_eq!(text(e), "mkosi-sandbox: --ro-bind /nope /x: No such file or directory\n");
        let e = Error::new(Cause::SourceMissing).for_option("--bind", Some(c"+/nope"), Some(c"/x"));
        assert_eq!(text(e), "mkosi-sandbox: --bind +/nope /x: No such file or directory\n");
        let e = Error::new(Cause::PathTooLong).for_option("--dir", None, Some(c"/x"));
        assert_eq!(text(e), "mkosi-sandbox: --dir /x: File name too long\n");
    }

    #[test]
    fn stage_errors_name_the_syscall() {
        let e = Error::sys(Syscall::PivotRoot, Errno::INVAL).in_stage(Stage::Setup);
        assert_eq!(text(e), "mkosi-sandbox: setup: pivot_root: Invalid argument\n");
        let e = Error::sys(Syscall::Mount, Errno::PERM).in_stage_at(Stage::Setup, c"/tmp");
        assert_eq!(text(e), "mkosi-sandbox: setup /tmp: mount: Operation not permitted\n");
        let e = Error::sys(Syscall::Unshare, Errno::INVAL).in_stage(Stage::Unshare);
        assert_eq!(text(e), "mkosi-sandbox: unshare: Invalid argument\n");
        let e = Error::sys(Syscall::Capget, Errno::PERM);
        assert_eq!(text(e), "mkosi-sandbox: capget: Operation not permitted\n");
        let e = Error::sys(Syscall::Execvp, Errno::NOENT).for_argument(c"nope");
        assert_eq!(text(e), "mkosi-sandbox: nope: execvp: No such file or directory\n");
    }

    #[test]
    fn missing_or_refused_calls_are_one_line_naming_call_errno_and_remedy() {
        let e = Error::sys(Syscall::MountSetattr, Errno::NOSYS).for_option("--ro-bind", Some(c"/a"), Some(c"/b"));
        assert_eq!(
            text(e),
            "mkosi-sandbox: --ro-bind /a /b: mount_setattr: Function not implemented (this kernel lacks it, or a \
             seccomp filter or emulator refuses it: mount_setattr needs Linux 5.12 or newer and a container runtime \
             or emulator that lets it through)\n"
        );
        let e = Error::sys(Syscall::Fsopen, Errno::PERM).for_option("--binfmt-register", None, None);
        assert!(
            text(e).starts_with(
                "mkosi-sandbox: --binfmt-register: fsopen: Operation not permitted (it needs CAP_SYS_ADMIN"
            )
        );
        let e = Error::sys(Syscall::Unshare, Errno::NOSPC).in_stage(Stage::Unshare);
        assert!(text(e).starts_with("mkosi-sandbox: unshare: No space left on device (no user namespace may be made"));
        let e = Error::sys(Syscall::Unshare, Errno::PERM).in_stage(Stage::Unshare);
        assert!(text(e).contains("unprivileged user namespaces are refused here"));
        // An EPERM that no container profile explains stays as it was.
        let e = Error::sys(Syscall::Mount, Errno::PERM).for_option("--tmpfs", None, Some(c"/x"));
        assert_eq!(text(e), "mkosi-sandbox: --tmpfs /x: Operation not permitted\n");
        for (syscall, errno) in [(Syscall::PidfdOpen, Errno::NOSYS), (Syscall::Unshare, Errno::NOSYS)] {
            assert_eq!(
                text(Error::sys(syscall, errno).for_option("--unshare-pid", None, None)).matches('\n').count(),
                1
            );
        }
    }

    #[test]
    fn capacity_errors_give_the_limit() {
        assert_eq!(text(Error::capacity(Limit::Operations, 8192)), "mkosi-sandbox: too many operations (max 8192)\n");
        let full: core::result::Result<(), Full> = Err(Full { capacity: 1024 });
        assert_eq!(
            text(full.overflow(Limit::Lowerdirs).unwrap_err()),
            "mkosi-sandbox: too many --overlay-lowerdir entries (max 1024)\n"
        );
    }

    #[test]
    fn any_bytes_in_the_arguments_give_one_line() {
        let e = Error::new(Cause::SourceMissing).for_option("--ro-bind", Some(c"3"), Some(c"/a\nb"));
        assert_eq!(text(e), "mkosi-sandbox: --ro-bind 3 /a\\nb: No such file or directory\n");
        // pmbootstrap's passwd: the data escaped and shortened, once.
        let passwd = "root:x:0:0:root:/root:/bin/sh\npmos:x:10000:10000::/home/pmos:/bin/sh\n".repeat(20);
        let data = std::ffi::CString::new(passwd).unwrap();
        let e = Error::sys(Syscall::Open, Errno::ROFS).for_option(
            "--write",
            Some(Box::leak(data.into_boxed_c_str())),
            Some(c"/etc/passwd"),
        );
        let line = text(e);
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        assert!(line.starts_with("mkosi-sandbox: --write root:x:0:0:root:/root:/bin/sh\\npmos:x:10000"), "{line}");
        assert!(line.ends_with("/home/pmos:/bin/sh\\n /etc/passwd: Read-only file system\n"), "{line}");
        assert!(line.len() < 300, "{line}");
        // The command, an unknown option, another program's words.
        let e = Error::new(Cause::Invalid("unrecognized option")).for_argument(c"--x\x1b[2J\r");
        assert_eq!(text(e), "mkosi-sandbox: --x\\x1b[2J\\r: unrecognized option\n");
        let e =
            Error::new(Cause::Report(c"newuidmap: bad\nrange\t(exit status 1)")).for_option("--map-users", None, None);
        assert_eq!(text(e), "mkosi-sandbox: --map-users: newuidmap: bad\\nrange\\t(exit status 1)\n");
    }

    #[test]
    fn first_subject_wins() {
        let e = Error::new(Cause::SourceMissing).for_option("--dir", None, None).for_option("--bind", None, None);
        assert_eq!(e.subject, Subject::Option("--dir"));
    }
}
