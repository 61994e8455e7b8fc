//! Container state on disk, for the runc-compatible commands: one directory
//! per container under `--root`, holding `state.json` (written to a temporary
//! file and renamed, so a reader never sees half of it), a lock file that
//! serialises the commands acting on one container (flock(2)), and the start
//! socket while the container waits for `start`.
//!
//! The status is never stored: it is read from the kernel each time, from
//! the init's pid and start time (so a recycled pid is not mistaken for the
//! container) and from whether the start socket still exists.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The name of the start socket in a container's directory.
const START_SOCKET: &str = "start.sock";
const STATE_FILE: &str = "state.json";
const LOCK_FILE: &str = "lock";
/// Container ids longer than this are refused (a path component's limit
/// leaves room for the state files).
const MAX_ID: usize = 200;

/// A container state failure, naming the container or file.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The id cannot name a container.
    #[error("invalid container id {id:?}: {reason}")]
    InvalidId {
        /// The id given.
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No container has that id.
    #[error("container {id:?} does not exist (under {root})")]
    NotFound {
        /// The id.
        id: String,
        /// The state root searched.
        root: PathBuf,
    },
    /// A container with that id exists already.
    #[error("container {id:?} already exists (under {root}); delete it or choose another id")]
    Exists {
        /// The id.
        id: String,
        /// The state root.
        root: PathBuf,
    },
    /// A state file could not be read, written or parsed.
    #[error("cannot {op} {path}: {reason}")]
    File {
        /// What was attempted.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

fn file_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StateError + 'a {
    move |e| StateError::File {
        op,
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// What a container's status is, as the runtime-spec names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Being created.
    Creating,
    /// Created; waiting for `start`.
    Created,
    /// The user's program runs.
    Running,
    /// Frozen with the freezer.
    Paused,
    /// The init process has exited.
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        };
        f.write_str(s)
    }
}

/// What is kept about a container between commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saved {
    /// The container id.
    pub id: String,
    /// The init's pid in the runtime's pid namespace.
    pub pid: i32,
    /// The init's start time (field 22 of /proc/PID/stat), to tell it from
    /// a later process that got the same pid.
    pub pid_start: u64,
    /// The bundle directory.
    pub bundle: PathBuf,
    /// The root filesystem.
    pub rootfs: PathBuf,
    /// When the container was created (RFC 3339, UTC).
    pub created: String,
    /// The uid that created it.
    pub owner: u32,
    /// The cgroup, relative to each hierarchy's root.
    pub cgroup: Option<PathBuf>,
    /// The config's annotations.
    #[serde(default)]
    pub annotations: std::collections::HashMap<String, String>,
    /// The config's hooks, for those that run after `create` returned.
    #[serde(default)]
    pub hooks: Option<oci_spec::runtime::Hooks>,
    /// The whole config, for `exec` (its process is the default one).
    #[serde(default)]
    pub config: Option<oci_spec::runtime::Spec>,
}

/// Checks a container id: it becomes a directory name, so no `/`, no `.`
/// or `..`, nothing that is not plain.
///
/// # Errors
///
/// [`StateError::InvalidId`] with the reason.
pub fn validate_id(id: &str) -> Result<(), StateError> {
    let invalid = |reason| {
        Err(StateError::InvalidId {
            id: id.to_string(),
            reason,
        })
    };
    if id.is_empty() {
        return invalid("it is empty");
    }
    if id.len() > MAX_ID {
        return invalid("it is longer than 200 bytes");
    }
    if id == "." || id == ".." {
        return invalid("it is a path component");
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.+-".contains(c))
    {
        return invalid("only letters, digits and _ . + - are allowed");
    }
    if !id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return invalid("it must start with a letter or digit");
    }
    Ok(())
}

/// The start time of process `pid` (clock ticks since boot), or `None` when
/// it does not exist or is a zombie.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after
    // the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    if fields.first() == Some(&"Z") || fields.first() == Some(&"X") {
        return None;
    }
    // Field 22 overall is the 20th after the command name.
    fields.get(19)?.parse().ok()
}

/// One container's directory, locked for the lifetime of this value
/// unless [`StateDir::unlock`] lets the lock go for a while.
#[derive(Debug)]
pub struct StateDir {
    root: PathBuf,
    id: String,
    path: PathBuf,
    lock: Option<File>,
}

fn lock(path: &Path) -> Result<File, StateError> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(file_err("open", path))?;
    // A POSIX record lock, not flock(2): the container's process is forked
    // from `create` while it holds the lock, and a flock would go with the
    // shared open file into the container and stay held until it execs.
    // Record locks belong to the process and are not inherited (fcntl(2)).
    // SAFETY: an all-zero flock is valid; the fields that matter are set.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    // Both constants are small (1 and 0): they fit the short fields.
    #[allow(clippy::cast_possible_truncation)]
    {
        lock.l_type = libc::F_WRLCK as libc::c_short;
        lock.l_whence = libc::SEEK_SET as libc::c_short;
    }
    loop {
        // SAFETY: F_SETLKW reads one flock through a live pointer.
        if unsafe {
            libc::fcntl(
                std::os::fd::AsRawFd::as_raw_fd(&file),
                libc::F_SETLKW,
                &lock,
            )
        } == 0
        {
            return Ok(file);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(file_err("lock", path)(err));
        }
    }
}

impl StateDir {
    /// Makes the directory of a new container and locks it.
    ///
    /// # Errors
    ///
    /// An invalid id, an existing container, or the directory failing.
    pub fn create(root: &Path, id: &str) -> Result<Self, StateError> {
        validate_id(id)?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(file_err("create state root", root))?;
        let path = root.join(id);
        match fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(StateError::Exists {
                    id: id.to_string(),
                    root: root.to_path_buf(),
                })
            }
            Err(e) => return Err(file_err("create", &path)(e)),
        }
        let lock = lock(&path.join(LOCK_FILE))?;
        Ok(StateDir {
            root: root.to_path_buf(),
            id: id.to_string(),
            path,
            lock: Some(lock),
        })
    }

    /// Opens and locks the directory of an existing container.
    ///
    /// # Errors
    ///
    /// An invalid id, or no such container.
    pub fn open(root: &Path, id: &str) -> Result<Self, StateError> {
        validate_id(id)?;
        let path = root.join(id);
        if !path.join(STATE_FILE).exists() && !path.is_dir() {
            return Err(StateError::NotFound {
                id: id.to_string(),
                root: root.to_path_buf(),
            });
        }
        let lock = lock(&path.join(LOCK_FILE)).map_err(|e| match e {
            StateError::File { .. } if !path.is_dir() => StateError::NotFound {
                id: id.to_string(),
                root: root.to_path_buf(),
            },
            other => other,
        })?;
        Ok(StateDir {
            root: root.to_path_buf(),
            id: id.to_string(),
            path,
            lock: Some(lock),
        })
    }

    /// Lets other commands at the container while this one only waits for
    /// it (a foreground `run` or `exec`), so `state`, `kill` and `delete`
    /// from an engine do not queue behind the container's whole life.
    pub fn unlock(&mut self) {
        // Closing the file releases the record lock.
        self.lock = None;
    }

    /// Takes the lock again after [`StateDir::unlock`].
    ///
    /// # Errors
    ///
    /// The lock file is gone: another command deleted the container.
    pub fn relock(&mut self) -> Result<(), StateError> {
        if self.lock.is_none() {
            self.lock = Some(lock(&self.path.join(LOCK_FILE))?);
        }
        // The lock may have been granted on a file that a `delete`, which
        // held it meanwhile, has just unlinked with its directory.
        if !self.path.join(STATE_FILE).exists() {
            return Err(StateError::NotFound {
                id: self.id.clone(),
                root: self.root.clone(),
            });
        }
        Ok(())
    }

    /// The container id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the start socket of a created container lives.
    pub fn start_socket(&self) -> PathBuf {
        self.path.join(START_SOCKET)
    }

    /// Writes `state.json` atomically.
    ///
    /// # Errors
    ///
    /// Writing or renaming failing.
    pub fn write(&self, saved: &Saved) -> Result<(), StateError> {
        let tmp = self.path.join(format!("{STATE_FILE}.tmp"));
        let dst = self.path.join(STATE_FILE);
        let json = serde_json::to_vec_pretty(saved).map_err(|e| StateError::File {
            op: "encode",
            path: dst.clone(),
            reason: e.to_string(),
        })?;
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(file_err("write", &tmp))?;
        file.write_all(&json).map_err(file_err("write", &tmp))?;
        // The rename alone makes the new state appear whole to every other
        // reader. No fsync: the state describes processes that a crash of
        // the machine ends anyway, and syncing put a disk flush on every
        // create, start and run where the root is not on tmpfs.
        fs::rename(&tmp, &dst).map_err(file_err("rename into place", &dst))
    }

    /// Reads `state.json`.
    ///
    /// # Errors
    ///
    /// No state yet (a `create` still running or one that crashed), or a
    /// file that does not parse.
    pub fn read(&self) -> Result<Saved, StateError> {
        let path = self.path.join(STATE_FILE);
        let text = fs::read(&path).map_err(file_err("read", &path))?;
        serde_json::from_slice(&text).map_err(|e| StateError::File {
            op: "parse",
            path,
            reason: e.to_string(),
        })
    }

    /// The container's status, read from the kernel.
    pub fn status(&self, saved: &Saved) -> Status {
        if process_start_time(saved.pid) != Some(saved.pid_start) {
            Status::Stopped
        } else if self.start_socket().exists() {
            Status::Created
        } else {
            Status::Running
        }
    }

    /// Removes the directory and everything in it.
    ///
    /// # Errors
    ///
    /// The removal failing.
    pub fn remove(self) -> Result<(), StateError> {
        fs::remove_dir_all(&self.path).map_err(file_err("remove", &self.path))
    }

    /// The state root.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// The ids of every container under `root`, sorted.
pub fn list_ids(root: &Path) -> Vec<String> {
    let mut ids: Vec<String> = fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join(STATE_FILE).is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    ids.sort();
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_could_escape_the_root_are_refused() {
        for bad in ["", ".", "..", "../x", "a/b", "-x", "a b", "a\0b"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
        for good in ["abc", "a.b-c_d+1", "0123456789abcdef"] {
            validate_id(good).unwrap();
        }
    }

    #[test]
    fn own_start_time_is_read_and_a_missing_pid_has_none() {
        let me = i32::try_from(std::process::id()).unwrap();
        assert!(process_start_time(me).is_some());
        assert_eq!(process_start_time(i32::MAX), None);
    }

    #[test]
    fn state_round_trips_and_a_second_create_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let dir = StateDir::create(root.path(), "c1").unwrap();
        let saved = Saved {
            id: "c1".into(),
            pid: i32::MAX,
            pid_start: 1,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: "2026-01-01T00:00:00Z".into(),
            owner: 0,
            cgroup: None,
            annotations: Default::default(),
            hooks: None,
            config: None,
        };
        dir.write(&saved).unwrap();
        assert_eq!(dir.read().unwrap().bundle, Path::new("/b"));
        assert_eq!(dir.status(&saved), Status::Stopped);
        assert!(matches!(
            StateDir::create(root.path(), "c1"),
            Err(StateError::Exists { .. })
        ));
        drop(dir);
        assert_eq!(list_ids(root.path()), ["c1"]);
        StateDir::open(root.path(), "c1").unwrap().remove().unwrap();
        assert!(matches!(
            StateDir::open(root.path(), "c1"),
            Err(StateError::NotFound { .. })
        ));
    }
}
