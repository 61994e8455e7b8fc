//! containerd driving sunaba through its runc shim (`ctr run --runc-binary`),
//! with a containerd of the test's own: its own root, state directory and
//! socket, stopped by pid at the end. The image is a busybox rootfs saved
//! by podman as an OCI archive and imported with `ctr`.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{privileged, require, unique};

const SUNABA: &str = env!("CARGO_BIN_EXE_sunaba");

struct Containerd {
    dir: tempfile::TempDir,
    daemon: Child,
    image: String,
}

#[derive(Debug)]
#[allow(dead_code)] // stderr is read through Debug in failure messages
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn command(program: &str, args: &[&str]) -> Ran {
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

impl Containerd {
    fn start() -> Self {
        // The shims daemonize; as a subreaper this test process inherits
        // them when they are done and reaps them, leaving no zombie.
        // SAFETY: prctl with integer arguments only; this test binary runs
        // one test, so no other test is affected.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        let dir = common::temp_dir();
        let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
        let config = format!(
            "version = 2\nroot = \"{}\"\nstate = \"{}\"\n[grpc]\n  address = \"{}\"\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  disable = true\n",
            path("root"),
            path("state"),
            path("containerd.sock"),
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
        let socket = dir.path().join("containerd.sock");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !socket.exists() {
            assert!(
                Instant::now() < deadline,
                "containerd did not open {}",
                socket.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut containerd = Containerd {
            dir,
            daemon,
            image: String::new(),
        };
        containerd.image = containerd.import_busybox();
        containerd
    }

    fn ctr(&self, args: &[&str]) -> Ran {
        let socket = self.dir.path().join("containerd.sock");
        let mut all = vec!["--address", socket.to_str().expect("utf-8")];
        all.extend_from_slice(args);
        command("ctr", &all)
    }

    /// A busybox image: a rootfs tarball imported by podman (private
    /// storage), saved as an OCI archive, imported by ctr.
    fn import_busybox(&self) -> String {
        let rootfs = self.dir.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("bin")).expect("rootfs");
        for sub in ["etc", "tmp", "proc", "sys", "dev"] {
            std::fs::create_dir_all(rootfs.join(sub)).expect("rootfs dir");
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("copy busybox");
        for applet in ["sh", "echo", "sleep", "cat", "grep"] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).expect("applet");
        }
        let tar = self.dir.path().join("rootfs.tar");
        let oci = self.dir.path().join("image.tar");
        let image = format!("localhost/sunaba-ctr:{}", unique("img"));
        let storage: PathBuf = self.dir.path().join("podman");
        let podman = |args: &[&str]| {
            let mut all = vec!["--root", storage.to_str().expect("utf-8"), "--runroot"];
            let runroot = self.dir.path().join("podman-run");
            let runroot = runroot.to_str().expect("utf-8").to_string();
            all.push(&runroot);
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
        podman(&["import", tar.to_str().expect("utf-8"), &image]);
        podman(&[
            "save",
            "--format",
            "oci-archive",
            "-o",
            oci.to_str().expect("utf-8"),
            &image,
        ]);
        podman(&["rmi", "--all", "--force"]);
        let _ = Command::new("umount")
            .arg("-R")
            .arg(&storage)
            .stderr(Stdio::null())
            .status();
        let base = image.split(':').next().expect("name");
        let ran = self.ctr(&[
            "image",
            "import",
            "--base-name",
            base,
            oci.to_str().expect("utf-8"),
        ]);
        assert_eq!(ran.code, Some(0), "{ran:#?}");
        image
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // The daemon is ours: end it by its pid and reap it.
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        // Reap the shims that exited and were handed to us.
        // SAFETY: waitpid with a live status pointer and WNOHANG.
        while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
        let _ = Command::new("umount")
            .arg("-R")
            .arg(self.dir.path())
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn containerd_runs_execs_and_kills_through_the_runc_shim() {
    if !privileged("containerd_runs_execs_and_kills_through_the_runc_shim")
        || !require(
            "containerd_runs_execs_and_kills_through_the_runc_shim",
            &[
                "containerd",
                "ctr",
                "containerd-shim-runc-v2",
                "podman",
                "tar",
            ],
        )
    {
        return;
    }
    let containerd = Containerd::start();
    let image = containerd.image.clone();

    // Foreground: output and exit status come back through the shim.
    let id = unique("c");
    let script = "echo hello from containerd; grep NoNewPrivs /proc/self/status; exit 3";
    let ran = containerd.ctr(&[
        "run",
        "--rm",
        "--runc-binary",
        SUNABA,
        &image,
        &id,
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(ran.code, Some(3), "{ran:#?}");
    assert!(ran.stdout.contains("hello from containerd"), "{ran:#?}");
    assert!(ran.stdout.contains("NoNewPrivs:\t1"), "{ran:#?}");

    // Detached: exec into it, stop it with SIGTERM, delete it.
    let id = unique("c");
    let loop_script = "trap 'exit 0' TERM; while true; do sleep 0.1; done";
    let ran = containerd.ctr(&[
        "run",
        "-d",
        "--runc-binary",
        SUNABA,
        &image,
        &id,
        "sh",
        "-c",
        loop_script,
    ]);
    assert_eq!(ran.code, Some(0), "{ran:#?}");
    let ran = containerd.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        &id,
        "sh",
        "-c",
        "echo in-exec; exit 6",
    ]);
    assert_eq!(ran.code, Some(6), "{ran:#?}");
    assert_eq!(ran.stdout.trim(), "in-exec", "{ran:#?}");
    let ran = containerd.ctr(&["task", "kill", &id]);
    assert_eq!(ran.code, Some(0), "{ran:#?}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ran = containerd.ctr(&["task", "ls"]);
        let line = ran
            .stdout
            .lines()
            .find(|l| l.starts_with(&id))
            .unwrap_or_default()
            .to_string();
        if line.contains("STOPPED") {
            break;
        }
        assert!(Instant::now() < deadline, "{id} did not stop: {ran:#?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let ran = containerd.ctr(&["task", "delete", &id]);
    assert_eq!(ran.code, Some(0), "{ran:#?}");
    let ran = containerd.ctr(&["container", "rm", &id]);
    assert_eq!(ran.code, Some(0), "{ran:#?}");
    assert!(
        !std::path::Path::new("/run/containerd/runc/default")
            .join(&id)
            .exists(),
        "sunaba's state for {id} is left behind"
    );
}
