//! The sandbox's first process: clone3 into new namespaces, the sync channel
//! with the runtime, the setup sequence up to execve, and the optional init.
//!
//! The runtime side is [`spawn`], then [`Sandbox::start`] once the uid/gid
//! maps and the cgroup are in place; the child side is `child::run`.

mod channel;
mod child;
mod init;
mod plan;
mod terminal;

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

pub use channel::ChildFailure;
pub use child::{CANNOT_EXECUTE, NOT_FOUND, SETUP_FAILED};
pub use plan::{ChildPlan, SeccompPlan};

use channel::{Channel, Report};

use crate::sys::{self, Forked};

/// A failure to create or start the sandbox's process.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The spec asks for something that cannot be done.
    #[error("invalid {field}: {reason}")]
    InvalidSpec {
        /// The spec field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// A namespace could not be set up.
    #[error(transparent)]
    Namespace(#[from] crate::namespaces::NamespaceError),
    /// The mount plan is invalid.
    #[error(transparent)]
    Mount(#[from] crate::mounts::MountError),
    /// A capability is unknown.
    #[error(transparent)]
    Capability(#[from] crate::capabilities::CapabilityError),
    /// A sysctl cannot be set in the sandbox.
    #[error(transparent)]
    Sysctl(#[from] crate::sysctl::SysctlError),
    /// The seccomp profile cannot be compiled.
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    /// clone3 failed.
    #[error("cannot create the sandbox process (clone3 with flags {flags:#x}): {source}{hint}")]
    Clone {
        /// The flags passed.
        flags: u64,
        /// The kernel's answer.
        source: std::io::Error,
        /// What usually causes this answer, with a leading "; ".
        hint: &'static str,
    },
    /// The sync channel failed.
    #[error("sync channel with the sandbox process: {0}")]
    Channel(std::io::Error),
    /// The start socket of a created container could not be reached.
    #[error("cannot reach the start socket {path}: {source}")]
    StartSocket {
        /// The socket.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A setup step in the child failed.
    #[error("{}", .0.message)]
    Setup(ChildFailure),
    /// The network namespace the runtime makes for the child.
    #[error(transparent)]
    Network(#[from] crate::network::NetworkError),
}

/// What [`Sandbox::start`] learned.
#[derive(Debug)]
pub struct Started {
    /// The master of the program's pseudo-terminal, if it has one.
    pub terminal: Option<OwnedFd>,
    /// The program's pid, when it is not the sandbox's first process.
    pub program: Option<i32>,
}

/// A running (or starting) sandbox process, seen from the runtime.
#[derive(Debug)]
pub struct Sandbox {
    /// Its pid in the runtime's pid namespace.
    pub pid: i32,
    /// A pidfd for it: signals and waits cannot hit a recycled pid.
    pub pidfd: OwnedFd,
    channel: Channel,
    /// Whether the child waits for `go` (see [`ChildPlan::awaits_runtime`]).
    awaits_go: bool,
}

/// Clones the sandbox's first process into its namespaces (and, with
/// `cgroup`, directly into that cgroup v2 directory). In a new user
/// namespace the child waits for [`Sandbox::start`]; otherwise it starts
/// its setup at once.
///
/// `saved_mask` is the signal mask the program gets back before exec.
///
/// # Errors
///
/// The channel or clone3 failing.
pub fn spawn(
    plan: &ChildPlan,
    cgroup: Option<RawFd>,
    saved_mask: &libc::sigset_t,
) -> Result<Sandbox, ProcessError> {
    let (parent_end, child_end) = channel::channel().map_err(ProcessError::Channel)?;
    let mut flags = plan.namespaces.clone_flags;
    if plan.network_from_runtime {
        flags &= !u64::from(libc::CLONE_NEWNET.unsigned_abs());
    }

    let entered = plan
        .join_pid
        .as_ref()
        .map(|(file, path)| PidNamespaceEntered::enter(file, path))
        .transpose()?;
    // SAFETY: the runtime is single-threaded (it starts no threads, and
    // `main` calls into the engine before any could exist).
    let forked = unsafe { sys::clone3(flags, cgroup) };
    if let (Some(entered), Ok(Forked::Parent { .. }) | Err(_)) = (entered, &forked) {
        entered.leave()?;
    }
    match forked {
        Err(source) => {
            let hint = match source.raw_os_error() {
                // The agent and default seccomp profiles answer clone3 with
                // ENOSYS and namespace flags with EPERM: a sandbox in a sandbox.
                Some(libc::ENOSYS) => "; a seccomp filter blocks clone3 here: inside another sandbox, start the outer one with --security-opt seccomp=unconfined --cap-add SYS_ADMIN",
                Some(libc::EPERM) => "; creating namespaces needs root, or unprivileged user namespaces (sysctl user.max_user_namespaces), and no seccomp filter that forbids them",
                Some(libc::ENOSPC) => "; the namespace limit is reached (sysctl user.max_*_namespaces)",
                _ => "",
            };
            Err(ProcessError::Clone {
                flags,
                source,
                hint,
            })
        }
        Ok(Forked::Child) => {
            drop(parent_end);
            child::run(plan, &child_end, saved_mask)
        }
        Ok(Forked::Parent { pid, pidfd }) => {
            drop(child_end);
            Ok(Sandbox {
                pid,
                pidfd,
                channel: parent_end,
                awaits_go: plan.awaits_runtime(),
            })
        }
    }
}

/// The runtime inside a joined pid namespace for its next child; `leave`
/// returns it to its own. The runtime's own pid never changes: setns(2)
/// on a pid namespace sets only where the caller's children are created.
struct PidNamespaceEntered {
    own: std::fs::File,
}

impl PidNamespaceEntered {
    fn enter(target: &std::fs::File, path: &std::path::Path) -> Result<Self, ProcessError> {
        let failed = |what: &str, e: std::io::Error| ProcessError::InvalidSpec {
            field: "linux.namespaces",
            reason: format!("cannot {what} the pid namespace {}: {e}", path.display()),
        };
        let own = std::fs::File::open("/proc/self/ns/pid").map_err(|e| {
            failed(
                "open /proc/self/ns/pid, the runtime's own, before entering",
                e,
            )
        })?;
        nix::sched::setns(target, nix::sched::CloneFlags::CLONE_NEWPID)
            .map_err(|e| failed("enter", e.into()))?;
        Ok(PidNamespaceEntered { own })
    }

    fn leave(self) -> Result<(), ProcessError> {
        // The runtime's active pid namespace is an ancestor of (or is) the
        // one entered, so returning to it is always allowed.
        nix::sched::setns(&self.own, nix::sched::CloneFlags::CLONE_NEWPID).map_err(|e| {
            ProcessError::InvalidSpec {
                field: "linux.namespaces",
                reason: format!("cannot return from the joined pid namespace: {e}"),
            }
        })
    }
}

/// Connects to a created container's start socket and lets it exec its
/// program; returns once it has (the connection closes on exec).
///
/// # Errors
///
/// The connection failing, or the exec (or anything after the wait)
/// failing in the container.
pub fn start_created(path: &std::path::Path, state: &str) -> Result<(), ProcessError> {
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType};
    let fd = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| ProcessError::Channel(e.into()))?;
    let unreachable = |e: nix::errno::Errno| ProcessError::StartSocket {
        path: path.to_path_buf(),
        source: e.into(),
    };
    let address = crate::sys::socket_address(path).map_err(|e| ProcessError::StartSocket {
        path: path.to_path_buf(),
        source: e,
    })?;
    connect(fd.as_raw_fd(), &address.addr).map_err(unreachable)?;
    let channel = Channel::from_fd(fd);
    channel.send_state(state).map_err(ProcessError::Channel)?;
    loop {
        match channel.read_report().map_err(ProcessError::Channel)? {
            Report::Failed(failure) => return Err(ProcessError::Setup(failure)),
            Report::Closed => return Ok(()),
            Report::Step(_) | Report::Terminal(_) | Report::Ready | Report::Program(_) => {}
        }
    }
}

impl Sandbox {
    /// Lets the child run its setup and exec the program; returns once the
    /// program runs (or, with a start socket, once the child waits for
    /// `start`), with the master of its pseudo-terminal when it has one.
    /// Each step the child announces goes to `on_step`.
    ///
    /// # Errors
    ///
    /// The first failed setup step, as the child reported it.
    pub fn start(&self, on_step: impl FnMut(&str)) -> Result<Started, ProcessError> {
        self.start_meanwhile(|| {}, on_step)
    }

    /// [`Sandbox::start`], doing `meanwhile` while the child sets itself up:
    /// work of the runtime's that the program need not wait for.
    ///
    /// # Errors
    ///
    /// As [`Sandbox::start`].
    pub fn start_meanwhile(
        &self,
        meanwhile: impl FnOnce(),
        mut on_step: impl FnMut(&str),
    ) -> Result<Started, ProcessError> {
        if self.awaits_go {
            self.send_go()?;
        }
        meanwhile();
        let mut started = Started {
            terminal: None,
            program: None,
        };
        loop {
            match self.channel.read_report().map_err(ProcessError::Channel)? {
                Report::Step(step) => on_step(&step),
                Report::Terminal(master) => started.terminal = Some(master),
                Report::Program(pid) => started.program = Some(pid),
                Report::Failed(failure) => return Err(ProcessError::Setup(failure)),
                Report::Ready | Report::Closed => return Ok(started),
            }
        }
    }

    /// Makes the sandbox's network namespace and hands it to the child,
    /// which joins it after its mounts (see
    /// [`ChildPlan::network_can_come_later`]).
    ///
    /// # Errors
    ///
    /// Making the namespace failing, or the child's own failure when it
    /// ended before the hand-over.
    pub fn make_network(&self) -> Result<(), ProcessError> {
        let namespace = crate::network::new_namespace()?;
        self.sent(self.channel.send_network(&namespace))
    }

    /// Sends the child the seccomp filter generated after the clone (see
    /// [`ChildPlan::defer_seccomp`]).
    ///
    /// # Errors
    ///
    /// The child's own failure when it ended before the filter got there,
    /// or the channel failing.
    pub fn send_filter(&self, filter: &crate::seccomp::CompiledFilter) -> Result<(), ProcessError> {
        self.sent(self.channel.send_filter(filter))
    }

    /// Releases the child.
    fn send_go(&self) -> Result<(), ProcessError> {
        self.sent(self.channel.send_go())
    }

    /// The outcome of a message to the child. A child that failed a step
    /// before it read the message has reported why and exited, so the send
    /// finds the channel closed: its report, still buffered, is the error
    /// worth showing.
    fn sent(&self, sent: std::io::Result<()>) -> Result<(), ProcessError> {
        let Err(e) = sent else {
            return Ok(());
        };
        match self.channel.read_report() {
            Ok(Report::Failed(failure)) => Err(ProcessError::Setup(failure)),
            _ => Err(ProcessError::Channel(e)),
        }
    }

    /// Hands the container's state to its createContainer hooks and waits
    /// until they have run.
    ///
    /// # Errors
    ///
    /// The channel failing, or a hook failing in the container.
    pub fn run_create_container_hooks(&self, state: &str) -> Result<(), ProcessError> {
        self.channel
            .send_state(state)
            .map_err(ProcessError::Channel)?;
        loop {
            match self.channel.read_report().map_err(ProcessError::Channel)? {
                Report::Failed(failure) => return Err(ProcessError::Setup(failure)),
                Report::Ready => return Ok(()),
                Report::Closed => {
                    return Err(ProcessError::Channel(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the container exited while running its createContainer hooks",
                    )))
                }
                Report::Step(_) | Report::Terminal(_) | Report::Program(_) => {}
            }
        }
    }

    /// Sends `signal` to the sandbox's first process.
    ///
    /// # Errors
    ///
    /// pidfd_send_signal(2)'s error (ESRCH once it is gone).
    pub fn signal(&self, signal: i32) -> std::io::Result<()> {
        sys::pidfd_send_signal(self.pidfd.as_raw_fd(), signal)
    }

    /// Waits for the first process to exit and returns its wait status.
    ///
    /// # Errors
    ///
    /// waitid(2)'s error.
    pub fn wait(&self) -> std::io::Result<nix::sys::wait::WaitStatus> {
        use nix::sys::wait::{waitid, Id, WaitPidFlag};
        loop {
            match waitid(Id::PIDFd(self.pidfd.as_fd()), WaitPidFlag::WEXITED) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => return other.map_err(std::io::Error::from),
            }
        }
    }
}
