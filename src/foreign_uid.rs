//! mkosi 27's foreign-UID options. Its own sandbox serves them through systemd-nsresourced and
//! systemd-mountfsd unless the caller is already privileged; this sandbox talks to neither, so it
//! accepts what needs no service and refuses the rest in one line naming the service it would need.
//!
//! - `--map-foreign`: as root with CAP_SYS_ADMIN and CAP_CHOWN (no user namespace), nothing to do:
//!   the foreign UID range is already mapped (mkosi 27.1's `acquire_privileges()` returns early).
//!   Anyone else needs systemd-nsresourced to map the range.
//! - `--map-delegate N`: N = 0 delegates nothing; N > 0 needs systemd-nsresourced.
//! - `--bind-foreign`, `--ro-bind-foreign SRC DST`: always need systemd-mountfsd (the idmapped
//!   mount) and systemd-nsresourced (the transient range).

use core::ffi::CStr;

use rustix::thread::CapabilitySet;

use crate::decimal;
use crate::error::{During, Error, Reason, Result, Syscall};

/// Why a foreign-UID option is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `--map-delegate`'s N is not a decimal number.
    NotANumber,
    /// A transient UID range, the foreign range or delegated ranges for a user namespace.
    NeedsNsresourced,
    /// An idmapped mount of a foreign-owned tree (and the transient range it maps to).
    NeedsMountfsdAndNsresourced,
}

impl Reason for Refusal {
    fn text(self) -> &'static str {
        match self {
            Refusal::NotANumber => "not a number",
            Refusal::NeedsNsresourced => {
                "needs systemd-nsresourced, which this sandbox does not use (only root with CAP_SYS_ADMIN and CAP_CHOWN can do without)"
            }
            Refusal::NeedsMountfsdAndNsresourced => {
                "needs systemd-mountfsd and systemd-nsresourced, which this sandbox does not use"
            }
        }
    }
}

/// `--map-delegate N`: Ok for 0 (nothing to delegate), else the one-line refusal.
pub(crate) fn map_delegate(count: &'static CStr) -> Result<()> {
    let error = match decimal::parse(count.to_bytes()) {
        None => Error::invalid(Refusal::NotANumber),
        Some(0) => return Ok(()),
        Some(_) => Error::invalid(Refusal::NeedsNsresourced),
    };
    Err(error.for_option("--map-delegate", Some(count), None))
}

/// `--bind-foreign` / `--ro-bind-foreign SRC DST`: the one-line refusal.
pub(crate) fn bind_foreign(option: &'static str, src: &'static CStr, dst: &'static CStr) -> Error {
    Error::invalid(Refusal::NeedsMountfsdAndNsresourced).for_option(option, Some(src), Some(dst))
}

/// `--map-foreign`, checked where the user namespace is decided (only when the option was given:
/// one capget() that other calls never pay). `userns`: whether this start makes a user namespace.
pub(crate) fn check_map_foreign(userns: bool) -> Result<()> {
    let caps = rustix::thread::capabilities(None)
        .during(Syscall::Capget)
        .map_err(|e| e.for_option("--map-foreign", None, None))?;
    if !userns && caps.effective.contains(CapabilitySet::SYS_ADMIN | CapabilitySet::CHOWN) {
        Ok(())
    } else {
        Err(Error::invalid(Refusal::NeedsNsresourced).for_option("--map-foreign", None, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(e: Error) -> String {
        let mut l = crate::line::Line::new();
        e.render(&mut l);
        String::from_utf8(l.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn map_delegate_zero_is_nothing_and_more_needs_nsresourced() {
        assert_eq!(map_delegate(c"0"), Ok(()));
        assert_eq!(map_delegate(c"00"), Ok(()));
        let more = line(map_delegate(c"2").unwrap_err());
        assert!(more.starts_with("mkosi-sandbox: --map-delegate 2: needs systemd-nsresourced"), "{more}");
        assert_eq!(line(map_delegate(c"x").unwrap_err()), "mkosi-sandbox: --map-delegate x: not a number\n");
        assert_eq!(line(map_delegate(c"").unwrap_err()), "mkosi-sandbox: --map-delegate : not a number\n");
        assert_eq!(line(map_delegate(c"-1").unwrap_err()), "mkosi-sandbox: --map-delegate -1: not a number\n");
    }

    #[test]
    fn bind_foreign_names_both_services() {
        let e = line(bind_foreign("--ro-bind-foreign", c"/src", c"/dst"));
        assert_eq!(
            e,
            "mkosi-sandbox: --ro-bind-foreign /src /dst: needs systemd-mountfsd and systemd-nsresourced, which this sandbox does not use\n"
        );
    }

    #[test]
    fn map_foreign_in_a_user_namespace_needs_nsresourced() {
        let e = line(check_map_foreign(true).unwrap_err());
        assert!(e.starts_with("mkosi-sandbox: --map-foreign: needs systemd-nsresourced"), "{e}");
    }
}
