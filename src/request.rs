//! What a command line asks for, as the later stages read it: the filesystem operations in
//! order ([`Op`]), the [`Settings`], and the [`Request`] that holds them with the other
//! collected values. `cli` builds them; nothing here parses.

use core::ffi::CStr;

use crate::error::Error;
use crate::line::Line;
use crate::options::Spec;
use crate::subid::Range;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpKind {
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
pub(crate) struct Op {
    pub(crate) kind: OpKind,
    /// Bind source without its `+`, symlink target or data; empty for the others.
    pub(crate) src: &'static CStr,
    /// The first argument exactly as given (bind SRC with its `+`), for messages.
    pub(crate) given: Option<&'static CStr>,
    pub(crate) dst: &'static CStr,
    /// The option, from the table.
    pub(crate) made_by: &'static Spec,
}

impl Op {
    /// The option that made this operation, for messages.
    pub(crate) fn option(&self) -> &'static str {
        self.made_by.name
    }

    pub(crate) fn is_bind(&self) -> bool {
        matches!(self.kind, OpKind::Bind { .. })
    }

    pub(crate) fn is_relative(&self) -> bool {
        matches!(self.kind, OpKind::Bind { relative: true, .. })
    }

    /// One line for `--debug`: the option and its arguments as given.
    pub(crate) fn describe(&self, out: &mut Line) {
        out.push(b"mkosi-sandbox: ");
        out.push(self.option().as_bytes());
        for arg in [self.given, Some(self.dst)].into_iter().flatten() {
            out.push(b" ");
            out.push_value(arg.to_bytes());
        }
        out.end_line();
    }

    /// Attaches this operation as the subject of an error.
    pub(crate) fn blame(&self, error: Error) -> Error {
        error.for_option(self.option(), self.given, Some(self.dst))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chdir {
    Path(&'static CStr),
    /// `--same-dir`: the caller's working directory.
    SameDir,
}

/// Everything parsed besides the operations (which go into the arena).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Settings {
    pub(crate) become_root: bool,
    pub(crate) suppress_chown: bool,
    pub(crate) suppress_sync: bool,
    pub(crate) unshare_net: bool,
    pub(crate) unshare_ipc: bool,
    pub(crate) suspend: bool,
    pub(crate) pack_fds: bool,
    pub(crate) chdir: Option<Chdir>,
    /// `--exec-fd N` (mkosi 25.x): made close-on-exec right before exec.
    pub(crate) exec_fd: Option<i32>,
    /// `--debug` (newer mkosi): print each filesystem operation as it runs.
    pub(crate) debug: bool,
    /// `--unshare-pid`: a new PID namespace whose init is this program (see `pidns`).
    pub(crate) unshare_pid: bool,
    /// `--die-with-parent`: SIGKILL when the caller dies.
    pub(crate) die_with_parent: bool,
    /// Any `--binfmt-register` (the rules are [`Request::binfmt_rules`]).
    pub(crate) binfmt_register: bool,
    /// `--map-auto`: map the caller's first subordinate uid and gid ranges.
    pub(crate) map_auto: bool,
    /// `--map-foreign` (mkosi 27): nothing to do when privileged, checked in `foreign_uid`.
    pub(crate) map_foreign: bool,
    /// Index of the command's first argument; equal to the argument count for the default `bash`.
    pub(crate) command: usize,
}

/// A sandbox to run: the settings and, in command-line order, what was collected into
/// `cli::Storage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Request<'s> {
    pub(crate) settings: Settings,
    pub(crate) ops: &'s [Op],
    /// The `--overlay-lowerdir` values; each `OpKind::Overlay` names its range, top first.
    pub(crate) lowerdirs: &'s [&'static CStr],
    pub(crate) setenv: &'s [(&'static CStr, &'static CStr)],
    pub(crate) unsetenv: &'s [&'static CStr],
    /// The `--binfmt-register` values, as given.
    pub(crate) binfmt_rules: &'s [&'static CStr],
    /// `--map-users` and `--map-groups`, in order.
    pub(crate) uid_ranges: &'s [Range],
    pub(crate) gid_ranges: &'s [Range],
}

impl Request<'_> {
    /// Whether subordinate id ranges are asked for (which implies a user namespace).
    pub(crate) fn maps_ranges(&self) -> bool {
        self.settings.map_auto || !self.uid_ranges.is_empty() || !self.gid_ranges.is_empty()
    }
}
