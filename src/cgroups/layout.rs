//! Which cgroup hierarchies the host mounts, read from `/proc/self/mountinfo`
//! (`proc(5)`, "/proc/pid/mountinfo").
//!
//! Three shapes exist in the wild (`cgroups(7)`, "cgroups version 1 and 2"):
//! a pure cgroup2 host, where every controller lives on one unified hierarchy;
//! a hybrid host, where the controllers are bound to v1 hierarchies and a
//! controller-less cgroup2 is mounted beside them (systemd puts it at
//! `/sys/fs/cgroup/unified` and tracks processes there); and a v1-only host.
//! A controller is bound to at most one hierarchy at a time, so a host is
//! treated as v1 as soon as one of the controllers sunaba uses is on a v1
//! mount. Detection only reads; it never mounts anything.

use std::path::{Path, PathBuf};

use super::CgroupError;

/// The kernel's v1 controller names, to tell them apart from other super
/// options (`rw`, `xattr`, `release_agent=…`) on a `cgroup` mount.
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "pids",
    "devices",
    "freezer",
    "blkio",
    "net_cls",
    "net_prio",
    "perf_event",
    "hugetlb",
    "rdma",
    "misc",
];

/// The controllers sunaba writes limits to.
const MANAGED: &[&str] = &["cpu", "cpuset", "memory", "pids"];

/// One mounted v1 hierarchy and the controllers bound to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Hierarchy {
    /// Where the hierarchy's root cgroup is mounted.
    pub mount: PathBuf,
    /// Controllers comounted on it, e.g. `["cpu", "cpuacct"]`.
    pub controllers: Vec<String>,
}

/// How the host mounts its cgroup hierarchies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub(super) kind: LayoutKind,
    /// Set by the `fake_*` constructors: the directory is a plain temporary
    /// directory, so writes create missing files and removal is recursive.
    pub(super) fake: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum LayoutKind {
    /// Every controller on one cgroup2 hierarchy mounted at `root`.
    Unified { root: PathBuf },
    /// v1 controller hierarchies, plus the controller-less cgroup2 of a
    /// hybrid host when there is one.
    Legacy {
        hierarchies: Vec<V1Hierarchy>,
        unified: Option<PathBuf>,
    },
}

impl Layout {
    /// Detects the layout from `/proc/self/mountinfo`.
    ///
    /// # Errors
    ///
    /// Fails when mountinfo cannot be read or parsed, or when no cgroup
    /// filesystem is mounted.
    pub fn detect() -> Result<Layout, CgroupError> {
        let path = Path::new("/proc/self/mountinfo");
        let text = std::fs::read_to_string(path).map_err(|source| CgroupError::Io {
            op: "read",
            path: path.to_path_buf(),
            source,
        })?;
        Layout::from_mountinfo(&text)
    }

    /// Parses the text of a mountinfo file.
    ///
    /// # Errors
    ///
    /// Fails on a malformed line or when no cgroup filesystem is mounted.
    pub fn from_mountinfo(text: &str) -> Result<Layout, CgroupError> {
        let mut hierarchies: Vec<V1Hierarchy> = Vec::new();
        let mut unified: Vec<PathBuf> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let mount = parse_line(line).ok_or_else(|| CgroupError::Mountinfo {
                line: index + 1,
                text: line.to_string(),
            })?;
            match mount.fstype {
                "cgroup2" => unified.push(mount.point),
                "cgroup" => {
                    let controllers: Vec<String> = mount
                        .super_options
                        .split(',')
                        .filter(|o| V1_CONTROLLERS.contains(o))
                        .map(str::to_string)
                        .collect();
                    // A bind mount of a hierarchy shows up again with the
                    // same controllers; the first mount point is enough.
                    let seen = hierarchies.iter().any(|h| h.controllers == controllers);
                    if !controllers.is_empty() && !seen {
                        hierarchies.push(V1Hierarchy {
                            mount: mount.point,
                            controllers,
                        });
                    }
                }
                _ => {}
            }
        }

        // With several cgroup2 mounts (bind mounts into containers), prefer
        // the conventional places.
        let unified = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
            .iter()
            .find_map(|p| unified.iter().find(|u| u.as_path() == Path::new(p)))
            .or(unified.first())
            .cloned();

        let legacy = hierarchies
            .iter()
            .any(|h| h.controllers.iter().any(|c| MANAGED.contains(&c.as_str())));
        let kind = match unified {
            Some(root) if !legacy => LayoutKind::Unified { root },
            unified if legacy => LayoutKind::Legacy {
                hierarchies,
                unified,
            },
            _ => return Err(CgroupError::NoCgroupFs),
        };
        Ok(Layout { kind, fake: false })
    }

    /// The v1 hierarchies sunaba knows the controllers of (none on a pure
    /// cgroup2 host).
    pub fn v1_hierarchies(&self) -> &[V1Hierarchy] {
        match &self.kind {
            LayoutKind::Unified { .. } => &[],
            LayoutKind::Legacy { hierarchies, .. } => hierarchies,
        }
    }

    /// A pure cgroup2 layout rooted at `root`, a plain directory standing in
    /// for cgroupfs in tests: writes create the files a real cgroupfs would
    /// already have, and removal is recursive.
    pub fn fake_unified(root: &Path) -> Layout {
        Layout {
            kind: LayoutKind::Unified {
                root: root.to_path_buf(),
            },
            fake: true,
        }
    }

    /// A v1 (or hybrid, with `unified`) layout over plain directories, for
    /// tests; see [`Layout::fake_unified`].
    pub fn fake_legacy(hierarchies: Vec<V1Hierarchy>, unified: Option<PathBuf>) -> Layout {
        Layout {
            kind: LayoutKind::Legacy {
                hierarchies,
                unified,
            },
            fake: true,
        }
    }

    /// True when the limits live on cgroup2 (a pure unified host).
    pub fn is_unified(&self) -> bool {
        matches!(self.kind, LayoutKind::Unified { .. })
    }

    /// The mount point of the cgroup2 hierarchy, with or without controllers.
    pub fn unified_root(&self) -> Option<&Path> {
        match &self.kind {
            LayoutKind::Unified { root } => Some(root),
            LayoutKind::Legacy { unified, .. } => unified.as_deref(),
        }
    }

    /// The v1 hierarchy `controller` is bound to, if any.
    pub fn v1_hierarchy(&self, controller: &str) -> Option<&V1Hierarchy> {
        match &self.kind {
            LayoutKind::Unified { .. } => None,
            LayoutKind::Legacy { hierarchies, .. } => hierarchies
                .iter()
                .find(|h| h.controllers.iter().any(|c| c == controller)),
        }
    }
}

/// The fields of one mountinfo line this module needs.
struct MountLine<'a> {
    point: PathBuf,
    fstype: &'a str,
    super_options: &'a str,
}

/// Splits a mountinfo line: `id parent major:minor root mount-point options
/// [optional fields…] - fstype source super-options`.
fn parse_line(line: &str) -> Option<MountLine<'_>> {
    let fields: Vec<&str> = line.split(' ').collect();
    let point = fields.get(4)?;
    let dash = fields.iter().skip(6).position(|f| *f == "-")? + 6;
    let fstype = fields.get(dash + 1)?;
    let super_options = fields.get(dash + 3)?;
    Some(MountLine {
        point: PathBuf::from(unescape(point)),
        fstype,
        super_options,
    })
}

/// Undoes the kernel's octal escapes of space, tab, newline and backslash.
pub(crate) fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = String::with_capacity(field.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal.and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok()) {
            Some(byte) => {
                out.push(char::from(byte));
                i += 4;
            }
            None => {
                let ch = field[i..].chars().next().unwrap_or('\u{fffd}');
                out.push(ch);
                i += ch.len_utf8();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hybrid layout of a systemd-era host with cpu and cpuacct on
    /// separate mounts (as on the development machine).
    const HYBRID: &str = "\
22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:5 - proc proc rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    /// Ubuntu 18.04-style v1 host: cpu and cpuacct comounted, optional
    /// fields present, no cgroup2.
    const V1_ONLY: &str = "\
25 18 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
28 25 0:25 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
31 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,cpu,cpuacct
32 25 0:29 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,memory
33 25 0:30 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,pids
34 25 0:31 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,cpuset,clone_children
";

    const V2: &str = "\
24 18 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
40 24 0:22 / /run/with\\040space rw - cgroup2 cgroup2 rw
";

    #[test]
    fn hybrid_host_puts_limits_on_v1() {
        let layout = Layout::from_mountinfo(HYBRID).expect("parses");
        assert!(!layout.is_unified());
        assert_eq!(
            layout.unified_root(),
            Some(Path::new("/sys/fs/cgroup/unified"))
        );
        let cpu = layout.v1_hierarchy("cpu").expect("cpu mounted");
        assert_eq!(cpu.mount, Path::new("/sys/fs/cgroup/cpu"));
        assert_eq!(cpu.controllers, ["cpu"]);
        let memory = layout.v1_hierarchy("memory").expect("memory mounted");
        assert_eq!(memory.mount, Path::new("/sys/fs/cgroup/memory"));
        assert!(layout.v1_hierarchy("name=systemd").is_none());
    }

    #[test]
    fn comounted_controllers_share_a_hierarchy() {
        let layout = Layout::from_mountinfo(V1_ONLY).expect("parses");
        assert!(!layout.is_unified());
        assert_eq!(layout.unified_root(), None);
        let cpu = layout.v1_hierarchy("cpu").expect("cpu mounted");
        assert_eq!(cpu.mount, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(cpu.controllers, ["cpu", "cpuacct"]);
        assert_eq!(layout.v1_hierarchy("cpuacct"), Some(cpu));
        let cpuset = layout.v1_hierarchy("cpuset").expect("cpuset mounted");
        assert_eq!(cpuset.controllers, ["cpuset"]);
    }

    #[test]
    fn pure_cgroup2_prefers_sys_fs_cgroup() {
        let layout = Layout::from_mountinfo(V2).expect("parses");
        assert!(layout.is_unified());
        assert_eq!(layout.unified_root(), Some(Path::new("/sys/fs/cgroup")));
        assert!(layout.v1_hierarchy("memory").is_none());
    }

    #[test]
    fn mount_points_are_unescaped() {
        let only = V2.lines().nth(1).expect("two lines");
        let layout = Layout::from_mountinfo(only).expect("parses");
        assert_eq!(layout.unified_root(), Some(Path::new("/run/with space")));
    }

    #[test]
    fn named_only_v1_with_cgroup2_is_unified() {
        let text = "\
1 0 0:1 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
2 0 0:2 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd
";
        assert!(Layout::from_mountinfo(text).expect("parses").is_unified());
    }

    #[test]
    fn no_cgroupfs_is_an_error() {
        let text = "22 1 0:21 / /proc rw - proc proc rw\n";
        assert!(matches!(
            Layout::from_mountinfo(text),
            Err(CgroupError::NoCgroupFs)
        ));
    }

    #[test]
    fn malformed_line_names_its_number() {
        let text = "22 1 0:21 / /proc rw - proc proc rw\ngarbage\n";
        match Layout::from_mountinfo(text) {
            Err(CgroupError::Mountinfo { line, .. }) => assert_eq!(line, 2),
            other => panic!("unexpected {other:?}"),
        }
    }
}
