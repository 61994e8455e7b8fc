//! Control groups: one interface over the cgroup v2 (unified) hierarchy and the
//! v1 hierarchies of hybrid hosts.
//!
//! INTERFACE CONTRACT (to be implemented; the engine codes against exactly this):
//!
//! - `Layout::detect()` reads /proc/self/mountinfo and never changes a mount.
//! - `Cgroup::create(&layout, rel, &resources)` creates `rel` (for a run:
//!   `sunaba/<id>`) at the root of every hierarchy it needs, writes the limits,
//!   and on any error removes what it created.
//! - `Cgroup::unified_dir()` is the v2 directory when the limits live on v2
//!   (the engine opens it for clone3's CLONE_INTO_CGROUP); `None` on v1.
//! - `add_process(pid)` moves a pid into every hierarchy (needed on v1).
//! - `oom_kill_count()` reads `memory.events` (v2) or `memory.oom_control` (v1).
//! - `kill()` kills every process; `destroy()` kills, waits until empty, rmdirs.

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

/// An error from cgroupfs, naming the file or directory it was about.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// The caller may not create cgroups here (rootless without delegation).
    #[error("cannot create cgroup {path}: permission denied (no delegated cgroup for this user)")]
    NotDelegated {
        /// The directory that could not be created.
        path: PathBuf,
    },
    /// Any other failure on a cgroup file.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The cgroup file or directory.
        path: PathBuf,
        /// The kernel's answer.
        source: std::io::Error,
    },
}

/// How the host mounts its cgroup hierarchies.
#[derive(Debug, Clone)]
pub struct Layout;

impl Layout {
    /// Detects the layout from /proc/self/mountinfo.
    pub fn detect() -> Result<Layout, CgroupError> {
        Ok(Layout)
    }
}

/// A cgroup sunaba created, in every hierarchy it needed.
#[derive(Debug)]
pub struct Cgroup;

impl Cgroup {
    /// Creates the cgroup `rel` and applies `resources`.
    pub fn create(
        _layout: &Layout,
        _rel: &Path,
        _resources: &LinuxResources,
    ) -> Result<Cgroup, CgroupError> {
        Ok(Cgroup)
    }
    /// The v2 directory, for CLONE_INTO_CGROUP.
    pub fn unified_dir(&self) -> Option<&Path> {
        None
    }
    /// Moves `pid` into the cgroup in every hierarchy.
    pub fn add_process(&self, _pid: i32) -> Result<(), CgroupError> {
        Ok(())
    }
    /// The number of OOM kills inside this cgroup so far.
    pub fn oom_kill_count(&self) -> Result<u64, CgroupError> {
        Ok(0)
    }
    /// Kills every process in the cgroup.
    pub fn kill(&self) -> Result<(), CgroupError> {
        Ok(())
    }
    /// Kills what is left, waits until empty and removes the cgroup.
    pub fn destroy(self) -> Result<(), CgroupError> {
        Ok(())
    }
}
