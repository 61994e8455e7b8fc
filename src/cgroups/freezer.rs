//! Freezing a cgroup (`pause`/`resume`): `cgroup.freeze` on v2; on v1 the
//! freezer hierarchy, where the container's cgroup is made the first time
//! it is paused (so a sandbox that is never paused pays nothing for it)
//! and its processes are moved in before `freezer.state` is set.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::layout::{Layout, LayoutKind};
use super::{fs, Cgroup, CgroupError};

/// How long to wait for the kernel to report the cgroup frozen or thawed.
const SETTLE: Duration = Duration::from_secs(5);

fn freezer_dir(layout: &Layout, rel: &Path) -> Result<(PathBuf, bool), CgroupError> {
    match &layout.kind {
        LayoutKind::Unified { root } => Ok((root.join(rel), true)),
        LayoutKind::Legacy { .. } => {
            let h = layout
                .v1_hierarchy("freezer")
                .ok_or_else(|| CgroupError::Unsupported {
                    what: "pausing: this host mounts no v1 freezer hierarchy".to_string(),
                })?;
            Ok((h.mount.join(rel), false))
        }
    }
}

/// Freezes (or thaws) every process of `cgroup`, found at `rel`.
///
/// # Errors
///
/// No freezer, a write the kernel refuses, or a state that does not
/// settle in time.
pub fn set_frozen(
    layout: &Layout,
    rel: &Path,
    cgroup: &Cgroup,
    frozen: bool,
) -> Result<(), CgroupError> {
    let (dir, v2) = freezer_dir(layout, rel)?;
    let root = dir
        .ancestors()
        .nth(rel.components().count())
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let (file, value, settled) = if v2 {
        (
            "cgroup.freeze",
            if frozen { "1" } else { "0" },
            if frozen { "frozen 1" } else { "frozen 0" },
        )
    } else {
        (
            "freezer.state",
            if frozen { "FROZEN" } else { "THAWED" },
            if frozen { "FROZEN" } else { "THAWED" },
        )
    };
    if !v2 && frozen {
        for ancestor in fs::ancestors(rel) {
            fs::make_dir(&root.join(ancestor))?;
        }
        if fs::make_dir(&dir)? == fs::Made::Created {
            tracing::debug!(path = %dir.display(), "freezer cgroup created");
        }
        // Processes keep forking until frozen: move them in rounds until a
        // round finds none left outside, then freeze; stragglers forked in
        // between are moved after (a task moved into a frozen cgroup
        // freezes).
        for _ in 0..10 {
            if move_into(&dir, cgroup)? == 0 {
                break;
            }
        }
    }
    fs::write_file(&dir.join(file), value, false)?;
    if !v2 && frozen {
        move_into(&dir, cgroup)?;
    }
    let check = if v2 {
        dir.join("cgroup.events")
    } else {
        dir.join("freezer.state")
    };
    let deadline = Instant::now() + SETTLE;
    while !fs::read_file(&check)?.lines().any(|l| l.trim() == settled) {
        if Instant::now() >= deadline {
            return Err(CgroupError::Busy {
                path: dir,
                timeout: SETTLE,
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// Moves the cgroup's processes that are not yet in the freezer cgroup
/// `dir` into it; returns how many moved. A process that exits meanwhile
/// (ESRCH) needs no moving.
fn move_into(dir: &Path, cgroup: &Cgroup) -> Result<usize, CgroupError> {
    let inside = fs::procs(dir)?;
    let mut moved = 0;
    for pid in cgroup.pids()?.into_iter().filter(|p| !inside.contains(p)) {
        match fs::write_file(&dir.join("cgroup.procs"), &pid.to_string(), false) {
            Ok(()) => moved += 1,
            Err(CgroupError::WriteFile { source, .. })
                if source.raw_os_error() == Some(libc::ESRCH) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(moved)
}

/// Whether the cgroup at `rel` is frozen.
pub fn is_frozen(layout: &Layout, rel: &Path) -> bool {
    let Ok((dir, v2)) = freezer_dir(layout, rel) else {
        return false;
    };
    if v2 {
        fs::read_file(&dir.join("cgroup.events"))
            .is_ok_and(|t| t.lines().any(|l| l.trim() == "frozen 1"))
    } else {
        fs::read_file(&dir.join("freezer.state")).is_ok_and(|t| t.trim() == "FROZEN")
    }
}
