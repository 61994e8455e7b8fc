//! The thin layer that touches cgroupfs: mkdir, file writes, reads of
//! `cgroup.procs`, signals and rmdir, each failure mapped to a
//! [`CgroupError`] that names the path.
//!
//! cgroupfs behaves unlike a regular filesystem in ways this code relies on
//! (`cgroups(7)`): a new directory comes with its interface files, a write
//! is applied (or rejected) as one value, and `rmdir` of a cgroup with
//! interface files succeeds as long as no process and no child cgroup is
//! left, failing with `EBUSY` while one is.

use std::io::{ErrorKind, Write as _};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::process::{pidfd_open, pidfd_send_signal, Pid, PidfdFlags, Signal};

use super::CgroupError;

/// Whether a directory came into existence by our mkdir.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Made {
    Created,
    Existed,
}

/// Creates one cgroup directory. `EEXIST` is reported, not an error, so the
/// caller decides; `EACCES`, `EPERM` and `EROFS` mean the caller was not
/// delegated this part of the tree.
pub(super) fn make_dir(path: &Path) -> Result<Made, CgroupError> {
    match std::fs::create_dir(path) {
        Ok(()) => Ok(Made::Created),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(Made::Existed),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EACCES | libc::EPERM | libc::EROFS)
            ) =>
        {
            Err(CgroupError::NotDelegated {
                path: path.to_path_buf(),
            })
        }
        Err(source) => Err(CgroupError::Io {
            op: "create cgroup",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes `value` into an existing cgroup file in one `write(2)`. With
/// `fake`, a missing file is created (a temp dir standing in for cgroupfs).
pub(super) fn write_file(path: &Path, value: &str, fake: bool) -> Result<(), CgroupError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if fake {
        options.create(true).truncate(true);
    }
    let result = options
        .open(path)
        .and_then(|mut file| file.write_all(value.as_bytes()));
    result.map_err(|source| CgroupError::WriteFile {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    })
}

/// Reads a cgroup file as text.
pub(super) fn read_file(path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(|source| CgroupError::Io {
        op: "read",
        path: path.to_path_buf(),
        source,
    })
}

/// Reads the value of `key` from a flat-keyed file such as `memory.events`
/// or `memory.oom_control` (`key value` per line).
pub(super) fn read_key(path: &Path, key: &str) -> Result<Option<u64>, CgroupError> {
    let text = read_file(path)?;
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        if parts.next() == Some(key) {
            let value = parts.next().unwrap_or_default();
            return value.parse().map(Some).map_err(|_| CgroupError::Parse {
                path: path.to_path_buf(),
                text: line.to_string(),
            });
        }
    }
    Ok(None)
}

/// The pids listed in `dir/cgroup.procs`. A directory that vanished counts
/// as empty.
pub(super) fn procs(dir: &Path) -> Result<Vec<i32>, CgroupError> {
    let path = dir.join("cgroup.procs");
    let text = match std::fs::read_to_string(&path) {
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        other => other.map_err(|source| CgroupError::Io {
            op: "read",
            path: path.clone(),
            source,
        })?,
    };
    text.lines()
        .map(|l| {
            l.trim().parse().map_err(|_| CgroupError::Parse {
                path: path.clone(),
                text: l.to_string(),
            })
        })
        .collect()
}

/// Sends SIGKILL to every process listed in `dir/cgroup.procs`.
///
/// A pid read from the file may exit and be reused by an unrelated process
/// before the signal goes out. So each pid is pinned with a pidfd first,
/// and only pids that are still listed after pinning are signalled: the
/// pidfd then provably refers to a member of this cgroup.
pub(super) fn signal_procs(dir: &Path) -> Result<(), CgroupError> {
    let mut pinned: Vec<(i32, OwnedFd)> = Vec::new();
    for pid in procs(dir)? {
        let Some(raw) = Pid::from_raw(pid) else {
            continue;
        };
        match pidfd_open(raw, PidfdFlags::empty()) {
            Ok(fd) => pinned.push((pid, fd)),
            Err(rustix::io::Errno::SRCH) => {}
            Err(e) => {
                return Err(CgroupError::Signal {
                    pid,
                    path: dir.to_path_buf(),
                    source: e.into(),
                })
            }
        }
    }
    if pinned.is_empty() {
        return Ok(());
    }

    let still = procs(dir)?;
    for (pid, fd) in pinned.iter().filter(|(pid, _)| still.contains(pid)) {
        match pidfd_send_signal(fd, Signal::KILL) {
            Ok(()) | Err(rustix::io::Errno::SRCH) => {}
            Err(e) => {
                return Err(CgroupError::Signal {
                    pid: *pid,
                    path: dir.to_path_buf(),
                    source: e.into(),
                })
            }
        }
    }
    Ok(())
}

/// Removes a cgroup directory. `Ok(false)` when the kernel says it is still
/// in use (`EBUSY`, `ENOTEMPTY`); a directory already gone is removed.
pub(super) fn remove_dir(path: &Path, fake: bool) -> Result<bool, CgroupError> {
    let result = if fake {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_dir(path)
    };
    match result {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(true),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY | libc::ENOTEMPTY)) => Ok(false),
        Err(source) => Err(CgroupError::Io {
            op: "remove cgroup",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Removes `path` only if it is an empty cgroup: used for shared parents
/// such as `sunaba/` that another run may still use or remove at the same
/// time. Never recursive, even on a fake cgroupfs.
pub(super) fn prune_dir(path: &Path) -> Result<(), CgroupError> {
    match std::fs::remove_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY | libc::ENOTEMPTY)) => Ok(()),
        Err(source) => Err(CgroupError::Io {
            op: "remove cgroup",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The ancestors of `rel` below the root (`a`, `a/b` for `a/b/c`), outermost
/// first.
pub(super) fn ancestors(rel: &Path) -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = rel
        .ancestors()
        .skip(1)
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .collect();
    all.reverse();
    all
}
