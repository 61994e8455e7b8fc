//! The child's setup, from clone to execve, as one ordered sequence.
//!
//! This code runs in a forked copy of a single-threaded process, so it may
//! allocate, but it must not log (the logger belongs to the parent) and
//! must never return into the parent's code: every path ends in execve or
//! `_exit`. A failure is written to the channel with the step's name.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use oci_spec::runtime::PosixRlimitType;

use super::channel::Channel;
use super::init;
use super::plan::{ChildPlan, SeccompPlan};
use super::terminal;
use crate::capabilities;
use crate::network;
use crate::sys;

/// Exit status of a child whose setup failed (docker's "cannot run").
pub const SETUP_FAILED: i32 = 125;
/// Exit status when the program exists but cannot be executed.
pub const CANNOT_EXECUTE: i32 = 126;
/// Exit status when the program does not exist.
pub const NOT_FOUND: i32 = 127;

/// A failed step: its name, the errno if a syscall failed, and the message.
struct StepError {
    step: &'static str,
    errno: Option<i32>,
    message: String,
}

/// Attaches a step name to any displayable error.
trait InStep<T> {
    fn in_step(self, step: &'static str) -> Result<T, StepError>;
}

impl<T, E: std::fmt::Display> InStep<T> for Result<T, E> {
    fn in_step(self, step: &'static str) -> Result<T, StepError> {
        self.map_err(|e| StepError {
            step,
            errno: None,
            message: e.to_string(),
        })
    }
}

fn os_error(step: &'static str, what: String) -> StepError {
    let errno = nix::errno::Errno::last();
    StepError {
        step,
        errno: Some(errno as i32),
        message: format!("{what}: {}", errno.desc()),
    }
}

/// The kernel refuses (EACCES) to lower oom_score_adj below the lowest
/// value the process has had unless it holds CAP_SYS_RESOURCE (proc(5)).
/// CRI asks for -998 for every pod sandbox, so a runtime confined without
/// that capability meets this first; the bare "Permission denied" would not
/// say which privilege is missing.
fn oom_score_adj_error(adj: i32, e: &std::io::Error) -> String {
    if e.raw_os_error() == Some(libc::EACCES) {
        format!(
            "cannot set oom_score_adj to {adj}: {e}: lowering it takes CAP_SYS_RESOURCE, which the runtime does not have"
        )
    } else {
        format!("cannot set oom_score_adj to {adj}: {e}")
    }
}

/// Runs the setup sequence and executes the program; never returns.
pub fn run(plan: &ChildPlan, channel: &Channel, saved_mask: &libc::sigset_t) -> ! {
    let mut starter = None;
    let err = match setup_and_exec(plan, channel, saved_mask, &mut starter) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    channel.send_failure(err.step, err.errno, &err.message);
    // After create, the runtime that cloned us is gone; `start` listens.
    if let Some(starter) = &starter {
        starter.send_failure(err.step, err.errno, &err.message);
    }
    let code = match (err.step, err.errno) {
        ("exec", Some(libc::ENOENT)) => NOT_FOUND,
        ("exec", _) => CANNOT_EXECUTE,
        _ => SETUP_FAILED,
    };
    sys::exit_now(code)
}

fn setup_and_exec(
    plan: &ChildPlan,
    channel: &Channel,
    saved_mask: &libc::sigset_t,
    starter: &mut Option<Channel>,
) -> Result<std::convert::Infallible, StepError> {
    let step = |name: &str| {
        if plan.trace_steps {
            channel.send_step(name);
        }
    };

    // If the runtime dies, so does the sandbox: pid 1 takes the whole pid
    // namespace with it. SIGKILL from the parent's death is delivered to a
    // namespace init even without a handler (pid_namespaces(7)).
    if plan.die_with_runtime {
        nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
            .in_step("set parent-death signal")?;
    }

    // Into the sandbox's v1 cgroups before anything else runs here (see
    // `ChildPlan::cgroup_tasks`); the cgroup2 part, if any, was done by
    // clone3 itself.
    for (fd, path) in &plan.cgroup_tasks {
        step("move into cgroup");
        // SAFETY: the runtime opened these descriptors for this process and
        // keeps them open until the clone returns; "0" is one valid byte.
        if unsafe { libc::write(*fd, b"0".as_ptr().cast(), 1) } != 1 {
            return Err(os_error(
                "move into cgroup",
                format!("cannot move into cgroup {}", path.display()),
            ));
        }
        // SAFETY: the descriptor is this process's copy and nothing else
        // here uses it.
        unsafe { libc::close(*fd) };
    }

    // In a new user namespace, the parent writes the uid/gid maps first;
    // until then we have no usable identity there. Without one there is
    // nothing to wait for, and a round trip through the parent would cost
    // a cross-CPU wakeup on the start path.
    if plan.awaits_runtime() {
        channel.wait_go().in_step("wait for the runtime")?;
        become_namespace_root(plan)?;
    } else {
        channel.check_runtime().in_step("wait for the runtime")?;
    }

    // `exec`: join the container's namespaces. setns(2) into a pid
    // namespace only places the caller's future children there, so this
    // process forks and stays behind as a small init for the program:
    // it passes signals on and exits with the program's status.
    for (fd, kind) in &plan.join {
        {
            step("join namespace");
            nix::sched::setns(
                // SAFETY: the runtime opened these descriptors for this
                // process; they stay open until exec or exit.
                unsafe { std::os::fd::BorrowedFd::borrow_raw(*fd) },
                nix::sched::CloneFlags::empty(),
            )
            .map_err(|e| StepError {
                step: "join namespace",
                errno: Some(e as i32),
                message: format!("cannot join the container's {kind} namespace: {}", e.desc()),
            })?;
        }
    }
    if plan.fork_after_join {
        init::fork_init(channel, true, plan.die_with_runtime).map_err(|e| StepError {
            step: "start exec process",
            errno: e.raw_os_error(),
            message: format!("cannot fork into the container's pid namespace: {e}"),
        })?;
    }

    // After placement, so the namespace's root is the sandbox's own cgroup.
    if plan.namespaces.cgroup {
        step("unshare cgroup namespace");
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
            .in_step("unshare cgroup namespace")?;
    }
    if let Some(hostname) = &plan.hostname {
        step("set hostname");
        nix::unistd::sethostname(hostname).in_step("set hostname")?;
    }
    if let Some(domainname) = &plan.domainname {
        step("set domain name");
        // SAFETY: the pointer and length describe the live String's bytes.
        if unsafe { libc::setdomainname(domainname.as_ptr().cast(), domainname.len()) } != 0 {
            return Err(os_error(
                "set domain name",
                format!("cannot set domain name {domainname:?}"),
            ));
        }
    }
    // Before the mounts: /proc is still the host's instance here, and each
    // namespaced file shows (and changes) the writer's own namespace.
    for (path, value) in &plan.sysctls {
        step("set sysctl");
        std::fs::write(path, value).map_err(|e| StepError {
            step: "set sysctl",
            errno: e.raw_os_error(),
            message: format!("cannot write {value:?} to {}: {e}", path.display()),
        })?;
    }
    if let Some(adj) = plan.oom_score_adj {
        step("set oom_score_adj");
        std::fs::write("/proc/self/oom_score_adj", adj.to_string()).map_err(|e| StepError {
            step: "set oom_score_adj",
            errno: e.raw_os_error(),
            message: oom_score_adj_error(adj, &e),
        })?;
    }
    if plan.namespaces.has(libc::CLONE_NEWNET) && !plan.network_from_runtime {
        step("bring up loopback");
        network::bring_up_loopback().in_step("bring up loopback")?;
    }
    if let Some(mounts) = &plan.mounts {
        step("mount root filesystem");
        mounts.apply().in_step("mount root filesystem")?;
    }
    if plan.network_from_runtime {
        step("join network namespace");
        let namespace = channel.recv_network().in_step("join network namespace")?;
        nix::sched::setns(namespace, nix::sched::CloneFlags::CLONE_NEWNET)
            .in_step("join network namespace")?;
    }
    step("set rlimits");
    set_rlimits(plan)?;

    // A session of its own: the caller's terminal is never the program's
    // controlling terminal, so TIOCSTI cannot push input into it. With a
    // terminal, the program gets a pseudo-terminal of its own instead.
    step("start a new session");
    nix::unistd::setsid().in_step("start a new session")?;
    if plan.terminal {
        step("attach pseudo-terminal");
        terminal::attach_pseudo_terminal(channel, plan.console_size)
            .in_step("attach pseudo-terminal")?;
    }

    step("change working directory");
    nix::unistd::chdir(&plan.cwd).map_err(|e| StepError {
        step: "change working directory",
        errno: Some(e as i32),
        message: format!(
            "working directory {} is not usable in the sandbox: {}",
            plan.cwd.display(),
            e.desc()
        ),
    })?;

    // After the mounts, whose mountpoints the runtime makes with modes
    // of its own; the program and its hooks create files under this mask.
    // umask(2) cannot fail.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(plan.umask));

    // Without no_new_privs, installing a filter takes CAP_SYS_ADMIN, which
    // is about to go: install it now, as runc does, and rely on the profile
    // to allow the few calls left before exec (capset, setuid, accept).
    // With no_new_privs it waits until just before exec.
    // createContainer hooks run in the container's namespaces but with the
    // runtime's privileges, as root with every capability and no filter:
    // before any of that is given up. The runtime sends the state once its
    // own createRuntime hooks are done.
    if plan.start_socket.is_some() && !plan.create_container_hooks.is_empty() {
        channel.send_ready();
        let state = channel
            .recv_state()
            .in_step("receive the container state")?;
        crate::hooks::run("createContainer", &plan.create_container_hooks, &state)
            .in_step("run createContainer hooks")?;
    }

    let early_seccomp = !plan.no_new_privs;
    if early_seccomp {
        step("install seccomp filter");
        install_seccomp(plan, channel)?;
    }

    // The bounding set needs CAP_SETPCAP, which the user switch may take away.
    step("drop bounding capabilities");
    plan.capabilities
        .drop_bounding()
        .in_step("drop bounding capabilities")?;
    step("switch user");
    switch_user(plan)?;
    step("set capabilities");
    plan.capabilities.apply().in_step("set capabilities")?;
    if plan.no_new_privs {
        step("set no_new_privs");
        capabilities::set_no_new_privs().in_step("set no_new_privs")?;
    }

    let program = find_program(plan)?;

    // The create/start split: everything is in place but the program. The
    // seccomp filter comes after the wait, so a profile that forbids
    // accept(2) cannot keep the container from starting.
    if let Some(listener) = plan.start_socket {
        // Everything is in place (after the hooks, this answers the state).
        channel.send_ready();
        let start = wait_for_start(listener)?;
        // `start` always sends the state; reading it even when no hook
        // needs it keeps the connection from being reset on exec.
        let state = start.recv_state().in_step("receive the container state")?;
        if !plan.start_container_hooks.is_empty() {
            crate::hooks::run("startContainer", &plan.start_container_hooks, &state)
                .in_step("run startContainer hooks")?;
        }
        *starter = Some(start);
    }

    // Last but exec: the filter must allow everything above. The init (if
    // any) is filtered too, so the program cannot escape the filter by
    // tampering with an unfiltered parent.
    if !early_seccomp {
        step("install seccomp filter");
        install_seccomp(plan, channel)?;
    }

    if plan.init {
        init::fork_init(channel, false, true).map_err(|e| StepError {
            step: "start init",
            errno: e.raw_os_error(),
            message: format!("cannot start the init process: {e}"),
        })?;
    }

    if let Some(persona) = plan.personality {
        // SAFETY: personality(2) takes a plain integer.
        if unsafe { libc::personality(persona) } == -1 {
            return Err(os_error(
                "set personality",
                format!("cannot set execution domain {persona:#x}"),
            ));
        }
    }

    // Only the standard streams (and the descriptors asked to be preserved)
    // survive exec; the channel is close-on-exec too, and its closing tells
    // the runtime the program is running.
    for fd in 3..3 + plan.preserve_fds {
        // SAFETY: clearing FD_CLOEXEC on a descriptor number takes no
        // pointers; one that is not open just fails, harmlessly.
        unsafe { libc::fcntl(i32::try_from(fd).unwrap_or(i32::MAX), libc::F_SETFD, 0) };
    }
    sys::cloexec_from(3 + plan.preserve_fds).map_err(|e| StepError {
        step: "close descriptors",
        errno: e.raw_os_error(),
        message: format!("cannot mark descriptors close-on-exec: {e}"),
    })?;
    sys::reset_signal_dispositions();
    sys::set_signal_mask(saved_mask).map_err(|e| StepError {
        step: "restore signal mask",
        errno: e.raw_os_error(),
        message: e.to_string(),
    })?;

    let mut argv: Vec<*const libc::c_char> = plan.args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = plan.env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    // SAFETY: `program`, `argv` and `envp` are NUL-terminated strings and
    // NULL-terminated arrays that live until execve returns (it only
    // returns on failure).
    unsafe { libc::execve(program.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    Err(os_error(
        "exec",
        format!("cannot execute {}", plan.args[0].to_string_lossy()),
    ))
}

/// Installs the plan's seccomp filter: as generated before the clone, as
/// the runtime sent it after, or generated here.
fn install_seccomp(plan: &ChildPlan, channel: &Channel) -> Result<(), StepError> {
    const STEP: &str = "install seccomp filter";
    match &plan.seccomp {
        SeccompPlan::Compiled(filter) => filter.install().in_step(STEP),
        SeccompPlan::Sent => channel.recv_filter().in_step(STEP)?.install().in_step(STEP),
        SeccompPlan::Prepared(prepared) => prepared
            .clone()
            .generate()
            .in_step(STEP)?
            .install()
            .in_step(STEP),
    }
}

/// Blocks until `start` connects to the start socket; returns the
/// connection, on which an exec failure is reported.
fn wait_for_start(listener: std::os::fd::RawFd) -> Result<Channel, StepError> {
    use std::os::fd::FromRawFd;
    loop {
        // SAFETY: accept4 with NULL address pointers only returns a new fd.
        let fd = unsafe {
            libc::accept4(
                listener,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC,
            )
        };
        if fd >= 0 {
            // SAFETY: the listener is ours alone and no longer needed; the
            // new descriptor was just returned by accept4 and is owned here.
            unsafe { libc::close(listener) };
            // SAFETY: see above: a fresh descriptor nobody else owns.
            return Ok(Channel::from_fd(unsafe {
                std::os::fd::OwnedFd::from_raw_fd(fd)
            }));
        }
        if nix::errno::Errno::last() != nix::errno::Errno::EINTR {
            return Err(os_error(
                "wait for start",
                "cannot accept on the start socket".to_string(),
            ));
        }
    }
}

fn set_rlimits(plan: &ChildPlan) -> Result<(), StepError> {
    for rlimit in &plan.rlimits {
        let resource = match rlimit.typ() {
            PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
            PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
            PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
            PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
            PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
            PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
            PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
            PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
            PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
            PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
            PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
            PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
            PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
            PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
            PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
            PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
        };
        let value = libc::rlimit {
            rlim_cur: rlimit.soft(),
            rlim_max: rlimit.hard(),
        };
        // SAFETY: `value` is a live rlimit for the duration of the call.
        if unsafe { libc::setrlimit(resource, &value) } != 0 {
            return Err(os_error(
                "set rlimits",
                format!(
                    "cannot set {:?} to {}:{}",
                    rlimit.typ(),
                    rlimit.soft(),
                    rlimit.hard()
                ),
            ));
        }
    }
    Ok(())
}

/// Takes uid and gid 0 of the new user namespace, now that its maps are
/// written. A process keeps its host ids across clone(2): a runtime started
/// by root stays host uid 0, which a map such as `0 200000 65536` leaves
/// unmapped, and every file it then creates fails with EOVERFLOW. (A
/// rootless runtime's own id is the one mapped to 0, so this changes
/// nothing there.) Capabilities survive: the namespace's root is who we
/// become.
fn become_namespace_root(plan: &ChildPlan) -> Result<(), StepError> {
    let maps_zero = |maps: &[oci_spec::runtime::LinuxIdMapping]| {
        maps.iter().any(|m| m.container_id() == 0 && m.size() > 0)
    };
    if !maps_zero(&plan.uid_mappings) || !maps_zero(&plan.gid_mappings) {
        return Ok(());
    }
    let root_gid = nix::unistd::Gid::from_raw(0);
    let root_uid = nix::unistd::Uid::from_raw(0);
    if plan.setgroups {
        // The runtime's host groups are unmapped here; they go now, and
        // switch_user sets the program's own.
        nix::unistd::setgroups(&[]).in_step("become root of the user namespace")?;
    }
    nix::unistd::setresgid(root_gid, root_gid, root_gid)
        .in_step("become root of the user namespace")?;
    nix::unistd::setresuid(root_uid, root_uid, root_uid)
        .in_step("become root of the user namespace")?;
    Ok(())
}

/// Becomes the spec's user, keeping the permitted capabilities across the
/// switch (PR_SET_KEEPCAPS) so `apply` can then set them exactly.
fn switch_user(plan: &ChildPlan) -> Result<(), StepError> {
    let id = &plan.identity;
    nix::sys::prctl::set_keepcaps(true).in_step("switch user")?;
    // setgroups(2) is denied in a user namespace an unprivileged caller
    // made. Everywhere else the list is set even when empty, so none of the
    // runtime's own groups stays with the program.
    if plan.setgroups {
        let groups: Vec<nix::unistd::Gid> = id
            .additional_gids
            .iter()
            .map(|g| nix::unistd::Gid::from_raw(*g))
            .collect();
        nix::unistd::setgroups(&groups).in_step("set supplementary groups")?;
    }
    let gid = nix::unistd::Gid::from_raw(id.gid);
    nix::unistd::setresgid(gid, gid, gid).map_err(|e| StepError {
        step: "switch user",
        errno: Some(e as i32),
        message: format!("cannot become gid {}: {}", id.gid, e.desc()),
    })?;
    let uid = nix::unistd::Uid::from_raw(id.uid);
    nix::unistd::setresuid(uid, uid, uid).map_err(|e| StepError {
        step: "switch user",
        errno: Some(e as i32),
        message: format!("cannot become uid {}: {}", id.uid, e.desc()),
    })?;
    nix::sys::prctl::set_keepcaps(false).in_step("switch user")
}

/// Finds the program like execvp(3), but in the sandbox's `PATH` rather
/// than the runtime's.
fn find_program(plan: &ChildPlan) -> Result<CString, StepError> {
    let name = plan.args[0].as_bytes();
    if name.contains(&b'/') {
        return Ok(plan.args[0].clone());
    }
    for dir in plan.path.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(std::ffi::OsStr::from_bytes(name));
        let Ok(c) = CString::new(candidate.as_os_str().as_bytes()) else {
            continue;
        };
        // SAFETY: `c` is a NUL-terminated path that outlives the call.
        if unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0 && candidate.is_file() {
            return Ok(c);
        }
    }
    Err(StepError {
        step: "exec",
        errno: Some(libc::ENOENT),
        message: format!(
            "{}: executable file not found in PATH ({})",
            String::from_utf8_lossy(name),
            plan.path
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::oom_score_adj_error;

    #[test]
    fn a_refused_oom_score_adj_names_the_missing_capability() {
        let refused = std::io::Error::from_raw_os_error(libc::EACCES);
        let message = oom_score_adj_error(-998, &refused);
        assert!(message.starts_with("cannot set oom_score_adj to -998: "));
        assert!(message.contains("CAP_SYS_RESOURCE"), "{message}");

        let invalid = std::io::Error::from_raw_os_error(libc::EINVAL);
        let message = oom_score_adj_error(5000, &invalid);
        assert!(!message.contains("CAP_SYS_RESOURCE"), "{message}");
    }
}
