//! The error type of the cgroup module: every variant names the cgroup
//! file, directory or OCI field it is about.

use std::path::PathBuf;
use std::time::Duration;

/// An error from cgroupfs, naming the file or directory it was about.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// The caller may not create cgroups here (rootless without delegation).
    #[error("cannot create cgroup {path}: permission denied (no delegated cgroup for this user)")]
    NotDelegated {
        /// The directory that could not be created.
        path: PathBuf,
    },
    /// Any other failure on a cgroup file or directory.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The cgroup file or directory.
        path: PathBuf,
        /// The kernel's answer.
        source: std::io::Error,
    },
    /// The kernel rejected a value.
    #[error("cannot write {value:?} to {path}")]
    WriteFile {
        /// The cgroup file.
        path: PathBuf,
        /// The text written.
        value: String,
        /// The kernel's answer.
        source: std::io::Error,
    },
    /// A line of mountinfo did not have the expected fields.
    #[error("cannot parse /proc/self/mountinfo line {line}: {text:?}")]
    Mountinfo {
        /// The 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
    /// A cgroup file held something other than the expected format.
    #[error("unexpected content in {path}: {text:?}")]
    Parse {
        /// The cgroup file.
        path: PathBuf,
        /// The offending line.
        text: String,
    },
    /// Neither cgroup v1 nor cgroup2 is mounted.
    #[error("no cgroup filesystem is mounted")]
    NoCgroupFs,
    /// A limit needs a controller the host does not offer.
    #[error("controller {controller} is not available under {path}; mount or enable it there, or drop the settings that need it")]
    ControllerUnavailable {
        /// The controller name.
        controller: &'static str,
        /// The hierarchy root it was looked for.
        path: PathBuf,
    },
    /// A resource value is out of range or inconsistent.
    #[error("invalid {field} {value}: {reason}")]
    InvalidValue {
        /// The OCI field.
        field: &'static str,
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The cgroup path is not a plain relative path.
    #[error("invalid cgroup path {path}: must be relative, without '..'")]
    InvalidPath {
        /// The path given.
        path: PathBuf,
    },
    /// The cgroup already exists (another sandbox with the same id).
    #[error("cgroup {path} already exists")]
    Exists {
        /// The directory.
        path: PathBuf,
    },
    /// A setting this backend cannot honour and will not ignore.
    #[error("unsupported: {what}")]
    Unsupported {
        /// What was asked for.
        what: String,
    },
    /// Signalling a member of the cgroup failed.
    #[error("cannot kill pid {pid} of {path}: {source}")]
    Signal {
        /// The process.
        pid: i32,
        /// The cgroup directory.
        path: PathBuf,
        /// The kernel's answer.
        source: std::io::Error,
    },
    /// Processes remained after the kill timeout.
    #[error("cgroup {path} still has processes {pids:?} after {timeout:?}")]
    NotEmpty {
        /// The cgroup directory.
        path: PathBuf,
        /// What was still listed.
        pids: Vec<i32>,
        /// How long was waited.
        timeout: Duration,
    },
    /// The directory stayed busy after it was empty.
    #[error("cgroup {path} is still busy after {timeout:?}")]
    Busy {
        /// The cgroup directory.
        path: PathBuf,
        /// How long was waited.
        timeout: Duration,
    },
}
