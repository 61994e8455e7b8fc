//! Control groups (`cgroups(7)`): one interface over the cgroup v2 (unified)
//! hierarchy and the v1 hierarchies of hybrid and legacy hosts.
//!
//! A sandbox gets one cgroup, `rel` (normally `sunaba/<id>`), created at the
//! root of each hierarchy it needs:
//!
//! - pure v2: one directory; the controllers it uses are enabled in
//!   `cgroup.subtree_control` of the root and of every ancestor. Ancestors
//!   never hold processes (the v2 "no internal processes" rule).
//! - v1: one directory per hierarchy carrying cpu, memory, pids (and cpuset
//!   when asked for), comounted controllers sharing one directory. On a
//!   hybrid host the controller-less cgroup2 gets a directory too: systemd
//!   and other tools track processes there, and its `cgroup.kill` (Linux
//!   5.14) kills the whole tree atomically. It carries no limits, so a
//!   failure to create it for lack of delegation only logs a warning.
//!
//! Invariants: detection only reads mountinfo; the only pre-existing files
//! written are `cgroup.subtree_control` of the v2 root and of ancestors of
//! `rel`; [`Cgroup::create`] removes everything it made when it fails; a
//! shared ancestor is removed only when empty. What is computed (the writes
//! for a `LinuxResources`) lives in [`plan`], which touches no file.

mod devices;
mod error;
pub mod freezer;
mod fs;
pub(crate) mod layout;
pub mod plan;

use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;

pub use error::CgroupError;
use layout::LayoutKind;
pub use layout::{Layout, V1Hierarchy};
use plan::{Controller, Plan};

/// How long [`Cgroup::kill`] and [`Cgroup::destroy`] wait for the kernel to
/// empty and release a cgroup.
const EMPTY_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(10);
/// Retries of a mkdir that lost a race against another run's removal of the
/// shared parent.
const MKDIR_ATTEMPTS: usize = 8;
/// The cgroup every sandbox's own lies in by default, in each hierarchy; it
/// is kept once made.
const SHARED_PARENT: &str = "sunaba";
/// How old an orphaned cgroup must be before [`remove_stale`] takes it.
const STALE_AGE: Duration = Duration::from_secs(10);
/// The v1 controllers every cgroup is made in (where mounted), in the
/// order its directories are made; optional ones come after.
const ALWAYS_V1: [Controller; 3] = [Controller::Cpu, Controller::Memory, Controller::Pids];

/// One directory of the cgroup, in one hierarchy.
#[derive(Debug, Clone)]
struct Dir {
    path: PathBuf,
    /// The v1 controllers of this hierarchy that the plan uses.
    controllers: Vec<Controller>,
    /// On a cgroup2 hierarchy (with or without controllers).
    v2: bool,
    /// Ancestors to remove when empty after this directory is gone, deepest
    /// first: those this run created and those inside the `sunaba` tree.
    prune: Vec<PathBuf>,
}

/// Usage figures of a cgroup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes of memory in use.
    pub memory_usage: Option<u64>,
    /// The memory limit (`u64::MAX` for none).
    pub memory_limit: Option<u64>,
    /// Tasks in the cgroup.
    pub pids: Option<u64>,
    /// CPU time used, in nanoseconds.
    pub cpu_usage_ns: Option<u64>,
    /// OOM kills so far.
    pub oom_kills: u64,
}

/// A cgroup sunaba created, in every hierarchy it needed.
#[derive(Debug)]
pub struct Cgroup {
    dirs: Vec<Dir>,
    limits_on_v2: bool,
    memory_limit: Option<u64>,
    unenforced: Vec<String>,
    fake: bool,
}

impl Cgroup {
    /// Creates the cgroup `rel` and applies `resources`.
    ///
    /// Values are checked before anything is created. Limits the host cannot
    /// enforce (no swap accounting, settings without a cgroup backend) are
    /// logged as warnings and listed by [`Cgroup::unenforced`].
    ///
    /// # Errors
    ///
    /// [`CgroupError::NotDelegated`] when the caller may not create cgroups;
    /// otherwise the first failed mkdir or write, or an invalid value. On
    /// error nothing this call created is left behind.
    pub fn create(
        layout: &Layout,
        rel: &Path,
        resources: &LinuxResources,
    ) -> Result<Cgroup, CgroupError> {
        check_rel(rel)?;
        let plan = match layout.kind {
            LayoutKind::Unified { .. } => plan::plan_v2(resources)?,
            LayoutKind::Legacy { .. } => plan::plan_v1(resources)?,
        };
        let mut cgroup = Cgroup {
            dirs: Vec::new(),
            limits_on_v2: layout.is_unified(),
            memory_limit: plan.memory_limit,
            unenforced: plan.unenforced.clone(),
            fake: layout.fake,
        };

        match cgroup.build(layout, rel, &plan) {
            Ok(()) => {}
            Err(e) => {
                cgroup.remove_dirs();
                return Err(e);
            }
        }
        for what in &cgroup.unenforced {
            tracing::warn!(cgroup = %cgroup.describe(), limit = %what, "cgroup limit not enforced");
        }
        tracing::info!(
            cgroup = %cgroup.describe(),
            writes = plan.writes.len(),
            memory_limit = ?cgroup.memory_limit,
            "cgroup created"
        );
        Ok(cgroup)
    }

    /// Creates the directories and applies the plan; `self.dirs` records
    /// every directory made so far, for the caller to undo on error.
    fn build(&mut self, layout: &Layout, rel: &Path, plan: &Plan) -> Result<(), CgroupError> {
        match &layout.kind {
            LayoutKind::Unified { root } => {
                let controllers = v2_controllers(root, plan)?;
                self.make(root, rel, Vec::new(), true)?;
                enable_controllers(root, rel, &controllers, self.fake)?;
                if !plan.device_rules.is_empty() && !self.fake {
                    match devices::attach(&root.join(rel), &plan.device_rules) {
                        Ok(()) => tracing::debug!(
                            rules = plan.device_rules.len(),
                            "device program attached"
                        ),
                        // Without CAP_BPF/CAP_SYS_ADMIN (a rootless caller
                        // with a delegated cgroup) the rules stay unenforced;
                        // the runtime decides whether that is acceptable.
                        Err(CgroupError::Io { source, .. })
                            if source.raw_os_error() == Some(libc::EPERM) =>
                        {
                            self.unenforced.push("devices".to_string());
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            LayoutKind::Legacy {
                hierarchies,
                unified,
            } => {
                for h in v1_hierarchies(layout, hierarchies, plan)? {
                    self.make(&h.0, rel, h.1, false)?;
                }
                if plan.controllers().contains(&Controller::Cpuset) {
                    let root = layout
                        .v1_hierarchy("cpuset")
                        .map(|h| h.mount.clone())
                        .unwrap_or_default();
                    inherit_cpuset(&root, rel, self.fake)?;
                }
                if let Some(root) = unified {
                    match self.make(root, rel, Vec::new(), true) {
                        Err(CgroupError::NotDelegated { path }) => tracing::warn!(
                            path = %path.display(),
                            "cannot create the process-tracking cgroup2 directory; continuing without it"
                        ),
                        other => other?,
                    }
                }
            }
        }
        self.apply(plan)
    }

    /// Makes `rel` under `root`, with any missing ancestor, and records it.
    fn make(
        &mut self,
        root: &Path,
        rel: &Path,
        controllers: Vec<Controller>,
        v2: bool,
    ) -> Result<(), CgroupError> {
        let leaf = root.join(rel);
        let mut created: Vec<PathBuf> = Vec::new();
        // The leaf first: the shared parents (`sunaba/`) are kept and
        // nearly always there, and a mkdir per ancestor per hierarchy on every
        // start would only be told so. They are made when the leaf's mkdir
        // says one is missing.
        for attempt in 0..=MKDIR_ATTEMPTS {
            if attempt > 0 {
                for ancestor in fs::ancestors(rel) {
                    let path = root.join(&ancestor);
                    if fs::make_dir(&path)? == fs::Made::Created && !created.contains(&path) {
                        created.push(path);
                    }
                }
            }
            match fs::make_dir(&leaf) {
                Ok(fs::Made::Created) => {
                    let prune = prune_list(root, rel, &created);
                    tracing::debug!(path = %leaf.display(), "cgroup directory created");
                    self.dirs.push(Dir {
                        path: leaf,
                        controllers,
                        v2,
                        prune,
                    });
                    return Ok(());
                }
                Ok(fs::Made::Existed) => {
                    prune_created(&created);
                    return Err(CgroupError::Exists { path: leaf });
                }
                // A parent is missing, or another run removed the shared
                // parent between our mkdirs.
                Err(CgroupError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    prune_created(&created);
                    return Err(e);
                }
            }
        }
        prune_created(&created);
        Err(CgroupError::Io {
            op: "create cgroup",
            path: leaf,
            source: std::io::Error::from_raw_os_error(libc::ENOENT),
        })
    }

    /// Writes the plan's values, each into the directory of its controller.
    fn apply(&mut self, plan: &Plan) -> Result<(), CgroupError> {
        for write in &plan.writes {
            let dir = self
                .dirs
                .iter()
                .find(|d| {
                    if self.limits_on_v2 {
                        d.v2
                    } else {
                        d.controllers.contains(&write.controller)
                    }
                })
                .ok_or_else(|| CgroupError::ControllerUnavailable {
                    controller: write.controller.name(),
                    // Name the cgroup that lacks it: its directories.
                    path: PathBuf::from(self.describe()),
                })?;
            let path = dir.path.join(&write.file);
            if write.optional && !path.exists() {
                self.unenforced
                    .push(format!("{} (no {} on this kernel)", write.file, write.file));
                continue;
            }
            tracing::debug!(path = %path.display(), value = %write.value, "cgroup write");
            fs::write_file(&path, &write.value, self.fake)?;
        }
        Ok(())
    }

    /// Changes the limits of a live cgroup (`update`). Only the settings
    /// given are written. A write the kernel refuses is retried once after
    /// the others, which covers v1's ordering rule between
    /// `memory.limit_in_bytes` and `memory.memsw.limit_in_bytes` (the
    /// former may never exceed the latter) in both directions.
    ///
    /// # Errors
    ///
    /// An invalid value, a controller this cgroup lacks, or a write the
    /// kernel still refuses.
    pub fn update(&mut self, resources: &LinuxResources) -> Result<(), CgroupError> {
        let plan = if self.limits_on_v2 {
            plan::plan_v2(resources)?
        } else {
            plan::plan_v1(resources)?
        };
        let mut retry = Plan::default();
        for write in &plan.writes {
            let single = Plan {
                writes: vec![write.clone()],
                ..Plan::default()
            };
            if self.apply(&single).is_err() {
                retry.writes.push(write.clone());
            }
        }
        self.apply(&retry)
    }

    /// Current usage, for `events --stats`: memory in use and its limit,
    /// the number of tasks, and (on v2) CPU time. A value the host does
    /// not keep is `None`.
    pub fn stats(&self) -> Stats {
        let read = |name: &str| -> Option<u64> {
            self.dirs.iter().find_map(|d| {
                let text = std::fs::read_to_string(d.path.join(name)).ok()?;
                let text = text.trim();
                if text == "max" {
                    return Some(u64::MAX);
                }
                text.parse().ok()
            })
        };
        let key = |name: &str, key: &str| {
            self.dirs
                .iter()
                .find_map(|d| fs::read_key(&d.path.join(name), key).ok().flatten())
        };
        Stats {
            memory_usage: read("memory.current").or_else(|| read("memory.usage_in_bytes")),
            memory_limit: read("memory.max").or_else(|| read("memory.limit_in_bytes")),
            pids: read("pids.current"),
            cpu_usage_ns: key("cpu.stat", "usage_usec").map(|us| us.saturating_mul(1000)),
            oom_kills: self.oom_kill_count().unwrap_or(0),
        }
    }

    /// Finds the cgroup `rel` that an earlier command created, in every
    /// hierarchy where it exists, for `kill`, `delete`, `ps` and OOM counts
    /// of a container whose creator has exited.
    ///
    /// # Errors
    ///
    /// An invalid path, or no hierarchy holding it.
    pub fn existing(layout: &Layout, rel: &Path) -> Result<Cgroup, CgroupError> {
        check_rel(rel)?;
        let mut dirs = Vec::new();
        let mut add = |root: &Path, controllers: Vec<Controller>, v2: bool| {
            let path = root.join(rel);
            if path.is_dir() {
                let prune = prune_list(root, rel, &[]);
                dirs.push(Dir {
                    path,
                    controllers,
                    v2,
                    prune,
                });
            }
        };
        match &layout.kind {
            LayoutKind::Unified { root } => add(root, Vec::new(), true),
            LayoutKind::Legacy {
                hierarchies,
                unified,
            } => {
                for h in hierarchies {
                    let controllers = Controller::ALL
                        .into_iter()
                        .filter(|c| h.controllers.iter().any(|n| n == c.name()))
                        .collect();
                    add(&h.mount, controllers, false);
                }
                if let Some(root) = unified {
                    add(root, Vec::new(), true);
                }
            }
        }
        if dirs.is_empty() {
            return Err(CgroupError::Io {
                op: "find cgroup",
                path: rel.to_path_buf(),
                source: std::io::Error::from_raw_os_error(libc::ENOENT),
            });
        }
        Ok(Cgroup {
            dirs,
            limits_on_v2: layout.is_unified(),
            memory_limit: None,
            unenforced: Vec::new(),
            fake: layout.fake,
        })
    }

    /// Every pid in the cgroup (from the first hierarchy that lists any).
    ///
    /// # Errors
    ///
    /// A `cgroup.procs` that cannot be read.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let mut all = Vec::new();
        for dir in &self.dirs {
            for pid in fs::procs(&dir.path)? {
                if !all.contains(&pid) {
                    all.push(pid);
                }
            }
        }
        all.sort_unstable();
        Ok(all)
    }

    /// The cgroup2 directory to clone the sandbox straight into with
    /// `CLONE_INTO_CGROUP`: the one holding the limits on a v2 host, or the
    /// process-tracking one of a hybrid host.
    pub fn clone_dir(&self) -> Option<&Path> {
        self.dirs.iter().find(|d| d.v2).map(|d| d.path.as_path())
    }

    /// Opens the `tasks` file of each v1 directory for writing, for a
    /// process that moves itself in (see `ChildPlan::cgroup_tasks`).
    ///
    /// # Errors
    ///
    /// A `tasks` file that cannot be opened.
    pub fn open_v1_tasks(&self) -> Result<Vec<(std::fs::File, PathBuf)>, CgroupError> {
        self.dirs
            .iter()
            .filter(|d| !d.v2)
            .map(|d| {
                let path = d.path.join("tasks");
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map(|file| (file, d.path.clone()))
                    .map_err(|source| CgroupError::Io {
                        op: "open for writing",
                        path,
                        source,
                    })
            })
            .collect()
    }

    /// Moves `pid` into the cgroup in every hierarchy.
    ///
    /// # Errors
    ///
    /// The first `cgroup.procs` write the kernel refuses.
    pub fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        for dir in &self.dirs {
            fs::write_file(&dir.path.join("cgroup.procs"), &pid.to_string(), self.fake)?;
        }
        tracing::debug!(pid, cgroup = %self.describe(), "process added to cgroup");
        Ok(())
    }

    /// The number of OOM kills inside this cgroup so far: `oom_kill` of
    /// `memory.events` (v2) or `memory.oom_control` (v1, Linux 4.13).
    ///
    /// # Errors
    ///
    /// Fails when the memory controller is not in use or the file is
    /// unreadable.
    pub fn oom_kill_count(&self) -> Result<u64, CgroupError> {
        let path = if self.limits_on_v2 {
            self.dirs
                .iter()
                .find(|d| d.v2)
                .map(|d| d.path.join("memory.events"))
        } else {
            self.dirs
                .iter()
                .find(|d| d.controllers.contains(&Controller::Memory))
                .map(|d| d.path.join("memory.oom_control"))
        };
        let path = path.ok_or_else(|| CgroupError::Unsupported {
            what: "counting OOM kills without the memory controller".to_string(),
        })?;
        Ok(fs::read_key(&path, "oom_kill")?.unwrap_or(0))
    }

    /// Kills every process in the cgroup and waits until none is listed.
    ///
    /// `cgroup.kill` (Linux 5.14) is used where a cgroup2 directory has it:
    /// the kernel then kills the whole tree, forks in flight included. On
    /// top of that, and alone on older kernels, every pid listed in any
    /// hierarchy gets SIGKILL, pass after pass, until all lists are empty.
    ///
    /// # Errors
    ///
    /// [`CgroupError::NotEmpty`] when processes remain after the timeout.
    pub fn kill(&self) -> Result<(), CgroupError> {
        for dir in self.dirs.iter().filter(|d| d.v2) {
            let path = dir.path.join("cgroup.kill");
            if !self.fake && path.exists() {
                fs::write_file(&path, "1", false)?;
            }
        }

        // A fake cgroupfs lists whatever a test wrote into it: those are no
        // members of anything, so never signal them.
        if self.fake {
            return Ok(());
        }

        let deadline = Instant::now() + EMPTY_TIMEOUT;
        loop {
            let mut left = None;
            for dir in &self.dirs {
                let pids = fs::procs(&dir.path)?;
                if !pids.is_empty() {
                    fs::signal_procs(&dir.path)?;
                    left = Some((dir.path.clone(), pids));
                }
            }
            let Some((path, pids)) = left else {
                return Ok(());
            };
            if Instant::now() >= deadline {
                return Err(CgroupError::NotEmpty {
                    path,
                    pids,
                    timeout: EMPTY_TIMEOUT,
                });
            }
            std::thread::sleep(POLL);
        }
    }

    /// Kills what is left, waits until the cgroup is released and removes
    /// it from every hierarchy, then removes shared ancestors that are empty.
    ///
    /// # Errors
    ///
    /// A kill that does not empty the cgroup, or a directory that stays
    /// busy (`EBUSY`) past the timeout. The directories are then left for a
    /// later `delete` to retry.
    pub fn destroy(self) -> Result<(), CgroupError> {
        // Usually nothing is left by now: the runtime has reaped the first
        // process, and a pid namespace takes the rest with it. Each
        // directory then goes at the first rmdir, and listing the members of
        // every hierarchy first would cost a cgroup.procs read apiece for
        // nothing. A directory that is still busy is dealt with below.
        if self.remove_empty()? {
            tracing::info!(cgroup = %self.describe(), "cgroup removed");
            return Ok(());
        }
        self.kill()?;
        let deadline = Instant::now() + EMPTY_TIMEOUT;
        for dir in self.dirs.iter().rev() {
            // Exiting tasks can hold a cgroup briefly after leaving
            // cgroup.procs, so EBUSY means "not yet".
            while !fs::remove_dir(&dir.path, self.fake)? {
                if Instant::now() >= deadline {
                    return Err(CgroupError::Busy {
                        path: dir.path.clone(),
                        timeout: EMPTY_TIMEOUT,
                    });
                }
                std::thread::sleep(POLL);
            }
            for ancestor in &dir.prune {
                fs::prune_dir(ancestor)?;
            }
        }
        tracing::info!(cgroup = %self.describe(), "cgroup removed");
        Ok(())
    }

    /// Removes the directories, newest first, with the ancestors to prune
    /// after each, up to the first that is busy; true when none was.
    fn remove_empty(&self) -> Result<bool, CgroupError> {
        for dir in self.dirs.iter().rev() {
            // Stopping at a busy one keeps the first-made directory until
            // the rest are gone, which is what remove_stale relies on.
            if !fs::remove_dir(&dir.path, self.fake)? {
                return Ok(false);
            }
            for ancestor in &dir.prune {
                fs::prune_dir(ancestor)?;
            }
        }
        Ok(true)
    }

    /// The cgroup's directories, for logs.
    pub fn describe(&self) -> String {
        let paths: Vec<String> = self
            .dirs
            .iter()
            .map(|d| d.path.display().to_string())
            .collect();
        paths.join(", ")
    }

    /// Every directory of this cgroup, one per hierarchy.
    pub fn dirs(&self) -> Vec<&Path> {
        self.dirs.iter().map(|d| d.path.as_path()).collect()
    }

    /// The memory limit in bytes, when one was set.
    pub fn memory_limit(&self) -> Option<u64> {
        self.memory_limit
    }

    /// Requested settings the host does not enforce; also logged at create.
    pub fn unenforced(&self) -> &[String] {
        &self.unenforced
    }

    /// Undoes a failed create: removes the directories made so far, newest
    /// first, then the ancestors made for them if they are empty.
    fn remove_dirs(&mut self) {
        for dir in self.dirs.drain(..).rev() {
            if let Err(e) = fs::remove_dir(&dir.path, self.fake) {
                tracing::debug!(path = %dir.path.display(), error = %e, "undo of cgroup mkdir failed");
            }
            prune_created(&dir.prune);
        }
    }
}

/// Removes the empty children of `parent` (e.g. `sunaba`) in every hierarchy
/// for which `is_stale` says their owner is gone, and returns how many
/// directories went. A runtime killed with SIGKILL leaves its cgroup behind:
/// the processes die with it, the empty directory does not.
///
/// Only the hierarchy a cgroup is made in first and removed from last is
/// listed: a cgroup left in any hierarchy is still in that one. Listing
/// every hierarchy cost a start about a millisecond with 500 sandboxes
/// running on a v1 host (six listings of 500 names).
///
/// A child that still lists a process, or that the kernel calls busy, stays.
pub fn remove_stale(layout: &Layout, parent: &Path, is_stale: impl Fn(&str) -> bool) -> usize {
    let roots = creation_order(layout);
    let Some(first) = roots.first() else { return 0 };
    let Ok(entries) = std::fs::read_dir(first.join(parent)) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        // The name and the directory-entry type cost nothing; a v1 parent
        // also lists dozens of control files, so they are checked before
        // anything that needs a stat.
        let name = entry.file_name();
        if !name.to_str().is_some_and(&is_stale) || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        // A directory this young may belong to a run that has not placed
        // its process yet, e.g. one in another pid namespace whose owner
        // pid means nothing here.
        let settled = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > STALE_AGE));
        if !settled {
            continue;
        }
        // Newest first, as a run removes its own: the first hierarchy's
        // directory goes only once the others are gone.
        for root in roots.iter().rev() {
            let path = root.join(parent).join(&name);
            if !path.is_dir() {
                continue; // a hierarchy this run did not use
            }
            let gone = fs::procs(&path).is_ok_and(|p| p.is_empty())
                && matches!(fs::remove_dir(&path, layout.fake), Ok(true));
            if !gone {
                break;
            }
            tracing::debug!(path = %path.display(), "removed stale cgroup");
            removed += 1;
        }
    }
    removed
}

/// Every hierarchy a cgroup can have a directory in, the one
/// [`Cgroup::create`] makes first at the front (the first mounted of
/// [`ALWAYS_V1`]); a cgroup's directories are removed in the reverse of
/// the order they were made, so that one goes last.
fn creation_order(layout: &Layout) -> Vec<&Path> {
    match &layout.kind {
        LayoutKind::Unified { root } => vec![root.as_path()],
        LayoutKind::Legacy {
            hierarchies,
            unified,
        } => {
            let first = ALWAYS_V1
                .iter()
                .find_map(|c| layout.v1_hierarchy(c.name()))
                .map(|h| h.mount.as_path());
            let others = hierarchies
                .iter()
                .map(|h| h.mount.as_path())
                .filter(|m| Some(*m) != first);
            first
                .into_iter()
                .chain(others)
                .chain(unified.as_deref())
                .collect()
        }
    }
}

/// Refuses absolute paths, `..` and empty paths: the cgroup must stay below
/// each hierarchy's root.
fn check_rel(rel: &Path) -> Result<(), CgroupError> {
    let plain = rel.components().all(|c| matches!(c, Component::Normal(_)));
    if plain && rel.components().next().is_some() {
        Ok(())
    } else {
        Err(CgroupError::InvalidPath {
            path: rel.to_path_buf(),
        })
    }
}

/// Ancestors worth removing once empty, deepest first: the ones just
/// created, and every one inside the `sunaba` tree (shared by all runs).
///
/// The `sunaba` directory itself stays, as Docker's `docker` cgroup does:
/// making and removing it on every run put a cgroup mkdir and rmdir in
/// every hierarchy on each sandbox's start (0.3 to 0.8 ms on a v1 host,
/// against bubblewrap in the same run). Parents
/// outside that tree are removed when this run created them.
fn prune_list(root: &Path, rel: &Path, created: &[PathBuf]) -> Vec<PathBuf> {
    let top = Path::new(SHARED_PARENT);
    let ours = rel.starts_with(top);
    let mut list: Vec<PathBuf> = fs::ancestors(rel)
        .into_iter()
        .filter(|a| a != top)
        .map(|a| root.join(a))
        .filter(|p| ours || created.contains(p))
        .collect();
    list.reverse();
    list
}

fn prune_created(created: &[PathBuf]) {
    for path in created.iter().rev() {
        if let Err(e) = fs::prune_dir(path) {
            tracing::debug!(path = %path.display(), error = %e, "cannot remove cgroup parent");
        }
    }
}

/// The v2 controllers to enable: those the plan writes to (required), plus
/// memory and pids for OOM and process accounting, and cpu so that a later
/// `update` of CPU limits finds its files, when the root offers them.
fn v2_controllers(root: &Path, plan: &Plan) -> Result<Vec<Controller>, CgroupError> {
    let available = fs::read_file(&root.join("cgroup.controllers"))?;
    let available: Vec<&str> = available.split_whitespace().collect();
    let mut wanted = plan.controllers();
    for extra in [Controller::Cpu, Controller::Memory, Controller::Pids] {
        if available.contains(&extra.name()) && !wanted.contains(&extra) {
            wanted.push(extra);
        }
    }
    for c in &wanted {
        if !available.contains(&c.name()) {
            return Err(CgroupError::ControllerUnavailable {
                controller: c.name(),
                path: root.to_path_buf(),
            });
        }
    }
    wanted.sort();
    Ok(wanted)
}

/// Enables `controllers` in `cgroup.subtree_control` of the root and of every
/// ancestor of `rel`, writing only those not yet enabled, so a host's own
/// settings are left as they are.
fn enable_controllers(
    root: &Path,
    rel: &Path,
    controllers: &[Controller],
    fake: bool,
) -> Result<(), CgroupError> {
    let parents = std::iter::once(root.to_path_buf())
        .chain(fs::ancestors(rel).into_iter().map(|a| root.join(a)));
    for parent in parents {
        let path = parent.join("cgroup.subtree_control");
        let enabled = match fs::read_file(&path) {
            Err(_) if fake => String::new(),
            other => other?,
        };
        let mut enabled: Vec<&str> = enabled.split_whitespace().collect();
        for c in controllers {
            if enabled.contains(&c.name()) {
                continue;
            }
            let value = format!("+{}", c.name());
            tracing::debug!(path = %path.display(), value = %value, "enabling controller");
            if !fake {
                fs::write_file(&path, &value, false)?;
            }
            enabled.push(c.name());
        }
        if fake {
            fs::write_file(&path, &enabled.join(" "), true)?;
        }
    }
    Ok(())
}

/// The v1 hierarchies to create the cgroup in, each with the managed
/// controllers it carries. cpu, memory and pids are always used when
/// mounted (accounting, OOM counting); cpuset only when asked for, since a
/// cpuset cgroup needs its cpus and mems filled in before it takes tasks.
fn v1_hierarchies(
    layout: &Layout,
    all: &[V1Hierarchy],
    plan: &Plan,
) -> Result<Vec<(PathBuf, Vec<Controller>)>, CgroupError> {
    let needed = plan.controllers();
    let mut wanted = ALWAYS_V1.to_vec();
    for optional in [Controller::Cpuset, Controller::Devices, Controller::Hugetlb] {
        if needed.contains(&optional) {
            wanted.push(optional);
        }
    }
    let mut out: Vec<(PathBuf, Vec<Controller>)> = Vec::new();
    for c in wanted {
        match layout.v1_hierarchy(c.name()) {
            Some(h) => match out.iter_mut().find(|(m, _)| *m == h.mount) {
                Some((_, cs)) => cs.push(c),
                None => out.push((h.mount.clone(), vec![c])),
            },
            None if needed.contains(&c) => {
                return Err(CgroupError::ControllerUnavailable {
                    controller: c.name(),
                    // Where its hierarchy would be mounted, beside the others.
                    path: all
                        .first()
                        .and_then(|h| h.mount.parent())
                        .map(Path::to_path_buf)
                        .unwrap_or_default(),
                });
            }
            None => {}
        }
    }
    Ok(out)
}

/// A new v1 cpuset cgroup starts with empty `cpuset.cpus` and `cpuset.mems`
/// and refuses tasks until both are set (`cpusets.rst`), so each level
/// below the root copies what its parent has if it is still empty.
fn inherit_cpuset(root: &Path, rel: &Path, fake: bool) -> Result<(), CgroupError> {
    let mut levels = fs::ancestors(rel);
    levels.push(rel.to_path_buf());
    let mut parent = root.to_path_buf();
    for level in levels {
        let dir = root.join(level);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let own = match fs::read_file(&dir.join(file)) {
                Err(_) if fake => String::new(),
                other => other?,
            };
            if own.trim().is_empty() {
                let value = fs::read_file(&parent.join(file))?;
                fs::write_file(&dir.join(file), value.trim(), fake)?;
            }
        }
        parent = dir;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
