//! The default network: a namespace with loopback only. The host's own
//! loopback listeners are out of reach; the sandbox's loopback works.

mod common;

use std::net::TcpListener;

use common::{privileged, require, Sandbox};

fn sandbox(args: &[&str]) -> Sandbox {
    let mut all = vec!["--security-opt", "seccomp=unconfined"];
    all.extend_from_slice(args);
    Sandbox::new(&all)
}

/// Connects to 127.0.0.1:PORT (argv[1]) and prints "connected" or the
/// error's name; with no port, listens on an ephemeral port first and
/// connects to that.
const CONNECT: &str = r#"
import errno, socket, sys
server = None
if len(sys.argv) > 1:
    port = int(sys.argv[1])
else:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
c = socket.socket()
c.settimeout(10)
try:
    c.connect(("127.0.0.1", port))
    print("connected")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e)))
"#;

#[test]
fn only_loopback_exists_and_it_is_up() {
    if !privileged("only_loopback_exists_and_it_is_up")
        || !require("only_loopback_exists_and_it_is_up", &["ip"])
    {
        return;
    }
    let script = "tail -n +3 /proc/net/dev | cut -d: -f1; echo routes; \
                  tail -n +2 /proc/net/route; echo links; ip -o link";
    let out = sandbox(&["--", "sh", "-c", script]).run();
    out.expect_success();
    let (devs, rest) = out.stdout.split_once("routes\n").expect("marker");
    let (routes, links) = rest.split_once("links\n").expect("marker");
    let devs: Vec<&str> = devs.split_whitespace().collect();
    assert_eq!(devs, ["lo"], "{out:#?}");
    assert_eq!(routes.trim(), "", "{out:#?}");
    let links: Vec<&str> = links.lines().collect();
    assert_eq!(links.len(), 1, "{out:#?}");
    assert!(links[0].starts_with("1: lo:"), "{out:#?}");
    assert!(links[0].contains(",UP"), "{out:#?}");

    // With --network host, the caller's interfaces are there too. The
    // caller here is a network namespace of the test's own with a veth
    // pair, so the check does not depend on the machine's network.
    let script = r#"modprobe veth 2>/dev/null; ip link add sunaba-t0 type veth peer name sunaba-t1 && exec "$@""#;
    let out = sandbox(&["--network", "host", "--", "cat", "/proc/net/dev"])
        .wrapped(&["unshare", "-n", "sh", "-c", script, "sh"])
        .run();
    out.expect_success();
    let devs: Vec<&str> = out
        .stdout
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(devs.len(), 3, "{out:#?}");
    assert!(
        devs.contains(&"sunaba-t0") && devs.contains(&"sunaba-t1") && devs.contains(&"lo"),
        "{out:#?}"
    );
}

#[test]
fn host_loopback_listener_is_unreachable_but_own_loopback_works() {
    if !privileged("host_loopback_listener_is_unreachable_but_own_loopback_works")
        || !require(
            "host_loopback_listener_is_unreachable_but_own_loopback_works",
            &["python3"],
        )
    {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen on the host");
    let port = listener.local_addr().expect("port").port().to_string();

    let out = sandbox(&["--", "python3", "-c", CONNECT, &port]).run();
    out.expect_success();
    assert_eq!(out.stdout.trim(), "ECONNREFUSED", "{out:#?}");

    let out = sandbox(&["--", "python3", "-c", CONNECT]).run();
    out.expect_success();
    assert_eq!(out.stdout.trim(), "connected", "{out:#?}");

    // The host's network namespace reaches the listener.
    let out = sandbox(&["--network", "host", "--", "python3", "-c", CONNECT, &port]).run();
    out.expect_success();
    assert_eq!(out.stdout.trim(), "connected", "{out:#?}");
    drop(listener);
}

/// The network namespace is made by the runtime beside the child's mounts
/// when nothing before them needs it, and by clone3 when something does: a
/// sysfs mount lists the interfaces of its mounter's namespace. Either way
/// the program runs in a namespace of its own that holds only loopback.
#[test]
fn the_network_namespace_is_the_sandboxs_own_however_it_is_made() {
    if !privileged("the_network_namespace_is_the_sandboxs_own_however_it_is_made") {
        return;
    }
    let host = std::fs::read_link("/proc/self/ns/net").expect("readlink");
    let host = host.to_string_lossy();

    let script = "readlink /proc/self/ns/net; tail -n +3 /proc/net/dev | cut -d: -f1";
    let out = sandbox(&["--log-level", "debug", "--", "sh", "-c", script]).run();
    out.expect_success();
    assert!(
        out.stderr.contains("network namespace handed over")
            && out.stderr.contains("join network namespace"),
        "{out:#?}"
    );
    own_namespace_with_only_lo(&out, &host);

    let dir = common::temp_dir();
    let profile = common::profile_with_sys(dir.path());
    let script = "readlink /proc/self/ns/net; ls /sys/class/net";
    let out = sandbox(&[
        "--log-level",
        "debug",
        "--profile",
        &profile.to_string_lossy(),
        "--",
        "sh",
        "-c",
        script,
    ])
    .run();
    out.expect_success();
    assert!(
        !out.stderr.contains("network namespace handed over"),
        "{out:#?}"
    );
    own_namespace_with_only_lo(&out, &host);
}

/// Asserts that `out` printed a network namespace (`net:[...]`) other than
/// `host`'s, then the one interface it lists: `lo`.
fn own_namespace_with_only_lo(out: &common::Output, host: &str) {
    let lines: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(lines.len(), 2, "{out:#?}");
    assert!(
        lines[0].starts_with("net:[") && lines[0] != host,
        "{out:#?}"
    );
    assert_eq!(lines[1], "lo", "{out:#?}");
}
