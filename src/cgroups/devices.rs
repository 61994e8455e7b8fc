//! Device access on cgroup v2: a BPF_PROG_TYPE_CGROUP_DEVICE program
//! attached to the container's cgroup (Documentation/admin-guide/cgroup-v2.rst,
//! "Device controller"). The kernel runs it on every open and mknod of a
//! device node; it returns 1 to allow and 0 to deny.
//!
//! The program checks the rules from the last to the first, so a later rule
//! overrides an earlier one as on v1 (`devices.allow`/`devices.deny` written
//! in order); an access no rule matches is allowed, as on v1, where a new
//! cgroup starts with every device allowed. A leading "deny all" rule is
//! what makes it an allow-list.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::CgroupError;

/// The devices every container keeps, whatever the rules say (as runc):
/// null, zero, full, tty, random, urandom, ptmx and the pseudo-terminals.
/// (type, major, minor; `None` for any).
pub(super) const DEFAULT_ALLOWED: &[(char, i64, Option<i64>)] = &[
    ('c', 1, Some(3)),
    ('c', 1, Some(5)),
    ('c', 1, Some(7)),
    ('c', 5, Some(0)),
    ('c', 1, Some(8)),
    ('c', 1, Some(9)),
    ('c', 5, Some(2)),
    ('c', 136, None),
];

/// One instruction of classic eBPF (`struct bpf_insn`).
#[derive(Clone, Copy)]
#[repr(C)]
struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

// Opcodes (include/uapi/linux/bpf.h, bpf_common.h).
const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const AND32_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const RSH32_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const MOV32_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const MOV64_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

/// A rule reduced to what the program compares.
struct Rule {
    /// 1 block, 2 char, `None` for both.
    typ: Option<i32>,
    major: Option<i32>,
    minor: Option<i32>,
    /// BPF_DEVCG_ACC_* bits: mknod 1, read 2, write 4.
    access: i32,
    allow: bool,
}

fn access_bits(access: &str) -> i32 {
    access.chars().fold(0, |bits, c| match c {
        'm' => bits | 1,
        'r' => bits | 2,
        'w' => bits | 4,
        _ => bits,
    })
}

fn number(n: Option<i64>) -> Option<i32> {
    n.filter(|n| *n >= 0).and_then(|n| i32::try_from(n).ok())
}

fn rules(spec: &[LinuxDeviceCgroup]) -> Vec<Rule> {
    let mut out: Vec<Rule> = spec
        .iter()
        .filter(|r| r.typ() != Some(LinuxDeviceType::P))
        .map(|r| Rule {
            typ: match r.typ() {
                None | Some(LinuxDeviceType::A) => None,
                Some(LinuxDeviceType::B) => Some(1),
                Some(_) => Some(2),
            },
            major: number(r.major()),
            minor: number(r.minor()),
            access: access_bits(r.access().as_deref().unwrap_or("rwm")),
            allow: r.allow(),
        })
        .collect();
    out.extend(DEFAULT_ALLOWED.iter().map(|(_, major, minor)| Rule {
        typ: Some(2),
        major: number(Some(*major)),
        minor: number(*minor),
        access: 7,
        allow: true,
    }));
    out
}

/// The program for `spec`'s rules.
fn program(spec: &[LinuxDeviceCgroup]) -> Vec<Insn> {
    // r2 = device type, r3 = access requested, r4 = major, r5 = minor
    // (struct bpf_cgroup_dev_ctx: access_type, major, minor).
    let mut prog = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(AND32_K, 2, 0, 0, 0xffff),
        insn(LDX_W, 3, 1, 0, 0),
        insn(RSH32_K, 3, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ];
    for rule in rules(spec).iter().rev() {
        let mut checks: Vec<(u8, i32)> = Vec::new();
        if let Some(t) = rule.typ {
            checks.push((2, t));
        }
        if let Some(m) = rule.major {
            checks.push((4, m));
        }
        if let Some(m) = rule.minor {
            checks.push((5, m));
        }
        // Each check is one jump; the access check is three instructions,
        // and the verdict two: jumps skip to the end of this rule's block.
        let access_len = if rule.access == 7 { 0 } else { 3 };
        let mut left = i16::try_from(checks.len()).unwrap_or(0) + access_len + 2;
        let unconditional = left == 2;
        for (reg, value) in checks {
            left -= 1;
            prog.push(insn(JNE_K, reg, 0, left, value));
        }
        if rule.access != 7 {
            // Matches only if nothing outside the rule's access is asked for.
            prog.push(insn(MOV32_X, 6, 3, 0, 0));
            prog.push(insn(AND32_K, 6, 0, 0, !rule.access & 7));
            prog.push(insn(JNE_K, 6, 0, 2, 0));
        }
        prog.push(insn(MOV64_K, 0, 0, 0, i32::from(rule.allow)));
        prog.push(insn(EXIT, 0, 0, 0, 0));
        // A rule that matches everything ("a *:* rwm") decides alone; what
        // would follow it is unreachable, which the verifier refuses.
        if unconditional {
            return prog;
        }
    }
    prog.push(insn(MOV64_K, 0, 0, 0, 1));
    prog.push(insn(EXIT, 0, 0, 0, 0));
    prog
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

fn bpf(cmd: libc::c_long, attr: &mut [u64; 16]) -> std::io::Result<i64> {
    // SAFETY: `attr` is a zero-filled 128-byte buffer laid out as the
    // union bpf_attr member for `cmd`; its size is passed alongside.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.as_mut_ptr(),
            std::mem::size_of_val(attr),
        )
    };
    if ret < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(ret)
}

/// Loads the program for `spec` and attaches it to the cgroup at `dir`.
/// The attachment lives as long as the cgroup.
///
/// # Errors
///
/// The kernel refusing to load or attach it (no CAP_BPF/CAP_SYS_ADMIN, no
/// BPF cgroup support).
pub(super) fn attach(dir: &Path, spec: &[LinuxDeviceCgroup]) -> Result<(), CgroupError> {
    let err = |op: &'static str| {
        move |source| CgroupError::Io {
            op,
            path: dir.to_path_buf(),
            source,
        }
    };
    let prog = program(spec);
    let license = c"GPL";

    let mut attr = [0u64; 16];
    let insn_count = u64::try_from(prog.len()).unwrap_or(0);
    attr[0] = u64::from(BPF_PROG_TYPE_CGROUP_DEVICE) | (insn_count << 32);
    attr[1] = prog.as_ptr() as u64;
    attr[2] = license.as_ptr() as u64;
    // The verifier's log, for the error message if the kernel refuses.
    let mut log = vec![0u8; 16 * 1024];
    attr[3] = 1 | (u64::try_from(log.len()).unwrap_or(0) << 32);
    attr[4] = log.as_mut_ptr() as u64;
    let fd = bpf(BPF_PROG_LOAD, &mut attr).map_err(|e| {
        let text = String::from_utf8_lossy(&log[..log.iter().position(|b| *b == 0).unwrap_or(0)])
            .trim()
            .replace('\n', "; ");
        err("load the device program for")(std::io::Error::new(e.kind(), format!("{e}: {text}")))
    })?;
    // SAFETY: BPF_PROG_LOAD returned a new descriptor that nobody else owns.
    let prog_fd = unsafe { OwnedFd::from_raw_fd(i32::try_from(fd).unwrap_or(-1)) };

    let cgroup = std::fs::File::open(dir).map_err(err("open"))?;
    let mut attr = [0u64; 16];
    let target = u64::try_from(cgroup.as_raw_fd()).unwrap_or(0);
    let program_fd = u64::try_from(prog_fd.as_raw_fd()).unwrap_or(0);
    attr[0] = target | (program_fd << 32);
    attr[1] = u64::from(BPF_CGROUP_DEVICE) | (u64::from(BPF_F_ALLOW_MULTI) << 32);
    bpf(BPF_PROG_ATTACH, &mut attr).map_err(err("attach the device program to"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    #[test]
    fn every_jump_lands_inside_the_program() {
        let deny = LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .unwrap();
        let read_only = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::B)
            .major(8)
            .access("r")
            .build()
            .unwrap();
        let prog = program(&[deny, read_only]);
        for (i, insn) in prog.iter().enumerate() {
            if insn.code == JNE_K {
                let target = i64::try_from(i).unwrap() + 1 + i64::from(insn.off);
                assert!(
                    target < i64::try_from(prog.len()).unwrap(),
                    "jump at {i} leaves the program"
                );
                // A failed check lands on the first instruction of the next
                // rule, or on the default verdict.
                let landed = prog[usize::try_from(target).unwrap()];
                assert!(
                    landed.code == JNE_K || landed.code == MOV64_K || landed.code == MOV32_X,
                    "jump at {i}"
                );
            }
        }
        assert_eq!(prog.last().unwrap().code, EXIT);
    }
}
