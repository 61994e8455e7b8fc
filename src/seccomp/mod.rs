//! Seccomp filters: the built-in profiles, OCI seccomp to BPF, installation.
//!
//! INTERFACE CONTRACT (to be implemented; the engine codes against exactly this):
//!
//! - `builtin(name)` returns the built-in profile `default` or `agent` as an OCI
//!   `LinuxSeccomp`.
//! - `load_profile(path)` reads an OCI seccomp JSON file.
//! - `compile(&LinuxSeccomp)` turns it into BPF in the parent, before clone.
//! - `CompiledFilter::install(&self)` runs in the child just before execve and
//!   does nothing but seccomp(2) calls (no allocation).

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxSeccomp;

/// A seccomp failure, naming the profile, rule or syscall.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// No built-in profile has that name.
    #[error("unknown seccomp profile {0:?}")]
    UnknownProfile(String),
    /// The profile file could not be read or parsed.
    #[error("cannot load seccomp profile {path}: {reason}")]
    Load {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// Installing the filter failed.
    #[error("cannot install seccomp filter: {0}")]
    Install(std::io::Error),
}

/// Returns the built-in profile `name` (`default` or `agent`).
pub fn builtin(name: &str) -> Result<LinuxSeccomp, SeccompError> {
    Err(SeccompError::UnknownProfile(name.to_string()))
}

/// Reads an OCI seccomp profile from a JSON file.
pub fn load_profile(path: &Path) -> Result<LinuxSeccomp, SeccompError> {
    Err(SeccompError::Load {
        path: path.to_path_buf(),
        reason: "not implemented".into(),
    })
}

/// A profile compiled to BPF, ready to install.
#[derive(Debug, Default)]
pub struct CompiledFilter;

/// Compiles `profile` to BPF.
pub fn compile(_profile: &LinuxSeccomp) -> Result<CompiledFilter, SeccompError> {
    Ok(CompiledFilter)
}

impl CompiledFilter {
    /// Installs the filter on the calling thread.
    pub fn install(&self) -> Result<(), SeccompError> {
        Ok(())
    }
}
