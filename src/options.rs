//! The one table of options: each option's name, arguments, help line and what it builds. The
//! parser (`cli`) looks names up here, `--help` is rendered from it at compile time, an operation
//! names its option through it (`request::Op::option`), and `tests/docs.rs` checks the man page
//! and the bash completion against it.
//!
//! A new option: a row in [`OPTIONS`] (in `--help`'s order) and, for a new kind of thing to
//! build, a [`Builds`] variant that `cli::parse` turns into a request.

/// What an option builds: a filesystem operation, a setting, or an answer of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Builds {
    Help,
    Version,
    /// Operations on DST (the last argument).
    Tmpfs,
    Dev,
    Proc,
    Dir,
    BinfmtMisc,
    Overlay,
    /// `--[ro-]bind[-try]`, `--[ro-]bind-nofollow SRC DST`.
    Bind {
        readonly: bool,
        required: bool,
        follow: bool,
    },
    Symlink,
    Write,
    /// Collected for the next `--overlay`.
    OverlayLowerdir,
    OverlayUpperdir,
    OverlayWorkdir,
    Unsetenv,
    Setenv,
    BinfmtRegister,
    Chdir,
    SameDir,
    ExecFd,
    /// A setting that is on or off.
    Flag(Flag),
    MapUsers,
    MapGroups,
    MapDelegate,
    /// `--[ro-]bind-foreign SRC DST`: refused (see `foreign_uid`).
    BindForeign,
}

/// The settings that an option without arguments switches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flag {
    BecomeRoot,
    SuppressChown,
    SuppressSync,
    UnshareNet,
    UnshareIpc,
    UnsharePid,
    DieWithParent,
    Suspend,
    PackFds,
    Debug,
    MapAuto,
    MapForeign,
}

/// One option.
#[derive(Debug, PartialEq, Eq)]
pub struct Spec {
    pub name: &'static str,
    /// Another name (`-h`), or empty.
    pub(crate) short: &'static str,
    /// The arguments as `--help` names them (`SRC DST`), empty for none.
    pub(crate) args: &'static str,
    /// How many arguments follow (the words of `args`).
    pub arity: u8,
    /// `--help`'s text, its lines separated by `\n`.
    pub(crate) help: &'static str,
    pub(crate) builds: Builds,
}

const fn words(s: &str) -> u8 {
    let bytes = s.as_bytes();
    let mut count = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b' ' && (i == 0 || bytes[i - 1] == b' ') {
            count += 1;
        }
        i += 1;
    }
    count
}

const fn opt(name: &'static str, args: &'static str, builds: Builds, help: &'static str) -> Spec {
    Spec { name, short: "", args, arity: words(args), help, builds }
}

const fn flag(name: &'static str, flag: Flag, help: &'static str) -> Spec {
    opt(name, "", Builds::Flag(flag), help)
}

const fn bind(name: &'static str, readonly: bool, required: bool, follow: bool, help: &'static str) -> Spec {
    opt(name, "SRC DST", Builds::Bind { readonly, required, follow }, help)
}

/// Every option, in `--help`'s order.
pub static OPTIONS: [Spec; 42] = [
    Spec { short: "-h", ..opt("--help", "", Builds::Help, "Show this help") },
    opt("--version", "", Builds::Version, "Show package version"),
    opt("--tmpfs", "DST", Builds::Tmpfs, "Mount a new tmpfs on DST"),
    opt("--dev", "DST", Builds::Dev, "Mount dev on DST"),
    opt("--proc", "DST", Builds::Proc, "Mount procfs on DST"),
    opt("--dir", "DST", Builds::Dir, "Create a new directory at DST"),
    bind("--bind", false, true, true, "Bind mount the host path SRC to DST"),
    bind("--bind-try", false, false, true, "Bind mount the host path SRC to DST if it exists"),
    bind("--ro-bind", true, true, true, "Bind mount the host path SRC to DST read-only"),
    bind("--ro-bind-try", true, false, true, "Bind mount the host path SRC to DST read-only if it exists"),
    bind("--bind-nofollow", false, true, false, "Like --bind, but a symlink SRC is bound as the link itself"),
    bind("--ro-bind-nofollow", true, true, false, "Like --ro-bind, but a symlink SRC is bound as the link itself"),
    opt("--symlink", "SRC DST", Builds::Symlink, "Create a symlink at DST pointing to SRC"),
    opt("--write", "DATA DST", Builds::Write, "Write DATA to DST"),
    opt("--overlay-lowerdir", "DIR", Builds::OverlayLowerdir, "Add a lower directory for the next overlayfs mount"),
    opt("--overlay-upperdir", "DIR", Builds::OverlayUpperdir, "Set the upper directory for the next overlayfs mount"),
    opt("--overlay-workdir", "DIR", Builds::OverlayWorkdir, "Set the working directory for the next overlayfs mount"),
    opt("--overlay", "DST", Builds::Overlay, "Mount an overlay filesystem at DST"),
    opt("--unsetenv", "NAME", Builds::Unsetenv, "Unset the environment variable with name NAME"),
    opt("--setenv", "NAME VALUE", Builds::Setenv, "Set the environment variable with name NAME to VALUE"),
    opt("--chdir", "DIR", Builds::Chdir, "Change the working directory in the sandbox to DIR"),
    opt("--same-dir", "", Builds::SameDir, "Change the working directory in the sandbox to $PWD"),
    flag("--become-root", Flag::BecomeRoot, "Map the current user/group to root:root in the sandbox"),
    flag("--suppress-chown", Flag::SuppressChown, "Make chown() syscalls in the sandbox a noop"),
    flag("--suppress-sync", Flag::SuppressSync, "Make sync() syscalls in the sandbox a noop"),
    flag("--unshare-net", Flag::UnshareNet, "Unshare the network namespace if possible"),
    flag("--unshare-ipc", Flag::UnshareIpc, "Unshare the IPC namespace if possible"),
    flag(
        "--unshare-pid",
        Flag::UnsharePid,
        "Unshare the PID namespace; an init reaps orphans, forwards\n\
         signals and kills what is left when the command exits",
    ),
    flag("--die-with-parent", Flag::DieWithParent, "Kill the sandbox and its command when the caller dies"),
    flag("--suspend", Flag::Suspend, "Stop process before execve()"),
    flag("--pack-fds", Flag::PackFds, "Pack inherited fds from 3 up and set LISTEN_FDS/LISTEN_PID"),
    opt("--exec-fd", "FD", Builds::ExecFd, "Make FD close-on-exec right before execve() (mkosi 25)"),
    flag("--debug", Flag::Debug, "Print each filesystem operation as it runs"),
    opt(
        "--binfmt-misc",
        "DST",
        Builds::BinfmtMisc,
        "Mount binfmt_misc on DST (with a user namespace, the\n\
         sandbox's own instance: Linux >= 6.7)",
    ),
    opt(
        "--binfmt-register",
        "RULE",
        Builds::BinfmtRegister,
        "Register an emulator in the sandbox's own binfmt_misc,\n\
         never the host's: RULE is a register line\n\
         (:name:type:offset:magic:mask:interpreter:flags) or a\n\
         binfmt.d file, e.g. /usr/lib/binfmt.d/qemu-aarch64.conf;\n\
         the host's interpreter is used (flag F). Needs Linux\n\
         >= 6.7 and a user namespace with its root user mapped:\n\
         a regular user with --become-root, or id ranges that\n\
         map inside 0 (root's sandbox has no user namespace\n\
         without ranges)",
    ),
    opt(
        "--map-users",
        "INNER:OUTER:COUNT",
        Builds::MapUsers,
        "Also map COUNT users from OUTER on the host to INNER in the\n\
         sandbox (repeatable; needs newuidmap unless run as root)",
    ),
    opt("--map-groups", "INNER:OUTER:COUNT", Builds::MapGroups, "The same for groups (newgidmap)"),
    flag(
        "--map-auto",
        Flag::MapAuto,
        "Map the caller's first /etc/subuid and /etc/subgid ranges as\n\
         unshare --map-auto does (0.. with --become-root, around the\n\
         caller's own id without)",
    ),
    flag("--map-foreign", Flag::MapForeign, "Map the foreign UID range (as root: already mapped, nothing to do)"),
    opt(
        "--map-delegate",
        "N",
        Builds::MapDelegate,
        "Delegate N 64K UID ranges (only 0: more needs systemd-nsresourced)",
    ),
    opt("--bind-foreign", "SRC DST", Builds::BindForeign, "Refused: needs systemd-mountfsd and systemd-nsresourced"),
    opt("--ro-bind-foreign", "SRC DST", Builds::BindForeign, "Refused: needs systemd-mountfsd and systemd-nsresourced"),
];

/// The option named `name` (`--bind`, or a short name such as `-h`).
#[inline]
pub(crate) fn find(name: &[u8]) -> Option<&'static Spec> {
    let index = *SLOTS.get(slot(name)?)?;
    let spec = OPTIONS.get(usize::from(index).wrapping_sub(1))?;
    (same(spec.name.as_bytes(), name) || same(spec.short.as_bytes(), name)).then_some(spec)
}

/// `a == b`, eight bytes at a time: a slice comparison of unknown length would call the C
/// library's `bcmp`, which compares byte by byte.
#[inline]
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut a_words, mut b_words) = (a.chunks_exact(8), b.chunks_exact(8));
    let word = |chunk: &[u8]| chunk.try_into().map_or(0, u64::from_ne_bytes);
    (&mut a_words).zip(&mut b_words).all(|(x, y)| word(x) == word(y))
        && a_words.remainder().iter().zip(b_words.remainder()).all(|(x, y)| x == y)
}

// Lookup is a perfect hash, found at compile time: a name's length and three of its bytes,
// multiplied by a seed that gives each option its own slot. Parsing is part of every start, and
// this costs a few instructions and one comparison per option on the command line.

const SLOT_BITS: u32 = 7;
/// Longer names are no option.
const MAX_NAME: usize = 32;

/// Byte `i` of `name`, 0 past its end.
const fn byte(name: &[u8], i: usize) -> u32 {
    if i < name.len() { name[i] as u32 } else { 0 }
}

/// Distinct for every name of the table (names are at least 2 bytes long).
const fn key(name: &[u8]) -> u32 {
    let len = name.len();
    len as u32 | byte(name, 2) << 8 | byte(name, len - 1) << 16 | byte(name, len / 2 + 1) << 24
}

const fn slot_of(key: u32, seed: u32) -> usize {
    (key.wrapping_mul(seed) >> (32 - SLOT_BITS)) as usize
}

#[inline]
fn slot(name: &[u8]) -> Option<usize> {
    if name.len() < 2 || name.len() > MAX_NAME {
        return None;
    }
    Some(slot_of(key(name), SEED))
}

/// Each name of `OPTIONS` in turn: `(table index, name)`; `i` counts long names, then short ones.
const fn nth_name(i: usize) -> Option<(usize, &'static str)> {
    if i < OPTIONS.len() {
        return Some((i, OPTIONS[i].name));
    }
    let mut short = i - OPTIONS.len();
    let mut at = 0;
    while at < OPTIONS.len() {
        if !OPTIONS[at].short.is_empty() {
            if short == 0 {
                return Some((at, OPTIONS[at].short));
            }
            short -= 1;
        }
        at += 1;
    }
    None
}

/// Whether `seed` gives every name a slot of its own.
const fn is_perfect(seed: u32) -> bool {
    let mut taken = 0u128;
    let mut i = 0;
    while let Some((_, name)) = nth_name(i) {
        let bit = 1u128 << slot_of(key(name.as_bytes()), seed);
        if taken & bit != 0 {
            return false;
        }
        taken |= bit;
        i += 1;
    }
    true
}

/// The first odd seed from a known good one on that is perfect (a changed table may need a
/// search: it runs at compile time).
const SEED: u32 = {
    let mut seed = 17487;
    while !is_perfect(seed) {
        seed += 2;
        assert!(seed < 1 << 24, "no perfect hash for the option names: change `key`");
    }
    seed
};

/// Slot → 1 + the table index of the name hashed there; 0 for none.
static SLOTS: [u8; 1 << SLOT_BITS] = {
    let mut slots = [0u8; 1 << SLOT_BITS];
    let mut i = 0;
    while let Some((index, name)) = nth_name(i) {
        assert!(name.len() >= 2 && name.len() <= MAX_NAME);
        slots[slot_of(key(name.as_bytes()), SEED)] = index as u8 + 1;
        i += 1;
    }
    slots
};

/// `--help`'s option lines: the names and arguments, then the text from column 34, continued
/// there on lines of their own (and on the next line when the names leave no room).
pub(crate) const HELP: &str = match core::str::from_utf8(&HELP_BYTES) {
    Ok(text) => text,
    Err(_) => panic!("the help text is UTF-8"),
};

const HELP_COLUMN: usize = 33;

const HELP_BYTES: [u8; help_lines(None)] = {
    let mut out = [0u8; help_lines(None)];
    help_lines(Some(&mut out));
    out
};

/// Writes the option lines into `out` (when given); returns their length.
const fn help_lines(mut out: Option<&mut [u8]>) -> usize {
    const fn put(out: &mut Option<&mut [u8]>, at: &mut usize, bytes: &[u8]) {
        let mut i = 0;
        while i < bytes.len() {
            if let Some(out) = out {
                out[*at] = bytes[i];
            }
            *at += 1;
            i += 1;
        }
    }
    const fn pad(out: &mut Option<&mut [u8]>, at: &mut usize, count: usize) {
        let mut i = 0;
        while i < count {
            put(out, at, b" ");
            i += 1;
        }
    }
    let mut at = 0;
    let mut i = 0;
    while i < OPTIONS.len() {
        let spec = &OPTIONS[i];
        let line_start = at;
        pad(&mut out, &mut at, 2);
        if spec.short.is_empty() {
            pad(&mut out, &mut at, 3);
        } else {
            put(&mut out, &mut at, spec.short.as_bytes());
            put(&mut out, &mut at, b" ");
        }
        put(&mut out, &mut at, spec.name.as_bytes());
        if !spec.args.is_empty() {
            put(&mut out, &mut at, b" ");
            put(&mut out, &mut at, spec.args.as_bytes());
        }
        let used = at - line_start;
        if used + 2 > HELP_COLUMN {
            put(&mut out, &mut at, b"\n");
            pad(&mut out, &mut at, HELP_COLUMN);
        } else {
            pad(&mut out, &mut at, HELP_COLUMN - used);
        }
        let help = spec.help.as_bytes();
        let mut h = 0;
        while h < help.len() {
            put(&mut out, &mut at, &[help[h]]);
            if help[h] == b'\n' {
                pad(&mut out, &mut at, HELP_COLUMN);
            }
            h += 1;
        }
        put(&mut out, &mut at, b"\n");
        i += 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_and_only_those_are_found() {
        for spec in &OPTIONS {
            assert_eq!(find(spec.name.as_bytes()), Some(spec), "{}", spec.name);
            if !spec.short.is_empty() {
                assert_eq!(find(spec.short.as_bytes()), Some(spec), "{}", spec.short);
            }
        }
        for other in ["", "-", "--", "-x", "--bin", "--bind-", "--binds", "--BIND", "--tmpfs\0", "bind"] {
            assert_eq!(find(other.as_bytes()), None, "{other}");
        }
        assert_eq!(find(&[b'-'; 200]), None);
    }

    #[test]
    fn names_are_unique_and_arities_match_the_arguments() {
        for (i, spec) in OPTIONS.iter().enumerate() {
            assert!(OPTIONS[..i].iter().all(|other| other.name != spec.name), "{} twice", spec.name);
            assert!(spec.name.starts_with("--") && spec.arity <= 2, "{}", spec.name);
            assert_eq!(usize::from(spec.arity), spec.args.split_whitespace().count());
        }
    }

    #[test]
    fn help_lines_align_the_text() {
        assert!(HELP.starts_with("  -h --help                      Show this help\n     --version "));
        assert!(
            HELP.contains("     --map-users INNER:OUTER:COUNT\n                                 Also map COUNT users")
        );
        assert!(
            HELP.ends_with("--ro-bind-foreign SRC DST   Refused: needs systemd-mountfsd and systemd-nsresourced\n")
        );
    }
}
