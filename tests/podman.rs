//! podman driving sunaba as its OCI runtime (`podman --runtime`), with a
//! locally imported busybox image and podman's storage in a private
//! directory, so the host's containers and images are never touched.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{privileged, require, unique};

const SUNABA: &str = env!("CARGO_BIN_EXE_sunaba");

/// A private podman: its own storage, run and temp directories, cgroupfs
/// (sunaba does not manage systemd cgroups), events in a file.
struct Podman {
    dir: tempfile::TempDir,
    image: String,
}

/// What a podman command printed and how it ended (stderr is read through
/// `Debug` in failure messages).
#[derive(Debug)]
#[allow(dead_code)]
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Podman {
    fn new() -> Self {
        let dir = common::temp_dir();
        let podman = Podman {
            dir,
            image: format!("localhost/sunaba-it:{}", unique("img")),
        };
        let rootfs = podman.dir.path().join("rootfs");
        for sub in ["bin", "etc", "tmp", "proc", "sys", "dev", "run"] {
            std::fs::create_dir_all(rootfs.join(sub)).expect("rootfs dir");
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("copy busybox");
        for applet in [
            "sh", "cat", "echo", "sleep", "touch", "tty", "id", "hostname", "grep", "ls",
        ] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).expect("applet");
        }
        std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\n").expect("passwd");
        std::fs::write(rootfs.join("run/kept"), "from the image\n").expect("run file");
        let tar = podman.dir.path().join("rootfs.tar");
        let status = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .expect("tar");
        assert!(status.success(), "tar failed");
        let imported = podman.run(&["import", &tar.to_string_lossy(), &podman.image]);
        assert_eq!(imported.code, Some(0), "{imported:#?}");
        podman
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str]) -> Ran {
        let out = Command::new("podman")
            .arg("--root")
            .arg(self.path("storage"))
            .arg("--runroot")
            .arg(self.path("run"))
            .arg("--tmpdir")
            .arg(self.path("tmp"))
            .args([
                "--runtime",
                SUNABA,
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "file",
            ])
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run podman");
        Ran {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `podman run --rm` of the test image; the ulimits are set below the
    /// machine's hard limits, which podman would otherwise try to raise
    /// (and raising them needs CAP_SYS_RESOURCE, which a host may withhold).
    fn run_image(&self, options: &[&str], script: &str) -> Ran {
        let mut args = vec![
            "run",
            "--rm",
            "--network",
            "none",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ];
        args.extend_from_slice(options);
        args.extend([self.image.as_str(), "sh", "-c", script]);
        self.run(&args)
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Containers the test left (after a failure) go with their storage.
        let _ = self.run(&["rm", "--all", "--force", "--time", "0"]);
        let _ = self.run(&["rmi", "--all", "--force"]);
        // podman mounts its overlay storage; unmount before the temp dir goes.
        let _ = Command::new("umount")
            .arg("-R")
            .arg(self.path("storage"))
            .stderr(std::process::Stdio::null())
            .status();
    }
}

fn no_sunaba_state_for(id: &str) -> bool {
    !Path::new("/run/sunaba").join(id.trim()).exists()
}

#[test]
fn podman_runs_containers_with_sunaba() {
    if !privileged("podman_runs_containers_with_sunaba")
        || !require("podman_runs_containers_with_sunaba", &["podman", "tar"])
    {
        return;
    }
    let podman = Podman::new();

    // Output, exit status and the sandbox's own view.
    let out = podman.run_image(
        &[],
        "echo hello; grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; exit 3",
    );
    assert_eq!(out.code, Some(3), "{out:#?}");
    assert!(out.stdout.starts_with("hello\n"), "{out:#?}");
    assert!(
        out.stdout.contains("Seccomp:\t2"),
        "podman's seccomp profile is applied: {out:#?}"
    );

    // --memory lands in the container's cgroup, visible to it read-only.
    let out = podman.run_image(&["--memory", "64m"], "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max 2>/dev/null; touch /sys/fs/cgroup/x 2>&1; true");
    assert_eq!(out.code, Some(0), "{out:#?}");
    assert!(out.stdout.contains("67108864"), "{out:#?}");
    assert!(out.stdout.contains("Read-only file system"), "{out:#?}");

    // --read-only: the root refuses writes, the tmpfs podman adds takes
    // them and keeps what the image had there (tmpcopyup).
    let out = podman.run_image(
        &["--read-only"],
        "touch /x 2>&1; cat /run/kept; touch /run/y && echo run-ok",
    );
    assert_eq!(out.code, Some(0), "{out:#?}");
    assert!(out.stdout.contains("Read-only file system"), "{out:#?}");
    assert!(
        out.stdout.contains("from the image") && out.stdout.contains("run-ok"),
        "{out:#?}"
    );
}

#[test]
fn podman_exec_stop_and_rm_reach_a_running_container() {
    if !privileged("podman_exec_stop_and_rm_reach_a_running_container")
        || !require(
            "podman_exec_stop_and_rm_reach_a_running_container",
            &["podman", "tar"],
        )
    {
        return;
    }
    let podman = Podman::new();
    let name = unique("c");
    let out = podman.run(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        &podman.image,
        "sh",
        "-c",
        "trap 'exit 0' TERM; while true; do sleep 0.1; done",
    ]);
    assert_eq!(out.code, Some(0), "{out:#?}");
    let id = out.stdout.trim().to_string();
    assert!(!no_sunaba_state_for(&id), "sunaba holds no state for {id}");

    let out = podman.run(&["exec", &name, "sh", "-c", "echo in-exec; exit 4"]);
    assert_eq!(out.code, Some(4), "{out:#?}");
    assert_eq!(out.stdout.trim(), "in-exec", "{out:#?}");
    let out = podman.run(&["exec", "-t", &name, "tty"]);
    assert_eq!(out.code, Some(0), "{out:#?}");
    assert!(out.stdout.trim().starts_with("/dev/pts/"), "{out:#?}");

    let out = podman.run(&["stop", "--time", "5", &name]);
    assert_eq!(out.code, Some(0), "{out:#?}");
    let out = podman.run(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        &name,
    ]);
    assert_eq!(
        out.stdout.trim(),
        "exited 0",
        "stopped by its SIGTERM trap: {out:#?}"
    );

    let out = podman.run(&["rm", "-f", &name]);
    assert_eq!(out.code, Some(0), "{out:#?}");
    assert!(no_sunaba_state_for(&id), "state of {id} left behind");
}
