//! What every integration test needs: the root check with its skip rule,
//! a runner for the real `sunaba` binary that guards against hangs, private
//! temporary directories, and a check that a run left nothing behind (no
//! cgroup under `sunaba/`, no process of the sandbox).
//!
//! Each sandbox gets `SUNABA_TEST_MARKER=<unique>` in its environment. The
//! sandboxed processes inherit it, and `sunaba` itself does not have it (it
//! only sees the flag in its arguments), so scanning `/proc/*/environ` for it
//! finds exactly the processes a run created.

// Each test file uses a different part of this module.
#![allow(dead_code)]

pub mod bundle;
pub mod containerd;
pub mod oci;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// The binary under test.
pub const SUNABA: &str = env!("CARGO_BIN_EXE_sunaba");

/// How long any one run may take before the test kills it and fails.
const GUARD: Duration = Duration::from_secs(60);

/// How long sandbox processes and cgroups get to disappear after `sunaba`
/// has exited. Removal is synchronous in `sunaba`, so this only absorbs the
/// kernel's own asynchronous teardown.
const SETTLE: Duration = Duration::from_secs(5);

/// True when the test may run; otherwise prints the reason and returns
/// false, or panics when `REQUIRE_PRIVILEGED_TESTS=1`.
pub fn privileged(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    skip(test, "needs root (namespaces, mounts and cgroups)");
    false
}

/// Reports a skipped test, or fails it when privileged tests are required.
pub fn skip(test: &str, reason: &str) {
    if std::env::var("REQUIRE_PRIVILEGED_TESTS").as_deref() == Ok("1") {
        panic!("{test}: {reason} (REQUIRE_PRIVILEGED_TESTS=1 forbids skipping)");
    }
    println!("skipped: {test}: {reason}");
}

/// A name no other test or process on the machine uses.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{prefix}-{}-{n}-{nanos:08x}", std::process::id())
}

/// A private directory, removed when the test ends.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("sunaba-it-")
        .tempdir()
        .expect("create temp dir")
}

/// Writes into `dir` a profile that is `default` plus a read-only /sys
/// (`[filesystem] sys = true`), and returns its path.
pub fn profile_with_sys(dir: &Path) -> PathBuf {
    let profile = dir.join("with-sys.toml");
    std::fs::write(
        &profile,
        "description = \"default with a read-only /sys\"\nextends = \"default\"\n[filesystem]\nsys = true\n",
    )
    .expect("write profile");
    profile
}

/// What a finished run gave back.
#[derive(Debug)]
pub struct Output {
    /// The exit status of the outermost process started.
    pub status: ExitStatus,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

impl Output {
    /// The exit code, or a panic naming the signal that ended the process.
    pub fn code(&self) -> i32 {
        match self.status.code() {
            Some(c) => c,
            None => panic!("killed by a signal: {self:?}"),
        }
    }

    /// Panics with the whole output unless the exit code is `want`.
    pub fn expect_code(&self, want: i32) -> &Self {
        assert_eq!(self.status.code(), Some(want), "{self:#?}");
        self
    }

    /// Panics unless the run exited 0.
    pub fn expect_success(&self) -> &Self {
        self.expect_code(0)
    }

    /// The lines of stderr that sunaba itself wrote.
    pub fn sunaba_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("sunaba: "))
            .collect()
    }
}

/// One invocation of `sunaba run`, built up and then run or spawned.
pub struct Sandbox {
    wrapper: Vec<String>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    cwd: Option<PathBuf>,
    data_dir: tempfile::TempDir,
    marker: String,
}

impl Sandbox {
    /// `sunaba run ARGS`, with a private `SUNABA_DATA_DIR`.
    pub fn new(args: &[&str]) -> Self {
        let data_dir = temp_dir();
        Sandbox {
            wrapper: Vec::new(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: Vec::new(),
            cwd: None,
            data_dir,
            marker: unique("marker"),
        }
    }

    /// Runs sunaba through `program args...`, which must end by exec'ing
    /// its last argument list: `"$@"` in `sh -c '... exec "$@"' sh`, so that
    /// the PID stays the one the leftover check looks for.
    pub fn wrapped(mut self, wrapper: &[&str]) -> Self {
        self.wrapper = wrapper.iter().map(|a| a.to_string()).collect();
        self
    }

    /// Sets an environment variable of sunaba (not of the sandbox). A
    /// `SUNABA_DATA_DIR` given here replaces the private one, for tests
    /// that look at the volumes after the run.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Runs sunaba in `dir`.
    pub fn cwd(mut self, dir: &Path) -> Self {
        self.cwd = Some(dir.to_path_buf());
        self
    }

    /// The marker every sandboxed process carries in its environment.
    pub fn marker(&self) -> &str {
        &self.marker
    }

    fn command(&self) -> Command {
        let mut argv: Vec<String> = self.wrapper.clone();
        argv.push(SUNABA.into());
        argv.push("run".into());
        argv.push("-e".into());
        argv.push(format!("SUNABA_TEST_MARKER={}", self.marker));
        argv.extend(self.args.iter().cloned());
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .env("SUNABA_DATA_DIR", self.data_dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        cmd
    }

    /// Starts sunaba without waiting for it.
    pub fn spawn(self) -> Running {
        let mut child = self.command().spawn().expect("spawn sunaba");
        let out = drain(child.stdout.take().expect("piped stdout"));
        let err = drain(child.stderr.take().expect("piped stderr"));
        Running {
            child: Some(child),
            out: Some(out),
            err: Some(err),
            sandbox: self,
        }
    }

    /// Runs sunaba to the end and checks that it left nothing behind.
    pub fn run(self) -> Output {
        self.spawn().wait()
    }
}

/// Reads a pipe to its end on a thread of its own.
fn drain(mut pipe: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
    });
    rx
}

/// What a drained pipe held once sunaba has exited. A process that still
/// holds the pipe (a sandboxed one that outlived sunaba) keeps it from
/// ending: the test fails naming it instead of hanging.
fn drained(pipe: &Receiver<String>, name: &str, marker: &str) -> String {
    match pipe.recv_timeout(SETTLE) {
        Ok(text) => text,
        Err(_) => {
            let holders: Vec<(i32, String)> = sandboxed_processes(marker)
                .into_iter()
                .map(|p| (p, cmdline(p)))
                .collect();
            kill_sandboxed(marker);
            panic!("sunaba's {name} still open {SETTLE:?} after it exited; sandboxed processes: {holders:?}");
        }
    }
}

/// A sunaba process that is still running; killed by PID if dropped.
pub struct Running {
    child: Option<Child>,
    out: Option<Receiver<String>>,
    err: Option<Receiver<String>>,
    sandbox: Sandbox,
}

impl Running {
    /// The PID of the outermost process (sunaba, once a wrapper exec'd it).
    pub fn pid(&self) -> i32 {
        let child = self.child.as_ref().expect("running");
        i32::try_from(child.id()).expect("pid fits i32")
    }

    /// The marker in the environment of the sandboxed processes.
    pub fn marker(&self) -> &str {
        self.sandbox.marker()
    }

    /// Sends `signal` to sunaba itself.
    pub fn signal(&self, signal: i32) {
        // SAFETY: the PID is our own unreaped child, so it cannot have been
        // reused by another process.
        let rc = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(rc, 0, "kill({}, {signal})", self.pid());
    }

    /// Waits until a sandboxed process whose command line contains `word`
    /// exists, and returns its PID.
    pub fn wait_for_process(&self, word: &str) -> i32 {
        let deadline = Instant::now() + GUARD;
        loop {
            let found = sandboxed_processes(self.marker())
                .into_iter()
                .find(|&pid| cmdline(pid).contains(word));
            if let Some(pid) = found {
                return pid;
            }
            assert!(
                Instant::now() < deadline,
                "no sandboxed process running {word:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for sunaba to exit (killing it by PID after the guard time),
    /// then checks that nothing of the run is left.
    pub fn wait(self) -> Output {
        let output = self.wait_only();
        output.assert_nothing_left();
        output.output
    }

    /// Waits for sunaba to exit without the leftover check.
    pub fn wait_only(mut self) -> Finished {
        let pid = self.pid();
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + GUARD;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for sunaba") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                kill_sandboxed(self.sandbox.marker());
                panic!("sunaba (pid {pid}) still running after {GUARD:?}; killed");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let marker = self.sandbox.marker.clone();
        let stdout = drained(&self.out.take().expect("stdout"), "stdout", &marker);
        let stderr = drained(&self.err.take().expect("stderr"), "stderr", &marker);
        Finished {
            output: Output {
                status,
                stdout,
                stderr,
            },
            pid,
            marker: self.sandbox.marker.clone(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            kill_sandboxed(self.sandbox.marker());
        }
    }
}

/// A run that has ended, before or after the leftover check.
pub struct Finished {
    /// What it gave back.
    pub output: Output,
    /// The PID sunaba had.
    pub pid: i32,
    /// The marker of its sandboxed processes.
    pub marker: String,
}

impl Finished {
    /// Panics if a cgroup or a process of this run is still there.
    pub fn assert_nothing_left(&self) {
        let deadline = Instant::now() + SETTLE;
        loop {
            let cgroups = leftover_cgroups(self.pid);
            let procs = sandboxed_processes(&self.marker);
            if cgroups.is_empty() && procs.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                remove_cgroups(&cgroups);
                kill_sandboxed(&self.marker);
                panic!(
                    "left behind: cgroups {cgroups:?}, processes {:?}\n{:#?}",
                    procs.iter().map(|&p| (p, cmdline(p))).collect::<Vec<_>>(),
                    self.output
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The cgroups sunaba with this PID made: it names them `run-<pid>-<n>`
/// under `sunaba/` in every hierarchy.
pub fn leftover_cgroups(sunaba_pid: i32) -> Vec<PathBuf> {
    let prefix = format!("run-{sunaba_pid}-");
    let mut found = Vec::new();
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return found;
    };
    let mut parents: Vec<PathBuf> = vec![PathBuf::from("/sys/fs/cgroup/sunaba")];
    parents.extend(hierarchies.flatten().map(|h| h.path().join("sunaba")));
    for parent in parents {
        let Ok(entries) = std::fs::read_dir(&parent) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) && entry.path().is_dir() {
                found.push(entry.path());
            }
        }
    }
    found
}

/// Removes cgroups a failed test found, so one failure does not pile up.
pub fn remove_cgroups(dirs: &[PathBuf]) {
    for dir in dirs {
        let _ = std::fs::remove_dir(dir);
    }
}

/// The PIDs of live processes whose environment holds the marker.
pub fn sandboxed_processes(marker: &str) -> Vec<i32> {
    let needle = format!("SUNABA_TEST_MARKER={marker}");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| env.split(|&b| b == 0).any(|var| var == needle.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}

/// The command line of a process, arguments joined by spaces.
pub fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| {
            c.split(|&b| b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

fn kill_sandboxed(marker: &str) {
    for pid in sandboxed_processes(marker) {
        // SAFETY: kill has no memory-safety preconditions; at worst the
        // PID was reused, which the marker makes all but impossible.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// Whether `program` exists on the host (and so, bound read-only, inside).
pub fn have(program: &str) -> bool {
    ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
        .iter()
        .any(|d| Path::new(d).join(program).exists())
}

/// Skips (or fails under `REQUIRE_PRIVILEGED_TESTS=1`) when a program the
/// test runs inside the sandbox is not installed.
pub fn require(test: &str, programs: &[&str]) -> bool {
    for p in programs {
        if !have(p) {
            skip(test, &format!("{p} is not installed"));
            return false;
        }
    }
    true
}
