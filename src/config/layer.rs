//! A layer of settings: what one profile file or one command line says.
//! Layers stack (a profile's `extends`, then the profile, then the flags);
//! a later layer's value wins, and lists merge by destination or name.

use std::path::PathBuf;

use serde::Deserialize;

use super::values::{Cpus, EnvVar, Size, SwapLimit, Timeout, Tmpfs, UserSpec, Volume};

/// The network a sandbox gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// A new network namespace with only `lo`, up.
    None,
    /// The host's network namespace.
    Host,
}

/// The `[filesystem]` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesystemLayer {
    /// Make the root filesystem read-only.
    pub read_only: Option<bool>,
    /// A directory to use as the root instead of the host's system directories.
    pub rootfs: Option<PathBuf>,
    /// tmpfs mounts; one for an existing destination replaces it.
    #[serde(default)]
    pub tmpfs: Vec<Tmpfs>,
    /// Bind mounts and named volumes; one for an existing destination replaces it.
    #[serde(default)]
    pub volumes: Vec<Volume>,
    /// Extra paths to hide (a file behind /dev/null, a directory behind an empty tmpfs).
    #[serde(default)]
    pub mask: Vec<PathBuf>,
    /// Mount a read-only /sys.
    pub sys: Option<bool>,
}

/// The `[resources]` section: cgroup limits.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourcesLayer {
    /// memory.max / memory.limit_in_bytes.
    pub memory: Option<Size>,
    /// memory.low / memory.soft_limit_in_bytes.
    pub memory_reservation: Option<Size>,
    /// Memory plus swap.
    pub memory_swap: Option<SwapLimit>,
    /// CPU quota, in CPUs.
    pub cpus: Option<Cpus>,
    /// Relative CPU weight (docker's shares, 1024 is the default weight).
    pub cpu_shares: Option<u64>,
    /// pids.max.
    pub pids_limit: Option<i64>,
    /// Fail instead of warning when a limit cannot be enforced.
    pub require_limits: Option<bool>,
}

/// The `[security]` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityLayer {
    /// Set no_new_privs.
    pub no_new_privileges: Option<bool>,
    /// `default`, `agent`, `unconfined`, or a path to an OCI seccomp JSON file.
    pub seccomp: Option<String>,
    /// The complete capability set; replaces the one below it.
    pub capabilities: Option<Vec<String>>,
    /// Capabilities to add (`ALL` for every one).
    #[serde(default)]
    pub cap_add: Vec<String>,
    /// Capabilities to drop (`ALL` for every one).
    #[serde(default)]
    pub cap_drop: Vec<String>,
}

/// The `[network]` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkLayer {
    /// `none` or `host`.
    pub mode: Option<NetworkMode>,
}

/// The `[process]` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessLayer {
    /// Environment variables; a later one with the same name wins.
    #[serde(default)]
    pub env: Vec<EnvVar>,
    /// The working directory inside the sandbox.
    pub workdir: Option<PathBuf>,
    /// The numeric user (and group) to run as.
    pub user: Option<UserSpec>,
    /// The sandbox's hostname.
    pub hostname: Option<String>,
    /// Run a small init as pid 1 that reaps zombies and forwards signals.
    pub init: Option<bool>,
    /// Kill the whole sandbox after this long.
    pub timeout: Option<Timeout>,
}

/// One layer of settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    /// A profile's purpose, one line.
    pub description: Option<String>,
    /// The profile this one builds on.
    pub extends: Option<String>,
    /// Filesystem settings.
    #[serde(default)]
    pub filesystem: FilesystemLayer,
    /// Resource limits.
    #[serde(default)]
    pub resources: ResourcesLayer,
    /// Security settings.
    #[serde(default)]
    pub security: SecurityLayer,
    /// Network settings.
    #[serde(default)]
    pub network: NetworkLayer,
    /// Process settings.
    #[serde(default)]
    pub process: ProcessLayer,
}

fn over<T>(base: &mut Option<T>, top: Option<T>) {
    if top.is_some() {
        *base = top;
    }
}

/// Appends `top` to `base`, an entry of `top` replacing the entry of `base`
/// with the same key.
fn merge_by<T, K: PartialEq>(base: &mut Vec<T>, top: Vec<T>, key: impl Fn(&T) -> K) {
    for item in top {
        base.retain(|b| key(b) != key(&item));
        base.push(item);
    }
}

impl Layer {
    /// Puts `top` over `self`.
    pub fn merge(&mut self, top: Layer) {
        over(&mut self.description, top.description);
        self.extends = top.extends;

        let (fs, t) = (&mut self.filesystem, top.filesystem);
        over(&mut fs.read_only, t.read_only);
        over(&mut fs.rootfs, t.rootfs);
        over(&mut fs.sys, t.sys);
        merge_by(&mut fs.tmpfs, t.tmpfs, |m| m.destination.clone());
        merge_by(&mut fs.volumes, t.volumes, |v| v.destination.clone());
        merge_by(&mut fs.mask, t.mask, |p| p.clone());

        let (r, t) = (&mut self.resources, top.resources);
        over(&mut r.memory, t.memory);
        over(&mut r.memory_reservation, t.memory_reservation);
        over(&mut r.memory_swap, t.memory_swap);
        over(&mut r.cpus, t.cpus);
        over(&mut r.cpu_shares, t.cpu_shares);
        over(&mut r.pids_limit, t.pids_limit);
        over(&mut r.require_limits, t.require_limits);

        let (s, t) = (&mut self.security, top.security);
        over(&mut s.no_new_privileges, t.no_new_privileges);
        over(&mut s.seccomp, t.seccomp);
        if t.capabilities.is_some() {
            // A complete set replaces the adjustments made below it too.
            s.cap_add.clear();
            s.cap_drop.clear();
        }
        over(&mut s.capabilities, t.capabilities);
        s.cap_add.extend(t.cap_add);
        s.cap_drop.extend(t.cap_drop);

        over(&mut self.network.mode, top.network.mode);

        let (p, t) = (&mut self.process, top.process);
        merge_by(&mut p.env, t.env, |e| e.name.clone());
        over(&mut p.workdir, t.workdir);
        over(&mut p.user, t.user);
        over(&mut p.hostname, t.hostname);
        over(&mut p.init, t.init);
        over(&mut p.timeout, t.timeout);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_layers_win_and_lists_merge_by_destination() {
        let mut base: Layer = toml::from_str(
            r#"
            [filesystem]
            tmpfs = ["/tmp:size=100m", "/run"]
            [resources]
            memory = "512m"
            cpus = 1
            "#,
        )
        .unwrap();
        let top: Layer = toml::from_str(
            r#"
            [filesystem]
            tmpfs = ["/tmp:size=1g"]
            [resources]
            memory = "1g"
            "#,
        )
        .unwrap();
        base.merge(top);
        assert_eq!(base.resources.memory, Some(Size(1 << 30)));
        assert_eq!(base.resources.cpus, Some(Cpus(1.0)));
        assert_eq!(base.filesystem.tmpfs.len(), 2);
        let tmp = base
            .filesystem
            .tmpfs
            .iter()
            .find(|t| t.destination == std::path::Path::new("/tmp"));
        assert_eq!(tmp.unwrap().size, Some(Size(1 << 30)));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_rejected() {
        let err = toml::from_str::<Layer>("[resources]\nmemroy = \"1g\"").unwrap_err();
        assert!(err.to_string().contains("memroy"), "{err}");
        let err = toml::from_str::<Layer>("[resources]\nmemory = \"12q\"").unwrap_err();
        assert!(err.to_string().contains("12q"), "{err}");
    }
}
