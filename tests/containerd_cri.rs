//! The Kubernetes path: containerd's CRI plugin with a runtime handler
//! whose runc shim runs sunaba (`BinaryName`), as a RuntimeClass selects
//! it. A private containerd serves CRI on its own socket; the test speaks
//! CRI over gRPC through `tests/cri_client.py` (Debian has no crictl), runs
//! a pod and a container in it, and checks that sunaba ran both.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::containerd::{command, mounts_under, Containerd, Ran};
use common::{privileged, require, skip, unique};

const SUNABA: &str = env!("CARGO_BIN_EXE_sunaba");
const CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cri_client.py");
/// capability(7)'s number for CAP_SYS_RESOURCE.
const CAP_SYS_RESOURCE: u32 = 24;
/// Debian's interpreter, the one python3-grpcio is installed for.
const PYTHON: &str = "/usr/bin/python3";

/// Whether this process may lower oom_score_adj (CAP_SYS_RESOURCE, bit 24
/// of CapEff). CRI asks -998 for every sandbox; without the capability no
/// runtime can apply that, runc included.
fn can_lower_oom_score_adj() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_SYS_RESOURCE) != 0)
}

/// The CRI plugin's config: a default `runc` handler and a `sunaba` one,
/// everything it keeps (state, sandboxes, CNI config) under `dir`.
fn cri_config(dir: &Path, sandbox_image: &str) -> String {
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    for sub in ["cni-bin", "cni-conf"] {
        std::fs::create_dir_all(dir.join(sub)).expect("cni dir");
    }
    let cri = "plugins.\"io.containerd.grpc.v1.cri\"";
    format!(
        r#"[{cri}]
  sandbox_image = "{sandbox_image}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  restrict_oom_score_adj = {restrict}
  [{cri}.containerd]
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
    [{cri}.containerd.runtimes.sunaba]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.sunaba.options]
        BinaryName = "{SUNABA}"
        Root = "{root}"
        SystemdCgroup = false
  [{cri}.cni]
    bin_dir = "{bin}"
    conf_dir = "{conf}"
"#,
        restrict = !can_lower_oom_score_adj(),
        root = path("sunaba"),
        bin = path("cni-bin"),
        conf = path("cni-conf"),
    )
}

struct Cri<'a> {
    containerd: &'a Containerd,
}

impl Cri<'_> {
    fn call(&self, args: &[&str]) -> String {
        let socket = self.containerd.socket();
        let mut all = vec![CLIENT, socket.to_str().expect("utf-8")];
        all.extend_from_slice(args);
        let ran: Ran = command(PYTHON, &all);
        assert_eq!(
            ran.code,
            Some(0),
            "CRI {args:?} failed: {ran:#?}\ncontainerd log:\n{}",
            self.containerd.log()
        );
        ran.stdout.trim().to_string()
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.call(args)).expect("client prints JSON")
    }
}

/// Stops and removes the pod if the test fails before its own teardown,
/// so that no sandbox process, shim, mount or cgroup outlives it.
struct PodGuard<'a> {
    cri: &'a Cri<'a>,
    id: String,
    done: bool,
}

impl Drop for PodGuard<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let socket = self.cri.containerd.socket();
        for call in ["stop-pod", "remove-pod"] {
            let _ = command(
                PYTHON,
                &[CLIENT, socket.to_str().unwrap_or_default(), call, &self.id],
            );
        }
    }
}

/// The message of each CRI log line (`TIMESTAMP STREAM TAG MESSAGE`).
fn log_messages(log: &str) -> Vec<(String, String)> {
    log.lines()
        .filter_map(|l| {
            let mut parts = l.splitn(4, ' ');
            let (_time, stream, _tag) = (parts.next()?, parts.next()?, parts.next()?);
            Some((
                stream.to_string(),
                parts.next().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

/// The cgroup directories under every hierarchy for a cgroupfs path.
fn cgroup_dirs(relative: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|e| e.path().join(relative.trim_start_matches('/')))
        .filter(|p| p.is_dir())
        .collect()
}

#[test]
fn cri_runtime_handler_runs_pods_through_sunaba() {
    let test = "cri_runtime_handler_runs_pods_through_sunaba";
    if !privileged(test) || !require(test, common::containerd::TOOLS) {
        return;
    }
    let grpc = Command::new(PYTHON).args(["-c", "import grpc"]).status();
    if !grpc.is_ok_and(|s| s.success()) {
        skip(test, "python3-grpcio is not installed (import grpc failed)");
        return;
    }

    // One busybox image serves as the sandbox ("pause") image, its
    // command a long sleep, and as the container's image. It is imported
    // into CRI's namespace: there is no registry to pull it from.
    let image = format!("localhost/sunaba-ctr:{}", unique("img"));
    let k8s_parent_existed = !cgroup_dirs("k8s.io").is_empty();
    let containerd = Containerd::start(|dir| cri_config(dir, &image));
    containerd.import_busybox("k8s.io", &image, Some(r#"["/bin/sleep", "1000000"]"#));
    let cri = Cri {
        containerd: &containerd,
    };
    let version = cri.json(&["version"]);
    assert_eq!(version["api"], "v1", "{version}");

    let logs = containerd.dir.path().join("pod-logs");
    std::fs::create_dir_all(&logs).expect("log dir");
    let uid = unique("uid");
    let pod = json!({
        "name": "sunaba-pod",
        "uid": uid,
        "namespace": "sunaba-test",
        "hostname": "sunaba-pod",
        "log_directory": logs,
        "handler": "sunaba",
    })
    .to_string();
    let pod_id = cri.call(&["run-pod", &pod]);
    let mut guard = PodGuard {
        cri: &cri,
        id: pod_id.clone(),
        done: false,
    };
    let status = cri.json(&["pod-status", &pod_id]);
    assert_eq!(status["state"], "SANDBOX_READY", "{status}");

    // A container sharing the pod's pid namespace (shareProcessNamespace):
    // it joins the sandbox's pid and ipc namespaces by path. It waits for
    // /tmp/go, which the test writes into its rootfs once it has looked at
    // sunaba's state: CRI deletes the task as soon as the program exits.
    let script = "while [ ! -e /tmp/go ]; do sleep 0.1; done; \
                  echo hello from cri; grep NoNewPrivs /proc/self/status; \
                  echo pid $$; tr '\\0' ' ' < /proc/1/cmdline; echo; \
                  echo to-stderr >&2; exit 3";
    let ctr = json!({
        "name": "probe",
        "image": image,
        "command": ["sh", "-c", script],
        "log_path": "probe.log",
        "pid": "POD",
    })
    .to_string();
    let ctr_id = cri.call(&["create", &pod_id, &pod, &ctr]);
    cri.call(&["start", &ctr_id]);

    // sunaba, not runc, holds both (CRI creates the tasks at RunPodSandbox
    // and StartContainer): its list under the shim's root for k8s.io shows
    // them, and each state.json has sunaba's own `pid_start` (runc's state
    // has no such field).
    let sunaba_root = containerd.dir.path().join("sunaba/k8s.io");
    let list = || {
        command(
            SUNABA,
            &[
                "--root",
                sunaba_root.to_str().expect("utf-8"),
                "list",
                "--format",
                "json",
            ],
        )
    };
    let listed = list();
    assert_eq!(listed.code, Some(0), "{listed:#?}");
    for id in [&pod_id, &ctr_id] {
        assert!(
            listed.stdout.contains(id.as_str()),
            "{id} not in {listed:#?}"
        );
        let state =
            std::fs::read_to_string(sunaba_root.join(id).join("state.json")).expect("state.json");
        let state: Value = serde_json::from_str(&state).expect("state JSON");
        assert!(
            state.get("pid_start").is_some(),
            "not sunaba's state: {state}"
        );
    }

    let rootfs = containerd
        .dir
        .path()
        .join("state/io.containerd.runtime.v2.task/k8s.io")
        .join(&ctr_id)
        .join("rootfs");
    std::fs::write(rootfs.join("tmp/go"), "").expect("release the container");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let status = cri.json(&["status", &ctr_id]);
        if status["state"] == "CONTAINER_EXITED" {
            break status;
        }
        assert!(Instant::now() < deadline, "never exited: {status}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status["exit_code"], 3, "{status}");
    assert_eq!(status["reason"], "Error", "{status}");
    let log_path = logs.join("probe.log");
    assert_eq!(status["log_path"], log_path.to_str().expect("utf-8"));
    let log = std::fs::read_to_string(&log_path).expect("container log");
    let lines = log_messages(&log);
    let stdout: Vec<&str> = lines
        .iter()
        .filter(|(s, _)| s == "stdout")
        .map(|(_, m)| m.as_str())
        .collect();
    assert!(stdout.contains(&"hello from cri"), "{log}");
    // CRI leaves no_new_privs off unless the pod asks for it.
    assert!(stdout.contains(&"NoNewPrivs:\t0"), "{log}");
    // In the pod's pid namespace, the sandbox's process is pid 1.
    assert!(stdout.contains(&"/bin/sleep 1000000 "), "{log}");
    assert!(!stdout.contains(&"pid 1"), "{log}");
    assert!(
        lines.iter().any(|(s, m)| s == "stderr" && m == "to-stderr"),
        "{log}"
    );

    // Teardown as the kubelet does it: container, then pod.
    cri.call(&["stop", &ctr_id, "10"]);
    cri.call(&["remove", &ctr_id]);
    cri.call(&["stop-pod", &pod_id]);
    cri.call(&["remove-pod", &pod_id]);
    guard.done = true;
    let listed = list();
    assert_eq!(listed.stdout.trim(), "[]", "{listed:#?}");
    for id in [&pod_id, &ctr_id] {
        let left = cgroup_dirs(&format!("k8s.io/{id}"));
        assert!(left.is_empty(), "cgroups left for {id}: {left:?}");
    }
    // The shared parent `k8s.io` outlives its containers, as with runc:
    // a later `delete` does not know that its `create` made the parent.
    // Remove it when this test made it (it is empty by now).
    if !k8s_parent_existed {
        for dir in cgroup_dirs("k8s.io") {
            std::fs::remove_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        }
    }

    let dir = containerd.dir.path().to_path_buf();
    drop(guard);
    drop(containerd);
    let left = mounts_under(&dir);
    assert!(left.is_empty(), "mounts left behind: {left:?}");
}
