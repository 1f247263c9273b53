//! Leaving the caller's namespaces: decide on a user namespace, install the seccomp filter,
//! unshare everything in one call, then write the maps (or make `/` a slave when there is no user
//! namespace). Subordinate id ranges imply a user namespace; their maps are built here
//! ([`subid`]) and written by the helper of [`Mapper`], forked before the filter and `unshare()`.

use rustix::mount::MountPropagationFlags;

use crate::containers::{Bump, FixedVec};
use crate::error::{During, Error, Reason, Result, Stage, Syscall};
use crate::mapper::Mapper;
use crate::request::{Request, Settings};
use crate::subid::{self, Kind, MAX_RANGES, Ranges};
use crate::sys::{Namespaces, SingleThreaded};
use crate::{binfmt, foreign_uid, seccomp, sys, userns};

/// The two complete maps when subordinate ranges are asked for.
pub(crate) struct Storage {
    uid_map: Ranges,
    gid_map: Ranges,
}

impl Storage {
    pub(crate) const fn new() -> Self {
        Self { uid_map: FixedVec::new(), gid_map: FixedVec::new() }
    }
}

impl Default for Storage {
    fn default() -> Self {
        Self::new()
    }
}

/// Why [`enter`] refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// The kernel makes a user namespace only for a single-threaded process (the library's
    /// callers can have threads; the binary never does).
    Threads,
}

impl Reason for Refusal {
    fn text(self) -> &'static str {
        match self {
            Refusal::Threads => {
                "the calling process has more than one thread, and a user namespace needs a single-threaded one \
                 (enter in a freshly forked child, before any thread starts)"
            }
        }
    }
}

/// Leaves the caller's namespaces. With `--binfmt-register` the rules are read and checked first
/// (on the host) and registered last (in the new user namespace's own binfmt_misc instance,
/// returned: the sandbox's root is stacked on it). `bump` keeps the words of a failing
/// newuidmap for the message. `one_thread` is None in a process that may have other threads (an
/// in-process caller's): refused when a user namespace is needed.
pub(crate) fn enter<'b>(
    request: &Request<'_>,
    storage: &mut Storage,
    binfmt: &'b mut binfmt::Storage,
    one_thread: Option<SingleThreaded>,
    bump: &mut Bump<'static>,
) -> Result<Option<&'b binfmt::Instance>> {
    let settings = &request.settings;
    if settings.binfmt_register {
        binfmt::load(request.binfmt_rules, binfmt, bump)?;
    }
    let caller = userns::Caller::current()?;
    let Decision { ranges, userns, namespaces, chown, raise_ambient } =
        decide(request, &caller, userns::uid_map_has_single_user);
    let one_thread = match one_thread {
        Some(token) => Some(token),
        None if userns => return Err(Error::invalid(Refusal::Threads).in_stage(Stage::UserNamespace)),
        None => None,
    };
    if ranges {
        build_maps(request, &caller, storage)?;
    }
    if settings.binfmt_register {
        binfmt::may_register(userns, root_mapped(settings.become_root, ranges, &storage.uid_map))?;
    }
    if settings.map_foreign {
        foreign_uid::check_map_foreign(userns)?;
    }
    let mapper = if ranges {
        // Before the seccomp filter: its NO_NEW_PRIVS would disarm the setuid newuidmap.
        // Ranges imply a user namespace, so the token is there (checked above).
        let Some(one_thread) = one_thread else { return Err(Error::invalid(Refusal::Threads)) };
        let mapper = Mapper::start(
            one_thread,
            storage.uid_map.as_slice(),
            storage.gid_map.as_slice(),
            caller.uid == 0,
            settings.map_auto,
        )?;
        if chown {
            install_filter_for_ranges(settings, storage)?;
        } else {
            seccomp::install(false, settings.suppress_sync)?;
        }
        Some(mapper)
    } else {
        seccomp::install(chown, settings.suppress_sync)?;
        None
    };
    sys::unshare(namespaces).during(Syscall::Unshare).map_err(|e| e.in_stage(Stage::Unshare))?;
    if userns {
        match mapper {
            Some(mapper) => mapper.finish(bump)?,
            None => userns::write_maps(&caller, settings.become_root).map_err(|e| e.in_stage(Stage::UserNamespace))?,
        }
        if raise_ambient {
            userns::raise_ambient().map_err(|e| e.in_stage(Stage::Capabilities))?;
        }
    } else {
        // A user namespace makes the copied mounts slaves by itself; without one, do it here so
        // that nothing done in the sandbox propagates to the host.
        rustix::mount::mount_change(c"/", MountPropagationFlags::DOWNSTREAM | MountPropagationFlags::REC)
            .during(Syscall::Mount)
            .map_err(|e| e.in_stage(Stage::RootPropagation))?;
    }
    if settings.binfmt_register { binfmt::register(binfmt).map(Some) } else { Ok(None) }
}

/// What [`enter`] does, decided from the request and the caller alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Decision {
    /// Subordinate id ranges are asked for: maps written by the helper.
    ranges: bool,
    userns: bool,
    namespaces: Namespaces,
    /// `--suppress-chown` takes effect (the filter makes chown calls succeed without effect).
    chown: bool,
    /// Without `--become-root` the caller keeps its capabilities inside as ambient ones.
    raise_ambient: bool,
}

/// `single_user` asks the kernel whether this process's uid map has a single user (looked at
/// only for `--suppress-chown` without a user namespace of our own).
fn decide(request: &Request<'_>, caller: &userns::Caller, single_user: impl FnOnce() -> bool) -> Decision {
    let settings = &request.settings;
    let ranges = request.maps_ranges();
    let userns = ranges || caller.needs_userns(settings.become_root);
    let mut namespaces = userns::namespaces(caller, userns, settings.unshare_net, settings.unshare_ipc);
    // `--unshare-pid`: for the children (see `pidns`); the same call, owned by the user namespace.
    namespaces.pid = settings.unshare_pid;
    let chown = settings.suppress_chown && (userns || single_user());
    Decision { ranges, userns, namespaces, chown, raise_ambient: userns && !settings.become_root }
}

/// The instance's `register` belongs to the namespace's root user: mapped by --become-root, or
/// by a range from inside id 0 (--map-auto without --become-root).
fn root_mapped(become_root: bool, ranges: bool, uid_map: &Ranges) -> bool {
    become_root || (ranges && uid_map.iter().any(|r| r.inner == 0))
}

/// Both complete maps: the caller's own id (to 0 with `--become-root`, else to itself),
/// `--map-auto`'s lines, the explicit ranges.
#[cold]
#[inline(never)]
fn build_maps(request: &Request<'_>, caller: &userns::Caller, storage: &mut Storage) -> Result<()> {
    let settings = &request.settings;
    let inside = |id: u32| if settings.become_root { 0 } else { id };
    let name = if settings.map_auto { subid::user_name(caller.uid) } else { None };
    let name = name.as_ref().map(|n| n.as_bytes());
    let auto =
        |kind| if settings.map_auto { subid::first_subid_range(kind, name, caller.uid).map(Some) } else { Ok(None) };
    subid::build(
        Kind::Uid,
        inside(caller.uid),
        caller.uid,
        auto(Kind::Uid)?,
        request.uid_ranges,
        &mut storage.uid_map,
    )?;
    subid::build(Kind::Gid, inside(caller.gid), caller.gid, auto(Kind::Gid)?, request.gid_ranges, &mut storage.gid_map)
}

/// `--suppress-chown` with ranges: chown to the mapped ids really happens (see
/// [`seccomp::install_mapped`]).
#[cold]
#[inline(never)]
fn install_filter_for_ranges(settings: &Settings, storage: &Storage) -> Result<()> {
    let (mut uids, mut gids) = ([(0, 0); MAX_RANGES], [(0, 0); MAX_RANGES]);
    let (nu, ng) = (subid::inside_spans(&storage.uid_map, &mut uids), subid::inside_spans(&storage.gid_map, &mut gids));
    seccomp::install_mapped(settings.suppress_sync, seccomp::MappedIds { uids: &uids[..nu], gids: &gids[..ng] })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Settings;
    use crate::subid::Range;

    const ROOT: userns::Caller = userns::Caller { uid: 0, gid: 0, sys_admin: true, net_admin: true };
    const USER: userns::Caller = userns::Caller { uid: 1000, gid: 1000, sys_admin: false, net_admin: false };

    fn request(settings: Settings, uid_ranges: &[Range]) -> Request<'_> {
        Request {
            settings,
            ops: &[],
            lowerdirs: &[],
            setenv: &[],
            unsetenv: &[],
            binfmt_rules: &[],
            uid_ranges,
            gid_ranges: &[],
        }
    }

    fn decided(settings: Settings, caller: &userns::Caller, single_user: bool) -> Decision {
        decide(&request(settings, &[]), caller, || single_user)
    }

    #[test]
    fn root_gets_no_user_namespace_and_keeps_its_capabilities() {
        let d = decided(Settings::default(), &ROOT, false);
        assert!(!d.userns && !d.ranges && !d.chown && !d.raise_ambient);
        assert_eq!(d.namespaces, Namespaces { mount: true, ..Namespaces::default() });
        // As in the original: root's --become-root needs no user namespace either.
        assert!(!decided(Settings { become_root: true, ..Settings::default() }, &ROOT, false).userns);
    }

    #[test]
    fn a_user_gets_a_user_namespace_and_ambient_capabilities_unless_root_inside() {
        let d = decided(Settings::default(), &USER, false);
        assert!(d.userns && d.namespaces.user && d.raise_ambient);
        let d = decided(Settings { become_root: true, ..Settings::default() }, &USER, false);
        assert!(d.userns && !d.raise_ambient);
    }

    #[test]
    fn ranges_imply_a_user_namespace_even_for_root() {
        let ranges = [Range { inner: 1, outer: 100_000, count: 10, given: c"1:100000:10" }];
        let d = decide(&request(Settings::default(), &ranges), &ROOT, || false);
        assert!(d.ranges && d.userns && d.namespaces.user);
        let d = decide(&request(Settings { map_auto: true, ..Settings::default() }, &[]), &ROOT, || false);
        assert!(d.ranges && d.userns);
    }

    #[test]
    fn the_pid_net_and_ipc_namespaces_follow_the_options() {
        let all = Settings { unshare_pid: true, unshare_net: true, unshare_ipc: true, ..Settings::default() };
        let d = decided(all, &USER, false);
        assert!(d.namespaces.pid && d.namespaces.net && d.namespaces.ipc);
        assert!(!decided(Settings::default(), &USER, false).namespaces.pid);
    }

    #[test]
    fn suppress_chown_takes_effect_in_a_user_namespace_or_a_single_user_map() {
        let suppress = Settings { suppress_chown: true, ..Settings::default() };
        assert!(decided(suppress, &USER, false).chown);
        assert!(!decided(suppress, &ROOT, false).chown);
        assert!(decided(suppress, &ROOT, true).chown);
        let asked = core::cell::Cell::new(false);
        decide(&request(Settings::default(), &[]), &ROOT, || asked.replace(true));
        assert!(!asked.get(), "the uid map is read only for --suppress-chown");
    }

    #[test]
    fn binfmt_needs_root_mapped() {
        let mut map = Ranges::new();
        assert!(root_mapped(true, false, &map));
        assert!(!root_mapped(false, false, &map));
        map.push(Range { inner: 0, outer: 100_000, count: 65536, given: c"0:100000:65536" }).unwrap();
        assert!(root_mapped(false, true, &map));
        assert!(!root_mapped(false, false, &map), "without ranges the map is not ours");
    }
}
