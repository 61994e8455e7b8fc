//! The process, root and mounts of an OCI config (runtime-spec config.md),
//! each read back from inside the container: what the program sees in
//! `/proc/self`, `/proc/mounts` and its own failed system calls.
//!
//! The runtime is `SUNABA_OCI_RUNTIME` or this build's sunaba; see
//! `tests/common/oci.rs`.

mod common;

use common::bundle::{Bundle, DEFAULT_CAPS};
use common::oci::Runtime;
use common::{privileged, temp_dir, unique};

/// The value of `field:` in a `/proc/PID/status` text, whitespace-trimmed.
fn status_field<'a>(status: &'a str, field: &str) -> &'a str {
    let prefix = format!("{field}:");
    status
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {field} in {status}"))
        .trim()
}

/// The capability mask `/proc/self/status` shows for `caps`.
fn cap_mask(caps: &[&str]) -> String {
    let bit = |name: &str| match name {
        "CAP_KILL" => 5,
        "CAP_NET_BIND_SERVICE" => 10,
        "CAP_SYS_ADMIN" => 21,
        "CAP_AUDIT_WRITE" => 29,
        other => panic!("no bit known for {other}"),
    };
    let mask = caps.iter().fold(0u64, |m, c| m | (1 << bit(c)));
    format!("{mask:016x}")
}

// config.md "Process": args (argv[0] included), env and cwd reach the
// program as given; the runtime's own environment does not leak in.
#[test]
fn process_args_env_and_cwd_reach_the_program() {
    if !privileged("process_args_env_and_cwd_reach_the_program") {
        return;
    }
    let script = r#"echo "$0|$1|$2"; pwd; env"#;
    let bundle = Bundle::new(&["sh", "-c", script, "zero", "one two"])
        .env("GREETING", "hello world")
        .cwd("/srv/work");
    let runtime = Runtime::new().env("OCI_TEST_RUNTIME_ONLY", "leaked");

    let (out, err) = runtime.output_of(&bundle);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("zero|one two|"), "{out}{err}");
    assert_eq!(lines.next(), Some("/srv/work"), "{out}{err}");
    let env: Vec<&str> = lines.collect();
    assert!(env.contains(&"GREETING=hello world"), "{env:?}");
    assert!(env.iter().any(|v| v.starts_with("PATH=")), "{env:?}");
    assert!(
        !env.iter().any(|v| v.starts_with("OCI_TEST_RUNTIME_ONLY=")),
        "{env:?}"
    );
}

// config.md "User" (POSIX): uid, gid and additionalGids are the process
// credentials, and the kernel enforces them: the unprivileged user cannot
// write to a directory owned by root, while root can.
#[test]
fn process_user_sets_credentials_the_kernel_enforces() {
    if !privileged("process_user_sets_credentials_the_kernel_enforces") {
        return;
    }
    let script = "cat /proc/self/status; touch /w/probe && echo wrote";
    let runtime = Runtime::new();

    let bundle = Bundle::sh(script)
        .tmpfs("/w", &["mode=755"])
        .user(1000, 1001, &[5, 7]);
    let (out, err) = runtime.output_of(&bundle);
    assert_eq!(status_field(&out, "Uid"), "1000\t1000\t1000\t1000");
    assert_eq!(status_field(&out, "Gid"), "1001\t1001\t1001\t1001");
    assert_eq!(status_field(&out, "Groups"), "5 7");
    assert!(!out.contains("wrote"), "{out}");
    assert!(err.contains("Permission denied"), "{err}");

    let bundle = Bundle::sh(script)
        .tmpfs("/w", &["mode=755"])
        .user(0, 0, &[]);
    let (out, err) = runtime.output_of(&bundle);
    assert_eq!(status_field(&out, "Uid"), "0\t0\t0\t0");
    assert_eq!(status_field(&out, "Groups"), "", "host groups leaked in");
    assert!(out.contains("wrote"), "{out}{err}");
}

// config-linux.md "User namespace mappings", with config.md "User": a
// runtime started by root keeps setgroups(2) usable in the container's user
// namespace, so additionalGids are set and none of the runtime's own groups
// stays with the process.
#[test]
fn additional_gids_are_set_inside_a_user_namespace() {
    if !privileged("additional_gids_are_set_inside_a_user_namespace") {
        return;
    }
    let mut bundle = Bundle::sh("cat /proc/self/status /proc/self/setgroups")
        .with_namespace("user")
        .user(1000, 1001, &[5, 7]);
    let map = serde_json::json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    let linux = &mut bundle.config_mut()["linux"];
    linux["uidMappings"] = map.clone();
    linux["gidMappings"] = map;
    let (out, err) = Runtime::new().output_of(&bundle);
    assert_eq!(status_field(&out, "Uid"), "1000\t1000\t1000\t1000", "{err}");
    assert_eq!(status_field(&out, "Gid"), "1001\t1001\t1001\t1001");
    assert_eq!(status_field(&out, "Groups"), "5 7", "{out}");
    assert!(out.ends_with("allow\n"), "{out}");
}

// config.md "Hostname": set in the container's uts namespace; the host
// keeps its own.
#[test]
fn hostname_is_the_containers_own() {
    if !privileged("hostname_is_the_containers_own") {
        return;
    }
    let before = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    let bundle = Bundle::new(&["hostname"]).hostname("oci-box");

    let (out, err) = Runtime::new().output_of(&bundle);
    assert_eq!(out, "oci-box\n", "{err}");
    let after = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    assert_eq!(after, before);
}

// config.md "Domainname" (runtime-spec 1.1): set in the container's uts
// namespace; the host keeps its own.
#[test]
fn domainname_is_the_containers_own() {
    if !privileged("domainname_is_the_containers_own") {
        return;
    }
    let before = std::fs::read_to_string("/proc/sys/kernel/domainname").expect("domainname");
    let bundle = Bundle::new(&["cat", "/proc/sys/kernel/domainname"]).domainname("oci-domain");

    let (out, err) = Runtime::new().output_of(&bundle);
    assert_eq!(out, "oci-domain\n", "{err}");
    let after = std::fs::read_to_string("/proc/sys/kernel/domainname").expect("domainname");
    assert_eq!(after, before);
}

// config-linux.md "Namespaces" (uts): without its own uts namespace the
// container sees the host's hostname.
#[test]
fn without_a_uts_namespace_the_hostname_is_the_hosts() {
    if !privileged("without_a_uts_namespace_the_hostname_is_the_hosts") {
        return;
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    let bundle = Bundle::new(&["hostname"])
        .without_namespace("uts")
        .no_hostname();

    let (out, err) = Runtime::new().output_of(&bundle);
    assert_eq!(out, host, "{err}");
}

// config.md "Root": readonly true makes every write under / fail with
// EROFS and / shows as ro in /proc/mounts; readonly false lets the program
// write into the rootfs directory on the host.
#[test]
fn root_readonly_decides_whether_the_rootfs_takes_writes() {
    if !privileged("root_readonly_decides_whether_the_rootfs_takes_writes") {
        return;
    }
    let script = "grep ' / ' /proc/mounts; touch /probe && echo wrote";
    let runtime = Runtime::new();

    let bundle = Bundle::sh(script).readonly_root(true);
    let (out, err) = runtime.output_of(&bundle);
    assert!(err.contains("Read-only file system"), "{out}{err}");
    assert!(!out.contains("wrote"), "{out}");
    let root_line = out.lines().next().unwrap_or_default();
    assert!(mount_options(root_line).contains(&"ro"), "{root_line}");
    assert!(!bundle.rootfs().join("probe").exists());

    let bundle = Bundle::sh(script).readonly_root(false);
    let (out, err) = runtime.output_of(&bundle);
    assert!(out.contains("wrote"), "{out}{err}");
    let root_line = out.lines().next().unwrap_or_default();
    assert!(mount_options(root_line).contains(&"rw"), "{root_line}");
    assert!(bundle.rootfs().join("probe").exists());
}

/// The comma-separated options (fourth field) of a `/proc/mounts` line.
fn mount_options(line: &str) -> Vec<&str> {
    line.split_whitespace()
        .nth(3)
        .map(|o| o.split(',').collect())
        .unwrap_or_default()
}

// config.md "Mounts": a bind mount with ro can be read but not written;
// one without can be written, and the write lands in the host directory.
#[test]
fn bind_mounts_honour_ro() {
    if !privileged("bind_mounts_honour_ro") {
        return;
    }
    let ro = temp_dir();
    let rw = temp_dir();
    std::fs::write(ro.path().join("data"), "from the host\n").expect("write data");
    let script = "cat /ro/data; touch /ro/new && echo ro-wrote; touch /rw/new && echo rw-wrote";
    let bundle = Bundle::sh(script)
        .bind(ro.path(), "/ro", &["ro"])
        .bind(rw.path(), "/rw", &[]);

    let (out, err) = Runtime::new().output_of(&bundle);
    assert_eq!(out, "from the host\nrw-wrote\n", "{err}");
    assert!(err.contains("Read-only file system"), "{err}");
    assert!(!ro.path().join("new").exists());
    assert!(rw.path().join("new").exists());
}

// config.md "Mounts" (tmpfs data option size=): writes that fit succeed,
// writes past the size fail with ENOSPC.
#[test]
fn tmpfs_size_caps_what_it_holds() {
    if !privileged("tmpfs_size_caps_what_it_holds") {
        return;
    }
    let script = "dd if=/dev/zero of=/small/fits bs=1024 count=512 && echo fits; \
                  dd if=/dev/zero of=/small/big bs=1024 count=2048 && echo big";
    let bundle = Bundle::sh(script).tmpfs("/small", &["size=1m"]);

    let (out, err) = Runtime::new().output_of(&bundle);
    assert_eq!(out, "fits\n", "{err}");
    assert!(err.contains("No space left on device"), "{err}");
}

// config.md "Mounts" options: nosuid, nodev and noexec show in
// /proc/mounts and noexec stops execution from that mount; a mount
// without them shows none and runs the same binary.
#[test]
fn mount_options_nosuid_nodev_noexec_are_applied() {
    if !privileged("mount_options_nosuid_nodev_noexec_are_applied") {
        return;
    }
    let script = "grep -E ' /(strict|loose) ' /proc/mounts; \
                  cp /bin/busybox /strict/ && /strict/busybox true && echo strict-ran; \
                  cp /bin/busybox /loose/ && /loose/busybox true && echo loose-ran";
    let bundle = Bundle::sh(script)
        .tmpfs("/strict", &["nosuid", "nodev", "noexec"])
        .tmpfs("/loose", &[]);

    let (out, err) = Runtime::new().output_of(&bundle);
    let line = |dest: &str| {
        out.lines()
            .find(|l| l.split_whitespace().nth(1) == Some(dest))
            .unwrap_or_else(|| panic!("{dest} not mounted: {out}{err}"))
    };
    let strict = mount_options(line("/strict"));
    let loose = mount_options(line("/loose"));
    for option in ["nosuid", "nodev", "noexec"] {
        assert!(
            strict.contains(&option),
            "/strict lacks {option}: {strict:?}"
        );
        assert!(!loose.contains(&option), "/loose has {option}: {loose:?}");
    }
    assert!(!out.contains("strict-ran"), "{out}");
    assert!(out.contains("loose-ran"), "{out}{err}");
    assert!(err.contains("Permission denied"), "{err}");
}

// config.md "Mounts": the access-time options and sync reach the kernel,
// on a new filesystem and on a bind mount alike.
#[test]
fn access_time_and_sync_options_are_applied() {
    if !privileged("access_time_and_sync_options_are_applied") {
        return;
    }
    let source = common::temp_dir();
    let bundle = Bundle::new(&["cat", "/proc/mounts"])
        .tmpfs("/quiet", &["noatime", "nodiratime", "sync"])
        .tmpfs("/plain", &[])
        .bind(source.path(), "/bound", &["rbind", "strictatime"]);

    let (out, err) = Runtime::new().output_of(&bundle);
    let options = |dest: &str| {
        let line = out
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(dest))
            .unwrap_or_else(|| panic!("{dest} not mounted: {out}{err}"));
        mount_options(line)
    };
    let quiet = options("/quiet");
    for option in ["noatime", "nodiratime", "sync"] {
        assert!(quiet.contains(&option), "/quiet lacks {option}: {quiet:?}");
    }
    let plain = options("/plain");
    assert!(plain.contains(&"relatime"), "{plain:?}");
    for option in ["noatime", "nodiratime", "sync"] {
        assert!(!plain.contains(&option), "/plain has {option}: {plain:?}");
    }
    // strictatime shows as neither relatime nor noatime.
    let bound = options("/bound");
    assert!(
        !bound.contains(&"relatime") && !bound.contains(&"noatime"),
        "{bound:?}"
    );
}

// config.md "POSIX process" rlimits: soft and hard limits are set as
// given, and the unprivileged program can move the soft limit up to the
// hard one but not past it.
#[test]
fn rlimits_set_soft_and_hard_limits() {
    if !privileged("rlimits_set_soft_and_hard_limits") {
        return;
    }
    let script = "grep 'Max open files' /proc/self/limits; \
                  ulimit -n 400 && echo raised; ulimit -n 500 && echo past-hard";
    let bundle = Bundle::sh(script).rlimit("RLIMIT_NOFILE", 123, 456);

    let (out, err) = Runtime::new().output_of(&bundle);
    let limits: Vec<&str> = out
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(limits.get(3..5), Some(&["123", "456"][..]), "{out}{err}");
    assert!(out.contains("raised"), "{out}{err}");
    assert!(!out.contains("past-hard"), "{out}");
}

// config.md "Linux Process" capabilities: the sets in /proc/self/status are
// exactly the configured ones, and the kernel enforces them: sethostname
// needs CAP_SYS_ADMIN.
#[test]
fn capabilities_are_exactly_the_configured_sets() {
    if !privileged("capabilities_are_exactly_the_configured_sets") {
        return;
    }
    let script = "cat /proc/self/status; hostname changed && echo renamed";
    let runtime = Runtime::new();

    let (out, err) = runtime.output_of(&Bundle::sh(script));
    let want = cap_mask(&DEFAULT_CAPS);
    for set in ["CapBnd", "CapEff", "CapPrm"] {
        assert_eq!(status_field(&out, set), want, "{set}");
    }
    assert!(!out.contains("renamed"), "{out}");
    assert!(err.contains("not permitted"), "{err}");

    let mut caps = DEFAULT_CAPS.to_vec();
    caps.push("CAP_SYS_ADMIN");
    let (out, err) = runtime.output_of(&Bundle::sh(script).capabilities(&caps));
    let want = cap_mask(&caps);
    for set in ["CapBnd", "CapEff", "CapPrm", "CapInh", "CapAmb"] {
        assert_eq!(status_field(&out, set), want, "{set}");
    }
    assert!(out.contains("renamed"), "{out}{err}");
}

// config.md "Linux Process" noNewPrivileges: sets no_new_privs when true
// and leaves it clear when false.
#[test]
fn no_new_privileges_sets_the_flag_only_when_asked() {
    if !privileged("no_new_privileges_sets_the_flag_only_when_asked") {
        return;
    }
    let runtime = Runtime::new();
    for (on, want) in [(true, "1"), (false, "0")] {
        let bundle = Bundle::new(&["cat", "/proc/self/status"]).no_new_privileges(on);
        let (out, err) = runtime.output_of(&bundle);
        assert_eq!(
            status_field(&out, "NoNewPrivs"),
            want,
            "noNewPrivileges {on}: {err}"
        );
    }
}

// config.md "Linux Process" oomScoreAdj: written to the process's
// oom_score_adj; without it the value is left as the runtime had it.
#[test]
fn oom_score_adj_is_applied_when_given() {
    if !privileged("oom_score_adj_is_applied_when_given") {
        return;
    }
    let runtime = Runtime::new();
    let bundle = Bundle::new(&["cat", "/proc/self/oom_score_adj"]).oom_score_adj(321);
    let (out, err) = runtime.output_of(&bundle);
    assert_eq!(out.trim(), "321", "{err}");

    let ours = std::fs::read_to_string("/proc/self/oom_score_adj").expect("read oom_score_adj");
    let bundle = Bundle::new(&["cat", "/proc/self/oom_score_adj"]);
    let (out, err) = runtime.output_of(&bundle);
    assert_eq!(out.trim(), ours.trim(), "{err}");
}

// config.md "Annotations": arbitrary metadata is accepted and, per
// runtime.md "State", reported back by state.
#[test]
fn annotations_are_reported_in_the_state() {
    if !privileged("annotations_are_reported_in_the_state") {
        return;
    }
    let value = unique("value");
    let bundle = Bundle::new(&["sleep", "1000"]).annotation("org.example.test", &value);
    let runtime = Runtime::new();
    let container = runtime.create(&bundle);

    let state = container.state();
    assert_eq!(
        state["annotations"]["org.example.test"],
        value.as_str(),
        "{state}"
    );
}

// config.md "User": umask is the program's file mode creation mask, and
// without one the program gets 0022, as from runc.
#[test]
fn umask_is_the_configured_one_or_0022() {
    if !privileged("umask_is_the_configured_one_or_0022") {
        return;
    }
    let runtime = Runtime::new();
    let (out, err) = runtime.output_of(&Bundle::sh("umask"));
    assert_eq!(out.trim(), "0022", "{err}");
    let mut bundle = Bundle::sh("umask; touch /tmp/f; stat -c %a /tmp/f").tmpfs("/tmp", &[]);
    bundle.config_mut()["process"]["user"]["umask"] = serde_json::json!(0o077);
    let (out, err) = runtime.output_of(&bundle);
    assert_eq!(out, "0077\n600\n", "{err}");
}

/// Receives the one descriptor sent over `stream` (SCM_RIGHTS).
fn receive_fd(stream: &std::os::unix::net::UnixStream) -> std::os::fd::OwnedFd {
    use std::os::fd::{AsRawFd, FromRawFd};
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // Room for one control message holding one int, 8-byte aligned.
    let mut control = [0u64; 4];
    // SAFETY: an all-zero msghdr is valid; its pointers are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    // size_t in glibc, socklen_t in musl; 32 bytes fit either.
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: msg points at live buffers that outlive the call.
    let n = unsafe { libc::recvmsg(stream.as_raw_fd(), &mut msg, 0) };
    assert!(n >= 0, "recvmsg: {}", std::io::Error::last_os_error());
    // SAFETY: msg was filled by recvmsg; CMSG_FIRSTHDR checks the length.
    let cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    assert!(!cmsg.is_null(), "no descriptor was sent");
    // SAFETY: cmsg is a control message recvmsg wrote; its data is one int
    // (SCM_RIGHTS), read unaligned.
    let fd = unsafe {
        assert_eq!((*cmsg).cmsg_type, libc::SCM_RIGHTS);
        std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>())
    };
    // SAFETY: the descriptor was just received and belongs to nobody else.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }
}

// config.md "terminal" and "consoleSize", with runc's --console-socket: the
// master of the container's pseudo-terminal reaches the socket's owner, the
// program has the slave as its standard streams, at the configured size.
#[test]
fn console_socket_receives_a_terminal_of_the_configured_size() {
    if !privileged("console_socket_receives_a_terminal_of_the_configured_size") {
        return;
    }
    let runtime = Runtime::new();
    let socket = runtime.scratch().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind console socket");
    let mut bundle = Bundle::sh("test -t 0 && test -t 1 && echo tty; stty size; tty");
    let process = &mut bundle.config_mut()["process"];
    process["terminal"] = serde_json::json!(true);
    process["consoleSize"] = serde_json::json!({"height": 33, "width": 111});

    let socket_arg = socket.to_string_lossy().into_owned();
    let receiver = std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        receive_fd(&stream)
    });
    let container = runtime.create_with(&bundle, &["--console-socket", &socket_arg]);
    let master = std::fs::File::from(receiver.join().expect("console thread"));
    // The output arrives through the master until the slave's last holder
    // exits (EIO then); a reader that gets nothing does not hang the suite.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = std::io::Read::read_to_end(&mut &master, &mut out);
        let _ = tx.send(out);
    });
    container.start();
    let out = rx
        .recv_timeout(common::oci::GUARD)
        .expect("the terminal never closed");
    container.wait_stopped();
    let out = String::from_utf8_lossy(&out).replace('\r', "");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, ["tty", "33 111", "/dev/pts/0"], "{out:?}");
}
