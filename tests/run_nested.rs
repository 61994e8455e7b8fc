//! Where sunaba runs from: a sandbox started inside a sandbox, and a
//! runtime that sits in a non-root cgroup full of processes, as a systemd
//! service does.

mod common;

use std::path::PathBuf;

use common::{privileged, unique, Sandbox};

const SUNABA: &str = env!("CARGO_BIN_EXE_sunaba");

#[test]
fn sandbox_inside_a_filtered_sandbox_is_refused_with_a_hint() {
    if !privileged("sandbox_inside_a_filtered_sandbox_is_refused_with_a_hint") {
        return;
    }
    // The outer sandbox's default seccomp profile denies namespaces.
    let out = Sandbox::new(&["--", SUNABA, "run", "--", "true"]).run();
    out.expect_code(125);
    assert!(
        out.stderr.contains("a seccomp filter blocks clone3"),
        "{out:#?}"
    );
    assert_eq!(out.stderr.lines().count(), 1, "{out:#?}");
}

#[test]
fn sandbox_inside_an_unfiltered_privileged_sandbox_runs() {
    if !privileged("sandbox_inside_an_unfiltered_privileged_sandbox_runs") {
        return;
    }
    let outer = [
        "--security-opt",
        "seccomp=unconfined",
        "--cap-add",
        "ALL",
        "--",
    ];
    let inner = "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; hostname; echo $$";
    let mut args = outer.to_vec();
    args.extend([
        SUNABA,
        "run",
        "--hostname",
        "inner",
        "--",
        "sh",
        "-c",
        inner,
    ]);
    let out = Sandbox::new(&args).run();
    out.expect_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        ["NoNewPrivs:\t1", "Seccomp:\t2", "inner", "1"],
        "{out:#?}"
    );

    // No cgroup filesystem inside the outer sandbox: limits are reported as
    // not enforced, or refused with --require-limits.
    let mut args = outer.to_vec();
    args.extend([SUNABA, "run", "-m", "64m", "--", "true"]);
    let out = Sandbox::new(&args).run();
    out.expect_success();
    assert!(
        out.stderr
            .contains("cannot enforce memory 64 MiB: no cgroup filesystem is mounted"),
        "{out:#?}"
    );
    let mut args = outer.to_vec();
    args.extend([SUNABA, "run", "--require-limits", "-m", "64m", "--", "true"]);
    let out = Sandbox::new(&args).run();
    out.expect_code(125);
    assert!(
        out.stderr.contains("cannot enforce memory 64 MiB"),
        "{out:#?}"
    );
}

/// The directories of a cgroup named `name` at the root of the hierarchies
/// that hold the memory controller: the unified one, or v1's memory.
fn service_cgroup(name: &str) -> PathBuf {
    let unified = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
        .is_ok_and(|c| c.split_whitespace().any(|c| c == "memory"));
    let root = if unified {
        "/sys/fs/cgroup"
    } else {
        "/sys/fs/cgroup/memory"
    };
    PathBuf::from(root).join(name)
}

#[test]
fn runtime_in_a_busy_non_root_cgroup_still_limits_its_sandbox() {
    if !privileged("runtime_in_a_busy_non_root_cgroup_still_limits_its_sandbox") {
        return;
    }
    // Like a systemd service: the runtime and a sibling process live in a
    // non-root cgroup. On cgroup v2 that cgroup may not get children with
    // controllers while it holds processes ("no internal processes"), so
    // the sandbox's cgroup must be made elsewhere, under sunaba/ at the root.
    let service = service_cgroup(&unique("sunaba-test-service"));
    std::fs::create_dir(&service).expect("create the service cgroup");
    let mut sibling = std::process::Command::new("sleep")
        .arg("1000")
        .spawn()
        .expect("sleep");
    std::fs::write(service.join("cgroup.procs"), sibling.id().to_string()).expect("move sibling");

    let join = format!(
        r#"echo $$ > {}/cgroup.procs && exec "$@""#,
        service.display()
    );
    let alloc = "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo ${#x}";
    let out = Sandbox::new(&["-m", "32m", "--memory-swap", "32m", "--", "sh", "-c", alloc])
        .wrapped(&["sh", "-c", &join, "sh"])
        .run();
    let _ = sibling.kill();
    let _ = sibling.wait();
    let removed = std::fs::remove_dir(&service);

    out.expect_code(137);
    assert!(
        out.stderr
            .contains("killed: out of memory (memory limit 32 MiB)"),
        "{out:#?}"
    );
    removed.expect("remove the service cgroup");

    // The same runtime placement, under the limit: the program runs.
    std::fs::create_dir(&service).expect("create the service cgroup");
    let out = Sandbox::new(&["-m", "32m", "--", "sh", "-c", "echo fine"])
        .wrapped(&["sh", "-c", &join, "sh"])
        .run();
    std::fs::remove_dir(&service).expect("remove the service cgroup");
    out.expect_success();
    assert_eq!(out.stdout.trim(), "fine");
}
