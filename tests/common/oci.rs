//! A driver for any runtime with runc's command line, as the OCI
//! conformance tests use it.
//!
//! The runtime is `SUNABA_OCI_RUNTIME` (a path, or a name looked up in
//! `PATH`), by default the `sunaba` binary of this build. Every invocation
//! gets a private `--root` directory, so tests see neither each other's
//! containers nor the host's. Each invocation's stdout and stderr go to
//! files rather than pipes: `create` hands its stdio to the container
//! process (runtime.md leaves stdio to the runtime; runc passes its own
//! through when `terminal` is false), and a pipe held open by a container
//! would block the reader until that container exits.
//!
//! Nothing is left behind: a [`Container`] runs `delete --force` when
//! dropped and, if that fails, kills the init process by pid after checking
//! that the pid still names the same process. A runtime invocation that
//! does not return within [`GUARD`] is killed by pid and fails the test.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::bundle::Bundle;
use super::{temp_dir, unique};

/// How long one runtime invocation, or a wait for a container to stop,
/// may take before the test gives up.
pub const GUARD: Duration = Duration::from_secs(30);

/// The runtime under test: `SUNABA_OCI_RUNTIME`, else this build's sunaba.
pub fn runtime_program() -> String {
    std::env::var("SUNABA_OCI_RUNTIME").unwrap_or_else(|_| super::SUNABA.to_string())
}

/// What one runtime invocation gave back.
#[derive(Debug)]
pub struct Outcome {
    /// The command line, for failure messages.
    pub argv: Vec<String>,
    /// The runtime's exit status.
    pub status: ExitStatus,
    /// Everything written to the invocation's stdout.
    pub stdout: String,
    /// Everything written to the invocation's stderr.
    pub stderr: String,
}

impl Outcome {
    /// True when the runtime exited 0.
    pub fn ok(&self) -> bool {
        self.status.success()
    }

    /// Panics with the whole outcome unless the runtime exited 0.
    #[track_caller]
    pub fn expect_success(self) -> Self {
        assert!(self.ok(), "runtime failed: {self:#?}");
        self
    }

    /// Panics with the whole outcome if the runtime exited 0.
    #[track_caller]
    pub fn expect_failure(self) -> Self {
        assert!(
            !self.ok(),
            "runtime succeeded but should have failed: {self:#?}"
        );
        self
    }

    /// Parses stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }
}

/// One runtime with its private state directory.
pub struct Runtime {
    program: String,
    scratch: tempfile::TempDir,
    next: AtomicUsize,
    env: Vec<(String, String)>,
}

impl Default for Runtime {
    fn default() -> Self {
        Self::new()
    }
}

impl Runtime {
    /// The runtime under test, with a fresh `--root`.
    pub fn new() -> Self {
        Runtime {
            program: runtime_program(),
            scratch: temp_dir(),
            next: AtomicUsize::new(0),
            env: Vec::new(),
        }
    }

    /// Sets a variable in the environment of every runtime invocation
    /// (not of the container: its environment is `process.env` alone).
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// The directory passed as `--root`. It sits inside a private scratch
    /// directory, so a runtime that lets an id escape its root (`../x`)
    /// writes somewhere the test can still see and removes.
    pub fn root(&self) -> PathBuf {
        self.scratch.path().join("state")
    }

    /// The private directory `root()` lives in.
    pub fn scratch(&self) -> &Path {
        self.scratch.path()
    }

    /// Whether the runtime under test is this build's sunaba (not a peer
    /// the suite is checked against), for what only sunaba promises.
    pub fn is_sunaba(&self) -> bool {
        self.program == super::SUNABA
    }

    /// A fresh container id for this test.
    pub fn new_id(&self) -> String {
        unique("oci")
    }

    /// Runs `RUNTIME --root ROOT args...` to the end, killing it by pid
    /// after [`GUARD`].
    #[track_caller]
    pub fn exec(&self, args: &[&str]) -> Outcome {
        self.exec_with(args, |_| {})
    }

    /// Like `exec`, with a chance to adjust the command (environment).
    #[track_caller]
    pub fn exec_with(&self, args: &[&str], adjust: impl FnOnce(&mut Command)) -> Outcome {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        let out_path = self.scratch().join(format!("out-{n}"));
        let err_path = self.scratch().join(format!("err-{n}"));
        let outcome = self.exec_into(args, &out_path, &err_path, adjust);
        let _ = std::fs::remove_file(&out_path);
        let _ = std::fs::remove_file(&err_path);
        outcome
    }

    /// Runs the runtime with stdout and stderr sent to the given files,
    /// which stay in place (a container may keep writing to them).
    #[track_caller]
    pub fn exec_into(
        &self,
        args: &[&str],
        out_path: &Path,
        err_path: &Path,
        adjust: impl FnOnce(&mut Command),
    ) -> Outcome {
        let root = self.root();
        let root = root.to_str().expect("utf-8 root");
        let mut argv = vec![self.program.clone(), "--root".into(), root.into()];
        argv.extend(args.iter().map(|a| a.to_string()));

        let out = File::create(out_path).expect("create stdout file");
        let err = File::create(err_path).expect("create stderr file");
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        for (name, value) in &self.env {
            cmd.env(name, value);
        }
        adjust(&mut cmd);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {argv:?}: {e}"));

        let deadline = Instant::now() + GUARD;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for the runtime") {
                break status;
            }
            if Instant::now() >= deadline {
                // Child::kill signals this child's own pid, nothing else.
                let _ = child.kill();
                let _ = child.wait();
                panic!("{argv:?} still running after {GUARD:?}; killed");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        Outcome {
            argv,
            status,
            stdout: read_lossy(out_path),
            stderr: read_lossy(err_path),
        }
    }

    /// `create --bundle B ID`, after writing the bundle's config. The
    /// container's stdout and stderr are files read by [`Container::stdout`]
    /// and [`Container::stderr`]. Panics if create fails.
    #[track_caller]
    pub fn create<'a>(&'a self, bundle: &'a Bundle) -> Container<'a> {
        self.create_with(bundle, &[])
    }

    /// `create` with extra options placed before the id.
    #[track_caller]
    pub fn create_with<'a>(&'a self, bundle: &'a Bundle, options: &[&str]) -> Container<'a> {
        let id = self.new_id();
        let (container, outcome) = self.try_create(bundle, &id, options);
        outcome.expect_success();
        container
    }

    /// `create` that may fail: the guard exists either way, so whatever the
    /// runtime left is deleted.
    pub fn try_create<'a>(
        &'a self,
        bundle: &'a Bundle,
        id: &str,
        options: &[&str],
    ) -> (Container<'a>, Outcome) {
        self.launch("create", bundle, id, options)
    }

    /// `run --detach --bundle B ID`.
    #[track_caller]
    pub fn run_detached<'a>(&'a self, bundle: &'a Bundle) -> Container<'a> {
        let id = self.new_id();
        let (container, outcome) = self.launch("run", bundle, &id, &["--detach"]);
        outcome.expect_success();
        container
    }

    /// `run --bundle B ID` in the foreground: returns when the container's
    /// process has exited, with the runtime's outcome.
    pub fn run_foreground<'a>(&'a self, bundle: &'a Bundle) -> (Container<'a>, Outcome) {
        let id = self.new_id();
        self.launch("run", bundle, &id, &[])
    }

    fn launch<'a>(
        &'a self,
        command: &str,
        bundle: &'a Bundle,
        id: &str,
        options: &[&str],
    ) -> (Container<'a>, Outcome) {
        bundle.write_config();
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        let stdout = self.scratch().join(format!("container-{n}.out"));
        let stderr = self.scratch().join(format!("container-{n}.err"));
        let bundle_path = bundle.path().to_str().expect("utf-8 bundle path");

        let mut args = vec![command, "--bundle", bundle_path];
        args.extend_from_slice(options);
        args.push(id);

        // The guard exists before the runtime runs, so that a create that
        // times out still gets its container force-deleted on unwind.
        let mut container = Container {
            runtime: self,
            bundle,
            id: id.to_string(),
            stdout: stdout.clone(),
            stderr: stderr.clone(),
            init: None,
        };
        let outcome = self.exec_into(&args, &stdout, &stderr, |_| {});
        container.remember_init();
        (container, outcome)
    }

    /// Creates and starts a container from `bundle`, waits for its process
    /// to exit, deletes it, and returns what it wrote to stdout and stderr.
    #[track_caller]
    pub fn output_of(&self, bundle: &Bundle) -> (String, String) {
        let container = self.create(bundle);
        container.start();
        container.wait_stopped();
        let output = (container.stdout(), container.stderr());
        container.try_delete(true);
        output
    }

    /// The ids `list --format json` reports.
    #[track_caller]
    pub fn list_ids(&self) -> Vec<String> {
        let listed = self
            .exec(&["list", "--format", "json"])
            .expect_success()
            .json();
        // runc prints `null` rather than `[]` when there is no container.
        let entries = listed.as_array().cloned().unwrap_or_default();
        entries
            .iter()
            .filter_map(|c| c["id"].as_str().map(str::to_string))
            .collect()
    }
}

/// A container this test created; deleted (forcibly) when dropped. It
/// borrows its bundle, so the rootfs cannot vanish while it exists.
pub struct Container<'a> {
    runtime: &'a Runtime,
    bundle: &'a Bundle,
    id: String,
    stdout: PathBuf,
    stderr: PathBuf,
    init: Option<(i32, u64)>,
}

impl Container<'_> {
    /// The bundle the container was made from.
    pub fn bundle(&self) -> &Bundle {
        self.bundle
    }

    /// The container id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `state ID`, whatever its outcome.
    pub fn try_state(&self) -> Outcome {
        self.runtime.exec(&["state", &self.id])
    }

    /// `state ID` as JSON; panics if it fails.
    #[track_caller]
    pub fn state(&self) -> Value {
        self.try_state().expect_success().json()
    }

    /// The `status` field of the state.
    #[track_caller]
    pub fn status(&self) -> String {
        let state = self.state();
        state["status"]
            .as_str()
            .unwrap_or_else(|| panic!("state has no status: {state}"))
            .to_string()
    }

    /// The `pid` field of the state; panics unless it is a positive integer.
    #[track_caller]
    pub fn pid(&self) -> i32 {
        let state = self.state();
        let pid = state["pid"]
            .as_i64()
            .unwrap_or_else(|| panic!("state has no pid: {state}"));
        assert!(pid > 0, "state pid is not positive: {state}");
        i32::try_from(pid).expect("pid fits i32")
    }

    /// `start ID`, whatever its outcome.
    pub fn try_start(&self) -> Outcome {
        self.runtime.exec(&["start", &self.id])
    }

    /// `start ID`; panics if it fails.
    #[track_caller]
    pub fn start(&self) {
        self.try_start().expect_success();
    }

    /// `kill ID SIGNAL`, whatever its outcome.
    pub fn try_kill(&self, signal: &str) -> Outcome {
        self.runtime.exec(&["kill", &self.id, signal])
    }

    /// `kill ID SIGNAL`; panics if it fails.
    #[track_caller]
    pub fn kill(&self, signal: &str) {
        self.try_kill(signal).expect_success();
    }

    /// `delete ID` (with `--force` first if `force`), whatever its outcome.
    pub fn try_delete(&self, force: bool) -> Outcome {
        if force {
            self.runtime.exec(&["delete", "--force", &self.id])
        } else {
            self.runtime.exec(&["delete", &self.id])
        }
    }

    /// `delete ID`; panics if it fails.
    #[track_caller]
    pub fn delete(&self) {
        self.try_delete(false).expect_success();
    }

    /// Polls `state` until the status is `stopped` (or the state is gone,
    /// for runtimes that clean up after a foreground run), for at most
    /// [`GUARD`].
    #[track_caller]
    pub fn wait_stopped(&self) {
        let deadline = Instant::now() + GUARD;
        loop {
            let outcome = self.try_state();
            if !outcome.ok() || outcome.json()["status"] == "stopped" {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "container {} not stopped after {GUARD:?}: {}",
                self.id,
                outcome.stdout
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the container, waits for its process to exit, and returns
    /// what it wrote to stdout.
    #[track_caller]
    pub fn start_and_wait(&self) -> String {
        self.start();
        self.wait_stopped();
        self.stdout()
    }

    /// What the container process has written to stdout so far.
    pub fn stdout(&self) -> String {
        read_lossy(&self.stdout)
    }

    /// What the container process (and the runtime, during create) has
    /// written to stderr so far.
    pub fn stderr(&self) -> String {
        read_lossy(&self.stderr)
    }

    /// The init pid and its start time, kept so that the drop guard can
    /// kill it even when the runtime has lost track of the container.
    fn remember_init(&mut self) {
        let outcome = self.try_state();
        if !outcome.ok() {
            return;
        }
        let Ok(state) = serde_json::from_str::<Value>(&outcome.stdout) else {
            return;
        };
        let Some(pid) = state["pid"].as_i64().and_then(|p| i32::try_from(p).ok()) else {
            return;
        };
        if let Some(start) = start_time(pid).filter(|_| pid > 0) {
            self.init = Some((pid, start));
        }
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let deleted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.runtime.exec(&["delete", "--force", &self.id]).ok()
        }))
        .unwrap_or(false);
        if deleted {
            return;
        }
        // The runtime could not delete it (or the container was already
        // gone): make sure its init is dead. The start time guards against
        // a reused pid.
        if let Some((pid, start)) = self.init {
            if start_time(pid) == Some(start) {
                // SAFETY: kill has no memory-safety preconditions; the pid
                // names the same process as at create (same start time).
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

/// Field 22 of `/proc/PID/stat`: when the process started, in clock ticks.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after it follow
    // its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// The cgroup file of `controller` holding `v1_file` on a hybrid or v1
/// host, or `v2_file` on a pure cgroup v2 host, for a container whose
/// `linux.cgroupsPath` is the absolute `cgroups_path`.
pub fn cgroup_file(cgroups_path: &str, controller: &str, v1_file: &str, v2_file: &str) -> PathBuf {
    let relative = cgroups_path.trim_start_matches('/');
    if cgroup_v2_has(controller) {
        Path::new("/sys/fs/cgroup").join(relative).join(v2_file)
    } else {
        Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(relative)
            .join(v1_file)
    }
}

/// The directories a container with `cgroups_path` may have in each
/// hierarchy, for the leftover check.
pub fn cgroup_dirs(cgroups_path: &str) -> Vec<PathBuf> {
    let relative = cgroups_path.trim_start_matches('/');
    let mut dirs = vec![Path::new("/sys/fs/cgroup").join(relative)];
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        dirs.extend(entries.flatten().map(|e| e.path().join(relative)));
    }
    dirs.retain(|d| d.is_dir());
    dirs
}

/// True on a unified (v2) host whose root cgroup offers `controller`.
/// Whether the host is pure cgroup v2 with `controller` in its root.
pub fn cgroup_v2_has(controller: &str) -> bool {
    std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
        .map(|c| c.split_whitespace().any(|w| w == controller))
        .unwrap_or(false)
}
