//! Capabilities (capabilities(7)): the five sets of the sandboxed process and
//! no_new_privs (prctl(2) PR_SET_NO_NEW_PRIVS).
//!
//! The sets are per thread, so they are changed in the single-threaded child
//! just before exec. The bounding set is dropped first, while the child still
//! holds CAP_SETPCAP; the user switch happens with PR_SET_KEEPCAPS so the
//! permitted set survives it; then permitted, effective, inheritable and
//! ambient are set to exactly what the spec lists.

use std::collections::HashSet;

use caps::{CapSet, Capability as Cap, CapsHashSet};
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

/// A capability failure, naming the set or capability.
#[derive(Debug, thiserror::Error)]
pub enum CapabilityError {
    /// A capability name is not known to this kernel interface.
    #[error(
        "unknown capability {0:?}; names look like CAP_NET_BIND_SERVICE (see capabilities(7))"
    )]
    Unknown(String),
    /// Changing a set failed.
    #[error("cannot set the {set} capability set: {source}{missing}")]
    Set {
        /// Which set.
        set: &'static str,
        /// " (sunaba itself lacks ...)" when it asked for more than it holds.
        missing: String,
        /// The error from capset(2) or prctl(2).
        source: caps::errors::CapsError,
    },
    /// prctl(PR_SET_NO_NEW_PRIVS) failed.
    #[error("cannot set no_new_privs: {0}")]
    NoNewPrivs(std::io::Error),
}

/// The capability sets of the sandboxed process, resolved for this kernel.
#[derive(Debug, Clone, Default)]
pub struct CapabilitySets {
    bounding: CapsHashSet,
    effective: CapsHashSet,
    permitted: CapsHashSet,
    inheritable: CapsHashSet,
    ambient: CapsHashSet,
}

/// Parses a capability name, with or without the `CAP_` prefix and in any case.
pub fn parse_capability(name: &str) -> Result<Capability, CapabilityError> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    bare.parse::<Capability>()
        .map_err(|_| CapabilityError::Unknown(name.to_string()))
}

fn to_caps(set: &Option<Capabilities>) -> Result<CapsHashSet, CapabilityError> {
    let mut out = HashSet::new();
    for cap in set.iter().flatten() {
        let name = format!("CAP_{cap}");
        out.insert(
            name.parse::<Cap>()
                .map_err(|_| CapabilityError::Unknown(name.clone()))?,
        );
    }
    Ok(out)
}

impl CapabilitySets {
    /// Resolves the spec's sets. Capabilities this kernel does not know are
    /// left out of the bounding set's drop list, so an old kernel still works.
    ///
    /// # Errors
    ///
    /// A name the `caps` crate does not know.
    pub fn from_spec(spec: &LinuxCapabilities) -> Result<Self, CapabilityError> {
        Ok(CapabilitySets {
            bounding: to_caps(spec.bounding())?,
            effective: to_caps(spec.effective())?,
            permitted: to_caps(spec.permitted())?,
            inheritable: to_caps(spec.inheritable())?,
            ambient: to_caps(spec.ambient())?,
        })
    }

    /// Drops every capability outside the bounding set. Needs CAP_SETPCAP, so
    /// it runs before the user switch.
    ///
    /// # Errors
    ///
    /// The first prctl(PR_CAPBSET_DROP) that fails.
    pub fn drop_bounding(&self) -> Result<(), CapabilityError> {
        for cap in caps::runtime::thread_all_supported() {
            if !self.bounding.contains(&cap) {
                caps::drop(None, CapSet::Bounding, cap)
                    .map_err(|source| set_error("bounding", &CapsHashSet::new(), source))?;
            }
        }
        Ok(())
    }

    /// Sets permitted, inheritable, effective and ambient to exactly the
    /// spec's sets (after the user switch).
    ///
    /// # Errors
    ///
    /// The first capset(2) or ambient prctl that fails.
    pub fn apply(&self) -> Result<(), CapabilityError> {
        let set = |which: CapSet, name: &'static str, wanted: &CapsHashSet| {
            caps::set(None, which, wanted).map_err(|source| set_error(name, wanted, source))
        };
        // Permitted first when the effective set shrinks with it, so the
        // effective set is never larger than the permitted one.
        let effective_first = self
            .effective
            .intersection(&self.permitted)
            .copied()
            .collect();
        set(CapSet::Effective, "effective", &effective_first)?;
        set(CapSet::Permitted, "permitted", &self.permitted)?;
        set(CapSet::Inheritable, "inheritable", &self.inheritable)?;
        set(CapSet::Effective, "effective", &self.effective)?;
        caps::clear(None, CapSet::Ambient)
            .map_err(|source| set_error("ambient", &CapsHashSet::new(), source))?;
        // The kernel keeps in the ambient set only what is both permitted
        // and inheritable (capabilities(7)); as runc, the rest of the
        // spec's ambient set is not raised rather than failing the start.
        let allowed = self
            .permitted
            .intersection(&self.inheritable)
            .copied()
            .collect::<CapsHashSet>();
        for cap in self.ambient.intersection(&allowed) {
            caps::raise(None, CapSet::Ambient, *cap)
                .map_err(|source| set_error("ambient", &self.ambient, source))?;
        }
        Ok(())
    }
}

/// The error for a set that could not be changed, naming what was asked
/// for that the process does not hold itself: the usual cause of EPERM.
fn set_error(
    set: &'static str,
    wanted: &CapsHashSet,
    source: caps::errors::CapsError,
) -> CapabilityError {
    let held = caps::read(None, CapSet::Permitted).unwrap_or_default();
    let mut missing: Vec<String> = wanted.difference(&held).map(|c| c.to_string()).collect();
    missing.sort();
    let missing = if missing.is_empty() {
        String::new()
    } else {
        format!(" (sunaba itself lacks {})", missing.join(", "))
    };
    CapabilityError::Set {
        set,
        missing,
        source,
    }
}

/// Sets no_new_privs: execve can no longer grant privileges (setuid bits,
/// file capabilities), and seccomp filters can be installed without
/// CAP_SYS_ADMIN.
///
/// # Errors
///
/// The prctl's error.
pub fn set_no_new_privs() -> Result<(), CapabilityError> {
    nix::sys::prctl::set_no_new_privs()
        .map_err(|e| CapabilityError::NoNewPrivs(std::io::Error::from(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_names_parse_with_or_without_prefix() {
        assert_eq!(parse_capability("CAP_NET_RAW").unwrap(), Capability::NetRaw);
        assert_eq!(parse_capability("net_raw").unwrap(), Capability::NetRaw);
        assert!(parse_capability("CAP_FLY").is_err());
    }

    #[test]
    fn spec_sets_map_onto_kernel_capabilities() {
        let spec = oci_spec::runtime::LinuxCapabilitiesBuilder::default()
            .bounding(
                [Capability::Chown, Capability::Kill]
                    .into_iter()
                    .collect::<Capabilities>(),
            )
            .effective(Capabilities::new())
            .build()
            .unwrap();
        let sets = CapabilitySets::from_spec(&spec).unwrap();
        assert!(sets.bounding.contains(&Cap::CAP_CHOWN));
        assert!(sets.bounding.contains(&Cap::CAP_KILL));
        assert!(sets.effective.is_empty());
    }
}
