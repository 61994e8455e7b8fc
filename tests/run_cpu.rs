//! The CPU quota, in a test binary of its own so that no other sandbox of
//! this suite competes for the CPUs while it measures.

mod common;

use common::{privileged, require, Sandbox};

/// Two busy processes for two seconds of wall time; prints the CPU seconds
/// they used divided by the wall seconds.
const BURN: &str = r#"
import os, time
start = time.monotonic()
kids = []
for _ in range(2):
    pid = os.fork()
    if pid == 0:
        while time.monotonic() - start < 2.0:
            pass
        os._exit(0)
    kids.append(pid)
for pid in kids:
    os.waitpid(pid, 0)
t = os.times()
print((t.children_user + t.children_system) / (time.monotonic() - start))
"#;

fn cpus_used(limit: Option<&str>) -> f64 {
    let mut args = vec!["--security-opt", "seccomp=unconfined"];
    if let Some(cpus) = limit {
        args.extend(["--cpus", cpus]);
    }
    args.extend(["--", "python3", "-c", BURN]);
    let out = Sandbox::new(&args).run();
    out.expect_success();
    out.stdout
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{e}: {out:#?}"))
}

#[test]
fn cpu_quota_caps_the_cpu_time() {
    if !privileged("cpu_quota_caps_the_cpu_time")
        || !require("cpu_quota_caps_the_cpu_time", &["python3"])
    {
        return;
    }
    // Wide bands: the quota is a ceiling, and a loaded machine may give
    // less; what must hold is that half a CPU is about half, and that
    // without the quota the same two processes get clearly more.
    let half = cpus_used(Some("0.5"));
    assert!(
        (0.2..=0.7).contains(&half),
        "--cpus 0.5 used {half:.2} CPUs"
    );
    let free = cpus_used(None);
    assert!(
        free > half * 1.5 && free > 0.8,
        "without --cpus: {free:.2} CPUs, with --cpus 0.5: {half:.2}"
    );
}
