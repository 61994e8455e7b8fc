//! Namespaces: which ones a sandbox gets, as clone(2) flags, and the uid/gid
//! maps of its user namespace (user_namespaces(7)).
//!
//! The cgroup namespace is not created by clone: the child unshares it after
//! the parent has moved it into its cgroup, so the namespace's root is the
//! sandbox's own cgroup rather than the caller's.

use std::fs;
use std::io;
use std::path::PathBuf;

use oci_spec::runtime::{LinuxIdMapping, LinuxNamespace, LinuxNamespaceType};

/// A namespace failure, naming the namespace or file.
#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    /// Writing a uid or gid map, or setgroups, failed.
    #[error("cannot write {path} ({content:?}): {source}")]
    WriteMap {
        /// The /proc file.
        path: PathBuf,
        /// What was written.
        content: String,
        /// The kernel's answer.
        source: io::Error,
    },
}

/// The namespaces a sandbox gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NamespaceSet {
    /// CLONE_NEW* flags to pass to clone3 (without CLONE_NEWCGROUP).
    pub clone_flags: u64,
    /// Whether the child unshares a cgroup namespace after placement.
    pub cgroup: bool,
}

impl NamespaceSet {
    /// Reads the namespace list of a spec.
    ///
    /// # Errors
    ///
    /// A namespace with a `path` (join instead of create) is refused.
    pub fn from_spec(namespaces: &[LinuxNamespace]) -> Result<Self, NamespaceError> {
        let mut set = NamespaceSet::default();
        for ns in namespaces {
            // A namespace named by path is joined, not created (see
            // `ChildPlan`); the cgroup namespace then needs no unshare.
            if ns.path().is_some() {
                continue;
            }
            let flag = match ns.typ() {
                LinuxNamespaceType::User => libc::CLONE_NEWUSER,
                LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
                LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
                LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
                LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
                LinuxNamespaceType::Network => libc::CLONE_NEWNET,
                LinuxNamespaceType::Time => libc::CLONE_NEWTIME,
                LinuxNamespaceType::Cgroup => {
                    set.cgroup = true;
                    continue;
                }
            };
            // The flags are small positive constants from <sched.h>.
            set.clone_flags |= u64::from(flag.unsigned_abs());
        }
        Ok(set)
    }

    /// Whether the set contains `flag` (a `libc::CLONE_NEW*` constant).
    pub fn has(&self, flag: i32) -> bool {
        self.clone_flags & u64::from(flag.unsigned_abs()) != 0
    }
}

/// Renders id mappings as the text the kernel expects in uid_map/gid_map.
pub fn render_id_map(mappings: &[LinuxIdMapping]) -> String {
    mappings
        .iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Writes the uid and gid maps of the user namespace of `pid`.
///
/// An unprivileged caller must deny setgroups(2) before writing a gid map
/// (user_namespaces(7), since Linux 3.19); a privileged caller keeps it, so
/// the sandbox can still set supplementary groups.
///
/// # Errors
///
/// Any write that fails, with the file and the content.
pub fn write_id_maps(
    pid: i32,
    uid_mappings: &[LinuxIdMapping],
    gid_mappings: &[LinuxIdMapping],
    deny_setgroups: bool,
) -> Result<(), NamespaceError> {
    let write = |name: &str, content: String| {
        let path = PathBuf::from(format!("/proc/{pid}/{name}"));
        fs::write(&path, content.as_bytes()).map_err(|source| NamespaceError::WriteMap {
            path,
            content,
            source,
        })
    };
    if deny_setgroups {
        write("setgroups", "deny".to_string())?;
    }
    write("uid_map", render_id_map(uid_mappings))?;
    write("gid_map", render_id_map(gid_mappings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxIdMappingBuilder, LinuxNamespaceBuilder};

    fn ns(typ: LinuxNamespaceType) -> LinuxNamespace {
        LinuxNamespaceBuilder::default().typ(typ).build().unwrap()
    }

    #[test]
    fn cgroup_namespace_is_not_a_clone_flag() {
        let set = NamespaceSet::from_spec(&[
            ns(LinuxNamespaceType::Mount),
            ns(LinuxNamespaceType::Cgroup),
        ])
        .unwrap();
        assert!(set.cgroup);
        assert!(set.has(libc::CLONE_NEWNS));
        assert!(!set.has(libc::CLONE_NEWCGROUP));
    }

    #[test]
    fn a_namespace_named_by_path_is_not_created() {
        let joined = LinuxNamespaceBuilder::default()
            .typ(LinuxNamespaceType::Network)
            .path("/run/netns/x")
            .build()
            .unwrap();
        let set = NamespaceSet::from_spec(&[joined, ns(LinuxNamespaceType::Uts)]).unwrap();
        assert!(!set.has(libc::CLONE_NEWNET));
        assert!(set.has(libc::CLONE_NEWUTS));
    }

    #[test]
    fn id_map_renders_one_line_per_mapping() {
        let m = LinuxIdMappingBuilder::default()
            .container_id(0u32)
            .host_id(1000u32)
            .size(1u32)
            .build()
            .unwrap();
        assert_eq!(render_id_map(&[m]), "0 1000 1\n");
    }
}
