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

use serde_json::json;

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
        let dir = tempfile::Builder::new()
            .prefix("sunaba-bench-")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?;
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

        let mut config = crate::cli::spec::default_config(nix::unistd::geteuid().as_raw() != 0);
        // Everything the bundle uses is in runtime-spec 1.0, which every
        // peer accepts (crun 1.8 refuses later versions).
        config["ociVersion"] = json!("1.0.2");
        config["process"]["terminal"] = json!(false);
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
        let Some(binary) = find(name) else {
            notes.push(format!("{name}: not installed (apt-get install {name})"));
            continue;
        };
        let hide_unified = name == "crun" && hybrid_cgroups();
        if hide_unified {
            notes.push(
                "crun: run in a private mount namespace with the empty cgroup2 mount detached, since it refuses hybrid cgroup hosts"
                    .into(),
            );
        }
        let global = if name == "runsc" {
            // gVisor's own network stack needs a configured namespace; the
            // bundle has a bare one, as for the other runtimes.
            vec!["--network=none".to_string()]
        } else {
            Vec::new()
        };
        found.push(OciRuntime {
            name: name.into(),
            binary,
            global,
            hide_unified,
        });
    }
    found
}
