//! `sunaba run`: create a sandbox from a spec, run it to the end, remove
//! everything it needed. Nothing outlives the call: the cgroup is removed on
//! every path, and the namespaces and mounts die with the sandbox's pid 1.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::wait::WaitStatus;
use oci_spec::runtime::{LinuxResources, Spec};
use tracing::{debug, info, warn};

use super::signals::Signals;
use super::terminal::Relay;
use crate::cgroups::{Cgroup, CgroupError, Layout};
use crate::config::values::Size;
use crate::config::RunOptions;
use crate::namespaces;
use crate::process::{self, ChildPlan, ProcessError, Sandbox, SeccompPlan};
use crate::seccomp::PreparedFilter;
use crate::Error;

/// How a sandbox ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// The program exited with this status.
    Code(i32),
    /// The program was killed by this signal.
    Signal(i32),
    /// The kernel's OOM killer ended it at the memory limit.
    OutOfMemory {
        /// The limit in bytes, if one was set.
        limit: Option<u64>,
    },
    /// `--timeout` expired and the whole sandbox was killed.
    TimedOut(Duration),
}

impl Exit {
    /// The status `sunaba` exits with: the program's, 128+N for signal N,
    /// 137 for an OOM kill (SIGKILL), 124 for a timeout (as timeout(1)).
    pub fn status(&self) -> i32 {
        match self {
            Exit::Code(c) => *c,
            Exit::Signal(s) => 128 + s,
            Exit::OutOfMemory { .. } => 128 + libc::SIGKILL,
            Exit::TimedOut(_) => 124,
        }
    }

    /// A one-line explanation when the end was not the program's own doing.
    pub fn explanation(&self) -> Option<String> {
        match self {
            Exit::OutOfMemory { limit: Some(l) } => {
                Some(format!("killed: out of memory (memory limit {})", Size(*l)))
            }
            Exit::OutOfMemory { limit: None } => Some("killed: out of memory".to_string()),
            Exit::TimedOut(d) => Some(format!("killed: timeout after {}", humantime(*d))),
            _ => None,
        }
    }
}

fn humantime(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.3}s", d.as_secs_f64())
    }
}

/// The sandbox's cgroup, removed on drop if [`CgroupGuard::remove`] was not
/// reached (an early error return).
pub(super) struct CgroupGuard(Option<Cgroup>);

impl CgroupGuard {
    pub(super) fn get(&self) -> Option<&Cgroup> {
        self.0.as_ref()
    }

    /// Keeps the cgroup past this value: it belongs to a container that
    /// outlives the command that created it.
    pub(super) fn keep(mut self) {
        self.0 = None;
    }

    pub(super) fn remove(&mut self) -> Result<(), CgroupError> {
        match self.0.take() {
            Some(cgroup) => cgroup.destroy(),
            None => Ok(()),
        }
    }
}

impl Drop for CgroupGuard {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            warn!(error = %e, "cgroup left behind");
        }
    }
}

/// Under `--require-limits`, fails when the cgroup could not carry some of
/// the limits (a kernel without swap accounting has no `memory.swap.max`).
/// Device rules are judged on their own, by `check_device_rules`.
fn required_limits_hold(unenforced: &[String]) -> Result<(), Error> {
    let missing: Vec<&str> = unenforced
        .iter()
        .map(String::as_str)
        .filter(|u| *u != "devices")
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::LimitsUnenforceable {
        limits: missing.join(", "),
        reason: "this kernel's cgroups lack them".to_string(),
    })
}

/// The limits a resources block asks for, in words, for warnings and logs.
fn describe_limits(r: &LinuxResources) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(m) = r.memory() {
        if let Some(l) = m.limit().filter(|l| *l > 0) {
            out.push(format!("memory {}", Size(l.unsigned_abs())));
        }
        if let Some(l) = m.reservation().filter(|l| *l > 0) {
            out.push(format!("memory reservation {}", Size(l.unsigned_abs())));
        }
    }
    if let Some(c) = r.cpu() {
        if let (Some(q), Some(p)) = (c.quota(), c.period()) {
            out.push(format!("cpus {:.2}", q as f64 / p as f64));
        }
        if let Some(s) = c.shares() {
            out.push(format!("cpu shares {s}"));
        }
    }
    if let Some(p) = r.pids() {
        out.push(format!("pids {}", p.limit()));
    }
    out
}

/// Refuses a container whose device rules cannot be enforced while it
/// could create device nodes: with CAP_MKNOD outside a user namespace, a
/// node for the host's disk would open as on the host.
fn check_device_rules(spec: &Spec, enforced: bool) -> Result<(), Error> {
    let linux = spec.linux().as_ref();
    let has_rules = linux
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.devices().as_ref())
        .is_some_and(|d| !d.is_empty());
    let in_userns = linux
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User)
        });
    let mknod = spec
        .process()
        .as_ref()
        .and_then(|p| p.capabilities().as_ref())
        .and_then(|c| c.bounding().as_ref())
        .is_some_and(|b| b.contains(&oci_spec::runtime::Capability::Mknod));
    if has_rules && !enforced && mknod && !in_userns {
        return Err(Error::Container(
            "linux.resources.devices cannot be enforced here (no cgroup for the container, or no privilege to attach a BPF device program on cgroup v2) and the container holds CAP_MKNOD; drop CAP_MKNOD (--cap-drop MKNOD) or run it as root with cgroups".to_string(),
        ));
    }
    Ok(())
}

fn create_cgroup(spec: &Spec, options: &RunOptions) -> Result<CgroupGuard, Error> {
    if options.no_cgroup {
        return Ok(CgroupGuard(None));
    }
    let linux = spec.linux().as_ref();
    let resources = linux
        .and_then(|l| l.resources().clone())
        .unwrap_or_default();
    let path = linux
        .and_then(|l| l.cgroups_path().clone())
        .unwrap_or_else(|| PathBuf::from(format!("sunaba/{}", std::process::id())));
    let created = Layout::detect().and_then(|layout| Cgroup::create(&layout, &path, &resources));
    let reason = match created {
        Ok(cgroup) => {
            debug!(path = %path.display(), limits = ?describe_limits(&resources), "cgroup created");
            let enforced = !cgroup.unenforced().iter().any(|u| u == "devices");
            let guard = CgroupGuard(Some(cgroup));
            check_device_rules(spec, enforced)?;
            if options.require_limits {
                // Dropping the guard on this error removes the cgroup.
                required_limits_hold(guard.0.as_ref().map_or(&[], |c| c.unenforced()))?;
            }
            return Ok(guard);
        }
        Err(CgroupError::NotDelegated { path: dir }) => {
            format!("no delegated cgroup at {} for this user", dir.display())
        }
        // Inside another sandbox, typically, which mounted none.
        Err(CgroupError::NoCgroupFs) => "no cgroup filesystem is mounted".to_string(),
        Err(e) => return Err(e.into()),
    };
    check_device_rules(spec, false)?;
    let limits = describe_limits(&resources);
    if limits.is_empty() {
        debug!(reason, "running without a cgroup");
    } else if options.require_limits {
        return Err(Error::LimitsUnenforceable {
            limits: limits.join(", "),
            reason,
        });
    } else {
        warn!(
            "cannot enforce {}: {reason} (--require-limits makes this an error)",
            limits.join(", ")
        );
    }
    Ok(CgroupGuard(None))
}

fn open_dir(path: &Path) -> Result<OwnedFd, Error> {
    rustix::fs::open(
        path,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| Error::Io {
        what: format!("open cgroup {}", path.display()),
        source: e.into(),
    })
}

/// How a new sandbox process enters its cgroup without the runtime moving
/// it: clone3 creates it inside the cgroup2 directory (`CLONE_INTO_CGROUP`),
/// and it moves itself into the v1 ones through their `tasks` files (see
/// `ChildPlan::cgroup_tasks`). Holds the descriptors until the clone is
/// done.
pub(super) struct Placement {
    clone_dir: Option<OwnedFd>,
    _tasks: Vec<std::fs::File>,
}

impl Placement {
    /// Opens what the clone and the child need and records it in `plan`.
    pub(super) fn prepare(cgroup: Option<&Cgroup>, plan: &mut ChildPlan) -> Result<Self, Error> {
        let Some(cgroup) = cgroup else {
            plan.cgroup_tasks.clear();
            return Ok(Placement {
                clone_dir: None,
                _tasks: Vec::new(),
            });
        };
        let clone_dir = cgroup.clone_dir().map(open_dir).transpose()?;
        let tasks = cgroup.open_v1_tasks().map_err(Error::from)?;
        use std::os::fd::AsRawFd;
        plan.cgroup_tasks = tasks
            .iter()
            .map(|(file, dir)| (file.as_raw_fd(), dir.clone()))
            .collect();
        Ok(Placement {
            clone_dir,
            _tasks: tasks.into_iter().map(|(file, _)| file).collect(),
        })
    }

    /// The cgroup2 directory for clone3, if any.
    pub(super) fn clone_fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        self.clone_dir.as_ref().map(AsRawFd::as_raw_fd)
    }
}

/// Runs the sandbox a spec describes until its program ends.
///
/// # Errors
///
/// Anything that keeps the program from starting; the program's own
/// failure is an [`Exit`], not an error.
pub fn run(spec: &Spec, options: &RunOptions) -> Result<Exit, Error> {
    let started = Instant::now();
    let mut plan = ChildPlan::from_spec(spec, options.init)?;
    debug!(elapsed_us = started.elapsed().as_micros(), "plan ready");
    if tracing::enabled!(tracing::Level::DEBUG) {
        log_plan(&plan);
    }

    let mut signals = Signals::block().map_err(|e| Error::Io {
        what: "block signals".into(),
        source: e,
    })?;
    let Launched {
        sandbox,
        mut cgroup,
        terminal,
        ..
    } = launch(spec, &mut plan, options, &signals.saved_mask(), || {
        // While the child builds its root, the runtime has nothing to do
        // but wait: the sweep for cgroups of killed runs costs the caller
        // nothing here.
        remove_stale_cgroups(spec)
    })?;
    let terminal = terminal.map(Relay::new);
    info!(
        pid = sandbox.pid,
        program = ?plan.args.first(),
        namespaces = format!("{:#x}", plan.namespaces.clone_flags),
        read_only_root = plan.mounts.as_ref().is_some_and(|m| m.root_readonly),
        mounts = plan.mounts.as_ref().map_or(0, |m| m.mounts.len()),
        network = if plan.namespaces.has(libc::CLONE_NEWNET) { "none" } else { "host" },
        seccomp_instructions = plan.seccomp.instruction_count(),
        cgroup = cgroup.get().map(Cgroup::describe).unwrap_or_default(),
        elapsed_us = started.elapsed().as_micros(),
        "sandbox started"
    );

    let ended = supervise(&sandbox, &mut signals, terminal, options.timeout);
    let ended = match ended {
        Ok(e) => e,
        Err(e) => {
            let _ = sandbox.signal(libc::SIGKILL);
            let _ = sandbox.wait();
            return Err(e);
        }
    };
    let exit = classify(ended, cgroup.get(), spec);
    info!(
        pid = sandbox.pid,
        status = exit.status(),
        duration_ms = started.elapsed().as_millis(),
        "sandbox exited"
    );

    cgroup.remove()?;
    debug!("cleanup done");
    Ok(exit)
}

/// A sandbox process that was cloned, placed and released: it runs its
/// program, or (with a start socket) waits for `start`.
pub(super) struct Launched {
    pub(super) sandbox: Sandbox,
    pub(super) cgroup: CgroupGuard,
    pub(super) terminal: Option<OwnedFd>,
}

/// Creates the cgroup, clones the sandbox's process into it, writes its
/// uid/gid maps and lets it run its setup, doing `meanwhile` while the
/// child works. On any error, the process is killed and the cgroup removed
/// before returning.
pub(super) fn launch(
    spec: &Spec,
    plan: &mut ChildPlan,
    options: &RunOptions,
    saved_mask: &libc::sigset_t,
    meanwhile: impl FnOnce(),
) -> Result<Launched, Error> {
    let started = Instant::now();
    let runtime_hooks = spec.hooks().as_ref().is_some_and(|h| {
        h.prestart().as_ref().is_some_and(|v| !v.is_empty())
            || h.create_runtime().as_ref().is_some_and(|v| !v.is_empty())
    });
    // Hooks that run in the runtime's namespaces may configure the
    // container's network through its pid, so it must be there from the
    // start.
    plan.network_from_runtime = plan.network_can_come_later() && !runtime_hooks;
    // The filter's BPF is generated once the child is cloned, while it
    // builds its root, where the plan allows; the profile was already
    // checked. Otherwise it is generated here, before anything exists.
    let filter_later = plan.defer_seccomp();
    plan.generate_seccomp().map_err(ProcessError::from)?;
    let mut cgroup = create_cgroup(spec, options)?;
    // On an error from here on, dropping the guard removes the cgroup.
    let placement = Placement::prepare(cgroup.get(), plan)?;
    let sandbox = process::spawn(plan, placement.clone_fd(), saved_mask)?;
    drop(placement);
    debug!(
        pid = sandbox.pid,
        elapsed_us = started.elapsed().as_micros(),
        "sandbox process cloned"
    );

    match start(&sandbox, plan, filter_later, meanwhile) {
        Ok(started) => Ok(Launched {
            sandbox,
            cgroup,
            terminal: started.terminal,
        }),
        Err(e) => {
            // The child may be waiting for `go` or already gone; either way it
            // must not outlive the runtime, and its cgroup must go.
            let _ = sandbox.signal(libc::SIGKILL);
            let _ = sandbox.wait();
            cgroup.remove()?;
            Err(e)
        }
    }
}

/// Removes the cgroups of earlier runs whose runtime died without cleaning
/// up (SIGKILL). Runs while the sandbox sets itself up, off the start path. A run's
/// cgroup is `sunaba/run-<runtime pid>-<nonce>`; it is stale when that pid
/// no longer exists (a reused pid keeps it, which is harmless).
fn remove_stale_cgroups(spec: &Spec) {
    let ours = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone());
    let Some(parent) = ours.as_deref().and_then(Path::parent) else {
        return;
    };
    let Ok(layout) = Layout::detect() else { return };
    let removed = crate::cgroups::remove_stale(&layout, parent, |name| {
        let pid = name
            .strip_prefix("run-")
            .and_then(|rest| rest.split('-').next());
        pid.and_then(|p| p.parse::<i32>().ok())
            .filter(|pid| *pid > 0)
            .is_some_and(|pid| !process_exists(pid))
    });
    if removed > 0 {
        debug!(removed, "stale cgroups of killed runs removed");
    }
}

/// Whether a process (or thread) `pid` exists, asked with signal 0: one
/// lookup in the kernel's pid table. A path lookup under /proc for each of
/// hundreds of names made the sweep a visible part of every start with
/// many sandboxes running.
fn process_exists(pid: i32) -> bool {
    // SAFETY: kill with signal 0 sends nothing; it only checks that `pid`
    // names a process we could signal. EPERM means it exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Logs the filesystem plan, one mount per line (debug only).
fn log_plan(plan: &ChildPlan) {
    let Some(mounts) = &plan.mounts else { return };
    debug!(root = ?mounts.root, read_only = mounts.root_readonly, "root filesystem");
    for m in &mounts.mounts {
        debug!(
            destination = %Path::new("/").join(&m.destination).display(),
            kind = ?m.kind,
            flags = ?m.flags,
            attrs = format!("{:#x}", m.attrs),
            "mount"
        );
    }
    debug!(
        masked = mounts.masked.len(),
        readonly = mounts.readonly.len(),
        "masked and read-only paths"
    );
}

fn start(
    sandbox: &Sandbox,
    plan: &mut ChildPlan,
    filter_later: Option<PreparedFilter>,
    meanwhile: impl FnOnce(),
) -> Result<process::Started, Error> {
    if plan.namespaces.has(libc::CLONE_NEWUSER) {
        namespaces::write_id_maps(
            sandbox.pid,
            &plan.uid_mappings,
            &plan.gid_mappings,
            !plan.setgroups,
        )
        .map_err(ProcessError::from)?;
        debug!(pid = sandbox.pid, "uid/gid maps written");
    }
    if plan.network_from_runtime {
        sandbox.make_network()?;
        debug!(pid = sandbox.pid, "network namespace handed over");
    }
    if let Some(prepared) = filter_later {
        let filter = prepared.generate().map_err(ProcessError::from)?;
        sandbox.send_filter(&filter)?;
        debug!(pid = sandbox.pid, "seccomp filter handed over");
        plan.seccomp = SeccompPlan::Compiled(filter);
    }
    Ok(sandbox.start_meanwhile(meanwhile, |step| debug!(step, "child setup step"))?)
}

/// How the wait ended, before OOM classification.
pub(super) enum Ended {
    Status(WaitStatus),
    TimedOut(Duration),
}

pub(super) fn supervise(
    sandbox: &Sandbox,
    signals: &mut Signals,
    mut terminal: Option<Relay>,
    timeout: Option<Duration>,
) -> Result<Ended, Error> {
    let deadline = timeout.map(|t| (Instant::now() + t, t));
    let wait = |sandbox: &Sandbox| {
        sandbox.wait().map_err(|e| Error::Io {
            what: "wait for the sandbox".into(),
            source: e,
        })
    };
    loop {
        let wait_ms = match deadline {
            Some((at, limit)) => {
                let left = at.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    debug!(pid = sandbox.pid, "timeout: killing the sandbox");
                    // SIGKILL to pid 1 ends the whole pid namespace.
                    let _ = sandbox.signal(libc::SIGKILL);
                    wait(sandbox)?;
                    return Ok(Ended::TimedOut(limit));
                }
                // At most a minute, so the cast cannot truncate.
                #[allow(clippy::cast_possible_truncation)]
                let ms = left.as_millis().clamp(1, 60_000) as u16;
                PollTimeout::from(ms)
            }
            None => PollTimeout::NONE,
        };

        let stdin = std::io::stdin();
        let mut fds = vec![
            PollFd::new(sandbox.pidfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(signals.fd(), PollFlags::POLLIN),
        ];
        let (mut output_at, mut input_at) = (None, None);
        if let Some(relay) = &terminal {
            if relay.master_open() {
                output_at = Some(fds.len());
                fds.push(PollFd::new(relay.master(), PollFlags::POLLIN));
            }
            if relay.stdin_open() {
                input_at = Some(fds.len());
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
        }
        match poll(&mut fds, wait_ms) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                return Err(Error::Io {
                    what: "poll for the sandbox".into(),
                    source: e.into(),
                })
            }
        }
        let ready = |i: usize| {
            fds.get(i)
                .and_then(PollFd::revents)
                .is_some_and(|r| !r.is_empty())
        };
        let (exited, signalled) = (ready(0), ready(1));
        let output = output_at.is_some_and(ready);
        let input = input_at.is_some_and(ready);
        drop(fds);

        if signalled {
            for signal in signals.drain() {
                match &terminal {
                    // The sandbox's own terminal tells its foreground
                    // process group about the new size.
                    Some(relay) if signal == libc::SIGWINCH => relay.copy_window_size(),
                    _ => {
                        debug!(signal, pid = sandbox.pid, "forwarding signal");
                        let _ = sandbox.signal(signal);
                    }
                }
            }
        }
        if let Some(relay) = terminal.as_mut() {
            if output {
                relay.pump_output();
            }
            if input {
                relay.pump_input();
            }
        }
        if exited {
            if let Some(relay) = terminal.as_mut() {
                // What the program wrote just before exiting is still buffered.
                relay.pump_output();
            }
            return Ok(Ended::Status(wait(sandbox)?));
        }
    }
}

pub(super) fn classify(ended: Ended, cgroup: Option<&Cgroup>, spec: &Spec) -> Exit {
    let status = match ended {
        Ended::TimedOut(d) => return Exit::TimedOut(d),
        Ended::Status(s) => s,
    };
    let exit = match status {
        WaitStatus::Exited(_, code) => Exit::Code(code),
        WaitStatus::Signaled(_, signal, _) => Exit::Signal(signal as i32),
        other => {
            warn!(status = ?other, "unexpected wait status");
            Exit::Code(process::SETUP_FAILED)
        }
    };
    // A SIGKILL alone does not prove an OOM kill; the cgroup's counter does.
    let killed = exit.status() == 128 + libc::SIGKILL;
    let oom_kills = cgroup.and_then(|c| c.oom_kill_count().ok()).unwrap_or(0);
    if killed && oom_kills > 0 {
        let limit = spec
            .linux()
            .as_ref()
            .and_then(|l| l.resources().as_ref())
            .and_then(|r| r.memory().as_ref())
            .and_then(|m| m.limit())
            .filter(|l| *l > 0)
            .map(i64::unsigned_abs);
        return Exit::OutOfMemory { limit };
    }
    exit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_limits_fail_on_any_unenforced_limit_but_devices() {
        assert!(required_limits_hold(&[]).is_ok());
        assert!(required_limits_hold(&["devices".to_string()]).is_ok());
        let swap = "memory.swap.max (no memory.swap.max on this kernel)".to_string();
        let err = required_limits_hold(&["devices".to_string(), swap]).expect_err("refused");
        let text = err.to_string();
        assert!(text.contains("memory.swap.max"), "{text}");
        assert!(!text.contains("devices"), "{text}");
        assert!(text.contains("--require-limits"), "{text}");
    }
}
