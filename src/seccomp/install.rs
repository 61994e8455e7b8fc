//! Installing compiled filters with `seccomp(2)`, and probing the kernel.
//!
//! seccompiler's own `apply_filter` always sets no_new_privs first, which
//! would override OCI `process.noNewPrivileges: false`, and takes no filter
//! flags; so the filters are installed here with the raw syscall.
//! `SECCOMP_SET_MODE_FILTER` fails with `EACCES` unless no_new_privs is set
//! or the caller has CAP_SYS_ADMIN in its user namespace (`seccomp(2)`).

use std::io;

use seccompiler::{sock_filter, BpfProgram, SeccompAction};

use super::SeccompError;

/// The most instructions a classic BPF program may have (`BPF_MAXINSNS`).
const BPF_MAXINSNS: usize = 4096;

/// A profile compiled to BPF, ready to install in a forked child.
///
/// The default value holds no filter; installing it does nothing.
#[derive(Debug, Default, Clone)]
pub struct CompiledFilter {
    /// BPF programs, in installation order.
    programs: Vec<BpfProgram>,
    /// `SECCOMP_FILTER_FLAG_*` bits passed with every program.
    flags: u64,
}

impl CompiledFilter {
    /// Wraps generated programs, checking each fits one `sock_fprog`.
    pub(super) fn new(programs: Vec<BpfProgram>, flags: u64) -> Result<Self, SeccompError> {
        if let Some(program) = programs.iter().find(|p| p.len() > BPF_MAXINSNS) {
            return Err(SeccompError::Generate {
                source: seccompiler::BackendError::FilterTooLarge(program.len()),
            });
        }
        Ok(Self { programs, flags })
    }

    /// The BPF programs, in installation order.
    pub fn programs(&self) -> &[BpfProgram] {
        &self.programs
    }

    /// The filter as bytes for the channel to the sandbox: the flags, then
    /// each program's length and its instructions, all in native byte order
    /// (both ends are the same binary on the same machine).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + 8 * self.instruction_count());
        out.extend_from_slice(&self.flags.to_ne_bytes());
        for program in &self.programs {
            let len = u32::try_from(program.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_ne_bytes());
            for i in program {
                out.extend_from_slice(&i.code.to_ne_bytes());
                out.extend_from_slice(&[i.jt, i.jf]);
                out.extend_from_slice(&i.k.to_ne_bytes());
            }
        }
        out
    }

    /// Reads what [`CompiledFilter::to_bytes`] wrote; `None` if it is cut
    /// short or a program is longer than the kernel takes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let (flags, mut rest) = bytes.split_first_chunk::<8>()?;
        let mut programs = Vec::new();
        while let Some((len, after)) = rest.split_first_chunk::<4>() {
            let len = usize::try_from(u32::from_ne_bytes(*len)).ok()?;
            if len > BPF_MAXINSNS || after.len() < 8 * len {
                return None;
            }
            let (code, after) = after.split_at(8 * len);
            let program = code
                .chunks_exact(8)
                .map(|c| sock_filter {
                    code: u16::from_ne_bytes([c[0], c[1]]),
                    jt: c[2],
                    jf: c[3],
                    k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
                })
                .collect();
            programs.push(program);
            rest = after;
        }
        rest.is_empty().then_some(Self {
            programs,
            flags: u64::from_ne_bytes(*flags),
        })
    }

    /// The total number of BPF instructions over all programs.
    pub fn instruction_count(&self) -> usize {
        self.programs.iter().map(Vec::len).sum()
    }

    /// Installs the filters on the calling thread (on every thread with
    /// SECCOMP_FILTER_FLAG_TSYNC), in the child just before `execve`.
    ///
    /// Makes only `seccomp(2)` calls: it allocates nothing, logs nothing and
    /// takes no lock, so it is safe between fork and exec. It does not set
    /// no_new_privs.
    ///
    /// # Errors
    ///
    /// [`SeccompError::NoNewPrivs`] when no_new_privs is not set and the
    /// process lacks CAP_SYS_ADMIN; [`SeccompError::Tsync`] when another
    /// thread cannot be synchronised; [`SeccompError::InstallFilter`] for
    /// anything else the kernel refuses. Filters installed before the failing
    /// one stay installed.
    pub fn install(&self) -> Result<(), SeccompError> {
        for (filter, program) in self.programs.iter().enumerate() {
            let len = u16::try_from(program.len()).map_err(|_| SeccompError::InstallFilter {
                filter,
                flags: self.flags,
                source: io::Error::from_raw_os_error(libc::EINVAL),
            })?;
            let fprog = libc::sock_fprog {
                len,
                filter: program.as_ptr().cast::<libc::sock_filter>().cast_mut(),
            };

            // SAFETY: seccompiler's `sock_filter` is `#[repr(C)]` with the same
            // fields as the kernel's (u16, u8, u8, u32), so the pointer cast is
            // layout-compatible; `fprog.len` is the length of `program`, which
            // outlives the call; the kernel only reads the program.
            let ret = unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    self.flags,
                    &fprog as *const libc::sock_fprog,
                )
            };
            match ret {
                0 => {}
                // With TSYNC the kernel returns the id of the thread that
                // could not be synchronised.
                tid if tid > 0 => return Err(SeccompError::Tsync { filter, tid }),
                _ => {
                    return Err(install_error(
                        filter,
                        self.flags,
                        io::Error::last_os_error(),
                    ))
                }
            }
        }
        Ok(())
    }
}

fn install_error(filter: usize, flags: u64, source: io::Error) -> SeccompError {
    if source.raw_os_error() == Some(libc::EACCES) {
        SeccompError::NoNewPrivs { filter }
    } else {
        SeccompError::InstallFilter {
            filter,
            flags,
            source,
        }
    }
}

/// Whether the running kernel accepts the filter flag `bit`.
///
/// The kernel checks the flags before it reads the program, so a NULL program
/// fails with `EFAULT` for known flags and `EINVAL` for unknown ones, without
/// installing anything (the probe libseccomp uses).
pub(super) fn flag_available(bit: u64) -> bool {
    // SAFETY: a NULL program pointer is rejected by the kernel with EFAULT
    // before anything is installed; no memory is read or written.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            bit,
            std::ptr::null::<libc::sock_fprog>(),
        )
    };
    ret == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::EFAULT)
}

/// Checks with SECCOMP_GET_ACTION_AVAIL that the kernel knows `action`
/// (KILL_PROCESS and LOG date from Linux 4.14).
pub(super) fn check_action_available(action: &SeccompAction) -> Result<(), SeccompError> {
    // The kernel compares the action bits only.
    let value: u32 = u32::from(action.clone()) & libc::SECCOMP_RET_ACTION_FULL;

    // SAFETY: `value` is a live u32 for the duration of the call, which only
    // reads it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_GET_ACTION_AVAIL,
            0,
            &value as *const u32,
        )
    };
    if ret == 0 {
        return Ok(());
    }
    match io::Error::last_os_error().raw_os_error() {
        // Kernels before 4.14 lack GET_ACTION_AVAIL itself; they also lack
        // the actions it would report missing, which the install then
        // rejects with EINVAL.
        Some(libc::EINVAL) => Ok(()),
        _ => Err(SeccompError::ActionUnavailable {
            action: action.clone(),
        }),
    }
}

/// On x86_64, a filter that returns `ENOSYS` for x32 syscalls and ALLOW for
/// the rest.
///
/// x32 syscalls enter with the x86_64 audit arch and the number ORed with
/// `__X32_SYSCALL_BIT` (0x40000000), so a seccompiler filter, which only
/// compares x86_64 numbers, lets them fall to its default. `-1` is let
/// through: a tracer uses it to skip a syscall.
pub(super) fn x32_guard() -> Option<BpfProgram> {
    if !cfg!(target_arch = "x86_64") {
        return None;
    }
    // Opcodes from linux/bpf_common.h: BPF_LD|BPF_W|BPF_ABS, BPF_JMP|BPF_JEQ|BPF_K,
    // BPF_JMP|BPF_JSET|BPF_K, BPF_RET|BPF_K.
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const JSET_K: u16 = 0x45;
    const RET_K: u16 = 0x06;
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    let insn = |code, jt, jf, k| sock_filter { code, jt, jf, k };
    Some(vec![
        // seccomp_data.nr is at offset 0.
        insn(LD_W_ABS, 0, 0, 0),
        insn(JEQ_K, 2, 0, u32::MAX),
        insn(JSET_K, 0, 1, X32_SYSCALL_BIT),
        insn(
            RET_K,
            0,
            0,
            u32::from(SeccompAction::Errno(libc::ENOSYS.unsigned_abs())),
        ),
        insn(RET_K, 0, 0, libc::SECCOMP_RET_ALLOW),
    ])
}

#[cfg(test)]
mod tests;
