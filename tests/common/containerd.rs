//! A containerd of the test's own, for the tests that drive sunaba through
//! containerd: its own root, state directory, socket and config under a
//! temporary directory, stopped by pid when dropped. Images are a busybox
//! rootfs imported by podman (private storage), saved as an OCI archive
//! and imported with `ctr`, since no registry is reachable.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::unique;

/// The programs a containerd test needs on the host.
pub const TOOLS: &[&str] = &[
    "containerd",
    "ctr",
    "containerd-shim-runc-v2",
    "podman",
    "tar",
];

/// What a finished command gave back.
#[derive(Debug)]
#[allow(dead_code)] // stderr is read through Debug in failure messages
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `program args...` to completion with no stdin.
pub fn command(program: &str, args: &[&str]) -> Ran {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect(program);
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A running private containerd.
pub struct Containerd {
    pub dir: tempfile::TempDir,
    daemon: Child,
}

impl Containerd {
    /// Starts containerd with `root`, `state` and the socket in a fresh
    /// temporary directory; `plugins` is the rest of the config (version 2
    /// TOML), given the directory to put the plugins' own paths under.
    pub fn start(plugins: impl FnOnce(&Path) -> String) -> Self {
        // The shims daemonize; as a subreaper this test process inherits
        // them when they are done and reaps them, leaving no zombie.
        // SAFETY: prctl with integer arguments only; each test binary that
        // uses this runs one test, so no other test is affected.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        let dir = super::temp_dir();
        let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
        let config = format!(
            "version = 2\nroot = \"{}\"\nstate = \"{}\"\n[grpc]\n  address = \"{}\"\n{}",
            path("root"),
            path("state"),
            path("containerd.sock"),
            plugins(dir.path()),
        );
        std::fs::write(dir.path().join("config.toml"), config).expect("write config");
        let log = std::fs::File::create(dir.path().join("containerd.log")).expect("log");
        let daemon = Command::new("containerd")
            .arg("--config")
            .arg(dir.path().join("config.toml"))
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let containerd = Containerd { dir, daemon };
        let socket = containerd.socket();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !socket.exists() {
            assert!(
                Instant::now() < deadline,
                "containerd did not open {}:\n{}",
                socket.display(),
                containerd.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        containerd
    }

    /// containerd's gRPC socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }

    /// What containerd has logged so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    /// `ctr --address SOCKET args...`.
    pub fn ctr(&self, args: &[&str]) -> Ran {
        let socket = self.socket();
        let mut all = vec!["--address", socket.to_str().expect("utf-8")];
        all.extend_from_slice(args);
        command("ctr", &all)
    }

    /// Imports a busybox image named `image` (`NAME:TAG`) into containerd
    /// `namespace`; `cmd` becomes its default command when given.
    pub fn import_busybox(&self, namespace: &str, image: &str, cmd: Option<&str>) {
        // podman refuses a runroot longer than 50 characters: short names.
        let work = self.dir.path().join(unique("i"));
        let rootfs = work.join("rootfs");
        std::fs::create_dir_all(rootfs.join("bin")).expect("rootfs");
        for sub in ["etc", "tmp", "proc", "sys", "dev"] {
            std::fs::create_dir_all(rootfs.join(sub)).expect("rootfs dir");
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("copy busybox");
        for applet in ["sh", "echo", "sleep", "cat", "grep", "tr", "hostname"] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).expect("applet");
        }
        let tar = work.join("rootfs.tar");
        let oci = work.join("image.tar");
        let storage = work.join("podman");
        let runroot = work.join("run");
        let podman = |args: &[&str]| {
            let mut all = vec![
                "--root",
                storage.to_str().expect("utf-8"),
                "--runroot",
                runroot.to_str().expect("utf-8"),
            ];
            all.extend_from_slice(args);
            let ran = command("podman", &all);
            assert_eq!(ran.code, Some(0), "{ran:#?}");
        };
        let ran = command(
            "tar",
            &[
                "-C",
                rootfs.to_str().expect("utf-8"),
                "-cf",
                tar.to_str().expect("utf-8"),
                ".",
            ],
        );
        assert_eq!(ran.code, Some(0), "{ran:#?}");
        let change = cmd.map(|c| format!("CMD {c}"));
        let mut import = vec!["import"];
        if let Some(change) = &change {
            import.extend_from_slice(&["--change", change]);
        }
        import.extend_from_slice(&[tar.to_str().expect("utf-8"), image]);
        podman(&import);
        podman(&[
            "save",
            "--format",
            "oci-archive",
            "-o",
            oci.to_str().expect("utf-8"),
            image,
        ]);
        podman(&["rmi", "--all", "--force"]);
        let _ = Command::new("umount")
            .arg("-R")
            .arg(&storage)
            .stderr(Stdio::null())
            .status();
        let base = image.split(':').next().expect("name");
        let ran = self.ctr(&[
            "--namespace",
            namespace,
            "image",
            "import",
            "--base-name",
            base,
            oci.to_str().expect("utf-8"),
        ]);
        assert_eq!(ran.code, Some(0), "{ran:#?}");
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // The daemon is ours: end it by its pid and reap it.
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        // Reap the shims that exited and were handed to us.
        // SAFETY: waitpid with a null status pointer and WNOHANG.
        while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
        for mount in mounts_under(self.dir.path()) {
            let path = std::ffi::CString::new(mount.into_os_string().into_encoded_bytes())
                .expect("no NUL in a mountinfo path");
            // SAFETY: umount2 reads the NUL-terminated path only.
            unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

/// The mount points at or under `dir`, deepest first, from
/// /proc/self/mountinfo (its fifth field).
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(PathBuf::from)
        .filter(|m| m.starts_with(dir))
        .collect();
    found.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    found
}
