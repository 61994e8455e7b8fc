//! The command line: clap definitions and the mapping of each verb onto the
//! library, nothing else.

pub mod bench;
pub mod features;
pub mod lifecycle;
pub mod log;
pub mod run;
pub mod spec;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// sunaba: run a program in a sandbox built from kernel primitives.
#[derive(Debug, Parser)]
#[command(name = "sunaba", version, about, long_about = None)]
pub struct Cli {
    /// Log every setup step (same as --log-level debug).
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Log level: error, warn, info, debug or trace.
    #[arg(long, value_name = "LEVEL", global = true)]
    pub log_level: Option<LogLevel>,
    /// Write logs to FILE instead of standard error.
    #[arg(long, value_name = "FILE", global = true)]
    pub log: Option<PathBuf>,
    /// Log format.
    #[arg(long, value_name = "FORMAT", default_value = "text", global = true)]
    pub log_format: LogFormat,
    /// Where container state lives (default /run/sunaba, or
    /// $XDG_RUNTIME_DIR/sunaba for a non-root user).
    #[arg(long, value_name = "DIR", global = true)]
    pub root: Option<PathBuf>,
    /// Log at debug level (runc's name for --log-level debug).
    #[arg(long, global = true)]
    pub debug: bool,
    /// Accepted for runc compatibility: sunaba manages cgroups through
    /// cgroupfs, never through systemd, and says so.
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    /// Accepted for runc compatibility (true, false or auto): sunaba detects
    /// a rootless caller by its uid.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[allow(missing_docs)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

/// Log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One line of text per event.
    Text,
    /// One JSON object per event.
    Json,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command in a sandbox and wait for it; or, given a bundle
    /// (--bundle, or a single ID with ./config.json), create, start and wait
    /// for an OCI container.
    Run(Box<run::RunArgs>),
    /// Create an OCI container from a bundle; it waits for `start`.
    Create(lifecycle::CreateArgs),
    /// Let a created container run its program.
    Start(lifecycle::IdArgs),
    /// Print a container's state as JSON.
    State(lifecycle::IdArgs),
    /// Send a signal to a container (default SIGTERM).
    Kill(lifecycle::KillArgs),
    /// Remove a container: its processes, cgroup and state.
    Delete(lifecycle::DeleteArgs),
    /// List the containers.
    List(lifecycle::ListArgs),
    /// List a container's processes.
    Ps(lifecycle::PsArgs),
    /// Run another process in a running container.
    Exec(lifecycle::ExecArgs),
    /// Freeze every process of a container (cgroup freezer).
    Pause(lifecycle::IdArgs),
    /// Thaw a paused container.
    Resume(lifecycle::IdArgs),
    /// Change a container's resource limits.
    Update(lifecycle::UpdateArgs),
    /// Print a container's resource usage and OOM events as JSON.
    Events(lifecycle::EventsArgs),
    /// Write a default config.json for a bundle.
    Spec(spec::SpecArgs),
    /// Print what this runtime supports, as runtime-spec features JSON.
    Features,
    /// Measure what each layer of isolation costs, beside the peers.
    Bench(bench::BenchArgs),
    /// Run a command in a sandbox cut down to one layer (for `bench`).
    #[command(hide = true)]
    BenchLayer(bench::LayerArgs),
    /// Run one steady-state workload and print its figure (for `bench`).
    #[command(hide = true)]
    BenchWorkload(bench::WorkloadArgs),
}

impl Cli {
    /// The state root: --root, else /run/sunaba for root, else
    /// $XDG_RUNTIME_DIR/sunaba (or /tmp/sunaba-UID).
    pub fn state_root(&self) -> PathBuf {
        if let Some(root) = &self.root {
            return root.clone();
        }
        let euid = nix::unistd::geteuid().as_raw();
        if euid == 0 {
            return PathBuf::from("/run/sunaba");
        }
        match std::env::var_os("XDG_RUNTIME_DIR") {
            Some(dir) => PathBuf::from(dir).join("sunaba"),
            None => PathBuf::from(format!("/tmp/sunaba-{euid}")),
        }
    }
}
