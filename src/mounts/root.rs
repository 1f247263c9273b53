//! The root set-up, all of it: a tmpfs workspace becomes `/` (the caller's root at `oldroot`,
//! the sandbox's at `newroot`), and once the operations are done `newroot` becomes `/`. With
//! `--binfmt-register` the sandbox's binfmt_misc instance is the floor the new root is stacked on
//! (see `binfmt`): an instance lives only as long as a mount of it.

use rustix::fd::AsFd;
use rustix::fs::{CWD, Mode, OFlags};
use rustix::mount::{MountFlags, MountPropagationFlags, MoveMountFlags, OpenTreeFlags, UnmountFlags};

use super::{DIR_MODE, mkdir};
use crate::binfmt::Instance;
use crate::error::{During, Result, Stage, Syscall};

/// Makes a tmpfs workspace the root, with the caller's root at `oldroot` and the (empty) new
/// root, a mount point, at `newroot`; the cwd is the workspace.
pub(crate) fn enter_workspace(floor: Option<&Instance>) -> Result<()> {
    // A tmpfs workspace, so that everything made here vanishes with the sandbox.
    rustix::mount::mount(c"tmpfs", c"/tmp", c"tmpfs", MountFlags::empty(), None)
        .during(Syscall::Mount)
        .map_err(|e| e.in_stage_at(Stage::Setup, c"/tmp"))?;
    rustix::process::chdir(c"/tmp").during(Syscall::Chdir)?;
    mkdir(c"newroot", DIR_MODE).during(Syscall::Mkdir)?;
    mkdir(c"oldroot", DIR_MODE).during(Syscall::Mkdir)?;
    match floor {
        Some(floor) => lay_floor(floor)?,
        None => rustix::mount::mount_bind_recursive(c"newroot", c"newroot").during(Syscall::Mount)?,
    }
    if rustix::process::pivot_root(c".", c"oldroot").is_err() {
        // In an initramfs `/` is not a mount point and pivot_root() fails: move instead.
        rustix::mount::mount_bind_recursive(c"/", c"oldroot").during(Syscall::Mount)?;
        rustix::mount::mount_move(c".", c"/").during(Syscall::Mount)?;
        rustix::process::chroot(c".").during(Syscall::Chroot)?;
        rustix::process::chdir(c".").during(Syscall::Chdir)?;
        // The workspace hid the caller's /tmp, which may hold sources: reveal it again.
        rustix::mount::unmount(c"oldroot/tmp", UnmountFlags::DETACH).during(Syscall::Umount2)?;
    }
    Ok(())
}

/// Makes `newroot` the root (the workspace and the caller's root go), as a new peer group. On
/// return the cwd is the new `/`.
pub(crate) fn pivot_into_new_root(floor: Option<&Instance>) -> Result<()> {
    if let Some(floor) = floor {
        pivot_onto_floor(floor)?;
    } else {
        rustix::process::chdir(c"newroot").during(Syscall::Chdir)?;
        // newroot is a mount point, so this pivot cannot hit the initramfs case.
        rustix::process::pivot_root(c".", c".").during(Syscall::PivotRoot)?;
        rustix::mount::unmount(c".", UnmountFlags::DETACH).during(Syscall::Umount2)?;
    }
    // A new peer group: mounts made inside propagate inside, never to the host.
    rustix::mount::mount_change(c".", MountPropagationFlags::SHARED | MountPropagationFlags::REC).during(Syscall::Mount)
}

/// Before the first pivot, in the workspace: the instance is mounted on `newroot`, and the new
/// root's own bind of the (empty) `newroot` directory on top of it.
#[cold]
#[inline(never)]
fn lay_floor(instance: &Instance) -> Result<()> {
    let flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
    let root = rustix::mount::open_tree(CWD, c"newroot", flags).during(Syscall::OpenTree)?;
    let empty = MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH;
    rustix::mount::move_mount(instance.as_fd(), c"", CWD, c"newroot", empty).during(Syscall::MoveMount)?;
    rustix::mount::move_mount(&root, c"", CWD, c"newroot", empty).during(Syscall::MoveMount)
}

/// The final pivot, onto the floor: the instance becomes the namespace's root mount and the
/// sandbox's root stays stacked on it. pivot_root() moves only the mount it is given, so it is
/// given the floor; the process's root is then the top of the stack, as for any unchrooted process
/// (nested user namespaces stay possible). Ends with the cwd at the new `/`.
#[cold]
#[inline(never)]
fn pivot_onto_floor(instance: &Instance) -> Result<()> {
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let top = rustix::fs::openat(CWD, c"newroot", flags, Mode::empty()).during(Syscall::Open)?;
    rustix::process::fchdir(instance.as_fd()).during(Syscall::Fchdir)?;
    rustix::process::pivot_root(c".", c".").during(Syscall::PivotRoot)?;
    // The workspace went on top of the stack: "." reaches it.
    rustix::mount::unmount(c".", UnmountFlags::DETACH).during(Syscall::Umount2)?;
    rustix::process::fchdir(&top).during(Syscall::Fchdir)?;
    rustix::process::chroot(c".").during(Syscall::Chroot)
}
