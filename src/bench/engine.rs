//! podman as the engine in front of the runtime: `podman run --rm` of a
//! busybox image with sunaba, runc or crun as `--runtime`, so the figure is
//! what a podman user waits for. podman keeps its storage in a directory of
//! the benchmark's own, removed at the end.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::peers;

/// A private podman store holding one imported busybox image.
pub(super) struct Podman {
    binary: PathBuf,
    dir: tempfile::TempDir,
    image: String,
}

impl Podman {
    /// Imports `rootfs` (a directory) as the image, in a new store.
    pub(super) fn new(rootfs: &Path) -> Result<Podman, String> {
        let binary =
            peers::find("podman").ok_or("podman: not installed (apt-get install podman)")?;
        let dir = tempfile::Builder::new()
            .prefix("sunaba-bench-podman-")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?;
        let podman = Podman {
            binary,
            dir,
            image: format!("localhost/sunaba-bench:{}", std::process::id()),
        };
        let tar = podman.dir.path().join("rootfs.tar");
        super::sample::output(
            Command::new("tar")
                .arg("-C")
                .arg(rootfs)
                .arg("-cf")
                .arg(&tar)
                .arg("."),
        )?;
        let tar = tar.to_string_lossy().into_owned();
        super::sample::output(&mut podman.command(None, &["import", &tar, &podman.image]))?;
        Ok(podman)
    }

    /// `podman [storage options] [--runtime RUNTIME] args...`.
    pub(super) fn command(&self, runtime: Option<&Path>, args: &[&str]) -> Command {
        let path = |name: &str| self.dir.path().join(name);
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root")
            .arg(path("storage"))
            .arg("--runroot")
            .arg(path("run"))
            .arg("--tmpdir")
            .arg(path("tmp"))
            .args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"]);
        if let Some(runtime) = runtime {
            cmd.arg("--runtime").arg(runtime);
        }
        cmd.args(args);
        cmd
    }

    /// `podman run --rm` of `/bin/true` in the image. The ulimits stay
    /// within what a host without CAP_SYS_RESOURCE allows; podman would
    /// otherwise try to raise them.
    pub(super) fn run_true(&self, runtime: &Path) -> Command {
        self.command(
            Some(runtime),
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "--ulimit",
                "nofile=1024:1024",
                "--ulimit",
                "nproc=1024:1024",
                &self.image,
                "/bin/true",
            ],
        )
    }

    /// A runtime for podman that runs crun in a private mount namespace
    /// without the hybrid host's empty cgroup2 mount, which crun refuses.
    pub(super) fn hidden_cgroup2_crun(&self, crun: &Path) -> Result<PathBuf, String> {
        let unshare = peers::find("unshare").ok_or("unshare: not installed")?;
        let script = self.dir.path().join("crun-v1");
        let text = format!(
            "#!/bin/sh\nexec {} --mount --propagation private /bin/sh -c 'umount -l /sys/fs/cgroup/unified && exec \"$0\" \"$@\"' {} \"$@\"\n",
            unshare.display(),
            crun.display()
        );
        std::fs::write(&script, text).map_err(|e| format!("{}: {e}", script.display()))?;
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("{}: {e}", script.display()))?;
        Ok(script)
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let quiet = |mut cmd: Command| {
            let _ = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status();
        };
        quiet(self.command(None, &["rm", "--all", "--force", "--time", "0"]));
        quiet(self.command(None, &["rmi", "--all", "--force"]));
        // podman mounts inside its store (where the overlay driver sits on
        // tmpfs, it binds its own directory over itself); every such mount
        // must go before the directory can.
        let mountinfo = Path::new("/proc/self/mountinfo");
        let points = crate::mounts::mount_points_below(mountinfo, self.dir.path());
        for point in points.unwrap_or_default().iter().rev() {
            let _ = nix::mount::umount2(point, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}
