//! Memory and pids limits as the kernel applies them to a sandbox, read
//! back from the host's cgroup files and from what the program runs into.

mod common;

use common::{leftover_cgroups, privileged, Sandbox};

fn sandbox(args: &[&str]) -> Sandbox {
    let mut all = vec!["--security-opt", "seccomp=unconfined"];
    all.extend_from_slice(args);
    Sandbox::new(&all)
}

/// Builds a 100 MB shell variable: far past a 32 MiB limit.
const ALLOCATE_100MB: &str = r#"x=$(head -c 100000000 /dev/zero | tr "\0" a); echo ${#x}"#;

#[test]
fn allocation_past_the_memory_limit_is_killed_and_reported() {
    if !privileged("allocation_past_the_memory_limit_is_killed_and_reported") {
        return;
    }
    let limited = ["-m", "32m", "--memory-swap", "32m", "--", "sh", "-c"];
    let mut args = limited.to_vec();
    args.push(ALLOCATE_100MB);
    let out = sandbox(&args).run();
    out.expect_code(137);
    assert_eq!(
        out.sunaba_lines(),
        ["sunaba: killed: out of memory (memory limit 32 MiB)"],
        "{out:#?}"
    );

    // 4 MB fits under the same limit.
    let mut args = limited.to_vec();
    args.push(r#"x=$(head -c 4000000 /dev/zero | tr "\0" a); echo ${#x}"#);
    let out = sandbox(&args).run();
    out.expect_success();
    assert_eq!(out.stdout.trim(), "4000000");
    assert!(out.sunaba_lines().is_empty(), "{out:#?}");
}

#[test]
fn host_cgroup_holds_the_limits_and_a_host_kill_is_not_an_oom() {
    if !privileged("host_cgroup_holds_the_limits_and_a_host_kill_is_not_an_oom") {
        return;
    }
    let running = sandbox(&[
        "-m",
        "48m",
        "--pids-limit",
        "33",
        "--cpus",
        "0.25",
        "--cpu-shares",
        "512",
        "--memory-reservation",
        "24m",
        "--",
        "sleep",
        "1000",
    ])
    .spawn();
    let sleeper = running.wait_for_process("sleep 1000");

    let dirs = leftover_cgroups(running.pid());
    let read = |dir: &std::path::Path, name: &str| -> String {
        std::fs::read_to_string(dir.join(name))
            .unwrap_or_else(|e| panic!("{}/{name}: {e}", dir.display()))
            .trim()
            .to_string()
    };
    let own = std::fs::read_to_string(format!("/proc/{sleeper}/cgroup")).expect("cgroup");
    let unified = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
        .is_ok_and(|c| c.split_whitespace().any(|c| c == "memory"));
    if unified {
        // cgroup v2: one directory holds every limit.
        let dir = dirs
            .first()
            .unwrap_or_else(|| panic!("no cgroup for the run"));
        assert_eq!(read(dir, "memory.max"), (48 << 20).to_string());
        assert_eq!(read(dir, "pids.max"), "33");
        assert_eq!(read(dir, "cpu.max"), "25000 100000");
        // 512 shares, half v1's default, on v2's weight scale.
        assert_eq!(read(dir, "cpu.weight"), "59");
        assert_eq!(read(dir, "memory.low"), (24 << 20).to_string());
        let procs = read(dir, "cgroup.procs");
        assert!(
            procs.lines().any(|p| p == sleeper.to_string()),
            "sleep {sleeper} is not in {}: {procs}",
            dir.display()
        );
        // Read from the host's cgroup namespace, the path is the full one.
        assert!(own.trim().starts_with("0::/sunaba/run-"), "{own}");
    } else {
        let file = |controller: &str, name: &str| -> String {
            let dir = dirs
                .iter()
                .find(|d| d.starts_with(format!("/sys/fs/cgroup/{controller}/")))
                .unwrap_or_else(|| panic!("no {controller} cgroup among {dirs:?}"));
            read(dir, name)
        };
        assert_eq!(
            file("memory", "memory.limit_in_bytes"),
            (48 << 20).to_string()
        );
        assert_eq!(file("pids", "pids.max"), "33");
        assert_eq!(file("cpu", "cpu.cfs_quota_us"), "25000");
        assert_eq!(file("cpu", "cpu.cfs_period_us"), "100000");
        assert_eq!(file("cpu", "cpu.shares"), "512");
        assert_eq!(
            file("memory", "memory.soft_limit_in_bytes"),
            (24 << 20).to_string()
        );
        let procs = file("memory", "cgroup.procs");
        assert!(
            procs.lines().any(|p| p == sleeper.to_string()),
            "sleep {sleeper} is not in the memory cgroup: {procs}"
        );
        assert!(own.contains("memory:/sunaba/run-"), "{own}");
    }

    // SIGKILL from the host: 137 like any signal, not reported as OOM.
    // SAFETY: kill has no memory-safety preconditions; the PID was found by
    // the marker in its environment an instant ago.
    assert_eq!(unsafe { libc::kill(sleeper, libc::SIGKILL) }, 0);
    let out = running.wait();
    out.expect_code(137);
    assert!(out.sunaba_lines().is_empty(), "{out:#?}");
}

#[test]
fn forks_past_the_pids_limit_fail() {
    if !privileged("forks_past_the_pids_limit_fail") {
        return;
    }
    let script = "for i in $(seq 20); do sleep 1000 & done; echo all-started";
    let out = sandbox(&["--pids-limit", "10", "--", "sh", "-c", script]).run();
    assert_ne!(out.code(), 0, "{out:#?}");
    assert!(!out.stdout.contains("all-started"), "{out:#?}");
    assert!(
        out.stderr.contains("fork") || out.stderr.contains("Resource temporarily unavailable"),
        "{out:#?}"
    );

    let out = sandbox(&["--pids-limit", "100", "--", "sh", "-c", script]).run();
    out.expect_success();
    assert_eq!(out.stdout.trim(), "all-started", "{out:#?}");
}
