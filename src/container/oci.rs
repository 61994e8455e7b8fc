//! The runc-compatible lifecycle over bundles: `create` leaves the
//! container's process waiting for `start` with its namespaces, mounts and
//! cgroup in place (runtime-spec `runtime.md`, "Lifecycle"); `start` lets
//! it exec; `state`, `kill`, `delete`, `list` and `ps` read and act on the
//! state kept under `--root`.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::socket::{
    bind, listen, socket, AddressFamily, Backlog, SockFlag, SockType, UnixAddr,
};
use oci_spec::runtime::Spec;
use serde_json::json;
use tracing::{debug, info};

use super::run::{classify, launch, supervise, Launched, Placement};
use super::signals::Signals;
use super::state::{list_ids, process_start_time, Saved, StateDir, Status};
use super::terminal::Relay;
use super::Exit;
use crate::cgroups::{Cgroup, Layout};
use crate::config::bundle;
use crate::config::RunOptions;
use crate::process::{self, ChildPlan};
use crate::{sys, Error};

/// The runtime-spec version whose state this runtime reports.
pub const OCI_VERSION: &str = "1.2.0";

/// How long `delete` waits for a killed container's init to exit.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Options of `create` (and `run`).
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// The bundle directory.
    pub bundle: PathBuf,
    /// Where to write the init's pid.
    pub pid_file: Option<PathBuf>,
    /// A unix socket to send the pseudo-terminal's master to.
    pub console_socket: Option<PathBuf>,
    /// Descriptors after stderr to pass on to the container's program.
    pub preserve_fds: u32,
}

fn invalid(what: impl Into<String>) -> Error {
    Error::Container(what.into())
}

/// The current time in RFC 3339, UTC, to the second: what `state` reports as
/// `created` and the JSON log lines carry.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = i64::try_from(days).unwrap_or_default() + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The signal mask the runtime has now, for the program to start with.
fn current_mask() -> libc::sigset_t {
    let mut mask = nix::sys::signal::SigSet::empty();
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_BLOCK,
        None,
        Some(&mut mask),
    );
    *mask.as_ref()
}

fn listen_for_start(path: &Path) -> Result<OwnedFd, Error> {
    let io = |e: nix::errno::Errno| Error::Io {
        what: format!("listen on {}", path.display()),
        source: e.into(),
    };
    let fd = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(io)?;
    let address = sys::socket_address(path).map_err(|e| Error::Io {
        what: format!("listen on {}", path.display()),
        source: e,
    })?;
    bind(fd.as_raw_fd(), &address.addr).map_err(io)?;
    listen(&fd, Backlog::new(1).map_err(io)?).map_err(io)?;
    Ok(fd)
}

/// Sends the pseudo-terminal's master to the `--console-socket`, as runc
/// does: one SCM_RIGHTS message on a stream connection.
fn send_console(socket_path: &Path, master: &OwnedFd) -> Result<(), Error> {
    use nix::sys::socket::{connect, sendmsg, ControlMessage, MsgFlags};
    let io = |e: nix::errno::Errno| Error::Io {
        what: format!(
            "send the terminal to --console-socket {}",
            socket_path.display()
        ),
        source: e.into(),
    };
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(io)?;
    let address = sys::socket_address(socket_path).map_err(|e| Error::Io {
        what: format!(
            "send the terminal to --console-socket {}",
            socket_path.display()
        ),
        source: e,
    })?;
    connect(fd.as_raw_fd(), &address.addr).map_err(io)?;
    let fds = [master.as_raw_fd()];
    let name = b"/dev/pts/0";
    let iov = [std::io::IoSlice::new(name)];
    sendmsg::<UnixAddr>(
        fd.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(io)?;
    Ok(())
}

fn write_pid_file(path: &Path, pid: i32) -> Result<(), Error> {
    let io = |e| Error::Io {
        what: format!("write pid file {}", path.display()),
        source: e,
    };
    let tmp = path.with_extension("sunaba-tmp");
    std::fs::write(&tmp, pid.to_string()).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// A created container, still owned by this process.
struct Created {
    launched: Launched,
    saved: Saved,
    spec: Spec,
}

fn create_in(dir: &StateDir, opts: &CreateOptions, options: &RunOptions) -> Result<Created, Error> {
    let bundle = std::fs::canonicalize(&opts.bundle).map_err(|e| Error::Io {
        what: format!("open bundle {}", opts.bundle.display()),
        source: e,
    })?;
    let spec = bundle::load(&bundle, dir.id())?;
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    if terminal && opts.console_socket.is_none() {
        return Err(invalid(
            "process.terminal is true but no --console-socket was given to receive the terminal",
        ));
    }

    let listener = listen_for_start(&dir.start_socket())?;
    let mut plan = ChildPlan::from_spec(&spec, false)?;
    plan.die_with_runtime = false;
    plan.start_socket = Some(listener.as_raw_fd());
    plan.preserve_fds = opts.preserve_fds;
    let launched = launch(&spec, &mut plan, options, &current_mask(), || {})?;
    drop(listener);

    match record(dir, opts, &spec, &launched, bundle) {
        Ok(saved) => Ok(Created {
            launched,
            saved,
            spec,
        }),
        Err(e) => {
            // The container must not outlive a failed create.
            let _ = launched.sandbox.signal(libc::SIGKILL);
            let _ = launched.sandbox.wait();
            Err(e)
        }
    }
}

/// The steps of `create` after the container's process waits: hand out
/// the terminal, run the create-time hooks, record the state.
fn record(
    dir: &StateDir,
    opts: &CreateOptions,
    spec: &Spec,
    launched: &Launched,
    bundle: PathBuf,
) -> Result<Saved, Error> {
    if let (Some(master), Some(path)) = (&launched.terminal, &opts.console_socket) {
        send_console(path, master)?;
    }
    let pid = launched.sandbox.pid;
    let saved = Saved {
        id: dir.id().to_string(),
        pid,
        pid_start: process_start_time(pid).ok_or_else(|| {
            invalid(format!(
                "the container's init (pid {pid}) exited during create"
            ))
        })?,
        bundle,
        rootfs: spec
            .root()
            .as_ref()
            .map(|r| r.path().clone())
            .unwrap_or_default(),
        created: now_rfc3339(),
        owner: nix::unistd::geteuid().as_raw(),
        cgroup: spec.linux().as_ref().and_then(|l| l.cgroups_path().clone()),
        annotations: spec.annotations().clone().unwrap_or_default(),
        hooks: spec.hooks().clone(),
        config: Some(spec.clone()),
    };
    // Recorded before the hooks run: a create killed while they run leaves a
    // state that `delete --force` can clean up, its waiting init and cgroup
    // included, rather than a bare directory.
    dir.write(&saved)?;
    let state = state_value(&saved, Status::Creating).to_string();
    if let Some(hooks) = spec.hooks() {
        // prestart is deprecated in favour of createRuntime; both run here,
        // in the runtime's namespaces, in that order.
        crate::hooks::run(
            "prestart",
            hooks.prestart().as_deref().unwrap_or_default(),
            &state,
        )?;
        crate::hooks::run(
            "createRuntime",
            hooks.create_runtime().as_deref().unwrap_or_default(),
            &state,
        )?;
        if hooks
            .create_container()
            .as_ref()
            .is_some_and(|h| !h.is_empty())
        {
            launched.sandbox.run_create_container_hooks(&state)?;
        }
    }
    if let Some(path) = &opts.pid_file {
        write_pid_file(path, pid)?;
    }
    Ok(saved)
}

/// `create`: sets the container up and leaves its process waiting for
/// `start`. On any error nothing is left: no process, cgroup or state.
///
/// # Errors
///
/// An invalid or existing id, an unusable bundle, or any setup failure.
pub fn create(root: &Path, id: &str, opts: &CreateOptions) -> Result<(), Error> {
    let dir = StateDir::create(root, id)?;
    match create_in(&dir, opts, &RunOptions::default()) {
        Ok(created) => {
            info!(container_id = id, pid = created.saved.pid, bundle = %created.saved.bundle.display(), "container created");
            created.launched.cgroup.keep();
            Ok(())
        }
        Err(e) => {
            let _ = dir.remove();
            Err(e)
        }
    }
}

fn wrong_state(id: &str, status: Status, op: &str) -> Error {
    invalid(format!("cannot {op} container {id:?}: it is {status}"))
}

/// `kill`'s refusal for a container whose init is gone. containerd's shim
/// recognises runc's wording, "container not running", and takes it as
/// "the process already finished"; any other wording turns the routine
/// stop of an exited container (CRI's StopContainer, RemoveContainer and
/// StopPodSandbox all send one) into a failure.
fn not_running(id: &str, status: Status) -> Error {
    invalid(format!(
        "cannot signal container {id:?}: container not running (it is {status})"
    ))
}

/// `start`: lets a created container exec its program.
///
/// # Errors
///
/// No such container, one that is not in the created state, or its exec
/// failing.
pub fn start(root: &Path, id: &str) -> Result<(), Error> {
    let dir = StateDir::open(root, id)?;
    let saved = dir.read()?;
    match status_of(&dir, &saved) {
        Status::Created => {}
        status => return Err(wrong_state(id, status, "start")),
    }
    let state = state_value(&saved, Status::Created).to_string();
    let result = process::start_created(&dir.start_socket(), &state);
    let _ = std::fs::remove_file(dir.start_socket());
    result?;
    info!(container_id = id, pid = saved.pid, "container started");
    run_post_hooks("poststart", &saved, Status::Running);
    Ok(())
}

/// Runs poststart or poststop hooks. Their failure does not undo the
/// operation (runtime-spec `config.md`): it is logged as a warning.
fn run_post_hooks(kind: &'static str, saved: &Saved, status: Status) {
    let hooks = saved.hooks.as_ref().and_then(|h| match kind {
        "poststart" => h.poststart().clone(),
        _ => h.poststop().clone(),
    });
    if let Some(hooks) = hooks {
        if let Err(e) = crate::hooks::run(kind, &hooks, &state_value(saved, status).to_string()) {
            tracing::warn!(container_id = %saved.id, "{e}");
        }
    }
}

/// The status, with "running" refined to "paused" when the container's
/// cgroup is frozen.
fn status_of(dir: &StateDir, saved: &Saved) -> Status {
    let status = dir.status(saved);
    let frozen = || {
        let rel = saved.cgroup.as_ref()?;
        let layout = Layout::detect().ok()?;
        Some(crate::cgroups::freezer::is_frozen(&layout, rel))
    };
    if status == Status::Running && frozen() == Some(true) {
        Status::Paused
    } else {
        status
    }
}

fn set_paused(root: &Path, id: &str, paused: bool) -> Result<(), Error> {
    let dir = StateDir::open(root, id)?;
    let saved = dir.read()?;
    let status = status_of(&dir, &saved);
    let (want, op) = if paused {
        (Status::Running, "pause")
    } else {
        (Status::Paused, "resume")
    };
    if status != want {
        return Err(wrong_state(id, status, op));
    }
    let rel = saved
        .cgroup
        .clone()
        .ok_or_else(|| invalid(format!("container {id:?} has no cgroup to freeze")))?;
    let layout = Layout::detect()?;
    let cgroup = Cgroup::existing(&layout, &rel)?;
    crate::cgroups::freezer::set_frozen(&layout, &rel, &cgroup, paused)?;
    info!(container_id = id, paused, "container {op}d");
    Ok(())
}

/// `pause`: freezes every process of a running container.
///
/// # Errors
///
/// No such container, one that is not running, or no freezer.
pub fn pause(root: &Path, id: &str) -> Result<(), Error> {
    set_paused(root, id, true)
}

/// `resume`: thaws a paused container.
///
/// # Errors
///
/// No such container, or one that is not paused.
pub fn resume(root: &Path, id: &str) -> Result<(), Error> {
    set_paused(root, id, false)
}

/// The state JSON of runtime-spec `runtime.md` ("State"), plus the fields
/// runc adds (rootfs, created, owner).
fn state_json(dir: &StateDir, saved: &Saved) -> serde_json::Value {
    state_value(saved, status_of(dir, saved))
}

fn state_value(saved: &Saved, status: Status) -> serde_json::Value {
    json!({
        "ociVersion": OCI_VERSION,
        "id": saved.id,
        "pid": if status == Status::Stopped { 0 } else { saved.pid },
        "status": status,
        "bundle": saved.bundle,
        "rootfs": saved.rootfs,
        "created": saved.created,
        "owner": if saved.owner == 0 { String::new() } else { saved.owner.to_string() },
        "annotations": saved.annotations,
    })
}

/// `state`: the container's state as JSON.
///
/// # Errors
///
/// No such container.
pub fn state(root: &Path, id: &str) -> Result<String, Error> {
    let dir = StateDir::open(root, id)?;
    let saved = dir.read()?;
    Ok(serde_json::to_string_pretty(&state_json(&dir, &saved)).unwrap_or_default())
}

/// Parses a signal as runc does: `KILL`, `SIGKILL` or `9`.
///
/// # Errors
///
/// A name or number that is not a signal.
pub fn parse_signal(text: &str) -> Result<i32, Error> {
    if let Ok(n) = text.parse::<i32>() {
        if (1..=libc::SIGRTMAX()).contains(&n) {
            return Ok(n);
        }
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| {
            invalid(format!(
                "unknown signal {text:?}; use a name such as TERM or KILL, or a number"
            ))
        })
}

/// Opens a pidfd for the container's init, checking that the pid still
/// belongs to it (start time) after the pidfd pins it.
fn init_pidfd(saved: &Saved) -> Option<OwnedFd> {
    let pid = rustix::process::Pid::from_raw(saved.pid)?;
    let fd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()?;
    (process_start_time(saved.pid) == Some(saved.pid_start)).then_some(fd)
}

fn cgroup_of(saved: &Saved) -> Option<Cgroup> {
    let rel = saved.cgroup.as_ref()?;
    let layout = Layout::detect().ok()?;
    Cgroup::existing(&layout, rel).ok()
}

/// `kill`: sends a signal to the container's init, or with `all` to every
/// process in its cgroup.
///
/// # Errors
///
/// No such container, one that is not created or running, or a bad signal.
pub fn kill(root: &Path, id: &str, signal: i32, all: bool) -> Result<(), Error> {
    let dir = StateDir::open(root, id)?;
    let saved = dir.read()?;
    let status = status_of(&dir, &saved);
    // With --all a stopped container is still signalled, as runc does: in
    // a pid namespace it does not own (a Kubernetes pod's, or the host's)
    // its init's exit leaves the processes it started running in its
    // cgroup, and containerd's shim sends `kill --all` after that exit to
    // end them.
    let stopped_but_all = all && status == Status::Stopped;
    if !matches!(status, Status::Created | Status::Running | Status::Paused) && !stopped_but_all {
        return Err(not_running(id, status));
    }
    if all {
        if let Some(cgroup) = cgroup_of(&saved) {
            for pid in cgroup.pids()? {
                // SAFETY: kill takes no pointers. The pids were just listed
                // in the container's cgroup.
                unsafe { libc::kill(pid, signal) };
            }
            return Ok(());
        }
        if stopped_but_all {
            // Without a cgroup nothing is known of the init's children.
            return Ok(());
        }
    }
    let pidfd = init_pidfd(&saved).ok_or_else(|| not_running(id, Status::Stopped))?;
    sys::pidfd_send_signal(pidfd.as_raw_fd(), signal).map_err(|e| Error::Io {
        what: format!("send signal {signal} to container {id:?}"),
        source: e,
    })
}

/// Waits until the process behind `pidfd` has exited (it need not be our
/// child: the pidfd becomes readable when it exits).
fn wait_exit(pidfd: &OwnedFd, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [nix::poll::PollFd::new(
            pidfd.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)) {
            Ok(n) if n > 0 => return true,
            Ok(_) => return false,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return false,
        }
    }
}

/// `delete`: removes a stopped (or, with `force`, any) container: its
/// processes, its cgroup and its state.
///
/// # Errors
///
/// No such container, or a running one without `force`.
pub fn delete(root: &Path, id: &str, force: bool) -> Result<(), Error> {
    let dir = StateDir::open(root, id)?;
    let saved = match dir.read() {
        Ok(saved) => saved,
        // A create that died before writing its state leaves only the
        // directory; there is nothing else to clean.
        Err(_) if force => return dir.remove().map_err(Error::from),
        Err(e) => return Err(e.into()),
    };
    let status = status_of(&dir, &saved);
    if matches!(status, Status::Running | Status::Paused) && !force {
        return Err(invalid(format!(
            "cannot delete container {id:?}: it is running; stop it first or use --force"
        )));
    }
    if status == Status::Paused {
        // Frozen processes take a SIGKILL only once thawed.
        if let (Some(rel), Ok(layout)) = (saved.cgroup.as_ref(), Layout::detect()) {
            if let Ok(cgroup) = Cgroup::existing(&layout, rel) {
                crate::cgroups::freezer::set_frozen(&layout, rel, &cgroup, false)?;
            }
        }
    }
    if let Some(pidfd) = init_pidfd(&saved) {
        let _ = sys::pidfd_send_signal(pidfd.as_raw_fd(), libc::SIGKILL);
        if !wait_exit(&pidfd, EXIT_TIMEOUT) {
            return Err(invalid(format!(
                "container {id:?} (pid {}) did not exit after SIGKILL",
                saved.pid
            )));
        }
    }
    if let Some(cgroup) = cgroup_of(&saved) {
        cgroup.destroy()?;
    }
    run_post_hooks("poststop", &saved, Status::Stopped);
    dir.remove()?;
    debug!(container_id = id, "container deleted");
    Ok(())
}

/// `list`: every container under `root`, as a table or JSON.
pub fn list(root: &Path, json_format: bool) -> String {
    let mut rows = Vec::new();
    for id in list_ids(root) {
        let Ok(dir) = StateDir::open(root, &id) else {
            continue;
        };
        let Ok(saved) = dir.read() else { continue };
        rows.push(state_json(&dir, &saved));
    }
    if json_format {
        return serde_json::to_string(&rows).unwrap_or_default();
    }
    let mut out = format!(
        "{:<24}{:<10}{:<10}{:<40}{:<24}{}\n",
        "ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<24}{:<10}{:<10}{:<40}{:<24}{}\n",
            r["id"].as_str().unwrap_or_default(),
            r["pid"],
            r["status"].as_str().unwrap_or_default(),
            r["bundle"].as_str().unwrap_or_default(),
            r["created"].as_str().unwrap_or_default(),
            if r["owner"] == "" {
                "root"
            } else {
                r["owner"].as_str().unwrap_or_default()
            },
        ));
    }
    out
}

/// `ps`: the processes in the container's cgroup, as pids (JSON) or a
/// table of pid and command.
///
/// # Errors
///
/// No such container.
pub fn ps(root: &Path, id: &str, json_format: bool) -> Result<String, Error> {
    let dir = StateDir::open(root, id)?;
    let saved = dir.read()?;
    let pids = match cgroup_of(&saved) {
        Some(cgroup) => cgroup.pids()?,
        None if status_of(&dir, &saved) != Status::Stopped => vec![saved.pid],
        None => Vec::new(),
    };
    if json_format {
        return Ok(serde_json::to_string(&pids).unwrap_or_default());
    }
    let mut out = String::from("PID     CMD\n");
    for pid in pids {
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        out.push_str(&format!("{pid:<8}{}\n", cmd.trim_end()));
    }
    Ok(out)
}

/// `run`: create and start a container; unless `detach`, wait for it,
/// pass signals and the terminal on, delete it, and return how it ended.
///
/// # Errors
///
/// As for `create` and `start`.
pub fn run(
    root: &Path,
    id: &str,
    opts: &CreateOptions,
    detach: bool,
) -> Result<Option<Exit>, Error> {
    let mut dir = StateDir::create(root, id)?;
    let mut signals = Signals::block().map_err(|e| Error::Io {
        what: "block signals".into(),
        source: e,
    })?;
    let created = match create_in(&dir, opts, &RunOptions::default()) {
        Ok(created) => created,
        Err(e) => {
            let _ = dir.remove();
            return Err(e);
        }
    };
    let state = state_value(&created.saved, Status::Created).to_string();
    let started = process::start_created(&dir.start_socket(), &state);
    let _ = std::fs::remove_file(dir.start_socket());
    if let Err(e) = started {
        let Created { launched, .. } = created;
        let _ = launched.sandbox.signal(libc::SIGKILL);
        let _ = launched.sandbox.wait();
        drop(launched.cgroup);
        let _ = dir.remove();
        return Err(e.into());
    }
    run_post_hooks("poststart", &created.saved, Status::Running);
    if detach {
        created.launched.cgroup.keep();
        return Ok(None);
    }
    let Created {
        launched,
        spec,
        saved,
    } = created;
    let Launched {
        sandbox,
        mut cgroup,
        terminal,
        ..
    } = launched;
    // With --console-socket the terminal went to its owner; without one
    // the relay serves the caller's terminal.
    let relay = if opts.console_socket.is_none() {
        terminal.map(Relay::new)
    } else {
        None
    };
    dir.unlock();
    let ended = match supervise(&sandbox, &mut signals, relay, None) {
        Ok(ended) => ended,
        Err(e) => {
            // Nothing of the container may outlive a failed run.
            let _ = sandbox.signal(libc::SIGKILL);
            let _ = sandbox.wait();
            drop(cgroup);
            let _ = dir.remove();
            return Err(e);
        }
    };
    let exit = classify(ended, cgroup.get(), &spec);
    if dir.relock().is_err() {
        // A `delete` meanwhile has removed the container, cgroup and all.
        cgroup.keep();
        return Ok(Some(exit));
    }
    cgroup.remove()?;
    run_post_hooks("poststop", &saved, Status::Stopped);
    dir.remove()?;
    Ok(Some(exit))
}

/// `update`: changes the resource limits of a created, running or paused
/// container, for the settings given.
///
/// # Errors
///
/// No such container, a stopped one, or a value the kernel refuses.
pub fn update(
    root: &Path,
    id: &str,
    resources: &oci_spec::runtime::LinuxResources,
) -> Result<(), Error> {
    let dir = StateDir::open(root, id)?;
    let saved = dir.read()?;
    let status = status_of(&dir, &saved);
    if status == Status::Stopped {
        return Err(wrong_state(id, status, "update"));
    }
    let rel = saved
        .cgroup
        .clone()
        .ok_or_else(|| invalid(format!("container {id:?} has no cgroup to update")))?;
    let mut cgroup = Cgroup::existing(&Layout::detect()?, &rel)?;
    cgroup.update(resources)?;
    info!(container_id = id, "container resources updated");
    Ok(())
}

/// One `events` record: runc's stats or oom event.
fn stats_event(id: &str, stats: &crate::cgroups::Stats) -> serde_json::Value {
    json!({
        "type": "stats",
        "id": id,
        "data": {
            "cpu": {"usage": {"total": stats.cpu_usage_ns.unwrap_or(0)}},
            "memory": {"usage": {"usage": stats.memory_usage.unwrap_or(0), "limit": stats.memory_limit.unwrap_or(0)}},
            "pids": {"current": stats.pids.unwrap_or(0)},
        }
    })
}

/// `events`: with `stats_only`, one stats record; otherwise a stats record
/// every `interval` and an `oom` record for each OOM kill, one JSON object
/// per line, until the container stops.
///
/// # Errors
///
/// No such container, or one without a cgroup.
pub fn events(root: &Path, id: &str, stats_only: bool, interval: Duration) -> Result<(), Error> {
    let (dir, saved) = {
        let dir = StateDir::open(root, id)?;
        let saved = dir.read()?;
        (dir, saved)
    };
    let rel = saved
        .cgroup
        .clone()
        .ok_or_else(|| invalid(format!("container {id:?} has no cgroup")))?;
    let layout = Layout::detect()?;
    let cgroup = Cgroup::existing(&layout, &rel)?;
    if stats_only {
        println!("{}", stats_event(id, &cgroup.stats()));
        return Ok(());
    }
    // The state lock is not held while waiting: other commands go on.
    drop(dir);
    let mut ooms = cgroup.stats().oom_kills;
    let mut last_stats = Instant::now() - interval;
    loop {
        if process_start_time(saved.pid) != Some(saved.pid_start) {
            return Ok(());
        }
        let stats = cgroup.stats();
        if stats.oom_kills > ooms {
            ooms = stats.oom_kills;
            println!("{}", json!({"type": "oom", "id": id}));
        }
        if last_stats.elapsed() >= interval {
            last_stats = Instant::now();
            println!("{}", stats_event(id, &stats));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Options of `exec`.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// A process.json to run instead of the arguments.
    pub process: Option<PathBuf>,
    /// The program and its arguments.
    pub args: Vec<String>,
    /// Give the process a pseudo-terminal.
    pub tty: bool,
    /// Working directory.
    pub cwd: Option<PathBuf>,
    /// Extra environment variables, NAME=VALUE.
    pub env: Vec<String>,
    /// uid and gid.
    pub user: Option<(u32, u32)>,
    /// Extra capabilities.
    pub caps: Vec<String>,
    /// Set no_new_privs.
    pub no_new_privs: bool,
    /// Return once the process runs.
    pub detach: bool,
    /// Where to write the process's pid.
    pub pid_file: Option<PathBuf>,
    /// The unix socket that receives the terminal's master.
    pub console_socket: Option<PathBuf>,
}

/// The namespaces `exec` joins, in the order it joins them: the user
/// namespace first (it grants the rights for the others), the mount
/// namespace last (the others are opened through the runtime's /proc).
const JOIN_ORDER: &[(oci_spec::runtime::LinuxNamespaceType, &str)] = {
    use oci_spec::runtime::LinuxNamespaceType as T;
    &[
        (T::User, "user"),
        (T::Ipc, "ipc"),
        (T::Uts, "uts"),
        (T::Network, "net"),
        (T::Pid, "pid"),
        (T::Cgroup, "cgroup"),
        (T::Mount, "mnt"),
    ]
};

fn exec_process(base: &Spec, opts: &ExecOptions) -> Result<oci_spec::runtime::Process, Error> {
    if let Some(path) = &opts.process {
        let text = std::fs::read(path).map_err(|e| Error::Io {
            what: format!("read {}", path.display()),
            source: e,
        })?;
        let process: oci_spec::runtime::Process = serde_json::from_slice(&text).map_err(|e| {
            invalid(format!(
                "{}: not a runtime-spec process: {e}",
                path.display()
            ))
        })?;
        if let Some((name, reason)) = crate::config::bundle::unsupported_process_field(&process) {
            let name = name.trim_start_matches("process.");
            return Err(invalid(format!("{}: {name}: {reason}", path.display())));
        }
        return Ok(process);
    }
    if opts.args.is_empty() {
        return Err(invalid("exec needs a command, or --process FILE"));
    }
    let mut process = base.process().clone().unwrap_or_default();
    process.set_args(Some(opts.args.clone()));
    process.set_terminal(Some(opts.tty));
    if let Some(cwd) = &opts.cwd {
        process.set_cwd(cwd.clone());
    }
    let mut env = process.env().clone().unwrap_or_default();
    for var in &opts.env {
        let name = var.split('=').next().unwrap_or_default();
        env.retain(|e| e.split('=').next() != Some(name));
        env.push(var.clone());
    }
    process.set_env(Some(env));
    if let Some((uid, gid)) = opts.user {
        let mut user = process.user().clone();
        user.set_uid(uid);
        user.set_gid(gid);
        process.set_user(user);
    }
    if opts.no_new_privs {
        process.set_no_new_privileges(Some(true));
    }
    if !opts.caps.is_empty() {
        let mut caps = process.capabilities().clone().unwrap_or_default();
        let add = |set: Option<oci_spec::runtime::Capabilities>| -> Result<oci_spec::runtime::Capabilities, Error> {
            let mut set = set.unwrap_or_default();
            for name in &opts.caps {
                set.insert(crate::capabilities::parse_capability(name).map_err(|e| invalid(e.to_string()))?);
            }
            Ok(set)
        };
        caps.set_bounding(Some(add(caps.bounding().clone())?));
        caps.set_effective(Some(add(caps.effective().clone())?));
        caps.set_permitted(Some(add(caps.permitted().clone())?));
        process.set_capabilities(Some(caps));
    }
    Ok(process)
}

/// `exec`: runs another process in a running container: its namespaces,
/// cgroup, capabilities, no_new_privs and seccomp filter. Unless `detach`,
/// waits for it and returns how it ended.
///
/// # Errors
///
/// No such container, one that is not running, a bad process, or the
/// process failing to start.
pub fn exec(root: &Path, id: &str, opts: &ExecOptions) -> Result<Option<Exit>, Error> {
    let mut dir = StateDir::open(root, id)?;
    let saved = dir.read()?;
    let status = status_of(&dir, &saved);
    if status != Status::Running {
        return Err(wrong_state(id, status, "exec in"));
    }
    let base = saved.config.clone().ok_or_else(|| {
        invalid(format!(
            "container {id:?} was created without a recorded config"
        ))
    })?;
    let process = exec_process(&base, opts)?;
    if process.terminal().unwrap_or(false)
        && opts.console_socket.is_none()
        && !std::io::IsTerminal::is_terminal(&std::io::stdin())
    {
        return Err(invalid(
            "exec --tty needs a terminal on stdin or a --console-socket",
        ));
    }
    let mut spec = base.clone();
    spec.set_process(Some(process));

    let mut namespaces = Vec::new();
    let configured = base
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    for (kind, name) in JOIN_ORDER {
        if configured.iter().any(|n| n.typ() == *kind) {
            let path = format!("/proc/{}/ns/{name}", saved.pid);
            let fd = std::fs::File::open(&path).map_err(|e| Error::Io {
                what: format!("open {path}"),
                source: e,
            })?;
            namespaces.push((OwnedFd::from(fd), *name));
        }
    }

    let mut plan = ChildPlan::from_spec(&spec, false)?;
    plan.namespaces = crate::namespaces::NamespaceSet::default();
    plan.mounts = None;
    plan.hostname = None;
    plan.domainname = None;
    plan.sysctls.clear();
    plan.oom_score_adj = None;
    plan.create_container_hooks.clear();
    plan.start_container_hooks.clear();
    plan.die_with_runtime = !opts.detach;
    plan.join = namespaces
        .iter()
        .map(|(fd, name)| (fd.as_raw_fd(), *name))
        .collect();
    plan.fork_after_join = true;

    let mut signals = Signals::block().map_err(|e| Error::Io {
        what: "block signals".into(),
        source: e,
    })?;
    let cgroup = cgroup_of(&saved);
    plan.generate_seccomp()
        .map_err(crate::process::ProcessError::from)?;
    let placement = Placement::prepare(cgroup.as_ref(), &mut plan)?;
    let sandbox = process::spawn(&plan, placement.clone_fd(), &signals.saved_mask())?;
    drop(placement);
    drop(namespaces);
    let started = sandbox
        .start(|step| debug!(step, "exec setup step"))
        .map_err(Error::from);
    let started = match started {
        Ok(started) => started,
        Err(e) => {
            let _ = sandbox.signal(libc::SIGKILL);
            let _ = sandbox.wait();
            return Err(e);
        }
    };
    let program = started.program.unwrap_or(sandbox.pid);
    if let (Some(master), Some(path)) = (&started.terminal, &opts.console_socket) {
        send_console(path, master)?;
    }
    if let Some(path) = &opts.pid_file {
        write_pid_file(path, program)?;
    }
    if opts.detach {
        return Ok(None);
    }
    // Only the exec'd program is waited for now; the container is free for
    // other commands, a second exec among them.
    dir.unlock();
    let relay = if opts.console_socket.is_none() {
        started.terminal.map(Relay::new)
    } else {
        None
    };
    let ended = supervise(&sandbox, &mut signals, relay, None).inspect_err(|_| {
        // The exec'd program goes with the failed wait: it first (through
        // a pidfd, so a recycled pid is never hit), then its small init.
        if let Some(fd) = rustix::process::Pid::from_raw(program).and_then(|pid| {
            rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
        }) {
            let _ = sys::pidfd_send_signal(fd.as_raw_fd(), libc::SIGKILL);
        }
        let _ = sandbox.signal(libc::SIGKILL);
        let _ = sandbox.wait();
    })?;
    Ok(Some(classify(ended, None, &spec)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_by_name_and_number() {
        assert_eq!(parse_signal("KILL").unwrap(), libc::SIGKILL);
        assert_eq!(parse_signal("sigterm").unwrap(), libc::SIGTERM);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("0").is_err());
    }

    #[test]
    fn created_time_is_rfc3339() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z'), "{t}");
    }
}
