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
    ///
    /// # Errors
    ///
    /// `--preserve-fds`, which is not supported.
    pub fn options(&self) -> Result<CreateOptions, Error> {
        if self.preserve_fds > 0 {
            return Err(Error::Container(
                "--preserve-fds is not supported: sunaba passes only stdin, stdout and stderr"
                    .into(),
            ));
        }
        Ok(CreateOptions {
            bundle: self.bundle.clone(),
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
        })
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
    oci::create(root, &args.id, &args.options()?)
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
