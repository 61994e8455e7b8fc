//! sunaba's isolation taken apart into layers, for measuring what each one
//! costs. Every layer is the `agent` profile's spec with the layers above it
//! removed, so the top layer is the agent sandbox itself and each row of the
//! benchmark adds exactly one kind of isolation to the row before it.
//!
//! The mount namespace comes with the root filesystem: sunaba never runs a
//! sandbox in a mount namespace of its own without also giving it its own
//! root, so a layer with one and not the other would measure nothing real.

use std::path::PathBuf;

use oci_spec::runtime::{Capabilities, LinuxCapabilitiesBuilder, LinuxNamespaceType, Spec};

use crate::config::{self, RunContext, RunOptions};
use crate::container::{self, Exit};
use crate::Error;

/// One layer of isolation, each including every layer listed before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Layer {
    /// sunaba's own process: clone, sync channel, exec; no isolation.
    Runtime,
    /// pid, ipc, uts and cgroup namespaces (and user, when rootless).
    Namespaces,
    /// A network namespace holding only loopback.
    Network,
    /// A mount namespace with its own read-only root: pivot_root, read-only
    /// binds of the system directories, /proc, a minimal /dev, tmpfs.
    Rootfs,
    /// A cgroup with the agent profile's memory, cpu and pids limits.
    Cgroup,
    /// No capabilities, no_new_privs and the agent seccomp filter.
    Lockdown,
}

impl Layer {
    /// Every layer, bottom up.
    pub const ALL: [Layer; 6] = [
        Layer::Runtime,
        Layer::Namespaces,
        Layer::Network,
        Layer::Rootfs,
        Layer::Cgroup,
        Layer::Lockdown,
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Layer::Runtime => "runtime",
            Layer::Namespaces => "namespaces",
            Layer::Network => "network",
            Layer::Rootfs => "rootfs",
            Layer::Cgroup => "cgroup",
            Layer::Lockdown => "lockdown",
        }
    }

    /// What the layer adds, in a phrase.
    pub fn what(self) -> &'static str {
        match self {
            Layer::Runtime => "sunaba: clone, sync, exec; no isolation",
            Layer::Namespaces => "+ pid, ipc, uts, cgroup namespaces",
            Layer::Network => "+ network namespace (loopback only)",
            Layer::Rootfs => "+ mount namespace, read-only root, /proc, /dev, tmpfs",
            Layer::Cgroup => "+ cgroup with memory, cpu and pids limits",
            Layer::Lockdown => "+ no capabilities, no_new_privs, seccomp",
        }
    }
}

/// The agent profile's spec for `command`, cut down to `layer`.
///
/// # Errors
///
/// The agent profile or the command cannot make a spec.
pub fn spec(layer: Layer, command: &[String]) -> Result<(Spec, RunOptions), Error> {
    let profile = config::profile::load("agent").map_err(config::ConfigError::from)?;
    let euid = nix::unistd::geteuid().as_raw();
    let ctx = RunContext {
        id: format!("run-{}-bench", std::process::id()),
        euid,
        egid: nix::unistd::getegid().as_raw(),
        cwd: std::env::current_dir().map_err(|e| Error::Io {
            what: "read the current directory".into(),
            source: e,
        })?,
        volume_dir: crate::cli::run::volume_dir(euid),
        terminal: false,
    };
    let (mut spec, mut options) = config::build_spec(&profile, command, &ctx)?;
    // The agent's --init is not a layer of isolation: it is measured in the
    // agent row, which runs the profile through the command line.
    options.init = false;
    options.timeout = None;
    if layer < Layer::Lockdown {
        unlock(&mut spec);
    }
    if layer < Layer::Cgroup {
        options.no_cgroup = true;
    }
    if layer < Layer::Rootfs {
        remove_root(&mut spec);
    }
    if layer < Layer::Network {
        remove_namespace(&mut spec, LinuxNamespaceType::Network);
    }
    if layer < Layer::Namespaces {
        for kind in [
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Ipc,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Cgroup,
            LinuxNamespaceType::User,
        ] {
            remove_namespace(&mut spec, kind);
        }
        spec.set_hostname(None);
    }
    Ok((spec, options))
}

/// Runs `command` in a sandbox of `layer` and waits for it.
///
/// # Errors
///
/// Anything that keeps the program from starting.
pub fn run(layer: Layer, command: &[String]) -> Result<Exit, Error> {
    let (spec, options) = spec(layer, command)?;
    container::run(&spec, &options)
}

/// Keeps every capability, sets no no_new_privs and installs no filter.
fn unlock(spec: &mut Spec) {
    // What sunaba itself holds, which is what a sandbox keeps without this
    // layer.
    let all: Capabilities = caps::read(None, caps::CapSet::Effective)
        .unwrap_or_default()
        .iter()
        .filter_map(|c| crate::capabilities::parse_capability(&c.to_string()).ok())
        .collect();
    if let Some(process) = spec.process_mut() {
        let sets = LinuxCapabilitiesBuilder::default()
            .bounding(all.clone())
            .effective(all.clone())
            .permitted(all)
            .inheritable(Capabilities::new())
            .ambient(Capabilities::new())
            .build()
            .ok();
        process.set_capabilities(sets);
        process.set_no_new_privileges(Some(false));
    }
    if let Some(linux) = spec.linux_mut() {
        linux.set_seccomp(None);
    }
}

/// Stays in the host's mount namespace and root. Sysctls go too: without
/// its own /proc, a write would land in the host's /proc/sys.
fn remove_root(spec: &mut Spec) {
    remove_namespace(spec, LinuxNamespaceType::Mount);
    if let Some(linux) = spec.linux_mut() {
        linux.set_sysctl(None);
        linux.set_masked_paths(None);
        linux.set_readonly_paths(None);
    }
    if let Some(process) = spec.process_mut() {
        process.set_cwd(PathBuf::from("/"));
    }
}

fn remove_namespace(spec: &mut Spec, kind: LinuxNamespaceType) {
    if let Some(namespaces) = spec
        .linux_mut()
        .as_mut()
        .and_then(|l| l.namespaces_mut().as_mut())
    {
        namespaces.retain(|n| n.typ() != kind);
    }
}
