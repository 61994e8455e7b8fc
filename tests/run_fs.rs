//! The sandbox's filesystem as the kernel enforces it: read-only root and
//! system directories, read-only bind mounts down to their submounts, tmpfs
//! size limits, masked /proc paths, hidden host directories, named volumes
//! and the agent profile's input and output directories.

mod common;

use std::path::Path;

use common::{privileged, require, unique, Sandbox};

const EROFS: &str = "Read-only file system";

/// The default filesystem, with seccomp out of the way where it is not the
/// subject.
fn sandbox(args: &[&str]) -> Sandbox {
    let mut all = vec!["--security-opt", "seccomp=unconfined"];
    all.extend_from_slice(args);
    Sandbox::new(&all)
}

#[test]
fn read_only_root_refuses_writes_while_tmp_accepts_them() {
    if !privileged("read_only_root_refuses_writes_while_tmp_accepts_them") {
        return;
    }
    let script = "touch /x 2>&1 || echo root-denied; touch /tmp/y && echo tmp-ok";
    let out = sandbox(&["--read-only", "--", "sh", "-c", script]).run();
    out.expect_success();
    assert!(out.stdout.contains(EROFS), "{out:#?}");
    assert!(out.stdout.contains("root-denied"), "{out:#?}");
    assert!(out.stdout.contains("tmp-ok"), "{out:#?}");

    // Without --read-only, the same write to the root tmpfs succeeds.
    let out = sandbox(&["--", "sh", "-c", "touch /x && echo root-ok"]).run();
    out.expect_success();
    assert_eq!(out.stdout.trim(), "root-ok", "{out:#?}");
}

#[test]
fn system_directories_are_read_only_without_read_only_flag() {
    if !privileged("system_directories_are_read_only_without_read_only_flag") {
        return;
    }
    let script = "for d in /usr /etc /bin; do touch $d/sunaba-probe 2>&1; done; true";
    let out = sandbox(&["--", "sh", "-c", script]).run();
    out.expect_success();
    assert_eq!(out.stdout.matches(EROFS).count(), 3, "{out:#?}");
    // They are the host's directories: their files are readable.
    let out = sandbox(&["--", "cat", "/etc/passwd"]).run();
    out.expect_success();
    assert!(out.stdout.contains("root:"), "{out:#?}");
}

/// Runs sunaba in a private mount namespace of its own where a tmpfs is
/// mounted at `dir/sub`, binding `dir` at /data with `mode`.
fn with_submount(dir: &Path, mode: &str, script: &str) -> common::Output {
    let sub = dir.join("sub");
    std::fs::create_dir(&sub).ok();
    std::fs::write(dir.join("top"), "").expect("write top");
    let volume = format!("{}:/data{mode}", dir.display());
    on_host_tmpfs(sandbox(&["-v", &volume, "--", "sh", "-c", script]), &sub)
}

/// Runs `sandbox` in a private mount namespace of its own where a tmpfs is
/// mounted at the host path `at`.
fn on_host_tmpfs(sandbox: Sandbox, at: &Path) -> common::Output {
    sandbox
        .wrapped(&[
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            r#"mount -t tmpfs sunaba-it "$1" && shift && exec "$@""#,
            "sh",
            &at.to_string_lossy(),
        ])
        .run()
}

#[test]
fn read_only_bind_mount_makes_its_submounts_read_only() {
    if !privileged("read_only_bind_mount_makes_its_submounts_read_only")
        || !require(
            "read_only_bind_mount_makes_its_submounts_read_only",
            &["unshare"],
        )
    {
        return;
    }
    let dir = common::temp_dir();
    let script = "grep -c ' /data/sub tmpfs ' /proc/mounts; \
                  echo a > /data/top 2>&1; echo b > /data/sub/f 2>&1; true";
    let out = with_submount(dir.path(), ":ro", script);
    out.expect_success();
    let mut lines = out.stdout.lines();
    assert_eq!(lines.next(), Some("1"), "the submount is missing: {out:#?}");
    // sh reports both failed redirections on stderr.
    assert_eq!(out.stderr.matches(EROFS).count(), 2, "{out:#?}");

    // Bound read-write, both the directory and its submount take writes.
    let dir = common::temp_dir();
    let script = "echo a > /data/top && echo b > /data/sub/f && echo both-ok";
    let out = with_submount(dir.path(), "", script);
    out.expect_success();
    assert_eq!(out.stdout.trim(), "both-ok", "{out:#?}");
}

#[test]
fn read_only_rootfs_directory_makes_its_submounts_read_only() {
    let test = "read_only_rootfs_directory_makes_its_submounts_read_only";
    if !privileged(test) || !require(test, &["unshare", "busybox"]) {
        return;
    }
    // A busybox root whose /data is a tmpfs mounted on the host side, in a
    // private mount namespace around sunaba.
    let run = |args: &[&str]| {
        let bundle = common::bundle::Bundle::new(&["true"]);
        let rootfs = bundle.rootfs();
        let data = bundle.mkdir("data");
        let rootfs = rootfs.to_string_lossy().into_owned();
        let mut all = vec!["--rootfs", rootfs.as_str()];
        all.extend_from_slice(args);
        all.extend([
            "--",
            "sh",
            "-c",
            "grep -c ' /data tmpfs ' /proc/mounts; \
             touch /data/f 2>&1 && echo data-ok; touch /f 2>&1 && echo root-ok; \
             touch /tmp/f && echo tmp-ok",
        ]);
        on_host_tmpfs(sandbox(&all), &data)
    };
    let out = run(&["--read-only"]);
    out.expect_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines.first(),
        Some(&"1"),
        "the submount is missing: {out:#?}"
    );
    assert_eq!(out.stdout.matches(EROFS).count(), 2, "{out:#?}");
    assert!(!out.stdout.contains("data-ok"), "{out:#?}");
    assert!(out.stdout.contains("tmp-ok"), "{out:#?}");

    // Without --read-only, the root and its submount take writes.
    let out = run(&[]);
    out.expect_success();
    assert_eq!(
        out.stdout.lines().skip(1).collect::<Vec<_>>(),
        ["data-ok", "root-ok", "tmp-ok"],
        "{out:#?}"
    );
}

#[test]
fn tmpfs_size_limit_is_enforced() {
    if !privileged("tmpfs_size_limit_is_enforced") {
        return;
    }
    let script = "grep ' /scratch ' /proc/mounts; \
                  dd if=/dev/zero of=/scratch/small bs=1k count=512 2>/dev/null && echo small-ok; \
                  rm /scratch/small; \
                  dd if=/dev/zero of=/scratch/big bs=1k count=2048 2>&1; true";
    let out = sandbox(&["--tmpfs", "/scratch:size=1m", "--", "sh", "-c", script]).run();
    out.expect_success();
    assert!(out.stdout.contains("size=1024k"), "{out:#?}");
    assert!(out.stdout.contains("small-ok"), "{out:#?}");
    assert!(out.stdout.contains("No space left on device"), "{out:#?}");
}

#[test]
fn proc_masked_paths_read_empty_and_proc_sys_is_read_only() {
    if !privileged("proc_masked_paths_read_empty_and_proc_sys_is_read_only") {
        return;
    }
    // /proc/keys and /proc/timer_list have content on the host; inside,
    // they are covered by /dev/null.
    for path in ["/proc/keys", "/proc/timer_list"] {
        let host = std::fs::read(path).unwrap_or_default();
        assert!(!host.is_empty(), "{path} is empty on the host already");
    }
    let script = "wc -c < /proc/keys; wc -c < /proc/timer_list; \
                  if [ -e /proc/kcore ]; then wc -c < /proc/kcore; else echo 0; fi; \
                  cat /proc/sys/kernel/hostname; \
                  echo evil > /proc/sys/kernel/hostname 2>&1 || echo sys-denied; \
                  echo h > /proc/sysrq-trigger 2>&1 || echo sysrq-denied; \
                  cat /proc/sys/kernel/hostname";
    let out = sandbox(&["--", "sh", "-c", script]).run();
    out.expect_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(&lines[..3], ["0", "0", "0"], "{out:#?}");
    assert_eq!(lines[3], "sunaba", "{out:#?}");
    // The uts namespace would let root set its hostname; /proc/sys is
    // read-only regardless.
    assert!(out.stderr.contains(EROFS), "{out:#?}");
    assert!(out.stdout.contains("sys-denied"), "{out:#?}");
    assert!(out.stdout.contains("sysrq-denied"), "{out:#?}");
    assert_eq!(lines.last(), Some(&"sunaba"), "{out:#?}");
    if Path::new("/proc/sysrq-trigger").exists() {
        assert_eq!(out.stderr.matches(EROFS).count(), 2, "{out:#?}");
    }
}

#[test]
fn host_directories_outside_the_system_set_are_absent() {
    if !privileged("host_directories_outside_the_system_set_are_absent") {
        return;
    }
    let script = "for d in /root /home /run /var /srv /work; do \
                  [ -e $d ] && echo present $d; done; ls /";
    let out = sandbox(&["--", "sh", "-c", script]).run();
    out.expect_success();
    assert!(!out.stdout.contains("present"), "{out:#?}");
    assert!(out.stdout.lines().any(|l| l == "usr"), "{out:#?}");
}

#[test]
fn both_profiles_mask_etc_shadow() {
    if !privileged("both_profiles_mask_etc_shadow") {
        return;
    }
    let host = std::fs::metadata("/etc/shadow")
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(host > 0, "/etc/shadow is empty on the host already");
    let cwd = common::temp_dir();
    std::fs::create_dir(cwd.path().join("input")).expect("input dir");
    let script = "wc -c < /etc/shadow; grep -c '^root:' /etc/passwd";
    for profile in ["agent", "default"] {
        let out = Sandbox::new(&["--profile", profile, "--", "sh", "-c", script])
            .cwd(cwd.path())
            .run();
        out.expect_success();
        // The secret reads empty; the file beside it is the host's.
        assert_eq!(out.stdout, "0\n1\n", "{profile}: {out:#?}");
    }

    // A profile that masks nothing shows the host's file as it is.
    let profile = cwd.path().join("bare.toml");
    std::fs::write(&profile, "description = \"no masks\"\n").expect("write profile");
    let out = Sandbox::new(&[
        "--profile",
        &profile.to_string_lossy(),
        "--security-opt",
        "seccomp=unconfined",
        "--",
        "sh",
        "-c",
        script,
    ])
    .run();
    out.expect_success();
    assert_eq!(out.stdout, format!("{host}\n1\n"), "{out:#?}");
}

#[test]
fn named_volume_keeps_data_across_runs() {
    if !privileged("named_volume_keeps_data_across_runs") {
        return;
    }
    let data = common::temp_dir();
    let data_dir = data.path().to_string_lossy().into_owned();
    let name = unique("testvol");
    let volume = format!("{name}:/data");
    let token = unique("token");

    let write = format!("echo {token} > /data/f");
    sandbox(&["-v", &volume, "--", "sh", "-c", &write])
        .env("SUNABA_DATA_DIR", &data_dir)
        .run()
        .expect_success();
    let on_host = data.path().join("volumes").join(&name).join("f");
    let content = std::fs::read_to_string(&on_host).expect("volume file on the host");
    assert_eq!(content.trim(), token);

    let out = sandbox(&["-v", &volume, "--", "cat", "/data/f"])
        .env("SUNABA_DATA_DIR", &data_dir)
        .run();
    out.expect_success();
    assert_eq!(out.stdout.trim(), token);

    // Another name is another, empty volume.
    let other = format!("{}:/data", unique("testvol"));
    let out = sandbox(&["-v", &other, "--", "ls", "-A", "/data"])
        .env("SUNABA_DATA_DIR", &data_dir)
        .run();
    out.expect_success();
    assert_eq!(out.stdout.trim(), "", "{out:#?}");
}

#[test]
fn a_refused_run_leaves_no_new_named_volume() {
    if !privileged("a_refused_run_leaves_no_new_named_volume") {
        return;
    }
    let data = common::temp_dir();
    let data_dir = data.path().to_string_lossy().into_owned();
    let kept = unique("testvol");
    let fresh = unique("testvol");
    let missing = format!("/{}", unique("nonexistent"));
    let volumes = data.path().join("volumes");
    sandbox(&["-v", &format!("{kept}:/kept"), "--", "true"])
        .env("SUNABA_DATA_DIR", &data_dir)
        .run()
        .expect_success();

    // The missing bind source is found only after the volumes are made.
    let out = sandbox(&[
        "-v",
        &format!("{kept}:/kept"),
        "-v",
        &format!("{fresh}:/fresh"),
        "-v",
        &format!("{missing}:/x"),
        "--",
        "true",
    ])
    .env("SUNABA_DATA_DIR", &data_dir)
    .run();
    out.expect_code(125);
    assert!(out.stderr.contains(&missing), "{out:#?}");
    assert!(!volumes.join(&fresh).exists(), "{fresh} was left behind");
    assert!(volumes.join(&kept).is_dir(), "{kept}, made before, is gone");
}

#[test]
fn agent_profile_reads_input_and_persists_output() {
    if !privileged("agent_profile_reads_input_and_persists_output") {
        return;
    }
    let cwd = common::temp_dir();
    let input = cwd.path().join("input");
    std::fs::create_dir(&input).expect("input dir");
    std::fs::write(input.join("f"), "the input\n").expect("input file");
    let script = "cat /app/input/f; echo out > /app/output/o && echo output-ok; \
                  touch /app/input/g 2>&1; touch /x 2>&1; \
                  echo mode=$SANDBOX_MODE; pwd; hostname; true";
    let data = common::temp_dir();
    let out = Sandbox::new(&["--profile", "agent", "--", "sh", "-c", script])
        .cwd(cwd.path())
        .env("SUNABA_DATA_DIR", &data.path().to_string_lossy())
        .run();
    out.expect_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "the input", "{out:#?}");
    assert_eq!(lines[1], "output-ok", "{out:#?}");
    // Both the input and the root refuse writes.
    assert_eq!(out.stdout.matches(EROFS).count(), 2, "{out:#?}");
    assert!(lines.contains(&"mode=true"), "{out:#?}");
    assert!(lines.contains(&"/app"), "{out:#?}");
    assert_eq!(lines.last(), Some(&"sunaba"), "{out:#?}");
    assert!(!input.join("g").exists());
    let output = data.path().join("volumes/sandbox-output/o");
    assert_eq!(
        std::fs::read_to_string(&output).expect("output in the named volume"),
        "out\n"
    );
}

#[test]
fn program_under_tmp_is_bound_at_its_path() {
    // A program given by its host path under /tmp used to be hidden by the
    // sandbox's own /tmp tmpfs, and exec failed with ENOENT.
    if !privileged("program_under_tmp_is_bound_at_its_path") {
        return;
    }
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::Builder::new()
        .prefix("sunaba-it-")
        .tempdir_in("/tmp")
        .expect("temp dir under /tmp");
    let program = dir.path().join("agent.sh");
    std::fs::write(
        &program,
        "#!/bin/sh\necho agent ran; touch \"$0\" 2>&1\nexit 0\n",
    )
    .expect("write");
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = sandbox(&["--", &program.to_string_lossy()]).run();
    out.expect_success();
    assert!(out.stdout.starts_with("agent ran\n"), "{out:#?}");
    // Bound read-only: the program cannot rewrite itself.
    assert!(out.stdout.contains(EROFS), "{out:#?}");
}

#[test]
fn program_given_relative_to_the_cwd_runs_as_typed() {
    // The README promises that `sunaba run -- ./my-agent` works as typed:
    // the file is bound at its absolute path, but the sandbox starts in /
    // (or the profile's workdir), where ./my-agent does not exist.
    if !privileged("program_given_relative_to_the_cwd_runs_as_typed") {
        return;
    }
    use std::os::unix::fs::PermissionsExt as _;
    let cwd = common::temp_dir();
    let program = cwd.path().join("my-agent");
    std::fs::write(&program, "#!/bin/sh\necho agent ran\n").expect("write");
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = sandbox(&["--", "./my-agent"]).cwd(cwd.path()).run();
    out.expect_success();
    assert_eq!(out.stdout, "agent ran\n", "{out:#?}");
}

#[test]
fn sys_is_mounted_read_only_only_when_a_profile_asks() {
    if !privileged("sys_is_mounted_read_only_only_when_a_profile_asks") {
        return;
    }
    let dir = common::temp_dir();
    let profile = common::profile_with_sys(dir.path());
    let script = "ls /sys/kernel >/dev/null && echo listed; touch /sys/x 2>&1; \
                  grep ' /sys ' /proc/mounts | cut -d' ' -f3,4 | cut -d, -f1";
    let out = sandbox(&[
        "--profile",
        &profile.to_string_lossy(),
        "--",
        "sh",
        "-c",
        script,
    ])
    .run();
    out.expect_success();
    assert!(out.stdout.contains("listed"), "{out:#?}");
    assert!(out.stdout.contains(EROFS), "{out:#?}");
    assert!(out.stdout.contains("sysfs ro"), "{out:#?}");

    // Without it there is no /sys at all.
    let out = sandbox(&["--", "sh", "-c", "test -e /sys || echo absent"]).run();
    out.expect_success();
    assert_eq!(out.stdout.trim(), "absent", "{out:#?}");
}
