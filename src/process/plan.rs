//! Everything the child needs, computed in the parent before clone: paths
//! checked, the seccomp filter compiled, strings turned into C strings. The
//! child then only makes syscalls, and every bad input fails while no
//! process, namespace or mount exists yet.

use std::ffi::CString;
use std::os::fd::RawFd;
use std::path::PathBuf;

use oci_spec::runtime::{LinuxIdMapping, PosixRlimit, Spec};

use super::ProcessError;
use crate::capabilities::CapabilitySets;
use crate::mounts::MountPlan;
use crate::namespaces::NamespaceSet;
use crate::seccomp::{CompiledFilter, PreparedFilter};

/// The sandboxed process's identity.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The uid inside the sandbox.
    pub uid: u32,
    /// The gid inside the sandbox.
    pub gid: u32,
    /// Supplementary groups.
    pub additional_gids: Vec<u32>,
}

/// The child's plan.
#[derive(Debug)]
pub struct ChildPlan {
    /// Namespaces to create.
    pub namespaces: NamespaceSet,
    /// uid map of the user namespace (empty without one).
    pub uid_mappings: Vec<LinuxIdMapping>,
    /// gid map of the user namespace.
    pub gid_mappings: Vec<LinuxIdMapping>,
    /// Whether setgroups(2) works for the sandbox: without a user namespace,
    /// or in one whose maps a privileged runtime writes. An unprivileged one
    /// must deny it before it may write a gid map (user_namespaces(7)).
    pub setgroups: bool,
    /// The filesystem plan (with a mount namespace).
    pub mounts: Option<MountPlan>,
    /// The hostname (with a UTS namespace).
    pub hostname: Option<String>,
    /// The NIS domain name (with a UTS namespace).
    pub domainname: Option<String>,
    /// Namespaced sysctls: the /proc/sys file and the value.
    pub sysctls: Vec<(PathBuf, String)>,
    /// The value for /proc/self/oom_score_adj, if the spec gives one.
    pub oom_score_adj: Option<i32>,
    /// The user to become.
    pub identity: Identity,
    /// Capability sets.
    pub capabilities: CapabilitySets,
    /// Set no_new_privs.
    pub no_new_privs: bool,
    /// The seccomp filter (an empty one when unconfined).
    pub seccomp: SeccompPlan,
    /// Resource limits of the process.
    pub rlimits: Vec<PosixRlimit>,
    /// The program's arguments.
    pub args: Vec<CString>,
    /// The program's environment.
    pub env: Vec<CString>,
    /// The `PATH` to search for the program, from `env`.
    pub path: String,
    /// The working directory inside the sandbox.
    pub cwd: PathBuf,
    /// Run the reaping init as pid 1.
    pub init: bool,
    /// Give the program a pseudo-terminal (`process.terminal`).
    pub terminal: bool,
    /// The terminal's rows and columns (`process.consoleSize`).
    pub console_size: Option<(u16, u16)>,
    /// The file mode creation mask the program starts with.
    pub umask: u32,
    /// Send step notices over the channel (debug logging).
    pub trace_steps: bool,
    /// A listening SOCK_SEQPACKET socket: when set, the child stops before
    /// the seccomp filter and exec, reports ready, and waits for `start` to
    /// connect (the create/start split of the runtime-spec).
    pub start_socket: Option<RawFd>,
    /// createContainer hooks, run inside the container once it is set up.
    pub create_container_hooks: Vec<oci_spec::runtime::Hook>,
    /// startContainer hooks, run inside the container when `start` comes.
    pub start_container_hooks: Vec<oci_spec::runtime::Hook>,
    /// Namespaces to join instead of creating any (`exec`): descriptors of
    /// /proc/PID/ns/* of the container's init, in the order to join them.
    pub join: Vec<(RawFd, &'static str)>,
    /// The `tasks` files of the sandbox's v1 cgroups, opened by the runtime:
    /// the child writes "0" to each, first thing, to move itself. A thread
    /// moving itself is the one migration the kernel makes without taking
    /// the global threadgroup lock for writing, whose RCU grace period made
    /// the runtime's `cgroup.procs` writes cost 2 to 15 ms per sandbox. The
    /// child is single-threaded, so the thread is the whole process.
    pub cgroup_tasks: Vec<(RawFd, std::path::PathBuf)>,
    /// Descriptors after stderr to pass on to the program (`--preserve-fds`).
    pub preserve_fds: u32,
    /// The execution domain (`linux.personality`), for personality(2).
    pub personality: Option<libc::c_ulong>,
    /// Fork after joining, so the program is inside a joined pid
    /// namespace (`exec`); the first process stays behind as its init.
    pub fork_after_join: bool,
    /// The namespace files a config names by path, held open for `join`.
    pub join_files: Vec<std::fs::File>,
    /// A pid namespace the config names by path (a Kubernetes pod that
    /// shares its process namespace). setns(2) on a pid namespace moves
    /// only the caller's later children, so the runtime enters it around
    /// the clone and the child starts inside it.
    pub join_pid: Option<(std::fs::File, std::path::PathBuf)>,
    /// Set PR_SET_PDEATHSIG so the sandbox dies with the runtime; off for a
    /// container that must outlive `create`.
    pub die_with_runtime: bool,
    /// The runtime makes the new network namespace itself, while the child
    /// builds its root, and hands it over; the child joins it after the
    /// mounts instead of creating it in clone3. See
    /// [`ChildPlan::network_can_come_later`].
    pub network_from_runtime: bool,
}

fn cstrings(what: &'static str, items: &[String]) -> Result<Vec<CString>, ProcessError> {
    items
        .iter()
        .map(|s| {
            CString::new(s.as_bytes()).map_err(|_| ProcessError::InvalidSpec {
                field: what,
                reason: format!("{s:?} contains a NUL byte"),
            })
        })
        .collect()
}

/// How far the seccomp filter is made, and by whom the rest is done.
#[derive(Debug)]
pub enum SeccompPlan {
    /// Generated: the child installs it.
    Compiled(CompiledFilter),
    /// Checked and planned, not generated. A runtime that clones the child
    /// first and generates the filter while the child builds its root takes
    /// it out with [`ChildPlan::defer_seccomp`]; otherwise the child
    /// generates it itself before installing it.
    Prepared(PreparedFilter),
    /// Generated by the runtime after the clone and sent over the channel.
    Sent,
}

impl SeccompPlan {
    /// Instructions of the generated filter; 0 before it is generated here.
    pub fn instruction_count(&self) -> usize {
        match self {
            SeccompPlan::Compiled(filter) => filter.instruction_count(),
            SeccompPlan::Prepared(_) | SeccompPlan::Sent => 0,
        }
    }
}

impl ChildPlan {
    /// Generates a prepared filter now, in the runtime, before the clone.
    ///
    /// # Errors
    ///
    /// A program longer than the kernel takes.
    pub fn generate_seccomp(&mut self) -> Result<(), crate::seccomp::SeccompError> {
        let empty = SeccompPlan::Compiled(CompiledFilter::default());
        self.seccomp = match std::mem::replace(&mut self.seccomp, empty) {
            SeccompPlan::Prepared(prepared) => SeccompPlan::Compiled(prepared.generate()?),
            other => other,
        };
        Ok(())
    }

    /// Takes the prepared filter out of the plan for the runtime to
    /// generate after the clone; the child then waits for it on the channel
    /// when it comes to install it. `None` (and the plan unchanged) when
    /// the filter must be generated before the clone: the channel carries
    /// the parent's messages in order, and a child in a new user namespace
    /// reads its `go` first, while createContainer hooks read the state
    /// mid-setup; or when the filter might not fit one message.
    pub fn defer_seccomp(&mut self) -> Option<PreparedFilter> {
        let deferrable = matches!(&self.seccomp, SeccompPlan::Prepared(p) if p.fits_one_message())
            && self.create_container_hooks.is_empty()
            && !self.awaits_runtime();
        if !deferrable {
            return None;
        }
        match std::mem::replace(&mut self.seccomp, SeccompPlan::Sent) {
            SeccompPlan::Prepared(prepared) => Some(prepared),
            other => {
                self.seccomp = other;
                None
            }
        }
    }

    /// Whether the new network namespace may be made by the runtime and
    /// joined by the child only after its mounts: nothing before that point
    /// may depend on it. A sysfs mount shows the mounter's interfaces, a
    /// `net.*` sysctl writes the writer's namespace, and a new user
    /// namespace must own the network namespace, which only the child can
    /// arrange. Creating a network namespace is the costliest part of
    /// clone3 (about half a millisecond here), and this way it runs on the
    /// runtime's CPU while the child mounts.
    #[must_use]
    pub fn network_can_come_later(&self) -> bool {
        self.namespaces.has(libc::CLONE_NEWNET)
            && !self.namespaces.has(libc::CLONE_NEWUSER)
            && self.sysctls.is_empty()
            && self.join.is_empty()
            && self.join_pid.is_none()
            && self.create_container_hooks.is_empty()
            && self.start_container_hooks.is_empty()
            && !self.mounts.as_ref().is_some_and(MountPlan::mounts_sysfs)
    }

    /// Whether the child must wait for the runtime before its setup: only
    /// a new user namespace needs the runtime's uid/gid maps first.
    #[must_use]
    pub fn awaits_runtime(&self) -> bool {
        self.namespaces.has(libc::CLONE_NEWUSER)
    }

    /// Opens the namespaces the config names by path, to join them first
    /// thing in the child (a Kubernetes pod's network, IPC and UTS
    /// namespaces, typically).
    fn open_joined(
        &mut self,
        namespaces: &[oci_spec::runtime::LinuxNamespace],
    ) -> Result<(), ProcessError> {
        use oci_spec::runtime::LinuxNamespaceType as T;
        for ns in namespaces {
            let Some(path) = ns.path() else { continue };
            let kind = match ns.typ() {
                T::Network => "network",
                T::Ipc => "ipc",
                T::Uts => "uts",
                T::Cgroup => "cgroup",
                T::Pid => {
                    let file = std::fs::File::open(path).map_err(|e| ProcessError::InvalidSpec {
                        field: "linux.namespaces",
                        reason: format!("cannot open the pid namespace {}: {e}", path.display()),
                    })?;
                    self.join_pid = Some((file, path.to_path_buf()));
                    continue;
                }
                other => {
                    return Err(ProcessError::InvalidSpec {
                        field: "linux.namespaces",
                        reason: format!("joining a {other:?} namespace by path ({}) is not supported; only network, ipc, uts, pid and cgroup namespaces can be joined", path.display()),
                    })
                }
            };
            let file = std::fs::File::open(path).map_err(|e| ProcessError::InvalidSpec {
                field: "linux.namespaces",
                reason: format!("cannot open the {kind} namespace {}: {e}", path.display()),
            })?;
            self.join
                .push((std::os::fd::AsRawFd::as_raw_fd(&file), kind));
            self.join_files.push(file);
        }
        Ok(())
    }

    /// Computes the plan from a spec.
    ///
    /// # Errors
    ///
    /// Anything in the spec that cannot be carried out, named.
    pub fn from_spec(spec: &Spec, init: bool) -> Result<Self, ProcessError> {
        let invalid = |field: &'static str, reason: &str| ProcessError::InvalidSpec {
            field,
            reason: reason.to_string(),
        };
        let process = spec
            .process()
            .as_ref()
            .ok_or_else(|| invalid("process", "missing"))?;
        let linux = spec
            .linux()
            .as_ref()
            .ok_or_else(|| invalid("linux", "missing"))?;
        let args = process.args().clone().unwrap_or_default();
        if args.is_empty() {
            return Err(invalid("process.args", "empty: there is no program to run"));
        }
        let env = process.env().clone().unwrap_or_default();
        let path = env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or("/usr/local/bin:/usr/bin:/bin")
            .to_string();

        let namespaces =
            NamespaceSet::from_spec(linux.namespaces().as_deref().unwrap_or_default())?;
        let mounts = if namespaces.has(libc::CLONE_NEWNS) {
            Some(MountPlan::from_spec(spec)?)
        } else {
            None
        };
        let capabilities = match process.capabilities() {
            Some(c) => CapabilitySets::from_spec(c)?,
            None => CapabilitySets::default(),
        };
        let seccomp = match linux.seccomp() {
            Some(profile) => SeccompPlan::Prepared(crate::seccomp::prepare(profile)?),
            None => SeccompPlan::Compiled(CompiledFilter::default()),
        };
        let user = process.user();

        let mut plan = ChildPlan {
            namespaces,
            uid_mappings: linux.uid_mappings().clone().unwrap_or_default(),
            gid_mappings: linux.gid_mappings().clone().unwrap_or_default(),
            setgroups: !namespaces.has(libc::CLONE_NEWUSER) || nix::unistd::geteuid().is_root(),
            mounts,
            hostname: spec
                .hostname()
                .clone()
                .filter(|_| namespaces.has(libc::CLONE_NEWUTS)),
            domainname: spec
                .domainname()
                .clone()
                .filter(|_| namespaces.has(libc::CLONE_NEWUTS)),
            sysctls: linux
                .sysctl()
                .iter()
                .flatten()
                .map(|(k, v)| Ok((crate::sysctl::path_for(k, &namespaces)?, v.clone())))
                .collect::<Result<_, crate::sysctl::SysctlError>>()?,
            oom_score_adj: process.oom_score_adj(),
            identity: Identity {
                uid: user.uid(),
                gid: user.gid(),
                additional_gids: user.additional_gids().clone().unwrap_or_default(),
            },
            capabilities,
            no_new_privs: process.no_new_privileges().unwrap_or(false),
            seccomp,
            rlimits: process.rlimits().clone().unwrap_or_default(),
            args: cstrings("process.args", &args)?,
            env: cstrings("process.env", &env)?,
            path,
            cwd: process.cwd().clone(),
            init,
            terminal: process.terminal().unwrap_or(false),
            // A box too large for a terminal's u16 is clamped, not wrapped.
            console_size: process.console_size().as_ref().map(|b| {
                let clamp = |v: u64| u16::try_from(v).unwrap_or(u16::MAX);
                (clamp(b.height()), clamp(b.width()))
            }),
            // runc's default where the config gives none.
            umask: process.user().umask().unwrap_or(0o022),
            trace_steps: tracing::enabled!(tracing::Level::DEBUG),
            start_socket: None,
            join: Vec::new(),
            fork_after_join: false,
            cgroup_tasks: Vec::new(),
            preserve_fds: 0,
            personality: match linux.personality().as_ref().map(|p| p.domain()) {
                None => None,
                Some(oci_spec::runtime::LinuxPersonalityDomain::PerLinux) => Some(0),
                Some(oci_spec::runtime::LinuxPersonalityDomain::PerLinux32) => Some(0x0008),
            },
            join_files: Vec::new(),
            join_pid: None,
            create_container_hooks: spec
                .hooks()
                .as_ref()
                .and_then(|h| h.create_container().clone())
                .unwrap_or_default(),
            start_container_hooks: spec
                .hooks()
                .as_ref()
                .and_then(|h| h.start_container().clone())
                .unwrap_or_default(),
            die_with_runtime: true,
            network_from_runtime: false,
        };
        plan.open_joined(linux.namespaces().as_deref().unwrap_or_default())?;
        Ok(plan)
    }
}
