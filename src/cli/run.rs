//! `sunaba run [OPTIONS] [--] COMMAND [ARGS...]`.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;

use crate::config::values::{
    Cpus, EnvVar, Size, SwapLimit, Timeout, Tmpfs, UserSpec, Volume, VolumeSource,
};
use crate::config::{self, build_spec, Layer, NetworkMode, RunContext};
use crate::container::{self, Exit};
use crate::Error;

/// Options of `sunaba run`; each overrides the profile.
#[derive(Debug, Args)]
#[command(trailing_var_arg = true)]
pub struct RunArgs {
    /// Profile: a name from the profile directories (default, agent, ...) or a path to a .toml file.
    #[arg(long, default_value = "default")]
    pub profile: String,
    /// Bind mount SRC:DST[:ro|rw]; a SRC not starting with / or . is a named volume.
    #[arg(short = 'v', long = "volume", value_name = "SRC:DST[:ro]")]
    pub volumes: Vec<Volume>,
    /// Mount a tmpfs: DST[:size=..,mode=..].
    #[arg(long, value_name = "DST[:OPTIONS]")]
    pub tmpfs: Vec<Tmpfs>,
    /// Make the root filesystem read-only.
    #[arg(long)]
    pub read_only: bool,
    /// Memory limit, e.g. 512m.
    #[arg(short = 'm', long, value_name = "SIZE")]
    pub memory: Option<Size>,
    /// Memory the kernel protects from reclaim, e.g. 256m.
    #[arg(long, value_name = "SIZE")]
    pub memory_reservation: Option<Size>,
    /// Memory plus swap, e.g. 1g; -1 for unlimited swap.
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_swap: Option<SwapLimit>,
    /// CPU quota in CPUs, e.g. 1.5.
    #[arg(long, value_name = "CPUS")]
    pub cpus: Option<Cpus>,
    /// Relative CPU weight (1024 is the default).
    #[arg(long, value_name = "SHARES")]
    pub cpu_shares: Option<u64>,
    /// Maximum number of processes; -1 for unlimited.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Network: none (only loopback) or host.
    #[arg(long, value_name = "MODE")]
    pub network: Option<NetworkMode>,
    /// no-new-privileges[:true|false], seccomp=PATH|default|agent|unconfined.
    #[arg(long, value_name = "OPT")]
    pub security_opt: Vec<String>,
    /// Add a capability (or ALL).
    #[arg(long, value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop a capability (or ALL).
    #[arg(long, value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Set an environment variable: NAME=VALUE, or NAME to pass the caller's value.
    #[arg(short = 'e', long = "env", value_name = "NAME[=VALUE]")]
    pub env: Vec<EnvVar>,
    /// Read environment variables from a file, one per line.
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the sandbox.
    #[arg(short = 'w', long, value_name = "DIR")]
    pub workdir: Option<PathBuf>,
    /// Run as a numeric user: UID, or UID:GID.
    #[arg(short = 'u', long, value_name = "UID[:GID]")]
    pub user: Option<UserSpec>,
    /// The sandbox's hostname.
    #[arg(long)]
    pub hostname: Option<String>,
    /// Run a small init as pid 1 that forwards signals and reaps zombies.
    #[arg(long)]
    pub init: bool,
    /// Kill the whole sandbox after DURATION (e.g. 30s, 5m); exit status 124.
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<Timeout>,
    /// Use DIR as the root filesystem instead of the host's system directories.
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,
    /// Fail instead of warning when a resource limit cannot be enforced.
    #[arg(long)]
    pub require_limits: bool,
    /// Log every setup step (same as --log-level debug).
    #[arg(long)]
    pub verbose: bool,
    /// OCI mode: the bundle to run as container COMMAND (its id).
    #[arg(short = 'b', long, value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    /// OCI mode: return once the container runs, without waiting for it.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// OCI mode: write the container's init pid to FILE.
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// OCI mode: the unix socket that receives the terminal's master.
    #[arg(long, value_name = "SOCKET")]
    pub console_socket: Option<PathBuf>,
    /// The command to run and its arguments.
    #[arg(value_name = "COMMAND", required = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

fn invalid(setting: &'static str, reason: String) -> Error {
    Error::Config(config::ConfigError::Invalid { setting, reason })
}

impl RunArgs {
    /// Whether this is runc's `run [--bundle DIR] ID` rather than a command
    /// to sandbox: an OCI-only flag was given, or a single argument without
    /// `--` next to a config.json in the current directory.
    pub fn is_bundle_run(&self, saw_separator: bool) -> bool {
        self.bundle.is_some()
            || self.detach
            || self.pid_file.is_some()
            || self.console_socket.is_some()
            || (self.command.len() == 1
                && !saw_separator
                && std::path::Path::new("config.json").is_file())
    }

    /// The options of the bundle run.
    pub fn create_options(&self) -> crate::container::oci::CreateOptions {
        crate::container::oci::CreateOptions {
            bundle: self.bundle.clone().unwrap_or_else(|| PathBuf::from(".")),
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            preserve_fds: 0,
        }
    }

    /// The settings the flags give, as a layer over the profile.
    ///
    /// # Errors
    ///
    /// An unknown `--security-opt` or an unreadable env file.
    pub fn layer(&self) -> Result<Layer, Error> {
        let mut layer = Layer::default();
        let fs = &mut layer.filesystem;
        fs.volumes = self.volumes.clone();
        fs.tmpfs = self.tmpfs.clone();
        fs.read_only = self.read_only.then_some(true);
        fs.rootfs = self.rootfs.clone();

        let r = &mut layer.resources;
        r.memory = self.memory;
        r.memory_reservation = self.memory_reservation;
        r.memory_swap = self.memory_swap;
        r.cpus = self.cpus;
        r.cpu_shares = self.cpu_shares;
        r.pids_limit = self.pids_limit;
        r.require_limits = self.require_limits.then_some(true);

        let s = &mut layer.security;
        s.cap_add = self.cap_add.clone();
        s.cap_drop = self.cap_drop.clone();
        for opt in &self.security_opt {
            match opt.split_once(['=', ':']) {
                None if opt == "no-new-privileges" => s.no_new_privileges = Some(true),
                Some(("no-new-privileges", v)) => {
                    s.no_new_privileges = Some(v.parse().map_err(|_| {
                        invalid("--security-opt", format!("{opt:?}: no-new-privileges takes true or false"))
                    })?)
                }
                Some(("seccomp", v)) if !v.is_empty() => s.seccomp = Some(v.to_string()),
                _ => {
                    return Err(invalid(
                        "--security-opt",
                        format!("{opt:?} is not supported; use no-new-privileges[:true|false] or seccomp=PATH|default|agent|unconfined"),
                    ))
                }
            }
        }
        layer.network.mode = self.network;

        let p = &mut layer.process;
        for file in &self.env_file {
            p.env.extend(config::read_env_file(file)?);
        }
        p.env.extend(self.env.iter().cloned());
        p.workdir = self.workdir.clone();
        p.user = self.user;
        p.hostname = self.hostname.clone();
        p.init = self.init.then_some(true);
        p.timeout = self.timeout;
        Ok(layer)
    }
}

/// Where named volumes live: `$SUNABA_DATA_DIR/volumes`, else
/// `/var/lib/sunaba/volumes` for root and `$XDG_DATA_HOME/sunaba/volumes`
/// (or `~/.local/share/sunaba/volumes`) for everyone else.
pub fn volume_dir(euid: u32) -> PathBuf {
    if let Some(dir) = std::env::var_os("SUNABA_DATA_DIR") {
        return PathBuf::from(dir).join("volumes");
    }
    if euid == 0 {
        return PathBuf::from("/var/lib/sunaba/volumes");
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    data.join("sunaba/volumes")
}

/// Runs `sunaba run`.
///
/// # Errors
///
/// Anything that keeps the program from starting.
pub fn run(args: &RunArgs) -> Result<Exit, Error> {
    let mut layer = config::profile::load(&args.profile).map_err(config::ConfigError::from)?;
    layer.merge(args.layer()?);

    let euid = nix::unistd::geteuid().as_raw();
    let cwd = std::env::current_dir().map_err(|e| Error::Io {
        what: "read the current directory".into(),
        source: e,
    })?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let ctx = RunContext {
        id: format!("run-{}-{nanos:08x}", std::process::id()),
        euid,
        egid: nix::unistd::getegid().as_raw(),
        cwd,
        volume_dir: volume_dir(euid),
        terminal: std::io::stdin().is_terminal() && std::io::stdout().is_terminal(),
    };
    // Named volumes are made while the spec is built, before the rest of it
    // is checked; a run refused after that must not leave new ones behind.
    let fresh_volumes: Vec<PathBuf> = layer
        .filesystem
        .volumes
        .iter()
        .filter_map(|v| match &v.source {
            VolumeSource::Named(name) => Some(ctx.volume_dir.join(name)),
            VolumeSource::Path(_) => None,
        })
        .filter(|dir| !dir.exists())
        .collect();
    let result = build_spec(&layer, &args.command, &ctx)
        .map_err(Error::from)
        .and_then(|(spec, options)| {
            tracing::trace!(spec = ?spec, "spec");
            container::run(&spec, &options)
        });
    if result.is_err() {
        // remove_dir takes only an empty directory: nothing the program may
        // have written is lost.
        for dir in &fresh_volumes {
            let _ = std::fs::remove_dir(dir);
        }
    }
    result
}
