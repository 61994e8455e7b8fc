//! Configuration: profiles and docker-like flags become one OCI `Spec`.
//!
//! Nothing about a profile or a flag reaches the engine except through the
//! spec and the few run options the runtime-spec has no field for (init,
//! timeout, whether limits are required).

pub mod bundle;
pub mod layer;
pub mod profile;
mod spec;
pub mod values;

use std::path::PathBuf;

pub use layer::{Layer, NetworkMode};
pub use profile::ProfileError;
pub use spec::{build_spec, host_system_dirs, RunContext, RunOptions};

/// A configuration that cannot become a spec.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The profile could not be loaded.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// `sunaba run` without a command.
    #[error("no command given: use sunaba run [OPTIONS] -- COMMAND [ARGS...]")]
    NoCommand,
    /// A capability name is unknown.
    #[error("{0}")]
    Capability(#[from] crate::capabilities::CapabilityError),
    /// A seccomp profile could not be loaded.
    #[error("{0}")]
    Seccomp(#[from] crate::seccomp::SeccompError),
    /// An env file could not be read or has a bad line.
    #[error("env file {path}: {reason}")]
    EnvFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A setting has a value that cannot work.
    #[error("{setting}: {reason}")]
    Invalid {
        /// The flag or profile key.
        setting: &'static str,
        /// Why, and what would work.
        reason: String,
    },
    /// The data directory for named volumes cannot be made.
    #[error("cannot create named volume {name} at {path}: {source}")]
    Volume {
        /// The volume name.
        name: String,
        /// Its directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Reads an env file: one `NAME=VALUE` or `NAME` per line, `#` comments.
///
/// # Errors
///
/// An unreadable file or a line that is not a variable, with its number.
pub fn read_env_file(path: &std::path::Path) -> Result<Vec<values::EnvVar>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::EnvFile {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut vars = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let var = line
            .parse()
            .map_err(|e: values::ValueError| ConfigError::EnvFile {
                path: path.to_path_buf(),
                reason: format!("line {}: {e}", n + 1),
            })?;
        vars.push(var);
    }
    Ok(vars)
}
