//! The process settings `sunaba run` takes from its flags, read back inside
//! the sandbox: environment (`-e`, `--env-file`), working directory, user
//! and group, hostname; and the setup steps `--log-level debug` shows.

mod common;

use common::{privileged, Sandbox};

fn sandbox(args: &[&str]) -> Sandbox {
    let mut all = vec!["--security-opt", "seccomp=unconfined"];
    all.extend_from_slice(args);
    Sandbox::new(&all)
}

#[test]
fn process_flags_reach_the_program() {
    if !privileged("process_flags_reach_the_program") {
        return;
    }
    let dir = common::temp_dir();
    let env_file = dir.path().join("env");
    std::fs::write(&env_file, "# a comment\nFROM_FILE=1\nBOTH=file\n\n").expect("env file");
    let env_file = env_file.to_string_lossy().into_owned();
    let script = "echo \"$FROM_FILE $BOTH $PLAIN $FROM_CALLER\"; pwd; id -u; id -g; hostname";
    let out = sandbox(&[
        "--env-file",
        &env_file,
        "-e",
        "BOTH=flag",
        "-e",
        "PLAIN=x",
        "-e",
        "FROM_CALLER",
        "-w",
        "/tmp",
        "-u",
        "1234:4321",
        "--hostname",
        "box-name",
        "--",
        "sh",
        "-c",
        script,
    ])
    .env("FROM_CALLER", "passed")
    .run();
    out.expect_success();
    // -e after --env-file wins; a bare -e NAME takes the caller's value.
    assert_eq!(
        out.stdout, "1 flag x passed\n/tmp\n1234\n4321\nbox-name\n",
        "{out:#?}"
    );

    // Without the flags: the profile's defaults.
    let out = sandbox(&["--", "sh", "-c", script]).run();
    out.expect_success();
    assert_eq!(out.stdout, "   \n/\n0\n0\nsunaba\n", "{out:#?}");
}

#[test]
fn an_env_file_that_cannot_be_used_is_refused_by_name() {
    if !privileged("an_env_file_that_cannot_be_used_is_refused_by_name") {
        return;
    }
    let dir = common::temp_dir();
    let missing = dir.path().join("missing.env");
    let missing = missing.to_string_lossy().into_owned();
    let out = sandbox(&["--env-file", &missing, "--", "true"]).run();
    out.expect_code(125);
    assert!(out.stderr.contains(&missing), "{out:#?}");
}

#[test]
fn debug_log_shows_every_setup_step() {
    if !privileged("debug_log_shows_every_setup_step") {
        return;
    }
    let out = sandbox(&["--log-level", "debug", "--", "true"]).run();
    out.expect_success();
    for step in [
        "cgroup created",
        "sandbox process cloned",
        "mount root filesystem",
        "switch user",
        "set capabilities",
        "set no_new_privs",
        "sandbox exited",
        "cgroup removed",
    ] {
        assert!(out.stderr.contains(step), "{step} not logged: {out:#?}");
    }
    // Without it, a successful run says nothing.
    let out = sandbox(&["--", "true"]).run();
    assert_eq!(out.stderr, "", "{out:#?}");
}
