//! Argument parsing: argv, in order, into filesystem operations and settings ([`Request`]).
//! Values are taken verbatim and borrowed from argv; parsing stops at `--` or at the first
//! argument that is not an option, which starts the command (default `bash`).
//!
//! A new option: a [`Settings`] field (a flag or value), or a new [`OpKind`] (an operation on the
//! sandbox's filesystem: also its name in [`Op::option`] and its syscalls in `mounts::execute`),
//! parsed in [`parse`] and listed in the help text.

use core::ffi::CStr;

use crate::containers::FixedVec;
use crate::decimal;
use crate::error::{Error, Limit, Overflow, Reason, Result};
use crate::line::Line;
use crate::subid::{self, MAX_RANGES, Range, Ranges};

/// Filesystem operations (`--bind`, `--dir`, ...). mkosi's largest calls carry a few hundred.
pub const MAX_OPS: usize = 8192;
/// `--overlay-lowerdir` entries over the whole command line.
pub const MAX_LOWERDIRS: usize = 1024;
/// `--setenv` and `--unsetenv` entries each.
pub const MAX_ENV_EDITS: usize = 1024;
/// `--binfmt-register` arguments.
pub const MAX_BINFMT_RULES: usize = 256;

/// Read access to the process's arguments (argv without `argv[0]`).
pub trait Args {
    fn count(&self) -> usize;
    fn arg(&self, index: usize) -> &'static CStr;
}

impl Args for [&'static CStr] {
    fn count(&self) -> usize {
        self.len()
    }
    fn arg(&self, index: usize) -> &'static CStr {
        self[index]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Tmpfs,
    Dev,
    Proc,
    Dir,
    /// `--binfmt-misc DST`: a binfmt_misc mount (the sandbox's own instance with a user namespace).
    BinfmtMisc,
    /// `--[ro-]bind[-try]` and `--[ro-]bind-nofollow`; `relative` when SRC had a leading `+`
    /// (resolved in the new root); `follow` false when a symlink SRC is bound as the link itself.
    Bind {
        readonly: bool,
        required: bool,
        relative: bool,
        follow: bool,
    },
    /// `--symlink TARGET DST`: `src` is the link target.
    Symlink,
    /// `--write DATA DST`: `src` is the data.
    Write,
    /// `--overlay DST` with the lowerdirs `lowers[start..start+len]`, top first.
    Overlay {
        lower_start: u32,
        lower_len: u32,
        upper: Option<&'static CStr>,
        work: Option<&'static CStr>,
    },
}

/// One filesystem operation, as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op {
    pub kind: OpKind,
    /// Bind source without its `+`, symlink target or data; empty for the others.
    pub src: &'static CStr,
    /// The first argument exactly as given (bind SRC with its `+`), for messages.
    pub given: Option<&'static CStr>,
    pub dst: &'static CStr,
}

impl Op {
    /// The option that made this operation, for messages.
    pub fn option(&self) -> &'static str {
        match self.kind {
            OpKind::Tmpfs => "--tmpfs",
            OpKind::Dev => "--dev",
            OpKind::Proc => "--proc",
            OpKind::Dir => "--dir",
            OpKind::BinfmtMisc => "--binfmt-misc",
            OpKind::Bind { readonly: false, follow: false, .. } => "--bind-nofollow",
            OpKind::Bind { readonly: true, follow: false, .. } => "--ro-bind-nofollow",
            OpKind::Bind { readonly: false, required: true, .. } => "--bind",
            OpKind::Bind { readonly: false, required: false, .. } => "--bind-try",
            OpKind::Bind { readonly: true, required: true, .. } => "--ro-bind",
            OpKind::Bind { readonly: true, required: false, .. } => "--ro-bind-try",
            OpKind::Symlink => "--symlink",
            OpKind::Write => "--write",
            OpKind::Overlay { .. } => "--overlay",
        }
    }

    pub fn is_bind(&self) -> bool {
        matches!(self.kind, OpKind::Bind { .. })
    }

    pub fn is_relative(&self) -> bool {
        matches!(self.kind, OpKind::Bind { relative: true, .. })
    }

    /// One line for `--debug`: the option and its arguments as given.
    pub fn describe(&self, out: &mut Line) {
        out.push(b"mkosi-sandbox: ");
        out.push(self.option().as_bytes());
        for arg in [self.given, Some(self.dst)].into_iter().flatten() {
            out.push(b" ");
            out.push(arg.to_bytes());
        }
        out.push(b"\n");
    }

    /// Attaches this operation as the subject of an error.
    pub fn blame(&self, error: Error) -> Error {
        error.for_option(self.option(), self.given, Some(self.dst))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chdir {
    Path(&'static CStr),
    /// `--same-dir`: the caller's working directory.
    SameDir,
}

/// Everything parsed besides the operations (which go into the arena).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Settings {
    pub become_root: bool,
    pub suppress_chown: bool,
    pub suppress_sync: bool,
    pub unshare_net: bool,
    pub unshare_ipc: bool,
    pub suspend: bool,
    pub pack_fds: bool,
    pub chdir: Option<Chdir>,
    /// `--exec-fd N` (mkosi 25.x): made close-on-exec right before exec.
    pub exec_fd: Option<i32>,
    /// `--debug` (newer mkosi): print each filesystem operation as it runs.
    pub debug: bool,
    /// `--unshare-pid`: a new PID namespace whose init is this program (see `pidns`).
    pub unshare_pid: bool,
    /// `--die-with-parent`: SIGKILL when the caller dies.
    pub die_with_parent: bool,
    /// Any `--binfmt-register` (the rules are [`Request::binfmt_rules`]).
    pub binfmt_register: bool,
    /// `--map-auto`: map the caller's first subordinate uid and gid ranges.
    pub map_auto: bool,
    /// `--map-foreign` (mkosi 27): nothing to do when privileged, checked in `foreign_uid`.
    pub map_foreign: bool,
    /// Index of the command's first argument; equal to the argument count for the default `bash`.
    pub command: usize,
}

/// What the command line asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed<'s> {
    Run(Request<'s>),
    Help,
    Version,
}

/// A sandbox to run: the settings and, in command-line order, what was collected into
/// [`Storage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'s> {
    pub settings: Settings,
    pub ops: &'s [Op],
    /// The `--overlay-lowerdir` values; each `OpKind::Overlay` names its range, top first.
    pub lowerdirs: &'s [&'static CStr],
    pub setenv: &'s [(&'static CStr, &'static CStr)],
    pub unsetenv: &'s [&'static CStr],
    /// The `--binfmt-register` values, as given.
    pub binfmt_rules: &'s [&'static CStr],
    /// `--map-users` and `--map-groups`, in order.
    pub uid_ranges: &'s [Range],
    pub gid_ranges: &'s [Range],
}

impl Request<'_> {
    /// Whether subordinate id ranges are asked for (which implies a user namespace).
    pub fn maps_ranges(&self) -> bool {
        self.settings.map_auto || !self.uid_ranges.is_empty() || !self.gid_ranges.is_empty()
    }
}

/// Where parsing puts what it collects (argv strings are borrowed, never copied).
pub struct Storage {
    ops: FixedVec<Op, MAX_OPS>,
    lowerdirs: FixedVec<&'static CStr, MAX_LOWERDIRS>,
    setenv: FixedVec<(&'static CStr, &'static CStr), MAX_ENV_EDITS>,
    unsetenv: FixedVec<&'static CStr, MAX_ENV_EDITS>,
    binfmt_rules: FixedVec<&'static CStr, MAX_BINFMT_RULES>,
    uid_ranges: Ranges,
    gid_ranges: Ranges,
}

impl Storage {
    pub const fn new() -> Self {
        Self {
            ops: FixedVec::new(),
            lowerdirs: FixedVec::new(),
            setenv: FixedVec::new(),
            unsetenv: FixedVec::new(),
            binfmt_rules: FixedVec::new(),
            uid_ranges: FixedVec::new(),
            gid_ranges: FixedVec::new(),
        }
    }
}

impl Default for Storage {
    fn default() -> Self {
        Self::new()
    }
}

pub const VERSION: &str = "26~devel";

/// Why a command line is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    MissingArgument,
    UnrecognizedOption,
    RelativeDestination,
    /// `--setenv` with an empty NAME or one containing `=`.
    VariableName,
    NotADescriptor,
}

impl Reason for Refusal {
    fn text(self) -> &'static str {
        match self {
            Refusal::MissingArgument => "missing argument",
            Refusal::UnrecognizedOption => "unrecognized option",
            Refusal::RelativeDestination => "destination is not an absolute path",
            Refusal::VariableName => "invalid variable name",
            Refusal::NotADescriptor => "not a file descriptor number",
        }
    }
}

pub fn parse<'s, A: Args + ?Sized>(args: &A, storage: &'s mut Storage) -> Result<Parsed<'s>> {
    let Storage { ops, lowerdirs, setenv, unsetenv, binfmt_rules, uid_ranges, gid_ranges } = storage;
    let mut settings = Settings::default();
    // Pending `--overlay-*` values; reset at each `--overlay`, leftovers ignored.
    let mut lower_start = 0usize;
    let mut upper: Option<&'static CStr> = None;
    let mut work: Option<&'static CStr> = None;
    // Whether any --map-users/--map-groups was given: their storage is not touched otherwise.
    let mut ranges_given = false;

    let count = args.count();
    let mut i = 0;
    while i < count {
        let arg = args.arg(i);
        let name = arg.to_bytes();
        i += 1;
        // Fetches the next value of option `opt`; values are verbatim, even `--` or `-x`.
        let mut value = |opt: &'static str, prev: Option<&'static CStr>| -> Result<&'static CStr> {
            if i < count {
                i += 1;
                Ok(args.arg(i - 1))
            } else {
                Err(Error::invalid(Refusal::MissingArgument).for_option(opt, prev, None))
            }
        };
        match name {
            b"--" => break,
            b"-h" | b"--help" => return Ok(Parsed::Help),
            b"--version" => return Ok(Parsed::Version),
            b"--tmpfs" | b"--dev" | b"--proc" | b"--dir" | b"--binfmt-misc" | b"--overlay" => {
                let opt = option_name(name);
                let dst = value(opt, None)?;
                let kind = match name {
                    b"--tmpfs" => OpKind::Tmpfs,
                    b"--dev" => OpKind::Dev,
                    b"--proc" => OpKind::Proc,
                    b"--dir" => OpKind::Dir,
                    b"--binfmt-misc" => OpKind::BinfmtMisc,
                    _ => {
                        // The last lowerdir given is the top one: store them reversed.
                        let given = lowerdirs.len();
                        let lower_len = given - lower_start;
                        if let Some(these) = lowerdirs.as_mut_slice().get_mut(lower_start..) {
                            these.reverse();
                        }
                        let kind = OpKind::Overlay {
                            lower_start: lower_start as u32,
                            lower_len: lower_len as u32,
                            upper: upper.take(),
                            work: work.take(),
                        };
                        lower_start = given;
                        kind
                    }
                };
                ops.push(Op { kind, src: c"", given: None, dst }).overflow(Limit::Operations)?;
            }
            b"--bind"
            | b"--ro-bind"
            | b"--bind-try"
            | b"--ro-bind-try"
            | b"--bind-nofollow"
            | b"--ro-bind-nofollow" => {
                let opt = option_name(name);
                let src = value(opt, None)?;
                let dst = value(opt, Some(src))?;
                let relative = src.to_bytes().first() == Some(&b'+');
                let stripped = if relative { strip_first(src) } else { src };
                let kind = OpKind::Bind {
                    readonly: name.starts_with(b"--ro"),
                    required: !name.ends_with(b"-try"),
                    relative,
                    follow: !name.ends_with(b"-nofollow"),
                };
                ops.push(Op { kind, src: stripped, given: Some(src), dst }).overflow(Limit::Operations)?;
            }
            b"--symlink" | b"--write" => {
                let opt = option_name(name);
                let src = value(opt, None)?;
                let dst = value(opt, Some(src))?;
                let kind = if name == b"--symlink" { OpKind::Symlink } else { OpKind::Write };
                ops.push(Op { kind, src, given: Some(src), dst }).overflow(Limit::Operations)?;
            }
            b"--overlay-lowerdir" => {
                let dir = value("--overlay-lowerdir", None)?;
                lowerdirs.push(dir).overflow(Limit::Lowerdirs)?;
            }
            b"--overlay-upperdir" => upper = Some(value("--overlay-upperdir", None)?),
            b"--overlay-workdir" => work = Some(value("--overlay-workdir", None)?),
            b"--unsetenv" => {
                let name = value("--unsetenv", None)?;
                unsetenv.push(name).overflow(Limit::Unsetenv)?;
            }
            b"--setenv" => {
                let key = value("--setenv", None)?;
                let val = value("--setenv", Some(key))?;
                if key.to_bytes().is_empty() || key.to_bytes().contains(&b'=') {
                    return Err(Error::invalid(Refusal::VariableName).for_option("--setenv", Some(key), None));
                }
                setenv.push((key, val)).overflow(Limit::Setenv)?;
            }
            b"--binfmt-register" => {
                let rule = value("--binfmt-register", None)?;
                binfmt_rules.push(rule).overflow(Limit::BinfmtRules)?;
                settings.binfmt_register = true;
            }
            // An empty DIR means "stay" (the original tests it for truth), also after --same-dir.
            b"--chdir" => settings.chdir = Some(value("--chdir", None)?).filter(|d| !d.is_empty()).map(Chdir::Path),
            b"--same-dir" => settings.chdir = Some(Chdir::SameDir),
            b"--exec-fd" => {
                let fd = value("--exec-fd", None)?;
                match decimal::parse(fd.to_bytes()) {
                    Some(n) => settings.exec_fd = Some(n as i32),
                    None => {
                        return Err(Error::invalid(Refusal::NotADescriptor).for_option("--exec-fd", Some(fd), None));
                    }
                }
            }
            b"--become-root" => settings.become_root = true,
            b"--suppress-chown" => settings.suppress_chown = true,
            b"--suppress-sync" => settings.suppress_sync = true,
            b"--unshare-net" => settings.unshare_net = true,
            b"--unshare-ipc" => settings.unshare_ipc = true,
            b"--suspend" => settings.suspend = true,
            b"--pack-fds" => settings.pack_fds = true,
            b"--debug" => settings.debug = true,
            b"--map-users" | b"--map-groups" => {
                let (opt, ranges, limit) = if name == b"--map-users" {
                    ("--map-users", &mut *uid_ranges, Limit::MapUsers)
                } else {
                    ("--map-groups", &mut *gid_ranges, Limit::MapGroups)
                };
                let range = subid::parse_range(opt, value(opt, None)?)?;
                ranges.push(range).map_err(|_| Error::capacity(limit, MAX_RANGES))?;
                ranges_given = true;
            }
            b"--map-auto" => settings.map_auto = true,
            // mkosi 27's foreign-UID options: see `foreign_uid` for what is accepted and what is not.
            b"--map-foreign" => settings.map_foreign = true,
            b"--map-delegate" => crate::foreign_uid::map_delegate(value("--map-delegate", None)?)?,
            b"--bind-foreign" | b"--ro-bind-foreign" => {
                let opt = if name == b"--bind-foreign" { "--bind-foreign" } else { "--ro-bind-foreign" };
                let src = value(opt, None)?;
                return Err(crate::foreign_uid::bind_foreign(opt, src, value(opt, Some(src))?));
            }
            b"--unshare-pid" => settings.unshare_pid = true,
            b"--die-with-parent" => settings.die_with_parent = true,
            _ if name.first() == Some(&b'-') => {
                return Err(Error::invalid(Refusal::UnrecognizedOption).for_argument(arg));
            }
            _ => {
                i -= 1;
                break;
            }
        }
    }
    settings.command = i;

    for op in ops.iter() {
        if op.dst.to_bytes().first() != Some(&b'/') {
            return Err(op.blame(Error::invalid(Refusal::RelativeDestination)));
        }
    }
    Ok(Parsed::Run(Request {
        settings,
        ops: ops.as_slice(),
        lowerdirs: lowerdirs.as_slice(),
        setenv: setenv.as_slice(),
        unsetenv: unsetenv.as_slice(),
        // Not touched unless given: its storage costs a page fault otherwise.
        binfmt_rules: if settings.binfmt_register { binfmt_rules.as_slice() } else { &[] },
        // The same for the ranges.
        uid_ranges: if ranges_given { uid_ranges.as_slice() } else { &[] },
        gid_ranges: if ranges_given { gid_ranges.as_slice() } else { &[] },
    }))
}

fn option_name(name: &[u8]) -> &'static str {
    match name {
        b"--tmpfs" => "--tmpfs",
        b"--dev" => "--dev",
        b"--proc" => "--proc",
        b"--dir" => "--dir",
        b"--binfmt-misc" => "--binfmt-misc",
        b"--overlay" => "--overlay",
        b"--bind" => "--bind",
        b"--ro-bind" => "--ro-bind",
        b"--bind-try" => "--bind-try",
        b"--ro-bind-try" => "--ro-bind-try",
        b"--bind-nofollow" => "--bind-nofollow",
        b"--ro-bind-nofollow" => "--ro-bind-nofollow",
        b"--symlink" => "--symlink",
        _ => "--write",
    }
}

/// `s` without its first byte (the `+` of a relative bind source).
fn strip_first(s: &'static CStr) -> &'static CStr {
    let bytes = s.to_bytes_with_nul();
    CStr::from_bytes_with_nul(&bytes[1..]).unwrap_or(c"")
}

/// The help text of the original, with `--pack-fds`, `--exec-fd`, our capacities and the build
/// (embedded by build.rs) added.
pub fn help(highlight: bool) -> [&'static str; 6] {
    let (on, off) = if highlight { ("\x1b[0;1;39m", "\x1b[0m") } else { ("", "") };
    [HELP_HEAD, on, off, HELP_BODY, BUILD, "\n"]
}

const BUILD: &str =
    concat!("Build: mkosi-sandbox ", env!("CARGO_PKG_VERSION"), " (", env!("MKOSI_SANDBOX_COMMIT"), ")");

const HELP_HEAD: &str = "mkosi-sandbox [OPTIONS...] COMMAND [ARGUMENTS...]\n\n";

pub const HELP_BODY: &str = "Run the specified command in a custom sandbox.

  -h --help                      Show this help
     --version                   Show package version
     --tmpfs DST                 Mount a new tmpfs on DST
     --dev DST                   Mount dev on DST
     --proc DST                  Mount procfs on DST
     --dir DST                   Create a new directory at DST
     --bind SRC DST              Bind mount the host path SRC to DST
     --bind-try SRC DST          Bind mount the host path SRC to DST if it exists
     --ro-bind SRC DST           Bind mount the host path SRC to DST read-only
     --ro-bind-try SRC DST       Bind mount the host path SRC to DST read-only if it exists
     --bind-nofollow SRC DST     Like --bind, but a symlink SRC is bound as the link itself
     --ro-bind-nofollow SRC DST  Like --ro-bind, but a symlink SRC is bound as the link itself
     --symlink SRC DST           Create a symlink at DST pointing to SRC
     --write DATA DST            Write DATA to DST
     --overlay-lowerdir DIR      Add a lower directory for the next overlayfs mount
     --overlay-upperdir DIR      Set the upper directory for the next overlayfs mount
     --overlay-workdir DIR       Set the working directory for the next overlayfs mount
     --overlay DST               Mount an overlay filesystem at DST
     --unsetenv NAME             Unset the environment variable with name NAME
     --setenv NAME VALUE         Set the environment variable with name NAME to VALUE
     --chdir DIR                 Change the working directory in the sandbox to DIR
     --same-dir                  Change the working directory in the sandbox to $PWD
     --become-root               Map the current user/group to root:root in the sandbox
     --suppress-chown            Make chown() syscalls in the sandbox a noop
     --suppress-sync             Make sync() syscalls in the sandbox a noop
     --unshare-net               Unshare the network namespace if possible
     --unshare-ipc               Unshare the IPC namespace if possible
     --unshare-pid               Unshare the PID namespace; an init reaps orphans, forwards
                                 signals and kills what is left when the command exits
     --die-with-parent           Kill the sandbox and its command when the caller dies
     --suspend                   Stop process before execve()
     --pack-fds                  Pack inherited fds from 3 up and set LISTEN_FDS/LISTEN_PID
     --exec-fd FD                Make FD close-on-exec right before execve() (mkosi 25)
     --debug                     Print each filesystem operation as it runs
     --binfmt-misc DST           Mount binfmt_misc on DST (with a user namespace, the
                                 sandbox's own instance: Linux >= 6.7)
     --binfmt-register RULE      Register an emulator in the sandbox's own binfmt_misc,
                                 never the host's: RULE is a register line
                                 (:name:type:offset:magic:mask:interpreter:flags) or a
                                 binfmt.d file, e.g. /usr/lib/binfmt.d/qemu-aarch64.conf;
                                 the host's interpreter is used (flag F). Needs Linux
                                 >= 6.7 and a user namespace with its root user mapped:
                                 a regular user with --become-root, or id ranges that
                                 map inside 0 (root's sandbox has no user namespace
                                 without ranges)
     --map-users INNER:OUTER:COUNT
                                 Also map COUNT users from OUTER on the host to INNER in the
                                 sandbox (repeatable; needs newuidmap unless run as root)
     --map-groups INNER:OUTER:COUNT
                                 The same for groups (newgidmap)
     --map-auto                  Map the caller's first /etc/subuid and /etc/subgid ranges as
                                 unshare --map-auto does (0.. with --become-root, around the
                                 caller's own id without)
     --map-foreign               Map the foreign UID range (as root: already mapped, nothing to do)
     --map-delegate N            Delegate N 64K UID ranges (only 0: more needs systemd-nsresourced)
     --bind-foreign SRC DST      Refused: needs systemd-mountfsd and systemd-nsresourced
     --ro-bind-foreign SRC DST   Refused: needs systemd-mountfsd and systemd-nsresourced

Limits: 8192 operations, 1024 --overlay-lowerdir, 1024 --setenv and --unsetenv each,
4096 environment entries, 4096 --pack-fds descriptors, 256 --binfmt-register rules,
340 lines per uid and gid map, 6 MiB of derived strings.

Example: pmbootstrap's layout (the caller is root inside; 12345 is its build user):
  mkosi-sandbox --become-root --map-users 1:100000:9999 --map-users 12345:110000:1 \\
    --map-users 10000:120000:1 --map-groups 1:100000:9999 --map-groups 12345:110000:1 \\
    --map-groups 10000:120000:1 ...

See the mkosi-sandbox(1) man page for details.
";

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::ffi::CString;

    pub(crate) fn leak(args: &[&str]) -> Vec<&'static CStr> {
        args.iter().map(|a| &*Box::leak(CString::new(*a).unwrap().into_boxed_c_str())).collect()
    }

    /// Parser storage on the heap, for tests.
    pub(crate) struct Store(pub Box<Storage>);

    impl Store {
        pub fn new() -> Self {
            Store(Box::default())
        }
        pub fn parse(&mut self, args: &[&str]) -> Result<Parsed<'_>> {
            parse(&leak(args)[..], &mut self.0)
        }
        /// The request, for tests that expect the command line to parse.
        pub fn request(&mut self, args: &[&str]) -> Request<'_> {
            match self.parse(args) {
                Ok(Parsed::Run(request)) => request,
                other => panic!("{args:?}: {other:?}"),
            }
        }
    }

    fn settings(p: Result<Parsed<'_>>) -> Settings {
        match p {
            Ok(Parsed::Run(r)) => r.settings,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn options_take_values_verbatim_and_stop_at_the_command() {
        let mut s = Store::new();
        let st = settings(s.parse(&["--bind", "--", "/x", "--setenv", "A", "-v", "ls", "--tmpfs", "/t"]));
        assert_eq!(st.command, 6);
        let op = s.0.ops.get(0).unwrap();
        assert_eq!(op.src.to_bytes(), b"--");
        assert_eq!(s.0.setenv.get(0).unwrap().1.to_bytes(), b"-v");
        assert_eq!(s.0.ops.len(), 1);
    }

    #[test]
    fn double_dash_ends_options_and_default_command_is_bash() {
        let mut s = Store::new();
        let st = settings(s.parse(&["--dir", "/a", "--", "--tmpfs"]));
        assert_eq!(st.command, 3);
        let st = settings(Store::new().parse(&["--dir", "/a"]));
        assert_eq!(st.command, 2);
    }

    #[test]
    fn bind_flags_and_relative_source() {
        let mut s = Store::new();
        settings(s.parse(&["--ro-bind-try", "+/buildroot/x", "/x", "--bind", "/a", "/b"]));
        let op = s.0.ops.get(0).unwrap();
        assert_eq!(op.kind, OpKind::Bind { readonly: true, required: false, relative: true, follow: true });
        assert_eq!(op.src.to_bytes(), b"/buildroot/x");
        assert_eq!(op.given.unwrap().to_bytes(), b"+/buildroot/x");
        assert_eq!(op.option(), "--ro-bind-try");
        assert_eq!(
            s.0.ops.get(1).unwrap().kind,
            OpKind::Bind { readonly: false, required: true, relative: false, follow: true }
        );
        let mut s = Store::new();
        settings(s.parse(&[
            "--ro-bind-nofollow",
            "/etc/resolv.conf",
            "/etc/resolv.conf",
            "--bind-nofollow",
            "/a",
            "/b",
        ]));
        let op = s.0.ops.get(0).unwrap();
        assert_eq!(op.kind, OpKind::Bind { readonly: true, required: true, relative: false, follow: false });
        assert_eq!(op.option(), "--ro-bind-nofollow");
        assert_eq!(s.0.ops.get(1).unwrap().option(), "--bind-nofollow");
    }

    #[test]
    fn overlay_lowerdirs_are_reversed_and_reset() {
        let mut s = Store::new();
        settings(s.parse(&[
            "--overlay-lowerdir",
            "/l1",
            "--overlay-lowerdir",
            "/l2",
            "--overlay-lowerdir",
            "/l3",
            "--overlay-upperdir",
            "tmpfs",
            "--overlay",
            "/o",
            "--overlay-lowerdir",
            "/m1",
            "--overlay",
            "/p",
            "--overlay-lowerdir",
            "/left-over",
        ]));
        match s.0.ops.get(0).unwrap().kind {
            OpKind::Overlay { lower_start: 0, lower_len: 3, upper: Some(u), work: None } => {
                assert_eq!(u.to_bytes(), b"tmpfs")
            }
            k => panic!("{k:?}"),
        }
        let lowers: Vec<_> = s.0.lowerdirs.iter().map(|c| c.to_str().unwrap()).collect();
        assert_eq!(&lowers[..4], ["/l3", "/l2", "/l1", "/m1"]);
        assert_eq!(
            s.0.ops.get(1).unwrap().kind,
            OpKind::Overlay { lower_start: 3, lower_len: 1, upper: None, work: None }
        );
    }

    #[test]
    fn last_of_chdir_and_same_dir_wins() {
        let st = settings(Store::new().parse(&["--chdir", "rel", "--same-dir"]));
        assert_eq!(st.chdir, Some(Chdir::SameDir));
        let st = settings(Store::new().parse(&["--same-dir", "--chdir", ""]));
        assert_eq!(st.chdir, None);
        let st = settings(Store::new().parse(&["--same-dir", "--chdir", "rel"]));
        assert!(matches!(st.chdir, Some(Chdir::Path(p)) if p.to_bytes() == b"rel"));
    }

    #[test]
    fn flags() {
        let st = settings(Store::new().parse(&[
            "--become-root",
            "--suppress-chown",
            "--suppress-sync",
            "--unshare-net",
            "--unshare-ipc",
            "--suspend",
            "--pack-fds",
            "--exec-fd",
            "7",
            "--debug",
            "--unshare-pid",
            "--die-with-parent",
            "true",
        ]));
        assert!(st.become_root && st.suppress_chown && st.suppress_sync && st.unshare_net);
        assert!(st.unshare_ipc && st.suspend && st.pack_fds);
        assert_eq!(st.exec_fd, Some(7));
        assert!(st.debug && st.unshare_pid && st.die_with_parent);
    }

    #[test]
    fn id_ranges_are_collected_in_order_and_imply_a_user_namespace() {
        let mut s = Store::new();
        let r =
            s.request(&["--map-users", "1:100000:10", "--map-groups", "5:7:1", "--map-users", "20:200000:3", "true"]);
        let uids: Vec<_> =
            r.uid_ranges.iter().map(|r| (r.inner, r.outer, r.count, r.given.to_str().unwrap())).collect();
        assert_eq!(uids, [(1, 100000, 10, "1:100000:10"), (20, 200000, 3, "20:200000:3")]);
        assert_eq!(r.gid_ranges.len(), 1);
        assert!(r.maps_ranges() && !r.settings.map_auto);
        let mut s = Store::new();
        let r = s.request(&["--map-auto"]);
        assert!(r.maps_ranges() && r.settings.map_auto && r.uid_ranges.is_empty());
        let mut s = Store::new();
        assert!(!s.request(&["--become-root"]).maps_ranges());
    }

    #[test]
    fn mkosi_27_foreign_options() {
        let mut s = Store::new();
        let st = settings(s.parse(&["--map-foreign", "--map-delegate", "0", "--dir", "/a", "true"]));
        assert!(st.map_foreign);
        assert_eq!((st.command, s.0.ops.len()), (5, 1));
        assert!(!settings(Store::new().parse(&["true"])).map_foreign);
        let refused = message(Store::new().parse(&["--bind-foreign", "/a", "/b", "true"]));
        assert!(refused.starts_with("mkosi-sandbox: --bind-foreign /a /b: needs systemd-mountfsd"), "{refused}");
        let refused = message(Store::new().parse(&["--map-delegate", "1"]));
        assert!(refused.starts_with("mkosi-sandbox: --map-delegate 1: needs systemd-nsresourced"), "{refused}");
        assert_eq!(
            message(Store::new().parse(&["--ro-bind-foreign", "/a"])),
            "mkosi-sandbox: --ro-bind-foreign /a: missing argument\n"
        );
        assert_eq!(
            message(Store::new().parse(&["--map-delegate"])),
            "mkosi-sandbox: --map-delegate: missing argument\n"
        );
    }

    #[test]
    fn help_and_version_win_over_later_errors() {
        assert_eq!(Store::new().parse(&["--tmpfs", "rel", "--help"]), Ok(Parsed::Help));
        assert_eq!(Store::new().parse(&["-h", "--nope"]), Ok(Parsed::Help));
        assert_eq!(Store::new().parse(&["--version"]), Ok(Parsed::Version));
    }

    fn message(r: Result<Parsed<'_>>) -> String {
        let mut line = Line::new();
        r.unwrap_err().render(&mut line);
        String::from_utf8(line.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn bad_input_gives_one_line() {
        assert_eq!(message(Store::new().parse(&["--bind", "/x"])), "mkosi-sandbox: --bind /x: missing argument\n");
        assert_eq!(message(Store::new().parse(&["--tmpfs"])), "mkosi-sandbox: --tmpfs: missing argument\n");
        assert_eq!(message(Store::new().parse(&["-x"])), "mkosi-sandbox: -x: unrecognized option\n");
        assert_eq!(
            message(Store::new().parse(&["--ro-bind", "/usr", "usr"])),
            "mkosi-sandbox: --ro-bind /usr usr: destination is not an absolute path\n"
        );
        assert_eq!(
            message(Store::new().parse(&["--dir", ""])),
            "mkosi-sandbox: --dir : destination is not an absolute path\n"
        );
        assert_eq!(
            message(Store::new().parse(&["--exec-fd", "x"])),
            "mkosi-sandbox: --exec-fd x: not a file descriptor number\n"
        );
    }

    #[test]
    fn too_many_operations_is_a_clean_error() {
        let mut args = Vec::new();
        for _ in 0..=MAX_OPS {
            args.push("--dir");
            args.push("/a");
        }
        assert_eq!(message(Store::new().parse(&args)), format!("mkosi-sandbox: too many operations (max {MAX_OPS})\n"));
    }
}
