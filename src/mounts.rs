//! The sandbox's filesystem view: a new root built from bind mounts and
//! pseudo-filesystems, entered with pivot_root(2), with masked and read-only
//! paths (mount(2), mount_namespaces(7), pivot_root(2), mount_setattr(2)).
//!
//! The plan is computed and checked in the parent (every bind source exists,
//! every destination stays inside the root), so a bad path fails before any
//! process exists. The child carries it out in its private mount namespace:
//!
//! 1. make `/` private, so nothing propagates back to the host;
//! 2. clone the host's mount tree (open_tree(2)), mount a scratch tmpfs on
//!    `/tmp` and attach the clone at `/tmp/oldroot` (bind sources are read
//!    from there, so even a source under the host's `/tmp` is reachable);
//! 3. build the new root at `/tmp/newroot`, resolving every destination
//!    with openat2(RESOLVE_IN_ROOT) and mounting onto the resulting
//!    descriptor, so a symlink inside the root can never redirect a mount
//!    to the host;
//! 4. detach `/tmp/oldroot`, pivot into `/tmp/newroot` and detach the old
//!    root with everything on it;
//! 5. make the root read-only last, so the mountpoints could be created.
//!
//! Step 2 could pivot into the scratch tmpfs instead, as bubblewrap does,
//! but pivot_root(2) walks every task on the machine to move those whose
//! root is the old one (0.34 ms with 500 sandboxes running here), and that
//! would pay the walk twice. A clone of the mount tree costs the same
//! however many processes run beside it.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use oci_spec::runtime::Spec;
use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::sys::{self, mount_attr};

/// Where the host's root stays reachable while the new root is built.
const OLD_ROOT: &str = "/tmp/oldroot";
/// Where the new root is built.
const NEW_ROOT: &str = "/tmp/newroot";
/// An existing host directory the scratch tmpfs is mounted on, in the
/// sandbox's private mount namespace only; it holds the two above.
const SCRATCH: &str = "/tmp";

/// The annotation that asks for an empty tmpfs root instead of `root.path`.
pub const ROOT_ANNOTATION: &str = "run.sunaba.root";
/// Its value: an empty tmpfs root that the mounts fill.
pub const ROOT_TMPFS: &str = "tmpfs";

/// The device nodes every sandbox gets in its `/dev`, bound from the host's.
const DEFAULT_DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// A mount failure, naming the paths involved.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// A mount destination is not an absolute path inside the root.
    #[error("mount destination {0} must be an absolute path that stays inside the sandbox (no '..' past /)")]
    BadDestination(PathBuf),
    /// A bind source does not exist or cannot be resolved.
    #[error("bind source {path} cannot be used: {source}; create it or fix the path")]
    BindSource {
        /// The host path.
        path: PathBuf,
        /// Why it could not be resolved.
        source: io::Error,
    },
    /// A mount option is not understood.
    #[error("option {option:?} is not supported for the mount at /{destination}; a bind mount takes ro, rro, nosuid, nodev, noexec, rbind, the atime options and propagation")]
    BadOption {
        /// The mount destination.
        destination: PathBuf,
        /// The option.
        option: String,
    },
    /// The root filesystem directory is unusable.
    #[error("root filesystem {path} cannot be used: {source}")]
    Root {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A mount syscall failed.
    #[error("cannot {op} {target}: {source}")]
    Syscall {
        /// What was attempted, e.g. "bind-mount /srv onto".
        op: String,
        /// The target path.
        target: PathBuf,
        /// The kernel's answer.
        source: io::Error,
    },
}

fn syscall_err(
    op: impl Into<String>,
    target: impl AsRef<Path>,
) -> impl FnOnce(io::Error) -> MountError {
    let op = op.into();
    let target = target.as_ref().to_path_buf();
    move |source| MountError::Syscall { op, target, source }
}

fn errno(e: nix::errno::Errno) -> io::Error {
    io::Error::from(e)
}

/// What is mounted at a destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// A bind mount of a host path (absolute, resolved).
    Bind {
        /// The host path.
        source: PathBuf,
        /// Whether submounts come along (rbind).
        recursive: bool,
    },
    /// The container's view of its cgroups (a `cgroup` mount): cgroup2 on
    /// a unified host; on a v1 host a tmpfs holding one cgroup mount per
    /// hierarchy (and the unified one of a hybrid host). Mounted inside the
    /// cgroup namespace, each shows the container's cgroup as its root.
    Cgroup {
        /// Each v1 hierarchy: its directory name, its controllers and
        /// where the host mounts it; empty on v2.
        v1: Vec<(String, String, PathBuf)>,
        /// Where the host mounts cgroup2: the view's root (v2) or, beside
        /// v1 hierarchies, its `unified/` (hybrid).
        unified: Option<PathBuf>,
    },
    /// A new filesystem instance (tmpfs, proc, sysfs, devpts, mqueue).
    Filesystem {
        /// The filesystem type.
        fstype: String,
        /// The data string (comma-separated options the filesystem parses).
        data: String,
    },
}

impl MountPlan {
    /// Whether a new sysfs instance is mounted: it shows the network
    /// interfaces of the namespace its mounter is in, so the mounter must be
    /// in the sandbox's own by then.
    #[must_use]
    pub fn mounts_sysfs(&self) -> bool {
        self.mounts
            .iter()
            .any(|m| matches!(&m.kind, MountKind::Filesystem { fstype, .. } if fstype == "sysfs"))
    }
}

/// One mount of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountStep {
    /// Where, relative to the new root (no leading `/`, no `..`).
    pub destination: PathBuf,
    /// What.
    pub kind: MountKind,
    /// Flags for mount(2) (filesystems) — nosuid, nodev, noexec, rdonly.
    pub flags: MsFlags,
    /// `MOUNT_ATTR_*` to set after a bind mount.
    pub attrs: u64,
    /// `MOUNT_ATTR_*` to clear after a bind mount, before `attrs` are set
    /// (the access-time field, when an option picks one).
    pub attrs_clear: u64,
    /// Whether `attrs` apply to every submount (rro, or any rbind with ro).
    pub recursive_attrs: bool,
    /// Propagation to set on the mount (MS_PRIVATE, MS_SLAVE, ...), if any.
    pub propagation: Option<MsFlags>,
    /// Whether the source is a file, so the mountpoint is a file too.
    pub file: bool,
    /// Copy what the directory held into the new tmpfs (`tmpcopyup`, a
    /// runc extension podman uses for the tmpfs of `--read-only`).
    pub copy_up: bool,
}

/// A device node the config asks for (`linux.devices`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceNode {
    /// Where, relative to the new root.
    pub path: PathBuf,
    /// S_IFCHR, S_IFBLK or S_IFIFO.
    pub kind: libc::mode_t,
    /// Major device number.
    pub major: u64,
    /// Minor device number.
    pub minor: u64,
    /// Permission bits.
    pub mode: libc::mode_t,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// Where the root comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootSource {
    /// An empty tmpfs that only the mounts fill.
    Tmpfs,
    /// A host directory, bound onto itself.
    Directory(PathBuf),
}

/// The whole filesystem plan of a sandbox.
#[derive(Debug, Clone)]
pub struct MountPlan {
    /// The root.
    pub root: RootSource,
    /// Whether the root mount is read-only in the end.
    pub root_readonly: bool,
    /// The mounts, in order.
    pub mounts: Vec<MountStep>,
    /// Paths hidden behind /dev/null or an empty read-only tmpfs.
    pub masked: Vec<PathBuf>,
    /// Paths re-bound read-only.
    pub readonly: Vec<PathBuf>,
    /// Whether `/dev` is a tmpfs to fill with the default devices.
    pub populate_dev: bool,
    /// Whether the sandbox has a cgroup namespace of its own, which decides
    /// how a `cgroup` mount is made.
    pub cgroup_namespace: bool,
    /// Device nodes to create (`linux.devices`).
    pub devices: Vec<DeviceNode>,
    /// MS_PRIVATE, or MS_SLAVE when the config asks for host mounts to keep
    /// propagating in (`linux.rootfsPropagation`); never shared, so nothing
    /// made inside can reach the host.
    pub root_propagation: MsFlags,
}

/// Turns an absolute sandbox path into a path relative to the root,
/// rejecting any `..` that would climb above it.
pub fn relative_destination(dest: &Path) -> Result<PathBuf, MountError> {
    if !dest.is_absolute() {
        return Err(MountError::BadDestination(dest.to_path_buf()));
    }
    let mut out = PathBuf::new();
    for component in dest.components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                if !out.pop() {
                    return Err(MountError::BadDestination(dest.to_path_buf()));
                }
            }
            Component::Prefix(_) => return Err(MountError::BadDestination(dest.to_path_buf())),
        }
    }
    Ok(out)
}

/// Splits OCI mount options into flags, bind attributes and a data string.
fn parse_options(step: &mut MountStep, options: &[String]) -> Result<Vec<String>, MountError> {
    let mut data = Vec::new();
    let is_bind = matches!(step.kind, MountKind::Bind { .. });
    for option in options {
        let (flag, attr) = match option.as_str() {
            "ro" => (MsFlags::MS_RDONLY, mount_attr::RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, mount_attr::NOSUID),
            "nodev" => (MsFlags::MS_NODEV, mount_attr::NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, mount_attr::NOEXEC),
            "rro" => {
                step.recursive_attrs = true;
                (MsFlags::MS_RDONLY, mount_attr::RDONLY)
            }
            "noatime" | "strictatime" | "relatime" => {
                // The last of these wins, as with mount(8).
                step.attrs_clear |= mount_attr::ATIME;
                step.attrs &= !mount_attr::ATIME;
                step.flags
                    .remove(MsFlags::MS_NOATIME | MsFlags::MS_STRICTATIME | MsFlags::MS_RELATIME);
                match option.as_str() {
                    "noatime" => (MsFlags::MS_NOATIME, mount_attr::NOATIME),
                    "strictatime" => (MsFlags::MS_STRICTATIME, mount_attr::STRICTATIME),
                    _ => (MsFlags::MS_RELATIME, mount_attr::RELATIME),
                }
            }
            "nodiratime" => (MsFlags::MS_NODIRATIME, mount_attr::NODIRATIME),
            "diratime" => {
                step.attrs_clear |= mount_attr::NODIRATIME;
                (MsFlags::empty(), 0)
            }
            // A superblock flag: a bind mount shares the source's filesystem
            // and cannot change it.
            "sync" if !is_bind => (MsFlags::MS_SYNCHRONOUS, 0),
            // The negations: what a new mount has unless told otherwise (a
            // bind keeps its source's setting). "atime" and "norelatime"
            // leave the kernel's default, relatime, as mount(8) does.
            "rw" | "suid" | "dev" | "exec" | "bind" | "atime" | "norelatime" | "async" => {
                (MsFlags::empty(), 0)
            }
            "tmpcopyup" if !is_bind => {
                step.copy_up = true;
                (MsFlags::empty(), 0)
            }
            "rbind" => {
                if let MountKind::Bind { recursive, .. } = &mut step.kind {
                    *recursive = true;
                }
                (MsFlags::empty(), 0)
            }
            "private" | "rprivate" | "slave" | "rslave" | "shared" | "rshared" | "unbindable"
            | "runbindable" => {
                let recursive = option.starts_with('r') && option != "rw";
                let base = match option.trim_start_matches('r') {
                    "private" => MsFlags::MS_PRIVATE,
                    "slave" => MsFlags::MS_SLAVE,
                    "shared" => MsFlags::MS_SHARED,
                    _ => MsFlags::MS_UNBINDABLE,
                };
                step.propagation = Some(if recursive {
                    base | MsFlags::MS_REC
                } else {
                    base
                });
                (MsFlags::empty(), 0)
            }
            _ if is_bind => {
                return Err(MountError::BadOption {
                    destination: step.destination.clone(),
                    option: option.clone(),
                })
            }
            _ => {
                data.push(option.clone());
                (MsFlags::empty(), 0)
            }
        };
        step.flags |= flag;
        step.attrs |= attr;
    }
    Ok(data)
}

impl MountPlan {
    /// Builds the plan from a spec, checking every path on the host side.
    ///
    /// # Errors
    ///
    /// A destination outside the root, a missing bind source, an unknown
    /// option, or an unusable root directory.
    pub fn from_spec(spec: &Spec) -> Result<Self, MountError> {
        let root = spec.root().as_ref();
        let tmpfs_root = spec
            .annotations()
            .as_ref()
            .and_then(|a| a.get(ROOT_ANNOTATION))
            .is_some_and(|v| v == ROOT_TMPFS);
        let root_source = if tmpfs_root {
            RootSource::Tmpfs
        } else {
            let path = root.map(|r| r.path().clone()).unwrap_or_default();
            let resolved = std::fs::canonicalize(&path).map_err(|source| MountError::Root {
                path: path.clone(),
                source,
            })?;
            if !resolved.is_dir() {
                let source = io::Error::from_raw_os_error(libc::ENOTDIR);
                return Err(MountError::Root { path, source });
            }
            RootSource::Directory(resolved)
        };

        let mut mounts = Vec::new();
        for m in spec.mounts().iter().flatten() {
            mounts.push(Self::step(m)?);
        }
        let populate_dev = mounts.iter().any(|m| {
            m.destination == Path::new("dev")
                && matches!(&m.kind, MountKind::Filesystem { fstype, .. } if fstype == "tmpfs")
        });

        let linux = spec.linux().as_ref();
        let paths = |list: Option<&Vec<String>>| -> Result<Vec<PathBuf>, MountError> {
            list.into_iter()
                .flatten()
                .map(|p| relative_destination(Path::new(p)))
                .collect()
        };
        Ok(MountPlan {
            root: root_source,
            root_readonly: root.and_then(|r| r.readonly()).unwrap_or(false),
            mounts,
            masked: paths(linux.and_then(|l| l.masked_paths().as_ref()))?,
            readonly: paths(linux.and_then(|l| l.readonly_paths().as_ref()))?,
            populate_dev,
            devices: linux
                .and_then(|l| l.devices().as_ref())
                .into_iter()
                .flatten()
                .map(|d| {
                    use oci_spec::runtime::LinuxDeviceType as T;
                    let kind = match d.typ() {
                        T::C | T::U => libc::S_IFCHR,
                        T::B => libc::S_IFBLK,
                        T::P => libc::S_IFIFO,
                        T::A => {
                            return Err(MountError::BadOption {
                                destination: d.path().clone(),
                                option: "device type a (only b, c, u and p name a node)".to_string(),
                            })
                        }
                    };
                    Ok(DeviceNode {
                        path: relative_destination(d.path())?,
                        kind,
                        major: d.major().unsigned_abs(),
                        minor: d.minor().unsigned_abs(),
                        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
                        uid: d.uid().unwrap_or(0),
                        gid: d.gid().unwrap_or(0),
                    })
                })
                .collect::<Result<_, _>>()?,
            root_propagation: match linux.and_then(|l| l.rootfs_propagation().as_deref()) {
                None | Some("private" | "rprivate" | "") => MsFlags::MS_PRIVATE,
                Some("slave" | "rslave") => MsFlags::MS_SLAVE,
                Some(other) => {
                    return Err(MountError::BadOption {
                        destination: PathBuf::from("/"),
                        option: format!("rootfsPropagation {other} (only private and slave are supported: shared would let the container's mounts reach the host)"),
                    })
                }
            },
            cgroup_namespace: linux
                .and_then(|l| l.namespaces().as_ref())
                .is_some_and(|ns| {
                    ns.iter().any(|n| {
                        n.typ() == oci_spec::runtime::LinuxNamespaceType::Cgroup
                            && n.path().is_none()
                    })
                }),
        })
    }

    fn step(m: &oci_spec::runtime::Mount) -> Result<MountStep, MountError> {
        let destination = relative_destination(m.destination())?;
        let options = m.options().clone().unwrap_or_default();
        let fstype = m.typ().clone().unwrap_or_else(|| "bind".to_string());
        let is_bind = fstype == "bind" || options.iter().any(|o| o == "bind" || o == "rbind");
        let kind = if is_bind {
            let source = m.source().clone().unwrap_or_default();
            let resolved = std::fs::canonicalize(&source).map_err(|e| MountError::BindSource {
                path: source.clone(),
                source: e,
            })?;
            MountKind::Bind {
                source: resolved,
                recursive: false,
            }
        } else if fstype == "cgroup" || fstype == "cgroup2" {
            cgroup_view(&destination)?
        } else {
            MountKind::Filesystem {
                fstype,
                data: String::new(),
            }
        };
        let file = matches!(&kind, MountKind::Bind { source, .. } if !source.is_dir());
        let mut step = MountStep {
            destination,
            kind,
            flags: MsFlags::empty(),
            attrs: 0,
            attrs_clear: 0,
            recursive_attrs: false,
            propagation: None,
            file,
            copy_up: false,
        };
        let data = parse_options(&mut step, &options)?;
        if let MountKind::Filesystem { data: d, .. } = &mut step.kind {
            *d = data.join(",");
        }
        Ok(step)
    }

    /// Carries the plan out and pivots into the new root. Runs in the child,
    /// in its own mount namespace, before the capabilities are dropped.
    ///
    /// # Errors
    ///
    /// The first mount operation that fails, with its paths.
    pub fn apply(&self) -> Result<(), MountError> {
        // Without this, on hosts where / is shared (systemd), every mount
        // below would propagate back into the host's namespace.
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | self.root_propagation,
            None::<&str>,
        )
        .map_err(|e| syscall_err("set the propagation of", "/")(errno(e)))?;

        enter_scratch()?;
        self.build_root()?;
        let root = open_root()?;
        for step in &self.mounts {
            mount_step(&root, step, self.cgroup_namespace)?;
        }
        if self.populate_dev {
            populate_dev(&root)?;
        }
        for device in &self.devices {
            create_device(&root, device)?;
        }
        let mut empty = None;
        for path in &self.masked {
            mask_path(&root, path, &mut empty)?;
        }
        for path in &self.readonly {
            readonly_path(&root, path)?;
        }
        drop(root);
        pivot_into_new_root()?;

        // Last, so every mountpoint above could still be created in it.
        if self.root_readonly {
            let root = CString::from(c"/");
            sys::mount_setattr(&root, mount_attr::RDONLY, false)
                .map_err(syscall_err("make read-only", "/"))?;
        }
        Ok(())
    }

    fn build_root(&self) -> Result<(), MountError> {
        match &self.root {
            RootSource::Tmpfs => mount(
                Some("tmpfs"),
                NEW_ROOT,
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some("mode=0755,size=1m"),
            )
            .map_err(|e| syscall_err("mount tmpfs root on", NEW_ROOT)(errno(e))),
            RootSource::Directory(dir) => {
                let source = old_root_path(dir);
                mount(
                    Some(&source),
                    NEW_ROOT,
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                )
                .map_err(|e| {
                    syscall_err(format!("bind-mount {} onto", dir.display()), NEW_ROOT)(errno(e))
                })?;
                // A read-only root holds for the directory's own submounts
                // too. They turn read-only now, before the configured mounts
                // are stacked on top (those keep their own options); the
                // root mount itself follows last, once every mountpoint in
                // it has been made.
                if self.root_readonly {
                    let mountinfo = old_root_path(Path::new("/proc/self/mountinfo"));
                    let below = mount_points_below(&mountinfo, Path::new(NEW_ROOT))
                        .map_err(syscall_err("read", &mountinfo))?;
                    for point in below.iter().filter(|p| *p != Path::new(NEW_ROOT)) {
                        sys::mount_setattr(&cstring(point), mount_attr::RDONLY, true)
                            .map_err(syscall_err("make read-only", point))?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// The mount points at or below `dir` in a mountinfo file (`proc(5)`), in
/// the order they were mounted.
pub fn mount_points_below(mountinfo: &Path, dir: &Path) -> io::Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(mountinfo)?;
    Ok(text
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|point| PathBuf::from(crate::cgroups::layout::unescape(point)))
        .filter(|point| point.starts_with(dir))
        .collect())
}

/// What a `cgroup` mount shows, from the host's cgroup layout.
fn cgroup_view(destination: &Path) -> Result<MountKind, MountError> {
    let layout = crate::cgroups::Layout::detect().map_err(|e| MountError::Syscall {
        op: format!(
            "find the cgroup hierarchies for the mount at /{} ({e}); mount",
            destination.display()
        ),
        target: destination.to_path_buf(),
        source: io::Error::from_raw_os_error(libc::ENOENT),
    })?;
    let v1 = layout
        .v1_hierarchies()
        .iter()
        .filter_map(|h| {
            let dir = h.mount.file_name()?.to_string_lossy().into_owned();
            Some((dir, h.controllers.join(","), h.mount.clone()))
        })
        .collect();
    Ok(MountKind::Cgroup {
        v1,
        unified: layout.unified_root().map(Path::to_path_buf),
    })
}

/// The cgroup path of this process in the hierarchy with `controllers`
/// (`""` for cgroup2), from /proc/self/cgroup.
fn own_cgroup(controllers: &str) -> Option<PathBuf> {
    let text = std::fs::read_to_string(old_root_path(Path::new("/proc/self/cgroup"))).ok()?;
    let mut wanted: Vec<&str> = controllers.split(',').filter(|c| !c.is_empty()).collect();
    wanted.sort_unstable();
    text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, list, path) = (parts.next()?, parts.next()?, parts.next()?);
        let mut have: Vec<&str> = list.split(',').filter(|c| !c.is_empty()).collect();
        have.sort_unstable();
        (have == wanted).then(|| PathBuf::from(path.trim_start_matches('/')))
    })
}

/// Mounts the container's cgroup view (see [`MountKind::Cgroup`]). In a
/// cgroup namespace each hierarchy is mounted afresh and shows the
/// container's cgroup as its root; without one, the container's own cgroup
/// directories are bound instead, so it never sees the host's tree.
fn mount_cgroup_view(
    root: &OwnedFd,
    step: &MountStep,
    v1: &[(String, String, PathBuf)],
    unified: Option<&Path>,
    namespaced: bool,
) -> Result<(), MountError> {
    let shown = Path::new("/").join(&step.destination);
    let flags = step.flags | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let read_only = step.flags.contains(MsFlags::MS_RDONLY);

    // One hierarchy onto `rel`: a fresh mount in the namespace, else a bind
    // of the container's own cgroup directory.
    let attach = |rel: &Path,
                  fstype: &str,
                  controllers: &str,
                  host_mount: &Path|
     -> Result<(), MountError> {
        let shown = Path::new("/").join(rel);
        let target = open_in_root(root, rel, Create::Directory)?;
        if namespaced {
            let data = (!controllers.is_empty()).then_some(controllers);
            return mount(Some("cgroup"), &fd_path(&target), Some(fstype), flags, data).map_err(
                |e| syscall_err(format!("mount {fstype} ({controllers}) on"), &shown)(errno(e)),
            );
        }
        let own = own_cgroup(controllers).ok_or_else(|| MountError::Syscall {
            op: format!("find the container's {fstype} cgroup ({controllers}) for"),
            target: shown.clone(),
            source: io::Error::from_raw_os_error(libc::ENOENT),
        })?;
        bind_host(&host_mount.join(own), &target, &shown)?;
        if read_only {
            let mounted = open_in_root(root, rel, Create::Nothing)?;
            sys::mount_setattr(&cstring(&fd_path(&mounted)), mount_attr::RDONLY, false)
                .map_err(syscall_err("make read-only", &shown))?;
        }
        Ok(())
    };

    if v1.is_empty() {
        return attach(
            &step.destination,
            "cgroup2",
            "",
            unified.unwrap_or(Path::new("/sys/fs/cgroup")),
        );
    }
    // The tmpfs that holds one directory per hierarchy stays writable until
    // they exist, then takes the mount's read-only flag.
    let target = open_in_root(root, &step.destination, Create::Directory)?;
    mount(
        Some("cgroup"),
        &fd_path(&target),
        Some("tmpfs"),
        flags - MsFlags::MS_RDONLY,
        Some("mode=755"),
    )
    .map_err(|e| syscall_err("mount tmpfs for cgroups on", &shown)(errno(e)))?;
    for (dir, controllers, host_mount) in v1 {
        attach(
            &step.destination.join(dir),
            "cgroup",
            controllers,
            host_mount,
        )?;
    }
    if let Some(host_mount) = unified {
        attach(&step.destination.join("unified"), "cgroup2", "", host_mount)?;
    }
    if read_only {
        let mounted = open_in_root(root, &step.destination, Create::Nothing)?;
        sys::mount_setattr(&cstring(&fd_path(&mounted)), mount_attr::RDONLY, false)
            .map_err(syscall_err("make read-only", &shown))?;
    }
    Ok(())
}

/// The host path `p` as seen through the clone of the host's mount tree.
fn old_root_path(p: &Path) -> PathBuf {
    Path::new(OLD_ROOT).join(p.strip_prefix("/").unwrap_or(p))
}

/// Mounts the scratch tmpfs, with the host's mount tree at [`OLD_ROOT`]
/// until the new root is complete. The tree is cloned before the tmpfs
/// covers the host's `/tmp`, so the clone still shows what is under it.
fn enter_scratch() -> Result<(), MountError> {
    use rustix::mount::{move_mount, open_tree, MoveMountFlags, OpenTreeFlags};
    let host = open_tree(
        rustix::fs::CWD,
        "/",
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::AT_RECURSIVE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC,
    )
    .map_err(|e| syscall_err("clone the mount tree at", "/")(e.into()))?;
    mount(
        Some("tmpfs"),
        SCRATCH,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=0700,size=64k"),
    )
    .map_err(|e| syscall_err("mount scratch tmpfs on", SCRATCH)(errno(e)))?;
    for dir in [NEW_ROOT, OLD_ROOT] {
        std::fs::create_dir(dir).map_err(syscall_err("create", Path::new(dir)))?;
    }
    move_mount(
        &host,
        "",
        rustix::fs::CWD,
        OLD_ROOT,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| syscall_err("attach the host's mount tree at", OLD_ROOT)(e.into()))
}

/// Detaches the host tree's clone and makes [`NEW_ROOT`] the root, with the
/// pivot_root(".", ".") idiom: the old root (the host's, with the scratch
/// tmpfs on it) ends up stacked on the new one and is detached right after
/// (pivot_root(2), NOTES).
fn pivot_into_new_root() -> Result<(), MountError> {
    umount2(OLD_ROOT, MntFlags::MNT_DETACH)
        .map_err(|e| syscall_err("detach", OLD_ROOT)(errno(e)))?;
    nix::unistd::chdir(NEW_ROOT).map_err(|e| syscall_err("chdir to", NEW_ROOT)(errno(e)))?;
    nix::unistd::pivot_root(".", ".")
        .map_err(|e| syscall_err("pivot_root into", NEW_ROOT)(errno(e)))?;
    umount2(".", MntFlags::MNT_DETACH)
        .map_err(|e| syscall_err("detach old root at", "/")(errno(e)))?;
    nix::unistd::chdir("/").map_err(|e| syscall_err("chdir to", "/")(errno(e)))
}

fn open_root() -> Result<OwnedFd, MountError> {
    rustix::fs::open(
        NEW_ROOT,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| syscall_err("open", NEW_ROOT)(e.into()))
}

/// What to create when a mountpoint is missing.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Create {
    Nothing,
    Directory,
    File,
}

/// Opens `rel` inside the new root with every symlink resolved as if the
/// root were `/` (openat2 RESOLVE_IN_ROOT), creating missing directories
/// and, if asked, the final file.
fn open_in_root(root: &OwnedFd, rel: &Path, create: Create) -> Result<OwnedFd, MountError> {
    // Symlinks followed by hand before giving up, as the kernel's own limit.
    const MAX_LINKS: usize = 40;
    let how = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    let target = Path::new("/").join(rel);
    let open = |path: &Path| {
        rustix::fs::openat2(
            root,
            path,
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            how,
        )
    };
    if create == Create::Nothing {
        // Nothing to create: the walk below would open each prefix only to
        // open the whole path last, which the kernel resolves the same way
        // under RESOLVE_IN_ROOT. One call instead of one per component.
        let whole = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        return open(whole).map_err(|e| syscall_err("open", &target)(e.into()));
    }
    // The directory reached so far; `None` is the root itself, which needs
    // no descriptor of its own.
    let mut fd: Option<OwnedFd> = None;
    let mut pending: std::collections::VecDeque<std::ffi::OsString> = rel
        .components()
        .map(|c| c.as_os_str().to_os_string())
        .collect();
    let mut prefix = PathBuf::new();
    let mut links = 0;
    while let Some(component) = pending.pop_front() {
        let candidate = prefix.join(&component);
        match open(&candidate) {
            Ok(next) => {
                fd = Some(next);
                prefix = candidate;
            }
            Err(rustix::io::Errno::NOENT) if create != Create::Nothing => {
                // A symlink whose target is missing: what is made is its
                // target, resolved inside the root like any other path, so
                // an image's `/var/run -> /run` gets a /run of its own.
                let dir = fd.as_ref().unwrap_or(root);
                if let Ok(link) = rustix::fs::readlinkat(dir, component.as_os_str(), Vec::new()) {
                    links += 1;
                    if links > MAX_LINKS {
                        let loop_err = io::Error::from_raw_os_error(libc::ELOOP);
                        return Err(syscall_err("resolve", &target)(loop_err));
                    }
                    let link = PathBuf::from(
                        <std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(
                            link.into_bytes(),
                        ),
                    );
                    if link.is_absolute() {
                        prefix = PathBuf::new();
                        fd = None;
                    }
                    for part in link.components().rev() {
                        if !matches!(part, Component::RootDir) {
                            pending.push_front(part.as_os_str().to_os_string());
                        }
                    }
                    continue;
                }
                if pending.is_empty() && create == Create::File {
                    let flags = OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC;
                    rustix::fs::openat(
                        dir,
                        component.as_os_str(),
                        flags,
                        Mode::from_bits_truncate(0o644),
                    )
                    .map_err(|e| syscall_err("create mountpoint", &target)(e.into()))?;
                } else {
                    rustix::fs::mkdirat(
                        dir,
                        component.as_os_str(),
                        Mode::from_bits_truncate(0o755),
                    )
                    .map_err(|e| syscall_err("create mountpoint", &target)(e.into()))?;
                }
                fd = Some(open(&candidate).map_err(|e| syscall_err("open", &target)(e.into()))?);
                prefix = candidate;
            }
            Err(e) => return Err(syscall_err("open", &target)(e.into())),
        }
    }
    match fd {
        Some(fd) => Ok(fd),
        None => open(Path::new(".")).map_err(|e| syscall_err("open", &target)(e.into())),
    }
}

/// Binds the host's `host` (an absolute host path) onto the object behind
/// `target`; `shown` names the destination in errors.
fn bind_host(host: &Path, target: &OwnedFd, shown: &Path) -> Result<(), MountError> {
    let source = old_root_path(host);
    mount(
        Some(&source),
        &fd_path(target),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| syscall_err(format!("bind-mount {} onto", host.display()), shown)(errno(e)))
}

/// The magic link through which mount(2) reaches the object behind `fd`.
fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("{OLD_ROOT}/proc/self/fd/{}", fd.as_raw_fd()))
}

fn cstring(path: &Path) -> CString {
    use std::os::unix::ffi::OsStrExt;
    // Paths built here never contain NUL: they come from OsStr components
    // and fd numbers.
    CString::new(path.as_os_str().as_bytes()).unwrap_or_default()
}

fn mount_step(root: &OwnedFd, step: &MountStep, cgroup_namespace: bool) -> Result<(), MountError> {
    let shown = Path::new("/").join(&step.destination);
    let create = if step.file {
        Create::File
    } else {
        Create::Directory
    };
    let target = open_in_root(root, &step.destination, create)?;
    let target_path = fd_path(&target);

    match &step.kind {
        MountKind::Cgroup { v1, unified } => {
            drop(target);
            mount_cgroup_view(root, step, v1, unified.as_deref(), cgroup_namespace)?;
        }
        MountKind::Bind { source, recursive } => {
            let mut flags = MsFlags::MS_BIND;
            if *recursive {
                flags |= MsFlags::MS_REC;
            }
            mount(
                Some(&old_root_path(source)),
                &target_path,
                None::<&str>,
                flags,
                None::<&str>,
            )
            .map_err(|e| {
                syscall_err(format!("bind-mount {} onto", source.display()), &shown)(errno(e))
            })?;
            if step.attrs != 0 || step.attrs_clear != 0 {
                // Reopen: the descriptor above refers to the directory under
                // the new mount, not to the mount itself.
                let mounted = open_in_root(root, &step.destination, Create::Nothing)?;
                let recursive_attrs = step.recursive_attrs || *recursive;
                sys::mount_setattr_clearing(
                    &cstring(&fd_path(&mounted)),
                    step.attrs,
                    step.attrs_clear,
                    recursive_attrs,
                )
                .map_err(syscall_err("set mount attributes on", &shown))?;
            }
        }
        MountKind::Filesystem { fstype, data } => {
            let data = (!data.is_empty()).then_some(data.as_str());
            mount(
                Some(fstype.as_str()),
                &target_path,
                Some(fstype.as_str()),
                step.flags,
                data,
            )
            .map_err(|e| syscall_err(format!("mount {fstype} on"), &shown)(errno(e)))?;
            if step.copy_up {
                // `target` still names the directory under the new mount.
                let mounted = open_in_root(root, &step.destination, Create::Nothing)?;
                copy_tree(&target_path, &fd_path(&mounted)).map_err(syscall_err(
                    "copy the directory's contents into the tmpfs at",
                    &shown,
                ))?;
            }
        }
    }

    if let Some(propagation) = step.propagation {
        let mounted = open_in_root(root, &step.destination, Create::Nothing)?;
        mount(
            None::<&str>,
            &fd_path(&mounted),
            None::<&str>,
            propagation,
            None::<&str>,
        )
        .map_err(|e| syscall_err("set propagation of", &shown)(errno(e)))?;
    }
    Ok(())
}

/// Copies the directory tree at `from` into `to`: directories, regular
/// files and symlinks, with their modes and owners.
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let meta = std::fs::symlink_metadata(&src)?;
        if meta.is_dir() {
            std::fs::create_dir(&dst)?;
            copy_tree(&src, &dst)?;
        } else if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if meta.is_file() {
            std::fs::copy(&src, &dst)?;
        } else {
            continue;
        }
        std::os::unix::fs::lchown(&dst, Some(meta.uid()), Some(meta.gid()))?;
        if !meta.file_type().is_symlink() {
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(meta.mode()))?;
        }
    }
    Ok(())
}

/// Fills a tmpfs `/dev` with the default device nodes (bound from the host,
/// which also works inside a user namespace where mknod is refused), the
/// devpts `ptmx` link and the usual `/proc/self/fd` links.
fn populate_dev(root: &OwnedFd) -> Result<(), MountError> {
    for name in DEFAULT_DEVICES {
        let host = Path::new("/dev").join(name);
        if !old_root_path(&host).exists() {
            continue;
        }
        let rel = Path::new("dev").join(name);
        let target = open_in_root(root, &rel, Create::File)?;
        bind_host(&host, &target, &host)?;
    }

    let dev = open_in_root(root, Path::new("dev"), Create::Directory)?;
    let links = [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ];
    for (name, target) in links {
        match rustix::fs::symlinkat(target, &dev, name) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => {
                return Err(syscall_err("create symlink", Path::new("/dev").join(name))(
                    e.into(),
                ))
            }
        }
    }
    Ok(())
}

/// Opens `rel` inside the root, or `None` when it does not exist.
fn open_if_exists(root: &OwnedFd, rel: &Path) -> Result<Option<OwnedFd>, MountError> {
    match open_in_root(root, rel, Create::Nothing) {
        Ok(fd) => Ok(Some(fd)),
        Err(MountError::Syscall { source, .. }) if source.raw_os_error() == Some(libc::ENOENT) => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Makes a device node the config lists. Inside a user namespace mknod(2)
/// is refused; the host's node at the same path is bound instead, as runc
/// does for rootless containers.
fn create_device(root: &OwnedFd, device: &DeviceNode) -> Result<(), MountError> {
    let shown = Path::new("/").join(&device.path);
    let parent = device.path.parent().unwrap_or(Path::new(""));
    let name = device
        .path
        .file_name()
        .ok_or_else(|| MountError::BadDestination(shown.clone()))?;
    let dir = open_in_root(root, parent, Create::Directory)?;
    let dev = rustix::fs::makedev(
        u32::try_from(device.major).unwrap_or(u32::MAX),
        u32::try_from(device.minor).unwrap_or(u32::MAX),
    );
    let file_type = rustix::fs::FileType::from_raw_mode(device.kind);
    let mode = Mode::from_bits_truncate(device.mode);
    match rustix::fs::mknodat(&dir, name, file_type, mode, dev) {
        Ok(()) => {}
        Err(rustix::io::Errno::EXIST) => return Ok(()),
        Err(rustix::io::Errno::PERM) => {
            let target = open_in_root(root, &device.path, Create::File)?;
            return bind_host(&shown, &target, &shown);
        }
        Err(e) => return Err(syscall_err("create device node", &shown)(e.into())),
    }
    // mknod applies the umask; the config's mode and owner are exact.
    rustix::fs::chmodat(&dir, name, mode, rustix::fs::AtFlags::empty())
        .map_err(|e| syscall_err("set the mode of", &shown)(e.into()))?;
    rustix::fs::chownat(
        &dir,
        name,
        Some(rustix::fs::Uid::from_raw(device.uid)),
        Some(rustix::fs::Gid::from_raw(device.gid)),
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| syscall_err("set the owner of", &shown)(e.into()))
}

/// Hides a path: a file behind the host's /dev/null, a directory behind an
/// empty read-only tmpfs. A path that does not exist needs no hiding.
///
/// Every masked directory shows the same tmpfs: the first one mounts it and
/// leaves it in `empty`, the others bind it. Its superblock is read-only,
/// so nothing can be written to it; a sandbox with CAP_SYS_ADMIN that
/// remounted it writable would see its writes in all its masked
/// directories, but those are all it could reach. Each sandbox alive then
/// holds one superblock for its masks instead of one per directory: when
/// any memory cgroup on the machine is removed, the kernel visits the
/// reclaim lists of every superblock, so each one costs all later
/// sandboxes a little.
fn mask_path(root: &OwnedFd, rel: &Path, empty: &mut Option<OwnedFd>) -> Result<(), MountError> {
    let shown = Path::new("/").join(rel);
    let Some(target) = open_if_exists(root, rel)? else {
        return Ok(());
    };
    let is_dir = rustix::fs::fstat(&target)
        .map(|st| {
            rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory
        })
        .map_err(|e| syscall_err("stat", &shown)(e.into()))?;
    if !is_dir {
        return bind_host(Path::new("/dev/null"), &target, &shown);
    }
    if let Some(empty) = empty {
        // A plain bind keeps the source mount's read-only flag, and the
        // superblock itself was made read-only when it was mounted.
        return mount(
            Some(&fd_path(empty)),
            &fd_path(&target),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| syscall_err("mask", &shown)(errno(e)));
    }
    mount(
        Some("tmpfs"),
        &fd_path(&target),
        Some("tmpfs"),
        MsFlags::MS_RDONLY,
        // tmpfs reads size=0 as no limit; the read-only superblock is what
        // keeps the mask empty.
        Some("size=0"),
    )
    .map_err(|e| syscall_err("mask", &shown)(errno(e)))?;
    *empty = Some(open_in_root(root, rel, Create::Nothing)?);
    Ok(())
}

/// Re-binds a path onto itself, read-only with every submount.
fn readonly_path(root: &OwnedFd, rel: &Path) -> Result<(), MountError> {
    let shown = Path::new("/").join(rel);
    let Some(target) = open_if_exists(root, rel)? else {
        return Ok(());
    };
    let path = fd_path(&target);
    mount(
        Some(&path),
        &path,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| syscall_err("bind-mount onto itself", &shown)(errno(e)))?;
    let mounted = open_in_root(root, rel, Create::Nothing)?;
    let attrs = mount_attr::RDONLY | mount_attr::NOSUID | mount_attr::NODEV | mount_attr::NOEXEC;
    sys::mount_setattr(&cstring(&fd_path(&mounted)), attrs, true)
        .map_err(syscall_err("make read-only", &shown))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_root_propagation_is_refused() {
        // sunaba's choice, stricter than the runtime-spec: a shared root
        // would let mounts made in the container appear on the host.
        let spec: Spec = serde_json::from_str(
            r#"{"ociVersion":"1.0.0","root":{"path":"/"},"linux":{"rootfsPropagation":"shared"}}"#,
        )
        .unwrap();
        let err = MountPlan::from_spec(&spec).unwrap_err().to_string();
        assert!(err.contains("rootfsPropagation shared"), "{err}");
    }

    #[test]
    fn destinations_cannot_climb_out_of_the_root() {
        assert_eq!(
            relative_destination(Path::new("/app/input")).unwrap(),
            Path::new("app/input")
        );
        assert_eq!(
            relative_destination(Path::new("/a/../b")).unwrap(),
            Path::new("b")
        );
        assert!(relative_destination(Path::new("/../etc")).is_err());
        assert!(relative_destination(Path::new("relative")).is_err());
    }

    fn fs_step() -> MountStep {
        MountStep {
            destination: PathBuf::from("tmp"),
            kind: MountKind::Filesystem {
                fstype: "tmpfs".into(),
                data: String::new(),
            },
            flags: MsFlags::empty(),
            attrs: 0,
            attrs_clear: 0,
            recursive_attrs: false,
            propagation: None,
            file: false,
            copy_up: false,
        }
    }

    #[test]
    fn every_option_features_lists_is_carried_out_not_passed_as_data() {
        for option in crate::cli::features::MOUNT_OPTIONS {
            let mut step = fs_step();
            let data = parse_options(&mut step, &[option.to_string()]).unwrap();
            assert!(data.is_empty(), "{option} went to the filesystem as data");
        }
    }

    #[test]
    fn access_time_options_keep_the_last_and_clear_the_field_on_binds() {
        let mut step = fs_step();
        let opts: Vec<String> = ["noatime", "strictatime", "nodiratime", "sync"]
            .map(String::from)
            .into();
        assert!(parse_options(&mut step, &opts).unwrap().is_empty());
        assert_eq!(
            step.flags,
            MsFlags::MS_STRICTATIME | MsFlags::MS_NODIRATIME | MsFlags::MS_SYNCHRONOUS
        );

        let mut step = fs_step();
        step.kind = MountKind::Bind {
            source: "/usr".into(),
            recursive: false,
        };
        let opts: Vec<String> = ["strictatime", "noatime", "diratime"]
            .map(String::from)
            .into();
        parse_options(&mut step, &opts).unwrap();
        assert_eq!(step.attrs, mount_attr::NOATIME);
        assert_eq!(step.attrs_clear, mount_attr::ATIME | mount_attr::NODIRATIME);
        // A bind shares its source's superblock: sync cannot apply to it.
        assert!(parse_options(&mut step, &["sync".to_string()]).is_err());
    }

    #[test]
    fn filesystem_options_split_into_flags_and_data() {
        let mut step = fs_step();
        let opts: Vec<String> = ["nosuid", "nodev", "size=100m", "mode=1777"]
            .map(String::from)
            .into();
        let data = parse_options(&mut step, &opts).unwrap();
        assert_eq!(data, ["size=100m", "mode=1777"]);
        assert_eq!(step.flags, MsFlags::MS_NOSUID | MsFlags::MS_NODEV);
    }

    #[test]
    fn bind_options_become_recursive_attributes() {
        let mut step = fs_step();
        step.kind = MountKind::Bind {
            source: "/usr".into(),
            recursive: false,
        };
        let opts: Vec<String> = ["rbind", "rro", "nosuid"].map(String::from).into();
        parse_options(&mut step, &opts).unwrap();
        assert_eq!(
            step.kind,
            MountKind::Bind {
                source: "/usr".into(),
                recursive: true
            }
        );
        assert!(step.recursive_attrs);
        assert_eq!(step.attrs, mount_attr::RDONLY | mount_attr::NOSUID);
        let bad: Vec<String> = vec!["size=1".into()];
        assert!(parse_options(&mut step, &bad).is_err());
    }
}
