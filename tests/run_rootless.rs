//! sunaba started by an unprivileged user: a user namespace maps that user
//! to root inside, and limits without a delegated cgroup are a warning, or
//! an error under --require-limits.

mod common;

use common::{privileged, require, Output, Sandbox};

const NOBODY: u32 = 65534;

/// Runs sunaba as uid/gid 65534, with HOME, the data directory and the
/// working directory in a directory that user owns.
fn as_nobody(args: &[&str]) -> Output {
    let home = common::temp_dir();
    std::os::unix::fs::chown(home.path(), Some(NOBODY), Some(NOBODY)).expect("chown home");
    let home_path = home.path().to_string_lossy().into_owned();
    let out = Sandbox::new(args)
        .wrapped(&[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ])
        .env("HOME", &home_path)
        .env("SUNABA_DATA_DIR", &home_path)
        .cwd(home.path())
        .run();
    drop(home);
    out
}

fn ready(test: &str) -> bool {
    if !privileged(test) || !require(test, &["setpriv"]) {
        return false;
    }
    // The binary must be reachable by the unprivileged user.
    use std::os::unix::fs::PermissionsExt as _;
    let mut path = std::path::PathBuf::from(common::SUNABA);
    loop {
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert!(
            mode & 0o001 != 0,
            "{} is not searchable/executable by others (mode {mode:o})",
            path.display()
        );
        if !path.pop() || path.as_os_str().is_empty() {
            return true;
        }
    }
}

#[test]
fn unprivileged_user_is_root_inside_a_user_namespace() {
    if !ready("unprivileged_user_is_root_inside_a_user_namespace") {
        return;
    }
    let out = as_nobody(&["--", "sh", "-c", "id -u; cat /proc/self/uid_map"]);
    out.expect_success();
    let lines: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines, [vec!["0"], vec!["0", "65534", "1"]], "{out:#?}");
}

#[test]
fn unprivileged_limits_warn_or_fail_under_require_limits() {
    if !ready("unprivileged_limits_warn_or_fail_under_require_limits") {
        return;
    }
    let out = as_nobody(&["-m", "64m", "--", "echo", "ran"]);
    out.expect_success();
    assert_eq!(out.stdout, "ran\n");
    assert!(
        out.stderr.contains("cannot enforce memory 64 MiB"),
        "{out:#?}"
    );

    let out = as_nobody(&["--require-limits", "-m", "64m", "--", "echo", "ran"]);
    out.expect_code(125);
    assert!(out.stdout.is_empty(), "{out:#?}");
    assert_eq!(out.sunaba_lines().len(), 1, "{out:#?}");
    assert!(
        out.stderr.contains("cannot enforce memory 64 MiB"),
        "{out:#?}"
    );

    // Without limits, --require-limits has nothing to refuse.
    let out = as_nobody(&["--require-limits", "--", "echo", "ran"]);
    out.expect_success();
    assert!(out.stderr.is_empty(), "{out:#?}");
}
