//! `sunaba bench`: each measured layer really adds the isolation it names
//! (read back from /proc and the cgroup tree), a short run reports every
//! row and writes its JSON and SVG, a steady-state workload measures only
//! under the seccomp state its row names, and bad options are refused
//! before anything runs.

mod common;

use std::process::{Command, Stdio};

use common::{privileged, SUNABA};

/// What a process in a layer reports about itself.
struct Seen {
    namespaces: Vec<(String, bool)>,
    seccomp: String,
    no_new_privs: String,
    cap_eff: String,
    root_writable: bool,
    in_own_cgroup: bool,
}

const KINDS: [&str; 5] = ["pid", "net", "mnt", "ipc", "uts"];

fn seen_in(layer: &str, dir: &std::path::Path) -> Seen {
    let script = "for n in pid net mnt ipc uts; do readlink /proc/self/ns/$n; done; \
        grep -E '^(Seccomp|NoNewPrivs|CapEff):' /proc/self/status; \
        if touch /.sunaba-bench-probe 2>/dev/null; then rm /.sunaba-bench-probe; echo root-writable; fi; \
        echo ready; read -r _ || true";
    let mut child = Command::new(SUNABA)
        .args(["bench-layer", layer, "--", "/bin/sh", "-c", script])
        .current_dir(dir)
        .env("SUNABA_DATA_DIR", dir.join("data"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sunaba bench-layer");
    let mut out = String::new();
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    while !out.ends_with("ready\n") {
        let n = std::io::BufRead::read_line(&mut stdout, &mut out).expect("read");
        assert!(n > 0, "layer {layer} ended early: {out}");
    }
    // While the program waits, the host side shows whether it has a cgroup.
    let pid = i32::try_from(child.id()).expect("pid");
    let in_own_cgroup = !common::leftover_cgroups(pid).is_empty();
    drop(child.stdin.take());
    let status = child.wait().expect("wait");
    assert!(status.success(), "layer {layer}: {status}");

    let host = |kind: &str| std::fs::read_link(format!("/proc/self/ns/{kind}")).expect("own ns");
    let lines: Vec<&str> = out.lines().collect();
    let field = |name: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    Seen {
        namespaces: KINDS
            .iter()
            .zip(&lines)
            .map(|(k, l)| (k.to_string(), *l != host(k).to_string_lossy()))
            .collect(),
        seccomp: field("Seccomp:"),
        no_new_privs: field("NoNewPrivs:"),
        cap_eff: field("CapEff:"),
        root_writable: out.contains("root-writable"),
        in_own_cgroup,
    }
}

#[test]
fn each_layer_adds_the_isolation_it_names() {
    if !privileged("each_layer_adds_the_isolation_it_names") {
        return;
    }
    let dir = common::temp_dir();
    std::fs::create_dir(dir.path().join("input")).expect("input dir");
    let own = |s: &Seen, kind: &str| s.namespaces.iter().any(|(k, new)| k == kind && *new);

    let runtime = seen_in("runtime", dir.path());
    assert!(
        KINDS.iter().all(|k| !own(&runtime, k)),
        "runtime: {:?}",
        runtime.namespaces
    );
    assert!(runtime.root_writable && !runtime.in_own_cgroup);
    assert_eq!(runtime.seccomp, "0");

    let namespaces = seen_in("namespaces", dir.path());
    assert!(own(&namespaces, "pid") && own(&namespaces, "ipc") && own(&namespaces, "uts"));
    assert!(!own(&namespaces, "net") && !own(&namespaces, "mnt"));

    let network = seen_in("network", dir.path());
    assert!(own(&network, "net") && !own(&network, "mnt"));
    assert!(network.root_writable);

    let rootfs = seen_in("rootfs", dir.path());
    assert!(own(&rootfs, "mnt") && !rootfs.root_writable && !rootfs.in_own_cgroup);

    let cgroup = seen_in("cgroup", dir.path());
    assert!(cgroup.in_own_cgroup, "the cgroup layer made no cgroup");
    assert_eq!(cgroup.seccomp, "0");
    assert_ne!(cgroup.cap_eff, "0000000000000000");

    let lockdown = seen_in("lockdown", dir.path());
    assert!(lockdown.in_own_cgroup);
    assert_eq!(lockdown.seccomp, "2", "a filter is installed");
    assert_eq!(lockdown.no_new_privs, "1");
    assert_eq!(lockdown.cap_eff, "0000000000000000");
}

#[test]
fn a_short_run_reports_every_row_and_writes_json_and_svg() {
    if !privileged("a_short_run_reports_every_row_and_writes_json_and_svg")
        || !common::require(
            "a_short_run_reports_every_row_and_writes_json_and_svg",
            &["busybox"],
        )
    {
        return;
    }
    let dir = common::temp_dir();
    let (json, svg) = (dir.path().join("b.json"), dir.path().join("b.svg"));
    let out = Command::new(SUNABA)
        .args([
            "bench",
            "--only",
            "start,scale",
            "-n",
            "2",
            "--scale",
            "0,2",
            "--json",
        ])
        .arg(&json)
        .arg("--svg")
        .arg(&svg)
        .stdin(Stdio::null())
        .output()
        .expect("run sunaba bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("json written")).expect("valid JSON");
    let rows = report["start"].as_array().expect("start rows");
    let names: Vec<&str> = rows.iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "fork+exec",
            "runtime",
            "namespaces",
            "network",
            "rootfs",
            "cgroup",
            "lockdown",
            "agent",
            "sunaba run",
            "sunaba create+start+delete"
        ]
    );
    for row in rows {
        assert!(row["failed"].is_null(), "{row}");
        assert_eq!(row["ms"]["n"], 2, "{row}");
        assert!(
            row["ms"]["median"].as_f64().is_some_and(|m| m > 0.0),
            "{row}"
        );
        if row["name"] != "sunaba create+start+delete" {
            assert!(
                row["peak_rss_kib"]["median"]
                    .as_f64()
                    .is_some_and(|k| k > 100.0),
                "{row}"
            );
        }
        assert!(
            stdout.contains(row["name"].as_str().unwrap_or_default()),
            "{stdout}"
        );
    }
    // Two idle sandboxes ran and were stopped five times (up and down
    // through the levels, five round trips); their memory was charged to
    // their own cgroups.
    assert_eq!(report["teardown"]["sandboxes"], 10, "{report}");
    assert_eq!(report["teardown"]["batches"], 5, "{report}");
    let scale = report["scale"].as_array().expect("scale rows");
    assert_eq!(scale.len(), 2, "{report}");
    for point in scale {
        assert!(point["ms"]["n"].as_u64().is_some_and(|n| n >= 5), "{point}");
    }
    let memory = report["memory"].as_array().expect("memory rows");
    assert!(
        memory
            .iter()
            .any(|m| m["name"].as_str().is_some_and(|n| n.starts_with("idle"))),
        "{report}"
    );

    let drawn = std::fs::read_to_string(&svg).expect("svg written");
    assert!(drawn.starts_with("<svg") && drawn.trim_end().ends_with("</svg>"));
    assert!(drawn.contains("lockdown"));
}

#[test]
fn bad_options_are_refused_before_anything_runs() {
    let run = |args: &[&str]| {
        let out = Command::new(SUNABA)
            .arg("bench")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["--json", "/nonexistent-sunaba-dir/b.json"]);
    assert_eq!(code, Some(125));
    assert!(err.contains("/nonexistent-sunaba-dir"), "{err}");
    let (code, err) = run(&["--scale", "10,5"]);
    assert_eq!(code, Some(125));
    assert!(err.contains("--scale"), "{err}");
    let (code, err) = run(&["--only", "everything"]);
    assert_eq!(code, Some(125));
    assert!(err.contains("everything"), "{err}");
    let (code, _) = run(&["-n", "0"]);
    assert_eq!(code, Some(125));

    // Not root: refused, naming the fix, before anything runs.
    if common::have("setpriv") && is_root() {
        let out = Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                SUNABA,
                "bench",
                "-n",
                "1",
            ])
            .stdin(Stdio::null())
            .output()
            .expect("run setpriv");
        assert_eq!(out.status.code(), Some(125));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("run as root"),
            "{out:?}"
        );
    }
}

/// Runs `sunaba bench ARGS --json FILE`, which must succeed, and returns
/// the report it wrote.
fn bench_json(args: &[&str]) -> serde_json::Value {
    let dir = common::temp_dir();
    let json = dir.path().join("bench.json");
    let out = Command::new(SUNABA)
        .arg("bench")
        .args(args)
        .arg("--json")
        .arg(&json)
        .stdin(Stdio::null())
        .output()
        .expect("run sunaba bench");
    assert!(
        out.status.success(),
        "sunaba bench {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&std::fs::read(&json).expect("json written")).expect("valid JSON")
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn peers_run_side_by_side_or_are_named_as_missing() {
    if !privileged("peers_run_side_by_side_or_are_named_as_missing")
        || !common::require(
            "peers_run_side_by_side_or_are_named_as_missing",
            &["busybox"],
        )
    {
        return;
    }
    let report = bench_json(&["--only", "start", "-n", "1", "--peers"]);
    let rows = report["start"].as_array().expect("start rows");
    let notes = report["notes"].to_string();
    let row = |name: &str| rows.iter().find(|r| r["name"] == name);

    // Each peer installed here has its rows, measured; one that is not is
    // named in a note with the package to install.
    for (peer, names) in [
        ("bwrap", &["bwrap"][..]),
        ("runc", &["runc run", "runc create+start+delete"][..]),
        ("crun", &["crun run", "crun create+start+delete"][..]),
    ] {
        if common::have(peer) {
            for name in names {
                let r = row(name).unwrap_or_else(|| panic!("no {name} row: {report}"));
                assert!(r["failed"].is_null(), "{r}");
                assert_eq!(r["ms"]["n"], 1, "{r}");
            }
        } else {
            assert!(
                notes.contains(peer) || names.iter().all(|n| row(n).is_none()),
                "{notes}"
            );
        }
    }
    // podman needs a writable /etc/containers (the cgroup v2 guest shares the
    // host's read-only): without one, a note says why its rows are missing.
    if common::have("podman") {
        match row("podman+sunaba") {
            Some(r) => assert!(r["failed"].is_null() && r["ms"]["n"] == 1, "{r}"),
            None => assert!(notes.contains("podman rows skipped: "), "{notes}"),
        }
    }
    if common::have("crun") && common::have("runc") {
        let ratios = report["ratios"].to_string();
        assert!(
            ratios.contains("OCI run vs crun") && ratios.contains("OCI run vs runc"),
            "{ratios}"
        );
    }
    // The benchmark left no podman storage mounted and no state behind.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(!mounts.contains("sunaba-bench"), "{mounts}");
}

/// The seccomp mode the kernel reports for this test process.
fn own_seccomp_mode() -> String {
    std::fs::read_to_string("/proc/self/status")
        .expect("status")
        .lines()
        .find_map(|l| l.strip_prefix("Seccomp:"))
        .expect("a Seccomp: line")
        .trim()
        .to_string()
}

#[test]
fn a_workload_measures_only_under_the_seccomp_state_it_was_promised() {
    if !privileged("a_workload_measures_only_under_the_seccomp_state_it_was_promised") {
        return;
    }
    let dir = common::temp_dir();
    std::fs::create_dir(dir.path().join("input")).expect("input dir");
    let workload = |sandbox: &[&str], expect: &str| {
        let mut argv: Vec<&str> = Vec::new();
        if !sandbox.is_empty() {
            argv.extend(["run", "--profile", "agent"]);
            argv.extend(sandbox.iter().skip(1));
            argv.extend(["--", SUNABA]);
        }
        argv.extend(["bench-workload", "--seccomp", expect, "getppid", "1000"]);
        let out = Command::new(SUNABA)
            .args(&argv)
            .current_dir(dir.path())
            .env("SUNABA_DATA_DIR", dir.path().join("data"))
            .stdin(Stdio::null())
            .output()
            .expect("run sunaba");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    // The agent sandbox has a filter in force: a row that promised none is
    // refused with what the kernel said, and the filtered one measures.
    let (ok, _, err) = workload(&["agent"], "unfiltered");
    assert!(!ok && err.contains("says Seccomp: 2"), "{err}");
    let (ok, out, err) = workload(&["agent"], "filtered");
    assert!(ok, "{err}");
    assert!(out.trim().parse::<f64>().is_ok_and(|ns| ns > 0.0), "{out}");

    // Without seccomp (where this test itself runs unfiltered), the other
    // way round.
    if own_seccomp_mode() == "0" {
        let unconfined = ["agent", "--security-opt", "seccomp=unconfined"];
        let (ok, _, err) = workload(&unconfined, "filtered");
        assert!(!ok && err.contains("says Seccomp: 0"), "{err}");
        assert!(workload(&unconfined, "unfiltered").0);
        assert!(workload(&[], "unfiltered").0);
        let (ok, _, err) = workload(&[], "filtered");
        assert!(!ok && err.contains("says Seccomp: 0"), "{err}");
    }
}

#[test]
fn steady_rows_run_under_the_peers_too() {
    if !privileged("steady_rows_run_under_the_peers_too") {
        return;
    }
    let report = bench_json(&["--only", "steady", "-n", "1", "--peers"]);
    let rows = report["steady"].as_array().expect("steady rows");
    let row = |name: &str, inside: &str, outside: &str| {
        rows.iter().find(|r| {
            r["name"] == name && r["inside_what"] == inside && r["outside_what"] == outside
        })
    };
    // Every workload ran three times a side (each run checked its seccomp
    // state against the kernel's before it measured).
    for r in rows {
        assert_eq!(r["inside"]["n"], 3, "{r}");
        assert_eq!(r["outside"]["n"], 3, "{r}");
        assert!(r["factor"].as_f64().is_some_and(|f| f > 0.0), "{r}");
    }
    for (name, outside) in [
        ("getppid", "agent, seccomp unconfined"),
        ("getppid", "any filter (1 instruction)"),
        ("ioctl (argument-checked)", "agent, seccomp unconfined"),
        (
            "personality (argument-checked)",
            "agent, seccomp unconfined",
        ),
    ] {
        assert!(
            row(name, "agent", outside).is_some(),
            "{name} vs {outside}: {report}"
        );
    }

    // Under crun (or runc) with podman's profile, when both are here; else
    // a note says what is missing.
    let runtime = ["crun", "runc"].into_iter().find(|r| common::have(r));
    let notes = report["notes"].to_string();
    match runtime {
        Some(rt) if std::path::Path::new("/usr/share/containers/seccomp.json").exists() => {
            let (with, without) = (
                format!("{rt}, podman's seccomp profile"),
                format!("{rt}, no seccomp"),
            );
            for name in ["getppid", "personality (argument-checked)"] {
                assert!(row(name, &with, &without).is_some(), "{name}: {report}");
            }
            let ratios = report["ratios"].to_string();
            assert!(
                ratios.contains("getppid: the agent filter's cost vs podman's profile's"),
                "{ratios}"
            );
        }
        _ => assert!(
            notes.contains("steady rows under podman's filter skipped: "),
            "{notes}"
        ),
    }
    // And the agent's rows against the host, under gVisor where it is here.
    if common::have("runsc") {
        for (name, inside, outside) in [
            ("getppid", "runsc (gVisor)", "host"),
            (
                "file write+read, bind mount",
                "runsc (gVisor), dir:/data",
                "host, same dir",
            ),
            (
                "file write+read, tmpfs",
                "runsc (gVisor) /dev/shm",
                "host /dev/shm",
            ),
            ("loopback TCP", "runsc (gVisor) netns", "host"),
        ] {
            assert!(row(name, inside, outside).is_some(), "{name}: {report}");
        }
    } else {
        assert!(notes.contains("runsc is not installed"), "{notes}");
    }
    // No container of the peers' bundle outlived the run: no workload at
    // the bundle's /sunaba, no runtime process naming the bundle.
    let left: Vec<String> = std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.starts_with("/sunaba ") || c.contains("sunaba-bench-steady-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
