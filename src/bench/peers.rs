//! The runtimes sunaba is measured against, and the busybox bundle that the
//! OCI runtimes (sunaba included) all run.
//!
//! crun refuses a hybrid cgroup host: it sees the cgroup2 mount at
//! `/sys/fs/cgroup/unified` and expects controllers there. On such a host it
//! runs in a private mount namespace in which that mount is detached, so it
//! falls back to the v1 hierarchies; the host's own mounts are untouched.
//! The unshare and umount cost crun a fraction of a millisecond, which its
//! numbers include.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Value};

/// Where the static busybox comes from (Debian's busybox-static).
pub const BUSYBOX: &str = "/bin/busybox";

/// An OCI bundle of busybox running `/bin/true`, and a state root for each
/// runtime; all removed on drop.
pub struct Bundle {
    dir: tempfile::TempDir,
}

impl Bundle {
    /// Makes the bundle.
    ///
    /// # Errors
    ///
    /// No static busybox, or the temporary directory cannot be written.
    pub fn new() -> Result<Bundle, String> {
        if !Path::new(BUSYBOX).exists() {
            return Err(format!(
                "{BUSYBOX} not found; install busybox-static for the OCI rows"
            ));
        }
        let dir = temp_dir("sunaba-bench-")?;
        let rootfs = dir.path().join("bundle/rootfs");
        let fail = |what: &str, e: std::io::Error| format!("{what}: {e}");
        for d in ["bin", "proc", "dev", "sys", "tmp", "etc"] {
            std::fs::create_dir_all(rootfs.join(d)).map_err(|e| fail(d, e))?;
        }
        std::fs::copy(BUSYBOX, rootfs.join("bin/busybox")).map_err(|e| fail(BUSYBOX, e))?;
        for applet in ["true", "sh", "sleep"] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet))
                .map_err(|e| fail(applet, e))?;
        }

        let mut config = peer_config();
        config["process"]["args"] = json!(["/bin/true"]);
        let text = serde_json::to_string_pretty(&config).map_err(|e| e.to_string())?;
        std::fs::write(dir.path().join("bundle/config.json"), text)
            .map_err(|e| fail("config.json", e))?;
        Ok(Bundle { dir })
    }

    /// The bundle directory.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("bundle")
    }

    /// A state root of its own for `runtime`.
    pub fn state_root(&self, runtime: &str) -> PathBuf {
        self.dir.path().join(format!("state-{runtime}"))
    }
}

/// A temporary directory named `prefix...`, removed on drop.
fn temp_dir(prefix: &str) -> Result<tempfile::TempDir, String> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|e| {
            format!(
                "a temporary directory in {}: {e}",
                std::env::temp_dir().display()
            )
        })
}

/// `sunaba spec`'s configuration, in a form every peer runs: runtime-spec
/// 1.0 (crun 1.8 refuses later versions; nothing a bundle here uses is
/// newer) and no terminal, so the benchmark reads the output.
fn peer_config() -> Value {
    let mut config = crate::cli::spec::default_config(nix::unistd::geteuid().as_raw() != 0);
    config["ociVersion"] = json!("1.0.2");
    config["process"]["terminal"] = json!(false);
    config
}

/// An OCI runtime to drive over the bundle.
#[derive(Debug, Clone)]
pub struct OciRuntime {
    /// Its name in reports.
    pub name: String,
    /// The binary.
    pub binary: PathBuf,
    /// Global options placed before the verb.
    pub global: Vec<String>,
    /// Needs the cgroup2 mount of a hybrid host hidden.
    pub hide_unified: bool,
}

impl OciRuntime {
    /// `binary [global...] --root ROOT VERB args...`.
    pub fn command(&self, root: &Path, verb: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.args(&self.global)
            .arg("--root")
            .arg(root)
            .arg(verb)
            .args(args);
        if self.hide_unified {
            // SAFETY: the closure runs in the forked child before exec and
            // only makes raw syscalls, which are async-signal-safe.
            unsafe { cmd.pre_exec(hide_unified_cgroup) };
        }
        cmd
    }
}

/// In the child: a private mount namespace without the hybrid host's
/// cgroup2 mount.
fn hide_unified_cgroup() -> std::io::Result<()> {
    let check = |rc: libc::c_int| {
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    // SAFETY: unshare takes no pointers.
    check(unsafe { libc::unshare(libc::CLONE_NEWNS) })?;
    // SAFETY: static NUL-terminated strings; MS_REC|MS_PRIVATE only changes
    // propagation inside the new namespace, so the host never sees it.
    check(unsafe {
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    })?;
    // SAFETY: a static NUL-terminated path; the detach happens in the
    // private namespace made above.
    check(unsafe { libc::umount2(c"/sys/fs/cgroup/unified".as_ptr(), libc::MNT_DETACH) })
}

/// Finds `name` on PATH (and in the sbin directories, which a non-login
/// root shell may lack).
pub fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The first line `binary --version` prints.
pub fn version(binary: &Path) -> String {
    Command::new(binary)
        .arg("--version")
        .output()
        .ok()
        .map(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.lines().next().unwrap_or_default().trim().to_string()
        })
        .unwrap_or_default()
}

/// Whether this is a hybrid host: v1 controllers with an empty cgroup2
/// mount beside them.
pub fn hybrid_cgroups() -> bool {
    Path::new("/sys/fs/cgroup/unified/cgroup.controllers").exists()
}

/// The OCI peers installed here: runc, crun and runsc.
pub fn oci_peers(notes: &mut Vec<String>) -> Vec<OciRuntime> {
    let mut found = Vec::new();
    for name in ["runc", "crun", "runsc"] {
        let Some(rt) = oci_runtime(name) else {
            notes.push(format!("{name}: not installed (apt-get install {name})"));
            continue;
        };
        if rt.hide_unified {
            notes.push(
                "crun: run in a private mount namespace with the empty cgroup2 mount detached, since it refuses hybrid cgroup hosts"
                    .into(),
            );
        }
        found.push(rt);
    }
    found
}

/// The OCI runtime `name`, if it is installed, set up to run on this host.
pub fn oci_runtime(name: &str) -> Option<OciRuntime> {
    let binary = find(name)?;
    let global = if name == "runsc" {
        // gVisor's own network stack needs a configured namespace; the
        // bundle has a bare one, as for the other runtimes.
        vec!["--network=none".to_string()]
    } else {
        Vec::new()
    };
    Some(OciRuntime {
        name: name.into(),
        binary,
        global,
        hide_unified: name == "crun" && hybrid_cgroups(),
    })
}

/// A container id no earlier sample used.
pub fn next_id(runtime: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "bench-{runtime}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Deletes, with `--force`, every container `rt` left in its state root
/// `root` after a failed sample. The runtime lists them: each keeps its
/// state in a layout of its own (runc and crun a directory per container,
/// runsc files).
pub fn delete_leftovers(rt: &OciRuntime, root: &Path) {
    if !root.exists() {
        return;
    }
    let Ok(ids) = super::sample::output(&mut rt.command(root, "list", &["--quiet"])) else {
        return;
    };
    for id in ids.lines().map(str::trim).filter(|id| !id.is_empty()) {
        let _ = super::sample::output(&mut rt.command(root, "delete", &["--force", id]));
    }
}

/// An OCI bundle that runs sunaba's own `bench-workload` under a peer
/// runtime, for the steady-state rows: a root of empty mount points with
/// the host's /usr and library directories bound read-only over them (so a
/// dynamically linked sunaba runs too), the sunaba binary at /sunaba and a
/// host directory bound read-write at /data; its process has the
/// capabilities it is made with.
/// Each workload and filter has a config.json of its own beside the one
/// root; all removed on drop.
pub struct WorkloadBundle {
    dir: tempfile::TempDir,
    base: Value,
}

impl WorkloadBundle {
    /// Makes the root and the configuration every workload starts from,
    /// with `data` at /data and the capability set `caps`.
    ///
    /// # Errors
    ///
    /// The temporary directory cannot be written, or `sunaba` is not there.
    pub fn new(sunaba: &Path, data: &Path, caps: &[&str]) -> Result<WorkloadBundle, String> {
        let dir = temp_dir("sunaba-bench-steady-")?;
        let rootfs = dir.path().join("rootfs");
        let fail = |what: &Path, e: std::io::Error| format!("{}: {e}", what.display());
        let mkdir = |d: &Path| std::fs::create_dir_all(d).map_err(|e| fail(d, e));
        for d in ["proc", "dev", "sys", "tmp", "data"] {
            mkdir(&rootfs.join(d))?;
        }
        let mut config = peer_config();
        config["root"] = json!({"path": rootfs, "readonly": true});
        config["process"]["capabilities"] =
            json!({"bounding": caps, "effective": caps, "permitted": caps});
        let mounts = config["mounts"]
            .as_array_mut()
            .ok_or("the default configuration has no mounts")?;
        for d in [
            "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
        ] {
            if Path::new(d).exists() {
                mkdir(&rootfs.join(&d[1..]))?;
                mounts.push(json!({
                    "destination": d, "type": "bind", "source": d,
                    "options": ["rbind", "ro"]
                }));
            }
        }
        let binary = sunaba.canonicalize().map_err(|e| fail(sunaba, e))?;
        let target = rootfs.join("sunaba");
        std::fs::File::create(&target).map_err(|e| fail(&target, e))?;
        mounts.push(json!({
            "destination": "/sunaba", "type": "bind", "source": binary,
            "options": ["bind", "ro"]
        }));
        mounts.push(json!({
            "destination": "/data", "type": "bind", "source": data,
            "options": ["bind", "rw"]
        }));
        Ok(WorkloadBundle { dir, base: config })
    }

    /// The bundle that runs `sunaba bench-workload ARGS`, under the OCI
    /// filter `seccomp` or none; made when first asked for.
    ///
    /// # Errors
    ///
    /// The bundle cannot be written.
    pub fn bundle(
        &self,
        name: &str,
        args: &[String],
        seccomp: Option<&Value>,
    ) -> Result<PathBuf, String> {
        let path = self.dir.path().join(name);
        let file = path.join("config.json");
        if file.exists() {
            return Ok(path);
        }
        let mut config = self.base.clone();
        let mut argv = vec!["/sunaba".to_string(), "bench-workload".to_string()];
        argv.extend(args.iter().cloned());
        config["process"]["args"] = json!(argv);
        if let Some(filter) = seccomp {
            config["linux"]["seccomp"] = filter.clone();
        }
        let text = serde_json::to_string_pretty(&config).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        std::fs::write(&file, text).map_err(|e| format!("{}: {e}", file.display()))?;
        Ok(path)
    }

    /// A state root of its own for `runtime`.
    pub fn state_root(&self, runtime: &str) -> PathBuf {
        self.dir.path().join(format!("state-{runtime}"))
    }
}
