//! Privilege as the kernel reports it in /proc/self/status, and the seccomp
//! filters answering EPERM to what they deny while ordinary calls work.

mod common;

use std::path::Path;

use common::{privileged, require, Sandbox};

/// The `Name:\tvalue` fields of /proc/self/status that matter here.
fn status_fields(status: &str) -> Vec<(String, String)> {
    status
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .filter(|(k, _)| k.starts_with("Cap") || k == "NoNewPrivs" || k == "Seccomp")
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} in {fields:?}"))
}

/// A temporary working directory with the `input/` the agent profile binds.
fn agent_cwd() -> tempfile::TempDir {
    let cwd = common::temp_dir();
    std::fs::create_dir(cwd.path().join("input")).expect("input dir");
    cwd
}

fn agent(cwd: &Path, args: &[&str]) -> common::Output {
    let mut all = vec!["--profile", "agent"];
    all.extend_from_slice(args);
    Sandbox::new(&all).cwd(cwd).run()
}

const ZERO: &str = "0000000000000000";

#[test]
fn agent_profile_has_no_capabilities_no_new_privs_and_a_filter() {
    if !privileged("agent_profile_has_no_capabilities_no_new_privs_and_a_filter") {
        return;
    }
    let cwd = agent_cwd();
    let out = agent(cwd.path(), &["--", "cat", "/proc/self/status"]);
    out.expect_success();
    let f = status_fields(&out.stdout);
    assert_eq!(field(&f, "NoNewPrivs"), "1");
    assert_eq!(field(&f, "Seccomp"), "2");
    for cap in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(field(&f, cap), ZERO, "{cap}");
    }

    // Both switched off, the kernel reports them off.
    let out = agent(
        cwd.path(),
        &[
            "--security-opt",
            "no-new-privileges:false",
            "--security-opt",
            "seccomp=unconfined",
            "--",
            "cat",
            "/proc/self/status",
        ],
    );
    out.expect_success();
    let f = status_fields(&out.stdout);
    assert_eq!(field(&f, "NoNewPrivs"), "0");
    assert_eq!(field(&f, "Seccomp"), "0");
}

#[test]
fn default_profile_keeps_dockers_capability_set() {
    if !privileged("default_profile_keeps_dockers_capability_set") {
        return;
    }
    let out = Sandbox::new(&["--", "cat", "/proc/self/status"]).run();
    out.expect_success();
    let f = status_fields(&out.stdout);
    let docker = "00000000a80425fb";
    assert_eq!(field(&f, "CapBnd"), docker);
    assert_eq!(field(&f, "CapEff"), docker);
    assert_eq!(field(&f, "CapPrm"), docker);
    assert_eq!(field(&f, "CapInh"), ZERO);
    assert_eq!(field(&f, "CapAmb"), ZERO);
    assert_eq!(field(&f, "NoNewPrivs"), "1");
    assert_eq!(field(&f, "Seccomp"), "2");

    // --cap-drop ALL empties every set.
    let out = Sandbox::new(&["--cap-drop", "ALL", "--", "cat", "/proc/self/status"]).run();
    out.expect_success();
    let f = status_fields(&out.stdout);
    for cap in ["CapPrm", "CapEff", "CapBnd"] {
        assert_eq!(field(&f, cap), ZERO, "{cap}");
    }
}

/// Calls the libc function named by argv[1] with the arguments of the
/// case, and prints "ok" or the errno's name.
const SYSCALL: &str = r#"
import ctypes, errno, sys
libc = ctypes.CDLL(None, use_errno=True)
calls = {
    "unshare-user": lambda: libc.unshare(0x10000000),
    "mount-tmpfs": lambda: libc.mount(b"none", b"/tmp", b"tmpfs", 0, None),
    "getpid": lambda: 0 if libc.getpid() > 0 else -1,
}
rc = calls[sys.argv[1]]()
print("ok" if rc == 0 else errno.errorcode[ctypes.get_errno()])
"#;

fn syscall(cwd: &Path, args: &[&str], call: &str) -> String {
    let mut all = args.to_vec();
    all.extend(["--", "python3", "-c", SYSCALL, call]);
    let out = agent(cwd, &all);
    out.expect_success();
    out.stdout.trim().to_string()
}

#[test]
fn agent_filter_denies_namespaces_and_mounts_with_eperm() {
    if !privileged("agent_filter_denies_namespaces_and_mounts_with_eperm")
        || !require(
            "agent_filter_denies_namespaces_and_mounts_with_eperm",
            &["python3"],
        )
    {
        return;
    }
    let cwd = agent_cwd();
    let cwd = cwd.path();
    let unconfined = ["--security-opt", "seccomp=unconfined"];

    // A user namespace needs no capability: only the filter stops it.
    assert_eq!(syscall(cwd, &[], "unshare-user"), "EPERM");
    assert_eq!(syscall(cwd, &unconfined, "unshare-user"), "ok");

    // mount(2) with CAP_SYS_ADMIN granted: the filter still refuses it.
    let admin = ["--cap-add", "SYS_ADMIN"];
    assert_eq!(syscall(cwd, &admin, "mount-tmpfs"), "EPERM");
    let both = [admin.as_slice(), unconfined.as_slice()].concat();
    assert_eq!(syscall(cwd, &both, "mount-tmpfs"), "ok");

    // Ordinary calls pass the filter.
    assert_eq!(syscall(cwd, &[], "getpid"), "ok");
}

#[test]
fn agent_filter_makes_unshare_command_fail() {
    if !privileged("agent_filter_makes_unshare_command_fail")
        || !require("agent_filter_makes_unshare_command_fail", &["unshare"])
    {
        return;
    }
    let cwd = agent_cwd();
    let out = agent(cwd.path(), &["--", "unshare", "-U", "true"]);
    assert_ne!(out.code(), 0, "{out:#?}");
    assert!(out.stderr.contains("Operation not permitted"), "{out:#?}");
    let out = agent(
        cwd.path(),
        &[
            "--security-opt",
            "seccomp=unconfined",
            "--",
            "unshare",
            "-U",
            "true",
        ],
    );
    out.expect_success();
}
