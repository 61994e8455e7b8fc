//! Seccomp filters: the built-in profiles, OCI seccomp to BPF, installation.
//!
//! A seccomp filter is a classic BPF program the kernel runs on every syscall
//! of the process that installed it and of its descendants (`seccomp(2)`,
//! Documentation/userspace-api/seccomp_filter.rst). Filters stack: once
//! installed, a filter cannot be removed, and the strictest result of all
//! filters applies.
//!
//! The work is split along the process boundary:
//!
//! - in the parent, [`builtin`] or [`load_profile`] give an OCI
//!   `LinuxSeccomp` (runtime-spec `config-linux.md`, "Seccomp") and
//!   [`compile`] turns it into a [`CompiledFilter`]: plain BPF instruction
//!   buffers and filter flags, checked against the running kernel;
//! - in the child, just before `execve`, [`CompiledFilter::install`] makes
//!   nothing but `seccomp(2)` calls: no allocation, no logging, no locks.
//!
//! Invariants: a compiled filter covers the native architecture only and
//! kills a process that enters the kernel through another ABI (i386 `int
//! 0x80`); x32 syscalls on x86_64 never reach an ALLOW they were not meant
//! to; anything in a profile that cannot be expressed (SCMP_ACT_NOTIFY, an
//! argument index above 5, a flag the kernel lacks) is an error, never
//! dropped. `install` does not set no_new_privs: that is the caller's
//! decision (OCI `process.noNewPrivileges`).

mod builtin;
mod chain;
mod compile;
mod index;
mod install;

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag};

pub use install::CompiledFilter;

/// A seccomp failure, naming the profile, rule or syscall.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// No built-in profile has that name.
    #[error("unknown seccomp profile {0:?}")]
    UnknownProfile(String),
    /// The profile file could not be read or parsed.
    #[error("cannot load seccomp profile {path}: {reason}")]
    Load {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The kernel refused a filter because no_new_privs is not set and the
    /// process lacks CAP_SYS_ADMIN.
    #[error("cannot install seccomp filter {filter}: no_new_privs is not set and the process lacks CAP_SYS_ADMIN")]
    NoNewPrivs {
        /// Position of the filter in the stack.
        filter: usize,
    },
    /// The kernel refused a filter.
    #[error("cannot install seccomp filter {filter} with flags {flags:#x}")]
    InstallFilter {
        /// Position of the filter in the stack.
        filter: usize,
        /// The `SECCOMP_FILTER_FLAG_*` bits passed.
        flags: u64,
        /// The kernel's error.
        source: std::io::Error,
    },
    /// SECCOMP_FILTER_FLAG_TSYNC could not move another thread onto the filter.
    #[error(
        "cannot install seccomp filter {filter} on all threads: thread {tid} has diverging filters"
    )]
    Tsync {
        /// Position of the filter in the stack.
        filter: usize,
        /// The thread that could not be synchronised.
        tid: i64,
    },
    /// A profile item has no equivalent here.
    #[error("seccomp profile {what}: {feature} is not supported")]
    Unsupported {
        /// The rule, action or flag.
        what: String,
        /// What is missing.
        feature: &'static str,
    },
    /// The running kernel lacks a seccomp filter flag the profile asks for.
    #[error("seccomp filter flag {flag} is not supported by this kernel")]
    FlagUnavailable {
        /// The flag, as spelled in the profile.
        flag: String,
    },
    /// The running kernel lacks a seccomp action the profile uses.
    #[error("seccomp action {action:?} is not supported by this kernel")]
    ActionUnavailable {
        /// The action.
        action: seccompiler::SeccompAction,
    },
    /// An `errnoRet` does not fit the kernel's range.
    #[error("seccomp profile {what}: errno {errno} is out of range")]
    ErrnoOutOfRange {
        /// The rule or default action.
        what: String,
        /// The value given.
        errno: u32,
    },
    /// An argument index beyond the six syscall arguments.
    #[error("seccomp profile {what}: argument index {index} is above 5")]
    ArgIndex {
        /// The rule.
        what: String,
        /// The index given.
        index: usize,
    },
    /// A SCMP_CMP_MASKED_EQ whose expected value has bits outside the mask,
    /// so it could never match.
    #[error("seccomp profile {what}: masked value {value:#x} has bits outside mask {mask:#x}")]
    MaskedValue {
        /// The rule.
        what: String,
        /// The mask (`value`).
        mask: u64,
        /// The expected value (`valueTwo`).
        value: u64,
    },
    /// Two filters of the stack could deny `seccomp(2)`, so the second could
    /// not be installed under the first.
    #[error(
        "seccomp profile denies seccomp(2) under more than one action; cannot stack its filters"
    )]
    SeccompDeniedTwice,
    /// seccompiler rejected a filter.
    #[error("cannot generate seccomp BPF")]
    Generate {
        /// seccompiler's error.
        source: seccompiler::BackendError,
    },
}

/// Returns the built-in profile `name` (`default` or `agent`).
///
/// `default` is Docker's default allow-list for a container with Docker's
/// default capabilities; `agent` is `default` without namespaces, mounts,
/// keyrings, eBPF, perf, userfaultfd, io_uring, ptrace, AF_PACKET sockets
/// and TIOCSTI. Both return `EPERM` for what they do not allow.
///
/// # Errors
///
/// [`SeccompError::UnknownProfile`] for any other name.
pub fn builtin(name: &str) -> Result<LinuxSeccomp, SeccompError> {
    match name {
        "default" => Ok(builtin::default_profile()),
        "agent" => Ok(builtin::agent_profile()),
        _ => Err(SeccompError::UnknownProfile(name.to_string())),
    }
}

/// Reads an OCI seccomp profile (the runtime-spec `linux.seccomp` object)
/// from a JSON file.
///
/// # Errors
///
/// [`SeccompError::Load`] naming the file and what is wrong with it: unreadable,
/// malformed JSON, an unknown action, operator, architecture or flag (with
/// line and column).
pub fn load_profile(path: &Path) -> Result<LinuxSeccomp, SeccompError> {
    let load_error = |reason: String| SeccompError::Load {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|err| load_error(err.to_string()))?;
    serde_json::from_str(&text).map_err(|err| load_error(err.to_string()))
}

/// Compiles `profile` to BPF for the native architecture, in the parent,
/// before clone.
///
/// Syscall names unknown on this architecture are skipped, as runc does.
/// The `architectures` list is accepted but only the native architecture is
/// filtered; other ABIs are killed.
///
/// # Errors
///
/// Anything the profile asks for that cannot be expressed or that the running
/// kernel lacks: SCMP_ACT_NOTIFY, an argument index above 5, an errno above
/// 4095, a MASKED_EQ that can never match, an unavailable flag or action.
pub fn compile(profile: &LinuxSeccomp) -> Result<CompiledFilter, SeccompError> {
    prepare(profile)?.generate()
}

/// A profile checked and planned, its BPF not yet generated. Everything
/// that can be wrong with a profile is found here; generating the programs
/// (a quarter of a millisecond for the built-in profiles) can then be left
/// for a moment when the runtime would otherwise wait.
#[derive(Debug, Clone)]
pub struct PreparedFilter {
    plans: Vec<compile::FilterPlan>,
    flags: u64,
    /// The default action lets calls through: x32 calls need a guard.
    default_allows: bool,
}

/// The first half of [`compile`]: checks `profile` against the running
/// kernel and plans its filters.
///
/// # Errors
///
/// As [`compile`], except a program too long for the kernel, which only
/// [`PreparedFilter::generate`] can tell.
pub fn prepare(profile: &LinuxSeccomp) -> Result<PreparedFilter, SeccompError> {
    let flags = filter_flags(profile)?;
    let plans = compile::plan(profile)?;
    for plan in &plans {
        install::check_action_available(&plan.on_match)?;
        install::check_action_available(&plan.on_mismatch)?;
    }
    let default_allows = matches!(
        profile.default_action(),
        LinuxSeccompAction::ScmpActAllow | LinuxSeccompAction::ScmpActLog
    );
    Ok(PreparedFilter {
        plans,
        flags,
        default_allows,
    })
}

impl PreparedFilter {
    /// Whether the generated filter surely fits one message of the channel
    /// to the sandbox: a program is at most 4,096 instructions of 8 bytes,
    /// and three of them (with the x32 guard) stay well under a socket's
    /// default send buffer.
    pub fn fits_one_message(&self) -> bool {
        self.plans.len() <= 3
    }

    /// Generates the BPF programs.
    ///
    /// # Errors
    ///
    /// A program longer than the kernel takes.
    pub fn generate(self) -> Result<CompiledFilter, SeccompError> {
        let exclusive = compile::exclusive(&self.plans);
        let mut programs = compile::generate(self.plans)?;

        // When the default action lets calls through, x32 syscalls (x86_64
        // numbers with bit 30 set, same audit arch) would pass every deny
        // rule: stop them first.
        if self.default_allows {
            if let Some(guard) = install::x32_guard() {
                programs.insert(0, guard);
            }
        }

        // The x32 guard, first, answers only x32 calls, which no rule names.
        if exclusive {
            if let Some(one) = chain::chain(&programs) {
                programs = vec![one];
            }
        }
        let filter = CompiledFilter::new(programs, self.flags)?;
        tracing::debug!(
            filters = filter.programs().len(),
            instructions = filter.instruction_count(),
            flags = format_args!("{:#x}", self.flags),
            "seccomp profile compiled"
        );
        tracing::trace!(programs = ?filter.programs(), "seccomp BPF");
        Ok(filter)
    }
}

/// Maps the profile's `flags` to `SECCOMP_FILTER_FLAG_*` bits, checking that
/// the running kernel knows each one.
fn filter_flags(profile: &LinuxSeccomp) -> Result<u64, SeccompError> {
    let mut bits = 0;
    for flag in profile.flags().iter().flatten() {
        let bit = match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
            // The kernel accepts it only with a notification listener.
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                return Err(SeccompError::Unsupported {
                    what: flag.to_string(),
                    feature: "a flag for SCMP_ACT_NOTIFY listeners",
                })
            }
        };
        if !install::flag_available(bit) {
            return Err(SeccompError::FlagUnavailable {
                flag: flag.to_string(),
            });
        }
        bits |= bit;
    }
    Ok(bits)
}

#[cfg(test)]
mod tests;
