//! Namespaced sysctls (runtime-spec `config-linux.md`, "Sysctl"). Only the
//! keys the kernel keeps per namespace are accepted, and only when the
//! sandbox has that namespace: anything else would change the host.

use std::path::PathBuf;

use crate::namespaces::NamespaceSet;

/// A sysctl that cannot be set in the sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    /// The key is not namespaced, or its namespace is the host's.
    #[error("sysctl {key} cannot be set: {reason}")]
    NotNamespaced {
        /// The key.
        key: String,
        /// Why.
        reason: &'static str,
    },
}

/// The IPC sysctls the kernel keeps per IPC namespace (ipc_namespace.h).
const IPC_KEYS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// Checks `key` against the sandbox's namespaces and returns its file under
/// /proc/sys.
///
/// # Errors
///
/// A key that is not namespaced, or whose namespace the sandbox shares
/// with the host.
pub fn path_for(key: &str, namespaces: &NamespaceSet) -> Result<PathBuf, SysctlError> {
    let refuse = |reason| {
        Err(SysctlError::NotNamespaced {
            key: key.to_string(),
            reason,
        })
    };
    if key.is_empty() || key.contains("..") || key.contains('/') {
        return refuse("it is not a sysctl name");
    }
    let needs = if key == "kernel.hostname" || key == "kernel.domainname" {
        libc::CLONE_NEWUTS
    } else if IPC_KEYS.contains(&key) || key.starts_with("fs.mqueue.") {
        libc::CLONE_NEWIPC
    } else if key.starts_with("net.") {
        libc::CLONE_NEWNET
    } else {
        return refuse("it is not kept per namespace, so setting it would change the host");
    };
    if !namespaces.has(needs) {
        return refuse("the container shares that namespace with the host");
    }
    Ok(PathBuf::from("/proc/sys").join(key.replace('.', "/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_namespaced_keys_in_own_namespaces_pass() {
        let all = NamespaceSet {
            clone_flags: u64::from(
                (libc::CLONE_NEWUTS | libc::CLONE_NEWIPC | libc::CLONE_NEWNET).unsigned_abs(),
            ),
            cgroup: false,
        };
        assert_eq!(
            path_for("net.ipv4.ip_forward", &all).unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/ip_forward")
        );
        assert!(path_for("kernel.domainname", &all).is_ok());
        assert!(path_for("vm.swappiness", &all).is_err());
        assert!(path_for("net.ipv4.ip_forward", &NamespaceSet::default()).is_err());
    }
}
