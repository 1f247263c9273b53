//! Argument parsing: argv, in order, into filesystem operations and settings ([`Request`]).
//! Values are taken verbatim and borrowed from argv; parsing stops at `--` or at the first
//! argument that is not an option, which starts the command (default `bash`).
//!
//! Options are looked up in the one table, [`options::OPTIONS`], which also says how many
//! arguments each takes and what it builds; [`parse`] turns that into a [`Request`]. A new option:
//! a row in the table and, for something new to build, a [`Settings`] field or a new [`OpKind`]
//! (an operation on the sandbox's filesystem: also its syscalls in `mounts::execute`).

use core::ffi::CStr;

use crate::containers::FixedVec;
use crate::decimal;
use crate::error::{Error, Limit, Overflow, Reason, Result};
use crate::options::{self, Builds, Flag};
use crate::request::{Chdir, Op, OpKind, Request, Settings};
use crate::subid::{self, MAX_RANGES, Ranges};

/// Filesystem operations (`--bind`, `--dir`, ...). mkosi's largest calls carry a few hundred.
pub(crate) const MAX_OPS: usize = 8192;
/// `--overlay-lowerdir` entries over the whole command line.
pub(crate) const MAX_LOWERDIRS: usize = 1024;
/// `--setenv` and `--unsetenv` entries each.
pub(crate) const MAX_ENV_EDITS: usize = 1024;
/// `--binfmt-register` arguments.
pub(crate) const MAX_BINFMT_RULES: usize = 256;

/// Read access to the process's arguments (argv without `argv[0]`).
pub(crate) trait Args {
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

/// What the command line asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Parsed<'s> {
    Run(Request<'s>),
    Help,
    Version,
}

/// Where parsing puts what it collects (argv strings are borrowed, never copied).
pub(crate) struct Storage {
    ops: FixedVec<Op, MAX_OPS>,
    lowerdirs: FixedVec<&'static CStr, MAX_LOWERDIRS>,
    setenv: FixedVec<(&'static CStr, &'static CStr), MAX_ENV_EDITS>,
    unsetenv: FixedVec<&'static CStr, MAX_ENV_EDITS>,
    binfmt_rules: FixedVec<&'static CStr, MAX_BINFMT_RULES>,
    uid_ranges: Ranges,
    gid_ranges: Ranges,
}

impl Storage {
    pub(crate) const fn new() -> Self {
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

pub(crate) const VERSION: &str = "26~devel";

/// Why a command line is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
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

pub(crate) fn parse<'s, A: Args + ?Sized>(args: &A, storage: &'s mut Storage) -> Result<Parsed<'s>> {
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
        let Some(spec) = options::find(name) else {
            if name == b"--" {
                i += 1;
            } else if name.first() == Some(&b'-') {
                return Err(Error::invalid(Refusal::UnrecognizedOption).for_argument(arg));
            }
            break;
        };
        i += 1;
        // The option's arguments, verbatim (even `--` or `-x`).
        let mut value = |prev: Option<&'static CStr>| -> Result<&'static CStr> {
            if i < count {
                i += 1;
                Ok(args.arg(i - 1))
            } else {
                Err(Error::invalid(Refusal::MissingArgument).for_option(spec.name, prev, None))
            }
        };
        let first = if spec.arity >= 1 { value(None)? } else { c"" };
        let second = if spec.arity >= 2 { value(Some(first))? } else { c"" };
        let mut push = |kind: OpKind, src: &'static CStr, given: Option<&'static CStr>, dst: &'static CStr| {
            ops.push(Op { kind, src, given, dst, made_by: spec }).overflow(Limit::Operations).map(drop)
        };
        match spec.builds {
            Builds::Help => return Ok(Parsed::Help),
            Builds::Version => return Ok(Parsed::Version),
            Builds::Tmpfs => push(OpKind::Tmpfs, c"", None, first)?,
            Builds::Dev => push(OpKind::Dev, c"", None, first)?,
            Builds::Proc => push(OpKind::Proc, c"", None, first)?,
            Builds::Dir => push(OpKind::Dir, c"", None, first)?,
            Builds::BinfmtMisc => push(OpKind::BinfmtMisc, c"", None, first)?,
            Builds::Overlay => {
                // The last lowerdir given is the top one: store them reversed.
                let given = lowerdirs.len();
                if let Some(these) = lowerdirs.as_mut_slice().get_mut(lower_start..) {
                    these.reverse();
                }
                let kind = OpKind::Overlay {
                    lower_start: lower_start as u32,
                    lower_len: (given - lower_start) as u32,
                    upper: upper.take(),
                    work: work.take(),
                };
                lower_start = given;
                push(kind, c"", None, first)?;
            }
            Builds::Bind { readonly, required, follow } => {
                let relative = first.to_bytes().first() == Some(&b'+');
                let src = if relative { strip_first(first) } else { first };
                push(OpKind::Bind { readonly, required, relative, follow }, src, Some(first), second)?;
            }
            Builds::Symlink => push(OpKind::Symlink, first, Some(first), second)?,
            Builds::Write => push(OpKind::Write, first, Some(first), second)?,
            Builds::OverlayLowerdir => {
                lowerdirs.push(first).overflow(Limit::Lowerdirs)?;
            }
            Builds::OverlayUpperdir => upper = Some(first),
            Builds::OverlayWorkdir => work = Some(first),
            Builds::Unsetenv => {
                unsetenv.push(first).overflow(Limit::Unsetenv)?;
            }
            Builds::Setenv => {
                if first.is_empty() || first.to_bytes().contains(&b'=') {
                    return Err(Error::invalid(Refusal::VariableName).for_option(spec.name, Some(first), None));
                }
                setenv.push((first, second)).overflow(Limit::Setenv)?;
            }
            Builds::BinfmtRegister => {
                binfmt_rules.push(first).overflow(Limit::BinfmtRules)?;
                settings.binfmt_register = true;
            }
            // An empty DIR means "stay" (the original tests it for truth), also after --same-dir.
            Builds::Chdir => settings.chdir = Some(first).filter(|d| !d.is_empty()).map(Chdir::Path),
            Builds::SameDir => settings.chdir = Some(Chdir::SameDir),
            Builds::ExecFd => match decimal::parse(first.to_bytes()) {
                Some(n) => settings.exec_fd = Some(n as i32),
                None => return Err(Error::invalid(Refusal::NotADescriptor).for_option(spec.name, Some(first), None)),
            },
            Builds::Flag(flag) => switch_on(&mut settings, flag),
            Builds::MapUsers | Builds::MapGroups => {
                let (ranges, limit) = if spec.builds == Builds::MapUsers {
                    (&mut *uid_ranges, Limit::MapUsers)
                } else {
                    (&mut *gid_ranges, Limit::MapGroups)
                };
                let range = subid::parse_range(spec.name, first)?;
                ranges.push(range).map_err(|_| Error::capacity(limit, MAX_RANGES))?;
                ranges_given = true;
            }
            // mkosi 27's foreign-UID options: see `foreign_uid` for what is accepted and what is not.
            Builds::MapDelegate => crate::foreign_uid::map_delegate(first)?,
            Builds::BindForeign => return Err(crate::foreign_uid::bind_foreign(spec.name, first, second)),
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

fn switch_on(settings: &mut Settings, flag: Flag) {
    let setting = match flag {
        Flag::BecomeRoot => &mut settings.become_root,
        Flag::SuppressChown => &mut settings.suppress_chown,
        Flag::SuppressSync => &mut settings.suppress_sync,
        Flag::UnshareNet => &mut settings.unshare_net,
        Flag::UnshareIpc => &mut settings.unshare_ipc,
        Flag::UnsharePid => &mut settings.unshare_pid,
        Flag::DieWithParent => &mut settings.die_with_parent,
        Flag::Suspend => &mut settings.suspend,
        Flag::PackFds => &mut settings.pack_fds,
        Flag::Debug => &mut settings.debug,
        Flag::MapAuto => &mut settings.map_auto,
        Flag::MapForeign => &mut settings.map_foreign,
    };
    *setting = true;
}

/// `s` without its first byte (the `+` of a relative bind source).
fn strip_first(s: &'static CStr) -> &'static CStr {
    let bytes = s.to_bytes_with_nul();
    CStr::from_bytes_with_nul(&bytes[1..]).unwrap_or(c"")
}

/// The help text of the original, with our options, capacities and the build (embedded by
/// build.rs) added; on a terminal its one-line summary is highlighted, as there.
pub(crate) fn help(highlight: bool) -> [&'static str; 9] {
    let (on, off) = if highlight { ("\x1b[0;1;39m", "\x1b[0m") } else { ("", "") };
    [HELP_HEAD, on, HELP_PURPOSE, off, "\n\n", options::HELP, HELP_TAIL, BUILD, "\n"]
}

const BUILD: &str =
    concat!("Build: mkosi-sandbox ", env!("CARGO_PKG_VERSION"), " (", env!("MKOSI_SANDBOX_COMMIT"), ")");

const HELP_HEAD: &str = "mkosi-sandbox [OPTIONS...] COMMAND [ARGUMENTS...]\n\n";

const HELP_PURPOSE: &str = "Run the specified command in a custom sandbox.";

const HELP_TAIL: &str = "
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
    use crate::line::Line;
    use std::ffi::CString;

    pub(crate) fn leak(args: &[&str]) -> Vec<&'static CStr> {
        args.iter().map(|a| &*Box::leak(CString::new(*a).unwrap().into_boxed_c_str())).collect()
    }

    /// Parser storage on the heap, for tests.
    pub(crate) struct Store(pub(crate) Box<Storage>);

    impl Store {
        pub(crate) fn new() -> Self {
            Store(Box::default())
        }
        pub(crate) fn parse(&mut self, args: &[&str]) -> Result<Parsed<'_>> {
            parse(&leak(args)[..], &mut self.0)
        }
        /// The request, for tests that expect the command line to parse.
        pub(crate) fn request(&mut self, args: &[&str]) -> Request<'_> {
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
    fn help_highlights_its_summary_as_the_original_does() {
        let text = |highlight| help(highlight).concat();
        assert!(text(true).starts_with(
            "mkosi-sandbox [OPTIONS...] COMMAND [ARGUMENTS...]\n\n\
             \x1b[0;1;39mRun the specified command in a custom sandbox.\x1b[0m\n\n  -h --help "
        ));
        assert_eq!(text(true).replace("\x1b[0;1;39m", "").replace("\x1b[0m", ""), text(false));
        assert!(!text(false).contains('\x1b'));
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
