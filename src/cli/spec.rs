//! `spec [--bundle DIR] [--rootless]`: writes a starting config.json, as
//! `runc spec` does: a shell on a read-only `rootfs/`, with sunaba's own
//! defaults (its hostname, the masked and read-only paths it uses).

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;

use crate::Error;

/// Options of `spec`.
#[derive(Debug, Args)]
pub struct SpecArgs {
    /// The bundle directory to write config.json into.
    #[arg(short = 'b', long, value_name = "DIR", default_value = ".")]
    pub bundle: PathBuf,
    /// A config for a caller without root: a user namespace mapping uid 0
    /// to the caller, and no network namespace of its own.
    #[arg(long)]
    pub rootless: bool,
}

/// The default config.
pub fn default_config(rootless: bool) -> serde_json::Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
        json!({"type": "cgroup"}),
    ];
    let mut config = json!({
        "ociVersion": crate::container::oci::OCI_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "sunaba",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
        ],
        "linux": {
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    });
    if rootless {
        namespaces.push(json!({"type": "user"}));
        let uid = nix::unistd::geteuid().as_raw();
        let gid = nix::unistd::getegid().as_raw();
        config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
        config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
        // sysfs needs a network namespace its owner made; bind the host's.
        config["mounts"][5] = json!({"destination": "/sys", "type": "none", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
    } else {
        namespaces.push(json!({"type": "network"}));
    }
    config["linux"]["namespaces"] = json!(namespaces);
    config
}

/// Runs `spec`.
///
/// # Errors
///
/// An existing config.json (never overwritten) or a failed write.
pub fn run(args: &SpecArgs) -> Result<(), Error> {
    let path = Path::new(&args.bundle).join("config.json");
    let text = serde_json::to_string_pretty(&default_config(args.rootless)).unwrap_or_default();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| Error::Io {
            what: format!(
                "create {} (an existing one is never overwritten)",
                path.display()
            ),
            source: e,
        })?;
    std::io::Write::write_all(&mut file, format!("{text}\n").as_bytes()).map_err(|e| Error::Io {
        what: format!("write {}", path.display()),
        source: e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_configs_are_valid_specs() {
        for rootless in [false, true] {
            let text = default_config(rootless).to_string();
            let spec: oci_spec::runtime::Spec = serde_json::from_str(&text).unwrap();
            let namespaces = spec.linux().as_ref().unwrap().namespaces().clone().unwrap();
            let has_user = namespaces
                .iter()
                .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User);
            assert_eq!(has_user, rootless);
        }
    }
}
