//! The Linux part of an OCI config (runtime-spec config-linux.md):
//! namespaces, masked and read-only paths, sysctl, cgroup resources and
//! seccomp, each read back from inside the container or from the host's
//! cgroup files, and each checked from both sides.
//!
//! The runtime is `SUNABA_OCI_RUNTIME` or this build's sunaba; see
//! `tests/common/oci.rs`.

mod common;

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;

use serde_json::json;

use common::bundle::Bundle;
use common::oci::{cgroup_dirs, cgroup_file, Runtime};
use common::{privileged, unique};

/// The interface names in a `/proc/net/dev` text.
fn interfaces(net_dev: &str) -> Vec<String> {
    net_dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(|name| name.trim().to_string())
        .collect()
}

// config-linux.md "Namespaces" (pid): in its own pid namespace the
// program is pid 1; without one it has the host pid state reports.
#[test]
fn pid_namespace_makes_the_program_pid_1() {
    if !privileged("pid_namespace_makes_the_program_pid_1") {
        return;
    }
    let runtime = Runtime::new();
    let (out, err) = runtime.output_of(&Bundle::sh("echo $$"));
    assert_eq!(out, "1\n", "{err}");

    let bundle = Bundle::sh("echo $$").without_namespace("pid");
    let container = runtime.create(&bundle);
    let pid = container.pid();
    let out = container.start_and_wait();
    assert_eq!(out.trim(), pid.to_string(), "{}", container.stderr());
}

// config-linux.md "Namespaces" (network): a new network namespace holds
// only the loopback device; without one the host's devices are visible.
#[test]
fn network_namespace_holds_only_loopback() {
    if !privileged("network_namespace_holds_only_loopback") {
        return;
    }
    let runtime = Runtime::new();
    let (out, err) = runtime.output_of(&Bundle::new(&["cat", "/proc/net/dev"]));
    assert_eq!(interfaces(&out), ["lo"], "{out}{err}");

    let host = interfaces(&std::fs::read_to_string("/proc/net/dev").expect("net/dev"));
    let bundle = Bundle::new(&["cat", "/proc/net/dev"]).without_namespace("network");
    let (out, err) = runtime.output_of(&bundle);
    let mut shared = interfaces(&out);
    let mut host_sorted = host.clone();
    shared.sort();
    host_sorted.sort();
    assert_eq!(shared, host_sorted, "{err}");
}

// config-linux.md "Masked Paths": a masked file reads empty and a masked
// directory lists empty and refuses writes; the same content elsewhere
// stays readable. Masked directories share one empty filesystem (one
// device number), not one each.
#[test]
fn masked_paths_hide_files_and_directories() {
    if !privileged("masked_paths_hide_files_and_directories") {
        return;
    }
    let script = "echo file:$(cat /etc/masked-file); echo dir:$(ls /etc/masked-dir); \
                  echo other:$(ls /opt/masked-dir); echo plain:$(cat /etc/plain); \
                  touch /opt/masked-dir/probe 2>/dev/null || echo write refused; \
                  stat -c %d /etc/masked-dir /opt/masked-dir / | uniq | wc -l";
    let bundle = Bundle::sh(script).readonly_root(false).masked_paths(&[
        "/etc/masked-file",
        "/etc/masked-dir",
        "/opt/masked-dir",
    ]);
    bundle.write_file("/etc/masked-file", "secret");
    bundle.write_file("/etc/masked-dir/inner", "secret");
    bundle.write_file("/opt/masked-dir/inner", "secret");
    bundle.write_file("/etc/plain", "secret");

    let (out, err) = Runtime::new().output_of(&bundle);
    assert_eq!(
        out, "file:\ndir:\nother:\nplain:secret\nwrite refused\n2\n",
        "{err}"
    );
}

// config-linux.md "Readonly Paths": writes under a read-only path fail
// with EROFS while a sibling directory of the writable root takes them.
#[test]
fn readonly_paths_reject_writes_beside_writable_ones() {
    if !privileged("readonly_paths_reject_writes_beside_writable_ones") {
        return;
    }
    let script = "touch /locked/probe && echo locked-wrote; touch /open/probe && echo open-wrote";
    let bundle = Bundle::sh(script)
        .readonly_root(false)
        .readonly_paths(&["/locked"]);
    bundle.mkdir("/locked");
    bundle.mkdir("/open");

    let (out, err) = Runtime::new().output_of(&bundle);
    assert_eq!(out, "open-wrote\n", "{err}");
    assert!(err.contains("Read-only file system"), "{err}");
    assert!(!bundle.rootfs().join("locked/probe").exists());
    assert!(bundle.rootfs().join("open/probe").exists());
}

// config-linux.md "Sysctl": values are set in the container's namespaces
// (net.* in its network namespace, kernel.domainname in its uts one) and
// the host's stay as they were.
#[test]
fn sysctl_sets_namespaced_values_inside_only() {
    if !privileged("sysctl_sets_namespaced_values_inside_only") {
        return;
    }
    let read = "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/domainname";
    let host_forward = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").expect("read");
    let runtime = Runtime::new();

    let (out, err) = runtime.output_of(&Bundle::sh(read));
    assert_eq!(
        out, "0\n(none)\n",
        "a new namespace starts at the defaults: {err}"
    );

    let bundle = Bundle::sh(read)
        .sysctl("net.ipv4.ip_forward", "1")
        .sysctl("kernel.domainname", "sysctl-domain");
    let (out, err) = runtime.output_of(&bundle);
    assert_eq!(out, "1\nsysctl-domain\n", "{err}");
    let after = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").expect("read");
    assert_eq!(after, host_forward, "the host's ip_forward changed");
}

/// A `linux.cgroupsPath` of its own for one test.
fn own_cgroups_path() -> String {
    format!("/{}", unique("oci-cgroup"))
}

// config-linux.md "Control groups" and "Memory"/"Pids": the limits land in
// the container's cgroup (read back from the host, v1 or v2), the init is
// in it, and delete removes it.
#[test]
fn memory_and_pids_limits_land_in_the_containers_cgroup() {
    if !privileged("memory_and_pids_limits_land_in_the_containers_cgroup") {
        return;
    }
    let path = own_cgroups_path();
    let bundle = Bundle::new(&["sleep", "1000"])
        .cgroups_path(&path)
        .resources(json!({ "memory": { "limit": 67_108_864 }, "pids": { "limit": 42 } }));
    let runtime = Runtime::new();
    let container = runtime.create(&bundle);

    let memory = cgroup_file(&path, "memory", "memory.limit_in_bytes", "memory.max");
    let pids = cgroup_file(&path, "pids", "pids.max", "pids.max");
    let procs = cgroup_file(&path, "pids", "cgroup.procs", "cgroup.procs");
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    };
    assert_eq!(read(&memory).trim(), "67108864");
    assert_eq!(read(&pids).trim(), "42");
    let members: Vec<String> = read(&procs).lines().map(str::to_string).collect();
    assert!(
        members.contains(&container.pid().to_string()),
        "{members:?}"
    );

    container.delete();
    let left = cgroup_dirs(&path);
    common::remove_cgroups(&left);
    assert!(left.is_empty(), "delete left cgroups behind: {left:?}");
}

// config-linux.md "HugePage limits": the limit lands in the hugetlb file of
// its page size; a host that mounts no hugetlb controller (the hybrid
// development machine) gets a refusal naming it, and nothing is left.
#[test]
fn hugepage_limits_land_in_the_hugetlb_controller_or_are_refused() {
    if !privileged("hugepage_limits_land_in_the_hugetlb_controller_or_are_refused") {
        return;
    }
    let path = own_cgroups_path();
    let bundle = Bundle::new(&["sleep", "1000"])
        .cgroups_path(&path)
        .resources(json!({ "hugepageLimits": [{ "pageSize": "2MB", "limit": 4_194_304 }] }));
    let runtime = Runtime::new();
    let v1 = std::path::Path::new("/sys/fs/cgroup/hugetlb").is_dir();
    if common::oci::cgroup_v2_has("hugetlb") || v1 {
        let container = runtime.create(&bundle);
        let file = cgroup_file(
            &path,
            "hugetlb",
            "hugetlb.2MB.limit_in_bytes",
            "hugetlb.2MB.max",
        );
        let value =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert_eq!(value.trim(), "4194304");
        container.delete();
    } else {
        let id = runtime.new_id();
        let (_container, outcome) = runtime.try_create(&bundle, &id, &[]);
        let outcome = outcome.expect_failure();
        assert!(outcome.stderr.contains("hugetlb"), "{outcome:?}");
        assert!(runtime.list_ids().is_empty());
    }
    let left = cgroup_dirs(&path);
    common::remove_cgroups(&left);
    assert!(left.is_empty(), "cgroups left behind: {left:?}");
}

// config-linux.md "Memory": without a limit the cgroup has none (the
// other side of the test above, so a runtime writing a limit regardless
// is caught).
#[test]
fn no_memory_limit_leaves_the_cgroup_unlimited() {
    if !privileged("no_memory_limit_leaves_the_cgroup_unlimited") {
        return;
    }
    let path = own_cgroups_path();
    let bundle = Bundle::new(&["sleep", "1000"]).cgroups_path(&path);
    let runtime = Runtime::new();
    let container = runtime.create(&bundle);

    let memory = cgroup_file(&path, "memory", "memory.limit_in_bytes", "memory.max");
    let value = std::fs::read_to_string(&memory).expect("read memory limit");
    let value = value.trim();
    // v2 writes "max"; v1 reports the largest page-aligned 63-bit value.
    let unlimited = value == "max" || value.parse::<u64>().is_ok_and(|v| v >= 1 << 62);
    assert!(unlimited, "{}: {value}", memory.display());

    container.try_delete(true).expect_success();
    let left = cgroup_dirs(&path);
    common::remove_cgroups(&left);
    assert!(left.is_empty(), "delete left cgroups behind: {left:?}");
}

// config-linux.md "Pids": the kernel enforces the limit: past it, fork
// fails; under a larger one the same program completes.
#[test]
fn pids_limit_stops_forks_past_it() {
    if !privileged("pids_limit_stops_forks_past_it") {
        return;
    }
    // busybox sh gives up on the script when a fork fails.
    let script = "i=0; while [ $i -lt 16 ]; do sleep 1000 & i=$((i+1)); done; echo forked-all";
    let runtime = Runtime::new();
    for (limit, completes) in [(8, false), (64, true)] {
        let path = own_cgroups_path();
        let bundle = Bundle::sh(script)
            .cgroups_path(&path)
            .resources(json!({ "pids": { "limit": limit } }));
        let (out, err) = runtime.output_of(&bundle);
        assert_eq!(
            out.contains("forked-all"),
            completes,
            "limit {limit}: {out}{err}"
        );
        if !completes {
            assert!(err.contains("fork"), "limit {limit}: {err}");
        }
        common::remove_cgroups(&cgroup_dirs(&path));
    }
}

/// An OCI seccomp profile that allows everything except what `rules`
/// decide.
fn allow_all_profile(rules: serde_json::Value) -> serde_json::Value {
    json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules })
}

// config-linux.md "Seccomp": a rule with SCMP_ACT_ERRNO and errnoRet makes
// the named syscalls fail with that errno (38, ENOSYS); without the rule
// the same program succeeds, and syscalls not named are unaffected.
#[test]
fn seccomp_rule_returns_the_configured_errno() {
    if !privileged("seccomp_rule_returns_the_configured_errno") {
        return;
    }
    let script = "mkdir /tmp/made && echo made; touch /tmp/file && echo touched";
    let runtime = Runtime::new();
    let deny_mkdir = json!([{
        "names": ["mkdir", "mkdirat"],
        "action": "SCMP_ACT_ERRNO",
        "errnoRet": 38,
    }]);

    let bundle = Bundle::sh(script)
        .tmpfs("/tmp", &[])
        .seccomp(allow_all_profile(deny_mkdir));
    let (out, err) = runtime.output_of(&bundle);
    assert_eq!(out, "touched\n", "{err}");
    assert!(err.contains("Function not implemented"), "{err}");

    let bundle = Bundle::sh(script)
        .tmpfs("/tmp", &[])
        .seccomp(allow_all_profile(json!([])));
    let (out, err) = runtime.output_of(&bundle);
    assert_eq!(out, "made\ntouched\n", "{err}");
}

// runc's `update` changes a live container's limits, and `events --stats`
// reports its usage; both read back from the host's cgroup files.
#[test]
fn update_changes_live_limits_and_events_reports_usage() {
    if !privileged("update_changes_live_limits_and_events_reports_usage") {
        return;
    }
    let path = own_cgroups_path();
    let bundle = Bundle::new(&["sleep", "1000"])
        .cgroups_path(&path)
        .resources(json!({ "memory": { "limit": 67_108_864 }, "pids": { "limit": 42 } }));
    let runtime = Runtime::new();
    let container = runtime.create(&bundle);
    container.start();

    let memory = cgroup_file(&path, "memory", "memory.limit_in_bytes", "memory.max");
    let pids = cgroup_file(&path, "pids", "pids.max", "pids.max");
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    };
    runtime
        .exec(&[
            "update",
            "--memory",
            "128m",
            "--pids-limit",
            "17",
            container.id(),
        ])
        .expect_success();
    assert_eq!(read(&memory).trim(), "134217728");
    assert_eq!(read(&pids).trim(), "17");
    // The container was made without a CPU limit; one can still be set.
    runtime
        .exec(&[
            "update",
            "--cpu-period",
            "100000",
            "--cpu-quota",
            "50000",
            container.id(),
        ])
        .expect_success();
    let cpu = cgroup_file(&path, "cpu", "cpu.cfs_quota_us", "cpu.max");
    assert!(
        ["50000", "50000 100000"].contains(&read(&cpu).trim()),
        "{}",
        read(&cpu)
    );
    runtime
        .exec(&["update", "--memory", "12q", container.id()])
        .expect_failure();
    assert_eq!(read(&pids).trim(), "17", "a refused update changed nothing");

    let stats = runtime
        .exec(&["events", "--stats", container.id()])
        .expect_success()
        .json();
    assert_eq!(stats["type"], "stats", "{stats}");
    assert_eq!(
        stats["data"]["memory"]["usage"]["limit"], 134_217_728u64,
        "{stats}"
    );
    assert!(
        stats["data"]["memory"]["usage"]["usage"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "{stats}"
    );
    assert!(
        stats["data"]["pids"]["current"].as_u64().unwrap_or(0) >= 1,
        "{stats}"
    );

    container.kill("KILL");
    container.wait_stopped();
    container.delete();
    let left = cgroup_dirs(&path);
    common::remove_cgroups(&left);
    assert!(left.is_empty(), "delete left cgroups behind: {left:?}");
}

// config-linux.md "Namespaces": a namespace with a path is joined, not
// created — here a network namespace the test made, with a veth pair.
#[test]
fn a_network_namespace_given_by_path_is_joined() {
    if !privileged("a_network_namespace_given_by_path_is_joined")
        || !common::require("a_network_namespace_given_by_path_is_joined", &["ip"])
    {
        return;
    }
    let name = common::unique("sunaba-netns");
    let ip = |args: &[&str]| {
        let status = std::process::Command::new("ip")
            .args(args)
            .status()
            .expect("ip");
        assert!(status.success(), "ip {args:?}");
    };
    ip(&["netns", "add", &name]);
    let veth = std::process::Command::new("ip")
        .args([
            "-n",
            &name,
            "link",
            "add",
            "sunaba-j0",
            "type",
            "veth",
            "peer",
            "name",
            "sunaba-j1",
        ])
        .status()
        .expect("ip");
    let path = format!("/run/netns/{name}");
    let bundle = Bundle::sh("cat /proc/net/dev")
        .without_namespace("network")
        .with_namespace_path("network", &path);
    let runtime = Runtime::new();
    let (stdout, _) = runtime.output_of(&bundle);
    let _ = std::process::Command::new("ip")
        .args(["netns", "del", &name])
        .status();
    assert!(veth.success(), "could not make the veth pair");
    assert!(
        stdout.contains("sunaba-j0") && stdout.contains("sunaba-j1"),
        "{stdout}"
    );
}

// config-linux.md "Namespaces" (pid) with a path: the container starts
// inside that pid namespace, as a Kubernetes pod's containers join the
// sandbox's when the pod shares its process namespace; the other
// container's program is its pid 1.
#[test]
fn a_pid_namespace_given_by_path_is_joined() {
    if !privileged("a_pid_namespace_given_by_path_is_joined") {
        return;
    }
    let runtime = Runtime::new();
    let first = Bundle::new(&["sleep", "1000"]);
    let sandbox = runtime.run_detached(&first);
    let path = format!("/proc/{}/ns/pid", sandbox.pid());
    let bundle =
        Bundle::sh("echo $$; cat /proc/1/cmdline | tr '\\0' ' '").with_namespace_path("pid", &path);
    let container = runtime.create(&bundle);
    let pid = container.pid();
    let outside = std::fs::read_link(format!("/proc/{pid}/ns/pid")).expect("ns");
    assert_eq!(
        outside,
        std::fs::read_link(&path).expect("ns"),
        "the created process is in the joined pid namespace"
    );
    let out = container.start_and_wait();
    let mut lines = out.lines();
    let own = lines.next().unwrap_or_default();
    assert_ne!(own, "1", "{out}{}", container.stderr());
    assert_eq!(
        lines.next().unwrap_or_default().trim(),
        "sleep 1000",
        "{out}{}",
        container.stderr()
    );
    container.delete();
    sandbox.kill("KILL");
    sandbox.wait_stopped();
    sandbox.delete();
}

// config-linux.md "Personality": LINUX32 makes uname report a 32-bit
// machine; runc's --preserve-fds passes descriptors after stderr on.
#[test]
fn personality_and_preserved_descriptors_reach_the_program() {
    if !privileged("personality_and_preserved_descriptors_reach_the_program") {
        return;
    }
    let mut bundle = Bundle::sh("uname -m; echo via-fd3 >&3");
    bundle.config_mut()["linux"]["personality"] = json!({ "domain": "LINUX32" });
    bundle.write_config();
    let runtime = Runtime::new();
    let dir = common::temp_dir();
    let out = std::fs::File::create(dir.path().join("out")).expect("out");
    let extra = std::fs::File::create(dir.path().join("fd3")).expect("fd3");
    let (out_fd, extra_fd) = (out.as_raw_fd(), extra.as_raw_fd());
    let id = runtime.new_id();
    let bundle_path = bundle.path().to_str().expect("utf-8").to_string();
    runtime
        .exec_with(
            &[
                "create",
                "--bundle",
                &bundle_path,
                "--preserve-fds",
                "1",
                &id,
            ],
            move |cmd| {
                // SAFETY: only dup2, which is async-signal-safe, runs between
                // fork and exec; both descriptors stay open in the parent.
                unsafe {
                    cmd.pre_exec(move || {
                        if libc::dup2(out_fd, 1) < 0 || libc::dup2(extra_fd, 3) < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        Ok(())
                    });
                }
            },
        )
        .expect_success();
    runtime.exec(&["start", &id]).expect_success();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while runtime.exec(&["state", &id]).json()["status"] != "stopped" {
        assert!(std::time::Instant::now() < deadline, "{id} did not stop");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    runtime.exec(&["delete", "--force", &id]).expect_success();
    let uname = std::fs::read_to_string(dir.path().join("out")).expect("out");
    assert_eq!(uname.trim(), "i686", "{uname}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("fd3")).expect("fd3"),
        "via-fd3\n"
    );
}

// config-linux.md "rootfsPropagation": slave keeps host mounts flowing in.
// Whether they do depends on the host's / being shared, which this test
// does not assume: it checks the setting is accepted and carried out.
#[test]
fn rootfs_propagation_slave_is_carried_out() {
    if !privileged("rootfs_propagation_slave_is_carried_out") {
        return;
    }
    let runtime = Runtime::new();
    let mut bundle = Bundle::sh("echo ran");
    bundle.config_mut()["linux"]["rootfsPropagation"] = json!("rslave");
    bundle.write_config();
    let (stdout, _) = runtime.output_of(&bundle);
    assert_eq!(stdout.trim(), "ran", "{stdout}");
}

// config-linux.md "Devices": the node is created with the given type,
// numbers, mode and owner, and it works.
#[test]
fn listed_devices_are_created_as_configured() {
    if !privileged("listed_devices_are_created_as_configured") {
        return;
    }
    let mut bundle =
        Bundle::sh("ls -ln /dev/sunaba-null; echo data > /dev/sunaba-null && echo written");
    bundle.config_mut()["linux"]["devices"] = json!([
        { "path": "/dev/sunaba-null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o606, "uid": 1, "gid": 2 }
    ]);
    bundle.write_config();
    let runtime = Runtime::new();
    let (stdout, stderr) = runtime.output_of(&bundle);
    let fields: Vec<&str> = stdout
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(fields.first(), Some(&"crw----rw-"), "{stdout}{stderr}");
    assert_eq!(&fields[2..6], ["1", "2", "1,", "3"], "{stdout}");
    assert!(stdout.contains("written"), "{stdout}{stderr}");
}

// config-linux.md "Allowed Device list": a deny-all rule with one
// exception; the kernel enforces it on mknod and open (v1 devices
// controller, or a BPF device program on v2).
#[test]
fn device_rules_allow_only_what_they_list() {
    if !privileged("device_rules_allow_only_what_they_list") {
        return;
    }
    // Whether mknod of an unlisted device is refused differs (runc allows
    // mknod of any device by default); opening it never is allowed.
    let script = "mknod /tmp/sda b 8 0 && echo mknod-allowed; \
                  head -c 1 /tmp/sda 2>&1; echo x > /dev/null && echo null-ok";
    let bundle = Bundle::sh(script).tmpfs("/tmp", &[]).resources(json!({
        "devices": [
            { "allow": false, "access": "rwm" },
            { "allow": true, "type": "b", "major": 8, "minor": 0, "access": "m" }
        ]
    }));
    let caps = ["CAP_MKNOD", "CAP_AUDIT_WRITE", "CAP_KILL"];
    let bundle = bundle.capabilities(&caps);
    let runtime = Runtime::new();
    let (stdout, _) = runtime.output_of(&bundle);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"mknod-allowed"), "{stdout}");
    assert!(
        lines
            .get(1)
            .is_some_and(|l| l.contains("Operation not permitted")),
        "{stdout}"
    );
    assert_eq!(lines.get(2), Some(&"null-ok"), "{stdout}");
}

// config.md "Mounts": a destination is a path inside the container's root,
// even where the image makes a component of it an absolute symlink to a host
// path. Following it would make the runtime create the mountpoint (and
// mount) on the host; resolved inside the root, the host stays untouched.
#[test]
fn a_symlink_in_the_image_cannot_send_a_mountpoint_to_the_host() {
    if !privileged("a_symlink_in_the_image_cannot_send_a_mountpoint_to_the_host") {
        return;
    }
    let host = common::temp_dir();
    let target = host.path().join("target");
    std::fs::create_dir(&target).expect("target dir");
    let bundle = Bundle::new(&[
        "sh",
        "-c",
        "ls -d /escape/sub && grep -c '/target/sub tmpfs' /proc/mounts",
    ])
    .tmpfs("/escape/sub", &[]);
    // The builder made the mountpoint as a directory; the image has a link.
    let link = bundle.rootfs().join("escape");
    std::fs::remove_dir_all(&link).expect("remove the mountpoint");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");

    let (out, err) = Runtime::new().output_of(&bundle);
    assert!(
        std::fs::read_dir(&target).expect("target").next().is_none(),
        "the runtime wrote through the symlink onto the host: {out}{err}"
    );
    // The link's target was made inside the root, and the mount is there
    // (listed at the path the link leads to).
    assert_eq!(out, "/escape/sub\n1\n", "{err}");
}
