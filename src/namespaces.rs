//! Leaving the caller's namespaces: decide on a user namespace, install the seccomp filter,
//! unshare everything in one call, then write the maps (or make `/` a slave when there is no user
//! namespace). A step that needs a helper process (say, `newuidmap` for subordinate ids) belongs
//! here, next to `userns::write_maps`.

use rustix::mount::MountPropagationFlags;

use crate::cli::Settings;
use crate::error::{During, Result, Stage, Syscall};
use crate::{binfmt, seccomp, sys, userns};

pub fn enter(settings: &Settings) -> Result<()> {
    let caller = userns::Caller::current()?;
    let userns = caller.needs_userns(settings.become_root);
    if settings.binfmt_register {
        binfmt::may_register(userns, settings.become_root)?;
    }
    let namespaces = userns::namespaces(&caller, userns, settings.unshare_net, settings.unshare_ipc);
    let chown = settings.suppress_chown && (userns || userns::uid_map_has_single_user());
    seccomp::install(chown, settings.suppress_sync)?;
    sys::unshare(namespaces).during(Syscall::Unshare).map_err(|e| e.in_stage(Stage::Unshare))?;
    if userns {
        userns::write_maps(&caller, settings.become_root).map_err(|e| e.in_stage(Stage::UserNamespace))?;
        if !settings.become_root {
            userns::raise_ambient().map_err(|e| e.in_stage(Stage::Capabilities))?;
        }
    } else {
        // A user namespace makes the copied mounts slaves by itself; without one, do it here so
        // that nothing done in the sandbox propagates to the host.
        rustix::mount::mount_change(c"/", MountPropagationFlags::DOWNSTREAM | MountPropagationFlags::REC)
            .during(Syscall::Mount)
            .map_err(|e| e.in_stage(Stage::RootPropagation))?;
    }
    Ok(())
}
