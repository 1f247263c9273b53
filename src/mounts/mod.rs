//! The sandbox's filesystem: the root dance (`root`: tmpfs workspace, `pivot_root`; then the
//! operations; then `root` again: pivot into the new root) and the execution of each operation,
//! exactly as the original does it.
//!
//! Paths are relative to the workspace (the tmpfs that becomes `/` during set-up): `oldroot` is the
//! caller's root, `newroot` the sandbox's.
//!
//! A new kind of operation gets its function here, called from `execute`.

mod beneath;
mod fresh;
mod readonly;
mod root;

use core::ffi::CStr;

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags};
use rustix::io::Errno;
use rustix::mount::{MountFlags, MoveMountFlags, OpenTreeFlags};

use crate::error::{Cause, During, Error, Result, Stage, Syscall, TooLong};
use crate::line::Line;
use crate::path::{PathBuf, ResolveScratch, Resolved, components, is_tmp_dir, read_link_at, resolve};
use crate::plan::Plan;
use crate::request::{Op, OpKind};
use crate::sys::{self, MOUNT_ATTR_RDONLY};
use fresh::ParentCache;

const OLDROOT: &[u8] = b"oldroot";
const NEWROOT: &[u8] = b"newroot";
const DIR_MODE: u32 = 0o755;
const TMP_MODE: u32 = 0o1777;

/// The paths and open directories the operations work with, reused from one operation to the
/// next (static memory: no heap, and pages are touched only when used).
pub(crate) struct Storage {
    /// The resolved source of a bind (under `oldroot`, or `newroot` for `+` sources), or a device
    /// node; also a lower/upper directory of an overlay.
    source: PathBuf,
    /// The resolved destination under `newroot`.
    target: PathBuf,
    /// The overlay's mount options being assembled.
    options: PathBuf,
    /// A path looked at on the side: a `-nofollow` source's parent, a symlink at DST.
    probe: PathBuf,
    resolver: Resolver,
}

/// What finding paths works with: the resolution's own buffers and the open parent
/// directories of the fast paths. Results go to a buffer the caller names (`out`).
struct Resolver {
    /// What `resolve` still has to walk (link target + rest of the path).
    pending: PathBuf,
    /// The target of the symlink just read.
    link: PathBuf,
    /// The fast paths' parent directory, last component and scratch (see `fresh`); `tmp` also
    /// holds DST's parent as written for `kernel_walks`.
    parent: PathBuf,
    name: PathBuf,
    tmp: PathBuf,
    /// Open parent directories of the current run of sources and destinations.
    src_parent: ParentCache,
    dst_parent: ParentCache,
}

impl Resolver {
    const fn new() -> Self {
        Self {
            pending: PathBuf::new(),
            link: PathBuf::new(),
            parent: PathBuf::new(),
            name: PathBuf::new(),
            tmp: PathBuf::new(),
            src_parent: ParentCache::new(),
            dst_parent: ParentCache::new(),
        }
    }

    /// Resolves `path` inside `root` into `out` (the original's `chase()`).
    fn chase(&mut self, root: &[u8], path: &[u8], out: &mut PathBuf) -> Result<Resolved> {
        resolve(root, path, out, ResolveScratch { pending: &mut self.pending, link: &mut self.link }).too_long()
    }

    /// A bind source below the caller's root without resolving, if it can be had so (see
    /// `fresh::source`); on `Some(Some(_))` its path is in `out`.
    fn fresh_source(&mut self, src: &CStr, out: &mut PathBuf) -> Option<Option<FileType>> {
        let buffers = fresh::Buffers { parent: &mut self.parent, name: &mut self.name, tmp: &mut self.tmp };
        fresh::source(&mut self.src_parent, OLDROOT, src, out, buffers)
    }

    /// Makes `dst` below the new root if it does not exist yet, without resolving anything (see
    /// `fresh`); its path goes to `out`. `create` gets a directory, a name in it and the full
    /// path (for the mode rules). Returns None when the destination exists or its parent needs
    /// resolving.
    fn create_fresh<T>(
        &mut self,
        dst: &CStr,
        out: &mut PathBuf,
        syscall: Syscall,
        create: impl FnOnce(rustix::fd::BorrowedFd<'_>, &CStr, &[u8]) -> core::result::Result<T, Errno>,
    ) -> Result<Option<T>> {
        let buffers = fresh::Buffers { parent: &mut self.parent, name: &mut self.name, tmp: &mut self.tmp };
        fresh::create(&mut self.dst_parent, NEWROOT, dst, syscall, out, buffers, create)
    }

    /// `root` + the parent of `path` resolved inside `root` (the original's `chase()`) + the last
    /// component as written (trailing slashes kept, for the kernel to judge), into `out`: where
    /// an operation that does not follow the path's own last component acts. Paths without a
    /// plain last component (`/`, a trailing `.` or `..`) are resolved whole. Then walks the
    /// parent as written as the kernel would (see `kernel_walks`); that error is returned apart.
    fn chase_parent(&mut self, root: &[u8], path: &CStr, out: &mut PathBuf) -> Result<core::result::Result<(), Errno>> {
        let bytes = path.to_bytes();
        self.tmp.clear();
        match split_last(bytes) {
            None => {
                self.chase(root, bytes, out)?;
            }
            Some((parent, name)) => {
                self.tmp.set(parent).too_long()?;
                if self.tmp.is_empty() {
                    self.tmp.set(b"/").too_long()?;
                }
                resolve(
                    root,
                    self.tmp.as_bytes(),
                    out,
                    ResolveScratch { pending: &mut self.pending, link: &mut self.link },
                )
                .too_long()?;
                out.push_component(name).too_long()?;
            }
        }
        Ok(kernel_walks(&self.tmp))
    }
}

impl Storage {
    /// A path buffer that set-up no longer needs once it is done, and has touched already: the
    /// exec's PATH search writes there without a new page fault.
    pub(crate) fn spare_path(&mut self) -> &mut PathBuf {
        &mut self.source
    }

    pub(crate) const fn new() -> Self {
        Self {
            source: PathBuf::new(),
            target: PathBuf::new(),
            options: PathBuf::new(),
            probe: PathBuf::new(),
            resolver: Resolver::new(),
        }
    }
}

impl Default for Storage {
    fn default() -> Self {
        Self::new()
    }
}

/// What the operations need besides the plan.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    /// The host path of the terminal on stderr, for `/dev/console`.
    pub(crate) ttyname: Option<&'a CStr>,
    /// The caller's umask; set-up runs with umask 0 and explicit modes.
    pub(crate) umask: Mode,
    /// `--debug`: print each operation before it runs.
    pub(crate) debug: bool,
    /// The sandbox's binfmt_misc instance (`--binfmt-register`): the root is stacked on it.
    pub(crate) floor: Option<&'a crate::binfmt::Instance>,
    /// `--unshare-pid`: `--proc` mounts a procfs of the new PID namespace instead of binding the
    /// caller's.
    pub(crate) new_proc: bool,
}

/// One operation's view: the storage, the plan (for overlay lower directories), the context.
struct Work<'w, 'p> {
    storage: &'w mut Storage,
    plan: &'w Plan<'p>,
    ttyname: Option<&'w CStr>,
    umask: u32,
    /// Whether the first `--write` looked at RLIMIT_FSIZE, and the caller's SIGXFSZ disposition
    /// when it had to ignore the signal.
    fsize_checked: bool,
    sigxfsz: Option<sys::Disposition>,
    new_proc: bool,
}

/// Builds the sandbox and makes it the root. On return the cwd is the new `/`.
pub(crate) fn setup(plan: &Plan<'_>, storage: &mut Storage, context: &Context<'_>) -> Result<()> {
    let stage = |e: Error| e.in_stage(Stage::Setup);
    root::enter_workspace(context.floor).map_err(stage)?;

    let ctx = &mut Work {
        storage,
        plan,
        ttyname: context.ttyname,
        umask: context.umask.bits(),
        fsize_checked: false,
        sigxfsz: None,
        new_proc: context.new_proc,
    };
    for op in plan.iter() {
        // An operation outside the open destination parent may change it (mount over it, or
        // over one of its ancestors): open it again when next needed.
        if !ctx.storage.resolver.dst_parent.covers(op.dst.to_bytes()) {
            ctx.storage.resolver.dst_parent.forget();
        }
        if context.debug {
            let mut line = Line::new();
            op.describe(&mut line);
            line.flush_to_stderr();
        }
        let mut result = execute(ctx, op);
        if result.as_ref().is_err_and(|e| e.errno() == Some(Errno::MFILE)) {
            // RLIMIT_NOFILE leaves no slot beside the cached parents: do without them.
            ctx.storage.resolver.src_parent.disable();
            ctx.storage.resolver.dst_parent.disable();
            result = execute(ctx, op);
        }
        result.map_err(|e| op.blame(e))?;
        if op.kind == OpKind::Symlink {
            // Defensive: a symlink made through a writable bind appears in the caller's tree too.
            ctx.storage.resolver.src_parent.forget();
        }
    }
    ctx.storage.resolver.src_parent.forget();
    ctx.storage.resolver.dst_parent.forget();
    if let Some(old) = ctx.sigxfsz.take() {
        sys::restore_sigxfsz(&old).during(Syscall::RtSigaction).map_err(stage)?;
    }

    root::pivot_into_new_root(context.floor).map_err(stage)
}

fn execute(ctx: &mut Work<'_, '_>, op: &Op) -> Result<()> {
    match op.kind {
        OpKind::Bind { follow: false, readonly, relative, .. } => bind_nofollow(ctx, op, readonly, relative),
        OpKind::Bind { readonly, required, relative, .. } => bind(ctx, op, readonly, required, relative),
        OpKind::Proc => proc(ctx, op),
        OpKind::BinfmtMisc => binfmt_misc(ctx, op),
        OpKind::Dev => dev(ctx, op),
        OpKind::Tmpfs => tmpfs(ctx, op),
        OpKind::Dir => dir(ctx, op),
        OpKind::Symlink => symlink(ctx, op),
        OpKind::Write => write(ctx, op),
        OpKind::Overlay { lower_start, lower_len, upper, work } => {
            overlay(ctx, op, lower_start, lower_len, upper, work)
        }
    }
}

fn bind(ctx: &mut Work<'_, '_>, op: &Op, readonly: bool, required: bool, relative: bool) -> Result<()> {
    let Storage { source, target, probe, resolver, .. } = &mut *ctx.storage;
    let fast = if relative { None } else { resolver.fresh_source(op.src, source) };
    // None: SRC is missing for now (the original makes DST before it opens SRC, so a source that
    // exists only once DST is made, as in `--bind +/tmp /tmp/sub`, is bound all the same).
    let src_type = match fast {
        Some(Some(kind)) => Some(kind),
        Some(None) if !required => return Ok(()),
        _ => {
            let root = if relative { NEWROOT } else { OLDROOT };
            match resolver.chase(root, op.src.to_bytes(), source) {
                Ok(found) if found.exists => Some(file_type(source.as_cstr()).during(Syscall::Stat)?),
                Ok(_) if !required => return Ok(()),
                Ok(_) => None,
                // A path too long to exist does not exist (Python's os.path.exists()).
                Err(e) if !required && e.cause == Cause::PathTooLong => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    };
    let source = source.as_cstr();
    let attrs = if readonly { MOUNT_ATTR_RDONLY } else { 0 };
    let make_mount_point_at = |dir: rustix::fd::BorrowedFd<'_>, name: &CStr| {
        if src_type == Some(FileType::RegularFile) {
            rustix::fs::mknodat(dir, name, FileType::RegularFile, Mode::from_raw_mode(0o644), 0)
        } else {
            rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(DIR_MODE))
        }
    };
    // A source found missing is opened only now, which has the last word; it and a source in the
    // new root (the build root's, like its destinations) are opened following no symlink.
    let bind_now = |target: &PathBuf| match src_type {
        Some(_) if !relative => bind_resolved(source, target.as_cstr(), attrs),
        Some(_) => mount_rbind_contained(source, target.as_cstr(), attrs),
        // Still missing once DST is made: where the original's open_tree() fails.
        None => mount_rbind_contained(source, target.as_cstr(), attrs)
            .map_err(|e| if e.errno() == Some(Errno::NOENT) { Error::new(Cause::SourceMissing) } else { e }),
    };
    if resolver.create_fresh(op.dst, target, Syscall::Mkdir, |dir, name, _| make_mount_point_at(dir, name))?.is_some() {
        return bind_now(target);
    }

    let dst = resolver.chase(NEWROOT, op.dst.to_bytes(), target)?;
    // A file bound onto a symlink goes onto the symlink itself, not where it points.
    if src_type != Some(FileType::Directory)
        && let Some(link) = dst_symlink(resolver, op.dst, &dst, probe)?
    {
        // open_tree() and move_mount() follow no last component.
        if relative {
            return mount_rbind_contained(source, link, attrs);
        }
        return mount_rbind(source, link, attrs);
    }
    if !dst.exists {
        beneath::create(CWD, target, make_mount_point_at).during(Syscall::Mkdir)?;
    }
    bind_now(target)
}

/// `--[ro-]bind-nofollow`: like `bind`, but when SRC itself is a symlink, the link is bound (its
/// parents are still resolved). A link needs a non-directory mount point: an existing symlink or
/// file at DST, or an empty file made for it.
fn bind_nofollow(ctx: &mut Work<'_, '_>, op: &Op, readonly: bool, relative: bool) -> Result<()> {
    let Storage { source, target, probe, resolver, .. } = &mut *ctx.storage;
    let root = if relative { NEWROOT } else { OLDROOT };
    let name = components(op.src.to_bytes()).next_back().unwrap_or(b"");
    if name.is_empty() || name == b".." {
        // `/` or a trailing `..` is never a symlink: nothing differs from a following bind.
        return bind(ctx, op, readonly, true, relative);
    }
    // The parent, resolved as the original's chase(); then the last component as written.
    probe.set(op.src.to_bytes()).too_long()?;
    probe.pop_component(0);
    let parent = probe.as_bytes();
    resolver.chase(root, if parent.is_empty() { b"/" } else { parent }, source)?;
    source.push_component(name).too_long()?;
    let st = rustix::fs::statat(CWD, source.as_cstr(), AtFlags::SYMLINK_NOFOLLOW).during(Syscall::Stat)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Symlink {
        return bind(ctx, op, readonly, true, relative);
    }
    let attrs = if readonly { MOUNT_ATTR_RDONLY } else { 0 };
    let dst = resolver.chase(NEWROOT, op.dst.to_bytes(), target)?;
    let target = match dst_symlink(resolver, op.dst, &dst, probe)? {
        Some(link) => link,
        None => {
            if !dst.exists {
                beneath::create(CWD, target, |dir, name| create_file_at(dir, name, 0o644)).during(Syscall::Mknod)?;
            }
            target.as_cstr()
        }
    };
    if relative {
        mount_rbind_contained(source.as_cstr(), target, attrs)
    } else {
        mount_rbind(source.as_cstr(), target, attrs)
    }
}

/// DST's last component, in its parent resolved inside the new root, when it is a symlink (the
/// original asks `islink()` of DST as written, parents followed by the kernel, which may step
/// onto the host): the link's path, in `out`. The walk that resolved `dst` (`resolved`) usually
/// knows the answer; when a parent was a symlink, one `lstat()` tells.
fn dst_symlink<'o>(
    resolver: &mut Resolver,
    dst: &CStr,
    resolved: &Resolved,
    out: &'o mut PathBuf,
) -> Result<Option<&'o CStr>> {
    if resolved.written_is_link == Some(false) {
        return Ok(None);
    }
    let walks = resolver.chase_parent(NEWROOT, dst, out)?;
    let is_link = walks.is_ok()
        && rustix::fs::statat(CWD, out.as_cstr(), AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink);
    Ok(is_link.then(|| out.as_cstr()))
}

/// A path's parent as written and its last component with any trailing slashes (for the kernel
/// to judge); None when there is no plain last component (`/`, a trailing `.` or `..`).
// (The last component is taken from the bytes: `components` skips `.`, and a name counted from
// it once split `/link/.` into `/li` and `nk/.`.)
fn split_last(path: &[u8]) -> Option<(&[u8], &[u8])> {
    let trimmed = &path[..path.len() - path.iter().rev().take_while(|&&b| b == b'/').count()];
    let name_start = trimmed.iter().rposition(|&b| b == b'/').map_or(0, |slash| slash + 1);
    if matches!(&trimmed[name_start..], b"" | b"." | b"..") {
        return None;
    }
    Some((&path[..name_start], &path[name_start..]))
}

/// Where the original hands DST as written to the kernel (`--symlink`, `islink()`), a `..` in its
/// parents needs the directory before it to exist (`chase()` applies `..` by the letter): with
/// one, walk `parent` (as written) so, with RESOLVE_IN_ROOT from the new root. Without openat2()
/// (qemu-user, Linux before 5.6) the walk is skipped: it is parity, not safety.
fn kernel_walks(parent: &PathBuf) -> core::result::Result<(), Errno> {
    if !components(parent.as_bytes()).any(|c| c == b"..") {
        return Ok(());
    }
    let root = beneath::open_dir(CWD, c"newroot")?;
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let in_root = rustix::fs::ResolveFlags::IN_ROOT | rustix::fs::ResolveFlags::NO_MAGICLINKS;
    match rustix::fs::openat2(&root, parent.as_cstr(), flags, Mode::empty(), in_root) {
        Ok(_) | Err(Errno::NOSYS) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The directory a `--proc`, `--dev`, `--tmpfs` or `--binfmt-misc` mounts on: DST resolved, and made with its
/// parents (0755) when missing, like the original's `os.makedirs(chase(newroot, dst),
/// exist_ok=True)`. Returns its path, kept in `out`.
fn mount_point_dir<'o>(resolver: &mut Resolver, op: &Op, out: &'o mut PathBuf) -> Result<&'o CStr> {
    if resolver.create_fresh(op.dst, out, Syscall::Mkdir, |dir, name, _| mkdir_at(dir, name, DIR_MODE))?.is_none()
        && !resolver.chase(NEWROOT, op.dst.to_bytes(), out)?.exists
    {
        beneath::make_all(CWD, out, DIR_MODE).during(Syscall::Mkdir)?;
    }
    Ok(out.as_cstr())
}

fn proc(ctx: &mut Work<'_, '_>, op: &Op) -> Result<()> {
    let s = &mut *ctx.storage;
    let dst = mount_point_dir(&mut s.resolver, op, &mut s.target)?;
    if ctx.new_proc {
        // Mounted from inside the new PID namespace, so it shows that namespace.
        let flags = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
        return rustix::mount::mount(c"proc", dst, c"proc", flags, None).during(Syscall::Mount);
    }
    bind_resolved(c"oldroot/proc", dst, 0)
}

/// The seed's BinfmtOperation: DST made (0755) and binfmt_misc mounted on it. With a user
/// namespace this is the sandbox's own instance (Linux >= 6.7), the one `--binfmt-register` uses.
fn binfmt_misc(ctx: &mut Work<'_, '_>, op: &Op) -> Result<()> {
    let s = &mut *ctx.storage;
    let dst = mount_point_dir(&mut s.resolver, op, &mut s.target)?;
    rustix::mount::mount(c"binfmt_misc", dst, c"binfmt_misc", MountFlags::empty(), None).during(Syscall::Mount)
}

fn dev(ctx: &mut Work<'_, '_>, op: &Op) -> Result<()> {
    let s = &mut *ctx.storage;
    let dst = mount_point_dir(&mut s.resolver, op, &mut s.target)?;
    // The mode matters: with tmpfs's default 1777, opening /dev/null fails with EACCES.
    rustix::mount::mount(c"tmpfs", dst, c"tmpfs", MountFlags::empty(), c"mode=0755").during(Syscall::Mount)?;
    // Everything below is made relative to the new tmpfs, opened once: nothing can redirect it.
    let dev = beneath::open_dir(CWD, dst).during(Syscall::Open)?;
    let dev = rustix::fd::AsFd::as_fd(&dev);
    let base = s.target.len();

    for node in [c"null", c"zero", c"full", c"random", c"urandom", c"tty", c"fuse"] {
        s.source.set(b"oldroot/dev/").too_long()?;
        s.source.push(node.to_bytes()).too_long()?;
        if node == c"fuse" && file_type(s.source.as_cstr()).is_err() {
            continue;
        }
        create_file_at(dev, node, 0o644).during(Syscall::Mknod)?;
        s.target.truncate(base);
        s.target.push_component(node.to_bytes()).too_long()?;
        rustix::mount::mount_bind(s.source.as_cstr(), s.target.as_cstr()).during(Syscall::Mount)?;
    }
    for (name, target) in [
        (c"stdin", c"/proc/self/fd/0"),
        (c"stdout", c"/proc/self/fd/1"),
        (c"stderr", c"/proc/self/fd/2"),
        (c"fd", c"/proc/self/fd"),
        (c"core", c"/proc/kcore"),
    ] {
        rustix::fs::symlinkat(target, dev, name).during(Syscall::Symlink)?;
    }
    mkdir_at(dev, c"shm", TMP_MODE).during(Syscall::Mkdir)?;
    mkdir_at(dev, c"pts", DIR_MODE).during(Syscall::Mkdir)?;
    s.target.truncate(base);
    s.target.push_component(b"pts").too_long()?;
    let devpts_options = c"newinstance,ptmxmode=0666,mode=620";
    rustix::mount::mount(c"devpts", s.target.as_cstr(), c"devpts", MountFlags::empty(), devpts_options)
        .during(Syscall::Mount)?;
    rustix::fs::symlinkat(c"pts/ptmx", dev, c"ptmx").during(Syscall::Symlink)?;

    if let Some(tty) = ctx.ttyname {
        create_file_at(dev, c"console", 0o644).during(Syscall::Mknod)?;
        s.target.truncate(base);
        s.target.push_component(b"console").too_long()?;
        join(&mut s.source, OLDROOT, tty)?;
        rustix::mount::mount_bind(s.source.as_cstr(), s.target.as_cstr()).during(Syscall::Mount)?;
    }
    Ok(())
}

fn tmpfs(ctx: &mut Work<'_, '_>, op: &Op) -> Result<()> {
    let s = &mut *ctx.storage;
    let dst = mount_point_dir(&mut s.resolver, op, &mut s.target)?;
    let options = if is_tmp_dir(dst.to_bytes()) { None } else { Some(c"mode=0755") };
    rustix::mount::mount(c"tmpfs", dst, c"tmpfs", MountFlags::empty(), options).during(Syscall::Mount)
}

fn dir(ctx: &mut Work<'_, '_>, op: &Op) -> Result<()> {
    let s = &mut *ctx.storage;
    let mkdir_fresh =
        |dir: rustix::fd::BorrowedFd<'_>, name: &CStr, full: &[u8]| mkdir_at(dir, name, tmp_or_dir_mode(full));
    if s.resolver.create_fresh(op.dst, &mut s.target, Syscall::Mkdir, mkdir_fresh)?.is_some()
        || s.resolver.chase(NEWROOT, op.dst.to_bytes(), &mut s.target)?.exists
    {
        // Only if missing: an existing directory, or file, is left alone.
        return Ok(());
    }
    // EEXIST here means DST is there but does not resolve (a symlink loop): an error, as in the
    // original, whose exists() is false and whose mkdir() fails.
    let mode = tmp_or_dir_mode(s.target.as_bytes());
    beneath::create(CWD, &mut s.target, |dir, name| mkdir_at(dir, name, mode)).during(Syscall::Mkdir)
}

fn symlink(ctx: &mut Work<'_, '_>, op: &Op) -> Result<()> {
    let s = &mut *ctx.storage;
    // DST itself is not followed and its parents are not created, as in the original; but its
    // parents are resolved inside the new root (the original lets the kernel follow them from
    // the set-up root, where `/oldroot` is the host). Usually the parent exists without symlinks
    // (one cached, symlink-free open) and DST is new.
    let fresh = !op.dst.to_bytes().ends_with(b"/")
        && s.resolver
            .create_fresh(op.dst, &mut s.target, Syscall::Symlink, |dir, name, _| {
                rustix::fs::symlinkat(op.src, dir, name)
            })?
            .is_some();
    if fresh {
        return Ok(());
    }
    s.resolver.chase_parent(NEWROOT, op.dst, &mut s.target)?.during(Syscall::Symlink)?;
    let made = beneath::at(CWD, &mut s.target, |dir, name| match rustix::fs::symlinkat(op.src, dir, name) {
        Err(Errno::EXIST) => {
            let link = &mut s.resolver.link;
            Ok(read_link_at(dir, name, link).is_ok() && link.as_bytes() == op.src.to_bytes())
        }
        other => other.map(|()| true),
    });
    if made.during(Syscall::Symlink)? {
        return Ok(());
    }
    // The original's isdir(DST): a link there is followed by the kernel from the set-up root
    // (an absolute target then usually misses). Only a stat, deciding between this error and
    // mounting over the link, which stays inside.
    if file_type(s.target.as_cstr()) == Ok(FileType::Directory) {
        return Err(Error::sys(Syscall::Symlink, Errno::EXIST));
    }
    // Over an existing file or symlink: make the link elsewhere and bind it over the file. This
    // works on read-only binds too, because EEXIST is reported before EROFS.
    rustix::fs::symlinkat(op.src, CWD, c"/symlink").during(Syscall::Symlink)?;
    let result = mount_rbind(c"/symlink", s.target.as_cstr(), 0);
    let _ = rustix::fs::unlinkat(CWD, c"/symlink", AtFlags::empty());
    result
}

fn write(ctx: &mut Work<'_, '_>, op: &Op) -> Result<()> {
    if !ctx.fsize_checked {
        ctx.fsize_checked = true;
        // Past RLIMIT_FSIZE, write() raises SIGXFSZ, which would kill us without a word: under a
        // limit, ignore it, so that the write fails with EFBIG instead (restored before exec).
        if rustix::process::getrlimit(rustix::process::Resource::Fsize).current.is_some() {
            ctx.sigxfsz = Some(sys::ignore_sigxfsz().during(Syscall::RtSigaction)?);
        }
    }
    let s = &mut *ctx.storage;
    let mode = Mode::from_raw_mode(0o666 & !ctx.umask);
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::CLOEXEC | OFlags::NOCTTY;
    let made = s.resolver.create_fresh(op.dst, &mut s.target, Syscall::Open, |dir, name, _| {
        rustix::fs::openat(dir, name, flags | OFlags::EXCL, mode)
    })?;
    let fd = match made {
        Some(fd) => fd,
        None => {
            s.resolver.chase(NEWROOT, op.dst.to_bytes(), &mut s.target)?;
            beneath::create(CWD, &mut s.target, |dir, name| beneath::open(dir, name, flags, mode))
                .during(Syscall::Open)?
        }
    };
    let mut data = op.src.to_bytes();
    while !data.is_empty() {
        let n = rustix::io::write(&fd, data).during(Syscall::Write)?;
        data = &data[n..];
    }
    Ok(())
}

fn overlay(
    ctx: &mut Work<'_, '_>,
    op: &Op,
    lower_start: u32,
    lower_len: u32,
    upper: Option<&'static CStr>,
    work: Option<&'static CStr>,
) -> Result<()> {
    let s = &mut *ctx.storage;
    let opts = &mut s.options;
    opts.set(b"lowerdir=").too_long()?;
    for k in 0..lower_len as usize {
        let Some(&lower) = ctx.plan.lowerdirs(lower_start, lower_len).get(k) else {
            continue;
        };
        s.resolver.chase(OLDROOT, lower.to_bytes(), &mut s.source)?;
        if k > 0 {
            opts.push(b":").too_long()?;
        }
        opts.push(s.source.as_bytes()).too_long()?;
    }
    // Without these, a mount fails when the upper directory was used with other lower ones before.
    opts.push(b",userxattr,index=off,metacopy=off").too_long()?;

    let dst = s.resolver.chase(NEWROOT, op.dst.to_bytes(), &mut s.target)?;
    let mode = tmp_or_dir_mode(s.target.as_bytes());
    // Made only when missing; EEXIST means DST does not resolve (a loop), an error as in the original.
    if !dst.exists {
        beneath::create(CWD, &mut s.target, |dir, name| mkdir_at(dir, name, mode)).during(Syscall::Mkdir)?;
    }

    if upper.is_some_and(|u| u.to_bytes() == b"tmpfs") {
        rustix::mount::mount(c"tmpfs", s.target.as_cstr(), c"tmpfs", MountFlags::empty(), c"mode=0755")
            .during(Syscall::Mount)?;
        let tmpfs = beneath::open_dir(CWD, s.target.as_cstr()).during(Syscall::Open)?;
        let tmpfs = rustix::fd::AsFd::as_fd(&tmpfs);
        mkdir_at(tmpfs, c"upper", mode).during(Syscall::Mkdir)?;
        mkdir_at(tmpfs, c"cache", DIR_MODE).during(Syscall::Mkdir)?;
        for (key, sub) in [(&b",upperdir="[..], &b"/upper"[..]), (b",workdir=", b"/cache")] {
            opts.push(key).too_long()?;
            opts.push(s.target.as_bytes()).too_long()?;
            opts.push(sub).too_long()?;
        }
    } else {
        for (key, dir) in [(&b",upperdir="[..], upper), (b",workdir=", work)] {
            let Some(dir) = dir else { continue };
            s.resolver.chase(OLDROOT, dir.to_bytes(), &mut s.source)?;
            opts.push(key).too_long()?;
            opts.push(s.source.as_bytes()).too_long()?;
        }
    }
    rustix::mount::mount(c"overlayfs", s.target.as_cstr(), c"overlay", MountFlags::empty(), opts.as_cstr())
        .during(Syscall::Mount)
}

/// A recursive bind between two resolved paths (no component of either is a symlink). A
/// writable one needs only `mount(MS_BIND | MS_REC)`, one syscall where the new API takes three;
/// a read-only one needs the new API to apply the flag to the whole tree.
fn bind_resolved(src: &CStr, dst: &CStr, attrs: u32) -> Result<()> {
    if attrs == 0 {
        return rustix::mount::mount_bind_recursive(src, dst).during(Syscall::Mount);
    }
    mount_rbind(src, dst, attrs)
}

/// A recursive bind of `src` onto `dst` with the new mount API, which, unlike `mount(MS_BIND)`,
/// can make a whole tree read-only and follows no symlink at either end.
fn mount_rbind(src: &CStr, dst: &CStr, attrs: u32) -> Result<()> {
    let flags = OpenTreeFlags::AT_NO_AUTOMOUNT
        | OpenTreeFlags::AT_RECURSIVE
        | OpenTreeFlags::AT_SYMLINK_NOFOLLOW
        | OpenTreeFlags::OPEN_TREE_CLONE
        | OpenTreeFlags::OPEN_TREE_CLOEXEC;
    let tree = rustix::mount::open_tree(CWD, src, flags).during(Syscall::OpenTree)?;
    attach(&tree, dst, attrs)
}

/// Applies `attrs` (read-only or nothing) to a detached tree and attaches it at `dst`. Where
/// mount_setattr() is missing (ENOSYS: before Linux 5.12, or a seccomp profile) the tree is
/// attached as it is and then remounted read-only mount by mount (`readonly`).
fn attach(tree: &rustix::fd::OwnedFd, dst: &CStr, attrs: u32) -> Result<()> {
    let mut remount_each = false;
    // The original always calls mount_setattr(); with nothing to set it is a no-op, so skip it.
    if attrs != 0 {
        match sys::mount_setattr_recursive(rustix::fd::AsFd::as_fd(tree), attrs) {
            Err(Errno::NOSYS) if attrs == MOUNT_ATTR_RDONLY => remount_each = true,
            other => other.during(Syscall::MountSetattr)?,
        }
    }
    rustix::mount::move_mount(tree, c"", CWD, dst, MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH)
        .during(Syscall::MoveMount)?;
    if remount_each { readonly::remount_tree(dst) } else { Ok(()) }
}

/// `mount_rbind` of a source opened first with RESOLVE_NO_SYMLINKS (its last component taken as
/// it is, as `AT_SYMLINK_NOFOLLOW` does): for sources in the new root, and sources that were
/// missing when resolved, so that a symlink there (a chain longer than the walk follows, a race)
/// is an error, never a way to bind a host path into the sandbox.
fn mount_rbind_contained(src: &CStr, dst: &CStr, attrs: u32) -> Result<()> {
    let path = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let source = beneath::open(CWD, src, path, Mode::empty()).during(Syscall::OpenTree)?;
    let flags = OpenTreeFlags::AT_EMPTY_PATH
        | OpenTreeFlags::AT_RECURSIVE
        | OpenTreeFlags::OPEN_TREE_CLONE
        | OpenTreeFlags::OPEN_TREE_CLOEXEC;
    let tree = rustix::mount::open_tree(&source, c"", flags).during(Syscall::OpenTree)?;
    drop(source);
    attach(&tree, dst, attrs)
}

fn tmp_or_dir_mode(path: &[u8]) -> u32 {
    if is_tmp_dir(path) { TMP_MODE } else { DIR_MODE }
}

fn mkdir_at(dir: rustix::fd::BorrowedFd<'_>, name: &CStr, mode: u32) -> core::result::Result<(), Errno> {
    rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(mode))
}

fn mkdir(path: &CStr, mode: u32) -> core::result::Result<(), Errno> {
    rustix::fs::mkdirat(CWD, path, Mode::from_raw_mode(mode))
}

/// An empty regular file (a mount point): `mknod(S_IFREG)` is one syscall where `open(O_CREAT |
/// O_EXCL)` + `close()` are two, with the same result (EEXIST included).
fn create_file_at(dir: rustix::fd::BorrowedFd<'_>, name: &CStr, mode: u32) -> core::result::Result<(), Errno> {
    rustix::fs::mknodat(dir, name, FileType::RegularFile, Mode::from_raw_mode(mode), 0)
}

fn file_type(path: &CStr) -> core::result::Result<FileType, Errno> {
    rustix::fs::statat(CWD, path, AtFlags::empty()).map(|st| FileType::from_raw_mode(st.st_mode))
}

/// `root` + `/` + `path` without its leading slashes: the original's `joinpath()`.
fn join(out: &mut PathBuf, root: &[u8], path: &CStr) -> Result<()> {
    let rel = path.to_bytes();
    let start = rel.iter().position(|&b| b != b'/').unwrap_or(rel.len());
    out.set(root).too_long()?;
    out.push(b"/").too_long()?;
    out.push(&rel[start..]).too_long()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory tree for one test (removed at the end): `real/dir`, `real/file`, and
    /// `link -> real`, `abs -> /real` (absolute: resolved inside the root, never on the host).
    struct Tree(std::path::PathBuf);

    impl Tree {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("mkosi-sandbox-mounts-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("real/dir")).unwrap();
            std::fs::write(dir.join("real/file"), b"").unwrap();
            std::os::unix::fs::symlink("real", dir.join("link")).unwrap();
            std::os::unix::fs::symlink("/real", dir.join("abs")).unwrap();
            Self(dir)
        }

        fn root(&self) -> &[u8] {
            self.0.as_os_str().as_encoded_bytes()
        }

        /// `path` below the root, as resolution writes it.
        fn at(&self, path: &str) -> Vec<u8> {
            [self.root(), b"/", path.as_bytes()].concat()
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn resolver() -> Box<Resolver> {
        Box::new(Resolver::new())
    }

    #[test]
    fn chase_follows_links_inside_the_root() {
        let tree = Tree::new("chase");
        let (mut r, mut out) = (resolver(), Box::new(PathBuf::new()));
        for (path, want, exists) in [
            ("/link/dir", "real/dir", true),
            ("/abs/file", "real/file", true),
            ("/abs/missing/x", "real/missing/x", false),
        ] {
            let found = r.chase(tree.root(), path.as_bytes(), &mut out).unwrap();
            assert_eq!((out.as_bytes(), found.exists), (&tree.at(want)[..], exists), "{path}");
        }
        let found = r.chase(tree.root(), b"/abs", &mut out).unwrap();
        assert_eq!(found.written_is_link, Some(true));
    }

    #[test]
    fn chase_parent_keeps_the_last_component_as_written() {
        let tree = Tree::new("parent");
        let (mut r, mut out) = (resolver(), Box::new(PathBuf::new()));
        let walks = r.chase_parent(tree.root(), c"/abs/link", &mut out).unwrap();
        assert_eq!(walks, Ok(()));
        assert_eq!(out.as_bytes(), &tree.at("real/link")[..], "the parent followed, `link` not");
        assert_eq!(r.chase_parent(tree.root(), c"/link/dir/", &mut out).unwrap(), Ok(()));
        assert_eq!(out.as_bytes(), &tree.at("real/dir/")[..], "trailing slashes are the kernel's to judge");
        assert_eq!(r.chase_parent(tree.root(), c"/link/.", &mut out).unwrap(), Ok(()));
        assert_eq!(out.as_bytes(), &tree.at("real")[..], "no plain last component: resolved whole");
    }

    #[test]
    fn split_last_separates_the_parent_as_written() {
        assert_eq!(split_last(b"/a/b"), Some((&b"/a/"[..], &b"b"[..])));
        assert_eq!(split_last(b"a//b//"), Some((&b"a//"[..], &b"b//"[..])));
        assert_eq!(split_last(b"b"), Some((&b""[..], &b"b"[..])));
        assert_eq!(split_last(b"/"), None);
        assert_eq!(split_last(b"/a/."), None);
        assert_eq!(split_last(b"/a/.."), None);
    }

    #[test]
    fn join_is_the_original_s_joinpath() {
        let mut out = Box::new(PathBuf::new());
        join(&mut out, OLDROOT, c"//dev/pts/3").unwrap();
        assert_eq!(out.as_bytes(), b"oldroot/dev/pts/3");
        join(&mut out, OLDROOT, c"/").unwrap();
        assert_eq!(out.as_bytes(), b"oldroot/");
    }

    #[test]
    fn tmp_directories_are_sticky_and_world_writable() {
        assert_eq!(tmp_or_dir_mode(b"newroot/tmp"), TMP_MODE);
        assert_eq!(tmp_or_dir_mode(b"newroot/var/tmp"), TMP_MODE);
        assert_eq!(tmp_or_dir_mode(b"newroot/etc"), DIR_MODE);
    }
}
