//! `features`: what this runtime supports, as the runtime-spec's
//! features.json (`features.md`). Every entry is something the engine
//! carries out; what it does not (AppArmor, SELinux, Intel RDT, idmapped
//! mounts, systemd cgroups) is reported as absent or disabled.

use serde_json::json;

/// The hooks `hooks.rs` runs, by their config.json names.
pub const HOOKS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// The mount options `mounts.rs` carries out (anything else on a
/// filesystem mount goes to the filesystem as data).
pub const MOUNT_OPTIONS: [&str; 29] = [
    "ro",
    "rw",
    "nosuid",
    "suid",
    "nodev",
    "dev",
    "noexec",
    "exec",
    "bind",
    "rbind",
    "rro",
    "private",
    "rprivate",
    "slave",
    "rslave",
    "shared",
    "rshared",
    "unbindable",
    "runbindable",
    "relatime",
    "norelatime",
    "strictatime",
    "noatime",
    "atime",
    "nodiratime",
    "diratime",
    "sync",
    "async",
    "tmpcopyup",
];

/// The features document.
pub fn features() -> serde_json::Value {
    let namespaces = ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"];
    let mut capabilities: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
    capabilities.sort();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::container::oci::OCI_VERSION,
        "hooks": HOOKS,
        "mountOptions": MOUNT_OPTIONS,
        "linux": {
            "namespaces": namespaces,
            "capabilities": capabilities,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_X86_64"],
                "knownFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}}
        },
        "annotations": {"run.sunaba.root": "tmpfs: an empty tmpfs root instead of root.path"}
    })
}
