//! The OCI runtime lifecycle (runtime-spec runtime.md, and runc's command
//! line for what the spec leaves to the runtime): create, state, start,
//! kill, delete, their errors, and the runc extras callers rely on (list,
//! ps, run, --pid-file, kill --all). Hooks (config.md, "POSIX-platform
//! Hooks") close the file.
//!
//! The runtime is `SUNABA_OCI_RUNTIME` or this build's sunaba; see
//! `tests/common/oci.rs`.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::bundle::Bundle;
use common::oci::{start_time, Runtime, GUARD};
use common::{privileged, temp_dir};

/// Waits (at most GUARD) for a file the container writes through a bind
/// mount, and returns its contents.
fn wait_for_file(path: &Path) -> String {
    let deadline = Instant::now() + GUARD;
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if text.ends_with('\n') {
                return text;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// True while `pid` is a live process (not gone, not a zombie) that
/// started at `start`.
fn alive(pid: i32, start: u64) -> bool {
    if start_time(pid) != Some(start) {
        return false;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit(')').next().unwrap_or("").trim_start();
    !state.starts_with('Z') && !state.starts_with('X')
}

fn same_path(a: &str, b: &Path) -> bool {
    std::fs::canonicalize(a).ok() == std::fs::canonicalize(b).ok()
}

/// A bundle whose program records that it ran in `out/ran`, then sleeps.
fn marker_bundle(out: &Path) -> Bundle {
    Bundle::sh("echo ran > /out/ran; exec sleep 1000").bind(out, "/out", &[])
}

// runtime.md "State" and "Lifecycle" steps 1-3 and 6-8: after create the
// state says created, with the id, bundle, ociVersion and a live pid, and
// the user program has not run; start runs it and the state says running.
#[test]
fn create_holds_the_program_until_start() {
    if !privileged("create_holds_the_program_until_start") {
        return;
    }
    let out = temp_dir();
    let bundle = marker_bundle(out.path());
    let runtime = Runtime::new();
    let container = runtime.create(&bundle);

    let state = container.state();
    assert_eq!(state["status"], "created", "{state}");
    assert_eq!(state["id"], container.id(), "{state}");
    assert!(
        state["ociVersion"].as_str().is_some_and(|v| !v.is_empty()),
        "{state}"
    );
    let bundle_field = state["bundle"].as_str().unwrap_or_default();
    assert!(Path::new(bundle_field).is_absolute(), "{state}");
    assert!(same_path(bundle_field, bundle.path()), "{state}");
    let pid = container.pid();
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "pid {pid} is not alive"
    );
    assert!(
        !out.path().join("ran").exists(),
        "the program ran before start"
    );

    container.start();
    assert_eq!(wait_for_file(&out.path().join("ran")), "ran\n");
    assert_eq!(container.status(), "running");
    assert_eq!(container.pid(), pid, "start changed the container pid");
}

// runtime.md "Kill" and "Delete": SIGKILL stops the container; delete of a
// stopped container succeeds, and afterwards the container is unknown.
#[test]
fn kill_stops_the_container_and_delete_forgets_it() {
    if !privileged("kill_stops_the_container_and_delete_forgets_it") {
        return;
    }
    let out = temp_dir();
    let bundle = marker_bundle(out.path());
    let runtime = Runtime::new();
    let container = runtime.create(&bundle);
    container.start();
    wait_for_file(&out.path().join("ran"));

    container.kill("KILL");
    container.wait_stopped();
    assert_eq!(container.status(), "stopped");

    container.delete();
    container.try_state().expect_failure();
    assert!(!runtime.list_ids().contains(&container.id().to_string()));
}

// runtime.md "Kill": the signal named is the one delivered; a program that
// traps SIGTERM sees it and exits on its own.
#[test]
fn kill_delivers_the_named_signal() {
    if !privileged("kill_delivers_the_named_signal") {
        return;
    }
    let out = temp_dir();
    let script = "trap 'echo term > /out/got; exit 0' TERM; trap 'echo usr1 > /out/got' USR1; \
                  echo ready > /out/ready; sleep 1000 & wait; wait";
    let bundle = Bundle::sh(script).bind(out.path(), "/out", &[]);
    let runtime = Runtime::new();
    let container = runtime.create(&bundle);
    container.start();
    wait_for_file(&out.path().join("ready"));

    container.kill("TERM");
    container.wait_stopped();
    assert_eq!(
        std::fs::read_to_string(out.path().join("got")).unwrap_or_default(),
        "term\n"
    );
}

// runc's `exec`: another process in the running container, from argv or
// from a process.json (the runtime-spec's process object), whose rlimits
// it gets; a label the runtime cannot apply is refused, never dropped.
#[test]
fn exec_runs_a_process_with_its_own_rlimits() {
    if !privileged("exec_runs_a_process_with_its_own_rlimits") {
        return;
    }
    let out = temp_dir();
    let bundle = Bundle::sh("echo ready > /out/ready; sleep 1000")
        .bind(out.path(), "/out", &[])
        .rlimit("RLIMIT_NOFILE", 900, 1000);
    let runtime = Runtime::new();
    let container = runtime.create(&bundle);
    container.start();
    wait_for_file(&out.path().join("ready"));

    // From argv: the container's own process settings, rlimits included.
    // The soft and hard values of the line of /proc/self/limits naming `what`.
    let limits = |outcome: &common::oci::Outcome, what: &str| {
        outcome
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix(what))
            .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|| panic!("no limits: {outcome:?}"))
    };
    let from_argv = runtime
        .exec(&["exec", container.id(), "cat", "/proc/self/limits"])
        .expect_success();
    assert_eq!(limits(&from_argv, "Max open files"), "900 1000");

    // (A core-size limit: runc, built with Go, lifts its own soft limit of
    // open files to the hard one, and an exec'd process inherits that.)
    let mut process = bundle.config()["process"].clone();
    process["args"] = serde_json::json!(["cat", "/proc/self/limits"]);
    process["rlimits"] = serde_json::json!([{"type": "RLIMIT_CORE", "soft": 123, "hard": 456}]);
    let file = out.path().join("process.json");
    std::fs::write(&file, process.to_string()).expect("write process.json");
    let file = file.to_string_lossy().into_owned();
    let from_file = runtime
        .exec(&["exec", "--process", &file, container.id()])
        .expect_success();
    assert_eq!(limits(&from_file, "Max core file size"), "123 456");

    // runc ignores the label on a host without AppArmor; sunaba says so.
    if runtime.is_sunaba() {
        process["apparmorProfile"] = serde_json::json!("some-profile");
        std::fs::write(&file, process.to_string()).expect("write process.json");
        let refused = runtime
            .exec(&["exec", "--process", &file, container.id()])
            .expect_failure();
        assert!(refused.stderr.contains("apparmorProfile"), "{refused:?}");
    }
    container.kill("KILL");
    container.wait_stopped();
}

// runtime.md "Delete": deleting a container that is not stopped must fail
// and leave it alone; runc's `delete --force` kills it first.
#[test]
fn delete_refuses_a_running_container_unless_forced() {
    if !privileged("delete_refuses_a_running_container_unless_forced") {
        return;
    }
    let out = temp_dir();
    let bundle = marker_bundle(out.path());
    let runtime = Runtime::new();
    let container = runtime.create(&bundle);
    container.start();
    wait_for_file(&out.path().join("ran"));
    let pid = container.pid();
    let start = start_time(pid).expect("init is alive");

    container.try_delete(false).expect_failure();
    assert_eq!(container.status(), "running");
    assert!(alive(pid, start), "a refused delete killed the init");

    container.try_delete(true).expect_success();
    container.try_state().expect_failure();
    assert!(!alive(pid, start), "delete --force left the init running");
}

// runtime.md "Start": starting a container that is not in the created
// state must fail, for running and for stopped containers alike.
#[test]
fn start_refuses_a_running_or_stopped_container() {
    if !privileged("start_refuses_a_running_or_stopped_container") {
        return;
    }
    let out = temp_dir();
    let bundle = marker_bundle(out.path());
    let runtime = Runtime::new();
    let container = runtime.create(&bundle);
    container.start();
    wait_for_file(&out.path().join("ran"));

    container.try_start().expect_failure();
    assert_eq!(container.status(), "running");

    container.kill("KILL");
    container.wait_stopped();
    container.try_start().expect_failure();
    assert_eq!(container.status(), "stopped");
}

// runtime.md "Create": an id already in use must fail without touching
// the container that has it.
#[test]
fn create_refuses_an_id_in_use() {
    if !privileged("create_refuses_an_id_in_use") {
        return;
    }
    let runtime = Runtime::new();
    let first_bundle = Bundle::new(&["sleep", "1000"]);
    let first = runtime.create(&first_bundle);
    let pid = first.pid();

    let second_bundle = Bundle::new(&["sleep", "1000"]);
    let (_second, outcome) = runtime.try_create(&second_bundle, first.id(), &[]);
    outcome.expect_failure();

    let state = first.state();
    assert_eq!(state["status"], "created", "{state}");
    assert_eq!(
        first.pid(),
        pid,
        "the refused create replaced the container"
    );
    let bundle_field = state["bundle"].as_str().unwrap_or_default();
    assert!(same_path(bundle_field, first_bundle.path()), "{state}");
}

// runc's id rule (the spec only asks ids to be unique): an id with a path
// separator or a parent reference is refused, and nothing is written for
// it inside or beside the state root. A plain id is accepted.
#[test]
fn create_refuses_ids_that_are_not_plain_names() {
    if !privileged("create_refuses_ids_that_are_not_plain_names") {
        return;
    }
    let runtime = Runtime::new();
    let bundle = Bundle::new(&["sleep", "1000"]);
    let escape = format!("../{}", runtime.new_id());
    let nested = format!("{}/inner", runtime.new_id());

    for id in [escape.as_str(), nested.as_str()] {
        let (_container, outcome) = runtime.try_create(&bundle, id, &[]);
        outcome.expect_failure();
        assert!(
            !runtime.root().join(id).exists(),
            "state written for {id:?}"
        );
        let first = id.split('/').next().unwrap_or(id);
        if first != ".." {
            assert!(
                !runtime.root().join(first).exists(),
                "state written for {id:?}"
            );
        }
    }
    let beside: Vec<_> = std::fs::read_dir(runtime.scratch())
        .expect("read scratch")
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().starts_with("oci-"))
        .collect();
    assert!(beside.is_empty(), "written beside the root: {beside:?}");

    let plain = runtime.create(&bundle);
    assert_eq!(plain.status(), "created");
}

// runc's --pid-file: create writes the init pid, the one state reports.
#[test]
fn pid_file_holds_the_init_pid() {
    if !privileged("pid_file_holds_the_init_pid") {
        return;
    }
    let runtime = Runtime::new();
    let pid_file = runtime.scratch().join("init.pid");
    let pid_arg = pid_file.to_str().expect("utf-8");
    let bundle = Bundle::new(&["sleep", "1000"]);
    let container = runtime.create_with(&bundle, &["--pid-file", pid_arg]);

    let written = std::fs::read_to_string(&pid_file).expect("read pid file");
    assert_eq!(
        written.trim().parse::<i32>().ok(),
        Some(container.pid()),
        "{written:?}"
    );
}

// runc's list: text and JSON both show each container with its status;
// a deleted one is gone from both.
#[test]
fn list_shows_the_containers_of_the_root() {
    if !privileged("list_shows_the_containers_of_the_root") {
        return;
    }
    let runtime = Runtime::new();
    let bundle = Bundle::new(&["sleep", "1000"]);
    let kept = runtime.create(&bundle);
    let deleted = runtime.create(&bundle);
    deleted.try_delete(true).expect_success();

    let listed = runtime
        .exec(&["list", "--format", "json"])
        .expect_success()
        .json();
    let entries = listed.as_array().cloned().unwrap_or_default();
    let entry = entries
        .iter()
        .find(|c| c["id"] == kept.id())
        .unwrap_or_else(|| panic!("{} not listed: {listed}", kept.id()));
    assert_eq!(entry["status"], "created", "{entry}");
    assert_eq!(
        entry["pid"].as_i64(),
        Some(i64::from(kept.pid())),
        "{entry}"
    );
    assert!(!entries.iter().any(|c| c["id"] == deleted.id()), "{listed}");

    let text = runtime.exec(&["list"]).expect_success().stdout;
    assert!(text.lines().any(|l| l.starts_with(kept.id())), "{text}");
    assert!(!text.contains(deleted.id()), "{text}");
}

// runc's ps: the JSON form lists the pids of the container's processes,
// the init among them, and no host process of ours.
#[test]
fn ps_lists_the_container_processes() {
    if !privileged("ps_lists_the_container_processes") {
        return;
    }
    let out = temp_dir();
    let bundle = Bundle::sh("sleep 1000 & echo ran > /out/ran; wait").bind(out.path(), "/out", &[]);
    let runtime = Runtime::new();
    let container = runtime.create(&bundle);
    container.start();
    wait_for_file(&out.path().join("ran"));

    let pids = pids_of(&runtime, container.id());
    assert!(pids.contains(&container.pid()), "{pids:?} lacks the init");
    assert_eq!(pids.len(), 2, "expected the shell and its sleep: {pids:?}");
    let me = i32::try_from(std::process::id()).expect("pid fits i32");
    assert!(!pids.contains(&me), "{pids:?}");
}

fn pids_of(runtime: &Runtime, id: &str) -> Vec<i32> {
    let listed = runtime
        .exec(&["ps", "--format", "json", id])
        .expect_success()
        .json();
    listed
        .as_array()
        .unwrap_or_else(|| panic!("ps did not print an array: {listed}"))
        .iter()
        .filter_map(Value::as_i64)
        .filter_map(|p| i32::try_from(p).ok())
        .collect()
}

// runc's kill --all: every process of the container gets the signal, not
// only the init. The container shares the host pid namespace here, so
// the init's death alone would not take the others with it.
#[test]
fn kill_all_reaches_every_process_of_the_container() {
    if !privileged("kill_all_reaches_every_process_of_the_container") {
        return;
    }
    let out = temp_dir();
    let script = "sleep 1000 & sleep 1000 & echo ran > /out/ran; wait";
    let bundle = Bundle::sh(script)
        .bind(out.path(), "/out", &[])
        .without_namespace("pid")
        .cgroups_path(&format!("/{}", common::unique("oci-killall")));
    let runtime = Runtime::new();
    let container = runtime.create(&bundle);
    container.start();
    wait_for_file(&out.path().join("ran"));
    let pids: Vec<(i32, u64)> = pids_of(&runtime, container.id())
        .into_iter()
        .filter_map(|p| Some((p, start_time(p)?)))
        .collect();
    assert_eq!(pids.len(), 3, "expected the shell and two sleeps: {pids:?}");

    runtime
        .exec(&["kill", "--all", container.id(), "KILL"])
        .expect_success();
    container.wait_stopped();
    let deadline = Instant::now() + GUARD;
    while pids.iter().any(|&(p, s)| alive(p, s)) {
        assert!(
            Instant::now() < deadline,
            "kill --all spared some of {pids:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

// runc's kill on a stopped container: a plain kill is refused as "not
// running", but kill --all still acts. Without a pid namespace of its own,
// the init's exit leaves its children running in the cgroup, and kill
// --all (what containerd's shim sends after that exit) ends them.
#[test]
fn kill_all_ends_what_a_stopped_container_left_running() {
    if !privileged("kill_all_ends_what_a_stopped_container_left_running") {
        return;
    }
    let out = temp_dir();
    let script = "sleep 1000 & echo $! > /out/child; echo ran > /out/ran";
    let bundle = Bundle::sh(script)
        .bind(out.path(), "/out", &[])
        .without_namespace("pid")
        .cgroups_path(&format!("/{}", common::unique("oci-killall-stopped")));
    let runtime = Runtime::new();
    let container = runtime.create(&bundle);
    container.start();
    wait_for_file(&out.path().join("ran"));
    container.wait_stopped();
    let child: i32 = wait_for_file(&out.path().join("child"))
        .trim()
        .parse()
        .expect("child pid");
    let started = start_time(child).expect("the background sleep outlives the init");

    // runc's wording, which containerd's shim reads as "already finished".
    let refused = container.try_kill("KILL").expect_failure();
    assert!(
        refused.stderr.contains("container not running"),
        "{refused:#?}"
    );
    runtime
        .exec(&["kill", "--all", container.id(), "KILL"])
        .expect_success();
    let deadline = Instant::now() + GUARD;
    while alive(child, started) {
        assert!(
            Instant::now() < deadline,
            "kill --all spared the init's child {child}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    container.delete();
}

// runc's run --detach: create and start in one step; the container keeps
// running after the runtime returns.
#[test]
fn run_detached_leaves_the_container_running() {
    if !privileged("run_detached_leaves_the_container_running") {
        return;
    }
    let out = temp_dir();
    let bundle = marker_bundle(out.path());
    let runtime = Runtime::new();
    let container = runtime.run_detached(&bundle);
    assert_eq!(wait_for_file(&out.path().join("ran")), "ran\n");
    assert_eq!(container.status(), "running");
}

// runc's run in the foreground: the runtime exits with the program's
// status, zero and non-zero alike, and passes its stdout through.
#[test]
fn run_in_the_foreground_returns_the_exit_status() {
    if !privileged("run_in_the_foreground_returns_the_exit_status") {
        return;
    }
    let runtime = Runtime::new();
    let failing_bundle = Bundle::sh("echo out; exit 3");
    let (failing, outcome) = runtime.run_foreground(&failing_bundle);
    assert_eq!(outcome.status.code(), Some(3), "{outcome:#?}");
    assert_eq!(failing.stdout(), "out\n");

    let passing_bundle = Bundle::sh("exit 0");
    let (_passing, outcome) = runtime.run_foreground(&passing_bundle);
    assert_eq!(outcome.status.code(), Some(0), "{outcome:#?}");
}

// While a foreground `run` or `exec` waits, the container stays open to the
// other commands: state, list, a second exec and kill answer at once (a
// runtime that kept the container locked would stall them, and an engine
// with them, until the guard kills the stalled command).
#[test]
fn a_foreground_run_and_exec_leave_the_container_to_other_commands() {
    if !privileged("a_foreground_run_and_exec_leave_the_container_to_other_commands") {
        return;
    }
    let out = temp_dir();
    let bundle = Bundle::sh("echo ready > /out/ready; sleep 1000").bind(out.path(), "/out", &[]);
    let runtime = &Runtime::new();
    let bundle = &bundle;
    std::thread::scope(|scope| {
        let run = scope.spawn(move || runtime.run_foreground(bundle).1);
        wait_for_file(&out.path().join("ready"));
        let ids = runtime.list_ids();
        assert_eq!(ids.len(), 1, "{ids:?}");
        let id = ids[0].as_str();
        let state = runtime.exec(&["state", id]).expect_success().json();
        assert_eq!(state["status"], "running", "{state}");

        let exec_id = id.to_string();
        let exec = scope.spawn(move || {
            runtime.exec(&[
                "exec",
                &exec_id,
                "sh",
                "-c",
                "echo in > /out/exec; sleep 1000",
            ])
        });
        wait_for_file(&out.path().join("exec"));
        let second = runtime
            .exec(&["exec", id, "echo", "second"])
            .expect_success();
        assert_eq!(second.stdout, "second\n");

        runtime.exec(&["kill", id, "KILL"]).expect_success();
        let run = run.join().expect("run thread");
        assert_eq!(run.status.code(), Some(137), "{run:?}");
        // The exec'd program dies with the container's pid namespace.
        let exec = exec.join().expect("exec thread");
        assert_ne!(exec.status.code(), Some(0), "{exec:?}");
    });
    assert!(runtime.list_ids().is_empty());
}

/// A bundle with one hook of each kind that runs in the runtime namespace
/// or the container's, each saving its stdin to `dir/KIND.json`.
fn hook_bundle(dir: &Path) -> Bundle {
    let host_dir = dir.to_str().expect("utf-8").to_string();
    let record = |kind: &str, at: &str| format!("cat > {at}/{kind}.json");
    let mut bundle = Bundle::new(&["sleep", "1000"]).bind(dir, "/hooks", &[]);
    for kind in ["prestart", "createRuntime", "poststart", "poststop"] {
        bundle = bundle.hook(kind, "/bin/sh", &["sh", "-c", &record(kind, &host_dir)]);
    }
    // startContainer runs inside the container (config.md): its path and
    // the file it writes resolve in the container's mount namespace.
    bundle.hook(
        "startContainer",
        "/bin/sh",
        &["sh", "-c", &record("startContainer", "/hooks")],
    )
}

/// The state a hook of `kind` received, if it ran.
fn hook_state(dir: &Path, kind: &str) -> Option<Value> {
    let text = std::fs::read_to_string(dir.join(format!("{kind}.json"))).ok()?;
    Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{kind}: {e}: {text:?}")))
}

// config.md "prestart" and "createRuntime", runtime.md "Lifecycle" step 3:
// both run during create, with the state (id, init pid, bundle) on stdin;
// the hooks of later steps have not run.
#[test]
fn create_hooks_run_during_create_with_the_state() {
    if !privileged("create_hooks_run_during_create_with_the_state") {
        return;
    }
    let dir = temp_dir();
    let bundle = hook_bundle(dir.path());
    let runtime = Runtime::new();
    let container = runtime.create(&bundle);

    for kind in ["prestart", "createRuntime"] {
        let state =
            hook_state(dir.path(), kind).unwrap_or_else(|| panic!("{kind} did not run at create"));
        assert_eq!(state["id"], container.id(), "{kind}: {state}");
        let pid = Some(i64::from(container.pid()));
        assert_eq!(state["pid"].as_i64(), pid, "{kind}: {state}");
        let bundle_field = state["bundle"].as_str().unwrap_or_default();
        assert!(same_path(bundle_field, bundle.path()), "{kind}: {state}");
    }
    for kind in ["startContainer", "poststop"] {
        assert!(
            hook_state(dir.path(), kind).is_none(),
            "{kind} ran at create"
        );
    }
}

// config.md "createContainer": it runs during create, in the container's
// namespaces (its path resolves there), after createRuntime, with the state
// on stdin, and with the runtime's privileges rather than the process's:
// root with every capability, although the process runs as uid 1000 with
// none. start has not happened yet.
#[test]
fn create_container_hook_runs_in_the_container_with_the_runtimes_privileges() {
    if !privileged("create_container_hook_runs_in_the_container_with_the_runtimes_privileges") {
        return;
    }
    // The directory is bound at its own path, so the hook finds it whether
    // it sees the container's root or, as the spec has it before
    // pivot_root (runc), the host's.
    let dir = temp_dir();
    let host_dir = dir.path().to_str().expect("utf-8").to_string();
    let script = format!(
        "cat > {host_dir}/createContainer.json; \
         grep -E '^(Uid|CapEff):' /proc/self/status > {host_dir}/creds; \
         test -e {host_dir}/createRuntime.json && echo after > {host_dir}/order"
    );
    let bundle = Bundle::new(&["sleep", "1000"])
        .bind(dir.path(), &host_dir, &[])
        .user(1000, 1000, &[])
        .capabilities(&[])
        .hook(
            "createRuntime",
            "/bin/sh",
            &["sh", "-c", &format!("cat > {host_dir}/createRuntime.json")],
        )
        .hook("createContainer", "/bin/sh", &["sh", "-c", &script]);
    let runtime = Runtime::new();
    let container = runtime.create(&bundle);
    let state = hook_state(dir.path(), "createContainer").expect("did not run at create");
    // (The pid is left alone: runc reports the one the hook sees, 1.)
    assert_eq!(state["id"], container.id(), "{state}");
    let order = std::fs::read_to_string(dir.path().join("order")).unwrap_or_default();
    assert_eq!(order, "after\n", "createContainer ran before createRuntime");
    let creds = std::fs::read_to_string(dir.path().join("creds")).expect("creds");
    let field = |name: &str| {
        creds
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_default()
            .to_string()
    };
    assert!(field("Uid:").starts_with("0\t"), "{creds}");
    assert_ne!(
        u64::from_str_radix(&field("CapEff:"), 16).unwrap_or(0),
        0,
        "{creds}"
    );
    // The process itself got none of that.
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", container.pid())).expect("status");
    assert!(status.contains("CapEff:\t0000000000000000"), "{status}");
    assert_eq!(container.status(), "created");
}

// config.md "startContainer", runtime.md "Lifecycle" step 7: it runs
// during start, inside the container, with the state on stdin.
#[test]
fn start_container_hook_runs_during_start() {
    if !privileged("start_container_hook_runs_during_start") {
        return;
    }
    let dir = temp_dir();
    let bundle = hook_bundle(dir.path());
    let runtime = Runtime::new();
    let container = runtime.create(&bundle);
    assert!(
        hook_state(dir.path(), "startContainer").is_none(),
        "ran at create"
    );

    container.start();
    let state = hook_state(dir.path(), "startContainer").expect("did not run at start");
    assert_eq!(state["id"], container.id(), "{state}");
}

// config.md "poststart", runtime.md "Lifecycle" step 9: it runs after the
// user program has started, before start returns, and not at create.
#[test]
fn poststart_hook_runs_during_start_not_create() {
    if !privileged("poststart_hook_runs_during_start_not_create") {
        return;
    }
    let dir = temp_dir();
    let bundle = hook_bundle(dir.path());
    let runtime = Runtime::new();
    let container = runtime.create(&bundle);
    assert!(
        hook_state(dir.path(), "poststart").is_none(),
        "poststart ran at create"
    );

    container.start();
    let state = hook_state(dir.path(), "poststart").expect("did not run at start");
    assert_eq!(state["id"], container.id(), "{state}");
}

// config.md "poststop", runtime.md "Lifecycle" step 13: it runs when the
// container is deleted, after the program stopped, with the state on
// stdin, and not before.
#[test]
fn poststop_hook_runs_at_delete() {
    if !privileged("poststop_hook_runs_at_delete") {
        return;
    }
    let dir = temp_dir();
    let bundle = hook_bundle(dir.path());
    let runtime = Runtime::new();
    let container = runtime.create(&bundle);
    container.start();
    container.kill("KILL");
    container.wait_stopped();
    assert!(
        hook_state(dir.path(), "poststop").is_none(),
        "poststop ran before delete"
    );

    container.delete();
    let state = hook_state(dir.path(), "poststop").expect("did not run at delete");
    assert_eq!(state["id"], container.id(), "{state}");
}

// runc's pause/resume (the cgroup freezer): a paused container's processes
// do not run, its state says "paused", and resume lets them go on.
#[test]
fn pause_freezes_the_container_and_resume_thaws_it() {
    if !privileged("pause_freezes_the_container_and_resume_thaws_it") {
        return;
    }
    let dir = temp_dir();
    let script = "i=0; while true; do i=$((i+1)); echo $i > /out/n; sleep 0.05; done";
    let bundle = Bundle::sh(script).bind(dir.path(), "/out", &[]);
    let runtime = Runtime::new();
    let container = runtime.create(&bundle);
    container.start();
    let count = || {
        std::fs::read_to_string(dir.path().join("n"))
            .unwrap_or_default()
            .trim()
            .parse::<u64>()
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while count() < 2 {
        assert!(std::time::Instant::now() < deadline, "the loop never ran");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    runtime.exec(&["pause", container.id()]).expect_success();
    assert_eq!(container.status(), "paused");
    let frozen_at = count();
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert_eq!(count(), frozen_at, "the loop ran while paused");
    runtime.exec(&["pause", container.id()]).expect_failure();

    runtime.exec(&["resume", container.id()]).expect_success();
    assert_eq!(container.status(), "running");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while count() <= frozen_at {
        assert!(
            std::time::Instant::now() < deadline,
            "the loop did not resume"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    runtime.exec(&["resume", container.id()]).expect_failure();

    // A paused container can still be deleted by force.
    runtime.exec(&["pause", container.id()]).expect_success();
    container.try_delete(true);
    assert!(!runtime.list_ids().contains(&container.id().to_string()));
}

// runc's --log with --log-format json: one JSON object a line with level,
// msg and time, and a failed command's reason as the last error line, which
// is where containerd's shim looks for it.
#[test]
fn json_log_ends_with_the_failure_as_an_error_line() {
    if !privileged("json_log_ends_with_the_failure_as_an_error_line") {
        return;
    }
    let runtime = Runtime::new();
    let log = runtime.scratch().join("log.json");
    let log_arg = log.to_string_lossy().into_owned();
    let id = runtime.new_id();
    runtime
        .exec(&["--log", &log_arg, "--log-format", "json", "state", &id])
        .expect_failure();
    let text = std::fs::read_to_string(&log).expect("log written");
    let last: Value = serde_json::from_str(text.lines().last().expect("a line")).expect("JSON");
    assert_eq!(last["level"], "error", "{text}");
    assert!(last["time"].is_string(), "{text}");
    let msg = last["msg"].as_str().unwrap_or_default();
    assert!(msg.contains("not exist"), "{text}");
    if runtime.is_sunaba() {
        assert!(msg.contains(&id), "{text}");
    }
}

// A create killed while its hooks run (an engine's timeout, say) leaves a
// container that `delete --force` removes whole: its waiting init and its
// cgroup as well as its state.
#[test]
fn a_create_killed_in_its_hooks_is_cleaned_up_by_delete_force() {
    if !privileged("a_create_killed_in_its_hooks_is_cleaned_up_by_delete_force") {
        return;
    }
    let cgroups_path = format!("/{}", common::unique("oci-killed-create"));
    // The hook's parent is the runtime running create.
    let bundle = Bundle::new(&["sleep", "1000"])
        .cgroups_path(&cgroups_path)
        .hook(
            "createRuntime",
            "/bin/sh",
            &["sh", "-c", "kill -KILL $PPID"],
        );
    let runtime = Runtime::new();
    if !runtime.is_sunaba() {
        // runc records no state before its hooks: this is sunaba's promise.
        return;
    }
    let id = runtime.new_id();
    let (_container, outcome) = runtime.try_create(&bundle, &id, &[]);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&outcome.status),
        Some(libc::SIGKILL),
        "{outcome:?}"
    );
    let state = runtime.exec(&["state", &id]).expect_success().json();
    let pid = i32::try_from(state["pid"].as_i64().expect("pid")).expect("pid fits");
    assert!(Path::new(&format!("/proc/{pid}")).exists(), "{state}");
    assert!(!common::oci::cgroup_dirs(&cgroups_path).is_empty());

    runtime.exec(&["delete", "--force", &id]).expect_success();
    let deadline = Instant::now() + GUARD;
    while start_time(pid).is_some() {
        assert!(Instant::now() < deadline, "init {pid} outlived delete");
        std::thread::sleep(Duration::from_millis(20));
    }
    let left = common::oci::cgroup_dirs(&cgroups_path);
    common::remove_cgroups(&left);
    assert!(left.is_empty(), "{left:?}");
    assert!(runtime.list_ids().is_empty());
}
