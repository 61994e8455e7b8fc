//! sunaba: a daemonless Linux sandbox runtime built directly on kernel
//! primitives: namespaces, cgroups, pivot_root, capabilities, no_new_privs
//! and seccomp.
//!
//! Every way in (a profile and docker-like flags, later a bundle's
//! `config.json`) becomes one OCI runtime [`oci_spec::runtime::Spec`], and
//! one engine carries it out: see `ARCHITECTURE.md`.

pub mod bench;
pub mod capabilities;
pub mod cgroups;
pub mod cli;
pub mod config;
pub mod container;
pub mod hooks;
pub mod mounts;
pub mod namespaces;
pub mod network;
pub mod process;
pub mod seccomp;
pub mod sys;
pub mod sysctl;

/// Any failure of sunaba itself (not of the sandboxed program).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A profile, flag or setting is invalid.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// A cgroup operation failed.
    #[error(transparent)]
    Cgroup(#[from] cgroups::CgroupError),
    /// Creating or starting the sandbox process failed.
    #[error(transparent)]
    Process(#[from] process::ProcessError),
    /// A container's state could not be read or written.
    #[error(transparent)]
    State(#[from] container::state::StateError),
    /// A bundle's config.json cannot be used.
    #[error(transparent)]
    Bundle(#[from] config::bundle::BundleError),
    /// An OCI hook failed.
    #[error(transparent)]
    Hook(#[from] hooks::HookError),
    /// A container command that does not fit the container's state.
    #[error("{0}")]
    Container(String),
    /// Limits were required but cannot be enforced.
    #[error("cannot enforce {limits}: {reason}; run as root with cgroups mounted, ask for a delegated cgroup (systemd-run --user -p Delegate=yes), or drop --require-limits")]
    LimitsUnenforceable {
        /// The limits asked for.
        limits: String,
        /// Why no cgroup could be made.
        reason: String,
    },
    /// Another operation failed.
    #[error("cannot {what}: {source}")]
    Io {
        /// What was attempted.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
}

impl Error {
    /// The exit status for this error: 127 when the program does not exist,
    /// 126 when it cannot be executed, 125 for everything else (as docker).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Process(process::ProcessError::Setup(f)) if f.step == "exec" => {
                if f.errno == Some(libc::ENOENT) {
                    process::NOT_FOUND
                } else {
                    process::CANNOT_EXECUTE
                }
            }
            _ => process::SETUP_FAILED,
        }
    }
}
