//! The runc-compatible lifecycle verbs: `create`, `start`, `state`, `kill`,
//! `delete`, `list` and `ps`, with runc's names, flags and output.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use crate::container::oci::{self, CreateOptions};
use crate::Error;

/// `create [--bundle DIR] [--pid-file F] [--console-socket S] ID`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The bundle directory (holding config.json).
    #[arg(short = 'b', long, value_name = "DIR", default_value = ".")]
    pub bundle: PathBuf,
    /// Write the container's init pid to FILE.
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// A unix socket that receives the master of the container's terminal.
    #[arg(long, value_name = "SOCKET")]
    pub console_socket: Option<PathBuf>,
    /// Accepted for runc compatibility; sunaba always uses pivot_root.
    #[arg(long)]
    pub no_pivot: bool,
    /// Accepted for runc compatibility; sunaba creates no session keyring.
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass N descriptors after the standard ones on to the container.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,
    /// The container id.
    pub id: String,
}

impl CreateArgs {
    /// The engine's options.
    pub fn options(&self) -> CreateOptions {
        CreateOptions {
            bundle: self.bundle.clone(),
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            preserve_fds: self.preserve_fds,
        }
    }
}

/// A verb that takes only a container id.
#[derive(Debug, Args)]
pub struct IdArgs {
    /// The container id.
    pub id: String,
}

/// `kill [--all] ID [SIGNAL]`.
#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal every process in the container, not only its init.
    #[arg(short = 'a', long)]
    pub all: bool,
    /// The container id.
    pub id: String,
    /// The signal, by name (TERM, SIGKILL) or number.
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

/// `delete [--force] ID`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Kill a running container first.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// The container id.
    pub id: String,
}

/// Output formats of `list` and `ps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A table for people.
    Table,
    /// JSON for programs.
    Json,
}

/// `list [--format table|json] [--quiet]`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(short = 'f', long, default_value = "table")]
    pub format: Format,
    /// Print only the ids.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// `ps [--format table|json] ID`.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Output format.
    #[arg(short = 'f', long, default_value = "table")]
    pub format: Format,
    /// The container id.
    pub id: String,
}

/// Runs `create`.
///
/// # Errors
///
/// As [`oci::create`].
pub fn create(root: &Path, args: &CreateArgs) -> Result<(), Error> {
    oci::create(root, &args.id, &args.options())
}

/// Runs `kill`.
///
/// # Errors
///
/// As [`oci::kill`].
pub fn kill(root: &Path, args: &KillArgs) -> Result<(), Error> {
    oci::kill(root, &args.id, oci::parse_signal(&args.signal)?, args.all)
}

/// Runs `list`.
pub fn list(root: &Path, args: &ListArgs) -> String {
    if args.quiet {
        return crate::container::state::list_ids(root)
            .iter()
            .map(|id| format!("{id}\n"))
            .collect();
    }
    oci::list(root, args.format == Format::Json)
}

/// `exec [--process F] [-t] [--cwd DIR] [-e VAR] [-u UID[:GID]] [-d] ID [COMMAND...]`.
#[derive(Debug, Args)]
#[command(trailing_var_arg = true)]
pub struct ExecArgs {
    /// A runtime-spec process JSON file to run instead of COMMAND.
    #[arg(short = 'p', long, value_name = "FILE")]
    pub process: Option<PathBuf>,
    /// Give the process a pseudo-terminal.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Working directory inside the container.
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Set an environment variable, NAME=VALUE.
    #[arg(short = 'e', long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// Run as a numeric user: UID, or UID:GID.
    #[arg(short = 'u', long, value_name = "UID[:GID]")]
    pub user: Option<crate::config::values::UserSpec>,
    /// Add a capability to the process's sets.
    #[arg(short = 'c', long = "cap", value_name = "CAP")]
    pub caps: Vec<String>,
    /// Set no_new_privs for the process.
    #[arg(long)]
    pub no_new_privs: bool,
    /// Return once the process runs.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Write the process's pid to FILE.
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// A unix socket that receives the master of the process's terminal.
    #[arg(long, value_name = "SOCKET")]
    pub console_socket: Option<PathBuf>,
    /// The container id.
    pub id: String,
    /// The program and its arguments.
    #[arg(allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// Runs `exec`.
///
/// # Errors
///
/// As [`oci::exec`].
pub fn exec(root: &Path, args: &ExecArgs) -> Result<Option<crate::container::Exit>, Error> {
    let opts = oci::ExecOptions {
        process: args.process.clone(),
        args: args.command.clone(),
        tty: args.tty,
        cwd: args.cwd.clone(),
        env: args.env.clone(),
        user: args.user.map(|u| (u.uid, u.gid)),
        caps: args.caps.clone(),
        no_new_privs: args.no_new_privs,
        detach: args.detach,
        pid_file: args.pid_file.clone(),
        console_socket: args.console_socket.clone(),
    };
    oci::exec(root, &args.id, &opts)
}

/// `update [--resources FILE] [--memory N] ... ID`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// A runtime-spec linux.resources JSON file ("-" for stdin).
    #[arg(short = 'r', long, value_name = "FILE")]
    pub resources: Option<PathBuf>,
    /// Memory limit, e.g. 512m.
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<crate::config::values::Size>,
    /// Memory reservation (soft limit).
    #[arg(long, value_name = "SIZE")]
    pub memory_reservation: Option<crate::config::values::Size>,
    /// Memory plus swap; -1 for unlimited.
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_swap: Option<crate::config::values::SwapLimit>,
    /// CPU CFS period in microseconds.
    #[arg(long, value_name = "US")]
    pub cpu_period: Option<u64>,
    /// CPU CFS quota in microseconds (-1 for none).
    #[arg(long, value_name = "US", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU shares (relative weight).
    #[arg(long, value_name = "N")]
    pub cpu_shares: Option<u64>,
    /// Maximum number of tasks (-1 for none).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// The container id.
    pub id: String,
}

/// `events [--stats] [--interval SECONDS] ID`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Print one stats record and exit.
    #[arg(long)]
    pub stats: bool,
    /// Seconds between stats records.
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    pub interval: u64,
    /// The container id.
    pub id: String,
}

/// Runs `update`.
///
/// # Errors
///
/// An unreadable resources file, a bad value, or as [`oci::update`].
pub fn update(root: &Path, args: &UpdateArgs) -> Result<(), Error> {
    use oci_spec::runtime::{
        LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources,
    };
    let bad = |what: &str, e: String| Error::Container(format!("update: {what}: {e}"));
    let mut resources: LinuxResources = match &args.resources {
        Some(path) => {
            let text = if path.as_os_str() == "-" {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                    .map_err(|e| bad("read resources from stdin", e.to_string()))?;
                text
            } else {
                std::fs::read_to_string(path)
                    .map_err(|e| bad(&path.display().to_string(), e.to_string()))?
            };
            serde_json::from_str(&text).map_err(|e| bad("resources JSON", e.to_string()))?
        }
        None => LinuxResources::default(),
    };
    let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    if args.memory.is_some() || args.memory_reservation.is_some() || args.memory_swap.is_some() {
        let mut memory = LinuxMemoryBuilder::default();
        if let Some(m) = args.memory {
            memory = memory.limit(as_i64(m.0));
        }
        if let Some(m) = args.memory_reservation {
            memory = memory.reservation(as_i64(m.0));
        }
        match args.memory_swap {
            Some(crate::config::values::SwapLimit::Unlimited) => memory = memory.swap(-1),
            Some(crate::config::values::SwapLimit::Total(s)) => memory = memory.swap(as_i64(s.0)),
            None => {}
        }
        resources.set_memory(Some(
            memory.build().map_err(|e| bad("memory", e.to_string()))?,
        ));
    }
    if args.cpu_period.is_some() || args.cpu_quota.is_some() || args.cpu_shares.is_some() {
        let mut cpu = LinuxCpuBuilder::default();
        if let Some(p) = args.cpu_period {
            cpu = cpu.period(p);
        }
        if let Some(q) = args.cpu_quota {
            cpu = cpu.quota(q);
        }
        if let Some(s) = args.cpu_shares {
            cpu = cpu.shares(s);
        }
        resources.set_cpu(Some(cpu.build().map_err(|e| bad("cpu", e.to_string()))?));
    }
    if let Some(limit) = args.pids_limit {
        resources.set_pids(Some(
            LinuxPidsBuilder::default()
                .limit(limit)
                .build()
                .map_err(|e| bad("pids", e.to_string()))?,
        ));
    }
    oci::update(root, &args.id, &resources)
}
