//! containerd driving sunaba through its runc shim (`ctr run --runc-binary`),
//! with a containerd of the test's own: its own root, state directory and
//! socket, stopped by pid at the end. The image is a busybox rootfs saved
//! by podman as an OCI archive and imported with `ctr`.

mod common;

use std::time::{Duration, Instant};

use common::containerd::Containerd;
use common::{privileged, require, unique};

const SUNABA: &str = env!("CARGO_BIN_EXE_sunaba");

#[test]
fn containerd_runs_execs_and_kills_through_the_runc_shim() {
    if !privileged("containerd_runs_execs_and_kills_through_the_runc_shim")
        || !require(
            "containerd_runs_execs_and_kills_through_the_runc_shim",
            common::containerd::TOOLS,
        )
    {
        return;
    }
    // The CRI plugin is off: this test is about ctr and the shim alone.
    let containerd = Containerd::start(|_| {
        "[plugins.\"io.containerd.grpc.v1.cri\"]\n  disable = true\n".to_string()
    });
    let image = format!("localhost/sunaba-ctr:{}", unique("img"));
    containerd.import_busybox("default", &image, None);

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
